"""Denoising and generation with image autoencoders, as arrays and as pictures for the report.

- :func:`add_noise` and :func:`denoising_gain`: how many dB of PSNR a (denoising)
  autoencoder wins back on noisy images.
- :func:`samples` and :func:`interpolation`: new images from a VAE's prior and the
  images on the straight line between two codes (any lucidae estimator for the line).
- :func:`image_strips`: a matplotlib figure with one strip of images per row.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lucidae.applications.compress import psnr
from lucidae.errors import ConfigError, DataError


def add_noise(X: Any, level: float, *, random_state: int | None = None, clip: bool = True) -> np.ndarray:
    """``X`` plus Gaussian noise of standard deviation ``level``, clipped to [0, 1] by default.

    Examples
    --------
    >>> import numpy as np
    >>> noisy = add_noise(np.full((2, 3), 0.5), 0.1, random_state=0)
    >>> noisy.shape, bool((noisy >= 0).all() and (noisy <= 1).all())
    ((2, 3), True)
    """
    if isinstance(level, bool) or not isinstance(level, (int, float)) or not np.isfinite(level) or level < 0:
        raise ConfigError(f"level={level!r} is invalid: expected a noise standard deviation >= 0.")
    X = np.asarray(X, dtype=np.float32)
    rng = np.random.default_rng(random_state)
    out = X + level * rng.standard_normal(X.shape).astype(np.float32)
    return np.clip(out, 0.0, 1.0) if clip else out


def denoising_gain(estimator: Any, clean: Any, noisy: Any, *, peak: float = 1.0) -> dict[str, float]:
    """PSNR against the clean images of the noisy input and of the model's reconstruction.

    Returns
    -------
    dict
        ``psnr_noisy``, ``psnr_denoised`` (dB) and ``gain_db`` (their difference).

    Examples
    --------
    >>> from lucidae import AutoEncoder
    >>> from lucidae.datasets import load_digits
    >>> X = load_digits().X
    >>> ae = AutoEncoder(latent_dim=16, epochs=5, noise="gaussian", noise_level=0.2, verbose=0, random_state=0).fit(X)
    >>> sorted(denoising_gain(ae, X[:50], add_noise(X[:50], 0.2, random_state=0)))
    ['gain_db', 'psnr_denoised', 'psnr_noisy']
    """
    clean = np.asarray(clean, dtype=np.float32)
    noisy = np.asarray(noisy, dtype=np.float32)
    if clean.shape != noisy.shape:
        raise DataError(f"clean has shape {clean.shape} but noisy has {noisy.shape}; pass the same images twice.")
    before = psnr(clean, noisy, peak=peak)
    after = psnr(clean, estimator.reconstruct(noisy), peak=peak)
    return {"psnr_noisy": before, "psnr_denoised": after, "gain_db": after - before}


def _as_images(rows: np.ndarray, estimator: Any) -> np.ndarray:
    shape = getattr(estimator, "image_shape_", None)
    return rows.reshape(len(rows), *shape) if shape else rows


def samples(estimator: Any, n: int = 16, *, random_state: int | None = None) -> np.ndarray:
    """Draw ``n`` new samples from a fitted VAE's prior, as images when it knows their shape.

    Examples
    --------
    >>> from lucidae.estimators import VAE
    >>> from lucidae.datasets import load_digits
    >>> ds = load_digits()
    >>> vae = VAE(latent_dim=4, hidden_dims=(32,), beta=1.0, lr=1e-2, epochs=10, verbose=0, random_state=0)
    >>> vae = vae.fit(ds.X, image_shape=ds.image_shape)
    >>> samples(vae, 6, random_state=0).shape
    (6, 8, 8)
    """
    if not hasattr(estimator, "sample"):
        raise ConfigError(
            f"{type(estimator).__name__} has no prior to sample from; fit a lucidae.estimators.VAE "
            "(or BetaTCVAE) to generate new data."
        )
    return _as_images(np.asarray(estimator.sample(n, random_state=random_state)), estimator)


def interpolation(estimator: Any, a: Any, b: Any, steps: int = 8) -> np.ndarray:
    """Decode ``steps`` codes on the straight line from the code of ``a`` to that of ``b``.

    Uses the estimator's own ``interpolate`` (a VAE's posterior means) where it has one,
    else encodes with ``transform`` and decodes with ``inverse_transform``. The first and
    last images are the reconstructions of ``a`` and ``b``.

    Examples
    --------
    >>> from lucidae import AutoEncoder
    >>> from lucidae.datasets import load_digits
    >>> ds = load_digits()
    >>> ae = AutoEncoder(latent_dim=4, epochs=2, verbose=0, random_state=0).fit(ds.X, image_shape=(8, 8))
    >>> interpolation(ae, ds.X[0], ds.X[1], steps=5).shape
    (5, 8, 8)
    """
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 2:
        raise ConfigError(f"steps={steps!r} is invalid: expected an integer >= 2 (the endpoints are included).")
    if hasattr(estimator, "interpolate"):
        return _as_images(np.asarray(estimator.interpolate(a, b, steps=int(steps))), estimator)
    ends = np.concatenate([np.asarray(a).reshape(1, -1), np.asarray(b).reshape(1, -1)])
    z = estimator.transform(ends).astype(np.float64)  # (2, latent)
    t = np.linspace(0.0, 1.0, int(steps))[:, None]  # (steps, 1)
    line = ((1 - t) * z[0] + t * z[1]).astype(np.float32)  # (steps, latent)
    return _as_images(np.asarray(estimator.inverse_transform(line)), estimator)


def image_strips(rows: dict[str, np.ndarray], *, cell: float = 0.8) -> Any:
    """A matplotlib figure: one labelled row of grayscale images per entry of ``rows``.

    Parameters
    ----------
    rows : dict of str to ndarray of shape (n, height, width)
        Label to images; rows may have different lengths.
    cell : float
        Size of one image in inches.

    Examples
    --------
    >>> import numpy as np
    >>> fig = image_strips({"a": np.zeros((3, 8, 8)), "b": np.ones((2, 8, 8))})
    >>> len(fig.axes)
    6
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    if not rows:
        raise DataError("image_strips needs at least one row of images.")
    width = max(len(v) for v in rows.values())
    fig, axes = plt.subplots(len(rows), width, figsize=(cell * width + 1.2, cell * len(rows)), squeeze=False)
    for r, (label, images) in enumerate(rows.items()):
        images = np.asarray(images)
        if images.ndim != 3:
            raise DataError(f"row {label!r} has shape {images.shape}; expected (n, height, width) images.")
        for c in range(width):
            ax = axes[r, c]
            ax.set_axis_off()
            if c < len(images):
                ax.imshow(images[c], cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
        axes[r, 0].text(-0.1, 0.5, label, transform=axes[r, 0].transAxes, ha="right", va="center", fontsize=8)
    fig.subplots_adjust(left=1.2 / (cell * width + 1.2), right=0.99, top=0.98, bottom=0.02, wspace=0.05, hspace=0.05)
    return fig
