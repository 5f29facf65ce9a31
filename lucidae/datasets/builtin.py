"""Datasets that ship with an installed package: no download, ever."""

from __future__ import annotations

import numpy as np

from lucidae.datasets.base import Dataset


def load_digits() -> Dataset:
    """scikit-learn's bundled 8x8 handwritten digits (1,797 images), lucidae's default data.

    Pixel intensities are stored by scikit-learn as integers 0..16; they are returned
    divided by 16, so ``X`` lies in [0, 1] and lucidae's ``scaling="auto"`` leaves it
    as it is.

    Returns
    -------
    Dataset
        ``X`` float32 of shape (1797, 64), ``y`` the digit (0-9), ``image_shape`` (8, 8).

    Examples
    --------
    >>> ds = load_digits()
    >>> ds.X.shape, float(ds.X.max()), ds.image_shape
    ((1797, 64), 1.0, (8, 8))
    """
    from sklearn.datasets import load_digits as sk_load_digits

    bunch = sk_load_digits()
    return Dataset(
        X=(bunch.data / 16.0).astype(np.float32),
        y=bunch.target.astype(np.int64),
        feature_names=[f"px{r}_{c}" for r in range(8) for c in range(8)],
        image_shape=(8, 8),
        name="digits",
        description="scikit-learn's 8x8 handwritten digits (UCI), intensities 0..16 scaled to [0, 1].",
    )
