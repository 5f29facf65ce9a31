"""Training on data larger than memory: a ``numpy.memmap``, a ``.npy`` path, a zarr array.

The data is read in chunks of rows (:data:`CHUNK_BYTES` of float32 each). Every epoch
the trainer shuffles the order of the chunks, loads :data:`SHUFFLE_CHUNKS` full chunks'
worth of them at a time, scales them, shuffles their rows together and trains on that buffer while the
next one is read in a background thread. Peak memory is a few buffers, whatever the
number of samples; the estimator fits the scaling and checks for NaN in one streaming
pass too (:func:`scan`).

Shuffling is therefore local (within a buffer of chunks, the chunk order changing every
epoch) rather than a global permutation: the usual trade of out-of-core training. Data
stored sorted by class should be shuffled once on disk first.

Examples
--------
>>> import numpy as np, tempfile
>>> path = tempfile.mkdtemp() + "/x.npy"
>>> np.save(path, np.random.default_rng(0).random((100, 8), dtype=np.float32))
>>> source = ChunkSource(open_array(path), chunk_rows=32)
>>> source.n_samples, source.n_chunks, source.read(3).shape
(100, 4, (4, 8))
"""

from __future__ import annotations

import mmap
import os
from pathlib import Path
from typing import Any

import numpy as np

from lucidae.arrays import check_npy
from lucidae.errors import DataError
from lucidae.scaling import TRANSFORM_BLOCK, FeatureStats, Scaler, feature_stats, needs_moments, scaler_from_stats

CHUNK_BYTES = 32 << 20
"""Size of one chunk once converted to float32; the unit of reading and of shuffling chunk order."""

SHUFFLE_CHUNKS = 4
"""Full chunks' worth of rows shuffled together (the shuffle buffer; more, smaller chunks of a small file)."""

MIN_CHUNKS = 32
"""A file smaller than this many chunks of :data:`CHUNK_BYTES` is cut into this many smaller
chunks, so that the validation split (whole chunks) and the shuffled chunk order still have
chunks to work with."""


def is_streamable(X: Any) -> bool:
    """True for inputs that are trained on without loading them: memmap, ``.npy`` path, zarr array.

    Examples
    --------
    >>> is_streamable("data.npy"), is_streamable(np.zeros((2, 2)))
    (True, False)
    """
    if isinstance(X, np.memmap):
        return True
    if isinstance(X, (str, os.PathLike)):
        return str(X).endswith(".npy")
    return type(X).__module__.split(".")[0] == "zarr"


def open_array(X: Any) -> Any:
    """Open a streamable input: a ``.npy`` path becomes a read-only memmap; the rest pass through.

    Raises
    ------
    DataError
        When the file is missing or is not a 2-D numeric ``.npy`` array.

    Examples
    --------
    >>> import tempfile
    >>> path = tempfile.mkdtemp() + "/x.npy"
    >>> np.save(path, np.zeros((3, 2), dtype=np.uint8))
    >>> type(open_array(path)).__name__, open_array(path).shape
    ('memmap', (3, 2))
    """
    if isinstance(X, (str, os.PathLike)):
        path = Path(X)
        if not path.is_file():
            raise DataError(f"{path} does not exist. Pass the path of a .npy file saved with numpy.save.")
        check_npy(path)  # a damaged or lying header is a DataError before numpy parses it
        try:
            X = np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError) as err:
            raise DataError(
                f"{path} could not be opened as a .npy array ({err}). Save it with numpy.save from a numeric 2-D array."
            ) from err
    shape = tuple(getattr(X, "shape", ()))
    dtype = np.dtype(getattr(X, "dtype", object))
    if len(shape) != 2:
        raise DataError(f"Expected a 2-D array (n_samples, n_features), got shape {shape}.")
    if dtype.kind not in "uif" or dtype.itemsize > 8:
        raise DataError(f"Expected numeric data (uint8, integers or floats), got dtype {dtype}.")
    return X


class ChunkSource:
    """Scaled float32 chunks of rows of an on-disk (or any row-sliceable) 2-D array.

    Parameters
    ----------
    array : memmap, zarr array or ndarray of shape (n_samples, n_features)
        The data in its original units.
    scaler : Scaler, optional
        Applied to each chunk as it is read (none: the data is used as float32).
    chunk_rows : int, optional
        Rows per chunk; default :data:`CHUNK_BYTES` worth of float32 rows, or fewer for
        a small array, so that it makes at least :data:`MIN_CHUNKS` chunks.

    Examples
    --------
    >>> src = ChunkSource(np.arange(10, dtype=np.uint8).reshape(5, 2), chunk_rows=2)
    >>> src.n_chunks, src.read(2).tolist()
    (3, [[8.0, 9.0]])
    >>> ChunkSource(np.zeros((1000, 8), dtype=np.float32)).n_chunks
    32
    """

    def __init__(self, array: Any, scaler: Scaler | None = None, chunk_rows: int | None = None):
        self.array = array
        self.scaler = scaler
        self.n_samples, self.n_features = (int(s) for s in array.shape)
        if chunk_rows is None:
            by_size = CHUNK_BYTES // (4 * max(self.n_features, 1))
            chunk_rows = max(1, min(by_size, -(-self.n_samples // MIN_CHUNKS)))
        self.chunk_rows = int(chunk_rows)
        self.n_chunks = max(1, -(-self.n_samples // self.chunk_rows))
        self._file = _whole_file(array)

    def rows(self, chunk: int) -> int:
        """Number of rows in chunk ``chunk`` (only the last may be short)."""
        return min(self.chunk_rows, self.n_samples - chunk * self.chunk_rows)

    def read(self, chunk: int, *, raw: bool = False) -> np.ndarray:
        """Chunk ``chunk`` as a scaled, C-contiguous float32 array ``(rows, n_features)``.

        With ``raw=True``: unscaled, in the data's own dtype.
        """
        start = chunk * self.chunk_rows
        if self._file is not None:
            # read() rather than the mapping: mapped pages would count towards this process's
            # memory until the kernel reclaims them, so the peak would grow with the file
            path, offset = self._file
            row_bytes = self.n_features * self.array.dtype.itemsize
            with open(path, "rb") as fh:
                fh.seek(offset + start * row_bytes)
                flat = np.fromfile(fh, dtype=self.array.dtype, count=self.rows(chunk) * self.n_features)
            block = flat.reshape(-1, self.n_features)  # (rows, features), original dtype
        else:
            block = np.asarray(self.array[start : start + self.chunk_rows])  # (rows, features), original dtype
        if raw:
            return block
        if self.scaler is not None:
            return np.ascontiguousarray(self.scaler.transform(block), dtype=np.float32)
        return np.ascontiguousarray(block, dtype=np.float32)


def _whole_file(array: Any) -> tuple[str, int] | None:
    """``(path, byte offset of the first row)`` when ``array`` is a C-ordered memmap of a file, else None.

    Works for a slice of rows of a mapped file too (``np.load(path, mmap_mode="r")[a:b]``),
    whose ``offset`` attribute numpy copies from the whole mapping: the first row's
    position is measured from the mapping's own start instead.
    """
    if not isinstance(array, np.memmap) or not array.flags.c_contiguous or not getattr(array, "filename", None):
        return None
    mapping = getattr(array, "_mmap", None)
    try:
        size = os.path.getsize(array.filename)
        base = np.frombuffer(mapping, dtype=np.uint8).ctypes.data  # address of the mapping's first byte
    except (OSError, TypeError, ValueError):
        return None
    # numpy maps from the offset rounded down to the allocation granularity
    mapped_from = int(array.offset) - int(array.offset) % mmap.ALLOCATIONGRANULARITY
    offset = mapped_from + (array.ctypes.data - base)
    return (str(array.filename), offset) if offset + array.nbytes <= size else None


STREAM_SHARE = 0.25
"""The commands stream a ``.npy`` file when its rows as float32 would take more than this share of physical memory."""


def stream_threshold() -> int:
    """Bytes of float32 data above which ``lucidae`` commands stream a ``.npy`` rather than load it.

    :data:`STREAM_SHARE` of this machine's physical memory.

    Examples
    --------
    >>> stream_threshold() > 0
    True
    """
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") * STREAM_SHARE)


def should_stream(path: str | os.PathLike) -> bool:
    """Whether the commands should stream the ``.npy`` at ``path`` (too large to load, as float32).

    Examples
    --------
    >>> should_stream("no-such-file.npy")
    False
    """
    path = Path(path)
    if path.suffix != ".npy" or not path.is_file():
        return False
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError):
        return False  # not a plain numeric array: the loader reports why
    return array.ndim >= 2 and array.shape[0] * int(np.prod(array.shape[1:])) * 4 > stream_threshold()


def scan(array: Any, scaling: str, output_activation: str = "sigmoid") -> Scaler:
    """Fit the scaling of ``array`` and check it for NaN and infinity in one streaming pass.

    uint8 data under ``scaling="auto"`` needs no pass at all (it is divided by 255 and
    cannot hold NaN).

    Raises
    ------
    DataError
        At the first non-finite value, naming its row and column.

    Examples
    --------
    >>> scan(np.array([[0.0, 2.0], [1.0, 4.0]]), "minmax").scale.tolist()
    [1.0, 2.0]
    """
    dtype = np.dtype(array.dtype)
    if dtype == np.uint8 and scaling == "auto":
        n_features = array.shape[1]
        return Scaler("uint8", np.zeros(n_features), np.full(n_features, 255.0))

    def checked():
        start = 0
        source = ChunkSource(array, chunk_rows=max(1, TRANSFORM_BLOCK // max(1, array.shape[1])))
        for block in (source.read(i, raw=True) for i in range(source.n_chunks)):
            if dtype.kind == "f" and not np.isfinite(block).all():
                row, col = (int(v) for v in np.argwhere(~np.isfinite(block))[0])
                raise DataError(
                    f"Input contains NaN or infinite values; the first is at row {start + row}, column {col}. "
                    "Remove or impute them before fitting."
                )
            start += len(block)
            yield block

    stats: FeatureStats = feature_stats(checked(), moments=needs_moments(scaling, output_activation))
    return scaler_from_stats(stats, dtype, scaling, output_activation, stacklevel=4)
