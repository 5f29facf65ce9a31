"""Reconstruction fidelity, how close a reconstruction ``x_hat`` is to its input ``x``:
mean squared error, fraction of variance unexplained (about the data mean), explained
variance and PSNR, each on whole arrays or streamed over batches with
:class:`FidelityAccumulator` (:func:`fidelity` reports them all in one pass)."""

from __future__ import annotations

from typing import Any

import numpy as np

from lucidae.errors import DataError
from lucidae.metrics._inputs import _numpy


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
