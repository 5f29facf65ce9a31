"""Property tests for the data side of #18's classes 4 (declared sizes) and 6 (silent acceptance).

Class 4, **declared sizes that allocate without bound**: idx files and ``.npz`` archives
whose headers declare shapes their payload does not hold (or that no machine holds) are
refused before the allocation, and what a valid file declares costs memory in proportion
to its data: feature names are made only when read, never one string per pixel up front.
Every read runs under :func:`tracemalloc` and a time limit.

Class 6, **silent acceptance**: finite float64 values beyond float32's range are refused
with a message that says so, a CSV (with or without a byte-order mark, header, blank lines,
quotes, any sniffable delimiter, missing cells) reads back exactly the table that was
written (no first row lost, each missing cell NaN and named by its line in the file), and
a masked array's mask is never ignored.

The "ci" hypothesis profile (tests/conftest.py) keeps these inside ``make test``;
``make fuzz`` runs them with the "fuzz" profile, 50 times as many examples.
"""

import gzip
import io
import math
import struct
import tracemalloc
import zipfile

import numpy as np
import pytest
from _limits import time_limit
from hypothesis import event, given
from hypothesis import strategies as st

from lucidae import AutoEncoder
from lucidae.arrays import FLOAT32_MAX, check_finite, check_numeric
from lucidae.datasets import GeneratedNames, load_array, load_mnist, read_idx
from lucidae.errors import DataError, LucidaeError

pytestmark = pytest.mark.fuzz


SLACK = 32 << 20
"""Memory a read may take beyond a few times what the file really holds: numpy's and zlib's own buffers."""


def bounded(fn, *args, limit, **kwargs):
    """``fn(*args)``'s result, or None for a LucidaeError; fails when the call's traced peak exceeds ``limit`` bytes."""
    tracemalloc.start()
    try:
        with time_limit():
            try:
                result = fn(*args, **kwargs)
            except LucidaeError as err:
                event(f"{fn.__name__}: {type(err).__name__}")
                result = None
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak <= limit, f"{fn.__name__} took {peak / 1e6:.1f} MB for a file of this size (limit {limit / 1e6:.1f})"
    if result is not None:
        event(f"{fn.__name__}: valid")
    return result


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz_data")


# --------------------------------------------------------------------------- class 4: idx
DIMS = st.sampled_from([0, 1, 2, 3, 7, 28, 255, 2**10, 2**14, 2**16, 2**24, 2**31, 2**32 - 1])
CODES = st.sampled_from([0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E])


@given(data=st.data())
def test_idx_declared_sizes_cost_only_what_is_there(workdir, data):
    dims = data.draw(st.lists(DIMS, min_size=1, max_size=4), label="dims")
    code = data.draw(CODES, label="code")
    itemsize = {0x08: 1, 0x09: 1, 0x0B: 2, 0x0C: 4, 0x0D: 4, 0x0E: 8}[code]
    declared = math.prod(dims) * itemsize
    # the payload present: all of it (when small enough to write), or a random short or long share
    if declared <= 1 << 20 and data.draw(st.booleans(), label="honest"):
        payload = bytes(declared)
    else:
        payload = bytes(data.draw(st.integers(0, 1 << 16), label="present"))
    raw = struct.pack(">BBBB", 0, 0, code, len(dims)) + struct.pack(f">{len(dims)}I", *dims) + payload
    compressed = data.draw(st.booleans(), label="gz")
    path = workdir / ("x-idx-ubyte" + (".gz" if compressed else ""))
    path.write_bytes(gzip.compress(raw, compresslevel=1) if compressed else raw)
    arr = bounded(read_idx, path, limit=4 * len(payload) + SLACK)
    if arr is not None:
        assert arr.shape == tuple(dims) and arr.nbytes == len(payload)


@given(data=st.data())
def test_idx_images_get_their_feature_names_lazily(workdir, data):
    n = data.draw(st.integers(1, 3), label="n")
    h = data.draw(st.sampled_from([1, 2, 28, 300, 2048]), label="h")
    w = data.draw(st.sampled_from([1, 3, 28, 512, 4096]), label="w")
    folder = workdir / "mnist"
    folder.mkdir(exist_ok=True)
    images = struct.pack(">BBBBIII", 0, 0, 8, 3, n, h, w) + bytes(n * h * w)
    (folder / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(images, compresslevel=1))
    (folder / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(struct.pack(">BBBBI", 0, 0, 8, 1, n) + bytes(n)))
    # a list of h * w name strings would cost about 60 bytes a pixel; the images themselves cost 1 (twice, read)
    ds = bounded(load_mnist, folder, limit=6 * n * h * w + SLACK)
    assert ds is not None and ds.X.shape == (n, h * w)
    assert isinstance(ds.feature_names, GeneratedNames) and len(ds.feature_names) == h * w
    i = data.draw(st.integers(0, h * w - 1), label="i")
    assert ds.feature_names[i] == f"px{i // w}_{i % w}"


# --------------------------------------------------------------------------- class 4: npz
def _npy_bytes(array, declared_shape=None):
    buffer = io.BytesIO()
    np.save(buffer, array)
    raw = buffer.getvalue()
    if declared_shape is not None:  # rewrite the shape in the header, padded to the same length
        end = raw.index(b"\n") + 1
        header = raw[10:end].decode("latin1")
        start = header.index("(")
        stop = header.index(")") + 1
        shape = repr(tuple(declared_shape)).replace(" ", "")
        new = header[:start] + shape + header[stop:]
        new = new.rstrip("\n").rstrip(" ")
        if len(new) + 1 > end - 10:
            return raw  # no room: keep the honest header
        new = new + " " * (end - 10 - len(new) - 1) + "\n"
        raw = raw[:10] + new.encode("latin1") + raw[end:]
    return raw


@given(data=st.data())
def test_npz_declared_sizes_are_checked_before_allocation(workdir, data):
    rows = data.draw(st.integers(1, 64), label="rows")
    cols = data.draw(st.integers(1, 16), label="cols")
    array = np.zeros((rows, cols), dtype=data.draw(st.sampled_from(["<f8", "<f4", "u1"]), label="dtype"))
    lie = data.draw(st.sampled_from([None, "shape", "zip_size", "both", "bomb"]), label="lie")
    declared = None
    if lie in ("shape", "both"):  # "both": the .npy header and the zip's size tell the same lie
        rows_lie = data.draw(st.sampled_from([2**20, 2**24] + ([2**31, 2**40] if lie == "shape" else [])), label="lie")
        declared = (rows_lie, cols)
    member = _npy_bytes(array, declared)
    method = zipfile.ZIP_DEFLATED if data.draw(st.booleans(), label="deflate") else zipfile.ZIP_STORED
    path = workdir / "d.npz"
    if lie == "bomb":  # a real payload of zeros many times its compressed size: refused, or read honestly
        big = np.zeros((data.draw(st.sampled_from([2**12, 2**16, 2**20]), label="bomb_rows"), 8), dtype="u1")
        member, method = _npy_bytes(big), zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(path, "w", compression=method) as archive:
        archive.writestr("X.npy", member)
    raw = bytearray(path.read_bytes())
    if lie in ("zip_size", "both"):  # the central directory's uncompressed size made huge
        size = data.draw(st.sampled_from([2**20, 2**31, 2**32 - 1]), label="size")
        if lie == "both":
            header_len = member.index(b"\n") + 1
            size = header_len + math.prod(declared) * array.dtype.itemsize
        at = raw.rindex(b"PK\x01\x02")
        raw[at + 24 : at + 28] = struct.pack("<I", size)
        path.write_bytes(bytes(raw))
    true_size = len(member)
    ds = bounded(load_array, path, limit=4 * true_size + SLACK)
    if ds is not None:
        assert ds.X.nbytes <= true_size


# --------------------------------------------------------------------------- class 6: float32's range
@given(data=st.data())
def test_values_beyond_float32_are_refused_with_a_clear_error(data):
    n, d = data.draw(st.integers(2, 12), label="n"), data.draw(st.integers(1, 5), label="d")
    X = np.asarray(data.draw(st.lists(st.floats(-1e6, 1e6), min_size=n * d, max_size=n * d)), dtype=np.float64)
    X = X.reshape(n, d)
    k = data.draw(st.integers(0, 3), label="k")
    for _ in range(k):
        big = data.draw(st.floats(FLOAT32_MAX * 1.0000001, 1e308), label="big")
        i, j = data.draw(st.integers(0, n - 1)), data.draw(st.integers(0, d - 1))
        X[i, j] = big * (-1 if data.draw(st.booleans()) else 1)
    beyond = bool((np.abs(X) > FLOAT32_MAX).any())
    if beyond:
        with pytest.raises(DataError, match="beyond float32's range"):
            check_finite(X)
        with pytest.raises(DataError, match="beyond float32's range"):
            AutoEncoder(hidden_dims=(), latent_dim=1, epochs=1, verbose=0).fit(X)
    else:
        check_finite(X)


def test_a_fitted_model_refuses_values_beyond_float32(rng):
    ae = AutoEncoder(hidden_dims=(), latent_dim=1, epochs=1, verbose=0).fit(rng.normal(size=(20, 3)))
    X = rng.normal(size=(4, 3))
    X[2, 1] = 1e39
    with pytest.raises(DataError, match=r"beyond float32's range .*row 2, column 1"):
        ae.transform(X)


# --------------------------------------------------------------------------- class 6: CSVs read back exactly
MISSING = ["", "NA", "nan", "NaN", "N/A", "null", "None", "?", " NA "]


@given(data=st.data())
def test_a_csv_reads_back_the_table_that_was_written(workdir, data):
    n = data.draw(st.integers(1, 12), label="rows")
    d = data.draw(st.integers(1, 5), label="cols")
    values = np.asarray(
        data.draw(st.lists(st.floats(-1e9, 1e9, allow_subnormal=False), min_size=n * d, max_size=n * d)), dtype=float
    ).reshape(n, d)
    missing = np.asarray(data.draw(st.lists(st.booleans(), min_size=n * d, max_size=n * d)), dtype=bool).reshape(n, d)
    if d == 1:
        missing[:] = False  # a one-column file's empty line is a blank line, not a missing cell
    header = data.draw(st.booleans(), label="header")
    bom = data.draw(st.booleans(), label="bom")
    sep = data.draw(st.sampled_from([",", ";", "\t", "|"]), label="sep")
    quoted = data.draw(st.booleans(), label="quoted")
    newline = data.draw(st.sampled_from(["\n", "\r\n"]), label="newline")
    blank_every = data.draw(st.sampled_from([0, 2, 3]), label="blank_every")
    names = [f"col{j}" for j in range(d)]
    lines, line_of_row = [], []
    if header:
        lines.append(sep.join(names))
    for i in range(n):
        if blank_every and i and i % blank_every == 0:
            lines.append("")
        cells = []
        for j in range(d):
            cell = data.draw(st.sampled_from(MISSING)) if missing[i, j] else repr(float(values[i, j]))
            cells.append(f'"{cell}"' if quoted and cell.strip() else cell)
        lines.append(sep.join(cells))
        line_of_row.append(len(lines))
    path = workdir / "t.csv"
    path.write_bytes(("\ufeff" if bom else "").encode() + (newline.join(lines) + newline).encode())
    with time_limit():
        ds = load_array(path, impute="median", delimiter=None if n > 1 or d > 1 else sep)
        assert ds.X.shape == (n, d), "a row was lost or gained"
        expected = np.where(missing, np.nan, values)
        np.testing.assert_array_equal(ds.X, expected)
        assert list(ds.feature_names) == (names if header else [f"x{j}" for j in range(d)])
        if missing.any():
            with pytest.raises(DataError) as err:
                load_array(path, delimiter=None if n > 1 or d > 1 else sep)
            i, j = np.argwhere(missing)[0]
            name = names[j] if header else f"x{j}"
            assert f"{int(missing.sum())} missing cell(s)" in str(err.value)
            assert f"line {line_of_row[i]} column {name!r}" in str(err.value)


# --------------------------------------------------------------------------- class 6: masked arrays
@given(data=st.data())
def test_a_masked_arrays_mask_is_never_ignored(data):
    n, d = data.draw(st.integers(2, 10), label="n"), data.draw(st.integers(1, 4), label="d")
    mask = np.asarray(data.draw(st.lists(st.booleans(), min_size=n * d, max_size=n * d)), dtype=bool).reshape(n, d)
    X = np.ma.masked_array(np.arange(n * d, dtype=float).reshape(n, d), mask=mask)
    if mask.any():
        with pytest.raises(DataError, match=rf"masked array with {int(mask.sum())} masked cell"):
            check_numeric(X)
        with pytest.raises(DataError, match="masked"):
            AutoEncoder(hidden_dims=(), latent_dim=1, epochs=1, verbose=0).fit(X)
    else:
        check_numeric(X)


def test_masked_cells_can_be_imputed_as_missing(rng):
    X = np.ma.masked_array(rng.normal(size=(30, 3)), mask=rng.random((30, 3)) < 0.1)
    ae = AutoEncoder(hidden_dims=(), latent_dim=1, epochs=1, verbose=0, impute="median").fit(X.filled(np.nan))
    assert np.isfinite(ae.transform(X.filled(np.nan))).all()
