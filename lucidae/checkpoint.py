"""Training checkpoints: everything needed to continue a run exactly where it stopped.

A checkpoint is a directory like a saved model (see :mod:`lucidae.io`):
``model.safetensors`` holds the tensors (weights, optimiser moments, random generator
states, the best weights so far) and ``config.json`` the rest (epoch, step, history,
optimiser settings, the training config) plus the SHA-256 of the tensors, checked before
they are read. It is written atomically, so a process killed during a save leaves the
previous checkpoint in place. Nothing is pickled.

On CPU with a fixed seed, a run resumed from a checkpoint ends with exactly the weights
of a run that was never interrupted (``tests/test_resume.py``).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import Tensor

from lucidae.errors import CorruptFileError
from lucidae.io import read_config, read_tensors, write_model_dir
from lucidae.schema import check_history

CHECKPOINT_DIR = "checkpoint"
"""Name of the checkpoint folder inside a run folder (``lucidae train --out RUN``)."""

KIND = "lucidae-checkpoint"
"""Marks ``config.json`` as a checkpoint, so it is never mistaken for a model."""


@dataclass
class TrainState:
    """The trainer's state at the end of an epoch.

    Examples
    --------
    >>> import torch
    >>> s = TrainState(epoch=2, step=10, module={"w": torch.ones(2)})
    >>> s.epoch, s.best_val
    (2, inf)
    """

    epoch: int
    """Epochs completed (1-based count; 0 before the first)."""
    step: int
    """Optimiser steps taken; drives the learning-rate schedule."""
    module: dict[str, Tensor]
    """The module's ``state_dict``."""
    optimizer: dict[str, Any] = field(default_factory=dict)
    """The optimiser's ``state_dict``."""
    generators: dict[str, Tensor] = field(default_factory=dict)
    """States of the trainer's random generators (shuffling, torch's global RNG)."""
    history: dict[str, Any] = field(default_factory=dict)
    """:meth:`lucidae.train.History.to_dict` so far."""
    best_val: float = math.inf
    """Best validation loss so far (inf before any)."""
    bad_epochs: int = 0
    """Epochs since the validation loss last improved."""
    best_state: dict[str, Tensor] | None = None
    """Weights of the best epoch, when they are being kept."""
    first_loss: float | None = None
    """Loss of the first step: the yardstick for detecting an exploding loss."""
    config: dict[str, Any] = field(default_factory=dict)
    """The :class:`~lucidae.config.TrainConfig` the run started with."""


def save_checkpoint(path: str | os.PathLike, state: TrainState) -> Path:
    """Write ``state`` to directory ``path`` atomically and return the directory.

    Examples
    --------
    >>> import tempfile, torch
    >>> d = save_checkpoint(tempfile.mkdtemp() + "/ckpt", TrainState(epoch=1, step=3, module={"w": torch.ones(2)}))
    >>> load_checkpoint(d).step
    3
    """
    tensors = {f"module.{k}": v for k, v in state.module.items()}
    if state.best_state is not None:
        tensors.update({f"best.{k}": v for k, v in state.best_state.items()})
    tensors.update({f"rng.{k}": v for k, v in state.generators.items()})
    optim_scalars: dict[str, dict[str, Any]] = {}
    for index, values in state.optimizer.get("state", {}).items():
        for name, value in values.items():
            if isinstance(value, Tensor):
                tensors[f"optim.{index}.{name}"] = value
            else:
                optim_scalars.setdefault(str(index), {})[name] = value
    meta = {
        "kind": KIND,
        "epoch": state.epoch,
        "step": state.step,
        "history": state.history,
        "best_val": state.best_val if math.isfinite(state.best_val) else None,
        "bad_epochs": state.bad_epochs,
        "first_loss": state.first_loss,
        "has_best_state": state.best_state is not None,
        "optimizer_param_groups": state.optimizer.get("param_groups", []),
        "optimizer_scalars": optim_scalars,
        "train_config": state.config,
    }
    return write_model_dir(path, tensors, meta)


def load_checkpoint(path: str | os.PathLike) -> TrainState:
    """Read a checkpoint written by :func:`save_checkpoint`, verifying its checksum first.

    Raises
    ------
    CorruptFileError
        When the folder is missing, is not a checkpoint, or its files are damaged.

    Examples
    --------
    >>> import tempfile, torch
    >>> d = save_checkpoint(tempfile.mkdtemp() + "/ckpt", TrainState(epoch=4, step=8, module={"w": torch.ones(1)}))
    >>> load_checkpoint(d).epoch
    4
    """
    meta = read_config(path)
    if meta.get("kind") != KIND:
        raise CorruptFileError(
            f"{path} is not a lucidae training checkpoint (kind={meta.get('kind')!r}). "
            f"Pass the run folder of `lucidae train`; its checkpoint lives in RUN/{CHECKPOINT_DIR}."
        )
    tensors = read_tensors(path, meta)
    _check_meta(path, meta)
    try:
        groups: dict[str, dict[str, Tensor]] = {"module": {}, "best": {}, "rng": {}}
        optim_state: dict[int, dict[str, Any]] = {}
        for key, value in tensors.items():
            prefix, _, rest = key.partition(".")
            if prefix == "optim":
                index, _, name = rest.partition(".")
                optim_state.setdefault(int(index), {})[name] = value
            elif prefix in groups:
                groups[prefix][rest] = value
            else:
                raise CorruptFileError(f"{path}: unexpected tensor {key!r} in a checkpoint.")
        for index, values in dict(meta.get("optimizer_scalars") or {}).items():
            optim_state.setdefault(int(index), {}).update(values)
        best_val = meta.get("best_val")
        first_loss = meta.get("first_loss")
        state = TrainState(
            epoch=_nonneg_int(meta["epoch"], "epoch"),
            step=_nonneg_int(meta["step"], "step"),
            module=groups["module"],
            optimizer={"state": optim_state, "param_groups": list(meta["optimizer_param_groups"])},
            generators=groups["rng"],
            history=dict(meta["history"]),
            best_val=math.inf if best_val is None else float(best_val),
            bad_epochs=_nonneg_int(meta["bad_epochs"], "bad_epochs"),
            best_state=groups["best"] if meta.get("has_best_state") else None,
            first_loss=None if first_loss is None else float(first_loss),
            config=dict(meta["train_config"]),
        )
    except (KeyError, TypeError, ValueError) as err:
        if isinstance(err, CorruptFileError):
            raise
        raise CorruptFileError(f"{path} is not a valid checkpoint: {err!r}. Start the run again.") from err
    return state


_GROUP_NUMBERS = ("lr", "eps", "weight_decay", "initial_lr")
"""Optimiser settings that must be finite numbers >= 0."""


def _number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:  # an integer of 400 digits is not finite as a float: float() overflows
        return math.isfinite(float(value))
    except OverflowError:
        return False


def _check_meta(path: Any, meta: dict[str, Any]) -> None:
    """Refuse a checkpoint whose optimiser settings, losses or history the trainer could not use.

    torch trusts an optimiser's state dict: Adam betas that are a string fail deep inside
    the first step with "not enough values to unpack". Every field is checked here instead,
    with a message that names it.
    """

    def bad(field: str, value: Any, expected: str) -> CorruptFileError:
        return CorruptFileError(
            f"{path}: the checkpoint's {field} is {value!r:.80}; expected {expected}. The checkpoint is damaged "
            "or was edited; start the run again without --resume."
        )

    groups = meta.get("optimizer_param_groups")
    if not isinstance(groups, list) or len(groups) > 64:
        raise bad("optimizer_param_groups", groups, "a list of at most 64 parameter groups")
    for i, group in enumerate(groups):
        if not isinstance(group, dict):
            raise bad(f"optimizer_param_groups[{i}]", group, "an object")
        params = group.get("params")
        if not isinstance(params, list) or not all(isinstance(p, int) and not isinstance(p, bool) for p in params):
            raise bad(f"optimizer_param_groups[{i}].params", params, "a list of parameter numbers")
        for key, value in group.items():
            if key == "params":
                continue
            where = f"optimizer_param_groups[{i}].{key}"
            if key == "betas":
                if not (isinstance(value, list) and len(value) == 2 and all(_number(b) and 0 <= b < 1 for b in value)):
                    raise bad(where, value, "two numbers in [0, 1)")
            elif key in _GROUP_NUMBERS:
                if not (_number(value) and value >= 0):
                    raise bad(where, value, "a finite number >= 0")
            elif not (value is None or isinstance(value, bool) or _number(value)):
                raise bad(where, value, "true, false, null or a number")
    scalars = meta.get("optimizer_scalars") or {}
    if not isinstance(scalars, dict) or not all(
        isinstance(k, str) and k.isdigit() and isinstance(v, dict) and all(_number(x) for x in v.values())
        for k, v in scalars.items()
    ):
        raise bad("optimizer_scalars", scalars, "an object of parameter numbers to objects of numbers")
    for key in ("best_val", "first_loss"):
        value = meta.get(key)
        if value is not None and not _number(value):
            raise bad(key, value, "null or a finite number")
    if not isinstance(meta.get("train_config"), dict):
        raise bad("train_config", meta.get("train_config"), "an object")
    try:
        check_history(path, meta.get("history"))
    except CorruptFileError as err:
        raise CorruptFileError(f"{err} (in the checkpoint; start the run again without --resume)") from err


def _nonneg_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise CorruptFileError(f"checkpoint field {name}={value!r} is invalid: expected an integer >= 0.")
    return value
