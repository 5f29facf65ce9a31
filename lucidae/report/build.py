"""``build_report(run_dir)``: one self-contained HTML page and a metrics.json for a trained run.

A run folder is what ``lucidae train`` (or ``lucidae demo``) writes: the model
(``model.safetensors`` + ``config.json``) and ``run.json`` with the data spec and the
indices of the held-out samples. The report evaluates the model on those held-out
samples, so every number in it is one the model never trained on.

The page has no external references at all: images are inline base64 PNGs, the CSS is
inline, there is no script, and a Content-Security-Policy forbids loading anything
else. Every user-given string (run name, feature names, data description) goes
through Jinja2's autoescaping.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from lucidae._version import __version__
from lucidae.errors import DataError
from lucidae.io import read_run_record, write_json
from lucidae.report import plots
from lucidae.report.evidence import dead_mask, parameter_count, summary_entries

REPORT_FILE = "report.html"
"""Name of the page written into the run folder."""
METRICS_FILE = "metrics.json"
"""Name of the machine-readable metrics written beside the page."""
RUN_FILE = "run.json"
"""The run record written by ``lucidae train``: data spec, held-out indices, metrics."""

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


def read_run(run_dir: Path) -> dict[str, Any]:
    """Read ``run.json`` of a run folder, or return ``{}`` when there is none.

    Examples
    --------
    >>> import tempfile
    >>> read_run(Path(tempfile.mkdtemp()))
    {}
    """
    return read_run_record(run_dir, RUN_FILE)


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


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


def _eval_split(run: dict[str, Any], n_samples: int) -> tuple[np.ndarray, np.ndarray, bool]:
    """Held-out and training indices; ``held_out`` is False when the run kept nothing back."""
    if "test_rows" in run:  # a streamed file: the held-out rows are one run at its end
        test = np.arange(*run["test_rows"], dtype=np.int64)
    else:
        test = np.asarray(run.get("test_indices") or [], dtype=np.int64)
    if test.size and (test.min() < 0 or test.max() >= n_samples):
        raise DataError(
            f"run.json lists held-out indices up to {int(test.max())}, but the data has {n_samples} samples. "
            "The data changed since training; train the run again."
        )
    mask = np.zeros(n_samples, dtype=bool)
    mask[test] = True
    train = np.flatnonzero(~mask)
    if test.size:
        return test, train, True
    return np.arange(n_samples), train, False


def _subsample(idx: np.ndarray, limit: int) -> np.ndarray:
    if len(idx) <= limit:
        return idx
    return np.sort(np.random.default_rng(0).choice(idx, size=limit, replace=False))


def _pca_fvu(X_train_s: np.ndarray, X_eval_s: np.ndarray, k: int) -> float | None:
    from sklearn.decomposition import PCA

    from lucidae.metrics import fvu

    k = min(k, X_train_s.shape[0], X_train_s.shape[1])
    if k < 1 or X_train_s.shape[0] < 2:
        return None
    pca = PCA(k, random_state=0).fit(X_train_s)
    return _finite_or_none(fvu(X_eval_s, pca.inverse_transform(pca.transform(X_eval_s))))


def _warnings(
    est: Any,
    *,
    n_latents: int,
    n_dead: int,
    n_collapsed: int,
    explained: float | None,
    train_fvu: float | None,
    test_fvu: float | None,
    held_out: bool,
    X_eval_raw: np.ndarray,
    X_eval_s: np.ndarray,
) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []

    def add(title: str, text: str) -> None:
        out.append({"title": title, "text": text})

    if not held_out:
        add(
            "No held-out data",
            "This run kept no samples back, so every number here is measured on data the model trained on "
            "and flatters it. Train with --test-fraction above 0.",
        )
    if n_dead:
        add(
            "Dead latents",
            f"{n_dead} of {n_latents} latents never change over the evaluation data: they cost parameters and "
            "explain nothing. Use a smaller latent_dim, a weaker sparsity penalty, or a model that revives "
            "dead latents (TopK with AuxK).",
        )
    if n_collapsed:
        from lucidae.metrics import COLLAPSE_VARIANCE

        beta = getattr(est, "beta", None)
        everything = "every latent" if n_collapsed == n_latents else f"{n_collapsed} of {n_latents} latents"
        add(
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
            add(
                "Overfitting",
                f"The validation loss ended {rise:.0%} above its best (epoch {best + 1}) while the training loss "
                f"kept falling: the model began to memorise its training samples.{kept} Fewer epochs, more data, "
                "a smaller model or weight decay help.",
            )
    if held_out and train_fvu is not None and test_fvu is not None and test_fvu > 1.5 * train_fvu + 0.02:
        add(
            "Generalisation gap",
            f"Held-out FVU {test_fvu:.3f} is much worse than the training FVU {train_fvu:.3f}: the model "
            "reconstructs what it has seen better than new samples.",
        )
    output = est.model_config_.output_activation
    if output in ("sigmoid", "tanh") and X_eval_s.size:
        low = 0.0 if output == "sigmoid" else -1.0
        outside = float(((X_eval_s < low - 0.01) | (X_eval_s > 1.01)).mean())
        if outside > OUT_OF_RANGE_SHARE:
            add(
                "Scaling mismatch",
                f"{outside:.1%} of the evaluation values fall outside [{low:g}, 1] after the scaling fitted at "
                f"training time, but the {output} output cannot produce them. The evaluation data is not on the "
                "scale the model was trained on; check its units, or train with output_activation='linear'.",
            )
    if est.scaler_.kind == "standard" and X_eval_s.size:
        drift = float(np.abs(X_eval_s.mean(axis=0)).max())
        if drift > 1.0:
            add(
                "Scaling mismatch",
                f"A feature's evaluation mean lies {drift:.1f} training standard deviations from its training "
                "mean: the evaluation data differs from the training data.",
            )
    if X_eval_raw.size and X_eval_raw.dtype != np.uint8:
        lo, hi = float(np.min(X_eval_raw)), float(np.max(X_eval_raw))
        if 0.0 <= lo and 0.0 < hi <= 1.0 / 255.0 + 1e-6:
            add(
                "Scaling mismatch",
                f"All values lie in [0, {hi:.3g}]: the data looks divided by 255 twice. Pass it as loaded.",
            )
    if explained is not None and explained < LOW_EXPLAINED_VARIANCE:
        add(
            "Low explained variance",
            f"The model explains only {explained:.1%} of the variance of held-out data. Its latents describe a "
            "blurry average more than the samples; train longer, widen the code, or loosen the constraints.",
        )
    return out


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
    """The Generation section: prior samples (VAEs) and interpolation strips, or None for tabular data."""
    from lucidae.applications.generate import interpolation, samples

    image_shape = est.image_shape_
    if image_shape is None or len(X_eval) < 2:
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
    from lucidae import explain
    from lucidae.datasets import load_dataset
    from lucidae.estimators import load
    from lucidae.metrics import activation_density, collapsed_latents, fvu
    from lucidae.models.vae import VariationalAutoEncoder

    start = time.perf_counter()
    run_dir = Path(run_dir)
    est = load(run_dir)
    run = read_run(run_dir)
    if dataset is None:
        spec = (run.get("data") or {}).get("data")
        if run.get("data_path") and Path(run["data_path"]).exists() and not Path(str(spec)).exists():
            spec = run["data_path"]
        if not spec:
            raise DataError(
                f"{run_dir} has no {RUN_FILE} naming its data, so the report cannot evaluate the model. "
                "Train with `lucidae train`, or pass the data (build_report(run_dir, dataset=...) or --data)."
            )
        dataset = load_dataset(spec)
    if dataset.n_features != est.n_features_in_:
        raise DataError(
            f"The data has {dataset.n_features} features but the model in {run_dir} was trained on "
            f"{est.n_features_in_}. Pass the data the run was trained on."
        )
    if max_latents < 1:
        raise DataError(f"max_latents={max_latents} is invalid: expected an integer >= 1.")

    eval_idx, train_idx, held_out = _eval_split(run, dataset.n_samples)
    eval_idx = _subsample(eval_idx, max_samples)
    train_sub = _subsample(train_idx, max_samples)
    X_eval = np.asarray(dataset.X[eval_idx])
    labels = None if dataset.y is None else np.asarray(dataset.y)[eval_idx]
    factors = None if dataset.factors is None else np.asarray(dataset.factors)[eval_idx]
    recon = est.reconstruct(X_eval)  # (n, features) original units
    X_eval_s = est.scaler_.transform(X_eval)  # (n, features) model space
    Z = est.transform(X_eval)  # (n, latent)
    n_latents = Z.shape[1]

    entries = summary_entries(est, X_eval, y=labels, factors=factors)
    values = {e["name"]: e["value"] for e in entries}
    test_fvu = _finite_or_none(values.get("fvu"))
    train_fvu = None
    if held_out and len(train_sub) >= 2:
        X_train = np.asarray(dataset.X[train_sub])
        X_train_s = est.scaler_.transform(X_train)
        train_fvu = _finite_or_none(fvu(X_train_s, est.scaler_.transform(est.reconstruct(X_train))))
        entries.append(
            {
                "name": "train_fvu",
                "group": "fidelity",
                "value": train_fvu,
                "note": f"on {len(train_sub)} training samples {train_fvu:.1%} of the variance is lost; far below "
                "the held-out FVU would mean the model memorised its training data.",
            }
        )
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
    dead = dead_mask(Z)
    collapsed = np.zeros_like(dead)
    if isinstance(est.module_, VariationalAutoEncoder) and len(Z) >= 2:
        collapsed[collapsed_latents(Z)] = True
        collapsed &= ~dead
    inactive = dead | collapsed  # no traversal or top samples: they would show nothing
    density = activation_density(Z)  # (latent,)
    std = Z.std(axis=0)  # (latent,)
    where = "held-out" if held_out else "training"
    warnings = _warnings(
        est,
        n_latents=n_latents,
        n_dead=int(dead.sum()),
        n_collapsed=int(collapsed.sum()),
        explained=values.get("explained_variance"),
        train_fvu=train_fvu,
        test_fvu=test_fvu,
        held_out=held_out,
        X_eval_raw=X_eval,
        X_eval_s=X_eval_s,
    )

    image_shape = est.image_shape_
    names = list(est.feature_names_)
    ranking = [int(i) for i in explain.rank_latents(est, X_eval)]  # most variable first
    order = [i for i in ranking if not inactive[i]] + [i for i in ranking if inactive[i]]
    shown = order[:max_latents]
    alive = [i for i in shown if not inactive[i]]
    writes = {w.latent: w for w in explain.latent_writes(est, X_eval, latents=alive)} if alive else {}
    reads = {r.latent: r for r in explain.latent_reads(est, X_eval, latents=alive, n_top=8)} if alive else {}
    cards = []
    for i in shown:
        z = Z[:, i]
        card: dict[str, Any] = {
            "index": i,
            "dead": bool(dead[i]),
            "collapsed": bool(collapsed[i]),
            "variance": _fmt(float(std[i]) ** 2),
            "active": f"{density[i]:.1%}",
            "mean": _fmt(float(z.mean())),
            "std": _fmt(float(std[i])),
            "density": plots.activation_density(z),
            "range": f"{_fmt(float(z.min()))} to {_fmt(float(z.max()))}",
            "top_images": None,
            "top_table": None,
        }
        if not inactive[i]:
            trav = explain.traverse(est, X_eval, i, quantile_range=(0.01, 0.99), base="mean")
            card["steps"] = ", ".join(_fmt(float(v)) for v in trav.values)
            card["writes"] = plots.latent_writes(writes[i].direction, image_shape=image_shape, feature_names=names)
            card["traversal"] = plots.latent_traversal(
                trav.recon, trav.values, image_shape=image_shape, feature_names=names
            )
            top = reads[i].top_indices
            if image_shape is not None:
                card["top_images"] = plots.sample_strip(X_eval[top], image_shape)
            else:
                cols = [f["index"] for f in writes[i].top_features[: min(6, len(names))]]
                card["top_table"] = {
                    "columns": [names[c] for c in cols],
                    "rows": [
                        {"value": _fmt(float(z[r])), "cells": [_fmt(float(X_eval[r, c])) for c in cols]}
                        for r in top[:5]
                    ],
                }
        cards.append(card)

    n_grid = min(10 if image_shape is not None else 8, len(X_eval))
    grid_idx = np.linspace(0, len(X_eval) - 1, n_grid).astype(int) if n_grid else np.array([], dtype=int)
    lmap = explain.latent_map(est, X_eval, color=labels, max_samples=max_samples)
    ratio = sum(lmap.explained_variance_ratio[:2])
    map_caption = f"first two principal components of the codes ({ratio:.0%} of their variance)"
    history = est.history_
    records = history.records
    params = est.get_params(deep=False)
    train_keys = ("epochs", "batch_size", "lr", "lr_schedule", "weight_decay", "validation_fraction", "patience")
    card_rows = [
        ("Estimator", f"{type(est).__name__} (model family {est.model_config_.model!r})"),
        ("Architecture", _architecture(est)),
        (
            "Activations",
            f"hidden {est.model_config_.activation}, latent {est.model_config_.latent_activation}, "
            f"output {est.model_config_.output_activation}",
        ),
        ("Parameters", f"{parameter_count(est.module_):,}"),
        ("Data", f"{dataset.name}: {dataset.description}".strip()),
        (
            "Samples",
            f"{dataset.n_samples:,} in all; {len(eval_idx):,} {where} samples evaluated; "
            f"{dataset.n_features:,} features" + (f", images {tuple(image_shape)}" if image_shape else ""),
        ),
        ("Scaling", f"{est.scaler_.kind} (fitted on the training data, stored with the model)"),
        ("Training settings", ", ".join(f"{k}={params[k]}" for k in train_keys if k in params)),
        (
            "Training",
            f"{len(records)} epochs in {est.fit_seconds_:.1f} s"
            + (f"; weights of epoch {history.best_epoch} kept" if history.best_epoch else "")
            + ("; stopped early" if history.stopped_early else ""),
        ),
        ("lucidae", __version__),
    ]
    latent_rows = [
        {
            "index": i,
            "active": f"{density[i]:.1%}",
            "std": _fmt(float(std[i])),
            "dead": bool(dead[i]),
            "collapsed": bool(collapsed[i]),
        }
        for i in order[:MAX_TABLE_LATENTS]
    ]
    context = {
        "run_name": run_dir.resolve().name,
        "model_card": card_rows,
        "module_repr": str(est.module_),
        "curves": plots.training_curves(records, history.best_epoch) if records else None,
        "grid": plots.reconstruction_grid(
            X_eval[grid_idx], recon[grid_idx], image_shape=image_shape, feature_names=names
        )
        if n_grid
        else None,
        "metric_rows": _metric_rows(entries),
        "n_eval": len(eval_idx),
        "where": where,
        "warnings": warnings,
        "cards": cards,
        "n_latents": n_latents,
        "n_shown": len(shown),
        "image_data": image_shape is not None,
        "latent_table": latent_rows,
        "table_truncated": n_latents > MAX_TABLE_LATENTS,
        "dead_indices": [int(i) for i in np.flatnonzero(dead)],
        "collapsed_indices": [int(i) for i in np.flatnonzero(collapsed)],
        "map": plots.latent_map(lmap.coords, lmap.color, title="codes of the evaluation samples"),
        "map_caption": map_caption,
        "generation": _generation(est, X_eval, labels, eval_idx),
    }
    html = render("report.html.j2", context)
    _atomic_write_text(run_dir / REPORT_FILE, html)
    metrics_doc = {
        "lucidae_version": __version__,
        "run": context["run_name"],
        "estimator": type(est).__name__,
        "model": est.model_config_.to_dict(),
        "parameters": parameter_count(est.module_),
        "evaluated_on": where,
        "n_eval": int(len(eval_idx)),
        "metrics": {e["name"]: e["value"] for e in entries},
        "notes": {e["name"]: e["note"] for e in entries},
        "latents": [
            {
                "index": i,
                "active_fraction": float(density[i]),
                "mean": float(Z[:, i].mean()),
                "std": float(std[i]),
                "dead": bool(dead[i]),
                "collapsed": bool(collapsed[i]),
            }
            for i in range(n_latents)
        ],
        "warnings": warnings,
        "generation": None
        if context["generation"] is None
        else {
            "prior_samples": context["generation"]["n_samples"] if context["generation"]["sampling"] else 0,
            "prior_seed": 0,
            "interpolation_pairs": [s["pair"] for s in context["generation"]["strips"]],
            "interpolation_steps": INTERPOLATION_STEPS,
        },
        "report_seconds": time.perf_counter() - start,
    }
    write_json(run_dir / METRICS_FILE, _json_safe(metrics_doc))
    return run_dir / REPORT_FILE


def _json_safe(value: Any) -> Any:
    """Replace NaN and infinities (not JSON) by None, recursively."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
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
