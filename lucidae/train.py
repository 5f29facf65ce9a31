"""The training loop: mini-batch Adam over epochs, validation, early stopping, progress.

It works for every lucidae module (and any ``nn.Module`` that has the same hooks):

- ``module.loss(x, target) -> Loss`` gives the objective (required);
- ``module.prepare(X)`` runs once before the first step, for data-dependent
  initialisation such as a decoder bias set to the data's median (optional);
- ``module.after_step()`` runs after every optimiser step, for constraints such as
  unit-norm decoder columns (optional).

The in-memory path keeps the whole training set as one tensor and gathers each batch
from it with one ``index_select`` of a per-epoch permutation: no per-sample Python work
and no ``DataLoader`` collation. A :class:`lucidae.streaming.ChunkSource` is streamed in
shuffled chunks instead (data larger than memory). Under torchrun the model is wrapped in
``DistributedDataParallel`` and each rank takes its share of every global batch. The
epoch's loss is summed on the device; one number is read back every
:data:`CHECK_EVERY` steps to stop a NaN or exploding loss early. With ``checkpoint_dir``
the state after each epoch is saved (:mod:`lucidae.checkpoint`), Ctrl-C saves it too, and
``resume=True`` continues bit-exactly on CPU.
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from lucidae.config import TrainConfig
from lucidae.distributed import World, all_reduce_sum, world
from lucidae.errors import ConfigError, CorruptFileError, DataError, TrainingError

PREPARE_ROWS = 4096
"""Rows of a streamed dataset passed to ``module.prepare`` for data-dependent initialisation."""

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

    def continued(self, more: History) -> History:
        """This history followed by ``more``, a continuation (warm start, fine-tuning), its epochs numbered on.

        Examples
        --------
        >>> first = History(records=[{"epoch": 1, "loss": 0.5}], best_epoch=1)
        >>> both = first.continued(History(records=[{"epoch": 1, "loss": 0.4}], best_epoch=1))
        >>> [r["epoch"] for r in both.records], both.best_epoch, len(first.records)
        ([1, 2], 2, 1)
        """
        done = len(self.records)
        return History(
            [*self.records, *({**r, "epoch": done + r["epoch"]} for r in more.records)],
            None if more.best_epoch is None else done + more.best_epoch,
            more.stopped_early,
        )

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


def fused_adam_step(optimizer: torch.optim.Optimizer) -> Callable[[], None]:
    """A ``step()`` for a fused Adam/AdamW that skips ``Optimizer.step``'s per-call Python work.

    It calls the same fused kernel with the same arguments on the optimiser's own state, so
    results are bit-identical and checkpoints stay ordinary ``state_dict``s; it saves about
    0.1 ms per step, which is 2% of a step of the classic model on a CPU core. Anything
    other than plain fused Adam/AdamW (AMSGrad, maximize, gradient scaling) gets the
    optimiser's own ``step``.

    Examples
    --------
    >>> lin = nn.Linear(3, 2)
    >>> opt = torch.optim.Adam(lin.parameters(), lr=0.1, fused=True)
    >>> lin(torch.ones(1, 3)).sum().backward()
    >>> fused_adam_step(opt)()
    >>> int(opt.state[lin.weight]["step"])
    1
    """
    kernel = {
        torch.optim.Adam: getattr(torch, "_fused_adam_", None),
        torch.optim.AdamW: getattr(torch, "_fused_adamw_", None),
    }
    fn = kernel.get(type(optimizer))
    plain = all(
        g.get("fused")
        and not g.get("amsgrad")
        and not g.get("maximize")
        and not g.get("capturable")
        and not g.get("differentiable")
        and not isinstance(g["lr"], Tensor)
        for g in optimizer.param_groups
    )
    if fn is None or not plain:
        return optimizer.step

    def step() -> None:
        for group in optimizer.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            states = []
            for p in params:
                state = optimizer.state[p]
                if not state:  # as Adam initialises it
                    state["step"] = torch.tensor(0.0, dtype=torch.float32, device=p.device)
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                states.append(state)
            steps = [s["step"] for s in states]
            torch._foreach_add_(steps, 1)
            beta1, beta2 = group["betas"]
            fn(
                params,
                [p.grad for p in params],
                [s["exp_avg"] for s in states],
                [s["exp_avg_sq"] for s in states],
                [],
                steps,
                amsgrad=False,
                lr=group["lr"],
                beta1=beta1,
                beta2=beta2,
                weight_decay=group["weight_decay"],
                eps=group["eps"],
                maximize=False,
            )

    return step


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
    """Float32 CPU tensor from an array-like, copying only when needed.

    Examples
    --------
    >>> as_tensor([[1, 2]]).dtype
    torch.float32
    """
    if isinstance(X, Tensor):
        return X.detach().to(torch.float32)
    arr = np.asarray(X, dtype=np.float32)
    if not arr.flags.writeable or not arr.flags.c_contiguous:
        arr = np.ascontiguousarray(arr).copy()
    return torch.from_numpy(arr)


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`train`: the state after the last finished epoch was saved.

    It is a ``KeyboardInterrupt``, so code that does not know about it still stops;
    ``checkpoint`` is the folder to resume from (None when nothing could be saved).
    """

    def __init__(self, message: str, checkpoint: Path | None, epoch: int):
        super().__init__(message)
        self.checkpoint = checkpoint
        self.epoch = epoch


class _LossModule(nn.Module):
    """``x -> module.loss(x, x)`` as a forward pass, so DistributedDataParallel can wrap it."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def forward(self, x: Tensor) -> Any:
        return self.module.loss(x, x)


class _MemoryData:
    """The whole training set as one tensor on the device.

    Each epoch gathers the shuffled rows once into a reused buffer and feeds contiguous
    slices of it: no per-sample Python work, no ``DataLoader`` collation and no fresh
    allocation per epoch. With several processes every rank takes its own share of
    every global batch, so the ranks together see exactly the batches a single process
    would.
    """

    def __init__(self, X: Any, cfg: TrainConfig, gen: torch.Generator, me: World, device: torch.device):
        data = as_tensor(X)
        if data.ndim != 2 or data.shape[0] < 1:
            raise DataError(f"train expects a 2-D array with at least one sample, got shape {tuple(data.shape)}.")
        train_idx, val_idx = split_validation(data.shape[0], cfg.validation_fraction, gen)
        whole = train_idx.numel() == data.shape[0]
        self.X = (data if whole else data[train_idx]).to(device)  # (n_train, features)
        self.X_val = data[val_idx].to(device) if val_idx is not None else None
        self.n = self.X.shape[0]
        self.batch = cfg.batch_size
        self.shuffle = cfg.shuffle
        self.me = me
        self.steps_per_epoch = math.ceil(self.n / self.batch)
        if me.size > 1 and 0 < self.n % self.batch < me.size:
            self.steps_per_epoch -= 1  # a last global batch too small to give every rank a row is dropped

    def prepare_sample(self) -> Tensor:
        return self.X

    def batches(self, gen: torch.Generator) -> Iterator[tuple[Tensor, int, float | None]]:
        """Yield ``(x, rows, weight)``; ``weight`` rescales a rank's mean loss to its share of the global batch."""
        order = torch.randperm(self.n, generator=gen).to(self.X.device) if self.shuffle else None
        if self.me.size == 1:
            for b in range(self.steps_per_epoch):
                if order is None:
                    xb = self.X[b * self.batch : (b + 1) * self.batch]  # (batch, features)
                else:
                    # gathered batch by batch: the rows land in cache right before the forward pass
                    # reads them (a whole-epoch gather streams the data through memory twice more)
                    xb = torch.index_select(self.X, 0, order[b * self.batch : (b + 1) * self.batch])
                yield xb, xb.shape[0], None
            return
        if order is None:
            order = torch.arange(self.n, device=self.X.device)
        parts, sizes = [], []
        for b in range(self.steps_per_epoch):
            glob = order[b * self.batch : (b + 1) * self.batch]
            mine = torch.tensor_split(glob, self.me.size)[self.me.rank]
            parts.append(mine)
            sizes.append((mine.numel(), glob.numel()))
        local = torch.index_select(self.X, 0, torch.cat(parts))  # (rows of this rank, features)
        start = 0
        for rows, total in sizes:
            yield local[start : start + rows], rows, rows * self.me.size / total
            start += rows

    def validation_loss(self, module: nn.Module) -> float | None:
        return None if self.X_val is None else evaluate(module, self.X_val)


class _StreamData:
    """Chunks of an on-disk array (:class:`lucidae.streaming.ChunkSource`), shuffled locally.

    Every epoch the order of the training chunks is shuffled; :data:`SHUFFLE_CHUNKS` full
    chunks' worth of them at a time are read (in a background thread, while the previous buffer trains),
    their rows shuffled together and fed in batches. Validation holds out whole chunks.
    With several processes each rank reads only its own chunks.
    """

    def __init__(self, source: Any, cfg: TrainConfig, gen: torch.Generator, me: World, device: torch.device):
        from lucidae.streaming import CHUNK_BYTES, SHUFFLE_CHUNKS

        self.source = source
        self.me = me
        self.device = device
        self.shuffle = cfg.shuffle
        # the shuffle buffer holds SHUFFLE_CHUNKS full chunks' worth of bytes: the smaller chunks of a
        # small file are that many more per buffer, so a file under 128 MB is still shuffled as a whole
        chunk_bytes = 4 * max(1, source.chunk_rows * source.n_features)
        self.group = max(SHUFFLE_CHUNKS, SHUFFLE_CHUNKS * CHUNK_BYTES // chunk_bytes)
        self.batch = max(1, cfg.batch_size // me.size)
        chunks = torch.arange(source.n_chunks)
        # at least one chunk, so that a small validation_fraction is not silently rounded away
        n_val = max(1, int(round(source.n_chunks * cfg.validation_fraction)))
        if cfg.validation_fraction > 0 and n_val < source.n_chunks:
            perm = torch.randperm(source.n_chunks, generator=gen)
            self.val_chunks = perm[:n_val].sort().values.tolist()
            self.train_chunks = perm[n_val:].sort().values.tolist()
        else:
            self.val_chunks, self.train_chunks = [], chunks.tolist()
        self.n = sum(source.rows(c) for c in self.train_chunks)
        self.steps_per_epoch = math.ceil(self.n / me.size / self.batch)
        # within-buffer shuffles differ per rank; the chunk order (from the shared generator) does not
        self.local_gen = torch.Generator().manual_seed(int(torch.randint(0, 2**62, (1,), generator=gen)) + me.rank)
        self.pin = device.type == "cuda"

    def _load(self, chunks: list[int]) -> Tensor:
        """Read ``chunks`` into one new float32 tensor ``(rows, features)`` (pinned for a GPU)."""
        rows = sum(self.source.rows(c) for c in chunks)
        out = torch.empty((rows, self.source.n_features), dtype=torch.float32, pin_memory=self.pin)
        view, pos = out.numpy(), 0
        for c in chunks:  # each chunk goes straight into its slice: no concatenated copy
            block = self.source.read(c)
            view[pos : pos + len(block)] = block
            pos += len(block)
        return out

    def prepare_sample(self) -> Tensor:
        # enough rows for data-dependent initialisation (medians, means), however small the chunks
        chunks, rows = [], 0
        for c in self.train_chunks:
            if rows >= PREPARE_ROWS:
                break
            chunks.append(c)
            rows += self.source.rows(c)
        return self._load(chunks).to(self.device)

    def _plan(self, order: list[int]) -> tuple[list[list[list[int]]], list[int]]:
        """Chunk groups of every rank and each rank's rows this epoch."""
        plans, rows = [], []
        for rank in range(self.me.size):
            mine = order[rank :: self.me.size]
            plans.append([mine[i : i + self.group] for i in range(0, len(mine), self.group)])
            rows.append(sum(self.source.rows(c) for c in mine))
        return plans, rows

    def batches(self, gen: torch.Generator) -> Iterator[tuple[Tensor, int, float | None]]:
        from concurrent.futures import ThreadPoolExecutor

        order = self.train_chunks
        if self.shuffle:
            order = [order[i] for i in torch.randperm(len(order), generator=gen).tolist()]
        plans, rows = self._plan(order)
        groups = plans[self.me.rank]
        # batches are full except each rank's last (leftover rows move on to the next buffer),
        # and every rank stops after the step count of the rank with the fewest rows
        sizes = [[min(self.batch, r - s) for s in range(0, r, self.batch)] for r in rows]
        limit = min(len(z) for z in sizes)
        weights: list[float | None] = [None] * limit
        if self.me.size > 1:
            weights = [sizes[self.me.rank][i] * self.me.size / sum(z[i] for z in sizes) for i in range(limit)]
        step, carry = 0, None  # carry: rows of the previous buffer short of a full batch
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(self._load, groups[0]) if groups else None
            for i in range(len(groups)):
                block = pending.result()  # (rows, features) on the host
                pending = pool.submit(self._load, groups[i + 1]) if i + 1 < len(groups) else None
                block = block.to(self.device, non_blocking=self.pin)
                n_rows, last = block.shape[0], i + 1 == len(groups)
                if self.shuffle:
                    order = torch.randperm(n_rows, generator=self.local_gen).to(self.device)
                else:
                    order = torch.arange(n_rows, device=self.device)
                pos = 0
                while pos < n_rows:
                    need = self.batch - (0 if carry is None else carry.shape[0])
                    # gathered batch by batch, never a shuffled copy of the whole buffer
                    xb = torch.index_select(block, 0, order[pos : pos + need])  # (batch, features)
                    pos += xb.shape[0]
                    if carry is not None:
                        xb, carry = torch.cat([carry, xb]), None
                    if xb.shape[0] < self.batch and not last:
                        carry = xb
                        break
                    if step >= limit:
                        return
                    yield xb, xb.shape[0], weights[step]
                    step += 1

    def validation_loss(self, module: nn.Module) -> float | None:
        if not self.val_chunks:
            return None
        total, count = 0.0, 0
        for c in self.val_chunks:
            block = self._load([c]).to(self.device)
            total += evaluate(module, block) * block.shape[0]
            count += block.shape[0]
        return total / count


def _device_for(cfg: TrainConfig, me: World) -> torch.device:
    device = resolve_device(cfg.device)
    if device.type == "cuda" and me.size > 1:
        return torch.device("cuda", me.local_rank)
    return device


def _clone_state(module: nn.Module) -> dict[str, Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _clone_optimizer(optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    state = optimizer.state_dict()
    return {
        "state": {
            i: {k: v.clone() if isinstance(v, Tensor) else v for k, v in s.items()} for i, s in state["state"].items()
        },
        "param_groups": copy.deepcopy(state["param_groups"]),
    }


def _check_resumable(saved: dict[str, Any], cfg: TrainConfig, directory: Path) -> None:
    now = cfg.to_dict()
    free = {"verbose", "device"}
    changed = sorted(k for k in set(saved) | set(now) if k not in free and saved.get(k) != now.get(k))
    if changed:
        details = ", ".join(f"{k}: {saved.get(k)!r} -> {now.get(k)!r}" for k in changed)
        raise ConfigError(
            f"The checkpoint in {directory} was written with different training settings ({details}). "
            "Resume with the settings of the interrupted run (lucidae train --resume RUN reads them for you)."
        )


def _diagnosis(kind: str, value: float, epoch: int, step: int, cfg: TrainConfig, first: float | None) -> str:
    what = (
        f"became {value}"
        if kind == "nan"
        else f"exploded to {value:.4g}, more than {EXPLODE_FACTOR:g} times its first value {first:.4g}"
    )
    return (
        f"The training loss {what} in epoch {epoch} (step {step}). The model keeps the weights of epoch "
        f"{epoch - 1}. Try a lower learning rate (lr={cfg.lr:g} now; for example lr={cfg.lr / 10:g}) or check "
        "that the data is scaled (scaling='auto'): steps too large for the data's range make the loss diverge."
    )


EXPLODE_FACTOR = 1e3
"""A loss above this multiple of the first step's loss counts as exploded and stops training."""

CHECK_EVERY = 64
"""Steps between checks for a NaN or exploding loss (each check reads one number back from the device)."""


def train(
    module: nn.Module,
    X: Any,
    cfg: TrainConfig,
    *,
    seed: int | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    checkpoint_every: int = 1,
    resume: bool = False,
    on_epoch_end: Callable[[dict[str, Any]], None] | None = None,
    warm_start: bool = False,
) -> History:
    """Train ``module`` in place to reconstruct ``X`` and return the history.

    Parameters
    ----------
    module : nn.Module
        A lucidae model, or any module with ``loss(x, target) -> Loss``.
    X : array-like, Tensor or ChunkSource of shape (n_samples, n_features)
        Training data, already scaled to the model's space (float); a
        :class:`lucidae.streaming.ChunkSource` streams data larger than memory.
    cfg : TrainConfig
        Epochs, batch size (global, over all processes), learning rate, validation and
        early stopping.
    seed : int, optional
        Seed for the validation split and shuffling; defaults to ``cfg.random_state``.
    checkpoint_dir : path-like, optional
        Where to keep a checkpoint (:mod:`lucidae.checkpoint`): written every
        ``checkpoint_every`` epochs and when training is interrupted (Ctrl-C).
    checkpoint_every : int, default=1
        Epochs between checkpoints; 0 writes one only on an interruption.
    resume : bool, default=False
        Continue from the checkpoint in ``checkpoint_dir`` (same ``cfg`` and ``seed``);
        on CPU the result is bit-identical to an uninterrupted run.
    on_epoch_end : callable, optional
        Called with each epoch's record after it is complete (and checkpointed).
    warm_start : bool, default=False
        Continue from the module's current weights (fine-tuning): the model's data-dependent
        initialisation (``prepare``), which would move a trained model's biases, is skipped.
        The optimiser still starts afresh.

    Returns
    -------
    History
        Per-epoch records; the module holds the trained (or best) weights.

    Raises
    ------
    TrainingError
        When the loss becomes NaN, infinite, or explodes; the module keeps the weights of
        the last good epoch.
    TrainingInterrupted
        On Ctrl-C, after saving a checkpoint (when ``checkpoint_dir`` is given).

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
    from lucidae.checkpoint import TrainState, load_checkpoint, save_checkpoint
    from lucidae.fast_step import DenseStep, plain_dense_layers
    from lucidae.streaming import ChunkSource

    cfg.validate()
    if checkpoint_every < 0:
        raise ConfigError(f"checkpoint_every={checkpoint_every} is invalid: expected an integer >= 0.")
    if resume and checkpoint_dir is None:
        raise ConfigError("resume=True needs checkpoint_dir, the folder the interrupted run wrote its checkpoint to.")
    seed = resolve_seed(cfg.random_state if seed is None else seed)
    me = world()
    if cfg.batch_size < me.size:
        raise ConfigError(
            f"batch_size={cfg.batch_size} is the global batch; it must be at least the {me.size} processes."
        )
    device = _device_for(cfg, me)
    gen = torch.Generator().manual_seed(seed)
    data_cls = _StreamData if isinstance(X, ChunkSource) else _MemoryData
    data = data_cls(X, cfg, gen, me, device)
    ckpt_dir = None if checkpoint_dir is None else Path(checkpoint_dir)
    saved = load_checkpoint(ckpt_dir) if resume else None
    if saved is not None:
        _check_resumable(saved.config, cfg, ckpt_dir)

    epochs = auto_epochs(data.steps_per_epoch) if cfg.epochs is None else cfg.epochs
    total_steps = data.steps_per_epoch * epochs
    precision = getattr(cfg, "precision", "fp32")
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if precision == "bf16" else contextlib.nullcontext()
    writer = me.rank == 0
    progress = _Progress(cfg.verbose if writer else 0, epochs)
    with torch.random.fork_rng(devices=[]):
        # noise inside the model (dropout, sampling) draws from a stream the checkpoint can restore
        torch.manual_seed(seed ^ 0x5EED)
        module.to(device).train()
        if saved is None and not warm_start and hasattr(module, "prepare"):
            module.prepare(data.prepare_sample())
        optimizer = make_optimizer(module, cfg)
        history = History()
        best_val, best_state, bad_epochs, first_loss, start_epoch, step = math.inf, None, 0, None, 1, 0
        if saved is not None:
            try:
                module.load_state_dict(saved.module)
                optimizer.load_state_dict(saved.optimizer)
                gen.set_state(saved.generators["shuffle"])
                torch.set_rng_state(saved.generators["torch"])
                if "local" in saved.generators and isinstance(data, _StreamData):
                    data.local_gen.set_state(saved.generators["local"])
            except (RuntimeError, KeyError, ValueError, TypeError) as err:
                # the checksum passed, so the file was written like this: it belongs to another model or was edited
                raise CorruptFileError(
                    f"The checkpoint in {ckpt_dir} does not fit this model and trainer ({str(err)[:300]}). "
                    "It belongs to another run or was edited; start the run again without --resume."
                ) from err
            history = History.from_dict(saved.history)
            best_val, bad_epochs, first_loss = saved.best_val, saved.bad_epochs, saved.first_loss
            best_state = None if saved.best_state is None else {k: v.to(device) for k, v in saved.best_state.items()}
            start_epoch, step = saved.epoch + 1, saved.step
            if history.stopped_early:  # early stopping had already ended the run
                start_epoch = epochs + 1
        model_fn: Any = _LossModule(module)
        if me.size > 1:
            from torch.nn.parallel import DistributedDataParallel

            model_fn = DistributedDataParallel(model_fn, device_ids=[device.index] if device.type == "cuda" else None)
        # the untied dense autoencoder's step is written out (lucidae.fast_step); one process only,
        # since DistributedDataParallel reduces gradients through autograd's hooks
        layers = plain_dense_layers(module, cfg) if me.size == 1 else None
        dense_step = DenseStep(module, layers) if layers is not None else None
        has_after_step = hasattr(module, "after_step")
        fast_step = fused_adam_step(optimizer)
        constant_lr = cfg.lr_schedule == "constant"
        snapshot: TrainState | None = None
        last_good = _clone_state(module)
        written_epoch = start_epoch - 1 if saved is not None else -1
        epoch = start_epoch
        try:
            for epoch in range(start_epoch, epochs + 1):
                start = time.perf_counter()
                sums: dict[str, Tensor] = {}
                seen, checked_sum, checked_seen = 0, 0.0, 0
                for xb, rows, weight in data.batches(gen):
                    if not constant_lr:
                        lr = lr_at(step, total_steps, cfg)
                        for group in optimizer.param_groups:
                            group["lr"] = lr
                    if dense_step is not None:
                        loss = dense_step(xb)  # loss and gradients, no autograd
                    else:
                        with autocast:
                            loss = model_fn(xb)
                        total = loss.total if weight is None else loss.total * weight
                        optimizer.zero_grad(set_to_none=True)
                        total.backward()
                    fast_step()
                    if has_after_step:
                        module.after_step()
                    step += 1
                    seen += rows
                    # accumulated on the device: no host sync per step
                    for name, value in (("loss", loss.total), *loss.terms.items()):
                        value = value.detach().float()
                        if name in sums:
                            sums[name].add_(value, alpha=rows)
                        else:
                            sums[name] = value * rows
                    if first_loss is None:
                        first_loss = float(all_reduce_sum(loss.total.detach().float().reshape(1)) / me.size)
                    if step % CHECK_EVERY == 0:
                        window = all_reduce_sum(torch.stack([sums["loss"].cpu(), torch.tensor(float(seen))]))
                        value = (float(window[0]) - checked_sum) / max(float(window[1]) - checked_seen, 1.0)
                        checked_sum, checked_seen = float(window[0]), float(window[1])
                        _stop_if_diverged(value, epoch, step, cfg, first_loss, module, last_good)
                names = list(sums)
                totals = all_reduce_sum(torch.stack([sums[k].cpu() for k in names] + [torch.tensor(float(seen))]))
                n_seen = max(float(totals[-1]), 1.0)
                record: dict[str, Any] = {"epoch": epoch}
                record.update({k: float(v) / n_seen for k, v in zip(names, totals[:-1])})
                _stop_if_diverged(record["loss"], epoch, step, cfg, first_loss, module, last_good)
                last_good = _clone_state(module)
                val_loss = data.validation_loss(module)
                if val_loss is not None:
                    record["val_loss"] = val_loss
                record["lr"] = optimizer.param_groups[0]["lr"]
                record["seconds"] = time.perf_counter() - start
                record["samples_per_s"] = n_seen / max(record["seconds"], 1e-9)
                history.records.append(record)
                progress.update(record)
                stop = False
                if val_loss is not None:
                    if val_loss < best_val - 1e-12:
                        best_val, bad_epochs, history.best_epoch = val_loss, 0, epoch
                        if cfg.restore_best:
                            best_state = _clone_state(module)
                    else:
                        bad_epochs += 1
                        if cfg.patience and bad_epochs >= cfg.patience:
                            history.stopped_early = stop = True
                if ckpt_dir is not None:
                    snapshot = TrainState(
                        epoch=epoch,
                        step=step,
                        module=last_good,
                        optimizer=_clone_optimizer(optimizer),
                        generators={
                            "shuffle": gen.get_state(),
                            "torch": torch.get_rng_state(),
                            **({"local": data.local_gen.get_state()} if isinstance(data, _StreamData) else {}),
                        },
                        history=copy.deepcopy(history.to_dict()),
                        best_val=best_val,
                        bad_epochs=bad_epochs,
                        best_state=best_state,
                        first_loss=first_loss,
                        config=cfg.to_dict(),
                    )
                    if writer and checkpoint_every and (epoch % checkpoint_every == 0 or stop or epoch == epochs):
                        save_checkpoint(ckpt_dir, snapshot)
                        written_epoch = epoch
                if on_epoch_end is not None:
                    on_epoch_end(record)
                if stop:
                    break
        except KeyboardInterrupt as interrupt:
            if isinstance(interrupt, TrainingInterrupted):
                raise
            done = snapshot.epoch if snapshot is not None else written_epoch
            path = None
            if ckpt_dir is not None and done >= 1:
                path = ckpt_dir
                if writer and snapshot is not None and written_epoch != snapshot.epoch:
                    save_checkpoint(ckpt_dir, snapshot)
            if snapshot is not None:
                module.load_state_dict(snapshot.module)
            if path is None:
                why = "no checkpoint_dir was given" if ckpt_dir is None else "no epoch had finished yet"
                message = f"Training was interrupted in epoch {epoch}; nothing was saved ({why})."
            else:
                message = (
                    f"Training was interrupted in epoch {epoch}; the state after epoch {done} is saved in {path}. "
                    "Continue with `lucidae train --resume RUN_DIR` (or train(..., resume=True))."
                )
            raise TrainingInterrupted(message, path, done) from None
        finally:
            progress.close()
    if best_state is not None:
        module.load_state_dict(best_state)
    module.eval()
    return history


def _stop_if_diverged(
    value: float,
    epoch: int,
    step: int,
    cfg: TrainConfig,
    first: float | None,
    module: nn.Module,
    last_good: dict[str, Tensor],
) -> None:
    """Raise :class:`TrainingError` (restoring ``last_good``) when ``value`` is NaN, infinite or exploded."""
    kind = None
    if not math.isfinite(value):
        kind = "nan"
    elif first is not None and math.isfinite(first) and value > EXPLODE_FACTOR * max(first, 1e-12):
        kind = "explode"
    if kind is not None:
        module.load_state_dict(last_good)
        raise TrainingError(_diagnosis(kind, value, epoch, step, cfg, first))
