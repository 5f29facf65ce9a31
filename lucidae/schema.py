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

DATA_CHOSEN = ("output_activation", "likelihood")
"""ModelConfig fields that fit may choose from the data (``scaling="auto"``, a VAE's ``likelihood="auto"``), so the
params need not imply them."""

CLASS_SET = frozenset({"model", "architecture", "input_dim", "image_shape"})
"""ModelConfig fields that the estimator's class and the data set, not its params: always compared with the params'
story."""

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


def _is_finite(value: Any) -> bool:
    """A number that is finite as a float too (an integer of 400 digits is not: float() overflows)."""
    if not _is_number(value):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


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


def check_history(path: Any, history: Any) -> None:
    """Refuse a saved training history that is not an object of records, best epoch and early-stop flag.

    Examples
    --------
    >>> check_history("config.json", {"records": [{"epoch": 1, "loss": 0.5}], "best_epoch": 1})
    >>> check_history("config.json", {"records": "lots"})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    lucidae.errors.CorruptFileError: config.json: history.records must be a list, found 'lots'...
    """
    _check_history(path, history)


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
    except (TypeError, ValueError, ArithmeticError) as err:  # a number too large for a float, say
        raise _fail(path, f"model is not a valid ModelConfig: {err!r:.200}") from err
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
        implied = est.get_model_config(n, fitted_scaling=str(config["scaling"]))
        est.get_scaling()
    except ConfigError as err:
        raise _fail(path, f"params are invalid: {err}") from err
    except (TypeError, ValueError, ArithmeticError) as err:  # a param of a type no config check anticipated
        raise _fail(path, f"params are invalid: {err!r:.200}") from err
    # The module is built from "model", the estimator's behaviour from "params": they must tell one story
    # (but for the fields fit chooses from the data, which the checksum covers).
    # Only the fields this estimator's params (or the class itself) set: the others are unused by the family,
    # and their defaults may change between versions (ModelConfig.beta did), which must not refuse old models.
    saved, wanted = model_cfg.to_dict(), implied.to_dict()
    compared = (accepted | CLASS_SET) - set(DATA_CHOSEN)
    differ = sorted(k for k in (saved.keys() | wanted.keys()) & compared if saved.get(k) != wanted.get(k))
    if differ:
        key = differ[0]
        raise _fail(
            path,
            f"model.{key}={saved.get(key)!r:.60} but the params imply {key}={wanted.get(key)!r:.60}"
            + (f" (and {len(differ) - 1} more field(s) disagree: {differ[1:6]})" if len(differ) > 1 else "")
            + "; they must agree.",
        )

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
    if not _is_finite(seconds) or seconds < 0:
        raise _fail(path, f"fit_seconds must be a finite number >= 0, found {seconds!r:.60}.")
    scores = config.get("init_scores", [])
    if not isinstance(scores, list) or len(scores) > 10_000 or not all(_is_finite(v) for v in scores):
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


def expected_tensors(model_cfg: Any, n_features: int, *, impute: bool = False) -> dict[str, tuple[list[int], str]]:
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
    if impute:  # an estimator with impute keeps its fill of missing values with the scaling
        out["scaler.fill"] = ([n_features], "F64")
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


# --------------------------------------------------------------------------- values and saving
def _header_of(tensors: Mapping[str, torch.Tensor]) -> dict[str, dict[str, Any]]:
    """What a safetensors header would say of ``tensors``."""
    return {
        name: {"dtype": _TORCH_TO_SAFETENSORS.get(str(t.dtype), str(t.dtype)), "shape": list(t.shape)}
        for name, t in tensors.items()
    }


MAX_WEIGHT = 1e12
"""Largest weight magnitude a saved model may hold: beyond it float32 arithmetic overflows to inf and NaN."""


def check_tensor_values(tensors: Mapping[str, torch.Tensor], path: Any = "model.safetensors") -> None:
    """Refuse NaN, infinite or absurdly large (> :data:`MAX_WEIGHT`) values in any floating tensor.

    A model whose weights are NaN, or 1e38 (finite, but overflowing at the first
    multiplication), would load and encode to NaN without complaint.

    Examples
    --------
    >>> check_tensor_values({"module.w": torch.tensor([1.0, float("nan")])})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    lucidae.errors.CorruptFileError: model.safetensors: tensor 'module.w' holds 1 NaN or infinite value(s)...
    """
    for name, tensor in tensors.items():
        if not torch.is_floating_point(tensor) or tensor.numel() == 0:
            continue
        finite = torch.isfinite(tensor)
        if not bool(finite.all()):
            bad = int((~finite).sum())
            raise _fail(path, f"tensor {name!r:.80} holds {bad} NaN or infinite value(s); a trained model has none.")
        largest = float(tensor.abs().max())
        if largest > MAX_WEIGHT:
            raise _fail(
                path,
                f"tensor {name!r:.80} holds a value of magnitude {largest:.3g}, beyond {MAX_WEIGHT:g}; "
                "float32 arithmetic on it overflows.",
            )


def check_saveable(
    config: dict[str, Any], tensors: Mapping[str, torch.Tensor], *, estimators: Mapping[str, type]
) -> None:
    """Check a fitted estimator's config and tensors as :func:`lucidae.load` will, before they are written.

    lucidae then never writes a folder it would refuse to load: the config must pass
    :func:`validate_saved_config` (params and model agreeing), the tensors must be exactly
    the ones the config implies (:func:`check_tensors`) and hold finite values
    (:func:`check_tensor_values`).

    Raises
    ------
    CorruptFileError
        Naming what is wrong; nothing has been written.

    Examples
    --------
    >>> check_saveable({"estimator": "X"}, {}, estimators={})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    lucidae.errors.CorruptFileError: the model to save: required key(s) [...] are missing...
    """
    where = "the model to save"
    sealed = {"format_version": 2, **config, "sha256": "0" * 64}
    spec = validate_saved_config(sealed, where, estimators=estimators)
    header = _header_of(tensors)
    impute = spec["params"].get("impute") is not None
    check_tensors(header, expected_tensors(spec["model"], spec["n_features"], impute=impute), where)
    check_tensor_values(tensors, where)


# --------------------------------------------------------------------------- detectors and topic models
_HOLDER_COMMON: dict[str, tuple[bool, str]] = {
    "format_version": (True, "the directory layout version, an integer"),
    "lucidae_version": (False, "the lucidae version that wrote the model, a string"),
    "estimator": (True, "the class name, a string"),
    "params": (True, "the parameters, an object"),
    "fit_seconds": (False, "training time in seconds, a number >= 0"),
    "inner_sha256": (True, "the checksum of the estimator inside, 64 hex digits"),
    "sha256": (True, "the checksum of model.safetensors and config.json, 64 hex digits"),
}

HOLDER_KEYS: dict[str, dict[str, tuple[bool, str]]] = {
    "AnomalyDetector": {
        **_HOLDER_COMMON,
        "n_features_in": (True, "the number of input features, a positive integer"),
        "feature_names": (True, "one name per input feature, a list of strings"),
        "feature_names_in": (False, "the DataFrame column names seen in fit, a list of strings or null"),
        "threshold": (True, "the anomaly score above which a sample is an outlier, a finite number"),
        "error_mean": (True, "the mean training reconstruction error, a finite number > 0"),
    },
    "TextTopics": {
        **_HOLDER_COMMON,
        "vocabulary": (True, "the words, a list of distinct strings"),
        "n_documents": (True, "the number of training documents, an integer >= 0"),
    },
}
"""Top-level keys of the ``config.json`` of a saved detector or topic model: name to (required, what it holds)."""


def _check_keys(config: Any, schema: Mapping[str, tuple[bool, str]], path: Any) -> None:
    if not isinstance(config, dict):
        raise _fail(path, f"the top level must be a JSON object, found {_describe(config)}.")
    unknown = sorted(set(config) - set(schema))
    if unknown:
        raise _fail(path, f"unknown key(s) {unknown[:5]}; the keys lucidae writes are {sorted(schema)}.")
    missing = sorted(k for k, (required, _) in schema.items() if required and k not in config)
    if missing:
        raise _fail(path, f"required key(s) {missing} are missing ({schema[missing[0]][1]}).")


def _finite(path: Any, key: str, value: Any, *, low: float = -math.inf, strict: bool = False) -> None:
    ok = _is_finite(value) and (value > low if strict else value >= low)
    if not ok:
        bound = "" if low == -math.inf else f" {'>' if strict else '>='} {low:g}"
        raise _fail(path, f"{key} must be a finite number{bound}, found {value!r:.60}.")


def validate_holder_config(config: Any, owner: str, path: Any = "config.json") -> dict[str, Any]:
    """Check the ``config.json`` of a saved detector or topic model before anything is read or built.

    Unknown and missing keys, wrong types, a non-finite threshold or error, and checksums
    that are not 64 hex digits are refused. The parameters themselves are checked by the
    class's own validation when it is built.

    Raises
    ------
    CorruptFileError
        Naming the key, what it holds and what was expected.

    Examples
    --------
    >>> validate_holder_config({"estimator": "AnomalyDetector", "threshold": "nan"}, "AnomalyDetector")
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    lucidae.errors.CorruptFileError: config.json: required key(s) [...] are missing...
    """
    schema = HOLDER_KEYS[owner]
    _check_keys(config, schema, path)
    if not _is_int(config["format_version"]):
        raise _fail(path, f"format_version must be an integer, found {config['format_version']!r:.60}.")
    version = config.get("lucidae_version", "")
    if not isinstance(version, str) or len(version) > MAX_NAME_LENGTH:
        raise _fail(path, f"lucidae_version must be a short string, found {_describe(version)}.")
    if config["estimator"] != owner:
        raise _fail(path, f"estimator must be {owner!r}, found {config['estimator']!r:.60}.")
    if not isinstance(config["params"], dict):
        raise _fail(path, f"params must be an object, found {_describe(config['params'])}.")
    for key in ("sha256", "inner_sha256"):
        if not isinstance(config[key], str) or not re.fullmatch(r"[0-9a-f]{64}", config[key]):
            raise _fail(path, f"{key} must be 64 lowercase hex digits, found {config[key]!r:.80}.")
    _finite(path, "fit_seconds", config.get("fit_seconds", 0.0), low=0.0)
    if owner == "AnomalyDetector":
        n = config["n_features_in"]
        if not _is_int(n) or not 1 <= n <= 100_000_000:
            raise _fail(path, f"n_features_in must be an integer in [1, 100000000], found {n!r:.60}.")
        _check_names(path, "feature_names", config["feature_names"], n)
        _check_names(path, "feature_names_in", config.get("feature_names_in"), n)
        _finite(path, "threshold", config["threshold"])
        _finite(path, "error_mean", config["error_mean"], low=0.0, strict=True)
    else:
        words = config["vocabulary"]
        if (
            not isinstance(words, list)
            or not words
            or not all(isinstance(w, str) and len(w) <= MAX_NAME_LENGTH for w in words)
            or len(set(words)) != len(words)
        ):
            raise _fail(path, f"vocabulary must be a non-empty list of distinct words, found {_describe(words)}.")
        n_docs = config["n_documents"]
        if not _is_int(n_docs) or not 0 <= n_docs <= 2**40:
            raise _fail(path, f"n_documents must be an integer >= 0, found {n_docs!r:.60}.")
    return config


def holder_tensors(
    config: dict[str, Any], owner: str, header: Mapping[str, Mapping[str, Any]], *, n_features: int, latent_dim: int
) -> dict[str, tuple[list[int], str]]:
    """The tensors a saved detector or topic model must hold, given its config and the estimator inside.

    ``header`` (:func:`read_safetensors_header`) supplies the sizes the config does not
    record (how many training scores and reference rows a detector kept); everything else
    follows from ``config`` and the inner estimator's ``n_features`` and ``latent_dim``.

    Examples
    --------
    >>> cfg = {"params": {}, "vocabulary": ["a", "b"], "n_documents": 3}
    >>> holder_tensors(cfg, "TextTopics", {}, n_features=2, latent_dim=4)["codes"]
    ([3, 4], 'F32')
    """
    if owner == "TextTopics":
        n_words = len(config["vocabulary"])
        out = {
            "codes": ([config["n_documents"], latent_dim], "F32"),
            "components": ([latent_dim, n_words], "F32"),
        }
        if config["params"].get("vectorizer", "tfidf") == "tfidf":
            out["idf"] = ([n_words], "F64")
        return out
    d = config["n_features_in"]
    scores = header.get("decision_scores", {}).get("shape") or [0]
    reference = header.get("reference_index", {}).get("shape") or [0]
    out = {
        "center": ([d], "F64"),
        "scale": ([d], "F64"),
        "decision_scores": ([int(scores[0])], "F64"),
        "reference": ([int(reference[0]), d], "F32"),
        "reference_index": ([int(reference[0])], "I64"),
    }
    if config["params"].get("scoring") in ("likelihood", "ensemble"):
        out["latent_mean"] = ([latent_dim], "F64")
        out["latent_precision"] = ([latent_dim, latent_dim], "F64")
    if config["params"].get("scoring") == "ensemble":  # the neighbours' reference, the forest, 3 members
        n_ref = int((header.get("knn_reference", {}).get("shape") or [0])[0])
        trees = [int(v) for v in header.get("forest_feature", {}).get("shape") or [0, 0]]
        out["knn_reference"] = ([n_ref, d], "F32")
        out.update({f"member_{k}": ([3], "F64") for k in ("location", "scale")})
        out.update({f"forest_{k}": (trees, "I64") for k in ("feature", "left", "right")})
        out.update({f"forest_{k}": (trees, "F64") for k in ("threshold", "leaf_depth")})
        out["forest_normaliser"] = ([1], "F64")
    return out


def _check_forest(read: Mapping[str, torch.Tensor], n_features: int, path: Any) -> None:
    """Refuse trees that point outside their tables or back up the tree (a loop scoring would never leave)."""
    feature, left, right = (read[f"forest_{key}"] for key in ("feature", "left", "right"))
    n_nodes = feature.shape[1] if feature.ndim == 2 else 0
    if feature.numel() and (int(feature.min()) < 0 or int(feature.max()) >= n_features):
        raise _fail(path, f"tensor 'forest_feature' holds feature numbers outside [0, {n_features}).")
    node = torch.arange(n_nodes).expand_as(left) if n_nodes else left
    for name, child in (("forest_left", left), ("forest_right", right)):
        inner = child != -1
        if bool((inner & ((child <= node) | (child >= n_nodes))).any()):
            raise _fail(
                path,
                f"tensor {name!r} holds node numbers that are not -1 (a leaf) or a later node of the same tree; "
                "scoring would leave the tree or loop.",
            )


def check_holder(
    config: dict[str, Any],
    owner: str,
    tensors: Mapping[str, Any],
    *,
    n_features: int,
    latent_dim: int,
    path: Any = "model.safetensors",
) -> None:
    """Refuse a detector's or topic model's tensors unless shapes, dtypes and values are what ``config`` implies.

    ``tensors`` is a safetensors header (name to ``{"dtype", "shape"}``, checked before
    anything is read) or the tensors themselves (their shapes checked, and then their
    values: finite; a detector's scales > 0, its reference rows numbers of training
    samples, its training scores ordered as its threshold implies).

    Raises
    ------
    CorruptFileError
        Naming the tensor and what was expected.
    """
    read = {k: v for k, v in tensors.items() if isinstance(v, torch.Tensor)}
    header = _header_of(read) if read else dict(tensors)
    expected = holder_tensors(config, owner, header, n_features=n_features, latent_dim=latent_dim)
    check_tensors(header, expected, path)
    if owner == "AnomalyDetector" and config["n_features_in"] != n_features:
        raise _fail(path, f"n_features_in={config['n_features_in']} but the estimator inside takes {n_features}.")
    if owner == "TextTopics" and len(config["vocabulary"]) != n_features:
        raise _fail(
            path, f"the vocabulary has {len(config['vocabulary'])} words but the estimator inside takes {n_features}."
        )
    if not read:
        return
    check_tensor_values(read, path)
    if owner == "AnomalyDetector":
        if bool((read["scale"] <= 0).any()):
            raise _fail(path, "tensor 'scale' holds values <= 0; standardising by them is undefined.")
        if "forest_feature" in read:
            _check_forest(read, n_features, path)
        scores = read["decision_scores"]
        if scores.numel() and not float(scores.min()) <= config["threshold"] <= float(scores.max()):
            raise _fail(
                path,
                f"threshold={config['threshold']!r:.30} lies outside the training scores "
                f"[{float(scores.min()):.6g}, {float(scores.max()):.6g}] it was chosen among.",
            )
        index, n_train = read["reference_index"], int(read["decision_scores"].shape[0])
        if index.numel() and (int(index.min()) < 0 or int(index.max()) >= n_train):
            raise _fail(
                path,
                f"tensor 'reference_index' holds sample numbers outside [0, {n_train}), the training samples scored.",
            )
