"""The dense autoencoder family, read top to bottom: classic, tied, regularised, denoising, linear.

``input_dim -> hidden_dims... -> latent_dim -> reversed(hidden_dims)... -> input_dim``,
trained to reproduce its input under a mean-squared error. With ``hidden_dims=(128,)``,
``latent_dim=32``, ReLU inside and a sigmoid output it is the model of the classic
Keras tutorial (784-128-32-128-784 on MNIST).

The interpretability levers of this family are options of the same module (see
:class:`~lucidae.config.ModelConfig`): ``tied`` decoder weights, L1/L2 penalties on
the encoder's and decoder's weights, and input corruption (``noise``) for a denoising
autoencoder. :class:`LinearAutoEncoder` drops every nonlinearity and hidden layer, so
that its code spans the PCA subspace.
"""

from __future__ import annotations

from dataclasses import replace
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


class TiedLinear(nn.Module):
    """A linear layer that uses another ``nn.Linear``'s weight, transposed; only its bias is its own.

    The source layer is kept out of this module's children (in a plain list), so the
    shared weight is stored, penalised and optimised once, under the encoder's name.

    Parameters
    ----------
    source : nn.Linear
        The layer whose weight ``(out, in)`` this one applies as ``(in, out)``.

    Examples
    --------
    >>> import torch
    >>> enc = torch.nn.Linear(5, 3)
    >>> dec = TiedLinear(enc)
    >>> dec(torch.rand(2, 3)).shape, sorted(dict(dec.named_parameters()))
    (torch.Size([2, 5]), ['bias'])
    """

    def __init__(self, source: nn.Linear):
        super().__init__()
        self._source = [source]
        self.in_features, self.out_features = source.out_features, source.in_features
        self.bias = nn.Parameter(torch.zeros(source.in_features))

    @property
    def weight(self) -> Tensor:
        """The source's weight transposed, ``(out_features, in_features)``; a view, not a copy."""
        return self._source[0].weight.t()

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, tied=True"


def tied_mlp(encoder: nn.Sequential, hidden: str, last: str) -> nn.Sequential:
    """A decoder that runs ``encoder``'s linear layers backwards with transposed weights.

    Examples
    --------
    >>> enc = mlp([6, 4, 2], "relu", "linear")
    >>> dec = tied_mlp(enc, "relu", "sigmoid")
    >>> [(m.in_features, m.out_features) for m in dec if isinstance(m, TiedLinear)]
    [(2, 4), (4, 6)]
    """
    linears = [m for m in encoder if isinstance(m, nn.Linear)][::-1]
    layers: list[nn.Module] = []
    for i, linear in enumerate(linears):
        layers += [TiedLinear(linear), activation(last if i == len(linears) - 1 else hidden)]
    return nn.Sequential(*layers)


def weight_matrices(seq: nn.Sequential) -> list[Tensor]:
    """The weight matrices (no biases) of the linear layers in ``seq``, in order.

    Examples
    --------
    >>> [tuple(w.shape) for w in weight_matrices(mlp([4, 3, 2], "relu", "linear"))]
    [(3, 4), (2, 3)]
    """
    return [m.weight for m in seq if isinstance(m, (nn.Linear, TiedLinear))]


class DenseAutoEncoder(nn.Module):
    """Dense (MLP) autoencoder with a mirrored decoder, and the levers that make it simpler.

    When to use it: the default for flat feature vectors and small images. Every
    nonlinearity makes the code more expressive and harder to read; the options below
    trade some reconstruction for a model that is easier to read:

    - ``tied=True``: the decoder applies the encoder's weights transposed, so each
      latent reads and writes along the same direction and the model has half the
      weights. Costs some fidelity when the best read and write directions differ.
    - ``encoder_l1`` / ``decoder_l1`` (and ``_l2``): penalties ``l1 * sum|w|`` and
      ``l2 * sum w^2`` on the weights (never the biases). L1 drives weights to zero, so
      each latent connects to fewer inputs or outputs; the price is reconstruction error.
    - ``noise="gaussian"`` or ``"mask"``: a denoising autoencoder. Inputs are corrupted
      while training (targets stay clean), so the model must learn the data's structure
      rather than copy its input; it reconstructs clean data slightly worse.

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
    >>> tied = DenseAutoEncoder(ModelConfig(input_dim=784, tied=True))
    >>> sum(p.numel() for p in tied.parameters()) < sum(p.numel() for p in model.parameters())
    True
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
        if cfg.tied:
            self.decoder = tied_mlp(self.encoder, cfg.activation, last=cfg.output_activation)
        else:
            self.decoder = mlp(
                [cfg.latent_dim, *cfg.decoder_dims(), cfg.input_dim], cfg.activation, last=cfg.output_activation
            )
        # Drawn after the weights, so switching noise on does not change the initial weights;
        # drawn from the (seeded) global RNG, so the same random_state gives the same noise.
        self.noise_seed = int(torch.randint(0, 2**62, (), device="cpu")) if cfg.noise != "none" else 0
        self._noise_gen: torch.Generator | None = None

    @torch.no_grad()
    def prepare(self, X: Tensor) -> None:
        """Data-dependent initialisation, run once by the trainer before the first step.

        Two things kill ReLU units of a small code in the first few steps, after which
        they never recover: units that start inactive on most of the data, and a
        reconstruction that starts at 0.5 everywhere (a sigmoid of zero) so that the
        first gradients push every unit down. So each ReLU-like unit's bias is shifted
        to make it active on half of the data, and the decoder's last bias starts at the
        output activation's inverse of the data mean. The noise generator restarts from
        its seed, so a refit sees the same corruption.
        """
        self._noise_gen = None
        h = X[: min(len(X), 4096)]  # (sample, input_dim)
        for seq in (self.encoder, self.decoder):
            layers = list(seq)
            for linear, act in zip(layers[::2], layers[1::2]):
                if seq is self.decoder and linear is layers[-2]:
                    break  # the last layer's bias is set from the data mean below
                pre = linear(h)  # (sample, out)
                if isinstance(act, (nn.ReLU, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Softplus)):
                    shift = pre.median(dim=0).values  # (out,)
                    linear.bias.sub_(shift)
                    pre = pre - shift
                h = act(pre)
        last = self.decoder[-2]  # the final linear layer
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

    def corrupt(self, x: Tensor) -> Tensor:
        """Apply the configured input noise to ``x`` ``(batch, input_dim)``; the identity for ``noise="none"``.

        ``"gaussian"`` adds ``noise_level * N(0, 1)``; ``"mask"`` zeroes each entry with
        probability ``noise_level`` (no rescaling: a zero means "missing", as in
        Vincent et al. 2008).

        Examples
        --------
        >>> import torch
        >>> from lucidae.config import ModelConfig
        >>> m = DenseAutoEncoder(ModelConfig(input_dim=1000, noise="mask", noise_level=0.25))
        >>> dropped = float((m.corrupt(torch.ones(4, 1000)) == 0).float().mean())
        >>> abs(dropped - 0.25) < 0.05
        True
        """
        kind, level = self.cfg.noise, self.cfg.noise_level
        if kind == "none" or level == 0:
            return x
        if self._noise_gen is None or self._noise_gen.device != x.device:
            self._noise_gen = torch.Generator(device=x.device).manual_seed(self.noise_seed)
        if kind == "gaussian":
            return x + level * torch.randn(x.shape, generator=self._noise_gen, device=x.device, dtype=x.dtype)
        keep = torch.rand(x.shape, generator=self._noise_gen, device=x.device) >= level  # (batch, input_dim)
        return x * keep

    def weight_penalties(self) -> dict[str, Tensor]:
        """The configured L1/L2 weight penalties, by name (only those switched on).

        Each is ``coefficient * sum`` over the weight matrices of that half (biases are
        never penalised: a bias does not connect anything, so shrinking it makes nothing
        simpler). A sum rather than a mean, so a coefficient means the same per weight
        in a small and a large layer.

        Examples
        --------
        >>> from lucidae.config import ModelConfig
        >>> m = DenseAutoEncoder(ModelConfig(input_dim=4, hidden_dims=(), latent_dim=2, encoder_l1=0.5))
        >>> bool(m.weight_penalties()["encoder_l1"] == 0.5 * m.encoder[0].weight.abs().sum())
        True
        """
        terms: dict[str, Tensor] = {}
        for part, seq in (("encoder", self.encoder), ("decoder", self.decoder)):
            l1, l2 = getattr(self.cfg, f"{part}_l1"), getattr(self.cfg, f"{part}_l2")
            weights = weight_matrices(seq)
            if l1 > 0:
                terms[f"{part}_l1"] = l1 * sum(w.abs().sum() for w in weights)
            if l2 > 0:
                terms[f"{part}_l2"] = l2 * sum(w.pow(2).sum() for w in weights)
        return terms

    def loss(self, x: Tensor, target: Tensor) -> Loss:
        """Mean squared error of reconstructing ``target`` from ``x``, plus the weight penalties.

        While training (``module.training``), ``x`` is first corrupted by the configured
        noise; in eval mode (validation, scoring) it is used as it is.

        Examples
        --------
        >>> import torch
        >>> from lucidae.config import ModelConfig
        >>> m = DenseAutoEncoder(ModelConfig(input_dim=3, hidden_dims=(), latent_dim=2))
        >>> x = torch.rand(4, 3)
        >>> sorted(m.loss(x, x).terms)
        ['mse']
        """
        x_in = self.corrupt(x) if self.training else x  # (batch, input_dim)
        out = self(x_in)
        mse = F.mse_loss(out.recon, target)
        penalties = self.weight_penalties()
        if self.cfg.latent_l1 > 0:
            penalties["latent_l1"] = self.cfg.latent_l1 * out.latent.abs().sum(dim=1).mean()
        total = mse + sum(penalties.values()) if penalties else mse
        return Loss(total, {"mse": mse.detach(), **{k: v.detach() for k, v in penalties.items()}})

    @torch.no_grad()
    def sample_errors(self, x: Tensor) -> Tensor:
        """Per-sample mean squared reconstruction error ``(batch,)``, used for scoring."""
        return (self(x).recon - x).pow(2).mean(dim=1)


class LinearAutoEncoder(DenseAutoEncoder):
    """Linear autoencoder: ``z = W_e (x - mean) + b_e``, ``x_hat = W_d z + b_d + mean``.

    No hidden layer and no nonlinearity anywhere (``hidden_dims`` and the activations of
    ``cfg`` are ignored: stacked linear layers are one linear map, and only train slower).
    The data mean is subtracted before encoding and added back after decoding, as PCA
    does; it is a buffer set once from the training data, not learned.

    When to use it: as the most readable baseline. Trained to convergence, its decoder's
    columns span the same subspace as the first ``latent_dim`` principal components
    (Baldi and Hornik 1989), and
    :meth:`lucidae.estimators.LinearAutoEncoder.align_to_principal_axes` rotates them
    onto the ordered components themselves. Each latent is then a weighted sum of the
    inputs, read off one row of weights. What it trades away: it cannot capture any
    curved structure, so at the same code size a nonlinear model reconstructs better;
    the L1/L2, tied and noise options still apply.

    Examples
    --------
    >>> import torch
    >>> from lucidae.config import ModelConfig
    >>> m = LinearAutoEncoder(ModelConfig(model="linear", input_dim=10, latent_dim=3))
    >>> m
    LinearAutoEncoder(
      (encoder): Sequential(
        (0): Linear(in_features=10, out_features=3, bias=True)
        (1): Identity()
      )
      (decoder): Sequential(
        (0): Linear(in_features=3, out_features=10, bias=True)
        (1): Identity()
      )
    )
    """

    def __init__(self, cfg: ModelConfig):
        cfg = replace(cfg, hidden_dims=(), activation="linear", latent_activation="linear", output_activation="linear")
        super().__init__(cfg)
        self.register_buffer("center", torch.zeros(cfg.input_dim))
        encoder = self.encoder[0]
        if encoder.weight.device.type != "meta":  # shapes-only builds (file validation) skip the init
            # Balanced start: orthogonal encoder rows and the decoder their transpose. From the
            # default small random start, a latent can sit near a saddle point for hundreds of steps.
            # Half length, so that with latent_dim >= input_dim the start is not already the identity.
            with torch.no_grad():
                nn.init.orthogonal_(encoder.weight, gain=0.5)
                if not cfg.tied:
                    self.decoder[0].weight.copy_(encoder.weight.t())

    @torch.no_grad()
    def prepare(self, X: Tensor) -> None:
        """Set ``center`` to the data mean, then initialise the rest on centred data."""
        self.center.copy_(X.mean(dim=0))
        super().prepare(X - self.center)

    def encode(self, x: Tensor) -> Tensor:
        """Map inputs ``(batch, input_dim)`` to codes ``(batch, latent_dim)``."""
        return self.encoder(x - self.center)

    def decode(self, z: Tensor) -> Tensor:
        """Map codes ``(batch, latent_dim)`` to reconstructions ``(batch, input_dim)``."""
        return self.decoder(z) + self.center
