"""How the training data reaches the loop (:func:`lucidae.train.train`): in memory or streamed.

:class:`MemoryData` keeps the whole training set as one tensor on the device and gathers
each batch from it with one ``index_select`` of a per-epoch permutation: no per-sample
Python work and no ``DataLoader`` collation. :class:`StreamData` streams a
:class:`lucidae.streaming.ChunkSource` (data larger than memory) in shuffled chunks. Both
hold out the validation part, give the module its sample for data-dependent
initialisation (``prepare``), yield ``(x, rows, weight)`` batches, and compute the
validation loss; under torchrun each rank takes its share of every global batch.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from lucidae import streaming
from lucidae.config import TrainConfig
from lucidae.distributed import World
from lucidae.errors import DataError

PREPARE_ROWS = 4096
"""Rows of a streamed dataset passed to ``module.prepare`` for data-dependent initialisation."""

EVAL_BATCH = 4096
"""Samples per forward pass when evaluating (no gradients, so larger batches are fine)."""


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


class MemoryData:
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


class StreamData:
    """Chunks of an on-disk array (:class:`lucidae.streaming.ChunkSource`), shuffled locally.

    Every epoch the order of the training chunks is shuffled; :data:`lucidae.streaming.SHUFFLE_CHUNKS` full
    chunks' worth of them at a time are read (in a background thread, while the previous buffer trains),
    their rows shuffled together and fed in batches. Validation holds out whole chunks.
    With several processes each rank reads only its own chunks.
    """

    def __init__(self, source: Any, cfg: TrainConfig, gen: torch.Generator, me: World, device: torch.device):
        self.source = source
        self.me = me
        self.device = device
        self.shuffle = cfg.shuffle
        # the shuffle buffer holds SHUFFLE_CHUNKS full chunks' worth of bytes: the smaller chunks of a
        # small file are that many more per buffer, so a file under 128 MB is still shuffled as a whole
        chunk_bytes = 4 * max(1, source.chunk_rows * source.n_features)
        self.group = max(streaming.SHUFFLE_CHUNKS, streaming.SHUFFLE_CHUNKS * streaming.CHUNK_BYTES // chunk_bytes)
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
