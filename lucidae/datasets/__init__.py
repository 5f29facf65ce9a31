"""Data for lucidae: bundled and generated datasets, and readers for user files.

Everything returns a :class:`Dataset`. :func:`load_dataset` turns a CLI ``--data``
value (a built-in name or a path) into one.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from lucidae.datasets.base import Dataset
from lucidae.datasets.builtin import load_digits
from lucidae.datasets.dictionary import DictionaryDataset, atom_recovery, make_sparse_dictionary
from lucidae.datasets.files import load_array, load_fashion_mnist, load_mnist, read_idx
from lucidae.datasets.shapes import load_shapes, make_shapes
from lucidae.datasets.topics import TopicDataset, make_topics
from lucidae.errors import DataError
from lucidae.streaming import should_stream

BUILTIN: dict[str, Callable[[], Dataset]] = {
    "digits": load_digits,
    "shapes": load_shapes,
}
"""Dataset names accepted by ``--data``, each a function of no arguments."""


def load_dataset(spec: str | os.PathLike) -> Dataset:
    """Load a built-in dataset by name, or a file or idx folder by path.

    Parameters
    ----------
    spec : str or path-like
        A name from :data:`BUILTIN` (``"digits"``), a ``.npy``/``.npz``/``.csv`` file, or a
        folder holding MNIST-style idx files.

    Returns
    -------
    Dataset
        For a ``.npy`` whose rows as float32 exceed a quarter of physical memory
        (:func:`lucidae.streaming.should_stream`), ``X`` is a read-only ``numpy.memmap``:
        ``lucidae train`` then streams it instead of loading it.

    Raises
    ------
    DataError
        When ``spec`` is neither a known name nor an existing path.

    Examples
    --------
    >>> load_dataset("digits").name
    'digits'
    """
    text = str(spec)
    if text in BUILTIN:
        return BUILTIN[text]()
    path = Path(text).expanduser()
    if path.is_dir():
        return load_mnist(path)
    if path.is_file():
        # a .npy too large to load stays on disk as a memory map; the commands stream it
        return load_array(path, mmap=should_stream(path))
    raise DataError(
        f"--data {text!r} is neither a built-in dataset ({', '.join(sorted(BUILTIN))}) nor an "
        "existing file or folder. Give a name from that list or a path to .npy, .npz, .csv, or an "
        "MNIST-style idx folder."
    )


__all__ = [
    "BUILTIN",
    "Dataset",
    "DictionaryDataset",
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
]
