"""The application commands of the ``lucidae`` CLI: ``detect``, ``compress``, ``decompress``, ``topics``.

:func:`register` adds them to the ``lucidae`` typer app; their options come from the
application's config (:class:`~lucidae.config.AnomalyConfig`,
:class:`~lucidae.config.TopicsConfig`). The applications themselves (and torch) are
imported inside each command.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from lucidae.cli.options import fail, save_array, with_options
from lucidae.config import AnomalyConfig, TopicsConfig
from lucidae.errors import ConfigError, CorruptFileError, LucidaeError
from lucidae.io import atomic_write, write_json


def detect(
    *,
    data: Annotated[str, typer.Option(help="Dataset name or path (.csv, .npy, .npz) to score; one sample per row.")],
    out: Annotated[Path | None, typer.Option(help="Write index,score,outlier per sample to this .csv file.")] = None,
    save: Annotated[Path | None, typer.Option(help="Save the fitted detector to this folder.")] = None,
    explain: Annotated[int, typer.Option(help="Explain this many of the most abnormal samples.")] = 5,
    **options: Any,
) -> None:
    """Find the abnormal samples in a table with an autoencoder and say why they are abnormal.

    Features are standardised; scores are higher for more abnormal samples; the top
    --contamination share is flagged. For each of the --explain most abnormal samples,
    the worst-reconstructed features and the nearest normal samples are printed.
    \f
    Examples
    --------
    >>> from typer.testing import CliRunner
    >>> from lucidae.cli import app
    >>> CliRunner().invoke(app, ["detect", "--data", "table.csv", "--contamination", "0.05"])  # doctest: +SKIP
    """
    import numpy as np

    from lucidae.applications.anomaly import AnomalyDetector
    from lucidae.datasets import load_dataset

    try:
        cfg = AnomalyConfig(**options)
        cfg.validate()
        ds = load_dataset(data)
        det = AnomalyDetector(**cfg.to_dict())
        det.fit(np.asarray(ds.X, dtype=np.float64), feature_names=ds.feature_names)
        scores = det.decision_scores_
        n_out = int(det.labels_.sum())
        typer.echo(
            f"{n_out} of {ds.n_samples} samples flagged as outliers (threshold {det.threshold_:.4g}; "
            f"fitted in {det.fit_seconds_:.1f} s)"
        )
        if explain < 0:
            raise ConfigError(f"--explain {explain} is invalid: expected an integer >= 0.")
        for i in np.argsort(-scores, kind="stable")[:explain]:
            typer.echo(f"sample {i}: " + det.explain(ds.X[i]).summary())
        if out is not None:
            if out.suffix != ".csv":
                raise ConfigError(f"--out {out}: expected a .csv file name.")
            table = np.column_stack([np.arange(ds.n_samples), scores, det.labels_])
            save_array(table, out, ["index", "score", "outlier"], fmt=["%d", "%.7g", "%d"])
            typer.echo(f"scores written to {out}")
        if save is not None:
            typer.echo(f"detector saved to {det.save(save)}")
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

    try:
        cfg = TopicsConfig(**options)
        cfg.validate()
        if out is not None and out.suffix != ".json":
            raise ConfigError(f"--out {out}: expected a .json file name.")
        docs, names = read_documents(data)
        typer.echo(f"learning {cfg.n_latents} topics (k={cfg.k}) from {len(docs)} documents", err=True)
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
    app.command(name="detect")(with_options(detect, (AnomalyConfig,)))
    app.command(name="compress")(compress)
    app.command(name="decompress")(decompress)
    app.command(name="topics")(with_options(topics, (TopicsConfig,)))
