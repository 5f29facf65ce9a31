"""Adapters between the report and :mod:`lucidae.metrics` / :mod:`lucidae.summary`.

The report computes no metric of its own: numbers come from :mod:`lucidae.metrics`,
their plain-language sentences from :func:`lucidae.summary.summarize`, and per-latent
evidence from :mod:`lucidae.explain`. This module only reshapes those results into
table rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lucidae import metrics
from lucidae.summary import summarize


def parameter_count(module: Any) -> int:
    """Number of trainable parameters.

    Examples
    --------
    >>> import torch
    >>> parameter_count(torch.nn.Linear(3, 2))
    8
    """
    return int(sum(p.numel() for p in module.parameters() if p.requires_grad))


def dead_mask(Z: np.ndarray) -> np.ndarray:
    """Boolean mask of the dead latents (never active on ``Z``), from :func:`lucidae.metrics.dead_latents`.

    Examples
    --------
    >>> dead_mask(np.array([[0.0, 1.0], [0.0, 2.0]]))
    array([ True, False])
    """
    mask = np.zeros(Z.shape[1], dtype=bool)
    mask[metrics.dead_latents(Z)] = True
    return mask


def summary_entries(est: Any, X: Any, *, y: Any = None, factors: Any = None) -> list[dict[str, Any]]:
    """Every metric of the model on ``X`` as ``{"name", "group", "value", "note"}``, note in plain words.

    Examples
    --------
    >>> from lucidae import AutoEncoder
    >>> from lucidae.datasets import load_digits
    >>> X = load_digits().X[:300]
    >>> est = AutoEncoder(hidden_dims=(), latent_dim=3, epochs=2, verbose=0, random_state=0).fit(X)
    >>> names = [e["name"] for e in summary_entries(est, X)]
    >>> "fvu" in names and "l0" in names
    True
    """
    max_samples = min(2000, len(X))
    summary = summarize(est, X, y=y, factors=factors, max_samples=max_samples)
    return [{"name": e.name, "group": e.group, "value": e.value, "note": e.note} for e in summary.entries]
