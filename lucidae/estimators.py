"""scikit-learn estimators: thin wrappers that validate, scale, build, train and save.

``__init__`` only stores keyword parameters; ``fit`` checks them, fits the scaling,
builds the module from a :class:`~lucidae.config.ModelConfig` and trains it with
:func:`lucidae.train.train`. Fitted state ends in ``_``. A PyTorch user can take
``module_`` (a plain ``nn.Module``) and leave the wrapper behind.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from lucidae._version import __version__
from lucidae.config import DataConfig, ModelConfig, TrainConfig
from lucidae.errors import ConfigError, CorruptFileError, DataError
from lucidae.io import CONFIG, WEIGHTS, read_config, read_tensors, write_model_dir
from lucidae.models import build_model
from lucidae.scaling import Scaler, feature_stats, fit_scaler, row_blocks, scaled_range
from lucidae.streaming import ChunkSource, is_streamable, open_array, scan
from lucidae.train import EVAL_BATCH, History, resolve_device, resolve_seed, seeded, train
from lucidae.validation import (
    check_finite,
    check_numeric,
    check_tensors,
    expected_tensors,
    read_safetensors_header,
    validate_saved_config,
)

ESTIMATORS: dict[str, type[BaseAutoEncoder]] = {}
"""Estimator class name to class, filled by ``__init_subclass__``; used by :func:`load`."""

ESTIMATOR_ONLY: dict[str, Any] = {"warm_start": False}
"""Parameters, with their defaults, that every estimator has and no config does: they say how ``fit``
treats an estimator fitted before, not how a model is built or trained."""

DEFAULT_BETA, DEFAULT_BETA_FEATURES = 6.0, 256
"""The VAEs' default ``beta`` and the feature count of the images it was chosen on (docs/readme/vae.md)."""

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
        if isinstance(values.get("hidden_dims"), list):
            values["hidden_dims"] = tuple(values["hidden_dims"])
        if cls is ModelConfig and "model" not in values:
            values["model"] = self._model_name
        cfg = cls(**values)
        cfg.validate()
        return cfg

    def _model_config(self, n_features: int) -> ModelConfig:
        return self._config(ModelConfig, input_dim=n_features)

    def _train_config(self) -> TrainConfig:
        return self._config(TrainConfig)

    def _scaling(self) -> str:
        scaling = "none" if self.scaling is None else self.scaling
        DataConfig(scaling=scaling).validate()
        return scaling

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
        if self.warm_start and hasattr(self, "module_"):
            return self._fit_more(X, checkpoint_dir=checkpoint_dir, checkpoint_every=checkpoint_every, resume=resume)
        train_cfg = self._train_config()
        scaling = self._scaling()
        output_activation = getattr(self, "output_activation", "linear")
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
        if streamed:  # one streaming pass for the scaling and the NaN check; never loaded whole
            self.scaler_ = scan(X, scaling, output_activation=output_activation)
            Xs = ChunkSource(X, self.scaler_)
        else:
            self.scaler_ = fit_scaler(X, scaling, output_activation=output_activation)
            Xs = self.scaler_.transform(X)  # (n, features) float32
        model_cfg = self._model_config(n_features)
        seed = resolve_seed(train_cfg.random_state)
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
        train_cfg = self._train_config()
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
        stats = feature_stats(row_blocks(X), moments=False)
        if not (np.isfinite(stats.min).all() and np.isfinite(stats.max).all()):
            raise DataError("X contains NaN or infinite values; remove or impute them before fitting.")
        if getattr(self, "output_activation", "linear") == "sigmoid":
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
        return self._check_array(X, action="fitting" if reset else "encoding")

    def _validate_streamed(self, X: Any) -> Any:
        """Open a memmap / ``.npy`` path / zarr array and record its width, without reading its rows."""
        X = open_array(X)
        self.n_features_in_ = int(X.shape[1])
        if hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        return X

    def _check_array(self, X: np.ndarray, action: str = "fitting") -> np.ndarray:
        if X.ndim != 2:  # pragma: no cover - validate_data enforces 2-D
            raise DataError(f"Expected a 2-D array (n_samples, n_features), got shape {X.shape}.")
        check_finite(X, action=action)
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
    def _prepare(self, X: Any) -> np.ndarray:
        """Validate ``X`` against the fitted input and scale it to the model's space."""
        check_is_fitted(self, "module_")
        return self.scaler_.transform(self._validate(X, reset=False))

    def _run(self, fn: Any, X: np.ndarray, batch_size: int = EVAL_BATCH) -> np.ndarray:
        """Apply ``fn`` (tensor -> tensor) to ``X`` in batches without gradients."""
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
        X : array-like of shape (n_samples, n_features)

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
        return self._run(self.module_.encode, self._prepare(X))

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
        return self.scaler_.inverse_transform(self._run(self.module_.decode, Z))

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
        Xs = self._prepare(X)
        return self.scaler_.inverse_transform(self._run(lambda xb: self.module_(xb).recon, Xs))

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
        return -self._run(self.module_.sample_errors, self._prepare(X))

    def score(self, X: Any, y: Any = None) -> float:
        """Mean of :meth:`score_samples`: minus the mean reconstruction error (higher is better)."""
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
    def save(self, path: str | os.PathLike) -> Path:
        """Write the fitted model to directory ``path`` (``model.safetensors`` + ``config.json``).

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
        config = {
            "lucidae_version": __version__,
            "estimator": type(self).__name__,
            "params": _jsonable(self.get_params(deep=False)),
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
        return write_model_dir(path, tensors, config)


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


class NotAnEstimatorError(CorruptFileError):
    """The folder holds another saved lucidae object, not an estimator; the message names its loader.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from lucidae.applications import AnomalyDetector
    >>> X = np.random.default_rng(0).normal(size=(100, 3))
    >>> inner = AutoEncoder(hidden_dims=(), latent_dim=1, epochs=1, verbose=0)
    >>> folder = AnomalyDetector(estimator=inner).fit(X).save(tempfile.mkdtemp() + "/det")
    >>> try:
    ...     load(folder)
    ... except NotAnEstimatorError as err:
    ...     "lucidae.applications.load_detector" in str(err)
    True
    """


LOADERS = {
    "AnomalyDetector": "lucidae.applications.load_detector",
    "TextTopics": "lucidae.applications.load_topics",
}
"""Saved objects that share the model folder format but are not estimators, to the function that loads each."""


def load(path: str | os.PathLike) -> BaseAutoEncoder:
    """Load an estimator saved with ``save`` (or ``lucidae train``). Never unpickles.

    The weights' checksum is verified against ``config.json`` before they are read, and
    the restored estimator gives outputs identical to the one that was saved.

    Parameters
    ----------
    path : path-like
        A directory holding ``model.safetensors`` and ``config.json``.

    Returns
    -------
    estimator
        A fitted estimator of the class that was saved.

    Raises
    ------
    CorruptFileError
        When the files are missing, damaged, or inconsistent with each other.
    NotAnEstimatorError
        (A CorruptFileError) when the folder holds a saved AnomalyDetector, which
        :func:`lucidae.applications.load_detector` loads.

    Examples
    --------
    >>> import tempfile
    >>> from lucidae import AutoEncoder, load
    >>> from lucidae.datasets import load_digits
    >>> ae = AutoEncoder(latent_dim=2, epochs=1, verbose=0).fit(load_digits().X)
    >>> type(load(ae.save(tempfile.mkdtemp() + "/m"))).__name__
    'AutoEncoder'
    """
    config = read_config(path)
    kind = config.get("estimator")
    if isinstance(kind, str) and kind in LOADERS:
        # A detector's config has keys no estimator's has; without this the schema check
        # below would call the folder damaged, which sends the user looking for a fault.
        raise NotAnEstimatorError(
            f"{path} holds a saved {kind}, not an autoencoder estimator. "
            f"Load it with {LOADERS[kind]}({str(path)!r}); its autoencoder alone is in {Path(path) / 'estimator'}."
        )
    # Everything is checked before anything is allocated: the config against its schema,
    # then the safetensors header (a bounded read) against the shapes the config implies.
    spec = validate_saved_config(config, Path(path) / CONFIG)
    cls, model_cfg, n_features = spec["estimator"], spec["model"], spec["n_features"]
    est = cls(**spec["params"])
    weights = Path(path) / WEIGHTS
    if not weights.is_file():
        raise CorruptFileError(f"{weights} is missing; the model directory is incomplete.")
    check_tensors(read_safetensors_header(weights), expected_tensors(model_cfg, n_features), weights)
    tensors = read_tensors(path, config)
    with seeded(0):
        module = build_model(model_cfg)
    module.load_state_dict({k.removeprefix("module."): v for k, v in tensors.items() if k.startswith("module.")})
    module.eval()
    try:
        device = resolve_device(est._train_config().device)
    except Exception:  # a model trained on CUDA still loads on a CPU-only machine
        device = torch.device("cpu")
    est.module_ = module.to(device)
    est.model_config_ = model_cfg
    offset, scale = tensors["scaler.offset"], tensors["scaler.scale"]  # shapes checked with the header
    if not (torch.isfinite(offset).all() and torch.isfinite(scale).all() and (scale != 0).all()):
        raise CorruptFileError(
            f"The scaling stored in {weights} has NaN, infinite or zero entries; it cannot be undone. "
            "Save the model again or restore it from a copy."
        )
    est.scaler_ = Scaler(str(config["scaling"]), offset.numpy().astype(np.float64), scale.numpy().astype(np.float64))
    est.n_features_in_ = n_features
    if config.get("feature_names_in") is not None:
        est.feature_names_in_ = np.asarray(config["feature_names_in"], dtype=object)
    est.feature_names_ = [str(n) for n in config.get("feature_names") or [f"x{i}" for i in range(n_features)]]
    image_shape = config.get("image_shape")
    est.image_shape_ = None if image_shape is None else tuple(int(s) for s in image_shape)
    est.history_ = History.from_dict(config.get("history") or {})
    est.n_iter_ = len(est.history_.records)
    est.fit_seconds_ = float(config.get("fit_seconds", 0.0))
    scores = [float(v) for v in config.get("init_scores") or [run_score(est.history_, est.restore_best)]]
    est.init_scores_, est.best_init_ = scores, int(np.argmin(scores))
    return est


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
        maps uint8 images to [0, 1], keeps data already in [0, 1], else min-max scales
        (sigmoid output) or standardises.
    epochs, batch_size, lr, lr_schedule, weight_decay, validation_fraction, patience, \
restore_best, shuffle, n_init, random_state, verbose, device, precision
        Training settings; see :class:`lucidae.config.TrainConfig`.
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
        random_state: int | None = None,
        verbose: int = 1,
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
    epochs, batch_size, lr, lr_schedule, weight_decay, validation_fraction, patience, \
restore_best, shuffle, n_init, random_state, verbose, device, precision
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
        random_state: int | None = None,
        verbose: int = 1,
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
        self.device = device
        self.precision = precision

    def _model_config(self, n_features: int) -> ModelConfig:
        linear = {"activation": "linear", "latent_activation": "linear", "output_activation": "linear"}
        return self._config(ModelConfig, input_dim=n_features, hidden_dims=(), **linear)

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


class _SparseBase(BaseAutoEncoder):
    """Shared behaviour of the sparse-autoencoder estimators (not registered: name starts with ``_``).

    Defaults and why: no input scaling (``scaling=None``). A sparse autoencoder reads
    its input as a sum of directions; per-feature standardising or min-max scaling
    stretches some axes and so bends every direction the model is meant to find (and
    the learned atoms would no longer be comparable with directions in the original
    space). The decoder bias, started at the data's geometric median, already does the
    centring. Pass ``scaling="standard"`` for data whose features have unrelated units.
    """

    def _model_config(self, n_features: int) -> ModelConfig:
        # The dense-only fields are unused; set them so that config.json and `lucidae info`
        # describe the model that is built (no hidden layer, linear output, ReLU code only for "sparse").
        code = "relu" if self._model_name == "sparse" else "linear"
        return self._config(
            ModelConfig,
            input_dim=n_features,
            hidden_dims=(),
            activation="linear",
            latent_activation=code,
            output_activation="linear",
        )

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
    another network (:func:`lucidae.activations.record_activations`), into many
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
    epochs, batch_size, lr, lr_schedule, weight_decay, validation_fraction, patience, \
restore_best, shuffle, n_init, random_state, verbose, device, precision
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
        random_state: int | None = None,
        verbose: int = 1,
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
    epochs, batch_size, lr, lr_schedule, weight_decay, validation_fraction, patience, \
restore_best, shuffle, n_init, random_state, verbose, device, precision
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
        random_state: int | None = None,
        verbose: int = 1,
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
        self.device = device
        self.precision = precision


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

    def _model_config(self, n_features: int) -> ModelConfig:
        shape = getattr(self, "image_shape_", None)
        extra = {"input_dim": n_features, "image_shape": tuple(shape) if shape else ()}
        if isinstance(getattr(self, "conv_channels", None), list):  # as read back from config.json
            extra["conv_channels"] = tuple(self.conv_channels)
        return self._config(ModelConfig, **extra)


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
    conv_channels : tuple of int, default=(32, 32, 64, 64)
        Output channels of each stride-2 convolution.
    hidden_dims : tuple of int, default=(128,)
        Dense layers between the convolutions and the code.
    latent_dim, activation, latent_activation, output_activation, scaling
        As for :class:`AutoEncoder`.
    epochs, batch_size, lr, lr_schedule, weight_decay, validation_fraction, patience, \
restore_best, shuffle, n_init, random_state, verbose, device, precision
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
        conv_channels: tuple[int, ...] = (32, 32, 64, 64),
        hidden_dims: tuple[int, ...] = (128,),
        latent_dim: int = 32,
        activation: str = "relu",
        latent_activation: str = "relu",
        output_activation: str = "sigmoid",
        scaling: str | None = "auto",
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
        random_state: int | None = None,
        verbose: int = 1,
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
        self.device = device
        self.precision = precision


class VAE(_ImageEstimator):
    """Variational autoencoder (VAE / beta-VAE) as a scikit-learn transformer.

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
    beta : float, default=6.0
        Weight of the KL term (of the total correlation for :class:`BetaTCVAE`).
    likelihood : {"bernoulli", "gaussian"}, default="bernoulli"
        Decoder distribution: Bernoulli for data in [0, 1] (binary images), Gaussian with
        a shared variance set to its maximum-likelihood value otherwise.
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
    activation, output_activation, scaling
        As for :class:`AutoEncoder`; ``output_activation`` gives the Gaussian mean.
    lr : float, default=1e-3
        Peak Adam learning rate (cosine decay).
    epochs, batch_size, lr_schedule, weight_decay, validation_fraction, patience, \
restore_best, shuffle, n_init, random_state, verbose, device, precision
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
        likelihood: str = "bernoulli",
        architecture: str = "dense",
        image_shape: tuple[int, ...] = (),
        conv_channels: tuple[int, ...] = (32, 32, 64, 64),
        mi_weight: float = 1.0,
        dim_kl_weight: float = 1.0,
        hidden_dims: tuple[int, ...] = (256, 256),
        latent_dim: int = 10,
        activation: str = "relu",
        output_activation: str = "sigmoid",
        scaling: str | None = "auto",
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
        random_state: int | None = None,
        verbose: int = 1,
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
        self.device = device
        self.precision = precision

    def _check_trained(self, Xs: np.ndarray) -> None:
        from lucidae.metrics import COLLAPSE_VARIANCE, collapsed_latents

        rows = np.random.default_rng(0).permutation(len(Xs))[:COLLAPSE_CHECK_ROWS]
        rows.sort()
        Z = self._run(lambda xb: self.module_.encode(xb), np.asarray(Xs[rows], dtype=np.float32))  # (rows, latent)
        if len(Z) >= 2 and len(collapsed_latents(Z)) == Z.shape[1]:
            # the reconstruction term is a sum over features, the KL one is not: the beta that balances
            # them scales with the feature count (Higgins et al. 2017's normalised beta)
            scaled = DEFAULT_BETA * self.n_features_in_ / DEFAULT_BETA_FEATURES
            hint = (
                f" The default beta={DEFAULT_BETA:g} was chosen on {DEFAULT_BETA_FEATURES}-pixel images; "
                f"for {self.n_features_in_} features that suggests about beta={scaled:.2g}."
                if scaled < 0.75 * self.beta
                else ""
            )
            warnings.warn(
                f"Every one of the {Z.shape[1]} latents collapsed to the prior: their posterior means vary by "
                f"less than {COLLAPSE_VARIANCE:g} (variance) over {len(Z)} training samples, so the code carries "
                "nothing and every reconstruction is close to the average sample. The KL term outweighs the "
                f"reconstruction here: lower beta (now {self.beta:g}; 1 is the plain VAE) or train longer "
                "(set_params(warm_start=True, epochs=...).fit(X) trains this model on)." + hint,
                UserWarning,
                stacklevel=4,  # points at the caller of fit (through _ImageEstimator.fit)
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
        ends = self._prepare(np.concatenate(rows, axis=0))  # (2, features), scaled
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
        beta: float = DEFAULT_BETA,
        likelihood: str = "bernoulli",
        architecture: str = "dense",
        image_shape: tuple[int, ...] = (),
        conv_channels: tuple[int, ...] = (32, 32, 64, 64),
        mi_weight: float = 1.0,
        dim_kl_weight: float = 0.05,
        hidden_dims: tuple[int, ...] = (256, 256),
        latent_dim: int = 10,
        activation: str = "relu",
        output_activation: str = "sigmoid",
        scaling: str | None = "auto",
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
        random_state: int | None = None,
        verbose: int = 1,
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
            device=device,
            precision=precision,
        )
