"""Input scaling that is fitted once, stored with the model and undone on the way out.

The classic tutorial divides images by 255 even when they are already in [0, 1],
which silently trains a model on near-black data. Here the scaling is chosen from the
data (``"auto"``), stored with the model (``offset`` and ``scale`` per feature) and
inverted by ``inverse_transform`` and ``reconstruct``; data that looks divided by 255
twice gets a warning, and a sigmoid output on targets outside [0, 1] is refused.

``"auto"`` tells images from tables: uint8 data and data already in [0, 1] are images
(kept in [0, 1], for a sigmoid output); anything else is a table, standardised, and a
model that asked for the default sigmoid gets a linear output (:func:`auto_output`).

Missing values (NaN) can be imputed: the per-feature fill (mean or median of the
training rows) is part of the :class:`Scaler`, saved with the model and applied
before scaling whenever the model reads data.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from lucidae.errors import ConfigError, DataError

TRANSFORM_BLOCK = 1 << 21
"""Values per block when scaling: bounds the float64 temporaries to about 16 MB."""


@dataclass
class Scaler:
    """Affine per-feature scaling ``x_scaled = (x - offset) / scale``.

    Parameters
    ----------
    kind : str
        What was fitted: ``"uint8"`` (divide by 255), ``"identity"``, ``"minmax"`` or ``"standard"``.
    offset, scale : ndarray of shape (n_features,)
        The affine map, float64.
    fill : ndarray of shape (n_features,), optional
        Values that replace NaN before scaling, in the data's units (``impute``); None: NaN is not filled.
    impute : {"mean", "median"}, optional
        How ``fill`` was fitted.

    Examples
    --------
    >>> import numpy as np
    >>> s = fit_scaler(np.array([[0.0, 10.0], [2.0, 30.0]]), "minmax")
    >>> s.transform(np.array([[1.0, 20.0]]))
    array([[0.5, 0.5]], dtype=float32)
    >>> s.inverse_transform(s.transform(np.array([[1.0, 20.0]])))
    array([[ 1., 20.]], dtype=float32)
    """

    kind: str
    offset: np.ndarray
    scale: np.ndarray
    fill: np.ndarray | None = None
    impute: str | None = None

    def fill_missing(self, block: np.ndarray) -> np.ndarray:
        """``block`` with its NaN replaced by :attr:`fill` (unchanged without a fill, or without NaN).

        Examples
        --------
        >>> s = Scaler("identity", np.zeros(2), np.ones(2), fill=np.array([5.0, 7.0]), impute="median")
        >>> s.fill_missing(np.array([[np.nan, 1.0]])).tolist()
        [[5.0, 1.0]]
        """
        if self.fill is None or block.dtype.kind != "f":
            return block
        missing = np.isnan(block)
        return np.where(missing, self.fill, block) if missing.any() else block

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Scale ``X`` (n_samples, n_features) into the model's space, as float32, NaN filled first.

        Float32 input under the identity scaling without a fill is returned as is (no
        copy); otherwise the arithmetic runs in float64 over blocks of rows, so a large
        ``X`` never needs a float64 copy of itself.
        """
        if self.fill is None and self.kind == "identity" and isinstance(X, np.ndarray) and X.dtype == np.float32:
            return X
        return _blockwise(X, lambda b: (self.fill_missing(b) - self.offset) / self.scale)

    def inverse_transform(self, X: np.ndarray) -> np.ndarray:
        """Map model-space values back to the original units, as float32 (the same blockwise way)."""
        if self.kind == "identity" and isinstance(X, np.ndarray) and X.dtype == np.float32:
            return X
        return _blockwise(X, lambda b: b * self.scale + self.offset)


def _blockwise(X: Any, fn: Any) -> np.ndarray:
    """``fn`` applied in float64 to blocks of :data:`TRANSFORM_BLOCK` values of ``X``, collected as float32."""
    X = np.asarray(X)
    out = np.empty(X.shape, dtype=np.float32)
    rows = max(1, TRANSFORM_BLOCK // max(1, X.shape[-1]))
    for start in range(0, len(X), rows):
        out[start : start + rows] = fn(np.asarray(X[start : start + rows], dtype=np.float64))
    return out


def fit_scaler(X: np.ndarray, scaling: str, *, output_activation: str = "sigmoid", impute: str | None = None) -> Scaler:
    """Choose and fit the scaling (and the fill of missing values) for training data ``X``.

    ``"auto"`` picks, in order: uint8 input -> divide by 255; data already in [0, 1] ->
    keep as is; otherwise (a table) min-max to [0, 1] when the output is a sigmoid, else
    standardise. ``output_activation="auto"`` says the output follows the data
    (:func:`auto_output`), so a table is standardised. A constant feature gets scale 1
    so nothing is divided by zero.

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
        Training data in its original units and dtype; NaN only with ``impute``.
    scaling : {"auto", "minmax", "standard", "none"}
        The requested scaling.
    output_activation : str
        The model's output activation; a sigmoid cannot produce targets outside [0, 1].
        ``"auto"``: sigmoid for images, linear for tables.
    impute : {"mean", "median"}, optional
        Fill NaN with each feature's mean or median over ``X`` (the training rows); the
        scaling is then fitted on the filled data.

    Returns
    -------
    Scaler

    Raises
    ------
    ConfigError
        When the scaled targets would fall outside [0, 1] under a sigmoid output.

    Examples
    --------
    >>> import numpy as np
    >>> fit_scaler(np.array([[0, 255]], dtype=np.uint8), "auto").kind
    'uint8'
    >>> fit_scaler(np.array([[0.2, 0.9]]), "auto").kind
    'identity'
    >>> fit_scaler(np.array([[3.0, 200.0], [5.0, 400.0]]), "auto", output_activation="auto").kind
    'standard'
    >>> X = np.array([[1.0], [np.nan], [3.0], [10.0]])
    >>> s = fit_scaler(X, "minmax", impute="median")
    >>> s.fill.tolist(), s.transform(np.array([[np.nan]])).tolist()
    ([3.0], [[0.2222222238779068]])
    """
    fill = fit_fill(X, impute) if impute is not None else None
    filler = Scaler("identity", np.zeros(0), np.ones(0), fill=fill)
    blocks = (filler.fill_missing(b) for b in row_blocks(X))
    stats = feature_stats(blocks, moments=needs_moments(scaling, output_activation))
    scaler = scaler_from_stats(stats, X.dtype, scaling, output_activation, stacklevel=4)
    scaler.fill, scaler.impute = fill, impute
    return scaler


def fit_fill(X: np.ndarray, impute: str) -> np.ndarray:
    """Each feature's ``"mean"`` or ``"median"`` over the rows of ``X``, NaN left out: the values imputed for NaN.

    Raises
    ------
    ConfigError
        For an unknown ``impute``.
    DataError
        When a feature has no value at all (every row NaN): nothing to fill it from.

    Examples
    --------
    >>> fit_fill(np.array([[1.0, np.nan], [2.0, 4.0], [9.0, 6.0]]), "median").tolist()
    [2.0, 5.0]
    """
    if impute not in ("mean", "median"):
        raise ConfigError(f"impute={impute!r} is not known; allowed: 'mean', 'median', None.")
    A = np.asarray(X)
    if A.dtype.kind != "f":
        return np.asarray(A.mean(axis=0) if impute == "mean" else np.median(A, axis=0), dtype=np.float64)
    empty = np.flatnonzero(np.isnan(A).all(axis=0)) if len(A) else np.arange(A.shape[1])
    if len(empty):
        raise DataError(
            f"Feature(s) {empty[:10].tolist()} have no value in any training row (all missing); impute has "
            "nothing to fill them from. Drop those columns (--drop) or fill them yourself."
        )
    stat = np.nanmean if impute == "mean" else np.nanmedian
    return np.asarray(stat(A.astype(np.float64, copy=False), axis=0), dtype=np.float64)


def auto_output(scaler: Scaler | str) -> str:
    """The output activation that follows the data under ``scaling="auto"``: linear for a table, else sigmoid.

    A model whose output was left at its default sigmoid gets this from its fitted
    scaling (a :class:`Scaler` or its kind): a table, standardised, is reconstructed
    through a linear output; images (uint8, or already in [0, 1]) keep the sigmoid, and
    so does data min-max scaled to [0, 1] (models saved before tables were told apart).

    Examples
    --------
    >>> X = np.array([[0.0, 120.0], [1.0, 80.0]])
    >>> auto_output(fit_scaler(X, "auto", output_activation="auto"))
    'linear'
    >>> auto_output(fit_scaler(np.array([[0, 255]], dtype=np.uint8), "auto", output_activation="auto"))
    'sigmoid'
    """
    kind = scaler if isinstance(scaler, str) else scaler.kind
    return "linear" if kind == "standard" else "sigmoid"


def needs_moments(scaling: str, output_activation: str) -> bool:
    """Whether choosing ``scaling`` may need the features' means and variances, not only their ranges.

    Only standardising uses them, which ``"auto"`` picks for a table unless the output is
    a sigmoid; the ranges alone take one cheap pass in the data's own dtype.

    Examples
    --------
    >>> needs_moments("auto", "sigmoid"), needs_moments("standard", "sigmoid")
    (False, True)
    """
    return scaling == "standard" or (scaling == "auto" and output_activation != "sigmoid")


def row_blocks(X: Any, values: int = TRANSFORM_BLOCK) -> Iterator[np.ndarray]:
    """Yield ``X`` (anything sliceable by rows: array, memmap, zarr) in blocks of about ``values`` values.

    Examples
    --------
    >>> [b.shape for b in row_blocks(np.zeros((5, 2)), values=4)]
    [(2, 2), (2, 2), (1, 2)]
    """
    rows = max(1, values // max(1, X.shape[1]))
    for start in range(0, X.shape[0], rows):
        yield np.asarray(X[start : start + rows])


@dataclass
class FeatureStats:
    """Per-feature count, min and max, and optionally mean and sum of squared deviations, merged block by block.

    Blocks are merged with Chan et al.'s pairwise update, so the mean and variance of data
    far larger than memory come out as accurate as NumPy's on the whole array. Minima and
    maxima are taken in the data's own dtype (exact, and NaN-propagating); the moments
    need a float64 copy of each block, so they are only computed when asked for
    (``mean`` and ``m2`` are ``None`` otherwise).

    Examples
    --------
    >>> X = np.arange(12.0).reshape(6, 2)
    >>> s = feature_stats([X[:4], X[4:]])
    >>> bool(np.allclose(s.std, X.std(axis=0))), s.min.tolist(), s.max.tolist()
    (True, [0.0, 1.0], [10.0, 11.0])
    """

    n: int
    min: np.ndarray
    max: np.ndarray
    mean: np.ndarray | None = None
    m2: np.ndarray | None = None

    @property
    def std(self) -> np.ndarray:
        """Population standard deviation per feature (as ``np.std``)."""
        if self.m2 is None:
            raise ValueError("These statistics were computed without moments; use feature_stats(..., moments=True).")
        return np.sqrt(self.m2 / max(self.n, 1))

    def update(self, block: np.ndarray) -> None:
        """Merge the statistics of ``block`` (rows, n_features) into these."""
        block = np.asarray(block)
        if block.shape[0] == 0:
            return
        nb = block.shape[0]
        self.min = np.minimum(self.min, block.min(axis=0))
        self.max = np.maximum(self.max, block.max(axis=0))
        if self.mean is not None and self.m2 is not None:
            b = block.astype(np.float64, copy=False)
            mean_b = b.mean(axis=0)
            m2_b = ((b - mean_b) ** 2).sum(axis=0)
            n = self.n + nb
            delta = mean_b - self.mean
            self.mean = self.mean + delta * (nb / n)
            self.m2 = self.m2 + m2_b + delta**2 * (self.n * nb / n)
        self.n += nb


def feature_stats(blocks: Iterable[np.ndarray], *, moments: bool = True) -> FeatureStats:
    """Statistics of the rows of all ``blocks`` together, in one streaming pass.

    Parameters
    ----------
    blocks : iterable of ndarray of shape (rows, n_features)
    moments : bool, default=True
        Also the mean and variance (float64 arithmetic); without them the pass only
        takes the minima and maxima, several times faster.

    Examples
    --------
    >>> feature_stats([np.array([[1.0], [3.0]])]).mean.tolist()
    [2.0]
    >>> feature_stats([np.array([[1.0], [3.0]])], moments=False).max.tolist()
    [3.0]
    """
    stats = None
    for block in blocks:
        if stats is None:
            d = block.shape[1]
            stats = FeatureStats(0, np.full(d, np.inf), np.full(d, -np.inf))
            if moments:
                stats.mean, stats.m2 = np.zeros(d), np.zeros(d)
        stats.update(block)
    if stats is None or stats.n == 0:
        raise ConfigError("Cannot fit a scaling on zero samples; pass at least one row.")
    stats.min, stats.max = stats.min.astype(np.float64), stats.max.astype(np.float64)
    return stats


def scaled_range(stats: FeatureStats, scaler: Scaler) -> tuple[float, float]:
    """The smallest and largest value of the data behind ``stats`` once ``scaler`` is applied (in float32).

    They follow from the per-feature extremes (every scale is positive): no second pass.

    Examples
    --------
    >>> stats = feature_stats([np.array([[0.0, 10.0], [2.0, 30.0]])])
    >>> scaled_range(stats, Scaler("minmax", np.array([0.0, 10.0]), np.array([4.0, 20.0])))
    (0.0, 1.0)
    """
    lo = float(((stats.min - scaler.offset) / scaler.scale).astype(np.float32).min())
    hi = float(((stats.max - scaler.offset) / scaler.scale).astype(np.float32).max())
    return lo, hi


def scaler_from_stats(
    stats: FeatureStats, dtype: Any, scaling: str, output_activation: str = "sigmoid", *, stacklevel: int = 3
) -> Scaler:
    """The :class:`Scaler` that :func:`fit_scaler` would choose, from streamed statistics.

    This is how data larger than memory is scaled: one pass of :func:`feature_stats`
    over its blocks, then this (see :mod:`lucidae.streaming`).

    Examples
    --------
    >>> X = np.array([[0.0, 10.0], [2.0, 30.0]])
    >>> scaler_from_stats(feature_stats([X]), X.dtype, "minmax").scale.tolist()
    [2.0, 20.0]
    """
    n_features = stats.min.shape[0]
    ones, zeros = np.ones(n_features), np.zeros(n_features)
    if scaling == "auto":
        if np.dtype(dtype) == np.uint8:
            return Scaler("uint8", zeros, np.full(n_features, 255.0))
        lo, hi = float(stats.min.min()), float(stats.max.max())
        if 0.0 <= lo and hi <= 1.0:
            if 0.0 < hi <= 1.0 / 255.0 + 1e-6:
                warnings.warn(
                    f"All values lie in [0, {hi:.3g}], that is at most 1/255: the data looks "
                    "divided by 255 twice. Pass the data as loaded (uint8 or already in [0, 1]); "
                    "lucidae scales it for you.",
                    UserWarning,
                    stacklevel=stacklevel,
                )
            return Scaler("identity", zeros, ones)
        scaling = "minmax" if output_activation == "sigmoid" else "standard"
    if scaling == "minmax":
        span = stats.max - stats.min
        return Scaler("minmax", stats.min.copy(), np.where(span > 0, span, 1.0))
    if scaling == "standard":
        std = stats.std
        scaler = Scaler("standard", np.array(stats.mean), np.where(std > 0, std, 1.0))
    elif scaling == "none":
        scaler = Scaler("identity", zeros, ones)
    else:
        raise ConfigError(f"scaling={scaling!r} is not known; allowed: 'auto', 'minmax', 'standard', None.")
    if output_activation == "sigmoid":
        lo, hi = scaled_range(stats, scaler)
        if lo < 0.0 or hi > 1.0:
            raise ConfigError(
                f"With scaling={scaling!r} the training targets span [{lo:.3g}, {hi:.3g}], but a "
                "sigmoid output can only produce values in [0, 1]. Use scaling='auto' or "
                "'minmax', or set output_activation='linear'."
            )
    return scaler
