"""Readers for data files a user points lucidae at: idx (MNIST), .npy, .npz, .csv.

Nothing is downloaded: every loader reads a path the user gives. Headers are checked
against the file size before any large allocation, and every failure is a
:class:`~lucidae.errors.DataError` that names the file and what was wrong with it.
"""

from __future__ import annotations

import gzip
import io
import math
import os
import struct
import zipfile
import zlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from lucidae.arrays import check_memory, check_npy, check_npz
from lucidae.datasets.base import Dataset, GeneratedNames
from lucidae.datasets.tables import read_table
from lucidae.errors import DataError

IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
"""The idx format's type codes (http://yann.lecun.com/exdb/mnist/, "THE IDX FILE FORMAT")."""

MAX_IDX_BYTES = 1 << 34
"""An idx payload larger than 16 GiB is refused as implausible before it is read."""


MAX_IDX_DIMS = 16
"""An idx header declaring more dimensions than this is refused (MNIST uses 1 and 3)."""


def _read_at_most(fh: io.BufferedIOBase, n: int, chunk: int = 1 << 24) -> bytes:
    """Read up to ``n`` bytes in chunks, so a gzip header that lies about its size costs only what is there."""
    parts, left = [], n
    while left > 0:
        part = fh.read(min(chunk, left))
        if not part:
            break
        parts.append(part)
        left -= len(part)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _open(path: Path) -> io.BufferedIOBase:
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")  # type: ignore[return-value]


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one idx file (optionally gzip-compressed) into an array.

    Parameters
    ----------
    path : path-like
        An ``.idx``/``-ubyte`` file or its ``.gz``.

    Returns
    -------
    ndarray
        Of the shape and dtype the header declares (native byte order).

    Raises
    ------
    DataError
        When the header is malformed or the payload is shorter or longer than declared.

    Examples
    --------
    >>> import gzip, struct, tempfile, pathlib, numpy as np
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x-idx1-ubyte.gz"
    >>> with gzip.open(p, "wb") as f:
    ...     _ = f.write(struct.pack(">BBBBI", 0, 0, 8, 1, 3) + bytes([1, 2, 3]))
    >>> read_idx(p)
    array([1, 2, 3], dtype=uint8)
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} does not exist or is not a file.")
    try:
        with _open(path) as fh:
            head = fh.read(4)
            if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] not in IDX_DTYPES or head[3] == 0:
                raise DataError(
                    f"{path} is not an idx file: its first 4 bytes are {head!r}, expected "
                    "0x00 0x00 <type code> <number of dimensions>."
                )
            dtype, ndim = IDX_DTYPES[head[2]], head[3]
            if ndim > MAX_IDX_DIMS:
                raise DataError(f"{path} declares {ndim} dimensions; idx data has at most {MAX_IDX_DIMS}.")
            dims_raw = fh.read(4 * ndim)
            if len(dims_raw) < 4 * ndim:
                raise DataError(f"{path} ends inside its header ({ndim} dimensions declared).")
            dims = struct.unpack(f">{ndim}I", dims_raw)
            # Python ints: numpy's int64 product wraps around for dimensions near 2**32. Zero
            # sizes are counted as 1 because numpy refuses (0, 2**32-1, 2**32-1) all the same.
            expected = math.prod(dims) * dtype.itemsize
            if max(expected, math.prod(max(d, 1) for d in dims) * dtype.itemsize) > MAX_IDX_BYTES:
                raise DataError(f"{path} declares shape {dims} ({expected} bytes); that is implausibly large.")
            if path.suffix != ".gz" and expected > path.stat().st_size:
                raise DataError(
                    f"{path} is truncated: its header declares shape {dims} ({expected} bytes of data) "
                    f"but the whole file has {path.stat().st_size} bytes."
                )
            # the chunks and their joined copy, then the array: about twice the payload at the peak
            check_memory(2 * expected, f"{path} (declared shape {dims})")
            payload = _read_at_most(fh, expected)
            if len(payload) != expected:
                raise DataError(
                    f"{path} is truncated: its header declares shape {dims} ({expected} bytes of data) "
                    f"but only {len(payload)} bytes follow."
                )
            if fh.read(1):
                raise DataError(f"{path} has data after the {expected} bytes its header declares.")
    except (OSError, EOFError, zlib.error) as err:  # BadGzipFile is an OSError
        raise DataError(f"{path} could not be read as an idx file: {err}") from err
    return np.frombuffer(payload, dtype=dtype).reshape(dims).astype(dtype.newbyteorder("="))


def _find(folder: Path, stem: str) -> Path:
    for name in (f"{stem}.gz", stem, stem.replace("-idx", ".idx")):
        if (folder / name).is_file():
            return folder / name
    raise DataError(
        f"{folder} has no {stem}.gz (or uncompressed {stem}). Put the four standard MNIST-format "
        "files (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, "
        "t10k-labels-idx1-ubyte.gz) in that folder."
    )


def _load_idx_pair(path: str | os.PathLike, split: str, name: str) -> Dataset:
    folder = Path(path)
    if not folder.is_dir():
        raise DataError(f"{folder} is not a folder. Pass the folder that holds the idx .gz files.")
    prefixes = {"train": ["train"], "test": ["t10k"], "all": ["train", "t10k"]}
    if split not in prefixes:
        raise DataError(f"split={split!r} is not known; use 'train', 'test' or 'all'.")
    images, labels = [], []
    for prefix in prefixes[split]:
        x = read_idx(_find(folder, f"{prefix}-images-idx3-ubyte"))
        y = read_idx(_find(folder, f"{prefix}-labels-idx1-ubyte"))
        if x.ndim != 3 or y.ndim != 1 or x.shape[0] != y.shape[0]:
            raise DataError(
                f"{folder}: {prefix} images have shape {x.shape} and labels {y.shape}; expected "
                "(n, height, width) images and (n,) labels with the same n."
            )
        if images and x.shape[1:] != images[0].shape[1:]:
            raise DataError(
                f"{folder}: {prefix} images are {x.shape[1]}x{x.shape[2]} but the others are "
                f"{images[0].shape[1]}x{images[0].shape[2]}; all images must have the same size."
            )
        images.append(x)
        labels.append(y)
    X = np.concatenate(images)
    if X.shape[0] == 0 or X.shape[1] * X.shape[2] == 0:
        raise DataError(f"{folder}: the {split} images have shape {X.shape}; there is nothing to train on.")
    h, w = X.shape[1:]
    return Dataset(
        X=X.reshape(len(X), h * w),
        y=np.concatenate(labels).astype(np.int64),
        feature_names=GeneratedNames(h * w, image=(h, w)),  # made when read: a file may declare millions
        image_shape=(h, w),
        name=name,
        description=f"{name} ({split}) read from {folder}: uint8 pixels, {h}x{w}.",
    )


def load_mnist(path: str | os.PathLike, split: str = "train") -> Dataset:
    """Read MNIST from the standard idx files in folder ``path``; nothing is downloaded.

    Parameters
    ----------
    path : path-like
        Folder with ``train-images-idx3-ubyte.gz``, ``train-labels-idx1-ubyte.gz``,
        ``t10k-images-idx3-ubyte.gz`` and ``t10k-labels-idx1-ubyte.gz`` (``.gz`` optional).
    split : {"train", "test", "all"}
        Which files to read.

    Returns
    -------
    Dataset
        ``X`` is uint8 of shape (n, 784) (lucidae's ``scaling="auto"`` maps it to
        [0, 1]: do not divide by 255 yourself), ``y`` the digit labels.

    Examples
    --------
    >>> ds = load_mnist("~/data/mnist")  # doctest: +SKIP
    >>> ds.X.shape, ds.X.dtype  # doctest: +SKIP
    ((60000, 784), dtype('uint8'))
    """
    return _load_idx_pair(Path(path).expanduser(), split, "mnist")


def load_fashion_mnist(path: str | os.PathLike, split: str = "train") -> Dataset:
    """Read Fashion-MNIST (same idx layout and file names as MNIST) from folder ``path``.

    See :func:`load_mnist` for the parameters.

    Examples
    --------
    >>> ds = load_fashion_mnist("~/data/fashion")  # doctest: +SKIP
    """
    return _load_idx_pair(Path(path).expanduser(), split, "fashion_mnist")


def _as_dataset(arr: np.ndarray, path: Path, y: np.ndarray | None = None) -> Dataset:
    if arr.ndim < 2:
        raise DataError(f"{path} holds an array of shape {arr.shape}; expected (n_samples, n_features) or images.")
    if arr.dtype.kind not in "biuf":
        raise DataError(f"{path} holds dtype {arr.dtype}; expected numbers (int, uint or float).")
    if arr.size == 0:
        raise DataError(f"{path} holds an empty array of shape {arr.shape}; there is nothing to train on.")
    image_shape = tuple(int(s) for s in arr.shape[1:]) if arr.ndim in (3, 4) else None
    X = arr.reshape(arr.shape[0], math.prod(arr.shape[1:])) if arr.ndim > 2 else arr
    if y is not None and y.shape != (X.shape[0],):
        raise DataError(f"{path}: labels 'y' have shape {y.shape} but there are {X.shape[0]} samples.")
    return Dataset(
        X=X,
        y=y,
        feature_names=GeneratedNames(X.shape[1]),
        image_shape=image_shape,
        name=path.stem,
        description=f"Array read from {path}.",
    )


def load_array(
    path: str | os.PathLike,
    *,
    key: str | None = None,
    target_column: str | None = None,
    mmap: bool = False,
    id_column: str | None = None,
    drop: str | Iterable[str] | None = None,
    delimiter: str | None = None,
    impute: str | None = None,
) -> Dataset:
    """Read a data matrix from ``.npy``, ``.npz`` or ``.csv``.

    Parameters
    ----------
    path : path-like
        The file. ``.npy``/``.npz`` arrays of shape (n, h, w) or (n, c, h, w) are
        flattened and their image shape kept.
    key : str, optional
        Array to use in an ``.npz``; default ``"X"`` if present, else the only array.
        A ``"y"`` array, when present, becomes the labels.
    target_column : str, optional
        CSV column to use as labels instead of as a feature.
    mmap : bool
        Open a ``.npy`` as a read-only memory map instead of reading it into memory.
    id_column : str, optional
        CSV column that identifies the rows: kept out of the features, returned as
        ``Dataset.ids`` (strings), which ``encode`` and ``detect`` write as their first column.
    drop : str or list of str, optional
        CSV columns to leave out, as ``"a,b"`` or a list.
    delimiter : str, optional
        The CSV's field separator (``","``, ``";"``, ``"tab"``, ...); sniffed from the first lines when not given.
    impute : {"mean", "median"}, optional
        Missing cells (empty, ``NA``, ``nan``, ...) are read as NaN, for the estimator's
        ``impute`` to fill from its training rows. Without it they are an error that names
        the first few by their line in the file and their column.

    Returns
    -------
    Dataset
        For CSV files with a header, ``feature_names`` are the column names.

    Raises
    ------
    DataError
        For a missing file, an unknown suffix, non-numeric CSV columns (named, with a
        line), missing cells without ``impute``, ragged rows, or an array that is not numeric.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
    >>> _ = p.write_text("a,b\\n1,2\\n3,4\\n")
    >>> ds = load_array(p)
    >>> ds.feature_names, ds.X.tolist()
    (['a', 'b'], [[1.0, 2.0], [3.0, 4.0]])
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"{path} does not exist or is not a file.")
    if impute is not None and impute not in ("mean", "median"):
        raise DataError(f"impute={impute!r} is not known; use 'mean', 'median' or None.")
    suffix = path.suffix.lower()
    table_only = {"id_column": id_column, "drop": drop, "delimiter": delimiter}
    if suffix != ".csv" and any(v not in (None, "", [], ()) for v in table_only.values()):
        given = [k for k, v in table_only.items() if v not in (None, "", [], ())]
        raise DataError(f"{given} apply to .csv tables only, but {path} is a {suffix} file; leave them out.")
    try:
        # The header checks come first: np.load allocates whatever shape a header declares.
        if suffix == ".npy":
            check_npy(path)
            if not mmap:  # read whole: the memory must hold it (a memory map reads it as it goes)
                check_memory(path.stat().st_size, str(path))
            arr = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
            return _checked(_as_dataset(arr, path), path, impute)
        if suffix == ".npz":
            check_npz(path)
            with np.load(path, allow_pickle=False) as archive:
                names = list(archive.files)
                chosen = key or ("X" if "X" in names else names[0] if len(names) == 1 else None)
                if chosen is None or chosen not in names:
                    raise DataError(
                        f"{path} holds arrays {names}; say which with key=... (for example key={names[0]!r})."
                    )
                y = archive["y"] if "y" in names and chosen != "y" else None
                return _checked(_as_dataset(archive[chosen], path, y), path, impute)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        if isinstance(err, DataError):
            raise
        raise DataError(f"{path} could not be read as {suffix}: {str(err)[:200]}") from err
    if suffix == ".csv":
        return read_table(
            path, id_column=id_column, drop=drop, target_column=target_column, delimiter=delimiter, impute=impute
        )
    raise DataError(f"{path}: unknown file type {suffix!r}; lucidae reads .npy, .npz, .csv and idx folders.")


def _checked(ds: Dataset, path: Path, impute: str | None) -> Dataset:
    """Refuse NaN (unless ``impute``) and infinity in an array read into memory, by its row in the file."""
    X = ds.X
    if isinstance(X, np.memmap) or X.dtype.kind != "f" or X.size == 0:
        return ds  # a memory map is checked as it streams; integers cannot hold NaN
    if np.isfinite(X.min()) and np.isfinite(X.max()):
        return ds
    if np.isinf(X).any():
        row = int(np.argwhere(np.isinf(X))[0][0])
        raise DataError(f"{path} holds {int(np.isinf(X).sum())} infinite value(s); the first in row {row}.")
    if impute is None:
        rows = np.unique(np.argwhere(np.isnan(X))[:, 0])
        raise DataError(
            f"{path} holds {int(np.isnan(X).sum())} NaN value(s) in {len(rows)} row(s) (rows "
            f"{', '.join(str(int(r)) for r in rows[:5])}{', ...' if len(rows) > 5 else ''}, counted from 0). "
            "Pass impute='median' (--impute median) to fill them from the training rows, or remove them."
        )
    return ds
