"""One training step of the plain dense autoencoder without autograd, read top to bottom.

Most models are trained through autograd (``module.loss(x, x).total.backward()``). The
:class:`~lucidae.models.dense.DenseAutoEncoder` (the classic model, and its tied,
denoising and L1/L2-penalised variants) and the
:class:`~lucidae.models.dense.LinearAutoEncoder` are what most users train, and their
gradients are short enough to write out. Doing so
lets a step skip what autograd cannot: the engine's per-node work, a fresh allocation
for every activation and gradient, and separate passes for the loss's scaling. On a CPU
core the big activations (batch x input_dim) do not fit in the fast caches, so every
pass over them costs about as much as an elementwise kernel's arithmetic; this step
makes as few as it can:

- forward: ``addmm`` (bias included) into a reused buffer, the activation in place;
- loss: ``d = recon - x`` and ``sum(d * d)`` (one product, no squared copy);
- backward: the output activation's derivative applied in place on ``d``; the mean's
  ``2 / numel`` is folded into the ``alpha`` of the last layer's matrix products (and
  so carried by every earlier gradient), the hidden activations' derivatives are
  applied in place, and the gradients land in the parameters' own ``.grad`` tensors,
  allocated once;
- the levers: input noise comes from the model's own ``corrupt`` (the same random
  draws), the weight penalties' values from its own ``weight_penalties`` and their
  gradients (``l1 * sign(w)``, ``2 * l2 * w``) are added to the weight gradients; the
  code's L1 adds ``latent_l1 * sign(z) / batch`` to the gradient arriving at the code;
  a tied decoder layer writes the gradient of ``W.T`` in ``W``'s layout
  (``inputs.T @ grad``) and its encoder layer adds its own to it; the linear model's
  ``center`` is subtracted before the encoder and added after the decoder.

``tests/test_fast_step.py`` checks the loss and every gradient against autograd on the
same module (the slow, obvious reference), and whole fits of both paths against each
other. ``benchmarks/train_throughput.py`` measures what it buys.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from lucidae.config import TrainConfig
from lucidae.models.dense import DenseAutoEncoder, LinearAutoEncoder, Loss, TiedLinear

ACTIVATION_NAMES: dict[type[nn.Module], str] = {
    nn.ReLU: "relu",
    nn.Identity: "linear",
    nn.Sigmoid: "sigmoid",
    nn.Tanh: "tanh",
}
"""Activation modules whose derivative this step applies from the activation's output alone."""
FUSED_ACTIVATIONS = tuple(ACTIVATION_NAMES.values())
"""The activation names (a subset of :data:`lucidae.config.ACTIVATIONS`) the fused step handles; the others train
through autograd."""
ACTIVATIONS = FUSED_ACTIVATIONS
"""The former name of :data:`FUSED_ACTIVATIONS`, kept for old imports."""


class Layer(NamedTuple):
    """A linear layer (or a tied one) and the name of the activation that follows it."""

    linear: nn.Linear | TiedLinear
    activation: str
    l1: float = 0.0
    """L1 penalty coefficient on this layer's weight (its half's ``encoder_l1`` / ``decoder_l1``)."""
    l2: float = 0.0
    """L2 penalty coefficient on this layer's weight."""


def plain_dense_layers(module: nn.Module, cfg: TrainConfig) -> list[Layer] | None:
    """The layers of ``module`` when :class:`DenseStep` can train it, else ``None``.

    That is a :class:`~lucidae.models.dense.DenseAutoEncoder` or
    :class:`~lucidae.models.dense.LinearAutoEncoder` itself (not a subclass, and without
    methods replaced on the instance), with activations in :data:`FUSED_ACTIVATIONS`, every
    parameter trainable, in fp32 on the CPU; tied weights, input noise and the weight and
    code penalties are fine. Anything else is trained through autograd, which handles
    every model.

    Examples
    --------
    >>> from lucidae.config import ModelConfig, TrainConfig
    >>> from lucidae.models import build_model
    >>> model = build_model(ModelConfig(input_dim=8, hidden_dims=(4,), latent_dim=2))
    >>> [layer.activation for layer in plain_dense_layers(model, TrainConfig())]
    ['relu', 'relu', 'relu', 'sigmoid']
    >>> noisy = build_model(ModelConfig(input_dim=8, latent_dim=2, noise="mask", encoder_l1=1e-3))
    >>> [(layer.l1, layer.l2) for layer in plain_dense_layers(noisy, TrainConfig())]
    [(0.001, 0.0), (0.001, 0.0), (0.0, 0.0), (0.0, 0.0)]
    >>> gelu = build_model(ModelConfig(input_dim=8, latent_dim=2, activation="gelu"))
    >>> plain_dense_layers(gelu, TrainConfig()) is None
    True
    """
    if type(module) not in (DenseAutoEncoder, LinearAutoEncoder) or getattr(cfg, "precision", "fp32") != "fp32":
        return None
    if {"loss", "forward", "encode", "decode", "corrupt"} & set(vars(module)):
        return None  # a method replaced on the instance (a wrapper, a test's probe) must be the one called
    params = list(module.parameters())
    if not all(p.requires_grad and p.dtype == torch.float32 and p.device.type == "cpu" for p in params):
        return None
    mc, layers = module.cfg, []
    for seq, coef in (
        (module.encoder, (mc.encoder_l1, mc.encoder_l2)),
        (module.decoder, (mc.decoder_l1, mc.decoder_l2)),
    ):
        for lin, act in zip(seq[::2], seq[1::2]):
            # read from the modules themselves, so a layer swapped by hand is never trained as something else
            name = ACTIVATION_NAMES.get(type(act))
            if type(lin) not in (nn.Linear, TiedLinear) or lin.bias is None or name is None:
                return None
            layers.append(Layer(lin, name, *coef))
    return layers


def _activate_(z: Tensor, name: str) -> Tensor:
    """Apply activation ``name`` to ``z`` in place and return it."""
    if name == "relu":
        return z.relu_()
    if name == "sigmoid":
        return z.sigmoid_()
    if name == "tanh":
        return z.tanh_()
    return z


_BACKWARD = {
    "relu": torch.ops.aten.threshold_backward.grad_input,
    "sigmoid": torch.ops.aten.sigmoid_backward.grad_input,
    "tanh": torch.ops.aten.tanh_backward.grad_input,
}


def _derivative_(grad: Tensor, out: Tensor, name: str) -> Tensor:
    """Multiply ``grad`` in place by the derivative of activation ``name``, given its output ``out``."""
    if name == "relu":  # out > 0 exactly where the input was > 0
        return _BACKWARD["relu"](grad, out, 0, grad_input=grad)
    if name in _BACKWARD:
        return _BACKWARD[name](grad, out, grad_input=grad)
    return grad


class _Plan(NamedTuple):
    """What a step needs of one layer, looked up once rather than every step."""

    param: nn.Parameter  # the weight parameter: a tied layer's is its encoder layer's
    tied: bool  # the layer applies param transposed
    weight: Tensor  # (out, in) as applied; views of param, so they follow the optimiser's in-place updates
    weight_t: Tensor  # (in, out)
    bias: nn.Parameter
    activation: str
    l1: float
    l2: float
    accumulate: bool  # param's gradient already holds a tied layer's part when this layer is reached
    weight_grad: Tensor  # param's gradient, in param's layout
    bias_grad: Tensor


def _plan(layers: list[Layer]) -> list[_Plan]:
    """One :class:`_Plan` per layer; a tied pair shares its weight's gradient buffer."""
    grads: dict[int, Tensor] = {}
    plan = []
    for i, (lin, name, l1, l2) in enumerate(layers):
        tied = isinstance(lin, TiedLinear)
        param = lin._source[0].weight if tied else lin.weight
        weight = lin.weight  # (out, in): for a tied layer, param.t()
        later = [other for other in layers[i + 1 :] if isinstance(other.linear, TiedLinear)]
        shared = any(other.linear._source[0].weight is param for other in later)
        grad = grads.setdefault(id(param), torch.empty_like(param, memory_format=torch.contiguous_format))
        plan.append(
            _Plan(param, tied, weight, weight.t(), lin.bias, name, l1, l2, shared, grad, torch.empty_like(lin.bias))
        )
    return plan


class DenseStep:
    """The loss of a dense autoencoder and its gradients, without autograd.

    Calling it with a batch computes the loss ``module.loss(x, x)`` would (reconstruction
    error plus the configured penalties, on the corrupted input when the model is
    denoising), writes every parameter's gradient into its ``.grad`` (overwriting, as
    ``zero_grad`` + ``backward`` would) and returns the same
    :class:`~lucidae.models.dense.Loss`. Activations live in buffers reused from step
    to step (one set per batch size seen), and so do the gradients. Build it after the
    module has reached its device; the trainer builds one per ``train`` call.

    Parameters
    ----------
    module : DenseAutoEncoder
        The model; its ``corrupt`` and ``weight_penalties`` are called as they are.
    layers : list of Layer
        From :func:`plain_dense_layers`.

    Examples
    --------
    >>> import torch
    >>> from lucidae.config import ModelConfig, TrainConfig
    >>> from lucidae.models import build_model
    >>> model = build_model(ModelConfig(input_dim=8, hidden_dims=(4,), latent_dim=2))
    >>> step = DenseStep(model, plain_dense_layers(model, TrainConfig()))
    >>> x = torch.rand(16, 8)
    >>> loss = step(x)
    >>> bool(torch.isclose(loss.total, model.loss(x, x).total))
    True
    >>> tuple(model.encoder[0].weight.grad.shape)
    (4, 8)
    """

    def __init__(self, module: DenseAutoEncoder, layers: list[Layer]):
        self.module = module
        self.plan = _plan(layers)
        self.center: Tensor | None = module.center if isinstance(module, LinearAutoEncoder) else None
        self.code = len(module.encoder) // 2 - 1  # the layer whose output is the code
        cfg = module.cfg
        self.noisy = cfg.noise != "none" and cfg.noise_level > 0
        self.penalised = any(c > 0 for c in (cfg.encoder_l1, cfg.encoder_l2, cfg.decoder_l1, cfg.decoder_l2))
        self._buffers: dict[int, tuple[list[Tensor], list[Tensor], Tensor | None]] = {}

    def _buffers_for(self, rows: int, like: Tensor) -> tuple[list[Tensor], list[Tensor], Tensor | None]:
        if rows not in self._buffers:
            outs = [like.new_empty(rows, p.weight.shape[0]) for p in self.plan]
            # the gradient arriving at each layer's output; the last is (recon - x), made in place
            grads = [like.new_empty(rows, p.weight.shape[0]) for p in self.plan]
            centred = like.new_empty(like.shape) if self.center is not None else None  # the linear model's input
            self._buffers[rows] = (outs, grads, centred)
        return self._buffers[rows]

    @torch.no_grad()
    def __call__(self, x: Tensor) -> Loss:
        """Return the loss of reconstructing ``x`` ``(batch, features)`` and fill every ``.grad``.

        This call stands for ``zero_grad``, ``module.loss(x, x)`` and ``backward`` together;
        the returned terms are detached, as the module's are.
        """
        module, plan, latent_l1 = self.module, self.plan, self.module.cfg.latent_l1
        outs, grads, centred = self._buffers_for(x.shape[0], x)
        inputs = []
        h = module.corrupt(x) if self.noisy and module.training else x  # (batch, features)
        if self.center is not None:
            h = torch.sub(h, self.center, out=centred)
        for p, out in zip(plan, outs):
            inputs.append(h)
            h = _activate_(torch.addmm(p.bias, h, p.weight_t, out=out), p.activation)  # (batch, out)
        if self.center is not None:
            h.add_(self.center)  # the linear model's output activation is the identity: nothing else needs h
        g = torch.sub(h, x, out=grads[-1])  # (batch, features): recon - x
        flat = g.view(-1)
        mse = torch.dot(flat, flat) / flat.numel()
        penalties = module.weight_penalties() if self.penalised else {}
        if latent_l1 > 0:
            penalties["latent_l1"] = latent_l1 * outs[self.code].abs().sum(dim=1).mean()
        total = mse + sum(penalties.values()) if penalties else mse

        g = _derivative_(g, h, plan[-1].activation)
        # d(mean of squares)/d(recon) = 2 (recon - x) / numel: the factor rides on the last
        # layer's products (and so on every gradient before it) instead of a pass of its own
        alpha = 2.0 / flat.numel()
        for i in range(len(plan) - 1, -1, -1):
            p = plan[i]
            w_grad, b_grad = p.weight_grad, p.bias_grad
            beta = 1 if p.accumulate else 0
            if p.tied:  # d/d(param.t()) written in param's layout: inputs.T @ g, (in, out)
                torch.addmm(w_grad, inputs[i].t(), g, beta=beta, alpha=alpha, out=w_grad)
            else:
                torch.addmm(w_grad, g.t(), inputs[i], beta=beta, alpha=alpha, out=w_grad)  # (out, in)
            if p.l1 > 0:  # sign(param.t()).t() is sign(param): the same in both layouts
                w_grad.add_(p.param.sign(), alpha=p.l1)
            if p.l2 > 0:
                w_grad.add_(p.param, alpha=2 * p.l2)
            torch.sum(g, 0, out=b_grad)  # (out,)
            if alpha != 1.0:
                b_grad.mul_(alpha)
            if i > 0:
                below = grads[i - 1]  # (batch, in): the gradient at the previous layer's output
                torch.addmm(below, g, p.weight, beta=0, alpha=alpha, out=below)
                if i - 1 == self.code and latent_l1 > 0:  # d/dz of latent_l1 * mean_b sum_j |z_bj|
                    below.add_(inputs[i].sign(), alpha=latent_l1 / x.shape[0])
                g = _derivative_(below, inputs[i], plan[i - 1].activation)
            alpha = 1.0
            # the optimiser reads .grad: re-attach ours if anything replaced or dropped it
            if p.param.grad is not w_grad:
                p.param.grad = w_grad
            if p.bias.grad is not b_grad:
                p.bias.grad = b_grad
        return Loss(total, {"mse": mse, **penalties})
