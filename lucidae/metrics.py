"""Fidelity and interpretability metrics, each with its formula and reference.

Conventions
-----------
* ``codes`` are latent codes ``(n_samples, n_latents)``; ``factors`` are known generative
  factors or labels ``(n_samples, n_factors)`` (a 1-D array is one factor).
* Disentanglement metrics that need probabilities (MIG, SAP's discrete variant,
  modularity) discretise each continuous column into ``n_bins`` **equal-width**
  histogram bins over its observed range, as ``_histogram_discretize`` in
  disentanglement_lib (Locatello et al. 2019) does; the default of 20 bins is theirs.
  A factor with at most ``n_bins`` distinct values is used as it is (its values become
  category indices), so discrete factors such as shape or a class label are never merged.
* Mutual information and entropies are in nats.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lucidae.errors import DataError

N_BINS = 20
"""Default number of equal-width bins when a continuous column is discretised (disentanglement_lib's)."""


def fvu(X, X_hat) -> float:
    """Fraction of variance unexplained, about the data mean (never about zero).

    ``FVU = sum ||x - x_hat||^2 / sum ||x - mean(x)||^2`` over all samples and features;
    0 is a perfect reconstruction, 1 is no better than predicting the mean sample.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0.0, 1.0], [2.0, 3.0]])
    >>> fvu(X, X)
    0.0
    >>> fvu(X, np.repeat(X.mean(0, keepdims=True), 2, 0))
    1.0
    """
    X = np.asarray(X, dtype=np.float64)
    X_hat = np.asarray(X_hat, dtype=np.float64)
    num = float(((X - X_hat) ** 2).sum())
    den = float(((X - X.mean(axis=0)) ** 2).sum())
    return num / den if den > 0 else (0.0 if num == 0 else float("inf"))


# ---------------------------------------------------------------------- input checks
def _as_2d(name: str, values: Any) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise DataError(f"{name} must be a 2-D array (n_samples, n_columns), got shape {arr.shape}.")
    if arr.dtype.kind not in "biuf":
        raise DataError(f"{name} must be numeric, got dtype {arr.dtype}. Encode labels as integers first.")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise DataError(f"{name} contains NaN or infinite values; remove them before measuring.")
    return arr


def _pair(codes: Any, factors: Any) -> tuple[np.ndarray, np.ndarray]:
    Z = _as_2d("codes", codes)
    V = _as_2d("factors", factors)
    if len(Z) != len(V):
        raise DataError(f"codes has {len(Z)} samples but factors has {len(V)}; pass one row of factors per code.")
    if len(Z) < 2:
        raise DataError(f"Need at least 2 samples to measure, got {len(Z)}.")
    return Z, V


# ---------------------------------------------------------------------- discretisation and information
def discretize(values: Any, n_bins: int = N_BINS) -> np.ndarray:
    """Map each column to integer bin indices: equal-width histogram bins, or categories.

    A column with at most ``n_bins`` distinct values keeps them as categories (index of
    the sorted distinct value); any other column is cut into ``n_bins`` equal-width bins
    over its observed ``[min, max]`` (``np.histogram`` edges, as disentanglement_lib).

    Parameters
    ----------
    values : array-like of shape (n_samples, n_columns) or (n_samples,)
    n_bins : int, default=20

    Returns
    -------
    ndarray of int64, shape (n_samples, n_columns)

    Examples
    --------
    >>> discretize([0.0, 0.1, 0.9, 1.0], n_bins=2).ravel().tolist()
    [0, 0, 1, 1]
    >>> discretize([5, 7, 5], n_bins=2).ravel().tolist()
    [0, 1, 0]
    """
    if not isinstance(n_bins, (int, np.integer)) or n_bins < 2:
        raise DataError(f"n_bins={n_bins!r} is invalid: expected an integer >= 2.")
    V = _as_2d("values", values)
    out = np.empty(V.shape, dtype=np.int64)
    for j in range(V.shape[1]):
        col = V[:, j]
        uniq, inverse = np.unique(col, return_inverse=True)
        if len(uniq) <= n_bins:
            out[:, j] = inverse.ravel()
        else:
            edges = np.histogram_bin_edges(col.astype(np.float64), bins=n_bins)
            # digitize against the inner edges puts the maximum in the last bin, not past it
            out[:, j] = np.digitize(col, edges[1:-1])
    return out


def entropy(labels: Any) -> np.ndarray:
    """Entropy ``H(v) = -sum_k p_k log p_k`` (nats) of each column of integer labels.

    Examples
    --------
    >>> round(float(entropy([0, 1, 0, 1])[0]), 4)  # log 2
    0.6931
    >>> float(entropy([3, 3, 3])[0])
    0.0
    """
    L = _as_2d("labels", labels)
    out = np.empty(L.shape[1])
    for j in range(L.shape[1]):
        _, counts = np.unique(L[:, j], return_counts=True)
        p = counts / counts.sum()
        out[j] = float(-(p * np.log(p)).sum()) + 0.0  # + 0.0 turns -0.0 into 0.0
    return out


def mutual_information(codes: Any, factors: Any, *, n_bins: int = N_BINS) -> np.ndarray:
    """Mutual information ``I(z_i; v_k)`` (nats) between every latent and every factor.

    Both sides are discretised with :func:`discretize`; then
    ``I(z; v) = sum_{a,b} p(a, b) log(p(a, b) / (p(a) p(b)))`` from the joint histogram.

    Parameters
    ----------
    codes : array-like of shape (n_samples, n_latents)
    factors : array-like of shape (n_samples, n_factors)
    n_bins : int, default=20

    Returns
    -------
    ndarray of shape (n_latents, n_factors)

    Examples
    --------
    >>> import numpy as np
    >>> v = np.array([0, 1, 0, 1])
    >>> mi = mutual_information(np.c_[v, [0, 0, 1, 1]], v)
    >>> np.round(mi, 4).ravel().tolist()  # the first latent copies v: I = H(v) = log 2
    [0.6931, 0.0]
    """
    Z, V = _pair(codes, factors)
    Zd, Vd = discretize(Z, n_bins), discretize(V, n_bins)
    n = len(Zd)
    out = np.zeros((Zd.shape[1], Vd.shape[1]))
    for i in range(Zd.shape[1]):
        for k in range(Vd.shape[1]):
            a, b = Zd[:, i], Vd[:, k]
            joint = np.zeros((a.max() + 1, b.max() + 1))
            np.add.at(joint, (a, b), 1.0)
            joint /= n
            pa, pb = joint.sum(1, keepdims=True), joint.sum(0, keepdims=True)
            nz = joint > 0
            out[i, k] = float((joint[nz] * np.log(joint[nz] / (pa @ pb)[nz])).sum())
    return np.maximum(out, 0.0)


# ---------------------------------------------------------------------- disentanglement
def mig(codes: Any, factors: Any, *, n_bins: int = N_BINS) -> float:
    """Mutual Information Gap (Chen et al. 2018, "Isolating Sources of Disentanglement in VAEs").

    ``MIG = 1/K sum_k (I(z_{j(k)}; v_k) - I(z_{l(k)}; v_k)) / H(v_k)``, where ``j(k)`` and
    ``l(k)`` are the latents with the largest and second-largest mutual information with
    factor ``v_k``. 1: each factor is captured by exactly one latent; 0: no latent stands
    out. Codes and continuous factors are discretised into ``n_bins`` equal-width bins
    (see :func:`discretize`), as disentanglement_lib does. Factors that never vary
    (``H(v_k) = 0``) carry no information and are left out of the mean.

    Parameters
    ----------
    codes : array-like of shape (n_samples, n_latents)
        Latent codes (for a VAE, the means).
    factors : array-like of shape (n_samples, n_factors)
        Known generative factors, one column each.
    n_bins : int, default=20
        Bins per continuous column.

    Returns
    -------
    float in [0, 1]

    Raises
    ------
    DataError
        When shapes disagree, no factor varies, or there is only one latent.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> v = rng.integers(0, 4, size=(2000, 2))
    >>> round(mig(v, v), 2)                       # code equal to the factors
    1.0
    >>> mig(rng.normal(size=(2000, 2)), v) < 0.05  # random code
    True
    """
    Z, V = _pair(codes, factors)
    if Z.shape[1] < 2:
        raise DataError("MIG needs at least 2 latents (it is the gap between the best two).")
    mi = mutual_information(Z, V, n_bins=n_bins)  # (latent, factor)
    h = entropy(discretize(V, n_bins))  # (factor,)
    keep = h > 0
    if not keep.any():
        raise DataError("No factor varies over these samples, so MIG is undefined. Pass samples that vary the factors.")
    top = np.sort(mi[:, keep], axis=0)[::-1]  # (latent, factor) descending
    return float(np.mean((top[0] - top[1]) / h[keep]))
