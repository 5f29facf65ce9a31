"""Simplification: magnitude pruning of weights and removal of dead latents, with the fidelity cost.

A smaller model is easier to read: fewer connections per latent, fewer latents. :func:`prune`
takes a fitted dense or linear estimator and returns a new, smaller one together with the
fraction of variance unexplained (FVU, see :func:`lucidae.metrics.fvu`) before and after,
so the price of each simplification is on the table.

Two steps, in this order:

1. **Magnitude pruning**: the given fraction of weights (never biases) with the smallest
   absolute values is set to exactly zero, either over all weight matrices together
   (``scope="global"``: layers with many small weights lose more) or within each matrix
   (``scope="layer"``: every layer keeps the same share). Trained with ``encoder_l1`` /
   ``decoder_l1``, a model loses little here, because L1 has already driven those weights
   near zero.
2. **Dead-latent removal**: a latent whose value is the same on every sample of ``X``
   (for a ReLU code: never active) carries no information. Its constant contribution is
   folded into the decoder's first bias and the latent is removed, so on ``X`` the
   reconstruction does not change at all.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from lucidae.errors import ConfigError, DataError
from lucidae.metrics import fvu
from lucidae.models import build_model
from lucidae.models.dense import DenseAutoEncoder, TiedLinear, weight_matrices
from lucidae.train import seeded

SCOPES = ("global", "layer")
"""Where the pruning fraction applies: over all weights together, or within each layer."""


class PruneResult(NamedTuple):
    """What :func:`prune` returns: the smaller estimator and what it cost."""

    estimator: Any
    """A new fitted estimator (the one passed in is left untouched)."""
    fvu_before: float
    """Fraction of variance unexplained on ``X`` before pruning (scaled space)."""
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


def own_weights(module: DenseAutoEncoder) -> list[Tensor]:
    """The weight matrices a dense module owns: each stored once (a tied decoder has none of its own).

    Examples
    --------
    >>> from lucidae.config import ModelConfig
    >>> m = DenseAutoEncoder(ModelConfig(input_dim=6, hidden_dims=(4,), latent_dim=2, tied=True))
    >>> [tuple(w.shape) for w in own_weights(m)]
    [(4, 6), (2, 4)]
    """
    return [w for w in weight_matrices(module.encoder) + weight_matrices(module.decoder) if isinstance(w, nn.Parameter)]


def count_nonzero_weights(module: DenseAutoEncoder) -> int:
    """Number of non-zero weight entries (biases excluded, tied weights once).

    Examples
    --------
    >>> from lucidae.config import ModelConfig
    >>> count_nonzero_weights(DenseAutoEncoder(ModelConfig(input_dim=6, hidden_dims=(), latent_dim=2)))
    24
    """
    return int(sum(int((w != 0).sum()) for w in own_weights(module)))


@torch.no_grad()
def magnitude_prune_(module: DenseAutoEncoder, amount: float, scope: str = "global") -> int:
    """Zero the ``amount`` share of weights with the smallest magnitudes, in place.

    Exactly ``round(amount * n)`` entries are zeroed (ties are broken by position), over
    all weight matrices (``scope="global"``) or in each matrix (``scope="layer"``).
    Biases are never pruned.

    Parameters
    ----------
    module : DenseAutoEncoder
        A dense or linear module.
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
def drop_latents(module: DenseAutoEncoder, remove: np.ndarray, values: np.ndarray) -> DenseAutoEncoder:
    """A new module without the latents ``remove``, whose constant ``values`` go into the decoder's bias.

    Parameters
    ----------
    module : DenseAutoEncoder
        A dense or linear module (not changed).
    remove : array of int
        Latent indices to drop.
    values : array of float, same length as ``remove``
        The constant value each dropped latent takes on the data.

    Returns
    -------
    DenseAutoEncoder
        Same family and options, ``latent_dim`` smaller; equal outputs wherever the
        removed latents take their constant values.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from lucidae.config import ModelConfig
    >>> m = DenseAutoEncoder(ModelConfig(input_dim=5, hidden_dims=(4,), latent_dim=3))
    >>> small = drop_latents(m, np.array([1]), np.array([0.0]))
    >>> small.latent_dim, tuple(small(torch.rand(2, 5)).latent.shape)
    (2, (2, 2))
    """
    keep = np.setdiff1d(np.arange(module.latent_dim), remove)
    if len(keep) == 0:
        raise ConfigError(
            "Every latent is constant on the data, so removing them would leave an empty code. "
            "Check that the model is trained, or pass more varied data."
        )
    enc_last: nn.Linear = module.encoder[-2]  # type: ignore[assignment]
    dec_first = module.decoder[0]
    state = {k: v.clone() for k, v in module.state_dict().items()}
    keep_t = torch.as_tensor(keep, device=enc_last.weight.device)
    if len(remove):
        dropped = dec_first.weight[:, torch.as_tensor(remove, device=keep_t.device)]  # (out, n_removed)
        const = torch.as_tensor(values, dtype=dropped.dtype, device=dropped.device)  # (n_removed,)
        state["decoder.0.bias"] = dec_first.bias + dropped @ const
    enc_key = f"encoder.{len(module.encoder) - 2}"
    state[f"{enc_key}.weight"] = enc_last.weight[keep_t].clone()
    state[f"{enc_key}.bias"] = enc_last.bias[keep_t].clone()
    if not isinstance(dec_first, TiedLinear):
        state["decoder.0.weight"] = dec_first.weight[:, keep_t].clone()
    cfg = replace(module.cfg, latent_dim=int(len(keep)))
    with seeded(0):
        small = build_model(cfg)
    if hasattr(module, "noise_seed"):
        small.noise_seed = module.noise_seed
    small.load_state_dict(state)
    return small.to(enc_last.weight.device).eval()


def prune(
    estimator: Any,
    X: Any,
    *,
    amount: float = 0.5,
    scope: str = "global",
    remove_dead: bool = True,
    atol: float = 0.0,
) -> PruneResult:
    """Prune a fitted dense or linear estimator and report the fidelity before and after.

    Parameters
    ----------
    estimator : AutoEncoder or LinearAutoEncoder
        A fitted estimator; it is not modified.
    X : array-like of shape (n_samples, n_features)
        Data to measure fidelity on and to find dead latents with (normally the
        training data: a latent dead there is never used).
    amount : float, default=0.5
        Share of weights to set to zero, smallest magnitudes first; 0 keeps them all.
    scope : {"global", "layer"}, default="global"
        Apply ``amount`` over all weights together or within each weight matrix.
    remove_dead : bool, default=True
        Remove latents that are constant on ``X`` (after weight pruning).
    atol : float, default=0.0
        A latent counts as constant when its range on ``X`` is at most this.

    Returns
    -------
    PruneResult
        The new estimator, FVU before/after, non-zero weights before/after, code size
        before/after and the removed latents.

    Raises
    ------
    ConfigError
        For an ``amount`` outside [0, 1], an unknown ``scope``, or an estimator of a
        family other than dense and linear.

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
    """
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(estimator, "module_")
    module = estimator.module_
    if not isinstance(module, DenseAutoEncoder):
        raise ConfigError(
            f"prune works on the dense and linear families, got a {type(module).__name__} "
            f"(model={estimator.model_config_.model!r}). Train an AutoEncoder or LinearAutoEncoder to prune it."
        )
    ok = isinstance(amount, (int, float)) and not isinstance(amount, bool) and 0.0 <= amount <= 1.0
    if not ok:
        raise ConfigError(f"amount={amount!r} is invalid: expected the share of weights to zero, in [0, 1].")
    if scope not in SCOPES:
        raise ConfigError(f"scope={scope!r} is not known; allowed values are {list(SCOPES)}.")

    Xs = estimator._prepare(X)  # (n, features) scaled, validated
    recon_before = estimator._run(lambda xb: module(xb).recon, Xs)
    fvu_before = fvu(Xs, recon_before)
    weights_before = count_nonzero_weights(module)

    pruned = copy.deepcopy(module)
    magnitude_prune_(pruned, float(amount), scope)
    removed = np.array([], dtype=np.int64)
    if remove_dead:
        pruned.eval()
        Z = estimator._run(pruned.encode, Xs)  # (n, latent)
        removed = constant_latents(Z, atol)
        if len(removed):
            pruned = drop_latents(pruned, removed, Z[0, removed])

    new = copy.copy(estimator)
    new.module_ = pruned.eval()
    new.model_config_ = pruned.cfg
    new.latent_dim = pruned.latent_dim
    for derived in ("explained_variance_",):  # per-latent state that no longer lines up
        new.__dict__.pop(derived, None)
    recon_after = new._run(lambda xb: pruned(xb).recon, Xs)
    return PruneResult(
        estimator=new,
        fvu_before=fvu_before,
        fvu_after=fvu(Xs, recon_after),
        nonzero_weights_before=weights_before,
        nonzero_weights_after=count_nonzero_weights(pruned),
        latent_dim_before=int(module.latent_dim),
        latent_dim_after=int(pruned.latent_dim),
        removed_latents=tuple(int(i) for i in removed),
    )
