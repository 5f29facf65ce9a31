import numpy as np
import pytest

from lucidae.datasets import BUILTIN, load_dataset, make_shapes
from lucidae.datasets.shapes import FACTOR_NAMES, N_VALUES, render_shapes
from lucidae.errors import DataError


def _one(shape=0, scale=1.0, rotation=0.0, x=0.5, y=0.5, size=32):
    arrays = [np.array([v]) for v in (shape, scale, rotation, x, y)]
    return render_shapes(*arrays, image_size=size)[0]


def _centroid(img):
    rows, cols = np.nonzero(img)
    return rows.mean(), cols.mean()


def test_same_seed_same_data_other_seed_other_data():
    a = make_shapes(300, image_size=24, random_state=3)
    b = make_shapes(300, image_size=24, random_state=3)
    c = make_shapes(300, image_size=24, random_state=4)
    assert np.array_equal(a.X, b.X) and np.array_equal(a.factors, b.factors)
    assert not np.array_equal(a.X, c.X)


def test_layout_dtype_and_factor_ranges():
    ds = make_shapes(2000, image_size=32, random_state=0)
    assert ds.X.shape == (2000, 32 * 32) and ds.X.dtype == np.float32
    assert set(np.unique(ds.X)) == {0.0, 1.0}
    assert ds.image_shape == (1, 32, 32) and ds.factor_names == FACTOR_NAMES
    f = ds.factors
    assert f.shape == (2000, 5)
    assert set(np.unique(f[:, 0])) == {0, 1, 2} and np.array_equal(ds.y, f[:, 0])
    assert f[:, 1].min() == 0.5 and f[:, 1].max() == 1.0
    assert 0 <= f[:, 2].min() and f[:, 2].max() < 2 * np.pi
    for col in (3, 4):
        assert f[:, col].min() == 0.0 and f[:, col].max() == 1.0
    # Each factor is drawn from a dSprites-like grid.
    for col, name in zip(range(1, 5), ["scale", "rotation", "x", "y"]):
        assert len(np.unique(f[:, col])) == N_VALUES[name]
    # Every image shows a shape, and none touches the border (no clipping).
    imgs = ds.X.reshape(-1, 32, 32)
    assert imgs.sum(axis=(1, 2)).min() > 5
    border = imgs[:, 0].sum() + imgs[:, -1].sum() + imgs[:, :, 0].sum() + imgs[:, :, -1].sum()
    assert border == 0


def test_images_match_their_factors():
    ds = make_shapes(50, image_size=32, random_state=1)
    again = render_shapes(*(ds.factors[:, i] for i in range(5)), image_size=32)
    again_shape = ds.factors[:, 0].astype(int)
    assert np.array_equal(again.reshape(50, -1), ds.X)
    assert np.array_equal(again_shape, ds.y)


def test_x_and_y_move_the_centroid():
    size = 64
    travel = (1 - 2 * (0.2 + 0.5 / size)) * size  # pixels between x=0 and x=1
    for shape in (0, 1, 2):
        left, right = _one(shape, x=0.0, size=size), _one(shape, x=1.0, size=size)
        top, bottom = _one(shape, y=0.0, size=size), _one(shape, y=1.0, size=size)
        assert _centroid(right)[1] - _centroid(left)[1] == pytest.approx(travel, abs=1.0)
        assert _centroid(right)[0] == pytest.approx(_centroid(left)[0])
        assert _centroid(bottom)[0] - _centroid(top)[0] == pytest.approx(travel, abs=1.0)


def test_area_scales_with_scale_squared():
    size = 128  # fine pixels, so the area is close to the continuous one
    for shape in (0, 1, 2):
        big, small = _one(shape, scale=1.0, size=size).sum(), _one(shape, scale=0.5, size=size).sum()
        assert small / big == pytest.approx(0.25, rel=0.05)
    # The square's area is known in closed form: side 1.4 * radius, radius 0.2 * size.
    assert _one(0, size=size).sum() == pytest.approx((1.4 * 0.2 * size) ** 2, rel=0.05)


def test_rotation_turns_the_shape_and_keeps_its_area():
    size = 64
    for shape, period in ((0, np.pi / 2), (1, np.pi), (2, 2 * np.pi)):
        base = _one(shape, size=size)
        turned = _one(shape, rotation=np.pi / 4, size=size)
        assert np.abs(base - turned).sum() > 0.1 * base.sum()
        assert turned.sum() == pytest.approx(base.sum(), rel=0.05)
        # A turn by the shape's symmetry period gives the same picture (up to edge pixels).
        assert np.abs(base - _one(shape, rotation=period, size=size)).sum() <= 0.03 * base.sum()
    # Turning the ellipse a quarter turn swaps its width and height.
    flat, upright = _one(1, size=size), _one(1, rotation=np.pi / 2, size=size)
    assert np.array_equal(flat, upright.T)


def test_shapes_differ_and_heart_points_down():
    square, ellipse, heart = (_one(s, size=64) for s in (0, 1, 2))
    assert len({square.sum(), ellipse.sum(), heart.sum()}) == 3
    rows = np.nonzero(heart)[0]
    widths = heart.sum(axis=1)  # (H,)
    assert np.argmax(widths) < (rows.min() + rows.max()) / 2  # the lobes are on top
    assert widths[rows.max()] <= 4  # the point is at the bottom


def test_subset_of_shapes_and_custom_grid():
    ds = make_shapes(500, image_size=16, shapes=("ellipse",), n_values={"x": 4}, random_state=0)
    assert set(np.unique(ds.factors[:, 0])) == {0}
    assert len(np.unique(ds.factors[:, 3])) == 4
    assert make_shapes(10, image_size=16, channels_first=False).image_shape == (16, 16)


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"n": 0}, "n=0"),
        ({"image_size": 2}, "image_size=2"),
        ({"shapes": ("star",)}, "star"),
        ({"scale_range": (0.0, 1.0)}, "scale_range"),
        ({"n_values": {"x": 0}}, "n_values"),
    ],
)
def test_bad_arguments_are_named(kwargs, fragment):
    kwargs = {"n": 10, **kwargs}
    with pytest.raises(DataError, match=fragment):
        make_shapes(**kwargs)


def test_builtin_name():
    assert "shapes" in BUILTIN
    ds = load_dataset("shapes")
    assert ds.X.shape == (20_000, 16 * 16) and ds.factors.shape == (20_000, 5)
