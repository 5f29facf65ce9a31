"""The ``lucidae`` command: train, inspect and use autoencoders from the shell.

The options of ``lucidae train`` are generated from the dataclass configs in
:mod:`lucidae.config` (name, type, default and help text), so the CLI cannot drift
from the Python API.
"""

from __future__ import annotations

import inspect
import json
import os
import sys
import time
import typing
from dataclasses import fields
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from lucidae.config import DataConfig, ModelConfig, TrainConfig, defaults, field_docs
from lucidae.errors import ConfigError, LucidaeError

app = typer.Typer(
    name="lucidae",
    help=(
        "Autoencoders you can understand. Train a model on a dataset (`lucidae train --data "
        "digits --out runs/digits`), then inspect it (`lucidae info runs/digits`) or use it "
        "(`lucidae encode`, `lucidae reconstruct`). Every option of `train` has a Python "
        "equivalent in lucidae.AutoEncoder."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

RUN_FILE = "run.json"
"""Written by ``lucidae train`` beside the model: the data, the held-out split and its metrics."""

EVAL_ROWS = 8_192
"""Held-out rows evaluated at a time after training (the held-out share of a streamed file may not fit in memory)."""

CLI_CONFIGS: tuple[type, ...] = (ModelConfig, TrainConfig, DataConfig)
"""Configs whose fields become ``lucidae train`` options."""

CLI_EXCLUDE = {"input_dim"}
"""Fields that come from the data, not from the user."""


def _tuple_hint(hint: Any) -> bool:
    """Whether a config field holds a tuple of ints (``tuple[int, ...]``, optionally ``| None``)."""
    return typing.get_origin(hint) is tuple or any(typing.get_origin(a) is tuple for a in typing.get_args(hint))


def _cli_type(hint: Any) -> Any:
    """The type typer sees for a config field's type hint (tuples travel as "128,64")."""
    if _tuple_hint(hint):
        return str | None if type(None) in typing.get_args(hint) else str
    return hint


def _cli_default(value: Any) -> Any:
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    return value


def parse_int_tuple(name: str, text: str) -> tuple[int, ...]:
    """Parse ``"128,64"`` (or ``""`` for none) into ``(128, 64)``.

    Examples
    --------
    >>> parse_int_tuple("hidden_dims", "256, 64")
    (256, 64)
    >>> parse_int_tuple("hidden_dims", "")
    ()
    """
    parts = [p.strip() for p in text.split(",") if p.strip()]
    try:
        return tuple(int(p) for p in parts)
    except ValueError as err:
        raise ConfigError(
            f"--{name.replace('_', '-')} {text!r} is invalid: expected comma-separated integers such as '128,64'."
        ) from err


def config_parameters(classes: tuple[type, ...] = CLI_CONFIGS) -> list[inspect.Parameter]:
    """One keyword-only typer parameter per config field, with its default and docstring.

    Examples
    --------
    >>> names = [p.name for p in config_parameters()]
    >>> "latent_dim" in names and "epochs" in names and "input_dim" not in names
    True
    """
    params = []
    for cls in classes:
        hints = typing.get_type_hints(cls)
        docs = field_docs(cls)
        panel = cls.__name__.removesuffix("Config").lower() + " options"
        for f in fields(cls):
            if f.name in CLI_EXCLUDE:
                continue
            default = defaults(cls)[f.name]
            option = typer.Option(help=docs.get(f.name, ""), rich_help_panel=panel)
            annotation = Annotated[_cli_type(hints[f.name]), option]  # type: ignore[valid-type]
            params.append(
                inspect.Parameter(
                    f.name,
                    inspect.Parameter.KEYWORD_ONLY,
                    default=_cli_default(default),
                    annotation=annotation,
                )
            )
    return params


def with_config_options(func: Any) -> Any:
    """Give ``func(**kwargs)`` the config fields as typed, documented options (see :func:`config_parameters`)."""
    # the module's postponed annotations are strings: resolve them, or typer loses each option's help text
    hints = typing.get_type_hints(func, include_extras=True)
    own = [
        p.replace(annotation=hints.get(p.name, p.annotation))
        for p in inspect.signature(func).parameters.values()
        if p.kind is not inspect.Parameter.VAR_KEYWORD
    ]
    params = own + config_parameters()
    func.__signature__ = inspect.Signature(params)
    func.__annotations__ = {p.name: p.annotation for p in params}
    return func


def split_options(options: dict[str, Any]) -> tuple[ModelConfig, TrainConfig, DataConfig]:
    """Turn the flat CLI options back into validated configs."""
    out = []
    for cls in CLI_CONFIGS:
        hints = typing.get_type_hints(cls)
        values = {}
        for f in fields(cls):
            if f.name in options:
                value = options[f.name]
                if _tuple_hint(hints[f.name]) and isinstance(value, str):
                    value = parse_int_tuple(f.name, value)
                values[f.name] = value
        cfg = cls(**values)
        cfg.validate()
        out.append(cfg)
    return out[0], out[1], out[2]  # type: ignore[return-value]


def estimator_from_configs(model: ModelConfig, train_cfg: TrainConfig, data: DataConfig, *, explicit: Any = ()) -> Any:
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
    from lucidae.estimators import estimator_for

    cls = estimator_for(model.model)
    own = cls().get_params(deep=False)
    config_defaults = {**defaults(ModelConfig), **defaults(TrainConfig)}
    values = {
        **model.to_dict(),
        **train_cfg.to_dict(),
        "scaling": None if data.scaling == "none" else data.scaling,
    }
    values = {k: (tuple(v) if isinstance(v, list) else v) for k, v in values.items() if k in own}
    values = {
        k: v
        for k, v in values.items()
        if k in explicit or not (k in config_defaults and v == config_defaults[k] and own[k] != v)
    }
    return cls(**values)


def _fail(err: Exception) -> typer.Exit:
    typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
    return typer.Exit(code=2)


def _save_output(array: np.ndarray, out: Path, header: list[str]) -> None:
    if out.suffix not in (".csv", ".npy"):
        raise ConfigError(f"--out {out}: unknown suffix {out.suffix!r}; use .npy or .csv.")
    tmp = out.with_name(out.name + ".tmp")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.suffix == ".csv":
            np.savetxt(tmp, array, delimiter=",", header=",".join(header), comments="", fmt="%.7g")
        else:
            with open(tmp, "wb") as fh:
                np.save(fh, array)
        os.replace(tmp, out)
    except OSError as err:
        raise ConfigError(
            f"--out {out} could not be written ({err.strerror or err}). Pick a folder you can write to."
        ) from err


def fit_run(
    est: Any,
    dataset: Any,
    data_cfg: DataConfig,
    out: Path,
    *,
    seed: int = 0,
    quiet: bool = False,
    fit_params: dict[str, Any] | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Hold out ``data_cfg.test_fraction`` of ``dataset``, fit ``est`` on the rest, save it with ``run.json``.

    ``run.json`` records the data spec, the held-out indices and the held-out error, so
    ``lucidae report`` can later evaluate the model on exactly the samples it never saw.
    ``train``, ``demo`` and ``sweep`` all write their runs through here. ``fit_params``
    go to ``est.fit`` (checkpointing, resuming). Under torchrun only rank 0 evaluates and
    writes; the other ranks return ``(out, {})`` after training.

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
    from sklearn.model_selection import train_test_split

    from lucidae.io import write_json
    from lucidae.metrics import FidelityAccumulator

    n = dataset.n_samples
    indices = np.arange(n)
    # a memory-mapped file too large to load (lucidae.datasets.load_dataset) is streamed: the
    # held-out rows are then its last ones, so that training reads one contiguous run of rows
    streaming = isinstance(dataset.X, np.memmap)
    if data_cfg.test_fraction > 0 and n >= 4:
        if streaming:
            n_test = max(1, round(n * data_cfg.test_fraction))
            train_idx, test_idx = indices[: n - n_test], indices[n - n_test :]
        else:
            train_idx, test_idx = train_test_split(indices, test_size=data_cfg.test_fraction, random_state=seed)
    else:
        train_idx, test_idx = indices, indices[:0]
    train_idx, test_idx = np.sort(train_idx), np.sort(test_idx)
    if not quiet:
        typer.echo(
            f"training {type(est).__name__} on {dataset.name}: {len(train_idx)} samples x "
            f"{dataset.n_features} features ({len(test_idx)} held out"
            + (", the last rows; streamed from disk: the file is too large to load)" if streaming else ")"),
            err=True,
        )
    X_train = dataset.X[: len(train_idx)] if streaming else dataset.X[train_idx]
    est.fit(X_train, feature_names=dataset.feature_names, image_shape=dataset.image_shape, **(fit_params or {}))
    from lucidae.distributed import is_main

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
        "metrics": {},
    }
    if len(test_idx):
        from lucidae.models.vae import VariationalAutoEncoder

        acc = FidelityAccumulator()
        variational = isinstance(est.module_, VariationalAutoEncoder)
        codes = []  # a VAE's held-out posterior means, to count the latents the KL switched off
        for start in range(0, len(test_idx), EVAL_ROWS):  # in blocks: the held-out rows may not fit in memory
            block = np.asarray(dataset.X[test_idx[start : start + EVAL_ROWS]])
            acc.update(est.scaler_.transform(block), est.scaler_.transform(est.reconstruct(block)))
            if variational:
                codes.append(est.transform(block))
        record["metrics"] = {"test_fvu": acc.fvu, "test_mse": acc.mse}
        if variational and len(test_idx) >= 2:
            from lucidae.metrics import collapsed_latents

            record["metrics"]["test_collapsed_latents"] = int(len(collapsed_latents(codes)))
    out_dir = est.save(out)
    write_json(out_dir / RUN_FILE, record)
    return out_dir, record


@app.command()
@with_config_options
def train(
    ctx: typer.Context,
    *,
    out: Annotated[Path, typer.Option(help="Folder to write the model, its run record and later its report.")] = Path(
        "runs/latest"
    ),
    resume: Annotated[
        Path | None,
        typer.Option(
            help="Continue the interrupted run in this folder from its last checkpoint, with the options it "
            "was started with (other options are ignored)."
        ),
    ] = None,
    checkpoint_every: Annotated[
        int, typer.Option(help="Epochs between checkpoints in OUT/checkpoint (0: only when interrupted).", min=0)
    ] = 1,
    **options: Any,
) -> None:
    """Train an autoencoder on a dataset and save it to --out.

    A share of the data (--test-fraction) is held out and never trained on; its
    reconstruction error is printed and stored in OUT/run.json. A checkpoint is kept in
    OUT/checkpoint: after Ctrl-C, `lucidae train --resume OUT` continues the run. Under
    `torchrun --nproc_per_node=N -m lucidae train ...` the processes train one model
    together (DistributedDataParallel) and only the first writes files.
    """
    from lucidae.checkpoint import CHECKPOINT_DIR
    from lucidae.datasets import load_dataset
    from lucidae.distributed import init_from_env, shutdown
    from lucidae.train import TrainingInterrupted

    main = init_from_env().rank == 0  # kept: after shutdown() every process looks like rank 0
    try:
        if resume is not None:
            out = resume
            options = read_train_options(resume)
            explicit = set(options)  # only the options the user set were stored
        else:
            explicit = _explicit_options(ctx, options)
        model_cfg, train_cfg, data_cfg = split_options(options)
        if resume is None and main:  # first, so that an interrupted run can be resumed
            write_train_options(out, {k: v for k, v in options.items() if k in explicit})
        dataset = load_dataset(data_cfg.data)
        est = estimator_from_configs(model_cfg, train_cfg, data_cfg, explicit=explicit)
        fit_params = {
            "checkpoint_dir": Path(out) / CHECKPOINT_DIR,
            "resume": resume is not None,
            "checkpoint_every": checkpoint_every,
        }
        out_dir, record = fit_run(
            est, dataset, data_cfg, out, seed=train_cfg.random_state or 0, quiet=not main, fit_params=fit_params
        )
        shutdown()
    except TrainingInterrupted as stop:
        if main:
            typer.echo(f"{stop}\nResume with: lucidae train --resume {out}", err=True)
        raise typer.Exit(code=130) from stop
    except LucidaeError as err:
        raise _fail(err) from err
    if not main:
        return
    if record["metrics"]:
        typer.echo(
            f"held-out FVU {record['metrics']['test_fvu']:.4f} "
            f"(explained variance {1 - record['metrics']['test_fvu']:.4f})"
        )
    if "test_collapsed_latents" in record["metrics"]:
        collapsed, width = record["metrics"]["test_collapsed_latents"], est.model_config_.latent_dim
        typer.echo(
            f"latents: {width - collapsed} of {width} active on the held-out data, {collapsed} collapsed to the prior"
            + (f" (`lucidae prune {out_dir} --out ... --amount 0` removes them)" if 0 < collapsed < width else "")
        )
    typer.echo(f"model saved to {out_dir}")


TRAIN_OPTIONS = "train_options.json"
"""Written by ``lucidae train`` into OUT before training: the options, for ``--resume``."""


def _explicit_options(ctx: typer.Context, options: dict[str, Any]) -> set[str]:
    """The options given on the command line (or environment), as opposed to left at their defaults.

    A family's own defaults (see :func:`estimator_from_configs`) replace only the options
    the user did not give, even when the user gives the config's default value.
    """
    sources = {name: ctx.get_parameter_source(name) for name in options}
    return {name for name, src in sources.items() if src is not None and src.name not in ("DEFAULT", "DEFAULT_MAP")}


def write_train_options(out: Path, options: dict[str, Any]) -> None:
    """Store the options of ``lucidae train`` in ``out`` (atomically), so ``--resume`` can reuse them."""
    from lucidae.io import write_json

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / TRAIN_OPTIONS, options)


def read_train_options(run_dir: Path) -> dict[str, Any]:
    """The options an interrupted ``lucidae train`` run was started with.

    Raises
    ------
    ConfigError
        When ``run_dir`` has no readable options file, or it holds unknown options.

    Examples
    --------
    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> write_train_options(d, {"latent_dim": 4, "hidden_dims": "16"})
    >>> read_train_options(d)["latent_dim"]
    4
    """
    path = Path(run_dir) / TRAIN_OPTIONS
    try:
        options = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ConfigError(
            f"--resume {run_dir}: {path} could not be read ({err}). Pass the --out folder of a run that "
            "`lucidae train` started."
        ) from err
    known = {f.name for cls in CLI_CONFIGS for f in fields(cls)}
    if not isinstance(options, dict) or not set(options) <= known:
        extra = sorted(set(options) - known) if isinstance(options, dict) else options
        raise ConfigError(f"{path} holds unknown options {extra!r}; it was not written by this lucidae.")
    return options


def _load_model_and_data(run_dir: Path, data: str) -> tuple[Any, Any]:
    from lucidae.datasets import load_dataset
    from lucidae.estimators import load

    return load(run_dir), load_dataset(data)


@app.command()
def encode(
    run_dir: Annotated[Path, typer.Argument(help="A model folder written by `lucidae train`.")],
    data: Annotated[str, typer.Option(help="Dataset name or path to encode.")] = "digits",
    out: Annotated[Path, typer.Option(help="Where to write the codes (.npy or .csv).")] = Path("codes.npy"),
) -> None:
    """Encode data with a trained model and write the latent codes."""
    try:
        est, ds = _load_model_and_data(run_dir, data)
        codes = est.transform(ds.X)
        _save_output(codes, out, list(est.get_feature_names_out()))
    except LucidaeError as err:
        raise _fail(err) from err
    typer.echo(f"wrote codes of shape {codes.shape} to {out}")


@app.command()
def reconstruct(
    run_dir: Annotated[Path, typer.Argument(help="A model folder written by `lucidae train`.")],
    data: Annotated[str, typer.Option(help="Dataset name or path to reconstruct.")] = "digits",
    out: Annotated[Path, typer.Option(help="Where to write the reconstructions (.npy or .csv).")] = Path(
        "reconstructions.npy"
    ),
) -> None:
    """Reconstruct data with a trained model (in the data's original units) and report the error."""
    from lucidae.metrics import fvu

    try:
        est, ds = _load_model_and_data(run_dir, data)
        recon = est.reconstruct(ds.X)
        _save_output(recon, out, list(est.feature_names_))
        error = fvu(est.scaler_.transform(ds.X), est.scaler_.transform(recon))
    except LucidaeError as err:
        raise _fail(err) from err
    typer.echo(f"FVU {error:.4f}; wrote reconstructions of shape {recon.shape} to {out}")


@app.command()
def prune(
    run_dir: Annotated[Path, typer.Argument(help="A model folder written by `lucidae train` (any family).")],
    out: Annotated[Path, typer.Option(help="Folder to write the pruned model to.")],
    amount: Annotated[float, typer.Option(help="Share of weights to set to zero, smallest magnitudes first.")] = 0.5,
    scope: Annotated[
        str, typer.Option(help='"global": the share applies over all weights together; "layer": within each matrix.')
    ] = "global",
    remove_dead: Annotated[
        bool, typer.Option(help="Remove latents and hidden units that are constant on the data.")
    ] = True,
    data: Annotated[str, typer.Option(help="Dataset name or path to measure fidelity and find dead latents on.")] = (
        "digits"
    ),
    fine_tune_epochs: Annotated[
        int, typer.Option(help="Then train the pruned model this many epochs on the data, pruned weights held at 0.")
    ] = 0,
) -> None:
    """Simplify a model: zero its smallest weights, drop its dead units, and report the fidelity cost."""
    from lucidae.prune import prune as prune_estimator

    try:
        est, ds = _load_model_and_data(run_dir, data)
        result = prune_estimator(
            est, ds.X, amount=amount, scope=scope, remove_dead=remove_dead, fine_tune_epochs=fine_tune_epochs
        )
        path = result.estimator.save(out)
    except LucidaeError as err:
        raise _fail(err) from err
    typer.echo(
        f"FVU {result.fvu_before:.4f} -> {result.fvu_after:.4f}; non-zero weights "
        f"{result.nonzero_weights_before:,} -> {result.nonzero_weights_after:,}; latents "
        f"{result.latent_dim_before} -> {result.latent_dim_after}; layers "
        f"{'-'.join(est.model_config_.layer_shapes())} -> {'-'.join(result.estimator.model_config_.layer_shapes())}; "
        f"saved to {path}"
    )


def _detector_info(run_dir: Path, as_json: bool) -> None:
    """Print what `lucidae info` knows of a folder written by `AnomalyDetector.save` / `lucidae detect --save`."""
    from lucidae.applications import load_detector

    try:
        det = load_detector(run_dir)
    except LucidaeError as err:
        raise _fail(err) from err
    inner, cfg = det.estimator_, det.estimator_.model_config_
    arch = "-".join(cfg.layer_shapes())
    summary = {
        "estimator": "AnomalyDetector",
        "contamination": det.contamination,
        "scoring": det.scoring,
        "threshold": det.threshold_,
        "n_neighbors": det.n_neighbors,
        "n_features_in": det.n_features_in_,
        "training_samples": int(len(det.labels_)),
        "training_outliers": int(det.labels_.sum()),
        "inner": {
            "estimator": type(inner).__name__,
            "model": cfg.to_dict(),
            "parameters": sum(p.numel() for p in inner.module_.parameters()),
            "epochs_run": inner.n_iter_,
        },
    }
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    typer.echo(
        "\n".join(
            [
                f"AnomalyDetector (scoring {det.scoring!r}) on {det.n_features_in_} features",
                f"contamination {det.contamination:g}: threshold {det.threshold_:.5g} on the anomaly score "
                f"(above it = outlier); {summary['training_outliers']} of {summary['training_samples']} "
                "training samples flagged",
                f"inner model: {summary['inner']['estimator']} ({cfg.model}) {arch}, "
                f"{summary['inner']['parameters']:,} parameters, trained {inner.n_iter_} epochs",
                "load it with lucidae.applications.load_detector",
            ]
        )
    )


def _topics_info(run_dir: Path, as_json: bool, top: int = 8) -> None:
    """Print what `lucidae info` knows of a folder written by `TextTopics.save` / `lucidae topics --save`."""
    from lucidae.applications import load_topics

    try:
        tt = load_topics(run_dir)
    except LucidaeError as err:
        raise _fail(err) from err
    found = tt.topics(top=top, n_documents=0)
    summary = {
        "estimator": "TextTopics",
        "params": {k: v for k, v in tt.get_params(deep=False).items() if k != "estimator"},
        "vocabulary_size": len(tt.vocabulary_),
        "n_documents": tt.n_documents_,
        "inner": {"estimator": type(tt.estimator_).__name__, "model": tt.estimator_.model_config_.to_dict()},
        "topics": [{"latent": t.latent, "frequency": t.frequency, "words": [w for w, _ in t.words]} for t in found],
    }
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    typer.echo(
        f"TextTopics: {tt.components_.shape[0]} latents ({type(tt.estimator_).__name__}) over a vocabulary of "
        f"{len(tt.vocabulary_)} words, fitted on {tt.n_documents_} documents; {len(found)} latents used"
    )
    for t in found:
        typer.echo(str(t))
    typer.echo("load it with lucidae.applications.load_topics")


@app.command()
def info(
    run_dir: Annotated[
        Path,
        typer.Argument(help="A folder written by `lucidae train`, `lucidae detect --save` or `lucidae topics --save`."),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print the full record as JSON.")] = False,
) -> None:
    """Describe a saved model (architecture, size, scaling, training, held-out error), detector or topic model."""
    from lucidae.estimators import NotAnEstimatorError, load
    from lucidae.io import read_run_record

    try:
        est = load(run_dir)
        run = read_run_record(run_dir, RUN_FILE)
    except NotAnEstimatorError:
        from lucidae.io import read_config

        if read_config(run_dir).get("estimator") == "TextTopics":
            return _topics_info(run_dir, as_json)
        return _detector_info(run_dir, as_json)
    except LucidaeError as err:
        raise _fail(err) from err
    n_params = sum(p.numel() for p in est.module_.parameters())
    hist = est.history_
    summary = {
        "estimator": type(est).__name__,
        "model": est.model_config_.to_dict(),
        "parameters": n_params,
        "scaling": est.scaler_.kind,
        "n_features_in": est.n_features_in_,
        "image_shape": est.image_shape_,
        "epochs_run": est.n_iter_,
        "best_epoch": hist.best_epoch,
        "final_loss": hist.losses[-1] if hist.records else None,
        "fit_seconds": round(est.fit_seconds_, 2),
        "metrics": run.get("metrics", {}),
        "data": run.get("dataset", {}),
    }
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    cfg = est.model_config_
    arch = "-".join(cfg.layer_shapes())
    lines = [
        f"{summary['estimator']} ({cfg.model}) {arch}, {n_params:,} parameters",
        f"activations: hidden {cfg.activation}, latent {cfg.latent_activation}, output {cfg.output_activation}",
        f"scaling: {summary['scaling']}; input features: {est.n_features_in_}"
        + (f" (images {est.image_shape_})" if est.image_shape_ else ""),
        f"trained {est.n_iter_} epochs in {est.fit_seconds_:.1f} s; final loss "
        + (f"{summary['final_loss']:.5g}" if summary["final_loss"] is not None else "not recorded")
        + (f"; best epoch {hist.best_epoch}" if hist.best_epoch else ""),
    ]
    if summary["data"]:
        lines.append(f"data: {summary['data'].get('description', '')}")
    for key, value in summary["metrics"].items():
        lines.append(f"{key}: {value}" if isinstance(value, int) else f"{key}: {value:.4f}")
    typer.echo("\n".join(lines))


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Folder for the demo run.")] = Path("runs/demo"),
) -> None:
    """Train the classic model (hidden 128, code 32) on the bundled digits, compare with PCA, save it, report it."""
    from sklearn.decomposition import PCA

    from lucidae.datasets import load_digits
    from lucidae.estimators import AutoEncoder
    from lucidae.metrics import fvu
    from lucidae.report import build_report

    start = time.perf_counter()
    ds = load_digits()
    ae = AutoEncoder(hidden_dims=(128,), latent_dim=32, random_state=0)
    path, record = fit_run(ae, ds, DataConfig(data="digits", test_fraction=0.2), out, seed=0)
    test = np.asarray(record["test_indices"], dtype=np.int64)
    X_train, X_test = np.delete(ds.X, test, axis=0), ds.X[test]
    ae_fvu = fvu(X_test, ae.reconstruct(X_test))
    typer.echo(
        f"classic autoencoder 64-128-32-128-64 on digits: held-out FVU {ae_fvu:.4f} "
        f"({ae.n_iter_} epochs, {ae.fit_seconds_:.1f} s)"
    )
    for k in (8, 32):
        pca = PCA(k).fit(X_train)
        typer.echo(
            f"PCA with {k} components: held-out FVU {fvu(X_test, pca.inverse_transform(pca.transform(X_test))):.4f}"
        )
    typer.echo(f"model saved to {path} (inspect with: lucidae info {path})")
    report = build_report(path)
    typer.echo(f"report written to {report} ({time.perf_counter() - start:.1f} s in all); open it in a browser")


@app.command()
def report(
    run_dir: Annotated[Path, typer.Argument(help="A run folder written by `lucidae train`.")],
    data: Annotated[
        str | None, typer.Option(help="Dataset name or path; default: the data named in RUN_DIR/run.json.")
    ] = None,
    max_latents: Annotated[int, typer.Option(help="Latent cards to draw (strongest first); all are tabled.")] = 24,
) -> None:
    """Write RUN_DIR/report.html (one self-contained page) and RUN_DIR/metrics.json."""
    from lucidae.datasets import load_dataset
    from lucidae.report import build_report

    try:
        dataset = load_dataset(data) if data is not None else None
        path = build_report(run_dir, dataset=dataset, max_latents=max_latents)
    except LucidaeError as err:
        raise _fail(err) from err
    typer.echo(f"report written to {path}")


def _sweep(
    *,
    out: Annotated[Path, typer.Option(help="Folder for the runs, sweep.html and sweep.json.")] = Path("runs/sweep"),
    **options: Any,
) -> None:
    """Train a grid over the levers (code size, depth, width, linear or ReLU, L1/L2, TopK k, beta) and chart it.

    Writes OUT/sweep.html: held-out FVU against L0, weight sparsity and MIG (where the data
    has known factors), the Pareto front marked, each point linked to its run's report.
    Finished runs are reused when the sweep is run again.
    """
    from lucidae.report.sweep import SweepConfig, run_sweep

    try:
        cfg = SweepConfig.from_cli(options)
        page = run_sweep(cfg, out, log=lambda line: typer.echo(line, err=True))
    except LucidaeError as err:
        raise _fail(err) from err
    typer.echo(f"sweep page written to {page}")


def _register_sweep() -> None:
    # The grid's options come from SweepConfig, as train's come from the model/train/data configs.
    from lucidae.report.sweep import SweepConfig

    own = [p for p in inspect.signature(_sweep).parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    params = own + config_parameters((SweepConfig,))
    _sweep.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    _sweep.__annotations__ = {p.name: p.annotation for p in params}
    app.command(name="sweep")(_sweep)


_register_sweep()


def _register_applications() -> None:
    # detect, compress and decompress live beside the code they drive.
    from lucidae.applications.commands import register

    register(app)


_register_applications()


def main() -> None:
    """Entry point of the ``lucidae`` console script."""
    try:
        app()
    except KeyboardInterrupt:  # pragma: no cover - interactive
        typer.echo("interrupted", err=True)
        sys.exit(130)
