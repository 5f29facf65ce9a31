"""Bad input gets a clear error; untrusted model files are checked before anything is allocated or run.

One test per case (issue 9, items 1 and 3). Each asserts the parts of the message a user
needs: what was wrong, where, what was expected.
"""

import gzip
import json
import pickle
import shutil
import struct

import numpy as np
import pytest
from typer.testing import CliRunner

import lucidae.estimators
from lucidae import AutoEncoder, load
from lucidae.cli import app
from lucidae.datasets import load_array, load_mnist, read_idx
from lucidae.errors import ConfigError, CorruptFileError, DataError, LucidaeError
from lucidae.estimators import estimator_for


def _ae(**kw):
    params = dict(hidden_dims=(4,), latent_dim=2, epochs=1, verbose=0, random_state=0)
    params.update(kw)
    return AutoEncoder(**params)


@pytest.fixture(scope="module")
def X():
    return np.random.default_rng(0).random((60, 5))


@pytest.fixture(scope="module")
def fitted(X):
    return _ae().fit(X)


@pytest.fixture(scope="module")
def saved(fitted, tmp_path_factory):
    return fitted.save(tmp_path_factory.mktemp("template") / "run")


@pytest.fixture
def run(saved, tmp_path):
    """A fresh copy of a valid model folder to damage."""
    return shutil.copytree(saved, tmp_path / "run")


def _config(run):
    return json.loads((run / "config.json").read_text())


def _write_config(run, config):
    (run / "config.json").write_text(json.dumps(config))


def _reseal(run, config=None):
    """Record the checksum of the folder's weights and config as they are now, as a forger would."""
    from lucidae.io import checksum, sha256_of

    config = _config(run) if config is None else config
    config["sha256"] = checksum(config, sha256_of(run / "model.safetensors"))
    _write_config(run, config)


def _rewrite_header(run, mutate):
    """Change the safetensors header and re-record the checksum, so only the header check can object."""
    raw = (run / "model.safetensors").read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + length])
    mutate(header)
    new = json.dumps(header).encode()
    data = struct.pack("<Q", len(new)) + new + raw[8 + length :]
    (run / "model.safetensors").write_bytes(data)
    _reseal(run)


@pytest.fixture
def no_build(monkeypatch):
    """Fail the test if load() builds (allocates) a module."""

    def refuse(cfg):
        raise AssertionError(f"build_model was called for {cfg}")

    monkeypatch.setattr(lucidae.estimators.persist, "build_model", refuse)


# --------------------------------------------------------------------------- estimator input
def test_nan_and_inf_counted_with_first_position(X):
    bad = X.copy()
    bad[7, 3] = np.nan
    bad[9, 1] = np.inf
    bad[30, 0] = -np.inf
    with pytest.raises(DataError, match=r"3 NaN or infinite value\(s\) \(1 NaN, 2 infinite\); the first is at row 7, "):
        _ae().fit(bad)
    with pytest.raises(DataError, match=r"row 7, column 3\. Remove or impute them before fitting"):
        _ae().fit(bad)


def test_nan_at_transform_says_where(fitted, X):
    bad = X[:10].copy()
    bad[4, 2] = np.nan
    for method in (fitted.transform, fitted.score_samples, fitted.reconstruct):
        with pytest.raises(DataError, match=r"1 NaN or infinite value\(s\).*row 4, column 2.*before encoding"):
            method(bad)


def test_wrong_feature_count_keeps_sklearn_message(fitted, X):
    with pytest.raises(ValueError, match="X has 3 features, but AutoEncoder is expecting 5 features as input") as err:
        fitted.transform(X[:, :3])
    assert isinstance(err.value, DataError)
    assert "same columns, in the same order" in str(err.value)


def test_empty_data():
    with pytest.raises(DataError, match=r"0 sample\(s\) \(shape=\(0, 5\)\) while a minimum of 1 is required"):
        _ae().fit(np.empty((0, 5)))


def test_one_sample(X):
    with pytest.raises(DataError, match=r"1 sample\(s\).*minimum of 2 is required to train"):
        _ae().fit(X[:1])


def test_one_sample_is_fine_after_fit(fitted, X):
    assert fitted.transform(X[:1]).shape == (1, 2)


def test_string_array():
    with pytest.raises(DataError, match=r"X holds strings \(dtype <U3\), not numbers.*astype\(float\)"):
        _ae().fit(np.array([["1", "2"], ["3", "abc"]]))


def test_object_array_names_first_non_number(X):
    bad = X.astype(object)
    bad[3, 2] = "n/a"
    with pytest.raises(DataError, match=r"X\[3, 2\] = 'n/a' is not a number \(X has dtype object\)"):
        _ae().fit(bad)


def test_object_array_of_numbers_is_accepted(X):
    ae = _ae().fit(X.astype(object))
    np.testing.assert_array_equal(ae.transform(X.astype(object)), ae.transform(X))


def test_dataframe_text_columns_are_named():
    from lucidae.validation import check_numeric

    class Frame:  # the parts of a pandas DataFrame check_numeric reads (pandas is not a dependency)
        columns = ["size", "colour", "codes"]
        dtypes = [np.dtype(float), np.dtype(object), np.dtype(object)]
        iloc = None
        data = {"size": np.ones(2), "colour": np.array(["red", "blue"], dtype=object), "codes": np.array(["1", 2])}

        def __getitem__(self, name):
            return self.data[name]

    with pytest.raises(DataError, match=r"X has non-numeric column\(s\) \['colour'\]\. Encode them"):
        check_numeric(Frame())


def test_dates_are_not_silently_seconds():
    with pytest.raises(DataError, match=r"X holds dates or durations \(dtype datetime64\[s\]\), not plain numbers"):
        _ae().fit(np.zeros((5, 2), dtype="M8[s]"))


def test_complex_numbers(X):
    with pytest.raises(DataError, match="Complex data not supported: X has dtype complex128"):
        _ae().fit(X + 1j)


def test_ragged_rows():
    with pytest.raises(DataError, match="Rows must all have the same number of values"):
        _ae().fit([[1.0, 2.0], [3.0]])


def test_inverse_transform_bad_codes(fitted):
    with pytest.raises(DataError, match=r"codes\[0, 1\] = 'x' is not a number"):
        fitted.inverse_transform(np.array([[0.0, "x"]], dtype=object))
    with pytest.raises(DataError, match=r"codes contains 1 NaN .* row 1, column 0.*before decoding"):
        fitted.inverse_transform(np.array([[0.0, 0.0], [np.nan, 0.0]]))
    with pytest.raises(DataError, match=r"shape \(n_samples, 2\) with n_samples >= 1, got \(0, 2\)"):
        fitted.inverse_transform(np.empty((0, 2)))


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"latent_dim": 0}, "latent_dim=0 is invalid: expected an integer >= 1"),
        ({"lr": -0.1}, r"lr=-0.1 is invalid: expected a number in \(0.0, 10.0\]"),
        ({"hidden_dims": (8, -2)}, r"hidden_dims=\(8, -2\) is invalid: expected a tuple of integers >= 1"),
        ({"batch_size": 2.5}, "batch_size=2.5 is invalid: expected an integer >= 1"),
        ({"activation": "swish"}, r"activation='swish' is not known; allowed values are \['relu'"),
    ],
)
def test_invalid_parameters(X, kwargs, fragment):
    with pytest.raises(ConfigError, match=fragment):
        _ae(**kwargs).fit(X)


def test_numpy_scalar_parameters_are_numbers(X, tmp_path):
    # np.arange in a parameter grid gives np.int64; it used to be refused as "latent_dim=2 is invalid".
    ae = _ae(latent_dim=np.int64(2), hidden_dims=tuple(np.array([4])), lr=np.float32(0.01)).fit(X)
    assert load(ae.save(tmp_path / "m")).get_params()["latent_dim"] == 2


def test_unknown_model_name_lists_allowed():
    with pytest.raises(ConfigError, match=r"model='nope' is not known; allowed values are \[.*'dense'"):
        estimator_for("nope")


def test_cli_unknown_model_name_exits_cleanly(tmp_path):
    result = CliRunner().invoke(app, ["train", "--model", "nope", "--out", str(tmp_path / "r")])
    assert result.exit_code == 2  # a usage error, refused when the command line is parsed
    assert "'nope' is not one of" in result.output and "'dense'" in result.output
    assert "Traceback" not in result.output


# --------------------------------------------------------------------------- data files
def test_csv_non_numeric_columns_are_named(tmp_path):
    path = tmp_path / "t.csv"
    # the empty cell of 'd' is a missing cell, not text (#17): only 'b' and 'c' are not numeric
    path.write_text("a,b,c,d\n1,x,3,\n4,5,y,7\n")
    with pytest.raises(DataError, match=r"column\(s\) \['b', 'c'\] are not numeric \(for example 'x' in 'b' on line 2"):
        load_array(path)


def test_csv_parses_what_it_accepts(tmp_path):
    # Python's float() accepts "1_000" and non-ASCII digits; numpy's parser used to crash on them.
    path = tmp_path / "t.csv"
    path.write_text("a,b\n1_000,\u0661\u0662\n2,3\n", encoding="utf-8")
    assert load_array(path).X.tolist() == [[1000.0, 12.0], [2.0, 3.0]]


def test_csv_with_only_the_target_column(tmp_path):
    # Found by test_fuzz.py: this used to end in an IndexError.
    path = tmp_path / "t.csv"
    path.write_text("a\n0\n")
    with pytest.raises(DataError, match="no feature columns besides target_column='a'"):
        load_array(path, target_column="a")


def test_npy_with_objects_is_refused_without_unpickling(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.npy"
    np.save(path, np.array([_Exploit(marker)], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="never unpickles"):
        load_array(path)
    assert not marker.exists()


def test_npy_truncated(tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, np.zeros((10, 3)))
    path.write_bytes(path.read_bytes()[:-16])
    with pytest.raises(DataError, match=r"declares shape \(10, 3\) of float64 \(240 bytes\) but holds 224 bytes"):
        load_array(path)


def test_npy_header_with_unbalanced_brackets(tmp_path):
    # Found by test_fuzz.py: numpy raised tokenize.TokenError, which is not a ValueError.
    path = tmp_path / "x.npy"
    np.save(path, np.zeros((6, 3), dtype=np.float32))
    raw = bytearray(path.read_bytes())
    raw[63] ^= 8  # ')' -> '!' inside "'shape': (6, 3)"
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError, match="is not a readable .npy file"):
        load_array(path)


def test_npz_lying_header_is_refused_before_allocation(tmp_path):
    import zipfile

    from numpy.lib import format as npformat

    path = tmp_path / "x.npz"
    with zipfile.ZipFile(path, "w") as archive, archive.open("X.npy", "w") as fh:
        # A header that claims 8 TB, followed by 8 bytes.
        npformat.write_array_header_1_0(fh, {"descr": "<f8", "fortran_order": False, "shape": (10**12,)})
        fh.write(b"\0" * 8)
    with pytest.raises(DataError, match=r"declares shape \(1000000000000,\) of float64 \(8000000000000 bytes\)"):
        load_array(path)


def test_npz_non_array_member(tmp_path):
    import zipfile

    path = tmp_path / "x.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("notes.txt", "hello")
    with pytest.raises(DataError, match="'notes.txt' is not an .npy member"):
        load_array(path)


def test_npz_labels_of_wrong_length(tmp_path):
    path = tmp_path / "x.npz"
    np.savez(path, X=np.zeros((4, 2)), y=np.zeros(3))
    with pytest.raises(DataError, match=r"labels 'y' have shape \(3,\) but there are 4 samples"):
        load_array(path)


def test_empty_array_file(tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, np.zeros((0, 3, 3)))
    with pytest.raises(DataError, match=r"empty array of shape \(0, 3, 3\)"):
        load_array(path)


def _idx(path, header, payload=b""):
    with gzip.open(path, "wb") as fh:
        fh.write(header + payload)


def test_idx_dimensions_whose_product_overflows_int64(tmp_path):
    path = tmp_path / "x-idx2-ubyte.gz"
    _idx(path, struct.pack(">BBBBII", 0, 0, 8, 2, 2**32 - 1, 2**32 - 1))
    with pytest.raises(DataError, match="implausibly large"):
        read_idx(path)


def test_idx_too_many_dimensions(tmp_path):
    path = tmp_path / "x-idx-ubyte.gz"
    _idx(path, struct.pack(">BBBB", 0, 0, 8, 200) + b"\0\0\0\1" * 200)
    with pytest.raises(DataError, match="declares 200 dimensions; idx data has at most 16"):
        read_idx(path)


def test_idx_uncompressed_truncated_is_refused_before_reading(tmp_path):
    path = tmp_path / "x-idx1-ubyte"
    path.write_bytes(struct.pack(">BBBBI", 0, 0, 8, 1, 10**9) + b"\1\2\3")
    with pytest.raises(DataError, match=r"truncated: its header declares shape \(1000000000,\).*whole file has 11"):
        read_idx(path)


def test_idx_train_and_test_of_different_sizes(tmp_path):
    folder = tmp_path / "mnist"
    folder.mkdir()
    for prefix, n, side in (("train", 3, 28), ("t10k", 2, 20)):
        _idx(
            folder / f"{prefix}-images-idx3-ubyte.gz",
            struct.pack(">BBBBIII", 0, 0, 8, 3, n, side, side),
            b"\0" * (n * side * side),
        )
        _idx(folder / f"{prefix}-labels-idx1-ubyte.gz", struct.pack(">BBBBI", 0, 0, 8, 1, n), b"\0" * n)
    with pytest.raises(DataError, match="t10k images are 20x20 but the others are 28x28"):
        load_mnist(folder, split="all")


def test_cli_bad_csv_exits_with_the_column_named(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,colour\n1,red\n2,blue\n")
    result = CliRunner().invoke(app, ["train", "--data", str(path), "--out", str(tmp_path / "r")])
    assert result.exit_code == 1 and "['colour'] are not numeric" in result.output


def test_cli_encode_wrong_feature_count_exits_cleanly(saved, tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,b\n1,2\n3,4\n")
    result = CliRunner().invoke(app, ["encode", str(saved), "--data", str(path), "--out", str(tmp_path / "z.npy")])
    assert result.exit_code == 1, result.output
    assert "has 2 features, but the model in" in result.output and "was trained on 5" in result.output


@pytest.mark.parametrize(
    "record",
    [
        {"test_indices": ["a"]},
        {"test_indices": [10**30]},
        {"test_indices": [-1]},
        {"data": "digits"},
        {"metrics": {"test_fvu": "low"}},
        [1, 2],
    ],
)
def test_run_record_shapes_are_checked(tmp_path, record):
    from lucidae.io import read_run_record

    (tmp_path / "run.json").write_text(json.dumps(record))
    with pytest.raises(CorruptFileError, match="is not a lucidae run record"):
        read_run_record(tmp_path)


def test_cli_encode_to_an_unwritable_place(saved, tmp_path):
    data = tmp_path / "t.csv"
    data.write_text("1,2,3,4,5\n6,7,8,9,10\n")
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    result = CliRunner().invoke(app, ["encode", str(saved), "--data", str(data), "--out", str(blocker / "z.npy")])
    assert result.exit_code == 1, result.output
    assert "could not be written" in result.output and "Pick a folder you can write to" in result.output


def test_cli_info_with_damaged_run_record(run):
    (run / "run.json").write_text("{not json")
    result = CliRunner().invoke(app, ["info", str(run)])
    assert result.exit_code == 1 and "run.json is not valid JSON" in result.output


# --------------------------------------------------------------------------- untrusted model folders
class _Exploit:
    """Unpickling this creates ``marker``: the proof that something was unpickled."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickle_in_place_of_weights_is_never_unpickled(run, tmp_path):
    marker = tmp_path / "pwned"
    data = pickle.dumps(_Exploit(marker))
    (run / "model.safetensors").write_bytes(data)
    _reseal(run)
    with pytest.raises(CorruptFileError):
        load(run)
    assert not marker.exists()


def test_valid_folder_loads_and_matches(run, fitted, X):
    np.testing.assert_array_equal(load(run).transform(X), fitted.transform(X))


def test_unknown_config_key(run):
    _write_config(run, {**_config(run), "colour": "red"})
    with pytest.raises(CorruptFileError, match=r"unknown key\(s\) \['colour'\]; the keys lucidae writes are"):
        load(run)


def test_missing_config_key(run):
    config = _config(run)
    del config["params"]
    _write_config(run, config)
    with pytest.raises(CorruptFileError, match=r"required key\(s\) \['params'\] are missing"):
        load(run)


def test_wrong_type_in_config(run):
    _write_config(run, {**_config(run), "n_features_in": "5"})
    with pytest.raises(CorruptFileError, match=r"n_features_in must be an integer in \[1, 100000000\], found '5'"):
        load(run)


def test_negative_size_in_config(run, no_build):
    config = _config(run)
    config["model"]["latent_dim"] = -3
    _write_config(run, config)
    with pytest.raises(CorruptFileError, match="model is not a valid ModelConfig: latent_dim=-3 is invalid"):
        load(run)


def test_absurd_but_consistent_config_is_refused_before_allocation(run, no_build):
    # 100 million inputs and a million hidden units would be 800 TB of weights.
    config = _config(run)
    n = 100_000_000
    config["model"].update(input_dim=n, hidden_dims=[1_000_000])
    config["params"]["hidden_dims"] = [1_000_000]
    config.update(n_features_in=n, feature_names=None, image_shape=None)
    _write_config(run, config)
    with pytest.raises(CorruptFileError, match=r"tensor 'module.*' has shape \[.*\] .* but config.json implies shape"):
        load(run)


def test_unknown_estimator_lists_allowed(run):
    _write_config(run, {**_config(run), "estimator": "os.system"})
    with pytest.raises(
        CorruptFileError, match=r"estimator='os.system' is not known; allowed values are \[.*'AutoEncoder'"
    ):
        load(run)


def test_params_rejected_by_the_estimator(run):
    config = _config(run)
    config["params"]["lr"] = -1
    _write_config(run, config)
    with pytest.raises(CorruptFileError, match="params are invalid: lr=-1 is invalid"):
        load(run)


def test_params_the_estimator_does_not_accept(run):
    config = _config(run)
    config["params"]["__class__"] = "x"
    _write_config(run, config)
    with pytest.raises(CorruptFileError, match=r"params has key\(s\) \['__class__'\] that AutoEncoder does not accept"):
        load(run)


def test_feature_names_of_wrong_length(run):
    _write_config(run, {**_config(run), "feature_names": ["a"]})
    with pytest.raises(CorruptFileError, match="feature_names must be a list of 5 strings"):
        load(run)


def test_tensor_shape_disagreeing_with_config(run, no_build):
    def grow(header):
        entry = header["module.encoder.0.weight"]
        entry["shape"] = [entry["shape"][1], entry["shape"][0]]  # same bytes, transposed shape

    _rewrite_header(run, grow)
    with pytest.raises(
        CorruptFileError, match=r"'module.encoder.0.weight' has shape \[5, 4\] .* implies shape \[4, 5\]"
    ):
        load(run)


def test_tensor_dtype_disagreeing_with_config(run, no_build):
    def retype(header):
        entry = header["module.encoder.0.weight"]
        entry["dtype"] = "I32"  # same size, wrong kind

    _rewrite_header(run, retype)
    with pytest.raises(CorruptFileError, match=r"dtype I32, but config.json implies shape \[4, 5\] and dtype F32"):
        load(run)


def test_extra_tensor(run, no_build):
    def add(header):
        header["sneaky"] = dict(header["scaler.scale"])

    _rewrite_header(run, add)
    with pytest.raises(CorruptFileError, match=r"holds tensor\(s\) \['sneaky'\] that config.json does not describe"):
        load(run)


def test_tensor_offsets_outside_the_file(run, no_build):
    def stretch(header):
        entry = header["scaler.scale"]
        entry["shape"] = [10**9]
        entry["data_offsets"] = [0, 8 * 10**9]

    _rewrite_header(run, stretch)
    with pytest.raises(CorruptFileError, match=r"needs 8000000000 bytes but its offsets .* of the \d+ data bytes"):
        load(run)


def test_absurd_header_length(run, no_build):
    path = run / "model.safetensors"
    data = struct.pack("<Q", 2**62) + path.read_bytes()[8:]
    path.write_bytes(data)
    _reseal(run)
    with pytest.raises(CorruptFileError, match=r"declares a 4611686018427387904-byte header"):
        load(run)


def test_zero_scale_is_refused(run):
    from safetensors.torch import load_file, save_file

    tensors = load_file(run / "model.safetensors")
    tensors["scaler.scale"][2] = 0.0
    save_file(tensors, run / "model.safetensors")
    _reseal(run)
    with pytest.raises(CorruptFileError, match="NaN, infinite or zero entries"):
        load(run)


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("[" * 100_000 + "]" * 100_000, "not valid JSON"),
        ('{"format_version": ' + "9" * 5000 + "}", "not valid JSON"),
        ('{"format_version": 1', "not valid JSON"),
        ("\xff\xfe", "not valid JSON"),
        ("[1, 2]", "must hold a JSON object"),
    ],
)
def test_unparseable_config(run, text, fragment):
    (run / "config.json").write_bytes(text.encode("latin-1"))
    with pytest.raises(CorruptFileError, match=fragment):
        load(run)


def test_every_np_load_and_torch_load_in_the_package_refuses_pickle():
    # AST, not grep: a call hidden in a docstring does not count, and one split over lines does.
    import ast
    import pathlib

    root = pathlib.Path(lucidae.__file__).parent
    calls = []
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "load"):
                continue
            owner = node.func.value
            if isinstance(owner, ast.Name) and owner.id in ("np", "numpy", "torch"):
                safe = {
                    "np": ("allow_pickle", False),
                    "numpy": ("allow_pickle", False),
                    "torch": ("weights_only", True),
                }
                name, value = safe[owner.id]
                kw = {k.arg: k.value for k in node.keywords}
                ok = name in kw and isinstance(kw[name], ast.Constant) and kw[name].value is value
                calls.append((f"{path.name}:{node.lineno}", ok))
    assert calls, "expected the data loaders' np.load calls"
    assert [c for c, ok in calls if not ok] == []


def test_every_error_is_a_lucidae_error():
    for cls in (DataError, ConfigError, CorruptFileError):
        assert issubclass(cls, LucidaeError) and issubclass(cls, ValueError)


def test_streamed_npy_with_a_damaged_header_is_a_data_error(tmp_path):
    """A flipped byte in the header of a .npy given to fit by path is refused before numpy parses it."""
    from lucidae.streaming import open_array

    path = tmp_path / "d.npy"
    np.save(path, np.zeros((4, 3), dtype=np.float32))
    raw = bytearray(path.read_bytes())
    raw[raw.index(b"{") + 1] = ord("[")  # an unbalanced bracket made numpy raise tokenize.TokenError
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError):
        open_array(path)
