"""One writer per folder: an exclusive lock on a small file beside the folder, refused at once when taken.

A folder that lucidae writes (a model, a run, a checkpoint) is replaced as a whole
(:func:`lucidae.io.write_model_dir`), so its lock cannot live inside it: the lock is the
file ``.NAME.lock`` in the parent folder, locked with ``fcntl.flock``. The operating
system drops the lock when its process ends, however it ends, so a killed writer never
leaves a stale lock behind. The lock file itself is kept (removing it would let two
writers lock two different files of the same name).

A process may take the lock on a folder it already holds (``lucidae train`` holds its
run folder while the model and checkpoint writes inside take it again); another process
gets :class:`FolderLockedError` at once, naming the folder and the process that holds it.
The lock file is removed when the lock is released (a process that opened the old file
meanwhile sees that the path now names another file, and locks that one instead).

Examples
--------
>>> import tempfile, pathlib
>>> target = pathlib.Path(tempfile.mkdtemp()) / "run"
>>> with folder_lock(target):
...     with folder_lock(target):  # the same process may take it again
...         held(target)
True
>>> held(target)
False
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lucidae.errors import LucidaeError

try:  # POSIX; elsewhere folders are not locked
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


class FolderLockedError(LucidaeError):
    """Another process is writing the folder; the message names it and the process.

    Examples
    --------
    >>> issubclass(FolderLockedError, LucidaeError)
    True
    """


_HELD: dict[str, tuple[int, int]] = {}  # lock file -> (file descriptor, how many times this process took it)
_GUARD = threading.Lock()


def lock_path(folder: str | os.PathLike) -> Path:
    """The lock file of ``folder``: ``.NAME.lock`` beside it.

    Examples
    --------
    >>> lock_path("runs/digits").as_posix()
    'runs/.digits.lock'
    """
    folder = Path(folder)
    return folder.with_name(f".{folder.name}.lock")


def _key(folder: str | os.PathLike) -> str:
    return str(lock_path(Path(os.path.abspath(folder))))


def held(folder: str | os.PathLike) -> bool:
    """Whether this process holds the lock on ``folder`` (see the module's example)."""
    return _key(folder) in _HELD


@contextmanager
def folder_lock(folder: str | os.PathLike, *, what: str = "written") -> Iterator[Path]:
    """Hold the exclusive lock on ``folder`` for the ``with`` block; refuse at once if another process holds it.

    The parent folder is created if missing (the lock file lives there).

    Parameters
    ----------
    folder : path-like
        The folder about to be written; it need not exist.
    what : str, default="written"
        How the message names the other process's work ("written", "trained into").

    Raises
    ------
    FolderLockedError
        When another process holds the lock.
    OSError
        When the parent folder cannot be created or written (read-only, permissions).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> with folder_lock(pathlib.Path(tempfile.mkdtemp()) / "m") as lock:
    ...     lock.name
    '.m.lock'
    """
    key = _key(folder)
    path = Path(key)
    with _GUARD:
        if key in _HELD:
            fd, count = _HELD[key]
            _HELD[key] = (fd, count + 1)
            reentered = True
        else:
            reentered = False
    if reentered:
        try:
            yield path
        finally:
            _release(key)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = _acquire(path, folder, what)
    with _GUARD:
        _HELD[key] = (fd, 1)
    try:
        yield path
    finally:
        _release(key)


def _acquire(path: Path, folder: str | os.PathLike, what: str) -> int:
    """Open and lock ``path``; retry when the file was removed by its last holder between the open and the lock."""
    for _ in range(100):
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    holder = _read_holder(fd)
                    raise FolderLockedError(
                        f"{folder} is being {what} by another lucidae process{holder}. Wait for it to finish, "
                        "or choose another folder."
                    ) from None
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(path))
            except FileNotFoundError:
                same = False
            if same:  # the file we locked is still the one at the path
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
                return fd
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
    raise FolderLockedError(f"{folder}: its lock file {path} keeps changing; another process is at work there.")


def _release(key: str) -> None:
    with _GUARD:
        fd, count = _HELD[key]
        if count > 1:
            _HELD[key] = (fd, count - 1)
            return
        del _HELD[key]
    try:  # removed while still locked: a process that opened it before retries on the new file (_acquire)
        os.unlink(key)
    except OSError:
        pass
    os.close(fd)  # closing the descriptor releases the flock


def _read_holder(fd: int) -> str:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:  # pragma: no cover - the holder's pid is only a courtesy
        return ""
    return f" (pid {text})" if text.isdigit() else ""


__all__ = ["FolderLockedError", "folder_lock", "held", "lock_path"]
