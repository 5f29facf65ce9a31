"""Adapters between the report and :mod:`lucidae.metrics` / :mod:`lucidae.summary`.

The report computes no metric of its own: numbers come from :mod:`lucidae.metrics`,
their plain-language sentences from :func:`lucidae.summary.summarize`, and per-latent
evidence from :mod:`lucidae.explain`. This module only reshapes those results into
table rows, and falls back to a minimal set of :mod:`lucidae.metrics` values with short
sentences when :mod:`lucidae.summary` is not installed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lucidae import metrics


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
    try:
        from lucidae.summary import summarize
    except ImportError:  # pragma: no cover - summary ships with lucidae; kept for partial installs
        return _fallback_entries(est, X, factors)
    max_samples = min(2000, len(X))
    summary = summarize(est, X, y=y, factors=factors, max_samples=max_samples)
    return [{"name": e.name, "group": e.group, "value": e.value, "note": e.note} for e in summary.entries]


def _fallback_entries(est: Any, X: Any, factors: Any) -> list[dict[str, Any]]:
    Xs = est.scaler_.transform(np.asarray(X))
    R = est.scaler_.transform(est.reconstruct(X))
    Z = est.transform(X)
    fvu = metrics.fvu(Xs, R)
    out = [
        {"name": "fvu", "group": "fidelity", "value": fvu, "note": f"{fvu:.1%} of the variance is lost."},
        {"name": "l0", "group": "sparsity", "value": metrics.l0(Z), "note": "mean active latents per sample."},
        {
            "name": "n_dead",
            "group": "sparsity",
            "value": int(dead_mask(Z).sum()),
            "note": "latents never active on this data.",
        },
        {
            "name": "near_zero_weights",
            "group": "sparsity",
            "value": metrics.near_zero_weights(est.module_),
            "note": "share of weights within 1e-3 of zero.",
        },
    ]
    if factors is not None and Z.shape[1] > 1:
        out.append({"name": "mig", "group": "disentanglement", "value": metrics.mig(Z, factors), "note": "MIG."})
    return out
