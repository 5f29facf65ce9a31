"""Convolutional autoencoder for images, and the conv encoder/decoder the VAE reuses.

Samples arrive flattened, ``(batch, C*H*W)``, as everywhere in lucidae; the module
reshapes them to ``(batch, C, H, W)`` with ``ModelConfig.image_shape``. Each conv layer
has a 4x4 kernel, stride 2 and padding 1, so it halves the height and width (rounding
down); the decoder mirrors it with transposed convolutions whose output padding restores
odd sizes exactly. This is the encoder of Higgins et al. (2017) and Chen et al. (2018)
for dSprites: (32, 32, 64, 64) channels, then a dense layer.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lucidae.config import ModelConfig, check_conv_config
from lucidae.models.dense import Loss, activation, mlp


def conv_sizes(height: int, width: int, n_layers: int) -> list[tuple[int, int]]:
    """Spatial size before each conv layer and after the last: halving, rounding down.

    Examples
    --------
    >>> conv_sizes(28, 28, 3)
    [(28, 28), (14, 14), (7, 7), (3, 3)]
    """
    sizes = [(height, width)]
    for _ in range(n_layers):
        h, w = sizes[-1]
        sizes.append((h // 2, w // 2))
    return sizes


class ConvEncoder(nn.Module):
    """Strided convolutions, flatten, then dense layers to ``out_dim`` features.

    Examples
    --------
    >>> import torch
    >>> enc = ConvEncoder((1, 32, 32), (8, 8), (16,), 4, "relu", "linear")
    >>> tuple(enc(torch.rand(2, 1024)).shape)
    (2, 4)
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int],
        channels: tuple[int, ...],
        hidden_dims: tuple[int, ...],
        out_dim: int,
        hidden: str,
        last: str,
    ):
        super().__init__()
        self.image_shape = image_shape
        c, h, w = image_shape
        layers: list[nn.Module] = []
        for c_in, c_out in zip((c, *channels), channels):
            layers += [nn.Conv2d(c_in, c_out, kernel_size=4, stride=2, padding=1), activation(hidden)]
        self.convs = nn.Sequential(*layers)
        fh, fw = conv_sizes(h, w, len(channels))[-1]
        self.flat_dim = (channels[-1] if channels else c) * fh * fw
        dense = [self.flat_dim, *hidden_dims, out_dim]
        self.dense = mlp(dense, hidden, last=last)

    def forward(self, x: Tensor) -> Tensor:
        feats = self.convs(x.reshape(x.shape[0], *self.image_shape))  # (batch, C', H', W')
        return self.dense(feats.flatten(1))  # (batch, out_dim)


class ConvDecoder(nn.Module):
    """Mirror of :class:`ConvEncoder`: dense layers, unflatten, transposed convolutions.

    Returns the pre-activation output, flattened to ``(batch, C*H*W)``; the caller
    applies the output activation (a VAE with a Bernoulli likelihood needs the logits).

    Examples
    --------
    >>> import torch
    >>> dec = ConvDecoder((1, 28, 28), (8, 8), (16,), 4, "relu")
    >>> tuple(dec(torch.rand(2, 4)).shape)
    (2, 784)
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int],
        channels: tuple[int, ...],
        hidden_dims: tuple[int, ...],
        in_dim: int,
        hidden: str,
    ):
        super().__init__()
        self.image_shape = image_shape
        c, h, w = image_shape
        sizes = conv_sizes(h, w, len(channels))
        self.start_shape = ((channels[-1] if channels else c), *sizes[-1])
        flat = self.start_shape[0] * sizes[-1][0] * sizes[-1][1]
        # Every dense layer is followed by the hidden activation: the convs come after.
        self.dense = mlp([in_dim, *reversed(hidden_dims), flat], hidden, last=hidden if channels else "linear")
        layers: list[nn.Module] = []
        outs = (*reversed(channels[:-1]), c)
        for i, (c_in, c_out) in enumerate(zip(reversed(channels), outs)):
            (h_in, w_in), (h_out, w_out) = sizes[len(channels) - i], sizes[len(channels) - i - 1]
            pad = (h_out - 2 * h_in, w_out - 2 * w_in)  # 0 or 1: restores odd sizes
            layers.append(nn.ConvTranspose2d(c_in, c_out, kernel_size=4, stride=2, padding=1, output_padding=pad))
            if i < len(channels) - 1:
                layers.append(activation(hidden))
        self.deconvs = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        h = self.dense(z).reshape(z.shape[0], *self.start_shape)  # (batch, C', H', W')
        return self.deconvs(h).flatten(1)  # (batch, C*H*W)


class ConvOutput(NamedTuple):
    """What a convolutional autoencoder's forward pass returns."""

    recon: Tensor
    """Reconstruction, flattened: ``(batch, C*H*W)``."""
    latent: Tensor
    """The code, ``(batch, latent_dim)``."""


class ConvolutionalAutoEncoder(nn.Module):
    """Convolutional autoencoder for images ``(C, H, W)``, fed flattened rows.

    When to use it: images larger than a few hundred pixels. Weight sharing across
    positions needs far fewer parameters than a dense layer over every pixel, trains
    faster per sample of quality and generalises across positions. What it trades away:
    a latent's effect is no longer one decoder column you can read off (the decoder is
    nonlinear and spatial), so explanations rely on decoding and traversals; and it
    only fits data that really is an image (``image_shape`` must be known).

    Parameters
    ----------
    cfg : ModelConfig
        ``image_shape``, ``conv_channels``, ``hidden_dims`` (dense layers after the
        convolutions), ``latent_dim`` and the three activations are used.

    Examples
    --------
    >>> import torch
    >>> from lucidae.config import ModelConfig, check_conv_config, image_chw
    >>> cfg = ModelConfig(model="conv", input_dim=256, image_shape=(1, 16, 16), conv_channels=(8, 8), latent_dim=3)
    >>> out = ConvolutionalAutoEncoder(cfg)(torch.rand(2, 256))
    >>> tuple(out.recon.shape), tuple(out.latent.shape)
    ((2, 256), (2, 3))
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        if cfg.input_dim < 1:
            raise ValueError("ModelConfig.input_dim must be set (>= 1) before building a model.")
        chw = check_conv_config(cfg)
        self.cfg = cfg
        self.input_dim = cfg.input_dim
        self.latent_dim = cfg.latent_dim
        self.image_shape = chw
        self.encoder = ConvEncoder(
            chw, cfg.conv_layers(), cfg.hidden_dims, cfg.latent_dim, cfg.activation, cfg.latent_activation
        )
        self.decoder = ConvDecoder(chw, cfg.conv_layers(), cfg.hidden_dims, cfg.latent_dim, cfg.activation)
        self.output_activation = activation(cfg.output_activation)

    @torch.no_grad()
    def prepare(self, X: Tensor) -> None:
        """Start the reconstruction at the mean image, so early gradients shape details, not brightness.

        The last transposed convolution has one bias per channel, so it is set to the
        output activation's inverse of each channel's mean.
        """
        last = self.decoder.deconvs[-1]
        c = self.image_shape[0]
        mean = X.reshape(X.shape[0], c, -1).mean(dim=(0, 2))  # (C,)
        name = self.cfg.output_activation
        if name == "sigmoid":
            mean = torch.logit(mean.clamp(1e-3, 1 - 1e-3))
        elif name == "tanh":
            mean = torch.atanh(mean.clamp(-1 + 1e-3, 1 - 1e-3))
        last.bias.copy_(mean)

    def encode(self, x: Tensor) -> Tensor:
        """Map flattened images ``(batch, C*H*W)`` to codes ``(batch, latent_dim)``."""
        return self.encoder(x)

    def decode(self, z: Tensor) -> Tensor:
        """Map codes ``(batch, latent_dim)`` to flattened images ``(batch, C*H*W)``."""
        return self.output_activation(self.decoder(z))

    def forward(self, x: Tensor) -> ConvOutput:
        z = self.encode(x)  # (batch, latent)
        return ConvOutput(self.decode(z), z)

    def loss(self, x: Tensor, target: Tensor) -> Loss:
        """Mean squared error of reconstructing ``target`` from ``x``, as the dense model.

        Examples
        --------
        >>> import torch
        >>> from lucidae.config import ModelConfig, check_conv_config, image_chw
        >>> cfg = ModelConfig(model="conv", input_dim=64, image_shape=(8, 8), conv_channels=(4,))
        >>> m = ConvolutionalAutoEncoder(cfg)
        >>> x = torch.rand(3, 64)
        >>> sorted(m.loss(x, x).terms)
        ['mse']
        """
        mse = F.mse_loss(self(x).recon, target)
        return Loss(mse, {"mse": mse.detach()})

    @torch.no_grad()
    def sample_errors(self, x: Tensor) -> Tensor:
        """Per-sample mean squared reconstruction error ``(batch,)``, used for scoring."""
        return (self(x).recon - x).pow(2).mean(dim=1)
