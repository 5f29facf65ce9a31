"""Property tests: damaged files either load validly or raise a LucidaeError; nothing else.

Each test mutates a valid file (a model's ``config.json`` and ``model.safetensors``,
an ``.npy``, an ``.npz``, a ``.csv``, idx files) the way corruption and hand-editing do: keys
deleted or inserted, values replaced by other types or by huge and negative numbers,
bytes flipped, files truncated or replaced by random bytes. The outcome must be a valid
load (which then also works) or a :class:`~lucidae.errors.LucidaeError`: any other
exception, a hang (:func:`time_limit`) or a crash fails the test.

The "ci" hypothesis profile (tests/conftest.py) keeps these inside ``make test``;
``make fuzz`` runs them with the "fuzz" profile, 50 times as many examples.
"""

import copy
import gzip
import hashlib
import io
import json
import struct

import numpy as np
import pytest
import typer
from _limits import Hang, time_limit
from hypothesis import event, given, settings
from hypothesis import strategies as st

from lucidae import AutoEncoder, load
from lucidae.cli import info
from lucidae.datasets import load_array, load_mnist, read_idx
from lucidae.errors import LucidaeError
from lucidae.io import checksum

pytestmark = pytest.mark.fuzz


def outcome(fn, *args, **kwargs):
    """``fn(*args)``'s result, or None when it raised a LucidaeError; anything else propagates."""
    with time_limit():
        try:
            result = fn(*args, **kwargs)
        except LucidaeError as err:
            event(f"{fn.__name__}: {type(err).__name__}")  # --hypothesis-show-statistics shows the mix
            return None
    event(f"{fn.__name__}: valid")
    return result


# --------------------------------------------------------------------------- mutation strategies
INTERESTING_NUMBERS = [0, -1, 1, 2, 3, 255, 2**31, 2**32 - 1, 2**63, -(2**63), 10**12, 10**400, 1e308, -0.5, 0.5]

scalars = (
    st.none()
    | st.booleans()
    | st.sampled_from(INTERESTING_NUMBERS)
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)


VOCABULARY = [
    "relu",
    "linear",
    "sigmoid",
    "tanh",
    "dense",
    "identity",
    "minmax",
    "standard",
    "uint8",
    "auto",
    "cpu",
    "cuda",
    "cosine",
    "constant",
    "AutoEncoder",
    "TopKAutoEncoder",
    "F32",
    "F64",
    "I64",
    "",
]


def _like(value):
    """Values of the same JSON type as ``value``, mostly plausible ones."""
    if isinstance(value, bool):
        return st.booleans()
    if isinstance(value, int):
        return st.integers(-2, 70) | st.sampled_from(INTERESTING_NUMBERS)
    if isinstance(value, float):
        return st.floats(-2.0, 70.0) | st.sampled_from([0.0, 1e-300, 1e300])
    if isinstance(value, str):
        return st.sampled_from(VOCABULARY) | st.text(max_size=8)
    if isinstance(value, list):
        return st.lists(st.integers(-1, 9), max_size=4) | st.just(value[:-1])
    return json_values


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            yield from _paths(value, (*prefix, i))


def _parent(obj, path):
    for step in path[:-1]:
        obj = obj[step]
    return obj


def mutate_json(data, obj):
    """Apply one to three structural mutations to a deep copy of ``obj``; return it."""
    obj = copy.deepcopy(obj)
    for _ in range(data.draw(st.integers(1, 3), label="n_mutations")):
        paths = list(_paths(obj))
        kind = data.draw(st.sampled_from(["replace", "perturb", "delete", "insert"]), label="kind")
        if kind == "insert":
            containers = [p for p in paths if isinstance(_parent(obj, (*p, None)), (dict, list))]
            target = _parent(obj, (*data.draw(st.sampled_from(containers), label="where"), None))
            value = data.draw(json_values, label="value")
            if isinstance(target, dict):
                target[data.draw(st.text(max_size=12), label="key")] = value
            else:
                target.insert(data.draw(st.integers(0, len(target)), label="index"), value)
            continue
        candidates = [p for p in paths if p]
        if not candidates:
            continue
        path = data.draw(st.sampled_from(candidates), label="path")
        parent = _parent(obj, path)
        if kind == "delete":
            del parent[path[-1]]
        elif kind == "perturb":  # same type, plausible value: the mutations that still load, and must then work
            parent[path[-1]] = data.draw(_like(parent[path[-1]]), label="value")
        else:
            parent[path[-1]] = data.draw(json_values, label="value")
    return obj


def mutate_bytes(data, raw, hot=None):
    """Flip, insert, delete or truncate bytes; ``hot`` bytes at the start are hit more often."""
    raw = bytearray(raw)
    kind = data.draw(st.sampled_from(["flip", "insert", "delete", "truncate", "random"]), label="byte_kind")
    if kind == "random":
        return data.draw(st.binary(max_size=256), label="bytes")
    if not raw:
        return bytes(raw)
    limit = min(len(raw), hot) if hot and data.draw(st.booleans(), label="hot") else len(raw)
    at = data.draw(st.integers(0, limit - 1), label="at")
    if kind == "flip":
        raw[at] ^= data.draw(st.integers(1, 255), label="mask")
    elif kind == "insert":
        raw[at:at] = data.draw(st.binary(min_size=1, max_size=16), label="inserted")
    elif kind == "delete":
        del raw[at : at + data.draw(st.integers(1, 16), label="n_deleted")]
    else:
        del raw[at:]
    return bytes(raw)


# --------------------------------------------------------------------------- a valid model, built once
@pytest.fixture(scope="module")
def X():
    return np.random.default_rng(0).random((40, 5))


@pytest.fixture(scope="module")
def template(X, tmp_path_factory):
    ae = AutoEncoder(hidden_dims=(4,), latent_dim=2, epochs=2, verbose=0, random_state=0)
    ae.fit(X, image_shape=(1, 5))
    path = ae.save(tmp_path_factory.mktemp("template") / "run")
    return {
        "config": json.loads((path / "config.json").read_text()),
        "weights": (path / "model.safetensors").read_bytes(),
    }


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


def check_loaded_model(run, X):
    """A model that loaded must also work (or refuse its input with a LucidaeError) and describe itself."""
    est = outcome(load, run)
    if est is None:
        return
    Z = outcome(est.transform, X[:3])
    if Z is not None:
        assert Z.shape == (3, est.module_.latent_dim)
        outcome(est.inverse_transform, Z)
    outcome(est.score_samples, X[:3])
    try:  # the command's function itself: CliRunner would cost ten times the load
        with time_limit():
            info(run, as_json=False)
    except typer.Exit as err:
        assert err.exit_code == 1


def _write_model(run, config_bytes, weights):
    run.mkdir(exist_ok=True)
    (run / "config.json").write_bytes(config_bytes)
    (run / "model.safetensors").write_bytes(weights)


@given(data=st.data())
def test_mutated_config_json(template, workdir, X, data):
    config = mutate_json(data, template["config"])
    if isinstance(config, dict) and data.draw(st.booleans(), label="resealed"):  # as a forger would (#18)
        try:
            config["sha256"] = checksum(config, hashlib.sha256(template["weights"]).hexdigest())
        except LucidaeError:  # infinity: no JSON, no checksum
            pass
    text = json.dumps(config).encode()
    if data.draw(st.integers(0, 3), label="also_bytes") == 0:
        text = mutate_bytes(data, text)
    run = workdir / "config"
    _write_model(run, text, template["weights"])
    check_loaded_model(run, X)


def _split_header(raw):
    (length,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8 : 8 + length]), raw[8 + length :]


@given(data=st.data())
def test_mutated_safetensors_with_matching_checksum(template, workdir, X, data):
    # The checksum is recomputed, so only the header and shape checks stand between the file and torch.
    if data.draw(st.booleans(), label="structural"):
        header, body = _split_header(template["weights"])
        encoded = json.dumps(mutate_json(data, header)).encode()
        weights = struct.pack("<Q", len(encoded)) + encoded + body
    else:
        weights = mutate_bytes(data, template["weights"], hot=400)
    config = dict(template["config"])
    config["sha256"] = checksum(config, hashlib.sha256(weights).hexdigest())
    run = workdir / "weights"
    _write_model(run, json.dumps(config).encode(), weights)
    check_loaded_model(run, X)


# --------------------------------------------------------------------------- data files
@pytest.fixture(scope="module")
def npz_template():
    buffer = io.BytesIO()
    np.savez(buffer, X=np.arange(18, dtype=np.float64).reshape(6, 3), y=np.arange(6))
    return buffer.getvalue()


def check_dataset(ds):
    if ds is None:
        return
    assert ds.X.ndim == 2 and ds.X.shape[0] >= 1 and ds.X.shape[1] >= 1
    assert ds.X.dtype.kind in "biuf"
    assert len(ds.feature_names) == ds.X.shape[1]
    assert ds.y is None or ds.y.shape == (ds.X.shape[0],)


ARRAY_DTYPES = ["<f8", "<f4", ">f4", "<i8", "u1", "?", "<c16", "<U3", "V4", "<M8[s]", "O"]


@given(data=st.data())
def test_mutated_npz(npz_template, workdir, data):
    if data.draw(st.booleans(), label="structural"):
        shape = tuple(data.draw(st.lists(st.integers(0, 4), max_size=5), label="shape"))
        dtype = np.dtype(data.draw(st.sampled_from(ARRAY_DTYPES), label="dtype"))
        arrays = {data.draw(st.sampled_from(["X", "y", "Z"]), label="name"): np.zeros(shape, dtype=dtype)}
        if data.draw(st.booleans(), label="with_y"):
            arrays["y"] = np.zeros(data.draw(st.integers(0, 6), label="n_y"))
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)  # object arrays are pickled here: the loader must refuse them
        raw = buffer.getvalue()
    else:
        raw = mutate_bytes(data, npz_template, hot=200)
    path = workdir / "data.npz"
    path.write_bytes(raw)
    check_dataset(outcome(load_array, path))


@given(data=st.data())
def test_mutated_npy(workdir, data):
    buffer = io.BytesIO()
    if data.draw(st.booleans(), label="structural"):
        shape = tuple(data.draw(st.lists(st.integers(0, 4), max_size=5), label="shape"))
        dtype = np.dtype(data.draw(st.sampled_from(ARRAY_DTYPES), label="dtype"))
        np.save(buffer, np.zeros(shape, dtype=dtype))  # object arrays are pickled: the loader must refuse them
        raw = buffer.getvalue()
    else:
        np.save(buffer, np.arange(18, dtype=np.float32).reshape(6, 3))
        raw = mutate_bytes(data, buffer.getvalue(), hot=128)  # the header is the first 128 bytes
    path = workdir / "data.npy"
    path.write_bytes(raw)
    check_dataset(outcome(load_array, path, mmap=data.draw(st.booleans(), label="mmap")))


CSV_ALPHABET = st.sampled_from(
    list("0123456789,.-+eE \n\r\"'abcnaifNAIF_\t;") + ["\x00", "\u0661", "\u00e9", "inf", "nan"]
)


@given(data=st.data())
def test_mutated_csv(workdir, data):
    kind = data.draw(st.sampled_from(["text", "mutated", "bytes"]), label="csv_kind")
    if kind == "text":
        raw = "".join(data.draw(st.lists(CSV_ALPHABET, max_size=60), label="text")).encode("utf-8")
    elif kind == "mutated":
        raw = mutate_bytes(data, b"a,b,c\n1,2,3\n4.5,-6,7e3\n8,9,10\n")
    else:
        raw = data.draw(st.binary(max_size=120), label="bytes")
    path = workdir / "data.csv"
    path.write_bytes(raw)
    target = data.draw(st.sampled_from([None, "a", "b", "zz"]), label="target")
    check_dataset(outcome(load_array, path, target_column=target))


def _idx_bytes(array, code=0x08):
    header = struct.pack(">BBBB", 0, 0, code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


@given(data=st.data())
def test_mutated_idx(workdir, data):
    valid = _idx_bytes(np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4))
    kind = data.draw(st.sampled_from(["header", "bytes", "gzip_bytes"]), label="idx_kind")
    if kind == "header":
        ndim = data.draw(st.integers(0, 20), label="ndim")
        dims = data.draw(st.lists(st.sampled_from([0, 1, 2, 3, 2**16, 2**31, 2**32 - 1]), min_size=ndim, max_size=ndim))
        code = data.draw(st.sampled_from([0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E, 0x00, 0xFF]), label="code")
        raw = struct.pack(">BBBB", 0, 0, code, ndim) + struct.pack(f">{ndim}I", *dims)
        raw += data.draw(st.binary(max_size=64), label="payload")
    else:
        raw = mutate_bytes(data, valid, hot=20)
    compressed = data.draw(st.booleans(), label="gz") or kind == "gzip_bytes"
    name = "train-images-idx3-ubyte" + (".gz" if compressed else "")
    if compressed:
        raw = gzip.compress(raw)
        if kind == "gzip_bytes":
            raw = mutate_bytes(data, raw)
    folder = workdir / "mnist"
    folder.mkdir(exist_ok=True)
    for stale in folder.iterdir():
        stale.unlink()
    (folder / name).write_bytes(raw)
    array = outcome(read_idx, folder / name)
    if array is not None:
        assert isinstance(array, np.ndarray) and array.dtype.isnative
    labels = np.zeros(2, dtype=np.uint8)
    (folder / "train-labels-idx1-ubyte").write_bytes(_idx_bytes(labels))
    check_dataset(outcome(load_mnist, folder))


def test_time_limit_catches_a_hang():
    # The guard itself must work, or the property tests above could not detect a hang.
    with pytest.raises(Hang), time_limit(0.2):
        while True:
            pass


def test_mutation_helpers_do_mutate():
    # A mutator that silently returned its input would make every property above vacuous.
    @given(data=st.data())
    @settings(max_examples=30, database=None)
    def run(data):
        original = {"a": [1, 2, {"b": "c"}], "d": 1.5}
        mutate_json(data, original)
        assert original == {"a": [1, 2, {"b": "c"}], "d": 1.5}  # the template is never changed in place

    run()
    changed = 0

    @given(data=st.data())
    @settings(max_examples=30, database=None)
    def count(data):
        nonlocal changed
        changed += mutate_bytes(data, b"0123456789abcdef") != b"0123456789abcdef"

    count()
    assert changed >= 20
