"""The ``lucidae export`` and ``lucidae import`` commands: sparse autoencoders to and from SAELens and sparsify.

:func:`register` adds them to the ``lucidae`` typer app. The layouts are described in
:mod:`lucidae.interop`, which (with torch) is imported inside each command.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, get_args

import typer

from lucidae.cli.options import fail
from lucidae.errors import ConfigError, LucidaeError

Format = Literal["saelens", "sparsify"]
FORMATS: tuple[str, ...] = get_args(Format)
"""The layouts ``--format`` accepts (listed in --help, others refused when the command line is parsed)."""


def _check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt!r} is not known; expected one of {list(FORMATS)}.")
    return fmt


def export(
    run: Annotated[Path, typer.Argument(help="A model folder written by `lucidae train` (a sparse autoencoder).")],
    fmt: Annotated[Format, typer.Option("--format", help="Layout to write.")],
    out: Annotated[Path, typer.Option(help="Folder to write the SAE into (for sparsify: one hookpoint's folder).")],
    model_name: Annotated[str, typer.Option(help="saelens: the model the activations came from.")] = "",
    hook_name: Annotated[str, typer.Option(help="saelens: the hook point the activations came from.")] = "",
) -> None:
    """Write a trained sparse autoencoder in SAELens's or sparsify's folder layout.

    Input scaling, if the model was trained with one, is folded into the weights, so the
    exported SAE reads raw activations.
    \f
    Examples
    --------
    >>> from typer.testing import CliRunner
    >>> from lucidae.cli import app
    >>> CliRunner().invoke(app, ["export", "runs/sae", "--format", "saelens", "--out", "sae"])  # doctest: +SKIP
    """
    from lucidae.estimators import load
    from lucidae.interop import to_saelens, to_sparsify

    try:
        _check_format(fmt)
        est = load(run)
        if fmt == "saelens":
            folder = to_saelens(est, out, model_name=model_name, hook_name=hook_name)
        else:
            folder = to_sparsify(est, out)
    except LucidaeError as err:
        raise fail(err) from err
    typer.echo(
        f"{type(est).__name__} ({est.n_features_in_} inputs, {est.module_.latent_dim} latents) "
        f"written in the {fmt} layout to {folder}"
    )


def import_(
    folder: Annotated[Path, typer.Argument(help="A SAELens SAE folder, or one sparsify hookpoint folder.")],
    fmt: Annotated[Format, typer.Option("--format", help="Layout to read.")],
    out: Annotated[Path, typer.Option(help="lucidae model folder to write (usable by encode, report, info).")],
) -> None:
    """Read a sparse autoencoder saved by SAELens or sparsify and write it as a lucidae model folder.

    Then `lucidae report OUT --data activations.npy` describes it, and `lucidae encode`
    runs it.
    \f
    Examples
    --------
    >>> from typer.testing import CliRunner
    >>> from lucidae.cli import app
    >>> CliRunner().invoke(app, ["import", "sae", "--format", "saelens", "--out", "runs/sae"])  # doctest: +SKIP
    """
    from lucidae.interop import from_saelens, from_sparsify

    try:
        _check_format(fmt)
        est = from_saelens(folder) if fmt == "saelens" else from_sparsify(folder)
        written = est.save(out)
    except LucidaeError as err:
        raise fail(err) from err
    cfg = est.model_config_
    extra = f", k={cfg.k}" if cfg.model == "topk" else ""
    typer.echo(
        f"{type(est).__name__} ({est.n_features_in_} inputs, {cfg.latent_dim} latents{extra}) "
        f"imported from {folder} to {written}"
    )


def register(app: typer.Typer) -> None:
    """Add ``export`` and ``import`` to the ``lucidae`` app.

    Examples
    --------
    >>> app = typer.Typer()
    >>> register(app)
    >>> sorted(c.name for c in app.registered_commands)
    ['export', 'import']
    """
    app.command(name="export")(export)
    app.command(name="import")(import_)
