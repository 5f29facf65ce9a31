"""The ``lucidae`` command: train, inspect and use autoencoders from the shell.

The options of ``lucidae train`` are generated from the dataclass configs in
:mod:`lucidae.config` (:mod:`lucidae.cli.options`), so the CLI cannot drift from the
Python API. The commands are thin: the work is in :mod:`lucidae.runs`,
:mod:`lucidae.report`, :mod:`lucidae.sweep` and the estimators, which each command
imports when it runs, so that ``lucidae --help`` answers without loading torch.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import fields
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from lucidae.cli.applications import register as register_applications
from lucidae.cli.data import READ_OPTIONS, echo_seed, load_data, run_data, save_with_ids, table_fields
from lucidae.cli.interop import register as register_interop
from lucidae.cli.options import (
    CLI_CONFIGS,
    App,
    Group,
    config_from_cli,
    explicit_options,
    fail,
    split_options,
    usage_error,
    with_config_options,
    with_options,
)
from lucidae.config import DataConfig, SweepConfig
from lucidae.errors import ConfigError, LucidaeError
from lucidae.io import RUN_FILE, TRAIN_OPTIONS, write_json

app = App(
    name="lucidae",
    cls=Group,
    help=(
        "Autoencoders you can understand. Train a model on a dataset (`lucidae train --data "
        "digits --out runs/digits`), then inspect it (`lucidae info runs/digits`) or use it "
        "(`lucidae encode`, `lucidae reconstruct`). Every option of `train` has a Python "
        "equivalent in lucidae.AutoEncoder."
    ),
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        from lucidae._version import __version__

        typer.echo(f"lucidae {__version__}")
        raise typer.Exit()


@app.callback()
def _lucidae(
    version: Annotated[
        bool,
        typer.Option("--version", help="Print lucidae's version and exit.", callback=_print_version, is_eager=True),
    ] = False,
) -> None:
    """Autoencoders you can understand."""


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
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite", help="Replace the run already in --out (without it, train refuses an existing one)."
        ),
    ] = False,
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
    from lucidae.cli.runfolder import RunFolder
    from lucidae.distributed import init_from_env, shutdown
    from lucidae.runs import estimator_from_configs, fit_run
    from lucidae.train import TrainingInterrupted

    main = init_from_env().rank == 0  # kept: after shutdown() every process looks like rank 0
    # locked for the whole run; an existing folder needs --overwrite; a failure leaves nothing behind
    folder = RunFolder(
        resume if resume is not None else out, resume=resume is not None, overwrite=overwrite, writer=main
    )
    try:
        folder.claim()
        if resume is not None:
            out = resume
            options = read_train_options(resume)
            explicit = set(options)  # only the options the user set were stored
        else:  # the seed is stored even when left at its default, so that --resume and readers see it
            explicit = explicit_options(ctx, options) | {"random_state"}
        try:
            model_cfg, train_cfg, data_cfg = split_options(options)
        except ConfigError as err:  # an option's value refused: a usage error, before anything is written
            raise usage_error(err) from err
        if resume is None and main:  # first, so that an interrupted run can be resumed
            write_train_options(out, {k: v for k, v in options.items() if k in explicit})
        dataset = load_data(data_cfg.data, {k: getattr(data_cfg, k) for k in table_fields()})
        if main and resume is None:
            echo_seed(train_cfg.random_state)
        est = estimator_from_configs(model_cfg, train_cfg, data_cfg, explicit=explicit)
        fit_params = {
            "checkpoint_dir": Path(out) / CHECKPOINT_DIR,
            "resume": resume is not None,
            "checkpoint_every": checkpoint_every,
        }
        out_dir, record = fit_run(
            est,
            dataset,
            data_cfg,
            out,
            seed=train_cfg.random_state or 0,
            quiet=not main,
            fit_params=fit_params,
            log=lambda line: typer.echo(line, err=True),
        )
        shutdown()
    except TrainingInterrupted as stop:
        if main:
            typer.echo(f"{stop}\nResume with: lucidae train --resume {out}", err=True)
        raise typer.Exit(code=130) from stop
    except LucidaeError as err:
        raise fail(err) from err
    finally:
        folder.release(sys.exc_info()[1])
    if not main:
        return
    if record["metrics"].get("test_fvu") is not None:
        typer.echo("held-out " + _metric_line("FVU", record["metrics"]["test_fvu"]))
    for key, why in record.get("metrics_notes", {}).items():
        typer.echo(f"{key} not recorded: {why}")
    if "test_collapsed_latents" in record["metrics"]:
        collapsed, width = record["metrics"]["test_collapsed_latents"], est.model_config_.latent_dim
        typer.echo(
            f"latents: {width - collapsed} of {width} active on the held-out data, {collapsed} collapsed to the prior"
            + (f" (`lucidae prune {out_dir} --out ... --amount 0` removes them)" if 0 < collapsed < width else "")
        )
    typer.echo(f"model saved to {out_dir}")


def write_train_options(out: Path, options: dict[str, Any]) -> None:
    """Store the options of ``lucidae train`` in ``out`` (atomically), so ``--resume`` can reuse them."""
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
        if path.stat().st_size > 1 << 20:
            raise ValueError(f"{path.stat().st_size} bytes; an options file is never that large")
        options = json.loads(path.read_text(encoding="utf-8"))
    # ValueError covers JSONDecodeError and UnicodeDecodeError; RecursionError, nesting thousands deep
    except (OSError, ValueError, RecursionError) as err:
        raise ConfigError(
            f"--resume {run_dir}: {path} could not be read ({err}). Pass the --out folder of a run that "
            "`lucidae train` started."
        ) from err
    known = {f.name for cls in CLI_CONFIGS for f in fields(cls)}
    if not isinstance(options, dict) or not set(options) <= known:
        extra = sorted(set(options) - known) if isinstance(options, dict) else options
        raise ConfigError(f"{path} holds unknown options {extra!r:.200}; it was not written by this lucidae.")
    for key, value in options.items():  # what the CLI writes: numbers, strings, booleans, null, lists of numbers
        flat = value if isinstance(value, list) else [value]
        if len(flat) > 10_000 or not all(v is None or isinstance(v, (str, int, float, bool)) for v in flat):
            raise ConfigError(
                f"{path}: option {key!r} is {value!r:.80}, which `lucidae train` never writes. The file is damaged "
                "or was edited; start the run again without --resume."
            )
    return options


_RUN_DATA_HELP = "Dataset name or path; default: the data RUN_DIR was trained on, read as training read it."


def encode(
    ctx: typer.Context,
    run_dir: Annotated[Path, typer.Argument(help="A model folder written by `lucidae train`.")],
    *,
    data: Annotated[str | None, typer.Option(help=_RUN_DATA_HELP)] = None,
    out: Annotated[
        Path, typer.Option(help="Where to write the codes (.npy, or .csv: the table's id column first, if any).")
    ] = Path("codes.npy"),
    **options: Any,
) -> None:
    """Encode data with a trained model and write the latent codes (by default RUN_DIR's own data)."""
    try:
        run = run_data(run_dir, data, options, explicit_options(ctx, options))
        est, ds = run.estimator, run.dataset
        codes = est.transform(ds.X)
        note = save_with_ids(codes, out, list(est.get_feature_names_out()), getattr(ds, "ids", None), run.id_name)
    except LucidaeError as err:
        raise fail(err) from err
    typer.echo(f"wrote codes of shape {codes.shape} for {ds.name} to {out}{note}")


def reconstruct(
    ctx: typer.Context,
    run_dir: Annotated[Path, typer.Argument(help="A model folder written by `lucidae train`.")],
    *,
    data: Annotated[str | None, typer.Option(help=_RUN_DATA_HELP)] = None,
    out: Annotated[Path, typer.Option(help="Where to write the reconstructions (.npy or .csv).")] = Path(
        "reconstructions.npy"
    ),
    **options: Any,
) -> None:
    """Reconstruct data with a trained model (in the data's original units) and report the error."""
    from lucidae.metrics import fvu
    from lucidae.runs import eval_split

    try:
        run = run_data(run_dir, data, options, explicit_options(ctx, options))
        est, ds = run.estimator, run.dataset
        recon = est.reconstruct(ds.X)
        note = save_with_ids(recon, out, list(est.feature_names_), getattr(ds, "ids", None), run.id_name)
        X_s, recon_s = est.scaler_.transform(ds.X), est.scaler_.transform(recon)
        error = fvu(X_s, recon_s)
        test, _, held_out = eval_split(run.record, ds.n_samples) if run.own else (None, None, False)
        # the run's own data: also on the rows it never trained on, as train reported
        held = f", {fvu(X_s[test], recon_s[test]):.4f} on its {len(test)} held-out rows" if held_out else ""
    except LucidaeError as err:
        raise fail(err) from err
    typer.echo(f"FVU {error:.4f} on all {ds.n_samples} samples of {ds.name}{held}; wrote reconstructions of "
               f"shape {recon.shape} to {out}{note}")  # fmt: skip


# the commands that read data take the table options of train (--id-column, --drop, --delimiter)
for _command in (encode, reconstruct):
    app.command(name=_command.__name__)(with_options(_command, (DataConfig,), only=table_fields(READ_OPTIONS)))


FINE_TUNE_HINT = 0.1
"""``prune`` suggests fine-tuning when the held-out FVU grew by more than this share of its value (and 0.01)."""


def prune(
    ctx: typer.Context,
    run_dir: Annotated[Path, typer.Argument(help="A model folder written by `lucidae train` (any family).")],
    *,
    out: Annotated[Path, typer.Option(help="Folder to write the pruned model (and its run record) to.")],
    amount: Annotated[float, typer.Option(help="Share of weights to set to zero, smallest magnitudes first.")] = 0.5,
    scope: Annotated[
        Literal["global", "layer"],
        typer.Option(help='"global": the share applies over all weights together; "layer": within each matrix.'),
    ] = "global",
    remove_dead: Annotated[
        bool, typer.Option(help="Remove latents and hidden units that are constant on the training rows.")
    ] = True,
    data: Annotated[
        str | None,
        typer.Option(
            help="Dataset name or path to prune with (all of it); default: RUN_DIR's own data, its training rows "
            "to find dead units and fine-tune on, its held-out rows to measure the FVU on."
        ),
    ] = None,
    fine_tune_epochs: Annotated[
        int,
        typer.Option(help="Then train the pruned model this many epochs on the training rows, pruned weights kept 0."),
    ] = 0,
    **options: Any,
) -> None:
    """Simplify a model: zero its smallest weights, drop its dead units, and report the fidelity cost.

    The FVU before and after is measured on the run's held-out rows (as `lucidae train`
    reports it); dead units are found, and fine-tuning is done, on its training rows only.
    OUT gets its own run record, so `lucidae report OUT` and `lucidae info OUT` work.
    """
    import numpy as np

    from lucidae.prune import prune as prune_estimator
    from lucidae.runs import eval_split, held_out_metrics

    try:  # the options first: a bad one is a usage error, found before any model is loaded
        if isinstance(amount, bool) or not 0.0 <= amount <= 1.0:
            raise ConfigError(f"amount={amount!r} is invalid: expected the share of weights to zero, in [0, 1].")
        if fine_tune_epochs < 0:
            raise ConfigError(f"fine_tune_epochs={fine_tune_epochs!r} is invalid: expected an integer >= 0 (0: none).")
    except ConfigError as err:
        raise usage_error(err) from err
    try:
        est, record, ds, own, _ = run_data(run_dir, data, options, explicit_options(ctx, options))
        every = np.arange(ds.n_samples)
        test, train_rows, held_out = eval_split(record, ds.n_samples) if own else (every, every, False)
        X_train = np.asarray(ds.X[train_rows])
        X_eval = np.asarray(ds.X[test]) if held_out else None
        result = prune_estimator(
            est, X_train, X_eval=X_eval, amount=amount, scope=scope, remove_dead=remove_dead,
            fine_tune_epochs=fine_tune_epochs,
        )  # fmt: skip
        small = result.estimator
        run = {k: v for k, v in record.items() if k not in ("metrics", "pruned")} if own else {}
        metrics = held_out_metrics(small, ds.X, test) if held_out else {}
        # JSON has no NaN or infinity: a metric that cannot be computed is recorded as null
        run["metrics"] = {k: None if isinstance(v, float) and not np.isfinite(v) else v for k, v in metrics.items()}
        run["pruned"] = {
            "from": str(Path(run_dir).resolve()), "amount": amount, "scope": scope, "remove_dead": remove_dead,
            "fine_tune_epochs": fine_tune_epochs, "fvu_before": result.fvu_before, "fvu_after": result.fvu_after,
        }  # fmt: skip
        path = small.save(out, run=run)
    except LucidaeError as err:
        raise fail(err) from err
    where = f"held-out FVU ({len(test)} rows the model never saw)" if held_out else f"FVU on all {len(test)} samples"
    typer.echo(
        f"{where} {result.fvu_before:.4f} -> {result.fvu_after:.4f}; non-zero weights "
        f"{result.nonzero_weights_before:,} -> {result.nonzero_weights_after:,}; latents "
        f"{result.latent_dim_before} -> {result.latent_dim_after}; layers "
        f"{'-'.join(est.model_config_.layer_shapes())} -> {'-'.join(small.model_config_.layer_shapes())}; "
        f"saved to {path}"
    )
    worse = result.fvu_after - result.fvu_before
    if not fine_tune_epochs and worse > max(0.01, FINE_TUNE_HINT * result.fvu_before):
        epochs = 10 if not est.n_iter_ else max(5, min(50, est.n_iter_ // 3))
        typer.echo(
            f"pruning cost {worse:.4f} FVU: fine-tuning the pruned model usually wins most of it back. Try: "
            f"lucidae prune {run_dir} --out {out} --amount {amount:g} --fine-tune-epochs {epochs}"
        )


app.command(name="prune")(with_options(prune, (DataConfig,), only=table_fields(READ_OPTIONS)))


def _detector_info(run_dir: Path, as_json: bool) -> None:
    """Print what `lucidae info` knows of a folder written by `AnomalyDetector.save` / `lucidae detect --save`."""
    from lucidae.applications import load_detector

    try:
        det = load_detector(run_dir)
    except LucidaeError as err:
        raise fail(err) from err
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
        raise fail(err) from err
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
    from lucidae.io import read_config, read_run_record

    try:
        if not Path(run_dir).exists():
            raise ConfigError(f"{run_dir} does not exist. Pass a folder written by `lucidae train --out`.")
        est = load(run_dir)
        run = read_run_record(run_dir, RUN_FILE)
    except NotAnEstimatorError:
        if read_config(run_dir).get("estimator") == "TextTopics":
            return _topics_info(run_dir, as_json)
        return _detector_info(run_dir, as_json)
    except LucidaeError as err:
        raise fail(err) from err
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
        f"activations: {_activations(cfg)}",
        f"scaling: {summary['scaling']}; input features: {est.n_features_in_}"
        + (f" (images {est.image_shape_})" if est.image_shape_ else ""),
        f"trained {est.n_iter_} epochs in {est.fit_seconds_:.1f} s; final loss "
        + (f"{summary['final_loss']:.5g}" if summary["final_loss"] is not None else "not recorded")
        + (f"; best epoch {hist.best_epoch}" if hist.best_epoch else ""),
    ]
    if summary["data"]:
        lines.append(f"data: {summary['data'].get('description', '')}")
    pruned = run.get("pruned")
    if isinstance(pruned, dict):
        lines.append(
            f"pruned from {pruned.get('from')}: amount {pruned.get('amount')}, scope {pruned.get('scope')}, "
            f"fine-tuned {pruned.get('fine_tune_epochs')} epochs"
        )
    notes = run.get("metrics_notes") or {}
    lines += [_metric_line(key, value, notes.get(key)) for key, value in summary["metrics"].items()]
    typer.echo("\n".join(lines))


SAE_CODES = {"sparse": "ReLU", "topk": "TopK (k={k})", "jumprelu": "JumpReLU"}
"""The code of the sparse families, which their ``latent_activation`` does not describe."""


def _activations(cfg: Any) -> str:
    """What each layer applies, as the model family really builds it (a VAE's code is no ReLU).

    Examples
    --------
    >>> from lucidae.config import ModelConfig
    >>> _activations(ModelConfig(model="vae", likelihood="bernoulli"))
    'hidden relu, code Gaussian posterior (mean and log-variance, no activation), output sigmoid (bernoulli)'
    >>> _activations(ModelConfig(model="vae", likelihood="gaussian", output_activation="linear"))
    'hidden relu, code Gaussian posterior (mean and log-variance, no activation), output linear (gaussian)'
    >>> _activations(ModelConfig(model="topk", k=4))
    'code TopK (k=4), output linear'
    """
    if cfg.model in SAE_CODES:
        return f"code {SAE_CODES[cfg.model].format(k=cfg.k)}, output linear"
    has_hidden = bool(cfg.hidden_dims) or "conv" in (cfg.model, cfg.architecture)
    hidden = f"hidden {cfg.activation}, " if has_hidden else ""
    if cfg.model in ("vae", "tcvae"):
        output = "sigmoid (bernoulli)" if cfg.likelihood == "bernoulli" else f"{cfg.output_activation} (gaussian)"
        return f"{hidden}code Gaussian posterior (mean and log-variance, no activation), output {output}"
    return f"{hidden}code {cfg.latent_activation}, output {cfg.output_activation}"


def _metric_line(key: str, value: Any, note: str | None = None) -> str:
    """One line of ``info`` for a run metric; an FVU above 1 is said to be worse than predicting the mean.

    Examples
    --------
    >>> _metric_line("test_fvu", 0.25)
    'test_fvu: 0.2500 (explained variance 75.0%)'
    >>> _metric_line("test_fvu", 1.002)
    'test_fvu: 1.0020 (worse than predicting the mean sample: the model explains none of the variance)'
    >>> _metric_line("FVU", 0.5)
    'FVU 0.5000 (explained variance 50.0%)'
    >>> _metric_line("test_collapsed_latents", 3)
    'test_collapsed_latents: 3'
    """
    if value is None:
        return f"{key}: not computed" + (f" ({note})" if note else "")
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{key}: {value}"
    line = f"{key}: {value:.4f}" if key.islower() else f"{key} {value:.4f}"
    if key.lower().endswith("fvu"):
        line += (
            f" (explained variance {1 - value:.1%})"
            if value <= 1
            else " (worse than predicting the mean sample: the model explains none of the variance)"
        )
    return line


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Folder for the demo run.")] = Path("runs/demo"),
) -> None:
    """Train the classic model (hidden 128, code 32) on the bundled digits, compare with PCA, save it, report it."""
    import numpy as np
    from sklearn.decomposition import PCA

    import lucidae.estimators
    from lucidae.datasets import load_digits
    from lucidae.metrics import fvu
    from lucidae.report import build_report
    from lucidae.runs import fit_run

    start = time.perf_counter()
    ds = load_digits()
    # looked up on the package when the command runs, so a test can swap in a quicker AutoEncoder
    ae = lucidae.estimators.AutoEncoder(hidden_dims=(128,), latent_dim=32, random_state=0)
    path, record = fit_run(
        ae, ds, DataConfig(data="digits", test_fraction=0.2), out, seed=0, log=lambda line: typer.echo(line, err=True)
    )
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
    from lucidae.cli.data import run_data_spec, run_record, table_options
    from lucidae.report import build_report

    try:
        record = run_record(run_dir)
        # read as training read it (id column, dropped columns...), from the spec it recorded unless --data is given
        spec = data if data is not None or not record else run_data_spec(run_dir, record)
        dataset = load_data(spec, table_options(record.get("data") or {}, {}, set(), spec)) if spec else None
        path = build_report(run_dir, dataset=dataset, max_latents=max_latents)
    except LucidaeError as err:
        raise fail(err) from err
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
    from lucidae.sweep import run_sweep

    try:
        cfg = config_from_cli(SweepConfig, options)
    except ConfigError as err:
        raise usage_error(err) from err
    echo_seed(cfg.random_state)
    try:
        page = run_sweep(cfg, out, log=lambda line: typer.echo(line, err=True))
    except LucidaeError as err:
        raise fail(err) from err
    typer.echo(f"sweep page written to {page}")


# The grid's options come from SweepConfig, as train's come from the model/train/data configs.
app.command(name="sweep")(with_options(_sweep, (SweepConfig,)))
register_applications(app)
register_interop(app)


def system_error(err: BaseException) -> str:
    """One line for an error from the operating system or the interpreter: what failed, where, and what to do.

    Examples
    --------
    >>> system_error(PermissionError(13, "Permission denied", "runs/x"))
    'error: runs/x: permission denied. Check the permissions of runs/x, or use another folder.'
    >>> system_error(OSError(28, "No space left on device", "runs/x"))
    'error: runs/x: no space left on device. Free some disk space, or write somewhere else.'
    """
    import errno

    if isinstance(err, MemoryError):
        return "error: out of memory. Use smaller sizes (--hidden-dims, --latent-dim, --batch-size) or less data."
    if isinstance(err, RecursionError):
        return "error: an input is nested too deeply to read (a damaged or hostile file); check the files given."
    assert isinstance(err, OSError)
    where = err.filename if err.filename is not None else None
    what = (err.strerror or str(err) or type(err).__name__).strip().rstrip(".")
    what = what[:1].lower() + what[1:]
    advice = {
        errno.EACCES: f"Check the permissions of {where}, or use another folder.",
        errno.EPERM: f"Check the permissions of {where}, or use another folder.",
        errno.EROFS: "The file system is read-only; write somewhere else.",
        errno.ENOSPC: "Free some disk space, or write somewhere else.",
        errno.EDQUOT: "Your disk quota is used up; free some space, or write somewhere else.",
        errno.ENOENT: "Check the path.",
        errno.ENAMETOOLONG: "Use a shorter path.",
        errno.EMFILE: "Too many files are open; close some programs and try again.",
    }.get(err.errno or 0, "Check the path and try again.")
    if where is None and "No space left" in what:
        advice = "Free some disk space, or write somewhere else."
    return f"error: {where + ': ' if where else ''}{what}. {advice}"


def _show_warning(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
    """Print a warning as one ``warning: ...`` line: a person reads the CLI, not lucidae's source lines."""
    typer.secho(f"warning: {message}", fg=typer.colors.YELLOW, err=True)


def main() -> None:
    """Entry point of the ``lucidae`` console script.

    Errors from the operating system (a full disk, a read-only or unreadable folder) and
    from the interpreter (out of memory, input nested too deeply) end as one line naming
    the path and what to do, with exit code 1, never as a traceback. Anything else that
    escapes a command is a bug in lucidae: one line says so (with exit code 1), and
    ``LUCIDAE_TRACEBACK=1`` shows the traceback to report.
    """
    import os
    import warnings

    if not os.environ.get("LUCIDAE_TRACEBACK"):
        warnings.showwarning = _show_warning
    try:
        app()
    except KeyboardInterrupt:  # pragma: no cover - interactive
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except (OSError, MemoryError, RecursionError) as err:
        typer.secho(system_error(err), fg=typer.colors.RED, err=True)
        sys.exit(1)
    except Exception as err:
        if os.environ.get("LUCIDAE_TRACEBACK"):
            raise
        typer.secho(
            f"error: internal error ({type(err).__name__}: {str(err)[:300]}). This is a bug in lucidae: please "
            "report it with the command you ran; LUCIDAE_TRACEBACK=1 shows the details.",
            fg=typer.colors.RED,
            err=True,
        )
        sys.exit(1)
