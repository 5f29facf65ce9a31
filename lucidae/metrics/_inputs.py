"""Input checks and array helpers that the metrics modules share: codes and factors as
2-D numeric arrays with one row per sample, tensors and array-likes as float64 NumPy
arrays, and one array or an iterable of batches streamed as 2-D batches."""

from __future__ import annotations

from typing import Any

import numpy as np

from lucidae.errors import DataError


# ---------------------------------------------------------------------- input checks
def _as_2d(name: str, values: Any) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise DataError(f"{name} must be a 2-D array (n_samples, n_columns), got shape {arr.shape}.")
    if arr.dtype.kind not in "biuf":
        raise DataError(f"{name} must be numeric, got dtype {arr.dtype}. Encode labels as integers first.")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise DataError(f"{name} contains NaN or infinite values; remove them before measuring.")
    return arr


def _pair(codes: Any, factors: Any) -> tuple[np.ndarray, np.ndarray]:
    Z = _as_2d("codes", codes)
    V = _as_2d("factors", factors)
    if len(Z) != len(V):
        raise DataError(f"codes has {len(Z)} samples but factors has {len(V)}; pass one row of factors per code.")
    if len(Z) < 2:
        raise DataError(f"Need at least 2 samples to measure, got {len(Z)}.")
    return Z, V


def _is_discrete(V: np.ndarray, n_bins: int) -> np.ndarray:
    """Per column of ``V``, whether it has at most ``n_bins`` distinct values (a categorical factor)."""
    return np.array([len(np.unique(V[:, k])) <= n_bins for k in range(V.shape[1])])


# ---------------------------------------------------------------------- streaming helpers
def _numpy(batch: Any) -> np.ndarray:
    if hasattr(batch, "detach"):  # a torch tensor
        batch = batch.detach().cpu().numpy()
    return np.asarray(batch, dtype=np.float64)


def _is_single_array(obj: Any) -> bool:
    return hasattr(obj, "shape") and hasattr(obj, "dtype")


def _batches(obj: Any):
    """Yield 2-D float64 batches from one array(-like) or from an iterable of batches."""
    if _is_single_array(obj) or (isinstance(obj, list) and obj and not hasattr(obj[0], "shape")):
        arr = _numpy(obj)
        yield arr[:, None] if arr.ndim == 1 else arr
        return
    for batch in obj:
        arr = _numpy(batch)
        # inside an iterable a 1-D item is one sample (a row), not one column
        yield arr[None, :] if arr.ndim == 1 else arr
