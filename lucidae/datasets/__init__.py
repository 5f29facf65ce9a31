"""Data for lucidae: bundled and generated datasets, and readers for user files.

Everything returns a :class:`Dataset`. :func:`load_dataset` turns a CLI ``--data``
value (a built-in name or a path) into one.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from lucidae.datasets.base import Dataset, GeneratedNames
from lucidae.datasets.builtin import load_digits
from lucidae.datasets.dictionary import DictionaryDataset, atom_recovery, make_sparse_dictionary
from lucidae.datasets.files import load_array, load_fashion_mnist, load_mnist, read_idx
from lucidae.datasets.shapes import load_shapes, make_shapes
from lucidae.datasets.tables import read_table
from lucidae.datasets.topics import TopicDataset, make_topics
from lucidae.errors import DataError
from lucidae.streaming import should_stream

BUILTIN: dict[str, Callable[[], Dataset]] = {
    "digits": load_digits,
    "shapes": load_shapes,
}
"""Dataset names accepted by ``--data``, each a function of no arguments."""


READ_OPTIONS = ("id_column", "drop", "delimiter", "impute")
"""The fields of :class:`~lucidae.config.DataConfig` that say how a table file is read; :func:`read_options`."""


def read_options(data: Any) -> dict[str, Any]:
    """The table-reading options of a :class:`~lucidae.config.DataConfig` (or of its dict in ``run.json``).

    They are what :func:`load_dataset` takes besides the spec, so a command reads the
    run's data as training read it: ``load_dataset(cfg.data, **read_options(cfg))``.

    Examples
    --------
    >>> read_options({"data": "t.csv", "id_column": "id", "impute": None})
    {'id_column': 'id', 'drop': None, 'delimiter': None, 'impute': None}
    """
    get = data.get if isinstance(data, dict) else lambda k, d=None: getattr(data, k, d)
    out = {k: get(k, None) for k in READ_OPTIONS}
    out["drop"] = list(out["drop"]) if isinstance(out["drop"], (list, tuple)) else (out["drop"] or None)
    return out


def load_dataset(
    spec: str | os.PathLike,
    *,
    id_column: str | None = None,
    drop: str | Iterable[str] | None = None,
    delimiter: str | None = None,
    impute: str | None = None,
) -> Dataset:
    """Load a built-in dataset by name, or a file or idx folder by path.

    Parameters
    ----------
    spec : str or path-like
        A name from :data:`BUILTIN` (``"digits"``), a ``.npy``/``.npz``/``.csv`` file, or a
        folder holding MNIST-style idx files.
    id_column, drop, delimiter, impute
        How a CSV table is read (see :func:`load_array`); ``impute`` also lets NaN
        through in ``.npy``/``.npz`` arrays, for the estimator to fill.

    Returns
    -------
    Dataset
        For a ``.npy`` whose rows as float32 exceed a quarter of physical memory
        (:func:`lucidae.streaming.should_stream`), ``X`` is a read-only ``numpy.memmap``:
        ``lucidae train`` then streams it instead of loading it. ``ids`` holds the id
        column's values for a table read with ``id_column``.

    Raises
    ------
    DataError
        When ``spec`` is neither a known name nor an existing path, or when table
        options are given for data that is not a CSV file.

    Examples
    --------
    >>> load_dataset("digits").name
    'digits'
    """
    text = str(spec)
    table = {"id_column": id_column, "drop": drop, "delimiter": delimiter}
    given = [k for k, v in table.items() if v not in (None, "", [], ())]
    path = Path(text).expanduser()
    if text in BUILTIN or path.is_dir():
        if given:
            raise DataError(f"{given} apply to .csv tables only, not to --data {text!r}; leave them out.")
        return BUILTIN[text]() if text in BUILTIN else load_mnist(path)
    if path.is_file():
        # a .npy too large to load stays on disk as a memory map; the commands stream it
        return load_array(path, mmap=should_stream(path), impute=impute, **table)
    raise DataError(
        f"--data {text!r} is neither a built-in dataset ({', '.join(sorted(BUILTIN))}) nor an "
        "existing file or folder. Give a name from that list or a path to .npy, .npz, .csv, or an "
        "MNIST-style idx folder."
    )


__all__ = [
    "BUILTIN",
    "Dataset",
    "DictionaryDataset",
    "GeneratedNames",
    "READ_OPTIONS",
    "TopicDataset",
    "atom_recovery",
    "load_array",
    "load_dataset",
    "load_digits",
    "load_fashion_mnist",
    "load_mnist",
    "load_shapes",
    "make_shapes",
    "make_sparse_dictionary",
    "make_topics",
    "read_idx",
    "read_options",
    "read_table",
]
