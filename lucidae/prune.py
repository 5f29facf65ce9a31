"""Simplification: magnitude pruning of weights and removal of dead units, with the fidelity cost.

A smaller model is easier to read: fewer connections per latent, fewer latents, fewer hidden
units. :func:`prune`
takes any fitted lucidae estimator (dense, linear, sparse, VAE, convolutional) and returns a new, smaller one together
with the fraction of variance unexplained (FVU, see :func:`lucidae.metrics.fvu`) before and
after, so the price of each simplification is on the table.

Two steps, in this order:

1. **Magnitude pruning**: the given fraction of weights (never biases) with the smallest
   absolute values is set to exactly zero, either over all weight matrices together
   (``scope="global"``: layers with many small weights lose more) or within each matrix
   (``scope="layer"``: every layer keeps the same share). Trained with ``encoder_l1`` /
   ``decoder_l1``, a model loses little here, because L1 has already driven those weights
   near zero.
2. **Dead-unit removal**: a latent or hidden unit whose value is the same on every sample
   of ``X`` (for a ReLU unit: never active, often after the weight pruning cut its inputs)
   carries no information. Its constant contribution is folded into the next layer's bias
   and the unit is removed, so on ``X`` the reconstruction does not change at all. The
   encoder and decoder lose units independently (the decoder's widths then no longer mirror
   the encoder's: ``ModelConfig.decoder_hidden_dims``); a tied model, whose halves share
   their matrices, loses dead latents only.

   A sparse autoencoder (:class:`~lucidae.models.sparse.SAE`) loses its dead dictionary
   entries the same way: for ReLU + L1, every latent constant on ``X`` (never active, or
   stuck at one value; since the decoder bias is also subtracted before encoding, folding
   a constant into it moves the encoder bias to match); for TopK, every latent never among
   a sample's ``k`` winners (removing it leaves every sample's winners as they were, where
   removing an always-active one would let another latent win in its place).

   A VAE (:class:`~lucidae.models.vae.VariationalAutoEncoder`, dense or convolutional)
   loses its latents that collapsed to the prior (:func:`lucidae.metrics.collapsed_latents`:
   the posterior mean varies by less than 0.01 over ``X``; ``atol`` does not apply): their
   mean and log-variance rows leave the encoder and their mean's average is folded into
   the decoder's first bias. Unlike the other removals this one is not exact: what little
   the collapsed latents still carried is lost, and the reported FVU says how little.
   A convolutional autoencoder loses its constant latents the same way, exactly; its
   convolution channels are not removed.
3. **Fine-tuning** (``fine_tune_epochs > 0``, off by default): the smaller model trains on
   ``X`` for that many more epochs with the estimator's own training settings, starting
   from its pruned weights (no re-initialisation), and the pruned weights are set back
   to zero after every step, so the sparsity pattern holds (Han et al. 2015's
   prune-then-retrain). Most of the fidelity that heavy pruning costs comes back.
"""

from __future__ import annotations

import copy
import math
from dataclasses import replace
from typing import Any, NamedTuple

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted
from torch import Tensor, nn

from lucidae.errors import ConfigError, DataError
from lucidae.metrics import collapsed_latents, fvu
from lucidae.models import build_model
from lucidae.models.conv import ConvolutionalAutoEncoder
from lucidae.models.dense import DenseAutoEncoder, TiedLinear, weight_matrices
from lucidae.models.sparse import SAE
from lucidae.models.vae import VariationalAutoEncoder
from lucidae.train import seeded, train

SCOPES = ("global", "layer")
"""Where the pruning fraction applies: over all weights together, or within each layer."""


class PruneResult(NamedTuple):
    """What :func:`prune` returns: the smaller estimator and what it cost."""

    estimator: Any
    """A new fitted estimator (the one passed in is left untouched)."""
    fvu_before: float
    """Fraction of variance unexplained on ``X_eval`` (``X`` without it) before pruning (scaled space)."""
    fvu_after: float
    """The same after pruning."""
    nonzero_weights_before: int
    """Non-zero weight entries before (biases not counted; tied weights counted once)."""
    nonzero_weights_after: int
    """The same after."""
    latent_dim_before: int
    """Code size before."""
    latent_dim_after: int
    """Code size after dead latents were removed."""
    removed_latents: tuple[int, ...]
    """Indices (in the original code) of the latents that were removed."""
    removed_hidden_units: tuple[tuple[int, ...], ...] = ()
    """Per hidden layer (the encoder's, then the decoder's from the code outwards), the indices of
    the units that were removed."""
    widths_before: tuple[int, ...] = ()
    """Every layer's width before, from the input to the reconstruction (e.g. 64-128-32-128-64)."""
    widths_after: tuple[int, ...] = ()
    """The same after."""
    fine_tune_history: Any = None
    """The :class:`~lucidae.train.History` of the fine-tuning, ``None`` without it."""


def own_weights(module: nn.Module) -> list[Tensor]:
    """The weight matrices (and kernels) a module owns: each stored once (a tied decoder has none of its own).

    Examples
    --------
    >>> from lucidae.config import ModelConfig
    >>> m = DenseAutoEncoder(ModelConfig(input_dim=6, hidden_dims=(4,), latent_dim=2, tied=True))
    >>> [tuple(w.shape) for w in own_weights(m)]
    [(4, 6), (2, 4)]
    >>> [tuple(w.shape) for w in own_weights(SAE(ModelConfig(model="topk", input_dim=6, latent_dim=8, k=2)))]
    [(8, 6), (6, 8)]
    """
    if isinstance(module, SAE):
        return [module.encoder.weight, module.decoder.weight]
    if isinstance(module, (VariationalAutoEncoder, ConvolutionalAutoEncoder)):
        kinds = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)
        return [m.weight for m in module.modules() if isinstance(m, kinds)]
    return [w for w in weight_matrices(module.encoder) + weight_matrices(module.decoder) if isinstance(w, nn.Parameter)]


def count_nonzero_weights(module: nn.Module) -> int:
    """Number of non-zero weight entries (biases excluded, tied weights once).

    Examples
    --------
    >>> from lucidae.config import ModelConfig
    >>> count_nonzero_weights(DenseAutoEncoder(ModelConfig(input_dim=6, hidden_dims=(), latent_dim=2)))
    24
    """
    return int(sum(int((w != 0).sum()) for w in own_weights(module)))


@torch.no_grad()
def magnitude_prune_(module: nn.Module, amount: float, scope: str = "global") -> int:
    """Zero the ``amount`` share of weights with the smallest magnitudes, in place.

    Exactly ``round(amount * n)`` entries are zeroed (ties are broken by position), over
    all weight matrices (``scope="global"``) or in each matrix (``scope="layer"``).
    Biases are never pruned.

    Parameters
    ----------
    module : DenseAutoEncoder, SAE or VariationalAutoEncoder
        A dense, linear, sparse or VAE module.
    amount : float
        Share of weights to zero, in [0, 1].
    scope : {"global", "layer"}
        Where the share applies.

    Returns
    -------
    int
        Number of weight entries now zero.

    Examples
    --------
    >>> from lucidae.config import ModelConfig
    >>> m = DenseAutoEncoder(ModelConfig(input_dim=10, hidden_dims=(), latent_dim=2))
    >>> magnitude_prune_(m, 0.25, "layer")
    10
    """
    weights = own_weights(module)
    if scope == "layer":
        for w in weights:
            _zero_smallest(w.view(-1), int(round(amount * w.numel())))
    else:
        flat = torch.cat([w.detach().reshape(-1) for w in weights])  # (n_weights,)
        k = int(round(amount * flat.numel()))
        mask = torch.ones_like(flat, dtype=torch.bool)
        if k > 0:
            mask[flat.abs().argsort(stable=True)[:k]] = False
        start = 0
        for w in weights:
            w.mul_(mask[start : start + w.numel()].view_as(w))
            start += w.numel()
    return int(sum(int((w == 0).sum()) for w in weights))


def _zero_smallest(flat: Tensor, k: int) -> None:
    if k > 0:
        flat[flat.abs().argsort(stable=True)[:k]] = 0.0


def constant_latents(Z: np.ndarray, atol: float = 0.0) -> np.ndarray:
    """Indices of latents whose value varies by at most ``atol`` over the samples of ``Z``.

    For a ReLU code this is the usual "dead latent" (never non-zero); a latent stuck
    at any other constant is just as uninformative.

    Examples
    --------
    >>> import numpy as np
    >>> constant_latents(np.array([[0.0, 1.0, 3.0], [0.0, 2.0, 3.0]]))
    array([0, 2])
    """
    Z = np.asarray(Z)
    if Z.ndim != 2 or Z.shape[0] == 0:
        raise DataError(f"Expected codes of shape (n_samples, latent_dim) with n_samples >= 1, got {Z.shape}.")
    return np.flatnonzero((Z.max(axis=0) - Z.min(axis=0)) <= atol)


@torch.no_grad()
def drop_units(module: DenseAutoEncoder, position: int, remove: np.ndarray, values: np.ndarray) -> DenseAutoEncoder:
    """A new module without units ``remove`` of layer output ``position``, their constant ``values`` folded on.

    Parameters
    ----------
    module : DenseAutoEncoder
        A dense or linear module (not changed).
    position : int
        Which layer's output loses units, counting the linear layers from the input: 0 is
        the first hidden layer, ``len(hidden_dims)`` the code, and so on into the decoder
        (the reconstruction, the last, cannot lose units). A tied module can lose code
        units only, since its halves share their matrices.
    remove : array of int
        Unit indices to drop.
    values : array of float, same length as ``remove``
        The constant value each dropped unit takes on the data; ``values @`` its outgoing
        weights are added to the next layer's bias.

    Returns
    -------
    DenseAutoEncoder
        Same family and options with that layer narrower; equal outputs wherever the
        removed units take their constant values.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from lucidae.config import ModelConfig
    >>> m = DenseAutoEncoder(ModelConfig(input_dim=5, hidden_dims=(4,), latent_dim=3))
    >>> drop_units(m, 2, np.array([0, 2]), np.array([0.0, 0.0])).cfg.widths()  # the decoder's hidden layer
    (5, 4, 3, 2, 5)
    """
    lins = [*module.encoder[::2], *module.decoder[::2]]
    keys = [f"encoder.{2 * j}" for j in range(len(module.encoder) // 2)]
    keys += [f"decoder.{2 * j}" for j in range(len(module.decoder) // 2)]
    code = len(module.cfg.hidden_dims)
    if not 0 <= position < len(lins) - 1:
        raise ConfigError(f"position={position} is invalid: expected 0 to {len(lins) - 2} (the reconstruction stays).")
    if module.cfg.tied and position != code:
        raise ConfigError(
            f"A tied model shares its matrices between encoder and decoder; only its code (position {code}) "
            f"can lose units, not position {position}."
        )
    here, after = lins[position], lins[position + 1]
    keep = np.setdiff1d(np.arange(here.weight.shape[0]), remove)
    if len(keep) == 0:
        what = "latent" if position == code else f"unit of layer {position}"
        raise ConfigError(
            f"Every {what} is constant on the data, so removing them would leave an empty layer. "
            "Check that the model is trained, or pass more varied data."
        )
    state = {k: v.clone() for k, v in module.state_dict().items()}
    device = here.weight.device
    keep_t = torch.as_tensor(keep, device=device)
    if len(remove):
        dropped = after.weight[:, torch.as_tensor(remove, device=device)]  # (out, n_removed)
        const = torch.as_tensor(values, dtype=dropped.dtype, device=device)  # (n_removed,)
        state[f"{keys[position + 1]}.bias"] = after.bias + dropped @ const
    state[f"{keys[position]}.weight"] = here.weight[keep_t].clone()
    state[f"{keys[position]}.bias"] = here.bias[keep_t].clone()
    if not isinstance(after, TiedLinear):
        state[f"{keys[position + 1]}.weight"] = after.weight[:, keep_t].clone()

    cfg = module.cfg
    dims = list(cfg.widths()[1:-1])  # (hidden..., code, decoder hidden...)
    dims[position] = int(len(keep))
    encoder, latent, decoder = tuple(dims[:code]), dims[code], tuple(dims[code + 1 :])
    mirror = decoder == encoder[::-1]
    cfg = replace(cfg, hidden_dims=encoder, latent_dim=latent, decoder_hidden_dims=None if mirror else decoder)
    with seeded(0):
        small = build_model(cfg)
    if hasattr(module, "noise_seed"):
        small.noise_seed = module.noise_seed
    small.load_state_dict(state)
    return small.to(device).eval()


def drop_latents(module: DenseAutoEncoder, remove: np.ndarray, values: np.ndarray) -> DenseAutoEncoder:
    """A new module without the latents ``remove``, whose constant ``values`` go into the decoder's bias.

    :func:`drop_units` at the code's position.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from lucidae.config import ModelConfig
    >>> m = DenseAutoEncoder(ModelConfig(input_dim=5, hidden_dims=(4,), latent_dim=3))
    >>> small = drop_latents(m, np.array([1]), np.array([0.0]))
    >>> small.latent_dim, tuple(small(torch.rand(2, 5)).latent.shape)
    (2, (2, 2))
    """
    return drop_units(module, len(module.cfg.hidden_dims), remove, values)


@torch.no_grad()
def layer_ranges(module: DenseAutoEncoder, X: Tensor, batch_size: int = 4096) -> list[tuple[Tensor, Tensor, Tensor]]:
    """Per layer output (all but the reconstruction): each unit's (min, max, value on the first sample) over ``X``.

    ``X`` is in the model's (scaled) space; it is read in batches, so only the running
    extremes are kept, not every activation.

    Examples
    --------
    >>> import torch
    >>> from lucidae.config import ModelConfig
    >>> m = DenseAutoEncoder(ModelConfig(input_dim=5, hidden_dims=(4,), latent_dim=3)).eval()
    >>> [tuple(lo.shape) for lo, hi, first in layer_ranges(m, torch.rand(10, 5))]
    [(4,), (3,), (4,)]
    """
    layers = [*module.encoder, *module.decoder][:-2]  # stop before the output layer
    ranges: list[list[Tensor]] = []
    for start in range(0, X.shape[0], batch_size):
        h = X[start : start + batch_size]  # (batch, features)
        if getattr(module, "center", None) is not None:
            h = h - module.center
        outs = []
        for i, layer in enumerate(layers):
            h = layer(h)
            if i % 2 == 1:  # after the activation: the layer's output
                outs.append(h)
        for j, out in enumerate(outs):  # (batch, width)
            lo, hi = out.min(dim=0).values, out.max(dim=0).values
            if j == len(ranges):
                ranges.append([lo, hi, out[0].clone()])
            else:
                ranges[j][0] = torch.minimum(ranges[j][0], lo)
                ranges[j][1] = torch.maximum(ranges[j][1], hi)
    return [(lo, hi, first) for lo, hi, first in ranges]


@torch.no_grad()
def sae_dead_latents(
    module: SAE, X: Tensor, atol: float = 0.0, batch_size: int = 4096
) -> tuple[np.ndarray, np.ndarray]:
    """The latents of a sparse autoencoder that :func:`prune` removes, and the constant each one takes on ``X``.

    For TopK, the latents never among a sample's ``k`` winners (their value is 0); for
    ReLU + L1, the latents whose range on ``X`` is at most ``atol`` (never active, or
    stuck at one value).

    Parameters
    ----------
    module : SAE
        A sparse autoencoder.
    X : Tensor of shape (n_samples, input_dim)
        Data in the model's (scaled) space, read in batches.
    atol : float, default=0.0
        ReLU + L1 only: the largest range that counts as constant.

    Returns
    -------
    (indices, values) : tuple of ndarray
        Dead latents in increasing order, and the value each takes on ``X``.

    Examples
    --------
    >>> import torch
    >>> from lucidae.config import ModelConfig
    >>> sae = SAE(ModelConfig(model="topk", input_dim=4, latent_dim=6, k=1)).eval()
    >>> dead, values = sae_dead_latents(sae, torch.eye(4))
    >>> len(dead) >= 2, values.tolist() == [0.0] * len(dead)  # 4 samples choose at most 4 of 6 latents
    (True, True)
    """
    width = module.latent_dim
    chosen = torch.zeros(width, dtype=torch.bool, device=X.device)
    lo = torch.full((width,), math.inf, device=X.device)
    hi = torch.full((width,), -math.inf, device=X.device)
    first = None
    for start in range(0, X.shape[0], batch_size):
        pre = module.pre_activation(X[start : start + batch_size])  # (batch, latent)
        if module.topk:
            chosen[pre.topk(module.cfg.k, dim=1, sorted=False).indices.unique()] = True
            continue
        z = module.activate(pre)  # (batch, latent)
        lo, hi = torch.minimum(lo, z.min(dim=0).values), torch.maximum(hi, z.max(dim=0).values)
        first = z[0].clone() if first is None else first
    if module.topk:
        dead = np.flatnonzero(~chosen.cpu().numpy())
        return dead, np.zeros(len(dead))
    dead = np.flatnonzero((hi - lo).cpu().numpy() <= atol)
    values = first.cpu().numpy()[dead].astype(np.float64) if first is not None else np.zeros(len(dead))
    return dead, values


@torch.no_grad()
def drop_sae_latents(module: SAE, remove: np.ndarray, values: np.ndarray) -> SAE:
    """A new sparse autoencoder without the latents ``remove``, their constant ``values`` folded into the biases.

    ``sum_j values[j] * W_dec[:, j]`` joins the decoder bias; since that bias is also
    subtracted before encoding, the encoder bias gains ``W_enc`` times the same shift, so
    every remaining latent's pre-activation is unchanged. Wherever the removed latents take
    their ``values`` (and, for TopK, are not among the winners), the codes of the kept
    latents and the reconstruction are exactly as before.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from lucidae.config import ModelConfig
    >>> sae = SAE(ModelConfig(model="sparse", input_dim=4, latent_dim=6)).eval()
    >>> small = drop_sae_latents(sae, np.array([0, 5]), np.array([0.0, 0.0]))
    >>> small.latent_dim, tuple(small.atoms.shape)
    (4, (4, 4))
    """
    keep = np.setdiff1d(np.arange(module.latent_dim), remove)
    if len(keep) == 0:
        raise ConfigError(
            "Every latent is constant on the data, so removing them would leave an empty dictionary. "
            "Check that the model is trained, or pass more varied data."
        )
    device = module.decoder.weight.device
    keep_t = torch.as_tensor(keep, device=device)
    w_enc, w_dec = module.encoder.weight, module.decoder.weight  # (latent, in), (in, latent)
    shift = torch.zeros_like(module.decoder.bias)  # (input_dim,)
    if len(remove):
        const = torch.as_tensor(values, dtype=w_dec.dtype, device=device)  # (n_removed,)
        shift = w_dec[:, torch.as_tensor(remove, device=device)] @ const
    state = {k: v.clone() for k, v in module.state_dict().items()}
    state["encoder.weight"] = w_enc[keep_t].clone()
    state["encoder.bias"] = module.encoder.bias[keep_t] + w_enc[keep_t] @ shift
    state["decoder.weight"] = w_dec[:, keep_t].clone()
    state["decoder.bias"] = module.decoder.bias + shift
    state["samples_since_fired"] = module.samples_since_fired[keep_t].clone()
    with seeded(0):
        small = build_model(replace(module.cfg, latent_dim=int(len(keep))))
    small.load_state_dict(state)
    return small.to(device).eval()


def _code_layers(module: nn.Module) -> tuple[str, nn.Linear, str, nn.Linear]:
    """Names and layers of the encoder's last linear layer (for a VAE: mean rows, then log-variance rows)
    and the decoder's first."""
    enc = [(f"encoder.{n}", m) for n, m in module.encoder.named_modules() if isinstance(m, nn.Linear)][-1]
    dec = [(f"decoder.{n}", m) for n, m in module.decoder.named_modules() if isinstance(m, nn.Linear)][0]
    return enc[0], enc[1], dec[0], dec[1]


@torch.no_grad()
def vae_collapsed_latents(
    module: VariationalAutoEncoder, X: Tensor, batch_size: int = 4096
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A VAE's latents collapsed to the prior on ``X``, their mean posterior mean, and every latent's variance.

    ``X`` is in the model's (scaled) space. See :func:`lucidae.metrics.collapsed_latents`.

    Examples
    --------
    >>> import torch
    >>> from lucidae.config import ModelConfig
    >>> vae = VariationalAutoEncoder(ModelConfig(model="vae", input_dim=6, hidden_dims=(), latent_dim=3)).eval()
    >>> with torch.no_grad():  # the means of latents 0 and 2 vary strongly, latent 1's not at all
    ...     vae.encoder[0].weight[[0, 2]] = 10.0 * torch.eye(6)[[0, 2]]
    ...     vae.encoder[0].weight[1] = 0.0
    >>> vae_collapsed_latents(vae, torch.rand(50, 6))[0].tolist()
    [1]
    """
    mu = torch.cat([module.encode(X[s : s + batch_size]) for s in range(0, X.shape[0], batch_size)])  # (n, latent)
    Z = mu.double().cpu().numpy()
    return collapsed_latents(Z), Z.mean(axis=0), Z.var(axis=0)


@torch.no_grad()
def drop_code_latents(module: nn.Module, remove: np.ndarray, values: np.ndarray) -> nn.Module:
    """A new VAE or convolutional autoencoder without the latents ``remove``, each replaced by ``values``.

    The encoder's last linear layer loses those latents' rows (a VAE's mean and
    log-variance rows), the decoder's first linear layer their columns, and ``values @``
    those columns joins that layer's bias, so decoding is unchanged wherever the removed
    latents (a VAE's posterior means) equal ``values``.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from lucidae.config import ModelConfig
    >>> vae = VariationalAutoEncoder(ModelConfig(model="vae", input_dim=6, hidden_dims=(4,), latent_dim=3)).eval()
    >>> small = drop_code_latents(vae, np.array([1]), np.array([0.5]))
    >>> z = torch.tensor([[0.2, 0.5, -1.0]])
    >>> small.latent_dim, bool(torch.allclose(small.decode(z[:, [0, 2]]), vae.decode(z)))
    (2, True)
    """
    latent = module.latent_dim
    keep = np.setdiff1d(np.arange(latent), remove)
    if len(keep) == 0:
        raise ConfigError("Removing every latent would leave an empty code; keep at least one.")
    enc_key, enc, dec_key, dec = _code_layers(module)
    device = dec.weight.device
    paired = isinstance(module, VariationalAutoEncoder)
    rows = torch.as_tensor(np.concatenate([keep, keep + latent]) if paired else keep, device=device)
    keep_t = torch.as_tensor(keep, device=device)
    state = {k: v.clone() for k, v in module.state_dict().items()}
    state[f"{enc_key}.weight"] = enc.weight[rows].clone()
    state[f"{enc_key}.bias"] = enc.bias[rows].clone()
    state[f"{dec_key}.weight"] = dec.weight[:, keep_t].clone()
    if len(remove):
        const = torch.as_tensor(values, dtype=dec.weight.dtype, device=device)  # (n_removed,)
        state[f"{dec_key}.bias"] = dec.bias + dec.weight[:, torch.as_tensor(remove, device=device)] @ const
    with seeded(0):
        small = build_model(replace(module.cfg, latent_dim=int(len(keep))))
    small.load_state_dict(state)
    if paired:
        small.dataset_size = module.dataset_size
    return small.to(device).eval()


def _dead_code_latents(module: nn.Module, X: Tensor, atol: float) -> tuple[np.ndarray, np.ndarray]:
    """The latents :func:`prune` removes from an SAE, VAE or convolutional model, and the constant each takes.

    When every latent qualifies, the one that varies most on ``X`` stays to carry the constant on.
    """
    if isinstance(module, SAE):
        dead, values = sae_dead_latents(module, X, atol)
        spread = np.zeros(module.latent_dim)  # all constant (ReLU only): any one of them will do
    elif isinstance(module, VariationalAutoEncoder):
        dead, means, spread = vae_collapsed_latents(module, X)
        values = means[dead]
    else:
        with torch.no_grad():
            Z = torch.cat([module.encode(X[s : s + 4096]) for s in range(0, len(X), 4096)]).cpu().numpy()  # (n, latent)
        dead, spread = constant_latents(Z, atol), np.ptp(Z, axis=0)  # spread: (latent,)
        values = Z[0, dead].astype(np.float64)
    if len(dead) == module.latent_dim:
        stays = int(np.argmax(spread[dead]))
        dead, values = np.delete(dead, stays), np.delete(values, stays)
    return dead, values


def _remove_dead_dense(
    pruned: DenseAutoEncoder, Xs: Tensor, atol: float
) -> tuple[DenseAutoEncoder, dict[int, np.ndarray]]:
    """Drop every unit of ``pruned`` constant on ``Xs``; returns the new module and the removed units per position."""
    ranges = layer_ranges(pruned, Xs)
    code = len(pruned.cfg.hidden_dims)
    # a tied model's halves share their matrices: only its code can narrow
    positions = [code] if pruned.cfg.tied else range(len(ranges))
    removed: dict[int, np.ndarray] = {}
    for position in positions:
        lo, hi, _ = ranges[position]
        dead = np.flatnonzero((hi - lo).cpu().numpy() <= atol)
        if len(dead) == len(lo):  # the whole layer is constant: one unit carries that constant on
            dead = dead[1:]
        if len(dead):
            removed[position] = dead
    # each removal changes only its own layer's rows and the next layer's columns and bias,
    # and leaves every layer's output on X as it was, so the order does not matter
    for position, dead in removed.items():
        values = ranges[position][2].cpu().numpy()[dead]
        pruned = drop_units(pruned, position, dead, values)
    return pruned, removed


def prune(
    estimator: Any,
    X: Any,
    *,
    amount: float = 0.5,
    scope: str = "global",
    remove_dead: bool = True,
    atol: float = 0.0,
    fine_tune_epochs: int = 0,
    X_eval: Any = None,
) -> PruneResult:
    """Prune a fitted lucidae estimator and report the fidelity before and after.

    Parameters
    ----------
    estimator : fitted lucidae estimator
        AutoEncoder, LinearAutoEncoder, SparseAutoEncoder, TopKAutoEncoder, VAE, BetaTCVAE
        or ConvAutoEncoder; it is not modified.
    X : array-like of shape (n_samples, n_features)
        Data to find dead units with and to fine-tune on (normally the training data: a
        latent dead there is never used), and to measure fidelity on unless ``X_eval`` is given.
    amount : float, default=0.5
        Share of weights to set to zero, smallest magnitudes first; 0 keeps them all.
    scope : {"global", "layer"}, default="global"
        Apply ``amount`` over all weights together or within each weight matrix.
    remove_dead : bool, default=True
        Remove latents and hidden units that are constant on ``X`` (after weight pruning);
        a tied model loses latents only; a TopK model loses the latents that are never
        among a sample's ``k`` winners; a VAE loses the latents collapsed to the prior; a
        convolutional model loses constant latents, not channels.
    atol : float, default=0.0
        A unit counts as constant when its range on ``X`` is at most this (not used for TopK and VAEs).
    fine_tune_epochs : int, default=0
        Train the pruned model on ``X`` for this many epochs more, with the estimator's
        training settings and the pruned weights held at zero; 0 does not fine-tune.
    X_eval : array-like of shape (n_eval, n_features), optional
        Data to measure the FVU before and after on, normally the samples held out from
        training (``lucidae prune`` passes the run's held-out rows); default ``X``.

    Returns
    -------
    PruneResult
        The new estimator, FVU before/after, non-zero weights before/after, code size
        and every layer's width before/after, and the removed latents and hidden units.

    Raises
    ------
    ConfigError
        For an ``amount`` outside [0, 1], an unknown ``scope``, a negative
        ``fine_tune_epochs``, or an estimator whose module is not one of lucidae's.

    Examples
    --------
    >>> from lucidae import AutoEncoder
    >>> from lucidae.datasets import load_digits
    >>> from lucidae.prune import prune
    >>> X = load_digits().X
    >>> ae = AutoEncoder(hidden_dims=(32,), latent_dim=8, epochs=3, verbose=0, random_state=0).fit(X)
    >>> result = prune(ae, X, amount=0.5)
    >>> result.nonzero_weights_after < result.nonzero_weights_before
    True
    >>> result.estimator.transform(X).shape[1] == result.latent_dim_after
    True

    A TopK sparse autoencoder loses its dead dictionary entries, and nothing else changes:

    >>> from lucidae import TopKAutoEncoder
    >>> sae = TopKAutoEncoder(latent_dim=256, k=4, epochs=2, verbose=0, random_state=0).fit(X)
    >>> small = prune(sae, X, amount=0.0)
    >>> small.latent_dim_after < 256, abs(small.fvu_after - small.fvu_before) < 1e-6
    (True, True)

    Measured on held-out rows, with the dead units found on (and any fine-tuning done on) the training rows:

    >>> res = prune(ae, X[:1400], X_eval=X[1400:], amount=0.5)
    >>> res.fvu_before == fvu(ae.scale_inputs(X[1400:]), ae.scale_inputs(ae.reconstruct(X[1400:])))
    True
    """
    check_is_fitted(estimator, "module_")
    module = estimator.module_
    if not isinstance(module, (DenseAutoEncoder, SAE, VariationalAutoEncoder, ConvolutionalAutoEncoder)):
        raise ConfigError(
            f"prune works on lucidae's model families, got a {type(module).__name__} "
            f"(model={estimator.model_config_.model!r}). Train one of lucidae's estimators to prune it."
        )
    ok = isinstance(amount, (int, float)) and not isinstance(amount, bool) and 0.0 <= amount <= 1.0
    if not ok:
        raise ConfigError(f"amount={amount!r} is invalid: expected the share of weights to zero, in [0, 1].")
    if scope not in SCOPES:
        raise ConfigError(f"scope={scope!r} is not known; allowed values are {list(SCOPES)}.")
    if isinstance(fine_tune_epochs, bool) or not isinstance(fine_tune_epochs, int) or fine_tune_epochs < 0:
        raise ConfigError(f"fine_tune_epochs={fine_tune_epochs!r} is invalid: expected an integer >= 0 (0: none).")

    Xs = estimator.scale_inputs(X)  # (n, features) scaled, validated
    Xe = Xs if X_eval is None else estimator.scale_inputs(X_eval)  # (n_eval, features) scaled
    recon_before = estimator.run_module(lambda xb: module(xb).recon, Xe)
    fvu_before = fvu(Xe, recon_before)
    weights_before = count_nonzero_weights(module)

    pruned = copy.deepcopy(module)
    magnitude_prune_(pruned, float(amount), scope)
    pruned.eval()
    widths_before = pruned.cfg.widths()
    code = len(pruned.cfg.hidden_dims)
    removed_per_position: dict[int, np.ndarray] = {}
    if remove_dead:
        X_t = torch.as_tensor(Xs, dtype=torch.float32, device=next(pruned.parameters()).device)
        if isinstance(pruned, DenseAutoEncoder):
            pruned, removed_per_position = _remove_dead_dense(pruned, X_t, atol)
        else:  # the other families narrow at their code only
            dead, values = _dead_code_latents(pruned, X_t, atol)
            if len(dead):
                removed_per_position[code] = dead
                drop = drop_sae_latents if isinstance(pruned, SAE) else drop_code_latents
                pruned = drop(pruned, dead, values)
    history = _fine_tune(estimator, pruned, Xs, fine_tune_epochs) if fine_tune_epochs else None
    removed = removed_per_position.get(code, np.array([], dtype=np.int64))
    hidden_positions = [p for p in range(len(widths_before) - 2) if p != code]

    new = copy.copy(estimator)
    new.module_ = pruned.eval()
    new.model_config_ = pruned.cfg
    new.latent_dim = pruned.latent_dim
    if "decoder_hidden_dims" in new.get_params():  # the dense estimator; the linear one has no hidden layers
        new.hidden_dims = pruned.cfg.hidden_dims
        new.decoder_hidden_dims = pruned.cfg.decoder_hidden_dims
    for derived in ("explained_variance_",):  # per-latent state that no longer lines up
        new.__dict__.pop(derived, None)
    if history is not None:  # the fine-tuning is part of how the new model's weights came about
        new.history_ = estimator.history_.continued(history)
        new.n_iter_ = len(new.history_.records)
        new.fit_seconds_ = estimator.fit_seconds_ + sum(r["seconds"] for r in history.records)
    recon_after = new.run_module(lambda xb: pruned(xb).recon, Xe)
    return PruneResult(
        estimator=new,
        fvu_before=fvu_before,
        fvu_after=fvu(Xe, recon_after),
        nonzero_weights_before=weights_before,
        nonzero_weights_after=count_nonzero_weights(pruned),
        latent_dim_before=int(module.latent_dim),
        latent_dim_after=int(pruned.latent_dim),
        removed_latents=tuple(int(i) for i in removed),
        removed_hidden_units=tuple(tuple(int(i) for i in removed_per_position.get(p, ())) for p in hidden_positions),
        widths_before=widths_before,
        widths_after=pruned.cfg.widths(),
        fine_tune_history=history,
    )


def _fine_tune(estimator: Any, module: nn.Module, Xs: np.ndarray, epochs: int) -> Any:
    """Train ``module`` (pruned) ``epochs`` more on ``Xs`` with its zero weights held at zero; returns the history."""
    masks = [(w, w != 0) for w in own_weights(module)]
    own = getattr(type(module), "after_step", None)  # an SAE renormalises its atoms after each step

    @torch.no_grad()
    def after_step() -> None:
        for weight, mask in masks:
            weight.mul_(mask)
        if own is not None:  # after the masking, so that an SAE's atoms end at unit norm
            own(module)

    cfg = replace(estimator.get_train_config(), epochs=epochs, n_init=1)
    module.after_step = after_step  # the trainer calls it after every optimiser step
    try:
        history = train(module.train(), Xs, cfg, warm_start=True)
    finally:
        del module.after_step
    module.eval()
    return history
