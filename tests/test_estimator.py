import inspect
import json
import warnings

import numpy as np
import pytest
import torch
from sklearn.utils.estimator_checks import parametrize_with_checks

import lucidae
from lucidae import AutoEncoder, load
from lucidae.config import DataConfig, ModelConfig, TrainConfig, defaults
from lucidae.errors import ConfigError, CorruptFileError, DataError, LucidaeError
from lucidae.estimators import ESTIMATOR_ONLY

# Checks that cannot pass for a reason we accept, with that reason.
EXPECTED_FAILED_CHECKS: dict[str, str] = {
    "check_methods_sample_order_invariance": (
        "float32 matrix kernels round a row differently depending on its position in the "
        "batch; results differ by about 3e-8, above the check's 1e-9 tolerance"
    ),
    "check_methods_subset_invariance": "same float32 batching round-off as above",
}


def _fast(**kw):
    params = dict(epochs=5, hidden_dims=(8,), latent_dim=2, verbose=0, random_state=0)
    params.update(kw)
    return AutoEncoder(**params)


@parametrize_with_checks([_fast()], expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_parameters_mirror_the_configs():
    sig = inspect.signature(AutoEncoder.__init__).parameters
    params = {k: v.default for k, v in sig.items() if k != "self"}
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for k, p in sig.items() if k != "self")
    # ModelConfig also holds the options of other model families (k, beta, ...); the classic
    # model exposes every field it uses, and each exposed default equals the config's.
    dense_fields = {"hidden_dims", "latent_dim", "activation", "latent_activation", "output_activation"}
    expected = {k: v for k, v in defaults(ModelConfig).items() if k in dense_fields or k in params}
    expected.update(defaults(TrainConfig))
    expected["scaling"] = defaults(DataConfig)["scaling"]
    expected["impute"] = defaults(DataConfig)["impute"]
    expected.update(ESTIMATOR_ONLY)
    assert params == expected


def test_init_only_stores():
    ae = AutoEncoder(latent_dim=-5)  # invalid, but nothing is checked before fit
    assert ae.latent_dim == -5
    with pytest.raises(ConfigError, match="latent_dim=-5"):
        ae.fit(np.random.default_rng(0).random((10, 3)))


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"lr": -1.0}, "lr=-1.0"),
        ({"epochs": 0}, "epochs=0"),
        ({"scaling": "robust"}, "scaling='robust'"),
        ({"activation": "nope"}, "allowed values"),
        ({"validation_fraction": 2.0}, "validation_fraction=2.0"),
    ],
)
def test_invalid_parameters_are_named(kwargs, fragment):
    with pytest.raises(ConfigError, match=fragment):
        _fast(**kwargs).fit(np.random.default_rng(0).random((10, 3)))


def test_fitted_attributes(digits):
    ae = _fast().fit(digits.X, feature_names=digits.feature_names, image_shape=digits.image_shape)
    assert ae.n_features_in_ == 64
    assert ae.image_shape_ == (8, 8) and ae.feature_names_[0] == "px0_0"
    assert ae.n_iter_ == 5 and len(ae.history_.records) == 5
    assert list(ae.get_feature_names_out()) == ["latent0", "latent1"]
    Z = ae.transform(digits.X)
    assert Z.shape == (1797, 2) and Z.dtype == np.float32
    np.testing.assert_allclose(ae.inverse_transform(Z), ae.reconstruct(digits.X), atol=1e-6)
    scores = ae.score_samples(digits.X)
    manual = -((ae.reconstruct(digits.X) - digits.X) ** 2).mean(axis=1)
    np.testing.assert_allclose(scores, manual, rtol=1e-4, atol=1e-7)


def test_wrong_feature_count_at_transform(digits):
    ae = _fast().fit(digits.X)
    with pytest.raises(ValueError, match="X has 10 features, but AutoEncoder is expecting 64"):
        ae.transform(digits.X[:, :10])
    with pytest.raises(DataError, match=r"\(n_samples, 2\)"):
        ae.inverse_transform(np.zeros((3, 5)))


def test_nan_input_names_position(digits):
    X = digits.X.copy()
    X[7, 3] = np.inf
    with pytest.raises(ValueError, match="infinity|NaN"):
        _fast().fit(X)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_every_non_finite_value_is_found_where_it_is(dtype, bad, rng):
    from lucidae.validation import check_finite

    X = rng.normal(size=(500, 30)).astype(dtype)
    check_finite(X)  # finite: passes
    for row, col in ((0, 0), (499, 29), (123, 7)):
        Y = X.copy()
        Y[row, col] = bad
        with pytest.raises(DataError, match=f"row {row}, column {col}"):
            check_finite(Y)


# --------------------------------------------------------------------------- scaling
def test_scaling_runs_blockwise_and_identity_costs_no_copy(monkeypatch, rng):
    import lucidae.scaling as scaling

    monkeypatch.setattr(scaling, "TRANSFORM_BLOCK", 50)  # 50 values: blocks of 7 rows of 7 features
    X = (rng.normal(size=(101, 7)) * 40 + 3).astype(np.float32)
    s = scaling.fit_scaler(X, "standard", output_activation="linear")
    Z = s.transform(X)
    np.testing.assert_array_equal(Z, ((X.astype(np.float64) - s.offset) / s.scale).astype(np.float32))
    np.testing.assert_array_equal(
        s.inverse_transform(Z), (Z.astype(np.float64) * s.scale + s.offset).astype(np.float32)
    )
    identity = scaling.fit_scaler(rng.random((5, 3)).astype(np.float32), "auto")
    Y = rng.random((4, 3)).astype(np.float32)
    assert identity.transform(Y) is Y and identity.inverse_transform(Y) is Y


@pytest.mark.parametrize("output", ["sigmoid", "linear"])
@pytest.mark.parametrize("scaling", ["auto", "minmax", "standard", "none"])
def test_the_scaler_skips_moments_only_where_they_cannot_matter(scaling, output, rng):
    from lucidae.scaling import feature_stats, fit_scaler, scaler_from_stats

    for X in (rng.random((400, 6)).astype(np.float32), (rng.normal(size=(400, 6)) * 3 + 1).astype(np.float32)):
        try:
            want = scaler_from_stats(feature_stats([X], moments=True), X.dtype, scaling, output)
        except Exception as err:  # the same refusal either way
            with pytest.raises(type(err)):
                fit_scaler(X, scaling, output_activation=output)
            continue
        got = fit_scaler(X, scaling, output_activation=output)
        assert got.kind == want.kind
        np.testing.assert_array_equal(got.offset, want.offset)
        np.testing.assert_array_equal(got.scale, want.scale)


def test_uint8_images_are_mapped_to_unit_range_and_back(digits):
    X8 = np.round(digits.X * 255).astype(np.uint8)
    ae = _fast().fit(X8)
    assert ae.scaler_.kind == "uint8"
    np.testing.assert_allclose(ae.scaler_.transform(X8), X8 / 255.0, atol=1e-6)
    recon = ae.reconstruct(X8)
    assert recon.max() > 1.5  # back in 0..255 units
    assert recon.min() >= 0 and recon.max() <= 255 + 1e-3


def test_double_division_by_255_warns(digits):
    with pytest.warns(UserWarning, match="divided by 255 twice"):
        _fast().fit(digits.X / 255.0)


def test_no_warning_for_data_in_unit_range(digits):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ae = _fast().fit(digits.X)
    assert ae.scaler_.kind == "identity"


def test_sigmoid_output_refuses_targets_outside_unit_range(rng):
    X = rng.normal(size=(50, 4))
    with pytest.raises(ConfigError, match="sigmoid"):
        _fast(scaling="standard").fit(X)
    with pytest.raises(ConfigError, match="sigmoid"):
        _fast(scaling=None).fit(X)
    # auto standardises a table, and the default sigmoid output becomes a linear one (#17)
    ae = _fast().fit(X)
    assert ae.scaler_.kind == "standard" and ae.model_config_.output_activation == "linear"
    assert _fast(output_activation="linear").fit(X).scaler_.kind == "standard"


def test_inverse_transform_undoes_standard_scaling(rng):
    X = rng.normal(loc=100.0, scale=20.0, size=(400, 3))
    X[:, 2] = X[:, 0] * 2  # redundant column: reconstructable
    ae = AutoEncoder(
        hidden_dims=(),
        latent_dim=2,
        activation="linear",
        latent_activation="linear",
        output_activation="linear",
        epochs=60,
        verbose=0,
        random_state=0,
    ).fit(X)
    recon = ae.reconstruct(X)
    assert abs(recon.mean() - X.mean()) < 2.0  # original units, not standardised ones
    assert np.mean((recon - X) ** 2) < 0.05 * X.var()


# --------------------------------------------------------------------------- save / load
def test_save_load_round_trip_is_exact(tmp_path, digits):
    ae = _fast().fit(digits.X, feature_names=digits.feature_names, image_shape=(8, 8))
    path = ae.save(tmp_path / "run")
    assert sorted(p.name for p in path.iterdir()) == ["config.json", "model.safetensors"]
    config = json.loads((path / "config.json").read_text())
    assert config["lucidae_version"] == lucidae.__version__
    assert config["model"]["hidden_dims"] == [8] and config["scaling"] == "identity"
    assert len(config["history"]["records"]) == 5
    ae2 = load(path)
    assert type(ae2) is AutoEncoder and ae2.get_params() == ae.get_params()
    for method in ("transform", "reconstruct", "score_samples"):
        np.testing.assert_array_equal(getattr(ae2, method)(digits.X), getattr(ae, method)(digits.X))
    Z = ae.transform(digits.X[:10])
    np.testing.assert_array_equal(ae2.inverse_transform(Z), ae.inverse_transform(Z))
    assert ae2.image_shape_ == (8, 8) and ae2.feature_names_ == digits.feature_names
    assert ae2.history_.records == ae.history_.records


def test_save_overwrites_atomically_and_keeps_other_files(tmp_path, digits):
    path = tmp_path / "run"
    _fast().fit(digits.X).save(path)
    (path / "report.html").write_text("keep me")
    ae = _fast(latent_dim=3).fit(digits.X)
    ae.save(path)
    assert (path / "report.html").read_text() == "keep me"
    assert load(path).module_.latent_dim == 3
    assert [p.name for p in tmp_path.iterdir()] == ["run"]  # no temporary leftovers


def test_load_detects_tampered_weights(tmp_path, digits):
    path = _fast().fit(digits.X).save(tmp_path / "run")
    data = bytearray((path / "model.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (path / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(CorruptFileError, match="checksum"):
        load(path)


def test_load_missing_dir_is_clear(tmp_path):
    with pytest.raises(LucidaeError, match="does not exist"):
        load(tmp_path / "nothing")


def test_no_pickle_in_the_package():
    import pathlib

    root = pathlib.Path(lucidae.__file__).parent
    for path in root.rglob("*.py"):
        text = path.read_text()
        assert "import pickle" not in text and "pickle.load" not in text, path
        if "torch.load(" in text:
            assert "weights_only=True" in text, path


def test_n_init_keeps_the_run_with_the_lowest_validation_loss():
    import torch

    from lucidae.datasets import load_digits
    from lucidae.estimators import init_seed, run_score
    from lucidae.models import build_model
    from lucidae.train import seeded, train

    X = load_digits().X[:600]
    kwargs = dict(hidden_dims=(16,), latent_dim=3, epochs=4, verbose=0, random_state=5)
    est = AutoEncoder(n_init=3, **kwargs).fit(X)
    assert len(est.init_scores_) == 3 and est.best_init_ == int(np.argmin(est.init_scores_))
    # the slow, obvious version: train each initialisation separately with the same data seed
    one = AutoEncoder(**kwargs).fit(X)  # n_init=1 is initialisation 0
    Xs = torch.from_numpy(one.scaler_.transform(X))
    cfg = one._train_config()
    expected = []
    for i in range(3):
        with seeded(5 if i == 0 else init_seed(5, i)):
            module = build_model(one.model_config_)
        expected.append(run_score(train(module, Xs, cfg, seed=5), cfg.restore_best))
    assert est.init_scores_ == expected
    assert one.init_scores_ == expected[:1]
    assert len(set(expected)) == 3  # the initialisations really differ
    assert min(r["val_loss"] for r in est.history_.records) == min(expected)  # the kept run is the best one
    if est.best_init_ == 0:
        np.testing.assert_array_equal(est.transform(X), one.transform(X))


def test_n_init_survives_save_load_and_resume(tmp_path):
    from typer.testing import CliRunner

    from lucidae.cli import app
    from lucidae.datasets import load_digits

    out = tmp_path / "run"
    args = ["train", "--data", "digits", "--hidden-dims", "16", "--latent-dim", "3", "--epochs", "3"]
    args += ["--n-init", "2", "--verbose", "0", "--random-state", "0", "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (out / "checkpoint" / "init-1" / "config.json").is_file()
    assert (out / "checkpoint" / "init-2" / "config.json").is_file()
    est = load(out)
    assert est.n_init == 2 and len(est.init_scores_) == 2
    codes = est.transform(load_digits().X)
    # resuming a finished run trains nothing more and keeps the same choice and weights
    again = CliRunner().invoke(app, ["train", "--resume", str(out)])
    assert again.exit_code == 0, again.output
    back = load(out)
    assert back.init_scores_ == est.init_scores_ and back.best_init_ == est.best_init_
    np.testing.assert_array_equal(back.transform(load_digits().X), codes)


# ---------------------------------------------------------------------- warm_start
def test_warm_start_trains_the_fitted_model_on(digits, tmp_path):
    X = digits.X
    ae = AutoEncoder(epochs=3, lr_schedule="constant", random_state=0, verbose=0).fit(X)
    module, first = ae.module_, [r["loss"] for r in ae.history_.records]
    weights = module.encoder[0].weight.detach().clone()
    ae.set_params(warm_start=True, epochs=4).fit(X)
    assert ae.module_ is module and not torch.equal(module.encoder[0].weight, weights)  # trained in place
    assert ae.n_iter_ == 7 and [r["epoch"] for r in ae.history_.records] == list(range(1, 8))
    more = [r["loss"] for r in ae.history_.records[3:]]
    # it carries on from where it was (measured 0.0333 then 0.0324), not from a fresh start (0.068)
    assert more[0] < 1.1 * first[-1] < 0.8 * first[0] and more[-1] < first[-1]
    assert ae.history_.best_epoch is None or ae.history_.best_epoch > 3
    # a refit without warm_start starts afresh, and an unfitted estimator with it just fits
    fresh = AutoEncoder(epochs=3, lr_schedule="constant", random_state=0, verbose=0, warm_start=True).fit(X)
    assert fresh.n_iter_ == 3 and [r["loss"] for r in fresh.history_.records] == first
    ae.set_params(warm_start=False, epochs=3).fit(X)
    assert ae.module_ is not module and ae.n_iter_ == 3
    # saved and loaded, the parameter comes back with the model
    loaded = load(ae.set_params(warm_start=True).save(tmp_path / "ae"))
    assert loaded.warm_start is True and loaded.fit(X).n_iter_ == 6


def test_warm_start_refuses_data_the_fitted_model_cannot_take(digits):
    ae = AutoEncoder(epochs=1, random_state=0, verbose=0, warm_start=True).fit(digits.X)
    with pytest.raises(DataError, match="expecting 64 features"):
        ae.fit(digits.X[:, :10])
    with pytest.raises(DataError, match=r"spans \[0, 2\].*warm_start=False"):
        ae.fit(digits.X * 2)  # the scaling fitted on [0, 1] data would give sigmoid targets up to 2
    bad = digits.X.copy()
    bad[3, 5] = np.nan
    with pytest.raises(DataError, match="NaN"):
        ae.fit(bad)
    assert ae.n_iter_ == 1  # nothing trained
