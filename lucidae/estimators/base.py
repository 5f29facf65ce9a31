"""What every lucidae estimator shares: parameters to configs, fit, transform, save.

``__init__`` only stores keyword parameters; ``fit`` checks them, fits the scaling,
builds the module from a :class:`~lucidae.config.ModelConfig` and trains it with
:func:`lucidae.train.train`. Fitted state ends in ``_``. A PyTorch user can take
``module_`` (a plain ``nn.Module``) and leave the wrapper behind.

Subclasses register themselves in :data:`ESTIMATORS` by class name, which is how
:func:`lucidae.estimators.load` finds the class a folder names.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from lucidae._version import __version__
from lucidae.arrays import check_finite, check_numeric
from lucidae.config import DataConfig, ModelConfig, TrainConfig, check_int, image_chw
from lucidae.errors import ConfigError, DataError
from lucidae.io import write_model_dir
from lucidae.memory import check_training
from lucidae.models import build_model
from lucidae.scaling import auto_output, feature_stats, fit_scaler, row_blocks, scaled_range
from lucidae.schema import check_saveable
from lucidae.streaming import ChunkSource, is_streamable, open_array, scan
from lucidae.train import (
    EVAL_BATCH,
    History,
    resolve_seed,
    seed_param,
    seeded,
    torch_threads,
    train,
    verbose_level,
)

ESTIMATORS: dict[str, type[BaseAutoEncoder]] = {}
"""Estimator class name to class, filled by ``__init_subclass__``; used by :func:`load`."""

ESTIMATOR_ONLY: dict[str, Any] = {"warm_start": False}
"""Parameters, with their defaults, that every estimator has and no config does: they say how ``fit``
treats an estimator fitted before, not how a model is built or trained."""

DEFAULT_BETA = 1.0
""":class:`VAE`'s default ``beta``: the plain VAE (on the bundled digits the former 6 switched every latent off)."""

DEFAULT_TC_BETA, DEFAULT_BETA_FEATURES = 6.0, 256
""":class:`BetaTCVAE`'s default ``beta`` and the feature count of the images it was chosen on (docs/readme/vae.md)."""

COLLAPSE_CHECK_ROWS = 4096
"""Training rows on which a fitted VAE is checked for a wholly collapsed code (a warning, not an error)."""


def init_seed(seed: int, i: int) -> int:
    """Seed of the weights of initialisation ``i`` (``i >= 1``) of a fit seeded with ``seed``.

    Examples
    --------
    >>> init_seed(0, 1) != init_seed(0, 2) != init_seed(1, 1)
    True
    """
    return int(np.random.SeedSequence([seed, i]).generate_state(1)[0])


def run_score(history: History, restore_best: bool) -> float:
    """What ``n_init`` compares runs by: the kept weights' validation loss, else the last training loss.

    With ``restore_best`` the kept weights are those of the best validation epoch, so the
    score is the lowest validation loss; without it, the last one.

    Examples
    --------
    >>> h = History(records=[{"loss": 3.0, "val_loss": 2.0}, {"loss": 2.5, "val_loss": 2.2}])
    >>> run_score(h, restore_best=True), run_score(h, restore_best=False)
    (2.0, 2.2)
    >>> run_score(History(records=[{"loss": 1.5}]), restore_best=True)
    1.5
    """
    val = [r["val_loss"] for r in history.records if "val_loss" in r]
    if val:
        return float(min(val) if restore_best else val[-1])
    return float(history.losses[-1]) if history.records else math.inf


class BaseAutoEncoder(TransformerMixin, BaseEstimator):
    """Behaviour shared by every lucidae estimator. Subclasses define ``__init__`` and ``_model_name``.

    Parameters of a subclass are the union of :class:`ModelConfig`,
    :class:`TrainConfig` and ``scaling`` fields it exposes; a test keeps their defaults
    equal to the configs'.
    """

    _model_name = "dense"

    def __sklearn_tags__(self):  # type: ignore[no-untyped-def]
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]
        tags.non_deterministic = False
        tags.input_tags.allow_nan = self.get_impute() is not None
        return tags

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__name__.startswith("_"):
            ESTIMATORS[cls.__name__] = cls

    # ------------------------------------------------------------------ configs
    def _config(self, cls: type, **extra: Any) -> Any:
        params = self.get_params(deep=False)
        values = {f.name: _plain(params[f.name]) for f in fields(cls) if f.name in params}
        values.update(extra)
        if "random_state" in values:  # a RandomState or Generator gives the config one int drawn from it
            values["random_state"] = seed_param(values["random_state"])
        if "verbose" in values:  # "auto", True and False as the config's levels
            values["verbose"] = verbose_level(values["verbose"])
        for name in ("hidden_dims", "conv_channels", "image_shape"):  # lists, as read back from JSON
            if isinstance(values.get(name), list):
                values[name] = tuple(values[name])
        if cls is ModelConfig and "model" not in values:
            values["model"] = self._model_name
        cfg = cls(**values)
        cfg.validate()
        return cfg

    def get_model_config(self, n_features: int, *, fitted_scaling: str | None = None) -> ModelConfig:
        """The validated :class:`~lucidae.config.ModelConfig` these parameters build for ``n_features`` inputs.

        Under ``scaling="auto"`` the output follows the data once the scaling is fitted
        (:func:`lucidae.scaling.auto_output`): a table (standardised) gets a linear output
        where the parameters leave the default sigmoid. ``fitted_scaling`` names the fitted
        scaling kind; by default it is that of ``scaler_`` when fitted.

        Examples
        --------
        >>> from lucidae import AutoEncoder
        >>> AutoEncoder(hidden_dims=(16,), latent_dim=4).get_model_config(64).layer_shapes()
        ('64', '16', '4', '16', '64')
        >>> AutoEncoder().get_model_config(6, fitted_scaling="standard").output_activation
        'linear'
        """
        cfg = self._config(ModelConfig, input_dim=n_features, **self._model_extras())
        kind = fitted_scaling or getattr(getattr(self, "scaler_", None), "kind", None)
        if kind is not None and self._output_follows_data(cfg):
            cfg = replace(cfg, output_activation=auto_output(kind))
        return cfg

    def _model_extras(self) -> dict[str, Any]:
        """Model config fields that come from the fit rather than the parameters (the image estimators' shape)."""
        return {}

    def _chosen_from_data(self, cfg: ModelConfig, Xs: Any) -> dict[str, Any]:
        """Model config fields fit decides from the scaled training rows ``Xs`` (a VAE's ``likelihood="auto"``)."""
        return {}

    def _output_follows_data(self, cfg: ModelConfig) -> bool:
        """scaling="auto" with the default sigmoid output; a Bernoulli VAE needs its sigmoid and keeps it."""
        return self.get_scaling() == "auto" and cfg.output_activation == "sigmoid" and not _needs_sigmoid(cfg)

    def get_train_config(self) -> TrainConfig:
        """The validated :class:`~lucidae.config.TrainConfig` of these parameters.

        Examples
        --------
        >>> from lucidae import AutoEncoder
        >>> AutoEncoder(epochs=3).get_train_config().epochs
        3
        """
        return self._config(TrainConfig)

    def _train_config(self) -> TrainConfig:  # the name get_train_config had before it was public
        return self.get_train_config()

    def get_scaling(self) -> str:
        """The input scaling asked for, in the configs' vocabulary (``None`` is ``"none"``), validated.

        Examples
        --------
        >>> from lucidae import SparseAutoEncoder
        >>> SparseAutoEncoder(scaling=None).get_scaling()
        'none'
        """
        scaling = "none" if self.scaling is None else self.scaling
        DataConfig(scaling=scaling, impute=self.get_impute()).validate()
        return scaling

    def get_impute(self) -> str | None:
        """How missing values (NaN) are filled: ``"mean"``, ``"median"`` (of the training rows) or None (refused).

        The fill is fitted with the scaling and kept in ``scaler_`` (saved with the model), so
        every later call (``transform``, ``reconstruct``, ``score_samples``) fills NaN the same way.

        Examples
        --------
        >>> from lucidae import AutoEncoder
        >>> AutoEncoder().get_impute() is None
        True
        """
        return getattr(self, "impute", None)

    # ------------------------------------------------------------------ fitting
    def fit(
        self,
        X: Any,
        y: Any = None,
        *,
        feature_names: list[str] | None = None,
        image_shape: tuple[int, ...] | None = None,
        checkpoint_dir: str | os.PathLike | None = None,
        checkpoint_every: int = 1,
        resume: bool = False,
    ) -> BaseAutoEncoder:
        """Fit the scaling and train the autoencoder on ``X``.

        With ``warm_start=True`` on a fitted estimator, train the fitted model on ``X`` for
        ``epochs`` more instead, with the scaling fitted first.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), numpy.memmap, ``.npy`` path or zarr array
            Training data. uint8 data is read as images in [0, 255] (see ``scaling``).
            A memmap, a path to a ``.npy`` file or a zarr array is streamed in shuffled
            chunks and never loaded whole (see :mod:`lucidae.streaming`).
        y : ignored
            Present for API consistency.
        feature_names : list of str, optional
            Names of the columns, kept for explanations and reports (a DataFrame's
            column names are used when this is not given).
        image_shape : tuple of int, optional
            ``(height, width)`` or ``(channels, height, width)`` when each row is a
            flattened image; used to draw latents and reconstructions as pictures.
        checkpoint_dir : path-like, optional
            Keep a training checkpoint there (every epoch and on Ctrl-C); see :func:`lucidae.train.train`.
        checkpoint_every : int, default=1
            Epochs between checkpoints (0: only when interrupted).
        resume : bool, default=False
            Continue the interrupted run whose checkpoint is in ``checkpoint_dir``.

        Returns
        -------
        self

        Examples
        --------
        >>> from lucidae import AutoEncoder
        >>> from lucidae.datasets import load_digits
        >>> ds = load_digits()
        >>> ae = AutoEncoder(latent_dim=8, epochs=2, verbose=0, random_state=0).fit(ds.X)
        >>> ae.n_features_in_
        64
        """
        n_threads = getattr(self, "n_threads", None)
        if n_threads is not None:
            check_int("n_threads", n_threads)
        with torch_threads(n_threads):
            if self.warm_start and hasattr(self, "module_"):
                return self._fit_more(
                    X, checkpoint_dir=checkpoint_dir, checkpoint_every=checkpoint_every, resume=resume
                )
            return self._fit_new(
                X,
                feature_names=feature_names,
                image_shape=image_shape,
                checkpoint_dir=checkpoint_dir,
                checkpoint_every=checkpoint_every,
                resume=resume,
            )

    def _fit_new(
        self,
        X: Any,
        *,
        feature_names: list[str] | None,
        image_shape: tuple[int, ...] | None,
        checkpoint_dir: str | os.PathLike | None,
        checkpoint_every: int,
        resume: bool,
    ) -> BaseAutoEncoder:
        """:meth:`fit` from scratch: scaling, module, training (``n_init`` times)."""
        X, inferred_shape = image_rows(X)
        if image_shape is None:
            image_shape = inferred_shape
        train_cfg = self.get_train_config()
        scaling = self.get_scaling()
        streamed = is_streamable(X)
        X = self._validate_streamed(X) if streamed else self._validate(X, reset=True)
        n_samples, n_features = X.shape
        if n_samples < 2:
            raise DataError(
                f"Found array with {n_samples} sample(s) (shape={X.shape}) while a minimum of 2 is "
                "required to train an autoencoder."
            )
        self.feature_names_ = self._resolve_feature_names(feature_names, n_features)
        self.image_shape_ = self._resolve_image_shape(image_shape, n_features)
        # scaling="auto" with the default sigmoid output: images keep it, a table is standardised and gets a
        # linear output (scaling.auto_output); a Bernoulli VAE needs its sigmoid, so it keeps min-max
        asked = self._config(ModelConfig, input_dim=n_features, **self._model_extras())
        output_activation = "auto" if self._output_follows_data(asked) else asked.output_activation
        if streamed:  # one streaming pass for the scaling and the NaN check; never loaded whole
            if self.get_impute() is not None:
                raise ConfigError("impute is not available for data streamed from disk; fill the file's NaN first.")
            self.scaler_ = scan(X, scaling, output_activation=output_activation)
            Xs = ChunkSource(X, self.scaler_)
        else:
            self.scaler_ = fit_scaler(X, scaling, output_activation=output_activation, impute=self.get_impute())
            Xs = self.scaler_.transform(X)  # (n, features) float32
        model_cfg = self.get_model_config(n_features)  # with the output the fitted scaling implies
        chosen = self._chosen_from_data(model_cfg, Xs.read(0) if streamed else Xs)
        if chosen:  # fields left to the data ("auto"), decided on the scaled training rows
            model_cfg = replace(model_cfg, **chosen)
            model_cfg.validate()
        if model_cfg.model in ("dense", "linear") and model_cfg.noise == "none" and model_cfg.latent_dim >= n_features:
            warnings.warn(
                f"latent_dim={model_cfg.latent_dim} is not smaller than the {n_features} input features: with no "
                "bottleneck the code can copy the input instead of summarising it, so a low FVU says little about "
                f"structure. Set latent_dim below {n_features} (for example {max(1, n_features // 3)}) for a "
                "bottleneck, add noise for a denoising model, or use SparseAutoEncoder/TopKAutoEncoder for an "
                "overcomplete dictionary.",
                UserWarning,
                stacklevel=3,
            )
        # before anything is built: a terabyte config is refused in milliseconds, not by the allocator (#18)
        check_training(model_cfg, batch_size=min(train_cfg.batch_size, n_samples), what=type(self).__name__)
        seed = self.seed_ = resolve_seed(train_cfg.random_state)
        start = time.perf_counter()
        scores: list[float] = []  # one per initialisation; only the best run so far is kept
        for i in range(train_cfg.n_init):
            # the first initialisation is the one n_init=1 trains; every run shares the data seed, so the
            # validation split and the batch order are the same and their validation losses compare
            with seeded(seed if i == 0 else init_seed(seed, i)):
                module = build_model(model_cfg)
            ckpt = checkpoint_dir
            if checkpoint_dir is not None and train_cfg.n_init > 1:
                ckpt = Path(checkpoint_dir) / f"init-{i + 1}"
            history = train(
                module,
                Xs,
                train_cfg,
                seed=seed,
                checkpoint_dir=ckpt,
                checkpoint_every=checkpoint_every,
                # a run that had not started when training was interrupted starts afresh
                resume=resume and (train_cfg.n_init == 1 or (Path(ckpt) / "config.json").is_file()),
            )
            scores.append(run_score(history, train_cfg.restore_best))
            if i == 0 or scores[-1] < min(scores[:-1]):
                self.module_, self.history_, self.best_init_ = module, history, i
        self.init_scores_ = scores
        self.fit_seconds_ = time.perf_counter() - start
        self.n_iter_ = len(self.history_.records)
        self.model_config_ = model_cfg
        self._check_trained(Xs.read(0) if streamed else Xs)
        return self

    def _check_trained(self, Xs: np.ndarray) -> None:
        """Warn about a model that trained but learned nothing usable; ``Xs``: scaled training rows."""

    def _fit_more(self, X: Any, **fit_params: Any) -> BaseAutoEncoder:
        """``warm_start``: train the fitted module on ``X`` for ``epochs`` more, with the fitted scaling."""
        train_cfg = self.get_train_config()
        X = self._image_rows(X)
        streamed = is_streamable(X)
        if streamed:
            X = open_array(X)
            if X.shape[1] != self.n_features_in_:
                raise DataError(
                    f"X has {X.shape[1]} features, but {type(self).__name__} was fitted with {self.n_features_in_}; "
                    "warm_start continues the fitted model on data with the same columns."
                )
        else:
            X = self._validate(X, reset=False)
        # per-feature extremes in one pass: NaN shows here too, and they bound the scaled targets
        stats = feature_stats((self.scaler_.fill_missing(b) for b in row_blocks(X)), moments=False)
        if not (np.isfinite(stats.min).all() and np.isfinite(stats.max).all()):
            raise DataError("X contains NaN or infinite values; remove or impute them before fitting.")
        if self.model_config_.output_activation == "sigmoid":
            lo, hi = scaled_range(stats, self.scaler_)
            if lo < 0.0 or hi > 1.0:
                raise DataError(
                    f"With the scaling fitted first ({self.scaler_.kind}), this data spans [{lo:.3g}, {hi:.3g}], "
                    "outside the [0, 1] a sigmoid output can reconstruct. Fit afresh (warm_start=False) to fit "
                    "a scaling to the new data."
                )
        Xs = ChunkSource(X, self.scaler_) if streamed else self.scaler_.transform(X)
        start = time.perf_counter()
        more = train(self.module_, Xs, train_cfg, warm_start=True, **fit_params)
        self.history_ = self.history_.continued(more)
        self.n_iter_ = len(self.history_.records)
        self.fit_seconds_ += time.perf_counter() - start
        self._check_trained(Xs.read(0) if streamed else Xs)
        return self

    def _validate(self, X: Any, *, reset: bool) -> np.ndarray:
        """scikit-learn's input checks, with lucidae's clearer messages for dtypes and non-finite values.

        Every refusal is a :class:`DataError`, which is also the ``ValueError`` scikit-learn's
        API promises; scikit-learn's own message (for example the feature-count one) is kept.
        """
        check_numeric(X)
        raw_dtype = getattr(X, "dtype", None)
        try:
            X = validate_data(
                self,
                X,
                reset=reset,
                dtype=None if raw_dtype == np.uint8 else [np.float64, np.float32],
                ensure_all_finite=False,  # check_finite says how many and where
            )
        except ValueError as err:
            if isinstance(err, DataError):
                raise
            hint = " Pass data with the same columns, in the same order, as during fit." if not reset else ""
            raise DataError(f"{err}{hint}") from err
        # NaN passes where it will be filled: at fit with impute, later with the fill fitted then
        allow_nan = self.get_impute() is not None if reset else getattr(self.scaler_, "fill", None) is not None
        return self._check_array(X, action="fitting" if reset else "encoding", allow_nan=allow_nan)

    def _image_rows(self, X: Any) -> Any:
        """An ``(n, h, w)`` / ``(n, h, w, c)`` array as rows, checked against the images the model was fitted on."""
        X, shape = image_rows(X)
        fitted = getattr(self, "image_shape_", None)
        if shape is not None and fitted is not None and image_chw(shape) != image_chw(fitted):
            raise DataError(
                f"X holds images of shape {shape} (channels, height, width), but {type(self).__name__} was "
                f"fitted on images of shape {tuple(fitted)}. Pass images of the fitted size."
            )
        return X

    def _validate_streamed(self, X: Any) -> Any:
        """Open a memmap / ``.npy`` path / zarr array and record its width, without reading its rows."""
        X = open_array(X)
        self.n_features_in_ = int(X.shape[1])
        if hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        return X

    def _check_array(self, X: np.ndarray, action: str = "fitting", allow_nan: bool = False) -> np.ndarray:
        if X.ndim != 2:  # pragma: no cover - validate_data enforces 2-D
            raise DataError(f"Expected a 2-D array (n_samples, n_features), got shape {X.shape}.")
        check_finite(X, action=action, allow_nan=allow_nan)
        return X

    @staticmethod
    def _resolve_feature_names(given: Any, n_features: int) -> list[str]:
        if given is None:
            return [f"x{i}" for i in range(n_features)]
        names = [str(n) for n in given]
        if len(names) != n_features:
            raise DataError(f"feature_names has {len(names)} names but X has {n_features} columns.")
        return names

    @staticmethod
    def _resolve_image_shape(shape: Any, n_features: int) -> tuple[int, ...] | None:
        if shape is None:
            return None
        shape = tuple(int(s) for s in shape)
        if int(np.prod(shape)) != n_features or len(shape) not in (2, 3):
            raise DataError(
                f"image_shape={shape} does not fit {n_features} features: expected (height, width) "
                "or (channels, height, width) whose product is the number of features."
            )
        return shape

    # ------------------------------------------------------------------ inference
    def scale_inputs(self, X: Any) -> np.ndarray:
        """Validate ``X`` against the fitted input and scale it to the model's space (what ``module_`` reads).

        Examples
        --------
        >>> from lucidae import AutoEncoder
        >>> from lucidae.datasets import load_digits
        >>> X = load_digits().X
        >>> Xs = AutoEncoder(latent_dim=2, epochs=1, verbose=0).fit(X).scale_inputs(X[:3])
        >>> Xs.dtype, float(Xs.min()) >= 0.0, float(Xs.max()) <= 1.0
        (dtype('float32'), True, True)
        """
        check_is_fitted(self, "module_")
        return self.scaler_.transform(self._validate(self._image_rows(X), reset=False))

    def _prepare(self, X: Any) -> np.ndarray:  # the name scale_inputs had before it was public
        return self.scale_inputs(X)

    def run_module(self, fn: Any, X: np.ndarray, batch_size: int = EVAL_BATCH) -> np.ndarray:
        """Apply ``fn`` (tensor -> tensor) to the scaled rows ``X`` in batches, without gradients.

        Examples
        --------
        >>> from lucidae import AutoEncoder
        >>> from lucidae.datasets import load_digits
        >>> X = load_digits().X
        >>> ae = AutoEncoder(latent_dim=2, epochs=1, verbose=0).fit(X)
        >>> ae.run_module(ae.module_.encode, ae.scale_inputs(X[:5])).shape
        (5, 2)
        """
        check_is_fitted(self, "module_")
        device = next(self.module_.parameters()).device
        out = np.empty((0,), dtype=np.float32)
        self.module_.eval()
        with torch.no_grad():
            for start in range(0, X.shape[0], batch_size):
                xb = torch.from_numpy(np.ascontiguousarray(X[start : start + batch_size])).to(device)
                block = fn(xb).float().cpu().numpy()
                if start == 0:  # filled in place: no list of blocks and no concatenated copy
                    out = np.empty((X.shape[0], *block.shape[1:]), dtype=np.float32)
                out[start : start + len(block)] = block
        return out

    def transform(self, X: Any) -> np.ndarray:
        """Encode ``X`` to latent codes.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or images (n_samples, h, w[, c])

        Returns
        -------
        ndarray of shape (n_samples, latent_dim), float32

        Examples
        --------
        >>> from lucidae import AutoEncoder
        >>> from lucidae.datasets import load_digits
        >>> X = load_digits().X
        >>> AutoEncoder(latent_dim=4, epochs=1, verbose=0).fit(X).transform(X[:3]).shape
        (3, 4)
        """
        check_is_fitted(self, "module_")
        return self.run_module(self.module_.encode, self.scale_inputs(X))

    def inverse_transform(self, X: Any) -> np.ndarray:
        """Decode latent codes back to the input space, in the data's original units.

        Parameters
        ----------
        X : array-like of shape (n_samples, latent_dim)
            Codes, as returned by :meth:`transform`.

        Returns
        -------
        ndarray of shape (n_samples, n_features), float32

        Examples
        --------
        >>> from lucidae import AutoEncoder
        >>> from lucidae.datasets import load_digits
        >>> X = load_digits().X
        >>> ae = AutoEncoder(latent_dim=4, epochs=1, verbose=0).fit(X)
        >>> ae.inverse_transform(ae.transform(X[:2])).shape
        (2, 64)
        """
        check_is_fitted(self, "module_")
        check_numeric(X, what="codes")
        Z = np.asarray(X, dtype=np.float32)
        latent_dim = self.module_.latent_dim
        if Z.ndim != 2 or Z.shape[1] != latent_dim or Z.shape[0] == 0:
            raise DataError(
                f"inverse_transform expects codes of shape (n_samples, {latent_dim}) with n_samples >= 1, "
                f"got {Z.shape}. Pass the output of transform."
            )
        check_finite(Z, what="codes", action="decoding")
        return self.scaler_.inverse_transform(self.run_module(self.module_.decode, Z))

    def reconstruct(self, X: Any) -> np.ndarray:
        """Encode and decode ``X`` in one pass; the result is in ``X``'s original units.

        Examples
        --------
        >>> from lucidae import AutoEncoder
        >>> from lucidae.datasets import load_digits
        >>> X = load_digits().X
        >>> AutoEncoder(latent_dim=4, epochs=1, verbose=0).fit(X).reconstruct(X[:2]).shape
        (2, 64)
        """
        check_is_fitted(self, "module_")
        Xs = self.scale_inputs(X)
        return self.scaler_.inverse_transform(self.run_module(lambda xb: self.module_(xb).recon, Xs))

    def score_samples(self, X: Any) -> np.ndarray:
        """Minus the per-sample reconstruction error (higher = more typical).

        The error is the mean squared difference per feature in the model's scaled space,
        so features measured in large units do not dominate.

        Returns
        -------
        ndarray of shape (n_samples,), float32

        Examples
        --------
        >>> from lucidae import AutoEncoder
        >>> from lucidae.datasets import load_digits
        >>> X = load_digits().X
        >>> bool((AutoEncoder(latent_dim=4, epochs=1, verbose=0).fit(X).score_samples(X[:5]) <= 0).all())
        True
        """
        check_is_fitted(self, "module_")
        return -self.run_module(self.module_.sample_errors, self.scale_inputs(X))

    def score(self, X: Any, y: Any = None) -> float:
        """Mean of :meth:`score_samples`: minus the mean reconstruction error (higher is better)."""
        check_is_fitted(self, "module_")
        return float(np.mean(self.score_samples(X)))

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Names of the latent features: ``latent0``, ``latent1``, ...

        Examples
        --------
        >>> from lucidae import AutoEncoder
        >>> from lucidae.datasets import load_digits
        >>> AutoEncoder(latent_dim=2, epochs=1, verbose=0).fit(load_digits().X).get_feature_names_out()
        array(['latent0', 'latent1'], dtype=object)
        """
        check_is_fitted(self, "module_")
        return np.asarray([f"latent{i}" for i in range(self.module_.latent_dim)], dtype=object)

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike, *, run: dict[str, Any] | None = None) -> Path:
        """Write the fitted model to directory ``path`` (``model.safetensors`` + ``config.json``).

        Parameters
        ----------
        path : path-like
            The folder; other files already in it (a report, a checkpoint) are kept.
        run : dict, optional
            The run record (data, held-out split, metrics) that ``lucidae report`` reads,
            written to ``path/run.json`` in the same atomic swap as the model.
            :func:`lucidae.runs.fit_run` trains a model and saves it with its record.

        Returns
        -------
        Path
            The directory written.

        Examples
        --------
        >>> import tempfile
        >>> from lucidae import AutoEncoder, load
        >>> from lucidae.datasets import load_digits
        >>> X = load_digits().X
        >>> ae = AutoEncoder(latent_dim=4, epochs=1, verbose=0).fit(X)
        >>> d = ae.save(tempfile.mkdtemp() + "/run")
        >>> bool((load(d).transform(X) == ae.transform(X)).all())
        True
        """
        check_is_fitted(self, "module_")
        tensors = {f"module.{k}": v for k, v in self.module_.state_dict().items()}
        tensors["scaler.offset"] = torch.from_numpy(self.scaler_.offset.astype(np.float64))
        tensors["scaler.scale"] = torch.from_numpy(self.scaler_.scale.astype(np.float64))
        if getattr(self.scaler_, "fill", None) is not None:  # impute: the fill is part of the saved scaling
            tensors["scaler.fill"] = torch.from_numpy(self.scaler_.fill.astype(np.float64))
        config = {
            "lucidae_version": __version__,
            "estimator": type(self).__name__,
            "params": _jsonable({**self.get_params(deep=False), "random_state": self._saved_seed()}),
            "model": self.model_config_.to_dict(),
            "scaling": self.scaler_.kind,
            "n_features_in": int(self.n_features_in_),
            "feature_names": list(self.feature_names_),
            "feature_names_in": None
            if not hasattr(self, "feature_names_in_")
            else [str(n) for n in self.feature_names_in_],
            "image_shape": None if self.image_shape_ is None else list(self.image_shape_),
            "fit_seconds": float(self.fit_seconds_),
            "history": self.history_.to_dict(),
            "init_scores": list(getattr(self, "init_scores_", [])),
        }
        check_saveable(config, tensors, estimators=ESTIMATORS)  # never write a folder load() would refuse
        return write_model_dir(path, tensors, config, run=run)

    def _saved_seed(self) -> int | None:
        """``random_state`` as saved: a RandomState or Generator cannot be, so the seed drawn from it is."""
        rs = self.random_state
        if rs is None or (isinstance(rs, (int, np.integer)) and not isinstance(rs, bool)):
            return rs
        return int(getattr(self, "seed_", 0))


def image_rows(X: Any) -> tuple[Any, tuple[int, ...] | None]:
    """Image arrays as rows of flattened ``(C, H, W)`` images, and the image shape; other input as it is.

    ``(n, h, w)`` gives shape ``(h, w)``. A 4-D array is ``(n, h, w, c)`` (channels last, as
    PIL and TensorFlow store them) unless its second axis is shorter than its last, as in
    PyTorch's ``(n, c, h, w)``; channels-last images are transposed so that each row is
    ``(C, H, W)`` flattened, the layout lucidae's convolutions read. The dtype is kept
    (uint8 images are scaled to [0, 1] by ``scaling="auto"``).

    Examples
    --------
    >>> rows, shape = image_rows(np.zeros((5, 8, 8), dtype=np.uint8))
    >>> rows.shape, rows.dtype, shape
    ((5, 64), dtype('uint8'), (8, 8))
    >>> image_rows(np.zeros((5, 4, 6, 3)))[0].shape, image_rows(np.zeros((5, 4, 6, 3)))[1]
    ((5, 72), (3, 4, 6))
    """
    ndim = getattr(X, "ndim", None)
    if ndim not in (3, 4) or hasattr(X, "columns") or is_streamable(X):
        return X, None
    X = np.asarray(X)
    if ndim == 3:
        return X.reshape(X.shape[0], -1), (int(X.shape[1]), int(X.shape[2]))
    if X.shape[1] >= X.shape[-1]:  # (n, h, w, c) -> (n, c, h, w)
        X = np.ascontiguousarray(X.transpose(0, 3, 1, 2))
    return X.reshape(X.shape[0], -1), tuple(int(s) for s in X.shape[1:])


def estimator_for(model: str) -> type[BaseAutoEncoder]:
    """The estimator class that trains model family ``model`` (``ModelConfig.model``).

    Examples
    --------
    >>> estimator_for("dense").__name__
    'AutoEncoder'
    """
    for cls in ESTIMATORS.values():
        if cls._model_name == model:
            return cls
    raise ConfigError(
        f"model={model!r} is not known; allowed values are {sorted({c._model_name for c in ESTIMATORS.values()})}."
    )


def _needs_sigmoid(cfg: ModelConfig) -> bool:
    """Whether the model's loss needs its sigmoid output: a VAE's Bernoulli likelihood models data in [0, 1]."""
    return cfg.model in ("vae", "tcvae") and cfg.likelihood == "bernoulli"


def _plain(value: Any) -> Any:
    """NumPy scalars (as from ``np.arange`` in a parameter grid) as Python numbers, also inside tuples and lists."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (tuple, list)):
        return type(value)(_plain(v) for v in value)
    return value


def _jsonable(params: dict[str, Any]) -> dict[str, Any]:
    params = {k: _plain(v) for k, v in params.items()}
    return {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()}
