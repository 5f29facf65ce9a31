"""Training speed of lucidae's TopK sparse autoencoder against a minimal hand-written one.

The reference is the shortest idiomatic PyTorch TopK SAE loop (encoder, top-k, decoder,
MSE, Adam, unit-norm columns after each step): no geometric median, no dead-latent
tracking, no AuxK, no validation. lucidae runs ``TopKAutoEncoder.fit`` with the same
data, widths, k, batch size, learning rate and epochs, validation off. Both run in this
process, one after the other, on one thread; the ratio is what the extra features
(AuxK, dead tracking, parallel-gradient removal, history) cost.

Run ``python benchmarks/sae_throughput.py`` (``--samples``, ``--epochs`` to change the size).
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch
import torch.nn.functional as F

from lucidae import TopKAutoEncoder
from lucidae.datasets import atom_recovery, make_sparse_dictionary


def reference_fit(X: torch.Tensor, latent_dim: int, k: int, epochs: int, batch_size: int, lr: float) -> torch.Tensor:
    """A bare TopK SAE training loop; returns the learned atoms ``(latent_dim, n_features)``."""
    torch.manual_seed(0)
    d = X.shape[1]
    W_dec = torch.randn(d, latent_dim)
    W_dec /= W_dec.norm(dim=0, keepdim=True)
    W_dec.requires_grad_(True)
    W_enc = W_dec.detach().T.clone().requires_grad_(True)
    b_enc = torch.zeros(latent_dim, requires_grad=True)
    b_dec = X.mean(dim=0).clone().requires_grad_(True)
    opt = torch.optim.Adam([W_enc, b_enc, W_dec, b_dec], lr=lr)
    for _ in range(epochs):
        order = torch.randperm(X.shape[0])
        for start in range(0, X.shape[0], batch_size):
            xb = X[order[start : start + batch_size]]  # (batch, d)
            pre = (xb - b_dec) @ W_enc.T + b_enc  # (batch, latent)
            vals, idx = pre.topk(k, dim=1)
            z = torch.zeros_like(pre).scatter(1, idx, vals)
            loss = F.mse_loss(z @ W_dec.T + b_dec, xb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            with torch.no_grad():
                W_dec /= W_dec.norm(dim=0, keepdim=True)
    return W_dec.detach().T


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20000)
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(1)
    ds = make_sparse_dictionary(args.samples, random_state=0)
    settings = {"latent_dim": 256, "k": 4, "epochs": args.epochs, "batch_size": 256, "lr": 1e-2}
    n_seen = args.samples * args.epochs

    start = time.perf_counter()
    atoms = reference_fit(torch.from_numpy(ds.X), 256, 4, args.epochs, 256, 1e-2)
    ref_s = time.perf_counter() - start
    ref_rec = atom_recovery(ds.atoms, atoms.numpy())

    start = time.perf_counter()
    sae = TopKAutoEncoder(**settings, validation_fraction=0.0, verbose=0, random_state=0).fit(ds.X)
    ours_s = time.perf_counter() - start
    ours_rec = atom_recovery(ds.atoms, sae.components_)

    print(f"{args.samples} samples x {args.epochs} epochs, 64 -> 256 latents, k=4, batch 256, one thread")
    print(f"{'method':<28}{'samples/s':>12}{'recovery':>10}{'vs reference':>14}")
    print(f"{'minimal torch TopK loop':<28}{n_seen / ref_s:>12,.0f}{ref_rec:>10.3f}{1.0:>14.2f}")
    print(f"{'lucidae TopKAutoEncoder':<28}{n_seen / ours_s:>12,.0f}{ours_rec:>10.3f}{ref_s / ours_s:>14.2f}")


if __name__ == "__main__":
    main()
