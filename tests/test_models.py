import pytest
import torch

from lucidae.config import ACTIVATIONS, ModelConfig
from lucidae.errors import ConfigError
from lucidae.models import DenseAutoEncoder, Output, build_model


def test_classic_architecture_shapes_and_named_output():
    model = build_model(ModelConfig(input_dim=784))
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [
        (784, 128),
        (128, 32),
        (32, 128),
        (128, 784),
    ]
    out = model(torch.rand(7, 784))
    assert isinstance(out, Output)
    assert out.recon.shape == (7, 784) and out.latent.shape == (7, 32)
    # sigmoid output and relu code by default
    assert out.recon.min() >= 0 and out.recon.max() <= 1
    assert out.latent.min() >= 0


def test_deeper_mirrored_decoder():
    model = DenseAutoEncoder(ModelConfig(input_dim=20, hidden_dims=(16, 8), latent_dim=3))
    enc = [m.out_features for m in model.encoder if isinstance(m, torch.nn.Linear)]
    dec = [m.out_features for m in model.decoder if isinstance(m, torch.nn.Linear)]
    assert enc == [16, 8, 3] and dec == [8, 16, 20]


def test_linear_activations_make_a_linear_map():
    cfg = ModelConfig(
        input_dim=5,
        hidden_dims=(4,),
        latent_dim=2,
        activation="linear",
        latent_activation="linear",
        output_activation="linear",
    )
    model = build_model(cfg)
    a, b = torch.randn(3, 5), torch.randn(3, 5)
    za, zb, zab = model.encode(a), model.encode(b), model.encode(a + b)
    zero = model.encode(torch.zeros(1, 5))
    # affine: f(a + b) = f(a) + f(b) - f(0)
    torch.testing.assert_close(zab, za + zb - zero, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_every_activation_builds(name):
    model = build_model(ModelConfig(input_dim=6, hidden_dims=(4,), latent_dim=2, activation=name))
    assert model(torch.rand(2, 6)).recon.shape == (2, 6)


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"latent_dim": 0}, "latent_dim=0"),
        ({"hidden_dims": (0,)}, "hidden_dims"),
        ({"activation": "swish2"}, "allowed values"),
        ({"model": "nope"}, "model='nope'"),
    ],
)
def test_bad_model_config_is_named(kwargs, fragment):
    with pytest.raises(ConfigError, match=fragment.replace("(", r"\(")):
        ModelConfig(input_dim=4, **kwargs).validate()


def test_loss_is_mse():
    model = build_model(ModelConfig(input_dim=3, hidden_dims=(), latent_dim=2))
    x = torch.rand(4, 3)
    loss = model.loss(x, x)
    expected = ((model(x).recon - x) ** 2).mean()
    torch.testing.assert_close(loss.total, expected)
