"""Saving and loading: ``model.safetensors`` plus ``config.json``, atomically, never pickled.

A model directory holds exactly two files. ``config.json`` records the format version,
the lucidae version, the configs, the fitted scaling, the training history and the
SHA-256 of ``model.safetensors``, which :func:`read_model_dir` checks before it trusts
a single byte of the weights. Writes go to a temporary sibling directory that is
flushed and then renamed into place, so a reader sees the old model or the new one,
never half of one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import Tensor

from lucidae.errors import CorruptFileError

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
RUN_FILE = "run.json"
"""The run record beside a model: the data, the held-out split and its metrics (see :mod:`lucidae.runs`)."""
INNER = "estimator"
"""Sub-folder in which a saved detector or topic model keeps the autoencoder it holds."""
FORMAT_VERSION = 1
"""Bumped whenever the directory layout changes incompatibly."""

MAX_CONFIG_BYTES = 16 * 1024 * 1024
"""A config.json larger than this is refused before it is parsed."""


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x"
    >>> _ = p.write_bytes(b"abc")
    >>> sha256_of(p)[:8]
    'ba7816bf'
    """
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def atomic_write(path: str | os.PathLike, data: bytes | str) -> Path:
    """Write ``data`` to ``path`` atomically: to a flushed, fsynced temporary sibling, then renamed over ``path``.

    A crash leaves the old file or the new one, never a truncated one, and a failed
    write leaves no temporary file behind. ``str`` is written as UTF-8. Every file
    lucidae writes whole (JSON records, pages, codes) goes through here.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = atomic_write(pathlib.Path(tempfile.mkdtemp()) / "a.txt", "hello")
    >>> p.read_text(), [q.name for q in p.parent.iterdir()]
    ('hello', ['a.txt'])
    """
    path = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        with open(tmp, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_json(path: str | os.PathLike, data: Any) -> None:
    """Write JSON atomically (:func:`atomic_write`); NaN and infinity are refused, as JSON has none.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.json"
    >>> write_json(p, {"a": 1})
    >>> json.loads(p.read_text())
    {'a': 1}
    """
    atomic_write(path, json.dumps(data, indent=2, sort_keys=False, allow_nan=False) + "\n")


def replace_dir(tmp: Path, final: Path) -> None:
    """Move directory ``tmp`` to ``final``, replacing what was there as atomically as the OS allows.

    A directory cannot be renamed over a non-empty one, so an existing ``final`` is first
    renamed aside and removed only after the new one is in place.
    """
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{uuid.uuid4().hex[:8]}")
        os.replace(final, old)
    os.replace(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    dir_fd = os.open(final.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def write_model_dir(
    path: str | os.PathLike, tensors: dict[str, Tensor], config: dict[str, Any], *, run: dict[str, Any] | None = None
) -> Path:
    """Write ``tensors`` and ``config`` (and the ``run`` record, if given) to directory ``path`` atomically.

    Other files already in ``path`` (a report, a checkpoint) are kept. The run record is
    written into the same new folder before it is swapped in, so the folder never pairs
    a new model with an old record.

    Parameters
    ----------
    path : path-like
        Target directory; created if missing.
    tensors : dict of str to Tensor
        Weights and fitted arrays.
    config : dict
        JSON-serialisable description; ``format_version`` and ``sha256`` are added.
    run : dict, optional
        Written to ``run.json`` (:data:`RUN_FILE`), replacing any there.

    Returns
    -------
    Path
        The directory written.

    Examples
    --------
    >>> import tempfile, torch
    >>> d = write_model_dir(tempfile.mkdtemp() + "/m", {"w": torch.ones(2)}, {"a": 1})
    >>> sorted(p.name for p in d.iterdir())
    ['config.json', 'model.safetensors']
    """
    from safetensors.torch import save_file

    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp-{uuid.uuid4().hex[:8]}")
    tmp.mkdir()
    try:
        if final.is_dir():  # keep the files that are not ours (reports, checkpoints)
            for item in final.iterdir():
                if item.name not in (WEIGHTS, CONFIG) and not (run is not None and item.name == RUN_FILE):
                    target = tmp / item.name
                    (shutil.copytree if item.is_dir() else shutil.copy2)(item, target)
        contiguous = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
        save_file(contiguous, str(tmp / WEIGHTS))
        _fsync_file(tmp / WEIGHTS)
        config = {"format_version": FORMAT_VERSION, **config, "sha256": sha256_of(tmp / WEIGHTS)}
        write_json(tmp / CONFIG, config)
        if run is not None:
            write_json(tmp / RUN_FILE, run)
        replace_dir(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def read_config(path: str | os.PathLike) -> dict[str, Any]:
    """Read and sanity-check ``config.json`` of a model directory.

    Raises
    ------
    CorruptFileError
        When the directory or file is missing, too large, not JSON, or of another format.

    Examples
    --------
    >>> import tempfile, torch
    >>> d = write_model_dir(tempfile.mkdtemp() + "/m", {"w": torch.ones(2)}, {"a": 1})
    >>> read_config(d)["a"]
    1
    """
    directory = Path(path)
    cfg_path = directory / CONFIG
    if not cfg_path.is_file():
        raise CorruptFileError(
            f"{directory} is not a lucidae model directory: {CONFIG} is missing. "
            "Pass the folder that `save` or `lucidae train --out` wrote."
        )
    if cfg_path.stat().st_size > MAX_CONFIG_BYTES:
        raise CorruptFileError(f"{cfg_path} is {cfg_path.stat().st_size} bytes; a config is never that large.")
    try:
        config = json.loads(cfg_path.read_text(encoding="utf-8"))
    # ValueError also covers integers of more than 4300 digits; RecursionError, nesting thousands deep.
    except (ValueError, RecursionError) as err:
        raise CorruptFileError(f"{cfg_path} is not valid JSON ({str(err)[:200]}). The file is damaged.") from err
    except OSError as err:
        raise CorruptFileError(f"{cfg_path} could not be read: {err}") from err
    if not isinstance(config, dict):
        raise CorruptFileError(f"{cfg_path} must hold a JSON object, found {type(config).__name__}.")
    version = config.get("format_version")
    if version != FORMAT_VERSION:
        raise CorruptFileError(
            f"{cfg_path} has format_version={version!r}; this lucidae reads version {FORMAT_VERSION}."
        )
    return config


def read_tensors(path: str | os.PathLike, config: dict[str, Any]) -> dict[str, Tensor]:
    """Load ``model.safetensors`` after checking it against the checksum in ``config``.

    Raises
    ------
    CorruptFileError
        When the file is missing, its checksum differs, or safetensors cannot parse it.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    weights = Path(path) / WEIGHTS
    if not weights.is_file():
        raise CorruptFileError(f"{weights} is missing; the model directory is incomplete.")
    expected = config.get("sha256")
    actual = sha256_of(weights)
    if expected != actual:
        raise CorruptFileError(
            f"{weights} does not match the checksum recorded in {CONFIG} "
            f"(expected {expected!r}, found {actual[:16]}...). The weights were changed or damaged; "
            "save the model again or restore it from a copy."
        )
    try:
        return load_file(str(weights))
    except (
        SafetensorError,
        OSError,
        ValueError,
    ) as err:  # pragma: no cover - checksum catches most
        raise CorruptFileError(f"{weights} could not be read: {err}") from err


def read_run_record(path: str | os.PathLike, name: str = RUN_FILE) -> dict[str, Any]:
    """Read the ``run.json`` that ``lucidae train`` writes beside a model; ``{}`` when there is none.

    The record may come from someone else, so it is checked as far as its readers rely
    on it: an object whose ``metrics`` maps names to numbers, whose ``dataset`` and ``data``
    are objects, whose ``test_indices`` are integers >= 0 and whose ``test_rows``, written
    instead of them for a streamed file (the held-out rows are then one run), is
    ``[start, stop]`` (whether they fit the data is for the caller to check).

    Raises
    ------
    CorruptFileError
        When the file is too large, not JSON, or not shaped as described.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> read_run_record(d)
    {}
    >>> _ = (d / "run.json").write_text('{"metrics": {"test_fvu": 0.25}}')
    >>> read_run_record(d)["metrics"]
    {'test_fvu': 0.25}
    """
    run_path = Path(path) / name
    if not run_path.is_file():
        return {}
    if run_path.stat().st_size > MAX_CONFIG_BYTES:
        raise CorruptFileError(f"{run_path} is {run_path.stat().st_size} bytes; a run record is never that large.")
    try:
        record = json.loads(run_path.read_text(encoding="utf-8"))
    except (ValueError, RecursionError, OSError) as err:
        raise CorruptFileError(f"{run_path} is not valid JSON ({str(err)[:200]}). Delete it or train again.") from err
    metrics = record.get("metrics", {}) if isinstance(record, dict) else None
    indices = record.get("test_indices", []) if isinstance(record, dict) else None
    rows = record.get("test_rows", [0, 0]) if isinstance(record, dict) else None
    if (
        not isinstance(record, dict)
        or not isinstance(metrics, dict)
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in metrics.values())
        or not isinstance(record.get("dataset", {}), dict)
        or not isinstance(record.get("data", {}), dict)
        or not isinstance(indices, list)
        or not all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i < 2**62 for i in indices)
        or not isinstance(rows, list)
        or len(rows) != 2
        or not all(isinstance(i, int) and not isinstance(i, bool) for i in rows)
        or not 0 <= rows[0] <= rows[1] < 2**62
    ):
        raise CorruptFileError(
            f"{run_path} is not a lucidae run record: expected an object whose 'metrics' maps names to "
            "numbers, whose 'dataset' and 'data' are objects, whose 'test_indices' are sample numbers "
            ">= 0 and whose 'test_rows' (if any) is [start, stop]. Delete it or train again."
        )
    return record
