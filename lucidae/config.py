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
import sys
import types
import typing
from dataclasses import MISSING, asdict, dataclass, fields
from functools import cache
from typing import Any, Literal, TypeVar

from lucidae.errors import ConfigError

# The fields with a fixed set of values are typed Literal: the CLI lists the values in --help and
# refuses others when it parses the command line; from_dict (coerce) refuses them too.
Activation = Literal["relu", "linear", "sigmoid", "tanh", "gelu", "leaky_relu", "softplus", "elu", "silu"]
ACTIVATIONS: tuple[str, ...] = typing.get_args(Activation)
"""Names accepted wherever an activation is configured. ``"linear"`` means none."""

ModelFamily = Literal["dense", "linear", "sparse", "topk", "conv", "vae", "tcvae", "jumprelu"]
MODEL_FAMILIES: tuple[str, ...] = typing.get_args(ModelFamily)
"""Values of ``ModelConfig.model``; :data:`lucidae.models.MODELS` maps each to its ``nn.Module`` class."""

Scaling = Literal["auto", "minmax", "standard", "none"]
SCALINGS: tuple[str, ...] = typing.get_args(Scaling)
"""Input scalings; see :mod:`lucidae.scaling`."""

Impute = Literal["mean", "median"]
IMPUTES: tuple[str, ...] = typing.get_args(Impute)
"""Ways to fill missing values (NaN) from the training rows; stored with the model's scaling."""

AUTO_CONV_CHANNELS = (32, 32, 64, 64)
"""Channels of the convolutions a conv model takes, as many as its images allow, when ``conv_channels`` is unset."""

T = TypeVar("T", bound="Config")


class Config:
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
    if origin is Literal:
        if value not in args or isinstance(value, bool):
            raise ConfigError(f"{name}={value!r} is not known; allowed values are {list(args)}.")
        return value
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
def _class_bodies(module: str) -> dict[str, list[ast.stmt]]:
    """The body of every top-level class of ``module``, from one parse of its source.

    ``inspect.getsource`` of a class parses its whole module again for every class; the
    CLI reads the field docs of six configs at start-up, so the module is parsed once.
    """
    tree = ast.parse(inspect.getsource(sys.modules[module]))
    return {node.name: node.body for node in tree.body if isinstance(node, ast.ClassDef)}


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
        body = _class_bodies(klass.__module__).get(klass.__qualname__)
        if body is None:  # a class defined inside a function: parse its own source
            body = ast.parse(inspect.cleandoc("\n" + inspect.getsource(klass))).body[0].body  # type: ignore[attr-defined]
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


# --------------------------------------------------------------------------- validators
# Every config's ``validate`` (lucidae's own and the applications') is written with these, so
# that a bad value is always named with what was expected.
def require(ok: bool, message: str) -> None:
    """Raise :class:`ConfigError` with ``message`` unless ``ok``.

    Examples
    --------
    >>> require(True, "never shown")
    >>> require(False, "epochs=0 is invalid")
    Traceback (most recent call last):
    ...
    lucidae.errors.ConfigError: epochs=0 is invalid
    """
    if not ok:
        raise ConfigError(message)


def check_int(name: str, value: Any, *, minimum: int = 1) -> None:
    """Refuse ``value`` unless it is an integer (not a bool) of at least ``minimum``.

    Examples
    --------
    >>> check_int("epochs", 0)
    Traceback (most recent call last):
    ...
    lucidae.errors.ConfigError: epochs=0 is invalid: expected an integer >= 1.
    """
    require(
        isinstance(value, int) and not isinstance(value, bool) and value >= minimum,
        f"{name}={value!r} is invalid: expected an integer >= {minimum}.",
    )


def check_seed(value: Any) -> None:
    """``random_state`` of an estimator-facing config: None or an integer (numpy's included, not bool).

    Examples
    --------
    >>> check_seed(None); check_seed(7)
    >>> check_seed(True)
    Traceback (most recent call last):
    ...
    lucidae.errors.ConfigError: random_state=True is invalid: expected None or an integer.
    """
    require(
        value is None or (isinstance(value, numbers.Integral) and not isinstance(value, bool)),
        f"random_state={value!r} is invalid: expected None or an integer.",
    )


def check_choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    """Refuse ``value`` unless it is one of ``allowed``, listing them.

    Examples
    --------
    >>> check_choice("scaling", "zscore", ("minmax", "standard"))
    Traceback (most recent call last):
    ...
    lucidae.errors.ConfigError: scaling='zscore' is not known; allowed values are ['minmax', 'standard'].
    """
    require(value in allowed, f"{name}={value!r} is not known; allowed values are {list(allowed)}.")


def check_number(name: str, value: Any, low: float, high: float, *, low_open: bool = False) -> None:
    """Refuse ``value`` unless it is a finite number in ``[low, high]`` (``(low, high]`` with ``low_open``).

    Examples
    --------
    >>> check_number("lr", float("nan"), 0.0, 1.0, low_open=True)
    Traceback (most recent call last):
    ...
    lucidae.errors.ConfigError: lr=nan is invalid: expected a number in (0.0, 1.0].
    """
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (value > low if low_open else value >= low) and value <= high
    bracket = "(" if low_open else "["
    require(ok, f"{name}={value!r} is invalid: expected a number in {bracket}{low}, {high}].")


@dataclass
class ModelConfig(Config):
    """Architecture of an autoencoder.

    Examples
    --------
    >>> cfg = ModelConfig(input_dim=64, latent_dim=8)
    >>> cfg.validate()
    >>> cfg.hidden_dims
    (128,)
    """

    model: ModelFamily = "dense"
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
    activation: Activation = "relu"
    """Activation of the hidden layers; "linear" for none."""
    latent_activation: Activation = "relu"
    """Activation applied to the code. "linear" gives an unconstrained code; "relu" a non-negative one."""
    output_activation: Activation = "sigmoid"
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
    noise: Literal["none", "gaussian", "mask"] = "none"
    """"dense"/"linear" models: corrupt the inputs while training (never the targets, never when evaluating)
    for a denoising autoencoder: "gaussian" adds noise_level * N(0, 1) in the scaled space, "mask" zeroes
    each input with probability noise_level, "none" trains on clean inputs."""
    noise_level: float = 0.1
    """Standard deviation ("gaussian") or drop probability ("mask", below 1) of the input corruption."""
    k: int = 8
    """Sparse "topk" model: latents kept active per sample (exactly k non-zero codes); at most latent_dim."""
    l1_coefficient: float = 0.01
    """Sparse "sparse" (ReLU + L1) and "jumprelu" models: weight of the L1 penalty on the code, each latent's value
    multiplied by the norm of its decoder column so that growing columns cannot buy a smaller penalty."""
    unit_norm_decoder: bool = True
    """Sparse models: keep every decoder column (dictionary atom) at norm 1 after each optimiser step."""
    decoder_bias_init: Literal["median", "mean", "zeros"] = "median"
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
    conv_channels: tuple[int, ...] | None = None
    """Convolutional models: channels of each 4x4, stride-2 conv layer (each halves height and width);
    hidden_dims then gives the dense layers between the convolutions and the code. Unset: as many of
    32,32,64,64 as keep the feature maps at least 4x4 (one layer for 8x8 images, two for 28x28)."""
    architecture: Literal["dense", "conv"] = "dense"
    """"vae"/"tcvae" models: "dense" (MLP through hidden_dims) or "conv" (conv_channels, then hidden_dims;
    needs image_shape) encoder and mirrored decoder."""
    beta: float = 1.0
    """"vae": weight of the KL term (1 = plain VAE, > 1 = beta-VAE); "tcvae": weight of the total
    correlation (6 unless given). Higher trades reconstruction for more independent latents."""
    likelihood: Literal["auto", "bernoulli", "gaussian"] = "auto"
    """"vae"/"tcvae" models: "bernoulli" for binary data such as black-and-white images (needs output_activation
    "sigmoid"), "gaussian" with a learned shared variance (grey levels, tables), or "auto": chosen at fit, bernoulli
    when every scaled training value is 0 or 1, else gaussian."""
    mi_weight: float = 1.0
    """"tcvae": weight (alpha) of the index-code mutual information term (Chen et al. 2018)."""
    dim_kl_weight: float = 1.0
    """"tcvae": weight (gamma) of the dimension-wise KL term (Chen et al. 2018). "tcvae" models use 0.05
    unless this is given: a light pull of each latent's marginal towards N(0, 1) leaves it free to follow its
    factor's own distribution, so independent factors are found more reliably (docs/readme/vae.md)."""

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first invalid field."""
        check_choice("model", self.model, MODEL_FAMILIES)
        check_int("input_dim", self.input_dim, minimum=0)
        require(
            isinstance(self.hidden_dims, tuple)
            and all(isinstance(h, int) and not isinstance(h, bool) and h >= 1 for h in self.hidden_dims),
            f"hidden_dims={self.hidden_dims!r} is invalid: expected a tuple of integers >= 1, "
            "for example (128,) or (256, 64), or () for no hidden layer.",
        )
        require(
            len(self.hidden_dims) <= 64,
            f"hidden_dims has {len(self.hidden_dims)} layers; at most 64.",
        )
        require(
            all(h <= 1_000_000 for h in self.hidden_dims) and self.input_dim <= 100_000_000,
            f"hidden_dims={self.hidden_dims!r} / input_dim={self.input_dim} are absurdly large.",
        )
        self._validate_decoder_hidden_dims()
        check_int("latent_dim", self.latent_dim)
        require(self.latent_dim <= 1_000_000, f"latent_dim={self.latent_dim} is absurdly large.")
        for name in ("activation", "latent_activation", "output_activation"):
            check_choice(name, getattr(self, name), ACTIVATIONS)
        self._validate_dense_levers()
        check_int("k", self.k)
        require(
            self.model != "topk" or self.k <= self.latent_dim,
            f"k={self.k} is invalid for model='topk': expected at most latent_dim={self.latent_dim} "
            "active latents. Lower k or raise latent_dim.",
        )
        check_number("l1_coefficient", self.l1_coefficient, 0.0, 1e3)
        require(
            isinstance(self.unit_norm_decoder, bool),
            f"unit_norm_decoder={self.unit_norm_decoder!r} must be a bool.",
        )
        check_choice("decoder_bias_init", self.decoder_bias_init, ("median", "mean", "zeros"))
        check_int("aux_k", self.aux_k, minimum=0)
        check_number("aux_coefficient", self.aux_coefficient, 0.0, 1e3)
        check_int("dead_window", self.dead_window)
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
        for channels in self.conv_layers():
            h, w = h // 2, w // 2
            maps.append(f"{channels}x{h}x{w}")
        dense = (*self.hidden_dims, self.latent_dim, *self.hidden_dims[::-1])
        return (*maps, *(str(d) for d in dense), *maps[::-1])

    def conv_layers(self) -> tuple[int, ...]:
        """``conv_channels``, or when unset as many of (32, 32, 64, 64) as keep the maps at least 4x4.

        Examples
        --------
        >>> ModelConfig(image_shape=(8, 8)).conv_layers(), ModelConfig(image_shape=(1, 64, 64)).conv_layers()
        ((32,), (32, 32, 64, 64))
        """
        if self.conv_channels is not None:
            return self.conv_channels
        side = min(self.image_shape[-2:]) if len(self.image_shape) in (2, 3) else 64
        return AUTO_CONV_CHANNELS[: max(1, min(4, (max(side, 1) // 4).bit_length() - 1))]

    def _validate_decoder_hidden_dims(self) -> None:
        dims = self.decoder_hidden_dims
        if dims is None:
            return
        require(
            isinstance(dims, tuple)
            and all(isinstance(h, int) and not isinstance(h, bool) and 1 <= h <= 1_000_000 for h in dims)
            and len(dims) <= 64,
            f"decoder_hidden_dims={dims!r} is invalid: expected a tuple of at most 64 integers in [1, 1000000] "
            "(the decoder's hidden widths from the code outwards, for example (64, 256)), or None to mirror "
            "hidden_dims.",
        )
        require(
            self.model == "dense",
            f"decoder_hidden_dims={dims!r} applies to model='dense' only, not model={self.model!r}; "
            "leave it unset there (every other family mirrors hidden_dims).",
        )
        require(
            not self.tied or dims == self.hidden_dims[::-1],
            f"decoder_hidden_dims={dims!r} does not mirror hidden_dims={self.hidden_dims!r}, which tied weights "
            "need (the decoder applies the encoder's matrices transposed). Leave it unset, or set tied=False.",
        )

    def _validate_dense_levers(self) -> None:
        require(isinstance(self.tied, bool), f"tied={self.tied!r} must be true or false.")
        for name in ("encoder_l1", "encoder_l2", "decoder_l1", "decoder_l2", "latent_l1"):
            check_number(name, getattr(self, name), 0.0, 1e3)
        check_choice("noise", self.noise, ("none", "gaussian", "mask"))
        check_number("noise_level", self.noise_level, 0.0, 100.0)
        require(
            self.noise != "mask" or self.noise_level < 1.0,
            f"noise_level={self.noise_level!r} is invalid for noise='mask': it is the probability of zeroing "
            "an input, so it must be below 1 (0.1 to 0.5 is typical).",
        )

    def _validate_conv_and_vae(self) -> None:
        for name in ("image_shape", "conv_channels"):
            value = getattr(self, name)
            require(
                (value is None and name == "conv_channels")
                or isinstance(value, tuple)
                and all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 100_000 for v in value),
                f"{name}={value!r} is invalid: expected a tuple of positive integers.",
            )
        require(
            len(self.image_shape) in (0, 2, 3),
            f"image_shape={self.image_shape!r} is invalid: expected (height, width), (channels, height, width) "
            "or () for data that is not an image.",
        )
        require(
            1 <= len(self.conv_layers()) <= 16,
            f"conv_channels={self.conv_channels!r} is invalid: expected 1 to 16 layers, such as (32, 32, 64, 64).",
        )
        check_choice("architecture", self.architecture, ("dense", "conv"))
        check_number("beta", self.beta, 0.0, 1e4)
        check_choice("likelihood", self.likelihood, ("auto", "bernoulli", "gaussian"))
        check_number("mi_weight", self.mi_weight, 0.0, 1e4)
        check_number("dim_kl_weight", self.dim_kl_weight, 0.0, 1e4)
        variational = self.model in ("vae", "tcvae")
        require(
            not variational or self.likelihood != "bernoulli" or self.output_activation == "sigmoid",
            f"likelihood='bernoulli' models data in [0, 1] through a sigmoid, but output_activation="
            f"{self.output_activation!r}. Set output_activation='sigmoid', or likelihood='gaussian'.",
        )
        # An empty image_shape is filled from the data at fit; the module refuses it if it stays empty.
        convolutional = self.model == "conv" or (variational and self.architecture == "conv")
        if self.input_dim > 0 and self.image_shape and convolutional:
            check_conv_config(self)


# --------------------------------------------------------------------------- image shapes
def image_chw(shape: tuple[int, ...]) -> tuple[int, int, int]:
    """``(C, H, W)`` from an image shape given as ``(H, W)`` or ``(C, H, W)``.

    Examples
    --------
    >>> image_chw((8, 8)), image_chw((3, 32, 32))
    ((1, 8, 8), (3, 32, 32))
    """
    if len(shape) == 2:
        return (1, int(shape[0]), int(shape[1]))
    if len(shape) == 3:
        return (int(shape[0]), int(shape[1]), int(shape[2]))
    raise ValueError(f"image_shape={shape!r} is not an image shape: expected (H, W) or (C, H, W).")


def check_conv_config(cfg: ModelConfig) -> tuple[int, int, int]:
    """The ``(C, H, W)`` a conv model reads, after checking it fits ``cfg.input_dim`` and ``conv_channels``.

    Examples
    --------
    >>> check_conv_config(ModelConfig(model="conv", input_dim=64, image_shape=(8, 8), conv_channels=(4, 4)))
    (1, 8, 8)
    """
    if not cfg.image_shape:
        raise ConfigError(
            f"model={cfg.model!r} with convolutions needs image_shape, the (channels, height, width) of one "
            "sample: pass image_shape to fit (or --image-shape 1,64,64), or use a dataset that has one."
        )
    chw = image_chw(cfg.image_shape)
    if chw[0] * chw[1] * chw[2] != cfg.input_dim:
        raise ConfigError(
            f"image_shape={cfg.image_shape} has {chw[0] * chw[1] * chw[2]} values, but the data has "
            f"{cfg.input_dim} features. Pass the shape of one sample."
        )
    n = len(cfg.conv_layers())
    if min(chw[1], chw[2]) < 2**n:
        raise ConfigError(
            f"conv_channels={cfg.conv_layers()} halves the image {n} times, but a {chw[1]}x{chw[2]} image "
            f"allows at most {int(min(chw[1], chw[2])).bit_length() - 1}. Pass fewer conv_channels."
        )
    return chw


@dataclass
class TrainConfig(Config):
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
    lr_schedule: Literal["cosine", "constant"] = "cosine"
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
    """0: silent; 1: a progress bar where someone is watching (a terminal or a Jupyter notebook), nothing
    when the output goes to a file or a pipe; 2: the bar, and one line per epoch wherever the output goes.
    The estimators also take "auto" (1), True (2) and False (0)."""
    n_threads: int | None = None
    """CPU threads torch may use while training (torch.set_num_threads, restored afterwards); unset: torch's
    own count, usually every core. Fewer leave cores to other work."""
    device: str = "cpu"
    """Torch device: "cpu", "cuda", "cuda:1" or "auto" (CUDA when available)."""
    precision: Literal["fp32", "bf16"] = "fp32"
    """"fp32", or "bf16" to run forward passes under bfloat16 autocast (faster on recent GPUs; weights stay fp32)."""

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first invalid field."""
        if self.epochs is not None:
            check_int("epochs", self.epochs)
        check_int("batch_size", self.batch_size)
        check_number("lr", self.lr, 0.0, 10.0, low_open=True)
        check_choice("lr_schedule", self.lr_schedule, ("cosine", "constant"))
        check_number("weight_decay", self.weight_decay, 0.0, 10.0)
        check_number("validation_fraction", self.validation_fraction, 0.0, 0.9)
        check_int("patience", self.patience, minimum=0)
        require(
            isinstance(self.restore_best, bool),
            f"restore_best={self.restore_best!r} must be a bool.",
        )
        require(isinstance(self.shuffle, bool), f"shuffle={self.shuffle!r} must be a bool.")
        check_int("n_init", self.n_init)
        require(
            self.random_state is None
            or (isinstance(self.random_state, int) and not isinstance(self.random_state, bool)),
            f"random_state={self.random_state!r} is invalid: expected None or an integer.",
        )
        check_int("verbose", self.verbose, minimum=0)
        if self.n_threads is not None:
            check_int("n_threads", self.n_threads)
        require(
            isinstance(self.device, str) and (self.device in ("cpu", "auto") or self.device.startswith("cuda")),
            f"device={self.device!r} is not known; use 'cpu', 'cuda', 'cuda:N' or 'auto'.",
        )
        check_choice("precision", self.precision, ("fp32", "bf16"))


@dataclass
class DataConfig(Config):
    """Where training data comes from and how it is prepared.

    Examples
    --------
    >>> DataConfig(data="digits").validate()
    """

    data: str = "digits"
    """A built-in dataset name ("digits") or a path to a .npy, .npz or .csv file,
    or to a folder of MNIST-style idx files."""
    scaling: Scaling = "auto"
    """"auto": uint8 images to [0, 1] and data already in [0, 1] kept (with a sigmoid output); any other
    data is a table, standardised, with a linear output. Or "minmax", "standard", "none"."""
    test_fraction: float = 0.2
    """Share of the samples held out (never trained on) to report held-out reconstruction error."""
    id_column: str | None = None
    """CSV column naming the rows (a customer id, say): kept out of the features and written as the first
    column of what encode and detect write."""
    drop: str | None = None
    """CSV columns to leave out, comma-separated ("label,notes")."""
    impute: Impute | None = None
    """Fill missing cells (empty, NA, nan) with each feature's "mean" or "median" over the training rows,
    stored with the model and applied whenever it reads data; unset: missing cells are an error that names
    their lines."""
    delimiter: str | None = None
    """The CSV's field separator ("," ";" "tab" "|"); unset: sniffed from the first lines."""

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first invalid field."""
        require(isinstance(self.data, str) and self.data != "", "data must be a dataset name or a path.")
        check_choice("scaling", self.scaling, SCALINGS)
        check_number("test_fraction", self.test_fraction, 0.0, 0.9)
        for name in ("id_column", "drop", "delimiter"):
            value = getattr(self, name)
            require(
                value is None or (isinstance(value, str) and value.strip() != ""),
                f"{name}={value!r} is invalid: expected a column name (drop: names separated by commas) or unset.",
            )
        if self.impute is not None:
            check_choice("impute", self.impute, IMPUTES)
        named = ("tab", "\\t", "comma", "semicolon", "pipe", "space")
        require(
            self.delimiter is None
            or self.delimiter.lower() in named
            or (len(self.delimiter) == 1 and not self.delimiter.isalnum() and self.delimiter not in '"\r\n'),
            f"delimiter={self.delimiter!r} is invalid: expected one character such as ',' ';' '|', or 'tab'.",
        )


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


# --------------------------------------------------------------------------- applications and sweeps
Scoring = Literal["ensemble", "likelihood", "reconstruction"]
SCORINGS: tuple[str, ...] = typing.get_args(Scoring)
"""Accepted values of ``AnomalyDetector(scoring=...)``."""


@dataclass
class AnomalyConfig(Config):
    """How :class:`AnomalyDetector` scores and flags samples (also the options of ``lucidae detect``).

    Examples
    --------
    >>> AnomalyConfig(contamination=0.05).validate()
    >>> AnomalyConfig(contamination=0.7).validate()
    Traceback (most recent call last):
    ...
    lucidae.errors.ConfigError: contamination=0.7 is invalid: expected a number in (0.0, 0.5].
    """

    contamination: float = 0.1
    """Expected share of outliers in the training data, in (0, 0.5]; the threshold flags that share (PyOD's 0.1)."""
    scoring: Scoring = "ensemble"
    """"ensemble": the autoencoder's likelihood score averaged with a nearest-neighbour distance and an isolation
    forest, each in robust standard units; "likelihood": reconstruction error plus the code's Mahalanobis distance;
    "reconstruction": the error alone."""
    n_neighbors: int = 5
    """Nearest normal training samples that explain() returns."""
    train_steps: int = 300
    """Optimiser steps of the default autoencoder, whatever the number of rows (its batch grows with the data)."""
    robust: bool = True
    """"ensemble" only: train the autoencoder on the 80% of rows the other two members find most normal."""
    random_state: int | None = None
    """Seed for the default autoencoder and the forest; same seed, same scores on CPU."""

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first invalid field."""
        check_number("contamination", self.contamination, 0.0, 0.5, low_open=True)
        check_choice("scoring", self.scoring, SCORINGS)
        check_int("n_neighbors", self.n_neighbors)
        check_int("train_steps", self.train_steps)
        require(isinstance(self.robust, bool), f"robust={self.robust!r} is invalid: expected True or False.")
        check_seed(self.random_state)


Vectorizer = Literal["tfidf", "count"]
VECTORIZERS: tuple[str, ...] = typing.get_args(Vectorizer)
"""Accepted values of ``TextTopics(vectorizer=...)``."""

StopWords = Literal["english", "none"]
STOP_WORDS: tuple[str, ...] = typing.get_args(StopWords)
"""Accepted values of ``TextTopics(stop_words=...)``: scikit-learn's English list, or keep every word."""


@dataclass
class TopicsConfig(Config):
    """How :class:`TextTopics` vectorises documents and sizes its code (also the options of ``lucidae topics``).

    Examples
    --------
    >>> TopicsConfig(n_latents=16, k=2).validate()
    >>> TopicsConfig(n_latents=4, k=8).validate()
    Traceback (most recent call last):
    ...
    lucidae.errors.ConfigError: k=8 is larger than n_latents=4; use k <= n_latents.
    """

    n_latents: int = 32
    """Number of latents (topics) of the TopK sparse autoencoder."""
    k: int = 4
    """Active latents per document (TopK's k)."""
    vectorizer: Vectorizer = "tfidf"
    """"tfidf" (sublinear term frequency, L2-normalised rows) or "count" (counts scaled to unit row sums)."""
    max_features: int = 5000
    """Vocabulary size: the most frequent words are kept."""
    min_df: int = 2
    """Words in fewer documents than this are dropped."""
    max_df: float = 0.5
    """Words in a larger share of documents than this are dropped (near-stop words), in (0, 1]."""
    stop_words: StopWords = "english"
    """"english": drop scikit-learn's English stop words; "none": keep every word."""
    random_state: int | None = 0
    """Seed of the autoencoder; the same seed gives the same topics on CPU (unset: a new seed each run)."""

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first invalid field."""
        for name in ("n_latents", "k", "max_features", "min_df"):
            check_int(name, getattr(self, name))
        require(self.k <= self.n_latents, f"k={self.k} is larger than n_latents={self.n_latents}; use k <= n_latents.")
        check_choice("vectorizer", self.vectorizer, VECTORIZERS)
        check_number("max_df", self.max_df, 0.0, 1.0, low_open=True)
        check_choice("stop_words", self.stop_words, STOP_WORDS)
        check_seed(self.random_state)


@dataclass
class SweepConfig(Config):
    """The grid a sweep trains; every tuple is one lever's values.

    The default grid trains 20 small runs on the bundled digits in a few minutes on 2 CPU cores.

    Examples
    --------
    >>> SweepConfig(latent_dims=(4,), depths=(1,), activations=("relu",)).validate()
    >>> SweepConfig(activations=("tanh",)).validate()
    Traceback (most recent call last):
    ...
    lucidae.errors.ConfigError: activations contains 'tanh'; allowed values are ['relu', 'linear'].
    """

    data: str = "digits"
    """Dataset: a built-in name or a path (as for `lucidae train --data`)."""
    latent_dims: tuple[int, ...] = (8, 32)
    """Code sizes to try."""
    depths: tuple[int, ...] = (0, 1)
    """Numbers of hidden layers to try (0: the encoder maps the input straight to the code)."""
    widths: tuple[int, ...] = (64,)
    """Widths of the hidden layers to try (every hidden layer of a run has the same width)."""
    activations: tuple[str, ...] = ("relu", "linear")
    """Activations to try: "relu" is the classic model (ReLU inside and on the code, sigmoid output);
    "linear" makes every activation the identity."""
    weight_decays: tuple[float, ...] = (0.05,)
    """L2 strengths (decoupled weight decay) to try on the ReLU model; 0 values are ignored."""
    l1_coefficients: tuple[float, ...] = (0.01,)
    """L1 penalties on the code to try with the "sparse" family."""
    topk_ks: tuple[int, ...] = (4, 8)
    """Active latents per sample to try with the "topk" family (values above a code size are skipped)."""
    betas: tuple[float, ...] = (1.0, 4.0)
    """KL weights to try with the "vae" family (1: plain VAE; above 1: beta-VAE)."""
    prune_amounts: tuple[float, ...] = (0.5, 0.9)
    """Shares of weights to prune from every ReLU architecture run, each pruned model a point of
    its own (dead units are removed too); empty: no pruning."""
    prune_fine_tune_epochs: int = 10
    """Epochs each pruned model trains on with its pruned weights held at zero (0: none)."""
    epochs: int = 40
    """Training epochs of every run (small, so the grid finishes quickly)."""
    test_fraction: float = 0.2
    """Share of the samples held out for the fidelity and interpretability measures."""
    random_state: int = 0
    """Seed of every run (initialisation, split, shuffling)."""
    max_latents: int = 8
    """Latent cards drawn in each run's report."""

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first invalid field."""
        require(isinstance(self.data, str) and self.data != "", "data must be a dataset name or a path.")
        for name in ("latent_dims", "widths", "depths", "topk_ks"):
            values = getattr(self, name)
            minimum = 0 if name == "depths" else 1
            require(isinstance(values, tuple), f"{name}={values!r} must be a tuple of integers.")
            for v in values:
                check_int(name, v, minimum=minimum)
        require(bool(self.latent_dims), "latent_dims is empty: give at least one code size, e.g. 8.")
        require(bool(self.depths) and bool(self.widths), "depths and widths need at least one value each.")
        require(bool(self.activations), "activations is empty: give 'relu', 'linear' or both.")
        for a in self.activations:
            require(a in ("relu", "linear"), f"activations contains {a!r}; allowed values are ['relu', 'linear'].")
        for name in ("weight_decays", "l1_coefficients", "betas"):
            for v in getattr(self, name):
                check_number(name, v, 0.0, 1e4)
        for v in self.prune_amounts:
            check_number("prune_amounts", v, 0.0, 1.0)
        check_int("prune_fine_tune_epochs", self.prune_fine_tune_epochs, minimum=0)
        check_int("epochs", self.epochs)
        check_number("test_fraction", self.test_fraction, 0.0, 0.9, low_open=True)
        check_int("random_state", self.random_state, minimum=0)
        check_int("max_latents", self.max_latents)
