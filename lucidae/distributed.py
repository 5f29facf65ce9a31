"""Several processes: ``torchrun --nproc_per_node=N -m lucidae train ...``.

torchrun starts N copies of the command with ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``
and a rendezvous address in the environment. :func:`init_from_env` turns that into a
process group (gloo on CPU, NCCL on CUDA); :func:`lucidae.train.train` then wraps the
model in ``DistributedDataParallel``, gives each rank its own share of every global
batch (or its own chunks of a file) and lets only rank 0 write checkpoints, models and
reports. A single process needs none of this: every function here degrades to
"rank 0 of 1".
"""

from __future__ import annotations

import os
from typing import NamedTuple

import torch
import torch.distributed as dist


class World(NamedTuple):
    """Where this process stands among the training processes."""

    rank: int
    """0-based index of this process; rank 0 writes files."""
    size: int
    """Number of processes training together (1 without torchrun)."""
    local_rank: int
    """Index of this process on its own machine; picks its GPU."""


def world() -> World:
    """The current process group, or ``World(0, 1, 0)`` when not distributed.

    Examples
    --------
    >>> world()
    World(rank=0, size=1, local_rank=0)
    """
    if dist.is_available() and dist.is_initialized():
        return World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))
    return World(0, 1, 0)


def is_main() -> bool:
    """True in the process that writes files (rank 0, or the only process).

    Examples
    --------
    >>> is_main()
    True
    """
    return world().rank == 0


def init_from_env() -> World:
    """Join the process group torchrun describes in the environment; a no-op otherwise.

    The backend is NCCL when this rank has a GPU and gloo on CPU.

    Examples
    --------
    >>> init_from_env().size  # not started by torchrun
    1
    """
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1 or not dist.is_available() or dist.is_initialized():
        return world()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    backend = "nccl" if torch.cuda.is_available() and dist.is_nccl_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend=backend)
    return world()


def shutdown() -> None:
    """Leave the process group (so torchrun sees a clean exit); a no-op when not distributed.

    Examples
    --------
    >>> shutdown()
    """
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def all_reduce_sum(values: torch.Tensor) -> torch.Tensor:
    """Sum ``values`` over all processes (in place) and return it; identity for one process.

    Examples
    --------
    >>> all_reduce_sum(torch.tensor([1.0, 2.0])).tolist()
    [1.0, 2.0]
    """
    if world().size > 1:
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values
