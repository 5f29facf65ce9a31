"""The training loop: mini-batch Adam over epochs, validation, early stopping, progress.

It works for every lucidae module (and any ``nn.Module`` that has the same hooks):

- ``module.loss(x, target) -> Loss`` gives the objective (required);
- ``module.prepare(X)`` runs once before the first step, for data-dependent
  initialisation such as a decoder bias set to the data's median (optional);
- ``module.after_step()`` runs after every optimiser step, for constraints such as
  unit-norm decoder columns (optional).

The data reaches the loop through :mod:`lucidae.batches`: in memory, each batch gathered
with one ``index_select`` of a per-epoch permutation, or a
:class:`lucidae.streaming.ChunkSource` streamed in shuffled chunks (data larger than
memory). Under torchrun the model is wrapped in ``DistributedDataParallel`` and each rank
takes its share of every global batch. The plain dense autoencoder's step is written out
without autograd (:mod:`lucidae.fast_step`). The epoch's loss is summed on the device;
one number is read back every :data:`CHECK_EVERY` steps to stop a NaN or exploding loss
early. With ``checkpoint_dir`` the state after each epoch is saved
(:mod:`lucidae.checkpoint`), Ctrl-C saves it too, and ``resume=True`` continues
bit-exactly on CPU.

:func:`train` reads as its steps: the device, shuffling generator and data with its
validation part held out (``_training_data``), the checkpoint to resume from
(``_resumable_checkpoint``), then one ``_Run`` that starts (model on the device,
optimiser, restored state, fast path), trains its epochs and finishes (best weights
back). :class:`History` (:mod:`lucidae.history`) and the batching helpers
(:mod:`lucidae.batches`) are re-exported here, where they have always been imported from.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import math
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from lucidae import fast_step, streaming
from lucidae.batches import EVAL_BATCH, PREPARE_ROWS, as_tensor, evaluate, split_validation
from lucidae.batches import MemoryData as _MemoryData
from lucidae.batches import StreamData as _StreamData
from lucidae.checkpoint import TrainState, load_checkpoint, save_checkpoint
from lucidae.config import TrainConfig
from lucidae.distributed import World, all_reduce_sum, world
from lucidae.errors import ConfigError, CorruptFileError, TrainingError
from lucidae.history import History

__all__ = [
    "AUTO_EPOCHS",
    "AUTO_STEPS",
    "CHECK_EVERY",
    "EVAL_BATCH",
    "EXPLODE_FACTOR",
    "MIN_LR_RATIO",
    "PREPARE_ROWS",
    "History",
    "TrainingInterrupted",
    "as_tensor",
    "auto_epochs",
    "evaluate",
    "fused_adam_step",
    "lr_at",
    "make_optimizer",
    "resolve_device",
    "resolve_seed",
    "seed_param",
    "seeded",
    "torch_threads",
    "verbose_level",
    "split_validation",
    "train",
]

AUTO_STEPS = 5000
"""With ``epochs=None``, train for about this many optimiser steps ..."""
AUTO_EPOCHS = (20, 500)
"""... but for at least 20 and at most 500 epochs."""

MIN_LR_RATIO = 0.05
"""The cosine schedule decays to this fraction of the peak learning rate."""


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


def resolve_seed(random_state: int | np.random.RandomState | np.random.Generator | None) -> int:
    """The seed to use: ``random_state`` itself, one drawn from it, or one drawn from NumPy's global RNG.

    As scikit-learn's ``check_random_state``: ``None`` draws from NumPy's global generator
    (so ``np.random.seed`` makes unseeded runs reproducible too), an integer is the seed,
    and a ``np.random.RandomState`` or ``np.random.Generator`` gives one draw (each fit
    with the same generator object then differs, as in scikit-learn).

    Examples
    --------
    >>> resolve_seed(7)
    7
    >>> resolve_seed(np.random.default_rng(0)) == resolve_seed(np.random.default_rng(0))
    True
    """
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, 2**31 - 1))
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(0, 2**31 - 1))
    if random_state is not None:
        if isinstance(random_state, bool) or not isinstance(random_state, (int, np.integer)):
            raise ConfigError(
                f"random_state={random_state!r} is invalid: expected None, an integer, "
                "a numpy.random.RandomState or a numpy.random.Generator."
            )
        return int(random_state) % (2**63)
    return int(np.random.randint(0, 2**31 - 1))  # noqa: NPY002 - the global RNG, on purpose


def seed_param(random_state: Any) -> Any:
    """``random_state`` as :class:`TrainConfig` holds it: a generator object becomes one int drawn from it.

    None and integers pass through (None draws a fresh seed at each fit); anything else is
    left for the config's check to name.

    Examples
    --------
    >>> seed_param(None), seed_param(3), isinstance(seed_param(np.random.RandomState(0)), int)
    (None, 3, True)
    """
    if isinstance(random_state, (np.random.RandomState, np.random.Generator)):
        return resolve_seed(random_state)
    return random_state


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run a block with ``torch.set_num_threads(n)``, restoring the caller's count afterwards (None: unchanged).

    Examples
    --------
    >>> before = torch.get_num_threads()
    >>> with torch_threads(1):
    ...     torch.get_num_threads()
    1
    >>> torch.get_num_threads() == before
    True
    """
    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(before)


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
    """The ``step()`` the trainer calls: the optimiser's own, public ``Optimizer.step``.

    This once called ``torch._fused_adam_`` directly to skip ``Optimizer.step``'s per-call
    Python work. That is a private torch function whose signature may change in any
    release, and it saved little: measured in one process, interleaved (12 rounds of 200
    steps of the classic model, 2026-12-02), the public fused ``step()`` took 85 to 90 us
    more per call (about 430 against 340 us with one thread, 340 against 250 with two),
    2 to 3% of a whole training step, inside the machine's noise. The optimiser
    :func:`make_optimizer` builds is already ``fused=True``, so the kernel is the same and
    the results are bit-identical. The name stays for the callers that import it.

    Examples
    --------
    >>> lin = nn.Linear(3, 2)
    >>> opt = torch.optim.Adam(lin.parameters(), lr=0.1, fused=True)
    >>> lin(torch.ones(1, 3)).sum().backward()
    >>> fused_adam_step(opt)()
    >>> int(opt.state[lin.weight]["step"])
    1
    """
    return optimizer.step


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


def verbose_level(verbose: Any) -> int:
    """An estimator's ``verbose`` as :class:`TrainConfig`'s level: 0 silent, 1 auto, 2 always.

    ``"auto"`` is 1 (a bar where someone is watching: a terminal or a Jupyter notebook),
    ``True`` is 2 (progress wherever the output goes) and ``False`` is 0; integers pass
    through for :class:`TrainConfig` to check.

    Examples
    --------
    >>> verbose_level("auto"), verbose_level(True), verbose_level(False), verbose_level(2)
    (1, 2, 0, 2)
    """
    if isinstance(verbose, bool):
        return 2 if verbose else 0
    if isinstance(verbose, str):
        if verbose != "auto":
            raise ConfigError(f"verbose={verbose!r} is not known: expected 'auto', True, False or 0, 1, 2.")
        return 1
    return verbose


def in_notebook() -> bool:
    """Whether the code runs in a Jupyter kernel (where stderr is not a terminal, but someone is watching).

    Examples
    --------
    >>> in_notebook()
    False
    """
    shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    return type(shell).__name__ == "ZMQInteractiveShell"


class _Progress:
    """Training progress: a rich bar where someone watches (verbose >= 1), text lines elsewhere (verbose 2).

    A terminal gets rich's live bar; a Jupyter notebook gets it too when ipywidgets is
    installed, otherwise one text line redrawn in place. Output that goes to a file or a
    pipe gets nothing at verbose=1 and one line per epoch at verbose=2.
    """

    def __init__(self, verbose: int, epochs: int):
        self.bar: Any = None
        self.verbose, self.epochs, self.done, self.inline = verbose, epochs, 0, False
        notebook = verbose >= 1 and in_notebook()
        if notebook and importlib.util.find_spec("ipywidgets") is None:
            self.inline = True  # rich needs ipywidgets in a notebook; a line redrawn with \r works without
        elif verbose >= 1 and (notebook or sys.stderr.isatty()):
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
        self.done += 1
        loss = f"{record['loss']:.5f}"
        if "val_loss" in record:
            loss += f" (val {record['val_loss']:.5f})"
        if self.bar is not None:
            self.bar.update(self.task, advance=1, loss=loss, speed=f"{record['samples_per_s']:,.0f}")
        elif self.inline:
            filled = round(20 * self.done / max(self.epochs, 1))
            bar = "#" * filled + "-" * (20 - filled)
            print(f"\rtraining [{bar}] {self.done}/{self.epochs} loss {loss}", end="", file=sys.stderr, flush=True)
        if self.verbose >= 2:
            parts = [f"{k}={v:.5g}" if isinstance(v, float) else f"{k}={v}" for k, v in record.items() if k != "epoch"]
            print(f"epoch {self.done}/{self.epochs} " + " ".join(parts), file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
        elif self.inline and self.done:
            print(file=sys.stderr, flush=True)


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
    cfg.validate()
    if checkpoint_every < 0:
        raise ConfigError(f"checkpoint_every={checkpoint_every} is invalid: expected an integer >= 0.")
    if resume and checkpoint_dir is None:
        raise ConfigError("resume=True needs checkpoint_dir, the folder the interrupted run wrote its checkpoint to.")
    seed = resolve_seed(cfg.random_state if seed is None else seed)
    me = world()
    device, gen, data = _training_data(X, cfg, seed, me)
    ckpt_dir = None if checkpoint_dir is None else Path(checkpoint_dir)
    saved = _resumable_checkpoint(ckpt_dir, cfg) if resume else None
    run = _Run(module, cfg, data, gen, me, device, ckpt_dir, checkpoint_every, on_epoch_end)
    with torch.random.fork_rng(devices=[]), torch_threads(getattr(cfg, "n_threads", None)):
        # noise inside the model (dropout, sampling) draws from a stream the checkpoint can restore
        torch.manual_seed(seed ^ 0x5EED)
        run.start(saved, warm_start)
        run.epochs()
    return run.finish()


def _training_data(
    X: Any, cfg: TrainConfig, seed: int, me: World
) -> tuple[torch.device, torch.Generator, _MemoryData | _StreamData]:
    """The device, the shuffling generator (seeded) and the training data, its validation part held out."""
    if cfg.batch_size < me.size:
        raise ConfigError(
            f"batch_size={cfg.batch_size} is the global batch; it must be at least the {me.size} processes."
        )
    device = _device_for(cfg, me)
    gen = torch.Generator().manual_seed(seed)
    data_cls = _StreamData if isinstance(X, streaming.ChunkSource) else _MemoryData
    return device, gen, data_cls(X, cfg, gen, me, device)


def _resumable_checkpoint(directory: Path, cfg: TrainConfig) -> TrainState:
    """The checkpoint in ``directory``, checked to have been written with the same training settings."""
    saved = load_checkpoint(directory)
    now = cfg.to_dict()
    free = {"verbose", "device", "n_threads"}
    changed = sorted(k for k in set(saved.config) | set(now) if k not in free and saved.config.get(k) != now.get(k))
    if changed:
        details = ", ".join(f"{k}: {saved.config.get(k)!r} -> {now.get(k)!r}" for k in changed)
        raise ConfigError(
            f"The checkpoint in {directory} was written with different training settings ({details}). "
            "Resume with the settings of the interrupted run (lucidae train --resume RUN reads them for you)."
        )
    return saved


class _Run:
    """One call of :func:`train`: its settings, and the state it carries from epoch to epoch.

    That state (step count, history, best validation loss and weights, epochs without
    improvement, first loss) is what a checkpoint saves and ``resume`` restores. The
    steps, in order: :meth:`start`, :meth:`epochs`, :meth:`finish`.
    """

    def __init__(
        self,
        module: nn.Module,
        cfg: TrainConfig,
        data: _MemoryData | _StreamData,
        gen: torch.Generator,
        me: World,
        device: torch.device,
        ckpt_dir: Path | None,
        checkpoint_every: int,
        on_epoch_end: Callable[[dict[str, Any]], None] | None,
    ):
        self.module, self.cfg, self.data, self.gen, self.me, self.device = module, cfg, data, gen, me, device
        self.ckpt_dir, self.checkpoint_every, self.on_epoch_end = ckpt_dir, checkpoint_every, on_epoch_end
        self.n_epochs = auto_epochs(data.steps_per_epoch) if cfg.epochs is None else cfg.epochs
        self.total_steps = data.steps_per_epoch * self.n_epochs
        bf16 = getattr(cfg, "precision", "fp32") == "bf16"
        self.autocast = torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
        self.writer = me.rank == 0
        self.progress = _Progress(cfg.verbose if self.writer else 0, self.n_epochs)
        self.history = History()
        self.best_val, self.bad_epochs = math.inf, 0
        self.best_state: dict[str, Tensor] | None = None
        self.first_loss: float | None = None
        self.start_epoch, self.step = 1, 0
        self.snapshot: TrainState | None = None  # the state after the last finished epoch, when checkpointing
        self.written_epoch = -1  # the epoch whose checkpoint is on disk (-1: none)

    def start(self, saved: TrainState | None, warm_start: bool) -> None:
        """Put the module on the device, initialise it from the data or restore ``saved``, pick the steps."""
        module, cfg = self.module, self.cfg
        module.to(self.device).train()
        if saved is None and not warm_start and hasattr(module, "prepare"):
            module.prepare(self.data.prepare_sample())
        self.optimizer = make_optimizer(module, cfg)
        if saved is not None:
            self._restore(saved)
        self.model_fn: Any = _LossModule(module)
        if self.me.size > 1:
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            self.model_fn = DistributedDataParallel(self.model_fn, device_ids=device_ids)
        # the untied dense autoencoder's step is written out (lucidae.fast_step); one process only,
        # since DistributedDataParallel reduces gradients through autograd's hooks
        layers = fast_step.plain_dense_layers(module, cfg) if self.me.size == 1 else None
        self.dense_step = fast_step.DenseStep(module, layers) if layers is not None else None
        self.has_after_step = hasattr(module, "after_step")
        self.optimizer_step = fused_adam_step(self.optimizer)
        self.constant_lr = cfg.lr_schedule == "constant"
        self.last_good = _clone_state(module)

    def _restore(self, saved: TrainState) -> None:
        """Continue from ``saved``: weights, optimiser, random generators and the epoch-to-epoch state."""
        try:
            self.module.load_state_dict(saved.module)
            self.optimizer.load_state_dict(saved.optimizer)
            self.gen.set_state(saved.generators["shuffle"])
            torch.set_rng_state(saved.generators["torch"])
            if "local" in saved.generators and isinstance(self.data, _StreamData):
                self.data.local_gen.set_state(saved.generators["local"])
        except (RuntimeError, KeyError, ValueError, TypeError) as err:
            # the checksum passed, so the file was written like this: it belongs to another model or was edited
            raise CorruptFileError(
                f"The checkpoint in {self.ckpt_dir} does not fit this model and trainer ({str(err)[:300]}). "
                "It belongs to another run or was edited; start the run again without --resume."
            ) from err
        self.history = History.from_dict(saved.history)
        self.best_val, self.bad_epochs, self.first_loss = saved.best_val, saved.bad_epochs, saved.first_loss
        if saved.best_state is not None:
            self.best_state = {k: v.to(self.device) for k, v in saved.best_state.items()}
        self.start_epoch, self.step = saved.epoch + 1, saved.step
        if self.history.stopped_early:  # early stopping had already ended the run
            self.start_epoch = self.n_epochs + 1
        self.written_epoch = self.start_epoch - 1

    def epochs(self) -> None:
        """Train epoch after epoch until the last or early stopping; Ctrl-C raises :class:`TrainingInterrupted`."""
        epoch = self.start_epoch
        try:
            for epoch in range(self.start_epoch, self.n_epochs + 1):
                record = self._epoch(epoch)
                self.history.records.append(record)
                self.progress.update(record)
                stop = self._early_stop(epoch, record.get("val_loss"))
                self._checkpoint(epoch, stop)
                if self.on_epoch_end is not None:
                    self.on_epoch_end(record)
                if stop:
                    break
        except KeyboardInterrupt as interrupt:
            if isinstance(interrupt, TrainingInterrupted):
                raise
            raise self._interrupted(epoch) from None
        finally:
            self.progress.close()

    def _epoch(self, epoch: int) -> dict[str, Any]:
        """Train one epoch and return its record: mean loss terms, validation loss, learning rate, speed."""
        start = time.perf_counter()
        sums, seen = self._steps(epoch)
        names = list(sums)
        totals = all_reduce_sum(torch.stack([sums[k].cpu() for k in names] + [torch.tensor(float(seen))]))
        n_seen = max(float(totals[-1]), 1.0)
        record: dict[str, Any] = {"epoch": epoch}
        record.update({k: float(v) / n_seen for k, v in zip(names, totals[:-1])})
        _stop_if_diverged(record["loss"], epoch, self.step, self.cfg, self.first_loss, self.module, self.last_good)
        self.last_good = _clone_state(self.module)
        val_loss = self.data.validation_loss(self.module)
        if val_loss is not None:
            record["val_loss"] = val_loss
        record["lr"] = self.optimizer.param_groups[0]["lr"]
        record["seconds"] = time.perf_counter() - start
        record["samples_per_s"] = n_seen / max(record["seconds"], 1e-9)
        return record

    def _steps(self, epoch: int) -> tuple[dict[str, Tensor], int]:
        """One epoch's optimiser steps; returns each loss term summed over the rows (on the device) and the rows."""
        cfg, module, optimizer = self.cfg, self.module, self.optimizer
        sums: dict[str, Tensor] = {}
        seen, checked_sum, checked_seen = 0, 0.0, 0
        for xb, rows, weight in self.data.batches(self.gen):
            if not self.constant_lr:
                lr = lr_at(self.step, self.total_steps, cfg)
                for group in optimizer.param_groups:
                    group["lr"] = lr
            if self.dense_step is not None:
                loss = self.dense_step(xb)  # loss and gradients, no autograd
            else:
                with self.autocast:
                    loss = self.model_fn(xb)
                total = loss.total if weight is None else loss.total * weight
                optimizer.zero_grad(set_to_none=True)
                total.backward()
            self.optimizer_step()
            if self.has_after_step:
                module.after_step()
            self.step += 1
            seen += rows
            # accumulated on the device: no host sync per step
            for name, value in (("loss", loss.total), *loss.terms.items()):
                value = value.detach().float()
                if name in sums:
                    sums[name].add_(value, alpha=rows)
                else:
                    sums[name] = value * rows
            if self.first_loss is None:
                self.first_loss = float(all_reduce_sum(loss.total.detach().float().reshape(1)) / self.me.size)
            if self.step % CHECK_EVERY == 0:
                window = all_reduce_sum(torch.stack([sums["loss"].cpu(), torch.tensor(float(seen))]))
                value = (float(window[0]) - checked_sum) / max(float(window[1]) - checked_seen, 1.0)
                checked_sum, checked_seen = float(window[0]), float(window[1])
                _stop_if_diverged(value, epoch, self.step, cfg, self.first_loss, module, self.last_good)
        return sums, seen

    def _early_stop(self, epoch: int, val_loss: float | None) -> bool:
        """Keep the best validation loss (and its weights); True when ``patience`` epochs passed without one."""
        if val_loss is None:
            return False
        if val_loss < self.best_val - 1e-12:
            self.best_val, self.bad_epochs, self.history.best_epoch = val_loss, 0, epoch
            if self.cfg.restore_best:
                self.best_state = _clone_state(self.module)
            return False
        self.bad_epochs += 1
        if self.cfg.patience and self.bad_epochs >= self.cfg.patience:
            self.history.stopped_early = True
            return True
        return False

    def _checkpoint(self, epoch: int, stop: bool) -> None:
        """Keep the state after ``epoch`` (with a ``checkpoint_dir``); write it every ``checkpoint_every`` epochs."""
        if self.ckpt_dir is None:
            return
        self.snapshot = TrainState(
            epoch=epoch,
            step=self.step,
            module=self.last_good,
            optimizer=_clone_optimizer(self.optimizer),
            generators={
                "shuffle": self.gen.get_state(),
                "torch": torch.get_rng_state(),
                **({"local": self.data.local_gen.get_state()} if isinstance(self.data, _StreamData) else {}),
            },
            history=copy.deepcopy(self.history.to_dict()),
            best_val=self.best_val,
            bad_epochs=self.bad_epochs,
            best_state=self.best_state,
            first_loss=self.first_loss,
            config=self.cfg.to_dict(),
        )
        every = self.checkpoint_every
        if self.writer and every and (epoch % every == 0 or stop or epoch == self.n_epochs):
            save_checkpoint(self.ckpt_dir, self.snapshot)
            self.written_epoch = epoch

    def _interrupted(self, epoch: int) -> TrainingInterrupted:
        """After Ctrl-C in ``epoch``: save the last finished epoch if not yet on disk, keep its weights, say so."""
        done = self.snapshot.epoch if self.snapshot is not None else self.written_epoch
        path = None
        if self.ckpt_dir is not None and done >= 1:
            path = self.ckpt_dir
            if self.writer and self.snapshot is not None and self.written_epoch != self.snapshot.epoch:
                save_checkpoint(self.ckpt_dir, self.snapshot)
        if self.snapshot is not None:
            self.module.load_state_dict(self.snapshot.module)
        if path is None:
            why = "no checkpoint_dir was given" if self.ckpt_dir is None else "no epoch had finished yet"
            message = f"Training was interrupted in epoch {epoch}; nothing was saved ({why})."
        else:
            message = (
                f"Training was interrupted in epoch {epoch}; the state after epoch {done} is saved in {path}. "
                "Continue with `lucidae train --resume RUN_DIR` (or train(..., resume=True))."
            )
        return TrainingInterrupted(message, path, done)

    def finish(self) -> History:
        """Keep the best weights (when validation chose them), switch to eval mode, return the history."""
        if self.best_state is not None:
            self.module.load_state_dict(self.best_state)
        self.module.eval()
        return self.history


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
