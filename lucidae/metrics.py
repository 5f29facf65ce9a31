"""Fidelity and interpretability metrics, each with its formula and reference."""

from __future__ import annotations

import numpy as np


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
