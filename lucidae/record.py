"""Record what a layer of any PyTorch model computes, to train a sparse autoencoder on it.

Interpretability work on a network usually starts from its activations: run the
network over many inputs, keep the output of one layer, and train a
:class:`~lucidae.TopKAutoEncoder` on the resulting ``(n, d)`` array.
:func:`record_activations` does the first part with a forward hook, batch by batch,
into memory or straight into a ``.npy`` file on disk (a memory map), so activations
larger than RAM can be collected and then read back with ``np.load(path, mmap_mode="r")``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from lucidae.errors import DataError


class _Stop(Exception):
    """Raised inside the hook to skip the layers after the one recorded."""


def _resolve_layer(model: nn.Module, layer: nn.Module | str) -> nn.Module:
    if isinstance(layer, nn.Module):
        if not any(m is layer for m in model.modules()):
            raise DataError(f"layer {type(layer).__name__} is not a submodule of the model given.")
        return layer
    try:
        return model.get_submodule(layer)
    except AttributeError as err:
        names = [name for name, _ in model.named_modules() if name]
        shown = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "")
        raise DataError(
            f"layer={layer!r} is not a submodule of {type(model).__name__}. "
            f"Use a dotted name from model.named_modules(): {shown}."
        ) from err


def _first_tensor(output: Any) -> Tensor:
    # Transformer blocks and RNNs return tuples; their first element is the hidden state.
    while isinstance(output, (tuple, list)):
        output = output[0]
    if not isinstance(output, Tensor):
        raise DataError(f"The layer returned {type(output).__name__}, not a tensor; record a layer that returns one.")
    return output


def record_activations(
    model: nn.Module,
    layer: nn.Module | str,
    data: Any,
    *,
    batch_size: int = 256,
    positions: bool = False,
    out: str | os.PathLike | None = None,
    device: str | torch.device | None = None,
    stop_after_layer: bool = True,
) -> np.ndarray:
    """Run ``model`` over ``data`` and return what ``layer`` outputs, one row per sample (or position).

    A forward hook on ``layer`` copies its output (the first tensor of a tuple output)
    for each batch, in eval mode and without gradients; the model's training flag is
    restored afterwards and the hook is always removed.

    Parameters
    ----------
    model : torch.nn.Module
        Any module; it is called as ``model(batch)``.
    layer : torch.nn.Module or str
        The submodule whose output is recorded, or its dotted name in
        ``model.named_modules()`` (for example ``"encoder.layers.3.mlp"``).
    data : Tensor or ndarray of shape (n_samples, ...), or an iterable of batches
        Model inputs. A tensor or array (a memory map included) is fed in slices of
        ``batch_size`` along the first axis; integer inputs such as token ids keep their
        dtype. Anything else is iterated as ready-made batches, such as a
        ``DataLoader``: a batch that is a tuple or list is ``(inputs, ...)`` and only its
        first element goes to the model; a dict is passed as keyword arguments.
    batch_size : int, default=256
        Samples per forward pass when ``data`` is a tensor or array.
    positions : bool, default=False
        False: each sample's output is flattened to one row, giving
        ``(n_samples, prod(output.shape[1:]))``. True: every position of a
        ``(batch, ..., d)`` output becomes a row (the tokens of a transformer), giving
        ``(n_samples * positions_per_sample, d)``.
    out : path-like, optional
        Write to this ``.npy`` file through a memory map instead of keeping the result
        in memory; the returned array is that memory map.
    device : str or torch.device, optional
        Where inputs are sent; defaults to the device of the model's first parameter (or CPU).
    stop_after_layer : bool, default=True
        Skip the rest of the forward pass once the layer has run (saves the time of the
        later layers). Set False for a model whose forward must run to the end.

    Returns
    -------
    ndarray of float32, shape (n_rows, n_features)
        In memory, or an ``np.memmap`` backed by ``out``.

    Raises
    ------
    DataError
        When ``layer`` is not part of ``model``, the layer never runs, or its output
        changes shape between batches.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> acts = record_activations(net, "1", torch.randn(10, 4), batch_size=3)
    >>> acts.shape, bool((acts >= 0).all())
    ((10, 8), True)
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise DataError(f"batch_size={batch_size!r} is invalid: expected an integer >= 1.")
    target = _resolve_layer(model, layer)
    if device is None:
        first = next(model.parameters(), None)
        device = first.device if first is not None else torch.device("cpu")
    sliceable = isinstance(data, (Tensor, np.ndarray)) or (hasattr(data, "__len__") and hasattr(data, "shape"))
    n = len(data) if sliceable else None
    if n == 0:
        raise DataError("record_activations got no samples: data is empty.")
    captured: list[Tensor] = []

    def hook(module: nn.Module, inputs: Any, output: Any) -> None:
        if not captured:  # a layer called twice in one pass: keep its first call
            captured.append(_first_tensor(output).detach())
        if stop_after_layer:
            raise _Stop

    sink = _Sink(n, out)
    row_shape: tuple[int, ...] | None = None
    seen = 0
    was_training = model.training
    handle = target.register_forward_hook(hook)
    model.eval()
    try:
        with torch.no_grad():
            for batch in _batches(data, batch_size) if sliceable else data:
                captured.clear()
                try:
                    _call(model, batch, device)
                except _Stop:
                    pass
                if not captured:
                    raise DataError(f"layer {layer!r} did not run during the forward pass; pick a layer that does.")
                act = captured[0].float()  # (batch, ...)
                if row_shape is None:
                    row_shape = tuple(act.shape[1:])
                elif tuple(act.shape[1:]) != row_shape:
                    raise DataError(
                        f"The layer's output per sample changed shape from {row_shape} to "
                        f"{tuple(act.shape[1:])} at sample {seen}; pad inputs to one length."
                    )
                rows = act.reshape(-1, act.shape[-1]) if positions else act.reshape(act.shape[0], -1)  # (rows, d)
                sink.write(rows.cpu().numpy(), rows_per_sample=rows.shape[0] // max(act.shape[0], 1))
                seen += act.shape[0]
    finally:
        handle.remove()
        model.train(was_training)
    if seen == 0:
        raise DataError("record_activations got no samples: data is empty.")
    return sink.finish()


def _batches(data: Any, batch_size: int) -> Any:
    for start in range(0, len(data), batch_size):
        yield data[start : start + batch_size]


def _call(model: nn.Module, batch: Any, device: Any) -> None:
    # A DataLoader yields (inputs, labels) pairs or dicts of keyword inputs (Hugging Face style).
    def move(x: Any) -> Any:
        if isinstance(x, np.ndarray):
            x = torch.from_numpy(np.ascontiguousarray(x))
        if isinstance(x, Tensor):
            return (x.to(torch.float32) if x.is_floating_point() else x).to(device)
        return x

    if isinstance(batch, dict):
        model(**{k: move(v) for k, v in batch.items()})
    elif isinstance(batch, (tuple, list)):
        model(move(batch[0]))
    else:
        model(move(batch))


class _Sink:
    """Collects rows: preallocated when the sample count is known, else appended."""

    def __init__(self, n_samples: int | None, out: str | os.PathLike | None):
        self.n_samples, self.out = n_samples, None if out is None else Path(out)
        self.array: np.ndarray | None = None
        self.parts: list[np.ndarray] = []
        self.raw: Any = None
        self.written = 0
        self.width = 0

    def write(self, rows: np.ndarray, rows_per_sample: int) -> None:
        if self.array is None and not self.parts and self.raw is None:
            self.width = rows.shape[1]
            if self.out is not None:
                self.out.parent.mkdir(parents=True, exist_ok=True)
            if self.n_samples is not None:
                shape = (self.n_samples * rows_per_sample, self.width)
                if self.out is None:
                    self.array = np.empty(shape, dtype=np.float32)
                else:
                    self.array = np.lib.format.open_memmap(self.out, mode="w+", dtype=np.float32, shape=shape)
            elif self.out is not None:
                # Unknown length: stream raw rows beside the target, add the .npy header at the end.
                self.raw = open(self.out.with_name(self.out.name + ".rows.tmp"), "wb")  # noqa: SIM115
        if self.array is not None:
            self.array[self.written : self.written + rows.shape[0]] = rows
        elif self.raw is not None:
            self.raw.write(np.ascontiguousarray(rows, dtype=np.float32).tobytes())
        else:
            self.parts.append(rows.astype(np.float32, copy=False))
        self.written += rows.shape[0]

    def finish(self) -> np.ndarray:
        if self.array is not None:
            if isinstance(self.array, np.memmap):
                self.array.flush()
            return self.array
        if self.raw is None:
            return np.concatenate(self.parts, axis=0)
        assert self.out is not None
        tmp = Path(self.raw.name)
        self.raw.close()
        rows = np.memmap(tmp, dtype=np.float32, mode="r", shape=(self.written, self.width))
        result = np.lib.format.open_memmap(self.out, mode="w+", dtype=np.float32, shape=rows.shape)
        step = max(1, (64 << 20) // (4 * max(self.width, 1)))  # copy in 64 MiB pieces
        for start in range(0, self.written, step):
            result[start : start + step] = rows[start : start + step]
        result.flush()
        del rows
        tmp.unlink()
        return result
