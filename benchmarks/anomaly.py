"""Unsupervised anomaly detection: lucidae's AnomalyDetector against the usual picks.

Datasets are built offline, the way ADBench builds its own (Han et al. 2022):

- scikit-learn's bundled tables with a rare class downsampled to a few percent
  (breast cancer, wine, iris) and digits one-class-vs-rest (one digit downsampled among
  the other nine);
- ADBench's four synthetic anomaly types, generated from a Gaussian mixture fitted to a
  table: **local** (the mixture with covariances scaled by 5), **global** (uniform over a
  box 10% wider than the data), **dependency** (every feature drawn independently from
  its marginal: right values, broken correlations) and **clustered** (the mixture's
  means scaled by 5, tight groups away from the data);
- one large table, 50,000 x 9 (clusters of unequal size with a few percent of local and
  clustered anomalies), the size of the speed target.

The datasets are split in two halves. The **tuning** half is where the detector's
defaults were chosen (``--half tuning``, and ``--variants`` compares alternatives there);
the **held-out** half (``--half held-out``, the default) is only reported. Protocol as
ADBench's unsupervised one: features standardised, each method fits and scores the same
rows (transductive), labels used only to score. Every method sees the same data.

Methods: lucidae's ``AnomalyDetector()`` with defaults (only ``contamination`` and
``random_state`` set), scikit-learn's IsolationForest, and, when ``pyod`` is installed
(``pip install pyod``; a benchmark peer only, not a lucidae dependency), PyOD's
AutoEncoder, PCA (weighted by eigenvalues), ECOD and KNN, all with their defaults.

Run ``python benchmarks/anomaly.py`` (``--seeds 3`` to average over seeds, ``--half all``
for both halves). It prints AUROC, average precision and fit + score seconds per dataset,
the means, the total time and its ratio to IsolationForest's, and the machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable

os.environ.setdefault("OMP_NUM_THREADS", "2")

import numpy as np
import torch
from sklearn import datasets as skd
from sklearn.ensemble import IsolationForest
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.mixture import GaussianMixture

Task = tuple[np.ndarray, np.ndarray]
Maker = Callable[[np.random.Generator], Task]


# ---------------------------------------------------------------- real tables
def _downsample(X: np.ndarray, y_anom: np.ndarray, fraction: float, rng: np.random.Generator) -> Task:
    """Keep every normal sample and enough anomalies to make ``fraction`` of the result."""
    normal, anom = np.flatnonzero(~y_anom), np.flatnonzero(y_anom)
    n_anom = max(3, int(round(fraction * len(normal) / (1 - fraction))))
    keep = np.concatenate([normal, rng.choice(anom, size=min(n_anom, len(anom)), replace=False)])
    keep.sort()
    return X[keep], y_anom[keep].astype(int)


def digits_rest(anomaly_class: int) -> Maker:
    """Digits: one digit, downsampled to 3%, among the other nine (one-class-vs-rest)."""

    def make(rng: np.random.Generator) -> Task:
        X, y = skd.load_digits(return_X_y=True)
        return _downsample(X.astype(float), y == anomaly_class, 0.03, rng)

    return make


def table(loader: Callable, anomaly_class: int, fraction: float) -> Maker:
    """A bundled scikit-learn table with one class downsampled to ``fraction`` as the anomalies."""

    def make(rng: np.random.Generator) -> Task:
        X, y = loader(return_X_y=True)
        return _downsample(np.asarray(X, dtype=float), y == anomaly_class, fraction, rng)

    return make


# ---------------------------------------------------------------- ADBench's synthetic anomaly types
def _base(name: str, rng: np.random.Generator) -> np.ndarray:
    """A table to fit the Gaussian mixture to, standardised."""
    if name == "breast_cancer":
        X = skd.load_breast_cancer().data
    elif name == "wine":
        X = skd.load_wine().data
    elif name == "digits":
        X = skd.load_digits().data[:, skd.load_digits().data.std(0) > 1.0]
    elif name == "classification":
        X, _ = skd.make_classification(
            n_samples=3000,
            n_features=12,
            n_informative=5,
            n_redundant=4,
            n_clusters_per_class=2,
            random_state=int(rng.integers(1 << 31)),
        )
    else:
        raise ValueError(name)
    std = X.std(0)
    return (X - X.mean(0)) / np.where(std > 0, std, 1.0)


def synthetic(base: str, kind: str, n: int = 2000, fraction: float = 0.05) -> Maker:
    """ADBench's realistic synthetic anomalies of ``kind`` from a mixture fitted to ``base``."""

    def make(rng: np.random.Generator) -> Task:
        B = _base(base, rng)
        seed = int(rng.integers(1 << 31))
        # The number of components by BIC, as ADBench does (up to 6 here, to stay quick).
        fits = [
            GaussianMixture(k, covariance_type="full", reg_covar=1e-3, random_state=seed).fit(B) for k in range(1, 7)
        ]
        gm = fits[int(np.argmin([g.bic(B) for g in fits]))]
        n_anom = int(round(fraction * n))
        normal, _ = gm.sample(n - n_anom)
        normal = normal[rng.permutation(len(normal))]
        if kind == "local":
            gm.covariances_ = gm.covariances_ * 5.0
            gm.precisions_cholesky_ = np.linalg.cholesky(np.linalg.inv(gm.covariances_))
            anom, _ = gm.sample(n_anom)
        elif kind == "clustered":
            gm.means_ = gm.means_ * 5.0
            anom, _ = gm.sample(n_anom)
        elif kind == "global":
            lo, hi = normal.min(0), normal.max(0)
            anom = rng.uniform(lo - 0.1 * (hi - lo), hi + 0.1 * (hi - lo), size=(n_anom, B.shape[1]))
        elif kind == "dependency":
            # every feature drawn independently from the normal data's marginal (a kernel density)
            idx = rng.integers(len(normal), size=(n_anom, B.shape[1]))
            bw = 1.06 * normal.std(0) * len(normal) ** -0.2
            anom = normal[idx, np.arange(B.shape[1])] + bw * rng.normal(size=(n_anom, B.shape[1]))
        else:
            raise ValueError(kind)
        X = np.vstack([normal, anom])
        y = np.r_[np.zeros(len(normal)), np.ones(len(anom))].astype(int)
        order = rng.permutation(len(X))
        return X[order], y[order]

    return make


def large(rng: np.random.Generator) -> Task:
    """50,000 x 9: seven clusters of very unequal size; 2% local and 1% clustered anomalies."""
    n, d = 50_000, 9
    sizes = np.array([0.55, 0.2, 0.1, 0.07, 0.05, 0.02, 0.01])
    centres = rng.normal(scale=4.0, size=(len(sizes), d))
    scales = rng.uniform(0.3, 1.5, size=(len(sizes), d))
    n_local, n_cluster = int(0.02 * n), int(0.01 * n)
    counts = rng.multinomial(n - n_local - n_cluster, sizes)
    comp = np.repeat(np.arange(len(sizes)), counts)
    normal = centres[comp] + scales[comp] * rng.normal(size=(len(comp), d))
    lc = rng.choice(len(sizes), size=n_local, p=sizes)
    local_anom = centres[lc] + 4.0 * scales[lc] * rng.normal(size=(n_local, d))
    cluster_anom = rng.normal(scale=4.0, size=d) + 0.3 * rng.normal(size=(n_cluster, d))
    X = np.vstack([normal, local_anom, cluster_anom])
    y = np.r_[np.zeros(len(normal)), np.ones(n_local + n_cluster)].astype(int)
    order = rng.permutation(len(X))
    return X[order], y[order]


TUNING: dict[str, Maker] = {
    "breast_cancer (malignant 5%)": table(skd.load_breast_cancer, 0, 0.05),
    "iris (virginica 8%)": table(skd.load_iris, 2, 0.08),
    "digits 0 vs rest": digits_rest(0),
    "digits 2 vs rest": digits_rest(2),
    "digits 4 vs rest": digits_rest(4),
    "digits 6 vs rest": digits_rest(6),
    "synth-local (breast_cancer)": synthetic("breast_cancer", "local"),
    "synth-global (breast_cancer)": synthetic("breast_cancer", "global"),
    "synth-dependency (breast_cancer)": synthetic("breast_cancer", "dependency"),
    "synth-clustered (breast_cancer)": synthetic("breast_cancer", "clustered"),
    "synth-local (classification)": synthetic("classification", "local", n=5000),
    "synth-dependency (classification)": synthetic("classification", "dependency", n=5000),
}
"""The half the defaults were chosen on: name to generator ``rng -> (X, y)``, y = 1 for anomalies."""

HELD_OUT: dict[str, Maker] = {
    "wine (class 2, 8%)": table(skd.load_wine, 2, 0.08),
    "iris (setosa 8%)": table(skd.load_iris, 0, 0.08),
    "breast_cancer (malignant 2%)": table(skd.load_breast_cancer, 0, 0.02),
    "digits 1 vs rest": digits_rest(1),
    "digits 5 vs rest": digits_rest(5),
    "digits 8 vs rest": digits_rest(8),
    "synth-local (wine)": synthetic("wine", "local"),
    "synth-global (wine)": synthetic("wine", "global"),
    "synth-dependency (digits)": synthetic("digits", "dependency", n=3000),
    "synth-clustered (wine)": synthetic("wine", "clustered"),
    "synth-global (classification)": synthetic("classification", "global", n=5000),
    "large 50,000 x 9": large,
}
"""The half that is only reported; nothing was tuned on it."""


def standardise(X: np.ndarray) -> np.ndarray:
    """Constant columns dropped (digits has some; PyOD's PCA divides by their zero variance), the rest standardised."""
    X = X[:, X.std(0) > 0]
    return ((X - X.mean(0)) / X.std(0)).astype(np.float32)


# ---------------------------------------------------------------- methods: (X, contamination, seed) -> scores
def lucidae_default(X: np.ndarray, contamination: float, seed: int) -> np.ndarray:
    from lucidae import AnomalyDetector

    return AnomalyDetector(contamination=contamination, random_state=seed).fit(X).decision_scores_


def sk_iforest(X: np.ndarray, contamination: float, seed: int) -> np.ndarray:
    return -IsolationForest(random_state=seed).fit(X).score_samples(X)


def pyod_ae(X: np.ndarray, contamination: float, seed: int) -> np.ndarray:
    from pyod.models.auto_encoder import AutoEncoder as PyodAE

    return PyodAE(contamination=contamination, random_state=seed, verbose=0).fit(X).decision_scores_


def pyod_pca(X: np.ndarray, contamination: float, seed: int) -> np.ndarray:
    from pyod.models.pca import PCA

    return PCA(contamination=contamination, random_state=seed).fit(X).decision_scores_


def pyod_ecod(X: np.ndarray, contamination: float, seed: int) -> np.ndarray:
    from pyod.models.ecod import ECOD

    return ECOD(contamination=contamination).fit(X).decision_scores_


def pyod_knn(X: np.ndarray, contamination: float, seed: int) -> np.ndarray:
    from pyod.models.knn import KNN

    return KNN(contamination=contamination).fit(X).decision_scores_


Method = Callable[[np.ndarray, float, int], np.ndarray]


def methods() -> dict[str, Method]:
    out: dict[str, Method] = {"lucidae": lucidae_default, "IForest (sk)": sk_iforest}
    try:
        import pyod  # noqa: F401
    except ImportError:
        print("note: pyod is not installed, so its AutoEncoder, PCA, ECOD and KNN are skipped (`pip install pyod`)")
    else:
        out.update({"pyod AE": pyod_ae, "pyod PCA": pyod_pca, "ECOD": pyod_ecod, "KNN": pyod_knn})
    return out


def variants() -> dict[str, Method]:
    """The alternatives behind AnomalyDetector's defaults, compared on the tuning half."""
    from lucidae import AnomalyDetector
    from lucidae.applications.anomaly import MEMBERS

    def make(**params: object) -> Method:
        def fit(X: np.ndarray, contamination: float, seed: int) -> np.ndarray:
            det = AnomalyDetector(contamination=contamination, random_state=seed, **params)  # type: ignore[arg-type]
            return det.fit(X).decision_scores_

        return fit

    def combined(members: tuple[str, ...], how: str = "robust z") -> Method:
        """The default detector's members, some of them, robust z-scores or ranks averaged."""

        def fit(X: np.ndarray, contamination: float, seed: int) -> np.ndarray:
            det = AnomalyDetector(contamination=contamination, random_state=seed).fit(X)
            parts = det._score_parts(det._standardise(X.astype(np.float64)))[3]  # (3, n) robust z / 3
            keep = [MEMBERS.index(m) for m in members]
            if how == "rank":
                return np.argsort(np.argsort(parts[keep], axis=1), axis=1).sum(axis=0).astype(float)
            return parts[keep].sum(axis=0)

        return fit

    return {
        "default": make(),
        "not robust": make(robust=False),
        "AE alone": make(scoring="likelihood"),
        "AE reconstruction": make(scoring="reconstruction"),
        "150 steps": make(train_steps=150),
        "600 steps": make(train_steps=600),
        "kNN + IF only": combined(("neighbours", "isolation")),
        "rank average": combined(MEMBERS, how="rank"),
    }


Result = dict[str, dict[str, tuple[float, float, float]]]


def run(tasks: dict[str, Maker], meths: dict[str, Method], seeds: list[int]) -> Result:
    """Return ``{task: {method: (auroc, ap, seconds)}}`` averaged over ``seeds`` (seconds summed per seed, averaged)."""
    results: Result = {}
    for name, make in tasks.items():
        results[name] = {}
        data = []
        for seed in seeds:
            X, y = make(np.random.default_rng(seed))
            data.append((standardise(X), y))
        for method, fn in meths.items():
            rows = []
            for seed, (X, y) in zip(seeds, data):
                torch.manual_seed(seed)
                start = time.perf_counter()
                scores = fn(X, float(y.mean()), seed)
                if not np.isfinite(scores).all():  # rank a method's infinite or undefined scores first / last
                    scores = np.nan_to_num(scores, nan=-np.inf)
                    finite = scores[np.isfinite(scores)]
                    scores = np.clip(scores, finite.min() - 1, finite.max() + 1)
                seconds = time.perf_counter() - start
                rows.append((roc_auc_score(y, scores), average_precision_score(y, scores), seconds))
            results[name][method] = tuple(np.mean(rows, axis=0))  # type: ignore[assignment]
        shape = data[0][0].shape
        print(f"  done {name} ({shape[0]} x {shape[1]}, {data[0][1].mean():.1%} anomalies)", flush=True)
    return results


def print_table(title: str, results: Result, reference: str = "IForest (sk)") -> None:
    meths = list(next(iter(results.values())))
    width = max(len(t) for t in results) + 2
    print(f"\n{title}")
    print(f"{'dataset':<{width}}" + "".join(f"{m:>22}" for m in meths))
    print(f"{'':<{width}}" + "".join(f"{'AUROC    AP  time s':>22}" for _ in meths))
    for task, row in results.items():
        print(f"{task:<{width}}" + "".join(f"{a:8.3f}{p:7.3f}{s:7.2f}" for a, p, s in row.values()))
    means = {m: np.mean([results[t][m] for t in results], axis=0) for m in meths}
    totals = {m: sum(results[t][m][2] for t in results) for m in meths}
    print(f"{'mean':<{width}}" + "".join(f"{v[0]:8.3f}{v[1]:7.3f}{'':7}" for v in means.values()))
    print(f"{'total time s':<{width}}" + "".join(f"{totals[m]:22.2f}" for m in meths))
    if reference in totals:
        ref = totals[reference]
        print(f"{'time / ' + reference:<{width}}" + "".join(f"{totals[m] / ref:21.2f}x" for m in meths))


def speed(seed: int = 0) -> None:
    """Fit + score on the 50,000 x 9 table, lucidae against IsolationForest, in seconds."""
    X, _ = large(np.random.default_rng(seed))
    X = standardise(X)
    for name, fn in (("lucidae", lucidae_default), ("IForest (sk)", sk_iforest)):
        start = time.perf_counter()
        fn(X, 0.03, seed)
        print(f"speed, fit + score 50,000 x 9: {name} {time.perf_counter() - start:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=1, help="Seeds to average over (different samples and models).")
    parser.add_argument(
        "--half", choices=["held-out", "tuning", "all"], default="held-out", help="Which half of the datasets to run."
    )
    parser.add_argument("--tasks", default="", help="Comma-separated dataset names to keep (substring match).")
    parser.add_argument("--variants", action="store_true", help="Compare the detector's defaults with alternatives.")
    args = parser.parse_args()
    torch.set_num_threads(1)  # small networks: one thread each (AnomalyDetector uses one for its own anyway)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPU cores ({platform.processor() or 'cpu'}), "
        f"torch threads {torch.get_num_threads()}, python {platform.python_version()}; seeds {args.seeds}"
    )
    meths = variants() if args.variants else methods()
    warm = standardise(np.random.default_rng(0).normal(size=(200, 5)))
    for fn in meths.values():  # imports and torch's first-call start-up, outside every timing
        fn(warm, 0.1, 0)
    halves = {"tuning": TUNING, "held-out": HELD_OUT}
    chosen = list(halves) if args.half == "all" else [args.half]
    for half in chosen:
        tasks = {k: v for k, v in halves[half].items() if not args.tasks or any(s in k for s in args.tasks.split(","))}
        label = "TUNING half (defaults chosen here)" if half == "tuning" else "HELD-OUT half (reported, not tuned on)"
        print(f"\n{label}: {len(tasks)} datasets")
        print_table(label, run(tasks, meths, list(range(args.seeds))))
    if not args.variants and not args.tasks:
        speed()


if __name__ == "__main__":
    main()
