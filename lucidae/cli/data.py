"""The data of the commands that use a saved model: the run's own by default, read as it was read for training.

``lucidae train`` records its data spec in ``RUN_DIR/run.json`` (with the table options:
id column, dropped columns, delimiter); ``encode``, ``reconstruct``, ``prune`` and ``report``
read the same data, the same way, when ``--data`` is not given, and a table given with
``--data`` is read with the run's table options unless the command line names others.
Nothing here imports torch at import time.
"""

from __future__ import annotations

import csv
import inspect
import io
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import typer

from lucidae.config import DataConfig
from lucidae.errors import DataError
from lucidae.io import RUN_FILE, atomic_write

if TYPE_CHECKING:
    import numpy as np

    from lucidae.datasets import Dataset

TABLE_FIELDS = ("id_column", "drop", "delimiter", "impute")
"""The :class:`~lucidae.config.DataConfig` fields that say how a table file is read (those it has)."""

READ_OPTIONS = ("id_column", "drop", "delimiter")
"""The table options of the commands that use a saved model: how to read a file. (How to fill its
missing cells, ``impute``, is the model's, fitted on its training rows; it comes from the run.)"""

DATA_OPTIONS = "data_options.json"
"""Written beside a detector saved by ``lucidae detect --save``: how its training table was read, and
with ``--impute`` the per-feature ``fill`` of missing cells fitted on it (applied to the data it scores)."""


def table_fields(names: tuple[str, ...] = TABLE_FIELDS) -> tuple[str, ...]:
    """The ``names`` that are :class:`~lucidae.config.DataConfig` fields, in order.

    Examples
    --------
    >>> table_fields(("id_column", "no_such_field"))
    ('id_column',)
    """
    have = {f.name for f in fields(DataConfig)}
    return tuple(name for name in names if name in have)


def load_data(spec: str, table: dict[str, Any] | None = None) -> Dataset:
    """Load ``spec`` (a built-in name or a path) as :func:`lucidae.datasets.load_dataset` does, with ``table`` options.

    Options the loader does not take, and unset ones (None, empty), are left out.

    Examples
    --------
    >>> load_data("digits", {"id_column": None}).n_features
    64
    """
    from lucidae.datasets import load_dataset

    accepted = inspect.signature(load_dataset).parameters
    kwargs = {k: v for k, v in (table or {}).items() if k in accepted and v not in (None, "", (), [])}
    return load_dataset(spec, **kwargs)


def read_data_options(folder: Path) -> dict[str, Any]:
    """The table options stored in ``folder/data_options.json`` (``{}`` without the file).

    Raises
    ------
    CorruptFileError
        When the file is not a small JSON object of table options.

    Examples
    --------
    >>> import tempfile
    >>> read_data_options(Path(tempfile.mkdtemp()))
    {}
    """
    import json

    from lucidae.errors import CorruptFileError

    path = Path(folder) / DATA_OPTIONS
    if not path.is_file():
        return {}
    try:
        options = json.loads(path.read_text(encoding="utf-8")[:100_000])
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CorruptFileError(f"{path} could not be read ({err}); delete it, or save the detector again.") from err
    fill = options.pop("fill", None) if isinstance(options, dict) else None
    if (
        not isinstance(options, dict)
        or not all(k in TABLE_FIELDS and (v is None or isinstance(v, str)) for k, v in options.items())
        or not (fill is None or (isinstance(fill, list) and all(isinstance(v, (int, float)) for v in fill)))
    ):
        raise CorruptFileError(f"{path} is not a set of table options {list(TABLE_FIELDS)}; delete it.")
    return options if fill is None else {**options, "fill": fill}


def run_record(run_dir: Path) -> dict[str, Any]:
    """The run record of ``run_dir`` (``{}`` without one)."""
    from lucidae.io import read_run_record

    return read_run_record(run_dir, RUN_FILE)


def run_data_spec(run_dir: Path, record: dict[str, Any]) -> str:
    """Where the run's data comes from: the spec it was trained with, or the absolute path of the file it read.

    Raises
    ------
    DataError
        When the record names no data.

    Examples
    --------
    >>> run_data_spec(Path("runs/r"), {"data": {"data": "digits"}})
    'digits'
    """
    spec = (record.get("data") or {}).get("data")
    path = record.get("data_path")
    if path and Path(path).exists() and not (spec and Path(str(spec)).exists()):
        spec = path
    if not spec:
        raise DataError(
            f"{run_dir} has no {RUN_FILE} naming the data it was trained on (it was not written by "
            "`lucidae train`). Pass the data with --data."
        )
    return str(spec)


def is_run_data(spec: str, record: dict[str, Any]) -> bool:
    """Whether ``spec`` names the data the run was trained on (its recorded spec, or the same file).

    Examples
    --------
    >>> is_run_data("digits", {"data": {"data": "digits"}}), is_run_data("shapes", {"data": {"data": "digits"}})
    (True, False)
    """
    recorded = (record.get("data") or {}).get("data")
    if recorded is None:
        return False
    if spec == recorded:
        return True
    path = Path(spec).expanduser()
    return bool(record.get("data_path")) and path.exists() and str(path.resolve()) == record["data_path"]


def table_options(
    stored: dict[str, Any], given: dict[str, Any], explicit: set[str], spec: str | None = None
) -> dict[str, Any]:
    """The table options to read ``spec`` with: the stored ones, replaced by those given on the command line.

    How a CSV was read (id column, dropped columns, delimiter) is carried over to ``spec``
    only when it is a CSV file too; ``impute`` always is.

    Examples
    --------
    >>> table_options({"id_column": "id", "drop": "y"}, {"id_column": None, "drop": "z"}, {"drop"})
    {'id_column': 'id', 'drop': 'z'}
    >>> table_options({"id_column": "id", "impute": "median"}, {}, set(), spec="digits")
    {'impute': 'median'}
    """
    names = table_fields()
    csv = spec is None or str(spec).lower().endswith(".csv")
    out = {k: v for k, v in stored.items() if k in names and (csv or k not in READ_OPTIONS)}
    out.update({k: v for k, v in given.items() if k in explicit and k in names})
    return out


class RunData(NamedTuple):
    """What :func:`run_data` returns."""

    estimator: Any
    """The fitted model of the run."""
    record: dict[str, Any]
    """Its run record (``{}`` without one)."""
    dataset: Dataset
    """The data to use."""
    own: bool
    """Whether it is the run's own data (so the record's held-out rows apply to it)."""
    table: dict[str, Any]
    """The table options it was read with."""

    @property
    def id_name(self) -> str:
        """The header of the id column in the outputs: the table's name for it."""
        return str(self.table.get("id_column") or "id")


def run_data(
    run_dir: Path, data: str | None, given: dict[str, Any] | None = None, explicit: set[str] | None = None
) -> RunData:
    """The model of ``run_dir``, its run record, the data to use, whether it is the run's own, its table options.

    ``data`` None: the run's own data, read as training read it (its id column, its
    dropped columns). Else ``data`` is read with the run's table options, replaced by the
    ones in ``given`` whose names are in ``explicit`` (the options the user set).

    Raises
    ------
    DataError
        When the run names no data and none is given, or the data has another number of
        features than the model.
    """
    from lucidae.estimators import load

    est = load(run_dir)
    record = run_record(run_dir)
    own = data is None or is_run_data(str(data), record)
    spec = run_data_spec(run_dir, record) if data is None else str(data)
    table = table_options(record.get("data") or {}, given or {}, explicit or set(), spec)
    ds = load_data(spec, table)
    if ds.n_features != est.n_features_in_:
        todo = (
            "The data changed since training."
            if own
            else "Pass data of the same layout, or leave out --data to use the run's own "
            f"({(record.get('data') or {}).get('data', 'not recorded')})."
        )
        raise DataError(
            f"{spec} has {ds.n_features} features, but the model in {run_dir} was trained on "
            f"{est.n_features_in_}. {todo}"
        )
    return RunData(est, record, ds, own, table)


def _cell(value: Any) -> str:
    """One CSV cell, quoted as the csv module quotes (an id may hold a comma or a quote)."""
    text = io.StringIO()
    csv.writer(text, lineterminator="").writerow([value])
    return text.getvalue()


def save_with_ids(
    array: np.ndarray,
    out: Path,
    header: list[str],
    ids: Any = None,
    id_name: str = "id",
    *,
    fmt: Any = "%.7g",
) -> str:
    """Write ``array`` to ``out`` (.csv or .npy) with ``ids`` as the first column of a .csv; say what was written.

    A .npy holds numbers only: the ids are then not written, and the returned note says so.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> out = Path(tempfile.mkdtemp()) / "codes.csv"
    >>> save_with_ids(np.eye(2), out, ["z0", "z1"], ids=np.array(["a,1", "b"]), id_name="customer")
    ''
    >>> out.read_text().splitlines()
    ['customer,z0,z1', '"a,1",1,0', 'b,0,1']
    """
    import numpy as np

    from lucidae.cli.options import save_array

    if ids is None or out.suffix != ".csv":
        save_array(array, out, header, fmt=fmt)
        return "" if ids is None else f" (the ids of {id_name!r} are not in a .npy file; write a .csv to keep them)"
    text = io.StringIO()
    np.savetxt(text, array, delimiter=",", fmt=fmt)
    rows = text.getvalue().splitlines()
    lines = [",".join(_cell(h) for h in [id_name, *header])]
    lines += [f"{_cell(i)},{row}" for i, row in zip(ids, rows)]
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(out, "\n".join(lines) + "\n")
    except OSError as err:
        from lucidae.errors import ConfigError

        raise ConfigError(
            f"--out {out} could not be written ({err.strerror or err}). Pick a folder you can write to."
        ) from err
    return ""


def echo_seed(seed: Any) -> None:
    """Say which seed a command trains with (on stderr, with the progress)."""
    typer.echo(f"seed {seed} (--random-state; the same seed gives the same result on CPU)", err=True)
