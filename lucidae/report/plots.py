"""Figures for the report, drawn with matplotlib's Agg backend and returned as inline PNGs.

Every function returns a ``data:image/png;base64,...`` URI, so the HTML page that
embeds it needs nothing else: no files beside it, no network. Figures are small and
drawn at a low resolution on purpose: a report holds dozens of them and must build in
seconds.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from typing import Any

import numpy as np

DPI = 80
"""Resolution of every figure; enough for a screen, small enough to keep a report light."""

MAX_TICK_FEATURES = 24
"""Tabular plots name at most this many features on an axis; the rest are left out."""


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def safe_label(text: str, limit: int = 28) -> str:
    """Make a user-given name safe for a matplotlib label and short enough for an axis.

    A ``$`` would switch matplotlib to math mode and can make drawing fail, so it is
    escaped; long names are cut with an ellipsis.

    Examples
    --------
    >>> safe_label("$price")
    '\\\\$price'
    >>> safe_label("a" * 40, limit=10)
    'aaaaaaaaa…'
    """
    text = str(text)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text.replace("$", r"\$")


def to_data_uri(fig: Any) -> str:
    """Render a matplotlib figure to a base64 PNG data URI and close it.

    Examples
    --------
    >>> plt = _plt()
    >>> fig, ax = plt.subplots(figsize=(1, 1))
    >>> to_data_uri(fig).startswith("data:image/png;base64,")
    True
    """
    plt = _plt()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def png_uri(rgb: np.ndarray) -> str:
    """Encode an ``(height, width, 3)`` uint8 array as a PNG data URI.

    Examples
    --------
    >>> png_uri(np.zeros((2, 2, 3), dtype=np.uint8)).startswith("data:image/png;base64,")
    True
    """
    from PIL import Image  # a dependency of matplotlib, so present wherever the report extra is

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8)).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _colorize(img: np.ndarray, vmin: float, vmax: float, cmap: str) -> np.ndarray:
    """Map an image to (height, width, 3) uint8 RGB; colour images are min-max scaled."""
    from matplotlib import colormaps

    if img.ndim == 3:
        lo, hi = float(img.min()), float(img.max())
        unit = (img - lo) / (hi - lo) if hi > lo else np.zeros_like(img)
        if unit.shape[-1] == 1:
            unit = np.repeat(unit, 3, axis=-1)
        return (np.clip(unit[..., :3], 0, 1) * 255).astype(np.uint8)
    unit = (img - vmin) / (vmax - vmin) if vmax > vmin else np.zeros_like(img)
    rgba = colormaps[cmap](np.clip(unit, 0, 1))  # (height, width, 4) floats
    return (rgba[..., :3] * 255).astype(np.uint8)


def image_tiles(
    rows: np.ndarray,
    image_shape: Sequence[int],
    *,
    vmin: float | None = None,
    vmax: float | None = None,
    cmap: str = "gray",
    ncols: int | None = None,
    target: int = 56,
) -> str:
    """Flattened images side by side (one PNG, nearest-neighbour upscaled), without matplotlib axes.

    Drawing many small images through matplotlib costs a tenth of a second per axes;
    composing the pixels directly costs microseconds, so a report with hundreds of
    thumbnails still builds in seconds. All tiles share one colour scale.

    Examples
    --------
    >>> image_tiles(np.random.default_rng(0).random((3, 4)), (2, 2))[:22]
    'data:image/png;base64,'
    """
    rows = np.asarray(rows, dtype=np.float64)
    n = max(len(rows), 1)
    ncols = min(ncols or n, n)
    nrows = -(-n // ncols)
    lo = float(rows.min()) if vmin is None and rows.size else (vmin if vmin is not None else 0.0)
    hi = float(rows.max()) if vmax is None and rows.size else (vmax if vmax is not None else 1.0)
    tiles = [_colorize(_as_image(r, image_shape), lo, hi, cmap) for r in rows]
    h, w = tiles[0].shape[:2] if tiles else (1, 1)
    scale = max(1, target // max(h, w))
    pad = 2
    canvas = np.full((nrows * (h * scale + pad) + pad, ncols * (w * scale + pad) + pad, 3), 255, dtype=np.uint8)
    for i, tile in enumerate(tiles):
        big = tile.repeat(scale, axis=0).repeat(scale, axis=1)
        r, c = divmod(i, ncols)
        y, x = pad + r * (h * scale + pad), pad + c * (w * scale + pad)
        canvas[y : y + h * scale, x : x + w * scale] = big
    return png_uri(canvas)


def _as_image(row: np.ndarray, image_shape: Sequence[int]) -> np.ndarray:
    img = np.asarray(row, dtype=np.float64).reshape(tuple(image_shape))
    if img.ndim == 3:  # (channels, height, width) -> (height, width, channels) for imshow
        img = np.moveaxis(img, 0, -1)
        if img.shape[-1] == 1:
            img = img[..., 0]
    return img


def training_curves(records: list[dict[str, Any]], best_epoch: int | None = None) -> str:
    """Training (and validation) loss per epoch, on a log scale.

    Examples
    --------
    >>> training_curves([{"epoch": 1, "loss": 0.2, "val_loss": 0.3}, {"epoch": 2, "loss": 0.1, "val_loss": 0.2}])[:22]
    'data:image/png;base64,'
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 3))
    epochs = [r["epoch"] for r in records]
    ax.plot(epochs, [r["loss"] for r in records], label="training loss")
    if records and "val_loss" in records[0]:
        ax.plot(epochs, [r.get("val_loss", np.nan) for r in records], label="validation loss")
    if best_epoch:
        ax.axvline(best_epoch, color="0.6", linestyle="--", linewidth=1, label=f"kept: epoch {best_epoch}")
    values = [r["loss"] for r in records] + [r.get("val_loss", np.nan) for r in records]
    if values and np.nanmin(values) > 0:
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return to_data_uri(fig)


def reconstruction_grid(
    X: np.ndarray,
    R: np.ndarray,
    *,
    image_shape: Sequence[int] | None,
    feature_names: Sequence[str],
) -> str:
    """Originals above their reconstructions (images), or side-by-side heat maps (tables).

    ``X`` and ``R`` have shape (n, n_features) in the data's original units.

    Examples
    --------
    >>> X = np.random.default_rng(0).random((4, 4))
    >>> reconstruction_grid(X, X, image_shape=(2, 2), feature_names=list("abcd"))[:22]
    'data:image/png;base64,'
    """
    plt = _plt()
    n = len(X)
    if image_shape is not None:
        lo, hi = float(min(X.min(), R.min())), float(max(X.max(), R.max()))
        return image_tiles(np.concatenate([X, R]), image_shape, vmin=lo, vmax=hi, ncols=n, target=64)
    # Tables: standardise per feature so columns in large units do not wash out the rest.
    mu, sd = X.mean(axis=0), X.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    Xz, Rz = (X - mu) / sd, (R - mu) / sd
    lim = float(np.abs(np.concatenate([Xz, Rz])).max()) or 1.0
    fig, axes = plt.subplots(1, 2, figsize=(8, 0.35 * n + 1.8), sharey=True)
    for ax, data, title in zip(axes, (Xz, Rz), ("original", "reconstruction")):
        im = ax.imshow(data, cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto", interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("feature (standardised)", fontsize=8)
        _feature_ticks(ax, feature_names, axis="x")
    axes[0].set_ylabel("sample", fontsize=8)
    fig.colorbar(im, ax=list(axes), shrink=0.8)
    return to_data_uri(fig)


def _feature_ticks(ax: Any, names: Sequence[str], *, axis: str) -> None:
    if len(names) > MAX_TICK_FEATURES:
        return
    ticks = np.arange(len(names))
    labels = [safe_label(n, 18) for n in names]
    if axis == "x":
        ax.set_xticks(ticks)
        ax.set_xticklabels(labels, rotation=60, ha="right", fontsize=7)
    else:
        ax.set_yticks(ticks)
        ax.set_yticklabels(labels, fontsize=7)


def _top_features(direction: np.ndarray, k: int = 12) -> np.ndarray:
    return np.argsort(-np.abs(direction))[:k]


def latent_writes(direction: np.ndarray, *, image_shape: Sequence[int] | None, feature_names: Sequence[str]) -> str:
    """What one latent adds to the reconstruction: a diverging image, or bars of its top features.

    Examples
    --------
    >>> latent_writes(np.array([1.0, -2.0, 0.5]), image_shape=None, feature_names=["a", "b", "c"])[:22]
    'data:image/png;base64,'
    """
    if image_shape is not None:
        lim = float(np.abs(direction).max()) or 1.0
        return image_tiles(direction[None, :], image_shape, vmin=-lim, vmax=lim, cmap="RdBu_r", target=96)
    plt = _plt()
    top = _top_features(direction)[::-1]
    fig, ax = plt.subplots(figsize=(3.2, 0.22 * len(top) + 0.8))
    colors = ["#b2182b" if v > 0 else "#2166ac" for v in direction[top]]
    ax.barh(np.arange(len(top)), direction[top], color=colors)
    ax.set_yticks(np.arange(len(top)))
    ax.set_yticklabels([safe_label(feature_names[i], 22) for i in top], fontsize=7)
    ax.axvline(0, color="0.3", linewidth=0.8)
    ax.tick_params(axis="x", labelsize=7)
    return to_data_uri(fig)


def latent_traversal(
    decoded: np.ndarray,
    values: np.ndarray,
    *,
    image_shape: Sequence[int] | None,
    feature_names: Sequence[str],
) -> str:
    """Decoder outputs as one latent sweeps ``values`` with the others held at their mean.

    Examples
    --------
    >>> dec = np.linspace(0, 1, 12).reshape(3, 4)
    >>> latent_traversal(dec, np.array([0.0, 1.0, 2.0]), image_shape=(2, 2), feature_names=list("abcd"))[:22]
    'data:image/png;base64,'
    """
    if image_shape is not None:
        return image_tiles(decoded, image_shape, target=40)
    plt = _plt()
    change = decoded[-1] - decoded[0]
    top = _top_features(change, k=5)
    fig, ax = plt.subplots(figsize=(3.2, 2.0))
    for i in top:
        ax.plot(values, decoded[:, i], marker=".", label=safe_label(feature_names[i], 20))
    ax.set_xlabel("latent value", fontsize=8)
    ax.set_ylabel("decoded value", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=6, loc="best")
    return to_data_uri(fig)


def activation_density(z: np.ndarray, *, bins: int = 40, height: int = 48) -> str:
    """Histogram of one latent's values over the evaluation data, drawn as a small bitmap.

    Bars are scaled by the square root of their count so that a spike of zeros (a
    sparse latent) does not flatten the rest. The axis range belongs in the caption.

    Examples
    --------
    >>> activation_density(np.array([0.0, 0.0, 1.0, 2.0]))[:22]
    'data:image/png;base64,'
    """
    finite = np.asarray(z, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    counts = np.zeros(bins)
    if finite.size:
        lo, hi = float(finite.min()), float(finite.max())
        if hi > lo:
            counts, _ = np.histogram(finite, bins=bins, range=(lo, hi))
        else:
            counts[bins // 2] = finite.size
    bar_w = 4
    canvas = np.full((height, bins * bar_w, 3), 255, dtype=np.uint8)
    canvas[-1, :] = (150, 150, 150)
    peak = float(np.sqrt(counts.max())) if counts.max() > 0 else 1.0
    for i, c in enumerate(counts):
        h = int(round((height - 2) * np.sqrt(c) / peak)) if c > 0 else 0
        h = max(h, 1) if c > 0 else 0
        if h:
            canvas[height - 1 - h : height - 1, i * bar_w : i * bar_w + bar_w - 1] = (76, 114, 176)
    return png_uri(canvas)


def sample_strip(X: np.ndarray, image_shape: Sequence[int]) -> str:
    """A row of images, e.g. the samples that activate a latent most.

    Examples
    --------
    >>> sample_strip(np.random.default_rng(0).random((3, 4)), (2, 2))[:22]
    'data:image/png;base64,'
    """
    return image_tiles(X, image_shape, target=40)


def latent_map(coords: np.ndarray, labels: np.ndarray | None, *, title: str) -> str:
    """Samples placed by a 2-D projection of their codes, coloured by label when there is one.

    Examples
    --------
    >>> latent_map(np.random.default_rng(0).random((10, 2)), None, title="codes")[:22]
    'data:image/png;base64,'
    >>> latent_map(np.random.default_rng(0).random((30, 2)), np.array([f"s{i}" for i in range(30)]), title="c")[:5]
    'data:'
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.5, 3.6))
    if labels is not None and len(np.unique(labels)) <= 20:
        for value in np.unique(labels):
            mask = labels == value
            ax.scatter(coords[mask, 0], coords[mask, 1], s=6, alpha=0.7, label=safe_label(str(value), 12))
        ax.legend(fontsize=6, markerscale=2, loc="best", ncol=2)
    elif labels is not None and np.asarray(labels).dtype.kind in "biuf":
        points = ax.scatter(coords[:, 0], coords[:, 1], s=6, c=labels, cmap="viridis", alpha=0.7)
        fig.colorbar(points, ax=ax)
    else:
        ax.scatter(coords[:, 0], coords[:, 1], s=6, alpha=0.6)
    ax.set_title(safe_label(title, 60), fontsize=9)
    ax.tick_params(labelsize=7)
    return to_data_uri(fig)


def pareto_scatter(
    x: np.ndarray,
    fvu: np.ndarray,
    on_front: np.ndarray,
    *,
    xlabel: str,
    labels: Sequence[str],
) -> tuple[str, list[tuple[float, float]], tuple[int, int]]:
    """FVU against one interpretability measure, Pareto-optimal runs ringed and joined.

    Returns the PNG URI, each point's pixel position in the PNG (for an HTML image map
    that links points to their runs) and the PNG's size in pixels.

    Examples
    --------
    >>> uri, pos, size = pareto_scatter(np.array([1.0, 2.0]), np.array([0.5, 0.2]), np.array([True, True]),
    ...                                 xlabel="L0", labels=["1", "2"])
    >>> len(pos), uri[:22]
    (2, 'data:image/png;base64,')
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.6), dpi=DPI)
    ax.scatter(x, fvu, s=28, color="#4c72b0", zorder=2, label="run")
    if on_front.any():
        order = np.argsort(x[on_front])
        ax.plot(x[on_front][order], fvu[on_front][order], color="#dd8452", zorder=1, label="Pareto front")
        ax.scatter(x[on_front], fvu[on_front], s=90, facecolors="none", edgecolors="#dd8452", linewidths=1.5, zorder=3)
    for xi, yi, text in zip(x, fvu, labels):
        ax.annotate(safe_label(text, 8), (xi, yi), textcoords="offset points", xytext=(4, 3), fontsize=7)
    ax.set_xlabel(safe_label(xlabel, 60), fontsize=9)
    ax.set_ylabel("FVU (lower is better)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    # No bbox_inches="tight" here: the pixel positions must match the saved image exactly.
    fig.tight_layout()
    fig.canvas.draw()
    width, height = fig.canvas.get_width_height()
    points = ax.transData.transform(np.column_stack([x, fvu]))  # (n, 2) display pixels, origin bottom left
    positions = [(float(px), float(height - py)) for px, py in points]
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    plt.close(fig)
    uri = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
    return uri, positions, (int(width), int(height))
