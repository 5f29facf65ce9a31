import numpy as np
import pytest
import torch

from lucidae.config import ModelConfig, TrainConfig
from lucidae.errors import TrainingError
from lucidae.models import build_model
from lucidae.train import auto_epochs, lr_at, seeded, train


def _model(seed=0, d=64):
    with seeded(seed):
        return build_model(ModelConfig(input_dim=d, hidden_dims=(32,), latent_dim=8))


def test_loss_decreases(digits):
    model = _model()
    hist = train(model, digits.X, TrainConfig(epochs=15, verbose=0, random_state=0))
    losses = hist.losses
    assert losses[-1] < 0.5 * losses[0]
    assert all(np.isfinite(losses))
    assert {"epoch", "loss", "mse", "val_loss", "lr", "seconds", "samples_per_s"} <= set(hist.records[0])


def test_same_seed_is_bit_identical(digits):
    cfg = TrainConfig(epochs=3, verbose=0, random_state=3)
    a, b = _model(1), _model(1)
    train(a, digits.X, cfg)
    train(b, digits.X, cfg)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)
    c = _model(1)
    train(c, digits.X, TrainConfig(epochs=3, verbose=0, random_state=4))
    assert not torch.equal(a.encoder[0].weight, c.encoder[0].weight)


def test_early_stopping_restores_best_weights(rng):
    # pure noise: validation loss stops improving quickly
    X = rng.random((300, 10)).astype(np.float32)
    model = _model(d=10)
    cfg = TrainConfig(epochs=200, patience=3, lr=0.05, verbose=0, random_state=0, lr_schedule="constant")
    hist = train(model, X, cfg)
    assert hist.stopped_early
    assert len(hist.records) < 200
    best = min(r["val_loss"] for r in hist.records)
    assert hist.records[hist.best_epoch - 1]["val_loss"] == best
    # the module holds the best epoch's weights: re-evaluating on the same split gives the best loss
    g = torch.Generator().manual_seed(0)
    from lucidae.train import evaluate, split_validation

    _, val_idx = split_validation(300, cfg.validation_fraction, g)
    assert evaluate(model, torch.from_numpy(X)[val_idx]) == pytest.approx(best, rel=1e-5)


def test_no_validation_when_fraction_zero(digits):
    hist = train(_model(), digits.X[:100], TrainConfig(epochs=2, validation_fraction=0, verbose=0))
    assert "val_loss" not in hist.records[0] and hist.best_epoch is None


def test_nan_loss_stops_with_diagnosis_and_keeps_last_good_weights(digits):
    model = _model()
    X = digits.X[:256]
    steps_per_epoch = 2  # 256 samples, batch 128, no validation
    calls = {"n": 0}
    real_loss = model.loss
    snapshot = {}

    def loss(x, target):
        calls["n"] += 1
        if calls["n"] == steps_per_epoch + 1:  # first step of epoch 2: epoch 1 has just ended
            snapshot.update({k: v.clone() for k, v in model.state_dict().items()})
        out = real_loss(x, target)
        if calls["n"] > steps_per_epoch + 1:
            return out._replace(total=out.total * float("nan"))
        return out

    model.loss = loss
    cfg = TrainConfig(epochs=5, batch_size=128, verbose=0, random_state=0, validation_fraction=0)
    with pytest.raises(TrainingError, match="epoch 2.*lower learning rate"):
        train(model, X, cfg)
    for k, v in model.state_dict().items():
        assert torch.equal(v, snapshot[k]), k
        assert torch.isfinite(v).all()


def test_auto_epochs_targets_a_step_budget():
    assert auto_epochs(10) == 500
    assert auto_epochs(100) == 50
    assert auto_epochs(10_000) == 20


def test_cosine_schedule_endpoints():
    cfg = TrainConfig(lr=2.0)
    assert lr_at(0, 10, cfg) == 2.0
    assert lr_at(10, 10, cfg) == pytest.approx(0.1)
    assert lr_at(5, 10, cfg) == pytest.approx(2.0 * (0.05 + 0.95 * 0.5))
    assert lr_at(7, 10, TrainConfig(lr=2.0, lr_schedule="constant")) == 2.0


def test_progress_line_per_epoch_when_verbose_2(digits, capsys):
    train(_model(), digits.X[:200], TrainConfig(epochs=2, verbose=2, random_state=0))
    err = capsys.readouterr().err
    assert err.count("epoch 1/2 ") == 1 and err.count("epoch 2/2 ") == 1 and "samples_per_s" in err


def test_quiet_when_not_a_terminal(digits, capsys):
    train(_model(), digits.X[:200], TrainConfig(epochs=2, verbose=1, random_state=0))
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


def test_exploding_loss_stops_early_with_a_diagnosis(digits):
    from lucidae import train as train_module

    model = _model()
    X = digits.X[:512]
    real_loss, calls, snapshot = model.loss, {"n": 0}, {}

    def loss(x, target):  # fine for epoch 1 (4 steps), then grows 10x per step
        calls["n"] += 1
        if calls["n"] == 5:
            snapshot.update({k: v.clone() for k, v in model.state_dict().items()})
        out = real_loss(x, target)
        return out._replace(total=out.total * 10.0 ** max(0, calls["n"] - 4))

    model.loss = loss
    cfg = TrainConfig(epochs=50, batch_size=128, verbose=0, random_state=0, validation_fraction=0)
    with pytest.raises(TrainingError, match=r"exploded to .* in epoch 2 .*weights of epoch 1.*lower learning rate"):
        train(model, X, cfg)
    assert calls["n"] == 8  # stopped at the end of epoch 2, not after 50 epochs
    for k, v in model.state_dict().items():
        assert torch.equal(v, snapshot[k]), k
    assert train_module.EXPLODE_FACTOR == 1e3


def test_nan_inside_a_long_epoch_stops_at_the_next_check(digits, monkeypatch):
    from lucidae import train as train_module

    monkeypatch.setattr(train_module, "CHECK_EVERY", 4)
    model = _model()
    real_loss, calls = model.loss, {"n": 0}

    def loss(x, target):
        calls["n"] += 1
        out = real_loss(x, target)
        return out._replace(total=out.total * float("nan")) if calls["n"] >= 3 else out

    model.loss = loss
    cfg = TrainConfig(epochs=1, batch_size=16, verbose=0, random_state=0, validation_fraction=0)
    with pytest.raises(TrainingError, match=r"became nan in epoch 1 \(step 4\)"):
        train(model, digits.X, cfg)  # 113 steps in the epoch; stopped at step 4
    assert calls["n"] == 4


def test_bf16_autocast_trains(digits):
    model = _model()
    hist = train(model, digits.X, TrainConfig(epochs=4, verbose=0, random_state=0, precision="bf16"))
    assert all(np.isfinite(hist.losses)) and hist.losses[-1] < hist.losses[0]
    assert next(model.parameters()).dtype == torch.float32  # weights stay fp32


def test_invalid_precision_and_resume_arguments_are_named():
    from lucidae.errors import ConfigError

    with pytest.raises(ConfigError, match="precision='fp16'"):
        TrainConfig(precision="fp16").validate()
    with pytest.raises(ConfigError, match="checkpoint_every=-1"):
        train(_model(), np.zeros((4, 64), np.float32), TrainConfig(epochs=1, verbose=0), checkpoint_every=-1)


def test_device_auto_uses_cuda_only_when_present():
    from lucidae.train import resolve_device

    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gpu_training_matches_cpu_closely(digits, tmp_path):
    from lucidae import AutoEncoder

    params = dict(hidden_dims=(32,), latent_dim=8, epochs=5, random_state=0, verbose=0)
    cpu = AutoEncoder(**params).fit(digits.X)
    gpu = AutoEncoder(**params, device="cuda").fit(digits.X)
    assert next(gpu.module_.parameters()).is_cuda
    assert gpu.history_.losses[-1] == pytest.approx(cpu.history_.losses[-1], rel=0.05)
    np.testing.assert_allclose(gpu.transform(digits.X[:50]), cpu.transform(digits.X[:50]), atol=0.05)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gpu_streaming_bf16(digits, tmp_path):
    from lucidae import AutoEncoder

    path = tmp_path / "x.npy"
    np.save(path, digits.X.astype(np.float32))
    ae = AutoEncoder(hidden_dims=(32,), latent_dim=8, epochs=3, random_state=0, verbose=0, device="auto")
    ae.set_params(precision="bf16").fit(path)
    assert all(np.isfinite(ae.history_.losses))


@pytest.mark.parametrize("kind, extra", [(torch.optim.Adam, {}), (torch.optim.AdamW, {"weight_decay": 0.01})])
def test_fast_fused_adam_step_is_bit_identical_to_optimizer_step(kind, extra):
    from lucidae.train import fused_adam_step

    a, b = _model(d=20), _model(d=20)
    opt_a = kind(a.parameters(), lr=1e-2, fused=True, **extra)
    opt_b = kind(b.parameters(), lr=1e-2, fused=True, **extra)
    fast = fused_adam_step(opt_b)
    x = torch.rand(64, 20, generator=torch.Generator().manual_seed(0))
    for i in range(15):
        for model, opt, step in ((a, opt_a, opt_a.step), (b, opt_b, fast)):
            opt.zero_grad(set_to_none=True)
            model.loss(x, x).total.backward()
            step()
            for group in opt.param_groups:
                group["lr"] = 1e-2 * (1 - i / 30)  # a schedule, as the trainer sets it
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)
    sa, sb = opt_a.state_dict()["state"], opt_b.state_dict()["state"]
    assert all(torch.equal(sa[k][n], sb[k][n]) for k in sa for n in sa[k])
    amsgrad = torch.optim.Adam(a.parameters(), amsgrad=True, fused=True)
    assert fused_adam_step(amsgrad) == amsgrad.step  # anything unusual keeps the optimiser's own step


def test_warm_start_continues_from_the_weights_without_the_data_dependent_initialisation():
    X = torch.rand(256, 16)
    calls = []
    for warm in (False, True):
        model = build_model(ModelConfig(input_dim=16, hidden_dims=(8,), latent_dim=4))
        model.prepare = lambda sample, warm=warm: calls.append(warm)  # a spy standing in for the method
        train(model, X, TrainConfig(epochs=1, verbose=0, random_state=0), warm_start=warm)
    assert calls == [False]  # prepare ran for the fresh start only
