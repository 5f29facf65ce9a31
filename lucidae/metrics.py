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

import warnings
from typing import Any

import numpy as np

from lucidae.errors import ConfigError, DataError
from lucidae.scaling import feature_stats

N_BINS = 20
"""Default number of equal-width bins when a continuous column is discretised (disentanglement_lib's)."""

COLLAPSE_VARIANCE = 0.01
"""A VAE latent whose posterior mean varies less than this over the data has collapsed to the prior
(Burda et al. 2016's threshold for "active units"; the prior's variance is 1)."""


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
    (see :func:`discretize`), as disentanglement_lib does. disentanglement_lib leaves
    the ground-truth factors unbinned; here a factor with more than ``n_bins`` values
    (dSprites' 32 x positions) is binned by the same rule, so a code equal to the factors
    scores 1 rather than ``log(n_bins) / log(32)``. Factors that never vary
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


def _sorted_gap(scores: np.ndarray) -> np.ndarray:
    """Per column, the difference between the largest and second-largest entry."""
    top = np.sort(scores, axis=0)[::-1]  # (latent, factor) descending
    return top[0] - top[1]


def _is_discrete(V: np.ndarray, n_bins: int) -> np.ndarray:
    return np.array([len(np.unique(V[:, k])) <= n_bins for k in range(V.shape[1])])


def _split(n: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(seed).permutation(n)
    n_test = max(1, int(round(n * test_fraction)))
    return order[n_test:], order[:n_test]


def _bin_majority_accuracy(z: np.ndarray, v: np.ndarray, train: np.ndarray, test: np.ndarray, n_bins: int) -> float:
    """Held-out accuracy of predicting ``v`` by the majority class of ``z``'s equal-width bin."""
    edges = np.histogram_bin_edges(z[train].astype(np.float64), bins=n_bins)
    zb = np.clip(np.digitize(z, edges[1:-1]), 0, n_bins - 1)  # (n,) bin of each sample
    classes, vi = np.unique(v, return_inverse=True)
    counts = np.zeros((n_bins, len(classes)))
    np.add.at(counts, (zb[train], vi[train]), 1.0)
    # an empty bin predicts the overall majority class
    overall = np.argmax(counts.sum(0))
    predict = np.where(counts.sum(1) > 0, counts.argmax(1), overall)  # (bin,)
    return float(np.mean(predict[zb[test]] == vi[test]))


def sap(
    codes: Any,
    factors: Any,
    *,
    discrete: Any = None,
    n_bins: int = N_BINS,
    test_fraction: float = 0.3,
    random_state: int = 0,
) -> float:
    """Separated Attribute Predictability (Kumar et al. 2018, "Variational Inference of
    Disentangled Latent Concepts from Unlabeled Observations").

    A score matrix ``S[i, k]`` says how well latent ``z_i`` alone predicts factor ``v_k``;
    ``SAP = 1/K sum_k (S[j(k), k] - S[l(k), k])``, the mean gap between the best and
    second-best latent per factor. For a continuous factor ``S`` is the R^2 of a linear
    regression of ``v_k`` on ``z_i``, i.e. ``corr(z_i, v_k)^2`` (as in the paper). For a
    discrete factor ``S`` is the held-out accuracy of a one-latent classifier; here that
    classifier predicts the majority class of the latent's equal-width bin (``n_bins``
    bins fitted on a training split), where disentanglement_lib uses a linear SVM: a
    single threshold cannot pick out a middle class (e.g. the middle shape), bins can.

    Parameters
    ----------
    codes : array-like of shape (n_samples, n_latents)
    factors : array-like of shape (n_samples, n_factors)
    discrete : array-like of bool of shape (n_factors,), optional
        Which factors are categorical. Default: those with at most ``n_bins`` distinct values.
    n_bins : int, default=20
    test_fraction : float, default=0.3
        Share of samples held out to score the classifiers.
    random_state : int, default=0
        Seed of the train/test split.

    Returns
    -------
    float in [0, 1]

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> v = np.c_[rng.integers(0, 3, 1000), rng.random(1000)]
    >>> round(sap(v, v), 1)  # the discrete factor's runner-up still guesses 1/3 right
    0.8
    >>> sap(rng.random((1000, 2)), v) < 0.05
    True
    """
    Z, V = _pair(codes, factors)
    if Z.shape[1] < 2:
        raise DataError("SAP needs at least 2 latents (it is the gap between the best two).")
    disc = _is_discrete(V, n_bins) if discrete is None else np.asarray(discrete, dtype=bool).reshape(-1)
    if disc.shape != (V.shape[1],):
        raise DataError(f"discrete has {disc.size} entries but there are {V.shape[1]} factors.")
    train, test = _split(len(Z), test_fraction, random_state)
    S = np.zeros((Z.shape[1], V.shape[1]))
    for k in range(V.shape[1]):
        v = V[:, k]
        for i in range(Z.shape[1]):
            z = Z[:, i].astype(np.float64)
            if disc[k]:
                S[i, k] = _bin_majority_accuracy(z, v, train, test, n_bins)
            elif z.std() > 0 and v.std() > 0:
                S[i, k] = float(np.corrcoef(z, v.astype(np.float64))[0, 1] ** 2)
    return float(np.mean(_sorted_gap(S)))


def dci_from_importance(importance: Any) -> tuple[float, float]:
    """Disentanglement and completeness from an importance matrix (Eastwood & Williams 2018).

    ``R[i, j] >= 0`` is the importance of latent ``i`` for predicting factor ``j``.
    Disentanglement: ``P_ij = R_ij / sum_k R_ik``, ``D_i = 1 - H_K(P_i.)`` (entropy with
    log base ``K`` = number of factors), ``D = sum_i rho_i D_i`` with
    ``rho_i = sum_j R_ij / sum R``. Completeness: ``C_j = 1 - H_L(P~_.j)`` with
    ``P~_ij = R_ij / sum_i R_ij`` and log base ``L`` = number of latents, averaged with
    weights ``sum_i R_ij / sum R`` as disentanglement_lib does. Latents (factors) with zero
    total importance get zero weight. With one factor (one latent), ``D`` (``C``) is 1.

    Returns
    -------
    (disentanglement, completeness) : tuple of float in [0, 1]

    Examples
    --------
    >>> dci_from_importance([[1.0, 0.0], [0.0, 2.0]])        # one latent per factor
    (1.0, 1.0)
    >>> dci_from_importance([[1.0, 1.0], [0.0, 0.0]])        # one latent holds both factors
    (0.0, 1.0)
    """
    R = np.abs(_as_2d("importance", importance).astype(np.float64))
    total = R.sum()
    if total <= 0:
        return 0.0, 0.0

    def one_minus_entropy(P: np.ndarray, base: int) -> np.ndarray:
        # rows of P sum to 1 (or are all zero); 0 log 0 = 0
        if base < 2:
            return np.ones(len(P))
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(P > 0, P * np.log(P), 0.0)
        return 1.0 + terms.sum(1) / np.log(base)

    row, col = R.sum(1), R.sum(0)
    P = np.divide(R, row[:, None], out=np.zeros_like(R), where=row[:, None] > 0)
    d = float((one_minus_entropy(P, R.shape[1]) * row / total).sum())
    Pt = np.divide(R, col[None, :], out=np.zeros_like(R), where=col[None, :] > 0).T
    c = float((one_minus_entropy(Pt, R.shape[0]) * col / total).sum())
    return min(max(d, 0.0), 1.0) + 0.0, min(max(c, 0.0), 1.0) + 0.0


_LASSO_ALPHAS = np.logspace(-4, 0, 12)
"""Penalties that :func:`dci`'s Lasso chooses from by 3-fold cross-validation (standardised data)."""


class DCI(dict):
    """Result of :func:`dci`: ``disentanglement``, ``completeness``, ``informativeness``
    (mean held-out score), ``informativeness_per_factor`` and ``importance`` (latents x factors)."""


def dci(
    codes: Any,
    factors: Any,
    *,
    regressor: str = "lasso",
    test_fraction: float = 0.3,
    random_state: int = 0,
) -> DCI:
    """Disentanglement, Completeness and Informativeness (Eastwood & Williams 2018,
    "A Framework for the Quantitative Evaluation of Disentangled Representations").

    One predictor per factor maps the code to that factor; its feature importances form
    ``R`` (latents x factors), scored by :func:`dci_from_importance`. Informativeness is
    the predictor's held-out score.

    ``regressor="lasso"`` (the paper's first choice): a cross-validated Lasso on
    standardised codes and a standardised factor; importance ``|coefficient|``;
    informativeness = held-out R^2 (clipped at 0). The penalty is picked from
    12 values in ``[1e-4, 1]`` by 3-fold cross-validation on the training split. ``regressor="gbt"``: gradient-boosted
    trees classifying the discretised factor (disentanglement_lib's choice; slower);
    importance = impurity importances; informativeness = held-out accuracy.

    Parameters
    ----------
    codes : array-like of shape (n_samples, n_latents)
    factors : array-like of shape (n_samples, n_factors)
    regressor : {"lasso", "gbt"}, default="lasso"
    test_fraction : float, default=0.3
    random_state : int, default=0

    Returns
    -------
    DCI
        A dict with the keys listed on :class:`DCI`.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> v = rng.random((500, 2))
    >>> r = dci(v[:, ::-1], v)
    >>> round(r["disentanglement"], 2), round(r["completeness"], 2), round(r["informativeness"], 2)
    (1.0, 1.0, 1.0)
    """
    Z, V = _pair(codes, factors)
    if regressor not in ("lasso", "gbt"):
        raise DataError(f"regressor={regressor!r} is not known; use 'lasso' or 'gbt'.")
    train, test = _split(len(Z), test_fraction, random_state)
    Zs = (Z - Z[train].mean(0)) / np.where(Z[train].std(0) > 0, Z[train].std(0), 1.0)
    R = np.zeros((Z.shape[1], V.shape[1]))
    info = np.zeros(V.shape[1])
    for k in range(V.shape[1]):
        v = V[:, k].astype(np.float64)
        if np.unique(v[train]).size < 2:
            continue  # a factor constant on the training split carries nothing to predict
        if regressor == "lasso":
            from sklearn.exceptions import ConvergenceWarning
            from sklearn.linear_model import LassoCV

            vs = (v - v[train].mean()) / v[train].std()
            with warnings.catch_warnings():
                # the smallest penalties on collinear codes stop short of the tolerance; cross-validation
                # discards them anyway, and the held-out R^2 reported as informativeness shows any harm
                warnings.simplefilter("ignore", ConvergenceWarning)
                model = LassoCV(alphas=_LASSO_ALPHAS, cv=3, random_state=random_state).fit(Zs[train], vs[train])
            R[:, k] = np.abs(model.coef_)
            info[k] = max(0.0, float(model.score(Zs[test], vs[test])))
        else:
            from sklearn.ensemble import GradientBoostingClassifier

            vd = discretize(v)[:, 0]
            model = GradientBoostingClassifier(random_state=random_state).fit(Zs[train], vd[train])
            R[:, k] = model.feature_importances_
            info[k] = float(model.score(Zs[test], vd[test]))
    d, c = dci_from_importance(R)
    return DCI(
        disentanglement=d,
        completeness=c,
        informativeness=float(info.mean()),
        informativeness_per_factor=info.tolist(),
        importance=R,
    )


def modularity(codes: Any, factors: Any, *, n_bins: int = N_BINS) -> float:
    """Modularity (Ridgeway & Mozer 2018, "Learning Deep Disentangled Embeddings With the F-Statistic Loss").

    With ``m_ik = I(z_i; v_k)`` (:func:`mutual_information`, same discretisation as MIG)
    and ``theta_i = max_k m_ik``, a latent's deviation from the ideal of depending on one
    factor only is ``delta_i = sum_{k != k*} m_ik^2 / (theta_i^2 (K - 1))`` and its
    modularity ``1 - delta_i``; the score is the mean over latents. Latents that share no
    information with any factor (``theta_i = 0``, e.g. dead ones) are left out; 0.0 when
    none is left. Note that a random code can score high: modularity does not ask the
    latents to be informative, only each to be about one factor (pair it with MIG or DCI).

    Returns
    -------
    float in [0, 1]

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> v = rng.integers(0, 4, size=(2000, 2))
    >>> round(modularity(v, v), 2)
    1.0
    >>> round(modularity(np.c_[v.sum(1), v.sum(1)], v), 2)  # each latent mixes both
    0.0
    """
    Z, V = _pair(codes, factors)
    mi = mutual_information(Z, V, n_bins=n_bins)  # (latent, factor)
    if V.shape[1] < 2:
        return 1.0  # one factor: every latent is about that factor alone
    theta = mi.max(1)
    keep = theta > 0
    if not keep.any():
        return 0.0
    mi, theta = mi[keep], theta[keep]
    rest = (mi**2).sum(1) - theta**2  # sum over the non-maximal factors
    delta = rest / (theta**2 * (V.shape[1] - 1))
    return float(np.mean(1.0 - delta))


# ---------------------------------------------------------------------- streaming helpers
def _numpy(batch: Any) -> np.ndarray:
    if hasattr(batch, "detach"):  # a torch tensor
        batch = batch.detach().cpu().numpy()
    return np.asarray(batch, dtype=np.float64)


def _is_single_array(obj: Any) -> bool:
    return hasattr(obj, "shape") and hasattr(obj, "dtype")


def _batches(obj: Any):
    """Yield 2-D float64 batches from one array(-like) or from an iterable of batches."""
    if _is_single_array(obj) or (isinstance(obj, list) and obj and not hasattr(obj[0], "shape")):
        arr = _numpy(obj)
        yield arr[:, None] if arr.ndim == 1 else arr
        return
    for batch in obj:
        arr = _numpy(batch)
        # inside an iterable a 1-D item is one sample (a row), not one column
        yield arr[None, :] if arr.ndim == 1 else arr


# ---------------------------------------------------------------------- fidelity
class FidelityAccumulator:
    """Reconstruction fidelity over batches, for data that does not fit in memory.

    Keeps the squared-error sum and, per feature, the running mean and sum of squared
    deviations (Chan et al. 1979's pairwise update, stable where ``sum x^2 - n mean^2``
    cancels catastrophically), so FVU is about the data mean exactly as
    :func:`fvu` computes it on the whole array at once.

    * ``mse = sum (x - x_hat)^2 / (n d)``
    * ``fvu = sum (x - x_hat)^2 / sum (x - mean(x))^2`` (the mean over all samples, per feature)
    * ``explained_variance = 1 - fvu``
    * ``psnr = 10 log10(data_range^2 / mse)`` in dB, for data in ``[0, data_range]``.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.arange(12.0).reshape(6, 2)
    >>> acc = FidelityAccumulator()
    >>> for i in range(0, 6, 4):
    ...     _ = acc.update(X[i:i + 4], X[i:i + 4] + 0.5)
    >>> acc.mse
    0.25
    >>> round(acc.fvu, 6) == round(fvu(X, X + 0.5), 6)
    True
    """

    def __init__(self) -> None:
        self.n = 0
        self.sse = 0.0
        self._mean: np.ndarray | None = None  # (features,)
        self._m2: np.ndarray | None = None  # (features,)

    def update(self, x: Any, x_hat: Any) -> FidelityAccumulator:
        """Add one batch of inputs ``x`` and their reconstructions ``x_hat`` (same shape)."""
        x, x_hat = _numpy(x), _numpy(x_hat)
        if x.ndim == 1:
            x, x_hat = x[:, None], x_hat[:, None]
        if x.shape != x_hat.shape:
            raise DataError(f"x has shape {x.shape} but x_hat has shape {x_hat.shape}; they must match.")
        if self._mean is not None and x.shape[1] != self._mean.shape[0]:
            raise DataError(f"Batch has {x.shape[1]} features, earlier batches had {self._mean.shape[0]}.")
        if len(x) == 0:
            return self
        self.sse += float(((x - x_hat) ** 2).sum())
        nb, mb = len(x), x.mean(0)
        m2b = ((x - mb) ** 2).sum(0)
        if self._mean is None:
            self._mean, self._m2 = mb, m2b
        else:
            delta = mb - self._mean
            total = self.n + nb
            self._mean = self._mean + delta * nb / total
            self._m2 = self._m2 + m2b + delta**2 * self.n * nb / total
        self.n += nb
        return self

    def _need(self) -> None:
        if self.n == 0:
            raise DataError("No samples were added; call update(x, x_hat) with at least one batch first.")

    @property
    def mse(self) -> float:
        """Mean squared error per value."""
        self._need()
        return self.sse / (self.n * len(self._mean))

    @property
    def fvu(self) -> float:
        """Fraction of variance unexplained, about the data mean."""
        self._need()
        den = float(self._m2.sum())
        return self.sse / den if den > 0 else (0.0 if self.sse == 0 else float("inf"))

    @property
    def explained_variance(self) -> float:
        """``1 - fvu``: the share of the data's variance the reconstruction keeps."""
        return 1.0 - self.fvu

    def psnr(self, data_range: float = 1.0) -> float:
        """Peak signal-to-noise ratio in dB for data in ``[0, data_range]`` (inf when exact)."""
        mse = self.mse
        return float("inf") if mse == 0 else float(10 * np.log10(data_range**2 / mse))

    def result(self, data_range: float | None = 1.0) -> dict[str, float]:
        """All values as a dict; ``psnr`` only when ``data_range`` is given."""
        out = {"n_samples": self.n, "mse": self.mse, "fvu": self.fvu, "explained_variance": self.explained_variance}
        if data_range is not None:
            out["psnr"] = self.psnr(data_range)
        return out


def fidelity(X: Any, X_hat: Any = None, *, data_range: float | None = 1.0) -> dict[str, float]:
    """MSE, FVU, explained variance and PSNR of a reconstruction, in one pass.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features), or iterable of ``(x, x_hat)`` batches
        The data; when ``X_hat`` is None, an iterable (e.g. a generator) of batch pairs,
        so data larger than memory can be measured.
    X_hat : array-like, optional
        The reconstruction of ``X``.
    data_range : float or None, default=1.0
        Peak-to-peak range for PSNR (1.0 for images in [0, 1]); None skips PSNR.

    Returns
    -------
    dict
        ``n_samples``, ``mse``, ``fvu``, ``explained_variance`` and ``psnr``; see
        :class:`FidelityAccumulator` for the formulas.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0.0, 0.2], [1.0, 0.8]])
    >>> r = fidelity(X, X + 0.1)
    >>> round(r["mse"], 4), round(r["psnr"], 1)
    (0.01, 20.0)
    >>> fidelity(((X[i:i+1], X[i:i+1]) for i in range(2)))["fvu"]
    0.0
    """
    acc = FidelityAccumulator()
    if X_hat is None:
        for x, x_hat in X:
            acc.update(x, x_hat)
    else:
        acc.update(X, X_hat)
    return acc.result(data_range)


def mse(X: Any, X_hat: Any) -> float:
    """Mean squared error per value, ``sum (x - x_hat)^2 / (n d)``.

    Examples
    --------
    >>> mse([[0.0, 1.0]], [[1.0, 1.0]])
    0.5
    """
    return FidelityAccumulator().update(X, X_hat).mse


def explained_variance(X: Any, X_hat: Any) -> float:
    """``1 - FVU`` (about the data mean): 1 is exact, 0 is as good as the mean sample.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0.0], [2.0]])
    >>> explained_variance(X, np.array([[0.5], [1.5]]))
    0.75
    """
    return 1.0 - fvu(X, X_hat)


def psnr(X: Any, X_hat: Any, *, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio ``10 log10(data_range^2 / MSE)`` in dB (Gonzalez & Woods).

    Meaningful for data in ``[0, data_range]``, such as images scaled to [0, 1].

    Examples
    --------
    >>> psnr([[0.0, 1.0]], [[0.1, 0.9]])
    20.0
    """
    return round(FidelityAccumulator().update(X, X_hat).psnr(data_range), 10)


# ---------------------------------------------------------------------- sparsity
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


# ---------------------------------------------------------------------- structure
def principal_angles(A: Any, B: Any, *, degrees: bool = True) -> np.ndarray:
    """Principal angles between the column spaces of ``A`` (d, k) and ``B`` (d, m) (Björck & Golub 1973).

    With orthonormal bases ``Q_A``, ``Q_B``, the cosines of the angles are the singular
    values of ``Q_A^T Q_B`` (computed by ``scipy.linalg.subspace_angles``); returned
    ascending, ``min(k, m)`` of them. 0 means a shared
    direction, 90 degrees an orthogonal one.

    Examples
    --------
    >>> import numpy as np
    >>> principal_angles(np.eye(3)[:, :2], np.array([[1.0], [1.0], [0.0]])).round(6).tolist()
    [0.0]
    >>> principal_angles(np.eye(3)[:, :1], np.eye(3)[:, 1:2]).round(6).tolist()
    [90.0]
    """
    A, B = _numpy(A), _numpy(B)
    A, B = (A[:, None] if A.ndim == 1 else A), (B[:, None] if B.ndim == 1 else B)
    if A.shape[0] != B.shape[0]:
        raise DataError(f"A has {A.shape[0]} rows and B has {B.shape[0]}; both need one row per feature.")
    from scipy.linalg import subspace_angles

    # scipy switches to sines for small angles, where arccos of a cosine near 1 loses digits
    angles = np.sort(subspace_angles(A, B))
    return np.degrees(angles) if degrees else angles


def pca_angles(directions: Any, X: Any, *, n_components: int | None = None) -> np.ndarray:
    """Principal angles (degrees) between a model's latent directions and the top PCA subspace of ``X``.

    A linear autoencoder trained to the optimum spans the same subspace as PCA with as
    many components (Baldi & Hornik 1989), so all angles near 0 say "this model found
    PCA's subspace"; large angles say it keeps directions PCA would not.

    Parameters
    ----------
    directions : array-like of shape (n_features, n_latents)
        One direction per latent in the input space, e.g. ``explain.decoder_directions``.
    X : array-like of shape (n_samples, n_features)
        Data in the same space as the directions.
    n_components : int, optional
        Number of principal components; default ``n_latents``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(500, 4)) * [5.0, 3.0, 0.1, 0.1]
    >>> bool(pca_angles(np.eye(4)[:, :2], X).max() < 2)
    True
    """
    D = _numpy(directions)
    Xa = _numpy(X)
    k = D.shape[1] if n_components is None else n_components
    Xc = Xa - Xa.mean(0)
    _, _, vt = np.linalg.svd(Xc, full_matrices=False)
    return principal_angles(D, vt[:k].T)


def latent_correlation(codes: Any) -> np.ndarray:
    """Pearson correlation matrix of the latents ``(n_latents, n_latents)``, streamed over batches.

    ``corr_ij = cov(z_i, z_j) / (std(z_i) std(z_j))``; a latent that never varies gets 0
    off the diagonal and 1 on it (instead of NaN). Strong off-diagonal values mean
    latents that say the same thing.

    Examples
    --------
    >>> latent_correlation([[0.0, 1.0, 5.0], [1.0, 0.0, 5.0], [2.0, -1.0, 5.0]]).round(6).tolist()
    [[1.0, -1.0, 0.0], [-1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    """
    n, shift, s1, s2 = 0, None, None, None
    for z in _batches(codes):
        if shift is None:
            # shifting by the first batch's mean keeps the raw sums from cancelling
            shift = z.mean(0)
            s1, s2 = np.zeros_like(shift), np.zeros((len(shift), len(shift)))
        zc = z - shift
        s1 += zc.sum(0)
        s2 += zc.T @ zc
        n += len(z)
    if not n:
        raise DataError("No codes were given.")
    cov = s2 / n - np.outer(s1 / n, s1 / n)
    std = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    ok = std > 1e-12 * max(1.0, float(np.abs(shift).max()))
    corr = np.zeros_like(cov)
    corr[np.ix_(ok, ok)] = cov[np.ix_(ok, ok)] / np.outer(std[ok], std[ok])
    np.fill_diagonal(corr, 1.0)
    return np.clip(corr, -1.0, 1.0)


def linear_probe(
    codes: Any,
    factors: Any,
    *,
    discrete: Any = None,
    n_bins: int = N_BINS,
    cv: int = 5,
    random_state: int = 0,
) -> list[dict[str, Any]]:
    """How well a linear model reads each label or factor off the code, cross-validated.

    Discrete factors (default: at most ``n_bins`` distinct values): multinomial logistic
    regression on standardised codes, scored by mean ``cv``-fold accuracy, reported with
    chance (the largest class share). Continuous factors: ridge regression, scored by
    mean ``cv``-fold R^2 (chance 0). Folds are stratified for labels and shuffled with ``random_state``.

    Returns
    -------
    list of dict
        One per factor: ``factor`` (column index), ``kind`` ("accuracy" or "r2"),
        ``score`` and ``chance``.

    Examples
    --------
    >>> import numpy as np
    >>> y = np.repeat([0, 1], 20)
    >>> linear_probe(np.c_[y + 0.1 * np.sin(np.arange(40)), np.cos(np.arange(40))], y)[0]["score"]
    1.0
    """
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    Z, V = _pair(codes, factors)
    disc = _is_discrete(V, n_bins) if discrete is None else np.asarray(discrete, dtype=bool).reshape(-1)
    out = []
    for k in range(V.shape[1]):
        v = V[:, k]
        if disc[k]:
            _, counts = np.unique(v, return_counts=True)
            chance = float(counts.max() / counts.sum())
            folds = min(cv, int(counts.min()))
            if len(counts) < 2 or folds < 2:
                out.append({"factor": k, "kind": "accuracy", "score": chance, "chance": chance})
                continue
            model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
            splitter = StratifiedKFold(folds, shuffle=True, random_state=random_state)
            score = cross_val_score(model, Z, v, cv=splitter, scoring="accuracy").mean()
            out.append({"factor": k, "kind": "accuracy", "score": float(score), "chance": chance})
        else:
            model = make_pipeline(StandardScaler(), Ridge(alpha=1.0))
            splitter = KFold(min(cv, len(v)), shuffle=True, random_state=random_state)
            score = cross_val_score(model, Z, v.astype(np.float64), cv=splitter, scoring="r2").mean()
            out.append({"factor": k, "kind": "r2", "score": float(score), "chance": 0.0})
    return out


def label_purity(codes: Any, labels: Any, *, top_fraction: float = 0.05) -> dict[str, Any]:
    """Per latent, how much its most active samples share one label.

    For latent ``i`` take the ``ceil(top_fraction n)`` samples where ``z_i`` is largest;
    purity is the share of the most common label among them, and ``label`` is that
    label. Chance is the largest label share overall: a purity near chance means the
    latent's strongest activations are not about any one label.

    Returns
    -------
    dict
        ``purity`` (n_latents,), ``label`` (n_latents,), ``chance`` (float), ``n_top`` (int).

    Examples
    --------
    >>> import numpy as np
    >>> y = np.array([0, 0, 1, 1])
    >>> r = label_purity(np.c_[[0.0, 0.1, 0.9, 1.0], [1.0, 0.0, 0.9, 0.0]], y, top_fraction=0.5)
    >>> r["purity"].tolist(), r["label"].tolist(), r["chance"]
    ([1.0, 0.5], [1, 0], 0.5)
    """
    Z, Y = _pair(codes, labels)
    y = Y[:, 0]
    if not 0 < top_fraction <= 1:
        raise DataError(f"top_fraction={top_fraction!r} is invalid: expected a number in (0, 1].")
    n_top = max(1, int(np.ceil(top_fraction * len(y))))
    classes, yi = np.unique(y, return_inverse=True)
    yi = yi.ravel()
    purity = np.empty(Z.shape[1])
    label = np.empty(Z.shape[1], dtype=classes.dtype)
    for i in range(Z.shape[1]):
        # stable sort of -z keeps ties in sample order, so results do not depend on the platform
        top = np.argsort(-Z[:, i], kind="stable")[:n_top]
        counts = np.bincount(yi[top], minlength=len(classes))
        purity[i] = counts.max() / n_top
        label[i] = classes[counts.argmax()]
    chance = float(np.bincount(yi).max() / len(yi))
    return {"purity": purity, "label": label, "chance": chance, "n_top": n_top}
