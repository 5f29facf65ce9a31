"""Sparse autoencoders (ReLU + L1, TopK, JumpReLU): overcomplete dictionaries read atom by atom."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.utils.validation import check_is_fitted

from lucidae.estimators.base import (
    BaseAutoEncoder,
)


class _SparseBase(BaseAutoEncoder):
    """Shared behaviour of the sparse-autoencoder estimators (not registered: name starts with ``_``).

    Defaults and why: no input scaling (``scaling=None``). A sparse autoencoder reads
    its input as a sum of directions; per-feature standardising or min-max scaling
    stretches some axes and so bends every direction the model is meant to find (and
    the learned atoms would no longer be comparable with directions in the original
    space). The decoder bias, started at the data's geometric median, already does the
    centring. Pass ``scaling="standard"`` for data whose features have unrelated units.
    """

    def _model_extras(self) -> dict[str, Any]:
        # The dense-only fields are unused; set them so that config.json and `lucidae info`
        # describe the model that is built (no hidden layer, linear output, ReLU code only for "sparse").
        code = "relu" if self._model_name in ("sparse", "jumprelu") else "linear"
        return {"hidden_dims": (), "activation": "linear", "latent_activation": code, "output_activation": "linear"}

    @property
    def components_(self) -> np.ndarray:
        """The learned dictionary in the data's original units: one atom per row, ``(latent_dim, n_features)``.

        Rows are the decoder columns, mapped back through the input scaling (and so of
        norm 1 only when no scaling is used).
        """
        check_is_fitted(self, "module_")
        atoms = self.module_.atoms.cpu().numpy().astype(np.float64)  # (latent, features)
        return (atoms * self.scaler_.scale[None, :]).astype(np.float32)

    def dead_fraction(self, X: Any) -> float:
        """Share of latents that are never non-zero on ``X`` (dead latents).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        float in [0, 1]

        Examples
        --------
        >>> import numpy as np
        >>> from lucidae import TopKAutoEncoder
        >>> X = np.random.default_rng(0).standard_normal((200, 8)).astype(np.float32)
        >>> sae = TopKAutoEncoder(latent_dim=16, k=2, epochs=1, verbose=0, random_state=0).fit(X)
        >>> 0.0 <= sae.dead_fraction(X) <= 1.0
        True
        """
        Z = self.transform(X)  # (n, latent)
        return float(((Z != 0).sum(axis=0) == 0).mean())


class SparseAutoEncoder(_SparseBase):
    """A ReLU sparse autoencoder with an L1 penalty (model ``"sparse"``): a learned overcomplete dictionary.

    ``z = relu(W_enc (x - b_dec) + b_enc)``, ``x_hat = W_dec z + b_dec``, trained on
    ``mse + l1_coefficient * sum_i z_i ||W_dec[:, i]||`` (Anthropic's April 2024
    recipe) with unit-norm decoder columns, the decoder bias started at the geometric
    median, and the AuxK loss reviving latents that stop firing.

    When to use it: to split any (n, d) float array, such as activations recorded from
    another network (:func:`lucidae.record.record_activations`), into many
    directions that each fire rarely, with a number of active latents that may vary per
    sample. What it trades away: the L1 penalty shrinks the active values (codes are
    biased towards zero) and the sparsity must be tuned through ``l1_coefficient``; see
    :class:`TopKAutoEncoder` to set it directly.

    Parameters
    ----------
    latent_dim : int, default=32
        Dictionary size; usually several times ``n_features`` (overcomplete).
    l1_coefficient, unit_norm_decoder, decoder_bias_init, aux_k, aux_coefficient, dead_window
        See :class:`lucidae.config.ModelConfig`.
    scaling : {"auto", "minmax", "standard"} or None, default=None
        Input scaling; none by default, see the class notes above.
    impute : {"mean", "median"} or None, default=None
        Fill missing values (NaN) with each feature's mean or median over the training
        rows; the fill is stored with the scaling (saved with the model) and applied
        whenever the model reads data. None: NaN is an error.
    epochs, batch_size, lr, lr_schedule, weight_decay, validation_fraction, patience, \
restore_best, shuffle, n_init, random_state, verbose, n_threads, device, precision
        Training settings; see :class:`lucidae.config.TrainConfig`.

    Attributes
    ----------
    module_ : lucidae.models.SAE
        The trained ``nn.Module``.
    components_ : ndarray of shape (latent_dim, n_features)
        The learned dictionary (decoder columns) in the data's units.
    history_, scaler_, n_features_in_, feature_names_, image_shape_, n_iter_
        As for :class:`AutoEncoder`.

    Examples
    --------
    >>> from lucidae import SparseAutoEncoder
    >>> from lucidae.datasets import make_sparse_dictionary
    >>> X = make_sparse_dictionary(500, n_atoms=32, n_features=16, random_state=0).X
    >>> sae = SparseAutoEncoder(latent_dim=64, epochs=2, random_state=0, verbose=0).fit(X)
    >>> sae.transform(X).shape, sae.components_.shape
    ((500, 64), (64, 16))
    """

    _model_name = "sparse"

    def __init__(
        self,
        *,
        latent_dim: int = 32,
        l1_coefficient: float = 0.01,
        unit_norm_decoder: bool = True,
        decoder_bias_init: str = "median",
        aux_k: int = 32,
        aux_coefficient: float = 0.03125,
        dead_window: int = 10000,
        scaling: str | None = None,
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
        self.latent_dim = latent_dim
        self.l1_coefficient = l1_coefficient
        self.unit_norm_decoder = unit_norm_decoder
        self.decoder_bias_init = decoder_bias_init
        self.aux_k = aux_k
        self.aux_coefficient = aux_coefficient
        self.dead_window = dead_window
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


class TopKAutoEncoder(_SparseBase):
    """A TopK sparse autoencoder (model ``"topk"``): exactly ``k`` active latents per sample.

    ``z = topk(W_enc (x - b_dec) + b_enc)``, ``x_hat = W_dec z + b_dec`` (Gao et al.
    2024, "Scaling and evaluating sparse autoencoders"), with unit-norm decoder columns,
    the decoder bias started at the geometric median, and the AuxK loss in which the
    ``aux_k`` strongest dead latents model the residual, which revives them.

    When to use it: the default sparse autoencoder. The sparsity (L0) is set directly
    by ``k`` instead of through an L1 coefficient, and codes are not shrunk towards
    zero. What it trades away: every sample uses exactly ``k`` latents, even one that
    one latent would explain; the k winning values are kept as they are, so a few can
    be negative.

    Parameters
    ----------
    latent_dim : int, default=32
        Dictionary size; usually several times ``n_features`` (overcomplete).
    k : int, default=8
        Active latents per sample; at most ``latent_dim``.
    unit_norm_decoder, decoder_bias_init, aux_k, aux_coefficient, dead_window
        See :class:`lucidae.config.ModelConfig`.
    scaling : {"auto", "minmax", "standard"} or None, default=None
        Input scaling; none by default (see :class:`SparseAutoEncoder`).
    impute : {"mean", "median"} or None, default=None
        Fill missing values (NaN) with each feature's mean or median over the training
        rows; the fill is stored with the scaling (saved with the model) and applied
        whenever the model reads data. None: NaN is an error.
    epochs, batch_size, lr, lr_schedule, weight_decay, validation_fraction, patience, \
restore_best, shuffle, n_init, random_state, verbose, n_threads, device, precision
        Training settings; see :class:`lucidae.config.TrainConfig`.

    Attributes
    ----------
    module_ : lucidae.models.SAE
        The trained ``nn.Module``.
    components_ : ndarray of shape (latent_dim, n_features)
        The learned dictionary (decoder columns) in the data's units.
    history_, scaler_, n_features_in_, feature_names_, image_shape_, n_iter_
        As for :class:`AutoEncoder`.

    Examples
    --------
    >>> from lucidae import TopKAutoEncoder
    >>> from lucidae.datasets import make_sparse_dictionary
    >>> X = make_sparse_dictionary(500, n_atoms=32, n_features=16, random_state=0).X
    >>> sae = TopKAutoEncoder(latent_dim=64, k=4, epochs=2, random_state=0, verbose=0).fit(X)
    >>> (sae.transform(X) != 0).sum(axis=1)[:5]
    array([4, 4, 4, 4, 4])
    """

    _model_name = "topk"

    def __init__(
        self,
        *,
        latent_dim: int = 32,
        k: int = 8,
        unit_norm_decoder: bool = True,
        decoder_bias_init: str = "median",
        aux_k: int = 32,
        aux_coefficient: float = 0.03125,
        dead_window: int = 10000,
        scaling: str | None = None,
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
        self.latent_dim = latent_dim
        self.k = k
        self.unit_norm_decoder = unit_norm_decoder
        self.decoder_bias_init = decoder_bias_init
        self.aux_k = aux_k
        self.aux_coefficient = aux_coefficient
        self.dead_window = dead_window
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


class JumpReLUAutoEncoder(_SparseBase):
    """A JumpReLU sparse autoencoder (model ``"jumprelu"``): each latent fires only above its own threshold.

    ``z = relu(pre) * (pre > threshold)``, ``pre = W_enc (x - b_dec) + b_enc``,
    ``x_hat = W_dec z + b_dec`` (Rajamanoharan et al. 2024; the Gemma Scope SAEs), with the
    thresholds in ``module_.threshold``.

    When to use it: to run and study JumpReLU SAEs trained elsewhere, loaded with
    :func:`lucidae.interop.from_saelens`. What it trades away: this estimator is meant for
    loading and inference. lucidae does not learn the thresholds (the paper's
    straight-through estimators are out of scope here): ``fit`` keeps them fixed (zero for
    a fresh model, which makes it the ReLU SAE of :class:`SparseAutoEncoder`) and trains the
    weights with the norm-weighted L1 loss. To train a sparse autoencoder from scratch,
    use :class:`TopKAutoEncoder` or :class:`SparseAutoEncoder`.

    Parameters
    ----------
    latent_dim : int, default=32
        Dictionary size.
    l1_coefficient, unit_norm_decoder, decoder_bias_init, aux_k, aux_coefficient, dead_window
        See :class:`lucidae.config.ModelConfig`.
    scaling : {"auto", "minmax", "standard"} or None, default=None
        Input scaling; none by default (see :class:`SparseAutoEncoder`).
    impute : {"mean", "median"} or None, default=None
        Fill missing values (NaN) with each feature's mean or median over the training
        rows; the fill is stored with the scaling (saved with the model) and applied
        whenever the model reads data. None: NaN is an error.
    epochs, batch_size, lr, lr_schedule, weight_decay, validation_fraction, patience, \
restore_best, shuffle, n_init, random_state, verbose, n_threads, device, precision
        Training settings; see :class:`lucidae.config.TrainConfig`.

    Attributes
    ----------
    module_ : lucidae.models.JumpReLUSAE
        The ``nn.Module``; ``module_.threshold`` holds the per-latent thresholds.
    components_ : ndarray of shape (latent_dim, n_features)
        The dictionary (decoder columns) in the data's units.
    history_, scaler_, n_features_in_, feature_names_, image_shape_, n_iter_
        As for :class:`AutoEncoder`.

    Examples
    --------
    >>> import numpy as np
    >>> from lucidae import JumpReLUAutoEncoder
    >>> X = np.random.default_rng(0).standard_normal((100, 8)).astype(np.float32)
    >>> sae = JumpReLUAutoEncoder(latent_dim=16, epochs=1, verbose=0, random_state=0).fit(X)
    >>> _ = sae.module_.threshold.fill_(1e9)  # no pre-activation clears it: every latent is silent
    >>> float(np.abs(sae.transform(X)).max())
    0.0
    """

    _model_name = "jumprelu"

    def __init__(
        self,
        *,
        latent_dim: int = 32,
        l1_coefficient: float = 0.01,
        unit_norm_decoder: bool = True,
        decoder_bias_init: str = "median",
        aux_k: int = 32,
        aux_coefficient: float = 0.03125,
        dead_window: int = 10000,
        scaling: str | None = None,
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
        self.latent_dim = latent_dim
        self.l1_coefficient = l1_coefficient
        self.unit_norm_decoder = unit_norm_decoder
        self.decoder_bias_init = decoder_bias_init
        self.aux_k = aux_k
        self.aux_coefficient = aux_coefficient
        self.dead_window = dead_window
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
