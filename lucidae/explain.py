"""Per-latent explanations, returned as data (arrays and records), never as pictures.

Every function takes a fitted lucidae estimator and data, and returns dataclasses of
NumPy arrays with a ``to_dict()`` that is JSON-ready, so the HTML report, a notebook
and a user's own plots all draw from the same evidence:

* :func:`latent_writes` - what a latent writes: the decoder's response to raising it;
* :func:`latent_reads` - what a latent reads: its top-activating samples and samples
  from lower activation quantiles;
* :func:`traverse` - decode while sweeping one latent across its observed range;
* :func:`attribute_latent`, :func:`attribute_error` - which input features drive a
  latent or a sample's reconstruction error (integrated gradients);
* :func:`latent_map` - a 2-D map of the codes, coloured by a label or factor.

Inputs are in the data's original units; decoded outputs are returned in the original
units too (``est.inverse_transform``). Attributions are in the model's scaled input
space, because that is the space the gradients live in (see :func:`attribute_latent`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from lucidae.errors import ConfigError, DataError


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


class _Record:
    """``to_dict`` for the dataclasses below: arrays become lists, big image arrays are optional."""

    _image_fields: tuple[str, ...] = ()

    def to_dict(self, *, include_images: bool = True) -> dict[str, Any]:
        """Return the record as JSON-ready data (``include_images=False`` drops image arrays)."""
        out = {}
        for name in self.__dataclass_fields__:  # type: ignore[attr-defined]
            if not include_images and name in self._image_fields:
                continue
            out[name] = _jsonable(getattr(self, name))
        return out


# ---------------------------------------------------------------------- helpers
def _device(est: Any) -> torch.device:
    return next(est.module_.parameters()).device


def _codes(est: Any, X: Any) -> np.ndarray:
    return np.asarray(est.transform(X), dtype=np.float64)  # (n, latent)


def _check_latent(est: Any, latent: int) -> int:
    n = est.module_.latent_dim
    if not isinstance(latent, (int, np.integer)) or not 0 <= latent < n:
        raise ConfigError(f"latent={latent!r} is out of range: this model has latents 0 to {n - 1}.")
    return int(latent)


def _latents(est: Any, latents: Sequence[int] | None) -> list[int]:
    if latents is None:
        return list(range(est.module_.latent_dim))
    return [_check_latent(est, i) for i in latents]


def _as_images(est: Any, rows: np.ndarray) -> np.ndarray | None:
    shape = getattr(est, "image_shape_", None)
    if shape is None:
        return None
    return rows.reshape(len(rows), *shape)


def _decode(est: Any, Z: np.ndarray) -> np.ndarray:
    """Decode codes to the original units, float64."""
    return np.asarray(est.inverse_transform(np.asarray(Z, dtype=np.float32)), dtype=np.float64)


def rank_latents(est: Any, X: Any) -> np.ndarray:
    """Latent indices ordered by the variance of their code over ``X``, most used first.

    A latent that hardly varies cannot explain differences between samples; showing the
    high-variance latents first puts the evidence that matters at the top of a report.

    Examples
    --------
    >>> from lucidae import AutoEncoder
    >>> from lucidae.datasets import load_digits
    >>> X = load_digits().X[:300]
    >>> ae = AutoEncoder(hidden_dims=(), latent_dim=3, epochs=2, verbose=0, random_state=0).fit(X)
    >>> sorted(rank_latents(ae, X).tolist())
    [0, 1, 2]
    """
    check_is_fitted(est, "module_")
    var = _codes(est, X).var(axis=0)  # (latent,)
    return np.argsort(-var, kind="stable")


# ---------------------------------------------------------------------- what a latent writes
@dataclass
class LatentWrite(_Record):
    """What latent ``latent`` writes into the input space."""

    latent: int
    """Index of the latent."""
    direction: np.ndarray
    """``decode(z_ref + step e_i) - decode(z_ref)`` in original units, ``(n_features,)``."""
    step: float
    """How far the latent was raised (its standard deviation over the data by default)."""
    image: np.ndarray | None
    """``direction`` reshaped to the estimator's ``image_shape_``; None for tabular data."""
    top_features: list[dict[str, Any]]
    """The features with the largest ``|direction|``: ``{"index", "name", "weight"}``, largest first."""

    _image_fields = ("image",)


def latent_writes(
    est: Any,
    X: Any,
    *,
    latents: Sequence[int] | None = None,
    step: float | str = "std",
    reference: str = "mean",
    n_top: int = 10,
) -> list[LatentWrite]:
    """The decoder's response to raising each latent: what that latent adds to the output.

    ``direction_i = decode(z_ref + s_i e_i) - decode(z_ref)`` where ``z_ref`` is the mean
    (or median) code of ``X`` and ``s_i`` the latent's standard deviation over ``X``
    (``step="std"``) or a fixed number. For a linear decoder this is exactly the decoder
    weight column times ``s_i`` (in original units); for a nonlinear one it is the local
    effect around a typical code, which is what a reader asks ("what changes if this
    latent goes up?").

    Parameters
    ----------
    est : fitted lucidae estimator
    X : array-like of shape (n_samples, n_features)
        Data that sets the reference code and the step.
    latents : sequence of int, optional
        Which latents; default all.
    step : "std" or float, default="std"
    reference : {"mean", "median"}, default="mean"
    n_top : int, default=10
        How many features to list in ``top_features``.

    Returns
    -------
    list of LatentWrite

    Examples
    --------
    >>> from lucidae import AutoEncoder
    >>> from lucidae.datasets import load_digits
    >>> X = load_digits().X[:300]
    >>> ae = AutoEncoder(hidden_dims=(), latent_dim=2, epochs=2, verbose=0, random_state=0)
    >>> w = latent_writes(ae.fit(X, image_shape=(8, 8)), X, n_top=3)
    >>> w[0].image.shape, len(w[0].top_features)
    ((8, 8), 3)
    """
    check_is_fitted(est, "module_")
    Z = _codes(est, X)
    ref = _reference(Z, reference)  # (latent,)
    idx = _latents(est, latents)
    steps = []
    for i in idx:
        s = float(Z[:, i].std()) if step == "std" else float(step)
        steps.append(s if s > 0 else 1.0)  # a constant latent still gets a visible unit step
    codes = np.repeat(ref[None, :], len(idx) + 1, axis=0)  # (1 + k, latent): reference then raised
    for row, (i, s) in enumerate(zip(idx, steps), start=1):
        codes[row, i] += s
    out = _decode(est, codes)  # (1 + k, features)
    directions = out[1:] - out[0]  # (k, features)
    names = list(getattr(est, "feature_names_", None) or [f"x{j}" for j in range(directions.shape[1])])
    images = _as_images(est, directions)
    result = []
    for row, (i, s) in enumerate(zip(idx, steps)):
        d = directions[row]
        order = np.argsort(-np.abs(d), kind="stable")[:n_top]
        top = [{"index": int(j), "name": names[j], "weight": float(d[j])} for j in order]
        result.append(LatentWrite(i, d, s, None if images is None else images[row], top))
    return result


def _reference(Z: np.ndarray, how: str) -> np.ndarray:
    if how == "mean":
        return Z.mean(axis=0)
    if how == "median":
        return np.median(Z, axis=0)
    raise ConfigError(f"reference={how!r} is not known; use 'mean' or 'median'.")


def decoder_directions(est: Any, X: Any, *, step: float | str = "std") -> np.ndarray:
    """Every latent's write direction as columns, ``(n_features, n_latents)``, unit-normed.

    The input for :func:`lucidae.metrics.pca_angles`. Directions are taken in the model's
    scaled space (where PCA of the scaled data lives) and normalised to unit length, so
    only their orientation counts.

    Examples
    --------
    >>> from lucidae import AutoEncoder
    >>> from lucidae.datasets import load_digits
    >>> X = load_digits().X[:300]
    >>> ae = AutoEncoder(hidden_dims=(), latent_dim=3, epochs=2, verbose=0, random_state=0).fit(X)
    >>> decoder_directions(ae, X).shape
    (64, 3)
    """
    writes = latent_writes(est, X, step=step, n_top=0)
    D = np.stack([w.direction for w in writes], axis=1)  # (features, latent) in original units
    D = D / est.scaler_.scale[:, None]  # back to the scaled space the module works in
    norms = np.linalg.norm(D, axis=0)
    return D / np.where(norms > 0, norms, 1.0)


# ---------------------------------------------------------------------- what a latent reads
@dataclass
class LatentReads(_Record):
    """Which samples make latent ``latent`` fire."""

    latent: int
    """Index of the latent."""
    top_indices: np.ndarray
    """Row indices into ``X`` of the top-activating samples, strongest first."""
    top_values: np.ndarray
    """The latent's value on those samples."""
    quantile_indices: dict[float, np.ndarray]
    """Activation quantile -> row indices of samples whose value is nearest that quantile."""
    quantile_values: dict[float, np.ndarray]
    """Activation quantile -> the latent's value on those samples."""
    top_images: np.ndarray | None
    """The top samples as images ``(n_top, *image_shape)``; None for tabular data."""
    top_labels: np.ndarray | None
    """Labels of the top samples, when labels were given."""

    _image_fields = ("top_images",)


def latent_reads(
    est: Any,
    X: Any,
    *,
    latents: Sequence[int] | None = None,
    y: Any = None,
    n_top: int = 9,
    quantiles: Sequence[float] = (0.9, 0.5, 0.1),
    n_per_quantile: int = 3,
) -> list[LatentReads]:
    """Top-activating samples per latent, and a few from lower activation quantiles.

    The top samples show what a latent responds to most; samples near the 90th, 50th
    and 10th percentile of its activation show whether the response is graded (the
    pattern fades) or a switch (lower quantiles look unrelated), which the top samples
    alone cannot tell.

    Parameters
    ----------
    est : fitted lucidae estimator
    X : array-like of shape (n_samples, n_features)
    latents : sequence of int, optional
    y : array-like of shape (n_samples,), optional
        Labels reported beside the top samples.
    n_top : int, default=9
    quantiles : sequence of float, default=(0.9, 0.5, 0.1)
    n_per_quantile : int, default=3

    Returns
    -------
    list of LatentReads

    Examples
    --------
    >>> from lucidae import AutoEncoder
    >>> from lucidae.datasets import load_digits
    >>> ds = load_digits()
    >>> ae = AutoEncoder(hidden_dims=(), latent_dim=2, epochs=2, verbose=0, random_state=0)
    >>> r = latent_reads(ae.fit(ds.X[:300], image_shape=(8, 8)), ds.X[:300], y=ds.y[:300], n_top=4)
    >>> r[0].top_images.shape, len(r[0].top_labels), sorted(r[0].quantile_indices)
    ((4, 8, 8), 4, [0.1, 0.5, 0.9])
    """
    check_is_fitted(est, "module_")
    Xa = np.asarray(X)
    Z = _codes(est, Xa)
    labels = None if y is None else np.asarray(y)
    if labels is not None and len(labels) != len(Z):
        raise DataError(f"y has {len(labels)} entries but X has {len(Z)} samples; pass one label per sample.")
    for q in quantiles:
        if not 0 <= q <= 1:
            raise ConfigError(f"quantiles must lie in [0, 1], got {q!r}.")
    out = []
    for i in _latents(est, latents):
        z = Z[:, i]
        top = np.argsort(-z, kind="stable")[:n_top]
        q_idx, q_val = {}, {}
        for q in quantiles:
            target = np.quantile(z, q)
            near = np.argsort(np.abs(z - target), kind="stable")[:n_per_quantile]
            q_idx[float(q)], q_val[float(q)] = near, z[near]
        images = _as_images(est, Xa[top].reshape(len(top), -1)) if Xa.ndim == 2 else None
        out.append(
            LatentReads(i, top, z[top], q_idx, q_val, images, None if labels is None else labels[top]),
        )
    return out


# ---------------------------------------------------------------------- traversals
@dataclass
class Traversal(_Record):
    """Decoded outputs while one latent sweeps its range and the others stay fixed."""

    latent: int
    """Index of the swept latent."""
    values: np.ndarray
    """The latent's values along the sweep, ``(n_steps,)``, ascending."""
    base: np.ndarray
    """The code the other latents are fixed at, ``(n_latents,)``."""
    recon: np.ndarray
    """Decoded outputs in original units, ``(n_steps, n_features)``."""
    images: np.ndarray | None
    """``recon`` as images ``(n_steps, *image_shape)``; None for tabular data."""

    _image_fields = ("images", "recon")


def traverse(
    est: Any,
    X: Any,
    latent: int,
    *,
    n_steps: int = 7,
    quantile_range: tuple[float, float] = (0.0, 1.0),
    base: str | np.ndarray = "median",
) -> Traversal:
    """Decode while sweeping latent ``latent`` across its observed range, others fixed.

    The sweep visits ``n_steps`` equally spaced values between the ``quantile_range``
    quantiles of the latent over ``X`` (default: its minimum and maximum); the other
    latents stay at ``base``: the median code (robust to outliers; for a ReLU code it
    keeps rarely active latents at 0), the mean code, or a given code.

    Examples
    --------
    >>> from lucidae import AutoEncoder
    >>> from lucidae.datasets import load_digits
    >>> X = load_digits().X[:300]
    >>> ae = AutoEncoder(hidden_dims=(), latent_dim=2, epochs=2, verbose=0, random_state=0)
    >>> t = traverse(ae.fit(X, image_shape=(8, 8)), X, 0, n_steps=5)
    >>> t.images.shape, bool((t.values[1:] >= t.values[:-1]).all())
    ((5, 8, 8), True)
    """
    check_is_fitted(est, "module_")
    latent = _check_latent(est, latent)
    if not isinstance(n_steps, (int, np.integer)) or n_steps < 2:
        raise ConfigError(f"n_steps={n_steps!r} is invalid: expected an integer >= 2.")
    lo_q, hi_q = quantile_range
    if not 0 <= lo_q < hi_q <= 1:
        raise ConfigError(f"quantile_range={quantile_range!r} is invalid: expected 0 <= low < high <= 1.")
    Z = _codes(est, X)
    if isinstance(base, str):
        ref = _reference(Z, base)
    else:
        ref = np.asarray(base, dtype=np.float64).reshape(-1)
        if ref.shape != (Z.shape[1],):
            raise DataError(f"base has shape {ref.shape}; expected ({Z.shape[1]},), one value per latent.")
    lo, hi = np.quantile(Z[:, latent], [lo_q, hi_q])
    values = np.linspace(lo, hi, n_steps)  # (step,)
    codes = np.repeat(ref[None, :], n_steps, axis=0)  # (step, latent)
    codes[:, latent] = values
    recon = _decode(est, codes)  # (step, features)
    return Traversal(latent, values, ref, recon, _as_images(est, recon))


# ---------------------------------------------------------------------- attributions
@dataclass
class Attribution(_Record):
    """Integrated-gradients attributions of a scalar output to each input feature."""

    target: str
    """What was explained: ``"latent 3"`` or ``"reconstruction error"``."""
    attributions: np.ndarray
    """``(n_samples, n_features)``: each feature's share of ``output(x) - output(baseline)``."""
    output: np.ndarray
    """The explained output at each sample, ``(n_samples,)``."""
    baseline_output: np.ndarray
    """The explained output at the baseline, ``(n_samples,)``."""
    delta: np.ndarray
    """Completeness gap ``sum(attributions) - (output - baseline_output)``; near 0 when the integral converged."""
    method: str
    """``"captum"`` or ``"torch"`` (the plain-torch fallback)."""
    n_steps: int
    """Integration steps along the straight path."""
    feature_names: list[str] = field(default_factory=list)
    """Names of the input features."""

    def top_features(self, sample: int = 0, k: int = 10) -> list[dict[str, Any]]:
        """The ``k`` features with the largest ``|attribution|`` for row ``sample``, largest first."""
        a = self.attributions[sample]
        order = np.argsort(-np.abs(a), kind="stable")[:k]
        names = self.feature_names or [f"x{j}" for j in range(len(a))]
        return [{"index": int(j), "name": names[j], "attribution": float(a[j])} for j in order]


def _baseline(est: Any, Xs: np.ndarray, baseline: Any) -> np.ndarray:
    if isinstance(baseline, str):
        if baseline == "zeros":
            return np.zeros_like(Xs)
        raise ConfigError(
            f"baseline={baseline!r} is not known; use 'zeros' or an array in original units "
            "(for example X_train.mean(axis=0))."
        )
    b = est.scaler_.transform(np.atleast_2d(np.asarray(baseline, dtype=np.float64)))
    if b.shape[1] != Xs.shape[1] or len(b) not in (1, len(Xs)):
        raise DataError(f"baseline has shape {b.shape}; expected (1, {Xs.shape[1]}) or ({len(Xs)}, {Xs.shape[1]}).")
    return np.broadcast_to(b, Xs.shape).copy()


def integrated_gradients(
    fn: Any,
    x: torch.Tensor,
    baseline: torch.Tensor,
    *,
    n_steps: int = 64,
    method: str = "auto",
) -> tuple[torch.Tensor, str]:
    """Integrated gradients (Sundararajan et al. 2017) of a per-sample scalar function ``fn``.

    ``IG_j(x) = (x_j - x'_j) * integral_0^1 d fn(x' + a (x - x')) / d x_j da``; the
    attributions add up to ``fn(x) - fn(x')`` (completeness). ``method="captum"`` uses
    Captum's ``IntegratedGradients`` (Gauss-Legendre nodes); ``"torch"`` is the
    fallback: the midpoint rule with ``n_steps`` nodes, which is exact for functions
    linear along the path and converges as ``1/n_steps^2`` otherwise. ``"auto"`` uses
    Captum when it is installed (``pip install lucidae[explain]``).

    Parameters
    ----------
    fn : callable
        Maps a batch ``(batch, n_features)`` to one value per sample ``(batch,)``.
    x, baseline : Tensor of shape (batch, n_features)
    n_steps : int, default=64
    method : {"auto", "captum", "torch"}

    Returns
    -------
    (attributions, method_used)

    Examples
    --------
    >>> import torch
    >>> w = torch.tensor([1.0, -2.0, 3.0])
    >>> x = torch.tensor([[1.0, 1.0, 1.0]])
    >>> a, _ = integrated_gradients(lambda t: (t * w).sum(1), x, torch.zeros_like(x), method="torch")
    >>> a.tolist()
    [[1.0, -2.0, 3.0]]
    """
    if method not in ("auto", "captum", "torch"):
        raise ConfigError(f"method={method!r} is not known; use 'auto', 'captum' or 'torch'.")
    if method in ("auto", "captum"):
        try:
            from captum.attr import IntegratedGradients
        except ImportError:
            if method == "captum":
                raise ConfigError("method='captum' needs Captum: pip install 'lucidae[explain]'.") from None
        else:
            ig = IntegratedGradients(fn)
            attr = ig.attribute(x, baselines=baseline, n_steps=n_steps, internal_batch_size=len(x) * 8)
            return attr.detach(), "captum"
    alphas = (torch.arange(n_steps, dtype=x.dtype, device=x.device) + 0.5) / n_steps  # (step,) midpoints
    total = torch.zeros_like(x)
    for a in alphas:
        point = (baseline + a * (x - baseline)).detach().requires_grad_(True)  # (batch, features)
        (grad,) = torch.autograd.grad(fn(point).sum(), point)
        total += grad
    return ((x - baseline) * total / n_steps).detach(), "torch"


def _attribute(est: Any, X: Any, fn: Any, target: str, baseline: Any, n_steps: int, method: str) -> Attribution:
    check_is_fitted(est, "module_")
    Xs = est.scale_inputs(X)  # (n, features) scaled, float32
    base = _baseline(est, Xs, baseline)
    device = _device(est)
    x = torch.from_numpy(np.ascontiguousarray(Xs, dtype=np.float32)).to(device)
    b = torch.from_numpy(np.ascontiguousarray(base, dtype=np.float32)).to(device)
    est.module_.eval()
    attr, used = integrated_gradients(fn, x, b, n_steps=n_steps, method=method)
    with torch.no_grad():
        out, base_out = fn(x), fn(b)  # (n,)
    attr = attr.double().cpu().numpy()
    out, base_out = out.double().cpu().numpy(), base_out.double().cpu().numpy()
    names = list(getattr(est, "feature_names_", None) or [])
    return Attribution(target, attr, out, base_out, attr.sum(1) - (out - base_out), used, n_steps, names)


def attribute_latent(
    est: Any,
    X: Any,
    latent: int,
    *,
    baseline: Any = "zeros",
    n_steps: int = 64,
    method: str = "auto",
) -> Attribution:
    """Which input features drive latent ``latent`` on each sample of ``X``.

    Integrated gradients of ``encode(x)[latent]`` (see :func:`integrated_gradients`),
    computed in the model's scaled input space, where the encoder's gradients live;
    ``baseline`` is an input with "nothing present": ``"zeros"`` in the scaled space
    (black for images in [0, 1], the training mean for standardised data) or an
    array in original units (one row, or one per sample).

    Examples
    --------
    >>> from lucidae import AutoEncoder
    >>> from lucidae.datasets import load_digits
    >>> X = load_digits().X[:200]
    >>> ae = AutoEncoder(hidden_dims=(16,), latent_dim=2, epochs=2, verbose=0, random_state=0).fit(X)
    >>> a = attribute_latent(ae, X[:3], 0, n_steps=32, method="torch")
    >>> a.attributions.shape, bool(abs(a.delta).max() < 1e-2)
    ((3, 64), True)
    """
    latent = _check_latent(est, latent)
    return _attribute(est, X, lambda t: est.module_.encode(t)[:, latent], f"latent {latent}", baseline, n_steps, method)


def attribute_error(
    est: Any,
    X: Any,
    *,
    baseline: Any = "zeros",
    n_steps: int = 64,
    method: str = "auto",
) -> Attribution:
    """Which input features drive each sample's reconstruction error.

    Integrated gradients of the per-sample mean squared error
    ``mean_j (recon(x)_j - x_j)^2`` in the scaled space (what ``score_samples`` reports,
    negated). For anomaly detection: the features with the largest attributions are
    the ones that make a sample hard to reconstruct.

    Examples
    --------
    >>> from lucidae import AutoEncoder
    >>> from lucidae.datasets import load_digits
    >>> X = load_digits().X[:200]
    >>> ae = AutoEncoder(hidden_dims=(16,), latent_dim=2, epochs=2, verbose=0, random_state=0).fit(X)
    >>> a = attribute_error(ae, X[:2], n_steps=32, method="torch")
    >>> a.target, a.attributions.shape
    ('reconstruction error', (2, 64))
    """

    def error(t: torch.Tensor) -> torch.Tensor:
        return (est.module_(t).recon - t).pow(2).mean(dim=1)  # (batch,)

    return _attribute(est, X, error, "reconstruction error", baseline, n_steps, method)


# ---------------------------------------------------------------------- latent map
@dataclass
class LatentMap(_Record):
    """A 2-D picture of the latent space."""

    coords: np.ndarray
    """``(n_samples, 2)`` map coordinates."""
    indices: np.ndarray
    """Row indices into ``X`` of the mapped samples (a subsample when ``X`` is large)."""
    color: np.ndarray | None
    """The label or factor value of each mapped sample, when given."""
    method: str
    """``"pca"`` or ``"tsne"``."""
    explained_variance_ratio: list[float]
    """For PCA: the share of the codes' variance each axis shows."""


def latent_map(
    est: Any,
    X: Any,
    *,
    color: Any = None,
    method: str = "pca",
    max_samples: int = 5000,
    random_state: int = 0,
) -> LatentMap:
    """Project the codes of ``X`` to 2-D (PCA, or t-SNE) to colour by a label or factor.

    PCA (the default) is linear and fast, so distances along its axes mean something;
    t-SNE shows clusters better but its distances and cluster sizes do not (and takes
    seconds to minutes). At most ``max_samples`` samples, drawn with ``random_state``.

    Examples
    --------
    >>> from lucidae import AutoEncoder
    >>> from lucidae.datasets import load_digits
    >>> ds = load_digits()
    >>> ae = AutoEncoder(hidden_dims=(), latent_dim=4, epochs=2, verbose=0, random_state=0).fit(ds.X)
    >>> m = latent_map(ae, ds.X, color=ds.y, max_samples=500)
    >>> m.coords.shape, m.color.shape
    ((500, 2), (500,))
    """
    check_is_fitted(est, "module_")
    if method not in ("pca", "tsne"):
        raise ConfigError(f"method={method!r} is not known; use 'pca' or 'tsne'.")
    Xa = np.asarray(X)
    n = len(Xa)
    colors = None if color is None else np.asarray(color)
    if colors is not None and len(colors) != n:
        raise DataError(f"color has {len(colors)} entries but X has {n} samples; pass one value per sample.")
    idx = np.arange(n)
    if n > max_samples:
        idx = np.sort(np.random.default_rng(random_state).choice(n, max_samples, replace=False))
    Z = _codes(est, Xa[idx])
    Zc = Z - Z.mean(0)
    if method == "pca":
        _, s, vt = np.linalg.svd(Zc, full_matrices=False)
        coords = Zc @ vt[:2].T  # (n, <=2)
        var = s**2
        ratio = (var[:2] / var.sum()).tolist() if var.sum() > 0 else [0.0] * min(2, len(s))
    else:
        from sklearn.manifold import TSNE

        perplexity = float(min(30, max(2, (len(Z) - 1) // 3)))
        coords = TSNE(2, perplexity=perplexity, random_state=random_state, init="pca").fit_transform(Z)
        ratio = []
    if coords.shape[1] < 2:  # a one-latent code maps onto a line
        coords = np.c_[coords, np.zeros(len(coords))]
        ratio = ratio + [0.0]
    return LatentMap(coords, idx, None if colors is None else colors[idx], method, ratio)


__all__ = [
    "Attribution",
    "LatentMap",
    "LatentReads",
    "LatentWrite",
    "Traversal",
    "attribute_error",
    "attribute_latent",
    "decoder_directions",
    "integrated_gradients",
    "latent_map",
    "latent_reads",
    "latent_writes",
    "rank_latents",
    "traverse",
]
