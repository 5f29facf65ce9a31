"""The CSV reader: numpy's C parser for the numbers, clear messages for everything else.

A table is read in one pass of :func:`numpy.loadtxt` (as fast and as lean as numpy
itself: ``benchmarks/csv_reader.py`` measures it). Only when that pass fails, because
a cell is empty, ``NA`` or text, or a row is ragged, does a second, careful pass read
the file cell by cell to say what is wrong and where: every place is a **line in the
file** (the header is line 1), never a row number of some split.

- A byte-order mark is dropped (the file is read as ``utf-8-sig``).
- The delimiter is given or sniffed from the first lines (``,`` ``;`` tab ``|``).
- The first line is a header when it holds a name where the next line holds a number,
  or only names; a first line of numbers is data, never swallowed as a header.
- Missing cells (empty, ``NA``, ``N/A``, ``nan``, ``null``, ``None``, ``?`` ...) are an
  error that counts them and names the first few by line and column, unless
  ``impute`` is given: then they are read as NaN, for the estimator's ``impute`` to
  fill with statistics of its training rows.
- An ``id_column`` is kept out of the features and returned as ``Dataset.ids``;
  ``drop`` columns are left out; ``target_column`` becomes ``Dataset.y``.
"""

from __future__ import annotations

import csv
import math
import os
import re
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lucidae.datasets.base import Dataset
from lucidae.errors import DataError

MISSING_TOKENS = frozenset({"", "na", "n/a", "nan", "-nan", "+nan", "null", "none", "#n/a", "?", "-", "missing"})
"""Cell texts (compared lower-case, stripped of spaces and quotes) that mean a missing value."""

DELIMITERS = ",;\t|"
"""Delimiters the sniffer chooses from; any other single character can be given."""

SNIFF_LINES = 50
"""Lines read from the top of the file to sniff the delimiter and the header."""

SHOW_MISSING = 5
"""Missing cells named, by line and column, in the error about them."""

FLOAT32_MAX = float(np.finfo(np.float32).max)

_NUMBER = re.compile(r"^[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?|inf|infinity|nan)$", re.IGNORECASE)


def is_missing(cell: str) -> bool:
    """Whether the text of one cell means a missing value (see :data:`MISSING_TOKENS`).

    Examples
    --------
    >>> [is_missing(c) for c in ["", " NA ", "nan", "null", "0", "x"]]
    [True, True, True, True, False, False]
    """
    return cell.strip().strip("\"'").strip().lower() in MISSING_TOKENS


def _is_number(cell: str) -> bool:
    text = cell.strip()
    if _NUMBER.match(text):
        return True
    try:  # what Python's float() reads ("1_000", other scripts' digits) is read, as before
        float(text)
    except ValueError:
        return False
    return True


def sniff_delimiter(lines: Sequence[str]) -> str:
    """The delimiter of a CSV from its first lines: one of :data:`DELIMITERS`, else ``","``.

    Examples
    --------
    >>> sniff_delimiter(["a;b;c", "1;2;3"]), sniff_delimiter(["a\\tb", "1\\t2"]), sniff_delimiter(["1.5", "2"])
    (';', '\\t', ',')
    """
    sample = "\n".join(lines[:SNIFF_LINES])
    try:
        return csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        counts = {d: sample.count(d) for d in DELIMITERS}
        best = max(counts, key=lambda d: counts[d])
        return best if counts[best] else ","


def _check_delimiter(delimiter: str) -> str:
    named = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|", "space": " "}
    delimiter = named.get(delimiter.lower(), delimiter) if isinstance(delimiter, str) else delimiter
    if not isinstance(delimiter, str) or len(delimiter) != 1 or delimiter in '"\r\n' or delimiter.isalnum():
        raise DataError(
            f"delimiter={delimiter!r} is invalid: expected one character such as ',', ';', '|' or 'tab' "
            "(letters, digits, quotes and newlines cannot separate numbers)."
        )
    return delimiter


def has_header(first: Sequence[str], second: Sequence[str] | None) -> bool:
    """Whether the first row of a table is a header, judged against the second.

    It is when a column holds a name above a number, or when every cell of the first
    row is a name. Numbers and missing cells are never names, so a first row of data
    (even with an id that is text) stays data.

    Examples
    --------
    >>> has_header(["a", "b"], ["1", "2"]), has_header(["1", "2"], ["3", "4"])
    (True, False)
    >>> has_header(["c1", "5"], ["c2", "6"]), has_header(["id", "x"], ["c2", "NA"])
    (False, True)
    """

    def name(cell: str) -> bool:
        return not is_missing(cell) and not _is_number(cell)

    if not any(name(c) for c in first):
        return False
    if all(name(c) for c in first):
        return True
    if second is None:
        return False
    return any(name(a) and not name(b) for a, b in zip(first, second))


def _columns(names: list[str], wanted: Iterable[str], what: str, path: Path) -> list[int]:
    out = []
    for name in wanted:
        hits = [i for i, n in enumerate(names) if n == name]
        if not hits:
            raise DataError(f"{what}={name!r} is not a column of {path}; its columns are {names[:50]}.")
        if len(hits) > 1:
            raise DataError(f"{what}={name!r}: {path} has {len(hits)} columns of that name; rename them apart.")
        out.append(hits[0])
    return out


def parse_drop(drop: str | Iterable[str] | None) -> list[str]:
    """Column names to drop, from ``"a,b"`` or a list.

    Examples
    --------
    >>> parse_drop("a, b"), parse_drop(["c"]), parse_drop(None)
    (['a', 'b'], ['c'], [])
    """
    if drop is None:
        return []
    items = drop.split(",") if isinstance(drop, str) else list(drop)
    return [str(i).strip() for i in items if str(i).strip()]


class _Layout:
    """What the top of the file says: delimiter, header, column names, where the data starts."""

    def __init__(self, path: Path, delimiter: str | None):
        head: list[str] = []
        skip = 0  # physical lines before the first data row
        try:
            with open(path, encoding="utf-8-sig", newline=None) as fh:
                for line in fh:
                    line = line.rstrip("\n")
                    if not head and not line.strip():
                        skip += 1
                        continue
                    if line.strip():
                        head.append(line)
                    if len(head) >= SNIFF_LINES:
                        break
        except UnicodeDecodeError as err:
            raise DataError(f"{path} is not a UTF-8 text file ({err}); save it as UTF-8 CSV.") from err
        except OSError as err:
            raise DataError(f"{path} could not be read: {err}") from err
        if not head:
            raise DataError(f"{path} is empty: it has no rows.")
        self.delimiter = _check_delimiter(delimiter) if delimiter is not None else sniff_delimiter(head)
        try:
            rows = list(csv.reader(head[:2], delimiter=self.delimiter))
        except csv.Error as err:
            raise DataError(f"{path} is not a readable CSV file: {err}") from err
        first, second = rows[0], (rows[1] if len(rows) > 1 else None)
        self.header = has_header(first, second)
        self.width = len(first)
        if self.header:
            names = [c.strip() for c in first]
            self.names = [n if n else f"x{i}" for i, n in enumerate(names)]
            skip += 1
        else:
            self.names = [f"x{i}" for i in range(self.width)]
        self.skip = skip


def read_table(
    path: str | os.PathLike,
    *,
    id_column: str | None = None,
    drop: str | Iterable[str] | None = None,
    target_column: str | None = None,
    delimiter: str | None = None,
    impute: str | None = None,
) -> Dataset:
    """Read a CSV table of numbers; see the module's description for the rules.

    Parameters
    ----------
    path : path-like
        The CSV file.
    id_column : str, optional
        Column that identifies the rows; kept out of the features, returned as ``ids``.
    drop : str or list of str, optional
        Columns to leave out (``"a,b"`` or ``["a", "b"]``).
    target_column : str, optional
        Column returned as the labels ``y`` instead of as a feature.
    delimiter : str, optional
        The field separator (``","``, ``";"``, ``"tab"`` ...); sniffed when not given.
    impute : {"mean", "median"}, optional
        Read missing cells as NaN for the estimator to fill; without it they are an error.

    Returns
    -------
    Dataset
        ``X`` float64, ``feature_names`` the header's names (``x0, x1, ...`` without
        one), ``ids`` the id column's values as strings (or None).

    Raises
    ------
    DataError
        Naming the line and column of a text cell, a ragged row or missing cells.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
    >>> _ = p.write_text("id;a;b\\nc1;1;2\\nc2;3;4\\n")
    >>> ds = read_table(p, id_column="id")
    >>> ds.feature_names, ds.X.tolist(), ds.ids.tolist()
    (['a', 'b'], [[1.0, 2.0], [3.0, 4.0]], ['c1', 'c2'])
    """
    path = Path(path).expanduser()
    if impute is not None and impute not in ("mean", "median"):
        raise DataError(f"impute={impute!r} is not known; use 'mean', 'median' or None.")
    layout = _Layout(path, delimiter)
    names = layout.names
    special = {"id_column": id_column, "target_column": target_column}
    (id_idx,) = _columns(names, [id_column], "id_column", path) if id_column is not None else [None]
    (t_idx,) = _columns(names, [target_column], "target_column", path) if target_column is not None else [None]
    dropped = _columns(names, parse_drop(drop), "drop", path)
    excluded = sorted({i for i in (id_idx, t_idx, *dropped) if i is not None})
    if id_idx is not None and id_idx == t_idx:
        raise DataError(f"id_column and target_column are both {id_column!r}; name two different columns.")
    features = [i for i in range(layout.width) if i not in excluded]
    if not features:
        what = ", ".join(f"{k}={v!r}" for k, v in special.items() if v is not None) or "drop"
        raise DataError(f"{path} has no feature columns besides {what} and the dropped ones; nothing to train on.")
    try:
        X, lines, ids, y = _read(path, layout, excluded, features, id_idx, t_idx)
    except UnicodeDecodeError as err:  # past the lines the layout was read from
        raise DataError(f"{path} is not a UTF-8 text file ({err}); save it as UTF-8 CSV.") from err
    except OSError as err:
        raise DataError(f"{path} could not be read: {err}") from err
    if ids is not None and len(ids) != len(X) or y is not None and len(y) != len(X):  # pragma: no cover
        raise DataError(f"{path}: the id or target column has a different number of rows than the table.")
    if not len(X):
        raise DataError(f"{path} has a header but no data rows.")
    _check_values(path, X, [names[i] for i in features], layout, lines, impute)
    return Dataset(
        X=X,
        y=y,
        feature_names=[names[i] for i in features],
        image_shape=None,
        name=path.stem,
        description=f"Table read from {path}: {X.shape[0]} rows, {X.shape[1]} numeric columns.",
        ids=ids,
    )


def _read(
    path: Path, layout: _Layout, excluded: list[int], features: list[int], id_idx: int | None, t_idx: int | None
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """The features (and each row's line, when known), the ids and the labels."""
    X, lines = None, None
    for missing in (False, True):  # numbers only; then with missing cells; then cell by cell, to say what is wrong
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # "input contained no data": said below
                X = _fast(path, layout, excluded, features, missing=missing)
            break
        except UnicodeDecodeError:
            raise
        except ValueError:
            continue
    if X is None:
        X, lines = _careful(path, layout, features)
    ids = _text_column(path, layout, id_idx) if id_idx is not None else None
    y = None
    if t_idx is not None:
        y = _text_column(path, layout, t_idx)
        if all(_is_number(v) for v in y):
            y = np.array([float(v) for v in y], dtype=np.float64)
    return X, lines, ids, y


def _zero(_: Any) -> float:
    return 0.0


def _cell(text: str) -> float:
    """One cell as a number: NaN for a missing one; ValueError for text."""
    try:
        return float(text)
    except ValueError:
        if is_missing(text):
            return math.nan
        raise


def _fast(path: Path, layout: _Layout, excluded: list[int], features: list[int], *, missing: bool) -> np.ndarray:
    """numpy's C parser over the whole file; ValueError on anything it cannot read as numbers.

    With ``missing``, each feature cell goes through :func:`_cell` (a Python call per cell,
    about 1.6 times slower), so missing cells become NaN.
    """
    converters: dict[int, Any] = dict.fromkeys(excluded, _zero)
    if missing:
        converters.update(dict.fromkeys(features, _cell))
    with open(path, encoding="utf-8-sig", newline=None) as fh:
        X = np.loadtxt(
            fh,
            dtype=np.float64,
            delimiter=layout.delimiter,
            comments=None,
            quotechar='"',
            skiprows=layout.skip,
            ndmin=2,
            converters=converters or None,
        )
    if not len(X):  # no data rows: read_table says so
        return np.empty((0, len(features)))
    if X.shape[1] != layout.width:
        raise ValueError("width")
    return np.ascontiguousarray(X[:, features]) if excluded else X


def _data_rows(path: Path, layout: _Layout) -> Iterable[tuple[int, list[str]]]:
    """``(line number in the file, cells)`` of every data row, blank lines skipped."""
    with open(path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh, delimiter=layout.delimiter)
        line = 0
        try:
            for row in reader:
                start, line = line + 1, reader.line_num
                if start <= layout.skip or not row or (len(row) == 1 and not row[0].strip() and layout.width > 1):
                    continue
                yield start, row
        except csv.Error as err:
            raise DataError(f"{path} line {reader.line_num}: not readable as CSV ({err}).") from err


def _careful(path: Path, layout: _Layout, features: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Cell by cell: the numbers, with NaN for missing cells, and each row's line; DataError on text cells."""
    values: list[list[float]] = []
    lines: list[int] = []
    bad: dict[int, tuple[int, str]] = {}  # column -> (line, text) of its first text cell
    for line, row in _data_rows(path, layout):
        if len(row) != layout.width:
            raise DataError(
                f"{path} line {line} has {len(row)} fields; the first row has {layout.width}. "
                f"Check the delimiter ({layout.delimiter!r}; pass delimiter=... / --delimiter to change it) "
                "and quoting."
            )
        out = []
        for j in features:
            cell = row[j]
            try:
                out.append(float(cell))
            except ValueError:
                if is_missing(cell):
                    out.append(math.nan)
                else:
                    bad.setdefault(j, (line, cell))
                    out.append(math.nan)
        values.append(out)
        lines.append(line)
    if bad:
        cols = sorted(bad)
        names = [layout.names[j] for j in cols]
        line, text = bad[cols[0]]
        raise DataError(
            f"{path}: column(s) {names} are not numeric (for example {text.strip()!r:.60} in {names[0]!r} "
            f"on line {line}). Encode them as numbers, leave them out with drop=[...] (--drop), or name "
            "one as id_column (--id-column) or target_column."
        )
    X = np.array(values, dtype=np.float64).reshape(len(values), len(features))
    return X, np.asarray(lines, dtype=np.int64)


def _line_numbers(path: Path, layout: _Layout) -> np.ndarray:
    """The file line of each data row, as the fast reader counts them (empty lines skipped)."""
    with open(path, encoding="utf-8-sig", newline=None) as fh:
        return np.array(
            [i for i, text in enumerate(fh, start=1) if i > layout.skip and text.rstrip("\n")], dtype=np.int64
        )


def _text_column(path: Path, layout: _Layout, j: int) -> np.ndarray:
    return np.array([row[j].strip() for _, row in _data_rows(path, layout)], dtype=object).astype(str)


def _check_values(
    path: Path, X: np.ndarray, names: list[str], layout: _Layout, lines: np.ndarray | None, impute: str | None
) -> None:
    """Missing cells (without impute), infinities and values beyond float32, each named by line and column."""
    if X.size == 0:
        return
    lo, hi = float(X.min()), float(X.max())
    if math.isfinite(lo) and math.isfinite(hi) and max(-lo, hi) <= FLOAT32_MAX:
        return
    if lines is None:
        lines = _line_numbers(path, layout)

    def where(mask: np.ndarray) -> tuple[int, str]:
        rows, cols = np.nonzero(mask)
        places = [f"line {int(lines[r])} column {names[c]!r}" for r, c in zip(rows[:SHOW_MISSING], cols)]
        return len(rows), ", ".join(places) + (", ..." if len(rows) > SHOW_MISSING else "")

    infinite = np.isinf(X) | (np.abs(np.nan_to_num(X)) > FLOAT32_MAX)
    if infinite.any():
        n, places = where(infinite)
        raise DataError(
            f"{path} has {n} value(s) that are infinite or beyond float32's range (about 3.4e38), which "
            f"lucidae computes in: {places}. Rescale or remove them."
        )
    missing = np.isnan(X)
    if impute is None and missing.any():
        n, places = where(missing)
        raise DataError(
            f"{path} has {n} missing cell(s) (empty, NA, nan, null, ...): {places}. Pass --impute median "
            "(Python: impute='median') to fill them with the training rows' medians, or fill or drop them "
            "in the file."
        )
