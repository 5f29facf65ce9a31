"""Unsupervised anomaly detection: lucidae's AnomalyDetector against the usual picks.

Tasks are built offline, ADBench-style: scikit-learn's bundled datasets with one class
(or a downsampled class) as the anomalies, plus generated data with anomalies of
different kinds (scattered, clustered, off a low-dimensional manifold, local). Features
are standardised; labels are used only to score. Every method sees the same data.

Methods: lucidae's default ``AnomalyDetector``, PCA reconstruction error, scikit-learn's
IsolationForest, and, when ``pyod`` is installed (``pip install pyod``; it is not a
lucidae dependency), PyOD's AutoEncoder (10 epochs, its defaults) and IForest.

Run ``python benchmarks/anomaly.py`` (``--seeds 3`` to average over seeds). It prints
AUROC, average precision and fit seconds per task, then the means and fit-time ratios.
``--defaults-evidence`` instead compares the detector's defaults with alternatives
(training length, early stopping, score).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import torch
from sklearn import datasets as skd
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest
from sklearn.metrics import average_precision_score, roc_auc_score

Task = tuple[np.ndarray, np.ndarray]


def _downsample(X: np.ndarray, y_anom: np.ndarray, fraction: float, rng: np.random.Generator) -> Task:
    """Keep every normal sample and enough anomalies to make ``fraction`` of the result."""
    normal, anom = np.flatnonzero(~y_anom), np.flatnonzero(y_anom)
    n_anom = max(3, int(round(fraction * len(normal) / (1 - fraction))))
    keep = np.concatenate([normal, rng.choice(anom, size=min(n_anom, len(anom)), replace=False)])
    keep.sort()
    return X[keep], y_anom[keep].astype(int)


def digits_task(anomaly_class: int) -> Callable[[np.random.Generator], Task]:
    def make(rng: np.random.Generator) -> Task:
        X, y = skd.load_digits(return_X_y=True)
        return _downsample(X.astype(float), y == anomaly_class, 0.05, rng)

    return make


def breast_cancer(rng: np.random.Generator) -> Task:
    X, y = skd.load_breast_cancer(return_X_y=True)
    return _downsample(X, y == 0, 0.05, rng)  # 0 = malignant


def wine(rng: np.random.Generator) -> Task:
    X, y = skd.load_wine(return_X_y=True)
    return _downsample(X, y == 2, 0.08, rng)


def iris(rng: np.random.Generator) -> Task:
    X, y = skd.load_iris(return_X_y=True)
    return _downsample(X, y == 0, 0.08, rng)  # setosa: separable, the easy case


def manifold(rng: np.random.Generator) -> Task:
    """Normal data near a 4-D nonlinear manifold in 20-D; anomalies off it, same marginal range."""
    n, d, k = 1900, 20, 4
    W1, W2 = rng.normal(size=(k, 16)), rng.normal(size=(16, d)) / 4
    Z = rng.normal(size=(n, k))
    X = np.tanh(Z @ W1) @ W2 + 0.05 * rng.normal(size=(n, d))
    A = rng.permuted(X[:100], axis=0)  # each feature from a normal sample, but mixed up
    return np.vstack([X, A]), np.r_[np.zeros(n), np.ones(100)].astype(int)


def scattered(rng: np.random.Generator) -> Task:
    """Gaussian clusters with uniform noise points spread over a wider box."""
    X, _ = skd.make_blobs(n_samples=1900, n_features=10, centers=5, random_state=int(rng.integers(1 << 31)))
    lo, hi = X.min(0), X.max(0)
    A = rng.uniform(lo - 0.2 * (hi - lo), hi + 0.2 * (hi - lo), size=(100, 10))
    return np.vstack([X, A]), np.r_[np.zeros(1900), np.ones(100)].astype(int)


def clustered(rng: np.random.Generator) -> Task:
    """Correlated normal data; anomalies a small tight cluster breaking the correlation."""
    n, d = 1900, 12
    L = rng.normal(size=(d, 3))
    X = rng.normal(size=(n, 3)) @ L.T + 0.3 * rng.normal(size=(n, d))
    centre = rng.normal(size=d) * 2.0
    A = centre + 0.3 * rng.normal(size=(60, d))
    return np.vstack([X, A]), np.r_[np.zeros(n), np.ones(60)].astype(int)


def local(rng: np.random.Generator) -> Task:
    """Classification-style data (make_classification); anomalies have a few features shifted."""
    X, _ = skd.make_classification(
        n_samples=2000, n_features=16, n_informative=6, n_redundant=6, random_state=int(rng.integers(1 << 31))
    )
    y = np.zeros(len(X), dtype=int)
    idx = rng.choice(len(X), size=80, replace=False)
    cols = rng.choice(16, size=(80, 3))
    X[idx[:, None], cols] += rng.choice([-3.0, 3.0], size=(80, 3))
    y[idx] = 1
    return X, y


TASKS: dict[str, Callable[[np.random.Generator], Task]] = {
    "digits-0": digits_task(0),
    "digits-4": digits_task(4),
    "digits-8": digits_task(8),
    "breast_cancer": breast_cancer,
    "wine": wine,
    "iris-setosa": iris,
    "gen-manifold": manifold,
    "gen-scattered": scattered,
    "gen-clustered": clustered,
    "gen-local": local,
}
"""Task name to generator ``rng -> (X, y)`` with y = 1 for anomalies."""


def standardise(X: np.ndarray) -> np.ndarray:
    std = X.std(0)
    return ((X - X.mean(0)) / np.where(std > 0, std, 1.0)).astype(np.float32)


# ---------------------------------------------------------------- methods: X -> scores (higher = more abnormal)
def lucidae_default(X: np.ndarray, seed: int) -> np.ndarray:
    from lucidae import AnomalyDetector

    return AnomalyDetector(random_state=seed).fit(X).decision_scores_


def pca_error(X: np.ndarray, seed: int) -> np.ndarray:
    # Components explaining 90% of the variance: the usual way to pick PCA's size.
    pca = PCA(0.9, svd_solver="full", random_state=seed).fit(X)
    return ((X - pca.inverse_transform(pca.transform(X))) ** 2).sum(1)


def sk_iforest(X: np.ndarray, seed: int) -> np.ndarray:
    return -IsolationForest(random_state=seed).fit(X).score_samples(X)


def pyod_ae(X: np.ndarray, seed: int) -> np.ndarray:
    from pyod.models.auto_encoder import AutoEncoder as PyodAE

    return PyodAE(epoch_num=10, random_state=seed, verbose=0).fit(X).decision_scores_


def pyod_iforest(X: np.ndarray, seed: int) -> np.ndarray:
    from pyod.models.iforest import IForest

    return IForest(random_state=seed).fit(X).decision_scores_


def methods() -> dict[str, Callable[[np.ndarray, int], np.ndarray]]:
    out = {"lucidae": lucidae_default, "pca-90%": pca_error, "sk-iforest": sk_iforest}
    try:
        import pyod  # noqa: F401
    except ImportError:
        print("(pyod is not installed: its rows are skipped; `pip install pyod` to add them)")
    else:
        out.update({"pyod-ae-10ep": pyod_ae, "pyod-iforest": pyod_iforest})
    return out


def run(
    tasks: dict[str, Callable], meths: dict[str, Callable], seeds: list[int]
) -> dict[str, dict[str, tuple[float, float, float]]]:
    """Return ``{task: {method: (auroc, ap, fit_seconds)}}`` averaged over ``seeds``."""
    results: dict[str, dict[str, tuple[float, float, float]]] = {}
    for name, make in tasks.items():
        results[name] = {}
        for method, fn in meths.items():
            rows = []
            for seed in seeds:
                X, y = make(np.random.default_rng(seed))
                X = standardise(X)
                torch.manual_seed(seed)
                start = time.perf_counter()
                scores = fn(X, seed)
                seconds = time.perf_counter() - start
                rows.append((roc_auc_score(y, scores), average_precision_score(y, scores), seconds))
            results[name][method] = tuple(np.mean(rows, axis=0))  # type: ignore[assignment]
    return results


def print_table(results: dict[str, dict[str, tuple[float, float, float]]]) -> None:
    meths = list(next(iter(results.values())))
    width = max(len(t) for t in results) + 2
    print(f"{'task':<{width}}" + "".join(f"{m:>22}" for m in meths))
    print(f"{'':<{width}}" + "".join(f"{'AUROC   AP   fit s':>22}" for _ in meths))
    for task, row in results.items():
        print(f"{task:<{width}}" + "".join(f"{a:8.3f}{p:7.3f}{s:7.2f}" for a, p, s in row.values()))
    means = {m: np.mean([results[t][m] for t in results], axis=0) for m in meths}
    print(f"{'mean':<{width}}" + "".join(f"{a:8.3f}{p:7.3f}{s:7.2f}" for a, p, s in means.values()))
    ref_name = "lucidae" if "lucidae" in means else next((m for m in means if "default" in m), None)
    if ref_name is not None:
        ref = means[ref_name][2]
        print(
            f"\nmean fit time relative to {ref_name}: " + ", ".join(f"{m} {v[2] / ref:.2f}x" for m, v in means.items())
        )


def variant(
    epochs: int, scoring: str = "likelihood", validation: bool = False
) -> Callable[[np.ndarray, int], np.ndarray]:
    """The default detector with another training length, early stopping or score."""

    def fit(X: np.ndarray, seed: int) -> np.ndarray:
        from lucidae import AnomalyDetector
        from lucidae.applications.anomaly import default_estimator

        est = default_estimator(X.shape[1], seed).set_params(epochs=epochs)
        if validation:
            est.set_params(validation_fraction=0.1)
        return AnomalyDetector(estimator=est, scoring=scoring, random_state=seed).fit(X).decision_scores_

    return fit


def defaults_evidence() -> dict[str, Callable[[np.ndarray, int], np.ndarray]]:
    """The variants behind AnomalyDetector's defaults (see lucidae/applications/anomaly.py)."""
    return {
        "10 epochs": variant(10),
        "20 epochs (default)": variant(20),
        "30 epochs": variant(30),
        "30 + early stopping": variant(30, validation=True),
        "20, reconstruction": variant(20, scoring="reconstruction"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=1, help="Seeds to average over (different downsamples).")
    parser.add_argument("--tasks", default="", help="Comma-separated task names; default all.")
    parser.add_argument(
        "--defaults-evidence", action="store_true", help="Compare the detector's default settings with alternatives."
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    tasks = {k: v for k, v in TASKS.items() if not args.tasks or k in args.tasks.split(",")}
    print(f"torch threads: {torch.get_num_threads()}; seeds: {args.seeds}")
    meths = defaults_evidence() if args.defaults_evidence else methods()
    print_table(run(tasks, meths, list(range(args.seeds))))


if __name__ == "__main__":
    main()
