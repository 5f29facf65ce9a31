"""The members of :class:`~lucidae.applications.anomaly.AnomalyDetector`'s ensemble score, as plain arrays.

Three scores, each higher = more abnormal, standardised robustly before they are averaged:

- **isolation**: an isolation forest (Liu et al. 2008) fitted by scikit-learn, then held as
  arrays (:func:`forest_arrays`) and scored with vectorised numpy (:func:`forest_scores`),
  so that a saved detector needs no pickle. The scores equal
  ``-IsolationForest.score_samples``.
- **neighbours**: the mean distance to the ``k`` nearest rows of a random reference
  subsample of the training data (:func:`knn_scores`); a row identical to a reference row
  does not count that row, so the training rows get leave-one-out scores.
- **autoencoder**: the detector's likelihood score (reconstruction error and the code's
  Mahalanobis distance), computed in :mod:`lucidae.applications.anomaly`.

Examples
--------
>>> import numpy as np
>>> X = np.random.default_rng(0).normal(size=(300, 3)).astype(np.float32)
>>> z = robust_standardise(np.arange(10.0), *robust_location_scale(np.arange(10.0)))
>>> float(np.median(z))
0.0
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.ensemble import IsolationForest
from sklearn.neighbors import NearestNeighbors

MAD_TO_STD = 1.4826
"""Scales the median absolute deviation to the standard deviation of a normal distribution."""


def average_path_length(n: np.ndarray) -> np.ndarray:
    """Expected path length of an unsuccessful search in a binary search tree of ``n`` items.

    The isolation forest's normaliser ``c(n)``: 0 for n <= 1, 1 for n = 2, else
    ``2 (ln(n - 1) + gamma) - 2 (n - 1) / n``.

    Examples
    --------
    >>> average_path_length(np.array([1, 2, 256])).round(3).tolist()
    [0.0, 1.0, 10.245]
    """
    n = np.asarray(n, dtype=np.float64)
    out = np.zeros_like(n)
    out[n == 2] = 1.0
    big = n > 2
    out[big] = 2.0 * (np.log(n[big] - 1.0) + np.euler_gamma) - 2.0 * (n[big] - 1.0) / n[big]
    return out


def forest_arrays(X: np.ndarray, n_trees: int, random_state: int | None) -> dict[str, np.ndarray]:
    """Fit scikit-learn's IsolationForest on ``X`` and return its trees as padded arrays.

    Returns
    -------
    dict
        ``feature``, ``left``, ``right`` (int64, shape (n_trees, max_nodes); ``left`` is -1 at
        a leaf), ``threshold`` (float64, same shape; a row goes left when its value is <= the
        threshold), ``leaf_depth`` (float64, same shape: ``c(n_node_samples)``, added at the
        leaf a row ends in) and ``normaliser`` (shape (1,): ``c(max_samples)``).

    Examples
    --------
    >>> X = np.random.default_rng(0).normal(size=(100, 2)).astype(np.float32)
    >>> trees = forest_arrays(X, 10, 0)
    >>> trees["feature"].shape[0], round(float(trees["normaliser"][0]), 3)
    (10, 8.365)
    """
    forest = IsolationForest(n_estimators=n_trees, random_state=random_state).fit(X)
    trees = [t.tree_ for t in forest.estimators_]
    width = max(t.node_count for t in trees)
    shape = (len(trees), width)
    feature = np.zeros(shape, dtype=np.int64)
    left = np.full(shape, -1, dtype=np.int64)
    right = np.full(shape, -1, dtype=np.int64)
    threshold = np.zeros(shape, dtype=np.float64)
    leaf_depth = np.zeros(shape, dtype=np.float64)
    for i, (tree, features) in enumerate(zip(trees, forest.estimators_features_)):  # one pass per tree
        m = tree.node_count
        feature[i, :m] = np.asarray(features)[np.maximum(tree.feature, 0)]
        left[i, :m] = tree.children_left
        right[i, :m] = tree.children_right
        threshold[i, :m] = tree.threshold
        leaf_depth[i, :m] = average_path_length(tree.n_node_samples)
    normaliser = average_path_length(np.array([forest._max_samples]))
    return {
        "feature": feature,
        "left": left,
        "right": right,
        "threshold": threshold,
        "leaf_depth": leaf_depth,
        "normaliser": normaliser,
    }


def forest_scores(trees: dict[str, Any], X: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """Isolation scores ``2 ** (-mean path length / c(max_samples))`` of the rows of ``X``, (n,).

    All trees are walked at once, one level per step, in chunks of rows.

    Examples
    --------
    >>> X = np.random.default_rng(0).normal(size=(200, 3)).astype(np.float32)
    >>> trees = forest_arrays(X, 20, 0)
    >>> ref = -IsolationForest(n_estimators=20, random_state=0).fit(X).score_samples(X)
    >>> bool(np.allclose(forest_scores(trees, X), ref))
    True
    """
    feature, left, right = trees["feature"], trees["left"], trees["right"]
    n_trees, width = feature.shape
    offsets = np.arange(n_trees, dtype=np.int64)[None, :] * width  # (1, trees): tree t's nodes start at t * width
    # Flat arrays indexed by a global node number, children already global (-1 at a leaf).
    left_flat = np.where(left >= 0, left + offsets.T, -1).ravel()
    right_flat = np.where(right >= 0, right + offsets.T, -1).ravel()
    feature_flat, threshold_flat = feature.ravel(), trees["threshold"].ravel()
    leaf_flat = trees["leaf_depth"].ravel()
    Xf = np.asarray(X, dtype=np.float32)
    out = np.empty(len(Xf), dtype=np.float64)
    for start in range(0, len(Xf), chunk):
        Xc = Xf[start : start + chunk]  # (c, features)
        node = np.repeat(offsets, len(Xc), axis=0)  # (c, trees), every row at every root
        depth = np.zeros(node.shape, dtype=np.float64)
        while True:  # one tree level per pass, all rows and trees at once
            nxt_left = left_flat.take(node)  # (c, trees)
            inner = nxt_left >= 0
            if not inner.any():
                break
            value = np.take_along_axis(Xc, feature_flat.take(node), axis=1)  # (c, trees)
            goes_left = value <= threshold_flat.take(node)
            node = np.where(inner, np.where(goes_left, nxt_left, right_flat.take(node)), node)
            depth += inner
        depth += leaf_flat.take(node)
        out[start : start + len(Xc)] = 2.0 ** (-depth.mean(axis=1) / float(trees["normaliser"][0]))
    return out


def knn_scores(neighbors: NearestNeighbors, reference: np.ndarray, X: np.ndarray, k: int) -> np.ndarray:
    """Mean distance of each row of ``X`` to its ``k`` nearest reference rows, (n,).

    ``neighbors`` is fitted on ``reference``. When a row's nearest reference row is the row
    itself (identical values), that reference row is skipped: a training row is not its own
    neighbour, and the training rows' scores equal what ``decision_function`` gives them.

    Examples
    --------
    >>> R = np.array([[0.0], [1.0], [3.0]], dtype=np.float32)
    >>> nn = NearestNeighbors(n_neighbors=2).fit(R)
    >>> knn_scores(nn, R, np.array([[0.0], [10.0]], dtype=np.float32), 1).tolist()
    [1.0, 7.0]
    """
    k = min(k, len(reference) - 1)
    dist, idx = neighbors.kneighbors(X, n_neighbors=k + 1)  # (n, k + 1), ascending
    itself = np.all(reference[idx[:, 0]] == X, axis=1)  # (n,)
    kept = np.where(itself[:, None], dist[:, 1:], dist[:, :-1])  # (n, k)
    return kept.mean(axis=1)


def robust_location_scale(scores: np.ndarray) -> tuple[float, float]:
    """Median and scaled median absolute deviation of ``scores`` (the standard deviation as fallback).

    Examples
    --------
    >>> robust_location_scale(np.array([1.0, 2.0, 3.0, 100.0]))
    (2.5, 1.4826)
    """
    med = float(np.median(scores))
    scale = MAD_TO_STD * float(np.median(np.abs(scores - med)))
    if not scale > 0:
        scale = float(np.std(scores))
    return med, scale if scale > 0 else 1.0


def robust_standardise(scores: np.ndarray, location: float, scale: float) -> np.ndarray:
    """``(scores - location) / scale``: a member's scores in robust standard units.

    Examples
    --------
    >>> robust_standardise(np.array([2.5, 4.0]), 2.5, 1.5).tolist()
    [0.0, 1.0]
    """
    return (np.asarray(scores, dtype=np.float64) - location) / scale
