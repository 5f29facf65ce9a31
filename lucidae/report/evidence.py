"""The numbers and per-latent evidence a report shows, computed from a fitted estimator.

Metrics come from :mod:`lucidae.metrics` wherever it defines them; the few this module
computes itself are thin stand-ins, each marked, for measures that module does not
define (yet). Everything here returns plain data (arrays, dicts), never HTML, so the
same evidence feeds ``report.html``, ``metrics.json`` and the sweep.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lucidae import metrics as _metrics

ACTIVE_EPS = 1e-6
"""A latent value with magnitude at or below this counts as zero (inactive)."""

WEIGHT_ZERO_FRACTION = 0.01
"""A weight counts as zero when its magnitude is below this fraction of its layer's largest weight."""

TRAVERSAL_STEPS = 7
"""Values a traversal visits, from the latent's 1st to its 99th percentile."""

TOP_SAMPLES = 8
"""Top-activating samples shown per latent."""


def _metric(*names: str) -> Any:
    for name in names:
        fn = getattr(_metrics, name, None)
        if callable(fn):
            return fn
    return None


def active_fraction(Z: np.ndarray) -> np.ndarray:
    """Share of samples on which each latent is non-zero, shape (n_latents,).

    Examples
    --------
    >>> active_fraction(np.array([[0.0, 1.0], [0.0, 2.0], [1.0, 0.0], [0.0, 1.0]]))
    array([0.25, 0.75])
    """
    return (np.abs(Z) > ACTIVE_EPS).mean(axis=0)


def l0(Z: np.ndarray) -> float:
    """Mean number of non-zero latents per sample (a ReLU or TopK code is sparse; a linear one is not).

    Examples
    --------
    >>> l0(np.array([[0.0, 1.0, 2.0], [0.0, 0.0, 3.0]]))
    1.5
    """
    fn = _metric("l0")
    if fn is not None:
        return float(fn(Z))
    return float((np.abs(Z) > ACTIVE_EPS).sum(axis=1).mean())


def dead_latents(Z: np.ndarray) -> np.ndarray:
    """Boolean mask of latents that are zero on every sample, or never vary at all.

    A latent that is constant (even non-zero) carries no information about the sample
    either; both are flagged.

    Examples
    --------
    >>> dead_latents(np.array([[0.0, 1.0, 5.0], [0.0, 2.0, 5.0]]))
    array([ True, False,  True])
    """
    never_on = ~(np.abs(Z) > ACTIVE_EPS).any(axis=0)
    constant = Z.std(axis=0) <= ACTIVE_EPS
    return never_on | constant


def weight_sparsity(module: Any) -> float:
    """Share of weight-matrix entries that are practically zero (below 1% of their layer's largest).

    Biases and norms are ignored: they do not connect features to latents.

    Examples
    --------
    >>> import torch
    >>> lin = torch.nn.Linear(2, 2)
    >>> with torch.no_grad():
    ...     _ = lin.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 0.001]]))
    >>> weight_sparsity(lin)
    0.75
    """
    fn = _metric("weight_sparsity")
    if fn is not None:
        return float(fn(module))
    zero, total = 0, 0
    for name, p in module.named_parameters():
        if p.ndim < 2 or not name.endswith("weight"):
            continue
        w = p.detach().abs().float()
        peak = float(w.max())
        zero += int((w <= WEIGHT_ZERO_FRACTION * peak).sum()) if peak > 0 else w.numel()
        total += w.numel()
    return zero / total if total else 0.0


def parameter_count(module: Any) -> int:
    """Number of trainable parameters.

    Examples
    --------
    >>> import torch
    >>> parameter_count(torch.nn.Linear(3, 2))
    8
    """
    return int(sum(p.numel() for p in module.parameters() if p.requires_grad))


@dataclass
class LatentEvidence:
    """What one latent does, as data."""

    index: int
    """Position in the code."""
    active_fraction: float
    """Share of evaluation samples on which it is non-zero."""
    mean: float
    """Mean value over the evaluation samples."""
    std: float
    """Standard deviation over the evaluation samples."""
    dead: bool
    """Zero on every sample or constant: it carries no information."""
    strength: float
    """Norm of what it writes at one standard deviation (in scaled units); used to rank latents."""
    writes: np.ndarray
    """Change of the decoded sample (original units) when it rises by one standard deviation from the mean code."""
    traversal_values: np.ndarray
    """Latent values visited by the traversal."""
    traversal: np.ndarray
    """Decoded samples (original units), one row per traversal value."""
    top_indices: np.ndarray
    """Indices (into the evaluation data) of the samples that activate it most."""
    values: np.ndarray = field(repr=False)
    """Its value on every evaluation sample."""


def latent_evidence(est: Any, Z: np.ndarray, *, top: int = TOP_SAMPLES) -> list[LatentEvidence]:
    """Evidence for every latent of a fitted estimator, from the codes ``Z`` of the evaluation data.

    ``writes`` and ``traversal`` decode edited copies of the mean code, so they show
    what the decoder does with the latent in the context of a typical sample; for a
    linear decoder ``writes`` is the latent's decoder column times its standard
    deviation.

    Examples
    --------
    >>> from lucidae import AutoEncoder
    >>> from lucidae.datasets import load_digits
    >>> X = load_digits().X[:200]
    >>> est = AutoEncoder(hidden_dims=(), latent_dim=3, epochs=2, verbose=0, random_state=0).fit(X)
    >>> ev = latent_evidence(est, est.transform(X))
    >>> len(ev), ev[0].writes.shape, ev[0].traversal.shape
    (3, (64,), (7, 64))
    """
    n_latents = Z.shape[1]
    mean = Z.mean(axis=0)  # (latent,)
    std = Z.std(axis=0)  # (latent,)
    dead = dead_latents(Z)
    active = active_fraction(Z)
    lo = np.percentile(Z, 1, axis=0)  # (latent,)
    hi = np.percentile(Z, 99, axis=0)  # (latent,)
    # One batched decode for every latent: the mean code, mean + 1 std per latent, and the traversals.
    steps = np.linspace(0.0, 1.0, TRAVERSAL_STEPS)
    codes = [mean[None, :]]
    bumped = np.repeat(mean[None, :], n_latents, axis=0)  # (latent, latent)
    bumped[np.arange(n_latents), np.arange(n_latents)] += std
    codes.append(bumped)
    trav_values = lo[:, None] + (hi - lo)[:, None] * steps[None, :]  # (latent, step)
    trav = np.repeat(mean[None, None, :], TRAVERSAL_STEPS, axis=1).repeat(n_latents, axis=0)  # (latent, step, latent)
    trav[np.arange(n_latents), :, np.arange(n_latents)] = trav_values
    codes.append(trav.reshape(-1, n_latents))
    decoded = est.inverse_transform(np.concatenate(codes).astype(np.float32))  # (1 + L + L*steps, features)
    base, bumped_dec = decoded[0], decoded[1 : 1 + n_latents]
    trav_dec = decoded[1 + n_latents :].reshape(n_latents, TRAVERSAL_STEPS, -1)
    scale = np.asarray(est.scaler_.scale, dtype=np.float64)
    out = []
    for j in range(n_latents):
        writes = bumped_dec[j] - base  # (features,)
        order = np.argsort(-Z[:, j], kind="stable")[:top]
        out.append(
            LatentEvidence(
                index=j,
                active_fraction=float(active[j]),
                mean=float(mean[j]),
                std=float(std[j]),
                dead=bool(dead[j]),
                strength=0.0 if dead[j] else float(np.linalg.norm(writes / scale)),
                writes=writes,
                traversal_values=trav_values[j],
                traversal=trav_dec[j],
                top_indices=order,
                values=Z[:, j],
            )
        )
    return out


def latent_map_coords(Z: np.ndarray) -> tuple[np.ndarray, str]:
    """A 2-D map of the samples from their codes: the codes' first two principal components.

    Returns the coordinates (n, 2) and a caption saying how they were made.

    Examples
    --------
    >>> coords, how = latent_map_coords(np.random.default_rng(0).random((20, 5)))
    >>> coords.shape
    (20, 2)
    """
    Zc = Z - Z.mean(axis=0)
    if Z.shape[1] == 1:
        return np.column_stack([Zc[:, 0], np.zeros(len(Z))]), "the single latent (x) against nothing"
    _, s, vt = np.linalg.svd(Zc, full_matrices=False)
    coords = Zc @ vt[:2].T  # (n, 2)
    total = float((s**2).sum()) or 1.0
    share = float((s[:2] ** 2).sum()) / total
    return coords, f"first two principal components of the codes ({share:.0%} of their variance)"


def mig_or_none(Z: np.ndarray, factors: np.ndarray | None) -> float | None:
    """MIG of the codes against known factors, or None when there are none or it is undefined.

    Examples
    --------
    >>> mig_or_none(np.zeros((4, 2)), None) is None
    True
    """
    fn = _metric("mig")
    if factors is None or fn is None or Z.shape[1] < 2:
        return None
    try:
        return float(fn(Z, factors))
    except ValueError:
        return None
