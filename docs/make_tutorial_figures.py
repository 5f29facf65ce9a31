"""Draw the tutorial's pictures and measure its numbers: ``python docs/make_tutorial_figures.py``.

Trains every model of ``docs/tutorial.md`` (the classic path: build and train, simplify,
go linear, regularise, go sparse, disentangle), writes a run folder and a report for
each under ``--out`` (default ``runs/tutorial``), then saves into ``docs/tutorial/``:

* ``<step>-recon.png``: ten held-out samples over their reconstructions;
* ``<step>-writes.png``: what the eight most variable latents write (red adds, blue removes);
* ``report-screenshot.png``: the top of the classic model's report (needs chromium);
* ``sweep-l0.png``: FVU against L0 from the default ``lucidae sweep`` (``--no-sweep`` skips it);
* ``numbers.json``: every number the tutorial quotes, and a Markdown table on stdout.

Runs that already exist under ``--out`` are reused, as ``lucidae sweep`` does.
"""

from __future__ import annotations

import argparse
import base64
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from lucidae import AutoEncoder, TopKAutoEncoder, explain, load
from lucidae.config import DataConfig, SweepConfig
from lucidae.datasets import load_digits
from lucidae.datasets.shapes import make_shapes
from lucidae.estimators import VAE
from lucidae.report import build_report, plots
from lucidae.runs import fit_run
from lucidae.sweep import run_sweep

HERE = Path(__file__).parent / "tutorial"

LINEAR = {"activation": "linear", "latent_activation": "linear", "output_activation": "linear"}


def steps() -> list[tuple[str, str, object, str]]:
    """(slug, title, unfitted estimator, dataset) for every step of the tutorial, in order."""
    return [
        ("1-classic", "Build and train", AutoEncoder(hidden_dims=(128,), latent_dim=32), "digits"),
        ("2-simplify", "Simplify", AutoEncoder(hidden_dims=(), latent_dim=8), "digits"),
        ("3-linear", "Go linear", AutoEncoder(hidden_dims=(), latent_dim=8, **LINEAR), "digits"),
        ("4-regularise", "Regularise", AutoEncoder(hidden_dims=(), latent_dim=8, weight_decay=0.1, **LINEAR), "digits"),
        ("5-sparse", "Go sparse", TopKAutoEncoder(latent_dim=32, k=4), "digits"),
        ("6a-shapes-ae", "Disentangle (baseline)", AutoEncoder(hidden_dims=(256,), latent_dim=6, epochs=30), "shapes"),
        ("6b-shapes-vae", "Disentangle", VAE(hidden_dims=(256,), latent_dim=6, beta=4.0, epochs=30), "shapes"),
    ]


def save_uri(uri: str, path: Path) -> None:
    path.write_bytes(base64.b64decode(uri.split(",", 1)[1]))


def screenshot(page: Path, target: Path) -> bool:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("chromium not found: no report screenshot", file=sys.stderr)
        return False
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--window-size=1100,1500", f"--screenshot={target}", page.as_uri()],
            capture_output=True, timeout=180, check=False,
        )  # fmt: skip
    return target.is_file()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/tutorial"))
    parser.add_argument("--no-sweep", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    HERE.mkdir(parents=True, exist_ok=True)
    data = {"digits": load_digits(), "shapes": make_shapes(6000, image_size=32, random_state=0)}
    numbers = {}
    for slug, title, est, data_name in steps():
        ds = data[data_name]
        est.set_params(random_state=0, verbose=0)
        run_dir = args.out / slug
        if not (run_dir / "run.json").is_file():
            fit_run(est, ds, DataConfig(data=data_name), run_dir, quiet=True)
        start = time.perf_counter()
        page = build_report(run_dir, dataset=ds)
        report_s = time.perf_counter() - start
        doc = json.loads((run_dir / "metrics.json").read_text())
        run = json.loads((run_dir / "run.json").read_text())
        est = load(run_dir)
        test = np.asarray(run["test_indices"])
        X_test = ds.X[test]
        pick = test[np.linspace(0, len(test) - 1, 10).astype(int)]
        recon = est.reconstruct(ds.X[pick])
        save_uri(
            plots.reconstruction_grid(ds.X[pick], recon, image_shape=est.image_shape_, feature_names=[]),
            HERE / f"{slug}-recon.png",
        )
        top = [int(i) for i in explain.rank_latents(est, X_test)[:8]]
        writes = np.stack([w.direction for w in explain.latent_writes(est, X_test, latents=top)])
        lim = float(np.abs(writes).max()) or 1.0
        save_uri(
            plots.image_tiles(writes, est.image_shape_, vmin=-lim, vmax=lim, cmap="RdBu_r", target=64),
            HERE / f"{slug}-writes.png",
        )
        m = doc["metrics"]
        numbers[slug] = {
            "title": title,
            "estimator": doc["estimator"],
            "parameters": doc["parameters"],
            "epochs": est.n_iter_,
            "fit_seconds": round(est.fit_seconds_, 1),
            "report_seconds": round(report_s, 1),
            **{k: m.get(k) for k in ("fvu", f"pca_fvu (k={est.module_.latent_dim})", "l0", "n_dead",
                                     "n_dense", "near_zero_weights", "max_abs_correlation", "mig", "linear_probe")},
            "warnings": [w["title"] for w in doc["warnings"]],
        }  # fmt: skip
        print(f"{slug}: {numbers[slug]}", file=sys.stderr)
        if slug == "1-classic":
            screenshot(page, HERE / "report-screenshot.png")
    if not args.no_sweep:
        start = time.perf_counter()
        page = run_sweep(SweepConfig(), args.out / "sweep")
        sweep_s = time.perf_counter() - start
        doc = json.loads((args.out / "sweep" / "sweep.json").read_text())
        # the sweep's charts are inline SVG now (hover texts, links): the page is photographed instead
        screenshot(page, HERE / "sweep-l0.png")
        numbers["sweep"] = {
            "seconds": round(sweep_s, 1),
            "runs": len(doc["runs"]),
            "l0_front": [r["name"] for r in doc["runs"] if "l0" in r.get("pareto", [])],
            "skipped": doc["skipped"],
        }
    (HERE / "numbers.json").write_text(json.dumps(numbers, indent=2, default=float) + "\n")
    print("| step | model | FVU | L0 | dead | near-zero weights | MIG |")
    print("|---|---|---|---|---|---|---|")
    for slug, n in numbers.items():
        if slug == "sweep":
            continue
        cells = [n.get("fvu"), n.get("l0"), n.get("n_dead"), n.get("near_zero_weights"), n.get("mig")]
        text = ["-" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v) for v in cells]
        print(f"| {n['title']} | {n['estimator']} | " + " | ".join(text) + " |")


if __name__ == "__main__":
    main()
