"""Disentanglement on dSprites-style shapes: MIG of a plain autoencoder, beta-VAE and beta-TCVAE.

All three models get the same data, latent size, hidden layers, learning rate, epochs
and seed; otherwise they run with lucidae's defaults (beta-TCVAE ``beta=6``, Bernoulli
likelihood, batch 128, cosine decay). Two hidden layers and a peak rate of 1e-3 (not the
one-layer, 3e-3 defaults shared with the classic model) were what made the VAEs separate
position within minutes in our runs; see docs/readme/vae.md for the figures. MIG (Chen et al. 2018) is computed
with :func:`lucidae.metrics.mig` on the posterior means of every generated image, factors
shape, scale, rotation, x and y (equal-width 20-bin discretisation of the codes).

Published MIG on dSprites (64x64, hundreds of thousands of steps on a GPU): about 0.2 for
beta-VAE and 0.45 for beta-TCVAE. Run::

    OMP_NUM_THREADS=2 python benchmarks/disentanglement.py                 # 16x16, minutes on a CPU
    python benchmarks/disentanglement.py --image-size 32 --epochs 60       # larger, slower

It prints one line per model: MIG, the gap per factor, the final KL and the seconds spent.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch

from lucidae.datasets import make_shapes
from lucidae.estimators import VAE, AutoEncoder, BetaTCVAE
from lucidae.metrics import discretize, entropy, mig, mutual_information


def per_factor_gaps(codes: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """Normalised MI gap per factor (MIG is their mean)."""
    mi = mutual_information(codes, factors)  # (latent, factor)
    top = np.sort(mi / entropy(discretize(factors)), axis=0)[::-1]
    return top[0] - top[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000, help="images generated (all used for training and MIG)")
    parser.add_argument("--image-size", type=int, default=16, help="height and width in pixels")
    parser.add_argument("--latent-dim", type=int, default=10)
    parser.add_argument("--hidden-dims", default="256,256", help="comma-separated widths of the dense layers")
    parser.add_argument("--lr", type=float, default=1e-3, help="peak Adam learning rate")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--beta-vae-beta", type=float, default=4.0, help="beta of the beta-VAE")
    parser.add_argument("--tcvae-beta", type=float, default=6.0, help="total-correlation weight of the beta-TCVAE")
    parser.add_argument("--models", default="ae,beta-vae,beta-tcvae")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.set_num_threads(max(1, torch.get_num_threads()))
    ds = make_shapes(args.n, image_size=args.image_size, random_state=args.seed)
    hidden = tuple(int(h) for h in args.hidden_dims.split(",") if h.strip())
    common = dict(
        latent_dim=args.latent_dim,
        hidden_dims=hidden,
        epochs=args.epochs,
        lr=args.lr,
        validation_fraction=0.0,
        random_state=args.seed,
        verbose=0,
    )
    models = {
        "ae": lambda: AutoEncoder(latent_activation="linear", **common),
        "beta-vae": lambda: VAE(beta=args.beta_vae_beta, **common),
        "beta-tcvae": lambda: BetaTCVAE(beta=args.tcvae_beta, **common),
    }
    print(
        f"make_shapes(n={args.n}, image_size={args.image_size}, seed={args.seed}); latent_dim={args.latent_dim}, "
        f"hidden_dims={hidden}, lr={args.lr:g}, epochs={args.epochs}, batch 128; torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, {platform.processor() or platform.machine()}"
    )
    print(f"{'model':<12} {'MIG':>6}   gap per factor {ds.factor_names}   {'KL':>6} {'seconds':>8}")
    for name in args.models.split(","):
        est = models[name]()
        start = time.perf_counter()
        est.fit(ds.X)
        seconds = time.perf_counter() - start
        codes = est.transform(ds.X)
        score = mig(codes, ds.factors)
        gaps = " ".join(f"{g:.2f}" for g in per_factor_gaps(codes, ds.factors))
        kl = est.history_.records[-1].get("kl", float("nan"))
        print(f"{name:<12} {score:6.3f}   [{gaps}]   {kl:6.2f} {seconds:8.1f}", flush=True)


if __name__ == "__main__":
    main()
