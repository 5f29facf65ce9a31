"""Evidence for the AutoEncoder's default training settings.

The classic tutorial trains 784-128-32-128-784 with Adam at 1e-3 for 10 epochs in
batches of 256. This script trains the same architecture with those settings and with
lucidae's defaults, on held-out data, beside PCA with the same number of components:

- ``digits``: scikit-learn's 1,797 8x8 digits (a small dataset: few steps per epoch);
- ``digits28``: 30,000 28x28 images made from those digits by upsampling and random
  rotation, scaling and shifting: MNIST's size and shape, available offline.

Run: ``python benchmarks/defaults_evidence.py [--n 30000]``. Prints a table of held-out
FVU (fraction of variance unexplained, lower is better) and training seconds.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy import ndimage
from sklearn.decomposition import PCA
from sklearn.model_selection import train_test_split

from lucidae import AutoEncoder
from lucidae.datasets import load_digits
from lucidae.metrics import fvu


def make_digits28(n: int, seed: int = 0) -> np.ndarray:
    """``n`` 28x28 images in [0, 1] from the 8x8 digits: upsample, then random affine jitter."""
    rng = np.random.default_rng(seed)
    base = load_digits().X.reshape(-1, 8, 8)
    big = np.zeros((len(base), 28, 28), dtype=np.float32)
    big[:, 2:26, 2:26] = ndimage.zoom(base, (1, 3, 3), order=1)
    out = np.empty((n, 28, 28), dtype=np.float32)
    for i, j in enumerate(rng.integers(0, len(base), size=n)):
        angle = np.deg2rad(rng.uniform(-15, 15))
        scale = rng.uniform(0.85, 1.15)
        rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]) / scale
        centre = np.array([13.5, 13.5])
        offset = centre - rot @ centre + rng.uniform(-2, 2, size=2)
        out[i] = ndimage.affine_transform(big[j], rot, offset=offset, order=1)
    return np.clip(out, 0, 1).reshape(n, 784)


SETTINGS = {
    "classic tutorial (10 ep, bs 256, lr 1e-3)": dict(
        epochs=10, batch_size=256, lr=1e-3, lr_schedule="constant", validation_fraction=0.0
    ),
    "lucidae defaults": {},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=30_000, help="number of digits28 images")
    parser.add_argument("--latent", type=int, nargs="+", default=[32])
    parser.add_argument("--data", nargs="+", default=["digits", "digits28"], choices=["digits", "digits28"])
    args = parser.parse_args()
    datasets = {}
    if "digits" in args.data:
        datasets["digits (1,797 8x8)"] = load_digits().X
    if "digits28" in args.data:
        datasets[f"digits28 ({args.n:,} 28x28)"] = make_digits28(args.n)
    print(f"{'data':<26} {'k':>3} {'model':<48} {'held-out FVU':>12} {'seconds':>8}", flush=True)
    for name, X in datasets.items():
        X_train, X_test = train_test_split(X, test_size=0.2, random_state=0)
        for k in args.latent:
            pca = PCA(k, random_state=0).fit(X_train)
            print(
                f"{name:<26} {k:>3} {'PCA':<48} {fvu(X_test, pca.inverse_transform(pca.transform(X_test))):>12.4f}",
                flush=True,
            )
            for label, kw in SETTINGS.items():
                start = time.perf_counter()
                ae = AutoEncoder(hidden_dims=(128,), latent_dim=k, random_state=0, verbose=0, **kw).fit(X_train)
                seconds = time.perf_counter() - start
                label = f"AE {label} ({ae.n_iter_} ep)"
                print(
                    f"{name:<26} {k:>3} {label:<48} {fvu(X_test, ae.reconstruct(X_test)):>12.4f} {seconds:>8.1f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
