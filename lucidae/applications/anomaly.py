"""Anomaly detection that explains itself, with any lucidae autoencoder inside.

:class:`AnomalyDetector` follows the conventions its users already know. From PyOD:
``contamination``, ``decision_scores_``, ``threshold_``, ``labels_`` and ``predict``
(0 inlier, 1 outlier), ``decision_function`` (higher = more abnormal), ``predict_proba``
(``method="linear"`` or ``"unify"``) and ``predict_confidence``. From scikit-learn's
outlier detectors: ``score_samples`` (higher = more normal) and ``offset_``, so that
``np.where(score_samples(X) - offset_ < 0, -1, 1)`` gives scikit-learn's -1/+1 labels.

How a sample is scored (``scoring="ensemble"``, the default). Features are standardised
and three scores are computed, each higher = more abnormal:

- **autoencoder**: a small autoencoder is trained for a fixed number of optimiser steps
  (``train_steps``; its batch grows with the data, so 500 and 50,000 rows get comparable
  training) on the rows the other two members find most normal (``robust``: the 20% they
  rank as most abnormal are left out, so that the anomalies are not learned), and each
  row gets the negative log-likelihood of a probabilistic-PCA-style model, up to
  constants, ``d * e(x) / mean_train(e) + (z - mu)^T C^+ (z - mu)``: ``e(x)`` is the mean
  squared reconstruction error per feature, ``d`` the number of features, ``z`` the code
  and ``mu``, ``C`` the mean and covariance of the training codes;
- **neighbours**: the mean distance to the 10 nearest rows of a random reference sample
  of at most 2,000 training rows;
- **isolation**: an isolation forest's score (100 trees of 256 rows).

Each member's training scores set its median and scaled median absolute deviation; the
score is the mean of the three members in these robust standard units. ``"likelihood"``
is the autoencoder member alone (trained on every row) and ``"reconstruction"`` its first
term only.

Why these defaults: chosen on the tuning half of ``benchmarks/anomaly.py`` only
(``python benchmarks/anomaly.py --half tuning --variants``); the evidence is tabled in
``docs/readme/applications.md``. Mean AUROC / average precision on the tuning half: the
default 0.874 / 0.491; without robust training 0.872 / 0.477; the autoencoder alone
(``"likelihood"``) 0.841 / 0.429, its reconstruction error alone 0.807 / 0.401; the
neighbours and the forest without the autoencoder 0.870 / 0.421; ranks averaged instead
of robust z-scores 0.864 / 0.416 (ranks forget how far out a row is); 150 steps 0.868 /
0.461, 600 steps 0.875 / 0.494 at 1.4 times the time. Eight autoencoders over bootstrap
samples scored like one (AUROC 0.814 vs 0.812), so one it is; its explanation is simplest.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, OutlierMixin, clone
from sklearn.neighbors import NearestNeighbors
from sklearn.utils.validation import check_is_fitted, validate_data

from lucidae.applications.anomaly_members import (
    forest_arrays,
    forest_scores,
    knn_scores,
    robust_location_scale,
    robust_standardise,
)
from lucidae.config import AnomalyConfig
from lucidae.errors import ConfigError, CorruptFileError, DataError
from lucidae.estimators import AutoEncoder
from lucidae.estimators.base import image_rows
from lucidae.estimators.persist import load_holder, save_holder
from lucidae.train import seed_param

MAX_REFERENCE = 20_000
"""At most this many normal training samples are kept to find nearest neighbours."""

MEMBERS = ("autoencoder", "neighbours", "isolation")
"""The members of the ``"ensemble"`` score, in the order of ``member_location_``."""

KNN_K = 10
"""Neighbours averaged by the ``"neighbours"`` member."""

KNN_REFERENCE = 2_000
"""At most this many training rows, drawn at random, are the ``"neighbours"`` member's reference."""

N_TREES = 100
"""Trees of the ``"isolation"`` member (scikit-learn's default)."""

ROBUST_DROP = 0.2
"""Share of rows the autoencoder does not train on when ``robust`` (those the other members rank most abnormal)."""

FOREST_KEYS = ("feature", "left", "right", "threshold", "leaf_depth", "normaliser")


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """Run torch on one thread inside the block, then restore the caller's setting.

    The detector's autoencoder is small (a hidden layer of 64): splitting its matrix
    products over threads gains nothing, and on a busy machine the threads wait for each
    other (a 150-row fit took 28 s on two threads of a loaded 2-core machine, 2.5 s on one).

    Examples
    --------
    >>> before = torch.get_num_threads()
    >>> with one_torch_thread():
    ...     torch.get_num_threads()
    1
    >>> torch.get_num_threads() == before
    True
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def default_estimator(
    n_features: int, random_state: int | None = None, *, n_samples: int | None = None, train_steps: int = 300
) -> Any:
    """The autoencoder :class:`AnomalyDetector` uses when none is given, sized for the data.

    A dense autoencoder ``d -> 64 -> k -> 64 -> d`` with ``k = d // 3`` clipped to
    [2, 32] and a linear code and output (the detector standardises the data itself),
    without a validation split. Given ``n_samples``, the batch grows with the data
    (``n // 32`` clipped to [64, 1024]) and the epochs give about ``train_steps`` optimiser
    steps; without it, 20 epochs of 128.

    Examples
    --------
    >>> ae = default_estimator(30)
    >>> ae.hidden_dims, ae.latent_dim, ae.epochs, ae.output_activation
    ((64,), 10, 20, 'linear')
    >>> big = default_estimator(9, n_samples=50_000, train_steps=300)
    >>> big.batch_size, big.epochs
    (1024, 7)
    """
    batch, epochs = 128, 20
    if n_samples is not None:
        batch = int(min(n_samples, np.clip(n_samples // 32, 64, 1024)))
        steps_per_epoch = int(np.ceil(n_samples / batch))
        epochs = max(1, int(np.ceil(train_steps / steps_per_epoch)))
    return AutoEncoder(
        hidden_dims=(64,),
        latent_dim=int(np.clip(n_features // 3, 2, 32)),
        activation="relu",
        latent_activation="linear",
        output_activation="linear",
        scaling=None,
        epochs=epochs,
        batch_size=batch,
        validation_fraction=0.0,
        random_state=random_state,
        verbose=0,
    )


@dataclass
class FeatureError:
    """One feature of an explained sample and how badly it was reconstructed.

    Examples
    --------
    >>> FeatureError("area", 542.2, 251.8, 0.45).share
    0.45
    """

    name: str
    """The feature's name."""
    value: float
    """The sample's value, in the data's original units."""
    reconstructed: float
    """What the autoencoder reconstructed, in the original units."""
    share: float
    """This feature's share of the sample's reconstruction error (the shares sum to 1)."""


@dataclass
class AnomalyExplanation:
    """Why one sample got its anomaly score: returned by :meth:`AnomalyDetector.explain`.

    Examples
    --------
    >>> import numpy as np
    >>> e = AnomalyExplanation(score=9.0, threshold=4.0, reconstruction_term=8.0, latent_term=1.0,
    ...     contributions=np.array([0.9, 0.1]), feature_names=["a", "b"],
    ...     worst_features=[FeatureError("a", 5.0, 0.0, 0.9)],
    ...     neighbor_indices=np.array([3]), neighbor_distances=np.array([1.5]))
    >>> e.is_outlier
    True
    >>> print(e.summary().splitlines()[0])
    outlier: score 9 > threshold 4 (reconstruction 8, latent 1)
    """

    score: float
    """The sample's anomaly score (``decision_function``; higher = more abnormal)."""
    threshold: float
    """The detector's ``threshold_``: scores above it are outliers."""
    reconstruction_term: float
    """The autoencoder's reconstruction term (off the learned manifold)."""
    latent_term: float
    """The autoencoder's latent term: the code far from the training codes (0 for ``scoring="reconstruction"``)."""
    contributions: np.ndarray
    """Share of the reconstruction error per feature, shape (n_features,), summing to 1."""
    feature_names: list[str]
    """Names matching ``contributions``."""
    worst_features: list[FeatureError]
    """The worst-reconstructed features, largest share first."""
    neighbor_indices: np.ndarray
    """Row indices (into the training data) of the nearest normal training samples."""
    neighbor_distances: np.ndarray
    """Their Euclidean distances in the standardised feature space, ascending."""
    reconstruction: np.ndarray = field(default_factory=lambda: np.empty(0))
    """The sample's reconstruction, in the original units."""
    members: dict[str, float] = field(default_factory=dict)
    """``scoring="ensemble"``: each member's part of the score (its robust z-score divided by the
    number of members; they sum to ``score``); empty otherwise."""

    @property
    def is_outlier(self) -> bool:
        """True when the score is above the threshold."""
        return bool(self.score > self.threshold)

    def summary(self) -> str:
        """A few lines of plain text for a terminal or a log."""
        verdict = "outlier" if self.is_outlier else "inlier"
        sign = ">" if self.is_outlier else "<="
        terms = f"reconstruction {self.reconstruction_term:.4g}, latent {self.latent_term:.4g}"
        if self.members:
            parts = ", ".join(f"{k} {v:.3g}" for k, v in self.members.items())
            terms = f"{parts}; autoencoder's {terms}"
        lines = [f"{verdict}: score {self.score:.4g} {sign} threshold {self.threshold:.4g} ({terms})"]
        for f in self.worst_features:
            lines.append(
                f"  {f.name}: value {f.value:.4g}, reconstructed {f.reconstructed:.4g} "
                f"({100 * f.share:.0f}% of the error)"
            )
        near = ", ".join(f"#{i} ({d:.3g})" for i, d in zip(self.neighbor_indices, self.neighbor_distances))
        lines.append(f"  nearest normal training samples: {near}")
        return "\n".join(lines)


class AnomalyDetector(OutlierMixin, BaseEstimator):
    """Unsupervised anomaly detector: an autoencoder, nearest neighbours and an isolation forest; explains each score.

    Parameters
    ----------
    estimator : lucidae estimator, optional
        Any unfitted lucidae autoencoder (``AutoEncoder``, a sparse or variational one...);
        it is cloned and trained on the standardised data. None: :func:`default_estimator`,
        trained for ``train_steps`` optimiser steps.
    contamination : float, default=0.1
        Expected share of outliers in the training data, in (0, 0.5]; sets ``threshold_``
        (PyOD's default, 0.1).
    scoring : {"ensemble", "likelihood", "reconstruction"}, default="ensemble"
        "ensemble": the mean of three robust z-scores (the autoencoder's likelihood score,
        the distance to the nearest training rows, an isolation forest; see the module
        docstring); "likelihood": the autoencoder's reconstruction error plus the code's
        Mahalanobis distance; "reconstruction": its reconstruction error only.
    n_neighbors : int, default=5
        Nearest normal training samples returned by :meth:`explain`.
    train_steps : int, default=300
        Optimiser steps of the default autoencoder; its batch grows with the data.
    robust : bool, default=True
        With "ensemble", train the autoencoder on the 80% of rows the other members find
        most normal, so that it does not learn the anomalies.
    random_state : int, optional
        Seed of the default estimator, the forest and the neighbours' reference sample.

    Attributes
    ----------
    estimator_ : fitted lucidae estimator
    decision_scores_ : ndarray of shape (n_samples,)
        Anomaly scores of the training data (higher = more abnormal).
    threshold_ : float
        The ``1 - contamination`` quantile of ``decision_scores_``.
    labels_ : ndarray of shape (n_samples,)
        0 for inliers, 1 for outliers in the training data (PyOD's convention).
    offset_ : float
        ``-threshold_``, so that ``score_samples(X) - offset_ < 0`` marks outliers
        (scikit-learn's convention).
    member_location_, member_scale_ : ndarray of shape (3,)
        "ensemble": the median and scaled median absolute deviation of each member's
        training scores (order of :data:`MEMBERS`).
    feature_names_ : list of str
    fit_seconds_ : float

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(1000, 3)) @ rng.normal(size=(3, 9))  # 9 correlated features
    >>> X[:5, :3] = rng.normal(size=(5, 3)) * 3  # five samples break the correlation
    >>> det = AnomalyDetector(contamination=0.02, random_state=0).fit(X)
    >>> det.labels_[:5].tolist(), int(det.labels_.sum())
    ([1, 1, 1, 1, 1], 20)
    >>> det.predict(X[:2]).tolist()
    [1, 1]
    >>> det.explain(X[0]).is_outlier
    True
    """

    def __init__(
        self,
        *,
        estimator: Any = None,
        contamination: float = 0.1,
        scoring: str = "ensemble",
        n_neighbors: int = 5,
        train_steps: int = 300,
        robust: bool = True,
        random_state: int | None = None,
    ):
        self.estimator = estimator
        self.contamination = contamination
        self.scoring = scoring
        self.n_neighbors = n_neighbors
        self.train_steps = train_steps
        self.robust = robust
        self.random_state = random_state

    # ------------------------------------------------------------------ checks
    def _check_params(self) -> None:
        params = self.get_params(deep=False)
        params.pop("estimator")
        if isinstance(params["random_state"], (np.random.RandomState, np.random.Generator)):
            params["random_state"] = None  # drawn from once, at fit; the config holds seeds only
        AnomalyConfig(**params).validate()

    @staticmethod
    def _check_finite(X: np.ndarray) -> np.ndarray:
        if not np.isfinite(X).all():
            bad = np.argwhere(~np.isfinite(X))
            row, col = (int(v) for v in bad[0])
            raise DataError(
                f"Input contains {len(bad)} NaN or infinite value(s); the first is at row {row}, column {col}. "
                "Remove or impute them first (for example with sklearn.impute.SimpleImputer)."
            )
        return X

    # ------------------------------------------------------------------ fitting
    def fit(self, X: Any, y: Any = None, *, feature_names: list[str] | None = None) -> AnomalyDetector:
        """Standardise ``X``, fit the scoring members on it and set the threshold.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data, possibly contaminated by outliers (the method is unsupervised).
        y : ignored
        feature_names : list of str, optional
            Column names for explanations (a DataFrame's column names are used otherwise).

        Returns
        -------
        self

        Examples
        --------
        >>> import numpy as np
        >>> X = np.random.default_rng(0).normal(size=(200, 4))
        >>> det = AnomalyDetector(contamination=0.1, random_state=0).fit(X)
        >>> int(det.labels_.sum()), det.decision_scores_.shape
        (20, (200,))
        """
        self._check_params()
        X = image_rows(X)[0]  # (n, h, w[, c]) images as rows, as the estimators take them
        X = validate_data(self, X, dtype=[np.float64, np.float32], ensure_min_samples=2)
        X = self._check_finite(np.asarray(X, dtype=np.float64))
        n_samples, n_features = X.shape
        if feature_names is None and hasattr(self, "feature_names_in_"):
            feature_names = list(self.feature_names_in_)
        if feature_names is None:
            feature_names = [f"x{i}" for i in range(n_features)]
        if len(feature_names) != n_features:
            raise DataError(f"feature_names has {len(feature_names)} names but X has {n_features} columns.")
        self.feature_names_ = [str(n) for n in feature_names]
        start = time.perf_counter()
        self.center_ = X.mean(axis=0)
        std = X.std(axis=0)
        self.scale_ = np.where(std > 0, std, 1.0)
        Xs = self._standardise(X)  # (n, features)
        seed = seed_param(self.random_state)  # a RandomState or Generator: one seed drawn from it
        rng = np.random.default_rng(seed)
        train_rows = np.ones(n_samples, dtype=bool)
        others: list[np.ndarray] = []
        if self.scoring == "ensemble":
            self.forest_ = forest_arrays(Xs, N_TREES, int(rng.integers(2**31)))
            ref = np.sort(rng.choice(n_samples, size=min(n_samples, KNN_REFERENCE), replace=False))
            self.knn_reference_ = Xs[ref]  # (n_ref, features)
            self._knn = NearestNeighbors(algorithm="brute").fit(self.knn_reference_)
            others = [knn_scores(self._knn, self.knn_reference_, Xs, KNN_K), forest_scores(self.forest_, Xs)]
            if self.robust and n_samples >= 20:
                base = sum(robust_standardise(s, *robust_location_scale(s)) for s in others)  # (n,)
                train_rows = base <= np.quantile(base, 1.0 - ROBUST_DROP)
        Xt = Xs[train_rows]  # (n_train, features)
        if self.estimator is None:
            self.estimator_ = default_estimator(n_features, seed, n_samples=len(Xt), train_steps=self.train_steps)
        else:
            self.estimator_ = clone(self.estimator)
        with one_torch_thread():
            try:
                self.estimator_.fit(Xt, feature_names=self.feature_names_)
            except TypeError:  # an estimator without lucidae's keyword arguments
                self.estimator_.fit(Xt)
        self.error_mean_ = float(max(self._squared_errors(Xt).mean(axis=1).mean(), 1e-12))
        if self.scoring != "reconstruction":
            with one_torch_thread():
                Z = np.asarray(self.estimator_.transform(Xt), dtype=np.float64)  # (n_train, latent)
            self.latent_mean_ = Z.mean(axis=0)
            cov = np.atleast_2d(np.cov(Z, rowvar=False)) if len(Z) > 1 else np.eye(Z.shape[1])
            # A ridge keeps dead or duplicate code units from blowing up the inverse.
            ridge = 1e-6 * max(float(np.trace(cov)) / len(cov), 1e-12)
            self.latent_precision_ = np.linalg.pinv(cov + ridge * np.eye(len(cov)), hermitian=True)
        rec, lat = self._terms(self._squared_errors(Xs).mean(axis=1), Xs)
        if self.scoring == "ensemble":
            raw = [rec + lat, *others]
            stats = np.array([robust_location_scale(s) for s in raw])  # (members, 2)
            self.member_location_, self.member_scale_ = stats[:, 0], stats[:, 1]
            self.decision_scores_ = self._combine(np.stack(raw)).sum(axis=0)
        else:
            self.decision_scores_ = rec + lat
        self.threshold_ = float(np.quantile(self.decision_scores_, 1.0 - self.contamination))
        self.offset_ = -self.threshold_
        self.labels_ = (self.decision_scores_ > self.threshold_).astype(np.int64)
        normal = np.flatnonzero(self.labels_ == 0)
        if len(normal) > MAX_REFERENCE:
            normal = np.sort(rng.choice(normal, size=MAX_REFERENCE, replace=False))
        self.reference_index_ = normal
        self.reference_ = Xs[normal].astype(np.float32)  # (n_ref, features), standardised
        self._reference_nn: NearestNeighbors | None = None
        self.fit_seconds_ = time.perf_counter() - start
        return self

    def _standardise(self, X: np.ndarray) -> np.ndarray:
        return ((X - self.center_) / self.scale_).astype(np.float32)

    def _squared_errors(self, Xs: np.ndarray) -> np.ndarray:
        """Per-feature squared reconstruction errors in the standardised space, (n, features)."""
        with one_torch_thread():
            recon = np.asarray(self.estimator_.reconstruct(Xs), dtype=np.float64)
        return (Xs.astype(np.float64) - recon) ** 2

    def _terms(self, per_sample: np.ndarray, Xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The autoencoder's reconstruction and latent terms, each (n,)."""
        rec = Xs.shape[1] * per_sample / self.error_mean_
        if self.scoring == "reconstruction":
            return rec, np.zeros_like(rec)
        with one_torch_thread():
            Zc = np.asarray(self.estimator_.transform(Xs), dtype=np.float64) - self.latent_mean_  # (n, latent)
        lat = np.einsum("ij,jk,ik->i", Zc, self.latent_precision_, Zc)
        return rec, lat

    def _combine(self, raw: np.ndarray) -> np.ndarray:
        """Each member's part of the score, (members, n): its robust z-score over the number of members."""
        z = (raw - self.member_location_[:, None]) / self.member_scale_[:, None]
        return z / len(raw)

    def _score_parts(self, Xs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Scores (n,), reconstruction and latent terms (n,) and member parts (members, n) or (0, n)."""
        errors = self._squared_errors(Xs)
        rec, lat = self._terms(errors.mean(axis=1), Xs)
        if self.scoring != "ensemble":
            return rec + lat, rec, lat, np.zeros((0, len(Xs)))
        if getattr(self, "_knn", None) is None:
            self._knn = NearestNeighbors(algorithm="brute").fit(self.knn_reference_)
        raw = np.stack(
            [rec + lat, knn_scores(self._knn, self.knn_reference_, Xs, KNN_K), forest_scores(self.forest_, Xs)]
        )  # (members, n)
        parts = self._combine(raw)
        return parts.sum(axis=0), rec, lat, parts

    def _prepare(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "estimator_")
        X = validate_data(self, image_rows(X)[0], reset=False, dtype=[np.float64, np.float32])
        return self._standardise(self._check_finite(np.asarray(X, dtype=np.float64)))

    # ------------------------------------------------------------------ scoring
    def decision_function(self, X: Any) -> np.ndarray:
        """Anomaly scores, higher = more abnormal (PyOD's convention).

        Returns
        -------
        ndarray of shape (n_samples,)

        Examples
        --------
        >>> import numpy as np
        >>> X = np.random.default_rng(0).normal(size=(200, 4))
        >>> det = AnomalyDetector(random_state=0).fit(X)
        >>> bool(det.decision_function(X[:1] + 10)[0] > det.threshold_)
        True
        """
        return self._score_parts(self._prepare(X))[0]

    def score_samples(self, X: Any) -> np.ndarray:
        """Minus :meth:`decision_function`: higher = more normal (scikit-learn's convention).

        ``np.where(det.score_samples(X) - det.offset_ < 0, -1, 1)`` gives scikit-learn's
        labels (-1 outlier, 1 inlier).

        Examples
        --------
        >>> import numpy as np
        >>> X = np.random.default_rng(0).normal(size=(200, 4))
        >>> det = AnomalyDetector(random_state=0).fit(X)
        >>> bool((det.score_samples(X[:3]) == -det.decision_function(X[:3])).all())
        True
        """
        return -self.decision_function(X)

    def predict(self, X: Any, return_confidence: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """0 for inliers, 1 for outliers (scoring above ``threshold_``), like ``labels_`` and PyOD.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        return_confidence : bool, default=False
            Also return :meth:`predict_confidence`.

        Examples
        --------
        >>> import numpy as np
        >>> X = np.random.default_rng(0).normal(size=(200, 4))
        >>> AnomalyDetector(random_state=0).fit(X).predict(np.vstack([X[:1] * 0, X[:1] + 10])).tolist()
        [0, 1]
        """
        scores = self.decision_function(X)
        labels = (scores > self.threshold_).astype(np.int64)
        if return_confidence:
            return labels, self._confidence(scores)
        return labels

    def fit_predict(self, X: Any, y: Any = None, **kwargs: Any) -> np.ndarray:
        """Fit on ``X`` and return its labels, 0 (inlier) / 1 (outlier): ``labels_``, as PyOD does.

        Examples
        --------
        >>> import numpy as np
        >>> X = np.random.default_rng(0).normal(size=(100, 3))
        >>> int(AnomalyDetector(contamination=0.1, random_state=0).fit_predict(X).sum())
        10
        """
        return self.fit(X, **kwargs).labels_.copy()

    def predict_proba(
        self, X: Any, method: str = "linear", return_confidence: bool = False
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Probability of being an inlier and an outlier, shape (n_samples, 2), as PyOD computes it.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        method : {"linear", "unify"}, default="linear"
            "linear": the score min-max scaled by the training scores, clipped to [0, 1];
            "unify": ``erf((score - mean) / (std * sqrt(2)))`` over the training scores,
            clipped to [0, 1] (Kriegel et al. 2011).
        return_confidence : bool, default=False
            Also return :meth:`predict_confidence`.

        Examples
        --------
        >>> import numpy as np
        >>> X = np.random.default_rng(0).normal(size=(200, 4))
        >>> det = AnomalyDetector(random_state=0).fit(X)
        >>> p = det.predict_proba(X[:3], method="unify")
        >>> p.shape, bool(np.allclose(p.sum(axis=1), 1.0))
        ((3, 2), True)
        """
        if method not in ("linear", "unify"):
            raise ConfigError(f"method={method!r} is invalid: expected 'linear' or 'unify'.")
        scores = self.decision_function(X)
        train = self.decision_scores_
        if method == "linear":
            span = float(train.max() - train.min())
            outlier = (scores - train.min()) / (span if span > 0 else 1.0)
        else:
            from scipy.special import erf

            sigma = float(train.std())
            outlier = erf((scores - train.mean()) / ((sigma if sigma > 0 else 1.0) * np.sqrt(2.0)))
        outlier = np.clip(outlier, 0.0, 1.0)
        probs = np.column_stack([1.0 - outlier, outlier])  # (n, 2)
        if return_confidence:
            return probs, self._confidence(scores)
        return probs

    def predict_confidence(self, X: Any) -> np.ndarray:
        """How surely each prediction would stay the same under another training sample, in [0, 1].

        PyOD's ExCeeD estimate (Perini et al. 2020): with ``m`` the number of training
        scores <= the sample's score and ``n`` training samples, ``p = (1 + m) / (2 + n)``
        and the confidence of an outlier is ``1 - BinomCDF(n - int(n * contamination); n, p)``;
        an inlier's is one minus that.

        Examples
        --------
        >>> import numpy as np
        >>> X = np.random.default_rng(0).normal(size=(200, 4))
        >>> det = AnomalyDetector(random_state=0).fit(X)
        >>> c = det.predict_confidence(np.vstack([X[:1] * 0, X[:1] + 10]))
        >>> bool(((c >= 0) & (c <= 1)).all()), bool(c[1] > 0.99)
        (True, True)
        """
        return self._confidence(self.decision_function(X))

    def _confidence(self, scores: np.ndarray) -> np.ndarray:
        from scipy.stats import binom

        check_is_fitted(self, "decision_scores_")
        n = len(self.decision_scores_)
        below = np.searchsorted(np.sort(self.decision_scores_), scores, side="right")  # training scores <= score
        posterior = (1.0 + below) / (2.0 + n)
        confidence = 1.0 - binom.cdf(n - int(n * self.contamination), n, posterior)
        return np.where(scores > self.threshold_, confidence, 1.0 - confidence)

    # ------------------------------------------------------------------ explaining
    def explain(self, x: Any, *, top: int = 5) -> AnomalyExplanation | list[AnomalyExplanation]:
        """Say why a sample got its score.

        Parameters
        ----------
        x : array-like of shape (n_features,) or (n_samples, n_features)
            One sample (returns one explanation) or several (returns a list).
        top : int, default=5
            How many of the worst-reconstructed features to list.

        Returns
        -------
        AnomalyExplanation or list of AnomalyExplanation
            The score split into its members (``"ensemble"``) and the autoencoder's
            reconstruction and latent terms, each feature's share of the reconstruction
            error, the worst-reconstructed features by name, and the nearest normal
            training samples (indices into the training data, distances in the
            standardised space).

        Examples
        --------
        >>> import numpy as np
        >>> X = np.random.default_rng(0).normal(size=(200, 4))
        >>> det = AnomalyDetector(n_neighbors=3, random_state=0).fit(X, feature_names=["a", "b", "c", "d"])
        >>> odd = X[0].copy(); odd[2] = 25.0
        >>> e = det.explain(odd)
        >>> e.is_outlier, e.worst_features[0].name, len(e.neighbor_indices)
        (True, 'c', 3)
        >>> round(float(e.contributions.sum()), 6), sorted(e.members)
        (1.0, ['autoencoder', 'isolation', 'neighbours'])
        """
        check_is_fitted(self, "estimator_")
        arr = np.asarray(x)
        single = arr.ndim == 1
        Xs = self._prepare(arr.reshape(1, -1) if single else arr)
        if isinstance(top, bool) or not isinstance(top, int) or top < 1:
            raise ConfigError(f"top={top!r} is invalid: expected an integer >= 1.")
        scores, rec, lat, parts = self._score_parts(Xs)
        with one_torch_thread():
            recon_s = np.asarray(self.estimator_.reconstruct(Xs), dtype=np.float64)  # (n, features)
        errors = (Xs.astype(np.float64) - recon_s) ** 2
        totals = errors.sum(axis=1, keepdims=True)  # (n, 1)
        shares = np.where(totals > 0, errors / np.where(totals > 0, totals, 1.0), 1.0 / errors.shape[1])
        order = np.argsort(-shares, axis=1, kind="stable")[:, : min(top, shares.shape[1])]  # (n, top)
        values = Xs * self.scale_ + self.center_
        recon = recon_s * self.scale_ + self.center_
        if getattr(self, "_reference_nn", None) is None:
            self._reference_nn = NearestNeighbors().fit(self.reference_)
        k = min(self.n_neighbors, len(self.reference_))
        dist, near = self._reference_nn.kneighbors(Xs, n_neighbors=k)  # (n, k) each, ascending
        names = [m for m in MEMBERS] if len(parts) else []
        out = []
        for i in range(len(Xs)):  # assembling the result objects only; every number is computed above
            worst = [
                FeatureError(self.feature_names_[j], float(values[i, j]), float(recon[i, j]), float(shares[i, j]))
                for j in order[i]
            ]
            out.append(
                AnomalyExplanation(
                    score=float(scores[i]),
                    threshold=self.threshold_,
                    reconstruction_term=float(rec[i]),
                    latent_term=float(lat[i]),
                    contributions=shares[i],
                    feature_names=list(self.feature_names_),
                    worst_features=worst,
                    neighbor_indices=self.reference_index_[near[i]].copy(),
                    neighbor_distances=dist[i],
                    reconstruction=recon[i],
                    members={m: float(parts[j, i]) for j, m in enumerate(names)},
                )
            )
        return out[0] if single else out

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike) -> Path:
        """Write the fitted detector to directory ``path``; no pickle.

        The detector's own arrays (the forest's trees and the neighbours' reference
        included) go to ``model.safetensors`` and ``config.json``; the autoencoder inside is
        saved in its own format in ``path/estimator``, and its checksum is recorded so that
        a mismatched pair is refused on load.

        Examples
        --------
        >>> import tempfile, numpy as np
        >>> X = np.random.default_rng(0).normal(size=(100, 3))
        >>> det = AnomalyDetector(random_state=0).fit(X)
        >>> det2 = load_detector(det.save(tempfile.mkdtemp() + "/det"))
        >>> bool((det2.decision_function(X) == det.decision_function(X)).all())
        True
        """
        check_is_fitted(self, "estimator_")
        tensors = {
            "center": torch.from_numpy(self.center_.astype(np.float64)),
            "scale": torch.from_numpy(self.scale_.astype(np.float64)),
            "decision_scores": torch.from_numpy(np.asarray(self.decision_scores_, dtype=np.float64)),
            "reference": torch.from_numpy(self.reference_),
            "reference_index": torch.from_numpy(self.reference_index_.astype(np.int64)),
        }
        if self.scoring != "reconstruction":
            tensors["latent_mean"] = torch.from_numpy(self.latent_mean_.astype(np.float64))
            tensors["latent_precision"] = torch.from_numpy(self.latent_precision_.astype(np.float64))
        if self.scoring == "ensemble":
            tensors["knn_reference"] = torch.from_numpy(np.ascontiguousarray(self.knn_reference_, dtype=np.float32))
            tensors["member_location"] = torch.from_numpy(self.member_location_.astype(np.float64))
            tensors["member_scale"] = torch.from_numpy(self.member_scale_.astype(np.float64))
            for key in FOREST_KEYS:
                tensors[f"forest_{key}"] = torch.from_numpy(np.ascontiguousarray(self.forest_[key]))
        config = {
            "n_features_in": int(self.n_features_in_),
            "feature_names": list(self.feature_names_),
            "feature_names_in": None
            if not hasattr(self, "feature_names_in_")
            else [str(n) for n in self.feature_names_in_],
            "threshold": self.threshold_,
            "error_mean": self.error_mean_,
            "fit_seconds": float(self.fit_seconds_),
        }
        return save_holder(self, path, tensors, config)


def load_detector(path: str | os.PathLike) -> AnomalyDetector:
    """Load a detector written by :meth:`AnomalyDetector.save` (or ``lucidae detect --save``).

    Detectors saved by earlier versions (``scoring`` "likelihood" or "reconstruction")
    load and score as they did.

    Raises
    ------
    CorruptFileError
        When a file is missing or damaged, or the inner model is not the one saved with it.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> X = np.random.default_rng(0).normal(size=(100, 3))
    >>> det = AnomalyDetector(contamination=0.2, random_state=0).fit(X)
    >>> load_detector(det.save(tempfile.mkdtemp() + "/det")).threshold_ == det.threshold_
    True
    """
    root = Path(path)
    config, tensors, inner = load_holder(root, "AnomalyDetector", "an AnomalyDetector")
    try:
        params = dict(config["params"])
        det = AnomalyDetector(**params)
        det._check_params()
        det.estimator_ = inner
        det.n_features_in_ = int(config["n_features_in"])
        if config.get("feature_names_in") is not None:
            det.feature_names_in_ = np.asarray(config["feature_names_in"], dtype=object)
        det.feature_names_ = [str(n) for n in config["feature_names"]]
        det.threshold_ = float(config["threshold"])
        det.offset_ = -det.threshold_
        det.error_mean_ = float(config["error_mean"])
        det.fit_seconds_ = float(config.get("fit_seconds", 0.0))
        det.center_ = tensors["center"].numpy()
        det.scale_ = tensors["scale"].numpy()
        det.decision_scores_ = tensors["decision_scores"].numpy()
        det.labels_ = (det.decision_scores_ > det.threshold_).astype(np.int64)
        det.reference_ = tensors["reference"].numpy()
        det.reference_index_ = tensors["reference_index"].numpy()
        if det.scoring != "reconstruction":
            det.latent_mean_ = tensors["latent_mean"].numpy()
            det.latent_precision_ = tensors["latent_precision"].numpy()
        if det.scoring == "ensemble":
            det.knn_reference_ = tensors["knn_reference"].numpy()
            det.member_location_ = tensors["member_location"].numpy()
            det.member_scale_ = tensors["member_scale"].numpy()
            det.forest_ = {key: tensors[f"forest_{key}"].numpy() for key in FOREST_KEYS}
    except (KeyError, TypeError, ValueError, ConfigError) as err:
        raise CorruptFileError(f"{root} is not a valid AnomalyDetector folder: {err!r}") from err
    d = det.n_features_in_
    if det.center_.shape != (d,) or det.scale_.shape != (d,) or det.reference_.shape[1:] != (d,):
        raise CorruptFileError(f"The arrays stored in {root} do not match n_features_in={d}.")
    if det.scoring == "ensemble":
        _check_ensemble(det, root)
    return det


def _check_ensemble(det: AnomalyDetector, root: Path) -> None:
    """Refuse ensemble arrays that could not come from a fit: wrong sizes, a tree that does not end, bad scales."""
    d, n_train = det.n_features_in_, len(det.decision_scores_)
    ref = det.knn_reference_
    if ref.ndim != 2 or ref.shape[1] != d or not 2 <= len(ref) <= n_train:
        raise CorruptFileError(f"tensor 'knn_reference' in {root} has shape {ref.shape}; expected (2..{n_train}, {d}).")
    # standardised training values lie within sqrt(n) of the mean
    if not np.isfinite(ref).all() or float(np.abs(ref).max()) > np.sqrt(n_train) + 1.0:
        raise CorruptFileError(f"tensor 'knn_reference' in {root} holds values no standardised training row has.")
    scale, location = det.member_scale_, det.member_location_
    if scale.shape != (len(MEMBERS),) or not (np.isfinite(scale).all() and (scale >= 1e-12).all()):
        raise CorruptFileError(f"tensor 'member_scale' in {root} must hold {len(MEMBERS)} finite values > 0.")
    if location.shape != (len(MEMBERS),) or not np.isfinite(location).all():
        raise CorruptFileError(f"tensor 'member_location' in {root} must hold {len(MEMBERS)} finite values.")
    f = det.forest_
    feature, left, right = f["feature"], f["left"], f["right"]
    width = feature.shape[-1] if feature.ndim == 2 else 0
    node = np.arange(width)[None, :]
    leaf = (left == -1) & (right == -1)
    inner = (left > node) & (left < width) & (right > node) & (right < width)  # children after their parent
    depths, norm = f["leaf_depth"], f["normaliser"]
    if (
        feature.ndim != 2
        or not width
        or not (leaf | inner).all()
        or not ((feature >= 0) & (feature < d)).all()
        or not np.isfinite(f["threshold"]).all()
        or not (np.isfinite(depths).all() and (depths >= 0).all() and (depths <= 64).all())
        or norm.shape != (1,)
        or not (0 < float(norm[0]) <= 64)
    ):
        raise CorruptFileError(f"the isolation forest stored in {root} is not a valid set of trees.")
