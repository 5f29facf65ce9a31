"""dSprites-style images with known generative factors, rendered procedurally.

dSprites (Matthey et al. 2017) is the standard benchmark for disentanglement: white
shapes on black, generated from five independent factors. :func:`make_shapes` renders
images of the same kind on the fly, so tests and benchmarks need no download and can
choose the image size, the number of samples and the seed.

Rendering is vectorised: each pixel centre is mapped into the shape's own frame
(translate, rotate, scale) for a whole chunk of images at once, and an implicit
inequality per shape decides which pixels are inside.
"""

from __future__ import annotations

import numpy as np

from lucidae.datasets.base import Dataset
from lucidae.errors import DataError

SHAPES = ("square", "ellipse", "heart")
"""Shape names :func:`make_shapes` can draw, in dSprites' order."""

FACTOR_NAMES = ["shape", "scale", "rotation", "x", "y"]
"""Columns of ``Dataset.factors`` returned by :func:`make_shapes`."""

N_VALUES = {"scale": 6, "rotation": 40, "x": 32, "y": 32}
"""Number of grid values per continuous factor, as in dSprites (shape takes one value per shape)."""

_CHUNK_PIXELS = 8_000_000
"""Pixels rendered per vectorised chunk: bounds peak memory to a few hundred MB."""


def _inside(shape_id: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Whether points ``(u, v)`` in a shape's unit frame lie inside shape ``shape_id``.

    Every shape fits in the unit disc, so a scale means the same size for all of them.
    """
    if shape_id == 0:  # square, half-side 0.7: its corners reach radius 0.99
        return (np.abs(u) <= 0.7) & (np.abs(v) <= 0.7)
    if shape_id == 1:  # ellipse, elongated so that its rotation is visible
        return u * u + 4.0 * v * v <= 1.0
    # Heart curve (x^2 + y^2 - 1)^3 - x^2 y^3 <= 0 spans about x in [-1.14, 1.14] and
    # y in [-1, 1.25]; scaled and shifted into the unit disc (reaching radius 0.99), point down.
    hx, hy = u * 1.35, v * 1.35 + 0.12
    hx2 = hx * hx
    r = hx2 + hy * hy - 1.0
    return r * r * r <= hx2 * hy * hy * hy


def render_shapes(
    shape: np.ndarray,
    scale: np.ndarray,
    rotation: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    image_size: int = 64,
) -> np.ndarray:
    """Render binary images of shapes from explicit factor values.

    Parameters
    ----------
    shape : array of int, shape (n,)
        Index into :data:`SHAPES` (0 square, 1 ellipse, 2 heart).
    scale : array of float, shape (n,)
        Size relative to the largest shape, in [0.5, 1] for dSprites-like images.
    rotation : array of float, shape (n,)
        Angle in radians, counter-clockwise.
    x, y : array of float, shape (n,)
        Position of the shape's centre in [0, 1] (left to right, top to bottom); the
        range maps to a band that keeps the largest shape inside the image.
    image_size : int, default=64
        Height and width in pixels.

    Returns
    -------
    ndarray of shape (n, image_size, image_size), float32
        1 inside the shape, 0 outside.

    Examples
    --------
    >>> img = render_shapes(np.array([0]), np.array([1.0]), np.array([0.0]), np.array([0.5]), np.array([0.5]), 16)
    >>> img.shape, float(img[0, 8, 8]), float(img[0, 0, 0])
    ((1, 16, 16), 1.0, 0.0)
    """
    shape, scale, rotation, x, y = (np.asarray(a) for a in (shape, scale, rotation, x, y))
    n = shape.shape[0]
    size = int(image_size)
    out = np.zeros((n, size, size), dtype=np.float32)
    radius = 0.2  # the largest shape's radius as a fraction of the image side
    margin = radius + 0.5 / size
    # Only a box around each shape is rendered: at most (2 * radius)^2 of the image.
    box = min(size, int(np.ceil(2 * radius * size)) + 2)
    steps = np.arange(box)
    chunk = max(1, _CHUNK_PIXELS // (box * box))
    for start in range(0, n, chunk):
        sl = slice(start, start + chunk)
        m = len(shape[sl])
        cx = (margin + (1 - 2 * margin) * x[sl]).astype(np.float32)  # (chunk,) in [0, 1]
        cy = (margin + (1 - 2 * margin) * y[sl]).astype(np.float32)
        col0 = np.clip(np.floor((cx - radius) * size).astype(np.int64), 0, size - box)  # (chunk,)
        row0 = np.clip(np.floor((cy - radius) * size).astype(np.int64), 0, size - box)
        cols = col0[:, None] + steps  # (chunk, box) pixel indices
        rows = row0[:, None] + steps
        r = (radius * scale[sl]).astype(np.float32)[:, None, None]
        cos = np.cos(rotation[sl]).astype(np.float32)[:, None, None]
        sin = np.sin(rotation[sl]).astype(np.float32)[:, None, None]
        dx = ((cols[:, None, :] + 0.5) / size - cx[:, None, None]) / r  # (chunk, 1, box)
        dy = (cy[:, None, None] - (rows[:, :, None] + 0.5) / size) / r  # (chunk, box, 1), upwards positive
        # Rotate the pixel grid by -rotation so the shape turns by +rotation.
        u = (cos * dx + sin * dy).astype(np.float32)  # (chunk, box, box)
        v = (cos * dy - sin * dx).astype(np.float32)  # (chunk, box, box)
        ids = shape[sl]
        block = np.empty(u.shape, dtype=bool)  # (chunk, box, box)
        for shape_id in np.unique(ids):
            sel = ids == shape_id
            block[sel] = _inside(int(shape_id), u[sel], v[sel])
        image = np.arange(start, start + m)[:, None, None]
        out[image, rows[:, :, None], cols[:, None, :]] = block
    return out


def make_shapes(
    n: int = 10_000,
    *,
    image_size: int = 64,
    shapes: tuple[str, ...] = SHAPES,
    scale_range: tuple[float, float] = (0.5, 1.0),
    rotation_range: tuple[float, float] = (0.0, 2 * np.pi),
    n_values: dict[str, int] | None = None,
    channels_first: bool = True,
    random_state: int | np.random.Generator | None = None,
) -> Dataset:
    """Generate dSprites-style binary images with their generative factors.

    Each image shows one white shape on black, drawn from five independent factors,
    each sampled uniformly from a grid like dSprites': shape (one value per name in
    ``shapes``), scale (6 values), rotation (40 values), x and y (32 values each).
    Because the factors are known, disentanglement metrics such as MIG can be computed
    on models trained on these images.

    When to use it: to test whether a model's latents line up with the factors that
    made the data. The grid makes factors discrete, as the metrics expect; pass
    ``n_values`` with larger counts for near-continuous factors.

    Parameters
    ----------
    n : int, default=10000
        Number of images.
    image_size : int, default=64
        Height and width in pixels (dSprites uses 64; 32 trains four times faster).
    shapes : tuple of str, default=("square", "ellipse", "heart")
        Which shapes to draw; names from :data:`SHAPES`.
    scale_range : (float, float), default=(0.5, 1.0)
        Smallest and largest scale (1 is a shape whose radius is a fifth of the image).
    rotation_range : (float, float), default=(0, 2*pi)
        Smallest and largest rotation in radians (the last grid value stops one step short
        of the upper bound, so a full turn does not repeat its start).
    n_values : dict, optional
        Grid size per factor, overriding :data:`N_VALUES` (keys "scale", "rotation",
        "x", "y").
    channels_first : bool, default=True
        ``image_shape`` is ``(1, H, W)`` when true (what :class:`~lucidae.estimators.ConvAutoEncoder`
        reads), ``(H, W)`` when false.
    random_state : int, Generator or None
        Seed; the same seed gives the same images and factors.

    Returns
    -------
    Dataset
        ``X`` float32 of shape (n, image_size**2) with values 0 or 1; ``factors`` float64 of
        shape (n, 5) with columns :data:`FACTOR_NAMES` (shape as an index into ``shapes``,
        scale, rotation in radians, x and y in [0, 1]); ``y`` the shape index.

    Raises
    ------
    DataError
        On an unknown shape name, a non-positive size or an empty range.

    Examples
    --------
    >>> ds = make_shapes(100, image_size=32, random_state=0)
    >>> ds.X.shape, ds.image_shape, ds.factor_names
    ((100, 1024), (1, 32, 32), ['shape', 'scale', 'rotation', 'x', 'y'])
    >>> bool((make_shapes(100, image_size=32, random_state=0).X == ds.X).all())
    True
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise DataError(f"n={n!r} is invalid: expected a positive number of images.")
    if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)) or image_size < 4:
        raise DataError(f"image_size={image_size!r} is invalid: expected an integer >= 4 (64 for dSprites).")
    unknown = [s for s in shapes if s not in SHAPES]
    if unknown or not shapes:
        raise DataError(f"shapes={shapes!r} is invalid: expected a non-empty tuple of names from {list(SHAPES)}.")
    if not 0 < scale_range[0] <= scale_range[1]:
        raise DataError(f"scale_range={scale_range!r} is invalid: expected 0 < low <= high, such as (0.5, 1.0).")
    if not rotation_range[0] <= rotation_range[1]:
        raise DataError(f"rotation_range={rotation_range!r} is invalid: expected low <= high.")
    counts = {**N_VALUES, **(n_values or {})}
    bad = {k: v for k, v in counts.items() if k not in N_VALUES or not isinstance(v, int) or v < 1}
    if bad:
        raise DataError(f"n_values={bad!r} is invalid: expected positive integers for keys {list(N_VALUES)}.")

    rng = np.random.default_rng(random_state)
    shape_ids = np.array([SHAPES.index(s) for s in shapes])
    shape_col = rng.integers(0, len(shapes), size=n)  # index into ``shapes``
    grids = {
        "scale": np.linspace(*scale_range, counts["scale"]),
        "rotation": rotation_range[0]
        + (rotation_range[1] - rotation_range[0]) * np.arange(counts["rotation"]) / counts["rotation"],
        "x": np.linspace(0.0, 1.0, counts["x"]),
        "y": np.linspace(0.0, 1.0, counts["y"]),
    }
    values = {k: g[rng.integers(0, len(g), size=n)] for k, g in grids.items()}
    images = render_shapes(
        shape_ids[shape_col], values["scale"], values["rotation"], values["x"], values["y"], image_size
    )
    factors = np.column_stack([shape_col, values["scale"], values["rotation"], values["x"], values["y"]])
    size = int(image_size)
    return Dataset(
        X=images.reshape(n, size * size),
        y=shape_col.astype(np.int64),
        feature_names=[f"px{r}_{c}" for r in range(size) for c in range(size)],
        image_shape=(1, size, size) if channels_first else (size, size),
        name="shapes",
        description=(
            f"{n} procedurally rendered dSprites-style {size}x{size} binary images "
            f"(shapes {', '.join(shapes)}); factors shape, scale, rotation, x, y."
        ),
        factors=factors.astype(np.float64),
        factor_names=list(FACTOR_NAMES),
    )


def load_shapes() -> Dataset:
    """The built-in ``"shapes"`` dataset: 20,000 dSprites-style images of 16x16, seed 0.

    Smaller than dSprites' 64x64 so that a disentangling model trains on a CPU in
    minutes (at 32x32 the VAEs need many times more steps to separate the factors; see
    ``benchmarks/disentanglement.py``). Call :func:`make_shapes` for other sizes.

    Examples
    --------
    >>> ds = load_shapes()
    >>> ds.X.shape, ds.image_shape
    ((20000, 256), (1, 16, 16))
    """
    return make_shapes(20_000, image_size=16, random_state=0)
