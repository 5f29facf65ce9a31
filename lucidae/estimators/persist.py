"""Loading saved estimators, and the estimator that a detector or topic model holds inside its own folder.

:func:`load` checks everything before it allocates anything: the config against its
schema (:mod:`lucidae.schema`), then the weights' header against the shapes the config
implies, then the weights against their checksum. Nothing is ever unpickled.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from lucidae._version import __version__
from lucidae.errors import ConfigError, CorruptFileError
from lucidae.estimators.base import ESTIMATORS, BaseAutoEncoder, run_score
from lucidae.io import CONFIG, INNER, WEIGHTS, read_config, read_tensors, write_model_dir
from lucidae.models import build_model
from lucidae.scaling import Scaler
from lucidae.schema import (
    check_holder,
    check_tensor_values,
    check_tensors,
    expected_tensors,
    read_safetensors_header,
    validate_holder_config,
    validate_saved_config,
)
from lucidae.train import History, resolve_device, seeded


class NotAnEstimatorError(CorruptFileError):
    """The folder holds another saved lucidae object, not an estimator; the message names its loader.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from lucidae.applications import AnomalyDetector
    >>> from lucidae.estimators import AutoEncoder
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
    spec = validate_saved_config(config, Path(path) / CONFIG, estimators=ESTIMATORS)
    cls, model_cfg, n_features = spec["estimator"], spec["model"], spec["n_features"]
    est = cls(**spec["params"])
    weights = Path(path) / WEIGHTS
    if not weights.is_file():
        raise CorruptFileError(f"{weights} is missing; the model directory is incomplete.")
    expected = expected_tensors(model_cfg, n_features, impute=spec["params"].get("impute") is not None)
    check_tensors(read_safetensors_header(weights, expected), expected, weights)
    tensors = read_tensors(path, config)
    check_tensor_values({k: v for k, v in tensors.items() if k.startswith("module.")}, weights)
    with seeded(0):
        module = build_model(model_cfg)
    module.load_state_dict({k.removeprefix("module."): v for k, v in tensors.items() if k.startswith("module.")})
    module.eval()
    try:
        device = resolve_device(est.get_train_config().device)
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
    if "scaler.fill" in tensors:  # impute: the fill of missing values, part of the saved scaling
        est.scaler_.fill, est.scaler_.impute = tensors["scaler.fill"].numpy().astype(np.float64), est.get_impute()
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


def write_inner_estimator(estimator: Any, folder: str | os.PathLike, owner: str) -> str:
    """Save the lucidae ``estimator`` that a ``owner`` holds into ``folder/estimator``; return its checksum.

    The owner records the checksum in its own ``config.json``, so that
    :func:`read_inner_estimator` refuses a folder whose inner model was swapped.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from lucidae import AutoEncoder
    >>> ae = AutoEncoder(hidden_dims=(), latent_dim=1, epochs=1, verbose=0).fit(np.random.rand(20, 3))
    >>> len(write_inner_estimator(ae, tempfile.mkdtemp(), "AnomalyDetector"))
    64
    """
    if not isinstance(estimator, BaseAutoEncoder):
        raise ConfigError(
            f"Only a {owner} holding a lucidae estimator can be saved; this one holds {type(estimator).__name__}."
        )
    return read_config(estimator.save(Path(folder) / INNER))["sha256"]


def read_inner_estimator(folder: str | os.PathLike, config: dict[str, Any], owner: str) -> Any:
    """Load the estimator in ``folder/estimator`` after checking it is the one ``config`` recorded.

    Raises
    ------
    CorruptFileError
        When the inner folder is missing or damaged, or its checksum is not ``config["inner_sha256"]``.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from lucidae import AutoEncoder
    >>> ae = AutoEncoder(hidden_dims=(), latent_dim=1, epochs=1, verbose=0).fit(np.random.rand(20, 3))
    >>> folder = tempfile.mkdtemp()
    >>> sha = write_inner_estimator(ae, folder, "AnomalyDetector")
    >>> type(read_inner_estimator(folder, {"inner_sha256": sha}, "AnomalyDetector")).__name__
    'AutoEncoder'
    """
    inner = Path(folder) / INNER
    if read_config(inner).get("sha256") != config.get("inner_sha256"):
        raise CorruptFileError(
            f"{inner} is not the model that was saved with the {owner} in {folder} (checksums differ). "
            f"Save the {owner} again."
        )
    return load(inner)


def save_holder(holder: Any, path: str | os.PathLike, tensors: dict[str, torch.Tensor], config: dict[str, Any]) -> Path:
    """Save an object that holds a fitted lucidae estimator in ``estimator_`` (a detector, a topic model).

    The holder's own arrays go to ``path/model.safetensors`` and ``config`` to
    ``path/config.json``, after the version, the class name and the parameters (all but
    ``estimator``); the estimator inside is saved in its own format in ``path/estimator``
    and its checksum recorded, so that :func:`load_holder` refuses a mismatched pair. The
    whole folder, estimator inside included, is swapped in at once
    (:func:`lucidae.io.write_model_dir`), after the config and the arrays have passed the
    checks :func:`load_holder` makes: lucidae never writes a folder it would refuse.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from lucidae.applications import AnomalyDetector
    >>> det = AnomalyDetector(random_state=0).fit(np.random.default_rng(0).normal(size=(100, 3)))
    >>> folder = det.save(tempfile.mkdtemp() + "/det")
    >>> config, tensors, inner = load_holder(folder, "AnomalyDetector", "an AnomalyDetector")
    >>> config["estimator"], type(inner).__name__
    ('AnomalyDetector', 'AutoEncoder')
    """
    check_is_fitted(holder, "estimator_")
    owner = type(holder).__name__
    inner = holder.estimator_
    if not isinstance(inner, BaseAutoEncoder):
        raise ConfigError(
            f"Only a {owner} holding a lucidae estimator can be saved; this one holds {type(inner).__name__}."
        )
    params = holder.get_params(deep=False)
    params.pop("estimator")
    if isinstance(params.get("random_state"), (np.random.RandomState, np.random.Generator)):
        params["random_state"] = int(getattr(inner, "seed_", 0))  # a generator object is saved as the seed it gave
    header = {"lucidae_version": __version__, "estimator": owner, "params": params}
    full = {"format_version": 2, **header, **config, "inner_sha256": "0" * 64, "sha256": "0" * 64}
    try:
        validate_holder_config(full, owner, f"the {owner} to save")
        check_holder(
            full,
            owner,
            tensors,
            n_features=int(inner.n_features_in_),
            latent_dim=int(inner.module_.latent_dim),
            path=f"the {owner} to save",
        )
    except CorruptFileError as err:
        raise ConfigError(f"The {owner} cannot be saved as it is: {err}") from err

    def write_inner(folder: Path) -> dict[str, Any]:
        return {"inner_sha256": write_inner_estimator(inner, folder, owner)}

    return write_model_dir(path, tensors, {**header, **config}, inner=write_inner)


def load_holder(path: str | os.PathLike, owner: str, what: str) -> tuple[dict[str, Any], dict[str, torch.Tensor], Any]:
    """Read what :func:`save_holder` wrote: the config, the holder's tensors and the estimator inside.

    ``owner`` is the class name the folder must name; ``what`` names it in the message
    when it names another ("an AnomalyDetector"). The config is checked against its
    schema (:func:`lucidae.schema.validate_holder_config`), the tensors' header against the
    shapes the config and the estimator inside imply before any is read, then their
    values (:func:`lucidae.schema.check_holder`). See :func:`save_holder` for an example.

    Raises
    ------
    CorruptFileError
        When a file is missing or damaged, the folder holds another kind of object, or
        the inner model is not the one saved with it.
    """
    root = Path(path)
    config = read_config(root)
    if config.get("estimator") != owner:
        raise CorruptFileError(f"{root} holds a {config.get('estimator')!r:.60}, not {what}.")
    validate_holder_config(config, owner, root / CONFIG)
    inner = read_inner_estimator(root, config, owner)
    sizes = {"n_features": int(inner.n_features_in_), "latent_dim": int(inner.module_.latent_dim)}
    weights = root / WEIGHTS
    if not weights.is_file():
        raise CorruptFileError(f"{weights} is missing; the folder is incomplete.")
    check_holder(config, owner, read_safetensors_header(weights), path=weights, **sizes)
    tensors = read_tensors(root, config)
    check_holder(config, owner, tensors, path=weights, **sizes)
    return config, tensors, inner


def load_any(path: str | os.PathLike) -> Any:
    """Load whatever lucidae object ``path`` holds: an estimator, a detector or a topic model.

    ``lucidae.load`` is this function. The folder's ``config.json`` names the class; a
    detector or topic model is handed to its own loader (:data:`LOADERS`), anything else
    to :func:`load`.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from lucidae.applications import AnomalyDetector
    >>> det = AnomalyDetector(random_state=0).fit(np.random.default_rng(0).normal(size=(100, 3)))
    >>> type(load_any(det.save(tempfile.mkdtemp() + "/det"))).__name__
    'AnomalyDetector'
    """
    kind = read_config(path).get("estimator")
    if isinstance(kind, str) and kind in LOADERS:
        # the applications sit above the estimators: their loaders are looked up by name, as the registry says
        module, _, name = LOADERS[kind].rpartition(".")
        return getattr(importlib.import_module(module), name)(path)
    return load(path)
