"""One record per model: the metrics of :mod:`lucidae.metrics`, each with a plain-language note.

:func:`summarize` streams the data through a fitted estimator once (so ``X`` may be a
memory-mapped array larger than memory), collects fidelity, sparsity, structure and,
when known factors are given, disentanglement, and returns a :class:`Summary` that
prints as a table and saves as JSON.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from lucidae import metrics
from lucidae.errors import DataError
from lucidae.explain import decoder_directions
from lucidae.models.vae import VariationalAutoEncoder


@dataclass
class Entry:
    """One measured value with its meaning."""

    name: str
    """Key, e.g. ``"explained_variance"``."""
    group: str
    """``"fidelity"``, ``"sparsity"``, ``"structure"`` or ``"disentanglement"``."""
    value: Any
    """A number (or None where the metric does not apply, with the reason in ``note``)."""
    note: str
    """What the value means, in a sentence, with the value in it."""


@dataclass
class Summary:
    """Metrics of one model on one dataset, each with a note.

    Examples
    --------
    >>> s = Summary("AutoEncoder(dense)", 10, 2, [Entry("fvu", "fidelity", 0.1, "...")])
    >>> s["fvu"], s.to_dict()["metrics"]
    (0.1, {'fvu': 0.1})
    """

    model: str
    """Estimator class and model family."""
    n_samples: int
    """Samples measured."""
    latent_dim: int
    """Size of the code."""
    entries: list[Entry] = field(default_factory=list)
    """The measured values, grouped and in reading order."""

    def __getitem__(self, name: str) -> Any:
        for entry in self.entries:
            if entry.name == name:
                return entry.value
        raise KeyError(f"{name!r} was not measured; measured: {[e.name for e in self.entries]}")

    def __contains__(self, name: object) -> bool:
        return any(e.name == name for e in self.entries)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``metrics`` (name -> value), ``notes`` (name -> note) and ``entries``."""
        return {
            "model": self.model,
            "n_samples": self.n_samples,
            "latent_dim": self.latent_dim,
            "metrics": {e.name: _finite(e.value) for e in self.entries},
            "notes": {e.name: e.note for e in self.entries},
            "entries": [
                {"name": e.name, "group": e.group, "value": _finite(e.value), "note": e.note} for e in self.entries
            ],
        }

    def to_json(self, path: str | os.PathLike | None = None, *, indent: int = 2) -> str:
        """The record as JSON text (strict: infinities and NaN become null); written to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=indent, allow_nan=False)
        if path is not None:
            Path(path).write_text(text + "\n", encoding="utf-8")
        return text

    def __str__(self) -> str:
        lines = [f"{self.model}: {self.n_samples} samples, {self.latent_dim} latents"]
        width = max((len(e.name) for e in self.entries), default=0)
        group = None
        for e in self.entries:
            if e.group != group:
                group = e.group
                lines.append(f"[{group}]")
            lines.append(f"  {e.name:<{width}}  {_fmt(e.value):>9}  {e.note}")
        return "\n".join(lines)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def summarize(
    estimator: Any,
    X: Any,
    y: Any = None,
    factors: Any = None,
    *,
    batch_size: int = 1024,
    threshold: float = 0.0,
    n_bins: int = metrics.N_BINS,
    max_samples: int = 5000,
    random_state: int = 0,
) -> Summary:
    """Measure a fitted estimator on ``X`` and explain each value in a sentence.

    Fidelity is measured in the model's scaled space (where ``score_samples`` measures
    too, so features in large units do not dominate), streaming over ``batch_size``
    rows; PSNR is reported only when that space is within [0, 1]. Sparsity streams too.
    Structure and disentanglement metrics fit small models or PCA, so they use at most
    ``max_samples`` rows drawn with ``random_state``.

    Parameters
    ----------
    estimator : fitted lucidae estimator
    X : array-like of shape (n_samples, n_features)
        Evaluation data (held-out data measures generalisation); any sliceable array,
        including ``np.memmap``.
    y : array-like of shape (n_samples,), optional
        Labels: adds linear-probe accuracy and per-latent label purity.
    factors : array-like of shape (n_samples, n_factors), optional
        Known generative factors: adds MIG, SAP, DCI and modularity.
    batch_size : int, default=1024
    threshold : float, default=0.0
        A latent counts as active on a sample when ``|z| > threshold``.
    n_bins : int, default=20
        Discretisation of continuous values for the information-based metrics.
    max_samples : int, default=5000
    random_state : int, default=0

    Returns
    -------
    Summary

    Examples
    --------
    >>> from lucidae import AutoEncoder
    >>> from lucidae.datasets import load_digits
    >>> ds = load_digits()
    >>> ae = AutoEncoder(hidden_dims=(), latent_dim=4, epochs=2, verbose=0, random_state=0).fit(ds.X)
    >>> s = summarize(ae, ds.X[:500])
    >>> 0 < s["explained_variance"] < 1, "l0" in s
    (True, True)
    """
    check_is_fitted(estimator, "module_")
    module = estimator.module_
    if not hasattr(X, "shape"):
        X = np.asarray(X)
    n = len(X)
    if n < 2:
        raise DataError(f"summarize needs at least 2 samples, got {n}.")
    fid = metrics.FidelityAccumulator()
    act = metrics.ActivationAccumulator(threshold)
    lo, hi = math.inf, -math.inf
    codes = []
    device = next(module.parameters()).device
    module.eval()
    with torch.no_grad():
        for start in range(0, n, batch_size):
            xs = estimator.scale_inputs(_rows(X, slice(start, start + batch_size)))  # (batch, features) scaled
            # np.require copies read-only rows (a memmap), which torch cannot wrap safely
            xb = torch.from_numpy(np.require(xs, requirements=["C", "W"])).to(device)
            z = module.encode(xb)  # (batch, latent)
            recon = module.decode(z)  # (batch, features)
            fid.update(xs, recon.float().cpu().numpy())
            z_np = z.float().cpu().numpy()
            act.update(z_np)
            codes.append(z_np)
            lo, hi = min(lo, float(xs.min())), max(hi, float(xs.max()))
    Z = np.concatenate(codes).astype(np.float64)  # (n, latent)
    d = Z.shape[1]
    entries: list[Entry] = []

    def add(name: str, group: str, value: Any, note: str) -> None:
        entries.append(Entry(name, group, value, note))

    # ---------------------------------------------------------------- fidelity
    ev = fid.explained_variance
    add("mse", "fidelity", fid.mse, f"mean squared error per value in the model's scaled space: {fid.mse:.4g}.")
    add(
        "fvu",
        "fidelity",
        fid.fvu,
        f"{_pct(fid.fvu)} of the data's variance (about its mean) is lost in reconstruction; "
        "1 would be no better than drawing the average sample.",
    )
    add(
        "explained_variance",
        "fidelity",
        ev,
        f"the code keeps {_pct(ev)} of the variance of the data."
        if ev >= 0
        else f"explained variance {_pct(ev)}: the reconstruction is worse than predicting the mean sample.",
    )
    if lo >= 0.0 and hi <= 1.0:
        p = fid.psnr(1.0)
        add(
            "psnr", "fidelity", p, f"peak signal-to-noise ratio {p:.1f} dB for data in [0, 1]; above 20 dB looks close."
        )

    # ---------------------------------------------------------------- sparsity
    l0 = act.l0
    dead, dense = act.dead, act.dense(0.5)
    add("l0", "sparsity", l0, f"on average {l0:.1f} of {d} latents are active (|z| > {threshold:g}) per sample.")
    add(
        "n_dead",
        "sparsity",
        int(len(dead)),
        f"{len(dead)} of {d} latents {'never fires' if len(dead) == 1 else 'never fire'} on this data and "
        f"{'explains' if len(dead) == 1 else 'explain'} nothing" + (f" ({_short(dead)})" if len(dead) else "") + ".",
    )
    if isinstance(module, VariationalAutoEncoder):
        collapsed = metrics.collapsed_latents(Z)
        add(
            "n_collapsed",
            "sparsity",
            int(len(collapsed)),
            f"{len(collapsed)} of {d} latents collapsed to the prior: "
            + ("its posterior mean varies" if len(collapsed) == 1 else "their posterior means vary")
            + f" by less than {metrics.COLLAPSE_VARIANCE:g} (variance) over this data, so "
            + ("it carries" if len(collapsed) == 1 else "they carry")
            + " almost nothing"
            + (f" ({_short(collapsed)})" if len(collapsed) else "")
            + (". Every latent collapsed: lower beta or train longer." if len(collapsed) == d else "."),
        )
    add(
        "n_dense",
        "sparsity",
        int(len(dense)),
        f"{len(dense)} of {d} latents fire on more than half of the samples; such latents are hard to read"
        " as one concept (for an unconstrained linear code every latent is dense).",
    )
    if d > 1:
        h = act.hoyer
        add(
            "hoyer",
            "sparsity",
            h,
            f"Hoyer sparsity {h:.2f}: 1 when one latent carries each sample, 0 when all carry it equally.",
        )
    nz = metrics.near_zero_weights(module)
    add("near_zero_weights", "sparsity", nz, f"{_pct(nz)} of the weights are within 1e-3 of zero.")

    # ---------------------------------------------------------------- structure
    rng = np.random.default_rng(random_state)
    sub = np.sort(rng.choice(n, max_samples, replace=False)) if n > max_samples else np.arange(n)
    Zs = Z[sub]
    if d > 1:
        corr = metrics.latent_correlation(Zs)
        off = np.abs(corr[~np.eye(d, dtype=bool)])
        add(
            "max_abs_correlation",
            "structure",
            float(off.max()),
            f"the most correlated pair of latents has |r| = {off.max():.2f}; near 1 means two latents say the same.",
        )
        add("mean_abs_correlation", "structure", float(off.mean()), f"mean |r| between latents is {off.mean():.2f}.")
    n_features = estimator.n_features_in_
    if d < n_features:
        Xsub = _rows(X, sub)
        angles = metrics.pca_angles(decoder_directions(estimator, Xsub), estimator.scale_inputs(Xsub))
        add(
            "pca_angle_mean",
            "structure",
            float(angles.mean()),
            f"mean principal angle {angles.mean():.0f} degrees between the latents' write directions and PCA's.",
        )
        add(
            "pca_angle_max",
            "structure",
            float(angles.max()),
            pca_angle_note(float(angles.max()), d),
        )
    if y is not None:
        labels = np.asarray(y)
        if len(labels) != n:
            raise DataError(f"y has {len(labels)} entries but X has {n} samples; pass one label per sample.")
        probe = metrics.linear_probe(Zs, labels[sub], random_state=random_state)[0]
        kind = "accuracy" if probe["kind"] == "accuracy" else "R^2"
        add(
            "linear_probe",
            "structure",
            probe["score"],
            f"a linear model reads the label off the code with cross-validated {kind} {probe['score']:.2f}"
            f" (chance {probe['chance']:.2f}).",
        )
        purity = metrics.label_purity(Zs, labels[sub])
        add(
            "label_purity_mean",
            "structure",
            float(purity["purity"].mean()),
            f"among each latent's top {purity['n_top']} samples, on average {_pct(purity['purity'].mean())}"
            f" share one label (chance {_pct(purity['chance'])}).",
        )

    # ---------------------------------------------------------------- disentanglement
    if factors is not None:
        V = np.asarray(factors)
        V = V[:, None] if V.ndim == 1 else V
        if len(V) != n:
            raise DataError(f"factors has {len(V)} rows but X has {n} samples; pass one row per sample.")
        Vs = V[sub]
        if d > 1:
            m = metrics.mig(Zs, Vs, n_bins=n_bins)
            add(
                "mig",
                "disentanglement",
                m,
                f"MIG {m:.2f}: on average the best latent for a factor knows {_pct(m)} of that factor's entropy"
                " more than the runner-up (1: one latent per factor; 0: none stands out).",
            )
            s = metrics.sap(Zs, Vs, n_bins=n_bins, random_state=random_state)
            add("sap", "disentanglement", s, f"SAP {s:.2f}: gap in single-latent predictability of each factor.")
        r = metrics.dci(Zs, Vs, random_state=random_state)
        add(
            "dci_disentanglement",
            "disentanglement",
            r["disentanglement"],
            f"DCI disentanglement {r['disentanglement']:.2f}: how far each latent is about one factor only.",
        )
        add(
            "dci_completeness",
            "disentanglement",
            r["completeness"],
            f"DCI completeness {r['completeness']:.2f}: how far each factor is held by one latent only.",
        )
        add(
            "dci_informativeness",
            "disentanglement",
            r["informativeness"],
            f"DCI informativeness {r['informativeness']:.2f}: held-out R^2 of predicting the factors from the code.",
        )
        mod = metrics.modularity(Zs, Vs, n_bins=n_bins)
        add(
            "modularity",
            "disentanglement",
            mod,
            f"modularity {mod:.2f}: how far each informative latent depends on one factor (high even for"
            " uninformative codes; read it with MIG).",
        )
    model_name = getattr(getattr(estimator, "model_config_", None), "model", "?")
    return Summary(f"{type(estimator).__name__}({model_name})", n, d, entries)


def _rows(X: Any, idx: Any) -> Any:
    """Rows of an array, memmap or DataFrame (whose ``[]`` selects columns, not rows)."""
    return X.iloc[idx] if hasattr(X, "iloc") else X[idx]


def _short(idx: np.ndarray, k: int = 8) -> str:
    """``"latent 3"`` or ``"latents 3, 5, ..."``: the first ``k`` indices, named in the singular or the plural.

    Examples
    --------
    >>> _short(np.array([23])), _short(np.arange(10), k=3)
    ('latent 23', 'latents 0, 1, 2, ...')
    """
    items = ", ".join(str(int(i)) for i in idx[:k])
    return ("latent " if len(idx) == 1 else "latents ") + items + (", ..." if len(idx) > k else "")


def pca_angle_note(angle: float, k: int | None = None) -> str:
    """What the largest principal angle between the code's write directions and PCA's subspace means.

    Readers took "within 82 degrees" for reassurance; an angle near 90 says the opposite,
    so the sentence names the regime the number falls in.

    Examples
    --------
    >>> pca_angle_note(81.72, 32)[:60]
    'the largest principal angle to the top-32 PCA subspace is 82'
    >>> "nearly orthogonal" in pca_angle_note(81.72), "close to" in pca_angle_note(10.0)
    (True, True)
    """
    subspace = f"the top-{k} PCA subspace" if k else "the PCA subspace of the same size"
    if angle >= 60:
        meaning = (
            "nearly orthogonal: at least one direction the latents write is one PCA would not keep, "
            "so the code spans a different subspace than PCA, not a rotation of it"
        )
    elif angle >= 30:
        meaning = "partly shared: the code overlaps PCA's subspace but leaves some of it for other directions"
    else:
        meaning = "close to PCA's subspace: the code is, up to rotation, much like PCA"
    scale = "(0: the same subspace; 90: orthogonal)"
    return f"the largest principal angle to {subspace} is {angle:.0f} degrees {scale}, {meaning}."
