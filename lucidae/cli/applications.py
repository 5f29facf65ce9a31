"""The application commands of the ``lucidae`` CLI: ``detect``, ``compress``, ``decompress``, ``topics``.

:func:`register` adds them to the ``lucidae`` typer app; their options come from the
application's config (:class:`~lucidae.config.AnomalyConfig`,
:class:`~lucidae.config.TopicsConfig`). The applications themselves (and torch) are
imported inside each command.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Annotated, Any

import typer

from lucidae.cli.data import (
    DATA_OPTIONS,
    READ_OPTIONS,
    echo_seed,
    load_data,
    read_data_options,
    save_with_ids,
    table_fields,
    table_options,
)
from lucidae.cli.options import explicit_options, fail, save_array, usage_error, with_options
from lucidae.config import AnomalyConfig, DataConfig, TopicsConfig
from lucidae.errors import ConfigError, CorruptFileError, LucidaeError
from lucidae.io import atomic_write, write_json


def detect(
    ctx: typer.Context,
    *,
    data: Annotated[str, typer.Option(help="Dataset name or path (.csv, .npy, .npz) to score; one sample per row.")],
    model: Annotated[
        Path | None,
        typer.Option(
            help="A detector saved by `lucidae detect --save`: score --data with it (its threshold, its "
            "settings, its table options) instead of fitting a new one."
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Write one row per sample to this .csv file: its id (or index), score and outlier (0/1)."),
    ] = None,
    save: Annotated[Path | None, typer.Option(help="Save the fitted detector to this folder.")] = None,
    explain: Annotated[int, typer.Option(help="Explain this many of the most abnormal samples.")] = 5,
    **options: Any,
) -> None:
    """Find the abnormal samples in a table with an autoencoder and say why they are abnormal.

    Features are standardised; scores are higher for more abnormal samples; the top
    --contamination share is flagged. For each of the --explain most abnormal samples,
    the worst-reconstructed features and the nearest normal samples are printed. With
    --model, a saved detector scores new data with the threshold it was fitted with.
    \f
    Examples
    --------
    >>> from typer.testing import CliRunner
    >>> from lucidae.cli import app
    >>> CliRunner().invoke(app, ["detect", "--data", "table.csv", "--contamination", "0.05"])  # doctest: +SKIP
    """
    import numpy as np

    fitting = {f.name for f in fields(AnomalyConfig)} | {"impute"}  # what a saved detector has fixed
    explicit = explicit_options(ctx, options)
    try:  # every option is checked before any data is read or any model fitted: a usage error (exit 2)
        if explain < 0:
            raise ConfigError(f"--explain {explain} is invalid: expected an integer >= 0.")
        if out is not None and out.suffix != ".csv":
            raise ConfigError(f"--out {out}: expected a .csv file name (it gets id or index, score, outlier).")
        if model is not None and explicit & fitting:
            given = ", ".join(sorted(f"--{n.replace('_', '-')}" for n in explicit & fitting))
            raise ConfigError(
                f"{given} set how a detector is fitted, but --model {model} is already fitted: it scores with its "
                "own settings and threshold. Leave them out, or leave out --model to fit a new detector."
            )
        if model is not None and save is not None:
            raise ConfigError(f"--save {save} with --model {model}: the detector is saved already; leave out --save.")
        cfg = AnomalyConfig(**{k: v for k, v in options.items() if k in fitting and k != "impute"})
        cfg.validate()
    except ConfigError as err:
        raise usage_error(err) from err

    from lucidae.applications.anomaly import AnomalyDetector, load_detector
    from lucidae.scaling import fit_fill

    try:
        det = load_detector(model) if model is not None else None  # a folder that holds no detector: said first
        stored = read_data_options(model) if model is not None else {}
        table = table_options(stored, options, explicit, data)
        ds = load_data(data, table)
        X = np.asarray(ds.X, dtype=np.float64)
        # with --impute, missing cells are filled with each feature's median (mean) over the rows fitted on,
        # stored beside a saved detector and applied to the data it scores later
        fill = (
            stored.get("fill") if model is not None else fit_fill(X, table["impute"]) if table.get("impute") else None
        )
        if fill is not None:
            X = np.where(np.isnan(X), np.asarray(fill, dtype=np.float64), X)
        if det is not None:
            scores = det.decision_function(X)
            flagged = (scores > det.threshold_).astype(np.int64)
            typer.echo(
                f"{int(flagged.sum())} of {ds.n_samples} samples of {ds.name} flagged as outliers by {model} "
                f"(threshold {det.threshold_:.4g}, fitted with contamination {det.contamination:g})"
            )
        else:
            echo_seed(cfg.random_state)
            det = AnomalyDetector(**cfg.to_dict())
            det.fit(X, feature_names=list(ds.feature_names))
            scores, flagged = det.decision_scores_, np.asarray(det.labels_, dtype=np.int64)
            typer.echo(
                f"{int(flagged.sum())} of {ds.n_samples} samples flagged as outliers (threshold {det.threshold_:.4g}; "
                f"fitted in {det.fit_seconds_:.1f} s)"
            )
        ids = getattr(ds, "ids", None)
        for i in np.argsort(-scores, kind="stable")[:explain]:
            name = f"sample {i}" + (f" ({table.get('id_column')} {ids[i]})" if ids is not None else "")
            typer.echo(f"{name}: " + det.explain(X[i]).summary())
        if out is not None:
            id_name = str(table.get("id_column") or "index") if ids is not None else "index"
            keys = ids if ids is not None else np.arange(ds.n_samples)
            table_out = np.column_stack([scores, flagged])
            save_with_ids(table_out, out, ["score", "outlier"], keys, id_name, fmt=["%.7g", "%d"])
            typer.echo(f"scores written to {out}")
        if save is not None:
            folder = det.save(save)
            kept = {k: v for k, v in table.items() if v is not None}
            write_json(
                folder / DATA_OPTIONS, {**kept, **({"fill": np.asarray(fill).tolist()} if fill is not None else {})}
            )
            typer.echo(f"detector saved to {folder} (score new data with: lucidae detect --model {folder} --data ...)")
    except LucidaeError as err:
        raise fail(err) from err


def compress(
    model: Annotated[Path, typer.Argument(help="A model folder written by `lucidae train` (the shared codebook).")],
    data: Annotated[str, typer.Option(help="Images to compress: a dataset name or a .npy/.npz/.csv path.")],
    out: Annotated[Path, typer.Option(help="Where to write the compressed stream.")] = Path("images.lcz"),
    bits: Annotated[int, typer.Option(help="Quantisation bits per latent unit, 1..12 (8 and 4 are typical).")] = 8,
) -> None:
    """Compress images into a small byte stream: quantised latent codes, entropy-coded with constriction (ANS).

    The same model is needed to decompress; the stream carries its fingerprint and a CRC.
    \f
    Examples
    --------
    >>> from typer.testing import CliRunner
    >>> from lucidae.cli import app
    >>> CliRunner().invoke(app, ["compress", "runs/digits", "--data", "digits", "--bits", "6"])  # doctest: +SKIP
    """
    import numpy as np

    from lucidae.applications import compress as codec
    from lucidae.datasets import load_dataset
    from lucidae.estimators import load

    try:
        est = load(model)
        ds = load_dataset(data)
        images = ds.X if ds.image_shape is None else ds.X.reshape(ds.n_samples, *ds.image_shape)
        stream = codec.compress(est, images, bits=bits)
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(out, stream)
        raw = ds.X.nbytes
        recon = codec.decompress(stream, est).reshape(ds.n_samples, -1)
        peak = 255.0 if ds.X.dtype == np.uint8 else float(max(np.max(ds.X), 1e-12))
        quality = codec.psnr(ds.X, recon, peak=peak)
    except LucidaeError as err:
        raise fail(err) from err
    bpv = 8 * len(stream) / max(ds.X.size, 1)
    typer.echo(
        f"{ds.n_samples} samples -> {len(stream):,} bytes ({bpv:.3f} bits per value, {raw / len(stream):.1f}x smaller "
        f"than the {ds.X.dtype} input); PSNR {quality:.2f} dB; written to {out}"
    )


def decompress(
    stream: Annotated[Path, typer.Argument(help="A file written by `lucidae compress`.")],
    model: Annotated[Path, typer.Option(help="The model folder that compressed it.")],
    out: Annotated[Path, typer.Option(help="Where to write the images (.npy).")] = Path("images.npy"),
) -> None:
    """Decode a stream from `lucidae compress` back to images (.npy)."""
    from lucidae.applications import compress as codec
    from lucidae.estimators import load

    try:
        if not stream.is_file():
            raise CorruptFileError(f"{stream} does not exist or is not a file.")
        images = codec.decompress(stream.read_bytes(), load(model))
        if out.suffix != ".npy":
            raise ConfigError(f"--out {out}: expected a .npy file name.")
        save_array(images, out, [])
    except LucidaeError as err:
        raise fail(err) from err
    typer.echo(f"wrote {images.shape[0]} images of shape {images.shape[1:]} to {out}")


def topics(
    *,
    data: Annotated[
        str,
        typer.Option(
            help="'stdlib' (the Python standard library's docstrings), a text file with one document per line, "
            "or a folder of .txt/.md/.rst files, one document each."
        ),
    ],
    top: Annotated[int, typer.Option(help="Words shown per topic.", min=1)] = 10,
    documents: Annotated[int, typer.Option(help="Most activating documents named per topic.", min=0)] = 3,
    save: Annotated[Path | None, typer.Option(help="Save the fitted topic model to this folder.")] = None,
    out: Annotated[
        Path | None, typer.Option(help="Write the topics (words, documents, weights) to this .json file.")
    ] = None,
    **options: Any,
) -> None:
    """Find topics in documents with a sparse autoencoder and list each latent's words and documents.

    Documents become TF-IDF vectors; a TopK sparse autoencoder learns --n-latents
    directions with --k active per document; each latent is printed with the words its
    direction writes most and the documents that activate it most, most used first.
    \f
    Examples
    --------
    >>> from typer.testing import CliRunner
    >>> from lucidae.cli import app
    >>> CliRunner().invoke(app, ["topics", "--data", "stdlib", "--n-latents", "16"])  # doctest: +SKIP
    """
    from lucidae.applications.text import TextTopics, read_documents

    try:  # the options first: a bad one is a usage error (exit 2), found before any document is read
        cfg = TopicsConfig(**options)
        cfg.validate()
        if out is not None and out.suffix != ".json":
            raise ConfigError(f"--out {out}: expected a .json file name.")
    except ConfigError as err:
        raise usage_error(err) from err
    try:
        docs, names = read_documents(data)
        typer.echo(f"learning {cfg.n_latents} topics (k={cfg.k}) from {len(docs)} documents", err=True)
        echo_seed(cfg.random_state)
        tt = TextTopics(**cfg.to_dict()).fit(docs)
        found = tt.topics(top=top, n_documents=documents)
        typer.echo(
            f"{len(found)} of {cfg.n_latents} latents are used; vocabulary {len(tt.vocabulary_)} words; "
            f"fitted in {tt.fit_seconds_:.1f} s"
        )
        for topic in found:
            typer.echo(str(topic))
            if topic.documents:
                typer.echo("    documents: " + ", ".join(names[d] for d, _ in topic.documents))
        if out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
            write_json(
                out,
                [
                    {
                        "latent": t.latent,
                        "frequency": t.frequency,
                        "words": [{"word": w, "weight": v} for w, v in t.words],
                        "documents": [{"name": names[d], "index": d, "activation": a} for d, a in t.documents],
                    }
                    for t in found
                ],
            )
            typer.echo(f"topics written to {out}")
        if save is not None:
            typer.echo(f"topic model saved to {tt.save(save)}")
    except LucidaeError as err:
        raise fail(err) from err


def register(app: typer.Typer) -> None:
    """Add the application commands to the ``lucidae`` app.

    Examples
    --------
    >>> app = typer.Typer()
    >>> register(app)
    >>> sorted(c.name for c in app.registered_commands)
    ['compress', 'decompress', 'detect', 'topics']
    """
    # their options come from the concern's config, as train's come from the model/train/data configs
    # detect reads tables as train does (--id-column, --drop, --delimiter)
    detect_command = with_options(
        with_options(detect, (AnomalyConfig,)), (DataConfig,), only=table_fields((*READ_OPTIONS, "impute"))
    )
    app.command(name="detect")(detect_command)
    app.command(name="compress")(compress)
    app.command(name="decompress")(decompress)
    app.command(name="topics")(with_options(topics, (TopicsConfig,)))
