import math
from collections import Counter

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from lucidae import AutoEncoder
from lucidae.applications import compress as codec
from lucidae.applications.entropy import decode, encode, ideal_bits
from lucidae.errors import ConfigError, CorruptFileError, DataError


# --------------------------------------------------------------------------- entropy coder
@given(
    st.integers(1, 9).flatmap(
        lambda bits: st.tuples(
            st.just(1 << bits),
            st.lists(st.lists(st.integers(0, (1 << bits) - 1), min_size=5, max_size=5), min_size=0, max_size=40),
        )
    )
)
def test_arithmetic_coder_round_trips(case):
    alphabet, rows = case
    streams = [list(col) for col in zip(*rows)] if rows else [[] for _ in range(5)]
    data = encode(streams, alphabet)
    assert decode(data, n_streams=5, length=len(rows), alphabet=alphabet) == streams


@pytest.mark.parametrize("alphabet, concentration", [(2, 0.5), (16, 0.2), (256, 1.0), (256, 0.05)])
def test_code_length_is_within_bytes_of_the_ideal(alphabet, concentration):
    rng = np.random.default_rng(alphabet)
    p = rng.dirichlet(np.full(alphabet, concentration))
    streams = [rng.choice(alphabet, size=1500, p=p).tolist() for _ in range(3)]
    data = encode(streams, alphabet)
    assert decode(data, 3, 1500, alphabet) == streams
    assert 8 * len(data) <= ideal_bits(streams, alphabet) + 16
    assert 8 * len(data) >= ideal_bits(streams, alphabet) - 1  # no free lunch: a bug that drops bits shows here


def test_adaptive_code_approaches_the_empirical_entropy():
    rng = np.random.default_rng(0)
    p = np.array([0.5, 0.25, 0.125, 0.0625, 0.0625])
    s = rng.choice(5, size=20000, p=p).tolist()
    counts = Counter(s)
    entropy = -sum(c / len(s) * math.log2(c / len(s)) for c in counts.values())  # about 1.875 bits
    bits_per_symbol = 8 * len(encode([s], 8)) / len(s)
    assert entropy <= bits_per_symbol < entropy + 0.02


def test_symbols_outside_the_alphabet_are_refused():
    with pytest.raises(ValueError, match="outside range"):
        encode([[4]], alphabet=4)
    with pytest.raises(ValueError, match="power of two"):
        encode([[1]], alphabet=5)


# --------------------------------------------------------------------------- image codec
@pytest.fixture(scope="module")
def model(digits):
    return AutoEncoder(latent_dim=12, epochs=15, verbose=0, random_state=0).fit(
        digits.X[:1500], image_shape=digits.image_shape
    )


def test_quantisation_error_is_at_most_half_a_step(rng):
    Z = rng.normal(size=(200, 5)).astype(np.float32)
    for bits in (4, 8):
        q, lo, hi = codec.quantise(Z, bits)
        assert q.min() >= 0 and q.max() == (1 << bits) - 1
        step = (hi - lo) / ((1 << bits) - 1)
        assert np.all(np.abs(codec.dequantise(q, lo, hi, bits) - Z) <= step / 2 + 1e-6)


def test_round_trip_and_rate_distortion(model, digits):
    X = digits.X[1500:]
    images = X.reshape(-1, 8, 8)
    unquantised = codec.psnr(X, model.reconstruct(X))
    sizes, quality = {}, {}
    for bits in (8, 4):
        data = codec.compress(model, images, bits=bits)
        out = codec.decompress(data, model)
        assert out.shape == images.shape and out.dtype == np.float32
        # the decoder reproduces exactly what quantising the codes by hand gives
        q, lo, hi = codec.quantise(model.transform(X), bits)
        np.testing.assert_allclose(out.reshape(len(X), -1), model.inverse_transform(codec.dequantise(q, lo, hi, bits)))
        sizes[bits], quality[bits] = len(data), codec.psnr(X, out.reshape(len(X), -1))
        header = 4 + 8 + 8 + 4 + 8 + 8 * 12 + 4 + 4
        # the payload costs what the adaptive models say, computed independently
        assert abs((len(data) - header) - ideal_bits(q.T.tolist(), 1 << bits) / 8) <= 4
    assert unquantised - quality[8] < 0.1  # 8 bits: quantisation costs next to nothing
    assert quality[4] < quality[8] and sizes[4] < 0.7 * sizes[8]
    assert quality[4] > unquantised - 3.0


def test_uint8_images_come_back_as_uint8(model, digits):
    X8 = np.rint(digits.X[:50] * 255).astype(np.uint8)
    ae = AutoEncoder(latent_dim=4, epochs=2, verbose=0, random_state=0).fit(X8)
    out = codec.decompress(codec.compress(ae, X8), ae)
    assert out.dtype == np.uint8 and out.shape == X8.shape


def test_every_damaged_or_truncated_stream_is_refused(model, digits):
    data = codec.compress(model, digits.X[:6], bits=4)
    for i in range(len(data)):
        bad = bytearray(data)
        bad[i] ^= 0x5A
        with pytest.raises(CorruptFileError):
            codec.decompress(bytes(bad), model)
    for n in range(len(data)):
        with pytest.raises(CorruptFileError, match="truncated|not a lucidae|CRC|damaged"):
            codec.decompress(data[:n], model)
    with pytest.raises(CorruptFileError, match="unexpected bytes"):
        codec.decompress(data + b"\0", model)


def test_another_model_is_refused(model, digits):
    other = AutoEncoder(latent_dim=12, epochs=1, verbose=0, random_state=1).fit(digits.X[:100])
    with pytest.raises(CorruptFileError, match="different model"):
        codec.decompress(codec.compress(model, digits.X[:5]), other)


def test_bad_arguments(model, digits):
    with pytest.raises(ConfigError, match="bits=0"):
        codec.compress(model, digits.X[:5], bits=0)
    with pytest.raises(ConfigError, match="bits=16"):
        codec.compress(model, digits.X[:5], bits=16)
    with pytest.raises(DataError, match="trained on 64 features"):
        codec.compress(model, np.zeros((3, 7, 7)))


def test_empty_batch(model):
    out = codec.decompress(codec.compress(model, np.zeros((0, 8, 8), np.float32)), model)
    assert out.shape == (0, 8, 8)


def test_cli_compress_decompress(tmp_path, model, digits):
    from lucidae.cli import app

    run = model.save(tmp_path / "run")
    npy = tmp_path / "few.npy"
    np.save(npy, digits.X[:40].reshape(40, 8, 8))
    lcz = tmp_path / "few.lcz"
    res = CliRunner().invoke(app, ["compress", str(run), "--data", str(npy), "--out", str(lcz), "--bits", "4"])
    assert res.exit_code == 0, res.output
    assert "PSNR" in res.output and lcz.is_file()
    back = tmp_path / "back.npy"
    res = CliRunner().invoke(app, ["decompress", str(lcz), "--model", str(run), "--out", str(back)])
    assert res.exit_code == 0, res.output
    np.testing.assert_array_equal(np.load(back), codec.decompress(lcz.read_bytes(), model))
    lcz.write_bytes(lcz.read_bytes()[:-3])
    res = CliRunner().invoke(app, ["decompress", str(lcz), "--model", str(run), "--out", str(back)])
    assert res.exit_code == 2 and "truncated" in res.output


@given(st.binary(max_size=300), st.booleans())
def test_arbitrary_bytes_never_decode_silently(model, blob, with_magic):
    data = (codec.MAGIC + blob) if with_magic else blob
    with pytest.raises(CorruptFileError):
        codec.decompress(data, model)
