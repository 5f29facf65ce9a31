"""The estimators' scikit-learn interface and defaults, as a new user meets them (issue #17).

Each test here failed on the code before #17: a collapsing default VAE, image arrays refused,
the conv defaults failing on 8x8 digits, AttributeError instead of NotFittedError,
RandomState / Generator refused, no progress outside a terminal, no thread setting, and
TextTopics not a transformer.
"""

import json
import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from typer.testing import CliRunner

import lucidae.train
from lucidae import load
from lucidae.applications import AnomalyDetector, TextTopics
from lucidae.config import ModelConfig, TrainConfig
from lucidae.datasets import load_dataset
from lucidae.datasets.topics import make_topics
from lucidae.errors import ConfigError, DataError
from lucidae.estimators import ESTIMATORS, VAE, AutoEncoder, ConvAutoEncoder, SparseAutoEncoder
from lucidae.metrics import collapsed_latents, fvu
from lucidae.models import build_model
from lucidae.train import train

FAST = {"epochs": 1, "verbose": 0, "random_state": 0, "n_init": 1}
"""Every estimator trains one epoch (n_init=1 for BetaTCVAE)."""


def _fast(cls, **kwargs):
    return cls(**{**FAST, **kwargs})


@pytest.fixture(scope="module")
def images():
    X = load_dataset("digits").X[:300]
    return np.round(X.reshape(-1, 8, 8) * 255).astype(np.uint8)  # (300, 8, 8) uint8


# ---------------------------------------------------------------- the plain VAE by default
def test_the_default_vae_keeps_its_latents_active_on_digits():
    # measured on a split the defaults were not chosen on (they were chosen on another split of the training part)
    X = load_dataset("digits").X
    order = np.random.default_rng(2024).permutation(len(X))
    train_rows, test_rows = order[: int(0.8 * len(X))], order[int(0.8 * len(X)) :]
    vae = VAE(random_state=0).fit(X[train_rows])
    codes = vae.transform(X[test_rows])
    active = codes.shape[1] - len(collapsed_latents(codes))
    assert active >= codes.shape[1] / 2
    assert fvu(X[test_rows], vae.reconstruct(X[test_rows])) < 0.6
    assert vae.beta == 1.0  # the plain VAE; beta-VAE is a parameter away


# ---------------------------------------------------------------- image arrays
@pytest.mark.filterwarnings("ignore:Every one of the")  # one epoch is too few for a VAE's code
@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_every_estimator_takes_uint8_image_arrays(name, images):
    est = _fast(ESTIMATORS[name]).fit(images)
    assert est.image_shape_ == (8, 8) and est.n_features_in_ == 64
    rows = images.reshape(len(images), -1)
    np.testing.assert_array_equal(est.transform(images[:5]), est.transform(rows[:5]))
    assert est.reconstruct(images[:5]).shape == (5, 64)


def test_channels_last_images_are_read_as_channels_height_width():
    rng = np.random.default_rng(0)
    X = rng.random((40, 8, 8, 3)).astype(np.float32)  # (n, h, w, c)
    est = _fast(ConvAutoEncoder, latent_dim=2).fit(X)
    assert est.image_shape_ == (3, 8, 8)
    chw_rows = X.transpose(0, 3, 1, 2).reshape(40, -1)
    np.testing.assert_array_equal(est.transform(X[:4]), est.transform(chw_rows[:4]))
    with pytest.raises(DataError, match=r"fitted on images of shape \(3, 8, 8\)"):
        est.transform(rng.random((2, 8, 8, 1)))


def test_conv_trains_on_the_bundled_digits_with_its_default_channels(images, tmp_path):
    est = ConvAutoEncoder(epochs=1, verbose=0, random_state=0).fit(images)
    assert est.conv_channels is None and est.model_config_.conv_layers() == (32,)
    assert est.transform(images[:3]).shape == (3, est.latent_dim)
    assert ModelConfig(image_shape=(28, 28)).conv_layers() == (32, 32)  # MNIST keeps two layers

    from lucidae.cli import app

    out = tmp_path / "conv"
    result = CliRunner().invoke(
        app, ["train", "--model", "conv", "--data", "digits", "--epochs", "1", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert load(out).model_config_.conv_layers() == (32,)


# ---------------------------------------------------------------- NotFittedError
METHODS = {
    "transform": lambda est, X: est.transform(X),
    "inverse_transform": lambda est, X: est.inverse_transform(np.zeros((1, 2), np.float32)),
    "reconstruct": lambda est, X: est.reconstruct(X),
    "score_samples": lambda est, X: est.score_samples(X),
    "score": lambda est, X: est.score(X),
    "get_feature_names_out": lambda est, X: est.get_feature_names_out(),
    "scale_inputs": lambda est, X: est.scale_inputs(X),
    "save": lambda est, X: est.save("never-written"),
}


@pytest.mark.parametrize("method", sorted(METHODS))
@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_an_unfitted_estimator_raises_not_fitted_error(name, method):
    with pytest.raises(NotFittedError):
        METHODS[method](ESTIMATORS[name](), np.zeros((3, 4)))


@pytest.mark.parametrize("call", ["sample", "interpolate"])
def test_an_unfitted_vae_cannot_sample(call):
    with pytest.raises(NotFittedError):
        VAE().sample(2) if call == "sample" else VAE().interpolate(np.zeros(4), np.ones(4))


@pytest.mark.parametrize("call", ["transform", "topics", "get_feature_names_out", "save"])
def test_unfitted_text_topics_raise_not_fitted_error(call, tmp_path):
    tt = TextTopics()
    args = {"transform": (["a b"],), "save": (tmp_path / "t",)}.get(call, ())
    with pytest.raises(NotFittedError):
        getattr(tt, call)(*args)


@pytest.mark.parametrize("call", ["predict", "score_samples", "decision_function", "explain"])
def test_an_unfitted_anomaly_detector_raises_not_fitted_error(call):
    with pytest.raises(NotFittedError):
        getattr(AnomalyDetector(), call)(np.zeros((2, 3)))


# ---------------------------------------------------------------- random_state as scikit-learn takes it
@pytest.mark.parametrize("make", [np.random.RandomState, np.random.default_rng], ids=["RandomState", "Generator"])
def test_random_state_takes_numpy_generators(make, digits, tmp_path):
    X = digits.X[:300]
    a = _fast(AutoEncoder, latent_dim=3, random_state=make(5)).fit(X)
    b = _fast(AutoEncoder, latent_dim=3, random_state=make(5)).fit(X)
    np.testing.assert_array_equal(a.transform(X), b.transform(X))  # the same generator state, the same model
    again = load(a.save(tmp_path / "run"))  # a generator object is saved as the seed drawn from it
    assert again.random_state == a.seed_
    np.testing.assert_array_equal(again.transform(X), a.transform(X))


def test_a_bad_random_state_is_named():
    with pytest.raises((ConfigError, ValueError), match="random_state='seven'"):
        _fast(AutoEncoder, random_state="seven").fit(np.random.default_rng(0).random((10, 3)))


# ---------------------------------------------------------------- progress and threads
def test_verbose_true_shows_progress_when_output_is_not_a_terminal(digits, capsys):
    _fast(AutoEncoder, epochs=3, verbose=True).fit(digits.X[:200])
    err = capsys.readouterr().err
    assert [line.split()[1] for line in err.splitlines() if line.startswith("epoch ")] == ["1/3", "2/3", "3/3"]


@pytest.mark.parametrize("verbose", ["auto", 1, False, 0])
def test_auto_progress_stays_quiet_where_nobody_watches(verbose, digits, capsys):
    _fast(AutoEncoder, epochs=2, verbose=verbose).fit(digits.X[:200])
    assert capsys.readouterr().err == ""


def test_auto_progress_shows_a_bar_in_a_notebook(digits, capsys, monkeypatch):
    monkeypatch.setattr(lucidae.train, "in_notebook", lambda: True)
    monkeypatch.setattr(lucidae.train.importlib.util, "find_spec", lambda name: None)  # no ipywidgets
    _fast(AutoEncoder, epochs=2, verbose="auto").fit(digits.X[:200])
    err = capsys.readouterr().err
    assert "\rtraining [" in err and "2/2" in err


def test_n_threads_sets_torch_threads_during_training_only(digits):
    seen = []
    torch.set_num_threads(2)
    model = build_model(ModelConfig(input_dim=64, hidden_dims=(8,), latent_dim=2))
    cfg = TrainConfig(epochs=2, verbose=0, random_state=0, n_threads=1)
    train(model, digits.X[:200], cfg, on_epoch_end=lambda record: seen.append(torch.get_num_threads()))
    assert seen == [1, 1] and torch.get_num_threads() == 2
    AutoEncoder(epochs=1, verbose=0, n_threads=1).fit(digits.X[:100])
    assert torch.get_num_threads() == 2
    with pytest.raises(ConfigError, match="n_threads=0"):
        AutoEncoder(epochs=1, verbose=0, n_threads=0).fit(digits.X[:100])
    assert torch.get_num_threads() == 2


def test_n_threads_is_a_train_option():
    from lucidae.cli.options import config_parameters

    assert "n_threads" in [p.name for p in config_parameters()]


# ---------------------------------------------------------------- TextTopics, a transformer
@pytest.fixture(scope="module")
def corpus():
    return make_topics(400, n_topics=3, vocab_size=60, random_state=0)


def test_text_topics_is_a_scikit_learn_transformer(corpus):
    docs, labels = corpus.documents, np.asarray(corpus.y)
    tt = TextTopics(n_latents=6, k=2)
    twin = clone(tt)
    assert twin.get_params() == tt.get_params()
    codes = twin.fit_transform(docs)
    np.testing.assert_array_equal(codes, twin.transform(docs))
    assert twin.get_feature_names_out().tolist() == [f"latent{i}" for i in range(6)]
    pipe = make_pipeline(TextTopics(n_latents=6, k=2), LogisticRegression(max_iter=500)).fit(docs, labels)
    assert pipe.score(docs, labels) > 0.8
    frame = TextTopics(n_latents=6, k=2).set_output(transform="pandas").fit_transform(docs)
    assert list(frame.columns) == [f"latent{i}" for i in range(6)]


def test_two_identical_topic_runs_give_the_same_topics(corpus):
    first = TextTopics(n_latents=6, k=2).fit(corpus.documents)
    second = TextTopics(n_latents=6, k=2).fit(corpus.documents)
    assert [str(t) for t in first.topics()] == [str(t) for t in second.topics()]


def test_saved_params_stay_json(digits, tmp_path):
    est = _fast(AutoEncoder, latent_dim=2, verbose="auto", random_state=np.random.default_rng(1)).fit(digits.X[:100])
    params = json.loads((est.save(tmp_path / "m") / "config.json").read_text())["params"]
    assert params["verbose"] == "auto" and isinstance(params["random_state"], int)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load(tmp_path / "m")


# ---------------------------------------------------------------- the applications take the same inputs
@pytest.mark.parametrize("make", [np.random.RandomState, np.random.default_rng], ids=["RandomState", "Generator"])
def test_the_applications_take_numpy_generators_and_save_them_as_seeds(make, images, corpus, tmp_path):
    det = AnomalyDetector(random_state=make(0)).fit(images)  # (n, 8, 8) uint8 images too
    assert det.predict(images[:5]).shape == (5,)
    again = load(det.save(tmp_path / "det"))
    assert isinstance(again.random_state, int)
    np.testing.assert_array_equal(again.decision_function(images[:5]), det.decision_function(images[:5]))
    tt = TextTopics(n_latents=4, k=1, random_state=make(0)).fit(corpus.documents)
    assert isinstance(load(tt.save(tmp_path / "topics")).random_state, int)


@pytest.mark.filterwarnings("ignore:Every one of the")  # one epoch is too few for a VAE's code
def test_a_vae_picks_its_likelihood_from_the_data(digits, tmp_path):
    grey = _fast(VAE, latent_dim=2).fit(digits.X[:200])  # 17 grey levels
    binary = _fast(VAE, latent_dim=2).fit((digits.X[:200] > 0.5).astype(np.float32))
    assert grey.likelihood == "auto" and grey.model_config_.likelihood == "gaussian"
    assert binary.model_config_.likelihood == "bernoulli"
    again = load(grey.save(tmp_path / "grey"))
    assert again.model_config_.likelihood == "gaussian"
    np.testing.assert_array_equal(again.transform(digits.X[:5]), grey.transform(digits.X[:5]))


# ---------------------------------------------------------------- a code no smaller than the input
def test_a_code_as_wide_as_the_input_warns_that_it_can_copy_it():
    # A 6-column table under the default latent_dim=32 has no bottleneck: its tiny FVU means nothing.
    X = np.random.default_rng(0).normal(size=(80, 6))
    with pytest.warns(UserWarning, match="latent_dim=32 is not smaller than the 6 input features"):
        _fast(AutoEncoder, latent_dim=32).fit(X)
    with warnings.catch_warnings():  # a bottleneck, a denoising model and a dictionary are what they claim
        warnings.simplefilter("error")
        _fast(AutoEncoder, latent_dim=2).fit(X)
        _fast(AutoEncoder, latent_dim=8, noise="gaussian").fit(X)
        _fast(SparseAutoEncoder, latent_dim=32).fit(X)
