"""Data larger than memory: memmap, .npy path and zarr inputs are streamed in shuffled chunks."""

import mmap
import tracemalloc

import numpy as np
import pytest
import torch

from lucidae import AutoEncoder, streaming
from lucidae.errors import DataError
from lucidae.scaling import fit_scaler
from lucidae.streaming import ChunkSource, open_array, scan


def _fast(**kw):
    params = dict(hidden_dims=(16,), latent_dim=4, epochs=8, batch_size=64, validation_fraction=0.0)
    params.update(random_state=0, verbose=0, lr_schedule="constant", lr=3e-3)
    params.update(kw)
    return AutoEncoder(**params)


@pytest.fixture
def small_chunks(monkeypatch):
    # digits as float32 rows of 64 features: 100 rows per chunk (18 chunks), buffers of 600 rows
    monkeypatch.setattr(streaming, "CHUNK_BYTES", 100 * 64 * 4)
    monkeypatch.setattr(streaming, "SHUFFLE_CHUNKS", 6)
    monkeypatch.setattr(streaming, "MIN_CHUNKS", 1)  # chunks of exactly 100 rows


@pytest.fixture
def digits_npy(tmp_path, digits):
    path = tmp_path / "digits.npy"
    np.save(path, digits.X.astype(np.float32))
    return path


def test_streaming_reaches_the_in_memory_loss(small_chunks, digits, digits_npy):
    in_memory = _fast().fit(digits.X.astype(np.float32))
    streamed = _fast().fit(str(digits_npy))
    assert streamed.scaler_.kind == in_memory.scaler_.kind
    np.testing.assert_allclose(streamed.scaler_.scale, in_memory.scaler_.scale)
    a, b = in_memory.history_.losses, streamed.history_.losses
    assert b[-1] < 0.7 * b[0]  # it trains
    assert b[-1] == pytest.approx(a[-1], rel=0.15)  # same loss within noise (local shuffling: seeds vary ~10%)
    err_a = -in_memory.score(digits.X)
    err_b = -streamed.score(digits.X)
    assert err_b == pytest.approx(err_a, rel=0.15)


def test_memmap_and_path_give_identical_models(small_chunks, digits_npy):
    memmap = np.load(digits_npy, mmap_mode="r")
    a = _fast(epochs=2).fit(memmap)
    b = _fast(epochs=2).fit(digits_npy)
    for (ka, va), (kb, vb) in zip(a.module_.state_dict().items(), b.module_.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)


def test_every_row_is_seen_once_per_epoch(small_chunks, digits):
    source = ChunkSource(np.arange(1000 * 3, dtype=np.float32).reshape(1000, 3), chunk_rows=70)
    from lucidae.config import TrainConfig
    from lucidae.distributed import World
    from lucidae.train import _StreamData

    data = _StreamData(
        source,
        TrainConfig(batch_size=32, validation_fraction=0),
        torch.Generator().manual_seed(0),
        World(0, 1, 0),
        torch.device("cpu"),
    )
    gen = torch.Generator().manual_seed(1)
    first = torch.cat([xb for xb, _, _ in data.batches(gen)])[:, 0]
    second = torch.cat([xb for xb, _, _ in data.batches(gen)])[:, 0]
    expected = torch.arange(0, 3000, 3, dtype=torch.float32)
    assert torch.equal(first.sort().values, expected) and torch.equal(second.sort().values, expected)
    assert not torch.equal(first, second)  # reshuffled
    assert not torch.equal(first, expected)  # shuffled at all


def test_validation_holds_out_whole_chunks(small_chunks, digits_npy):
    ae = _fast(epochs=2, validation_fraction=0.2).fit(digits_npy)
    assert all("val_loss" in r for r in ae.history_.records)


@pytest.mark.parametrize("fraction", [0.1, 0.01])
def test_a_file_smaller_than_one_chunk_still_gets_its_validation_split(digits_npy, fraction):
    # all of digits is 0.5 MB, far under one 32 MB chunk: cut into MIN_CHUNKS chunks instead, and at
    # least one of them held out, so that validation (and early stopping) is not silently dropped
    from lucidae.config import TrainConfig
    from lucidae.distributed import World
    from lucidae.train import _StreamData

    source = ChunkSource(open_array(digits_npy))
    assert source.n_chunks == streaming.MIN_CHUNKS
    cfg = TrainConfig(validation_fraction=fraction)
    data = _StreamData(source, cfg, torch.Generator().manual_seed(0), World(0, 1, 0), torch.device("cpu"))
    held_out = sum(source.rows(c) for c in data.val_chunks)
    assert held_out == pytest.approx(max(1, round(32 * fraction)) / 32 * 1797, abs=source.chunk_rows)
    assert data.n + held_out == 1797 and not set(data.val_chunks) & set(data.train_chunks)
    ae = _fast(epochs=2, validation_fraction=fraction).fit(digits_npy)
    assert all("val_loss" in r for r in ae.history_.records)
    # the 32 small chunks fit one shuffle buffer, so an epoch mixes rows from the whole file
    assert data.group >= len(data.train_chunks)
    first_batch = next(data.batches(torch.Generator().manual_seed(1)))[0]  # (batch, 64)
    rows = np.flatnonzero((np.load(digits_npy)[:, None, :] == first_batch.numpy()[None]).all(axis=2).any(axis=1))
    assert len(set(rows // source.chunk_rows)) > 2 * streaming.SHUFFLE_CHUNKS  # not from one buffer of 4 chunks


def test_scan_matches_the_in_memory_scaler(rng):
    X = (rng.normal(size=(3000, 5)) * [1, 10, 100, 0.1, 0] + [0, 5, -3, 1, 2]).astype(np.float64)
    for scaling, output in (("standard", "linear"), ("minmax", "sigmoid"), ("auto", "linear")):
        slow = fit_scaler(X, scaling, output_activation=output)
        fast = scan(X, scaling, output_activation=output)
        assert fast.kind == slow.kind
        np.testing.assert_allclose(fast.offset, X.mean(0) if slow.kind == "standard" else X.min(0), rtol=1e-10)
        np.testing.assert_allclose(fast.scale, slow.scale, rtol=1e-10)


def test_uint8_needs_no_scan_and_reads_through_the_file(tmp_path, rng):
    X = rng.integers(0, 256, size=(500, 20), dtype=np.uint8)
    path = tmp_path / "u8.npy"
    np.save(path, X)
    memmap = open_array(path)
    assert scan(memmap, "auto").kind == "uint8"
    source = ChunkSource(memmap, chunk_rows=64)
    assert source._file is not None  # whole-file memmap: read(), not the mapping
    got = np.concatenate([source.read(i, raw=True) for i in range(source.n_chunks)])
    np.testing.assert_array_equal(got, X)
    for rows in (slice(100, None), slice(None, 300), slice(7, 450)):  # row slices read through the file too
        sliced = ChunkSource(memmap[rows], chunk_rows=64)
        assert sliced._file is not None
        got = np.concatenate([sliced.read(i, raw=True) for i in range(sliced.n_chunks)])
        np.testing.assert_array_equal(got, X[rows])
    strided = ChunkSource(memmap[:, ::2], chunk_rows=64)
    assert strided._file is None  # not one run of bytes: falls back to slicing the mapping
    np.testing.assert_array_equal(strided.read(1, raw=True), X[64:128, ::2])


def test_row_slices_of_a_memmap_at_a_large_offset_read_the_right_bytes(tmp_path, rng):
    # numpy maps from the offset rounded down to the allocation granularity; the first row's
    # position in the file must be measured from there, not taken from the view's `offset`
    X = rng.random((3000, 7)).astype(np.float32)
    path = tmp_path / "raw.bin"
    header = 3 * mmap.ALLOCATIONGRANULARITY + 100
    path.write_bytes(b"\0" * header + X.tobytes())
    memmap = np.memmap(path, dtype=np.float32, mode="r", offset=header, shape=X.shape)
    for rows in (slice(None), slice(1234, None), slice(10, 2000)):
        source = ChunkSource(memmap[rows], chunk_rows=500)
        assert source._file is not None
        got = np.concatenate([source.read(i) for i in range(source.n_chunks)])
        np.testing.assert_array_equal(got, X[rows])


def test_nan_in_a_memmap_is_located(tmp_path, rng):
    X = rng.random((300, 4))
    X[217, 3] = np.nan
    path = tmp_path / "nan.npy"
    np.save(path, X)
    with pytest.raises(DataError, match="row 217, column 3"):
        _fast().fit(np.load(path, mmap_mode="r"))


@pytest.mark.parametrize("bad, fragment", [("missing.npy", "does not exist"), ("3d", "2-D")])
def test_bad_streamed_inputs_are_data_errors(tmp_path, bad, fragment):
    if bad == "3d":
        path = tmp_path / "x.npy"
        np.save(path, np.zeros((2, 2, 2), dtype=np.float32))
    else:
        path = tmp_path / bad
    with pytest.raises(DataError, match=fragment):
        _fast().fit(str(path))


def test_peak_memory_does_not_grow_with_samples(tmp_path, monkeypatch, rng):
    monkeypatch.setattr(streaming, "CHUNK_BYTES", 256 * 32 * 4)
    peaks = []
    for n in (4000, 16000):
        path = tmp_path / f"x{n}.npy"
        np.save(path, rng.integers(0, 256, size=(n, 32), dtype=np.uint8))
        tracemalloc.start()
        _fast(epochs=1, batch_size=128).fit(path)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    # 4x the data (and its float32 copy would be 2 MB): the peak stays that of a few chunks
    assert peaks[1] < 1.3 * peaks[0] + 100_000, peaks


def test_zarr_array_is_streamed(small_chunks, digits):
    zarr = pytest.importorskip("zarr")
    X = digits.X.astype(np.float32)
    z = zarr.create_array(store=zarr.storage.MemoryStore(), shape=X.shape, dtype="f4", chunks=(256, 64))
    z[:] = X
    ae = _fast(epochs=3).fit(z)
    ref = _fast(epochs=3).fit(X)
    assert ae.n_features_in_ == 64
    assert ae.history_.losses[-1] == pytest.approx(ref.history_.losses[-1], rel=0.15)


def test_ranks_read_disjoint_chunks_and_take_equal_steps():
    from lucidae.config import TrainConfig
    from lucidae.distributed import World
    from lucidae.train import _StreamData

    X = np.arange(1000, dtype=np.float32).reshape(-1, 1)
    cfg = TrainConfig(batch_size=64, validation_fraction=0)
    per_rank = []
    for rank in range(2):
        source = ChunkSource(X, chunk_rows=90)
        data = _StreamData(source, cfg, torch.Generator().manual_seed(0), World(rank, 2, rank), torch.device("cpu"))
        per_rank.append(list(data.batches(torch.Generator().manual_seed(7))))
    assert len(per_rank[0]) == len(per_rank[1])  # DDP needs every rank to take the same number of steps
    rows = [torch.cat([xb for xb, _, _ in batches])[:, 0] for batches in per_rank]
    chunks = [set((r // 90).long().tolist()) for r in rows]
    assert not chunks[0] & chunks[1]  # each rank reads only its own chunks
    assert all(xb.shape[0] == 32 for batches in per_rank for xb, _, _ in batches[:-1])  # half the global batch
    for step in range(len(per_rank[0])):  # the weights make the ranks' mean equal the global batch mean
        (a, na, wa), (b, nb, wb) = per_rank[0][step], per_rank[1][step]
        assert (wa * a.sum() / na + wb * b.sum() / nb) / 2 == pytest.approx(float((a.sum() + b.sum()) / (na + nb)))


def test_cli_streams_a_npy_too_large_to_load(tmp_path, rng, monkeypatch):
    from typer.testing import CliRunner

    from lucidae import load
    from lucidae.cli import app
    from lucidae.datasets import load_dataset

    X = rng.integers(0, 256, size=(2000, 16), dtype=np.uint8)
    path = tmp_path / "big.npy"
    np.save(path, X)
    assert not isinstance(load_dataset(path).X, np.memmap)  # small: loaded
    monkeypatch.setattr(streaming, "stream_threshold", lambda: 1000)  # "larger than memory"
    assert isinstance(load_dataset(path).X, np.memmap)
    seen = []
    original = AutoEncoder.fit

    def spy(self, X, *args, **kwargs):
        seen.append(X)
        return original(self, X, *args, **kwargs)

    monkeypatch.setattr(AutoEncoder, "fit", spy)
    out = tmp_path / "run"
    args = ["train", "--data", str(path), "--epochs", "2", "--latent-dim", "4", "--verbose", "0", "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "streamed from disk" in result.output
    (X_fit,) = seen
    assert isinstance(X_fit, np.memmap) and X_fit.shape == (1600, 16)  # trained on the file, not a copy (20% held out)
    record = __import__("json").loads((out / "run.json").read_text())
    assert record["test_rows"] == [1600, 2000] and record["test_indices"] == []  # the last rows are held out
    report = CliRunner().invoke(app, ["report", str(out)])  # the report evaluates on exactly those rows
    assert report.exit_code == 0, report.output
    metrics = __import__("json").loads((out / "metrics.json").read_text())
    assert metrics["evaluated_on"] == "held-out" and metrics["n_eval"] == 400
    ae = load(out)
    Xs = X[1600:] / 255.0
    recon = ae.scaler_.transform(ae.reconstruct(X[1600:]))
    want = ((Xs - recon) ** 2).sum() / ((Xs - Xs.mean(0)) ** 2).sum()
    assert record["metrics"]["test_fvu"] == pytest.approx(want, rel=1e-5)


def test_warm_start_continues_on_a_streamed_file(digits_npy):
    ae = _fast(epochs=2).fit(digits_npy)
    module, last = ae.module_, ae.history_.losses[-1]
    ae.set_params(warm_start=True, epochs=3).fit(digits_npy)
    assert ae.module_ is module and ae.n_iter_ == 5 and ae.history_.losses[2] < 1.1 * last
    with pytest.raises(DataError, match="has 32 features"):
        ae.fit(np.lib.format.open_memmap(digits_npy.parent / "narrow.npy", "w+", np.float32, (10, 32)))
