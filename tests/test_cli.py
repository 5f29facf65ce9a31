import json
import typing
from dataclasses import fields

import numpy as np
from typer.main import get_command
from typer.testing import CliRunner

from lucidae import load
from lucidae.cli import CLI_CONFIGS, CLI_EXCLUDE, app
from lucidae.cli.options import CLI_DEFAULTS
from lucidae.config import defaults

runner = CliRunner()


def test_train_options_match_config_fields_and_defaults():
    command = get_command(app).commands["train"]
    options = {p.name: p for p in command.params}
    for cls in CLI_CONFIGS:
        for f in fields(cls):
            if f.name in CLI_EXCLUDE:
                assert f.name not in options
                continue
            assert f.name in options, f"no CLI option for {cls.__name__}.{f.name}"
            default = CLI_DEFAULTS.get(f.name, defaults(cls)[f.name])  # the CLI seeds what the API leaves None
            if typing.get_origin(typing.get_type_hints(cls)[f.name]) is tuple:
                default = ",".join(map(str, default))
            assert options[f.name].default == default, f.name
            assert options[f.name].help, f"{f.name} has no help text"


def test_help_is_useful_on_its_own():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("train", "encode", "reconstruct", "info"):
        assert command in result.output


def test_train_info_encode_reconstruct_end_to_end(tmp_path):
    out = tmp_path / "run"
    result = runner.invoke(
        app,
        [
            "train",
            "--data",
            "digits",
            "--latent-dim",
            "4",
            "--hidden-dims",
            "16",
            "--epochs",
            "15",
            "--random-state",
            "0",
            "--verbose",
            "0",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "held-out FVU" in result.output and str(out) in result.output
    run = json.loads((out / "run.json").read_text())
    assert 0 < run["metrics"]["test_fvu"] < 1.0
    assert len(run["test_indices"]) == 360
    ae = load(out)
    assert ae.module_.latent_dim == 4 and ae.n_iter_ == 15

    result = runner.invoke(app, ["info", str(out)])
    assert result.exit_code == 0 and "64-16-4-16-64" in result.output
    info = json.loads(runner.invoke(app, ["info", str(out), "--json"]).output)
    assert info["parameters"] == sum(p.numel() for p in ae.module_.parameters())

    codes = tmp_path / "codes.npy"
    result = runner.invoke(app, ["encode", str(out), "--data", "digits", "--out", str(codes)])
    assert result.exit_code == 0, result.output
    from lucidae.datasets import load_digits

    X = load_digits().X
    np.testing.assert_array_equal(np.load(codes), ae.transform(X))

    recon_csv = tmp_path / "recon.csv"
    result = runner.invoke(app, ["reconstruct", str(out), "--out", str(recon_csv)])
    assert result.exit_code == 0, result.output
    header = recon_csv.read_text().splitlines()[0]
    assert header.startswith("px0_0,px0_1")
    np.testing.assert_allclose(np.loadtxt(recon_csv, delimiter=",", skiprows=1), ae.reconstruct(X), atol=1e-5)


def test_train_on_csv_path(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    path = tmp_path / "t.csv"
    np.savetxt(path, X, delimiter=",", header="a,b,c", comments="")
    out = tmp_path / "run"
    result = runner.invoke(
        app,
        [
            "train",
            "--data",
            str(path),
            "--latent-dim",
            "2",
            "--epochs",
            "2",
            "--verbose",
            "0",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    ae = load(out)
    assert ae.feature_names_ == ["a", "b", "c"] and ae.scaler_.kind == "standard"  # a table, not an image


def test_bad_option_gives_a_clear_error_and_no_traceback(tmp_path):
    result = runner.invoke(app, ["train", "--latent-dim", "0", "--out", str(tmp_path / "r")])
    assert result.exit_code == 2
    assert "latent_dim=0" in result.output and "Traceback" not in result.output
    result = runner.invoke(app, ["train", "--hidden-dims", "12,x", "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and "comma-separated integers" in result.output
    result = runner.invoke(app, ["info", str(tmp_path / "missing")])
    assert result.exit_code == 1 and f"{tmp_path / 'missing'} does not exist" in result.output


def test_an_option_given_at_its_default_value_is_kept_for_families_with_their_own_defaults(tmp_path):
    """`--latent-dim 32` for a VAE means 32, not the VAE's own default of 10; unset options take the family's."""
    out = tmp_path / "vae"
    args = ["train", "--model", "vae", "--latent-dim", "32", "--hidden-dims", "16", "--epochs", "1"]
    result = runner.invoke(app, [*args, "--verbose", "0", "--out", str(out)])
    assert result.exit_code == 0, result.output
    ae = load(out)
    assert ae.latent_dim == 32 and tuple(ae.hidden_dims) == (16,)
    assert ae.lr == type(ae)().lr  # not given: the family's own default
    stored = json.loads((out / "train_options.json").read_text())
    assert {"model", "latent_dim", "hidden_dims", "epochs", "verbose"} <= set(stored) and "lr" not in stored
