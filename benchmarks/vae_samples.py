"""How much do a VAE's samples look like its training images? beta-TCVAE's dim_kl_weight 0.05 against 1.

``BetaTCVAE`` defaults to ``dim_kl_weight=0.05`` because it separates the factors of
``make_shapes`` more often (docs/readme/vae.md); the price could be samples from the prior
that follow the training images less closely. This script measures that price on the
16x16 shapes. Each image (thresholded at 0.5) is read as one white blob:

- "one shape": the share of images that are exactly one connected blob with an area
  inside the range of the training images' areas;
- "area TV", "position TV": the total-variation distance between the histogram of blob
  areas (pixels) or of blob centroids (on a 4x4 grid of the image) of 5,000 samples and
  that of 5,000 training images; 0 is identical, 1 disjoint. Fresh images from
  ``make_shapes`` with another seed set the floor.

Run::

    python benchmarks/vae_samples.py                # about 4 minutes on 2 CPU cores
    python benchmarks/vae_samples.py --n-init 3     # the estimator's own n_init (3x the time)
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch
from scipy import ndimage

from lucidae import BetaTCVAE
from lucidae.datasets import make_shapes

SIZE = 16
N_COMPARE = 5000


def blob_stats(images: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per image: number of connected blobs, their area, and the centroid's cell on a 4x4 grid."""
    on = images.reshape(-1, SIZE, SIZE) > 0.5  # (n, 16, 16)
    blobs = np.array([ndimage.label(im)[1] for im in on])
    area = on.sum(axis=(1, 2))
    ys, xs = np.indices((SIZE, SIZE))
    cy = (on * ys).sum(axis=(1, 2)) / np.maximum(area, 1)
    cx = (on * xs).sum(axis=(1, 2)) / np.maximum(area, 1)
    cell = (cy // (SIZE // 4)).astype(int) * 4 + (cx // (SIZE // 4)).astype(int)
    return blobs, area, cell


def tv(a: np.ndarray, b: np.ndarray, bins: int) -> float:
    """Total-variation distance between the histograms of two integer samples."""
    ha = np.bincount(a, minlength=bins)[:bins] / len(a)
    hb = np.bincount(b, minlength=bins)[:bins] / len(b)
    return float(0.5 * np.abs(ha - hb).sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-init", type=int, default=1)
    parser.add_argument("--dim-kl-weights", default="0.05,1", help="comma-separated values to compare")
    args = parser.parse_args()
    ds = make_shapes(20_000, image_size=SIZE, random_state=args.seed)
    _, train_area, train_cell = blob_stats(ds.X[:N_COMPARE])
    lo, hi = train_area.min(), train_area.max()
    bins = SIZE * SIZE + 1

    def row(name: str, images: np.ndarray, seconds: float | None) -> None:
        blobs, area, cell = blob_stats(images)
        one = float(((blobs == 1) & (area >= lo) & (area <= hi)).mean())
        took = "" if seconds is None else f"{seconds:8.0f}"
        print(
            f"{name:38s}{one:10.3f}{tv(area, train_area, bins):10.3f}{tv(cell, train_cell, 16):13.3f}"
            f"{area.mean():11.1f}{took}",
            flush=True,
        )

    print(f"make_shapes(20000, image_size={SIZE}, random_state={args.seed}); torch {torch.__version__}, ", end="")
    print(f"{torch.get_num_threads()} thread(s), {platform.machine()}")
    print(f"{'images':38s}{'one shape':>10s}{'area TV':>10s}{'position TV':>13s}{'mean area':>11s}{'fit s':>8s}")
    row("training images", ds.X[:N_COMPARE], None)
    row("fresh images (another seed)", make_shapes(N_COMPARE, image_size=SIZE, random_state=args.seed + 1).X, None)
    for weight in (float(w) for w in args.dim_kl_weights.split(",")):
        est = BetaTCVAE(dim_kl_weight=weight, n_init=args.n_init, random_state=args.seed, verbose=0)
        start = time.perf_counter()
        est.fit(ds.X)
        seconds = time.perf_counter() - start
        row(f"samples, dim_kl_weight={weight:g}", est.sample(N_COMPARE, random_state=args.seed), seconds)
        row(f"reconstructions, dim_kl_weight={weight:g}", est.reconstruct(ds.X[:N_COMPARE]), None)


if __name__ == "__main__":
    main()
