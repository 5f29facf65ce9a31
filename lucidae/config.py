"""Typed, documented configuration: one dataclass per concern.

Every field carries a docstring (the string literal right below it). The CLI builds its
options from these fields: name, type, default and help text all come from here
(see :func:`field_docs` and ``lucidae.cli``), and the estimator's parameters are
tested against them, so the three cannot drift apart.

A config is plain data: ``asdict(cfg)`` is JSON and ``Cfg.from_dict(d)`` rebuilds it,
rejecting unknown keys and wrong types with a :class:`~lucidae.errors.ConfigError`.
"""

from __future__ import annotations

import ast
import inspect
import math
import numbers
import types
import typing
from dataclasses import MISSING, asdict, dataclass, fields
from functools import cache
from typing import Any, TypeVar

from lucidae.errors import ConfigError

ACTIVATIONS = ("relu", "linear", "sigmoid", "tanh", "gelu", "leaky_relu", "softplus", "elu", "silu")
"""Names accepted wherever an activation is configured. ``"linear"`` means none."""

SCALINGS = ("auto", "minmax", "standard", "none")
"""Input scalings; see :mod:`lucidae.scaling`."""

T = TypeVar("T", bound="_Config")


class _Config:
    """Shared behaviour of the config dataclasses: validation and dict round trips."""

    def validate(self) -> None:  # pragma: no cover - every subclass overrides
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        """Return the config as a JSON-ready dict (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls: type[T], data: dict[str, Any]) -> T:
        """Rebuild a config from :meth:`to_dict` output, checking keys and types.

        Parameters
        ----------
        data : dict
            Field names to values. Missing fields take their defaults.

        Returns
        -------
        config
            A validated instance.

        Raises
        ------
        ConfigError
            On an unknown key, a value of the wrong type, or a value out of range.

        Examples
        --------
        >>> TrainConfig.from_dict({"epochs": 3}).epochs
        3
        """
        if not isinstance(data, dict):
            raise ConfigError(f"{cls.__name__} must be a JSON object, got {type(data).__name__}.")
        known = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ConfigError(
                f"Unknown {cls.__name__} key(s) {unknown}; allowed keys are {sorted(known)}. "
                "The file may come from a newer lucidae or be damaged."
            )
        hints = typing.get_type_hints(cls)
        kwargs = {name: coerce(name, value, hints[name]) for name, value in data.items()}
        cfg = cls(**kwargs)
        cfg.validate()
        return cfg


def coerce(name: str, value: Any, hint: Any) -> Any:
    """Check ``value`` against the type ``hint`` of field ``name`` and normalise it.

    JSON has no tuples, so lists become tuples where the hint asks for one; ints are
    accepted for floats; bools are never accepted as numbers.

    Examples
    --------
    >>> coerce("hidden_dims", [128, 64], tuple[int, ...])
    (128, 64)
    """
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        non_none = [a for a in args if a is not type(None)]
        errors = []
        for arg in non_none:
            try:
                return coerce(name, value, arg)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0])
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{name} must be a list, got {value!r}.")
        return tuple(coerce(name, v, args[0]) for v in value)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{name} must be a number, got {value!r}.")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{name} must be an integer, got {value!r}.")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{name} must be true or false, got {value!r}.")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{name} must be a string, got {value!r}.")
        return value
    raise ConfigError(f"{name}: unsupported type {hint!r}.")  # pragma: no cover


@cache
def field_docs(cls: type) -> dict[str, str]:
    """Map each dataclass field of ``cls`` to the docstring written below it.

    Examples
    --------
    >>> field_docs(TrainConfig)["epochs"].startswith("Passes")
    True
    """
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if klass is object or not hasattr(klass, "__dataclass_fields__"):
            continue
        tree = ast.parse(inspect.cleandoc("\n" + inspect.getsource(klass)))
        body = tree.body[0].body  # type: ignore[attr-defined]
        for node, nxt in zip(body, body[1:]):
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and isinstance(nxt, ast.Expr)
                and isinstance(nxt.value, ast.Constant)
                and isinstance(nxt.value.value, str)
            ):
                docs[node.target.id] = " ".join(nxt.value.value.split())
    return docs


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def _positive_int(name: str, value: Any, *, minimum: int = 1) -> None:
    _check(
        isinstance(value, int) and not isinstance(value, bool) and value >= minimum,
        f"{name}={value!r} is invalid: expected an integer >= {minimum}.",
    )


def _optional_seed(value: Any) -> None:
    """``random_state`` of an estimator-facing config: None or an integer (numpy's included, not bool)."""
    _check(
        value is None or (isinstance(value, numbers.Integral) and not isinstance(value, bool)),
        f"random_state={value!r} is invalid: expected None or an integer.",
    )


def _one_of(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    _check(value in allowed, f"{name}={value!r} is not known; allowed values are {list(allowed)}.")


def _finite(name: str, value: Any, low: float, high: float, *, low_open: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (value > low if low_open else value >= low) and value <= high
    bracket = "(" if low_open else "["
    _check(ok, f"{name}={value!r} is invalid: expected a number in {bracket}{low}, {high}].")


@dataclass
class ModelConfig(_Config):
    """Architecture of an autoencoder.

    Examples
    --------
    >>> cfg = ModelConfig(input_dim=64, latent_dim=8)
    >>> cfg.validate()
    >>> cfg.hidden_dims
    (128,)
    """

    model: str = "dense"
    """Model family. "dense" is the classic MLP autoencoder (encoder, latent code, mirrored decoder)."""
    input_dim: int = 0
    """Number of input features; taken from the data when training, so leave it at 0 there."""
    hidden_dims: tuple[int, ...] = (128,)
    """Widths of the encoder's hidden layers, in order; the decoder mirrors them. Empty for none."""
    decoder_hidden_dims: tuple[int, ...] | None = None
    """"dense" model: widths of the decoder's hidden layers, from the code outwards, where they should
    not mirror hidden_dims (unset: the mirror). lucidae.prune sets it when it removes dead units from one
    half only; tied weights need the mirror."""
    latent_dim: int = 32
    """Size of the code (bottleneck)."""
    activation: str = "relu"
    """Activation of the hidden layers; "linear" for none."""
    latent_activation: str = "relu"
    """Activation applied to the code. "linear" gives an unconstrained code; "relu" a non-negative one."""
    output_activation: str = "sigmoid"
    """Activation of the reconstruction. "sigmoid" needs targets in [0, 1] (see scaling); "linear" fits any range."""
    tied: bool = False
    """"dense"/"linear" models: the decoder applies the encoder's weight matrices transposed (only its biases
    are its own): half the weights, and each latent reads and writes along the same direction."""
    encoder_l1: float = 0.0
    """"dense"/"linear" models: L1 penalty encoder_l1 * sum|w| on the encoder's weights (not biases), added to
    the loss; drives weights to zero so each latent reads fewer inputs. Useful range about 1e-6 to 1e-3."""
    encoder_l2: float = 0.0
    """"dense"/"linear" models: L2 penalty encoder_l2 * sum w^2 on the encoder's weights (not biases)."""
    decoder_l1: float = 0.0
    """"dense"/"linear" models: L1 penalty on the decoder's weights (not biases), so each latent writes to fewer
    outputs. With tied weights it penalises the shared matrices a second time."""
    decoder_l2: float = 0.0
    """"dense"/"linear" models: L2 penalty decoder_l2 * sum w^2 on the decoder's weights (not biases)."""
    latent_l1: float = 0.0
    """"dense"/"linear" models: activation sparsity, latent_l1 * mean over samples of sum|z| added to the loss
    (an L1 penalty on the code, not the weights): fewer latents active per sample. Useful range about 1e-5 to 1e-3."""
    noise: str = "none"
    """"dense"/"linear" models: corrupt the inputs while training (never the targets, never when evaluating)
    for a denoising autoencoder: "gaussian" adds noise_level * N(0, 1) in the scaled space, "mask" zeroes
    each input with probability noise_level, "none" trains on clean inputs."""
    noise_level: float = 0.1
    """Standard deviation ("gaussian") or drop probability ("mask", below 1) of the input corruption."""
    k: int = 8
    """Sparse "topk" model: latents kept active per sample (exactly k non-zero codes); at most latent_dim."""
    l1_coefficient: float = 0.01
    """Sparse "sparse" (ReLU + L1) model: weight of the L1 penalty on the code, each latent's value
    multiplied by the norm of its decoder column so that growing columns cannot buy a smaller penalty."""
    unit_norm_decoder: bool = True
    """Sparse models: keep every decoder column (dictionary atom) at norm 1 after each optimiser step."""
    decoder_bias_init: str = "median"
    """Sparse models: start the decoder bias (subtracted before encoding) at the data's geometric
    "median" (robust to outliers), its "mean", or "zeros"."""
    aux_k: int = 32
    """Sparse models: dead latents used by the AuxK loss to reconstruct the residual (Gao et al. 2024),
    which revives them; 0 disables it."""
    aux_coefficient: float = 0.03125
    """Sparse models: weight of the AuxK loss relative to the reconstruction error (Gao et al. use 1/32)."""
    dead_window: int = 10000
    """Sparse models: a latent that has not fired for this many training samples counts as dead (AuxK)."""
    image_shape: tuple[int, ...] = ()
    """Convolutional models: (channels, height, width) or (height, width) of one sample; taken from the
    data (fit's image_shape, or the dataset) when left empty."""
    conv_channels: tuple[int, ...] = (32, 32, 64, 64)
    """Convolutional models: channels of each 4x4, stride-2 conv layer (each halves height and width);
    hidden_dims then gives the dense layers between the convolutions and the code."""
    architecture: str = "dense"
    """"vae"/"tcvae" models: "dense" (MLP through hidden_dims) or "conv" (conv_channels, then hidden_dims;
    needs image_shape) encoder and mirrored decoder."""
    beta: float = 6.0
    """"vae": weight of the KL term (1 = plain VAE, > 1 = beta-VAE); "tcvae": weight of the total
    correlation. Higher trades reconstruction for more independent latents."""
    likelihood: str = "bernoulli"
    """"vae"/"tcvae" models: "bernoulli" for data in [0, 1] such as binary images (needs
    output_activation "sigmoid"), or "gaussian" with a learned shared variance."""
    mi_weight: float = 1.0
    """"tcvae": weight (alpha) of the index-code mutual information term (Chen et al. 2018)."""
    dim_kl_weight: float = 1.0
    """"tcvae": weight (gamma) of the dimension-wise KL term (Chen et al. 2018). "tcvae" models use 0.05
    unless this is given: a light pull of each latent's marginal towards N(0, 1) leaves it free to follow its
    factor's own distribution, so independent factors are found more reliably (docs/readme/vae.md)."""

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first invalid field."""
        from lucidae.models import MODELS

        _one_of("model", self.model, tuple(MODELS))
        _positive_int("input_dim", self.input_dim, minimum=0)
        _check(
            isinstance(self.hidden_dims, tuple)
            and all(isinstance(h, int) and not isinstance(h, bool) and h >= 1 for h in self.hidden_dims),
            f"hidden_dims={self.hidden_dims!r} is invalid: expected a tuple of integers >= 1, "
            "for example (128,) or (256, 64), or () for no hidden layer.",
        )
        _check(
            len(self.hidden_dims) <= 64,
            f"hidden_dims has {len(self.hidden_dims)} layers; at most 64.",
        )
        _check(
            all(h <= 1_000_000 for h in self.hidden_dims) and self.input_dim <= 100_000_000,
            f"hidden_dims={self.hidden_dims!r} / input_dim={self.input_dim} are absurdly large.",
        )
        self._validate_decoder_hidden_dims()
        _positive_int("latent_dim", self.latent_dim)
        _check(self.latent_dim <= 1_000_000, f"latent_dim={self.latent_dim} is absurdly large.")
        for name in ("activation", "latent_activation", "output_activation"):
            _one_of(name, getattr(self, name), ACTIVATIONS)
        self._validate_dense_levers()
        _positive_int("k", self.k)
        _check(
            self.model != "topk" or self.k <= self.latent_dim,
            f"k={self.k} is invalid for model='topk': expected at most latent_dim={self.latent_dim} "
            "active latents. Lower k or raise latent_dim.",
        )
        _finite("l1_coefficient", self.l1_coefficient, 0.0, 1e3)
        _check(
            isinstance(self.unit_norm_decoder, bool),
            f"unit_norm_decoder={self.unit_norm_decoder!r} must be a bool.",
        )
        _one_of("decoder_bias_init", self.decoder_bias_init, ("median", "mean", "zeros"))
        _positive_int("aux_k", self.aux_k, minimum=0)
        _finite("aux_coefficient", self.aux_coefficient, 0.0, 1e3)
        _positive_int("dead_window", self.dead_window)
        self._validate_conv_and_vae()

    def decoder_dims(self) -> tuple[int, ...]:
        """The decoder's hidden widths from the code outwards: ``decoder_hidden_dims``, or ``hidden_dims`` mirrored.

        Examples
        --------
        >>> ModelConfig(hidden_dims=(256, 64)).decoder_dims()
        (64, 256)
        >>> ModelConfig(hidden_dims=(256, 64), decoder_hidden_dims=(40, 200)).decoder_dims()
        (40, 200)
        """
        return self.hidden_dims[::-1] if self.decoder_hidden_dims is None else self.decoder_hidden_dims

    def widths(self) -> tuple[int, ...]:
        """Every dense layer's width, from the input through the code to the reconstruction.

        Examples
        --------
        >>> ModelConfig(input_dim=5, hidden_dims=(4,), latent_dim=3).widths()
        (5, 4, 3, 4, 5)
        """
        return (self.input_dim, *self.hidden_dims, self.latent_dim, *self.decoder_dims(), self.input_dim)

    def layer_shapes(self) -> tuple[str, ...]:
        """Every layer's output as a person reads it, input to reconstruction: widths, and CxHxW for feature maps.

        For a dense model these are :meth:`widths`; a convolutional one (``model="conv"`` or
        ``architecture="conv"``) starts with its feature maps, each convolution halving the
        height and width, and its decoder mirrors them.

        Examples
        --------
        >>> ModelConfig(input_dim=5, hidden_dims=(4,), latent_dim=3).layer_shapes()
        ('5', '4', '3', '4', '5')
        >>> cfg = ModelConfig(model="conv", input_dim=256, image_shape=(16, 16), conv_channels=(8, 16),
        ...                   hidden_dims=(128,), latent_dim=32)
        >>> "-".join(cfg.layer_shapes())
        '1x16x16-8x8x8-16x4x4-128-32-128-16x4x4-8x8x8-1x16x16'
        """
        conv = self.model == "conv" or self.architecture == "conv"
        if not conv or len(self.image_shape) not in (2, 3):
            return tuple(str(w) for w in self.widths())
        c, h, w = (1, *self.image_shape) if len(self.image_shape) == 2 else self.image_shape
        maps = [f"{c}x{h}x{w}"]
        for channels in self.conv_channels:
            h, w = h // 2, w // 2
            maps.append(f"{channels}x{h}x{w}")
        dense = (*self.hidden_dims, self.latent_dim, *self.hidden_dims[::-1])
        return (*maps, *(str(d) for d in dense), *maps[::-1])

    def _validate_decoder_hidden_dims(self) -> None:
        dims = self.decoder_hidden_dims
        if dims is None:
            return
        _check(
            isinstance(dims, tuple)
            and all(isinstance(h, int) and not isinstance(h, bool) and 1 <= h <= 1_000_000 for h in dims)
            and len(dims) <= 64,
            f"decoder_hidden_dims={dims!r} is invalid: expected a tuple of at most 64 integers in [1, 1000000] "
            "(the decoder's hidden widths from the code outwards, for example (64, 256)), or None to mirror "
            "hidden_dims.",
        )
        _check(
            self.model == "dense",
            f"decoder_hidden_dims={dims!r} applies to model='dense' only, not model={self.model!r}; "
            "leave it unset there (every other family mirrors hidden_dims).",
        )
        _check(
            not self.tied or dims == self.hidden_dims[::-1],
            f"decoder_hidden_dims={dims!r} does not mirror hidden_dims={self.hidden_dims!r}, which tied weights "
            "need (the decoder applies the encoder's matrices transposed). Leave it unset, or set tied=False.",
        )

    def _validate_dense_levers(self) -> None:
        _check(isinstance(self.tied, bool), f"tied={self.tied!r} must be true or false.")
        for name in ("encoder_l1", "encoder_l2", "decoder_l1", "decoder_l2", "latent_l1"):
            _finite(name, getattr(self, name), 0.0, 1e3)
        _one_of("noise", self.noise, ("none", "gaussian", "mask"))
        _finite("noise_level", self.noise_level, 0.0, 100.0)
        _check(
            self.noise != "mask" or self.noise_level < 1.0,
            f"noise_level={self.noise_level!r} is invalid for noise='mask': it is the probability of zeroing "
            "an input, so it must be below 1 (0.1 to 0.5 is typical).",
        )

    def _validate_conv_and_vae(self) -> None:
        for name in ("image_shape", "conv_channels"):
            value = getattr(self, name)
            _check(
                isinstance(value, tuple)
                and all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 100_000 for v in value),
                f"{name}={value!r} is invalid: expected a tuple of positive integers.",
            )
        _check(
            len(self.image_shape) in (0, 2, 3),
            f"image_shape={self.image_shape!r} is invalid: expected (height, width), (channels, height, width) "
            "or () for data that is not an image.",
        )
        _check(
            1 <= len(self.conv_channels) <= 16,
            f"conv_channels={self.conv_channels!r} is invalid: expected 1 to 16 layers, such as (32, 32, 64, 64).",
        )
        _one_of("architecture", self.architecture, ("dense", "conv"))
        _finite("beta", self.beta, 0.0, 1e4)
        _one_of("likelihood", self.likelihood, ("bernoulli", "gaussian"))
        _finite("mi_weight", self.mi_weight, 0.0, 1e4)
        _finite("dim_kl_weight", self.dim_kl_weight, 0.0, 1e4)
        variational = self.model in ("vae", "tcvae")
        _check(
            not variational or self.likelihood != "bernoulli" or self.output_activation == "sigmoid",
            f"likelihood='bernoulli' models data in [0, 1] through a sigmoid, but output_activation="
            f"{self.output_activation!r}. Set output_activation='sigmoid', or likelihood='gaussian'.",
        )
        # An empty image_shape is filled from the data at fit; the module refuses it if it stays empty.
        convolutional = self.model == "conv" or (variational and self.architecture == "conv")
        if self.input_dim > 0 and self.image_shape and convolutional:
            from lucidae.models.conv import check_conv_config

            check_conv_config(self)


@dataclass
class TrainConfig(_Config):
    """How a model is trained.

    The defaults were chosen by measurement (``benchmarks/defaults_evidence.py``): the
    classic tutorial's 10 epochs at a constant learning rate of 1e-3 underfit; a higher
    peak rate with cosine decay over 30 epochs beats PCA with the same code size on
    held-out images while still taking seconds to tens of seconds on 2 cores.

    Examples
    --------
    >>> TrainConfig(epochs=5, lr=3e-3).validate()
    """

    epochs: int | None = None
    """Passes over the data (an upper bound when early stopping is on).
    None: enough epochs for about 5,000 optimiser steps, at least 20 and at most 500."""
    batch_size: int = 128
    """Samples per optimiser step."""
    lr: float = 3e-3
    """Peak Adam learning rate; lower it if the loss turns NaN or oscillates."""
    lr_schedule: str = "cosine"
    """"cosine" decays the rate to 5% of its peak over the run; "constant" keeps it fixed."""
    weight_decay: float = 0.0
    """Decoupled (AdamW) weight decay on every parameter; 0 for plain Adam."""
    validation_fraction: float = 0.1
    """Share of the samples held out to measure validation loss (0 disables validation and early stopping)."""
    patience: int = 10
    """Stop after this many epochs without a better validation loss (0 disables early stopping)."""
    restore_best: bool = True
    """After training, restore the weights of the epoch with the best validation loss."""
    shuffle: bool = True
    """Reshuffle the training samples every epoch."""
    n_init: int = 1
    """Train this many times from different initial weights (same data split and batch order) and keep the run
    with the lowest validation loss (training loss without a validation split), as scikit-learn's KMeans keeps
    its best of n_init; each one costs a full training run. Worth it where training lands in poor optima on some
    seeds, as beta-TCVAE does."""
    random_state: int | None = None
    """Seed for initialisation, the validation split, shuffling and noise; same seed, same result on CPU."""
    verbose: int = 1
    """0: silent; 1: progress bar on a terminal; 2: one line per epoch, terminal or not."""
    device: str = "cpu"
    """Torch device: "cpu", "cuda", "cuda:1" or "auto" (CUDA when available)."""
    precision: str = "fp32"
    """"fp32", or "bf16" to run forward passes under bfloat16 autocast (faster on recent GPUs; weights stay fp32)."""

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first invalid field."""
        if self.epochs is not None:
            _positive_int("epochs", self.epochs)
        _positive_int("batch_size", self.batch_size)
        _finite("lr", self.lr, 0.0, 10.0, low_open=True)
        _one_of("lr_schedule", self.lr_schedule, ("cosine", "constant"))
        _finite("weight_decay", self.weight_decay, 0.0, 10.0)
        _finite("validation_fraction", self.validation_fraction, 0.0, 0.9)
        _positive_int("patience", self.patience, minimum=0)
        _check(
            isinstance(self.restore_best, bool),
            f"restore_best={self.restore_best!r} must be a bool.",
        )
        _check(isinstance(self.shuffle, bool), f"shuffle={self.shuffle!r} must be a bool.")
        _positive_int("n_init", self.n_init)
        _check(
            self.random_state is None
            or (isinstance(self.random_state, int) and not isinstance(self.random_state, bool)),
            f"random_state={self.random_state!r} is invalid: expected None or an integer.",
        )
        _positive_int("verbose", self.verbose, minimum=0)
        _check(
            isinstance(self.device, str) and (self.device in ("cpu", "auto") or self.device.startswith("cuda")),
            f"device={self.device!r} is not known; use 'cpu', 'cuda', 'cuda:N' or 'auto'.",
        )
        _one_of("precision", self.precision, ("fp32", "bf16"))


@dataclass
class DataConfig(_Config):
    """Where training data comes from and how it is prepared.

    Examples
    --------
    >>> DataConfig(data="digits").validate()
    """

    data: str = "digits"
    """A built-in dataset name ("digits") or a path to a .npy, .npz or .csv file,
    or to a folder of MNIST-style idx files."""
    scaling: str = "auto"
    """"auto": uint8 images to [0, 1], data already in [0, 1] kept, else min-max (sigmoid output)
    or standardised; or "minmax", "standard", "none"."""
    test_fraction: float = 0.2
    """Share of the samples held out (never trained on) to report held-out reconstruction error."""

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first invalid field."""
        _check(isinstance(self.data, str) and self.data != "", "data must be a dataset name or a path.")
        _one_of("scaling", self.scaling, SCALINGS)
        _finite("test_fraction", self.test_fraction, 0.0, 0.9)


def defaults(cls: type) -> dict[str, Any]:
    """Return ``{field: default}`` for a config dataclass.

    Examples
    --------
    >>> defaults(ModelConfig)["latent_dim"]
    32
    """
    out = {}
    for f in fields(cls):
        out[f.name] = f.default if f.default is not MISSING else f.default_factory()  # type: ignore[misc]
    return out
