"""The CLI explains itself: choices in --help and checked at parse time, truthful defaults, --version, exit codes."""

import re
import subprocess
import sys

import numpy as np
import pytest
from typer.main import get_command
from typer.testing import CliRunner

from lucidae import __version__
from lucidae.cli import app
from lucidae.cli.options import FAMILY_DEFAULTS

runner = CliRunner()
WIDE = {"COLUMNS": "250", "TERMINAL_WIDTH": "250"}


def _help(*command: str) -> str:
    result = runner.invoke(app, [*command, "--help"], env=WIDE)
    assert result.exit_code == 0, result.output
    return result.output


def _option_line(text: str, option: str) -> str:
    """The help row of ``option`` (the table row that starts with it)."""
    rows = [line for line in text.splitlines() if re.search(rf"\s{re.escape(option)}\s", line)]
    assert rows, f"{option} is not in the help:\n{text}"
    return rows[0]


@pytest.mark.parametrize(
    ("command", "option", "choices"),
    [
        ("train", "--model", ("dense", "vae", "tcvae", "topk")),
        ("train", "--activation", ("relu", "tanh", "gelu")),
        ("train", "--noise", ("none", "gaussian", "mask")),
        ("train", "--scaling", ("auto", "minmax", "standard")),
        ("train", "--lr-schedule", ("cosine", "constant")),
        ("train", "--impute", ("mean", "median")),
        ("detect", "--impute", ("mean", "median")),
        ("detect", "--scoring", ("likelihood", "reconstruction")),
        ("topics", "--vectorizer", ("tfidf", "count")),
        ("prune", "--scope", ("global", "layer")),
        ("export", "--format", ("saelens", "sparsify")),
    ],
)
def test_choices_are_listed_in_help_and_refused_at_parse_time(command, option, choices):
    row = _option_line(_help(command), option)
    for choice in choices:
        assert choice in row, row
    result = runner.invoke(app, [command, option, "nope"], env=WIDE)
    assert result.exit_code == 2, result.output  # a usage error, before any work
    assert "'nope' is not one of" in result.output


def test_help_shows_no_bool_type_for_flags_and_names_arguments_in_capitals():
    for command in ("train", "encode", "prune", "info", "report"):
        text = _help(command)
        assert "<bool>" not in _option_line(text, "--help"), command
    assert "Usage: lucidae encode [OPTIONS] RUN_DIR" in _help("encode")
    assert "Usage: lucidae info [OPTIONS] RUN_DIR" in _help("info")
    assert "{" not in _help("prune").split("\n\n")[1]
    assert "<bool>" not in _option_line(_help(), "--help")


def test_every_option_has_help_and_epochs_shows_its_default():
    for name, command in get_command(app).commands.items():
        for param in command.params:
            assert param.help, f"{name} {param.name} has no help"
    assert "default" in _option_line(_help("train"), "--epochs")
    assert "default" in _option_line(_help("sweep"), "--out")


def test_family_defaults_are_shown_for_the_families_that_use_others():
    text = _help("train")
    latent = _option_line(text, "--latent-dim")
    assert "32" in latent and "vae" in latent and "10" in latent
    assert "0.05" in _option_line(text, "--dim-kl-weight")
    assert "256,256" in _option_line(text, "--hidden-dims")
    assert "0.03" in _option_line(text, "--lr")


def test_the_family_defaults_shown_are_the_estimators_own():
    from lucidae.config import ModelConfig, TrainConfig, defaults
    from lucidae.estimators import estimator_for

    config = {**defaults(ModelConfig), **defaults(TrainConfig)}
    for family, shown in FAMILY_DEFAULTS.items():
        own = estimator_for(family)().get_params(deep=False)
        differ = {k: v for k, v in own.items() if k in config and k != "model" and config[k] != v}
        assert shown == differ, family


def test_version_and_completion():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"lucidae {__version__}"
    assert "--install-completion" in _help()


def test_exit_code_1_for_runtime_errors_2_for_usage_errors(tmp_path):
    result = runner.invoke(app, ["info", str(tmp_path / "nonexistent")])
    assert result.exit_code == 1
    assert "does not exist" in result.output and "Traceback" not in result.output
    assert runner.invoke(app, ["train", "--latent-dim", "0", "--out", str(tmp_path / "r")]).exit_code == 2
    assert runner.invoke(app, ["train", "--epochs", "x"]).exit_code == 2
    assert runner.invoke(app, ["encode"]).exit_code == 2  # missing argument


def test_a_missing_optional_package_is_one_clear_line(tmp_path, monkeypatch):
    import lucidae.report

    def needs_matplotlib(*args, **kwargs):
        raise ModuleNotFoundError("No module named 'matplotlib'", name="matplotlib")

    monkeypatch.setattr(lucidae.report, "build_report", needs_matplotlib)
    result = runner.invoke(app, ["report", str(tmp_path), "--data", "digits"])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "`lucidae report` needs the package 'matplotlib', which is not installed: pip install" in result.output
    assert "Traceback" not in result.output


def test_the_console_script_prints_a_warning_as_one_line(tmp_path):
    # A person reads the CLI: no "lucidae/runs.py:275: UserWarning:" and no echoed source line.
    table = tmp_path / "t.csv"
    rows = np.random.default_rng(0).normal(size=(60, 4))
    table.write_text("a,b,c,d\n" + "\n".join(",".join(f"{v:.4f}" for v in row) for row in rows) + "\n")
    code = "import sys; from lucidae.cli import main; sys.argv[0] = 'lucidae'; main()"
    args = ["--data", str(table), "--out", str(tmp_path / "run"), "--epochs", "1", "--latent-dim", "8"]
    done = subprocess.run([sys.executable, "-c", code, "train", *args], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "warning: latent_dim=8 is not smaller than the 4 input features" in done.stderr
    assert "UserWarning" not in done.stderr and "est.fit(" not in done.stderr
