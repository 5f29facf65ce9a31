"""The :class:`Dataset` record every loader and generator returns."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

import numpy as np


class GeneratedNames(Sequence[str]):
    """Feature names made when asked: ``x0, x1, ...``, or ``px{row}_{col}`` for an image of ``shape``.

    A file can declare millions of features; a list of their names would cost far more
    than the data. This holds only the count (and the image shape) and makes each name
    when it is read; it compares equal to the list it stands for.

    Examples
    --------
    >>> names = GeneratedNames(3)
    >>> len(names), names[1], list(names), names == ["x0", "x1", "x2"]
    (3, 'x1', ['x0', 'x1', 'x2'], True)
    >>> list(GeneratedNames(4, image=(2, 2)))
    ['px0_0', 'px0_1', 'px1_0', 'px1_1']
    """

    def __init__(self, n: int, image: tuple[int, ...] | None = None):
        self.n = int(n)
        self.width = int(image[-1]) if image is not None and len(image) == 2 else None
        if self.width is not None and math.prod(image or ()) != self.n:
            raise ValueError(f"image shape {image} does not hold {n} features")

    def __len__(self) -> int:
        return self.n

    def _name(self, i: int) -> str:
        return f"x{i}" if self.width is None else f"px{i // self.width}_{i % self.width}"

    @overload
    def __getitem__(self, i: int) -> str: ...
    @overload
    def __getitem__(self, i: slice) -> list[str]: ...
    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self._name(j) for j in range(*i.indices(self.n))]
        j = int(i) + self.n if int(i) < 0 else int(i)
        if not 0 <= j < self.n:
            raise IndexError(f"feature {i} of {self.n}")
        return self._name(j)

    def __iter__(self) -> Iterator[str]:
        return (self._name(i) for i in range(self.n))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, GeneratedNames):
            return (self.n, self.width) == (other.n, other.width)
        if isinstance(other, (list, tuple)):
            return len(other) == self.n and all(a == b for a, b in zip(self, other))
        return NotImplemented

    def __repr__(self) -> str:
        return f"GeneratedNames({self.n}{'' if self.width is None else f', width={self.width}'})"


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
    feature_names: Sequence[str] = field(default_factory=list)
    """One name per column (``x0, x1, ...`` when empty, made only when read: :class:`GeneratedNames`)."""
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
    ids: np.ndarray | None = None
    """Shape (n_samples,): the values of the table's id column (``id_column``), as strings, which
    the commands write as the first column of their outputs (codes, scores); None without one."""

    def __post_init__(self) -> None:
        if not len(self.feature_names):
            self.feature_names = GeneratedNames(self.X.shape[1])

    @property
    def n_samples(self) -> int:
        """Number of rows."""
        return int(self.X.shape[0])

    @property
    def n_features(self) -> int:
        """Number of columns."""
        return int(self.X.shape[1])
