"""The dense-family levers: linear (PCA) model, tied weights, weight penalties, denoising, pruning."""

import copy
import inspect
import json

import numpy as np
import pytest
import torch
from scipy.linalg import subspace_angles
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.utils.estimator_checks import parametrize_with_checks
from typer.testing import CliRunner

from lucidae import AutoEncoder, LinearAutoEncoder, load
from lucidae.cli import app
from lucidae.config import DataConfig, ModelConfig, TrainConfig, defaults
from lucidae.errors import ConfigError
from lucidae.estimators import ESTIMATOR_ONLY
from lucidae.models import build_model
from lucidae.models.dense import DenseAutoEncoder, TiedLinear
from lucidae.prune import constant_latents, count_nonzero_weights, layer_ranges, magnitude_prune_, prune

LINEAR_OWN_DEFAULTS = {"batch_size": 2048, "lr": 3e-2, "validation_fraction": 0.0}
"""Training defaults the linear estimator sets on evidence (see its docstring)."""


def _small(**kw):
    params = dict(hidden_dims=(16,), latent_dim=4, epochs=4, verbose=0, random_state=0)
    params.update(kw)
    return AutoEncoder(**params)


@pytest.fixture(scope="module")
def linear8(digits):
    """The acceptance model: documented defaults, 8 latents, trained on all of digits."""
    return LinearAutoEncoder(latent_dim=8, verbose=0, random_state=0).fit(digits.X)


@pytest.fixture(scope="module")
def pca8(digits):
    return PCA(8).fit(digits.X)


# --------------------------------------------------------------------------- parameters
# Checks that cannot pass for a reason we accept, with that reason (as for AutoEncoder).
EXPECTED_FAILED_CHECKS: dict[str, str] = {
    "check_methods_sample_order_invariance": (
        "float32 matrix kernels round a row differently depending on its position in the batch"
    ),
    "check_methods_subset_invariance": "same float32 batching round-off as above",
}


@parametrize_with_checks(
    [LinearAutoEncoder(latent_dim=2, epochs=5, verbose=0, random_state=0)],
    expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS,
)
def test_linear_estimator_is_sklearn_compatible(estimator, check):
    check(estimator)


def test_linear_parameters_mirror_the_configs():
    sig = inspect.signature(LinearAutoEncoder.__init__).parameters
    params = {k: v.default for k, v in sig.items() if k != "self"}
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for k, p in sig.items() if k != "self")
    # activations and hidden layers are fixed by the family, so they are not parameters
    model_fields = {"latent_dim", "tied", "encoder_l1", "encoder_l2", "decoder_l1", "decoder_l2", "noise"}
    model_fields |= {"noise_level"}
    expected = {k: v for k, v in defaults(ModelConfig).items() if k in model_fields}
    expected.update(defaults(TrainConfig))
    expected.update(LINEAR_OWN_DEFAULTS)
    expected["scaling"] = defaults(DataConfig)["scaling"]
    expected["impute"] = defaults(DataConfig)["impute"]
    expected.update(ESTIMATOR_ONLY)
    assert params == expected


def test_dense_estimator_exposes_every_lever_with_config_defaults():
    params = AutoEncoder().get_params()
    for name in ("tied", "encoder_l1", "encoder_l2", "decoder_l1", "decoder_l2", "latent_l1", "noise", "noise_level"):
        assert params[name] == defaults(ModelConfig)[name], name


def test_latent_l1_makes_the_code_sparser(digits):
    """Activation L1: fewer active latents per sample (L0) as the penalty grows, and the loss term is logged."""
    l0s = []
    for strength in (0.0, 1e-4, 1e-3):
        ae = AutoEncoder(hidden_dims=(32,), latent_dim=16, latent_l1=strength, epochs=40, verbose=0, random_state=0)
        ae.fit(digits.X)
        Z = ae.transform(digits.X)
        l0s.append(float((Z > 0).sum(axis=1).mean()))  # ReLU code: exact zeros
        if strength:
            record = ae.history_.records[-1]
            assert record["latent_l1"] > 0
    assert l0s[0] > l0s[1] > l0s[2], l0s


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"encoder_l1": -1.0}, "encoder_l1=-1.0"),
        ({"decoder_l2": float("nan")}, "decoder_l2=nan"),
        ({"noise": "salt"}, "noise='salt'"),
        ({"noise": "mask", "noise_level": 1.0}, "noise_level=1.0"),
        ({"noise": "gaussian", "noise_level": -0.1}, "noise_level=-0.1"),
        ({"tied": 1}, "tied=1"),
    ],
)
def test_invalid_lever_values_are_named(kwargs, fragment):
    with pytest.raises(ConfigError, match=fragment):
        ModelConfig(input_dim=4, **kwargs).validate()


# --------------------------------------------------------------------------- linear = PCA
def test_linear_model_has_no_hidden_layer_or_nonlinearity():
    cfg = ModelConfig(model="linear", input_dim=10, hidden_dims=(32,), latent_dim=3, activation="relu")
    model = build_model(cfg)
    assert [type(m).__name__ for m in model.encoder] == ["Linear", "Identity"]
    assert [type(m).__name__ for m in model.decoder] == ["Linear", "Identity"]
    x = torch.randn(6, 10)
    assert torch.allclose(model(2 * x).recon + model(0 * x).recon, 2 * model(x).recon, atol=1e-5)  # affine


def test_linear_autoencoder_recovers_the_pca_subspace(linear8, pca8):
    W = linear8.components_.T  # (64, 8) decoder columns
    angles = np.degrees(subspace_angles(W, pca8.components_.T))
    assert angles.max() < 1.0, angles


def test_align_to_principal_axes_gives_ordered_pca_components(digits, linear8, pca8):
    before = linear8.reconstruct(digits.X)
    aligned = linear8.align_to_principal_axes(digits.X)
    assert aligned is linear8
    cos = np.abs(np.sum(linear8.components_ * pca8.components_, axis=1))
    cos /= np.linalg.norm(linear8.components_, axis=1) * np.linalg.norm(pca8.components_, axis=1)
    assert (cos > 0.99).all(), cos
    var = linear8.explained_variance_
    assert (np.diff(var) < 0).all()
    np.testing.assert_allclose(var, pca8.explained_variance_, rtol=0.01)
    cov = np.cov(linear8.transform(digits.X), rowvar=False)
    assert np.abs(cov - np.diag(np.diag(cov))).max() < 1e-3 * var[-1]
    np.testing.assert_allclose(np.diag(cov), var, rtol=1e-3)
    np.testing.assert_allclose(linear8.reconstruct(digits.X), before, atol=1e-4)  # a change of basis only


def test_align_keeps_tied_weights_tied(digits):
    lin = LinearAutoEncoder(latent_dim=4, tied=True, epochs=20, verbose=0, random_state=0).fit(digits.X)
    before = lin.reconstruct(digits.X)
    lin.align_to_principal_axes(digits.X)
    dec, enc = lin.module_.decoder[0], lin.module_.encoder[0]
    assert isinstance(dec, TiedLinear) and torch.equal(dec.weight, enc.weight.t())
    cov = np.cov(lin.transform(digits.X), rowvar=False)
    assert np.abs(cov - np.diag(np.diag(cov))).max() < 1e-4 and (np.diff(np.diag(cov)) < 0).all()
    np.testing.assert_allclose(lin.reconstruct(digits.X), before, atol=1e-4)


# --------------------------------------------------------------------------- tied weights
def test_tied_decoder_is_the_encoder_transposed_with_hidden_layers():
    cfg = ModelConfig(input_dim=20, hidden_dims=(12, 6), latent_dim=3, tied=True)
    tied, free = DenseAutoEncoder(cfg), DenseAutoEncoder(ModelConfig(input_dim=20, hidden_dims=(12, 6), latent_dim=3))
    weights = 20 * 12 + 12 * 6 + 6 * 3
    enc_biases, dec_biases = 12 + 6 + 3, 6 + 12 + 20
    assert sum(p.numel() for p in tied.parameters()) == weights + enc_biases + dec_biases
    assert sum(p.numel() for p in free.parameters()) == 2 * weights + enc_biases + dec_biases
    enc = [m for m in tied.encoder if isinstance(m, torch.nn.Linear)]
    dec = [m for m in tied.decoder if isinstance(m, TiedLinear)]
    for e, d in zip(enc, reversed(dec)):
        assert torch.equal(d.weight, e.weight.t())
    assert not any(k.startswith("decoder") and k.endswith("weight") for k in tied.state_dict())
    # a step on the shared weight moves encoder and decoder together
    opt = torch.optim.SGD(tied.parameters(), lr=0.1)
    x = torch.rand(8, 20)
    tied.loss(x, x).total.backward()
    opt.step()
    for e, d in zip(enc, reversed(dec)):
        assert torch.equal(d.weight, e.weight.t())
        assert d.weight.data_ptr() == e.weight.data_ptr()


def test_tied_forward_matches_a_hand_written_reference():
    model = DenseAutoEncoder(ModelConfig(input_dim=5, hidden_dims=(4,), latent_dim=2, tied=True))
    x = torch.rand(3, 5)
    W1, b1 = model.encoder[0].weight, model.encoder[0].bias
    W2, b2 = model.encoder[2].weight, model.encoder[2].bias
    z = torch.relu(x @ W1.T + b1) @ W2.T + b2
    z = torch.relu(z)
    h = torch.relu(z @ W2 + model.decoder[0].bias)
    recon = torch.sigmoid(h @ W1 + model.decoder[2].bias)
    out = model(x)
    assert torch.allclose(out.latent, z) and torch.allclose(out.recon, recon)


# --------------------------------------------------------------------------- weight penalties
def test_weight_penalties_match_their_definition_and_skip_biases():
    cfg = ModelConfig(input_dim=6, hidden_dims=(5,), latent_dim=2, encoder_l1=0.1, encoder_l2=0.2, decoder_l1=0.3)
    model = DenseAutoEncoder(cfg)
    enc = [model.encoder[0].weight, model.encoder[2].weight]
    dec = [model.decoder[0].weight, model.decoder[2].weight]
    terms = model.weight_penalties()
    assert set(terms) == {"encoder_l1", "encoder_l2", "decoder_l1"}
    assert terms["encoder_l1"].item() == pytest.approx(0.1 * sum(float(w.detach().abs().sum()) for w in enc), rel=1e-6)
    assert terms["encoder_l2"].item() == pytest.approx(0.2 * sum(float((w.detach() ** 2).sum()) for w in enc), rel=1e-6)
    assert terms["decoder_l1"].item() == pytest.approx(0.3 * sum(float(w.detach().abs().sum()) for w in dec), rel=1e-6)
    x = torch.rand(4, 6)
    model.eval()
    loss = model.loss(x, x)
    mse = torch.nn.functional.mse_loss(model(x).recon, x)
    assert loss.total.item() == pytest.approx(mse.item() + sum(t.item() for t in terms.values()), rel=1e-6)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.Linear):
                m.bias.add_(5.0)
    assert model.weight_penalties()["encoder_l1"].item() == pytest.approx(terms["encoder_l1"].item())


def test_more_l1_means_more_near_zero_weights(digits):
    fractions = []
    for strength in (0.0, 1e-5, 1e-4, 1e-3):
        ae = AutoEncoder(
            hidden_dims=(),
            latent_dim=8,
            encoder_l1=strength,
            decoder_l1=strength,
            epochs=15,
            validation_fraction=0.0,
            verbose=0,
            random_state=0,
        ).fit(digits.X)
        weights = torch.cat(
            [w.detach().reshape(-1) for w in (ae.module_.encoder[0].weight, ae.module_.decoder[0].weight)]
        )
        fractions.append(float((weights.abs() < 1e-2).float().mean()))
    assert all(a < b for a, b in zip(fractions, fractions[1:])), fractions
    assert fractions[-1] > 0.5 > fractions[0], fractions


def test_l2_shrinks_the_weights(digits):
    norms = []
    for strength in (0.0, 1e-3):
        ae = _small(encoder_l2=strength, decoder_l2=strength).fit(digits.X)
        norms.append(sum(float((p.detach() ** 2).sum()) for n, p in ae.module_.named_parameters() if "weight" in n))
    assert norms[1] < 0.7 * norms[0], norms


# --------------------------------------------------------------------------- denoising
def test_noise_is_applied_in_train_mode_only():
    torch.manual_seed(0)
    model = DenseAutoEncoder(
        ModelConfig(input_dim=50, hidden_dims=(8,), latent_dim=4, noise="gaussian", noise_level=0.5)
    )
    x = torch.rand(32, 50)
    model.eval()
    clean = torch.nn.functional.mse_loss(model(x).recon, x)
    assert model.loss(x, x).total.item() == clean.item() == model.loss(x, x).total.item()
    model.train()
    a, b = model.loss(x, x).total.item(), model.loss(x, x).total.item()
    assert a != clean.item() and a != b
    noisy = model.corrupt(x)
    assert (noisy - x).std().item() == pytest.approx(0.5, rel=0.05)


def test_mask_noise_zeroes_the_given_share_and_is_seeded():
    def masked():
        torch.manual_seed(3)
        model = DenseAutoEncoder(ModelConfig(input_dim=100, latent_dim=4, noise="mask", noise_level=0.3))
        return model.corrupt(torch.ones(200, 100))

    first, second = masked(), masked()
    assert torch.equal(first, second)
    assert set(first.unique().tolist()) == {0.0, 1.0}
    assert float((first == 0).float().mean()) == pytest.approx(0.3, abs=0.01)


def test_denoising_reconstructs_corrupted_digits_closer_to_clean(digits):
    # A code as wide as the input lets the plain model learn the identity, noise and all;
    # the denoising models of the same size must learn to undo their corruption instead.
    rng = np.random.default_rng(1)
    X_train, X_test = digits.X[:1500], digits.X[1500:]
    corrupted = {
        "gaussian": (X_test + rng.normal(0, 0.25, X_test.shape)).astype(np.float32),
        "mask": (X_test * (rng.random(X_test.shape) >= 0.3)).astype(np.float32),
    }
    errors: dict[str, dict[str, float]] = {}
    for noise, level in (("none", 0.1), ("gaussian", 0.25), ("mask", 0.3)):
        ae = AutoEncoder(
            hidden_dims=(),
            latent_dim=64,
            latent_activation="linear",
            output_activation="linear",
            noise=noise,
            noise_level=level,
            epochs=30,
            verbose=0,
            random_state=0,
        ).fit(X_train)
        errors[noise] = {k: float(np.mean((ae.reconstruct(v) - X_test) ** 2)) for k, v in corrupted.items()}
    assert errors["gaussian"]["gaussian"] < 0.7 * errors["none"]["gaussian"], errors
    assert errors["mask"]["mask"] < 0.7 * errors["none"]["mask"], errors


# --------------------------------------------------------------------------- pruning
@pytest.fixture(scope="module")
def small_ae(digits):
    return _small(hidden_dims=(16,), latent_dim=6, latent_activation="relu").fit(digits.X)


def test_magnitude_pruning_zeroes_the_smallest_weights():
    torch.manual_seed(0)
    model = DenseAutoEncoder(ModelConfig(input_dim=10, hidden_dims=(6,), latent_dim=3))
    weights = [w.detach().clone() for w in (model.encoder[0].weight, model.encoder[2].weight)]
    weights += [w.detach().clone() for w in (model.decoder[0].weight, model.decoder[2].weight)]
    biases = [m.bias.detach().clone() for m in model.modules() if isinstance(m, torch.nn.Linear)]
    total = sum(w.numel() for w in weights)
    zeroed = magnitude_prune_(model, 0.4, "global")
    assert zeroed == round(0.4 * total) and count_nonzero_weights(model) == total - zeroed
    threshold = torch.cat([w.abs().reshape(-1) for w in weights]).sort().values[zeroed - 1]
    after = [model.encoder[0].weight, model.encoder[2].weight, model.decoder[0].weight, model.decoder[2].weight]
    for old, new in zip(weights, after):
        assert torch.equal(new, torch.where(old.abs() <= threshold, torch.zeros_like(old), old))
    assert all(
        torch.equal(b, m.bias) for b, m in zip(biases, [m for m in model.modules() if isinstance(m, torch.nn.Linear)])
    )
    layered = DenseAutoEncoder(ModelConfig(input_dim=10, hidden_dims=(6,), latent_dim=3))
    magnitude_prune_(layered, 0.5, "layer")
    for w in (layered.encoder[0].weight, layered.encoder[2].weight, layered.decoder[0].weight):
        assert int((w == 0).sum()) == round(0.5 * w.numel())


def test_prune_returns_a_smaller_model_and_the_fidelity_cost(digits, small_ae, tmp_path):
    result = prune(small_ae, digits.X, amount=0.5)
    assert result.nonzero_weights_after <= result.nonzero_weights_before // 2 + 1
    assert result.fvu_before < result.fvu_after < 1.5
    assert result.estimator is not small_ae and count_nonzero_weights(small_ae.module_) == result.nonzero_weights_before
    assert result.fvu_after == pytest.approx(
        float(
            ((result.estimator.reconstruct(digits.X) - digits.X) ** 2).sum()
            / ((digits.X - digits.X.mean(0)) ** 2).sum()
        ),
        rel=1e-4,
    )
    loaded = load(result.estimator.save(tmp_path / "pruned"))
    np.testing.assert_array_equal(loaded.reconstruct(digits.X), result.estimator.reconstruct(digits.X))
    assert count_nonzero_weights(loaded.module_) == result.nonzero_weights_after


def test_dead_latents_are_removed_without_changing_the_output(digits, small_ae, tmp_path):
    killed = _small(hidden_dims=(16,), latent_dim=6).fit(digits.X)
    with torch.no_grad():  # make latents 1 and 4 never active on the data
        killed.module_.encoder[2].bias[[1, 4]] = -1e3
    assert list(constant_latents(killed.transform(digits.X))) == [1, 4]
    result = prune(killed, digits.X, amount=0.0)
    assert result.removed_latents == (1, 4) and result.latent_dim_after == 4 and result.latent_dim_before == 6
    small = result.estimator
    assert small.latent_dim == 4 and small.transform(digits.X).shape == (1797, 4)
    np.testing.assert_allclose(small.transform(digits.X), killed.transform(digits.X)[:, [0, 2, 3, 5]], atol=1e-6)
    np.testing.assert_allclose(small.reconstruct(digits.X), killed.reconstruct(digits.X), atol=1e-5)
    assert result.fvu_after == pytest.approx(result.fvu_before, rel=1e-5)
    loaded = load(small.save(tmp_path / "small"))
    assert loaded.module_.latent_dim == 4
    np.testing.assert_array_equal(loaded.reconstruct(digits.X), small.reconstruct(digits.X))


def test_dead_hidden_units_are_removed_from_each_half_without_changing_the_output(digits, tmp_path):
    est = _small(hidden_dims=(16,), latent_dim=6).fit(digits.X)
    with torch.no_grad():
        est.module_.encoder[0].bias[[3, 7]] = -1e3  # encoder units 3 and 7 never active
        est.module_.decoder[0].bias[[5, 11]] = -1e3  # decoder units 5 and 11 never active
        est.module_.decoder[0].weight[9] = 0.0  # decoder unit 9 is the constant relu(0.7) = 0.7
        est.module_.decoder[0].bias[9] = 0.7
    result = prune(est, digits.X, amount=0.0)
    assert result.removed_hidden_units == ((3, 7), (5, 9, 11)) and result.removed_latents == ()
    assert result.widths_before == (64, 16, 6, 16, 64) and result.widths_after == (64, 14, 6, 13, 64)
    small = result.estimator
    assert (small.hidden_dims, small.decoder_hidden_dims, small.latent_dim) == ((14,), (13,), 6)
    assert small.model_config_.decoder_hidden_dims == (13,) and small.module_.cfg.widths() == result.widths_after
    # the removed units carried nothing (unit 9's constant now sits in the next bias)
    np.testing.assert_allclose(small.reconstruct(digits.X), est.reconstruct(digits.X), atol=1e-5)
    np.testing.assert_allclose(small.transform(digits.X), est.transform(digits.X), atol=1e-5)
    assert result.fvu_after == pytest.approx(result.fvu_before, rel=1e-5)
    loaded = load(small.save(tmp_path / "small"))
    np.testing.assert_array_equal(loaded.reconstruct(digits.X), small.reconstruct(digits.X))
    assert loaded.get_params() == small.get_params()
    # the pruned shape is a hyper-parameter now: a refit (sklearn's clone) trains that shape
    refit = clone(small).set_params(epochs=1).fit(digits.X)
    assert refit.module_.cfg.widths() == (64, 14, 6, 13, 64)


@pytest.mark.parametrize("amount", [0.7, 0.95])
def test_units_that_weight_pruning_leaves_constant_go_and_nothing_else_changes(digits, amount):
    est = _small(hidden_dims=(24,), latent_dim=8, encoder_l1=1e-4).fit(digits.X)
    kept = prune(est, digits.X, amount=amount, remove_dead=False)  # the slow reference: same weights, all units
    gone = prune(est, digits.X, amount=amount)
    Xs = torch.as_tensor(est._prepare(digits.X), dtype=torch.float32)
    ranges = layer_ranges(kept.estimator.module_, Xs)
    constant = [int(((hi - lo) <= 0).sum()) for lo, hi, _ in ranges]
    assert sum(constant) > 0  # most of the weights gone leaves some units with no live input
    # a layer that is constant throughout keeps one unit to carry the constant
    expected = [c if c < len(lo) else len(lo) - 1 for c, (lo, _, _) in zip(constant, ranges)]
    assert [len(r) for r in gone.removed_hidden_units] == [expected[0], expected[2]]
    assert len(gone.removed_latents) == expected[1]
    assert sum(gone.widths_before) - sum(gone.widths_after) == sum(expected)
    assert gone.nonzero_weights_after <= kept.nonzero_weights_after
    np.testing.assert_allclose(gone.estimator.reconstruct(digits.X), kept.estimator.reconstruct(digits.X), atol=1e-5)


def test_a_tied_model_loses_dead_latents_only(digits):
    est = _small(hidden_dims=(16,), latent_dim=6, tied=True).fit(digits.X)
    with torch.no_grad():
        est.module_.encoder[0].bias[2] = -1e3  # a dead hidden unit: shared by both halves, so it stays
        est.module_.encoder[2].bias[4] = -1e3  # a dead latent: goes
    result = prune(est, digits.X, amount=0.0)
    assert result.removed_latents == (4,) and result.removed_hidden_units == ((), ())
    assert result.widths_after == (64, 16, 5, 16, 64) and result.estimator.decoder_hidden_dims is None
    np.testing.assert_allclose(result.estimator.reconstruct(digits.X), est.reconstruct(digits.X), atol=1e-5)


@pytest.mark.parametrize(
    "bad, match",
    [
        (dict(decoder_hidden_dims=(0, 8)), "decoder_hidden_dims=\\(0, 8\\) is invalid"),
        (dict(decoder_hidden_dims=(8,), tied=True), "does not mirror hidden_dims"),
        (dict(decoder_hidden_dims=(8,), model="vae"), "applies to model='dense' only"),
    ],
)
def test_decoder_widths_are_checked(bad, match):
    with pytest.raises(ConfigError, match=match):
        ModelConfig(input_dim=4, **bad).validate()


def test_an_asymmetric_decoder_from_the_cli(tmp_path):
    out = tmp_path / "run"
    res = CliRunner().invoke(
        app,
        [
            "train",
            "--data",
            "digits",
            "--epochs",
            "1",
            "--hidden-dims",
            "32",
            "--decoder-hidden-dims",
            "16,24",
            "--latent-dim",
            "4",
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    assert load(out).module_.cfg.widths() == (64, 32, 4, 16, 24, 64)


def test_constant_linear_latents_are_folded_into_the_bias(digits):
    lin = LinearAutoEncoder(latent_dim=4, tied=True, epochs=5, verbose=0, random_state=0).fit(digits.X)
    with torch.no_grad():
        lin.module_.encoder[0].weight[2] = 0.0  # latent 2 is now the constant bias[2] != 0
    assert lin.module_.encoder[0].bias[2] != 0
    result = prune(lin, digits.X, amount=0.0)
    assert result.removed_latents == (2,)
    np.testing.assert_allclose(result.estimator.reconstruct(digits.X), lin.reconstruct(digits.X), atol=1e-5)


def test_fine_tuning_wins_back_fidelity_and_keeps_the_pruned_weights_at_zero(digits):
    from lucidae.prune import own_weights

    ae = _small(hidden_dims=(64,), latent_dim=16, epochs=None).fit(digits.X)  # trained to the end
    original = {k: v.clone() for k, v in ae.module_.state_dict().items()}
    plain = prune(ae, digits.X, amount=0.5)
    tuned = prune(ae, digits.X, amount=0.5, fine_tune_epochs=10)
    # measured 0.077 -> 0.457 pruned, 0.092 after 10 epochs of fine-tuning
    assert plain.fvu_after > 2 * plain.fvu_before and tuned.fvu_after < 0.5 * plain.fvu_after
    assert len(tuned.fine_tune_history.records) == 10 and plain.fine_tune_history is None
    # the pruned model's history goes on from its parent's; the parent's is left as it was
    n = ae.n_iter_
    assert tuned.estimator.n_iter_ == n + 10 and len(ae.history_.records) == n
    assert [r["epoch"] for r in tuned.estimator.history_.records] == list(range(1, n + 11))
    assert tuned.estimator.history_.records[n:] == [
        {**r, "epoch": n + r["epoch"]} for r in tuned.fine_tune_history.records
    ]
    assert plain.estimator.history_ is ae.history_ and tuned.estimator.fit_seconds_ > ae.fit_seconds_
    assert tuned.widths_after == plain.widths_after  # the same units removed, before the fine-tuning
    for before, after in zip(own_weights(plain.estimator.module_), own_weights(tuned.estimator.module_)):
        assert torch.equal(before == 0, after == 0)  # the zeros stay where pruning put them
        assert not torch.equal(before, after)  # and the rest trained
    assert tuned.nonzero_weights_after == plain.nonzero_weights_after
    assert all(torch.equal(v, original[k]) for k, v in ae.module_.state_dict().items())  # the original is untouched
    assert not hasattr(tuned.estimator.module_, "after_step")  # the masking hook is gone with the training


def test_prune_refuses_bad_arguments(digits, small_ae):
    with pytest.raises(ConfigError, match="amount=1.5"):
        prune(small_ae, digits.X, amount=1.5)
    with pytest.raises(ConfigError, match="scope='row'"):
        prune(small_ae, digits.X, scope="row")
    with pytest.raises(ConfigError, match="fine_tune_epochs=-1"):
        prune(small_ae, digits.X, fine_tune_epochs=-1)
    odd = copy.copy(small_ae)
    odd.module_ = torch.nn.Sequential(torch.nn.Linear(64, 64))  # a module lucidae did not build
    with pytest.raises(ConfigError, match="got a Sequential"):
        prune(odd, digits.X)


# --------------------------------------------------------------------------- save / load and CLI
@pytest.mark.parametrize(
    "make",
    [
        lambda: LinearAutoEncoder(latent_dim=3, epochs=3, verbose=0, random_state=0),
        lambda: _small(tied=True, encoder_l1=1e-5, decoder_l2=1e-4),
        lambda: _small(noise="mask", noise_level=0.2, latent_activation="linear"),
    ],
    ids=["linear", "tied-penalised", "denoising"],
)
def test_levers_round_trip_through_save_and_load(make, digits, tmp_path):
    est = make().fit(digits.X)
    if isinstance(est, LinearAutoEncoder):
        est.align_to_principal_axes(digits.X)
    loaded = load(est.save(tmp_path / "run"))
    assert type(loaded) is type(est) and loaded.get_params() == est.get_params()
    assert loaded.model_config_ == est.model_config_
    for method in ("transform", "reconstruct", "score_samples"):
        np.testing.assert_array_equal(getattr(loaded, method)(digits.X), getattr(est, method)(digits.X))


def test_same_seed_same_denoising_model(digits):
    a = _small(noise="gaussian", noise_level=0.3, epochs=2).fit(digits.X)
    b = _small(noise="gaussian", noise_level=0.3, epochs=2).fit(digits.X)
    np.testing.assert_array_equal(a.transform(digits.X), b.transform(digits.X))


@pytest.mark.parametrize(
    "args, estimator, check",
    [
        (
            ["--model", "linear", "--latent-dim", "3"],
            "LinearAutoEncoder",
            {"model": "linear", "hidden_dims": [], "activation": "linear", "output_activation": "linear"},
        ),
        (
            ["--tied", "--encoder-l1", "1e-5", "--decoder-l2", "1e-4", "--noise", "mask", "--noise-level", "0.2"],
            "AutoEncoder",
            {"tied": True, "encoder_l1": 1e-5, "decoder_l2": 1e-4, "noise": "mask", "noise_level": 0.2},
        ),
    ],
    ids=["linear", "dense-levers"],
)
def test_levers_work_from_the_cli(args, estimator, check, tmp_path):
    out = tmp_path / "run"
    common = ["train", "--data", "digits", "--hidden-dims", "16", "--epochs", "3", "--verbose", "0"]
    result = CliRunner().invoke(app, [*common, "--random-state", "0", "--out", str(out), *args])
    assert result.exit_code == 0, result.output
    config = json.loads((out / "config.json").read_text())
    assert config["estimator"] == estimator
    for key, value in check.items():
        assert config["model"][key] == value, key
    assert type(load(out)).__name__ == estimator
    if estimator == "LinearAutoEncoder":  # options left at the config defaults take the family's own
        assert {k: config["params"][k] for k in LINEAR_OWN_DEFAULTS} == LINEAR_OWN_DEFAULTS


def test_prune_from_the_cli(digits, small_ae, tmp_path):
    run = small_ae.save(tmp_path / "run")
    # a model saved without a run record: --data names the data (all of it, as prune() takes it)
    args = ["prune", str(run), "--data", "digits", "--out", str(tmp_path / "pruned"), "--amount", "0.6"]
    args += ["--scope", "layer"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "FVU" in result.output and "latents" in result.output
    expected = prune(small_ae, digits.X, amount=0.6, scope="layer")
    pruned = load(tmp_path / "pruned")
    np.testing.assert_array_equal(pruned.reconstruct(digits.X), expected.estimator.reconstruct(digits.X))
    bad = CliRunner().invoke(app, ["prune", str(run), "--out", str(tmp_path / "x"), "--amount", "2"])
    assert bad.exit_code == 2 and "amount=2.0" in bad.output
    args = ["prune", str(run), "--data", "digits", "--out", str(tmp_path / "tuned"), "--amount", "0.6",
            "--fine-tune-epochs", "2"]  # fmt: skip
    assert CliRunner().invoke(app, args).exit_code == 0
    tuned = prune(small_ae, digits.X, amount=0.6, fine_tune_epochs=2).estimator  # the same seed: the same model
    np.testing.assert_array_equal(load(tmp_path / "tuned").reconstruct(digits.X), tuned.reconstruct(digits.X))


def test_linear_matches_pca_in_raw_units_with_scaling_none():
    from sklearn.datasets import load_iris

    X = load_iris().data  # centimetres, not in [0, 1]
    # 150 samples make one full batch, so the default 500 epochs are only 500 steps (0.1 to 0.7
    # degrees off here); 1500 steps make the match exact to the tolerances below.
    lin = LinearAutoEncoder(latent_dim=2, scaling=None, epochs=1500, verbose=0, random_state=0).fit(X)
    assert lin.scaler_.kind == "identity"
    pca = PCA(2).fit(X)
    lin.align_to_principal_axes(X)
    cos = np.abs(np.sum(lin.components_ * pca.components_, axis=1))
    assert (cos > 0.999).all(), cos
    np.testing.assert_allclose(lin.explained_variance_, pca.explained_variance_, rtol=1e-3)
    np.testing.assert_allclose(lin.reconstruct(X), pca.inverse_transform(pca.transform(X)), atol=1e-3)
