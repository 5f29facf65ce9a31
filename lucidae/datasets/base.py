"""The :class:`Dataset` record every loader and generator returns."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Dataset:
    """A data matrix with what lucidae needs to explain models trained on it.

    Examples
    --------
    >>> import numpy as np
    >>> ds = Dataset(X=np.zeros((2, 4)), image_shape=(2, 2))
    >>> ds.n_samples, ds.n_features
    (2, 4)
    """

    X: np.ndarray
    """Samples, shape (n_samples, n_features); images are flattened row-major."""
    y: np.ndarray | None = None
    """Labels, shape (n_samples,), when the data has them."""
    feature_names: list[str] = field(default_factory=list)
    """One name per column (filled with ``x0, x1, ...`` when empty)."""
    image_shape: tuple[int, ...] | None = None
    """(height, width) or (channels, height, width) when each row is an image."""
    name: str = "data"
    """Short name used in reports and run folders."""
    description: str = ""
    """One sentence on where the data came from and its units."""
    factors: np.ndarray | None = None
    """Known generative factors, shape (n_samples, n_factors), for disentanglement metrics."""
    factor_names: list[str] | None = None
    """Names of the columns of ``factors``."""

    def __post_init__(self) -> None:
        if not self.feature_names:
            self.feature_names = [f"x{i}" for i in range(self.X.shape[1])]

    @property
    def n_samples(self) -> int:
        """Number of rows."""
        return int(self.X.shape[0])

    @property
    def n_features(self) -> int:
        """Number of columns."""
        return int(self.X.shape[1])
