"""Measure what lucidae.metrics says about a plain autoencoder and a beta-VAE on make_shapes,
and what the metrics cost.

    OMP_NUM_THREADS=1 python benchmarks/disentanglement_metrics.py [--n 12000] [--epochs 8]

Part 1 trains both models with the same latent size on dSprites-style images and
prints the disentanglement metrics of ``lucidae.summary.summarize`` on held-out images.
Part 2 times each metric on a synthetic code of 10,000 samples x 10 latents x 5 factors,
and the streaming fidelity accumulator against one-shot NumPy in the same process.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from lucidae import metrics
from lucidae.datasets import make_shapes
from lucidae.estimators import VAE, AutoEncoder
from lucidae.summary import summarize

KEYS = (
    "mig",
    "sap",
    "dci_disentanglement",
    "dci_completeness",
    "dci_informativeness",
    "modularity",
    "explained_variance",
)


def models_on_shapes(n: int, epochs: int, seed: int) -> None:
    train = make_shapes(n, image_size=32, random_state=seed)
    test = make_shapes(4000, image_size=32, random_state=seed + 1)
    common = dict(
        latent_dim=10, hidden_dims=(256,), epochs=epochs, validation_fraction=0.0, verbose=0, random_state=seed
    )
    models = {
        "autoencoder": AutoEncoder(latent_activation="linear", **common),
        "beta-VAE (beta=4)": VAE(beta=4.0, **common),
    }
    print(f"make_shapes: {n} training / 4000 held-out images, 32x32; latent_dim=10, hidden (256,), {epochs} epochs")
    print(f"{'model':<20}" + "".join(f"{k:>22}" for k in KEYS) + f"{'fit s':>8}{'summary s':>11}")
    for name, est in models.items():
        start = time.perf_counter()
        est.fit(train.X)
        fit_s = time.perf_counter() - start
        start = time.perf_counter()
        s = summarize(est, test.X, factors=test.factors)
        sum_s = time.perf_counter() - start
        print(f"{name:<20}" + "".join(f"{s[k]:>22.3f}" for k in KEYS) + f"{fit_s:>8.1f}{sum_s:>11.1f}")


def metric_costs() -> None:
    rng = np.random.default_rng(0)
    V = np.c_[rng.integers(0, 3, 10_000), rng.random((10_000, 4))]
    Z = np.c_[V, rng.normal(size=(10_000, 5))] @ rng.normal(size=(10, 10))
    print("\nmetric cost on 10,000 samples x 10 latents x 5 factors")
    for name, fn in [
        ("mig", lambda: metrics.mig(Z, V)),
        ("sap", lambda: metrics.sap(Z, V)),
        ("dci (lasso)", lambda: metrics.dci(Z, V)),
        ("modularity", lambda: metrics.modularity(Z, V)),
        ("linear_probe", lambda: metrics.linear_probe(Z, V[:, 0])),
    ]:
        start = time.perf_counter()
        fn()
        print(f"  {name:<14}{time.perf_counter() - start:8.2f} s")
    X = rng.random((200_000, 64)).astype(np.float32)
    X_hat = X + rng.normal(scale=0.1, size=X.shape).astype(np.float32)
    start = time.perf_counter()
    one = metrics.fvu(X, X_hat)
    t_one = time.perf_counter() - start
    start = time.perf_counter()
    acc = metrics.FidelityAccumulator()
    for i in range(0, len(X), 4096):
        acc.update(X[i : i + 4096], X_hat[i : i + 4096])
    t_stream = time.perf_counter() - start
    print("\nfidelity on 200,000 x 64 values          seconds   vs one-shot")
    print(f"  one-shot numpy fvu                      {t_one:7.3f}       1.00")
    print(f"  FidelityAccumulator, batches of 4096    {t_stream:7.3f}   {t_stream / t_one:8.2f}")
    print(f"  |FVU difference|                        {abs(one - acc.fvu):.2e}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=12_000)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-models", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if not args.skip_models:
        models_on_shapes(args.n, args.epochs, args.seed)
    metric_costs()
