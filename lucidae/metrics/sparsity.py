"""Sparsity and health of a code: how many latents are active per sample (L0), how often
each one fires (activation density, dead and dense latents, their log-density histogram),
how concentrated a code is (Hoyer sparsity), which VAE latents collapsed to the prior,
and the share of near-zero weights in a module. Codes may be one array or an iterable of batches."""

from __future__ import annotations

from typing import Any

import numpy as np

from lucidae.errors import ConfigError, DataError
from lucidae.metrics._inputs import _batches, _numpy
from lucidae.scaling import feature_stats

COLLAPSE_VARIANCE = 0.01
"""A VAE latent whose posterior mean varies less than this over the data has collapsed to the prior
(Burda et al. 2016's threshold for "active units"; the prior's variance is 1)."""


class ActivationAccumulator:
    """Per-latent activation statistics over batches of codes.

    A latent is *active* on a sample when ``|z| > threshold``. Collected: the number of
    samples, per-latent active counts, the sum of per-sample active counts (for L0) and
    the sum of per-sample Hoyer sparsities.

    Examples
    --------
    >>> import numpy as np
    >>> acc = ActivationAccumulator()
    >>> _ = acc.update(np.array([[0.0, 2.0, 0.0], [1.0, 3.0, 0.0]]))
    >>> acc.l0, acc.density.tolist(), acc.dead.tolist()
    (1.5, [0.5, 1.0, 0.0], [2])
    """

    def __init__(self, threshold: float = 0.0) -> None:
        self.threshold = float(threshold)
        self.n = 0
        self.active_count: np.ndarray | None = None  # (latent,)
        self._l0_sum = 0.0
        self._hoyer_sum = 0.0

    def update(self, z: Any) -> ActivationAccumulator:
        """Add a batch of codes ``(batch, n_latents)``."""
        z = _numpy(z)
        if z.ndim != 2:
            raise DataError(f"codes must be 2-D (batch, n_latents), got shape {z.shape}.")
        active = np.abs(z) > self.threshold  # (batch, latent)
        if self.active_count is None:
            self.active_count = np.zeros(z.shape[1], dtype=np.int64)
        elif z.shape[1] != len(self.active_count):
            raise DataError(f"Batch has {z.shape[1]} latents, earlier batches had {len(self.active_count)}.")
        self.active_count += active.sum(0)
        self._l0_sum += float(active.sum())
        self._hoyer_sum += float(hoyer(z, reduce=False).sum()) if z.shape[1] > 1 else 0.0
        self.n += len(z)
        return self

    def _need(self) -> None:
        if not self.n:
            raise DataError("No codes were added; call update(z) with at least one batch first.")

    @property
    def l0(self) -> float:
        """Mean number of active latents per sample."""
        self._need()
        return self._l0_sum / self.n

    @property
    def density(self) -> np.ndarray:
        """Per latent, the share of samples on which it is active ``(n_latents,)``."""
        self._need()
        return self.active_count / self.n

    @property
    def dead(self) -> np.ndarray:
        """Indices of latents never active over the data seen."""
        return np.flatnonzero(self.active_count == 0) if self.n else np.array([], dtype=np.int64)

    def dense(self, min_density: float = 0.5) -> np.ndarray:
        """Indices of latents active on more than ``min_density`` of the samples."""
        return np.flatnonzero(self.density > min_density)

    @property
    def hoyer(self) -> float:
        """Mean per-sample Hoyer sparsity (see :func:`hoyer`)."""
        self._need()
        return self._hoyer_sum / self.n


def _activations(codes: Any, threshold: float) -> ActivationAccumulator:
    """Feed every batch of ``codes`` to one :class:`ActivationAccumulator`."""
    acc = ActivationAccumulator(threshold)
    for batch in _batches(codes):
        acc.update(batch)
    return acc


def l0(codes: Any, *, threshold: float = 0.0) -> float:
    """L0: the mean number of active latents per sample, ``1/n sum_s #{i : |z_si| > threshold}``.

    ``codes`` is one array or an iterable of batches.

    Examples
    --------
    >>> l0([[0.0, 1.0, 2.0], [0.0, 0.0, 5.0]])
    1.5
    """
    return _activations(codes, threshold).l0


def activation_density(codes: Any, *, threshold: float = 0.0) -> np.ndarray:
    """Per latent, the share of samples on which ``|z| > threshold`` ``(n_latents,)``.

    Examples
    --------
    >>> activation_density([[0.0, 1.0], [0.0, 3.0]]).tolist()
    [0.0, 1.0]
    """
    return _activations(codes, threshold).density


def dead_latents(codes: Any, *, threshold: float = 0.0) -> np.ndarray:
    """Indices of latents never active (``|z| <= threshold`` on every sample).

    Examples
    --------
    >>> dead_latents([[0.0, 1.0, 0.0], [0.0, 3.0, 1e-9]], threshold=1e-6).tolist()
    [0, 2]
    """
    return np.flatnonzero(activation_density(codes, threshold=threshold) == 0)


def collapsed_latents(codes: Any, *, threshold: float = COLLAPSE_VARIANCE) -> np.ndarray:
    """Indices of a VAE's latents that collapsed to the prior: ``Var_x(E[z_i | x]) <= threshold``.

    ``codes`` are posterior means (what ``VAE.transform`` returns), one array or an iterable
    of batches. A latent the KL term has switched off gets a posterior equal to the prior
    ``N(0, 1)`` whatever the input, so its mean barely moves and the decoder learns to
    ignore it; Burda et al. (2016, "Importance Weighted Autoencoders") count a unit as
    active when that variance exceeds 0.01. The complement is their "active units".

    Examples
    --------
    >>> collapsed_latents([[0.001, 1.0], [-0.002, -1.0], [0.0, 0.5]]).tolist()
    [0]
    """
    try:
        stats = feature_stats(_batches(codes))  # Chan et al.'s merge, block by block
    except ConfigError:  # no rows at all
        stats = None
    if stats is None or stats.n < 2:
        raise DataError(
            f"collapsed_latents needs at least 2 samples to measure a variance, got {0 if stats is None else stats.n}."
        )
    variance = stats.std**2  # (latent,)
    return np.flatnonzero(variance <= threshold)


def dense_latents(codes: Any, *, threshold: float = 0.0, min_density: float = 0.5) -> np.ndarray:
    """Indices of latents active on more than ``min_density`` of the samples.

    In a sparse code a latent that fires on most samples explains little about any one
    of them (Bricken et al. 2023 flag such "dense" features).

    Examples
    --------
    >>> dense_latents([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]).tolist()
    [0]
    """
    return np.flatnonzero(activation_density(codes, threshold=threshold) > min_density)


def density_histogram(codes: Any, *, threshold: float = 0.0, bins: int = 20) -> dict[str, Any]:
    """Histogram of per-latent activation density on a log10 axis (as in Bricken et al. 2023).

    Bins span ``log10(density)`` from ``log10(1/n)`` to 0 equally; dead latents (density 0,
    whose log is minus infinity) are counted separately.

    Returns
    -------
    dict
        ``counts`` (bins,), ``edges`` (bins + 1, log10 density), ``n_dead``.

    Examples
    --------
    >>> h = density_histogram([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0]], bins=2)
    >>> h["counts"], h["n_dead"]
    ([1, 1], 1)
    """
    acc = _activations(codes, threshold)
    dens = acc.density
    low = np.log10(1.0 / acc.n) if acc.n > 1 else -1.0
    edges = np.linspace(low, 0.0, bins + 1)
    alive = dens[dens > 0]
    counts, _ = np.histogram(np.log10(alive), bins=edges)
    return {"counts": counts.tolist(), "edges": edges.tolist(), "n_dead": int((dens == 0).sum())}


def hoyer(codes: Any, *, reduce: bool = True) -> float | np.ndarray:
    """Hoyer sparsity (Hoyer 2004): ``(sqrt(d) - ||z||_1 / ||z||_2) / (sqrt(d) - 1)`` per sample.

    1 when one latent holds all the mass, 0 when all ``d`` latents are equal in
    magnitude. An all-zero sample counts as 1 (nothing active). ``reduce`` averages over samples.

    Examples
    --------
    >>> hoyer([[0.0, 0.0, 3.0], [1.0, 1.0, 1.0]], reduce=False).tolist()
    [1.0, 0.0]
    """
    Z = _numpy(codes)
    Z = Z[None, :] if Z.ndim == 1 else Z
    d = Z.shape[1]
    if d < 2:
        raise DataError("Hoyer sparsity needs at least 2 latents.")
    l1, l2 = np.abs(Z).sum(1), np.sqrt((Z**2).sum(1))  # (batch,)
    ratio = np.divide(l1, l2, out=np.ones_like(l1), where=l2 > 0)
    per = np.clip((np.sqrt(d) - ratio) / (np.sqrt(d) - 1), 0.0, 1.0)
    return float(per.mean()) if reduce else per


def near_zero_weights(module: Any, *, tol: float = 1e-3) -> float:
    """Share of a module's weight-matrix entries with ``|w| <= tol`` (biases excluded).

    Pruned or L1-penalised weights show up here; a dense network scores near 0.

    Examples
    --------
    >>> import torch
    >>> lin = torch.nn.Linear(2, 2)
    >>> with torch.no_grad():
    ...     _ = lin.weight.copy_(torch.tensor([[0.0, 1.0], [1e-5, 2.0]]))
    >>> near_zero_weights(lin)
    0.5
    """
    total = small = 0
    for name, param in module.named_parameters():
        if param.ndim < 2 or name.endswith("bias"):
            continue
        w = param.detach().abs()
        total += w.numel()
        small += int((w <= tol).sum())
    if total == 0:
        raise DataError("The module has no weight matrices to measure.")
    return small / total
