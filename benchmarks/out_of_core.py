"""Training on a file larger than memory: peak RSS and throughput of lucidae's streaming path.

Writes a uint8 ``.npy`` file of ``--gigabytes`` (default 4) of MNIST-shaped rows (784
features) to ``--dir`` (default /tmp), then fits ``AutoEncoder`` on the *path* for one
epoch and prints the peak resident memory of this process (``ru_maxrss``), the file
size and samples per second. The file is written with plain ``write`` calls and read
with ``read`` calls (never mapped), so neither counts its pages towards our memory.

Target: peak RSS under 1.5 GB for a 4 GB file, i.e. not growing with the file.
Run: ``python benchmarks/out_of_core.py`` (about 1 to 3 minutes and 4 GB of free disk).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import shutil
import time
from pathlib import Path

import numpy as np

D = 784


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def write_uint8_npy(path: Path, rows: int, seed: int = 0, block_rows: int = 65536) -> None:
    """A C-ordered (rows, 784) uint8 .npy written block by block; images with structure, not noise."""
    rng = np.random.default_rng(seed)
    prototypes = rng.integers(0, 256, size=(64, D), dtype=np.uint8)
    with open(path, "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, {"descr": "|u1", "fortran_order": False, "shape": (rows, D)})
        for start in range(0, rows, block_rows):
            n = min(block_rows, rows - start)
            # each row is a noisy copy of one of 64 prototypes: something an autoencoder can learn
            block = prototypes[rng.integers(0, 64, size=n)]
            noise = rng.integers(0, 32, size=(n, D), dtype=np.uint8)
            fh.write(np.ascontiguousarray(block // 2 + noise).tobytes())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gigabytes", type=float, default=4.0)
    parser.add_argument("--dir", default="/tmp")
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the data file afterwards")
    args = parser.parse_args()

    import torch

    from lucidae import AutoEncoder

    if args.threads:
        torch.set_num_threads(args.threads)
    rows = int(args.gigabytes * 1e9) // D
    path = Path(args.dir) / f"lucidae-out-of-core-{rows}x{D}.npy"
    need = rows * D + 4096
    free = shutil.disk_usage(args.dir).free
    if not path.exists():
        if free < need * 1.1:
            raise SystemExit(f"{args.dir} has {free / 1e9:.1f} GB free; {need / 1e9:.1f} GB are needed.")
        start = time.perf_counter()
        # in a child process, so that its buffers do not count towards the peak measured here
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            pool.apply(write_uint8_npy, (path, rows))
        print(f"wrote {path} ({path.stat().st_size / 1e9:.2f} GB) in {time.perf_counter() - start:.0f} s")
    rss_before = peak_rss_mb()
    ae = AutoEncoder(
        hidden_dims=(128,),
        latent_dim=32,
        epochs=1,
        batch_size=args.batch_size,
        validation_fraction=0.01,
        random_state=0,
        verbose=0,
    )
    start = time.perf_counter()
    ae.fit(path)
    seconds = time.perf_counter() - start
    rec = ae.history_.records[-1]
    print(f"file            {path.stat().st_size / 1e9:.2f} GB uint8, {rows:,} x {D}")
    print(
        f"model           {D}-128-32-128-{D} (the classic one), batch {args.batch_size}, 1 epoch, "
        f"{torch.get_num_threads()} threads"
    )
    print(
        f"fit             {seconds:.0f} s, {rows / seconds:,.0f} samples/s "
        f"(training part {rec['samples_per_s']:,.0f}/s)"
    )
    print(
        f"loss            {rec['loss']:.5f} (validation {rec.get('val_loss', float('nan')):.5f}; "
        "predicting the mean scores about 0.0221 on this data)"
    )
    print(f"peak RSS        {peak_rss_mb():,.0f} MB (before fit: {rss_before:,.0f} MB; target < 1,500 MB)")
    if not args.keep:
        os.remove(path)


if __name__ == "__main__":
    main()
