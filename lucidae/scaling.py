"""Input scaling that is fitted once, stored with the model and undone on the way out.

The classic tutorial divides images by 255 even when they are already in [0, 1],
which silently trains a model on near-black data. Here the scaling is chosen from the
data (``"auto"``), stored with the model (``offset`` and ``scale`` per feature) and
inverted by ``inverse_transform`` and ``reconstruct``; data that looks divided by 255
twice gets a warning, and a sigmoid output on targets outside [0, 1] is refused.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from lucidae.errors import ConfigError


@dataclass
class Scaler:
    """Affine per-feature scaling ``x_scaled = (x - offset) / scale``.

    Parameters
    ----------
    kind : str
        What was fitted: ``"uint8"`` (divide by 255), ``"identity"``, ``"minmax"`` or ``"standard"``.
    offset, scale : ndarray of shape (n_features,)
        The affine map, float64.

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

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Scale ``X`` (n_samples, n_features) into the model's space, as float32."""
        out = (np.asarray(X, dtype=np.float64) - self.offset) / self.scale
        return out.astype(np.float32)

    def inverse_transform(self, X: np.ndarray) -> np.ndarray:
        """Map model-space values back to the original units, as float32."""
        return (np.asarray(X, dtype=np.float64) * self.scale + self.offset).astype(np.float32)


def fit_scaler(X: np.ndarray, scaling: str, *, output_activation: str = "sigmoid") -> Scaler:
    """Choose and fit the scaling for training data ``X``.

    ``"auto"`` picks, in order: uint8 input -> divide by 255; data already in [0, 1] ->
    keep as is; otherwise min-max to [0, 1] when the output is a sigmoid, else
    standardise. A constant feature gets scale 1 so nothing is divided by zero.

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
        Training data in its original units and dtype.
    scaling : {"auto", "minmax", "standard", "none"}
        The requested scaling.
    output_activation : str
        The model's output activation; a sigmoid cannot produce targets outside [0, 1].

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
    """
    n_features = X.shape[1]
    ones, zeros = np.ones(n_features), np.zeros(n_features)
    if scaling == "auto":
        if X.dtype == np.uint8:
            return Scaler("uint8", zeros, np.full(n_features, 255.0))
        lo, hi = float(np.min(X)), float(np.max(X))
        if 0.0 <= lo and hi <= 1.0:
            if 0.0 < hi <= 1.0 / 255.0 + 1e-6:
                warnings.warn(
                    f"All values lie in [0, {hi:.3g}], that is at most 1/255: the data looks "
                    "divided by 255 twice. Pass the data as loaded (uint8 or already in [0, 1]); "
                    "lucidae scales it for you.",
                    UserWarning,
                    stacklevel=3,
                )
            return Scaler("identity", zeros, ones)
        scaling = "minmax" if output_activation == "sigmoid" else "standard"
    X64 = np.asarray(X, dtype=np.float64)
    if scaling == "minmax":
        lo_f, hi_f = X64.min(axis=0), X64.max(axis=0)
        span = hi_f - lo_f
        return Scaler("minmax", lo_f, np.where(span > 0, span, 1.0))
    if scaling == "standard":
        std = X64.std(axis=0)
        scaler = Scaler("standard", X64.mean(axis=0), np.where(std > 0, std, 1.0))
    elif scaling == "none":
        scaler = Scaler("identity", zeros, ones)
    else:
        raise ConfigError(f"scaling={scaling!r} is not known; allowed: 'auto', 'minmax', 'standard', None.")
    if output_activation == "sigmoid":
        scaled = scaler.transform(X64)
        lo, hi = float(scaled.min()), float(scaled.max())
        if lo < 0.0 or hi > 1.0:
            raise ConfigError(
                f"With scaling={scaling!r} the training targets span [{lo:.3g}, {hi:.3g}], but a "
                "sigmoid output can only produce values in [0, 1]. Use scaling='auto' or "
                "'minmax', or set output_activation='linear'."
            )
    return scaler
