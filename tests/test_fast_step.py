"""The written-out dense step (lucidae.fast_step) against autograd, its slow and obvious reference."""

import numpy as np
import pytest
import torch

import lucidae.fast_step as fast_step
from lucidae import AutoEncoder, LinearAutoEncoder
from lucidae.config import ModelConfig, TrainConfig
from lucidae.fast_step import DenseStep, plain_dense_layers
from lucidae.models import build_model
from lucidae.train import seeded, train

ACTS = fast_step.ACTIVATIONS


def _model(seed=0, **kw):
    cfg = dict(input_dim=12, hidden_dims=(9, 6), latent_dim=3)
    cfg.update(kw)
    with seeded(seed):
        return build_model(ModelConfig(**cfg))


def _autograd(model, x):
    model._noise_gen = None  # a denoising model draws the same noise in both paths
    model.zero_grad(set_to_none=True)
    loss = model.loss(x, x).total
    loss.backward()
    return loss.detach(), {name: p.grad.clone() for name, p in model.named_parameters()}


@pytest.mark.parametrize("hidden", ACTS)
@pytest.mark.parametrize("latent", ACTS)
@pytest.mark.parametrize("output", ACTS)
def test_loss_and_gradients_equal_autograds_in_float64(hidden, latent, output):
    model = _model(activation=hidden, latent_activation=latent, output_activation=output)
    layers = plain_dense_layers(model, TrainConfig())
    assert layers is not None
    model.double()  # the step itself is dtype-agnostic; float64 makes the comparison tight
    x = torch.rand(17, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    want_loss, want = _autograd(model, x)
    got_loss = DenseStep(model, layers)(x)
    assert torch.allclose(got_loss.total, want_loss, rtol=1e-13, atol=0)
    assert got_loss.terms["mse"] is got_loss.total
    for name, p in model.named_parameters():
        assert torch.allclose(p.grad, want[name], rtol=1e-10, atol=1e-15), name


@pytest.mark.parametrize(
    "levers",
    [
        dict(noise="gaussian", noise_level=0.3),
        dict(noise="mask", noise_level=0.4),
        dict(encoder_l1=0.01, decoder_l1=0.003),
        dict(encoder_l2=0.02, decoder_l2=0.005),
        dict(latent_l1=0.05),
        dict(latent_l1=0.05, latent_activation="linear", hidden_dims=()),
        dict(noise="mask", noise_level=0.2, encoder_l1=0.01, decoder_l2=0.01, latent_l1=0.02, activation="tanh"),
        dict(tied=True),
        dict(tied=True, hidden_dims=(), latent_activation="linear", output_activation="linear"),
        dict(tied=True, encoder_l1=0.01, decoder_l1=0.02, encoder_l2=0.003, decoder_l2=0.004, latent_l1=0.01),
        dict(decoder_hidden_dims=(4, 11, 7), encoder_l1=0.01),  # a pruned model: the decoder no longer mirrors
        dict(model="linear"),
        dict(model="linear", tied=True, noise="gaussian", noise_level=0.2, decoder_l1=0.01),
    ],
)
def test_the_levers_loss_terms_and_gradients_equal_autograds_in_float64(levers):
    model = _model(**levers)
    layers = plain_dense_layers(model, TrainConfig())
    assert layers is not None
    model.double().train()
    x = torch.rand(17, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    if hasattr(model, "center"):  # the linear model's data mean, as prepare() would set it
        model.center.copy_(x.mean(dim=0) + 0.1)
    model._noise_gen = None
    want = model.loss(x, x)
    _, want_grads = _autograd(model, x)
    model._noise_gen = None
    got = DenseStep(model, layers)(x)
    assert set(got.terms) == set(want.terms)
    for name in want.terms:
        assert torch.allclose(got.terms[name], want.terms[name], rtol=1e-12, atol=0), name
    assert torch.allclose(got.total, want.total.detach(), rtol=1e-12, atol=0)
    for name, p in model.named_parameters():
        assert torch.allclose(p.grad, want_grads[name], rtol=1e-10, atol=1e-15), name


@pytest.mark.parametrize("hidden_dims", [(), (10,), (10, 8, 5)])
def test_every_depth_and_two_batch_sizes_in_float32(hidden_dims):
    model = _model(hidden_dims=hidden_dims)
    step = DenseStep(model, plain_dense_layers(model, TrainConfig()))
    gen = torch.Generator().manual_seed(2)
    # the epoch's last batch is smaller: each size has its own buffers, reused, never mixed up
    for rows in (32, 7, 32, 1, 7):
        x = torch.rand(rows, 12, generator=gen)
        want_loss, want = _autograd(model, x)
        got = step(x)
        assert torch.allclose(got.total, want_loss, rtol=1e-5)
        for name, p in model.named_parameters():
            assert torch.allclose(p.grad, want[name], rtol=1e-4, atol=1e-7), name


@pytest.mark.parametrize(
    "change",
    [
        dict(activation="gelu"),
        dict(output_activation="softplus"),
        dict(model="sparse"),
        dict(model="vae"),
    ],
)
def test_everything_else_is_left_to_autograd(change):
    assert plain_dense_layers(_model(**change), TrainConfig()) is None


def test_bf16_frozen_weights_and_replaced_methods_are_left_to_autograd():
    assert plain_dense_layers(_model(), TrainConfig(precision="bf16")) is None
    model = _model()
    model.encoder[0].bias.requires_grad_(False)
    assert plain_dense_layers(model, TrainConfig()) is None
    model = _model()
    model.loss = lambda x, target: None  # whoever replaced it expects it to be called
    assert plain_dense_layers(model, TrainConfig()) is None
    model = _model()
    model.decoder[-1] = torch.nn.Softplus()  # the config still says sigmoid; the module is what runs
    assert plain_dense_layers(model, TrainConfig()) is None


def test_the_trainer_uses_it_for_the_classic_model(monkeypatch, digits):
    calls = []
    real = DenseStep.__call__

    def counted(self, x):
        calls.append(x.shape[0])
        return real(self, x)

    monkeypatch.setattr(DenseStep, "__call__", counted)
    model = _model(input_dim=64)
    train(model, digits.X, TrainConfig(epochs=1, batch_size=100, validation_fraction=0.0, verbose=0, random_state=0))
    assert sum(calls) == len(digits.X) and len(calls) == -(-len(digits.X) // 100)


@pytest.mark.parametrize(
    "estimator, levers",
    [
        (AutoEncoder, {}),
        (AutoEncoder, dict(noise="mask", noise_level=0.3, encoder_l1=1e-4, latent_l1=1e-3, tied=True)),
        (LinearAutoEncoder, dict(tied=True)),
    ],
)
def test_a_fit_ends_where_autograd_training_ends(monkeypatch, digits, estimator, levers):
    def fit():
        ae = estimator(latent_dim=8, epochs=8, batch_size=64, random_state=0, verbose=0, **levers)
        if estimator is AutoEncoder:
            ae.set_params(hidden_dims=(32,))
        return ae.fit(digits.X)

    fast = fit()
    monkeypatch.setattr(fast_step, "plain_dense_layers", lambda module, cfg: None)
    slow = fit()
    fast_losses, slow_losses = np.array(fast.history_.losses), np.array(slow.history_.losses)
    assert fast_losses[-1] < 0.95 * fast_losses[0]  # it trains
    np.testing.assert_allclose(fast_losses, slow_losses, rtol=1e-3)
    np.testing.assert_allclose(fast.transform(digits.X), slow.transform(digits.X), rtol=1e-2, atol=1e-3)
