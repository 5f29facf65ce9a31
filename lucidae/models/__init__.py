"""Plain ``nn.Module`` autoencoders, one file per family.

Each module takes a :class:`~lucidae.config.ModelConfig`, returns a NamedTuple from
``forward`` and has ``encode``, ``decode`` and ``loss``. :data:`MODELS` maps the
config's ``model`` name to its class; :func:`build_model` builds one.
"""

from __future__ import annotations

from torch import nn

from lucidae.models.conv import ConvolutionalAutoEncoder, ConvOutput
from lucidae.models.dense import DenseAutoEncoder, LinearAutoEncoder, Loss, Output
from lucidae.models.sparse import SAE, JumpReLUSAE, SparseOutput
from lucidae.models.vae import VAEOutput, VariationalAutoEncoder

MODELS: dict[str, type[nn.Module]] = {
    "dense": DenseAutoEncoder,
    "linear": LinearAutoEncoder,
    "sparse": SAE,
    "topk": SAE,
    "conv": ConvolutionalAutoEncoder,
    "vae": VariationalAutoEncoder,
    "tcvae": VariationalAutoEncoder,
    "jumprelu": JumpReLUSAE,
}
"""Model family name (``ModelConfig.model``) to module class."""


def build_model(cfg) -> nn.Module:
    """Build the module that ``cfg.model`` names.

    Parameters
    ----------
    cfg : ModelConfig
        A config with ``input_dim`` set, already validated (``cfg.validate()``; configs that
        lucidae builds, and ``ModelConfig.from_dict``, are): a config is checked once, where
        it is made, not again by every function it passes through.

    Returns
    -------
    torch.nn.Module

    Examples
    --------
    >>> from lucidae.config import ModelConfig
    >>> build_model(ModelConfig(input_dim=64, latent_dim=4)).latent_dim
    4
    """
    return MODELS[cfg.model](cfg)


__all__ = [
    "MODELS",
    "ConvOutput",
    "ConvolutionalAutoEncoder",
    "DenseAutoEncoder",
    "JumpReLUSAE",
    "LinearAutoEncoder",
    "Loss",
    "Output",
    "SAE",
    "SparseOutput",
    "VAEOutput",
    "VariationalAutoEncoder",
    "build_model",
]
