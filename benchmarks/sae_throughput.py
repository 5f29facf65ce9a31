"""Training speed of lucidae's TopK sparse autoencoder against a minimal hand-written one.

The reference is the shortest idiomatic PyTorch TopK SAE loop (encoder, top-k, decoder,
MSE, Adam, unit-norm columns after each step): no geometric median, no dead-latent
tracking, no AuxK, no validation. lucidae runs ``TopKAutoEncoder.fit`` with the same
data, widths, k, batch size, learning rate and epochs, validation off. Both run in this
process, one after the other, on one thread; the ratio is what the extra features
(AuxK, dead tracking, parallel-gradient removal, history) cost.

Run ``python benchmarks/sae_throughput.py`` (``--samples``, ``--epochs`` to change the size).

``--wide`` times the shape of language-model SAEs instead: 768 inputs, 8,192 and 32,768
latents, k=32, batch 1,024, against a sparsify-style loop (EleutherAI's ``sparsify``:
ReLU before the top-k, the decoder as an ``embedding_bag`` gather of the k chosen atoms
instead of a dense product). Both shapes run in the same process, lucidae and the
reference alternating ``--rounds`` times; the medians are printed.
"""

from __future__ import annotations

import argparse
import os
import statistics
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


def sparsify_fit(X: torch.Tensor, latent_dim: int, k: int, epochs: int, batch_size: int, lr: float) -> float:
    """A sparsify-style TopK SAE loop (``embedding_bag`` decode); returns the last batch's MSE."""
    torch.manual_seed(0)
    d = X.shape[1]
    W_enc = torch.randn(latent_dim, d)
    W_enc /= W_enc.norm(dim=1, keepdim=True)
    W_enc.requires_grad_(True)
    b_enc = torch.zeros(latent_dim, requires_grad=True)
    W_dec = W_enc.detach().clone().requires_grad_(True)  # (latent, d): one atom per row, as sparsify stores it
    b_dec = X.mean(dim=0).clone().requires_grad_(True)
    opt = torch.optim.Adam([W_enc, b_enc, W_dec, b_dec], lr=lr)
    loss = torch.zeros(())
    for _ in range(epochs):
        order = torch.randperm(X.shape[0])
        for start in range(0, X.shape[0], batch_size):
            xb = X[order[start : start + batch_size]]  # (batch, d)
            pre = F.relu(F.linear(xb - b_dec, W_enc, b_enc))  # (batch, latent)
            vals, idx = pre.topk(k, dim=1, sorted=False)  # (batch, k)
            recon = F.embedding_bag(idx, W_dec, per_sample_weights=vals, mode="sum") + b_dec  # (batch, d)
            loss = F.mse_loss(recon, xb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            with torch.no_grad():
                W_dec /= W_dec.norm(dim=1, keepdim=True)
    return float(loss.detach())


def wide(samples: int, epochs: int, rounds: int, latents: tuple[int, ...]) -> None:
    """lucidae's TopK fit against the sparsify-style loop at 768 inputs, k=32, batch 1,024."""
    d, k, batch, lr = 768, 32, 1024, 1e-3
    ds = make_sparse_dictionary(samples, n_atoms=4096, n_features=d, active=(16, 48), random_state=0)
    X = ds.X.astype("float32")
    Xt = torch.from_numpy(X)
    n_seen = samples * epochs
    print(
        f"{samples} samples x {epochs} epoch(s), {d} inputs, k={k}, batch {batch}, "
        f"{torch.get_num_threads()} thread(s), {rounds} alternating round(s), medians"
    )
    print(f"{'latents':>8}{'sparsify-style /s':>19}{'lucidae /s':>12}{'lucidae vs it':>15}")
    for n_latents in latents:
        ref_t, ours_t = [], []
        for _ in range(rounds):
            start = time.perf_counter()
            sparsify_fit(Xt, n_latents, k, epochs, batch, lr)
            ref_t.append(time.perf_counter() - start)
            start = time.perf_counter()
            TopKAutoEncoder(
                latent_dim=n_latents,
                k=k,
                epochs=epochs,
                batch_size=batch,
                lr=lr,
                lr_schedule="constant",
                validation_fraction=0.0,
                verbose=0,
                random_state=0,
            ).fit(X)
            ours_t.append(time.perf_counter() - start)
        ref_s, ours_s = statistics.median(ref_t), statistics.median(ours_t)
        print(f"{n_latents:>8,}{n_seen / ref_s:>19,.0f}{n_seen / ours_s:>12,.0f}{ref_s / ours_s:>15.2f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20000)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--wide", action="store_true", help="768 inputs, 8,192 and 32,768 latents, k=32")
    parser.add_argument("--latents", type=int, nargs="+", default=[8192, 32768], help="with --wide")
    parser.add_argument("--rounds", type=int, default=3, help="with --wide")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.wide:
        wide(args.samples, args.epochs, args.rounds, tuple(args.latents))
        return
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
