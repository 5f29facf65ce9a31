"""Structure of a code in the data's own terms: principal angles between the latents'
directions and PCA's subspace, correlation between latents, and how well labels can be
read off the code, by a cross-validated linear probe or from each latent's most active samples."""

from __future__ import annotations

from typing import Any

import numpy as np

from lucidae.errors import DataError
from lucidae.metrics._inputs import _batches, _is_discrete, _numpy, _pair
from lucidae.metrics.disentanglement import N_BINS


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
