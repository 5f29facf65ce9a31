"""The ``lucidae`` command line.

- :mod:`~lucidae.cli.app`: the typer app and its commands (train, encode, reconstruct,
  prune, info, demo, report, sweep);
- :mod:`~lucidae.cli.applications`: detect, compress, decompress, topics;
- :mod:`~lucidae.cli.interop`: export, import;
- :mod:`~lucidae.cli.options`: config fields to typed options and back, exit codes (1 for a
  runtime error, 2 for a usage error);
- :mod:`~lucidae.cli.data`: the data of a command that uses a saved model (the run's own by
  default, read as training read it) and outputs keyed by the table's id column.

The workflows the commands drive are library code: :func:`lucidae.runs.fit_run` and
:func:`lucidae.runs.estimator_from_configs` (still importable from here, as before).

Examples
--------
>>> from typer.testing import CliRunner
>>> from lucidae.cli import app
>>> CliRunner().invoke(app, ["--help"]).exit_code
0
"""

from __future__ import annotations

import importlib
from typing import Any

from lucidae.cli.app import (
    TRAIN_OPTIONS,
    app,
    demo,
    encode,
    info,
    main,
    prune,
    read_train_options,
    reconstruct,
    report,
    train,
    write_train_options,
)
from lucidae.cli.options import (
    CLI_CONFIGS,
    CLI_EXCLUDE,
    _cli_default,
    config_parameters,
    parse_int_tuple,
    split_options,
    with_config_options,
)
from lucidae.io import RUN_FILE

_FROM_RUNS = ("EVAL_ROWS", "estimator_from_configs", "fit_run")
"""Names that lived in the CLI before they moved to :mod:`lucidae.runs`; imported from there on first use
(importing :mod:`lucidae.runs` loads torch, which ``lucidae --help`` does without)."""


def __getattr__(name: str) -> Any:
    if name in _FROM_RUNS:
        return getattr(importlib.import_module("lucidae.runs"), name)
    raise AttributeError(f"module 'lucidae.cli' has no attribute {name!r}")


__all__ = [
    "CLI_CONFIGS",
    "CLI_EXCLUDE",
    "RUN_FILE",
    "TRAIN_OPTIONS",
    "_cli_default",
    "app",
    "config_parameters",
    "demo",
    "encode",
    "info",
    "main",
    "parse_int_tuple",
    "prune",
    "read_train_options",
    "reconstruct",
    "report",
    "split_options",
    "train",
    "with_config_options",
    "write_train_options",
]
