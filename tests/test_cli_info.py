"""What `lucidae info`, the summary and the report say: singulars, negative explained variance, a VAE's code."""

import json
from types import SimpleNamespace

import numpy as np
import torch
from typer.testing import CliRunner

from lucidae import VAE, AutoEncoder
from lucidae.cli import app
from lucidae.datasets import load_digits
from lucidae.summary import summarize

runner = CliRunner()


def test_info_does_not_call_a_vaes_code_relu(tmp_path):
    X = load_digits().X[:300]
    vae = VAE(hidden_dims=(16,), latent_dim=3, epochs=1, verbose=0, random_state=0).fit(X)
    result = runner.invoke(app, ["info", str(vae.save(tmp_path / "vae"))])
    assert result.exit_code == 0, result.output
    line = next(line for line in result.output.splitlines() if line.startswith("activations"))
    assert "latent relu" not in line and "Gaussian" in line, line


def test_info_says_a_negative_explained_variance_is_worse_than_the_mean(tmp_path):
    X = load_digits().X[:300]
    ae = AutoEncoder(hidden_dims=(), latent_dim=2, epochs=1, verbose=0, random_state=0).fit(X)
    run = ae.save(tmp_path / "run", run={"metrics": {"test_fvu": 1.002, "test_mse": 0.3}})
    result = runner.invoke(app, ["info", str(run)])
    assert result.exit_code == 0, result.output
    assert "-0.2%" not in result.output
    assert "worse than predicting the mean" in result.output
    good = ae.save(tmp_path / "good", run={"metrics": {"test_fvu": 0.25, "test_mse": 0.3}})
    assert "explained variance 75.0%" in runner.invoke(app, ["info", str(good)]).output
    as_json = json.loads(runner.invoke(app, ["info", str(run), "--json"]).output)
    assert as_json["metrics"]["test_fvu"] == 1.002


def test_info_of_a_missing_folder_says_it_does_not_exist(tmp_path):
    result = runner.invoke(app, ["info", str(tmp_path / "nonexistent")])
    assert result.exit_code == 1
    assert f"{tmp_path / 'nonexistent'} does not exist" in result.output and "config.json" not in result.output


def test_one_dead_latent_is_named_in_the_singular():
    X = load_digits().X[:400]
    ae = AutoEncoder(hidden_dims=(), latent_dim=4, epochs=2, verbose=0, random_state=0).fit(X)
    code = [m for m in ae.module_.encoder.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():  # latent 2 can never fire: no input reaches it and its bias is negative
        code.weight[2] = 0.0
        code.bias[2] = -1.0
    note = {e.name: e.note for e in summarize(ae, X).entries}["n_dead"]
    assert note.startswith("1 of 4 latents never fires") and "(latent 2)" in note, note


def test_the_report_never_says_a_model_explains_a_negative_share():
    from lucidae.report.build import _fidelity_warnings

    ((title, text),) = _fidelity_warnings(SimpleNamespace(explained=-0.002))
    assert "-0.2%" not in text and "worse than predicting the mean" in text
    ((title, text),) = _fidelity_warnings(SimpleNamespace(explained=0.3))
    assert "30.0%" in text
    assert not list(_fidelity_warnings(SimpleNamespace(explained=np.float64(0.9))))
