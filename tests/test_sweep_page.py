"""The sweep page's charts: families told apart by colour and marker, PCA's reference, links and hover texts."""

import html as html_lib
import json
import re
from urllib.parse import unquote

import numpy as np
import pytest
from sklearn.decomposition import PCA

from lucidae.config import SweepConfig
from lucidae.metrics import fvu
from lucidae.report import plots
from lucidae.sweep import family, pca_fvus, run_sweep, write_sweep_page

pytest.importorskip("jinja2")

RUN = re.compile(
    r'<a class="run" href="([^"]+)" data-family="([^"]+)"><title>([^<]*)</title>'
    r'(?:<circle[^>]*fill="none"[^>]*/>)?<(circle|path) ([^>]*)/>'
)

LEVERS = {
    "dense ReLU": {"family": "dense", "latent_dim": 2, "depth": 0, "act": "relu"},
    "linear": {"family": "dense", "latent_dim": 2, "depth": 0, "act": "linear"},
    "L2 weight decay": {"family": "dense", "latent_dim": 2, "wd": 0.05},
    "sparse L1": {"family": "sparse", "latent_dim": 4, "l1": 0.01},
    "TopK": {"family": "topk", "latent_dim": 4, "k": 2},
    "VAE": {"family": "vae", "latent_dim": 4, "beta": 1.0},
    "pruned": {"family": "dense", "latent_dim": 4, "depth": 0, "act": "relu", "prune": 0.5},
    "jumprelu": {"family": "jumprelu", "latent_dim": 4},
}


def _shape(tag: str, attrs: str) -> tuple:
    """A marker's shape, wherever it is drawn: its vertices relative to their centre."""
    if tag == "circle":
        return ("circle",)
    xy = np.array([float(v) for v in re.findall(r"-?\d+\.?\d*", re.search(r'd="([^"]+)"', attrs).group(1))])
    xy = xy.reshape(-1, 2)
    return tuple(np.round(xy - xy.mean(axis=0)).astype(int).ravel().tolist())


def _runs_of(svg: str) -> list[dict]:
    return [
        {"href": h, "family": html_lib.unescape(f), "title": html_lib.unescape(t), "tag": tag,
         "fill": re.search(r'fill="([^"]+)"', a).group(1), "shape": _shape(tag, a)}
        for h, f, t, tag, a in RUN.findall(svg)
    ]  # fmt: skip


def _charts(page_html: str) -> dict[str, str]:
    out = {}
    for key in ("l0", "near_zero_weights", "mig"):
        if f'id="plot-{key}"' in page_html:
            start = page_html.index(f'id="plot-{key}"')
            out[key] = page_html[page_html.index("<svg", start) : page_html.index("</svg>", start)]
    return out


@pytest.fixture
def synthetic(tmp_path):
    """A sweep folder with two runs of every family (and one unknown), each with a report file."""
    rows = []
    rng = np.random.default_rng(0)
    for i, levers in enumerate(LEVERS.values()):
        for j in range(2):
            name = f"{levers['family']}-{i}-{j} <b>"  # a name that must be escaped, in text and in links
            (tmp_path / name).mkdir()
            (tmp_path / name / "report.html").write_text("report")
            rows.append(
                {"name": name, "levers": dict(levers), "status": "trained", "fit_seconds": 1.0,
                 "fvu": float(rng.uniform(0.1, 0.9)), "l0": float(levers["latent_dim"] - j),
                 "near_zero_weights": float(rng.uniform(0, 0.5)), "mig": None, "dead_latents": 0, "warnings": []}
            )  # fmt: skip
    pca = {"scaling": "identity", "points": [{"latent_dim": 2, "fvu": 0.5}, {"latent_dim": 4, "fvu": 0.3}]}
    page = write_sweep_page(tmp_path, rows, [], title="synthetic", pca=pca)
    return tmp_path, rows, page.read_text()


def test_family_names_each_lever():
    assert {fam: family(levers) for fam, levers in LEVERS.items()} == {f: f for f in LEVERS}


def test_every_family_has_its_own_colour_and_marker(synthetic):
    _, rows, page = synthetic
    for key, svg in _charts(page).items():
        runs = _runs_of(svg)
        assert len(runs) == len(rows), key
        style = {}
        for r in runs:
            style.setdefault(r["family"], set()).add((r["fill"], r["shape"]))
        assert set(style) == set(LEVERS)
        assert all(len(s) == 1 for s in style.values()), style  # one look per family ...
        looks = [next(iter(s)) for s in style.values()]
        assert len({c for c, _ in looks}) == len(LEVERS)  # ... no two families share a colour
        assert len({m for _, m in looks}) == len(LEVERS)  # ... nor a marker


def test_the_legend_lists_every_family_with_its_count(synthetic):
    _, _, page = synthetic
    for svg in _charts(page).values():
        legend = [
            html_lib.unescape(t) for t in re.findall(r'<g class="legend-item">.*?<text[^>]*>([^<]*)</text>', svg, re.S)
        ]
        assert legend[: len(LEVERS)] == [f"{f} (2)" for f in LEVERS]
        assert "Pareto front" in legend and "PCA, k components" in legend


def test_pca_reference_has_one_point_per_code_size(synthetic):
    tmp_path, _, page = synthetic
    charts = _charts(page)
    assert set(charts) == {"l0", "near_zero_weights"}
    for key, svg in charts.items():
        assert sorted(re.findall(r'class="pca-line" data-k="(\d+)"', svg)) == ["2", "4"], key
    # on the L0 axis PCA's k components are k active latents: its curve has a point at each code size
    assert sorted(re.findall(r'class="pca-point" data-k="(\d+)"', charts["l0"])) == ["2", "4"]
    assert "pca-point" not in charts["near_zero_weights"]
    assert json.loads((tmp_path / "sweep.json").read_text())["pca"]["points"][1] == {"latent_dim": 4, "fvu": 0.3}


def test_every_point_links_to_its_report_and_has_a_hover_text(synthetic):
    tmp_path, rows, page = synthetic
    for svg in _charts(page).values():
        runs = _runs_of(svg)
        for r in runs:
            target = tmp_path / unquote(html_lib.unescape(r["href"]))
            assert target.name == "report.html" and target.is_file(), r["href"]
            assert r["title"].splitlines()[0] in {row["name"] for row in rows}
            assert "held-out FVU" in r["title"] and "click to open its report" in r["title"]
        assert len({r["title"].splitlines()[0] for r in runs}) == len(rows)


def test_names_are_escaped_in_the_charts(synthetic):
    _, _, page = synthetic
    for svg in _charts(page).values():
        assert "<b>" not in svg and "&lt;b&gt;" in svg


def test_pca_fvus_match_a_pca_of_each_size():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 6)) @ rng.normal(size=(6, 6))
    got = pca_fvus(X[:200], X[200:], [1, 3, 6])
    for p in got:
        pca = PCA(p["latent_dim"]).fit(X[:200])
        assert p["fvu"] == pytest.approx(fvu(X[200:], pca.inverse_transform(pca.transform(X[200:]))), abs=1e-9)
    assert [p["fvu"] for p in got] == sorted((p["fvu"] for p in got), reverse=True)
    assert got[-1]["fvu"] == pytest.approx(0.0, abs=1e-9)  # every component: nothing lost


def test_family_styles_keep_known_families_fixed():
    assert plots.family_styles(["VAE"])["VAE"] == plots.family_styles(["TopK", "VAE"])["VAE"]
    other = plots.family_styles(["a", "b"])
    assert other["a"] != other["b"]


def test_a_real_sweep_draws_pcas_reference_on_the_runs_held_out_rows(tmp_path):
    cfg = SweepConfig(
        latent_dims=(2, 3), depths=(0,), activations=("relu",), weight_decays=(), l1_coefficients=(),
        topk_ks=(2,), betas=(), prune_amounts=(), epochs=1, max_latents=1,
    )  # fmt: skip
    page = run_sweep(cfg, tmp_path, log=lambda line: None).read_text()
    doc = json.loads((tmp_path / "sweep.json").read_text())
    assert [p["latent_dim"] for p in doc["pca"]["points"]] == [2, 3]
    for run in doc["runs"]:
        metrics = json.loads((tmp_path / run["name"] / "metrics.json").read_text())["metrics"]
        k = run["levers"]["latent_dim"]
        # each report fits its own PCA of the code's size on the same rows: the two must agree
        expected = metrics[f"pca_fvu (k={k})"]
        assert doc["pca"]["points"][[2, 3].index(k)]["fvu"] == pytest.approx(expected, rel=1e-5)
    assert {r["family"] for r in doc["runs"]} == {"dense ReLU", "TopK"}
    runs = _runs_of(_charts(page)["l0"])
    assert len(runs) == len(doc["runs"]) == 4
    assert all((tmp_path / r["href"]).is_file() for r in runs)
