"""Variational autoencoders: VAE, beta-VAE and beta-TCVAE.

The encoder gives each sample a Gaussian posterior ``q(z|x) = N(mu, diag(exp(logvar)))``;
training draws ``z = mu + exp(logvar / 2) * eps`` (the reparameterisation trick, Kingma
and Welling 2014) and minimises the negative evidence lower bound per sample,

    ``-log p(x|z) + beta * KL(q(z|x) || N(0, I))``,

the reconstruction term summed over features and the KL over latents, as in the papers.
``beta = 1`` is the VAE; ``beta > 1`` the beta-VAE (Higgins et al. 2017), which trades
reconstruction for latents that follow independent factors of the data.

beta-TCVAE (Chen et al. 2018, "Isolating sources of disentanglement in VAEs") splits the
averaged KL into three parts and weights them separately:

    ``alpha * I(x; z) + beta * TC(z) + gamma * sum_j KL(q(z_j) || p(z_j))``,

index-code mutual information, total correlation (the dependence between latents) and
dimension-wise KL. Only the total correlation is penalised hard (``beta``), so the code
keeps the information about x that a large beta-VAE ``beta`` destroys. The aggregate
posterior ``q(z)`` is estimated on each minibatch by minibatch-weighted sampling
(Chen et al., eq. 6): ``log q(z_i) ~ logsumexp_j log q(z_i|x_j) - log(N M)`` for a batch
of ``M`` out of ``N`` training samples.

Likelihoods: ``"bernoulli"`` (binary or [0, 1] data such as binarised images; binary
cross-entropy on the decoder's logits) or ``"gaussian"`` with one shared variance set to
its maximum-likelihood value, the batch's mean squared error (the calibrated decoder of
Rybkin et al. 2021), so no noise level needs tuning.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lucidae.config import ModelConfig, check_conv_config
from lucidae.models.conv import ConvDecoder, ConvEncoder
from lucidae.models.dense import Loss, activation, mlp

LOG_2PI = math.log(2 * math.pi)

MIN_LOG_SIGMA = -6.0
"""Floor of the Gaussian likelihood's log standard deviation: a perfect fit must not give -inf."""


class VAEOutput(NamedTuple):
    """What a VAE's forward pass returns."""

    recon: Tensor
    """Reconstruction (Bernoulli probabilities or Gaussian means), ``(batch, input_dim)``."""
    latent: Tensor
    """The code used for explanations: the posterior mean, ``(batch, latent_dim)``."""
    mu: Tensor
    """Posterior mean, ``(batch, latent_dim)``."""
    logvar: Tensor
    """Posterior log-variance, ``(batch, latent_dim)``."""
    z: Tensor
    """The code that was decoded: a posterior sample in training mode, ``mu`` in eval mode."""
    logits: Tensor
    """Decoder output before the output activation, ``(batch, input_dim)``."""


def gaussian_log_density(z: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
    """Elementwise ``log N(z; mu, exp(logvar))``, broadcasting.

    Examples
    --------
    >>> import torch
    >>> round(float(gaussian_log_density(torch.tensor(0.0), torch.tensor(0.0), torch.tensor(0.0))), 4)
    -0.9189
    """
    return -0.5 * (LOG_2PI + logvar + (z - mu).pow(2) * torch.exp(-logvar))


def kl_to_standard_normal(mu: Tensor, logvar: Tensor) -> Tensor:
    """``KL(N(mu, exp(logvar)) || N(0, 1))`` per sample, summed over latents: ``(batch,)``.

    Examples
    --------
    >>> import torch
    >>> float(kl_to_standard_normal(torch.zeros(1, 3), torch.zeros(1, 3))[0])
    0.0
    """
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1)


def tc_decomposition(z: Tensor, mu: Tensor, logvar: Tensor, dataset_size: int) -> dict[str, Tensor]:
    """Minibatch-weighted-sampling estimates of the three parts of the KL (Chen et al. 2018).

    Parameters
    ----------
    z, mu, logvar : Tensor of shape (batch, latent_dim)
        Posterior samples and the posterior parameters they came from.
    dataset_size : int
        ``N``, the number of training samples the batch was drawn from.

    Returns
    -------
    dict
        Batch means of ``"mi"`` (index-code mutual information), ``"tc"`` (total
        correlation) and ``"dim_kl"`` (dimension-wise KL); their sum estimates the mean KL.
        The estimates are biased (each marginal subtracts ``log(N M)``, as in the paper
        and its code), which moves the values but hardly the gradients; compare them
        between models, not with the exact quantities.

    Examples
    --------
    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> mu, logvar = torch.randn(64, 3, generator=g), torch.zeros(64, 3)
    >>> parts = tc_decomposition(mu + torch.randn(64, 3, generator=g), mu, logvar, 64)
    >>> sorted(parts)
    ['dim_kl', 'mi', 'tc']
    """
    batch = z.shape[0]
    log_nm = math.log(max(dataset_size, batch) * batch)
    log_q_zx = gaussian_log_density(z, mu, logvar).sum(dim=1)  # (batch,)
    log_p_z = gaussian_log_density(z, torch.zeros_like(z), torch.zeros_like(z)).sum(dim=1)  # (batch,)
    # mat[i, j, d] = log q(z_i[d] | x_j): every sample's code under every posterior in the batch.
    mat = gaussian_log_density(z[:, None, :], mu[None, :, :], logvar[None, :, :])  # (batch, batch, latent)
    log_q_z = torch.logsumexp(mat.sum(dim=2), dim=1) - log_nm  # (batch,)
    log_prod_q_zd = (torch.logsumexp(mat, dim=1) - log_nm).sum(dim=1)  # (batch,)
    return {
        "mi": (log_q_zx - log_q_z).mean(),
        "tc": (log_q_z - log_prod_q_zd).mean(),
        "dim_kl": (log_prod_q_zd - log_p_z).mean(),
    }


class VariationalAutoEncoder(nn.Module):
    """Variational autoencoder with a Gaussian code; beta-VAE and beta-TCVAE objectives.

    When to use it: when you want latents that are smooth, can be sampled, and (with
    ``beta > 1``, or better the ``"tcvae"`` objective) tend to align with independent
    factors of variation, as in the dSprites benchmark. Also gives a generative model:
    :meth:`sample` and :meth:`interpolate`. What it trades away: reconstructions are
    blurrier than a plain autoencoder's of the same size (the KL term limits how much
    the code says about each sample, more so as ``beta`` grows), training is noisier,
    and latents the KL switches off carry nothing (their posterior equals the prior).

    Parameters
    ----------
    cfg : ModelConfig
        ``model`` ("vae" or "tcvae"), ``input_dim``, ``latent_dim``, ``hidden_dims``,
        ``activation``, ``output_activation`` (Gaussian means), ``beta``, ``likelihood``,
        ``mi_weight``, ``dim_kl_weight``, ``architecture`` and, for ``"conv"``,
        ``image_shape`` and ``conv_channels`` are used.

    Examples
    --------
    >>> import torch
    >>> from lucidae.config import ModelConfig, check_conv_config
    >>> vae = VariationalAutoEncoder(ModelConfig(model="vae", input_dim=64, latent_dim=4, beta=4.0))
    >>> out = vae(torch.rand(5, 64))
    >>> tuple(out.recon.shape), tuple(out.mu.shape)
    ((5, 64), (5, 4))
    >>> sorted(vae.loss(torch.rand(5, 64).round(), torch.rand(5, 64).round()).terms)
    ['kl', 'recon']
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        if cfg.input_dim < 1:
            raise ValueError("ModelConfig.input_dim must be set (>= 1) before building a model.")
        if cfg.likelihood == "auto":  # the estimators decide from the data; built directly, a sigmoid means Bernoulli
            cfg = replace(cfg, likelihood="bernoulli" if cfg.output_activation == "sigmoid" else "gaussian")
        self.cfg = cfg
        self.input_dim = cfg.input_dim
        self.latent_dim = cfg.latent_dim
        self.objective = "tcvae" if cfg.model == "tcvae" else "beta"
        if cfg.architecture == "conv":
            chw = check_conv_config(cfg)
            self.encoder = ConvEncoder(
                chw, cfg.conv_layers(), cfg.hidden_dims, 2 * cfg.latent_dim, cfg.activation, "linear"
            )
            self.decoder = ConvDecoder(chw, cfg.conv_layers(), cfg.hidden_dims, cfg.latent_dim, cfg.activation)
        else:
            widths = [cfg.input_dim, *cfg.hidden_dims]
            self.encoder = mlp([*widths, 2 * cfg.latent_dim], cfg.activation, last="linear")
            self.decoder = mlp([cfg.latent_dim, *reversed(widths)], cfg.activation, last="linear")
        # A Bernoulli decoder's mean is always the sigmoid of its logits.
        self.output_activation = activation("sigmoid" if cfg.likelihood == "bernoulli" else cfg.output_activation)
        self.dataset_size = 0
        """``N`` for the total-correlation estimate; set by :meth:`prepare`, the batch size until then."""

    @torch.no_grad()
    def prepare(self, X: Tensor) -> None:
        """Remember the training-set size (for the TC estimate) and start the decoder at the mean sample.

        A sparse image (dSprites is 95% black) otherwise spends its first epochs learning
        the background, with every latent pushed towards the prior meanwhile.
        """
        self.dataset_size = int(X.shape[0])
        mean = X.mean(dim=0)  # (input_dim,)
        name = "sigmoid" if self.cfg.likelihood == "bernoulli" else self.cfg.output_activation
        if name == "sigmoid":
            mean = torch.logit(mean.clamp(1e-3, 1 - 1e-3))
        elif name == "tanh":
            mean = torch.atanh(mean.clamp(-1 + 1e-3, 1 - 1e-3))
        if isinstance(self.decoder, ConvDecoder):
            last = self.decoder.deconvs[-1]
            last.bias.copy_(mean.reshape(last.bias.shape[0], -1).mean(dim=1))  # one bias per channel
        else:
            self.decoder[-2].bias.copy_(mean)

    def posterior(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Posterior mean and log-variance, each ``(batch, latent_dim)``."""
        mu, logvar = self.encoder(x).chunk(2, dim=1)  # (batch, latent) each
        return mu, logvar

    def encode(self, x: Tensor) -> Tensor:
        """The posterior mean ``(batch, latent_dim)``: the deterministic code used by ``transform``."""
        return self.posterior(x)[0]

    def decode(self, z: Tensor) -> Tensor:
        """Decoder mean for codes ``(batch, latent_dim)``: ``(batch, input_dim)`` probabilities or means."""
        return self.output_activation(self.decoder(z))

    def reparameterize(self, mu: Tensor, logvar: Tensor) -> Tensor:
        """A posterior sample ``mu + exp(logvar / 2) * eps`` through which gradients flow."""
        return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)

    def forward(self, x: Tensor) -> VAEOutput:
        mu, logvar = self.posterior(x)  # (batch, latent) each
        z = self.reparameterize(mu, logvar) if self.training else mu
        logits = self.decoder(z)  # (batch, input_dim)
        return VAEOutput(self.output_activation(logits), mu, mu, logvar, z, logits)

    def nll(self, logits: Tensor, target: Tensor) -> Tensor:
        """Negative log-likelihood of ``target`` per sample, summed over features: ``(batch,)``."""
        if self.cfg.likelihood == "bernoulli":
            return F.binary_cross_entropy_with_logits(logits, target, reduction="none").sum(dim=1)
        mean = self.output_activation(logits)
        # The shared variance at its maximum-likelihood value (Rybkin et al. 2021).
        log_sigma = (0.5 * (target - mean).pow(2).mean().log()).clamp_min(MIN_LOG_SIGMA)
        per_feature = 0.5 * (target - mean).pow(2) * torch.exp(-2 * log_sigma) + log_sigma + 0.5 * LOG_2PI
        return per_feature.sum(dim=1)

    def loss(self, x: Tensor, target: Tensor) -> Loss:
        """Negative ELBO (``"vae"``) or the beta-TCVAE objective, averaged over the batch.

        Terms: ``recon`` (negative log-likelihood per sample), ``kl`` (analytic KL to the
        prior per sample) and, for ``"tcvae"``, the estimates ``mi``, ``tc`` and ``dim_kl``.

        Examples
        --------
        >>> import torch
        >>> from lucidae.config import ModelConfig, check_conv_config
        >>> m = VariationalAutoEncoder(ModelConfig(model="tcvae", input_dim=8, hidden_dims=(), latent_dim=2))
        >>> x = torch.rand(16, 8).round()
        >>> sorted(m.loss(x, x).terms)
        ['dim_kl', 'kl', 'mi', 'recon', 'tc']
        """
        mu, logvar = self.posterior(x)  # (batch, latent) each
        z = self.reparameterize(mu, logvar)  # (batch, latent)
        recon = self.nll(self.decoder(z), target).mean()
        kl = kl_to_standard_normal(mu, logvar).mean()
        terms = {"recon": recon.detach(), "kl": kl.detach()}
        if self.objective == "tcvae":
            parts = tc_decomposition(z, mu, logvar, self.dataset_size or x.shape[0])
            total = (
                recon
                + self.cfg.mi_weight * parts["mi"]
                + self.cfg.beta * parts["tc"]
                + self.cfg.dim_kl_weight * parts["dim_kl"]
            )
            terms.update({k: v.detach() for k, v in parts.items()})
        else:
            total = recon + self.cfg.beta * kl
        return Loss(total, terms)

    @torch.no_grad()
    def sample_errors(self, x: Tensor) -> Tensor:
        """Per-sample mean squared error of the reconstruction from the posterior mean ``(batch,)``."""
        return (self.decode(self.encode(x)) - x).pow(2).mean(dim=1)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Decode ``n`` codes drawn from the prior ``N(0, I)``: ``(n, input_dim)``.

        Examples
        --------
        >>> from lucidae.config import ModelConfig, check_conv_config
        >>> tuple(VariationalAutoEncoder(ModelConfig(model="vae", input_dim=6, latent_dim=2)).sample(3).shape)
        (3, 6)
        """
        device = next(self.parameters()).device
        z = torch.randn(n, self.latent_dim, generator=generator).to(device)  # (n, latent)
        return self.decode(z)

    @torch.no_grad()
    def interpolate(self, a: Tensor, b: Tensor, steps: int = 8) -> Tensor:
        """Decode ``steps`` codes on the straight line between the posterior means of ``a`` and ``b``.

        Parameters
        ----------
        a, b : Tensor of shape (input_dim,) or (1, input_dim)
        steps : int
            Number of points, endpoints included (at least 2).

        Returns
        -------
        Tensor of shape (steps, input_dim)
            The first row reconstructs ``a``, the last ``b``.

        Examples
        --------
        >>> import torch
        >>> from lucidae.config import ModelConfig, check_conv_config
        >>> vae = VariationalAutoEncoder(ModelConfig(model="vae", input_dim=6, latent_dim=2)).eval()
        >>> tuple(vae.interpolate(torch.rand(6), torch.rand(6), steps=5).shape)
        (5, 6)
        """
        ends = self.encode(torch.stack([a.reshape(-1), b.reshape(-1)]))  # (2, latent)
        t = torch.linspace(0.0, 1.0, steps, device=ends.device)[:, None]  # (steps, 1)
        return self.decode((1 - t) * ends[0] + t * ends[1])  # (steps, input_dim)
