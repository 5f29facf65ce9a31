"""Per-latent explanations: records without errors on the classic model, exact answers on linear ones."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from lucidae import AutoEncoder, explain
from lucidae.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def classic(digits):
    """The classic dense model (ReLU, sigmoid output) on digits, drawn as 8x8 images."""
    torch.set_num_threads(1)
    ae = AutoEncoder(hidden_dims=(32,), latent_dim=6, epochs=3, verbose=0, random_state=0)
    return ae.fit(digits.X[:600], image_shape=(8, 8))


@pytest.fixture(scope="module")
def linear(digits):
    """A purely linear autoencoder: decode(z) is affine, so answers are exact."""
    torch.set_num_threads(1)
    ae = AutoEncoder(
        hidden_dims=(),
        latent_dim=3,
        latent_activation="linear",
        output_activation="linear",
        scaling="standard",
        epochs=3,
        verbose=0,
        random_state=0,
    )
    return ae.fit(digits.X[:600], image_shape=(8, 8))


def _weights(est):
    enc, dec = est.module_.encoder[0], est.module_.decoder[0]
    return enc.weight.detach().double().numpy(), dec.weight.detach().double().numpy()  # (latent, f), (f, latent)


def test_classic_model_on_digits_gives_images_and_records(classic, digits):
    X, y = digits.X[:600], digits.y[:600]
    writes = explain.latent_writes(classic, X)
    reads = explain.latent_reads(classic, X, y=y)
    trav = explain.traverse(classic, X, 0)
    attr = explain.attribute_latent(classic, X[:4], 0, method="torch", n_steps=16)
    err = explain.attribute_error(classic, X[:4], method="torch", n_steps=16)
    amap = explain.latent_map(classic, X, color=y)
    assert len(writes) == len(reads) == 6
    assert writes[0].image.shape == (8, 8) and len(writes[0].top_features) == 10
    assert reads[0].top_images.shape == (9, 8, 8) and reads[0].top_labels.shape == (9,)
    assert trav.images.shape == (7, 8, 8) and np.isfinite(trav.images).all()
    assert attr.attributions.shape == err.attributions.shape == (4, 64)
    assert amap.coords.shape == (600, 2)
    for record in (*writes, *reads, trav, attr, err, amap):
        json.dumps(record.to_dict())  # JSON-ready, arrays included
        json.dumps(record.to_dict(include_images=False))
    assert "images" not in trav.to_dict(include_images=False)


def test_traversal_of_linear_model_is_monotonic_and_exact(linear, digits):
    X = digits.X[:600]
    _, W_dec = _weights(linear)
    for latent in range(3):
        t = explain.traverse(linear, X, latent, n_steps=9)
        steps = np.diff(t.recon, axis=0)  # (step - 1, features)
        # every pixel moves one way along the sweep: never both up and down
        assert ((steps >= -1e-4).all(axis=0) | (steps <= 1e-4).all(axis=0)).all()
        assert np.abs(t.recon[-1] - t.recon[0]).max() > 0.1
        # and by exactly the decoder column, in original units
        expected = (t.values[-1] - t.values[0]) * W_dec[:, latent] * linear.scaler_.scale
        assert t.recon[-1] - t.recon[0] == pytest.approx(expected, abs=1e-3)
        z = linear.transform(X)[:, latent]
        assert t.values[0] == pytest.approx(z.min(), abs=1e-5) and t.values[-1] == pytest.approx(z.max(), abs=1e-5)


def test_latent_writes_of_linear_model_equal_decoder_columns(linear, digits):
    X = digits.X[:600]
    _, W_dec = _weights(linear)
    std = linear.transform(X).astype(np.float64).std(0)
    for w in explain.latent_writes(linear, X):
        expected = W_dec[:, w.latent] * w.step * linear.scaler_.scale
        assert w.step == pytest.approx(std[w.latent], rel=1e-4)
        assert w.direction == pytest.approx(expected, abs=1e-3)
        weights = [abs(f["weight"]) for f in w.top_features]
        assert weights == sorted(weights, reverse=True) and weights[0] == pytest.approx(
            np.abs(expected).max(), abs=1e-3
        )
    D = explain.decoder_directions(linear, X)
    assert np.linalg.norm(D, axis=0) == pytest.approx(np.ones(3))


@pytest.mark.parametrize("method", ["torch", "captum"])
def test_integrated_gradients_exact_for_a_linear_encoder(linear, digits, method):
    X = digits.X[600:605]
    W_enc, _ = _weights(linear)
    a = explain.attribute_latent(linear, X, 1, method=method, n_steps=8)
    xs = linear.scaler_.transform(X).astype(np.float64)
    # for a linear function IG is (x - baseline) * weight, feature by feature
    assert a.attributions == pytest.approx(xs * W_enc[1], abs=1e-4)
    assert np.abs(a.delta).max() < 1e-4
    assert a.method == method


def test_integrated_gradients_completeness_on_the_classic_model(classic, digits):
    X = digits.X[600:610]
    for attr in (
        explain.attribute_latent(classic, X, 2, method="torch", n_steps=128),
        explain.attribute_error(classic, X, method="torch", n_steps=128),
    ):
        gap = attr.output - attr.baseline_output
        assert attr.attributions.sum(1) == pytest.approx(gap, abs=1e-3 + 1e-2 * np.abs(gap).max())
    # a baseline equal to the input explains nothing
    same = explain.attribute_error(classic, X[:2], baseline=X[:2], method="torch", n_steps=8)
    assert np.abs(same.attributions).max() == 0.0
    top = same.top_features(0, k=3)
    assert len(top) == 3 and set(top[0]) == {"index", "name", "attribution"}


def test_latent_reads_pick_the_highest_and_quantile_samples(classic, digits):
    X = digits.X[:600]
    Z = classic.transform(X)
    r = explain.latent_reads(classic, X, latents=[1], n_top=5, quantiles=(0.5,), n_per_quantile=1)[0]
    assert r.top_values.tolist() == pytest.approx(np.sort(Z[:, 1])[::-1][:5].tolist())
    assert Z[r.top_indices, 1] == pytest.approx(r.top_values)
    (mid,) = r.quantile_indices[0.5]
    assert abs(Z[mid, 1] - np.median(Z[:, 1])) == pytest.approx(np.abs(Z[:, 1] - np.median(Z[:, 1])).min())


def test_latent_map_matches_pca_of_codes(classic, digits):
    from sklearn.decomposition import PCA

    X = digits.X[:600]
    m = explain.latent_map(classic, X, max_samples=200, random_state=1)
    assert len(m.indices) == 200 and len(np.unique(m.indices)) == 200
    ref = PCA(2).fit(classic.transform(X[m.indices]).astype(np.float64))
    proj = ref.transform(classic.transform(X[m.indices]).astype(np.float64))
    assert np.abs(m.coords) == pytest.approx(np.abs(proj), abs=1e-3)  # axes agree up to sign
    assert m.explained_variance_ratio == pytest.approx(ref.explained_variance_ratio_.tolist(), abs=1e-4)


def test_rank_latents_orders_by_variance(classic, digits):
    X = digits.X[:600]
    var = classic.transform(X).var(0)
    order = explain.rank_latents(classic, X)
    assert var[order].tolist() == sorted(var.tolist(), reverse=True)


def test_bad_requests_are_named(classic, digits):
    X = digits.X[:50]
    with pytest.raises(ConfigError, match="latent=9"):
        explain.traverse(classic, X, 9)
    with pytest.raises(ConfigError, match="n_steps"):
        explain.traverse(classic, X, 0, n_steps=1)
    with pytest.raises(DataError, match="y has 3"):
        explain.latent_reads(classic, X, y=[1, 2, 3])
    with pytest.raises(ConfigError, match="baseline"):
        explain.attribute_error(classic, X, baseline="noise")
    with pytest.raises(ConfigError, match="method"):
        explain.latent_map(classic, X, method="umap")


def _estimator_names():
    from lucidae.estimators import ESTIMATORS

    return sorted(ESTIMATORS)


@pytest.mark.parametrize("name", _estimator_names())
def test_every_estimator_can_be_explained_and_summarised(name, digits):
    import inspect

    from lucidae.estimators import ESTIMATORS
    from lucidae.summary import summarize

    cls = ESTIMATORS[name]
    params = inspect.signature(cls.__init__).parameters
    wanted = {
        "epochs": 1,
        "verbose": 0,
        "random_state": 0,
        "latent_dim": 8,
        "image_shape": (1, 8, 8),
        "conv_channels": (4,),
    }
    est = cls(**{k: v for k, v in wanted.items() if k in params}).fit(digits.X[:200], image_shape=(8, 8))
    X = digits.X[200:300]
    assert explain.latent_writes(est, X, latents=[0])[0].image.shape == (8, 8)
    assert explain.latent_reads(est, X, latents=[1], n_top=3)[0].top_images.shape == (3, 8, 8)
    assert np.isfinite(explain.traverse(est, X, 2, n_steps=3).recon).all()
    attr = explain.attribute_error(est, X[:2], method="torch", n_steps=32)
    gap = attr.output - attr.baseline_output
    assert np.abs(attr.delta).max() <= 1e-3 + 0.05 * np.abs(gap).max()
    assert explain.latent_map(est, X).coords.shape == (100, 2)
    s = summarize(est, X, y=digits.y[200:300])
    assert np.isfinite(s["fvu"]) and 0 <= s["l0"] <= 8


def test_tabular_explanations_name_features_and_tsne_map():
    from sklearn.datasets import load_diabetes

    data = load_diabetes()
    X, names = data.data[:200], list(data.feature_names)
    ae = AutoEncoder(hidden_dims=(8,), latent_dim=3, epochs=2, verbose=0, random_state=0)
    ae.fit(X, feature_names=names)
    w = explain.latent_writes(ae, X, latents=[0], n_top=4)[0]
    assert w.image is None and len(w.top_features) == 4
    assert {f["name"] for f in w.top_features} <= set(names)
    assert w.top_features[0]["weight"] == pytest.approx(w.direction[names.index(w.top_features[0]["name"])])
    r = explain.latent_reads(ae, X, latents=[0])[0]
    assert r.top_images is None and r.top_labels is None
    attr = explain.attribute_latent(ae, X[:2], 0, method="torch", n_steps=8, baseline=X.mean(0))
    assert attr.top_features(1, k=2)[0]["name"] in names
    m = explain.latent_map(ae, X[:90], method="tsne", color=data.target[:90])
    assert m.coords.shape == (90, 2) and np.isfinite(m.coords).all() and m.explained_variance_ratio == []
