"""``run_sweep``: train a grid over the levers and chart what each costs and buys.

Fidelity is the held-out FVU; interpretability is measured by L0 (non-zero latents per
sample), weight sparsity and, where the data has known factors, MIG. Every run is a
normal run folder (model, ``run.json``, ``report.html``) named by the hash of its
configs, so a re-run finds and reuses the runs that already finished, and a sweep that
was interrupted resumes where it stopped.

The grid
--------
* architecture: every combination of ``latent_dims`` x ``depths`` x ``widths`` x
  ``activations`` with the classic dense model ("linear" makes every activation the
  identity: the code then spans the PCA subspace);
* regularisation and sparsity, each for every latent size at the first depth and width
  with ReLU: weight decay (``weight_decays``), the "sparse" family's L1 penalty on the
  code (``l1_coefficients``), the "topk" family's ``k`` (``topk_ks``) and the "vae"
  family's ``beta`` (``betas``);
* pruning: every ReLU architecture run is also pruned at each of ``prune_amounts``
  (:func:`lucidae.prune.prune` on its training rows: that share of weights zeroed, the
  units left constant removed, then ``prune_fine_tune_epochs`` of training with the
  pruned weights held at zero), and each pruned model is a point of its own, with its own
  folder and report, measured on the same held-out samples.

Points whose model family is not installed, or whose settings are invalid (a TopK ``k``
above the code size), are skipped and listed on the page.

The page
--------
One inline SVG chart per measure (no script, nothing loaded): each run is a marker with
its family's colour and shape (:func:`family`), a link to its report and a hover text;
the Pareto front is ringed and joined; PCA's held-out FVU at every code size
(:func:`pca_reference`, on the same held-out rows as the runs) is the reference line a
linear map sets.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
from sklearn.decomposition import PCA

from lucidae.config import DataConfig, ModelConfig, SweepConfig, TrainConfig
from lucidae.datasets import load_dataset
from lucidae.errors import ConfigError, LucidaeError
from lucidae.estimators import load
from lucidae.io import RUN_FILE, atomic_write, read_run_record, write_json
from lucidae.metrics import fvu as fvu_of
from lucidae.models import MODELS
from lucidae.prune import prune
from lucidae.report import plots
from lucidae.report.build import MAX_EVAL_SAMPLES, METRICS_FILE, REPORT_FILE, build_report, json_safe, render
from lucidae.runs import estimator_from_configs, eval_split, fit_run

SWEEP_PAGE = "sweep.html"
"""The sweep's page, written into its output folder."""
SWEEP_JSON = "sweep.json"
"""Every run's levers and measures, machine-readable."""


@dataclass
class GridPoint:
    """One run of the sweep: the levers it sets and the configs that train it."""

    levers: dict[str, Any]
    """Lever name to value, for the table and the plots."""
    model: ModelConfig
    """Architecture (``input_dim`` left at 0; it comes from the data)."""
    train: TrainConfig
    """Training settings."""

    @property
    def key(self) -> str:
        """Hash of the configs: the same settings always map to the same run folder."""
        blob = json.dumps({"model": self.model.to_dict(), "train": self.train.to_dict()}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:10]

    @property
    def name(self) -> str:
        """Folder name: a readable summary of the levers, then the hash."""
        parts = [self.model.model, f"z{self.model.latent_dim}"]
        for k, v in self.levers.items():
            if k not in ("family", "latent_dim"):
                parts.append(f"{k}{v}")
        text = "-".join(str(p) for p in parts)
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in text)
        return f"{safe}-{self.key}"


def grid(cfg: SweepConfig, families: Any = None) -> tuple[list[GridPoint], list[str]]:
    """The sweep's runs, and a sentence for every point skipped (unknown family, invalid setting).

    Parameters
    ----------
    cfg : SweepConfig
        The levers' values.
    families : collection of str, optional
        Model families available; default: the keys of :data:`lucidae.models.MODELS`.

    Examples
    --------
    >>> points, skipped = grid(SweepConfig(latent_dims=(4,), depths=(1,), activations=("relu",),
    ...                                    weight_decays=(), l1_coefficients=(), topk_ks=(8,), betas=()))
    >>> [p.model.model for p in points], skipped[0][:35]
    (['dense'], 'topk latent_dim=4 k=8: k=8 is inval')
    """

    families = set(MODELS if families is None else families)
    cfg.validate()
    train = TrainConfig(epochs=cfg.epochs, random_state=cfg.random_state, verbose=0)
    points: list[GridPoint] = []
    skipped: list[str] = []
    seen: set[str] = set()

    def add(levers: dict[str, Any], train_cfg: TrainConfig = train, **model: Any) -> None:
        family = model.get("model", "dense")
        if family not in families:
            skipped.append(f"{family} ({levers}): the model family {family!r} is not available in this lucidae.")
            return
        unknown = [k for k in model if k not in {f.name for f in fields(ModelConfig)}]
        if unknown:
            skipped.append(f"{family} ({levers}): this lucidae's ModelConfig has no field {unknown[0]!r}.")
            return
        try:
            mc = ModelConfig(**model)
            mc.validate()
        except ConfigError as err:
            label = " ".join(f"{k}={v}" for k, v in levers.items() if k != "family")
            skipped.append(f"{family} {label}: {err}")
            return
        point = GridPoint({"family": family, **levers}, mc, train_cfg)
        if point.key not in seen:
            seen.add(point.key)
            points.append(point)

    for latent, depth, width, act in itertools.product(cfg.latent_dims, cfg.depths, cfg.widths, cfg.activations):
        hidden = (width,) * depth
        acts = (
            {"activation": "linear", "latent_activation": "linear", "output_activation": "linear"}
            if act == "linear"
            else {"activation": "relu", "latent_activation": "relu", "output_activation": "sigmoid"}
        )
        levers = {"latent_dim": latent, "depth": depth, "act": act}
        if depth:
            levers["width"] = width
        add(levers, hidden_dims=hidden, latent_dim=latent, **acts)
    base_hidden = (cfg.widths[0],) * cfg.depths[0]
    for latent in cfg.latent_dims:
        common = {"hidden_dims": base_hidden, "latent_dim": latent}
        for wd in cfg.weight_decays:
            if wd > 0:
                wd_train = TrainConfig(**{**train.to_dict(), "weight_decay": wd})
                add({"latent_dim": latent, "wd": wd}, wd_train, **common)
        for l1 in cfg.l1_coefficients:
            add({"latent_dim": latent, "l1": l1}, model="sparse", l1_coefficient=l1, **common)
        for k in cfg.topk_ks:
            add({"latent_dim": latent, "k": k}, model="topk", k=k, **common)
        for beta in cfg.betas:
            add({"latent_dim": latent, "beta": beta}, model="vae", beta=beta, **common)
    return points, skipped


def pareto_front(cost_a: np.ndarray, cost_b: np.ndarray) -> np.ndarray:
    """Mask of the points no other point dominates, both costs to be minimised.

    A point is dominated when another is at least as good on both costs and strictly
    better on one. Points with a non-finite cost are never on the front.

    Examples
    --------
    >>> pareto_front(np.array([1.0, 2.0, 3.0, 2.0]), np.array([3.0, 1.0, 0.5, 2.0]))
    array([ True,  True,  True, False])
    """
    a, b = np.asarray(cost_a, dtype=np.float64), np.asarray(cost_b, dtype=np.float64)
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = np.where(ok, a, np.inf), np.where(ok, b, np.inf)
    # (i, j): point j dominates point i. Quadratic, and a sweep has tens of points.
    no_worse = (a[None, :] <= a[:, None]) & (b[None, :] <= b[:, None])
    better = (a[None, :] < a[:, None]) | (b[None, :] < b[:, None])
    dominated = (no_worse & better & ok[None, :]).any(axis=1)
    return ok & ~dominated


MEASURES: dict[str, tuple[str, int, str]] = {
    "l0": (
        "L0 (non-zero latents per sample)",
        1,
        "Fewer non-zero latents per sample: each sample has a shorter explanation.",
    ),
    "near_zero_weights": (
        "weight sparsity (share of weights within 1e-3 of zero)",
        -1,
        "More near-zero weights: each latent is tied to fewer input features.",
    ),
    "mig": ("MIG (against known factors)", -1, "Higher MIG: each known factor lives in one latent."),
}
"""Measure key in metrics.json to (axis label, +1 if lower is better else -1, one sentence)."""


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_sweep(
    cfg: SweepConfig,
    out: str | os.PathLike,
    *,
    log: Callable[[str], None] = _stderr,
    families: Any = None,
) -> Path:
    """Train (or reuse) every run of the grid, report each, and write ``sweep.html``.

    Parameters
    ----------
    cfg : SweepConfig
        The grid.
    out : path-like
        Folder for the runs (one sub-folder each), ``sweep.html`` and ``sweep.json``.
    log : callable, optional
        Receives one progress line per run; default prints to stderr.
    families : collection of str, optional
        Model families to use; default every family in :data:`lucidae.models.MODELS`.

    Returns
    -------
    Path
        ``out/sweep.html``.

    Examples
    --------
    >>> run_sweep(SweepConfig(), "runs/sweep")  # doctest: +SKIP
    PosixPath('runs/sweep/sweep.html')
    """

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    points, skipped = grid(cfg, families)
    data_cfg = DataConfig(data=cfg.data, test_fraction=cfg.test_fraction)
    data_cfg.validate()
    dataset = load_dataset(cfg.data)
    for line in skipped:
        log(f"skipped: {line}")
    rows: list[dict[str, Any]] = []
    pruned_per_point = [cfg.prune_amounts if _prunable(point) else () for point in points]
    total = len(points) + sum(len(a) for a in pruned_per_point)
    number = 0

    def measure(
        name: str, levers: dict[str, Any], run_dir: Path, make: Callable[[], None], fresh: bool, made: str
    ) -> bool:
        """Make the run (unless it is there and not ``fresh``), report it and add its row; False if it failed."""
        nonlocal number
        number += 1
        prefix = f"[{number}/{total}] {name}"
        start = time.perf_counter()
        status = "reused"
        try:
            if fresh or not ((run_dir / "model.safetensors").is_file() and (run_dir / "run.json").is_file()):
                make()
                status = made
            metrics_path = run_dir / METRICS_FILE
            if (
                status == made
                or not metrics_path.is_file()
                or not (run_dir / REPORT_FILE).is_file()
                or metrics_path.stat().st_mtime < (run_dir / "model.safetensors").stat().st_mtime
            ):
                build_report(run_dir, dataset=dataset, max_latents=cfg.max_latents)
            doc = json.loads(metrics_path.read_text(encoding="utf-8"))
        except LucidaeError as err:
            log(f"{prefix}: failed: {err}")
            skipped.append(f"{name}: training or reporting failed: {err}")
            return False
        m = doc.get("metrics", {})
        seconds = json.loads((run_dir / "config.json").read_text(encoding="utf-8")).get("fit_seconds", 0.0)
        rows.append(
            {
                "name": name,
                "levers": levers,
                "family": family(levers),
                "status": status,
                "fit_seconds": seconds,
                "fvu": m.get("fvu"),
                "l0": m.get("l0"),
                "near_zero_weights": m.get("near_zero_weights"),
                "mig": m.get("mig"),
                "dead_latents": m.get("n_dead"),
                "collapsed_latents": m.get("n_collapsed"),  # VAE runs only
                "warnings": [w["title"] for w in doc.get("warnings", [])],
            }
        )
        fvu_text = "n/a" if m.get("fvu") is None else f"{m['fvu']:.4f}"
        log(f"{prefix}: {status} in {time.perf_counter() - start:.1f} s, held-out FVU {fvu_text}, L0 {m.get('l0'):.2f}")
        return True

    tuned = cfg.prune_fine_tune_epochs
    for point, amounts in zip(points, pruned_per_point):
        run_dir = out / point.name

        def train(point: GridPoint = point, run_dir: Path = run_dir) -> None:
            # the sweep's own axes hold even where a family has other defaults
            axes = {"latent_dim", "hidden_dims", "activation", "latent_activation", "epochs", *point.levers}
            est = estimator_from_configs(point.model, point.train, data_cfg, explicit=axes)
            fit_run(est, dataset, data_cfg, run_dir, seed=cfg.random_state, quiet=True)

        if not measure(point.name, point.levers, run_dir, train, fresh=False, made="trained"):
            continue
        for amount in amounts:
            name = f"{point.name}-prune{amount:g}" + (f"-ft{tuned}" if tuned else "")
            pruned = out / name / "model.safetensors"
            # a parent trained again since its pruned copy was made is pruned again
            stale = pruned.is_file() and pruned.stat().st_mtime < (run_dir / "model.safetensors").stat().st_mtime
            measure(
                name,
                {**point.levers, "prune": amount},
                out / name,
                lambda amount=amount, name=name, run_dir=run_dir: _prune_run(
                    run_dir, out / name, amount, dataset, tuned
                ),
                fresh=stale,
                made="pruned",
            )
    pca, pca_notes = pca_reference(out, rows, dataset, cfg.latent_dims)
    return write_sweep_page(out, rows, skipped, title=f"{dataset.name}, {len(rows)} runs", pca=pca, notes=pca_notes)


def _prunable(point: GridPoint) -> bool:
    """Whether the sweep also prunes this point: the ReLU runs of the architecture grid."""
    return point.model.model == "dense" and point.levers.get("act") == "relu"


def _prune_run(parent: Path, run_dir: Path, amount: float, dataset: Any, fine_tune_epochs: int) -> None:
    """Prune (and fine-tune) the model in ``parent`` on its training rows; save it with the parent's split."""
    import shutil

    _, train_rows, _ = eval_split(read_run_record(parent), len(dataset.X))
    result = prune(load(parent), np.asarray(dataset.X[train_rows]), amount=amount, fine_tune_epochs=fine_tune_epochs)
    result.estimator.save(run_dir)
    shutil.copy2(parent / RUN_FILE, run_dir / RUN_FILE)  # the same held-out samples


def family(levers: dict[str, Any]) -> str:
    """The family a run is drawn as on the sweep page: its model family, or which lever of the dense model it turns.

    Examples
    --------
    >>> family({"family": "dense", "latent_dim": 8, "act": "linear"}), family({"family": "topk", "k": 4})
    ('linear', 'TopK')
    >>> family({"family": "dense", "act": "relu", "prune": 0.5}), family({"latent_dim": 3})
    ('pruned', 'dense ReLU')
    """
    name = levers.get("family", "dense")
    if "prune" in levers:
        return "pruned"
    if name == "dense":
        if levers.get("act") == "linear":
            return "linear"
        return "L2 weight decay" if "wd" in levers else "dense ReLU"
    return {"sparse": "sparse L1", "topk": "TopK", "vae": "VAE"}.get(name, str(name))


def _subsample(idx: np.ndarray, limit: int) -> np.ndarray:
    # the same fixed subset build_report evaluates, so PCA and the runs are measured on the same rows
    if len(idx) <= limit:
        return idx
    return np.sort(np.random.default_rng(0).choice(idx, size=limit, replace=False))


def pca_fvus(X_train: np.ndarray, X_eval: np.ndarray, sizes: Any) -> list[dict[str, Any]]:
    """Held-out FVU of PCA fitted on ``X_train`` with each of ``sizes`` components, from one decomposition.

    The first ``k`` components of one PCA are the PCA with ``k`` components, so a single
    fit with the largest size serves every code size.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 3)) * [3.0, 1.0, 0.0]
    >>> [round(p["fvu"], 2) for p in pca_fvus(X[:150], X[150:], [1, 2])]
    [0.19, 0.0]
    """
    sizes = sorted({int(k) for k in sizes})
    top = min(max(sizes), X_train.shape[0], X_train.shape[1])
    if top < 1 or X_train.shape[0] < 2 or not len(X_eval):
        return []
    pca = PCA(top, svd_solver="full").fit(X_train)
    centred = X_eval - pca.mean_
    out = []
    for k in sizes:
        comps = pca.components_[: min(k, top)]  # (k, features)
        recon = centred @ comps.T @ comps + pca.mean_
        value = float(fvu_of(X_eval, recon))
        out.append({"latent_dim": k, "fvu": value if np.isfinite(value) else None})
    return out


def pca_reference(
    out: Path, rows: list[dict[str, Any]], dataset: Any, latent_dims: Any, *, max_samples: int = MAX_EVAL_SAMPLES
) -> tuple[dict[str, Any] | None, list[str]]:
    """PCA's held-out FVU at each code size, on the runs' held-out rows and in their scaled space.

    The split is the one every run of the sweep shares (``run.json`` of the first run);
    the rows are the fixed subset of at most ``max_samples`` held-out (and training)
    samples that each run's report evaluates, so at code size ``k`` this is the
    ``pca_fvu (k=...)`` of every report. FVU depends on the scaling, so the data is
    scaled as most runs scale it; a note names the runs scaled otherwise.

    Returns
    -------
    dict or None
        ``{"scaling": kind, "points": [{"latent_dim": k, "fvu": value}, ...]}``; None without runs
        or held-out samples.
    list of str
        Notes for the page.

    Examples
    --------
    >>> pca_reference(Path("."), [], None, (8,))
    (None, [])
    """
    if not rows:
        return None, []
    # "auto" scaling depends on the data and the output activation only: one model of each tells the kind
    kinds: dict[str, list[str]] = {}
    scalers: dict[str, Any] = {}
    for r in rows:
        act = json.loads((out / r["name"] / "config.json").read_text(encoding="utf-8"))["model"]["output_activation"]
        if act not in scalers:
            scalers[act] = load(out / r["name"]).scaler_
        kinds.setdefault(scalers[act].kind, []).append(r["name"])
    kind = max(kinds, key=lambda k: len(kinds[k]))
    scaler = next(s for s in scalers.values() if s.kind == kind)
    test, train, held_out = eval_split(read_run_record(out / rows[0]["name"]), len(dataset.X))
    if not held_out:
        return None, ["No PCA reference: the runs kept no samples back."]
    X_eval = scaler.transform(np.asarray(dataset.X[_subsample(test, max_samples)]))
    X_train = scaler.transform(np.asarray(dataset.X[_subsample(train, max_samples)]))
    points = pca_fvus(X_train, X_eval, latent_dims)
    notes = [
        f"{len(names)} runs scale the data otherwise ({other}, for their output activation), so their FVU is not "
        f"measured in quite the same space as the PCA reference ({kind})."
        for other, names in kinds.items()
        if other != kind
    ]
    return {"scaling": kind, "points": points}, notes


def _cost(rows: list[dict[str, Any]], key: str, sign: int) -> np.ndarray:
    return np.array([sign * r[key] if r.get(key) is not None else np.nan for r in rows], dtype=np.float64)


def _hover(row: dict[str, Any], key: str, on_front: list[str]) -> str:
    levers = ", ".join(f"{k}={v}" for k, v in row["levers"].items() if k != "family")
    lines = [
        row["name"],
        f"{row.get('family') or family(row['levers'])}: {levers}",
        f"held-out FVU {row['fvu']:.4f}, {key} {row[key]:.4g}",
    ]
    if on_front:
        lines.append("on the Pareto front of " + ", ".join(on_front))
    lines.append("click to open its report")
    return "\n".join(lines)


def write_sweep_page(
    out: Path,
    rows: list[dict[str, Any]],
    skipped: list[str],
    *,
    title: str,
    pca: dict[str, Any] | None = None,
    notes: list[str] | None = None,
) -> Path:
    """Write ``sweep.html`` and ``sweep.json`` for finished runs (``rows`` as :func:`run_sweep` builds them).

    Parameters
    ----------
    out : Path
        The sweep's folder; each row's ``name`` is a run folder inside it.
    rows : list of dict
        One per run: ``name``, ``levers``, ``fvu``, the measures of :data:`MEASURES` and the rest
        :func:`run_sweep` records.
    skipped : list of str
        Sentences for the grid points not run.
    title : str
        The page's title.
    pca : dict, optional
        :func:`pca_reference`'s reference, drawn on every chart and stored in ``sweep.json``.
    notes : list of str, optional
        More notes for the top of the page.

    Examples
    --------
    >>> import tempfile
    >>> row = {"name": "a", "levers": {"latent_dim": 2}, "status": "trained", "fit_seconds": 1.0, "fvu": 0.5,
    ...        "l0": 2.0, "near_zero_weights": 0.1, "mig": None, "dead_latents": 0, "warnings": []}
    >>> write_sweep_page(Path(tempfile.mkdtemp()), [row], [], title="t",
    ...                  pca={"scaling": "identity", "points": [{"latent_dim": 2, "fvu": 0.4}]}).name
    'sweep.html'
    """

    for r in rows:
        r.setdefault("family", family(r["levers"]))
    fvu = _cost(rows, "fvu", 1)
    groups = [r["family"] for r in rows]
    hrefs = [f"{quote(r['name'])}/{REPORT_FILE}" for r in rows]
    pca_points = [(p["latent_dim"], p["fvu"]) for p in (pca or {}).get("points", []) if p.get("fvu") is not None]
    fronts: dict[str, np.ndarray] = {}
    notes = list(notes or [])
    for key, (_, sign, _) in MEASURES.items():
        cost = _cost(rows, key, sign)
        if (np.isfinite(cost) & np.isfinite(fvu)).any():
            fronts[key] = pareto_front(fvu, cost)
        elif key == "mig":
            notes.append("MIG is not plotted: the data has no known generative factors.")
    plot_ctx = []
    for key, front in fronts.items():
        label, sign, explain = MEASURES[key]
        x = sign * _cost(rows, key, sign)
        usable = np.flatnonzero(np.isfinite(x) & np.isfinite(fvu))
        on = [[k for k in fronts if fronts[k][i]] for i in range(len(rows))]
        svg = plots.pareto_scatter(
            x[usable],
            fvu[usable],
            front[usable],
            xlabel=label,
            groups=[groups[i] for i in usable],
            hrefs=[hrefs[i] for i in usable],
            titles=[_hover(rows[i], key, on[i]) for i in usable],
            pca=pca_points,
            # PCA's code is dense: its k components are k non-zero latents per sample
            pca_x=key == "l0",
        )
        plot_ctx.append({"key": key, "measure": label, "explain": explain, "svg": svg})
    measures = list(fronts)
    styles = plots.family_styles(groups)
    table = []
    for i, r in enumerate(rows):
        color, marker = styles[r["family"]]
        table.append(
            {
                "family": r["family"],
                "marker": plots.marker_svg(marker, 8, 8, 5.5, color),
                "name": r["name"],
                "href": hrefs[i],
                "levers": ", ".join(f"{k}={v}" for k, v in r["levers"].items() if k != "family"),
                "fvu": "n/a" if r["fvu"] is None else f"{r['fvu']:.4f}",
                "cells": ["n/a" if r.get(k) is None else f"{r[k]:.3g}" for k in measures],
                "dead": r.get("dead_latents")
                if not r.get("collapsed_latents")
                else f"{r.get('dead_latents')}, {r['collapsed_latents']} collapsed",
                "pareto": ", ".join(k for k in measures if fronts[k][i]) or "",
                "seconds": f"{r.get('fit_seconds') or 0:.1f}",
            }
        )
    for key, front in fronts.items():
        for i in np.flatnonzero(front):
            if key not in rows[i].setdefault("pareto", []):
                rows[i]["pareto"].append(key)
    if pca_points:
        notes.insert(
            0,
            "Dashed grey: PCA's held-out FVU with k components, for every code size k of the sweep, on the same "
            "held-out samples. A run above the line of its code size reconstructs worse than a linear map.",
        )
    html = render(
        "sweep.html.j2",
        {"title": title, "plots": plot_ctx, "runs": table, "notes": notes, "skipped": skipped, "measures": measures},
    )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / SWEEP_PAGE, html)
    write_json(out / SWEEP_JSON, json_safe({"runs": rows, "skipped": skipped, "pca": pca}))
    return out / SWEEP_PAGE


__all__ = [
    "GridPoint",
    "SweepConfig",
    "family",
    "grid",
    "pareto_front",
    "pca_fvus",
    "pca_reference",
    "run_sweep",
    "write_sweep_page",
]
