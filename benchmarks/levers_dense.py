"""Measure the dense-family levers on scikit-learn's digits, each against its reference.

    python benchmarks/levers_dense.py            # about 1-3 minutes on 2 CPU cores

1. Linear autoencoder vs PCA (8 latents): largest principal angle between the decoder's
   columns and PCA's first 8 components, with the classic model's training settings and
   with LinearAutoEncoder's own defaults; training time as a multiple of PCA's.
2. L1 on the weights: share of weights below 1e-2 in magnitude, and FVU, per strength.
3. Pruning: FVU after magnitude pruning of a plain and an L1-trained model.
4. Denoising: error against the clean images when reconstructing corrupted held-out
   images, plain vs denoising model of the same size.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from scipy.linalg import subspace_angles
from sklearn.decomposition import PCA

from lucidae import AutoEncoder, LinearAutoEncoder
from lucidae.datasets import load_digits
from lucidae.metrics import fvu
from lucidae.prune import prune


def linear_vs_pca(X: np.ndarray) -> None:
    start = time.perf_counter()
    pca = PCA(8).fit(X)
    pca_s = time.perf_counter() - start
    print("1. linear autoencoder vs PCA, digits, 8 latents (3 seeds)")
    print(f"{'training settings':44s} {'max angle (deg) per seed':>28s} {'time vs PCA':>12s}")
    classic = {"batch_size": 128, "lr": 3e-3, "validation_fraction": 0.1}
    for name, params in (("classic (batch 128, lr 3e-3, 10% validation)", classic), ("LinearAutoEncoder defaults", {})):
        angles, seconds = [], []
        for seed in range(3):
            start = time.perf_counter()
            lin = LinearAutoEncoder(latent_dim=8, verbose=0, random_state=seed, **params).fit(X)
            seconds.append(time.perf_counter() - start)
            angles.append(np.degrees(subspace_angles(lin.components_.T, pca.components_.T)).max())
        shown = " ".join(f"{a:7.3f}" for a in angles)
        print(f"{name:44s} {shown:>28s} {np.mean(seconds) / pca_s:11.0f}x")
    lin.align_to_principal_axes(X)
    cos = np.abs(np.sum(lin.components_ * pca.components_, axis=1))
    print(f"after align_to_principal_axes: |cos| with PCA components {np.round(cos, 4).tolist()}")


def l1_sweep(X: np.ndarray) -> None:
    print("\n2. L1 on encoder and decoder weights (64-8-64, ReLU code, sigmoid output, 15 epochs)")
    print(f"{'strength':>10s} {'weights < 1e-2':>15s} {'FVU':>8s}")
    for strength in (0.0, 1e-5, 1e-4, 1e-3):
        ae = AutoEncoder(
            hidden_dims=(),
            latent_dim=8,
            encoder_l1=strength,
            decoder_l1=strength,
            epochs=15,
            validation_fraction=0.0,
            verbose=0,
            random_state=0,
        ).fit(X)
        w = torch.cat(
            [ae.module_.encoder[0].weight.detach().reshape(-1), ae.module_.decoder[0].weight.detach().reshape(-1)]
        )
        print(f"{strength:10.0e} {float((w.abs() < 1e-2).float().mean()):15.3f} {fvu(X, ae.reconstruct(X)):8.4f}")


def prune_sweep(X: np.ndarray) -> None:
    print("\n3. magnitude pruning (global), 64-64-16-64-64, FVU on the training data")
    models = {
        "plain": AutoEncoder(hidden_dims=(64,), latent_dim=16, epochs=40, verbose=0, random_state=0).fit(X),
        "L1 1e-5": AutoEncoder(
            hidden_dims=(64,), latent_dim=16, encoder_l1=1e-5, decoder_l1=1e-5, epochs=40, verbose=0, random_state=0
        ).fit(X),
    }
    amounts = (0.0, 0.5, 0.8, 0.9, 0.95)
    print(f"{'model':10s} " + " ".join(f"{f'{a:.0%} pruned':>12s}" for a in amounts))
    for name, ae in models.items():
        results = [prune(ae, X, amount=a) for a in amounts]
        print(f"{name:10s} " + " ".join(f"{r.fvu_after:12.4f}" for r in results))
        # dead units (no live input left, or never active) removed from every layer
        print(f"{'  layers':10s} " + " ".join(f"{'-'.join(map(str, r.widths_after[1:-1])):>12s}" for r in results))
        # prune-then-retrain: 10 more epochs with the pruned weights held at zero
        tuned = [prune(ae, X, amount=a, fine_tune_epochs=10) for a in amounts]
        print(f"{'  +10 ep.':10s} " + " ".join(f"{r.fvu_after:12.4f}" for r in tuned))


def denoising(X: np.ndarray) -> None:
    print("\n4. denoising, 64-64-64 linear model (code as wide as the input), held-out MSE to the clean images")
    rng = np.random.default_rng(1)
    X_train, X_test = X[:1500], X[1500:]
    corrupted = {
        "gaussian 0.25": (X_test + rng.normal(0, 0.25, X_test.shape)).astype(np.float32),
        "30% masked": (X_test * (rng.random(X_test.shape) >= 0.3)).astype(np.float32),
    }
    print(f"{'trained with':16s} " + " ".join(f"{k:>14s}" for k in corrupted) + f" {'clean':>8s}")
    print(f"{'(input as is)':16s} " + " ".join(f"{np.mean((v - X_test) ** 2):14.4f}" for v in corrupted.values()))
    for noise, level in (("none", 0.1), ("gaussian", 0.25), ("mask", 0.3)):
        ae = AutoEncoder(
            hidden_dims=(),
            latent_dim=64,
            latent_activation="linear",
            output_activation="linear",
            noise=noise,
            noise_level=level,
            epochs=30,
            verbose=0,
            random_state=0,
        ).fit(X_train)
        errs = " ".join(f"{np.mean((ae.reconstruct(v) - X_test) ** 2):14.4f}" for v in corrupted.values())
        label = noise if noise == "none" else f"{noise} {level}"
        print(f"{label:16s} {errs} {np.mean((ae.reconstruct(X_test) - X_test) ** 2):8.4f}")


def main() -> None:
    torch.set_num_threads(1)
    X = load_digits().X
    linear_vs_pca(X)
    l1_sweep(X)
    prune_sweep(X)
    denoising(X)


if __name__ == "__main__":
    main()
