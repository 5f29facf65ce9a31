"""SAEs to and from SAELens's and sparsify's folder layouts (lucidae.interop, `lucidae export` / `import`).

SAELens and sparsify are not installed here (no network installs): the folders their
loaders read are written by these tests from the documented layouts, and the models they
compute are written out in numpy from the tensors alone.
"""

import json

import numpy as np
import pytest
import torch
import typer
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from lucidae import AutoEncoder, JumpReLUAutoEncoder, SparseAutoEncoder, TopKAutoEncoder, load
from lucidae.cli.interop import register
from lucidae.errors import ConfigError, CorruptFileError
from lucidae.interop import from_saelens, from_sparsify, to_saelens, to_sparsify

D_IN, D_SAE, K = 8, 32, 4


@pytest.fixture(scope="module")
def X():
    rng = np.random.default_rng(0)
    return (rng.standard_normal((300, D_IN)) + rng.normal(0, 3, D_IN)).astype(np.float32)


@pytest.fixture(scope="module")
def fitted(X):
    common = {"latent_dim": D_SAE, "epochs": 2, "verbose": 0, "random_state": 0}
    return {
        "topk": TopKAutoEncoder(k=K, **common).fit(X, feature_names=[f"f{i}" for i in range(D_IN)]),
        "sparse": SparseAutoEncoder(**common).fit(X),
    }


def _same_model(a, b, X):
    np.testing.assert_array_equal(a.transform(X), b.transform(X))
    np.testing.assert_array_equal(a.reconstruct(X), b.reconstruct(X))


# ---------------------------------------------------------------------- SAELens's and sparsify's formulas, in numpy
def _topk_rows(A, k):
    """Keep the k largest entries of each row of A (n, d_sae), zero the rest."""
    out = np.zeros_like(A)
    idx = np.argsort(-A, axis=1, kind="stable")[:, :k]  # (n, k)
    np.put_along_axis(out, idx, np.take_along_axis(A, idx, axis=1), axis=1)
    return out


def _saelens(t, x, architecture, k=0, apply_b_dec=True):
    """SAELens's SAE from its tensors: codes (n, d_sae) and reconstructions (n, d_in), float64."""
    x = x.astype(np.float64)
    W_enc, b_enc, W_dec, b_dec = (t[n].astype(np.float64) for n in ("W_enc", "b_enc", "W_dec", "b_dec"))
    pre = (x - b_dec * apply_b_dec) @ W_enc + b_enc  # (n, d_sae)
    if architecture == "standard":
        z = np.maximum(pre, 0)
    elif architecture == "topk":
        z = _topk_rows(np.maximum(pre, 0), k)
    else:
        z = np.maximum(pre, 0) * (pre > t["threshold"].astype(np.float64))
    return z, z @ W_dec + b_dec


def _sparsify(t, x, k):
    x = x.astype(np.float64)
    pre = np.maximum((x - t["b_dec"]) @ t["encoder.weight"].astype(np.float64).T + t["encoder.bias"], 0)
    z = _topk_rows(pre, k)  # (n, num_latents)
    return z, z @ t["W_dec"].astype(np.float64) + t["b_dec"]


def _random_saelens(folder, architecture, *, seed=0, k=3, apply_b_dec=True, **cfg_extra):
    rng = np.random.default_rng(seed)
    t = {
        "W_enc": rng.standard_normal((D_IN, D_SAE)),
        "b_enc": rng.normal(0, 0.3, D_SAE),
        "W_dec": rng.standard_normal((D_SAE, D_IN)),
        "b_dec": rng.normal(0, 0.5, D_IN),
    }
    if architecture == "jumprelu":
        t["threshold"] = rng.uniform(0.0, 1.5, D_SAE)
    t = {n: v.astype(np.float32) for n, v in t.items()}
    cfg = {"architecture": architecture, "d_in": D_IN, "d_sae": D_SAE, "apply_b_dec_to_input": apply_b_dec}
    if architecture == "topk":
        cfg["k"] = k
    cfg.update(cfg_extra)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cfg.json").write_text(json.dumps(cfg))
    save_file({n: torch.from_numpy(v) for n, v in t.items()}, str(folder / "sae_weights.safetensors"))
    return t


# ---------------------------------------------------------------------- lucidae -> layout -> lucidae
@pytest.mark.parametrize("family", ["topk", "sparse"])
@pytest.mark.parametrize("fmt", ["saelens", "sparsify"])
def test_round_trip_gives_identical_codes_and_reconstructions(fitted, X, family, fmt, tmp_path):
    est = fitted[family]
    write, read = (to_saelens, from_saelens) if fmt == "saelens" else (to_sparsify, from_sparsify)
    back = read(write(est, tmp_path / "sae"))
    assert type(back) is type(est) and back.model_config_.model == family
    _same_model(back, est, X)
    assert back.feature_names_ == est.feature_names_ and back.n_features_in_ == D_IN
    assert back.scaler_.kind == "identity" and back.history_.records == []
    if family == "topk":
        assert back.model_config_.k == K
    again = load(back.save(tmp_path / "run"))  # a lucidae model folder like any other
    assert type(again) is type(est)
    _same_model(again, est, X)


def test_saelens_folder_holds_the_documented_keys_and_shapes(fitted, tmp_path):
    folder = to_saelens(fitted["topk"], tmp_path / "sae", hook_name="blocks.3.hook_resid_post")
    cfg = json.loads((folder / "cfg.json").read_text())
    assert (cfg["architecture"], cfg["d_in"], cfg["d_sae"], cfg["k"]) == ("topk", D_IN, D_SAE, K)
    assert cfg["activation_fn_kwargs"] == {"k": K} and cfg["apply_b_dec_to_input"] is True
    assert cfg["hook_name"] == "blocks.3.hook_resid_post"
    shapes = {n: tuple(v.shape) for n, v in load_file(str(folder / "sae_weights.safetensors")).items()}
    assert shapes == {"W_enc": (D_IN, D_SAE), "b_enc": (D_SAE,), "W_dec": (D_SAE, D_IN), "b_dec": (D_IN,)}


def test_exported_relu_sae_computes_the_same_in_saelens_and_sparsify_formulas(fitted, X, tmp_path):
    est = fitted["sparse"]
    t = {n: v.numpy() for n, v in load_file(str(to_saelens(est, tmp_path / "a") / "sae_weights.safetensors")).items()}
    z, recon = _saelens(t, X, "standard")
    np.testing.assert_allclose(z, est.transform(X), atol=1e-4)
    np.testing.assert_allclose(recon, est.reconstruct(X), atol=1e-4)
    folder = to_sparsify(est, tmp_path / "b")
    cfg = json.loads((folder / "cfg.json").read_text())
    assert (cfg["k"], cfg["num_latents"], cfg["d_in"]) == (D_SAE, D_SAE, D_IN)  # every ReLU latent kept
    t = {n: v.numpy() for n, v in load_file(str(folder / "sae.safetensors")).items()}
    assert {n: v.shape for n, v in t.items()} == {
        "encoder.weight": (D_SAE, D_IN),
        "encoder.bias": (D_SAE,),
        "W_dec": (D_SAE, D_IN),
        "b_dec": (D_IN,),
    }
    z, recon = _sparsify(t, X, cfg["k"])
    np.testing.assert_allclose(z, est.transform(X), atol=1e-4)
    np.testing.assert_allclose(recon, est.reconstruct(X), atol=1e-4)


def test_input_scaling_is_folded_into_the_exported_weights(X, tmp_path):
    est = SparseAutoEncoder(latent_dim=D_SAE, scaling="standard", epochs=2, verbose=0, random_state=0).fit(X)
    assert est.scaler_.kind == "standard"
    folder = to_saelens(est, tmp_path / "sae")
    t = {n: v.numpy() for n, v in load_file(str(folder / "sae_weights.safetensors")).items()}
    z, recon = _saelens(t, X, "standard")  # raw inputs: the scaling is inside the weights
    np.testing.assert_allclose(z, est.transform(X), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(recon, est.reconstruct(X), rtol=1e-4, atol=1e-3)
    back = from_saelens(folder)
    assert back.scaler_.kind == "identity"
    np.testing.assert_allclose(back.reconstruct(X), est.reconstruct(X), rtol=1e-4, atol=1e-3)


def test_export_refuses_what_the_layouts_cannot_hold(X, tmp_path):
    dense = AutoEncoder(hidden_dims=(), latent_dim=2, epochs=1, verbose=0).fit(X)
    with pytest.raises(ConfigError, match=r"model family 'dense'\) cannot be exported"):
        to_saelens(dense, tmp_path / "a")
    _random_saelens(tmp_path / "j", "jumprelu")
    with pytest.raises(ConfigError, match="to_saelens"):
        to_sparsify(from_saelens(tmp_path / "j"), tmp_path / "b")
    with pytest.raises(ConfigError, match="is a file"):
        (tmp_path / "file").write_text("x")
        to_saelens(from_saelens(tmp_path / "j"), tmp_path / "file")


# ---------------------------------------------------------------------- folders written in the tools' layouts
@pytest.mark.parametrize("architecture", ["standard", "topk", "jumprelu"])
@pytest.mark.parametrize("apply_b_dec", [True, False])
def test_saelens_folder_reconstructs_as_saelens_computes(architecture, apply_b_dec, X, tmp_path):
    t = _random_saelens(tmp_path / "sae", architecture, k=3, apply_b_dec=apply_b_dec)
    z, recon = _saelens(t, X, architecture, k=3, apply_b_dec=apply_b_dec)
    if architecture == "topk":  # lucidae's TopK skips SAELens's ReLU on the winners: equal when k are positive
        pre = (X - t["b_dec"] * apply_b_dec) @ t["W_enc"] + t["b_enc"]
        assert ((pre > 0).sum(axis=1) >= 3).all()
    if architecture != "standard":  # a test of a sparse code must see zeros
        assert 0 < (z != 0).mean() < 0.9
    est = from_saelens(tmp_path / "sae")
    expected = {"standard": SparseAutoEncoder, "topk": TopKAutoEncoder, "jumprelu": JumpReLUAutoEncoder}
    assert type(est) is expected[architecture]
    np.testing.assert_allclose(est.transform(X), z, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(est.reconstruct(X), recon, rtol=1e-5, atol=1e-3)
    again = load(est.save(tmp_path / "run"))
    _same_model(again, est, X)
    if architecture == "jumprelu":  # and back out to SAELens, the thresholds with it
        back = from_saelens(to_saelens(est, tmp_path / "out"))
        _same_model(back, est, X)


def test_saelens_variants_of_the_same_model_read_the_same(X, tmp_path):
    t = _random_saelens(tmp_path / "plain", "jumprelu")
    plain = from_saelens(tmp_path / "plain")
    # log_threshold instead of threshold
    (tmp_path / "log").mkdir()
    (tmp_path / "log" / "cfg.json").write_text((tmp_path / "plain" / "cfg.json").read_text())
    logs = {n: torch.from_numpy(v) for n, v in t.items() if n != "threshold"}
    logs["log_threshold"] = torch.from_numpy(np.log(t["threshold"]))
    save_file(logs, str(tmp_path / "log" / "sae_weights.safetensors"))
    np.testing.assert_allclose(from_saelens(tmp_path / "log").transform(X), plain.transform(X), atol=1e-5)
    # SAELens 5's TopK: architecture "standard" with activation topk and k in activation_fn_kwargs
    _random_saelens(tmp_path / "v5", "standard", activation_fn_str="topk", activation_fn_kwargs={"k": 3})
    v5 = from_saelens(tmp_path / "v5")
    assert type(v5) is TopKAutoEncoder and v5.model_config_.k == 3
    # a finetuning scaling factor multiplies the code before decoding
    t = _random_saelens(tmp_path / "ft", "standard", finetuning_scaling_factor=True)
    scale = np.linspace(0.5, 2.0, D_SAE, dtype=np.float32)
    save_file(
        {**{n: torch.from_numpy(v) for n, v in t.items()}, "scaling_factor": torch.from_numpy(scale)},
        str(tmp_path / "ft" / "sae_weights.safetensors"),
    )
    z, _ = _saelens(t, X, "standard")
    np.testing.assert_allclose(
        from_saelens(tmp_path / "ft").reconstruct(X), (z * scale) @ t["W_dec"] + t["b_dec"], atol=1e-3
    )


def test_sparsify_folder_reconstructs_as_sparsify_computes(X, tmp_path):
    rng = np.random.default_rng(1)
    t = {
        "encoder.weight": rng.standard_normal((D_SAE, D_IN)),
        "encoder.bias": rng.normal(0, 0.3, D_SAE),
        "W_dec": rng.standard_normal((D_SAE, D_IN)),
        "b_dec": rng.normal(0, 0.5, D_IN),
    }
    t = {n: v.astype(np.float32) for n, v in t.items()}
    folder = tmp_path / "layers.6"
    folder.mkdir()
    cfg = {"expansion_factor": 4, "normalize_decoder": True, "num_latents": 0, "k": 3, "multi_topk": False}
    (folder / "cfg.json").write_text(json.dumps({**cfg, "skip_connection": False, "d_in": D_IN}))
    save_file({n: torch.from_numpy(v) for n, v in t.items()}, str(folder / "sae.safetensors"))
    z, recon = _sparsify(t, X, 3)
    est = from_sparsify(folder)
    assert type(est) is TopKAutoEncoder and est.model_config_.latent_dim == D_SAE  # num_latents 0: d_in * 4
    assert not est.unit_norm_decoder  # these random atoms are not unit-norm: training further must not force them
    np.testing.assert_allclose(est.transform(X), z, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(est.reconstruct(X), recon, rtol=1e-5, atol=1e-3)


# ---------------------------------------------------------------------- bad folders
def _damage(folder, *, cfg=None, drop=None, replace=None):
    if cfg is not None:
        (folder / "cfg.json").write_text(cfg if isinstance(cfg, str) else json.dumps(cfg))
    path = folder / "sae_weights.safetensors"
    if drop is not None or replace is not None:
        t = load_file(str(path))
        t.pop(drop, None)
        t.update(replace or {})
        save_file(t, str(path))


BASE = {"architecture": "standard", "d_in": D_IN, "d_sae": D_SAE}


@pytest.mark.parametrize(
    "damage, match",
    [
        ({"cfg": "{not json"}, "not valid JSON"),
        ({"cfg": "[1, 2]"}, "JSON object"),
        ({"cfg": {**BASE, "architecture": "banana"}}, "architecture='banana'"),
        ({"cfg": {**BASE, "architecture": "gated"}}, "'gated' is not supported"),
        ({"cfg": {**BASE, "d_in": 9}}, "cfg.json implies \\[32, 9\\]"),
        ({"cfg": {**BASE, "d_sae": "many"}}, "d_sae='many'"),
        ({"cfg": {**BASE, "architecture": "topk", "k": D_SAE + 1}}, "k=33"),
        ({"cfg": {**BASE, "architecture": "topk"}}, "k=None"),
        ({"cfg": {**BASE, "architecture": "jumprelu"}}, "threshold"),
        ({"cfg": {**BASE, "normalize_activations": "constant_norm_rescale"}}, "constant_norm_rescale"),
        ({"cfg": {**BASE, "apply_b_dec_to_input": "yes"}}, "apply_b_dec_to_input='yes'"),
        ({"drop": "W_dec"}, "lacks tensor"),
        ({"replace": {"W_enc": torch.zeros(D_SAE, D_IN)}}, "W_enc"),
        ({"replace": {"b_mag": torch.zeros(D_SAE)}}, "b_mag"),
        ({"replace": {"b_enc": torch.zeros(D_SAE, dtype=torch.int32)}}, "dtype"),
        ({"replace": {"b_enc": torch.full((D_SAE,), float("nan"))}}, "NaN"),
    ],
)
def test_bad_saelens_folders_are_refused(damage, match, tmp_path):
    folder = tmp_path / "sae"
    _random_saelens(folder, "standard")
    _damage(folder, **damage)
    with pytest.raises(CorruptFileError, match=match):
        from_saelens(folder)


def test_missing_files_are_refused(tmp_path):
    with pytest.raises(CorruptFileError, match="not a folder"):
        from_saelens(tmp_path / "nowhere")
    folder = tmp_path / "sae"
    _random_saelens(folder, "standard")
    (folder / "sae_weights.safetensors").unlink()
    with pytest.raises(CorruptFileError, match="sae_weights.safetensors is missing"):
        from_saelens(folder)
    (folder / "sae_weights.safetensors").write_bytes(b"\x00\x01")
    with pytest.raises(CorruptFileError, match="8-byte length"):
        from_saelens(folder)
    (folder / "cfg.json").unlink()
    with pytest.raises(CorruptFileError, match="cfg.json is missing"):
        from_saelens(folder)
    with pytest.raises(CorruptFileError, match="cfg.json is missing"):
        from_sparsify(folder)


@pytest.mark.parametrize(
    "cfg, match",
    [
        ({"activation": "groupmax"}, "groupmax"),
        ({"skip_connection": True}, "skip_connection"),
        ({"transcode": True}, "transcode"),
        ({"k": D_SAE + 1}, "k=33"),
        ({"d_in": 0}, "d_in=0"),
        ({"num_latents": 16}, "has shape \\[32, 8\\]; cfg.json implies \\[16, 8\\]"),
    ],
)
def test_bad_sparsify_folders_are_refused(fitted, cfg, match, tmp_path):
    folder = to_sparsify(fitted["topk"], tmp_path / "layers.0")
    (folder / "cfg.json").write_text(json.dumps({**json.loads((folder / "cfg.json").read_text()), **cfg}))
    with pytest.raises(CorruptFileError, match=match):
        from_sparsify(folder)


def test_sparsify_folder_without_decoder_is_refused(fitted, tmp_path):
    folder = to_sparsify(fitted["topk"], tmp_path / "layers.0")
    t = load_file(str(folder / "sae.safetensors"))
    del t["W_dec"]
    save_file(t, str(folder / "sae.safetensors"))
    with pytest.raises(CorruptFileError, match="W_dec"):
        from_sparsify(folder)


def test_bad_feature_names_in_lucidae_notes_are_refused(fitted, tmp_path):
    folder = to_saelens(fitted["topk"], tmp_path / "sae")
    (folder / "lucidae.json").write_text(json.dumps({"feature_names": ["a"]}))
    with pytest.raises(CorruptFileError, match="feature_names"):
        from_saelens(folder)


# ---------------------------------------------------------------------- JumpReLU estimator
def test_jumprelu_estimator_trains_with_its_thresholds_fixed(X):
    est = JumpReLUAutoEncoder(latent_dim=D_SAE, epochs=1, verbose=0, random_state=0).fit(X)
    assert est.model_config_.model == "jumprelu" and (est.module_.threshold == 0).all()
    Z = est.transform(X)
    assert (Z >= 0).all() and (Z == 0).any()


# ---------------------------------------------------------------------- the commands
@pytest.fixture
def cli():
    app = typer.Typer()
    register(app)
    return app


def test_export_then_import_then_report(cli, fitted, X, tmp_path):
    from lucidae.cli.app import app as lucidae_app

    run = fitted["topk"].save(tmp_path / "run")
    runner = CliRunner()
    result = runner.invoke(cli, ["export", str(run), "--format", "saelens", "--out", str(tmp_path / "sae")])
    assert result.exit_code == 0, result.output
    assert "saelens layout" in result.output
    result = runner.invoke(
        cli, ["import", str(tmp_path / "sae"), "--format", "saelens", "--out", str(tmp_path / "back")]
    )
    assert result.exit_code == 0, result.output
    assert "TopKAutoEncoder" in result.output and "k=4" in result.output
    _same_model(load(tmp_path / "back"), fitted["topk"], X)
    np.save(tmp_path / "acts.npy", X[:120])
    result = runner.invoke(lucidae_app, ["report", str(tmp_path / "back"), "--data", str(tmp_path / "acts.npy")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "back" / "report.html").is_file() and (tmp_path / "back" / "metrics.json").is_file()


def test_import_of_a_foreign_folder_and_sparsify_export(cli, X, tmp_path):
    _random_saelens(tmp_path / "gemma", "jumprelu")
    runner = CliRunner()
    result = runner.invoke(
        cli, ["import", str(tmp_path / "gemma"), "--format", "saelens", "--out", str(tmp_path / "r")]
    )
    assert result.exit_code == 0, result.output
    assert type(load(tmp_path / "r")) is JumpReLUAutoEncoder
    result = runner.invoke(cli, ["export", str(tmp_path / "r"), "--format", "sparsify", "--out", str(tmp_path / "s")])
    assert result.exit_code == 1 and "to_saelens" in result.output  # a runtime error


def test_commands_refuse_bad_formats_and_folders(cli, tmp_path):
    runner = CliRunner()
    result = runner.invoke(cli, ["import", str(tmp_path), "--format", "hf", "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and "'hf' is not one of" in result.output  # a usage error
    result = runner.invoke(cli, ["import", str(tmp_path), "--format", "sparsify", "--out", str(tmp_path / "r")])
    assert result.exit_code == 1 and "cfg.json is missing" in result.output
    assert not (tmp_path / "r").exists()
