"""Issue #18, classes 1, 2, 3 and 5 (and #17's run folders): saves that cannot be lost, mixed or lied about.

- a save killed or failing at every step boundary leaves the complete old or the complete new
  model and run record (fault injection, with and without the one-step exchange);
- two trainings into one folder: exactly one proceeds, the other is refused at once;
- config.json is covered by the checksum; params and model must agree; weights finite;
- detectors, topic models and compressed streams are checked against their schema at load;
- OS errors, memory and bad --resume files end as one line, never a traceback.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

import lucidae.io as lio
from lucidae import AutoEncoder, load
from lucidae.errors import ConfigError, CorruptFileError, LucidaeError
from lucidae.locks import FolderLockedError, folder_lock


def _ae(**kw):
    params = dict(hidden_dims=(4,), latent_dim=2, epochs=1, verbose=0, random_state=0)
    params.update(kw)
    return AutoEncoder(**params)


@pytest.fixture(scope="module")
def X():
    return np.random.default_rng(0).random((60, 5))


@pytest.fixture(scope="module")
def models(X):
    return _ae(random_state=0).fit(X), _ae(random_state=1).fit(X)


def _config(run):
    return json.loads((run / "config.json").read_text())


def _reseal(run, config):
    config["sha256"] = lio.checksum(config, lio.sha256_of(run / "model.safetensors"))
    (run / "config.json").write_text(json.dumps(config))


def _leftovers(path):
    names = [p.name for p in path.parent.iterdir() if p.name != path.name]
    if path.is_dir():
        names += [p.name for p in path.iterdir() if p.name.startswith(".")]
    return names


# --------------------------------------------------------------------------- fault injection
STEPS = ["os.fsync", "os.rename", "os.replace", "os.chmod", "exchange", "save_file", "write_json"]


class Fault(OSError):
    pass


def _instrument(monkeypatch, at, action):
    """Count every step of a save; at step ``at`` call ``action`` (raise, or kill the process)."""
    count = [0]

    def wrap(fn):
        def step(*args, **kwargs):
            count[0] += 1
            if count[0] == at:
                action()
            return fn(*args, **kwargs)

        return step

    import safetensors.torch

    monkeypatch.setattr(os, "fsync", wrap(os.fsync))
    monkeypatch.setattr(os, "rename", wrap(os.rename))
    monkeypatch.setattr(os, "replace", wrap(os.replace))
    monkeypatch.setattr(os, "chmod", wrap(os.chmod))
    if hasattr(lio, "exchange"):
        monkeypatch.setattr(lio, "exchange", wrap(lio.exchange))
    monkeypatch.setattr(safetensors.torch, "save_file", wrap(safetensors.torch.save_file))
    monkeypatch.setattr(lio, "write_json", wrap(lio.write_json))
    return count


def _check_old_or_new(path, models, X):
    """The path holds one complete model and the run record saved with it."""
    loaded = load(path)
    codes = loaded.transform(X)
    which = [i for i, m in enumerate(models) if np.array_equal(codes, m.transform(X))]
    assert len(which) == 1
    record = lio.read_run_record(path)
    assert record["data"]["which"] == which[0]  # the record is the one saved with these weights
    return which[0]


@pytest.fixture(params=[True, False], ids=["exchange", "two-renames"])
def swap(request, monkeypatch):
    if not request.param:
        monkeypatch.setattr(lio, "exchange", lambda a, b: False, raising=False)
    return request.param


def _count_steps(monkeypatch, tmp_path, models):
    path = tmp_path / "count" / "m"
    models[0].save(path, run={"data": {"which": 0}})
    with monkeypatch.context() as m:
        count = _instrument(m, 0, lambda: None)
        models[1].save(path, run={"data": {"which": 1}})
    return count[0]


def test_a_save_failing_at_every_step_leaves_old_or_new(monkeypatch, tmp_path, models, X, swap):
    n_steps = _count_steps(monkeypatch, tmp_path, models)
    assert n_steps >= 8
    for k in range(1, n_steps + 1):
        path = tmp_path / f"k{k}" / "m"
        models[0].save(path, run={"data": {"which": 0}})

        def fail(path=path):
            raise Fault(28, "No space left on device (injected)", str(path))

        with monkeypatch.context() as m:
            _instrument(m, k, fail)
            try:
                models[1].save(path, run={"data": {"which": 1}})
            except OSError:
                pass
        _check_old_or_new(path, models, X)
        assert not _leftovers(path), k  # no temporary folder or file left behind


def _kill_child_at(path, model, k, exchange):
    pid = os.fork()
    if pid == 0:  # the child saves and is killed (os._exit: no cleanup runs) at step k
        try:
            import pytest as _pytest

            mp = _pytest.MonkeyPatch()
            if not exchange:
                mp.setattr(lio, "exchange", lambda a, b: False, raising=False)
            _instrument(mp, k, lambda: os._exit(9))
            model.save(path, run={"data": {"which": 1}})
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_save_killed_at_every_step_leaves_old_or_new_at_the_next_open(monkeypatch, tmp_path, models, X, swap):
    n_steps = _count_steps(monkeypatch, tmp_path, models)
    outcomes = set()
    for k in range(1, n_steps + 2):
        path = tmp_path / f"kill{k}" / "m"
        models[0].save(path, run={"data": {"which": 0}})
        code = _kill_child_at(path, models[1], k, swap)
        outcomes.add(_check_old_or_new(path, models, X))  # the next open puts back what the kill left
        assert code in (0, 9)
        models[0].save(path, run={"data": {"which": 0}})  # and the next write finds a clean place
        assert not _leftovers(path)
    assert outcomes == {0, 1}


# --------------------------------------------------------------------------- locks and concurrency
def test_a_second_writer_is_refused_at_once(tmp_path, models):
    path = tmp_path / "m"
    pid = os.fork()
    if pid == 0:
        with folder_lock(path):
            time.sleep(3)
        os._exit(0)
    try:
        deadline = time.time() + 10
        while not (tmp_path / ".m.lock").exists() and time.time() < deadline:
            time.sleep(0.02)
        time.sleep(0.1)
        start = time.perf_counter()
        with pytest.raises(FolderLockedError, match=r"m is being written by another lucidae process \(pid \d+\)"):
            models[0].save(path)
        assert time.perf_counter() - start < 2  # refused at once, not after waiting
    finally:
        os.waitpid(pid, 0)
    models[0].save(path)  # free again once the holder is gone
    assert not (tmp_path / ".m.lock").exists()


def _train_cmd(out, *extra):
    return [sys.executable, "-m", "lucidae", "train", "--data", "digits", "--out", str(out), *extra]


@pytest.mark.slow
def test_two_trainings_into_one_folder_exactly_one_proceeds(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "COLUMNS": "200"}
    first = subprocess.Popen(
        _train_cmd(out, "--epochs", "60", "--hidden-dims", "64", "--latent-dim", "4"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    deadline = time.time() + 60
    while not (tmp_path / ".run.lock").exists() and time.time() < deadline and first.poll() is None:
        time.sleep(0.05)
    assert (tmp_path / ".run.lock").exists(), first.communicate()
    start = time.perf_counter()
    second = subprocess.run(
        _train_cmd(out, "--epochs", "1", "--latent-dim", "3", "--overwrite"),
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert second.returncode == 1, second.stderr
    assert "being trained into by another lucidae process" in second.stderr
    assert "Traceback" not in second.stderr
    assert first.poll() is None, "the second trainer was refused before the first finished"
    stdout, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr
    assert time.perf_counter() - start > 0  # (the timing is the poll above: refused while the first ran)
    # the folder is the first run's, options and model alike
    options = json.loads((out / "train_options.json").read_text())
    assert options["latent_dim"] == 4 and load(out).model_config_.latent_dim == 4


# --------------------------------------------------------------------------- what is replaced
def test_save_refuses_a_regular_file_a_link_and_a_foreign_folder(tmp_path, models):
    target = tmp_path / "notes.txt"
    target.write_text("mine")
    with pytest.raises(ConfigError, match="is a file, not a lucidae folder"):
        models[0].save(target)
    assert target.read_text() == "mine" and sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]

    real = models[0].save(tmp_path / "real")
    link = tmp_path / "link"
    link.symlink_to(real)
    with pytest.raises(ConfigError, match="is a symbolic link"):
        models[1].save(link)
    assert link.is_symlink()

    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "cat.jpg").write_bytes(b"\xff\xd8")
    with pytest.raises(ConfigError, match="lucidae did not write"):
        models[0].save(foreign)
    assert sorted(p.name for p in foreign.iterdir()) == ["cat.jpg"]


def test_files_are_written_as_the_umask_says(tmp_path, models):
    old = os.umask(0o022)
    try:
        path = models[0].save(tmp_path / "m", run={"metrics": {}})
    finally:
        os.umask(old)
    modes = {p.name: p.stat().st_mode & 0o777 for p in path.iterdir()}
    assert modes == {"model.safetensors": 0o644, "config.json": 0o644, "run.json": 0o644}


def test_a_failed_atomic_write_leaves_no_temporary_file(tmp_path, monkeypatch):
    def full(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError):
        lio.atomic_write(tmp_path / "a.json", "{}")
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- files that are what they claim
@pytest.fixture(scope="module")
def topk_folder(X, tmp_path_factory):
    from lucidae.estimators import TopKAutoEncoder

    est = TopKAutoEncoder(latent_dim=4, k=2, epochs=1, verbose=0, random_state=0).fit(X)
    return est.save(tmp_path_factory.mktemp("topk") / "m")


@pytest.mark.parametrize(
    "edit",
    [
        lambda c: c["model"].update(model="sparse"),
        lambda c: c["model"].update(k=3),
        lambda c: (c["model"].update(k=3), c["params"].update(k=3)),
        lambda c: c["model"].update(latent_activation="relu"),
        lambda c: c.update(fit_seconds=1.0),
    ],
    ids=["family", "model.k", "model.k and params.k", "activation", "any field"],
)
def test_an_edited_config_is_refused_by_the_checksum(topk_folder, tmp_path, edit):
    run = shutil.copytree(topk_folder, tmp_path / "m")
    config = _config(run)
    edit(config)
    (run / "config.json").write_text(json.dumps(config))
    with pytest.raises(CorruptFileError, match="do not match the checksum|they must agree"):
        load(run)


def test_an_edited_and_resealed_model_k_disagrees_with_params(topk_folder, tmp_path):
    run = shutil.copytree(topk_folder, tmp_path / "m")
    config = _config(run)
    config["model"]["k"] = 3
    _reseal(run, config)
    with pytest.raises(CorruptFileError, match=r"model.k=3 but the params imply k=2"):
        load(run)


def test_an_edited_conv_image_shape_is_refused(tmp_path, X):
    from lucidae.estimators import ConvAutoEncoder

    images = np.random.default_rng(0).random((40, 1, 4, 4))
    conv = ConvAutoEncoder(latent_dim=2, epochs=1, verbose=0, random_state=0, conv_channels=(2,)).fit(images)
    run = conv.save(tmp_path / "conv")
    config = _config(run)
    config["model"]["image_shape"] = [1, 2, 8]
    (run / "config.json").write_text(json.dumps(config))
    with pytest.raises(CorruptFileError):
        load(run)


def test_format_version_1_folders_still_load(tmp_path, models, X):
    run = models[0].save(tmp_path / "old")
    config = _config(run)
    config["format_version"] = 1
    config["sha256"] = lio.sha256_of(run / "model.safetensors")  # version 1: the weights alone
    (run / "config.json").write_text(json.dumps(config))
    np.testing.assert_array_equal(load(run).transform(X), models[0].transform(X))


@pytest.mark.parametrize("value", [float("nan"), 1e38, float("inf")])
def test_non_finite_or_absurd_weights_are_refused_even_with_a_matching_checksum(tmp_path, models, value):
    from safetensors.torch import load_file, save_file

    run = models[0].save(tmp_path / "m")
    tensors = load_file(run / "model.safetensors")
    name = next(k for k in tensors if k.startswith("module.") and "weight" in k)
    tensors[name][0, 0] = value
    save_file(tensors, run / "model.safetensors")
    _reseal(run, _config(run))
    with pytest.raises(CorruptFileError, match="NaN or infinite|magnitude"):
        load(run)


def test_a_model_with_nan_weights_is_not_saved(tmp_path, X):
    est = _ae().fit(X)
    with torch.no_grad():
        next(est.module_.parameters()).fill_(float("nan"))
    with pytest.raises(CorruptFileError, match="NaN or infinite"):
        est.save(tmp_path / "m")
    assert not (tmp_path / "m").exists()


# --------------------------------------------------------------------------- detectors and topic models
@pytest.fixture(scope="module")
def detector_folder(tmp_path_factory):
    from lucidae.applications import AnomalyDetector

    data = np.random.default_rng(0).normal(size=(120, 3))
    inner = _ae(latent_dim=2, hidden_dims=(4,), output_activation="linear")
    det = AnomalyDetector(estimator=inner, random_state=0).fit(data)
    return det.save(tmp_path_factory.mktemp("det") / "det")


def _edit_detector(folder, tmp_path, config_edit=None, tensor_edit=None):
    from safetensors.torch import load_file, save_file

    run = shutil.copytree(folder, tmp_path / "det")
    config = _config(run)
    if config_edit:
        config_edit(config)
    if tensor_edit:
        tensors = load_file(run / "model.safetensors")
        tensor_edit(tensors)
        save_file(tensors, run / "model.safetensors")
    _reseal(run, config)
    return run


@pytest.mark.parametrize(
    "config_edit, tensor_edit, fragment",
    [
        (lambda c: c.update(threshold="nan"), None, "threshold must be a finite number"),
        (lambda c: c.update(threshold=-1e9), None, "threshold=.* lies outside the training scores"),
        (lambda c: c.update(colour="red"), None, "unknown key"),
        (lambda c: c.update(error_mean=[1]), None, "error_mean must be a finite number"),
        (lambda c: c.update(n_features_in="3"), None, "n_features_in must be an integer"),
        (None, lambda t: t.update(latent_mean=torch.zeros(7, dtype=torch.float64)), "latent_mean"),
        (None, lambda t: t.update(latent_precision=torch.zeros(2, 3, dtype=torch.float64)), "latent_precision"),
        (None, lambda t: t.update(reference_index=t["reference_index"][:-1]), "reference"),
        (None, lambda t: t["reference_index"].fill_(10**6), "reference_index"),
        (None, lambda t: t["center"].fill_(float("nan")), "NaN or infinite"),
    ],
)
def test_a_damaged_detector_is_refused_at_load(detector_folder, tmp_path, config_edit, tensor_edit, fragment):
    from lucidae.applications import load_detector

    run = _edit_detector(detector_folder, tmp_path, config_edit, tensor_edit)
    with pytest.raises(CorruptFileError, match=fragment):
        load_detector(run)


def test_lucidae_load_loads_detectors_and_topic_models(detector_folder, tmp_path):
    from lucidae.applications import AnomalyDetector, TextTopics
    from lucidae.estimators import TopKAutoEncoder

    assert isinstance(load(detector_folder), AnomalyDetector)
    docs = ["cats purr and cats nap", "dogs bark and dogs run", "cats nap", "dogs run"] * 10
    sae = TopKAutoEncoder(latent_dim=4, k=1, epochs=2, verbose=0, random_state=0)
    folder = TextTopics(estimator=sae).fit(docs).save(tmp_path / "topics")
    assert isinstance(load(folder), TextTopics)


def test_a_compressed_stream_declaring_67_million_samples_is_refused_before_allocation():
    from lucidae.applications.compress import MAGIC, read_header

    def stream(version, n, shape, latent_dim=4):
        head = MAGIC + struct.pack("<BBBBI", version, 8, 1, len(shape), n) + struct.pack(f"<{len(shape)}I", *shape)
        head += struct.pack("<I", latent_dim) + b"\0" * 8 + b"\0" * (8 * latent_dim)
        if version > 1:
            head += struct.pack("<I", 0)
        body = head + struct.pack("<I", 4) + b"\1\0\0\0"
        return body + struct.pack("<I", zlib.crc32(body))

    for version, shape in ((1, (1,)), (2, (8, 8))):
        data = stream(version, 67_000_000, shape)
        assert len(data) < 200
        with pytest.raises(CorruptFileError, match="67000000"):
            read_header(data)


# --------------------------------------------------------------------------- the CLI: runs, errors, records
def run_cli(args, monkeypatch, capsys):
    """Run ``lucidae ARGS`` through its real entry point (main); return (exit code, stdout + stderr)."""
    from lucidae.cli.app import main

    monkeypatch.setattr(sys, "argv", ["lucidae", *map(str, args)])
    monkeypatch.setenv("COLUMNS", "200")
    code = 0
    try:
        main()
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    out = capsys.readouterr()
    text = out.out + out.err
    assert "Traceback" not in text and "internal error" not in text, text  # main() words a bug so
    return code, text


FAST = ["--epochs", "1", "--hidden-dims", "8", "--latent-dim", "2"]


def test_train_refuses_an_existing_folder_without_overwrite(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    assert run_cli(["train", "--data", "digits", "--out", out, *FAST], monkeypatch, capsys)[0] == 0
    before = (out / "config.json").read_bytes()
    code, text = run_cli(["train", "--data", "digits", "--out", out, *FAST], monkeypatch, capsys)
    assert code == 1 and "already exists. Pass --overwrite" in text
    assert (out / "config.json").read_bytes() == before
    code, text = run_cli(["train", "--data", "digits", "--out", out, "--overwrite", *FAST[:2]], monkeypatch, capsys)
    assert code == 0 and (out / "config.json").read_bytes() != before


def test_a_failed_train_leaves_nothing_behind(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    code, text = run_cli(["train", "--data", tmp_path / "missing.csv", "--out", out, *FAST], monkeypatch, capsys)
    assert code in (1, 2) and not out.exists() and list(tmp_path.iterdir()) == []


def test_a_failed_overwrite_keeps_the_old_run(tmp_path, monkeypatch, capsys):
    out = tmp_path / "runs" / "run"
    assert run_cli(["train", "--data", "digits", "--out", out, *FAST], monkeypatch, capsys)[0] == 0
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    text_cells = tmp_path / "data" / "text.csv"  # found, so the run starts; refused when it is read
    text_cells.parent.mkdir()
    text_cells.write_text("a,b\n1,x\n2,y\n")
    bad = ["train", "--data", text_cells, "--out", out, "--overwrite", *FAST]
    code, text = run_cli(bad, monkeypatch, capsys)
    assert code == 1 and "not numeric" in text
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    assert (out / "checkpoint" / "config.json").is_file() and not _leftovers(out)


def test_info_on_a_missing_folder_says_it_does_not_exist(tmp_path, monkeypatch, capsys):
    code, text = run_cli(["info", tmp_path / "nonexistent"], monkeypatch, capsys)
    assert code == 1 and "does not exist" in text and "config.json is missing" not in text


def test_hidden_dims_of_a_million_are_refused_before_allocation(tmp_path, monkeypatch, capsys):
    args = ["train", "--data", "digits", "--out", tmp_path / "run", "--hidden-dims", "1000000,1000000"]
    code, text = run_cli(args, monkeypatch, capsys)
    assert code == 1 and "needs about" in text and "TB of memory" in text
    assert not (tmp_path / "run").exists()


def test_a_model_beyond_this_machines_memory_is_refused(tmp_path, monkeypatch, capsys):
    import lucidae.memory

    monkeypatch.setattr(lucidae.memory, "physical_memory", lambda: 64 * 2**20)  # a 64 MB machine
    args = ["train", "--data", "digits", "--out", tmp_path / "run", "--hidden-dims", "100000"]
    code, text = run_cli(args, monkeypatch, capsys)
    assert code == 1 and "this machine has 64.0 MB" in text


def test_an_unwritable_out_folder_is_one_line(tmp_path, monkeypatch, capsys):
    app_module = importlib.import_module("lucidae.cli.app")  # the package exports the Typer app as "app"

    def denied(out, options):
        raise PermissionError(13, "Permission denied", str(out / "train_options.json"))

    monkeypatch.setattr(app_module, "write_train_options", denied)
    code, text = run_cli(["train", "--data", "digits", "--out", tmp_path / "run", *FAST], monkeypatch, capsys)
    assert code == 1 and "permission denied. Check the permissions of" in text
    assert len(text.strip().splitlines()) <= 2


def test_a_full_disk_at_the_final_save_loses_nothing(tmp_path, monkeypatch, capsys):
    import safetensors.torch
    from safetensors import SafetensorError

    out = tmp_path / "run"
    real = safetensors.torch.save_file

    def full(tensors, filename, *args, **kwargs):
        if "checkpoint" not in str(filename):
            raise SafetensorError("Error while serializing: IoError(Os { code: 28, message: No space left on device })")
        return real(tensors, filename, *args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(safetensors.torch, "save_file", full)
        code, text = run_cli(["train", "--data", "digits", "--out", out, *FAST], monkeypatch, capsys)
    assert code == 1 and "Nothing trained is lost" in text and f"--resume {out}" in text
    assert (out / "checkpoint" / "config.json").is_file()
    code, text = run_cli(["train", "--resume", out], monkeypatch, capsys)
    assert code == 0 and load(out).n_features_in_ == 64


def test_an_undefined_held_out_fvu_is_recorded_as_null_with_a_reason(tmp_path, monkeypatch, capsys):
    from lucidae.runs import split_rows

    data = tmp_path / "flat.csv"
    rows = np.full((50, 3), 0.5)
    train_idx, _ = split_rows(50, 0.2, seed=0, streaming=False)
    rows[train_idx] += np.random.default_rng(0).random((len(train_idx), 3))  # the held-out rows stay constant
    np.savetxt(data, rows, delimiter=",", header="a,b,c", comments="")
    out = tmp_path / "run"
    args = ["train", "--data", data, "--out", out, "--random-state", "0", "--test-fraction", "0.2", *FAST]
    code, text = run_cli(args, monkeypatch, capsys)
    assert code == 0, text
    record = json.loads((out / "run.json").read_text())
    assert record["metrics"]["test_fvu"] is None and "variance" in record["metrics_notes"]["test_fvu"]
    assert "test_fvu not recorded" in text


def _interrupted_run(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    assert run_cli(["train", "--data", "digits", "--out", out, *FAST], monkeypatch, capsys)[0] == 0
    return out


def test_resume_with_deeply_nested_options_is_a_clear_error(tmp_path, monkeypatch, capsys):
    out = _interrupted_run(tmp_path, monkeypatch, capsys)
    (out / "train_options.json").write_text("[" * 100_000 + "]" * 100_000)
    code, text = run_cli(["train", "--resume", out], monkeypatch, capsys)
    assert code == 1 and "could not be read" in text


def test_resume_with_adam_betas_a_string_is_a_clear_error(tmp_path, monkeypatch, capsys):
    out = _interrupted_run(tmp_path, monkeypatch, capsys)
    ckpt = out / "checkpoint"
    config = _config(ckpt)
    config["optimizer_param_groups"][0]["betas"] = "0.9"
    config["sha256"] = lio.checksum(config, lio.sha256_of(ckpt / "model.safetensors"))
    (ckpt / "config.json").write_text(json.dumps(config))
    code, text = run_cli(["train", "--resume", out], monkeypatch, capsys)
    assert code == 1 and "betas is '0.9'; expected two numbers in [0, 1)" in text


def test_an_unlistable_model_folder_is_one_line(tmp_path, monkeypatch, capsys, models):
    run = models[0].save(tmp_path / "m")

    def denied(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "is_file", denied)
    code, text = run_cli(["info", run], monkeypatch, capsys)
    assert code == 1 and "permission denied" in text


def test_every_error_is_still_a_lucidae_error():
    from lucidae.runs import SaveFailedError

    assert issubclass(FolderLockedError, LucidaeError) and issubclass(SaveFailedError, LucidaeError)


def test_a_400_digit_number_in_a_config_or_checkpoint_is_refused(tmp_path, models, X):
    # found by tests/test_fuzz_reliability.py: float(10**400) raised OverflowError from the config checks
    run = models[0].save(tmp_path / "m")
    config = _config(run)
    config["model"]["encoder_l1"] = 10**400
    _reseal(run, config)
    with pytest.raises(CorruptFileError, match="model is not a valid ModelConfig"):
        load(run)
    ckpt = tmp_path / "ckpt"
    _ae(epochs=1).fit(X, checkpoint_dir=ckpt)
    config = _config(ckpt)
    config["optimizer_param_groups"][0]["lr"] = 10**400
    _reseal_checkpoint = lio.checksum(config, lio.sha256_of(ckpt / "model.safetensors"))
    config["sha256"] = _reseal_checkpoint
    (ckpt / "config.json").write_text(json.dumps(config))
    with pytest.raises(CorruptFileError, match="lr is 1000"):
        _ae(epochs=2).fit(X, checkpoint_dir=ckpt, resume=True)


def test_fit_refuses_a_terabyte_model_before_building_it(X, monkeypatch):
    import lucidae.estimators.base as base

    def no_build(cfg):
        raise AssertionError("the module was built")

    monkeypatch.setattr(base, "build_model", no_build)
    with pytest.raises(ConfigError, match=r"2,000,\d{3},000,\d{3} parameters\) needs about .* TB of memory"):
        _ae(hidden_dims=(10**6, 10**6)).fit(X)


def test_a_bug_escaping_a_command_is_one_line_and_the_traceback_is_on_request(tmp_path, monkeypatch, capsys):
    from lucidae.cli.app import main

    app_module = importlib.import_module("lucidae.cli.app")

    def broken(out, options):
        raise TypeError("unsupported operand")

    monkeypatch.setattr(app_module, "write_train_options", broken)
    monkeypatch.setattr(sys, "argv", ["lucidae", "train", "--data", "digits", "--out", str(tmp_path / "r"), *FAST])
    with pytest.raises(SystemExit) as exit_:
        main()
    err = capsys.readouterr().err
    assert exit_.value.code == 1 and "internal error (TypeError: unsupported operand)" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) <= 3
    monkeypatch.setenv("LUCIDAE_TRACEBACK", "1")
    with pytest.raises(TypeError):
        main()


def test_train_takes_an_empty_folder_made_for_it_and_a_failure_leaves_it_empty(tmp_path, monkeypatch, capsys):
    out = tmp_path / "made"
    out.mkdir()
    text_cells = tmp_path / "data" / "text.csv"
    text_cells.parent.mkdir()
    text_cells.write_text("a,b\n1,x\n2,y\n")
    code, text = run_cli(["train", "--data", text_cells, "--out", out, *FAST], monkeypatch, capsys)
    assert code == 1 and out.is_dir() and list(out.iterdir()) == []
    assert run_cli(["train", "--data", "digits", "--out", out, *FAST], monkeypatch, capsys)[0] == 0
    assert (out / "config.json").is_file()
