"""From the dataclass configs to typer options and back, and the CLI's shared plumbing.

The options of ``lucidae train`` (and of ``sweep``, ``detect``, ``topics``) are generated
from the fields of :mod:`lucidae.config`: name, type, default and help text all come from
there, so the CLI cannot drift from the Python API. Nothing here imports torch: the CLI
starts fast, and the commands import what they run.
"""

from __future__ import annotations

import inspect
import io
import typing
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from lucidae.config import DataConfig, ModelConfig, TrainConfig, defaults, field_docs
from lucidae.errors import ConfigError
from lucidae.io import atomic_write

if TYPE_CHECKING:
    import numpy as np

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


def with_options(command: Any, configs: tuple[type, ...] = CLI_CONFIGS) -> Any:
    """Give ``command(**options)`` one typed, documented option per field of each config in ``configs``.

    The command's own parameters come first; fields already among them (a command
    registered twice) are not added again.

    Examples
    --------
    >>> from lucidae.config import SweepConfig
    >>> def sweep(*, out: str = "runs/sweep", **options): ...
    >>> names = list(inspect.signature(with_options(sweep, (SweepConfig,))).parameters)
    >>> names[:3]
    ['out', 'data', 'latent_dims']
    """
    config_names = {f.name for cls in configs for f in fields(cls)}
    # the module's postponed annotations are strings: resolve them, or typer loses each option's help text
    own = [
        p
        for p in inspect.signature(command, eval_str=True).parameters.values()
        if p.kind is not inspect.Parameter.VAR_KEYWORD and p.name not in config_names
    ]
    params = own + config_parameters(configs)
    command.__signature__ = inspect.Signature(params)
    command.__annotations__ = {p.name: p.annotation for p in params}
    return command


def with_config_options(func: Any) -> Any:
    """Give ``func(**kwargs)`` the model, training and data config fields as options (see :func:`with_options`)."""
    return with_options(func, CLI_CONFIGS)


def split_options(options: dict[str, Any]) -> tuple[ModelConfig, TrainConfig, DataConfig]:
    """Turn the flat CLI options back into validated configs.

    Examples
    --------
    >>> model, train, data = split_options({"latent_dim": 4, "hidden_dims": "16", "epochs": 3})
    >>> model.hidden_dims, train.epochs, data.data
    ((16,), 3, 'digits')
    """
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


def explicit_options(ctx: typer.Context, options: dict[str, Any]) -> set[str]:
    """The options given on the command line (or environment), as opposed to left at their defaults.

    A family's own defaults (see :func:`lucidae.runs.estimator_from_configs`) replace only
    the options the user did not give, even when the user gives the config's default value.
    """
    sources = {name: ctx.get_parameter_source(name) for name in options}
    return {name for name, src in sources.items() if src is not None and src.name not in ("DEFAULT", "DEFAULT_MAP")}


def fail(err: Exception) -> typer.Exit:
    """Print ``err`` as one red line on stderr and return the exit to raise (code 2)."""
    typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
    return typer.Exit(code=2)


def save_array(array: np.ndarray, out: Path, header: list[str], *, fmt: Any = "%.7g") -> None:
    """Write ``array`` to ``out`` (``.csv`` with ``header``, or ``.npy``) atomically.

    Raises
    ------
    ConfigError
        For another suffix, or a folder that cannot be written.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> out = Path(tempfile.mkdtemp()) / "codes.csv"
    >>> save_array(np.eye(2), out, ["a", "b"])
    >>> out.read_text().splitlines()
    ['a,b', '1,0', '0,1']
    """
    import numpy as np

    if out.suffix not in (".csv", ".npy"):
        raise ConfigError(f"--out {out}: unknown suffix {out.suffix!r}; use .npy or .csv.")
    if out.suffix == ".csv":
        text = io.StringIO()
        np.savetxt(text, array, delimiter=",", header=",".join(header), comments="", fmt=fmt)
        payload: bytes | str = text.getvalue()
    else:
        buffer = io.BytesIO()
        np.save(buffer, array)
        payload = buffer.getvalue()
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(out, payload)
    except OSError as err:
        raise ConfigError(
            f"--out {out} could not be written ({err.strerror or err}). Pick a folder you can write to."
        ) from err
