"""Metrics against hand-computed answers, slow obvious references and their limits."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lucidae import metrics
from lucidae.errors import DataError


# ---------------------------------------------------------------------- MIG
def _slow_mi(a, b):
    """I(a; b) from counting pairs, one loop per cell."""
    n = len(a)
    total = 0.0
    for x in set(a.tolist()):
        for y in set(b.tolist()):
            pxy = np.sum((a == x) & (b == y)) / n
            if pxy > 0:
                total += pxy * math.log(pxy / (np.mean(a == x) * np.mean(b == y)))
    return total


def test_mutual_information_matches_pair_counting(rng):
    v = rng.integers(0, 3, size=(300, 2))
    z = np.c_[v[:, 0] + rng.integers(0, 2, 300), rng.integers(0, 5, 300)]
    mi = metrics.mutual_information(z, v)
    for i in range(2):
        for k in range(2):
            assert mi[i, k] == pytest.approx(_slow_mi(z[:, i], v[:, k]), abs=1e-12)


def test_mig_hand_computed():
    # v is a fair coin; z0 copies it (I = log 2), z1 copies it on 3 of 4 samples.
    v = np.array([0, 0, 1, 1])
    z = np.c_[v, [0, 1, 1, 1]]
    # I(z1; v): p(z1=0)=1/4, p(z1=1)=3/4; p(0,0)=1/4, p(1,0)=1/4, p(1,1)=1/2
    i1 = (
        0.25 * math.log(0.25 / (0.25 * 0.5)) + 0.25 * math.log(0.25 / (0.75 * 0.5)) + 0.5 * math.log(0.5 / (0.75 * 0.5))
    )
    assert metrics.mig(z, v) == pytest.approx((math.log(2) - i1) / math.log(2))


def test_mig_limits(rng):
    v = np.c_[rng.integers(0, 3, 5000), rng.integers(0, 6, 5000), rng.random(5000)]
    assert metrics.mig(v, v) > 0.97  # perfect code
    assert metrics.mig(v[:, ::-1] * [2.0, -1.0, 3.0] + 7, v) > 0.97  # order, scale and sign do not matter
    assert metrics.mig(rng.normal(size=(5000, 3)), v) < 0.03  # random code
    assert metrics.mig(np.ones((5000, 3)), v) == 0.0  # constant code
    # two latents that both copy a factor: nothing separates them
    assert metrics.mig(np.c_[v[:, 0], v[:, 0]], v[:, :1]) == pytest.approx(0.0)


def test_mig_rejects_bad_input(rng):
    with pytest.raises(DataError, match="samples"):
        metrics.mig(rng.random((10, 2)), rng.random((9, 1)))
    with pytest.raises(DataError, match="No factor varies"):
        metrics.mig(rng.random((10, 2)), np.zeros(10))
    with pytest.raises(DataError, match="NaN"):
        metrics.mig(np.full((10, 2), np.nan), rng.random(10))


def test_discretize_equal_width_and_categories():
    assert metrics.discretize(np.array([0.0, 0.24, 0.26, 0.74, 0.76, 1.0]), n_bins=4).ravel().tolist() == [
        0,
        0,
        1,
        2,
        3,
        3,
    ]
    assert metrics.discretize(np.array([10, 30, 20, 10]), n_bins=4).ravel().tolist() == [0, 2, 1, 0]


# ---------------------------------------------------------------------- fidelity
def test_fvu_matches_definition(rng):
    x, x_hat = rng.random((50, 7)), rng.random((50, 7))
    slow = sum(((a - b) ** 2).sum() for a, b in zip(x, x_hat)) / ((x - x.mean(0)) ** 2).sum()
    assert metrics.fvu(x, x_hat) == pytest.approx(slow)
    # about the mean, not about zero: an offset dataset reconstructed by its mean has FVU 1
    x = rng.random((50, 3)) + 100.0
    assert metrics.fvu(x, np.broadcast_to(x.mean(0), x.shape)) == pytest.approx(1.0)
    assert metrics.explained_variance(x, np.broadcast_to(x.mean(0), x.shape)) == pytest.approx(0.0, abs=1e-12)


def test_streaming_fidelity_equals_one_shot(rng):
    # a large common offset is where naive running sums of x^2 lose all digits
    x = rng.random((103, 5)) + 1e6
    x_hat = x + rng.normal(scale=0.01, size=x.shape)
    one = metrics.fidelity(x, x_hat, data_range=None)
    acc = metrics.FidelityAccumulator()
    for i in range(0, 103, 10):
        acc.update(x[i : i + 10], x_hat[i : i + 10])
    assert acc.n == 103
    assert acc.mse == pytest.approx(one["mse"], rel=1e-12)
    assert acc.fvu == pytest.approx(one["fvu"], rel=1e-9)
    assert acc.fvu == pytest.approx(metrics.fvu(x, x_hat), rel=1e-9)
    pairs = ((x[i : i + 7], x_hat[i : i + 7]) for i in range(0, 103, 7))
    assert metrics.fidelity(pairs, data_range=None)["fvu"] == pytest.approx(one["fvu"], rel=1e-9)


def test_psnr_and_mse_hand_computed():
    x = np.zeros((2, 2))
    x_hat = np.array([[0.1, 0.1], [0.1, 0.1]])
    assert metrics.mse(x, x_hat) == pytest.approx(0.01)
    assert metrics.psnr(x, x_hat) == pytest.approx(20.0)
    assert metrics.psnr(x, x_hat, data_range=255.0) == pytest.approx(20 + 20 * math.log10(255))
    assert metrics.psnr(x, x) == math.inf


def test_fidelity_errors():
    with pytest.raises(DataError, match="No samples"):
        _ = metrics.FidelityAccumulator().mse
    with pytest.raises(DataError, match="shape"):
        metrics.FidelityAccumulator().update(np.zeros((2, 3)), np.zeros((2, 2)))


# ---------------------------------------------------------------------- sparsity
def test_sparsity_hand_computed():
    z = np.array([[0.0, 2.0, 0.0, 0.5], [1.0, 3.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]])
    assert metrics.l0(z) == pytest.approx(5 / 3)
    assert metrics.activation_density(z).tolist() == pytest.approx([1 / 3, 1.0, 0.0, 1 / 3])
    assert metrics.dead_latents(z).tolist() == [2]
    assert metrics.dense_latents(z).tolist() == [1]
    assert metrics.l0(z, threshold=0.6) == pytest.approx(4 / 3)
    # streaming over batches gives the one-shot answer
    assert metrics.l0([z[:1], z[1:]]) == pytest.approx(5 / 3)
    assert metrics.l0(iter(list(z))) == pytest.approx(5 / 3)  # a stream of single rows
    h = metrics.density_histogram(z, bins=3)
    assert h["n_dead"] == 1 and sum(h["counts"]) == 3


def test_hoyer_limits_and_reference(rng):
    z = rng.random((20, 6))
    d = 6
    slow = [(math.sqrt(d) - np.abs(r).sum() / np.sqrt((r**2).sum())) / (math.sqrt(d) - 1) for r in z]
    assert metrics.hoyer(z, reduce=False) == pytest.approx(slow)
    assert metrics.hoyer(np.eye(6)) == pytest.approx(1.0)  # one-hot: maximally sparse
    assert metrics.hoyer(np.ones((3, 6))) == pytest.approx(0.0)  # constant code: not sparse at all


def test_near_zero_weights():
    torch = pytest.importorskip("torch")
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
    with torch.no_grad():
        net[0].weight.fill_(1.0)
        net[0].weight[0].zero_()  # 4 of 12 entries
        net[1].weight.fill_(1e-4)  # 6 more, below the tolerance
        net[0].bias.zero_()  # biases do not count
    assert metrics.near_zero_weights(net) == pytest.approx(10 / 18)


# ---------------------------------------------------------------------- structure
def test_principal_angles_known_rotation():
    theta = math.radians(30)
    A = np.array([[1.0], [0.0], [0.0]])
    B = np.array([[math.cos(theta)], [math.sin(theta)], [0.0]])
    assert metrics.principal_angles(A, B) == pytest.approx([30.0])
    assert metrics.principal_angles(A, B, degrees=False) == pytest.approx([theta])


def test_pca_angles_of_pca_components_are_zero_and_of_noise_large(rng):
    X = rng.normal(size=(400, 5)) @ np.diag([5.0, 4.0, 0.3, 0.2, 0.1])
    assert metrics.pca_angles(np.eye(5)[:, :2] @ [[1.0, 2.0], [3.0, -1.0]], X).max() < 3
    assert metrics.pca_angles(np.eye(5)[:, 3:], X).min() > 80


def test_latent_correlation_matches_numpy_and_streams(rng):
    z = rng.normal(size=(60, 4)) + 1e4
    z[:, 3] = z[:, 0] * 2 + 1
    full = metrics.latent_correlation(z)
    assert full == pytest.approx(np.corrcoef(z.T), abs=1e-8)
    assert metrics.latent_correlation([z[:25], z[25:]]) == pytest.approx(full, abs=1e-8)
    const = metrics.latent_correlation(np.c_[z[:, 0], np.full(60, 3.0)])
    assert const.tolist() == [[1.0, 0.0], [0.0, 1.0]]


def test_linear_probe_perfect_random_and_constant(rng):
    y = rng.integers(0, 3, 300)
    onehot = np.eye(3)[y] + rng.normal(scale=0.01, size=(300, 3))
    cont = rng.random(300)
    probe = metrics.linear_probe(np.c_[onehot, cont], np.c_[y, cont])
    assert probe[0]["kind"] == "accuracy" and probe[0]["score"] == pytest.approx(1.0)
    assert probe[1]["kind"] == "r2" and probe[1]["score"] > 0.99
    rand = metrics.linear_probe(rng.normal(size=(300, 3)), y)[0]
    assert rand["score"] < rand["chance"] + 0.1
    assert metrics.linear_probe(np.zeros((300, 2)), cont)[0]["score"] < 0.01


def test_label_purity_hand_computed_and_limits(rng):
    y = np.array([0, 0, 0, 1, 1, 2])
    z = np.c_[[5.0, 4, 3, 0, 0, 0], [0.0, 0, 5, 4, 0, 3], np.zeros(6)]
    r = metrics.label_purity(z, y, top_fraction=0.5)  # top 3 samples per latent
    assert r["n_top"] == 3
    assert r["purity"].tolist() == pytest.approx([1.0, 1 / 3, 1.0])  # ties keep sample order
    assert r["label"].tolist()[:2] == [0, 0]
    assert r["chance"] == 0.5
    labels = rng.integers(0, 2, 1000)
    assert metrics.label_purity(np.eye(2)[labels], labels)["purity"].tolist() == [1.0, 1.0]


# ---------------------------------------------------------------------- disentanglement beyond MIG
def test_sap_limits(rng):
    v = np.c_[rng.integers(0, 4, 2000), rng.random(2000)]
    z = np.c_[v, rng.normal(size=2000)]
    # continuous factor: R^2 1 vs ~0; discrete: accuracy 1 vs the best chance guess (about 1/4)
    assert metrics.sap(z, v) == pytest.approx((1 - 0.27 + 1) / 2, abs=0.04)
    assert metrics.sap(rng.normal(size=(2000, 3)), v) < 0.03
    assert metrics.sap(np.ones((2000, 3)), v) == pytest.approx(0.0)
    # one continuous factor, hand-computed: S = corr^2 = [1, 0] exactly
    t = np.linspace(-1, 1, 9)
    assert metrics.sap(np.c_[t, t**2], t, discrete=[False]) == pytest.approx(1.0)


def test_dci_from_importance_hand_computed():
    # latent 0 splits evenly over two factors (D_0 = 0), latent 1 is about factor 1 only (D_1 = 1)
    R = np.array([[1.0, 1.0], [0.0, 2.0]])
    d, c = metrics.dci_from_importance(R)
    assert d == pytest.approx(0.5)  # rho = (1/2, 1/2)
    # factor 0: one latent -> C_0 = 1 (weight 1/4); factor 1: P = (1/3, 2/3) (weight 3/4)
    h = -(1 / 3 * math.log(1 / 3) + 2 / 3 * math.log(2 / 3)) / math.log(2)
    assert c == pytest.approx(0.25 * 1 + 0.75 * (1 - h))
    assert metrics.dci_from_importance(np.zeros((2, 2))) == (0.0, 0.0)


def test_dci_limits(rng):
    v = rng.random((600, 2))
    perfect = metrics.dci(np.c_[v, rng.normal(size=600)], v)
    assert perfect["disentanglement"] > 0.95 and perfect["completeness"] > 0.95
    assert perfect["informativeness"] > 0.99
    mixed = metrics.dci(np.c_[v[:, 0] + v[:, 1], v[:, 0] - v[:, 1]], v)
    assert mixed["disentanglement"] < 0.1 and mixed["informativeness"] > 0.99
    rand = metrics.dci(rng.normal(size=(600, 3)), v)
    assert rand["informativeness"] < 0.05
    const = metrics.dci(np.ones((600, 2)), v)
    assert const["disentanglement"] == 0.0 and const["informativeness"] == 0.0


def test_dci_gbt_perfect_code(rng):
    v = rng.integers(0, 3, size=(150, 2))
    r = metrics.dci(v, v, regressor="gbt")
    assert r["disentanglement"] > 0.9 and r["informativeness"] == pytest.approx(1.0)


def test_modularity_hand_computed_and_limits(rng):
    v = rng.integers(0, 4, size=(3000, 2))
    assert metrics.modularity(v, v) == pytest.approx(1.0, abs=0.01)
    assert metrics.modularity(np.ones((3000, 2)), v) == 0.0
    # reference from the formula on the mutual-information matrix
    z = np.c_[v[:, 0] + v[:, 1], v[:, 0]]
    m = metrics.mutual_information(z, v)
    theta = m.max(1)
    ref = np.mean(1 - ((m**2).sum(1) - theta**2) / theta**2)
    assert metrics.modularity(z, v) == pytest.approx(ref)
    assert metrics.modularity(z, v) < 0.9


# ---------------------------------------------------------------------- summary
@pytest.fixture(scope="module")
def fitted_linear(digits):
    from lucidae import AutoEncoder

    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    ae = AutoEncoder(hidden_dims=(), latent_dim=4, epochs=40, batch_size=32, verbose=0, random_state=0)
    return ae.fit(digits.X[:500], image_shape=(8, 8))


def test_summary_matches_the_metrics_and_streams(fitted_linear, digits, tmp_path):
    import json

    from lucidae.summary import summarize

    X, y = digits.X[500:900], digits.y[500:900]
    Xs = fitted_linear.scaler_.transform(X)
    recon_s = fitted_linear.scaler_.transform(fitted_linear.reconstruct(X))
    Z = fitted_linear.transform(X)
    s = summarize(fitted_linear, X, y=y, factors=np.c_[y, X[:, 20]], batch_size=64)
    assert s["fvu"] == pytest.approx(metrics.fvu(Xs, recon_s), rel=1e-4)
    assert s["explained_variance"] == pytest.approx(1 - s["fvu"])
    assert s["l0"] == pytest.approx(metrics.l0(Z))
    assert s["n_dead"] == len(metrics.dead_latents(Z))
    assert s["mig"] == pytest.approx(metrics.mig(Z, np.c_[y, X[:, 20]]), abs=1e-3)
    assert s["linear_probe"] > 0.3  # far above chance (0.1) even for a 4-latent linear code
    # one batch or many: the same numbers
    whole = summarize(fitted_linear, X, y=y, factors=np.c_[y, X[:, 20]], batch_size=4096)
    assert whole["fvu"] == pytest.approx(s["fvu"], rel=1e-9) and whole["hoyer"] == pytest.approx(s["hoyer"])
    # every value has a note that states it, and the record is strict JSON
    d = json.loads(s.to_json(tmp_path / "summary.json"))
    assert set(d["metrics"]) == set(d["notes"]) >= {"mse", "fvu", "psnr", "l0", "mig", "dci_completeness"}
    assert s["explained_variance"] > 0
    assert f"{100 * s['explained_variance']:.1f}%" in d["notes"]["explained_variance"]
    assert json.loads((tmp_path / "summary.json").read_text()) == d
    assert "[disentanglement]" in str(s)


def test_summary_on_memmap_without_labels(fitted_linear, digits, tmp_path):
    from lucidae.summary import summarize

    path = tmp_path / "x.npy"
    np.save(path, digits.X[:300])
    s = summarize(fitted_linear, np.load(path, mmap_mode="r"), batch_size=100)
    assert "mig" not in s and "linear_probe" not in s and "pca_angle_max" in s
    with pytest.raises(KeyError, match="was not measured"):
        s["mig"]
    with pytest.raises(DataError, match="factors has 3 rows"):
        summarize(fitted_linear, digits.X[:300], factors=np.zeros(3))
