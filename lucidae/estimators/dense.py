"""The dense estimators: the classic autoencoder and the linear one (PCA's subspace, readable weights)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from lucidae.estimators.base import (
    BaseAutoEncoder,
)


class AutoEncoder(BaseAutoEncoder):
    """The classic dense autoencoder as a scikit-learn transformer.

    ``n_features -> hidden_dims -> latent_dim -> reversed(hidden_dims) -> n_features``,
    trained with Adam on the mean squared reconstruction error in mini-batches.

    Defaults and why: the architecture is the classic tutorial's (hidden 128, code 32,
    ReLU, sigmoid output). Training differs from the tutorial on purpose. Its 10 epochs
    at a constant 1e-3 in batches of 256 underfit: on 30,000 28x28 digit images the
    held-out FVU is 0.097 against PCA-32's 0.074. lucidae trains for a budget of about
    5,000 optimiser steps (``epochs=None``: 20 to 500 epochs, so small datasets are not
    under-trained and large ones not over-trained) in batches of 128 at a peak rate of
    3e-3 with cosine decay, keeps 10% aside for early stopping, and starts from a
    data-dependent initialisation that keeps ReLU units alive. That reaches 0.061 on the
    same images (beating PCA), and on the 1,797 8x8 digits beats PCA at code sizes 2 to
    16 and ties it at 32 (0.037, where PCA keeps 32 of 64 dimensions). Figures from
    ``benchmarks/defaults_evidence.py`` and ``docs/make_readme_figures.py``.

    Parameters
    ----------
    hidden_dims : tuple of int, default=(128,)
        Widths of the encoder's hidden layers; the decoder mirrors them.
    decoder_hidden_dims : tuple of int or None, default=None
        Widths of the decoder's hidden layers from the code outwards, where they should not
        mirror ``hidden_dims`` (:func:`lucidae.prune.prune` sets it when it removes dead
        units from one half); not with ``tied``.
    latent_dim : int, default=32
        Size of the code.
    activation : str, default="relu"
        Hidden-layer activation; one of :data:`lucidae.config.ACTIVATIONS`.
    latent_activation : str, default="relu"
        Activation of the code; ``"linear"`` for an unconstrained code.
    output_activation : str, default="sigmoid"
        Activation of the reconstruction; a sigmoid needs data scaled to [0, 1].
    tied : bool, default=False
        Decoder weights are the encoder's transposed: half the weights, and each latent
        reads and writes along the same direction (costs some fidelity).
    encoder_l1, encoder_l2, decoder_l1, decoder_l2 : float, default=0.0
        L1 (``c * sum|w|``) and L2 (``c * sum w^2``) penalties on the weights, not the
        biases, of each half. L1 drives weights towards zero: sparser, easier
        to read connections at some cost in reconstruction (:mod:`lucidae.prune` then
        removes them).
    latent_l1 : float, default=0.0
        Activation sparsity: ``latent_l1 * mean(sum|z|)`` added to the loss, so fewer
        latents are active per sample (see ``SparseAutoEncoder``/``TopKAutoEncoder`` for
        the dictionary-learning recipes).
    noise : {"none", "gaussian", "mask"}, default="none"
        Denoising autoencoder: corrupt the inputs while training (targets stay clean).
    noise_level : float, default=0.1
        Standard deviation (``"gaussian"``, scaled space) or drop probability (``"mask"``).
    scaling : {"auto", "minmax", "standard"} or None, default="auto"
        How inputs are scaled before training (stored, and undone on output). ``"auto"``
        maps uint8 images to [0, 1] and keeps data already in [0, 1] (sigmoid output);
        anything else is a table: standardised, and the default sigmoid output becomes
        linear (``model_config_.output_activation`` says which the model has).
    impute : {"mean", "median"} or None, default=None
        Fill missing values (NaN) with each feature's mean or median over the training
        rows; the fill is stored with the scaling (saved with the model) and applied
        whenever the model reads data. None: NaN is an error.
    epochs, batch_size, lr, lr_schedule, weight_decay, validation_fraction, patience, \
restore_best, shuffle, n_init, device, precision
        Training settings; see :class:`lucidae.config.TrainConfig`.
    random_state : int, numpy.random.RandomState, numpy.random.Generator or None, default=None
        As in scikit-learn (``check_random_state``): an int is the seed (same seed, same model
        on CPU); a RandomState or Generator gives one seed per fit; None draws one from
        NumPy's global generator. The seed used is kept in ``seed_``.
    verbose : "auto", bool or int, default=1
        Progress while fitting. 1 (the same as ``"auto"``): a bar where someone is watching,
        a terminal or a Jupyter notebook (rich's bar with ipywidgets, else a text line),
        and nothing when the output goes to a file, a pipe or a test's capture. ``True``
        (2): progress wherever the output goes, one line per epoch on stderr besides the
        bar. ``False`` (0): silent.
    n_threads : int or None, default=None
        CPU threads torch may use during ``fit`` (``torch.set_num_threads``, restored
        afterwards); None leaves torch's own setting.
    warm_start : bool, default=False
        As in scikit-learn: when fitted already, ``fit`` trains the fitted model on for
        ``epochs`` more instead of starting afresh (the scaling stays as fitted, the
        optimiser starts anew, ``history_`` and ``n_iter_`` continue).

    Attributes
    ----------
    module_ : DenseAutoEncoder
        The trained ``nn.Module``.
    history_ : History
        Per-epoch training (and validation) losses.
    scaler_ : Scaler
        The fitted input scaling.
    n_features_in_ : int
        Number of input features.
    feature_names_ : list of str
        Names of the input features (given, from a DataFrame, or ``x0, x1, ...``).
    image_shape_ : tuple of int or None
        Shape of one sample as an image, when given.
    n_iter_ : int
        Epochs actually run.
    init_scores_ : list of float
        With ``n_init`` > 1, each initialisation's score (lowest validation loss, else last
        training loss); the kept one, ``best_init_``, has the lowest.

    Examples
    --------
    >>> from lucidae import AutoEncoder
    >>> from lucidae.datasets import load_digits
    >>> X = load_digits().X
    >>> ae = AutoEncoder(hidden_dims=(128,), latent_dim=32, epochs=3, random_state=0, verbose=0)
    >>> Z = ae.fit(X).transform(X)
    >>> Z.shape
    (1797, 32)
    """

    _model_name = "dense"

    def __init__(
        self,
        *,
        hidden_dims: tuple[int, ...] = (128,),
        decoder_hidden_dims: tuple[int, ...] | None = None,
        latent_dim: int = 32,
        activation: str = "relu",
        latent_activation: str = "relu",
        output_activation: str = "sigmoid",
        tied: bool = False,
        encoder_l1: float = 0.0,
        encoder_l2: float = 0.0,
        decoder_l1: float = 0.0,
        decoder_l2: float = 0.0,
        latent_l1: float = 0.0,
        noise: str = "none",
        noise_level: float = 0.1,
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
        self.hidden_dims = hidden_dims
        self.decoder_hidden_dims = decoder_hidden_dims
        self.latent_dim = latent_dim
        self.activation = activation
        self.latent_activation = latent_activation
        self.output_activation = output_activation
        self.tied = tied
        self.encoder_l1 = encoder_l1
        self.encoder_l2 = encoder_l2
        self.decoder_l1 = decoder_l1
        self.decoder_l2 = decoder_l2
        self.latent_l1 = latent_l1
        self.noise = noise
        self.noise_level = noise_level
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


class LinearAutoEncoder(BaseAutoEncoder):
    """Linear autoencoder (PCA by gradient descent) as a scikit-learn transformer.

    ``z = W_e (x - mean) + b_e`` and ``x_hat = W_d z + b_d + mean``: no hidden layer and
    no nonlinearity. Trained to convergence its decoder's columns span the subspace of
    the first ``latent_dim`` principal components; :meth:`align_to_principal_axes` then
    rotates the code onto the ordered, decorrelated components themselves.

    When to use it: as the most readable model and the baseline every nonlinear model
    must beat. Each latent is a weighted sum of the inputs (one row of ``W_e``) and
    writes one direction (``components_``). What it trades away: no curved structure,
    so a nonlinear model reconstructs better at the same code size, and training is
    slower than an exact PCA. Combine with ``tied``, L1/L2 and ``noise`` as for
    :class:`AutoEncoder`.

    Defaults and why (measured on scikit-learn's digits, 8 latents, against PCA; see
    ``docs/readme/levers-dense.md``): convergence to the principal subspace is limited
    by the gap between the last kept and the first dropped eigenvalue, and Adam's
    mini-batch noise stalls it degrees short (2 to 7 degrees with batches of 128).
    Large batches (2048: all of a small dataset, so no gradient noise) at a peak rate
    of 3e-2 with cosine decay, from the module's balanced orthogonal start, get every
    principal angle far below 1 degree. No validation split by default: like PCA it
    fits all the data (a 10% split alone moves the subspace by about 4 degrees), and
    early stopping on a held-out loss stops a slowly rotating subspace too early. A
    dataset that fits in one batch gets only 500 steps by default; raise ``epochs``
    there for a closer match (on iris, 1500 take the angles from 0.1-0.7 to 0.001 degree).

    Parameters
    ----------
    latent_dim : int, default=32
        Size of the code (number of components).
    tied : bool, default=False
        Decoder weight is the encoder's transposed.
    encoder_l1, encoder_l2, decoder_l1, decoder_l2 : float, default=0.0
        Weight penalties; see :class:`lucidae.config.ModelConfig`.
    noise : {"none", "gaussian", "mask"}, default="none"
        Input corruption while training (denoising).
    noise_level : float, default=0.1
        Its standard deviation or drop probability.
    scaling : {"auto", "minmax", "standard"} or None, default="auto"
        As for :class:`AutoEncoder`; with the linear output, ``"auto"`` keeps data in
        [0, 1] as it is and standardises anything else, so the model then matches PCA of
        the standardised data; pass ``None`` to match PCA in the data's own units.
    impute : {"mean", "median"} or None, default=None
        Fill missing values (NaN) with each feature's mean or median over the training
        rows; the fill is stored with the scaling (saved with the model) and applied
        whenever the model reads data. None: NaN is an error.
    epochs, batch_size, lr, lr_schedule, weight_decay, validation_fraction, patience, \
restore_best, shuffle, n_init, random_state, verbose, n_threads, device, precision
        Training settings; see :class:`lucidae.config.TrainConfig` (``batch_size``,
        ``lr`` and ``validation_fraction`` have their own defaults here, see above).

    Attributes
    ----------
    module_ : lucidae.models.LinearAutoEncoder
        The trained ``nn.Module``.
    components_ : ndarray of shape (latent_dim, n_features)
        The decoder's columns (what each latent writes), in the scaled space.
    explained_variance_ : ndarray of shape (latent_dim,)
        Variance of each latent, set by :meth:`align_to_principal_axes`.
    history_, scaler_, n_features_in_, feature_names_, image_shape_, n_iter_
        As for :class:`AutoEncoder`.

    Examples
    --------
    >>> from lucidae import LinearAutoEncoder
    >>> from lucidae.datasets import load_digits
    >>> X = load_digits().X
    >>> lin = LinearAutoEncoder(latent_dim=4, epochs=5, verbose=0, random_state=0).fit(X)
    >>> lin.align_to_principal_axes(X).components_.shape
    (4, 64)
    >>> bool(lin.explained_variance_[0] >= lin.explained_variance_[-1])
    True
    """

    _model_name = "linear"

    def __init__(
        self,
        *,
        latent_dim: int = 32,
        tied: bool = False,
        encoder_l1: float = 0.0,
        encoder_l2: float = 0.0,
        decoder_l1: float = 0.0,
        decoder_l2: float = 0.0,
        noise: str = "none",
        noise_level: float = 0.1,
        scaling: str | None = "auto",
        impute: str | None = None,
        epochs: int | None = None,
        batch_size: int = 2048,
        lr: float = 3e-2,
        lr_schedule: str = "cosine",
        weight_decay: float = 0.0,
        validation_fraction: float = 0.0,
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
        self.tied = tied
        self.encoder_l1 = encoder_l1
        self.encoder_l2 = encoder_l2
        self.decoder_l1 = decoder_l1
        self.decoder_l2 = decoder_l2
        self.noise = noise
        self.noise_level = noise_level
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

    def _model_extras(self) -> dict[str, Any]:
        return {"hidden_dims": (), "activation": "linear", "latent_activation": "linear", "output_activation": "linear"}

    @property
    def components_(self) -> np.ndarray:
        """What each latent writes: the decoder's columns as rows, ``(latent_dim, n_features)``, scaled space.

        Examples
        --------
        >>> from lucidae.datasets import load_digits
        >>> LinearAutoEncoder(latent_dim=2, epochs=1, verbose=0).fit(load_digits().X).components_.shape
        (2, 64)
        """
        check_is_fitted(self, "module_")
        return self.module_.decoder[0].weight.detach().cpu().numpy().T.copy()

    def align_to_principal_axes(self, X: Any) -> LinearAutoEncoder:
        """Rotate the code so that its latents are ordered, decorrelated principal axes on ``X``.

        The reconstruction does not change: an invertible map ``M`` is applied to the
        code and undone in the decoder (``W_e <- M W_e``, ``b_e <- M b_e``,
        ``W_d <- W_d M^-1``). ``M`` makes the decoder's columns orthonormal and the
        latents' covariance on ``X`` diagonal, largest variance first; each column's
        largest entry is made positive. On a converged model the columns then equal
        PCA's components up to sign. With ``tied=True`` only rotations keep the weights
        tied, so ``M`` is the rotation that decorrelates and orders the latents.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data that defines the axes, normally the training data.

        Returns
        -------
        self
            With ``module_`` rotated and ``explained_variance_`` set.

        Examples
        --------
        >>> import numpy as np
        >>> from lucidae import LinearAutoEncoder
        >>> from lucidae.datasets import load_digits
        >>> X = load_digits().X
        >>> lin = LinearAutoEncoder(latent_dim=3, epochs=5, verbose=0, random_state=0).fit(X)
        >>> before = lin.reconstruct(X)
        >>> Z = lin.align_to_principal_axes(X).transform(X)
        >>> cov = np.cov(Z.T)
        >>> bool(np.allclose(cov - np.diag(np.diag(cov)), 0, atol=1e-4))
        True
        >>> bool(np.allclose(lin.reconstruct(X), before, atol=1e-4))
        True
        """
        Z = self.transform(X).astype(np.float64)  # (n, latent)
        enc, dec = self.module_.encoder[0], self.module_.decoder[0]
        W_d = dec.weight.detach().cpu().double().numpy()  # (features, latent)
        cov_z = np.cov(Z, rowvar=False).reshape(Z.shape[1], Z.shape[1])
        if self.module_.cfg.tied:
            variances, P = np.linalg.eigh(cov_z)
            M = P.T  # rotation: keeps decoder == encoder.T
        else:
            U, S, Vt = np.linalg.svd(W_d, full_matrices=False)
            to_basis = S[:, None] * Vt  # code -> coordinates in the orthonormal basis U
            variances, P = np.linalg.eigh(to_basis @ cov_z @ to_basis.T)
            M = P.T @ to_basis
        order = np.argsort(variances)[::-1]
        M, variances = M[order], variances[order]
        columns = W_d @ np.linalg.inv(M)  # (features, latent)
        signs = np.sign(columns[np.abs(columns).argmax(axis=0), np.arange(columns.shape[1])])
        signs[signs == 0] = 1.0
        M = signs[:, None] * M
        W_e = enc.weight.detach().cpu().double().numpy()  # (latent, features)
        b_e = enc.bias.detach().cpu().double().numpy()  # (latent,)
        like = enc.weight
        with torch.no_grad():
            enc.weight.copy_(torch.as_tensor(M @ W_e, dtype=like.dtype, device=like.device))
            enc.bias.copy_(torch.as_tensor(M @ b_e, dtype=like.dtype, device=like.device))
            if not self.module_.cfg.tied:
                dec.weight.copy_(torch.as_tensor(W_d @ np.linalg.inv(M), dtype=like.dtype, device=like.device))
        self.explained_variance_ = np.clip(variances, 0.0, None)
        return self
