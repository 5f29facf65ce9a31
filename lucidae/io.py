"""Saving and loading: ``model.safetensors`` plus ``config.json``, atomically, never pickled.

A model directory holds ``model.safetensors`` and ``config.json`` (and, for a run, the
run record ``run.json``). ``config.json`` records the format version, the lucidae
version, the configs, the fitted scaling, the training history and a SHA-256 checksum
that covers the weights *and* the rest of ``config.json`` (:func:`checksum`; format
version 1, whose checksum covered the weights only, is still read), so that neither the
weights nor a field that shapes the computation can be edited unnoticed.

Writes go to a temporary sibling directory that is flushed and then swapped into place
in one step (``renameat2(RENAME_EXCHANGE)`` where the OS has it; elsewhere two renames
whose leftovers :func:`recover_dir` puts back at the next open), under the folder's lock
(:mod:`lucidae.locks`), so a reader sees the old model or the new one, never half of one,
and a second writer is refused at once. Only lucidae's own folders are ever replaced
(:func:`check_replaceable`).
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import Tensor

from lucidae.errors import ConfigError, CorruptFileError
from lucidae.locks import FolderLockedError, folder_lock, held

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
RUN_FILE = "run.json"
"""The run record beside a model: the data, the held-out split and its metrics (see :mod:`lucidae.runs`)."""
INNER = "estimator"
"""Sub-folder in which a saved detector or topic model keeps the autoencoder it holds."""
FORMAT_VERSION = 2
"""Bumped whenever the directory layout changes: 2, the checksum covers ``config.json`` as well as the weights."""
READABLE_VERSIONS = (1, 2)
"""Format versions :func:`read_config` accepts (1: the checksum covers the weights only)."""
TRAIN_OPTIONS = "train_options.json"
"""Written by ``lucidae train`` into its run folder before training, for ``--resume``."""
MARKERS = (CONFIG, TRAIN_OPTIONS, "checkpoint", INNER)
"""A folder holding one of these (or nothing) is lucidae's own, and may be replaced."""

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


def checksum(config: dict[str, Any], weights_sha: str) -> str:
    """The checksum ``config.json`` records: the weights' SHA-256 and every other field of ``config``.

    Format version 2 hashes the weights' hex digest together with ``config`` (all keys but
    ``sha256``) as canonical JSON, so that an edited field (the model family, ``k``, an
    activation, the image shape) is caught like edited weights. Version 1 recorded the
    weights' digest alone, and is still checked that way.

    Raises
    ------
    CorruptFileError
        When ``config`` cannot be written as JSON (NaN, infinity, nesting too deep).

    Examples
    --------
    >>> checksum({"format_version": 1}, "ab" * 32) == "ab" * 32
    True
    >>> checksum({"format_version": 2, "k": 4}, "ab" * 32) != checksum({"format_version": 2, "k": 5}, "ab" * 32)
    True
    """
    if config.get("format_version") == 1:
        return weights_sha
    body = {k: v for k, v in config.items() if k != "sha256"}
    try:
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (ValueError, TypeError, RecursionError) as err:
        raise CorruptFileError(f"{CONFIG} cannot be checked: {str(err)[:200]}. The file is damaged.") from err
    return hashlib.sha256(f"lucidae-{FORMAT_VERSION}\n{weights_sha}\n{canonical}".encode()).hexdigest()


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_dir(path: Path) -> None:
    dir_fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


_RENAMEAT2: list[Any] = []


def exchange(a: Path, b: Path) -> bool:
    """Swap paths ``a`` and ``b`` in one atomic step (Linux ``renameat2(RENAME_EXCHANGE)``).

    Returns False, having changed nothing, where the OS or the file system cannot.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "a").write_text("A"); _ = (d / "b").write_text("B")
    >>> if exchange(d / "a", d / "b"):
    ...     assert (d / "a").read_text() == "B"
    """
    if not _RENAMEAT2:
        try:  # the symbols already loaded into this process, the C library's among them (no ldconfig run)
            libc = ctypes.CDLL(None, use_errno=True)
        except OSError:  # pragma: no cover - no C library to load
            libc = None
        _RENAMEAT2.append(getattr(libc, "renameat2", None))
    fn = _RENAMEAT2[0]
    if fn is None:  # pragma: no cover - not Linux, or an old C library
        return False
    at_fdcwd, rename_exchange = -100, 2
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP):  # pragma: no cover - old kernel
        return False
    raise OSError(code, os.strerror(code), str(b))


def _leftover(name: str, final: str) -> str | None:
    """``"tmp"`` or ``"old"`` when ``name`` is what an interrupted write of ``final`` left beside it."""
    for kind in ("tmp", "old"):
        if name.startswith(f".{final}.{kind}-"):
            return kind
    return None


def _is_ours(name: str) -> bool:
    """Lock files and leftovers of interrupted writes: never copied into a new folder."""
    return name.startswith(".") and (name.endswith(".lock") or ".tmp-" in name or ".old-" in name)


def recover_dir(final: str | os.PathLike) -> list[str]:
    """Put right what an interrupted write of folder ``final`` left beside it; return what was done.

    A process killed inside the two-rename swap (where the OS cannot exchange two folders
    in one step) may leave the old folder at ``.NAME.old-*`` and no folder at ``final``:
    the old folder is put back. Temporary folders ``.NAME.tmp-*`` of unfinished writes
    and old folders left after a finished swap are removed. Call it holding the folder's
    lock (:func:`lucidae.locks.folder_lock`), as :func:`write_model_dir` does; readers call
    it through :func:`read_config` only when they can take the lock.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> (d / ".m.old-1234abcd").mkdir()
    >>> recover_dir(d / "m"), (d / "m").is_dir()
    (['restored m from .m.old-1234abcd'], True)
    """
    final = Path(final)
    try:
        found = [(p, _leftover(p.name, final.name)) for p in final.parent.iterdir()]
    except OSError:
        return []
    olds = sorted((p for p, kind in found if kind == "old"), key=lambda p: p.stat().st_mtime)
    tmps = [p for p, kind in found if kind == "tmp"]
    done = []
    if olds and not os.path.lexists(final):
        os.rename(olds[-1], final)
        done.append(f"restored {final.name} from {olds.pop().name}")
    for leftover in olds + tmps:
        shutil.rmtree(leftover, ignore_errors=True)
        done.append(f"removed {leftover.name}")
    return done


def check_replaceable(final: str | os.PathLike) -> None:
    """Refuse to replace ``final`` unless it is missing, empty, or a folder lucidae wrote.

    Raises
    ------
    ConfigError
        For a symbolic link, a regular file, or a folder holding none of :data:`MARKERS`.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "notes.txt").write_text("mine")
    >>> check_replaceable(d)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    lucidae.errors.ConfigError: ... is a folder that lucidae did not write (it holds ['notes.txt'])...
    """
    final = Path(final)
    if final.is_symlink():
        raise ConfigError(
            f"{final} is a symbolic link; lucidae does not replace links (the link would be replaced, not the "
            "folder it points to). Pass the folder itself, or remove the link."
        )
    if not final.exists():
        return
    if not final.is_dir():
        raise ConfigError(
            f"{final} is a file, not a lucidae folder; lucidae will not replace it. "
            "Choose another path, or move the file away."
        )
    names = sorted(p.name for p in final.iterdir() if not _is_ours(p.name))
    if names and not set(names) & set(MARKERS):
        raise ConfigError(
            f"{final} is a folder that lucidae did not write (it holds {names[:3]}"
            + (f" and {len(names) - 3} more" if len(names) > 3 else "")
            + "); lucidae replaces only its own folders. Choose a new folder, or empty this one."
        )


def replace_dir(tmp: Path, final: Path) -> None:
    """Move the complete directory ``tmp`` to ``final``, replacing what was there in one step.

    Where the OS can (:func:`exchange`), the two folders are swapped atomically and the old
    one, now at ``tmp``, removed. Elsewhere ``final`` is renamed aside, ``tmp`` renamed into
    place and the old one removed; a process killed between the two renames leaves the
    old folder beside the path, which :func:`recover_dir` puts back at the next open.
    """
    if not os.path.lexists(final):
        os.rename(tmp, final)
    elif exchange(tmp, final):
        _fsync_dir(final.parent)
        shutil.rmtree(tmp, ignore_errors=True)  # the old folder, now at tmp
        return
    else:  # pragma: no cover - where the OS cannot exchange (tested by switching exchange off)
        old = final.with_name(f".{final.name}.old-{uuid.uuid4().hex[:8]}")
        os.rename(final, old)
        try:
            os.rename(tmp, final)
        except BaseException:
            os.rename(old, final)
            raise
        try:
            _fsync_dir(final.parent)
        finally:  # the new folder is in place: the old one goes, whatever the flush said
            shutil.rmtree(old, ignore_errors=True)
        return
    _fsync_dir(final.parent)


def write_model_dir(
    path: str | os.PathLike,
    tensors: dict[str, Tensor],
    config: dict[str, Any],
    *,
    run: dict[str, Any] | None = None,
    inner: Callable[[Path], dict[str, Any]] | None = None,
) -> Path:
    """Write ``tensors`` and ``config`` (and the ``run`` record, if given) to directory ``path`` atomically.

    Other files already in ``path`` (a report, a checkpoint) are kept. Everything is
    written into a new folder beside ``path`` and swapped in at once (:func:`replace_dir`),
    so the folder never pairs a new model with an old record. The folder's lock is held
    throughout (:func:`lucidae.locks.folder_lock`): another process writing it at the same
    time is refused at once. Leftovers of an interrupted write are put right first
    (:func:`recover_dir`), and only a missing, empty or lucidae folder is replaced
    (:func:`check_replaceable`).

    Parameters
    ----------
    path : path-like
        Target directory; created if missing.
    tensors : dict of str to Tensor
        Weights and fitted arrays.
    config : dict
        JSON-serialisable description; ``format_version`` and ``sha256`` (:func:`checksum`) are added.
    run : dict, optional
        Written to ``run.json`` (:data:`RUN_FILE`), replacing any there.
    inner : callable, optional
        Called with the new folder before the weights are written, to write what the saved
        object holds inside it (the estimator of a detector, in ``INNER``); returns keys to
        add to ``config``. An ``INNER`` already in ``path`` is then not kept.

    Returns
    -------
    Path
        The directory written.

    Raises
    ------
    FolderLockedError
        When another process is writing ``path``.
    ConfigError
        When ``path`` is a link, a file, or a folder lucidae did not write.
    OSError
        When the disk is full or the folder cannot be written; the old folder is then intact.

    Examples
    --------
    >>> import tempfile, torch
    >>> d = write_model_dir(tempfile.mkdtemp() + "/m", {"w": torch.ones(2)}, {"a": 1})
    >>> sorted(p.name for p in d.iterdir())
    ['config.json', 'model.safetensors']
    """
    from safetensors import SafetensorError
    from safetensors.torch import save_file

    final = Path(path)
    with folder_lock(final):
        recover_dir(final)
        check_replaceable(final)
        tmp = final.with_name(f".{final.name}.tmp-{uuid.uuid4().hex[:8]}")
        tmp.mkdir()
        try:
            if final.is_dir():  # keep the files that are not ours (reports, checkpoints)
                for item in final.iterdir():
                    ours = {WEIGHTS, CONFIG} | ({RUN_FILE} if run is not None else set())
                    if item.name in ours | ({INNER} if inner is not None else set()) or _is_ours(item.name):
                        continue
                    if item.is_dir() and not item.is_symlink():
                        shutil.copytree(item, tmp / item.name, symlinks=True)
                    else:
                        shutil.copy2(item, tmp / item.name, follow_symlinks=False)
            extra = inner(tmp) if inner is not None else {}
            for leftover in tmp.glob(".*.lock"):  # the inner write's lock file
                leftover.unlink()
            weights = tmp / WEIGHTS
            contiguous = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
            try:
                save_file(contiguous, str(weights))
            except SafetensorError as err:  # "No space left on device" comes as this, not as an OSError
                raise OSError(errno.EIO, f"the weights could not be written ({err})", str(final)) from err
            os.chmod(weights, 0o666 & ~_umask())  # as every other file, not safetensors' 0600
            _fsync_file(weights)
            config = {"format_version": FORMAT_VERSION, **config, **extra}
            config["sha256"] = checksum(config, sha256_of(weights))
            write_json(tmp / CONFIG, config)
            if run is not None:
                write_json(tmp / RUN_FILE, run)
            _fsync_dir(tmp)
            replace_dir(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return final


def _recover_unlocked(directory: Path) -> None:
    """Put back a folder an interrupted swap left aside, when no other process is writing it (readers' path)."""
    if held(directory) or not any(_leftover(p.name, directory.name) for p in directory.parent.iterdir()):
        return
    try:
        with folder_lock(directory):
            recover_dir(directory)
    except (FolderLockedError, OSError):  # another writer is at work, or the parent is read-only
        return


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
    >>> read_config(d / "nowhere")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    lucidae.errors.CorruptFileError: .../nowhere does not exist. Pass the folder that ...
    """
    directory = Path(path)
    cfg_path = directory / CONFIG
    if not os.path.lexists(directory) and directory.parent.is_dir():
        _recover_unlocked(directory)
    if not directory.exists():
        raise CorruptFileError(
            f"{directory} does not exist. Pass the folder that `save` or `lucidae train --out` wrote."
        )
    if not directory.is_dir():
        raise CorruptFileError(
            f"{directory} is a file, not a lucidae model folder. Pass the folder that `save` or "
            "`lucidae train --out` wrote."
        )
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
    if isinstance(version, bool) or version not in READABLE_VERSIONS:
        raise CorruptFileError(
            f"{cfg_path} has format_version={version!r:.60}; this lucidae reads versions {list(READABLE_VERSIONS)}."
        )
    return config


def read_tensors(path: str | os.PathLike, config: dict[str, Any]) -> dict[str, Tensor]:
    """Load ``model.safetensors`` after checking it and ``config`` against the checksum in ``config``.

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
    actual = checksum(config, sha256_of(weights))
    if expected != actual:
        raise CorruptFileError(
            f"{weights} and {CONFIG} do not match the checksum recorded in {CONFIG} "
            f"(expected {expected!r:.80}, found {actual[:16]}...). The weights or the config were changed or "
            "damaged; save the model again or restore it from a copy."
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
        on it: an object whose ``metrics`` maps names to numbers (or null for a metric that could
    not be computed, its reason then in ``metrics_notes``), whose ``dataset`` and ``data``
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
        or not all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in metrics.values())
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
            "numbers or null, whose 'dataset' and 'data' are objects, whose 'test_indices' are sample numbers "
            ">= 0 and whose 'test_rows' (if any) is [start, stop]. Delete it or train again."
        )
    return record
