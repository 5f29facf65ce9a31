"""The classic dense autoencoder, read top to bottom.

``input_dim -> hidden_dims... -> latent_dim -> reversed(hidden_dims)... -> input_dim``,
trained to reproduce its input under a mean-squared error. With ``hidden_dims=(128,)``,
``latent_dim=32``, ReLU inside and a sigmoid output it is the model of the classic
Keras tutorial (784-128-32-128-784 on MNIST).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lucidae.config import ModelConfig


class Output(NamedTuple):
    """What a forward pass returns."""

    recon: Tensor
    """Reconstruction in the model's (scaled) input space, ``(batch, input_dim)``."""
    latent: Tensor
    """The code, ``(batch, latent_dim)``."""


class Loss(NamedTuple):
    """A training objective: the scalar to minimise and its named parts for the history."""

    total: Tensor
    """Scalar that the optimiser minimises."""
    terms: dict[str, Tensor]
    """Named scalar parts (e.g. ``{"mse": ...}``), logged per epoch."""


def activation(name: str) -> nn.Module:
    """Return the activation module that ``name`` names (``"linear"`` is the identity).

    Examples
    --------
    >>> activation("relu")
    ReLU()
    """
    table: dict[str, type[nn.Module]] = {
        "relu": nn.ReLU,
        "linear": nn.Identity,
        "sigmoid": nn.Sigmoid,
        "tanh": nn.Tanh,
        "gelu": nn.GELU,
        "leaky_relu": nn.LeakyReLU,
        "softplus": nn.Softplus,
        "elu": nn.ELU,
        "silu": nn.SiLU,
    }
    return table[name]()


def mlp(dims: list[int], hidden: str, last: str) -> nn.Sequential:
    """Stack ``Linear`` layers through ``dims``: ``hidden`` between them, ``last`` at the end.

    Examples
    --------
    >>> mlp([4, 3, 2], "relu", "linear")
    Sequential(
      (0): Linear(in_features=4, out_features=3, bias=True)
      (1): ReLU()
      (2): Linear(in_features=3, out_features=2, bias=True)
      (3): Identity()
    )
    """
    layers: list[nn.Module] = []
    for i, (d_in, d_out) in enumerate(zip(dims, dims[1:])):
        layers += [nn.Linear(d_in, d_out), activation(last if i == len(dims) - 2 else hidden)]
    return nn.Sequential(*layers)


class DenseAutoEncoder(nn.Module):
    """Dense (MLP) autoencoder with a mirrored decoder.

    When to use it: the default for flat feature vectors and small images. Every
    nonlinearity makes the code more expressive and harder to read; set all
    activations to ``"linear"`` for a model whose code spans the PCA subspace.

    Parameters
    ----------
    cfg : ModelConfig
        Architecture; ``cfg.input_dim`` must be set.

    Examples
    --------
    >>> import torch
    >>> from lucidae.config import ModelConfig
    >>> model = DenseAutoEncoder(ModelConfig(input_dim=784))
    >>> out = model(torch.rand(5, 784))
    >>> tuple(out.recon.shape), tuple(out.latent.shape)
    ((5, 784), (5, 32))
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        if cfg.input_dim < 1:
            raise ValueError("ModelConfig.input_dim must be set (>= 1) before building a model.")
        self.cfg = cfg
        self.input_dim = cfg.input_dim
        self.latent_dim = cfg.latent_dim
        widths = [cfg.input_dim, *cfg.hidden_dims, cfg.latent_dim]
        self.encoder = mlp(widths, cfg.activation, last=cfg.latent_activation)
        self.decoder = mlp(widths[::-1], cfg.activation, last=cfg.output_activation)

    @torch.no_grad()
    def prepare(self, X: Tensor) -> None:
        """Data-dependent initialisation, run once by the trainer before the first step.

        Two things kill ReLU units of a small code in the first few steps, after which
        they never recover: units that start inactive on most of the data, and a
        reconstruction that starts at 0.5 everywhere (a sigmoid of zero) so that the
        first gradients push every unit down. So each ReLU-like unit's bias is shifted
        to make it active on half of the data, and the decoder's last bias starts at the
        output activation's inverse of the data mean.
        """
        h = X[: min(len(X), 4096)]  # (sample, input_dim)
        for seq in (self.encoder, self.decoder):
            layers = list(seq)
            for linear, act in zip(layers[::2], layers[1::2]):
                pre = linear(h)  # (sample, out)
                if seq is self.decoder and linear is layers[-2]:
                    break
                if isinstance(act, (nn.ReLU, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Softplus)):
                    shift = pre.median(dim=0).values  # (out,)
                    linear.bias.sub_(shift)
                    pre = pre - shift
                h = act(pre)
        last = self.decoder[-2]  # the final nn.Linear
        mean = X.mean(dim=0)  # (input_dim,)
        name = self.cfg.output_activation
        if name == "sigmoid":
            target = torch.logit(mean.clamp(1e-3, 1 - 1e-3))
        elif name == "tanh":
            target = torch.atanh(mean.clamp(-1 + 1e-3, 1 - 1e-3))
        else:
            target = mean
        last.bias.copy_(target - last(h).mean(dim=0) + last.bias)

    def encode(self, x: Tensor) -> Tensor:
        """Map inputs ``(batch, input_dim)`` to codes ``(batch, latent_dim)``."""
        return self.encoder(x)

    def decode(self, z: Tensor) -> Tensor:
        """Map codes ``(batch, latent_dim)`` to reconstructions ``(batch, input_dim)``."""
        return self.decoder(z)

    def forward(self, x: Tensor) -> Output:
        z = self.encode(x)  # (batch, latent)
        return Output(self.decode(z), z)

    def loss(self, x: Tensor, target: Tensor) -> Loss:
        """Mean squared error of reconstructing ``target`` from (possibly corrupted) ``x``.

        Examples
        --------
        >>> import torch
        >>> from lucidae.config import ModelConfig
        >>> m = DenseAutoEncoder(ModelConfig(input_dim=3, hidden_dims=(), latent_dim=2))
        >>> x = torch.rand(4, 3)
        >>> sorted(m.loss(x, x).terms)
        ['mse']
        """
        out = self(x)
        mse = F.mse_loss(out.recon, target)
        return Loss(mse, {"mse": mse.detach()})

    @torch.no_grad()
    def sample_errors(self, x: Tensor) -> Tensor:
        """Per-sample mean squared reconstruction error ``(batch,)``, used for scoring."""
        return (self(x).recon - x).pow(2).mean(dim=1)
