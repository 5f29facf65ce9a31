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
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

from lucidae.config import DataConfig, ModelConfig, TrainConfig, defaults, field_docs
from lucidae.errors import ConfigError
from lucidae.io import atomic_write

if TYPE_CHECKING:
    import numpy as np

T = TypeVar("T")

CLI_CONFIGS: tuple[type, ...] = (ModelConfig, TrainConfig, DataConfig)
"""Configs whose fields become ``lucidae train`` options."""

CLI_EXCLUDE = {"input_dim"}
"""Fields that come from the data, not from the user."""

FAMILY_DEFAULTS: dict[str, dict[str, Any]] = {
    "linear": {"batch_size": 2048, "lr": 0.03, "validation_fraction": 0.0},
    "vae": {"hidden_dims": (256, 256), "latent_dim": 10, "lr": 1e-3},
    "tcvae": {"hidden_dims": (256, 256), "latent_dim": 10, "lr": 1e-3, "beta": 6.0, "dim_kl_weight": 0.05, "n_init": 3},
}
"""The families whose estimators default an option otherwise than the config does (``lucidae train``
uses the family's value unless the option is given). Written out here, so that ``lucidae --help``
needs no torch; ``tests/test_cli_interface.py`` checks it against the estimators."""

CLI_DEFAULTS: dict[str, Any] = {"random_state": 0}
"""Options whose command-line default is not the config's: every command that trains is seeded (the
seed is printed and stored with what it wrote), where the Python API leaves ``random_state=None``."""

CLI_SHOWN_DEFAULTS: dict[str, str] = {
    "epochs": "enough for about 5,000 optimiser steps, 20 to 500",
    "decoder_hidden_dims": "the mirror of hidden-dims",
}
"""What ``--help`` says of a default that is not a plain value."""


def family_default_note(name: str, default: Any) -> str:
    """The help text's note on an option whose default depends on the model family.

    Examples
    --------
    >>> family_default_note("latent_dim", 32)
    '(default 32; vae, tcvae: 10)'
    >>> family_default_note("epochs", None)
    ''
    """
    by_value: dict[str, list[str]] = {}
    for family, values in FAMILY_DEFAULTS.items():
        if name in values:
            by_value.setdefault(str(_cli_default(values[name])), []).append(family)
    if not by_value:
        return ""
    others = "; ".join(f"{', '.join(families)}: {value}" for value, families in by_value.items())
    return f"(default {_cli_default(default)}; {others})"


def _hide_flag_types(params: list[Any]) -> None:
    """No ``<bool>`` after a flag (``--help``, ``--json``, ``--remove-dead/--no-remove-dead``): it takes no value."""
    for param in params:
        if isinstance(param, TyperOption) and param.is_flag and param.metavar is None:
            param.metavar = ""
        if isinstance(param, TyperArgument) and param.metavar is None:
            param.metavar = param.name.upper()


class Command(TyperCommand):
    """A lucidae command: arguments named in capitals (``RUN_DIR``), flags shown without a type, and an
    optional dependency that is not installed said in one line (exit 1), not a traceback."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except ModuleNotFoundError as err:
            if not err.name or err.name.split(".")[0] == "lucidae":
                raise  # lucidae's own module missing is a broken install, not a missing extra
            raise missing_extra(err, f"`lucidae {ctx.info_name}`") from err

    def get_params(self, ctx: Any) -> list[Any]:
        params = super().get_params(ctx)
        _hide_flag_types(params)
        return params

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, TyperArgument):
                name = param.metavar or param.name.upper()
                pieces.append((name if param.required else f"[{name}]") + ("..." if param.nargs != 1 else ""))
            else:
                pieces.extend(param.get_usage_pieces(ctx))
        return pieces


class Group(TyperGroup):
    """The ``lucidae`` group: its flags shown without a type, as a command's."""

    def get_params(self, ctx: Any) -> list[Any]:
        params = super().get_params(ctx)
        _hide_flag_types(params)
        return params


class App(typer.Typer):
    """A typer app whose commands are :class:`Command` unless told otherwise."""

    def command(self, *args: Any, cls: Any = None, **kwargs: Any) -> Any:
        return super().command(*args, cls=cls or Command, **kwargs)


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


def config_parameters(
    classes: tuple[type, ...] = CLI_CONFIGS, only: tuple[str, ...] | None = None
) -> list[inspect.Parameter]:
    """One keyword-only typer parameter per config field (or per field named in ``only``), with its default and docs.

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
            if f.name in CLI_EXCLUDE or (only is not None and f.name not in only):
                continue
            default = CLI_DEFAULTS.get(f.name, defaults(cls)[f.name])
            note = family_default_note(f.name, default) if cls is not DataConfig else ""
            if default is None and f.name in CLI_SHOWN_DEFAULTS:
                note = f"(default: {CLI_SHOWN_DEFAULTS[f.name]})"
            text = " ".join(t for t in (docs.get(f.name, ""), note) if t)
            option = typer.Option(help=text, rich_help_panel=panel, show_default=not note)
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


def with_options(command: Any, configs: tuple[type, ...] = CLI_CONFIGS, only: tuple[str, ...] | None = None) -> Any:
    """Give ``command(**options)`` one typed, documented option per field of each config in ``configs``.

    The command's own parameters come first; fields already among them (a command
    registered twice, or one that defines an option itself) are not added again. With
    ``only``, just the fields of that name are added.

    Examples
    --------
    >>> from lucidae.config import SweepConfig
    >>> def sweep(*, out: str = "runs/sweep", **options): ...
    >>> names = list(inspect.signature(with_options(sweep, (SweepConfig,))).parameters)
    >>> names[:3]
    ['out', 'data', 'latent_dims']
    """
    config_names = {f.name for cls in configs for f in fields(cls) if only is None or f.name in only}
    # the module's postponed annotations are strings: resolve them, or typer loses each option's help text
    own = [
        p
        for p in inspect.signature(command, eval_str=True).parameters.values()
        if p.kind is not inspect.Parameter.VAR_KEYWORD and p.name not in config_names
    ]
    params = own + [p for p in config_parameters(configs, only) if p.name not in {q.name for q in own}]
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


def config_from_cli(cls: type[T], options: dict[str, Any]) -> T:
    """Build the config ``cls`` from CLI options, where tuples arrive as comma-separated text.

    Raises
    ------
    ConfigError
        Naming the option and an example of what it takes, or the invalid value.

    Examples
    --------
    >>> from lucidae.config import SweepConfig
    >>> config_from_cli(SweepConfig, {"latent_dims": "4, 16", "activations": "linear"}).latent_dims
    (4, 16)
    """
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for f in fields(cls):  # type: ignore[arg-type]
        if f.name not in options:
            continue
        value = options[f.name]
        if typing.get_origin(hints[f.name]) is tuple and isinstance(value, str):
            kind = typing.get_args(hints[f.name])[0]
            parts = [p.strip() for p in value.split(",") if p.strip()]
            try:
                value = tuple(kind(p) for p in parts)
            except ValueError as err:
                example = {int: "8,32", float: "0.01,0.1", str: "relu,linear"}.get(kind, "a,b")
                raise ConfigError(
                    f"--{f.name.replace('_', '-')} {value!r} is invalid: expected comma-separated "
                    f"{kind.__name__} values such as {example!r}."
                ) from err
        values[f.name] = value
    return cls.from_dict(values)  # type: ignore[attr-defined]


def explicit_options(ctx: typer.Context, options: dict[str, Any]) -> set[str]:
    """The options given on the command line (or environment), as opposed to left at their defaults.

    A family's own defaults (see :func:`lucidae.runs.estimator_from_configs`) replace only
    the options the user did not give, even when the user gives the config's default value.
    """
    sources = {name: ctx.get_parameter_source(name) for name in options}
    return {name for name, src in sources.items() if src is not None and src.name not in ("DEFAULT", "DEFAULT_MAP")}


def fail(err: Exception) -> typer.Exit:
    """Print ``err`` as one red line on stderr and return the exit to raise: code 1, a runtime error.

    Examples
    --------
    >>> fail(ValueError("no such file")).exit_code
    1
    """
    typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
    return typer.Exit(code=1)


def usage_error(err: Exception) -> typer.Exit:
    """Print ``err`` (an option's value refused before any work) and return the exit to raise: code 2.

    Code 2 is what Click answers to a usage error (an unknown option, a value of the wrong
    type); an option refused by its config's ``validate`` is one too.

    Examples
    --------
    >>> usage_error(ValueError("latent_dim=0 is invalid")).exit_code
    2
    """
    typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
    return typer.Exit(code=2)


EXTRAS = {"captum": "lucidae[explain]", "zarr": "lucidae[zarr]", "PIL": "pillow"}
"""What to install for an optional package that is missing (the package itself when not listed)."""


def missing_extra(err: ImportError, feature: str) -> typer.Exit:
    """One line for an optional dependency that is not installed, naming the pip command that adds it (code 1).

    Examples
    --------
    >>> missing_extra(ModuleNotFoundError("No module named 'captum'", name="captum"), "`lucidae x`").exit_code
    1
    """
    name = (getattr(err, "name", None) or str(err)).split(".")[0]
    typer.secho(
        f"error: {feature} needs the package {name!r}, which is not installed: pip install '{EXTRAS.get(name, name)}'",
        fg=typer.colors.RED,
        err=True,
    )
    return typer.Exit(code=1)


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
