"""Record what a layer of any PyTorch model computes, to train a sparse autoencoder on it.

Interpretability work on a network usually starts from its activations: run the
network over many inputs, keep the output of one layer, and train a
:class:`~lucidae.TopKAutoEncoder` on the resulting ``(n, d)`` array.
:func:`record_activations` does the first part with a forward hook, batch by batch,
into memory or straight into a ``.npy`` file on disk (a memory map), so activations
larger than RAM can be collected and then read back with ``np.load(path, mmap_mode="r")``.

Padding never becomes a row: a batch's attention mask (the ``"attention_mask"`` of a
Hugging Face style dict batch, or an element of a tuple batch) drops padded positions in
``positions=True`` mode and is left out of the mean in ``pool=True`` mode, and in both modes
batches may have different sequence lengths. Each recording describes where its rows came
from (:func:`record_activations` ``provenance=``, and, with ``out``, the JSON file
``<out>.meta.json`` beside the array, read back by :func:`read_provenance`).
"""

from __future__ import annotations

import datetime
import json
import os
import struct
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from lucidae._version import __version__
from lucidae.errors import ConfigError, CorruptFileError, DataError
from lucidae.io import write_json

PROVENANCE_FORMAT = "lucidae.record/1"
"""The ``format`` field of a provenance record; bumped if its fields change incompatibly."""
SIDECAR_SUFFIX = ".meta.json"
"""Appended to the whole file name of ``out``: ``acts.npy`` -> ``acts.npy.meta.json``."""
MAX_SIDECAR_BYTES = 1 << 20
"""A sidecar larger than this is refused before it is parsed; a real one is under 2 KB."""
_ROW_DIGITS = 20
"""Room kept in a streamed ``.npy`` header for the row count, so it can be written in place at the end."""


class _Stop(Exception):
    """Raised inside the hook to skip the layers after the one recorded."""


def _resolve_layer(model: nn.Module, layer: nn.Module | str) -> tuple[nn.Module, str]:
    # Returns the module and its dotted name, which the provenance records.
    if isinstance(layer, nn.Module):
        for name, module in model.named_modules(remove_duplicate=False):
            if module is layer:
                return layer, name
        raise DataError(f"layer {type(layer).__name__} is not a submodule of the model given.")
    try:
        return model.get_submodule(layer), layer
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


def sidecar_path(out: str | os.PathLike) -> Path:
    """Where the provenance of the array ``out`` is written: ``<out>.meta.json``, beside it.

    The whole file name is kept (``acts.npy.meta.json``, not ``acts.json``) so the sidecar
    cannot collide with another JSON file of the folder, such as a run's ``run.json``.

    Examples
    --------
    >>> sidecar_path("runs/acts.npy").as_posix()
    'runs/acts.npy.meta.json'
    """
    out = Path(out)
    return out.with_name(out.name + SIDECAR_SUFFIX)


def record_activations(
    model: nn.Module,
    layer: nn.Module | str,
    data: Any,
    *,
    batch_size: int = 256,
    positions: bool = False,
    pool: bool = False,
    attention_mask: str | int | None = "attention_mask",
    out: str | os.PathLike | None = None,
    sidecar: bool | None = None,
    provenance: dict[str, Any] | None = None,
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
    data : Tensor, ndarray, dict of them, or an iterable of batches
        Model inputs. A tensor or array of shape ``(n_samples, ...)`` (a memory map
        included) is fed in slices of ``batch_size`` along the first axis; integer inputs
        such as token ids keep their dtype. A dict of tensors or arrays of equal length
        (``{"input_ids": ..., "attention_mask": ...}``) is sliced the same way into dict
        batches. Anything else is iterated as ready-made batches, such as a ``DataLoader``:
        a batch that is a tuple or list is ``(inputs, ...)`` and only its first element
        goes to the model; a dict is passed as keyword arguments.
    batch_size : int, default=256
        Samples per forward pass when ``data`` is sliced.
    positions : bool, default=False
        False: each sample's output is flattened to one row, giving
        ``(n_samples, prod(output.shape[1:]))``; every batch must give the same shape.
        True: every position of a ``(batch, ..., d)`` output becomes a row (the tokens of
        a transformer), except padded positions; batches may differ in length.
    pool : bool, default=False
        Average the positions of a ``(batch, ..., d)`` output into one ``(d,)`` row per
        sample, leaving padded positions out of the mean; batches may differ in length.
        Cannot be combined with ``positions``.
    attention_mask : str, int or None, default="attention_mask"
        Where a batch carries its mask: the key of a dict batch (it still reaches the model
        as a keyword), or the index of a tuple batch (``1`` for ``(input_ids, mask)``; only
        element 0 reaches the model). A batch without one is all real positions. The mask
        has the output's shape without its last axis, with 1 (or True) for a real position
        and 0 for padding. None ignores masks. Flattened mode (neither ``positions`` nor
        ``pool``) keeps every position, so it does not use the mask.
    out : path-like, optional
        Write to this ``.npy`` file through a memory map instead of keeping the result
        in memory; the returned array is that memory map. When the row count is not known
        in advance (batches from an iterable, a mask, mixed lengths) the rows are streamed
        to a hidden sibling whose header is completed at the end and which is then renamed
        to ``out``, so memory holds one batch at a time either way.
    sidecar : bool, optional
        Whether to write the provenance as JSON to ``<out>.meta.json``; by default it is
        written whenever ``out`` is given, so rows on disk always say where they came from
        (:func:`sidecar_path`, atomically), which :func:`read_provenance` reads back. A
        sidecar left from an earlier recording to the same ``out`` is removed either way,
        as it no longer describes the file.
    provenance : dict, optional
        Updated in place with where the rows came from: the model class, the layer's
        dotted name and class, the mode (``"flat"``, ``"positions"`` or ``"pooled"``), the
        sample and row counts, ``d``, the dtype, how the attention mask was used, the
        lucidae and torch versions and the time. The same record the sidecar holds.
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
    ConfigError
        When ``attention_mask`` is invalid, ``positions`` and ``pool`` are both set, or
        ``sidecar`` is asked for without ``out``.
    DataError
        When ``batch_size`` is not an integer >= 1, ``layer`` is not part of ``model``, the
        layer never runs, its output changes shape between batches (flattened mode) or width
        (the other modes), a mask does not fit the output, a pooled sample has no real
        position, or no row is left.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> acts = record_activations(net, "1", torch.randn(10, 4), batch_size=3)
    >>> acts.shape, bool((acts >= 0).all())
    ((10, 8), True)

    Token batches of different lengths, with padding marked by the mask (the second
    sample of the first batch has one padded position):

    >>> tokens = nn.Sequential(nn.Embedding(10, 3), nn.Identity())
    >>> batches = [
    ...     {"input": torch.tensor([[1, 2], [3, 0]]), "attention_mask": torch.tensor([[1, 1], [1, 0]])},
    ...     {"input": torch.tensor([[4, 5, 6]])},
    ... ]
    >>> class Wrap(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.net = tokens
    ...     def forward(self, input, attention_mask=None):
    ...         return self.net(input)
    >>> info = {}
    >>> record_activations(Wrap(), "net.1", batches, positions=True, provenance=info).shape
    (6, 3)
    >>> info["mode"], info["rows"], info["attention_mask"]["masked_positions"]
    ('positions', 6, 1)
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise DataError(f"batch_size={batch_size!r} is invalid: expected an integer >= 1.")
    if positions and pool:
        raise ConfigError(
            "positions=True and pool=True were both given: positions makes one row per position, pool one per "
            "sample. Pick one."
        )
    if attention_mask is not None and (isinstance(attention_mask, bool) or not isinstance(attention_mask, (str, int))):
        raise ConfigError(
            f"attention_mask={attention_mask!r} is invalid: expected the key of a dict batch (str), the index "
            "of a tuple batch (int), or None to ignore masks."
        )
    if sidecar and out is None:
        raise ConfigError("sidecar=True needs out=: the sidecar is written beside the .npy file. Pass out or drop it.")
    mode = "positions" if positions else "pooled" if pool else "flat"
    target, layer_name = _resolve_layer(model, layer)
    if device is None:
        first = next(model.parameters(), None)
        device = first.device if first is not None else torch.device("cpu")
    if isinstance(data, Mapping):
        n = _mapping_length(data)
        batches: Any = _mapping_batches(data, n, batch_size)
    elif isinstance(data, (Tensor, np.ndarray)) or (hasattr(data, "__len__") and hasattr(data, "shape")):
        n = len(data)
        batches = _batches(data, batch_size)
    else:
        n, batches = None, data
    if n == 0:
        raise DataError("record_activations got no samples: data is empty.")
    captured: list[Tensor] = []

    def hook(module: nn.Module, inputs: Any, output: Any) -> None:
        if not captured:  # a layer called twice in one pass: keep its first call
            captured.append(_first_tensor(output).detach())
        if stop_after_layer:
            raise _Stop

    if out is not None:
        # An earlier recording's sidecar would describe rows this call replaces: drop it before writing.
        sidecar_path(out).unlink(missing_ok=True)
    sink = _Sink(n, out)
    row_shape: tuple[int, ...] | None = None
    source_dtype = "float32"
    seen = masked_batches = masked_positions = 0
    was_training = model.training
    handle = target.register_forward_hook(hook)
    model.eval()
    try:
        with torch.no_grad():
            for batch in batches:
                mask = _mask_of(batch, attention_mask)
                captured.clear()
                try:
                    _call(model, batch, device)
                except _Stop:
                    pass
                if not captured:
                    raise DataError(f"layer {layer!r} did not run during the forward pass; pick a layer that does.")
                source_dtype = str(captured[0].dtype).removeprefix("torch.")
                act = captured[0].float()  # (batch, ..., d)
                # Flattened rows must all be one width; per-position and pooled rows only need the same d.
                shape = tuple(act.shape[1:]) if mode == "flat" else tuple(act.shape[-1:])
                if row_shape is None:
                    row_shape = shape
                elif shape != row_shape:
                    raise DataError(
                        f"The layer's output per sample changed shape from {row_shape} to {shape} at sample {seen}; "
                        + (
                            "pad inputs to one length, or record with positions=True or pool=True, which accept "
                            "batches of different lengths."
                            if mode == "flat"
                            else "every batch must give the same last dimension d."
                        )
                    )
                if mode != "flat" and mask is not None:
                    mask = _check_mask(mask, act, seen)  # (batch, ...) bool, True = real position
                    masked_batches += 1
                    masked_positions += int((~mask).sum())
                if mode == "flat":
                    rows = act.reshape(act.shape[0], -1)  # (batch, prod(rest))
                elif mode == "positions":
                    rows = act.reshape(-1, act.shape[-1]) if mask is None else act[mask]  # (kept positions, d)
                else:
                    rows = _pool(act, mask, seen)  # (batch, d)
                sink.write(rows.cpu().numpy(), samples=act.shape[0], fixed=mode != "positions" or mask is None)
                seen += act.shape[0]
    except BaseException:
        sink.abort()
        raise
    finally:
        handle.remove()
        model.train(was_training)
    if seen == 0:
        sink.abort()
        raise DataError("record_activations got no samples: data is empty.")
    if sink.written == 0:
        sink.abort()
        raise DataError(
            f"Every one of the {seen} samples was padding by its attention mask, so no row is left. "
            "Check that the mask holds 1 for real positions and 0 for padding."
        )
    result = sink.finish()
    record = {
        "format": PROVENANCE_FORMAT,
        "model": f"{type(model).__module__}.{type(model).__qualname__}",
        "layer": layer_name,
        "layer_class": f"{type(target).__module__}.{type(target).__qualname__}",
        "mode": mode,
        "samples": seen,
        "rows": int(result.shape[0]),
        "d": int(result.shape[1]),
        "dtype": str(result.dtype),
        "source_dtype": source_dtype,
        "attention_mask": {
            "source": attention_mask,
            # Flattened mode keeps every position, so a mask there changes nothing.
            "used": mode != "flat" and masked_batches > 0,
            "batches_with_mask": masked_batches,
            "masked_positions": masked_positions,
        },
        "stop_after_layer": stop_after_layer,
        "file": None if out is None else Path(out).name,
        "lucidae_version": __version__,
        "torch_version": torch.__version__,
        "recorded_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    if provenance is not None:
        provenance.update(record)
    if out is not None and sidecar is not False:
        write_json(sidecar_path(out), record)
    return result


def read_provenance(path: str | os.PathLike) -> dict[str, Any]:
    """Read the provenance that ``record_activations(..., out=path, sidecar=True)`` wrote.

    Parameters
    ----------
    path : path-like
        The ``.npy`` file (its sidecar ``<path>.meta.json`` is read) or the sidecar itself.

    Returns
    -------
    dict
        The record (see ``provenance`` in :func:`record_activations`).

    Raises
    ------
    DataError
        When there is no sidecar.
    CorruptFileError
        When the sidecar is not a provenance record, or its row count and ``d`` do not
        match the ``.npy`` beside it (the array was replaced after the sidecar was written).

    Examples
    --------
    >>> import tempfile, pathlib, torch
    >>> from torch import nn
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "acts.npy"
    >>> _ = record_activations(nn.Sequential(nn.Linear(3, 5)), "0", torch.ones(4, 3), out=path, sidecar=True)
    >>> meta = read_provenance(path)
    >>> meta["layer"], meta["rows"], meta["d"], meta["mode"]
    ('0', 4, 5, 'flat')
    """
    path = Path(path)
    if path.name.endswith(SIDECAR_SUFFIX):
        meta_path, array_path = path, path.with_name(path.name[: -len(SIDECAR_SUFFIX)])
    else:
        meta_path, array_path = sidecar_path(path), path
    if not meta_path.is_file():
        raise DataError(
            f"{meta_path} does not exist, so the provenance of {array_path.name} is unknown. "
            "Record with record_activations(..., out=..., sidecar=True) to write it."
        )
    if meta_path.stat().st_size > MAX_SIDECAR_BYTES:
        raise CorruptFileError(
            f"{meta_path} is {meta_path.stat().st_size} bytes; a provenance record is never that large."
        )
    try:
        record = json.loads(meta_path.read_text(encoding="utf-8"))
    except (ValueError, RecursionError, OSError) as err:
        raise CorruptFileError(f"{meta_path} is not valid JSON ({str(err)[:200]}). Delete it or record again.") from err
    counts = ("samples", "rows", "d")
    if (
        not isinstance(record, dict)
        or record.get("format") != PROVENANCE_FORMAT
        or not all(isinstance(record.get(k), int) and not isinstance(record.get(k), bool) for k in counts)
        or not all(isinstance(record.get(k), str) for k in ("model", "layer", "mode", "dtype"))
        or not isinstance(record.get("attention_mask"), dict)
    ):
        raise CorruptFileError(
            f"{meta_path} is not a lucidae provenance record: expected an object with format "
            f"{PROVENANCE_FORMAT!r}, integer samples/rows/d, string model/layer/mode/dtype and an attention_mask "
            "object. Delete it or record again."
        )
    if array_path.is_file():
        try:
            shape = np.load(array_path, mmap_mode="r", allow_pickle=False).shape
        except (ValueError, OSError) as err:
            raise CorruptFileError(f"{array_path} could not be read as .npy ({str(err)[:200]}).") from err
        if tuple(shape) != (record["rows"], record["d"]):
            raise CorruptFileError(
                f"{meta_path} describes {record['rows']} rows of width {record['d']}, but {array_path.name} holds "
                f"shape {tuple(shape)}: the array was replaced after its sidecar was written. Record again."
            )
    return record


def _batches(data: Any, batch_size: int) -> Any:
    for start in range(0, len(data), batch_size):
        yield data[start : start + batch_size]


def _mapping_length(data: Mapping) -> int:
    lengths = {}
    for key, value in data.items():
        if not isinstance(value, (Tensor, np.ndarray)) or value.ndim == 0:
            raise DataError(
                f"data[{key!r}] is {type(value).__name__}: a dict given as data is sliced into batches, so each "
                "value must be a tensor or array with samples along its first axis. Pass an iterable of dict "
                "batches instead to give other values."
            )
        lengths[key] = len(value)
    if len(set(lengths.values())) > 1:
        raise DataError(f"The arrays of the dict given as data differ in length ({lengths}); they must be equal.")
    return next(iter(lengths.values()), 0)


def _mapping_batches(data: Mapping, n: int, batch_size: int) -> Any:
    for start in range(0, n, batch_size):
        yield {key: value[start : start + batch_size] for key, value in data.items()}


def _to_tensor(x: Any) -> Any:
    if isinstance(x, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(x))
    return x


def _call(model: nn.Module, batch: Any, device: Any) -> None:
    # A DataLoader yields (inputs, labels) pairs or dicts of keyword inputs (Hugging Face style).
    def move(x: Any) -> Any:
        x = _to_tensor(x)
        if isinstance(x, Tensor):
            return (x.to(torch.float32) if x.is_floating_point() else x).to(device)
        return x

    if isinstance(batch, dict):
        model(**{k: move(v) for k, v in batch.items()})
    elif isinstance(batch, (tuple, list)):
        model(move(batch[0]))
    else:
        model(move(batch))


def _mask_of(batch: Any, where: str | int | None) -> Tensor | None:
    if where is None:
        return None
    if isinstance(where, str):
        # A dict batch without the key has no padding (an unpadded batch of a tokenizer, say).
        return _to_tensor(batch.get(where)) if isinstance(batch, dict) else None
    if not isinstance(batch, (tuple, list)) or not -len(batch) <= where < len(batch):
        kind = f"a {len(batch)}-tuple" if isinstance(batch, (tuple, list)) else type(batch).__name__
        raise DataError(
            f"attention_mask={where} names element {where} of a tuple batch, but a batch is {kind}. "
            "Give batches as (inputs, mask, ...), or the key of dict batches, or attention_mask=None."
        )
    return _to_tensor(batch[where])


def _check_mask(mask: Any, act: Tensor, seen: int) -> Tensor:
    if not isinstance(mask, Tensor):
        raise DataError(
            f"The attention mask of the batch at sample {seen} is {type(mask).__name__}; expected a tensor or array."
        )
    if tuple(mask.shape) != tuple(act.shape[:-1]):
        raise DataError(
            f"The attention mask of the batch at sample {seen} has shape {tuple(mask.shape)}, but the layer's "
            f"output {tuple(act.shape)} has positions {tuple(act.shape[:-1])}: the mask needs the output's shape "
            "without its last axis. Record a layer that keeps the input positions, or attention_mask=None."
        )
    if mask.dtype != torch.bool:
        # Token type ids or position ids passed by mistake would otherwise silently pick rows.
        if bool(((mask != 0) & (mask != 1)).any()):
            raise DataError(
                f"The attention mask of the batch at sample {seen} holds values other than 0 and 1; expected 1 for "
                "a real position and 0 for padding. Check which tensor attention_mask points at."
            )
        mask = mask != 0
    return mask.to(act.device)  # (batch, ...) bool


def _pool(act: Tensor, mask: Tensor | None, seen: int) -> Tensor:
    flat = act.reshape(act.shape[0], -1, act.shape[-1])  # (batch, positions, d)
    if mask is None:
        return flat.mean(dim=1)  # (batch, d)
    keep = mask.reshape(act.shape[0], -1, 1).to(act.dtype)  # (batch, positions, 1)
    counts = keep.sum(dim=1)  # (batch, 1)
    empty = (counts[:, 0] == 0).nonzero()
    if len(empty):
        raise DataError(
            f"Sample {seen + int(empty[0])} is all padding by its attention mask, so pool=True has no position "
            "to average. Drop empty samples, or check that the mask holds 1 for real positions."
        )
    return (flat * keep).sum(dim=1) / counts  # (batch, d)


def _npy_header(rows: int, width: int) -> bytes:
    # A float32 .npy v1.0 header whose size does not depend on the row count (room for _ROW_DIGITS
    # digits), so a streamed file can start with it and have the real count written over it at the end.
    text = f"{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {width}), }}"
    room = len(text) - len(str(rows)) + _ROW_DIGITS + 1  # + the closing newline
    size = -(-(10 + room) // 64) * 64  # magic (6), version (2), length (2), text; aligned to 64 as numpy does
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", size - 10) + (text.ljust(size - 11) + "\n").encode("latin1")


class _Sink:
    """Collects rows: preallocated while their count is known, else appended or streamed to disk."""

    def __init__(self, n_samples: int | None, out: str | os.PathLike | None):
        self.n_samples, self.out = n_samples, None if out is None else Path(out)
        self.array: np.ndarray | None = None
        self.parts: list[np.ndarray] = []
        self.raw: Any = None
        self.per_sample = 0
        self.written = 0
        self.width = 0
        self.started = False

    def write(self, rows: np.ndarray, samples: int, fixed: bool) -> None:
        # fixed: this batch gives the same number of rows per sample as any other would.
        if not self.started:
            self.started = True
            self.width = rows.shape[1]
            if self.out is not None:
                self.out.parent.mkdir(parents=True, exist_ok=True)
            if self.n_samples is not None and fixed and samples:
                self.per_sample = rows.shape[0] // samples
                shape = (self.n_samples * self.per_sample, self.width)
                if self.out is None:
                    self.array = np.empty(shape, dtype=np.float32)
                else:
                    self.array = np.lib.format.open_memmap(self.out, mode="w+", dtype=np.float32, shape=shape)
            else:
                self._stream()
        if self.array is not None and (not fixed or rows.shape[0] != samples * self.per_sample):
            self._spill()  # the count planned at the first batch no longer holds
        if self.array is not None:
            self.array[self.written : self.written + rows.shape[0]] = rows
        elif self.raw is not None:
            self.raw.write(np.ascontiguousarray(rows, dtype="<f4").tobytes())
        else:
            self.parts.append(rows.astype(np.float32, copy=False))
        self.written += rows.shape[0]

    def _stream(self) -> None:
        if self.out is not None:
            # Unknown length: rows go to a hidden sibling after a header with room for the count.
            tmp = self.out.with_name(f".{self.out.name}.rows.tmp-{uuid.uuid4().hex[:8]}")
            self.raw = open(tmp, "wb")  # noqa: SIM115 - closed in finish or abort
            self.raw.write(_npy_header(0, self.width))

    def _spill(self) -> None:
        done, self.array = self.array, None
        assert done is not None
        self._stream()
        if self.raw is None:
            self.parts = [np.array(done[: self.written])]
            return
        step = max(1, (64 << 20) // (4 * max(self.width, 1)))  # copy in 64 MiB pieces
        for start in range(0, self.written, step):
            self.raw.write(np.ascontiguousarray(done[start : min(start + step, self.written)], dtype="<f4").tobytes())
        del done  # the preallocated memmap at out is replaced in finish

    def abort(self) -> None:
        if self.raw is not None:
            self.raw.close()
            Path(self.raw.name).unlink(missing_ok=True)
            self.raw = None

    def finish(self) -> np.ndarray:
        if self.array is not None:
            if isinstance(self.array, np.memmap):
                self.array.flush()
            return self.array
        if self.raw is None:
            return np.concatenate(self.parts, axis=0)
        assert self.out is not None
        tmp = Path(self.raw.name)
        self.raw.seek(0)
        self.raw.write(_npy_header(self.written, self.width))
        self.raw.flush()
        os.fsync(self.raw.fileno())
        self.raw.close()
        self.raw = None
        os.replace(tmp, self.out)
        return np.lib.format.open_memmap(self.out, mode="r+")
