"""What happened during training: :class:`History`, one record per epoch.

:func:`lucidae.train.train` returns it (and re-exports it as ``lucidae.train.History``); an
estimator keeps it as ``history_`` and saves it in its ``config.json``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class History:
    """What happened during training, one record per epoch.

    Examples
    --------
    >>> h = History(records=[{"epoch": 1, "loss": 0.5}, {"epoch": 2, "loss": 0.4}])
    >>> h.losses
    [0.5, 0.4]
    """

    records: list[dict[str, Any]] = field(default_factory=list)
    """Per epoch: ``epoch``, ``loss`` (training objective), each named loss term,
    ``val_loss`` (when validating), ``lr``, ``seconds`` and ``samples_per_s``."""
    best_epoch: int | None = None
    """Epoch whose weights were kept (1-based) when validation was on."""
    stopped_early: bool = False
    """True when early stopping ended training before ``epochs``."""

    @property
    def losses(self) -> list[float]:
        """Training loss per epoch."""
        return [r["loss"] for r in self.records]

    def continued(self, more: History) -> History:
        """This history followed by ``more``, a continuation (warm start, fine-tuning), its epochs numbered on.

        Examples
        --------
        >>> first = History(records=[{"epoch": 1, "loss": 0.5}], best_epoch=1)
        >>> both = first.continued(History(records=[{"epoch": 1, "loss": 0.4}], best_epoch=1))
        >>> [r["epoch"] for r in both.records], both.best_epoch, len(first.records)
        ([1, 2], 2, 1)
        """
        done = len(self.records)
        return History(
            [*self.records, *({**r, "epoch": done + r["epoch"]} for r in more.records)],
            None if more.best_epoch is None else done + more.best_epoch,
            more.stopped_early,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, stored in ``config.json``."""
        return {
            "records": self.records,
            "best_epoch": self.best_epoch,
            "stopped_early": self.stopped_early,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> History:
        """Inverse of :meth:`to_dict`."""
        return cls(
            list(data.get("records", [])),
            data.get("best_epoch"),
            bool(data.get("stopped_early", False)),
        )
