"""Checks on saved model folders, which may come from anyone: the schema of ``config.json`` and the weights' header.

``config.json`` is checked against a schema (:data:`CONFIG_KEYS`), and the safetensors
header (an 8-byte length and a JSON table of tensor names, dtypes, shapes and byte
offsets) is read with a bounded read and compared with the shapes the config implies, so
a file that lies about its sizes is refused before any tensor is allocated. Nothing is
ever unpickled.

This module knows no estimator class: :func:`validate_saved_config` is handed the
registry of estimator classes (``lucidae.estimators.ESTIMATORS``) by its caller.

Every failure is a :class:`~lucidae.errors.LucidaeError`; a new saved key or tensor
must be added here (:data:`CONFIG_KEYS`) or :func:`validate_saved_config` rejects it.
"""

from __future__ import annotations

import json
import math
import os
import re
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open

from lucidae.config import ModelConfig
from lucidae.errors import ConfigError, CorruptFileError
from lucidae.models import build_model

MAX_HEADER_BYTES = 16 * 1024 * 1024
"""A safetensors JSON header larger than this is refused unread (ours are a few kB)."""

MAX_NAME_LENGTH = 4096
"""Longest feature name or version string accepted from a saved config."""

CONFIG_KEYS: dict[str, tuple[bool, str]] = {
    "format_version": (True, "the directory layout version, an integer"),
    "lucidae_version": (False, "the lucidae version that wrote the model, a string"),
    "estimator": (True, "the estimator class name, a string"),
    "params": (True, "the estimator's parameters, an object"),
    "model": (True, "the ModelConfig, an object"),
    "scaling": (True, "the fitted scaling kind, a string"),
    "n_features_in": (True, "the number of input features, a positive integer"),
    "feature_names": (False, "one name per input feature, a list of strings"),
    "feature_names_in": (False, "the DataFrame column names seen in fit, a list of strings or null"),
    "image_shape": (False, "(height, width) or (channels, height, width), or null"),
    "fit_seconds": (False, "training time in seconds, a number >= 0"),
    "init_scores": (False, "the score of each initialisation (n_init), a list of numbers"),
    "history": (False, "the training history, an object"),
    "sha256": (True, "the SHA-256 of model.safetensors, 64 hex digits"),
}
"""Top-level keys of a saved ``config.json``: name to (required, what it holds)."""

SCALER_KINDS = ("uint8", "identity", "minmax", "standard")
"""Values of ``Scaler.kind`` that a saved model may hold."""

SAFETENSORS_DTYPES: dict[str, int] = {
    "BOOL": 1,
    "U8": 1,
    "I8": 1,
    "F8_E5M2": 1,
    "F8_E4M3": 1,
    "I16": 2,
    "U16": 2,
    "F16": 2,
    "BF16": 2,
    "I32": 4,
    "U32": 4,
    "F32": 4,
    "I64": 8,
    "U64": 8,
    "F64": 8,
}
"""safetensors dtype names and their sizes in bytes (the ones torch saves), for the messages about refused headers;
safetensors itself decides which dtypes a file may hold."""

_TORCH_TO_SAFETENSORS = {
    "torch.bool": "BOOL",
    "torch.uint8": "U8",
    "torch.int8": "I8",
    "torch.int16": "I16",
    "torch.float16": "F16",
    "torch.bfloat16": "BF16",
    "torch.int32": "I32",
    "torch.float32": "F32",
    "torch.int64": "I64",
    "torch.float64": "F64",
}


# --------------------------------------------------------------------------- saved configs
def _fail(path: Any, message: str) -> CorruptFileError:
    return CorruptFileError(
        f"{path}: {message} The file is damaged, was edited by hand, or comes from another program; "
        "save the model again or restore it from a copy."
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_names(path: Any, key: str, value: Any, n: int) -> None:
    if value is None:
        return
    if not isinstance(value, list) or len(value) != n:
        raise _fail(path, f"{key} must be a list of {n} strings (one per feature), found {_describe(value)}.")
    for name in value:
        if not isinstance(name, str) or len(name) > MAX_NAME_LENGTH:
            raise _fail(path, f"{key} must hold strings of at most {MAX_NAME_LENGTH} characters, found {name!r:.60}.")


def _describe(value: Any) -> str:
    if isinstance(value, list):
        return f"a list of {len(value)} item(s)"
    if isinstance(value, dict):
        return f"an object with {len(value)} key(s)"
    return f"{value!r:.60}"


def _check_history(path: Any, history: Any) -> None:
    if not isinstance(history, dict):
        raise _fail(path, f"history must be an object, found {_describe(history)}.")
    unknown = sorted(set(history) - {"records", "best_epoch", "stopped_early"})
    if unknown:
        raise _fail(path, f"history has unknown key(s) {unknown}; allowed: records, best_epoch, stopped_early.")
    records = history.get("records", [])
    if not isinstance(records, list):
        raise _fail(path, f"history.records must be a list, found {_describe(records)}.")
    for i, record in enumerate(records):
        if not isinstance(record, dict) or not all(
            isinstance(k, str) and (_is_number(v) or isinstance(v, (bool, str)) or v is None) for k, v in record.items()
        ):
            raise _fail(path, f"history.records[{i}] must be an object of numbers, found {_describe(record)}.")
        for key in ("epoch", "loss"):
            if key not in record or not _is_number(record[key]):
                raise _fail(path, f"history.records[{i}].{key} must be a number, found {record.get(key)!r:.60}.")
    best = history.get("best_epoch")
    if best is not None and not (_is_int(best) and best >= 1):
        raise _fail(path, f"history.best_epoch must be null or an integer >= 1, found {best!r:.60}.")
    if not isinstance(history.get("stopped_early", False), bool):
        raise _fail(path, f"history.stopped_early must be true or false, found {history['stopped_early']!r:.60}.")


def validate_saved_config(
    config: dict[str, Any], path: Any = "config.json", *, estimators: Mapping[str, type]
) -> dict[str, Any]:
    """Check a parsed ``config.json`` against the schema and return what :func:`lucidae.load` needs.

    Unknown keys, missing keys, wrong types, negative or absurd sizes, an unknown
    estimator, parameters the estimator rejects and disagreements between fields are
    all refused here, before anything is built or allocated.

    Parameters
    ----------
    config : dict
        The parsed JSON object.
    path : path-like or str
        Shown in messages.
    estimators : mapping of str to class
        The estimator classes a folder may name (``lucidae.estimators.ESTIMATORS``).

    Returns
    -------
    dict
        ``estimator`` (the class), ``params`` (keyword arguments, lists made tuples),
        ``model`` (a validated :class:`~lucidae.config.ModelConfig`) and ``n_features``.

    Raises
    ------
    CorruptFileError
        Naming the bad key, what it holds, and what was expected.

    Examples
    --------
    >>> validate_saved_config({"format_version": 1, "colour": "red"}, estimators={})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    lucidae.errors.CorruptFileError: config.json: unknown key(s) ['colour']...
    """
    if not isinstance(config, dict):
        raise _fail(path, f"the top level must be a JSON object, found {_describe(config)}.")
    unknown = sorted(set(config) - set(CONFIG_KEYS))
    if unknown:
        raise _fail(
            path,
            f"unknown key(s) {unknown}; the keys lucidae writes are {sorted(CONFIG_KEYS)}. "
            "(A file from a newer lucidae needs that version.)",
        )
    missing = sorted(k for k, (required, _) in CONFIG_KEYS.items() if required and k not in config)
    if missing:
        raise _fail(path, f"required key(s) {missing} are missing ({CONFIG_KEYS[missing[0]][1]}).")
    if not _is_int(config["format_version"]):
        raise _fail(path, f"format_version must be an integer, found {config['format_version']!r:.60}.")
    version = config.get("lucidae_version", "")
    if not isinstance(version, str) or len(version) > MAX_NAME_LENGTH:
        raise _fail(path, f"lucidae_version must be a short string, found {_describe(version)}.")
    sha = config["sha256"]
    if not isinstance(sha, str) or not re.fullmatch(r"[0-9a-f]{64}", sha):
        raise _fail(path, f"sha256 must be 64 lowercase hex digits, found {sha!r:.80}.")

    name = config["estimator"]
    if not isinstance(name, str) or name not in estimators:
        raise _fail(path, f"estimator={name!r:.60} is not known; allowed values are {sorted(estimators)}.")
    cls = estimators[name]

    n = config["n_features_in"]
    if not _is_int(n) or not 1 <= n <= 100_000_000:
        raise _fail(path, f"n_features_in must be an integer in [1, 100000000], found {n!r:.60}.")
    try:
        model_cfg = ModelConfig.from_dict(config["model"])
    except ConfigError as err:
        raise _fail(path, f"model is not a valid ModelConfig: {err}") from err
    if model_cfg.input_dim != n:
        raise _fail(path, f"n_features_in={n} but model.input_dim={model_cfg.input_dim}; they must be equal.")

    raw_params = config["params"]
    if not isinstance(raw_params, dict):
        raise _fail(path, f"params must be an object, found {_describe(raw_params)}.")
    accepted = set(cls().get_params(deep=False))
    unknown = sorted(set(raw_params) - accepted)
    if unknown:
        raise _fail(path, f"params has key(s) {unknown} that {name} does not accept; it accepts {sorted(accepted)}.")
    params = {k: tuple(v) if isinstance(v, list) else v for k, v in raw_params.items()}
    est = cls(**params)
    shape = config.get("image_shape")
    # As in fit, where image_shape_ is set before the model config is built from the params.
    est.image_shape_ = tuple(shape) if isinstance(shape, list) and all(_is_int(s) for s in shape) else None
    try:
        est.get_train_config()
        est.get_model_config(n)
        est.get_scaling()
    except ConfigError as err:
        raise _fail(path, f"params are invalid: {err}") from err
    except (TypeError, ValueError) as err:  # a param of a type no config check anticipated
        raise _fail(path, f"params are invalid: {err!r:.200}") from err

    if config["scaling"] not in SCALER_KINDS:
        raise _fail(path, f"scaling={config['scaling']!r:.60} is not known; allowed values are {list(SCALER_KINDS)}.")
    _check_names(path, "feature_names", config.get("feature_names"), n)
    _check_names(path, "feature_names_in", config.get("feature_names_in"), n)
    shape = config.get("image_shape")
    if shape is not None and (
        not isinstance(shape, list)
        or len(shape) not in (2, 3)
        or not all(_is_int(s) and s >= 1 for s in shape)
        or math.prod(shape) != n
    ):
        raise _fail(
            path,
            f"image_shape must be null or 2 or 3 positive integers whose product is n_features_in={n}, "
            f"found {shape!r:.60}.",
        )
    seconds = config.get("fit_seconds", 0.0)
    if not _is_number(seconds) or not math.isfinite(seconds) or seconds < 0:
        raise _fail(path, f"fit_seconds must be a finite number >= 0, found {seconds!r:.60}.")
    scores = config.get("init_scores", [])
    if not isinstance(scores, list) or len(scores) > 10_000 or not all(_is_number(v) for v in scores):
        raise _fail(path, f"init_scores must be a list of numbers, one per initialisation, found {scores!r:.60}.")
    if "history" in config:
        _check_history(path, config["history"])
    return {"estimator": cls, "params": params, "model": model_cfg, "n_features": n}


# --------------------------------------------------------------------------- safetensors header
def read_safetensors_header(
    path: str | os.PathLike, expected: dict[str, tuple[list[int], str]] | None = None
) -> dict[str, dict[str, Any]]:
    """Read and check the header of a safetensors file without reading any tensor.

    safetensors' own reader (:func:`safetensors.safe_open`) does the checking: it refuses
    a header length past the end of the file or over its own limit, a header that is not
    a JSON object of known dtypes, and tensors whose byte ranges disagree with their dtype
    and shape, overlap, leave gaps or run past the end. It maps the file and reads only the
    header, so a declared shape, however large, allocates nothing. Before it, the 8-byte
    length is checked against :data:`MAX_HEADER_BYTES` (ours are a few kB; safetensors
    allows 100 MB).

    Parameters
    ----------
    path : path-like
        A ``.safetensors`` file.
    expected : dict, optional
        The tensors the file must hold (:func:`expected_tensors`). Used only to explain a
        refused file: when its header declares tensors other than these (an extra tensor
        sharing another's bytes, say), that is what the message says, as
        :func:`check_tensors` would.

    Returns
    -------
    dict
        Tensor name to ``{"dtype": str, "shape": list[int]}`` (``__metadata__`` is not a tensor).

    Raises
    ------
    CorruptFileError
        When the file is short, the header is too long, not JSON, or inconsistent; the
        message names the tensor at fault where the header can say which.

    Examples
    --------
    >>> import tempfile, pathlib, torch
    >>> from safetensors.torch import save_file
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "m.safetensors"
    >>> save_file({"w": torch.zeros(2, 3)}, str(p))
    >>> read_safetensors_header(p)["w"]
    {'dtype': 'F32', 'shape': [2, 3]}
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            prefix = fh.read(8)
    except OSError as err:
        raise CorruptFileError(f"{path} could not be read: {err}") from err
    if len(prefix) < 8:
        raise _fail(path, f"is {len(prefix)} bytes long; a safetensors file starts with an 8-byte length.")
    (length,) = struct.unpack("<Q", prefix)
    if length > MAX_HEADER_BYTES or length > size - 8:
        raise _fail(
            path,
            f"declares a {length}-byte header, but the file has {size - 8} bytes after the length "
            f"and headers are at most {MAX_HEADER_BYTES} bytes.",
        )
    try:
        with safe_open(path, framework="pt") as f:
            entries = {}
            for name in f.keys():
                tensor = f.get_slice(name)  # the header's entry, not the tensor's bytes
                entries[name] = {"dtype": tensor.get_dtype(), "shape": list(tensor.get_shape())}
            return entries
    except (SafetensorError, OSError) as err:
        raise _fail(path, _why_refused(path, length, size, err, expected)) from err


def _why_refused(
    path: Path, length: int, size: int, err: Exception, expected: dict[str, tuple[list[int], str]] | None
) -> str:
    """Say which tensor a refused header lies about; safetensors' own message does not always.

    Only called once safetensors has refused the file, and only to write the message: the
    header (at most :data:`MAX_HEADER_BYTES`, checked before) is parsed again to find an
    entry whose byte range disagrees with its dtype and shape or runs past the data, then
    for tensors other than ``expected`` (raised as :func:`check_tensors` raises it).
    """
    reason = str(err).removeprefix("Error while deserializing header: ")
    try:
        with open(path, "rb") as fh:
            fh.seek(8)
            header = json.loads(fh.read(length).decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        header = None
    if not isinstance(header, dict):
        return f"its header is not valid JSON ({reason:.300})."
    data_size = size - 8 - length
    for name, entry in header.items():
        if not isinstance(entry, dict):
            continue
        dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
        # at most 16 sizes, so that a hostile shape cannot make the product itself expensive
        if not (
            isinstance(dtype, str)
            and dtype in SAFETENSORS_DTYPES
            and isinstance(shape, list)
            and len(shape) <= 16
            and all(_is_int(n) for n in shape)
            and isinstance(offsets, list)
            and len(offsets) == 2
            and all(_is_int(o) for o in offsets)
        ):
            continue
        begin, end = offsets
        nbytes = math.prod(shape) * SAFETENSORS_DTYPES[dtype]
        if end - begin != nbytes or end > data_size:
            return (
                f"tensor {name!r:.60} of shape {shape} and dtype {dtype} needs {nbytes} bytes but its offsets "
                f"[{begin}, {end}] span {end - begin} of the {data_size} data bytes in the file."
            )
    if expected is not None:
        declared = {
            name: {"dtype": entry.get("dtype"), "shape": entry.get("shape")}
            for name, entry in header.items()
            if name != "__metadata__" and isinstance(entry, dict)
        }
        mismatch = _tensor_mismatch(declared, expected)
        if mismatch is not None:
            return mismatch
    return f"safetensors refuses its header ({reason:.300})."


def expected_tensors(model_cfg: Any, n_features: int) -> dict[str, tuple[list[int], str]]:
    """Names, shapes and dtypes of the tensors a saved estimator with ``model_cfg`` must hold.

    The module is built on PyTorch's ``meta`` device, which records shapes without
    allocating memory, so even an absurd config costs nothing here.

    Examples
    --------
    >>> from lucidae.config import ModelConfig
    >>> expected_tensors(ModelConfig(input_dim=4, hidden_dims=(), latent_dim=2), 4)["module.encoder.0.weight"]
    ([2, 4], 'F32')
    """
    with torch.device("meta"):
        module = build_model(model_cfg)
    out = {
        f"module.{k}": (list(v.shape), _TORCH_TO_SAFETENSORS.get(str(v.dtype), str(v.dtype)))
        for k, v in module.state_dict().items()
    }
    out["scaler.offset"] = ([n_features], "F64")
    out["scaler.scale"] = ([n_features], "F64")
    return out


def check_tensors(
    header: dict[str, dict[str, Any]], expected: dict[str, tuple[list[int], str]], path: Any = "model.safetensors"
) -> None:
    """Refuse a weights file whose tensors are not exactly the ones the config implies.

    Examples
    --------
    >>> header = {"w": {"dtype": "F32", "shape": [3]}}
    >>> check_tensors(header, {"w": ([2], "F32")})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    lucidae.errors.CorruptFileError: model.safetensors: tensor 'w' has shape [3] and dtype F32, but config.json ...
    """
    mismatch = _tensor_mismatch(header, expected)
    if mismatch is not None:
        raise _fail(path, mismatch)


def _tensor_mismatch(header: dict[str, dict[str, Any]], expected: dict[str, tuple[list[int], str]]) -> str | None:
    """What :func:`check_tensors` refuses ``header`` for, or None."""
    missing = sorted(set(expected) - set(header))
    if missing:
        return f"tensor(s) {missing[:5]} that config.json implies are missing ({len(missing)} in all)."
    extra = sorted(set(header) - set(expected))
    if extra:
        return f"holds tensor(s) {extra[:5]} that config.json does not describe ({len(extra)} in all)."
    for name, (shape, dtype) in expected.items():
        got = header[name]
        if got["shape"] != shape or got["dtype"] != dtype:
            return (
                f"tensor {name!r} has shape {got['shape']} and dtype {got['dtype']}, but config.json implies "
                f"shape {shape} and dtype {dtype}."
            )
    return None
