import gzip
import struct

import numpy as np
import pytest

from lucidae.datasets import (
    load_array,
    load_dataset,
    load_digits,
    load_fashion_mnist,
    load_mnist,
    read_idx,
)
from lucidae.errors import DataError


def write_idx(path, array, compress=True):
    codes = {np.uint8: 0x08, np.int32: 0x0C, np.float32: 0x0D}
    code = codes[array.dtype.type]
    header = struct.pack(">BBBB", 0, 0, code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = array.astype(array.dtype.newbyteorder(">")).tobytes()
    opener = gzip.open if compress else open
    with opener(path, "wb") as fh:
        fh.write(header + payload)


def make_mnist_folder(folder, n_train=12, n_test=5, seed=0, compress=True):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    data = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n).astype(np.uint8)
        suffix = ".gz" if compress else ""
        write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", images, compress)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", labels, compress)
        data[prefix] = (images, labels)
    return data


def test_digits_is_in_unit_range():
    ds = load_digits()
    assert ds.X.shape == (1797, 64) and ds.X.min() == 0 and ds.X.max() == 1
    assert ds.y.shape == (1797,) and ds.image_shape == (8, 8)


@pytest.mark.parametrize("compress", [True, False])
def test_mnist_idx_round_trip(tmp_path, compress):
    data = make_mnist_folder(tmp_path / "mnist", compress=compress)
    ds = load_mnist(tmp_path / "mnist")
    images, labels = data["train"]
    assert ds.X.dtype == np.uint8 and ds.X.shape == (12, 784)
    np.testing.assert_array_equal(ds.X, images.reshape(12, 784))
    np.testing.assert_array_equal(ds.y, labels)
    assert ds.image_shape == (28, 28)
    test = load_fashion_mnist(tmp_path / "mnist", split="test")
    np.testing.assert_array_equal(test.X, data["t10k"][0].reshape(5, 784))
    assert test.name == "fashion_mnist"
    assert load_mnist(tmp_path / "mnist", split="all").n_samples == 17
    assert load_dataset(str(tmp_path / "mnist")).n_samples == 12


def test_idx_other_dtypes(tmp_path):
    arr = np.arange(6, dtype=np.float32).reshape(2, 3)
    write_idx(tmp_path / "f.idx.gz", arr)
    np.testing.assert_array_equal(read_idx(tmp_path / "f.idx.gz"), arr)


def test_truncated_idx_is_a_clear_error(tmp_path):
    make_mnist_folder(tmp_path / "m")
    path = tmp_path / "m" / "train-images-idx3-ubyte.gz"
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(raw[:-10]))
    with pytest.raises(DataError, match="truncated"):
        load_mnist(tmp_path / "m")


def test_bad_idx_magic(tmp_path):
    (tmp_path / "x.idx").write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(DataError, match="not an idx file"):
        read_idx(tmp_path / "x.idx")


def test_missing_mnist_files_say_what_to_put_there(tmp_path):
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz"):
        load_mnist(tmp_path)


def test_csv_with_header_keeps_names(tmp_path):
    (tmp_path / "t.csv").write_text("height,weight,label\n1.5,60,a\n1.8,80,b\n1.7,70,a\n")
    ds = load_array(tmp_path / "t.csv", target_column="label")
    assert ds.feature_names == ["height", "weight"]
    np.testing.assert_array_equal(ds.X, [[1.5, 60], [1.8, 80], [1.7, 70]])
    assert list(ds.y) == ["a", "b", "a"]


def test_csv_without_header(tmp_path):
    (tmp_path / "t.csv").write_text("1,2,3\n4,5,6\n")
    ds = load_array(tmp_path / "t.csv")
    assert ds.feature_names == ["x0", "x1", "x2"] and ds.X.shape == (2, 3)


def test_csv_non_numeric_column_is_named(tmp_path):
    (tmp_path / "t.csv").write_text("a,city,b\n1,Paris,2\n3,Rome,4\n")
    with pytest.raises(DataError, match=r"\['city'\].*'Paris'"):
        load_array(tmp_path / "t.csv")


def test_csv_ragged_row(tmp_path):
    (tmp_path / "t.csv").write_text("a,b\n1,2\n3\n")
    with pytest.raises(DataError, match="line 3 has 1 fields"):
        load_array(tmp_path / "t.csv")


def test_npy_images_and_npz(tmp_path):
    imgs = np.random.default_rng(0).random((4, 3, 5, 5)).astype(np.float32)
    np.save(tmp_path / "a.npy", imgs)
    ds = load_array(tmp_path / "a.npy")
    assert ds.X.shape == (4, 75) and ds.image_shape == (3, 5, 5)
    np.savez(tmp_path / "b.npz", X=imgs[:, 0, 0, :], y=np.arange(4))
    ds = load_array(tmp_path / "b.npz")
    assert ds.X.shape == (4, 5) and list(ds.y) == [0, 1, 2, 3]
    np.savez(tmp_path / "c.npz", first=np.zeros((2, 2)), second=np.ones((2, 2)))
    with pytest.raises(DataError, match="key="):
        load_array(tmp_path / "c.npz")
    assert load_array(tmp_path / "c.npz", key="second").X.sum() == 4


def test_npy_memmap(tmp_path):
    np.save(tmp_path / "a.npy", np.ones((10, 3), dtype=np.float32))
    ds = load_array(tmp_path / "a.npy", mmap=True)
    assert isinstance(ds.X, np.memmap)


def test_object_npy_is_refused(tmp_path):
    np.save(tmp_path / "o.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DataError):
        load_array(tmp_path / "o.npy")


def test_unknown_spec(tmp_path):
    with pytest.raises(DataError, match="neither a built-in dataset"):
        load_dataset("imagenet")
    (tmp_path / "x.parquet").write_text("")
    with pytest.raises(DataError, match="unknown file type"):
        load_dataset(str(tmp_path / "x.parquet"))


# --------------------------------------------------------------------------- declared sizes (#18, class 4)
def test_idx_feature_names_are_made_only_when_read(tmp_path):
    from lucidae.datasets import GeneratedNames

    make_mnist_folder(tmp_path / "m", n_train=2, n_test=1)
    ds = load_mnist(tmp_path / "m")
    assert isinstance(ds.feature_names, GeneratedNames) and len(ds.feature_names) == 784
    assert ds.feature_names[29] == "px1_1" and ds.feature_names[-1] == "px27_27"
    assert list(ds.feature_names)[:2] == ["px0_0", "px0_1"] and ds.feature_names == list(ds.feature_names)


def test_an_idx_larger_than_memory_is_refused_before_reading(tmp_path, monkeypatch):
    import lucidae.arrays

    monkeypatch.setattr(lucidae.arrays, "available_memory", lambda: 1000)
    folder = tmp_path / "m"
    make_mnist_folder(folder, n_train=2, n_test=1)
    with pytest.raises(DataError, match=r"needs about .* bytes of memory, but 1e\+03 are available"):
        load_mnist(folder)


def test_npz_members_that_cannot_hold_their_declared_size_are_refused(tmp_path):
    import zipfile

    path = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_BZIP2) as archive:
        archive.writestr("X.npy", b"\x93NUMPY" + bytes(100))
    with pytest.raises(DataError, match="zip method 12; numpy writes stored or deflated"):
        load_array(path)
    np.savez_compressed(path, X=np.zeros((4, 2)))
    raw = bytearray(path.read_bytes())
    at = raw.rindex(b"PK\x01\x02")
    raw[at + 24 : at + 28] = struct.pack("<I", 2**31)  # the central directory claims 2 GB
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError, match="compressed bytes cannot hold that much"):
        load_array(path)


# --------------------------------------------------------------------------- NaN in arrays, load options (#17)
def test_nan_in_an_npy_is_named_by_its_row_unless_imputed(tmp_path):
    X = np.ones((6, 2))
    X[4, 1] = np.nan
    np.save(tmp_path / "a.npy", X)
    with pytest.raises(DataError, match=r"1 NaN value\(s\) in 1 row\(s\) \(rows 4, counted from 0\).*impute='median'"):
        load_array(tmp_path / "a.npy")
    assert np.isnan(load_array(tmp_path / "a.npy", impute="median").X).sum() == 1
    with pytest.raises(DataError, match=r"\['id_column'\] apply to .csv tables only"):
        load_array(tmp_path / "a.npy", id_column="id")


def test_load_dataset_reads_tables_with_their_options(tmp_path):
    from lucidae.config import DataConfig
    from lucidae.datasets import read_options

    (tmp_path / "t.csv").write_text("id;a;b;note\nx;1;;n\ny;3;4;m\n")
    cfg = DataConfig(data=str(tmp_path / "t.csv"), id_column="id", drop="note", impute="mean")
    ds = load_dataset(cfg.data, **read_options(cfg))
    assert ds.feature_names == ["a", "b"] and ds.ids.tolist() == ["x", "y"] and np.isnan(ds.X[0, 1])
    # run.json keeps the options as a dict: the report reads the run's data the same way
    assert read_options(cfg.to_dict()) == read_options(cfg)
