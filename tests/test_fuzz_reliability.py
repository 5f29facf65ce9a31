"""Property tests for issue #18's classes 1, 2, 3 and 5: generated cases beyond the named examples.

- class 3: generated edits of a saved model's or detector's ``config.json`` and tensors, as a careless
  user (checksum left) or a forger (checksum recomputed) makes them: a refusal (LucidaeError) or a
  model that works, never a silent difference;
- class 5: saves failing at a generated step, with and without the one-step exchange, over a
  generated sequence of saves: the path always holds one complete model with its own run record;
- class 2: generated metrics, NaN and infinities included: the run record is valid JSON that
  :func:`lucidae.io.read_run_record` accepts;
- class 1: the ``lucidae`` command run through its entry point on generated paths, folders and
  sizes: exit code 0, 1 or 2 and never the word "Traceback";
- class 1: generated optimiser settings in a checkpoint: ``resume`` works or says what is wrong;
- compressed-stream headers declaring generated sizes: refused or read, never allocated blindly.

The "ci" profile (tests/conftest.py) runs each with 40 cases; ``make fuzz`` with 2000.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import struct
import sys
import zlib

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_fuzz import json_values, mutate_json, time_limit

import lucidae.io as lio
from lucidae import AutoEncoder, load
from lucidae.errors import LucidaeError

pytestmark = pytest.mark.fuzz

FIXTURES = settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _ae(**kw):
    return AutoEncoder(**{"hidden_dims": (4,), "latent_dim": 2, "epochs": 1, "verbose": 0, "random_state": 0, **kw})


@pytest.fixture(scope="module")
def X():
    return np.random.default_rng(0).random((40, 5))


@pytest.fixture(scope="module")
def models(X):
    return _ae(random_state=0).fit(X), _ae(random_state=1).fit(X)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz-reliability")


@pytest.fixture(scope="module")
def saved(models, workdir):
    from lucidae.estimators import TopKAutoEncoder

    topk = TopKAutoEncoder(latent_dim=4, k=2, epochs=1, verbose=0, random_state=0).fit(
        np.random.default_rng(1).random((40, 5))
    )
    return {"dense": models[0].save(workdir / "dense"), "topk": topk.save(workdir / "topk")}


def _reseal(run, config):
    config["sha256"] = lio.checksum(config, lio.sha256_of(run / "model.safetensors"))


# --------------------------------------------------------------------------- class 3: edited folders
@FIXTURES
@given(data=st.data())
def test_an_edited_model_config_is_refused_or_resealed_and_then_works(saved, workdir, X, data):
    family = data.draw(st.sampled_from(sorted(saved)), label="family")
    original = json.loads((saved[family] / "config.json").read_text())
    config = mutate_json(data, original)
    run = workdir / "edited"
    shutil.rmtree(run, ignore_errors=True)
    shutil.copytree(saved[family], run)
    forged = isinstance(config, dict) and data.draw(st.booleans(), label="resealed")
    if forged:
        try:
            _reseal(run, config)
        except LucidaeError:  # infinity: JSON cannot hold it, nor a checksum cover it
            forged = False
    (run / "config.json").write_text(json.dumps(config))
    try:
        with time_limit():
            est = load(run)
    except LucidaeError:
        return
    # it loaded: then it was not edited, or forged with a consistent config, and it must work
    assert forged or config == original
    with time_limit():
        codes = est.transform(X)
    assert np.isfinite(codes).all()


@pytest.fixture(scope="module")
def detector_folder(workdir):
    from lucidae.applications import AnomalyDetector

    data = np.random.default_rng(0).normal(size=(80, 3))
    inner = _ae(hidden_dims=(4,), latent_dim=2, output_activation="linear")
    return AnomalyDetector(estimator=inner, random_state=0).fit(data).save(workdir / "det")


TENSOR_EDITS = ["shape", "value", "drop", "dtype"]


@FIXTURES
@given(data=st.data())
def test_an_edited_detector_is_refused_or_works(detector_folder, workdir, data):
    from safetensors.torch import load_file, save_file

    from lucidae.applications import load_detector

    run = workdir / "det-edited"
    shutil.rmtree(run, ignore_errors=True)
    shutil.copytree(detector_folder, run)
    config = json.loads((run / "config.json").read_text())
    if data.draw(st.booleans(), label="edit_config"):
        config = mutate_json(data, config)
    if data.draw(st.booleans(), label="edit_tensors"):
        tensors = load_file(run / "model.safetensors")
        name = data.draw(st.sampled_from(sorted(tensors)), label="tensor")
        kind = data.draw(st.sampled_from(TENSOR_EDITS), label="tensor_edit")
        t = tensors[name]
        if kind == "shape":
            tensors[name] = torch.zeros(*[data.draw(st.integers(0, 5)) for _ in range(data.draw(st.integers(1, 3)))])
        elif kind == "value" and t.numel():
            flat = t.reshape(-1).clone()
            values = [float("nan"), float("inf"), -1e9, 1e38, -1.0, 1e-300, 10**6]
            if not t.is_floating_point():
                values = [-(2**62), -2, -1, 0, 1, 10**6, 2**62]
            flat[data.draw(st.integers(0, flat.numel() - 1))] = data.draw(st.sampled_from(values))
            tensors[name] = flat.reshape(t.shape)
        elif kind == "drop":
            del tensors[name]
        else:
            tensors[name] = t.to(torch.float16) if t.is_floating_point() else t.to(torch.int32)
        save_file(tensors, run / "model.safetensors")
    if isinstance(config, dict) and data.draw(st.booleans(), label="resealed"):
        try:
            _reseal(run, config)
        except LucidaeError:
            pass
    (run / "config.json").write_text(json.dumps(config))
    try:
        with time_limit():
            det = load_detector(run)
    except LucidaeError:
        return
    with time_limit():
        scores = det.decision_function(np.random.default_rng(1).normal(size=(5, 3)))
    assert np.isfinite(scores).all()


# --------------------------------------------------------------------------- class 5: the save window
@FIXTURES
@given(data=st.data())
def test_saves_failing_at_any_step_leave_one_complete_model(models, workdir, X, data, monkeypatch):
    import safetensors.torch

    path = workdir / "window" / "m"
    shutil.rmtree(path.parent, ignore_errors=True)
    models[0].save(path, run={"data": {"which": 0}})
    for _ in range(data.draw(st.integers(1, 3), label="n_saves")):
        which = data.draw(st.integers(0, 1), label="which")
        at = data.draw(st.integers(1, 20), label="fail_at")
        count = [0]

        def wrap(fn, at=at, count=count):
            def step(*args, **kwargs):
                count[0] += 1
                if count[0] == at:
                    raise OSError(28, "No space left on device (injected)")
                return fn(*args, **kwargs)

            return step

        with monkeypatch.context() as m:
            if not data.draw(st.booleans(), label="exchange"):
                m.setattr(lio, "exchange", lambda a, b: False)
            for target, name in ((os, "fsync"), (os, "rename"), (os, "replace"), (lio, "exchange")):
                m.setattr(target, name, wrap(getattr(target, name)))
            m.setattr(safetensors.torch, "save_file", wrap(safetensors.torch.save_file))
            m.setattr(lio, "write_json", wrap(lio.write_json))
            try:
                models[which].save(path, run={"data": {"which": which}})
            except OSError:
                pass
        codes = load(path).transform(X)
        held = [i for i, m in enumerate(models) if np.array_equal(codes, m.transform(X))]
        assert len(held) == 1 and lio.read_run_record(path)["data"]["which"] == held[0]
        assert [p.name for p in path.parent.iterdir()] == ["m"]


# --------------------------------------------------------------------------- class 2: records
metric_values = st.floats() | st.integers(-(2**53), 2**53) | st.none()


@given(metrics=st.dictionaries(st.sampled_from(["test_fvu", "test_mse", "other"]), metric_values))
def test_any_metrics_make_a_valid_run_record(tmp_path_factory, metrics):
    from lucidae.runs import finite_metrics

    clean, notes = finite_metrics(metrics)
    record = {"metrics": clean, **({"metrics_notes": notes} if notes else {})}
    folder = tmp_path_factory.mktemp("record")
    lio.write_json(folder / "run.json", record)  # allow_nan=False: would raise on a NaN left in
    assert lio.read_run_record(folder)["metrics"] == clean
    assert set(notes) == {k for k, v in metrics.items() if isinstance(v, float) and not np.isfinite(v)}


# --------------------------------------------------------------------------- class 1: the command line
def run_main(args, monkeypatch, capsys):
    from lucidae.cli.app import main

    monkeypatch.setattr(sys, "argv", ["lucidae", *map(str, args)])
    monkeypatch.setenv("COLUMNS", "200")
    code = 0
    try:
        with time_limit(60):
            main()
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    out = capsys.readouterr()
    return code, out.out + out.err


def _target(kind, root, saved):
    """A path of the generated ``kind``: what users and accidents put where a folder is expected."""
    path = root / f"t-{kind}"
    root.mkdir(parents=True, exist_ok=True)
    if kind == "missing":
        return path
    if kind == "file":
        path.write_text("not a model")
    elif kind == "empty":
        path.mkdir()
    elif kind == "foreign":
        path.mkdir()
        (path / "photo.jpg").write_bytes(b"\xff\xd8")
    elif kind == "model":
        shutil.copytree(saved["dense"], path)
    elif kind == "damaged":
        shutil.copytree(saved["dense"], path)
        (path / "config.json").write_bytes(b"{" * 50_000)
    elif kind == "link":
        path.symlink_to(saved["dense"])
    elif kind == "deep-options":
        shutil.copytree(saved["dense"], path)
        (path / "train_options.json").write_text("[" * 50_000 + "]" * 50_000)
    elif kind == "bad-options":
        shutil.copytree(saved["dense"], path)
        (path / "train_options.json").write_text(json.dumps({"latent_dim": {"a": [1]}}))
    return path


KINDS = ["missing", "file", "empty", "foreign", "model", "damaged", "link", "deep-options", "bad-options"]


@FIXTURES
@given(data=st.data())
def test_no_command_ends_in_a_traceback(saved, tmp_path_factory, monkeypatch, capsys, data):
    root = tmp_path_factory.mktemp("cli")
    kind = data.draw(st.sampled_from(KINDS), label="kind")
    target = _target(kind, root, saved)
    commands = ["info", "encode", "reconstruct", "train-out", "resume", "size", "prune", "report", "decompress"]
    command = data.draw(st.sampled_from(commands), label="command")
    if command == "info":
        args = ["info", target]
    elif command == "prune":
        args = ["prune", target, "--out", _target(data.draw(st.sampled_from(KINDS), label="out"), root / "o", saved)]
    elif command == "report":
        args = ["report", target, "--max-latents", str(data.draw(st.integers(-1, 4), label="max_latents"))]
    elif command == "decompress":
        stream = root / "s.lucz"
        stream.write_bytes(data.draw(st.binary(max_size=120), label="stream"))
        args = ["decompress", stream, "--model", target, "--out", root / "images.npy"]
    elif command in ("encode", "reconstruct"):
        args = [
            command,
            target,
            "--data",
            "digits",
            "--out",
            root / f"out.{data.draw(st.sampled_from(['npy', 'csv']))}",
        ]
    elif command == "train-out":
        args = [
            "train",
            "--data",
            "digits",
            "--out",
            target,
            "--epochs",
            "1",
            "--hidden-dims",
            "4",
            "--latent-dim",
            "2",
        ]
        if data.draw(st.booleans(), label="overwrite"):
            args.append("--overwrite")
    elif command == "resume":
        args = ["train", "--resume", target]
    else:
        # absurd sizes (refused before anything is allocated) or tiny ones (trained in a second)
        width = data.draw(st.sampled_from([0, -1, 10**9, 10**12, 2**63]) | st.integers(1, 16), label="width")
        latent = data.draw(st.sampled_from([-1, 0, 10**9, 2**40]) | st.integers(1, 8), label="latent")
        args = ["train", "--data", "digits", "--out", root / "sized", "--hidden-dims", f"{width},{width}"]
        args += ["--epochs", "1", "--latent-dim", str(latent)]
    code, text = run_main(args, monkeypatch, capsys)
    assert "Traceback" not in text and "internal error" not in text, text  # main() words a bug so
    assert code in (0, 1, 2), (code, text)
    if code:
        assert "error" in text.lower() or "usage" in text.lower(), text


# --------------------------------------------------------------------------- class 1: checkpoints
@pytest.fixture(scope="module")
def checkpoint(workdir, X):
    folder = workdir / "ckpt-template"
    _ae(epochs=2).fit(X, checkpoint_dir=folder)
    return folder


@FIXTURES
@given(data=st.data())
def test_resume_from_an_edited_checkpoint_works_or_says_why(checkpoint, workdir, X, data):
    run = workdir / "ckpt"
    shutil.rmtree(run, ignore_errors=True)
    shutil.copytree(checkpoint, run)
    config = json.loads((run / "config.json").read_text())
    groups = config["optimizer_param_groups"]
    key = data.draw(st.sampled_from(["betas", "lr", "eps", "weight_decay", "params", "amsgrad", "new"]))
    groups[0][key] = data.draw(json_values | st.sampled_from(["0.9", [0.9], [0.9, 0.99, 0.1], [2, 2]]))
    try:
        _reseal(run, config)
    except LucidaeError:
        pass
    (run / "config.json").write_text(json.dumps(config))
    try:
        with time_limit():
            est = _ae(epochs=3).fit(X, checkpoint_dir=run, resume=True)
    except LucidaeError:
        return
    assert np.isfinite(est.transform(X)).all()


# --------------------------------------------------------------------------- streams
@given(
    version=st.sampled_from([1, 2]),
    n=st.integers(0, 2**32 - 1),
    shape=st.lists(st.integers(1, 2**31), min_size=1, max_size=3),
    latent_dim=st.integers(1, 64),
    payload=st.binary(max_size=64),
)
def test_a_stream_header_is_refused_or_read_without_allocating_blindly(version, n, shape, latent_dim, payload):
    from lucidae.applications.compress import MAGIC, read_header

    head = MAGIC + struct.pack("<BBBBI", version, 8, 1, len(shape), n) + struct.pack(f"<{len(shape)}I", *shape)
    head += struct.pack("<I", latent_dim) + b"\0" * 8 + b"\0" * (8 * latent_dim)
    if version > 1:
        head += struct.pack("<I", 0)
    body = head + struct.pack("<I", len(payload)) + payload
    with time_limit():
        try:
            header = read_header(body + struct.pack("<I", zlib.crc32(body)))
        except LucidaeError:
            return
    # it was read: then decoding it fits in memory
    importlib.import_module("lucidae.memory").check_fits(
        8.0 * header["n_samples"] * (2 * latent_dim + 3 * int(np.prod(shape))), "decoding"
    )
