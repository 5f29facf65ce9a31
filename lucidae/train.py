"""The training loop: mini-batch Adam over epochs, validation, early stopping, progress.

It works for every lucidae module (and any ``nn.Module`` that has the same hooks):

- ``module.loss(x, target) -> Loss`` gives the objective (required);
- ``module.prepare(X)`` runs once before the first step, for data-dependent
  initialisation such as a decoder bias set to the data's median (optional);
- ``module.after_step()`` runs after every optimiser step, for constraints such as
  unit-norm decoder columns (optional).

The in-memory path keeps the whole training set as one tensor, shuffles it once per
epoch with a single gather and feeds contiguous slices: no per-sample Python work and
no ``DataLoader`` collation.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from lucidae.config import TrainConfig
from lucidae.errors import DataError, TrainingError

EVAL_BATCH = 4096
"""Samples per forward pass when evaluating (no gradients, so larger batches are fine)."""

AUTO_STEPS = 5000
"""With ``epochs=None``, train for about this many optimiser steps ..."""
AUTO_EPOCHS = (20, 500)
"""... but for at least 20 and at most 500 epochs."""

MIN_LR_RATIO = 0.05
"""The cosine schedule decays to this fraction of the peak learning rate."""


@dataclass
class History:
    """What happened during training, one record per epoch.

    Examples
    --------
    >>> h = History(records=[{"epoch": 1, "loss": 0.5}, {"epoch": 2, "loss": 0.4}])
    >>> h.losses
    [0.5, 0.4]
    """

    records: list[dict[str, Any]] = field(default_factory=list)
    """Per epoch: ``epoch``, ``loss`` (training objective), each named loss term,
    ``val_loss`` (when validating), ``lr``, ``seconds`` and ``samples_per_s``."""
    best_epoch: int | None = None
    """Epoch whose weights were kept (1-based) when validation was on."""
    stopped_early: bool = False
    """True when early stopping ended training before ``epochs``."""

    @property
    def losses(self) -> list[float]:
        """Training loss per epoch."""
        return [r["loss"] for r in self.records]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, stored in ``config.json``."""
        return {
            "records": self.records,
            "best_epoch": self.best_epoch,
            "stopped_early": self.stopped_early,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> History:
        """Inverse of :meth:`to_dict`."""
        return cls(
            list(data.get("records", [])),
            data.get("best_epoch"),
            bool(data.get("stopped_early", False)),
        )


def resolve_device(name: str) -> torch.device:
    """Turn ``"auto"`` into CUDA when present, else CPU; check that CUDA exists when asked.

    Examples
    --------
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise TrainingError(f"device={name!r} was asked for, but CUDA is not available here. Use 'cpu' or 'auto'.")
    return torch.device(name)


def resolve_seed(random_state: int | None) -> int:
    """The seed to use: ``random_state`` itself, or one drawn from NumPy's global RNG.

    Drawing from NumPy's global generator follows scikit-learn: ``np.random.seed`` then
    makes unseeded runs reproducible too.

    Examples
    --------
    >>> resolve_seed(7)
    7
    """
    if random_state is not None:
        return int(random_state) % (2**63)
    return int(np.random.randint(0, 2**31 - 1))  # noqa: NPY002 - the global RNG, on purpose


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run a block with torch's global RNG seeded, restoring the caller's RNG afterwards.

    Module initialisation draws from the global RNG; this keeps it reproducible without
    changing the state that the user's own code sees.

    Examples
    --------
    >>> with seeded(0):
    ...     a = torch.rand(2)
    >>> with seeded(0):
    ...     b = torch.rand(2)
    >>> bool((a == b).all())
    True
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def make_optimizer(module: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """Adam (or AdamW when ``weight_decay > 0``), fused where this torch supports it.

    Examples
    --------
    >>> type(make_optimizer(nn.Linear(2, 2), TrainConfig())).__name__
    'Adam'
    """
    params = [p for p in module.parameters() if p.requires_grad]
    kind = torch.optim.AdamW if cfg.weight_decay > 0 else torch.optim.Adam
    kwargs: dict[str, Any] = {"lr": cfg.lr}
    if cfg.weight_decay > 0:
        kwargs["weight_decay"] = cfg.weight_decay
    try:
        return kind(params, fused=True, **kwargs)
    except (RuntimeError, TypeError):  # pragma: no cover - older torch or unsupported device
        return kind(params, **kwargs)


def auto_epochs(steps_per_epoch: int) -> int:
    """Epochs for ``epochs=None``: about :data:`AUTO_STEPS` steps, within :data:`AUTO_EPOCHS`.

    A fixed epoch count under-trains small datasets (few steps per epoch) and wastes
    time on large ones; a step budget does neither.

    Examples
    --------
    >>> auto_epochs(13), auto_epochs(422)
    (385, 20)
    """
    low, high = AUTO_EPOCHS
    return int(min(high, max(low, math.ceil(AUTO_STEPS / max(steps_per_epoch, 1)))))


def lr_at(step: int, total_steps: int, cfg: TrainConfig) -> float:
    """Learning rate for optimiser step ``step`` (0-based) of ``total_steps``.

    Examples
    --------
    >>> cfg = TrainConfig(lr=1.0)
    >>> lr_at(0, 100, cfg), round(lr_at(100, 100, cfg), 3)
    (1.0, 0.05)
    """
    if cfg.lr_schedule == "constant" or total_steps <= 1:
        return cfg.lr
    progress = min(step / total_steps, 1.0)
    return cfg.lr * (MIN_LR_RATIO + (1 - MIN_LR_RATIO) * 0.5 * (1 + math.cos(math.pi * progress)))


def split_validation(n: int, fraction: float, generator: torch.Generator) -> tuple[Tensor, Tensor | None]:
    """Random train/validation indices; no validation when either side would be empty.

    Examples
    --------
    >>> tr, va = split_validation(10, 0.2, torch.Generator().manual_seed(0))
    >>> len(tr), len(va)
    (8, 2)
    """
    n_val = int(round(n * fraction))
    if fraction <= 0 or n_val < 1 or n - n_val < 1:
        return torch.arange(n), None
    perm = torch.randperm(n, generator=generator)
    return perm[n_val:].sort().values, perm[:n_val].sort().values


@torch.no_grad()
def evaluate(module: nn.Module, X: Tensor, batch_size: int = EVAL_BATCH) -> float:
    """Mean training objective of ``module`` over ``X`` (no gradients, eval mode)."""
    was_training = module.training
    module.eval()
    total = 0.0
    for start in range(0, X.shape[0], batch_size):
        xb = X[start : start + batch_size]  # (batch, features)
        total += float(module.loss(xb, xb).total) * xb.shape[0]
    module.train(was_training)
    return total / X.shape[0]


class _Progress:
    """A rich progress bar on a terminal when verbose; one line per epoch at verbose >= 2."""

    def __init__(self, verbose: int, epochs: int):
        self.bar = None
        self.verbose = verbose
        if verbose >= 1 and sys.stderr.isatty():
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )

            self.bar = Progress(
                TextColumn("[bold]training"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]}"),
                TextColumn("{task.fields[speed]} samples/s"),
                TimeRemainingColumn(),
                transient=False,
            )
            self.task = self.bar.add_task("train", total=epochs, loss="-", speed="-")
            self.bar.start()

    def update(self, record: dict[str, Any]) -> None:
        if self.bar is not None:
            loss = f"{record['loss']:.5f}"
            if "val_loss" in record:
                loss += f" (val {record['val_loss']:.5f})"
            self.bar.update(self.task, advance=1, loss=loss, speed=f"{record['samples_per_s']:,.0f}")
        if self.verbose >= 2:
            parts = [f"{k}={v:.5g}" if isinstance(v, float) else f"{k}={v}" for k, v in record.items()]
            print("epoch " + " ".join(parts), file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def as_tensor(X: Any) -> Tensor:
    """Float32 CPU tensor from an array-like, copying only when needed."""
    if isinstance(X, Tensor):
        return X.detach().to(torch.float32)
    arr = np.asarray(X, dtype=np.float32)
    if not arr.flags.writeable or not arr.flags.c_contiguous:
        arr = np.ascontiguousarray(arr).copy()
    return torch.from_numpy(arr)


def train(module: nn.Module, X: Any, cfg: TrainConfig, *, seed: int | None = None) -> History:
    """Train ``module`` in place to reconstruct ``X`` and return the history.

    Parameters
    ----------
    module : nn.Module
        A lucidae model, or any module with ``loss(x, target) -> Loss``.
    X : array-like or Tensor of shape (n_samples, n_features)
        Training data, already scaled to the model's space (float).
    cfg : TrainConfig
        Epochs, batch size, learning rate, validation and early stopping.
    seed : int, optional
        Seed for the validation split and shuffling; defaults to ``cfg.random_state``.

    Returns
    -------
    History
        Per-epoch records; the module holds the trained (or best) weights.

    Raises
    ------
    TrainingError
        When the loss becomes NaN or infinite; the module keeps its last good weights.

    Examples
    --------
    >>> import torch
    >>> from lucidae.config import ModelConfig, TrainConfig
    >>> from lucidae.models import build_model
    >>> X = torch.rand(256, 16)
    >>> model = build_model(ModelConfig(input_dim=16, hidden_dims=(8,), latent_dim=4))
    >>> history = train(model, X, TrainConfig(epochs=3, verbose=0, random_state=0))
    >>> len(history.records)
    3
    """
    cfg.validate()
    seed = resolve_seed(cfg.random_state if seed is None else seed)
    device = resolve_device(cfg.device)
    data = as_tensor(X)
    if data.ndim != 2 or data.shape[0] < 1:
        raise DataError(f"train expects a 2-D array with at least one sample, got shape {tuple(data.shape)}.")
    gen = torch.Generator().manual_seed(seed)
    train_idx, val_idx = split_validation(data.shape[0], cfg.validation_fraction, gen)
    X_train = data[train_idx].to(device)  # (n_train, features)
    X_val = data[val_idx].to(device) if val_idx is not None else None
    module.to(device).train()
    if hasattr(module, "prepare"):
        module.prepare(X_train)

    optimizer = make_optimizer(module, cfg)
    n = X_train.shape[0]
    steps_per_epoch = math.ceil(n / cfg.batch_size)
    epochs = auto_epochs(steps_per_epoch) if cfg.epochs is None else cfg.epochs
    total_steps = steps_per_epoch * epochs
    history = History()
    best_val, best_state, bad_epochs = math.inf, None, 0
    last_good = {k: v.detach().clone() for k, v in module.state_dict().items()}
    progress = _Progress(cfg.verbose, epochs)
    step = 0
    try:
        for epoch in range(1, epochs + 1):
            start = time.perf_counter()
            order = torch.randperm(n, generator=gen).to(device) if cfg.shuffle else None
            epoch_data = X_train[order] if order is not None else X_train  # one gather per epoch
            sums: dict[str, Tensor] = {}
            for b in range(steps_per_epoch):
                xb = epoch_data[b * cfg.batch_size : (b + 1) * cfg.batch_size]  # (batch, features)
                for group in optimizer.param_groups:
                    group["lr"] = lr_at(step, total_steps, cfg)
                loss = module.loss(xb, xb)
                optimizer.zero_grad(set_to_none=True)
                loss.total.backward()
                optimizer.step()
                if hasattr(module, "after_step"):
                    module.after_step()
                step += 1
                weight = xb.shape[0]
                for name, value in (("loss", loss.total.detach()), *loss.terms.items()):
                    sums[name] = sums[name] + value * weight if name in sums else value * weight
            record: dict[str, Any] = {"epoch": epoch}
            record.update({k: float(v) / n for k, v in sums.items()})
            if not math.isfinite(record["loss"]):
                module.load_state_dict(last_good)
                raise TrainingError(
                    f"The training loss became {record['loss']} in epoch {epoch}. The model keeps "
                    f"the weights of epoch {epoch - 1}. Try a lower learning rate (lr={cfg.lr:g} now) "
                    "or check that the data is scaled (scaling='auto')."
                )
            last_good = {k: v.detach().clone() for k, v in module.state_dict().items()}
            if X_val is not None:
                record["val_loss"] = evaluate(module, X_val)
            record["lr"] = optimizer.param_groups[0]["lr"]
            record["seconds"] = time.perf_counter() - start
            record["samples_per_s"] = n / max(record["seconds"], 1e-9)
            history.records.append(record)
            progress.update(record)
            if X_val is not None:
                if record["val_loss"] < best_val - 1e-12:
                    best_val, bad_epochs, history.best_epoch = record["val_loss"], 0, epoch
                    if cfg.restore_best:
                        best_state = {k: v.detach().clone() for k, v in module.state_dict().items()}
                else:
                    bad_epochs += 1
                    if cfg.patience and bad_epochs >= cfg.patience:
                        history.stopped_early = True
                        break
    finally:
        progress.close()
    if best_state is not None:
        module.load_state_dict(best_state)
    module.eval()
    return history
