"""Adapters between the report and :mod:`lucidae.metrics` / :mod:`lucidae.summary`.

The report computes no metric of its own: numbers come from :mod:`lucidae.metrics`,
their plain-language sentences from :func:`lucidae.summary.summarize`, and per-latent
evidence from :mod:`lucidae.explain`. This module only reshapes those results into
table rows.
"""

from __future__ import annotations

import math
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


MAX_PURITY_LABELS = 50
"""Label purity is shown only for labels with at most this many values (not for a continuous target)."""


def latent_purity(Z: np.ndarray, labels: np.ndarray | None) -> list[dict[str, Any]] | None:
    """Per latent, the label its most active samples share most, from :func:`lucidae.metrics.label_purity`.

    Returns None without labels, with fewer than two samples, or when the labels look
    continuous (more than ``MAX_PURITY_LABELS`` values), where purity means nothing.

    Examples
    --------
    >>> Z = np.array([[0.0, 1.0], [0.1, 0.0], [0.9, 0.9], [1.0, 0.0]])
    >>> [(p["label"], p["purity"]) for p in latent_purity(Z, np.array([0, 0, 1, 1]))]
    [(1, 1.0), (0, 1.0)]
    >>> latent_purity(Z, None) is None
    True
    """
    if labels is None or len(labels) < 2 or len(np.unique(labels)) > MAX_PURITY_LABELS:
        return None
    r = metrics.label_purity(Z, labels)
    return [
        {"label": r["label"].tolist()[i], "purity": float(r["purity"][i]), "chance": float(r["chance"]),
         "n_top": int(r["n_top"])}
        for i in range(Z.shape[1])
    ]  # fmt: skip


def sample_errors(X_s: np.ndarray, R_s: np.ndarray) -> np.ndarray:
    """Each sample's squared error over the average sample's variance: their mean is the FVU.

    Examples
    --------
    >>> X = np.array([[0.0, 0.0], [2.0, 2.0]])
    >>> sample_errors(X, np.array([[0.0, 0.0], [1.0, 1.0]])).tolist()
    [0.0, 1.0]
    """
    total = float(((X_s - X_s.mean(axis=0)) ** 2).sum()) / max(len(X_s), 1)
    return ((X_s - R_s) ** 2).sum(axis=1) / (total if total > 0 else 1.0)


def verdict(
    name: str,
    fvu: float | None,
    pca_fvu: float | None,
    k: int,
    *,
    where: str = "held-out",
    dead: int = 0,
    collapsed: int = 0,
    improving: tuple[str, int, float] | None = None,
) -> dict[str, Any]:
    """The page's headline: fidelity against PCA of the code's size, unused latents, and whether training ended.

    ``wins`` is None when there is no PCA baseline (no held-out or training samples to fit it).
    ``lines`` are the sentences the page shows, most important first; the other keys go to
    ``metrics.json`` as they are. ``improving`` is what :func:`still_improving` returns.

    Examples
    --------
    >>> v = verdict("AutoEncoder", 0.0428, 0.0373, 32, dead=2)
    >>> v["wins"], v["headline"][:13], v["lines"][0]
    (False, 'Loses to PCA:', 'Unused latents: of 32, 2 dead; they carry nothing.')
    >>> "15% more error than" in v["headline"]
    True
    """
    fvu_, pca = fvu, pca_fvu
    wins = None if fvu_ is None or pca is None else bool(fvu_ < pca)
    ratio = None if wins is None or pca <= 0 else fvu_ / pca
    if wins is None:
        headline = f"No PCA baseline: the {name} loses {_share(fvu_)} of the {where} variance (FVU {_num(fvu_)})."
    elif wins:
        headline = (
            f"Beats PCA: the {name} loses {_share(fvu_)} of the {where} variance (FVU {fvu_:.4f}), PCA with the "
            f"same {k} components loses {_share(pca)} (FVU {pca:.4f}): {1 - ratio:.0%} less error than the linear map."
        )
    else:
        headline = (
            f"Loses to PCA: the {name} loses {_share(fvu_)} of the {where} variance (FVU {fvu_:.4f}), PCA with the "
            f"same {k} components only {_share(pca)} (FVU {pca:.4f}): "
            + _how_much_worse(ratio)
            + " a linear map any PCA gives for free. As a compressor PCA does better; read the latents knowing that."
        )
    n_dead, n_collapsed = dead, collapsed
    unused = [f"{n_dead} dead"] * bool(n_dead) + [f"{n_collapsed} collapsed to the prior"] * bool(n_collapsed)
    lines = [
        f"Unused latents: of {k}, {' and '.join(unused)}; they carry nothing." if unused
        else f"All {k} latents are in use."
    ]  # fmt: skip
    if improving is not None:
        lines.append(f"Training was still improving at its last epoch ({improving[1]}): more epochs would likely help.")
    return {
        "fvu": fvu_,
        "pca_fvu": pca,
        "pca_components": k,
        "wins": wins,
        "fvu_over_pca": ratio,
        "evaluated_on": where,
        "dead": n_dead,
        "collapsed": n_collapsed,
        "n_latents": k,
        "still_improving": improving is not None,
        "headline": headline,
        "lines": lines,
    }


def _how_much_worse(ratio: float | None) -> str:
    if ratio is None:
        return "no better than"
    return f"{ratio:.1f} times the error of" if ratio >= 2 else f"{ratio - 1:.0%} more error than"


def _share(value: float | None) -> str:
    return "an unknown share" if value is None else f"{value:.1%}"


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def still_improving(history: Any) -> tuple[str, int, float] | None:
    """``(which loss, epochs, relative drop in the last epoch)`` when the best epoch is the last one, else None.

    The validation loss decides where there is one (it is what early stopping and the kept
    weights go by); the training loss otherwise.

    Examples
    --------
    >>> from lucidae.history import History
    >>> still_improving(History([{"epoch": 1, "loss": 1.0}, {"epoch": 2, "loss": 0.8}]))
    ('training', 2, 0.2)
    >>> still_improving(History([{"epoch": 1, "loss": 1.0}, {"epoch": 2, "loss": 1.1}])) is None
    True
    """
    records = history.records
    which = "validation" if records and all("val_loss" in r for r in records) else "training"
    series = [float(r["val_loss" if which == "validation" else "loss"]) for r in records]
    if len(series) < 2 or history.stopped_early or not all(math.isfinite(v) for v in series):
        return None
    if int(np.argmin(series)) != len(series) - 1 or series[-1] >= series[-2]:
        return None
    drop = (series[-2] - series[-1]) / series[-2] if series[-2] > 0 else 0.0
    return which, len(series), round(drop, 6)


def responds(purity: dict[str, Any] | None, writes_top: list[dict[str, Any]] | None) -> str:
    """The card's one line: the label the latent is purest for, else the features it writes most.

    Examples
    --------
    >>> responds({"label": 3, "purity": 0.85, "chance": 0.1, "n_top": 18}, None)
    'Responds to label 3: 85% of its 18 most active samples are 3 (chance 10%).'
    >>> responds(None, [{"feature": "age", "sd": 1.23}, {"feature": "income", "sd": -0.4}])
    'Writes most: age +1.23 sd, income -0.4 sd (per standard deviation of the latent).'
    """
    if purity is not None:
        share, chance = purity["purity"], purity["chance"]
        if share >= min(1.0, 2 * chance):
            return (
                f"Responds to label {purity['label']}: {share:.0%} of its {purity['n_top']} most active samples "
                f"are {purity['label']} (chance {chance:.0%})."
            )
        return (
            f"No single label: at most {share:.0%} of its {purity['n_top']} most active samples share one "
            f"({purity['label']}; chance {chance:.0%})."
        )
    if writes_top:
        parts = ", ".join(f"{w['feature']} {w['sd']:+.3g} sd" for w in writes_top[:3])
        return f"Writes most: {parts} (per standard deviation of the latent)."
    return ""


def label_of(labels: np.ndarray | None, j: int) -> Any:
    """Label of evaluation sample ``j`` as a plain Python value (for the page and JSON), or None."""
    return None if labels is None else labels[j : j + 1].tolist()[0]


def table_cell(value: float) -> str:
    """A data value for a table: four significant digits, no exponent below 100,000.

    Examples
    --------
    >>> [table_cell(v) for v in (1680.0, 12345.6, 0.41, 2.5e6)]
    ['1680', '12346', '0.41', '2.5e+06']
    """
    return f"{value:.0f}" if 1e4 <= abs(value) < 1e5 else f"{value:.4g}"


FAR_OUTSIDE = 0.5
"""A scaled value more than this share of the training range beyond it is far outside: a random hold-out of the
training data's own distribution gives such values rarely; data in other units gives them by the bulk."""

FAR_SHARE = 0.01
"""Share of far-outside evaluation values that says the evaluation data is on another scale."""

OUTSIDE_SHARE = 0.25
"""Share of evaluation values outside the training range at all that says so too (a hold-out of the same data
falls outside the range of n training rows with probability 2 / (n + 1) per value)."""

DRIFT_T = 6.0
"""t statistic (against zero) of a feature's evaluation mean, in training standard deviations, that counts as drift."""


def scaling_mismatch(X_eval_s: np.ndarray, kind: str, output: str) -> list[tuple[str, str]]:
    """Warnings (title, text) when the evaluation data is on another scale than the training data.

    A random hold-out of the training data must not raise them: some of its values fall a
    little outside the training range, and its means wander by sampling error. So a
    bounded output (sigmoid, tanh) warns only when values lie far outside the range the
    scaling mapped to it, or many lie outside at all; a standardised model warns when a
    feature's evaluation mean lies over one training standard deviation away and the
    evaluation rows leave no doubt about it (:data:`DRIFT_T`), or when the evaluation
    spread is ten times larger or smaller than the training spread.

    Parameters
    ----------
    X_eval_s : ndarray of shape (n_samples, n_features)
        Evaluation data after the model's fitted scaling.
    kind : str
        The fitted scaling's kind (``Scaler.kind``).
    output : str
        The model's output activation.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> scaling_mismatch(rng.random((50, 4)), "minmax", "sigmoid")
    []
    >>> [title for title, _ in scaling_mismatch(rng.random((50, 4)) * 1000, "minmax", "sigmoid")]
    ['Scaling mismatch']
    >>> scaling_mismatch(rng.normal(size=(40, 3)), "standard", "linear")
    []
    >>> len(scaling_mismatch(rng.normal(size=(40, 3)) + 20, "standard", "linear"))
    1
    """
    out: list[tuple[str, str]] = []
    X = np.asarray(X_eval_s, dtype=np.float64)
    X = X[:, np.isfinite(X).all(axis=0)] if X.ndim == 2 else X.reshape(len(X), -1)
    if not X.size:
        return out
    if output in ("sigmoid", "tanh"):
        low = 0.0 if output == "sigmoid" else -1.0
        width = 1.0 - low
        below, above = (low - X) / width, (X - 1.0) / width  # how far outside, in shares of the range
        beyond = np.maximum(below, above)
        far, outside = float((beyond > FAR_OUTSIDE).mean()), float((beyond > 0.01).mean())
        if far > FAR_SHARE or outside > OUTSIDE_SHARE:
            out.append(
                (
                    "Scaling mismatch",
                    f"{outside:.1%} of the evaluation values fall outside [{low:g}, 1] after the scaling fitted at "
                    f"training time ({far:.1%} far outside), but the {output} output cannot produce them. The "
                    "evaluation data is not on the scale the model was trained on; check its units, or train "
                    "with output_activation='linear'.",
                )
            )
    if kind == "standard" and len(X) >= 2:
        mean, sd = X.mean(axis=0), X.std(axis=0, ddof=1)
        t = np.abs(mean) / np.maximum(sd / math.sqrt(len(X)), 1e-12)
        drifted = (np.abs(mean) > 1.0) & (t > DRIFT_T)
        spread = float(np.median(sd))
        if drifted.any():
            j = int(np.argmax(np.where(drifted, np.abs(mean), -np.inf)))
            out.append(
                (
                    "Scaling mismatch",
                    f"{int(drifted.sum())} feature(s) have an evaluation mean far from the training mean (feature "
                    f"{j}: {abs(float(mean[j])):.1f} training standard deviations away): the evaluation data "
                    "differs from the training data, or is in other units.",
                )
            )
        elif len(X) >= 5 and not 0.1 <= spread <= 10.0:
            out.append(
                (
                    "Scaling mismatch",
                    f"The evaluation data spreads {spread:.3g} times as wide as the training data (median over "
                    "features, in training standard deviations): it looks like data in other units.",
                )
            )
    return out
