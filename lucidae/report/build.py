"""``build_report(run_dir)``: one self-contained HTML page and a metrics.json for a trained run.

A run folder is what ``lucidae train`` (or ``lucidae demo``) writes: the model
(``model.safetensors`` + ``config.json``) and ``run.json`` with the data spec and the
indices of the held-out samples. The report evaluates the model on those held-out
samples, so every number in it is one the model never trained on.

The page has no external references at all: images are inline base64 PNGs, the CSS is
inline, the one script (the live decoder, ``live.py``) is inline and allowed by its hash,
and a Content-Security-Policy forbids loading or running anything else. Every user-given
string (run name, feature names, data description) goes through Jinja2's autoescaping.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lucidae import explain
from lucidae._version import __version__
from lucidae.applications.generate import interpolation, samples
from lucidae.datasets import Dataset, load_dataset, read_options
from lucidae.errors import DataError
from lucidae.estimators import load
from lucidae.io import RUN_FILE, atomic_write, read_run_record, write_json
from lucidae.metrics import COLLAPSE_VARIANCE, activation_density, collapsed_latents, fvu
from lucidae.models.vae import VariationalAutoEncoder
from lucidae.report import plots
from lucidae.report.evidence import (
    dead_mask,
    label_of,
    latent_purity,
    parameter_count,
    responds,
    sample_errors,
    scaling_mismatch,
    still_improving,
    summary_entries,
    table_cell,
    verdict,
)
from lucidae.report.live import live_context
from lucidae.runs import eval_split

REPORT_FILE = "report.html"
"""Name of the page written into the run folder."""
METRICS_FILE = "metrics.json"
"""Name of the machine-readable metrics written beside the page."""

MAX_LATENT_CARDS = 24
"""Latent cards drawn by default; larger codes show their strongest latents and list the rest."""
MAX_EVAL_SAMPLES = 2000
"""Samples a report evaluates at most (a fixed random subset of the held-out ones beyond that)."""
MAX_TABLE_LATENTS = 1000
"""Rows of the all-latents table; beyond that metrics.json has the full list."""

LOW_EXPLAINED_VARIANCE = 0.5
"""Explained variance below this raises a warning."""
OVERFIT_RISE = 0.10
"""A final validation loss this much above its best raises an overfitting warning."""
OUT_OF_RANGE_SHARE = 0.01
"""Share of scaled values outside the output's range that raises a scaling warning."""
WORST_SAMPLES = 5
"""Worst-reconstructed evaluation samples the verdict shows."""
TOP_SAMPLES = 7
"""Top-activating samples a card shows: as many labelled thumbnails as fit one row of a card."""


def read_run(run_dir: Path) -> dict[str, Any]:
    """Read ``run.json`` of a run folder, or return ``{}`` when there is none.

    Examples
    --------
    >>> import tempfile
    >>> read_run(Path(tempfile.mkdtemp()))
    {}
    """
    return read_run_record(run_dir, RUN_FILE)


def _finite_or_none(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def _architecture(est: Any) -> str:
    cfg = est.model_config_
    text = "-".join(cfg.layer_shapes())
    if cfg.model == "conv" or getattr(cfg, "architecture", "dense") == "conv":
        text += " (4x4 stride-2 convolutions to each CxHxW feature map, dense layers around the code)"
    if cfg.model == "topk":
        text += f"; TopK keeps k={cfg.k} latents per sample"
    return text


def _subsample(idx: np.ndarray, limit: int) -> np.ndarray:
    if len(idx) <= limit:
        return idx
    return np.sort(np.random.default_rng(0).choice(idx, size=limit, replace=False))


def _pca_fvu(X_train_s: np.ndarray, X_eval_s: np.ndarray, k: int) -> float | None:
    from sklearn.decomposition import PCA

    k = min(k, X_train_s.shape[0], X_train_s.shape[1])
    if k < 1 or X_train_s.shape[0] < 2:
        return None
    pca = PCA(k, random_state=0).fit(X_train_s)
    return _finite_or_none(fvu(X_eval_s, pca.inverse_transform(pca.transform(X_eval_s))))


def _load_run(run_dir: Path, dataset: Dataset | None) -> tuple[Any, dict[str, Any], Dataset]:
    """The fitted estimator, its run record and its data (the one given, or the one ``run.json`` names)."""
    est = load(run_dir)
    run = read_run(run_dir)
    if dataset is None:
        # read as training read it: the table's id column, dropped columns, delimiter, missing cells
        dataset = load_dataset(_data_spec(run_dir, run), **read_options(run.get("data") or {}))
    if dataset.n_features != est.n_features_in_:
        raise DataError(
            f"The data has {dataset.n_features} features but the model in {run_dir} was trained on "
            f"{est.n_features_in_}. Pass the data the run was trained on."
        )
    return est, run, dataset


def _data_spec(run_dir: Path, run: dict[str, Any]) -> str:
    """Where the run's data comes from: the spec it was trained with, or the file it was read from."""
    spec = (run.get("data") or {}).get("data")
    if run.get("data_path") and Path(run["data_path"]).exists() and not Path(str(spec)).exists():
        spec = run["data_path"]
    if not spec:
        raise DataError(
            f"{run_dir} has no {RUN_FILE} naming its data, so the report cannot evaluate the model. "
            "Train with `lucidae train`, or pass the data (build_report(run_dir, dataset=...) or --data)."
        )
    return spec


@dataclass
class _Evaluation:
    """What the model does on the evaluation samples: every number and array the page is drawn from."""

    eval_idx: np.ndarray  # (n,) dataset indices of the evaluation samples
    held_out: bool  # False when the run kept nothing back and the model is evaluated on its training data
    X_eval: np.ndarray  # (n, features) original units
    labels: np.ndarray | None  # (n,)
    X_eval_s: np.ndarray  # (n, features) model space
    recon: np.ndarray  # (n, features) original units
    Z: np.ndarray  # (n, latent)
    entries: list[dict[str, Any]]  # summary entries, training FVU and PCA baseline included
    explained: float | None  # explained variance of the evaluation samples
    test_fvu: float | None
    train_fvu: float | None
    dead: np.ndarray  # (latent,) never active
    collapsed: np.ndarray  # (latent,) collapsed to a VAE's prior (and not dead)
    density: np.ndarray  # (latent,) share of samples each latent is active on
    std: np.ndarray  # (latent,)
    pca_fvu: float | None = None  # PCA with as many components as latents, fitted on the training samples

    @property
    def feature_std(self) -> np.ndarray:
        """(features,) standard deviation of each feature over the evaluation data; 1 where it is constant."""
        sd = self.X_eval.reshape(len(self.X_eval), -1).std(axis=0)
        return np.where(sd > 0, sd, 1.0)

    @property
    def n_latents(self) -> int:
        return self.Z.shape[1]

    @property
    def inactive(self) -> np.ndarray:
        """Dead or collapsed: no traversal or top samples, they would show nothing."""
        return self.dead | self.collapsed

    @property
    def where(self) -> str:
        return "held-out" if self.held_out else "training"


def _evaluate(est: Any, dataset: Dataset, run: dict[str, Any], max_samples: int) -> _Evaluation:
    """Codes, reconstructions and metrics on (at most ``max_samples``) held-out samples."""
    eval_idx, train_idx, held_out = eval_split(run, dataset.n_samples)
    eval_idx = _subsample(eval_idx, max_samples)
    X_eval = est.scaler_.fill_missing(np.asarray(dataset.X[eval_idx]))  # missing cells as the model fills them
    labels = None if dataset.y is None else np.asarray(dataset.y)[eval_idx]
    factors = None if dataset.factors is None else np.asarray(dataset.factors)[eval_idx]
    recon = est.reconstruct(X_eval)  # (n, features) original units
    X_eval_s = est.scaler_.transform(X_eval)  # (n, features) model space
    Z = est.transform(X_eval)  # (n, latent)

    entries = summary_entries(est, X_eval, y=labels, factors=factors)
    values = {e["name"]: e["value"] for e in entries}
    test_fvu = _finite_or_none(values.get("fvu"))
    train_fvu = None
    train_sub = _subsample(train_idx, max_samples)
    if held_out and len(train_sub) >= 2:
        train_fvu, baselines = _baseline_entries(est, np.asarray(dataset.X[train_sub]), X_eval_s, Z.shape[1], test_fvu)
        entries.extend(baselines)
    dead, collapsed = _latent_status(est, Z)
    pca_fvu = next((e["value"] for e in entries if e["name"].startswith("pca_fvu")), None)
    return _Evaluation(
        eval_idx=eval_idx,
        held_out=held_out,
        X_eval=X_eval,
        labels=labels,
        X_eval_s=X_eval_s,
        recon=recon,
        Z=Z,
        entries=entries,
        explained=values.get("explained_variance"),
        test_fvu=test_fvu,
        train_fvu=train_fvu,
        dead=dead,
        collapsed=collapsed,
        density=activation_density(Z),
        std=Z.std(axis=0),
        pca_fvu=_finite_or_none(pca_fvu),
    )


def _baseline_entries(
    est: Any, X_train: np.ndarray, X_eval_s: np.ndarray, n_latents: int, test_fvu: float | None
) -> tuple[float | None, list[dict[str, Any]]]:
    """The training FVU (does the model memorise?) and a PCA of the code's size (does it beat a linear map?)."""
    X_train_s = est.scaler_.transform(X_train)
    train_fvu = _finite_or_none(fvu(X_train_s, est.scaler_.transform(est.reconstruct(X_train))))
    entries = [
        {
            "name": "train_fvu",
            "group": "fidelity",
            "value": train_fvu,
            "note": f"on {len(X_train)} training samples {train_fvu:.1%} of the variance is lost; far below "
            "the held-out FVU would mean the model memorised its training data.",
        }
    ]
    pca_fvu = _pca_fvu(X_train_s, X_eval_s, n_latents)
    if pca_fvu is not None:
        verdict = "better" if test_fvu is not None and test_fvu < pca_fvu else "no better"
        entries.append(
            {
                "name": f"pca_fvu (k={n_latents})",
                "group": "baseline",
                "value": pca_fvu,
                "note": f"PCA with as many components as the code has latents loses {pca_fvu:.1%}; "
                f"the autoencoder does {verdict} than this linear baseline.",
            }
        )
    return train_fvu, entries


def _latent_status(est: Any, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Masks of the dead latents and of a VAE's collapsed ones (dead ones are not counted twice)."""
    dead = dead_mask(Z)
    collapsed = np.zeros_like(dead)
    if isinstance(est.module_, VariationalAutoEncoder) and len(Z) >= 2:
        collapsed[collapsed_latents(Z)] = True
        collapsed &= ~dead
    return dead, collapsed


def _warnings(est: Any, ev: _Evaluation) -> list[dict[str, str]]:
    """The page's warnings, each ``{"title", "text"}``, in reading order."""
    found = [
        *_coverage_warnings(ev),
        *_latent_warnings(est, ev),
        *_training_warnings(est, ev),
        *_scaling_warnings(est, ev),
        *_fidelity_warnings(ev),
    ]
    return [{"title": title, "text": text} for title, text in found]


def _coverage_warnings(ev: _Evaluation) -> Iterator[tuple[str, str]]:
    if not ev.held_out:
        yield (
            "No held-out data",
            "This run kept no samples back, so every number here is measured on data the model trained on "
            "and flatters it. Train with --test-fraction above 0.",
        )


def _latent_warnings(est: Any, ev: _Evaluation) -> Iterator[tuple[str, str]]:
    n_latents, n_dead, n_collapsed = ev.n_latents, int(ev.dead.sum()), int(ev.collapsed.sum())
    if n_dead:
        yield (
            "Dead latents",
            f"{n_dead} of {n_latents} latents never change over the evaluation data: they cost parameters and "
            "explain nothing. Use a smaller latent_dim, a weaker sparsity penalty, or a model that revives "
            "dead latents (TopK with AuxK).",
        )
    if n_collapsed:
        beta = getattr(est, "beta", None)
        everything = "every latent" if n_collapsed == n_latents else f"{n_collapsed} of {n_latents} latents"
        yield (
            "Collapsed latents",
            f"The KL term switched off {everything}: their posterior mean varies by less than "
            f"{COLLAPSE_VARIANCE:g} (variance) over the evaluation data, so the decoder ignores them "
            "and they carry almost nothing (posterior collapse)."
            + (
                " The code carries nothing at all: lower beta"
                + (f" (now {beta:g})" if beta is not None else "")
                + " or train longer."
                if n_collapsed == n_latents
                else " A few unused latents are normal for a beta-VAE; lucidae.prune.prune removes them."
            ),
        )


def _training_warnings(est: Any, ev: _Evaluation) -> Iterator[tuple[str, str]]:
    records = est.history_.records
    val = [r["val_loss"] for r in records if "val_loss" in r]
    if len(val) >= 3:
        best = int(np.argmin(val))
        rise = val[-1] / val[best] - 1 if val[best] > 0 else 0.0
        train_losses = [r["loss"] for r in records]
        if best < len(val) - 1 and rise > OVERFIT_RISE and train_losses[-1] < train_losses[best]:
            kept = (
                f" The weights kept are those of epoch {est.history_.best_epoch}."
                if est.history_.best_epoch
                else " The final weights were kept."
            )
            yield (
                "Overfitting",
                f"The validation loss ended {rise:.0%} above its best (epoch {best + 1}) while the training loss "
                f"kept falling: the model began to memorise its training samples.{kept} Fewer epochs, more data, "
                "a smaller model or weight decay help.",
            )
    improving = still_improving(est.history_)
    if improving is not None:
        which, epochs, drop = improving
        yield (
            "Still improving",
            f"The {which} loss was lowest at the last epoch ({epochs}) and still fell "
            + (f"{drop:.1%}" if drop >= 0.001 else "(by less than 0.1%)")
            + " in it: training "
            "stopped before the model converged, so the numbers on this page understate what it can do. Train "
            f"for more epochs (epochs={epochs} now), or continue this model with warm_start=True.",
        )
    train_fvu, test_fvu = ev.train_fvu, ev.test_fvu
    if ev.held_out and train_fvu is not None and test_fvu is not None and test_fvu > 1.5 * train_fvu + 0.02:
        yield (
            "Generalisation gap",
            f"Held-out FVU {test_fvu:.3f} is much worse than the training FVU {train_fvu:.3f}: the model "
            "reconstructs what it has seen better than new samples.",
        )


def _scaling_warnings(est: Any, ev: _Evaluation) -> Iterator[tuple[str, str]]:
    X_eval_raw = ev.X_eval
    # only when the evaluation data really is on another scale, never for a random hold-out (evidence.py)
    yield from scaling_mismatch(ev.X_eval_s, est.scaler_.kind, est.model_config_.output_activation)
    if X_eval_raw.size and X_eval_raw.dtype != np.uint8:
        lo, hi = float(np.min(X_eval_raw)), float(np.max(X_eval_raw))
        if 0.0 <= lo and 0.0 < hi <= 1.0 / 255.0 + 1e-6:
            yield (
                "Scaling mismatch",
                f"All values lie in [0, {hi:.3g}]: the data looks divided by 255 twice. Pass it as loaded.",
            )


def _fidelity_warnings(ev: _Evaluation) -> Iterator[tuple[str, str]]:
    explained = ev.explained
    if explained is not None and explained < LOW_EXPLAINED_VARIANCE:
        yield (
            "Low explained variance",
            (
                f"The model explains only {explained:.1%} of the variance of held-out data."
                if explained >= 0
                else "The model does worse than predicting the mean sample on held-out data: it explains none "
                f"of their variance (FVU {1 - explained:.3f})."
            )
            + " Its latents describe a blurry average more than the samples; train longer, widen the code, "
            "or loosen the constraints.",
        )


def _verdict(est: Any, ev: _Evaluation) -> dict[str, Any]:
    """The page's headline (see :func:`lucidae.report.evidence.verdict`) for this run."""
    n_dead, n_collapsed = int(ev.dead.sum()), int(ev.collapsed.sum())
    return verdict(type(est).__name__, ev.test_fvu, ev.pca_fvu, ev.n_latents, where=ev.where, dead=n_dead,
                   collapsed=n_collapsed, improving=still_improving(est.history_))  # fmt: skip


def _worst_samples(est: Any, ev: _Evaluation, n: int = WORST_SAMPLES) -> dict[str, Any] | None:
    """The ``n`` evaluation samples the model reconstructs worst: images over their reconstructions, or rows.

    The error is the sample's squared error in the model's scaled space over the average
    sample's variance, so the average over all samples is the FVU and a reader can see how
    far the worst lie above it.
    """
    if not len(ev.X_eval):
        return None
    errors = sample_errors(ev.X_eval_s, est.scaler_.transform(ev.recon))
    worst = np.argsort(-errors, kind="stable")[:n]
    image_shape, names = est.image_shape_, list(est.feature_names_)
    samples = []
    for j in worst:
        item: dict[str, Any] = {
            "index": int(ev.eval_idx[j]),
            "label": label_of(ev.labels, j),
            "error": float(errors[j]),
            "error_text": _fmt(float(errors[j])),
        }
        if image_shape is not None:
            pair = np.stack([ev.X_eval[j], ev.recon[j]])  # (2, features): the sample over its reconstruction
            lo, hi = float(pair.min()), float(pair.max())
            item["image"] = plots.image_tiles(pair, image_shape, vmin=lo, vmax=hi, ncols=1, target=64)
        else:
            # the features it misses most, ranked in standard deviations so that units do not decide
            miss = np.abs(ev.X_eval[j] - ev.recon[j]) / ev.feature_std
            item["features"] = [
                {"name": names[c], "value": table_cell(float(ev.X_eval[j, c])),
                 "recon": table_cell(float(ev.recon[j, c])), "sd": _fmt(float(miss[c]))}
                for c in np.argsort(-miss, kind="stable")[:3]
            ]  # fmt: skip
        samples.append(item)
    return {"samples": samples, "mean": _fmt(float(errors.mean())), "n": len(errors)}


def _latent_order(est: Any, ev: _Evaluation) -> list[int]:
    """Every latent, most variable first, the dead and collapsed ones last."""
    ranking = [int(i) for i in explain.rank_latents(est, ev.X_eval)]  # most variable first
    inactive = ev.inactive
    return [i for i in ranking if not inactive[i]] + [i for i in ranking if inactive[i]]


def _latent_cards(est: Any, ev: _Evaluation, shown: list[int]) -> list[dict[str, Any]]:
    """One card per shown latent: its statistics and, where it is in use, what it writes and reads."""
    alive = [i for i in shown if not ev.inactive[i]]
    writes = {w.latent: w for w in explain.latent_writes(est, ev.X_eval, latents=alive)} if alive else {}
    reads = {r.latent: r for r in explain.latent_reads(est, ev.X_eval, latents=alive, n_top=8)} if alive else {}
    purity = latent_purity(ev.Z, ev.labels)
    cards = []
    for i in shown:
        card = _latent_stats(ev, i)
        if not ev.inactive[i]:
            card.update(_latent_evidence(est, ev, i, writes[i], reads[i]))
            card["purity"] = None if purity is None else purity[i]
            card["responds"] = responds(card["purity"], card["writes_top"])
        cards.append(card)
    return cards


def _latent_stats(ev: _Evaluation, i: int) -> dict[str, Any]:
    z, std = ev.Z[:, i], float(ev.std[i])
    return {
        "index": i,
        "dead": bool(ev.dead[i]),
        "collapsed": bool(ev.collapsed[i]),
        "variance": _fmt(std**2),
        "active": f"{ev.density[i]:.1%}",
        "mean": _fmt(float(z.mean())),
        "std": _fmt(std),
        "density": plots.activation_density(z),
        "range": f"{_fmt(float(z.min()))} to {_fmt(float(z.max()))}",
        "top_images": None,
        "top_table": None,
        "responds": "",
        "purity": None,
        "writes_top": None,
        "writes_scale": None,
    }


def _latent_evidence(est: Any, ev: _Evaluation, i: int, writes: Any, reads: Any) -> dict[str, Any]:
    """A live latent's traversal, decoder direction and top samples (images, or a table for tabular data).

    Tables are drawn in standard deviations of each feature over the evaluation data: in raw
    units the one column with the largest scale hides every other. Images keep pixel units,
    which a reader can compare by eye.
    """
    image_shape, names, X_eval = est.image_shape_, list(est.feature_names_), ev.X_eval
    trav = explain.traverse(est, X_eval, i, quantile_range=(0.01, 0.99), base="mean")
    z = ev.Z[:, i]
    top = reads.top_indices
    evidence: dict[str, Any] = {
        "steps": ", ".join(_fmt(float(v)) for v in trav.values),
        "low": _fmt(float(trav.values[0])),
        "high": _fmt(float(trav.values[-1])),
        "top_samples": [
            {"index": int(ev.eval_idx[r]), "label": label_of(ev.labels, int(r)), "value": _fmt(float(z[r]))}
            for r in top[:TOP_SAMPLES]
        ],
    }
    if image_shape is not None:
        lim = float(np.abs(writes.direction).max()) or 1.0
        lo, hi = float(X_eval[top].min()), float(X_eval[top].max())
        evidence.update(
            writes=plots.latent_writes(writes.direction, image_shape=image_shape, feature_names=names),
            writes_scale={"low": _fmt(-lim), "high": _fmt(lim), "bar": plots.colour_scale("RdBu_r")},
            traversal=plots.latent_traversal(trav.recon, trav.values, image_shape=image_shape, feature_names=names),
        )
        for item, r in zip(evidence["top_samples"], top):
            item["image"] = plots.image_tiles(X_eval[r : r + 1], image_shape, vmin=lo, vmax=hi, target=32)
        evidence["top_images"] = True
        return evidence
    sd, mean = ev.feature_std, X_eval.mean(axis=0)
    direction = writes.direction / sd  # (features,) standard deviations of each feature
    order = np.argsort(-np.abs(direction), kind="stable")
    evidence.update(
        writes=plots.latent_writes(direction, image_shape=None, feature_names=names, unit="feature std"),
        traversal=plots.latent_traversal(
            (trav.recon - mean) / sd, trav.values, image_shape=None, feature_names=names, unit="feature std"
        ),
        writes_top=[{"feature": names[c], "sd": float(direction[c])} for c in order[:10]],
    )
    cols = [int(c) for c in order[: min(6, len(names))]]
    evidence["top_table"] = {
        "columns": [names[c] for c in cols],
        "rows": [
            {"index": int(ev.eval_idx[r]), "label": label_of(ev.labels, int(r)), "value": _fmt(float(z[r])),
             "cells": [table_cell(float(X_eval[r, c])) for c in cols]}
            for r in top[:5]
        ],
    }  # fmt: skip
    return evidence


GENERATED_SAMPLES = 10
"""New images drawn from a VAE's prior for the Generation section."""
INTERPOLATION_PAIRS = 3
"""Pairs of held-out samples the Generation section interpolates between."""
INTERPOLATION_STEPS = 8
"""Decoded points per interpolation, the two reconstructions included."""


def _interpolation_pairs(labels: np.ndarray | None, n: int, n_pairs: int) -> list[tuple[int, int]]:
    """Positions of sample pairs to interpolate between: of different labels where there are labels.

    A path between two samples of one class shows little; one between classes shows
    whether the code's space between them holds plausible images or a blur. The choice
    is deterministic so that two reports of one run show the same strips.
    """
    if n < 2:
        return []
    if labels is not None:
        classes, inverse = np.unique(labels, return_inverse=True)
        if len(classes) >= 2:
            members = [list(np.flatnonzero(inverse == c)) for c in range(len(classes))]  # positions per class
            used = [0] * len(classes)
            pairs = []
            for k in range(n_pairs):
                ca, cb = (2 * k) % len(classes), (2 * k + 1) % len(classes)
                if used[ca] >= len(members[ca]) or used[cb] >= len(members[cb]):
                    break
                pairs.append((int(members[ca][used[ca]]), int(members[cb][used[cb]])))
                used[ca] += 1
                used[cb] += 1
            if pairs:
                return pairs
    ends = np.linspace(0, n - 1, 2 * min(n_pairs, n // 2)).astype(int)
    return [(int(ends[2 * k]), int(ends[2 * k + 1])) for k in range(len(ends) // 2)]


def _generation(est: Any, X_eval: np.ndarray, labels: np.ndarray | None, eval_idx: np.ndarray) -> dict | None:
    """The Generation section: prior samples and interpolation strips, or None (tabular data, not generative)."""
    image_shape = est.image_shape_
    # Only a generative model gets the section: for a plain autoencoder, decoding the line between
    # two codes read as generation to readers, which it is not.
    if image_shape is None or len(X_eval) < 2 or not hasattr(est, "sample"):
        return None
    flat = X_eval.reshape(len(X_eval), -1)
    # One colour scale for everything, the data's own, so generated images read like the originals.
    lo, hi = float(flat.min()), float(flat.max())
    can_sample = hasattr(est, "sample")
    drawn = None
    if can_sample:
        new = samples(est, GENERATED_SAMPLES, random_state=0).reshape(GENERATED_SAMPLES, -1)  # (n, features)
        drawn = plots.image_tiles(new, image_shape, vmin=lo, vmax=hi, target=48)
    strips = []
    for a, b in _interpolation_pairs(labels, len(X_eval), INTERPOLATION_PAIRS):
        path = interpolation(est, flat[a], flat[b], steps=INTERPOLATION_STEPS).reshape(INTERPOLATION_STEPS, -1)
        row = np.concatenate([flat[a : a + 1], path, flat[b : b + 1]])  # (steps + 2, features)
        caption = f"held-out sample #{int(eval_idx[a])}" + (f" (label {labels[a]})" if labels is not None else "")
        caption += f" to #{int(eval_idx[b])}" + (f" (label {labels[b]})" if labels is not None else "")
        strips.append(
            {
                "image": plots.image_tiles(row, image_shape, vmin=lo, vmax=hi, target=48),
                "caption": caption,
                "pair": [int(eval_idx[a]), int(eval_idx[b])],
            }
        )
    return {"sampling": can_sample, "samples": drawn, "n_samples": GENERATED_SAMPLES, "strips": strips,
            "steps": INTERPOLATION_STEPS}  # fmt: skip


GROUP_ORDER = ("fidelity", "baseline", "sparsity", "structure", "disentanglement")
"""Order of the metric groups in the table."""


def _metric_rows(entries: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Table rows (group, name, value, sentence) from summary entries, grouped in reading order."""
    rank = {g: i for i, g in enumerate(GROUP_ORDER)}
    rows = []
    for e in sorted(entries, key=lambda e: rank.get(e["group"], len(rank))):
        value = e["value"]
        if value is None:
            text = "n/a"
        elif isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            text = str(int(value))
        elif isinstance(value, (float, np.floating)):
            text = f"{float(value):.4g}"
        else:
            text = str(value)
        note = str(e["note"])
        rows.append({"group": e["group"], "name": e["name"], "value": text, "sentence": note[:1].upper() + note[1:]})
    return rows


def _fmt(value: float) -> str:
    return f"{value:.3g}"


TRAINING_SETTINGS = ("epochs", "batch_size", "lr", "lr_schedule", "weight_decay", "validation_fraction", "patience")
"""Estimator parameters the model card lists under "Training settings"."""


def _model_card(est: Any, dataset: Dataset, ev: _Evaluation) -> list[tuple[str, str]]:
    """The model card's rows: what was trained, on what, and how."""
    cfg, history, image_shape = est.model_config_, est.history_, est.image_shape_
    params = est.get_params(deep=False)
    return [
        ("Estimator", f"{type(est).__name__} (model family {cfg.model!r})"),
        ("Architecture", _architecture(est)),
        (
            "Activations",
            f"hidden {cfg.activation}, latent {cfg.latent_activation}, output {cfg.output_activation}",
        ),
        ("Parameters", f"{parameter_count(est.module_):,}"),
        ("Data", f"{dataset.name}: {dataset.description}".strip()),
        (
            "Samples",
            f"{dataset.n_samples:,} in all; {len(ev.eval_idx):,} {ev.where} samples evaluated; "
            f"{dataset.n_features:,} features" + (f", images {tuple(image_shape)}" if image_shape else ""),
        ),
        ("Scaling", f"{est.scaler_.kind} (fitted on the training data, stored with the model)"),
        ("Training settings", ", ".join(f"{k}={params[k]}" for k in TRAINING_SETTINGS if k in params)),
        (
            "Training",
            f"{len(history.records)} epochs in {est.fit_seconds_:.1f} s"
            + (f"; weights of epoch {history.best_epoch} kept" if history.best_epoch else "")
            + ("; stopped early" if history.stopped_early else ""),
        ),
        ("lucidae", __version__),
    ]


def _page_context(
    run_dir: Path,
    est: Any,
    dataset: Dataset,
    ev: _Evaluation,
    *,
    order: list[int],
    cards: list[dict[str, Any]],
    warnings: list[dict[str, str]],
    generation: dict | None,
    max_samples: int,
) -> dict[str, Any]:
    """Everything ``report.html.j2`` shows: the model card, plots, tables, warnings and cards."""
    image_shape, names, X_eval = est.image_shape_, list(est.feature_names_), ev.X_eval
    n_grid = min(10 if image_shape is not None else 8, len(X_eval))
    grid_idx = np.linspace(0, len(X_eval) - 1, n_grid).astype(int) if n_grid else np.array([], dtype=int)
    lmap = explain.latent_map(est, X_eval, color=ev.labels, max_samples=max_samples)
    ratio = sum(lmap.explained_variance_ratio[:2])
    history = est.history_
    latent_rows = [
        {
            "index": i,
            "active": f"{ev.density[i]:.1%}",
            "std": _fmt(float(ev.std[i])),
            "dead": bool(ev.dead[i]),
            "collapsed": bool(ev.collapsed[i]),
        }
        for i in order[:MAX_TABLE_LATENTS]
    ]
    return {
        "run_name": run_dir.resolve().name,
        "model_card": _model_card(est, dataset, ev),
        "module_repr": str(est.module_),
        "curves": plots.training_curves(history.records, history.best_epoch) if history.records else None,
        "grid": plots.reconstruction_grid(
            X_eval[grid_idx], ev.recon[grid_idx], image_shape=image_shape, feature_names=names
        )
        if n_grid
        else None,
        "metric_rows": _metric_rows(ev.entries),
        "n_eval": len(ev.eval_idx),
        "where": ev.where,
        "warnings": warnings,
        "cards": cards,
        "n_latents": ev.n_latents,
        "n_shown": len(cards),
        "image_data": image_shape is not None,
        "latent_table": latent_rows,
        "table_truncated": ev.n_latents > MAX_TABLE_LATENTS,
        "dead_indices": [int(i) for i in np.flatnonzero(ev.dead)],
        "collapsed_indices": [int(i) for i in np.flatnonzero(ev.collapsed)],
        "map": plots.latent_map(lmap.coords, lmap.color, title="codes of the evaluation samples"),
        "map_caption": f"first two principal components of the codes ({ratio:.0%} of their variance)",
        "live": live_context(est, ev, lmap),
        "generation": generation,
    }


def _metrics_doc(
    run_name: str,
    est: Any,
    ev: _Evaluation,
    *,
    warnings: list[dict[str, str]],
    generation: dict | None,
    seconds: float,
    verdict: dict[str, Any] | None = None,
    worst: dict[str, Any] | None = None,
    cards: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The content of ``metrics.json``: every metric and every latent, not only those the page shows."""
    purity = latent_purity(ev.Z, ev.labels)
    writes_top = {c["index"]: c["writes_top"] for c in cards or [] if c.get("writes_top")}
    return {
        "verdict": None if verdict is None else {k: v for k, v in verdict.items() if k != "lines"},
        "lucidae_version": __version__,
        "run": run_name,
        "estimator": type(est).__name__,
        "model": est.model_config_.to_dict(),
        "parameters": parameter_count(est.module_),
        "evaluated_on": ev.where,
        "n_eval": int(len(ev.eval_idx)),
        "metrics": {e["name"]: e["value"] for e in ev.entries},
        "notes": {e["name"]: e["note"] for e in ev.entries},
        "latents": [
            {
                "index": i,
                "active_fraction": float(ev.density[i]),
                "mean": float(ev.Z[:, i].mean()),
                "std": float(ev.std[i]),
                "dead": bool(ev.dead[i]),
                "collapsed": bool(ev.collapsed[i]),
                **({} if purity is None else {"label": purity[i]["label"], "label_purity": purity[i]["purity"]}),
                **({"writes_standardised": writes_top[i]} if i in writes_top else {}),
            }
            for i in range(ev.n_latents)
        ],
        "worst_samples": None
        if worst is None
        else [{"index": w["index"], "label": w["label"], "error": w["error"]} for w in worst["samples"]],
        "warnings": warnings,
        "generation": None
        if generation is None
        else {
            "prior_samples": generation["n_samples"] if generation["sampling"] else 0,
            "prior_seed": 0,
            "interpolation_pairs": [s["pair"] for s in generation["strips"]],
            "interpolation_steps": INTERPOLATION_STEPS,
        },
        "report_seconds": seconds,
    }


def build_report(
    run_dir: str | os.PathLike,
    *,
    dataset: Any = None,
    max_latents: int = MAX_LATENT_CARDS,
    max_samples: int = MAX_EVAL_SAMPLES,
) -> Path:
    """Write ``report.html`` and ``metrics.json`` into a run folder and return the page's path.

    Parameters
    ----------
    run_dir : path-like
        A folder written by ``lucidae train`` (model files and ``run.json``).
    dataset : Dataset, optional
        The data the run was trained on; by default it is loaded from the spec in
        ``run.json`` (a built-in name or a path).
    max_latents : int, default=24
        Latent cards to draw, most variable first; every latent is still listed in a
        table and in ``metrics.json``.
    max_samples : int, default=2000
        Evaluation samples used at most (a fixed random subset beyond that).

    Returns
    -------
    Path
        ``run_dir/report.html``.

    Raises
    ------
    CorruptFileError
        When the model files or ``run.json`` are damaged.
    DataError
        When the data cannot be found or does not fit the model.

    Examples
    --------
    >>> build_report("runs/digits")  # doctest: +SKIP
    PosixPath('runs/digits/report.html')
    """
    start = time.perf_counter()
    run_dir = Path(run_dir)
    est, run, dataset = _load_run(run_dir, dataset)
    if max_latents < 1:
        raise DataError(f"max_latents={max_latents} is invalid: expected an integer >= 1.")

    ev = _evaluate(est, dataset, run, max_samples)
    warnings = _warnings(est, ev)
    order = _latent_order(est, ev)
    cards = _latent_cards(est, ev, order[:max_latents])
    generation = _generation(est, ev.X_eval, ev.labels, ev.eval_idx)
    context = _page_context(
        run_dir,
        est,
        dataset,
        ev,
        order=order,
        cards=cards,
        warnings=warnings,
        generation=generation,
        max_samples=max_samples,
    )
    verdict, worst = _verdict(est, ev), _worst_samples(est, ev)
    context.update(verdict=verdict, worst=worst)

    atomic_write(run_dir / REPORT_FILE, render("report.html.j2", context))
    doc = _metrics_doc(
        context["run_name"], est, ev, warnings=warnings, generation=generation, seconds=time.perf_counter() - start,
        verdict=verdict, worst=worst, cards=cards,
    )  # fmt: skip
    write_json(run_dir / METRICS_FILE, json_safe(doc))
    return run_dir / REPORT_FILE


def json_safe(value: Any) -> Any:
    """Replace NaN and infinities (not JSON) by None, recursively."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def render(template: str, context: dict[str, Any]) -> str:
    """Render one of the package's templates with autoescaping on.

    Examples
    --------
    >>> "&lt;b&gt;" in render("sweep.html.j2", {"title": "<b>", "plots": [], "runs": [], "notes": [],
    ...                                          "skipped": [], "measures": []})
    True
    """
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "templates")),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env.get_template(template).render(**context)
