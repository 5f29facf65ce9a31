"""Screenshots of a run's report and of a sweep page, for the README.

Trains, into ``--out`` (default ``runs/screenshots``):

* a digits run with 8 latents (the classic dense model);
* a table run: a generated table of 6 columns on very different scales (a price in the
  thousands, a share in [0, 1], a count, a temperature, ...) driven by 2 hidden factors;
* a small sweep on digits (two code sizes, every family, one pruning level);

builds their pages and photographs each with headless Chromium, 1280 pixels wide and
at most ``--height`` tall, into ``docs/screenshots/``: ``report-digits.png``,
``report-table.png``, ``sweep.png``. Runs already in ``--out`` are trained again
(the sweep reuses its finished runs, as ``lucidae sweep`` does).

Usage::

    python docs/make_report_screenshots.py [--out runs/screenshots] [--height 2000]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from lucidae import AutoEncoder
from lucidae.config import DataConfig, SweepConfig
from lucidae.datasets import Dataset, load_dataset
from lucidae.report import build_report
from lucidae.runs import fit_run
from lucidae.sweep import run_sweep

HERE = Path(__file__).parent / "screenshots"


def make_table(n: int = 1500, seed: int = 0) -> Dataset:
    """Six columns on very different scales, all driven by two hidden factors and some noise.

    Examples
    --------
    >>> t = make_table(10)
    >>> t.X.shape, t.feature_names[0]
    ((10, 6), 'price_eur')
    """
    rng = np.random.default_rng(seed)
    f = rng.normal(size=(n, 2))  # (n, 2) hidden factors
    noise = rng.normal(size=(n, 6))
    X = np.column_stack(
        [
            5000 + 1500 * f[:, 0] + 200 * noise[:, 0],  # a price in euros
            1 / (1 + np.exp(-(f[:, 1] + 0.3 * noise[:, 1]))),  # a share in [0, 1]
            np.round(np.exp(1.5 + 0.5 * f[:, 0] + 0.2 * noise[:, 2])),  # a count
            20 + 5 * f[:, 1] - 2 * f[:, 0] + noise[:, 3],  # a temperature in degrees
            0.001 * (f[:, 0] - f[:, 1]) + 0.0002 * noise[:, 4],  # a tiny rate
            100 * f[:, 1] ** 2 + 10 * noise[:, 5],  # a non-linear score
        ]
    ).astype(np.float32)
    names = ["price_eur", "share", "count", "temperature_c", "rate", "score"]
    return Dataset(X=X, feature_names=names, name="mixed-scale table", description="6 generated columns, 2 factors")


def screenshot(page: Path, target: Path, height: int) -> bool:
    """Photograph ``page`` with headless Chromium, 1280 pixels wide; False without Chromium."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("chromium not found: no screenshot", file=sys.stderr)
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", f"--window-size=1280,{height}", f"--screenshot={target}",
             page.resolve().as_uri()],
            capture_output=True, timeout=180, check=False,
        )  # fmt: skip
    return target.is_file()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/screenshots"))
    parser.add_argument("--height", type=int, default=2000, help="Height of each screenshot in pixels.")
    args = parser.parse_args()
    pages = {}
    start = time.perf_counter()
    digits = load_dataset("digits")
    est = AutoEncoder(latent_dim=8, epochs=40, verbose=0, random_state=0)
    run, _ = fit_run(est, digits, DataConfig(data="digits"), args.out / "digits-8", quiet=True)
    pages["report-digits.png"] = build_report(run, dataset=digits)
    table = make_table()
    est = AutoEncoder(hidden_dims=(16,), latent_dim=2, epochs=60, verbose=0, random_state=0)
    run, _ = fit_run(est, table, DataConfig(data="table"), args.out / "table", quiet=True)
    pages["report-table.png"] = build_report(run, dataset=table)
    cfg = SweepConfig(latent_dims=(4, 16), depths=(1,), epochs=15, prune_amounts=(0.5,), prune_fine_tune_epochs=3)
    pages["sweep.png"] = run_sweep(cfg, args.out / "sweep", log=lambda line: print(line, file=sys.stderr))
    print(f"trained and reported in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    for name, page in pages.items():
        ok = screenshot(page, HERE / name, args.height)
        print(f"{HERE / name}: {'written' if ok else 'not written'} (from {page})", file=sys.stderr)


if __name__ == "__main__":
    main()
