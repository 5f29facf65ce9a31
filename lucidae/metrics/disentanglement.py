"""Disentanglement against known generative factors: discretisation, entropy and mutual
information (in nats), and the scores built on them, MIG (Chen et al. 2018), SAP (Kumar
et al. 2018), DCI (Eastwood & Williams 2018) and modularity (Ridgeway & Mozer 2018).
Continuous columns are cut into ``n_bins`` equal-width bins, as disentanglement_lib does
(see :mod:`lucidae.metrics` for the conventions)."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from lucidae.errors import DataError
from lucidae.metrics._inputs import _as_2d, _is_discrete, _pair

N_BINS = 20
"""Default number of equal-width bins when a continuous column is discretised (disentanglement_lib's)."""


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
