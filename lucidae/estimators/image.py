"""Estimators whose module may read images: the convolutional autoencoder, the VAE (and beta-VAE) and beta-TCVAE."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from lucidae.config import ModelConfig
from lucidae.errors import DataError
from lucidae.estimators.base import (
    COLLAPSE_CHECK_ROWS,
    DEFAULT_BETA,
    DEFAULT_BETA_FEATURES,
    DEFAULT_TC_BETA,
    BaseAutoEncoder,
)
from lucidae.metrics import COLLAPSE_VARIANCE, collapsed_latents
from lucidae.train import resolve_seed


class _ImageEstimator(BaseAutoEncoder):
    """Shared by the estimators whose module may read images: ``image_shape`` from fit or the parameter."""

    def fit(
        self,
        X: Any,
        y: Any = None,
        *,
        feature_names: list[str] | None = None,
        image_shape: tuple[int, ...] | None = None,
        **fit_params: Any,
    ) -> BaseAutoEncoder:
        """Fit the scaling and train on ``X``; ``image_shape`` defaults to the ``image_shape`` parameter.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data; each row a flattened image for the convolutional networks.
        y : ignored
        feature_names : list of str, optional
            Names of the columns.
        image_shape : tuple of int, optional
            ``(height, width)`` or ``(channels, height, width)`` of one row. Overrides the
            ``image_shape`` parameter; a :class:`~lucidae.datasets.Dataset` carries it.
        **fit_params
            ``checkpoint_dir``, ``checkpoint_every``, ``resume``: see :meth:`BaseAutoEncoder.fit`.

        Returns
        -------
        self

        Examples
        --------
        >>> from lucidae.datasets import make_shapes
        >>> ds = make_shapes(64, image_size=16, random_state=0)
        >>> est = ConvAutoEncoder(conv_channels=(4,), latent_dim=2, epochs=1, verbose=0)
        >>> est.fit(ds.X, image_shape=ds.image_shape).model_config_.image_shape
        (1, 16, 16)
        """
        if image_shape is None and getattr(self, "image_shape", ()):
            image_shape = tuple(self.image_shape)
        return super().fit(X, y, feature_names=feature_names, image_shape=image_shape, **fit_params)

    def _model_extras(self) -> dict[str, Any]:
        shape = getattr(self, "image_shape_", None)  # the fitted shape, which the parameter only defaults
        return {"image_shape": tuple(shape) if shape else ()}


class ConvAutoEncoder(_ImageEstimator):
    """Convolutional autoencoder for images, as a scikit-learn transformer.

    Rows are flattened images; the module reshapes them to ``(C, H, W)`` with
    ``image_shape`` (given to :meth:`fit`, taken from the dataset by ``lucidae train``, or
    set as a parameter). Each of the ``conv_channels`` layers is a 4x4 convolution with
    stride 2, halving height and width; ``hidden_dims`` are dense layers between the
    last convolution and the code. The decoder mirrors the encoder.

    When to use it: images beyond a few hundred pixels, where a dense first layer would
    need a weight per pixel per unit. What it trades away: a latent no longer has one
    decoder column to read; explain it by decoding and traversals instead.

    Parameters
    ----------
    image_shape : tuple of int, default=()
        ``(channels, height, width)`` or ``(height, width)`` of one row, when :meth:`fit` is
        not given one.
    conv_channels : tuple of int, optional
        Output channels of each stride-2 convolution. Unset: as many of ``(32, 32, 64, 64)``
        as keep the feature maps at least 4x4: ``(32,)`` for 8x8 digits, ``(32, 32)`` for
        28x28 MNIST, all four from 64x64.
    hidden_dims : tuple of int, default=(128,)
        Dense layers between the convolutions and the code.
    latent_dim, activation, latent_activation, output_activation, scaling, impute
        As for :class:`AutoEncoder`.
    epochs, batch_size, lr, lr_schedule, weight_decay, validation_fraction, patience, \
restore_best, shuffle, n_init, random_state, verbose, n_threads, device, precision
        Training settings; see :class:`lucidae.config.TrainConfig`.

    Attributes
    ----------
    module_ : lucidae.models.ConvolutionalAutoEncoder
        The trained ``nn.Module``.
    image_shape_ : tuple of int
        The image shape the module reads.
    history_, scaler_, n_features_in_, feature_names_, n_iter_
        As for :class:`AutoEncoder`.

    Examples
    --------
    >>> from lucidae.datasets import make_shapes
    >>> ds = make_shapes(200, image_size=16, random_state=0)
    >>> est = ConvAutoEncoder(conv_channels=(8, 8), latent_dim=4, epochs=2, verbose=0, random_state=0)
    >>> est.fit(ds.X, image_shape=ds.image_shape).transform(ds.X[:3]).shape
    (3, 4)
    """

    _model_name = "conv"

    def __init__(
        self,
        *,
        image_shape: tuple[int, ...] = (),
        conv_channels: tuple[int, ...] | None = None,
        hidden_dims: tuple[int, ...] = (128,),
        latent_dim: int = 32,
        activation: str = "relu",
        latent_activation: str = "relu",
        output_activation: str = "sigmoid",
        scaling: str | None = "auto",
        impute: str | None = None,
        epochs: int | None = None,
        batch_size: int = 128,
        lr: float = 3e-3,
        lr_schedule: str = "cosine",
        weight_decay: float = 0.0,
        validation_fraction: float = 0.1,
        patience: int = 10,
        restore_best: bool = True,
        shuffle: bool = True,
        n_init: int = 1,
        warm_start: bool = False,
        random_state: int | np.random.RandomState | np.random.Generator | None = None,
        verbose: int | bool | str = 1,
        n_threads: int | None = None,
        device: str = "cpu",
        precision: str = "fp32",
    ):
        self.image_shape = image_shape
        self.conv_channels = conv_channels
        self.hidden_dims = hidden_dims
        self.latent_dim = latent_dim
        self.activation = activation
        self.latent_activation = latent_activation
        self.output_activation = output_activation
        self.scaling = scaling
        self.impute = impute
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.lr_schedule = lr_schedule
        self.weight_decay = weight_decay
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.restore_best = restore_best
        self.shuffle = shuffle
        self.n_init = n_init
        self.warm_start = warm_start
        self.random_state = random_state
        self.verbose = verbose
        self.n_threads = n_threads
        self.device = device
        self.precision = precision


class VAE(_ImageEstimator):
    """Variational autoencoder (the plain VAE; beta-VAE with ``beta > 1``) as a scikit-learn transformer.

    Each sample gets a Gaussian posterior over the code; :meth:`transform` returns its
    mean. Training minimises ``-log p(x|z) + beta * KL(q(z|x) || N(0, I))`` per sample
    (see :mod:`lucidae.models.vae`). ``beta=1`` is the classic VAE; larger values give
    beta-VAE (Higgins et al. 2017). For disentangling, :class:`BetaTCVAE` penalises only
    the total correlation between latents and usually does better.

    When to use it: for a smooth latent space you can sample from (:meth:`sample`) and
    walk through (:meth:`interpolate`), or for latents that follow independent factors.
    What it trades away: blurrier reconstructions than :class:`AutoEncoder` with the
    same code size (the KL limits how much the code carries), noisier training, and
    latents the KL switches off carry nothing.

    Defaults and why (measured on ``make_shapes`` 16x16 images, MIG of the posterior
    means; ``docs/readme/vae.md``, ``benchmarks/disentanglement.py``): two dense layers of
    256, 10 latents and a peak rate of 1e-3. With the classic model's one layer of 128,
    32 latents and 3e-3 the VAEs mostly stayed below 0.06 MIG even after 10,000 steps;
    with these they separate scale and position within minutes on a CPU.

    Parameters
    ----------
    beta : float, default=1.0
        Weight of the KL term: 1 is the plain VAE, above 1 a beta-VAE (more independent,
        fewer active latents). For :class:`BetaTCVAE`, the weight of the total correlation
        (default 6). With 6 on the bundled 8x8 digits every latent of a VAE switched off
        (held-out FVU 1.00); with 1, nine of ten stay active (FVU about 0.45).
    likelihood : {"auto", "bernoulli", "gaussian"}, default="auto"
        Decoder distribution: Bernoulli for binary data (black-and-white images), Gaussian
        with a shared variance set to its maximum-likelihood value otherwise (grey levels,
        tables). ``"auto"`` picks Bernoulli when every scaled training value (of the first
        4,096 rows) is 0 or 1, else Gaussian; ``model_config_.likelihood`` says which. On
        the grey-level digits the Gaussian kept all 10 latents active at held-out FVU 0.15
        where the Bernoulli kept 4-10 at 0.37-0.49, depending on how long it trained.
    architecture : {"dense", "conv"}, default="dense"
        MLP encoder/decoder through ``hidden_dims``, or convolutions (``conv_channels``,
        then ``hidden_dims``) for images.
    image_shape, conv_channels
        As for :class:`ConvAutoEncoder`; used with ``architecture="conv"``.
    mi_weight : float, default=1.0
        :class:`BetaTCVAE` only: weight (alpha) of the index-code mutual-information term.
    dim_kl_weight : float, default=1.0 (0.05 for :class:`BetaTCVAE`)
        :class:`BetaTCVAE` only: weight (gamma) of the dimension-wise KL term.
    hidden_dims : tuple of int, default=(256, 256)
        Widths of the encoder's dense layers; the decoder mirrors them.
    latent_dim : int, default=10
        Size of the code; latents the data does not need are switched off by the KL.
    activation, output_activation, scaling, impute
        As for :class:`AutoEncoder`; ``output_activation`` gives the Gaussian mean.
    lr : float, default=1e-3
        Peak Adam learning rate (cosine decay).
    epochs, batch_size, lr_schedule, weight_decay, validation_fraction, patience, \
restore_best, shuffle, n_init, random_state, verbose, n_threads, device, precision
        Training settings; see :class:`lucidae.config.TrainConfig`.

    Attributes
    ----------
    module_ : lucidae.models.VariationalAutoEncoder
        The trained ``nn.Module``.
    history_ : History
        Per-epoch losses, with the terms ``recon`` and ``kl``.
    scaler_, n_features_in_, feature_names_, image_shape_, n_iter_
        As for :class:`AutoEncoder`.

    Examples
    --------
    >>> from lucidae.datasets import load_digits
    >>> X = load_digits().X
    >>> vae = VAE(latent_dim=4, hidden_dims=(32,), beta=1.0, lr=1e-2, epochs=10, verbose=0, random_state=0).fit(X)
    >>> vae.transform(X[:3]).shape, vae.sample(5, random_state=0).shape
    ((3, 4), (5, 64))
    """

    _model_name = "vae"

    def __init__(
        self,
        *,
        beta: float = DEFAULT_BETA,
        likelihood: str = "auto",
        architecture: str = "dense",
        image_shape: tuple[int, ...] = (),
        conv_channels: tuple[int, ...] | None = None,
        mi_weight: float = 1.0,
        dim_kl_weight: float = 1.0,
        hidden_dims: tuple[int, ...] = (256, 256),
        latent_dim: int = 10,
        activation: str = "relu",
        output_activation: str = "sigmoid",
        scaling: str | None = "auto",
        impute: str | None = None,
        epochs: int | None = None,
        batch_size: int = 128,
        lr: float = 1e-3,
        lr_schedule: str = "cosine",
        weight_decay: float = 0.0,
        validation_fraction: float = 0.1,
        patience: int = 10,
        restore_best: bool = True,
        shuffle: bool = True,
        n_init: int = 1,
        warm_start: bool = False,
        random_state: int | np.random.RandomState | np.random.Generator | None = None,
        verbose: int | bool | str = 1,
        n_threads: int | None = None,
        device: str = "cpu",
        precision: str = "fp32",
    ):
        self.beta = beta
        self.likelihood = likelihood
        self.architecture = architecture
        self.image_shape = image_shape
        self.conv_channels = conv_channels
        self.mi_weight = mi_weight
        self.dim_kl_weight = dim_kl_weight
        self.hidden_dims = hidden_dims
        self.latent_dim = latent_dim
        self.activation = activation
        self.output_activation = output_activation
        self.scaling = scaling
        self.impute = impute
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.lr_schedule = lr_schedule
        self.weight_decay = weight_decay
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.restore_best = restore_best
        self.shuffle = shuffle
        self.n_init = n_init
        self.warm_start = warm_start
        self.random_state = random_state
        self.verbose = verbose
        self.n_threads = n_threads
        self.device = device
        self.precision = precision

    def _chosen_from_data(self, cfg: ModelConfig, Xs: Any) -> dict[str, Any]:
        if cfg.likelihood != "auto":
            return {}
        rows = np.asarray(Xs[:COLLAPSE_CHECK_ROWS])  # (rows, features), scaled
        binary = cfg.output_activation == "sigmoid" and bool(((rows == 0) | (rows == 1)).all())
        return {"likelihood": "bernoulli" if binary else "gaussian"}

    def _check_trained(self, Xs: np.ndarray) -> None:
        rows = np.random.default_rng(0).permutation(len(Xs))[:COLLAPSE_CHECK_ROWS]
        rows.sort()
        Z = self.run_module(
            lambda xb: self.module_.encode(xb), np.asarray(Xs[rows], dtype=np.float32)
        )  # (rows, latent)
        if len(Z) >= 2 and len(collapsed_latents(Z)) == Z.shape[1]:
            # the reconstruction term is a sum over features, the KL one is not: the beta that balances
            # them scales with the feature count (Higgins et al. 2017's normalised beta)
            scaled = max(DEFAULT_BETA, DEFAULT_TC_BETA * self.n_features_in_ / DEFAULT_BETA_FEATURES)
            hint = (
                f" beta={DEFAULT_TC_BETA:g} (BetaTCVAE's default) was chosen on {DEFAULT_BETA_FEATURES}-pixel "
                f"images; for {self.n_features_in_} features that suggests about beta={scaled:.2g}."
                if scaled < 0.75 * self.beta
                else ""
            )
            warnings.warn(
                f"Every one of the {Z.shape[1]} latents collapsed to the prior: their posterior means vary by "
                f"less than {COLLAPSE_VARIANCE:g} (variance) over {len(Z)} training samples, so the code carries "
                "nothing and every reconstruction is close to the average sample. The KL term outweighs the "
                "reconstruction here: "
                + (f"lower beta (now {self.beta:g}; 1 is the plain VAE) or " if self.beta > DEFAULT_BETA else "")
                + "train longer (set_params(warm_start=True, epochs=...).fit(X) trains this model on)."
                + hint,
                UserWarning,
                stacklevel=5,  # points at the caller of fit (through _ImageEstimator.fit and BaseAutoEncoder.fit)
            )

    def sample(self, n: int = 1, *, random_state: int | None = None) -> np.ndarray:
        """Draw ``n`` new samples: decode codes from the prior ``N(0, I)``.

        Parameters
        ----------
        n : int, default=1
            Number of samples.
        random_state : int, optional
            Seed for the codes; the same seed gives the same samples.

        Returns
        -------
        ndarray of shape (n, n_features), float32
            Decoder means (Bernoulli probabilities), in the data's original units.

        Examples
        --------
        >>> from lucidae.datasets import load_digits
        >>> vae = VAE(latent_dim=2, hidden_dims=(32,), beta=1.0, lr=1e-2, epochs=5, verbose=0).fit(load_digits().X)
        >>> vae.sample(3, random_state=0).shape
        (3, 64)
        """
        check_is_fitted(self, "module_")
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise DataError(f"n={n!r} is invalid: expected a positive number of samples.")
        generator = torch.Generator().manual_seed(resolve_seed(random_state))
        self.module_.eval()
        out = self.module_.sample(int(n), generator=generator).float().cpu().numpy()
        return self.scaler_.inverse_transform(out)

    def interpolate(self, a: Any, b: Any, steps: int = 8) -> np.ndarray:
        """Decode ``steps`` points on the line between the codes (posterior means) of ``a`` and ``b``.

        Parameters
        ----------
        a, b : array-like of shape (n_features,) or (1, n_features)
            Two samples, in the data's original units.
        steps : int, default=8
            Number of points, endpoints included (at least 2).

        Returns
        -------
        ndarray of shape (steps, n_features), float32
            The first row is the reconstruction of ``a``, the last that of ``b``.

        Examples
        --------
        >>> from lucidae.datasets import load_digits
        >>> X = load_digits().X
        >>> vae = VAE(latent_dim=2, hidden_dims=(32,), beta=1.0, lr=1e-2, epochs=5, verbose=0).fit(X)
        >>> vae.interpolate(X[0], X[1], steps=5).shape
        (5, 64)
        """
        check_is_fitted(self, "module_")
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 2:
            raise DataError(f"steps={steps!r} is invalid: expected an integer >= 2 (the endpoints are included).")
        rows = [np.asarray(v).reshape(1, -1) for v in (a, b)]
        ends = self.scale_inputs(np.concatenate(rows, axis=0))  # (2, features), scaled
        ends_t = torch.from_numpy(np.ascontiguousarray(ends)).to(next(self.module_.parameters()).device)
        self.module_.eval()
        out = self.module_.interpolate(ends_t[0], ends_t[1], int(steps)).float().cpu().numpy()
        return self.scaler_.inverse_transform(out)


class BetaTCVAE(VAE):
    """beta-TCVAE (Chen et al. 2018): a VAE that penalises the total correlation of its code.

    The KL term of the VAE splits into index-code mutual information, total correlation
    (TC, the dependence between latents) and dimension-wise KL. This model weights them
    ``mi_weight``, ``beta`` and ``dim_kl_weight``: only the TC is penalised hard, so
    latents become independent without the information loss of a large beta-VAE
    ``beta``. It is lucidae's most disentangling model (MIG on dSprites-style shapes in
    ``docs/readme/vae.md``). Parameters, attributes and methods are those of :class:`VAE`,
    and so are the defaults but two: ``n_init=3`` (the best of three initialisations by
    validation loss, three times the training time) and ``dim_kl_weight=0.05`` instead of
    Chen et al.'s 1. A
    dimension-wise KL at full weight pulls every latent's marginal towards N(0, 1), and
    a rotation of independent Gaussian latents is still independent, so the total
    correlation cannot tell position x and y from mixtures of them; a light pull
    probably leaves each marginal closer to its factor's own (non-Gaussian)
    distribution, which singles out the factors, much as non-Gaussianity does for ICA
    (our reading of the measurements, not a proof). With ``dim_kl_weight=0.05`` and one
    initialisation, on 20,000 16x16 ``make_shapes`` images, it separated scale, x and y on
    each of seeds 0-3 (MIG 0.41-0.43 over the four factors Chen et al. score, 0.34-0.35
    over all five) in about 1.5 minutes each on one CPU thread (``n_init=3``: about 5
    minutes; figures in ``docs/readme/vae.md``); with ``dim_kl_weight=1`` two of those four
    seeds folded position or left scale mixed (0.17 and 0.22 over the four factors). One
    initialisation is not reliable beyond them: on seeds 4-7 it reached 0.4 once, folding
    x and y on the other three; those folded runs have the higher validation loss, so
    ``n_init=3`` keeps a separated one: 0.404-0.428 on every seed measured (0-4, 6, 7).

    When to use it: when latents should each follow one factor of variation. What it
    trades away: as :class:`VAE`, plus a noisier objective (the TC is estimated on each
    minibatch, so small batches estimate it poorly; keep ``batch_size`` >= 64), and with
    the light dimension-wise KL the codes' marginals are further from the N(0, 1) prior
    that :meth:`sample` draws from; pass ``dim_kl_weight=1.0`` when sampling matters
    more than separated factors.

    Examples
    --------
    >>> from lucidae.datasets import load_digits
    >>> X = load_digits().X
    >>> tc = BetaTCVAE(latent_dim=4, hidden_dims=(32,), lr=1e-2, epochs=10, n_init=1, verbose=0, random_state=0).fit(X)
    >>> sorted(k for k in tc.history_.records[-1] if k in ("kl", "mi", "tc", "dim_kl"))
    ['dim_kl', 'kl', 'mi', 'tc']
    """

    _model_name = "tcvae"

    def __init__(
        self,
        *,
        beta: float = DEFAULT_TC_BETA,
        likelihood: str = "auto",
        architecture: str = "dense",
        image_shape: tuple[int, ...] = (),
        conv_channels: tuple[int, ...] | None = None,
        mi_weight: float = 1.0,
        dim_kl_weight: float = 0.05,
        hidden_dims: tuple[int, ...] = (256, 256),
        latent_dim: int = 10,
        activation: str = "relu",
        output_activation: str = "sigmoid",
        scaling: str | None = "auto",
        impute: str | None = None,
        epochs: int | None = None,
        batch_size: int = 128,
        lr: float = 1e-3,
        lr_schedule: str = "cosine",
        weight_decay: float = 0.0,
        validation_fraction: float = 0.1,
        patience: int = 10,
        restore_best: bool = True,
        shuffle: bool = True,
        n_init: int = 3,
        warm_start: bool = False,
        random_state: int | np.random.RandomState | np.random.Generator | None = None,
        verbose: int | bool | str = 1,
        n_threads: int | None = None,
        device: str = "cpu",
        precision: str = "fp32",
    ):
        super().__init__(
            beta=beta,
            likelihood=likelihood,
            architecture=architecture,
            image_shape=image_shape,
            conv_channels=conv_channels,
            mi_weight=mi_weight,
            dim_kl_weight=dim_kl_weight,
            hidden_dims=hidden_dims,
            latent_dim=latent_dim,
            activation=activation,
            output_activation=output_activation,
            scaling=scaling,
            impute=impute,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            lr_schedule=lr_schedule,
            weight_decay=weight_decay,
            validation_fraction=validation_fraction,
            patience=patience,
            restore_best=restore_best,
            shuffle=shuffle,
            n_init=n_init,
            warm_start=warm_start,
            random_state=random_state,
            verbose=verbose,
            n_threads=n_threads,
            device=device,
            precision=precision,
        )
