"""The ensemble score of AnomalyDetector, its PyOD surface (predict 0/1, predict_proba, predict_confidence)
and its members, each against a slow reference written out here."""

import math

import numpy as np
import pytest
from scipy.stats import binom
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import NearestNeighbors

from lucidae.applications.anomaly import AnomalyDetector, default_estimator, load_detector
from lucidae.applications.anomaly_members import forest_arrays, forest_scores, knn_scores
from lucidae.errors import ConfigError


def _table(seed=0, n=600, d=8):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3)) @ rng.normal(size=(3, d)) + 0.2 * rng.normal(size=(n, d))
    return X * np.linspace(1, 20, d) + 50.0


@pytest.fixture(scope="module")
def data():
    X = _table()
    X[:12] += np.random.default_rng(1).normal(scale=40.0, size=(12, X.shape[1]))  # 12 scattered outliers
    return X


@pytest.fixture(scope="module")
def det(data):
    return AnomalyDetector(contamination=0.05, random_state=0).fit(data)


def _mad(s):
    med = np.median(s)
    return med, 1.4826 * np.median(np.abs(s - med))


def test_ensemble_score_matches_slow_reference(det, data):
    """mean over members of (raw - median) / (1.4826 MAD), each member written out by hand."""
    X = data
    Xs = ((X - X.mean(0)) / X.std(0)).astype(np.float32)
    n, d = Xs.shape
    # autoencoder member: d * e / mean_train(e) + Mahalanobis distance of the code
    recon = det.estimator_.reconstruct(Xs).astype(np.float64)
    e = ((Xs - recon) ** 2).mean(1)
    Zc = det.estimator_.transform(Xs).astype(np.float64) - det.latent_mean_
    ae = d * e / det.error_mean_ + np.array([z @ det.latent_precision_ @ z for z in Zc])
    # neighbours member: mean distance to the 10 nearest reference rows, the row itself skipped
    R = det.knn_reference_.astype(np.float64)
    knn = []
    for x in Xs.astype(np.float64):
        dist = sorted(math.dist(x, r) for r in R)
        knn.append(np.mean(dist[1:11] if dist[0] == 0.0 else dist[:10]))
    # isolation member: scikit-learn's own forest with the seed the detector draws first
    seed = int(np.random.default_rng(0).integers(2**31))
    iso = -IsolationForest(n_estimators=100, random_state=seed).fit(Xs).score_samples(Xs)
    slow = 0.0
    for j, member in enumerate([ae, np.array(knn), iso]):
        med, mad = _mad(member)
        assert det.member_location_[j] == pytest.approx(med, rel=1e-4)
        assert det.member_scale_[j] == pytest.approx(mad, rel=1e-3)
        slow = slow + (member - med) / mad / 3
    np.testing.assert_allclose(det.decision_scores_, slow, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(det.decision_function(X), det.decision_scores_, rtol=1e-6, atol=1e-8)
    assert roc_auc_score(np.r_[np.ones(12), np.zeros(n - 12)], det.decision_scores_) > 0.97


def test_robust_training_leaves_the_most_abnormal_rows_out(data):
    """With robust=True the autoencoder's statistics come from 80% of the rows, not all of them."""
    on = AnomalyDetector(random_state=0).fit(data)
    off = AnomalyDetector(random_state=0, robust=False).fit(data)
    assert on.estimator_.n_features_in_ == off.estimator_.n_features_in_ == data.shape[1]
    # the mean training error of the robust model is measured on its normal rows: smaller
    assert on.error_mean_ < off.error_mean_


def test_predict_is_zero_one_and_matches_the_threshold(det, data):
    pred = det.predict(data)
    assert pred.dtype.kind == "i" and set(np.unique(pred)) == {0, 1}
    np.testing.assert_array_equal(pred, (det.decision_function(data) > det.threshold_).astype(int))
    np.testing.assert_array_equal(pred, det.labels_)
    labels, confidence = det.predict(data[:5], return_confidence=True)
    np.testing.assert_array_equal(labels, pred[:5])
    np.testing.assert_allclose(confidence, det.predict_confidence(data[:5]))


def test_predict_proba_matches_pyod_formulas(det, data):
    """PyOD's BaseDetector.predict_proba, written out per sample."""
    new = np.vstack([data[:20], data[:3] * 3.0])
    scores = det.decision_function(new)
    train = det.decision_scores_
    lo, hi = min(train), max(train)
    mu = sum(train) / len(train)
    sigma = math.sqrt(sum((t - mu) ** 2 for t in train) / len(train))
    linear = [min(max((s - lo) / (hi - lo), 0.0), 1.0) for s in scores]
    unify = [min(max(math.erf((s - mu) / (sigma * math.sqrt(2))), 0.0), 1.0) for s in scores]
    for method, want in (("linear", linear), ("unify", unify)):
        p = det.predict_proba(new, method=method)
        assert p.shape == (len(new), 2)
        np.testing.assert_allclose(p[:, 1], want, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(p[:, 0], 1 - np.array(want), rtol=1e-9, atol=1e-12)
    assert det.predict_proba(new).tolist() == det.predict_proba(new, method="linear").tolist()  # linear default
    p, c = det.predict_proba(new, return_confidence=True)
    np.testing.assert_allclose(c, det.predict_confidence(new))
    with pytest.raises(ConfigError, match="method='softmax'"):
        det.predict_proba(new, method="softmax")


def test_predict_confidence_matches_pyod_formula(det, data):
    """PyOD's BaseDetector.predict_confidence (ExCeeD), written out per sample."""
    new = np.vstack([data[:30], data[:3] * 3.0])
    scores = det.decision_function(new)
    train = list(det.decision_scores_)
    n = len(train)
    want = []
    for s in scores:
        count = sum(1 for t in train if t <= s)
        posterior = (1 + count) / (2 + n)
        conf = 1 - binom.cdf(n - int(n * det.contamination), n, posterior)
        want.append(conf if s > det.threshold_ else 1 - conf)
    np.testing.assert_allclose(det.predict_confidence(new), want, rtol=1e-9, atol=1e-12)
    assert det.predict_confidence(data[:1] * 3.0)[0] > 0.99  # far out: surely an outlier


@pytest.mark.parametrize("feature", [0, 3, 6])
def test_explain_ranks_the_shifted_feature_first(det, data, feature):
    """A planted anomaly whose cause is known: one feature shifted by 6 standard deviations."""
    x = data[200].copy()
    x[feature] += 6 * data[:, feature].std()
    e = det.explain(x)
    assert e.is_outlier
    assert e.worst_features[0].name == f"x{feature}"
    assert np.argmax(e.contributions) == feature
    assert set(e.members) == {"autoencoder", "neighbours", "isolation"}
    assert sum(e.members.values()) == pytest.approx(e.score)
    assert "autoencoder" in e.summary() and f"x{feature}" in e.summary()


def test_explain_neighbours_match_brute_force(det, data):
    Xs = (data - data.mean(0)) / data.std(0)
    inliers = np.flatnonzero(det.labels_ == 0)
    out = det.explain(data[[5, 300, 400]])
    for row, e in zip([5, 300, 400], out):
        dist = {i: math.dist(Xs[i], Xs[row]) for i in inliers}
        brute = sorted(dist, key=dist.get)[: det.n_neighbors]
        assert e.neighbor_indices.tolist() == brute
        np.testing.assert_allclose(e.neighbor_distances, [dist[i] for i in brute], rtol=1e-4, atol=1e-5)


def test_forest_scores_equal_scikit_learns():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(700, 5)).astype(np.float32)
    trees = forest_arrays(X, 30, 7)
    new = rng.normal(scale=2.0, size=(300, 5)).astype(np.float32)
    ref = -IsolationForest(n_estimators=30, random_state=7).fit(X).score_samples(new)
    np.testing.assert_allclose(forest_scores(trees, new, chunk=64), ref, rtol=1e-12)


def test_knn_scores_skip_the_row_itself_only():
    R = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [5.0, 5.0]], dtype=np.float32)
    nn = NearestNeighbors().fit(R)
    got = knn_scores(nn, R, np.vstack([R[:1], [[0.0, 0.5]]]).astype(np.float32), 2)
    # row 0 is in R: its neighbours are rows 1 and 2 (1 and 2 away); the new point's are rows 0 and 1
    np.testing.assert_allclose(got, [(1.0 + 2.0) / 2, (0.5 + math.hypot(1.0, 0.5)) / 2], rtol=1e-6)


def test_default_estimator_trains_for_a_step_budget():
    small, big = default_estimator(9, n_samples=500), default_estimator(9, n_samples=50_000)
    assert small.batch_size < big.batch_size  # the batch grows with the data
    for ae, n in ((small, 500), (big, 50_000)):
        steps = ae.epochs * math.ceil(n / ae.batch_size)
        assert 300 <= steps < 300 + math.ceil(n / ae.batch_size)
    assert default_estimator(9, n_samples=30).batch_size == 30


def test_save_load_keeps_the_ensemble(tmp_path, det, data):
    det2 = load_detector(det.save(tmp_path / "det"))
    np.testing.assert_array_equal(det2.decision_function(data), det.decision_function(data))
    np.testing.assert_array_equal(det2.predict_proba(data[:5]), det.predict_proba(data[:5]))
    e1, e2 = det.explain(data[0]), det2.explain(data[0])
    assert e1.members == e2.members and e1.neighbor_indices.tolist() == e2.neighbor_indices.tolist()


def test_a_likelihood_detector_saved_by_the_old_scoring_still_loads(tmp_path, data):
    old = AnomalyDetector(scoring="likelihood", random_state=0).fit(data[:200])
    det2 = load_detector(old.save(tmp_path / "old"))
    assert det2.scoring == "likelihood" and not hasattr(det2, "forest_")
    np.testing.assert_array_equal(det2.decision_function(data[:20]), old.decision_function(data[:20]))
    assert det2.explain(data[0]).members == {}


def test_forged_ensemble_arrays_are_refused(tmp_path, det):
    """A tree that loops, a feature out of range or a zero scale could hang or poison every score."""
    from lucidae.applications.anomaly import _check_ensemble
    from lucidae.errors import CorruptFileError

    path = det.save(tmp_path / "forged")
    forgeries = {
        "loop": lambda d: d.forest_["left"].__setitem__((0, 0), 0),
        "feature": lambda d: d.forest_["feature"].__setitem__((0, 0), 99),
        "scale": lambda d: d.member_scale_.__setitem__(1, 0.0),
        "reference": lambda d: setattr(d, "knn_reference_", d.knn_reference_[:1]),
    }
    for forge in forgeries.values():
        d = load_detector(path)
        _check_ensemble(d, path)  # the saved one is valid
        forge(d)
        with pytest.raises(CorruptFileError):
            _check_ensemble(d, path)
