"""Training faults: interrupted runs resume bit-exactly; checkpoints are atomic and verified."""

import json

import numpy as np
import pytest
import torch

from lucidae.checkpoint import TrainState, load_checkpoint, save_checkpoint
from lucidae.config import ModelConfig, TrainConfig
from lucidae.errors import ConfigError, CorruptFileError
from lucidae.models import build_model
from lucidae.train import TrainingInterrupted, seeded, train

CFG = dict(epochs=5, batch_size=64, verbose=0, random_state=3, validation_fraction=0.2, patience=0)


def _model():
    with seeded(0):
        return build_model(ModelConfig(input_dim=64, hidden_dims=(16,), latent_dim=4))


@pytest.fixture(scope="module")
def X(digits):
    return digits.X[:600].astype(np.float32)


@pytest.fixture(scope="module")
def uninterrupted(X):
    model = _model()
    history = train(model, X, TrainConfig(**CFG))
    return model, history


def _assert_same_weights(a, b):
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb), ka


def _stop_after(epoch):
    def callback(record):
        if record["epoch"] == epoch:
            raise KeyboardInterrupt

    return callback


def test_resume_after_an_interrupt_between_epochs_is_bit_identical(X, uninterrupted, tmp_path):
    ckpt = tmp_path / "checkpoint"
    model = _model()
    with pytest.raises(TrainingInterrupted, match="after epoch 2 is saved") as info:
        train(model, X, TrainConfig(**CFG), checkpoint_dir=ckpt, on_epoch_end=_stop_after(2))
    assert info.value.checkpoint == ckpt and info.value.epoch == 2
    resumed = _model()  # a fresh process would start from a fresh module
    history = train(resumed, X, TrainConfig(**CFG), checkpoint_dir=ckpt, resume=True)
    ref_model, ref_history = uninterrupted
    _assert_same_weights(resumed, ref_model)
    assert [r["loss"] for r in history.records] == ref_history.losses
    assert history.best_epoch == ref_history.best_epoch


def test_interrupt_inside_an_epoch_rolls_back_to_the_last_finished_epoch(X, uninterrupted, tmp_path):
    ckpt = tmp_path / "checkpoint"
    model = _model()
    real_loss, calls = model.loss, {"n": 0}

    def loss(x, target):  # Ctrl-C in the middle of epoch 3 (8 steps per epoch)
        calls["n"] += 1
        if calls["n"] == 2 * 8 + 4:
            raise KeyboardInterrupt
        return real_loss(x, target)

    model.loss = loss
    cfg = TrainConfig(**CFG)
    with pytest.raises(TrainingInterrupted, match="interrupted in epoch 3; the state after epoch 2"):
        train(model, X, cfg, checkpoint_dir=ckpt, checkpoint_every=0)  # 0: written only on the interrupt
    assert load_checkpoint(ckpt).epoch == 2
    resumed = _model()
    train(resumed, X, cfg, checkpoint_dir=ckpt, resume=True)
    _assert_same_weights(resumed, uninterrupted[0])


def test_periodic_checkpoints_follow_the_run(X, tmp_path):
    ckpt = tmp_path / "checkpoint"
    seen = []
    train(
        _model(),
        X,
        TrainConfig(**CFG),
        checkpoint_dir=ckpt,
        checkpoint_every=2,
        on_epoch_end=lambda r: seen.append(load_checkpoint(ckpt).epoch if (ckpt / "config.json").exists() else 0),
    )
    assert seen == [0, 2, 2, 4, 5]  # every 2 epochs, and the last one


def test_resume_refuses_other_settings(X, tmp_path):
    ckpt = tmp_path / "checkpoint"
    with pytest.raises(TrainingInterrupted):
        train(_model(), X, TrainConfig(**CFG), checkpoint_dir=ckpt, on_epoch_end=_stop_after(1))
    with pytest.raises(ConfigError, match=r"lr: 0.003 -> 0.01"):
        train(_model(), X, TrainConfig(**{**CFG, "lr": 0.01}), checkpoint_dir=ckpt, resume=True)
    with pytest.raises(ConfigError, match="needs checkpoint_dir"):
        train(_model(), X, TrainConfig(**CFG), resume=True)


def test_a_checkpoint_of_another_model_is_refused_cleanly(X, tmp_path):
    ckpt = tmp_path / "checkpoint"
    with pytest.raises(TrainingInterrupted):
        train(_model(), X, TrainConfig(**CFG), checkpoint_dir=ckpt, on_epoch_end=_stop_after(1))
    with seeded(0):
        other = build_model(ModelConfig(input_dim=64, hidden_dims=(16,), latent_dim=6))
    with pytest.raises(CorruptFileError, match="does not fit this model"):
        train(other, X, TrainConfig(**CFG), checkpoint_dir=ckpt, resume=True)


def test_a_damaged_checkpoint_is_refused(X, tmp_path):
    ckpt = tmp_path / "checkpoint"
    save_checkpoint(ckpt, TrainState(epoch=1, step=2, module={"w": torch.ones(3)}))
    weights = ckpt / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(CorruptFileError, match="checksum"):
        load_checkpoint(ckpt)
    meta = json.loads((ckpt / "config.json").read_text())
    meta["kind"] = "something else"
    (ckpt / "config.json").write_text(json.dumps(meta))
    with pytest.raises(CorruptFileError, match="not a lucidae training checkpoint"):
        load_checkpoint(ckpt)


def test_a_crash_during_a_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    ckpt = tmp_path / "checkpoint"
    save_checkpoint(ckpt, TrainState(epoch=1, step=2, module={"w": torch.ones(3)}))
    import safetensors.torch

    def dying_save(tensors, filename, *args, **kwargs):
        with open(filename, "wb") as fh:
            fh.write(b"\x00" * 10)  # half a file, then the process "dies"
        raise KeyboardInterrupt

    monkeypatch.setattr(safetensors.torch, "save_file", dying_save)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(ckpt, TrainState(epoch=2, step=4, module={"w": torch.zeros(3)}))
    monkeypatch.undo()
    state = load_checkpoint(ckpt)
    assert state.epoch == 1 and torch.equal(state.module["w"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint"]  # no temporary left behind


def test_cli_resume_ends_with_the_weights_of_an_uninterrupted_run(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    import lucidae.estimators
    from lucidae import load
    from lucidae.cli import app

    args = ["train", "--data", "digits", "--hidden-dims", "16", "--latent-dim", "4", "--epochs", "4"]
    args += ["--random-state", "0", "--verbose", "0"]
    runner = CliRunner()
    assert runner.invoke(app, [*args, "--out", str(tmp_path / "full")]).exit_code == 0
    real_train = lucidae.estimators.base.train

    def ctrl_c_after_epoch_2(*a, **kw):
        return real_train(*a, **kw, on_epoch_end=_stop_after(2))

    monkeypatch.setattr(lucidae.estimators.base, "train", ctrl_c_after_epoch_2)
    cut = tmp_path / "cut"
    result = runner.invoke(app, [*args, "--out", str(cut)])
    assert result.exit_code == 130
    assert f"Resume with: lucidae train --resume {cut}" in result.output
    monkeypatch.undo()
    result = runner.invoke(app, ["train", "--resume", str(cut)])
    assert result.exit_code == 0, result.output
    full, resumed = load(tmp_path / "full"), load(cut)
    _assert_same_weights(resumed.module_, full.module_)
    assert resumed.history_.losses == full.history_.losses


def test_cli_resume_of_a_folder_without_a_run_is_a_clear_error(tmp_path):
    from typer.testing import CliRunner

    from lucidae.cli import app

    result = CliRunner().invoke(app, ["train", "--resume", str(tmp_path)])
    assert result.exit_code == 1 and "train_options.json" in result.output


def test_a_real_ctrl_c_saves_a_checkpoint_and_says_how_to_resume(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "lucidae", "train", "--data", "digits", "--hidden-dims", "16", "--latent-dim", "4"]
    cmd += ["--epochs", "500", "--random-state", "0", "--verbose", "0", "--out", str(run)]
    proc = subprocess.Popen(
        cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 300
        while not (run / "checkpoint" / "config.json").exists():  # wait for the first finished epoch
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert f"Resume with: lucidae train --resume {run}" in err
    state = load_checkpoint(run / "checkpoint")
    assert 1 <= state.epoch < 500 and len(state.history["records"]) == state.epoch
    assert not (run / "model.safetensors").exists()  # no half-trained model is passed off as finished


def test_resuming_a_run_that_stopped_early_trains_no_further(tmp_path, rng):
    X = rng.random((300, 64)).astype(np.float32)  # noise: validation stops improving at once
    cfg = TrainConfig(epochs=200, patience=2, lr=0.05, lr_schedule="constant", verbose=0, random_state=0)
    model = _model()
    history = train(model, X, cfg, checkpoint_dir=tmp_path / "ckpt")
    assert history.stopped_early
    again = _model()
    resumed = train(again, X, cfg, checkpoint_dir=tmp_path / "ckpt", resume=True)
    assert resumed.losses == history.losses
    _assert_same_weights(again, model)


def test_an_interrupt_without_a_checkpoint_dir_says_nothing_was_saved(X):
    with pytest.raises(TrainingInterrupted, match="nothing was saved \\(no checkpoint_dir was given\\)") as info:
        train(_model(), X, TrainConfig(**CFG), on_epoch_end=_stop_after(1))
    assert info.value.checkpoint is None


def test_train_help_documents_resume_and_checkpoints():
    from typer.testing import CliRunner

    from lucidae.cli import app

    output = CliRunner().invoke(app, ["train", "--help"]).output
    text = " ".join(output.replace("│", " ").split())  # help wraps inside rich's boxes
    assert "Continue the interrupted run in this folder" in text
    assert "Epochs between checkpoints" in text and "bfloat16 autocast" in text
