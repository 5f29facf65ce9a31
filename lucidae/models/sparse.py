"""Sparse autoencoders (SAEs) as used in interpretability research.

One wide layer each way, read as a dictionary: every latent is a direction in input
space (a decoder column, ``decoder.weight[:, i]``) and a sample is rebuilt from a few
of them. The conventions follow the published recipes:

- the decoder bias ``b_dec`` is subtracted before encoding and added after decoding,
  and starts at the data's geometric median (Anthropic, "Towards Monosemanticity", 2023);
- ``"sparse"``: ReLU code with an L1 penalty in which each latent's value is weighted by
  its decoder column's norm (Anthropic, "Circuits Updates, April 2024"), so the model
  cannot shrink the penalty by shrinking codes and growing columns;
- ``"topk"``: exactly ``k`` latents are kept per sample, no L1 needed (Gao et al. 2024,
  "Scaling and evaluating sparse autoencoders"; EleutherAI's ``sparsify``);
- decoder columns are kept at unit norm after each step, and the gradient component
  parallel to each column is removed first (Bricken et al. 2023);
- a per-latent count of training samples since it last fired marks dead latents, and
  the AuxK loss lets the ``aux_k`` most active dead latents model the residual, which
  revives them (Gao et al. 2024).

Overcomplete dictionaries (``latent_dim > input_dim``) are the usual case.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lucidae.config import ModelConfig
from lucidae.models.dense import Loss

WEISZFELD_ITERATIONS = 100
"""Upper bound on Weiszfeld iterations for the geometric median (it converges in tens)."""

MEDIAN_SAMPLES = 16384
"""The geometric median is estimated on at most this many samples: plenty for a bias."""


class SparseOutput(NamedTuple):
    """What a sparse autoencoder's forward pass returns."""

    recon: Tensor
    """Reconstruction, ``(batch, input_dim)``."""
    latent: Tensor
    """The sparse code, ``(batch, latent_dim)``: zero except for the active latents."""
    pre_activation: Tensor
    """Encoder output before the sparsifying activation, ``(batch, latent_dim)``; AuxK uses it."""


@torch.no_grad()
def geometric_median(X: Tensor, iterations: int = WEISZFELD_ITERATIONS, tol: float = 1e-6) -> Tensor:
    """The point minimising the summed Euclidean distance to the rows of ``X``, by Weiszfeld's algorithm.

    Each iteration is a weighted mean with weights ``1 / distance``; a tiny floor on the
    distance keeps a point that coincides with the estimate from dividing by zero.

    Parameters
    ----------
    X : Tensor of shape (n_samples, n_features)
    iterations : int
        Upper bound on iterations.
    tol : float
        Stop when the estimate moves less than ``tol`` times the data's scale.

    Returns
    -------
    Tensor of shape (n_features,)

    Examples
    --------
    >>> import torch
    >>> X = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [100.0, 100.0]])
    >>> geometric_median(X)  # the outlier barely moves it; the mean would be (25.25, 25.25)
    tensor([0.5000, 0.5000])
    """
    X = X.double()
    guess = X.mean(dim=0)  # (features,)
    scale = float((X - guess).norm(dim=1).mean()) or 1.0
    for _ in range(iterations):
        weights = 1.0 / (X - guess).norm(dim=1).clamp_min(1e-12 * scale)  # (n,)
        new = (weights[:, None] * X).sum(dim=0) / weights.sum()
        moved = float((new - guess).norm())
        guess = new
        if moved < tol * scale:
            break
    return guess.float()


class _TangentGrad(torch.autograd.Function):
    """Identity on the decoder weight whose backward drops each column's parallel gradient.

    Adam would otherwise spend part of each step growing or shrinking columns that the
    unit-norm projection then undoes; only the tangent part changes a direction. Being
    part of the graph (not a tensor hook), it survives ``deepcopy`` and ``load``.
    """

    @staticmethod
    def forward(ctx: Any, weight: Tensor) -> Tensor:
        ctx.save_for_backward(weight)
        return weight.view_as(weight)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        (weight,) = ctx.saved_tensors
        # the TopK path's gradient arrives transposed (from embedding_bag's rows); one copy beats strided passes
        grad = grad.contiguous()  # (input_dim, latent)
        unit = weight / weight.norm(dim=0, keepdim=True).clamp_min(1e-8)  # (input_dim, latent)
        return grad - (grad * unit).sum(dim=0, keepdim=True) * unit


class _TopKValues(torch.autograd.Function):
    """The k chosen pre-activations, with a backward that touches only the k chosen latents.

    Forward returns ``values`` (``pre.gather(1, indices)``, already computed) unchanged.
    Backward is what ``F.linear`` then ``gather`` would give, without the dense
    ``(batch, latent_dim)`` gradient and its two full-size matrix products: each row's
    gradient reaches only its k encoder rows (an ``index_add_`` of outer products) and the
    input's gradient is an ``embedding_bag`` of those k rows.
    """

    @staticmethod
    def forward(ctx: Any, centred: Tensor, weight: Tensor, bias: Tensor, indices: Tensor, values: Tensor) -> Tensor:
        ctx.save_for_backward(centred, weight, indices)
        return values.view_as(values)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        centred, weight, indices = ctx.saved_tensors  # (batch, input_dim), (latent, input_dim), (batch, k)
        grad = grad.contiguous()  # (batch, k)
        flat = indices.reshape(-1)  # (batch * k,)
        outer = (grad.unsqueeze(2) * centred.unsqueeze(1)).reshape(-1, centred.shape[1])  # (batch * k, input_dim)
        grad_weight = torch.zeros_like(weight).index_add_(0, flat, outer)
        grad_bias = grad.new_zeros(weight.shape[0]).index_add_(0, flat, grad.reshape(-1))  # (latent,)
        grad_centred = F.embedding_bag(indices, weight, per_sample_weights=grad, mode="sum")  # (batch, input_dim)
        return grad_centred, grad_weight, grad_bias, None, None


class SAE(nn.Module):
    """A one-layer sparse autoencoder (a learned overcomplete dictionary).

    ``z = act(W_enc (x - b_dec) + b_enc)``, ``x_hat = W_dec z + b_dec``, where ``act`` is
    ReLU (model ``"sparse"``, with the norm-weighted L1 penalty) or TopK (model
    ``"topk"``, exactly ``cfg.k`` non-zero latents per sample).

    When to use it: to take apart the activations of another network (or any (n, d)
    float data made of many sparse, superposed features) into directions that each mean
    one thing. Use ``"topk"`` when you want to fix the sparsity (L0) directly and not
    tune an L1 coefficient; ``"sparse"`` when the number of active features should vary
    between samples. What it trades away: the code is wide and the encoder is a single
    affine map, so reconstruction is worse than a deep dense model of the same size,
    and in the ReLU variant L1 shrinks the active values (biased codes). TopK values
    are the raw pre-activations of the k winners, so a few may be negative.

    Parameters
    ----------
    cfg : ModelConfig
        ``model`` ("sparse" or "topk"), ``input_dim``, ``latent_dim``, ``k``,
        ``l1_coefficient``, ``unit_norm_decoder``, ``decoder_bias_init``, ``aux_k``,
        ``aux_coefficient`` and ``dead_window`` are used; the dense-only fields are ignored.

    Examples
    --------
    >>> import torch
    >>> from lucidae.config import ModelConfig
    >>> sae = SAE(ModelConfig(model="topk", input_dim=16, latent_dim=64, k=4))
    >>> out = sae(torch.randn(5, 16))
    >>> tuple(out.latent.shape), (out.latent != 0).sum(dim=1).tolist()
    ((5, 64), [4, 4, 4, 4, 4])
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        if cfg.input_dim < 1:
            raise ValueError("ModelConfig.input_dim must be set (>= 1) before building a model.")
        if cfg.model not in ("sparse", "topk", "jumprelu"):
            raise ValueError(f"SAE builds model 'sparse', 'topk' or 'jumprelu', not {cfg.model!r}.")
        self.cfg = cfg
        self.input_dim = cfg.input_dim
        self.latent_dim = cfg.latent_dim
        self.topk = cfg.model == "topk"
        self.encoder = nn.Linear(cfg.input_dim, cfg.latent_dim)
        self.decoder = nn.Linear(cfg.latent_dim, cfg.input_dim)
        with torch.no_grad():
            # Random unit atoms, with the encoder as their transpose (Gao et al. 2024): at
            # the start every latent responds to its own atom, so few are born dead.
            atoms = torch.randn(cfg.input_dim, cfg.latent_dim)  # (input_dim, latent)
            atoms /= atoms.norm(dim=0, keepdim=True)
            self.decoder.weight.copy_(atoms)
            self.decoder.bias.zero_()
            self.encoder.weight.copy_(atoms.T)
            self.encoder.bias.zero_()
        # Samples seen since each latent last fired; kept in the state dict so that a
        # saved model reports the same dead latents when it is loaded.
        self.register_buffer("samples_since_fired", torch.zeros(cfg.latent_dim, dtype=torch.long))

    # ------------------------------------------------------------------ hooks for the trainer
    @torch.no_grad()
    def prepare(self, X: Tensor) -> None:
        """Set the decoder bias from the training data (``cfg.decoder_bias_init``); run once before training.

        Examples
        --------
        >>> import torch
        >>> from lucidae.config import ModelConfig
        >>> sae = SAE(ModelConfig(model="sparse", input_dim=2, latent_dim=4, decoder_bias_init="mean"))
        >>> sae.prepare(torch.tensor([[0.0, 2.0], [2.0, 4.0]]))
        >>> sae.decoder.bias.tolist()
        [1.0, 3.0]
        """
        how = self.cfg.decoder_bias_init
        if how == "median":
            sample = X[: min(len(X), MEDIAN_SAMPLES)]  # (sample, input_dim)
            self.decoder.bias.copy_(geometric_median(sample).to(X.device))
        elif how == "mean":
            self.decoder.bias.copy_(X.mean(dim=0))
        self.samples_since_fired.zero_()

    @torch.no_grad()
    def after_step(self) -> None:
        """Project the decoder columns back to unit norm (when ``cfg.unit_norm_decoder``)."""
        if self.cfg.unit_norm_decoder:
            w = self.decoder.weight  # (input_dim, latent)
            w.div_(w.norm(dim=0, keepdim=True).clamp_min(1e-8))

    # ------------------------------------------------------------------ the model
    def pre_activation(self, x: Tensor) -> Tensor:
        """Encoder output before sparsification, ``(batch, latent_dim)``."""
        return self.encoder(x - self.decoder.bias)

    def activate(self, pre: Tensor) -> Tensor:
        """Sparsify pre-activations ``(batch, latent_dim)``: ReLU, or keep the top ``k`` per row."""
        if not self.topk:
            return F.relu(pre)
        values, indices = pre.topk(self.cfg.k, dim=1, sorted=False)  # (batch, k)
        return torch.zeros_like(pre).scatter(1, indices, values)

    def encode(self, x: Tensor) -> Tensor:
        """Map inputs ``(batch, input_dim)`` to sparse codes ``(batch, latent_dim)``."""
        return self.activate(self.pre_activation(x))

    def dictionary(self) -> Tensor:
        """The decoder weight ``(input_dim, latent_dim)`` as used in the loss (with tangent-only gradients
        when ``cfg.unit_norm_decoder``)."""
        w = self.decoder.weight
        return _TangentGrad.apply(w) if self.cfg.unit_norm_decoder and torch.is_grad_enabled() else w

    def decode(self, z: Tensor) -> Tensor:
        """Map codes ``(batch, latent_dim)`` to reconstructions ``(batch, input_dim)``."""
        return F.linear(z, self.dictionary(), self.decoder.bias)

    def forward(self, x: Tensor) -> SparseOutput:
        if self.topk and type(self).activate is SAE.activate and self._sparse_path_ok(x):
            return self._forward_topk(x)
        pre = self.pre_activation(x)  # (batch, latent)
        z = self.activate(pre)  # (batch, latent)
        return SparseOutput(self.decode(z), z, pre)

    def _sparse_path_ok(self, x: Tensor) -> bool:
        # embedding_bag needs one dtype for weights and per-sample weights, which autocast breaks
        w = self.encoder.weight
        return not torch.is_autocast_enabled(x.device.type) and x.dtype == w.dtype == self.decoder.weight.dtype

    def _forward_topk(self, x: Tensor) -> SparseOutput:
        """``forward`` for TopK, decoding from the k active latents only.

        The same values as ``decode(activate(pre))``: ``embedding_bag`` adds up the k chosen
        atoms of each row instead of multiplying the mostly-zero code by the whole
        dictionary, and :class:`_TopKValues` sends the gradient back to the k chosen
        encoder rows only. Both costs grow with k, not with ``latent_dim``. ``pre`` keeps its
        own (dense) graph for the AuxK loss, which only pays for it when latents are dead.
        """
        centred = x - self.decoder.bias  # (batch, input_dim)
        pre = self.encoder(centred)  # (batch, latent)
        values, indices = pre.detach().topk(self.cfg.k, dim=1, sorted=False)  # (batch, k)
        if torch.is_grad_enabled():
            values = _TopKValues.apply(centred, self.encoder.weight, self.encoder.bias, indices, values)
        z = torch.zeros_like(pre).scatter_(1, indices, values)  # (batch, latent); in place: no second full copy
        # one copy into rows: embedding_bag over the transposed view is several times slower than copy and gather
        atoms = self.dictionary().T.contiguous()  # (latent, input_dim)
        recon = F.embedding_bag(indices, atoms, per_sample_weights=values, mode="sum") + self.decoder.bias
        return SparseOutput(recon, z, pre)

    @property
    def atoms(self) -> Tensor:
        """The dictionary: decoder columns as rows, ``(latent_dim, input_dim)``."""
        return self.decoder.weight.detach().T

    def dead_mask(self) -> Tensor:
        """Latents that have not fired for ``cfg.dead_window`` training samples, ``(latent_dim,)`` bool."""
        return self.samples_since_fired >= self.cfg.dead_window

    def loss(self, x: Tensor, target: Tensor) -> Loss:
        """Reconstruction MSE, plus the norm-weighted L1 ("sparse") and the AuxK loss for dead latents.

        In training mode this also updates the dead-latent counters.

        Examples
        --------
        >>> import torch
        >>> from lucidae.config import ModelConfig
        >>> sae = SAE(ModelConfig(model="sparse", input_dim=8, latent_dim=32))
        >>> x = torch.randn(4, 8)
        >>> sorted(sae.eval().loss(x, x).terms)
        ['l0', 'l1', 'mse']
        """
        out = self(x)
        mse = F.mse_loss(out.recon, target)
        total = mse
        active = out.latent != 0  # (batch, latent)
        terms = {"mse": mse.detach(), "l0": active.sum(dim=1).float().mean()}
        if not self.topk:
            col_norms = self.dictionary().norm(dim=0)  # (latent,)
            l1 = (out.latent.abs() * col_norms).sum(dim=1).mean()
            total = total + self.cfg.l1_coefficient * l1
            terms["l1"] = l1.detach()
        if self.training:
            with torch.no_grad():
                self.samples_since_fired += x.shape[0]
                self.samples_since_fired[active.any(dim=0)] = 0
            dead = self.dead_mask()  # (latent,)
            n_dead = int(dead.sum())
            terms["dead_fraction"] = torch.tensor(n_dead / self.latent_dim)
            if self.cfg.aux_k > 0 and self.cfg.aux_coefficient > 0 and n_dead > 0:
                aux = self._aux_loss(out, target, dead, n_dead)
                total = total + self.cfg.aux_coefficient * aux
                terms["aux"] = aux.detach()
        return Loss(total, terms)

    def _aux_loss(self, out: SparseOutput, target: Tensor, dead: Tensor, n_dead: int) -> Tensor:
        # Gao et al. 2024, appendix A.2: the top-aux_k dead latents try to explain what the
        # live ones missed; their gradients pull them back towards the data. Scaled down
        # when fewer latents are dead than aux_k, as in sparsify, so a few dead latents
        # cannot dominate the objective.
        k_aux = min(self.cfg.aux_k, n_dead)
        residual = (target - out.recon).detach()  # (batch, input_dim)
        masked = out.pre_activation.masked_fill(~dead, float("-inf"))  # (batch, latent)
        values, indices = masked.topk(k_aux, dim=1, sorted=False)  # (batch, k_aux)
        values = F.relu(values)
        atoms = self.dictionary().T[indices]  # (batch, k_aux, input_dim)
        residual_hat = torch.einsum("bk,bkd->bd", values, atoms)  # (batch, input_dim)
        # Normalised by the residual's own power (Gao et al.'s normalised MSE): the residual
        # shrinks as training goes on, and an unnormalised loss would fade with it.
        power = residual.pow(2).mean().clamp_min(1e-12)
        return F.mse_loss(residual_hat, residual) / power * min(n_dead / self.cfg.aux_k, 1.0)

    @torch.no_grad()
    def sample_errors(self, x: Tensor) -> Tensor:
        """Per-sample mean squared reconstruction error ``(batch,)``, used for scoring."""
        return (self(x).recon - x).pow(2).mean(dim=1)


class JumpReLUSAE(SAE):
    """A JumpReLU sparse autoencoder (model ``"jumprelu"``): a latent fires only above its own threshold.

    ``z = relu(pre) * (pre > threshold)`` with ``pre = W_enc (x - b_dec) + b_enc`` and one
    threshold per latent (Rajamanoharan et al. 2024, "Jumping Ahead: Improving
    Reconstruction Fidelity with JumpReLU Sparse Autoencoders"; the Gemma Scope SAEs).
    This is SAELens's JumpReLU formula, ReLU included, so a negative threshold behaves
    as SAELens's does. The thresholds are a buffer (``threshold``, ``(latent_dim,)``),
    saved with the weights.

    When to use it: to load and run JumpReLU SAEs trained elsewhere
    (:func:`lucidae.interop.from_saelens`). What it trades away: lucidae does not learn
    the thresholds (that needs the straight-through estimators of the paper); training
    keeps them fixed and fits the weights with the ReLU SAE's norm-weighted L1 loss, so a
    fresh model (thresholds 0) trains as the ``"sparse"`` ReLU SAE does.

    Examples
    --------
    >>> import torch
    >>> from lucidae.config import ModelConfig
    >>> sae = JumpReLUSAE(ModelConfig(model="jumprelu", input_dim=4, latent_dim=3))
    >>> sae.threshold.fill_(0.5)
    tensor([0.5000, 0.5000, 0.5000])
    >>> sae.activate(torch.tensor([[0.2, 0.6, -1.0]]))
    tensor([[0.0000, 0.6000, 0.0000]])
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        # zero thresholds make a fresh model a ReLU SAE; imported models overwrite them
        self.register_buffer("threshold", torch.zeros(cfg.latent_dim))

    def activate(self, pre: Tensor) -> Tensor:
        """Keep each pre-activation ``(batch, latent_dim)`` that is above its latent's threshold (and positive)."""
        return F.relu(pre) * (pre > self.threshold)
