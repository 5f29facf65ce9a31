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
    # Wide and with large type: at the old 5.5x3 inches a reader could not tell the curves apart.
    fig, ax = plt.subplots(figsize=(10, 4.5))
    epochs = [r["epoch"] for r in records]
    ax.plot(epochs, [r["loss"] for r in records], label="training loss")
    if records and "val_loss" in records[0]:
        ax.plot(epochs, [r.get("val_loss", np.nan) for r in records], label="validation loss")
    if best_epoch:
        ax.axvline(best_epoch, color="0.6", linestyle="--", linewidth=1, label=f"kept: epoch {best_epoch}")
    values = [r["loss"] for r in records] + [r.get("val_loss", np.nan) for r in records]
    if values and np.nanmin(values) > 0:
        ax.set_yscale("log")
    ax.set_xlabel("epoch", fontsize=12)
    ax.set_ylabel("loss" + (" (log scale)" if ax.get_yscale() == "log" else ""), fontsize=12)
    ax.tick_params(labelsize=11)
    ax.legend(fontsize=11)
    ax.grid(alpha=0.3, which="both")
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


def latent_writes(
    direction: np.ndarray,
    *,
    image_shape: Sequence[int] | None,
    feature_names: Sequence[str],
    unit: str = "original units",
) -> str:
    """What one latent adds to the reconstruction: a diverging image, or bars of its top features.

    Bars are labelled with ``unit`` (the report passes standardised directions and
    ``unit="feature std"``); images use a symmetric scale, see :func:`colour_scale`.

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
    ax.set_xlabel(f"change per +1 std of the latent ({safe_label(unit, 30)})", fontsize=7)
    return to_data_uri(fig)


def latent_traversal(
    decoded: np.ndarray,
    values: np.ndarray,
    *,
    image_shape: Sequence[int] | None,
    feature_names: Sequence[str],
    unit: str = "original units",
) -> str:
    """Decoder outputs as one latent sweeps ``values`` with the others held at their mean.

    Images are a strip from the lowest value (left) to the highest; tables plot the five
    features that change most, in ``unit``.

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
    ax.set_ylabel(f"decoded ({safe_label(unit, 30)})", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=6, loc="best")
    return to_data_uri(fig)


def colour_scale(cmap: str = "RdBu_r", *, width: int = 120, height: int = 10) -> str:
    """A horizontal colour bar, low end left, to print between the scale's end values in the page.

    Drawing it as pixels (its numbers are HTML beside it) keeps the cards free of
    matplotlib figures, which cost a tenth of a second each.

    Examples
    --------
    >>> colour_scale()[:22]
    'data:image/png;base64,'
    """
    ramp = np.repeat(np.linspace(-1.0, 1.0, width)[None, :], height, axis=0)  # (height, width)
    return png_uri(_colorize(ramp, -1.0, 1.0, cmap))


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
    groups: Sequence[str],
    hrefs: Sequence[str],
    titles: Sequence[str],
    pca: Sequence[tuple[int, float]] = (),
    pca_x: bool = False,
    width: int = 1000,
    height: int = 560,
) -> str:
    """FVU against one interpretability measure as an inline SVG chart: one linked, titled marker per run.

    Each run is drawn with the colour and marker of its family (:func:`family_styles`),
    is a link to its report and carries a ``<title>`` that browsers show on hover, so no
    number labels crowd the points. Pareto-optimal runs are ringed and joined. PCA's
    held-out FVU at each code size is drawn as a dashed line across the chart, and, when
    ``pca_x`` is true (the x axis counts active latents, as PCA's ``k`` components are),
    also as its own curve of points at ``x = k``. The SVG is plain markup with every text
    escaped: no script, nothing loaded.

    Parameters
    ----------
    x, fvu : array of shape (n_runs,)
        The measure and the held-out FVU of each run.
    on_front : bool array of shape (n_runs,)
        Whether each run is on the Pareto front.
    xlabel : str
        Name of the measure, under the x axis.
    groups, hrefs, titles : sequence of str, one per run
        Family shown in the legend, link target and hover text of each run.
    pca : sequence of (int, float), optional
        ``(k, fvu)``: PCA's held-out FVU with ``k`` components.
    pca_x : bool, default=False
        Also place PCA's points at ``x = k``.
    width, height : int
        Size of the chart in SVG units; it scales to the page's width.

    Returns
    -------
    str
        ``<svg ...>...</svg>`` markup.

    Examples
    --------
    >>> svg = pareto_scatter(np.array([1.0, 2.0]), np.array([0.5, 0.2]), np.array([True, True]), xlabel="L0",
    ...                      groups=["TopK", "VAE"], hrefs=["a/report.html", "b/report.html"],
    ...                      titles=["a", "b"], pca=[(2, 0.3)], pca_x=True)
    >>> svg.startswith("<svg"), svg.count('<a class="run"'), svg.count('class="pca-point"')
    (True, 2, 1)
    """
    x, fvu, on_front = np.asarray(x, float), np.asarray(fvu, float), np.asarray(on_front, bool)
    styles = family_styles(groups)
    counts = {g: list(groups).count(g) for g in styles}
    pca = [(int(k), float(v)) for k, v in pca if v is not None and np.isfinite(v)]
    legend = [(g, *styles[g], f"{g} ({counts[g]})") for g in styles]
    legend_rows = _legend_rows(legend, width - 90, extra=["Pareto front"] + (["PCA, k components"] if pca else []))
    left, right, bottom = 72, 150 if pca else 24, 58
    top = 18 + 24 * len(legend_rows)
    xs = np.concatenate([x, [k for k, _ in pca] if pca_x else []])
    ys = np.concatenate([fvu, [v for _, v in pca]])
    x_ticks, (x0, x1) = _nice_axis(xs[np.isfinite(xs)])
    y_ticks, (y0, y1) = _nice_axis(ys[np.isfinite(ys)])

    def px(v: float) -> float:
        return left + (v - x0) / (x1 - x0) * (width - left - right)

    def py(v: float) -> float:
        return height - bottom - (v - y0) / (y1 - y0) * (height - top - bottom)

    out = [
        f'<svg class="sweep-chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="100%" role="img" aria-label="{_esc("FVU against " + xlabel)}" font-family="sans-serif">'
    ]
    for row_i, row in enumerate(legend_rows):
        out.extend(_legend_items(row, 60, 16 + 24 * row_i))
    # axes and grid first, so the points are drawn over them
    for t in x_ticks:
        out.append(f'<line x1="{px(t):.1f}" y1="{top}" x2="{px(t):.1f}" y2="{height - bottom}" stroke="#eee"/>')
        out.append(
            f'<text x="{px(t):.1f}" y="{height - bottom + 18}" font-size="13" text-anchor="middle">{_tick(t)}</text>'
        )
    for t in y_ticks:
        out.append(f'<line x1="{left}" y1="{py(t):.1f}" x2="{width - right}" y2="{py(t):.1f}" stroke="#eee"/>')
        out.append(f'<text x="{left - 6}" y="{py(t) + 4:.1f}" font-size="13" text-anchor="end">{_tick(t)}</text>')
    out.append(
        f'<rect x="{left}" y="{top}" width="{width - left - right}" height="{height - top - bottom}" '
        'fill="none" stroke="#999"/>'
    )
    out.append(
        f'<text x="{(left + width - right) / 2:.1f}" y="{height - 14}" font-size="14" '
        f'text-anchor="middle">{_esc(xlabel)}</text>'
    )
    out.append(
        f'<text transform="translate(18,{(top + height - bottom) / 2:.1f}) rotate(-90)" font-size="14" '
        'text-anchor="middle">held-out FVU (lower is better)</text>'
    )
    if pca:
        out.append(_pca_layer(pca, px, py, left, width - right, pca_x))
    if on_front.any():
        order = np.argsort(x[on_front], kind="stable")
        path = " ".join(f"{px(a):.1f},{py(b):.1f}" for a, b in zip(x[on_front][order], fvu[on_front][order]))
        out.append(f'<polyline class="front" points="{path}" fill="none" stroke="#222" stroke-width="1.5"/>')
    # pareto points last, so their rings stay visible where runs overlap
    for i in sorted(range(len(x)), key=lambda j: bool(on_front[j])):
        if not (np.isfinite(x[i]) and np.isfinite(fvu[i])):
            continue
        color, marker = styles[groups[i]]
        cx, cy = px(x[i]), py(fvu[i])
        ring = (
            f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="11" fill="none" stroke="#222" stroke-width="1.5"/>'
            if on_front[i]
            else ""
        )
        out.append(
            f'<a class="run" href="{_esc(hrefs[i])}" data-family="{_esc(groups[i])}"><title>{_esc(titles[i])}</title>'
            f"{ring}{marker_svg(marker, cx, cy, 7, color)}</a>"
        )
    out.append("</svg>")
    return "\n".join(out)


# ------------------------------------------------------------- the sweep's SVG charts
SWEEP_FAMILY_STYLES: dict[str, tuple[str, str]] = {
    "dense ReLU": ("#0072B2", "circle"),
    "linear": ("#555555", "square"),
    "L2 weight decay": ("#009E73", "triangle"),
    "sparse L1": ("#E69F00", "diamond"),
    "TopK": ("#D55E00", "triangle-down"),
    "VAE": ("#CC79A7", "hexagon"),
    "pruned": ("#56B4E9", "plus"),
}
"""Colour and marker of each family of the sweep: fixed, so a family looks the same in every sweep.
Colours from the Okabe-Ito palette (told apart with the common colour-vision deficiencies); the
marker tells the families apart even in grey."""

_EXTRA_COLORS = ("#8C564B", "#17BECF", "#BCBD22", "#7F7F7F", "#9467BD")
_EXTRA_MARKERS = ("star", "pentagon", "cross")


def family_styles(groups: Sequence[str]) -> dict[str, tuple[str, str]]:
    """Colour and marker of each family in ``groups``, in legend order (known families first).

    Families missing from :data:`SWEEP_FAMILY_STYLES` get colours and markers no known
    family uses, in order of first appearance.

    Examples
    --------
    >>> family_styles(["TopK", "jumprelu", "dense ReLU"])
    {'dense ReLU': ('#0072B2', 'circle'), 'TopK': ('#D55E00', 'triangle-down'), 'jumprelu': ('#8C564B', 'star')}
    """
    present = set(groups)
    styles = {g: s for g, s in SWEEP_FAMILY_STYLES.items() if g in present}
    others = [g for g in dict.fromkeys(groups) if g not in SWEEP_FAMILY_STYLES]
    for i, g in enumerate(others):
        styles[g] = (_EXTRA_COLORS[i % len(_EXTRA_COLORS)], _EXTRA_MARKERS[i % len(_EXTRA_MARKERS)])
    return styles


def marker_svg(marker: str, cx: float, cy: float, r: float, color: str) -> str:
    """One SVG marker (circle, square, triangle, triangle-down, diamond, hexagon, plus, cross, star, pentagon).

    Examples
    --------
    >>> marker_svg("circle", 10, 10, 5, "#000")
    '<circle cx="10.0" cy="10.0" r="5.0" fill="#000" stroke="#fff" stroke-width="1"/>'
    >>> marker_svg("square", 0, 0, 1, "#000").startswith("<path")
    True
    """
    paint = f'fill="{color}" stroke="#fff" stroke-width="1"'
    if marker == "circle":
        return f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="{r:.1f}" {paint}/>'
    unit: dict[str, list[tuple[float, float]]] = {
        "square": [(-0.85, -0.85), (0.85, -0.85), (0.85, 0.85), (-0.85, 0.85)],
        "triangle": [(0, -1.2), (1.1, 0.8), (-1.1, 0.8)],
        "triangle-down": [(0, 1.2), (1.1, -0.8), (-1.1, -0.8)],
        "diamond": [(0, -1.3), (1, 0), (0, 1.3), (-1, 0)],
        "hexagon": [(np.cos(a), np.sin(a)) for a in np.arange(6) * np.pi / 3],
        "pentagon": [(np.sin(a), -np.cos(a)) for a in np.arange(5) * 2 * np.pi / 5],
        "plus": [(-0.4, -1.2), (0.4, -1.2), (0.4, -0.4), (1.2, -0.4), (1.2, 0.4), (0.4, 0.4), (0.4, 1.2),
                 (-0.4, 1.2), (-0.4, 0.4), (-1.2, 0.4), (-1.2, -0.4), (-0.4, -0.4)],
        "star": [((1.3 if i % 2 == 0 else 0.55) * np.sin(i * np.pi / 5), -(1.3 if i % 2 == 0 else 0.55)
                  * np.cos(i * np.pi / 5)) for i in range(10)],
    }  # fmt: skip
    # a cross is the plus turned by 45 degrees
    unit["cross"] = [((a - b) * 0.75, (a + b) * 0.75) for a, b in unit["plus"]]
    points = unit.get(marker, unit["square"])
    d = "M" + " L".join(f"{cx + r * a:.1f},{cy + r * b:.1f}" for a, b in points) + " Z"
    return f'<path d="{d}" {paint}/>'


def _esc(text: Any) -> str:
    import html

    return html.escape(str(text), quote=True)


def _tick(v: float) -> str:
    return f"{v:.6g}"


def _nice_axis(values: np.ndarray, n: int = 6) -> tuple[list[float], tuple[float, float]]:
    """Ticks at steps of 1, 2 or 5 times a power of ten, and axis limits padded around ``values``."""
    if not values.size:
        values = np.array([0.0, 1.0])
    lo, hi = float(values.min()), float(values.max())
    if hi - lo < 1e-12:  # a single value still needs an axis around it
        lo, hi = lo - max(abs(lo) * 0.1, 0.5), hi + max(abs(hi) * 0.1, 0.5)
    pad = (hi - lo) * 0.06
    lo, hi = lo - pad, hi + pad
    raw = (hi - lo) / n
    step = 10 ** np.floor(np.log10(raw))
    step *= next(m for m in (1, 2, 5, 10) if m * step >= raw)
    ticks = [float(t) for t in np.arange(np.ceil(lo / step), np.floor(hi / step) + 1) * step]
    return [round(t, 12) + 0.0 for t in ticks], (lo, hi)  # + 0.0 turns -0.0 into 0.0


def _legend_rows(items: list[tuple[str, str, str, str]], width: int, extra: list[str]) -> list[list[Any]]:
    """Legend entries (families, then the front and PCA) wrapped into rows that fit ``width``."""
    entries: list[Any] = list(items) + extra
    rows: list[list[Any]] = [[]]
    used = 0
    for e in entries:
        text = e[3] if isinstance(e, tuple) else e
        w = 30 + 7.5 * len(text)  # marker, gap and a generous 7.5 units a character
        if rows[-1] and used + w > width:
            rows.append([])
            used = 0
        rows[-1].append(e)
        used += w
    return rows


def _legend_items(row: list[Any], x: float, y: float) -> list[str]:
    out = []
    for e in row:
        if isinstance(e, tuple):
            _, color, marker, text = e
            out.append(f'<g class="legend-item">{marker_svg(marker, x + 7, y, 6, color)}')
        elif e == "Pareto front":
            text = e
            out.append(
                f'<g class="legend-item"><line x1="{x - 4}" y1="{y}" x2="{x + 18}" y2="{y}" stroke="#222" '
                f'stroke-width="1.5"/><circle cx="{x + 7}" cy="{y}" r="6" fill="none" stroke="#222"/>'
            )
        else:
            text = e
            out.append(
                f'<g class="legend-item"><line x1="{x - 4}" y1="{y}" x2="{x + 18}" y2="{y}" stroke="#888" '
                'stroke-width="1.5" stroke-dasharray="5,3"/>'
            )
        out.append(f'<text x="{x + 24}" y="{y + 5}" font-size="13">{_esc(text)}</text></g>')
        x += 30 + 7.5 * len(text)
    return out


def _pca_layer(pca: list[tuple[int, float]], px: Any, py: Any, x_left: float, x_right: float, pca_x: bool) -> str:
    """PCA's FVU at each code size: a dashed line across the chart, labelled in the right margin."""
    out = ['<g class="pca">']
    ordered = sorted(pca, key=lambda p: -p[1])  # top of the chart first
    label_y: list[float] = []
    for _, v in ordered:  # labels at least 15 units apart, so close FVUs stay readable
        y = py(v) + 4
        label_y.append(max(y, label_y[-1] + 15) if label_y else y)
    for (k, v), ly in zip(ordered, label_y):
        text = f"PCA k={k}: FVU {v:.4f}"
        out.append(
            f'<line class="pca-line" data-k="{k}" x1="{x_left}" y1="{py(v):.1f}" x2="{x_right}" y2="{py(v):.1f}" '
            f'stroke="#888" stroke-width="1.2" stroke-dasharray="5,3"><title>{_esc(text)}</title></line>'
        )
        out.append(f'<text x="{x_right + 6}" y="{ly:.1f}" font-size="12" fill="#555">{_esc(text)}</text>')
    if pca_x:
        curve = sorted(pca)
        path = " ".join(f"{px(k):.1f},{py(v):.1f}" for k, v in curve)
        out.append(f'<polyline points="{path}" fill="none" stroke="#888" stroke-width="1.5"/>')
        for k, v in curve:
            out.append(
                f'<circle class="pca-point" data-k="{k}" cx="{px(k):.1f}" cy="{py(v):.1f}" r="5" fill="#fff" '
                f'stroke="#888" stroke-width="2"><title>{_esc(f"PCA with k={k} components: FVU {v:.4f}")}</title>'
                "</circle>"
            )
    out.append("</g>")
    return "\n".join(out)
