"""The run folder of ``lucidae train``: one trainer at a time, no folder replaced unasked, nothing left by a failure.

:class:`RunFolder` is claimed before anything is read or written: it takes the folder's
lock (:mod:`lucidae.locks`; a second ``lucidae train --out`` into the same folder is
refused at once), refuses an existing folder unless it is empty or ``--overwrite`` is given (and refuses a file, a
link or a folder lucidae did not write even then), and on release after a failure removes
what the run wrote: a new folder entirely; in a folder being overwritten, the new options
and checkpoint, the old ones put back. An interrupted run (Ctrl-C) and a run whose final
save failed keep their checkpoint, which ``--resume`` needs.

Examples
--------
>>> import tempfile
>>> out = Path(tempfile.mkdtemp()) / "run"
>>> folder = RunFolder(out, resume=False, overwrite=False)
>>> folder.claim()
>>> out.mkdir(); _ = (out / "train_options.json").write_text("{}")
>>> folder.release(ValueError("the data could not be read"))
>>> out.exists()
False
"""

from __future__ import annotations

import os
import shutil
import uuid
from contextlib import ExitStack
from pathlib import Path

from lucidae.checkpoint import CHECKPOINT_DIR
from lucidae.errors import ConfigError
from lucidae.io import TRAIN_OPTIONS, check_replaceable
from lucidae.locks import folder_lock

KEEP = ("TrainingInterrupted", "SaveFailedError")
"""Failures after which the run folder is kept: its checkpoint is what ``--resume`` continues from."""


class RunFolder:
    """``lucidae train``'s hold on its ``--out`` folder (see the module's docstring)."""

    def __init__(self, out: str | os.PathLike, *, resume: bool, overwrite: bool, writer: bool = True):
        self.out = Path(out)
        self.resume, self.overwrite, self.writer = resume, overwrite, writer
        self.created = self.claimed = False
        self.aside: list[tuple[Path, Path]] = []
        self._stack = ExitStack()

    def claim(self) -> None:
        """Take the lock and check the folder; move aside what an overwritten run's options and checkpoint were.

        Raises
        ------
        FolderLockedError
            When another process is training into (or writing) the folder.
        ConfigError
            When the folder exists and ``--overwrite`` was not given, or it is not a lucidae folder.
        """
        if not self.writer:  # under torchrun only the first process writes
            return
        self._stack.enter_context(folder_lock(self.out, what="trained into"))
        if self.resume:
            self.claimed = True
            return
        if not os.path.lexists(self.out):
            self.created = self.claimed = True
            return
        check_replaceable(self.out)
        if self.out.is_dir() and next(self.out.iterdir(), None) is None:  # an empty folder made for the run
            self.claimed = True
            return
        if not self.overwrite:
            raise ConfigError(
                f"--out {self.out} already exists. Pass --overwrite to replace it, choose another --out, or "
                f"continue an interrupted run with `lucidae train --resume {self.out}`."
            )
        for name in (TRAIN_OPTIONS, CHECKPOINT_DIR):
            item = self.out / name
            if os.path.lexists(item):
                aside = self.out / f".{name}.old-{uuid.uuid4().hex[:8]}"
                os.rename(item, aside)
                self.aside.append((item, aside))
        self.claimed = True

    def release(self, failure: BaseException | None) -> None:
        """Let the folder go: after a ``failure`` that leaves nothing to resume, remove what the run wrote."""
        if not self.writer:
            return
        try:
            if self.claimed and failure is not None and not _keeps(failure):  # never what another run wrote
                self._discard()
        finally:
            self._stack.close()

    def _discard(self) -> None:
        if self.created:
            shutil.rmtree(self.out, ignore_errors=True)
            return
        if self.resume or not self.out.is_dir():
            return
        for item, aside in self.aside:
            if item.is_dir() and not item.is_symlink():
                shutil.rmtree(item, ignore_errors=True)
            elif os.path.lexists(item):
                item.unlink()
            if os.path.lexists(aside):
                os.rename(aside, item)
        for name in (TRAIN_OPTIONS, CHECKPOINT_DIR):  # written by this run where the old one had none
            item = self.out / name
            if name not in {i.name for i, _ in self.aside} and os.path.lexists(item):
                (shutil.rmtree if item.is_dir() else Path.unlink)(item)


def _keeps(failure: BaseException) -> bool:
    """Whether ``failure`` (or the error it was raised from) is one after which the checkpoint is kept."""
    seen = set()
    while failure is not None and id(failure) not in seen:
        seen.add(id(failure))
        if type(failure).__name__ in KEEP:
            return True
        failure = failure.__cause__ or failure.__context__
    return False


__all__ = ["KEEP", "RunFolder"]
