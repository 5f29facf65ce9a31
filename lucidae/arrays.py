"""Checks on arrays and data files a user hands lucidae, before they reach torch.

Strings, complex numbers, objects that are not numbers, NaN and infinity each get a
:class:`~lucidae.errors.DataError` that says what and where (how many, first row and
column, the column's name). ``.npy`` and ``.npz`` headers are checked against the bytes
the file holds, so a file that lies about its size cannot trigger a huge allocation, and
nothing is ever unpickled.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from lucidae.errors import DataError


# --------------------------------------------------------------------------- user arrays
def _is_frame(X: Any) -> bool:
    return hasattr(X, "columns") and hasattr(X, "dtypes") and hasattr(X, "iloc")


def check_numeric(X: Any, *, what: str = "X") -> None:
    """Refuse input that cannot be a matrix of real numbers, saying where it goes wrong.

    Strings, bytes and complex numbers are refused outright; an object array (or a
    DataFrame column of objects) is refused at its first element that is not a number.
    Sparse matrices and already-numeric arrays pass through untouched (scikit-learn's
    own checks handle them).

    Parameters
    ----------
    X : array-like
        What the user passed.
    what : str
        Name used in the message.

    Raises
    ------
    DataError
        Naming the dtype, the first offending row and column (or the DataFrame columns), and what to do.

    Examples
    --------
    >>> import numpy as np
    >>> check_numeric(np.ones((2, 2)))
    >>> check_numeric(np.array([[1.0, "a"]], dtype=object))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    lucidae.errors.DataError: X[0, 1] = 'a' is not a number (X has dtype object). ...
    """
    if hasattr(X, "tocsr") or hasattr(X, "toarray"):  # sparse: scikit-learn's message is the standard one
        return
    if isinstance(X, np.ma.MaskedArray):  # np.asarray would drop the mask and read the hidden values
        masked = int(np.ma.count_masked(X))
        if masked:
            raise DataError(
                f"{what} is a masked array with {masked} masked cell(s); lucidae does not ignore a mask. Pass "
                f"{what}.filled(np.nan) with impute='median' (or 'mean') to treat them as missing, or "
                f"{what}.filled(value) to fill them yourself."
            )
    if _is_frame(X):
        bad = []
        for name, dtype in zip(X.columns, X.dtypes):
            kind = getattr(dtype, "kind", "O")
            if kind in "biuf":
                continue
            column = np.asarray(X[name], dtype=object)
            if kind == "c" or not all(_real_number(v) for v in column):
                bad.append(str(name))
        if bad:
            raise DataError(
                f"{what} has non-numeric column(s) {bad}. Encode them as numbers (for example with "
                "sklearn.preprocessing.OrdinalEncoder) or drop them before fitting."
            )
        return
    try:
        arr = np.asarray(X)
    except (ValueError, TypeError) as err:
        raise DataError(
            f"{what} cannot be read as a 2-D array ({err}). Rows must all have the same number of values."
        ) from err
    kind = arr.dtype.kind
    if kind in "USV":
        raise DataError(
            f"{what} holds {'strings' if kind != 'V' else 'records'} (dtype {arr.dtype}), not numbers. "
            f"Convert it first (for example {what}.astype(float) when the strings are numbers)."
        )
    if kind in "Mm":  # numpy would silently turn them into counts of seconds (or days, or ns)
        raise DataError(
            f"{what} holds dates or durations (dtype {arr.dtype}), not plain numbers. Convert them "
            f"explicitly, for example {what}.astype('int64') for counts of the unit in the dtype."
        )
    if kind == "c":
        raise DataError(
            f"Complex data not supported: {what} has dtype {arr.dtype}. Pass the real part, the magnitude, "
            "or real and imaginary parts as separate columns."
        )
    if kind == "O":
        try:  # the common case, numbers in an object array, at C speed
            arr.astype(np.float64)
            return
        except (ValueError, TypeError):
            pass
        for index in np.ndindex(arr.shape):
            value = arr[index]
            # Other objects (dicts, lists) get scikit-learn's TypeError, which its API promises.
            if isinstance(value, (str, bytes)) and not _real_number(value):
                where = ", ".join(str(i) for i in index)
                raise DataError(
                    f"{what}[{where}] = {value!r:.60} is not a number ({what} has dtype object). "
                    "Convert or drop the non-numeric entries before fitting."
                )


def _real_number(value: Any) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return True
    if isinstance(value, (int, float, np.integer, np.floating)):
        return True
    if isinstance(value, (str, bytes)):
        try:
            float(value)
        except ValueError:
            return False
        return True
    return value is None  # None becomes NaN, which check_finite reports with its position


FLOAT32_MAX = float(np.finfo(np.float32).max)
"""Largest magnitude lucidae accepts: the model computes in float32, where anything larger is infinite."""


def check_finite(X: np.ndarray, *, what: str = "Input", action: str = "fitting", allow_nan: bool = False) -> None:
    """Refuse NaN, infinity and values beyond float32's range, saying how many there are and where the first is.

    Finite float64 values larger in magnitude than :data:`FLOAT32_MAX` (about 3.4e38)
    would become infinite in the model's float32 arithmetic, so they are refused too.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        A numeric array.
    what : str
        Name used in the message.
    action : str
        What the user was doing, for the advice.
    allow_nan : bool, default=False
        Let NaN through (missing values an imputer fills); infinity is still refused.

    Raises
    ------
    DataError
        With the count, the first row and column, and a suggestion.

    Examples
    --------
    >>> import numpy as np
    >>> check_finite(np.array([[0.0, 1.0], [np.nan, np.inf]]))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    lucidae.errors.DataError: Input contains 2 NaN or infinite value(s) (1 NaN, 1 infinite); the first is at row 1, ...
    """
    if X.dtype.kind not in "fc":
        return
    if X.dtype.kind == "f" and X.size and np.isfinite(X.min()) and np.isfinite(X.max()):
        # min and max propagate NaN and reach +-inf: two passes without a boolean copy of X
        if max(-float(X.min()), float(X.max())) <= FLOAT32_MAX:
            return
        big = np.argwhere(np.abs(X) > FLOAT32_MAX)
        first = ", ".join(f"{name} {int(v)}" for name, v in zip(("row", "column"), big[0]))
        raise DataError(
            f"{what} holds {len(big)} value(s) beyond float32's range (magnitude above {FLOAT32_MAX:.3g}), "
            f"for example {float(X[tuple(big[0])]):.3g} at {first}. lucidae computes in float32, where they "
            f"would be infinite: rescale the data (for example divide by a power of ten) before {action}."
        )
    if X.size == 0:
        return
    finite = np.isfinite(X)
    if allow_nan:
        finite |= np.isnan(X)
        if finite.all():
            return
    bad = np.argwhere(~finite)
    n_nan = int(np.isnan(X).sum()) if not allow_nan else 0
    first = ", ".join(f"{name} {int(v)}" for name, v in zip(("row", "column"), bad[0]))
    kinds = f"({n_nan} NaN, {len(bad) - n_nan} infinite)" if not allow_nan else "(infinite)"
    advice = (
        f"Remove or impute them before {action} (impute='median' or --impute median fills NaN from the training rows)."
        if not allow_nan
        else f"Remove or replace them before {action}; impute fills only NaN."
    )
    raise DataError(f"{what} contains {len(bad)} NaN or infinite value(s) {kinds}; the first is at {first}. {advice}")


# --------------------------------------------------------------------------- sizes before allocation
MEMORY_SHARE = 0.9
"""Share of the memory available now that one declared allocation may take; more is refused before it is made."""

DEFLATE_RATIO = 1100
"""Deflate expands its input at most about 1032-fold (zlib's technical details), so a member declaring more
than this many times its compressed size does not hold what it declares."""


def available_memory() -> int:
    """Bytes of memory available now: ``MemAvailable`` of ``/proc/meminfo``, else the physical memory.

    Examples
    --------
    >>> available_memory() > 0
    True
    """
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (OSError, ValueError, AttributeError):  # pragma: no cover - not a POSIX system
        return 1 << 40


def check_memory(nbytes: int, what: str) -> None:
    """Refuse an allocation of ``nbytes`` for ``what`` that the memory available now cannot hold.

    Raises
    ------
    DataError
        Naming the size, the memory available and what to do.

    Examples
    --------
    >>> check_memory(1024, "a small file")
    >>> check_memory(1 << 62, "x.npz")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    lucidae.errors.DataError: x.npz needs about 4.6e+18 bytes of memory, but ... are available. ...
    """
    available = available_memory()
    if nbytes > MEMORY_SHARE * available:
        raise DataError(
            f"{what} needs about {nbytes:.2g} bytes of memory, but {available:.2g} are available. The file "
            "declares more data than this machine can hold: check that it is the file you meant, or use a "
            "machine with more memory (a large .npy file can be streamed from disk instead)."
        )


def _check_compression(info: Any, archive_bytes: int, label: str) -> None:
    """Refuse a zip member whose declared size its compressed bytes cannot hold."""
    import zipfile

    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise DataError(
            f"{label} is compressed with zip method {info.compress_type}; numpy writes stored or deflated "
            "members only. Save the arrays again with numpy.savez or numpy.savez_compressed."
        )
    if info.compress_size > archive_bytes:
        raise DataError(f"{label} declares {info.compress_size} compressed bytes, more than the whole file holds.")
    limit = info.compress_size if info.compress_type == zipfile.ZIP_STORED else DEFLATE_RATIO * info.compress_size
    if info.file_size > limit + 1024:
        raise DataError(
            f"{label} declares {info.file_size} bytes, but its {info.compress_size} compressed bytes cannot "
            "hold that much. The file is damaged or made to exhaust memory."
        )


# --------------------------------------------------------------------------- .npy and .npz
MAX_NPY_BYTES = 1 << 36
"""An array declaring more than 64 GiB of data is refused before it is read."""


def _npy_header(fh: Any, available: int, label: str) -> None:
    """Read one .npy header from ``fh`` and check it against the ``available`` bytes that follow its start."""
    from numpy.lib import format as npformat

    version = npformat.read_magic(fh)
    if version == (1, 0):
        shape, _, dtype = npformat.read_array_header_1_0(fh)
    elif version in ((2, 0), (3, 0)):
        shape, _, dtype = npformat.read_array_header_2_0(fh)
    else:  # pragma: no cover - read_magic accepts only what the two readers handle
        raise DataError(f"{label} has .npy format version {version}; numpy writes 1.0 to 3.0.")
    if dtype.hasobject:
        raise DataError(
            f"{label} holds Python objects (dtype {dtype}), which would need pickle; lucidae never "
            "unpickles. Save numeric arrays only."
        )
    data = available - fh.tell()
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes > MAX_NPY_BYTES or nbytes != data:
        raise DataError(
            f"{label} declares shape {shape} of {dtype} ({nbytes} bytes) but holds {data} bytes of data. "
            "The file is damaged or truncated."
        )


def check_npy(path: str | os.PathLike) -> None:
    """Check an ``.npy`` header against the file's size, so a lying header cannot trigger a huge allocation.

    Raises
    ------
    DataError
        When the header is unreadable, declares objects, or a size other than the file holds.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "d.npy"
    >>> np.save(p, np.zeros((3, 2)))
    >>> check_npy(p)
    >>> _ = p.write_bytes(p.read_bytes()[:-8])
    >>> check_npy(p)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    lucidae.errors.DataError: ... declares shape (3, 2) of float64 (48 bytes) but holds 40 bytes of data. ...
    """
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            _npy_header(fh, path.stat().st_size, str(path))
    except DataError:
        raise
    # numpy's header parser lets tokenize.TokenError, SyntaxError and others escape on damaged headers.
    except Exception as err:
        raise DataError(f"{path} is not a readable .npy file ({type(err).__name__}: {str(err)[:200]}).") from err


def check_npz(path: str | os.PathLike) -> None:
    """Check every array header of an ``.npz`` against the size its zip entry declares.

    ``np.load`` allocates the shape an ``.npz`` member's header declares before reading
    its data, so a member that claims to be huge is refused here first. Members that are
    not ``.npy`` arrays, and object arrays (which would need pickle), are refused too.

    Raises
    ------
    DataError
        When the archive is not a zip of ``.npy`` files, or a member lies about its size.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "d.npz"
    >>> np.savez(p, X=np.zeros((3, 2)))
    >>> check_npz(p)
    """
    import zipfile

    path = Path(path)
    declared = 0
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                label = f"{path}: array {info.filename!r:.60}"
                if not info.filename.endswith(".npy"):
                    raise DataError(f"{label} is not an .npy member; an .npz holds only .npy arrays.")
                if info.file_size > MAX_NPY_BYTES:
                    raise DataError(f"{label} declares {info.file_size} bytes; that is implausibly large.")
                _check_compression(info, path.stat().st_size, label)
                with archive.open(info) as fh:
                    _npy_header(fh, info.file_size, label)
                declared += info.file_size
        # np.load allocates every declared shape before it reads a byte of it
        check_memory(declared, str(path))
    except DataError:
        raise
    except Exception as err:  # zipfile and numpy's header parser raise many types on damaged input
        raise DataError(f"{path} is not a readable .npz archive ({type(err).__name__}: {str(err)[:200]}).") from err
