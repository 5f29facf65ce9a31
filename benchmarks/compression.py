"""Rate-distortion of lucidae's image codec against JPEG (Pillow) and PCA, on the same images.

For each dataset a model is trained on a training split and the held-out images are
compressed as one batch. Rate is bits per pixel of the whole stream (headers included);
distortion is PSNR in dB with the peak at 1 (pixels in [0, 1]).

- lucidae: ``lucidae.applications.compress`` with a dense autoencoder of code size k,
  quantised to 4, 6 or 8 bits per latent unit, stream format 2 (per-unit static models
  stored in the stream, constriction's ANS coder).
- PCA: the same quantiser and entropy coder on k PCA coefficients (plus the same header),
  so the comparison isolates the learned transform.
- JPEG per image: each image a separate grayscale JPEG file, as a user storing images
  one by one would do (headers of a few hundred bytes dominate small images).
- JPEG mosaic: all held-out images tiled into one grayscale JPEG, the header amortised:
  the fair comparison of the transforms and coders.

Run ``python benchmarks/compression.py``; it prints one row per setting, with the size of
the version 1 stream (the adaptive arithmetic coder before constriction) of the same codes
beside each lucidae row.
``python benchmarks/compression.py --speed`` times the codec instead: compress + decompress
of 20,000 digits (the 1,797 tiled) at 32 latents, 4 and 8 bits, stream format 2 against
format 1 side by side in one process, with bytes and ratios.
``python benchmarks/compression.py --denoising`` prints the denoising table instead: PSNR
of noisy held-out digits before and after a plain and a denoising autoencoder.
"""

from __future__ import annotations

import io
import os
import platform
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import torch
from sklearn.decomposition import PCA

from lucidae import AutoEncoder
from lucidae.applications import compress as codec
from lucidae.applications.entropy import encode_columns


def header_bytes(n_dims: int, latent_dim: int) -> int:
    """Bytes of a version 2 stream around its unit models and payload."""
    return 4 + 8 + 4 * n_dims + 4 + 8 + 8 * latent_dim + 4 + 4 + 4


def jpeg_bytes_and_decoded(img: np.ndarray, quality: int) -> tuple[int, np.ndarray]:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.clip(np.rint(img * 255), 0, 255).astype(np.uint8), mode="L").save(buf, "JPEG", quality=quality)
    size = buf.tell()
    buf.seek(0)
    return size, np.asarray(Image.open(buf), dtype=np.float32) / 255.0


def mosaic(images: np.ndarray, cols: int) -> np.ndarray:
    n, h, w = images.shape
    rows = -(-n // cols)
    canvas = np.zeros((rows * h, cols * w), np.float32)
    for i, im in enumerate(images):
        r, c = divmod(i, cols)
        canvas[r * h : (r + 1) * h, c * w : (c + 1) * w] = im
    return canvas


def unmosaic(canvas: np.ndarray, n: int, h: int, w: int, cols: int) -> np.ndarray:
    return np.stack(
        [canvas[(i // cols) * h : (i // cols + 1) * h, (i % cols) * w : (i % cols + 1) * w] for i in range(n)]
    )


def run(name: str, X_train: np.ndarray, X_test: np.ndarray, shape: tuple[int, int], ks: list[int]) -> None:
    n, pixels = len(X_test), X_test.shape[1]
    images = X_test.reshape(n, *shape)
    print(f"\n{name}: {len(X_train)} training and {n} held-out images of {shape[0]}x{shape[1]}")
    print(f"{'method':<28}{'bpp':>8}{'PSNR dB':>10}{'seconds':>10}{'v1 bytes / v2 bytes':>22}")
    rows = []
    for k in ks:
        start = time.perf_counter()
        ae = AutoEncoder(latent_dim=k, hidden_dims=(256,), random_state=0, verbose=0).fit(X_train)
        fit_s = time.perf_counter() - start
        pca = PCA(k, random_state=0).fit(X_train)
        for bits in (4, 6, 8):
            start = time.perf_counter()
            data = codec.compress(ae, images, bits=bits)
            out = codec.decompress(data, ae).reshape(n, pixels)
            secs = time.perf_counter() - start
            v1 = len(codec.compress(ae, images, bits=bits, version=1))
            psnr = codec.psnr(X_test, out)
            rows.append((f"lucidae k={k} {bits}-bit", 8 * len(data) / (n * pixels), psnr, secs, f"{v1} / {len(data)}"))
            q, lo, hi = codec.quantise(pca.transform(X_test), bits)
            size = sum(map(len, encode_columns(q, bits))) + header_bytes(2, k)
            rec = pca.inverse_transform(codec.dequantise(q, lo, hi, bits))
            rows.append((f"PCA k={k} {bits}-bit", 8 * size / (n * pixels), codec.psnr(X_test, rec), float("nan"), ""))
        print(f"  (autoencoder k={k}: trained {ae.n_iter_} epochs in {fit_s:.1f} s)")
    cols = int(np.ceil(np.sqrt(n)))
    for quality in (10, 30, 50, 75, 90, 95):
        total, decoded = 0, []
        for im in images:
            size, dec = jpeg_bytes_and_decoded(im, quality)
            total += size
            decoded.append(dec)
        psnr = codec.psnr(images, np.stack(decoded))
        rows.append((f"JPEG per image q={quality}", 8 * total / (n * pixels), psnr, 0, ""))
        size, dec = jpeg_bytes_and_decoded(mosaic(images, cols), quality)
        back = unmosaic(dec, n, *shape, cols)
        rows.append((f"JPEG mosaic q={quality}", 8 * size / (n * pixels), codec.psnr(images, back), 0, ""))
    for label, bpp, quality, secs, v1 in sorted(rows, key=lambda r: (r[0].split()[0], r[1])):
        print(f"{label:<28}{bpp:8.3f}{quality:10.2f}{secs:10.2f}{v1:>22}")


def machine() -> str:
    """The CPU model and the cores this process may use, for the record next to the times."""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        cpu = platform.processor() or platform.machine()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{cpu}, {cores} cores, Python {platform.python_version()}, torch threads {torch.get_num_threads()}"


def best_of(repeats: int, fn):
    """The shortest of ``repeats`` timings of ``fn()`` and its last result: the least disturbed by other load."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def speed(n: int = 20000, latent_dim: int = 32) -> None:
    """Compress + decompress ``n`` digits: stream format 2 (constriction) against format 1, one process."""
    from lucidae.datasets import load_digits

    X = load_digits().X
    ae = AutoEncoder(latent_dim=latent_dim, hidden_dims=(256,), random_state=0, verbose=0).fit(X)
    images = np.tile(X, (-(-n // len(X)), 1))[:n].reshape(n, 8, 8)  # the 1,797 digits repeated
    print(f"\ncodec speed on {machine()}")
    print(f"{n:,} digits (8x8), dense AE with code {latent_dim} (hidden 256); best of 3 for format 2, 1 run for 1")
    print(
        f"{'bits':>4}{'format':>8}{'compress s':>12}{'decompress s':>14}{'total s':>10}{'bytes':>10}"
        f"{'vs 8-bit pixels':>17}"
    )
    for bits in (8, 4):
        results = {}
        for version, repeats in ((2, 3), (1, 1)):
            c, data = best_of(repeats, lambda v=version, b=bits: codec.compress(ae, images, bits=b, version=v))
            d, out = best_of(repeats, lambda data=data: codec.decompress(data, ae))
            results[version] = (c, d, data, out)
            ratio = n * 64 / len(data)
            print(f"{bits:>4}{version:>8}{c:12.3f}{d:14.3f}{c + d:10.3f}{len(data):10,}{ratio:16.1f}x")
        (c2, d2, data2, out2), (c1, d1, data1, out1) = results[2], results[1]
        assert np.array_equal(out1, out2), "formats 1 and 2 decode to different images"
        print(
            f"     format 2 is {(c1 + d1) / (c2 + d2):.0f}x faster and {100 * (1 - len(data2) / len(data1)):.2f}% "
            f"smaller ({len(data1) - len(data2):,} bytes); the format 1 stream still decodes"
        )


def denoising() -> None:
    """PSNR of noisy held-out digits before and after a plain and a denoising autoencoder."""
    from lucidae.applications import generate as gen
    from lucidae.datasets import load_digits

    ds = load_digits()
    train, test = ds.X[:1500], ds.X[1500:]
    models = {
        "plain AE": AutoEncoder(latent_dim=24, epochs=25, verbose=0, random_state=0).fit(train),
        "denoising AE (noise 0.3)": AutoEncoder(
            latent_dim=24, epochs=25, noise="gaussian", noise_level=0.3, verbose=0, random_state=0
        ).fit(train),
    }
    print("\ndigits, 1500 training / 297 held-out images, Gaussian noise clipped to [0, 1]; PSNR in dB")
    print(f"{'test noise':<12}{'noisy':>8}" + "".join(f"{name:>26}" for name in models))
    for level in (0.2, 0.3, 0.5):
        noisy = gen.add_noise(test, level, random_state=1)
        after = [gen.denoising_gain(m, test, noisy) for m in models.values()]
        print(f"{level:<12}{after[0]['psnr_noisy']:8.2f}" + "".join(f"{a['psnr_denoised']:26.2f}" for a in after))


def main() -> None:
    torch.set_num_threads(1)
    import sys

    if "--denoising" in sys.argv:
        denoising()
        return
    if "--speed" in sys.argv:
        speed()
        return
    from lucidae.datasets import load_digits

    ds = load_digits()
    rng = np.random.default_rng(0)
    order = rng.permutation(ds.n_samples)
    X = ds.X[order]
    run("digits", X[:1500], X[1500:], (8, 8), [8, 16, 32])
    try:
        from lucidae.datasets.shapes import make_shapes
    except ImportError:
        return
    shapes = make_shapes(3300, image_size=32, random_state=0)
    Xs = shapes.X.reshape(len(shapes.X), -1).astype(np.float32)
    run("shapes 32x32", Xs[:3000], Xs[3000:], (32, 32), [8, 16])


if __name__ == "__main__":
    main()
