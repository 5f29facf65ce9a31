"""The run: a model trained on a dataset with a share held out, saved with the record of both.

A run folder holds the model (``model.safetensors`` + ``config.json``) and its run record
``run.json`` (:data:`RUN_FILE`): the data it was trained on, the held-out samples and
their reconstruction error. ``lucidae train``, ``demo`` and ``sweep`` all train through
:func:`fit_run`; ``lucidae report`` and :func:`lucidae.report.build_report` read the
record back and evaluate on exactly the samples the model never saw
(:func:`eval_split`). :func:`estimator_from_configs` turns the CLI's configs into the
estimator they describe.

Examples
--------
>>> import tempfile
>>> from lucidae.datasets import load_digits
>>> from lucidae.estimators import AutoEncoder
>>> est = AutoEncoder(hidden_dims=(), latent_dim=2, epochs=1, verbose=0, random_state=0)
>>> out, record = fit_run(est, load_digits(), DataConfig(), Path(tempfile.mkdtemp()) / "run", quiet=True)
>>> test, train, held_out = eval_split(read_run_record(out), 1797)
>>> len(test), len(train), held_out
(360, 1437, True)
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.model_selection import train_test_split

from lucidae.config import DataConfig, ModelConfig, TrainConfig, defaults
from lucidae.datasets import Dataset
from lucidae.distributed import is_main
from lucidae.errors import DataError, LucidaeError
from lucidae.estimators import BaseAutoEncoder, estimator_for
from lucidae.io import CONFIG, RUN_FILE, check_replaceable, read_run_record
from lucidae.memory import check_training
from lucidae.metrics import FidelityAccumulator, collapsed_latents
from lucidae.models.vae import VariationalAutoEncoder

EVAL_ROWS = 8_192
"""Held-out rows evaluated at a time after training (the held-out share of a streamed file may not fit in memory)."""


NOT_COMPUTED = {
    "test_fvu": "the held-out data has (almost) no variance in the model's scaled space, so the fraction of "
    "variance unexplained is undefined",
    "test_mse": "the reconstructions of the held-out data overflowed",
}
"""Why a held-out metric is recorded as null: ``run.json`` then says so in ``metrics_notes``."""


class SaveFailedError(LucidaeError, OSError):
    """The model was trained but could not be written; the message says where the trained weights are.

    Examples
    --------
    >>> issubclass(SaveFailedError, OSError) and issubclass(SaveFailedError, LucidaeError)
    True
    """


def _stderr(line: str) -> None:
    print(line, file=sys.stderr)


def finite_metrics(metrics: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """``metrics`` with every NaN or infinite value made None, and the reason for each.

    JSON has no NaN or infinity; a metric that cannot be computed is recorded as null with
    a note, rather than failing the write of the run record (or writing invalid JSON).

    Examples
    --------
    >>> finite_metrics({"test_fvu": float("inf"), "test_mse": 0.5})
    ({'test_fvu': None, 'test_mse': 0.5}, {'test_fvu': "the held-out data has (almost) no variance in the \
model's scaled space, so the fraction of variance unexplained is undefined"})
    """
    clean, notes = {}, {}
    for key, value in metrics.items():
        if isinstance(value, float) and not math.isfinite(value):
            clean[key] = None
            notes[key] = NOT_COMPUTED.get(key, f"the value was {value}, which JSON cannot hold")
        else:
            clean[key] = value
    return clean, notes


def check_training_memory(est: BaseAutoEncoder, dataset: Dataset) -> None:
    """Refuse a model whose training would not fit in this machine's memory, before anything is allocated.

    The estimate (:func:`lucidae.memory.training_bytes`) counts the weights, their
    gradients, Adam's moments and the copies training keeps, and one batch's activations;
    parameters are counted without allocating (:func:`lucidae.memory.parameter_count`).
    A config the estimator itself refuses is left for ``fit`` to report.

    Raises
    ------
    ConfigError
        Naming the estimate, the machine's memory and the options to shrink.

    Examples
    --------
    >>> from lucidae.datasets import load_digits
    >>> from lucidae.estimators import AutoEncoder
    >>> check_training_memory(AutoEncoder(hidden_dims=(10**6, 10**6)), load_digits())  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    lucidae.errors.ConfigError: training AutoEncoder 64-1000000-...-64 (2,000,196,000,096 parameters) needs ... TB...
    """
    had_shape = hasattr(est, "image_shape_")
    if not had_shape:
        est.image_shape_ = dataset.image_shape  # as fit sets it before it builds the model config
    try:
        cfg = est.get_model_config(dataset.n_features)
        batch = est.get_train_config().batch_size
    except (LucidaeError, AttributeError, TypeError, ValueError, RuntimeError):
        return  # fit reports a config it refuses, in its own words
    finally:
        if not had_shape:
            del est.image_shape_
    check_training(cfg, batch_size=min(batch, dataset.n_samples), what=type(est).__name__)


def estimator_from_configs(
    model: ModelConfig, train_cfg: TrainConfig, data: DataConfig, *, explicit: Collection[str] = ()
) -> BaseAutoEncoder:
    """Build the (unfitted) estimator for ``model.model`` with every parameter it accepts.

    Examples
    --------
    >>> est = estimator_from_configs(ModelConfig(latent_dim=4), TrainConfig(epochs=2), DataConfig())
    >>> type(est).__name__, est.latent_dim, est.epochs
    ('AutoEncoder', 4, 2)

    An option left at its config default takes the family's own default, where the
    family sets one on evidence, unless its name is in ``explicit`` (the options the
    user set, even to the config's default value):

    >>> estimator_from_configs(ModelConfig(model="linear"), TrainConfig(), DataConfig()).batch_size
    2048
    >>> cfgs = ModelConfig(model="linear"), TrainConfig(), DataConfig()
    >>> estimator_from_configs(*cfgs, explicit={"batch_size"}).batch_size
    128
    """
    cls = estimator_for(model.model)
    own = cls().get_params(deep=False)
    config_defaults = {**defaults(ModelConfig), **defaults(TrainConfig)}
    # the estimators speak the configs' scaling vocabulary ("none" included): passed as it is
    values = {**model.to_dict(), **train_cfg.to_dict(), "scaling": data.scaling, "impute": data.impute}
    values = {k: (tuple(v) if isinstance(v, list) else v) for k, v in values.items() if k in own}
    values = {
        k: v
        for k, v in values.items()
        if k in explicit or not (k in config_defaults and v == config_defaults[k] and own[k] != v)
    }
    return cls(**values)


def split_rows(n: int, test_fraction: float, *, seed: int, streaming: bool) -> tuple[np.ndarray, np.ndarray]:
    """Sorted training and held-out row numbers of a run over ``n`` samples.

    A streamed file holds out its last rows, so that training reads one contiguous run
    of rows; in-memory data holds out a random share (``train_test_split``).

    Examples
    --------
    >>> train, test = split_rows(10, 0.2, seed=0, streaming=True)
    >>> test.tolist()
    [8, 9]
    """
    indices = np.arange(n)
    if test_fraction > 0 and n >= 4:
        if streaming:
            n_test = max(1, round(n * test_fraction))
            train_idx, test_idx = indices[: n - n_test], indices[n - n_test :]
        else:
            train_idx, test_idx = train_test_split(indices, test_size=test_fraction, random_state=seed)
    else:
        train_idx, test_idx = indices, indices[:0]
    return np.sort(train_idx), np.sort(test_idx)


def held_out_metrics(est: BaseAutoEncoder, X: Any, test_idx: np.ndarray) -> dict[str, Any]:
    """Held-out FVU and MSE in the model's scaled space; for a VAE, how many latents collapsed.

    The rows are read and evaluated in blocks of :data:`EVAL_ROWS`: the held-out share
    of a streamed file may not fit in memory.
    """
    if not len(test_idx):
        return {}
    acc = FidelityAccumulator()
    variational = isinstance(est.module_, VariationalAutoEncoder)
    codes = []  # a VAE's held-out posterior means, to count the latents the KL switched off
    for start in range(0, len(test_idx), EVAL_ROWS):
        block = np.asarray(X[test_idx[start : start + EVAL_ROWS]])
        acc.update(est.scaler_.transform(block), est.scaler_.transform(est.reconstruct(block)))
        if variational:
            codes.append(est.transform(block))
    metrics: dict[str, Any] = {"test_fvu": float(acc.fvu), "test_mse": float(acc.mse)}
    if variational and len(test_idx) >= 2:
        metrics["test_collapsed_latents"] = int(len(collapsed_latents(codes)))
    return metrics


def fit_run(
    est: BaseAutoEncoder,
    dataset: Dataset,
    data_cfg: DataConfig,
    out: str | Path,
    *,
    seed: int = 0,
    quiet: bool = False,
    fit_params: dict[str, Any] | None = None,
    log: Callable[[str], None] = _stderr,
) -> tuple[Path, dict[str, Any]]:
    """Hold out ``data_cfg.test_fraction`` of ``dataset``, fit ``est`` on the rest, save it with ``run.json``.

    ``run.json`` records the data spec, the held-out indices and the held-out error, so
    ``lucidae report`` can later evaluate the model on exactly the samples it never saw.
    ``train``, ``demo`` and ``sweep`` all write their runs through here. ``fit_params``
    go to ``est.fit`` (checkpointing, resuming). Under torchrun only rank 0 evaluates and
    writes; the other ranks return ``(out, {})`` after training.

    Parameters
    ----------
    est : estimator
        An unfitted lucidae estimator.
    dataset : Dataset
        The data; a ``numpy.memmap`` ``X`` is streamed and holds out its last rows.
    data_cfg : DataConfig
        The data spec (recorded) and ``test_fraction``.
    out : path-like
        The run folder.
    seed : int, default=0
        Seed of the held-out split.
    quiet : bool, default=False
        Do not announce the training on ``log``.
    fit_params : dict, optional
        Keyword arguments of ``est.fit``.
    log : callable, default=print to stderr
        Where the announcement goes.

    Returns
    -------
    (Path, dict)
        The run folder and the record written to its ``run.json``.

    Examples
    --------
    >>> import tempfile
    >>> from lucidae.datasets import load_digits
    >>> from lucidae.estimators import AutoEncoder
    >>> est = AutoEncoder(hidden_dims=(), latent_dim=2, epochs=1, verbose=0, random_state=0)
    >>> out, rec = fit_run(est, load_digits(), DataConfig(), Path(tempfile.mkdtemp()) / "r", quiet=True)
    >>> len(rec["test_indices"]), sorted(rec["metrics"])
    (360, ['test_fvu', 'test_mse'])
    """
    n = dataset.n_samples
    # a memory-mapped file too large to load (lucidae.datasets.load_dataset) is streamed
    streaming = isinstance(dataset.X, np.memmap)
    train_idx, test_idx = split_rows(n, data_cfg.test_fraction, seed=seed, streaming=streaming)
    if not quiet:
        log(
            f"training {type(est).__name__} on {dataset.name}: {len(train_idx)} samples x "
            f"{dataset.n_features} features ({len(test_idx)} held out"
            + (", the last rows; streamed from disk: the file is too large to load)" if streaming else ")")
        )
    check_replaceable(out)  # before training, not after: a file or a foreign folder is never replaced
    check_training_memory(est, dataset)
    X_train = dataset.X[: len(train_idx)] if streaming else dataset.X[train_idx]
    est.fit(X_train, feature_names=dataset.feature_names, image_shape=dataset.image_shape, **(fit_params or {}))
    if not is_main():
        return Path(out), {}
    record: dict[str, Any] = {
        "data": data_cfg.to_dict(),
        # A relative --data path only resolves from the folder training ran in; reports may run elsewhere.
        "data_path": str(Path(data_cfg.data).resolve()) if Path(data_cfg.data).exists() else None,
        "dataset": {"name": dataset.name, "description": dataset.description, "n_samples": n},
        # a streamed file's held-out rows are one run, recorded as such: millions of indices would not fit run.json
        **({"test_rows": [int(test_idx[0]), int(test_idx[-1]) + 1]} if streaming and len(test_idx) else {}),
        "test_indices": [] if streaming else test_idx.tolist(),
    }
    record["metrics"], notes = finite_metrics(held_out_metrics(est, dataset.X, test_idx))
    if notes:
        record["metrics_notes"] = notes
    try:
        return est.save(out, run=record), record
    except OSError as err:
        checkpoint = (fit_params or {}).get("checkpoint_dir")
        kept = checkpoint is not None and (Path(checkpoint) / CONFIG).is_file()
        raise SaveFailedError(
            f"The model was trained but could not be saved to {out}: {err.strerror or err}"
            + (f" ({err.filename})" if err.filename else "")
            + ". "
            + (
                f"Nothing trained is lost: the trained weights are in the checkpoint {checkpoint}; once the "
                f"problem is fixed (free space, permissions), `lucidae train --resume {out}` saves them "
                "without training again."
                if kept
                else "The fitted estimator is still in memory: fix the problem and call its save() again."
            )
        ) from err


def eval_split(run: dict[str, Any], n_samples: int) -> tuple[np.ndarray, np.ndarray, bool]:
    """Held-out and training indices of a run record; ``held_out`` is False when the run kept nothing back.

    Without held-out samples, the evaluation indices are all ``n_samples``.

    Raises
    ------
    DataError
        When the record names samples the data does not have.

    Examples
    --------
    >>> test, train, held_out = eval_split({"test_indices": [1, 3]}, 5)
    >>> test.tolist(), train.tolist(), held_out
    ([1, 3], [0, 2, 4], True)
    >>> eval_split({}, 3)[0].tolist(), eval_split({}, 3)[2]
    ([0, 1, 2], False)
    """
    if "test_rows" in run:  # a streamed file: the held-out rows are one run at its end
        test = np.arange(*run["test_rows"], dtype=np.int64)
    else:
        test = np.asarray(run.get("test_indices") or [], dtype=np.int64)
    if test.size and (test.min() < 0 or test.max() >= n_samples):
        raise DataError(
            f"run.json lists held-out indices up to {int(test.max())}, but the data has {n_samples} samples. "
            "The data changed since training; train the run again."
        )
    mask = np.zeros(n_samples, dtype=bool)
    mask[test] = True
    train = np.flatnonzero(~mask)
    if test.size:
        return test, train, True
    return np.arange(n_samples), train, False


__all__ = [
    "EVAL_ROWS",
    "NOT_COMPUTED",
    "RUN_FILE",
    "SaveFailedError",
    "check_training_memory",
    "estimator_from_configs",
    "eval_split",
    "finite_metrics",
    "fit_run",
    "held_out_metrics",
    "read_run_record",
    "split_rows",
]
