import base64
import functools
import html as html_lib
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from lucidae import AutoEncoder, load
from lucidae.cli import app, fit_run
from lucidae.config import DataConfig, defaults
from lucidae.datasets import Dataset
from lucidae.errors import ConfigError, DataError
from lucidae.report import build_report
from lucidae.report.sweep import SweepConfig, grid, pareto_front, run_sweep, write_sweep_page

pytest.importorskip("matplotlib")
pytest.importorskip("jinja2")

XSS_FEATURE = "<script>alert(1)</script>"
XSS_RUN = "<img src=x onerror=alert(2)>"


def _fit(ds, out, **kw):
    params = dict(hidden_dims=(16,), latent_dim=6, epochs=4, verbose=0, random_state=0)
    params.update(kw)
    return fit_run(AutoEncoder(**params), ds, DataConfig(data="digits"), out, quiet=True)


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    from lucidae.datasets import load_digits

    out, record = _fit(load_digits(), tmp_path_factory.mktemp("report") / "digits")
    page = build_report(out)
    return out, page, record


def _metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def _warning_titles(run_dir: Path) -> list[str]:
    return [w["title"] for w in _metrics(run_dir)["warnings"]]


def test_report_is_self_contained(digits_run):
    from PIL import Image

    _, page, _ = digits_run
    html = page.read_text()
    assert "http://" not in html and "https://" not in html
    assert "<link" not in html and "url(" not in html
    # The only scripts: the live decoder's data block and its one inline script (allowed by hash in the CSP).
    assert re.findall(r"<script[^>]*>", html) == ['<script type="application/json" id="lucidae-live-data">', "<script>"]
    srcs = re.findall(r'<img src="([^"]*)"', html)
    assert len(srcs) >= 10
    for src in srcs:
        assert src.startswith("data:image/png;base64,")
        img = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))
        assert img.width > 0 and img.height > 0


def test_metrics_match_a_slow_reference(digits_run, digits):
    run_dir, _, record = digits_run
    doc = _metrics(run_dir)
    est = load(run_dir)
    test = np.asarray(record["test_indices"])
    assert doc["n_eval"] == len(test) == 360 and doc["evaluated_on"] == "held-out"
    X = digits.X[test].astype(np.float64)  # digits lie in [0, 1]: identity scaling, so scaled == raw
    R = est.reconstruct(digits.X[test]).astype(np.float64)
    mean = X.mean(axis=0)
    num = sum(float(((x - r) ** 2).sum()) for x, r in zip(X, R))
    den = sum(float(((x - mean) ** 2).sum()) for x in X)
    assert doc["metrics"]["fvu"] == pytest.approx(num / den, rel=1e-5)
    Z = est.transform(digits.X[test])
    active = [sum(1 for v in row if abs(v) > 0) for row in Z]
    assert doc["metrics"]["l0"] == pytest.approx(sum(active) / len(active))
    assert doc["parameters"] == sum(p.numel() for p in est.module_.parameters())
    assert [lat["index"] for lat in doc["latents"]] == list(range(6))


def test_report_has_every_section(digits_run):
    run_dir, page, _ = digits_run
    html = page.read_text()
    for heading in ("Model card", "Metrics", "Training curves", "Originals and reconstructions", "Latent map"):
        assert f">{heading}</h2>" in html
    assert "64-16-6-16-64" in html
    assert len(re.findall(r'<div class="card( dead)?" id="latent-', html)) == 6
    for label in ("writes", "top-activating samples", "traversal", "activation density"):
        assert label in html
    assert "explained_variance" in html and "pca_fvu (k=6)" in html


def test_dead_latent_is_flagged(digits_run, tmp_path):
    import shutil

    import torch

    run_dir = tmp_path / "dead"
    shutil.copytree(digits_run[0], run_dir)
    est = load(run_dir)
    last = est.module_.encoder[-2]  # the Linear that produces the code, before its ReLU
    with torch.no_grad():
        last.weight[0].zero_()
        last.bias[0] = -1.0
    est.save(run_dir)
    build_report(run_dir)
    doc = _metrics(run_dir)
    assert doc["latents"][0]["dead"] is True
    assert doc["metrics"]["n_dead"] >= 1
    assert "Dead latents" in _warning_titles(run_dir)
    assert 'class="card dead" id="latent-0"' in (run_dir / "report.html").read_text()


def test_healthy_run_has_no_overfitting_warning(digits_run):
    assert "Overfitting" not in _warning_titles(digits_run[0])


def test_rising_validation_curve_warns_of_overfitting(digits_run, tmp_path):
    import shutil

    from lucidae.train import History

    run_dir = tmp_path / "overfit"
    shutil.copytree(digits_run[0], run_dir)
    est = load(run_dir)
    losses = [0.08, 0.05, 0.03, 0.02, 0.01, 0.005]
    val = [0.08, 0.05, 0.04, 0.045, 0.05, 0.06]  # best at epoch 3, ends 50% above it
    est.history_ = History([{"epoch": i + 1, "loss": a, "val_loss": b} for i, (a, b) in enumerate(zip(losses, val))])
    est.save(run_dir)
    build_report(run_dir)
    warning = next(w for w in _metrics(run_dir)["warnings"] if w["title"] == "Overfitting")
    assert "50%" in warning["text"] and "epoch 3" in warning["text"]


def test_data_on_another_scale_is_a_scaling_mismatch(digits_run, digits):
    run_dir, _, _ = digits_run
    shifted = Dataset(X=digits.X * 16.0, y=digits.y, image_shape=(8, 8), name="digits16")  # forgot to divide
    out = build_report(run_dir, dataset=shifted)
    assert "Scaling mismatch" in _warning_titles(run_dir)
    build_report(run_dir)  # restore the module fixture's report for the other tests
    assert out.name == "report.html"


def _xss_csv(path: Path) -> Path:
    rng = np.random.default_rng(0)
    X = rng.random((240, 5))
    header = [XSS_FEATURE, "a&b", 'width "cm"', "$price", "plain"]
    lines = [",".join(header)] + [",".join(f"{v:.5f}" for v in row) for row in X]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def tabular_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("tabular")
    csv = _xss_csv(root / "noise.csv")
    out = root / XSS_RUN
    runner = CliRunner()
    args = ["train", "--data", str(csv), "--hidden-dims", "", "--latent-dim", "1", "--epochs", "3", "--verbose", "0"]
    result = runner.invoke(app, [*args, "--random-state", "0", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "run.json").read_text())["data_path"] == str(csv.resolve())
    result = runner.invoke(app, ["report", str(out)])
    assert result.exit_code == 0, result.output
    assert "report written to" in result.output
    return out


def test_user_strings_are_escaped(tabular_run):
    html = (tabular_run / "report.html").read_text()
    assert XSS_FEATURE not in html and XSS_RUN not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(2)&gt;" in html
    assert "a&amp;b" in html and html.count("<script") == 2  # only the live decoder's data block and script
    assert "\\u003cscript\\u003ealert(1)" in html  # the name inside the live decoder's JSON cannot close its block


def test_tabular_report_warns_of_low_explained_variance(tabular_run):
    # One latent cannot explain five independent uniform columns: at most about a fifth of their variance.
    doc = _metrics(tabular_run)
    assert doc["metrics"]["explained_variance"] < 0.5
    assert "Low explained variance" in _warning_titles(tabular_run)
    html = (tabular_run / "report.html").read_text()
    assert "feature (standardised)" not in html  # that label is drawn into the PNG, not the page
    assert "<th>latent</th>" in html  # tabular top-activating samples are a table with the feature names


def test_image_tiles_place_pixels_where_expected():
    from PIL import Image

    from lucidae.report.plots import image_tiles

    rows = np.array([[0.0, 1.0, 1.0, 0.0], [1.0, 1.0, 1.0, 1.0]])  # two 2x2 images
    uri = image_tiles(rows, (2, 2), vmin=0.0, vmax=1.0, target=2)  # scale 1, 2-pixel white gutters
    img = np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).convert("L"))
    assert img.shape == (2 + 2 + 2, 2 + 2 * (2 + 2))
    assert img[2:4, 2:4].tolist() == [[0, 255], [255, 0]]
    assert img[2:4, 6:8].tolist() == [[255, 255], [255, 255]]
    rgb = image_tiles(np.random.default_rng(0).random((3, 3 * 4 * 4)), (3, 4, 4))  # channels first
    assert Image.open(io.BytesIO(base64.b64decode(rgb.split(",", 1)[1]))).mode == "RGB"


def test_large_code_draws_only_the_top_latents(digits, tmp_path):
    out, _ = _fit(digits, tmp_path / "wide", hidden_dims=(), latent_dim=40, epochs=2)
    html = build_report(out, max_latents=5).read_text()
    assert len(re.findall(r'<div class="card( dead)?" id="latent-', html)) == 5
    assert "Cards are drawn for the 5 most variable" in html
    assert html.count('<tr><td class="num">') >= 40  # every latent is still in the table
    assert len(_metrics(out)["latents"]) == 40


def test_report_without_data_spec_says_what_to_do(digits, tmp_path):
    est = AutoEncoder(hidden_dims=(), latent_dim=2, epochs=1, verbose=0).fit(digits.X)
    run_dir = est.save(tmp_path / "bare")
    with pytest.raises(DataError, match="run.json"):
        build_report(run_dir)
    result = CliRunner().invoke(app, ["report", str(run_dir)])
    assert result.exit_code == 1 and "run.json" in result.output
    result = CliRunner().invoke(app, ["report", str(run_dir), "--data", "digits"])
    assert result.exit_code == 0, result.output
    assert _metrics(run_dir)["evaluated_on"] == "training"
    assert "No held-out data" in _warning_titles(run_dir)


def test_demo_writes_run_json_and_report(tmp_path, monkeypatch):
    import lucidae.estimators

    monkeypatch.setattr(lucidae.estimators, "AutoEncoder", functools.partial(AutoEncoder, epochs=2, verbose=0))
    result = CliRunner().invoke(app, ["demo", "--out", str(tmp_path / "demo")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "demo" / "run.json").is_file()
    assert f"report written to {tmp_path / 'demo' / 'report.html'}" in result.output
    run = json.loads((tmp_path / "demo" / "run.json").read_text())
    assert len(run["test_indices"]) == 360


# ---------------------------------------------------------------------- sweep
def _dominated_slow(a, b):
    out = []
    for i in range(len(a)):
        dom = False
        for j in range(len(a)):
            if a[j] <= a[i] and b[j] <= b[i] and (a[j] < a[i] or b[j] < b[i]):
                dom = True
        out.append(not dom)
    return np.array(out)


def test_pareto_front_hand_values_and_reference(rng):
    front = pareto_front(np.array([1.0, 2.0, 3.0, 2.0, 1.0]), np.array([3.0, 1.0, 0.5, 2.0, 3.0]))
    assert front.tolist() == [True, True, True, False, True]  # an exact duplicate of a front point stays
    for _ in range(20):
        a, b = rng.integers(0, 5, 12).astype(float), rng.integers(0, 5, 12).astype(float)
        assert (pareto_front(a, b) == _dominated_slow(a, b)).all()
    assert pareto_front(np.array([np.nan, 1.0]), np.array([0.0, 1.0])).tolist() == [False, True]


def test_grid_skips_missing_families_and_bad_points():
    cfg = SweepConfig(latent_dims=(2, 6), depths=(0, 1), widths=(8,), topk_ks=(4,), betas=(2.0,))
    points, skipped = grid(cfg, families={"dense"})
    assert {p.model.model for p in points} == {"dense"}
    assert any("'topk' is not available" in s for s in skipped)
    assert any("'vae' is not available" in s for s in skipped)
    points, skipped = grid(cfg)
    assert any("k=4 is invalid" in s for s in skipped)  # k=4 > latent_dim=2
    assert len({p.name for p in points}) == len(points)
    again, _ = grid(cfg)
    assert [p.name for p in again] == [p.name for p in points]  # same settings, same folder


def test_sweep_config_validation_names_the_field():
    from lucidae.cli.options import config_from_cli

    with pytest.raises(ConfigError, match="--latent-dims"):
        config_from_cli(SweepConfig, {"latent_dims": "a,b"})
    with pytest.raises(ConfigError, match="activations"):
        config_from_cli(SweepConfig, {"activations": "relu,tanh"})
    with pytest.raises(ConfigError, match="epochs=0"):
        SweepConfig(epochs=0).validate()


def test_sweep_cli_options_mirror_the_config():
    import typer.main

    from lucidae.cli import _cli_default

    command = typer.main.get_command(app).commands["sweep"]
    params = {p.name: p.default for p in command.params}
    for name, default in defaults(SweepConfig).items():
        assert name in params, name
        assert params[name] == _cli_default(default), name


@pytest.fixture(scope="module")
def tiny_sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep")
    cfg = SweepConfig(
        latent_dims=(2, 3),
        depths=(0,),
        activations=("relu", "linear"),
        weight_decays=(),
        l1_coefficients=(),
        topk_ks=(2,),
        betas=(),
        prune_amounts=(0.5,),
        prune_fine_tune_epochs=2,
        epochs=2,
        max_latents=2,
    )
    lines: list[str] = []
    page = run_sweep(cfg, out, log=lines.append)
    return cfg, out, page, lines


def test_sweep_page_links_every_run(tiny_sweep):
    _, out, page, lines = tiny_sweep
    html = page.read_text()
    doc = json.loads((out / "sweep.json").read_text())
    assert len(doc["runs"]) == 8  # 2 sizes x (relu, linear) + topk k=2 for both sizes + the relu ones pruned
    assert lines[0].startswith("[1/8]") and "trained" in lines[0]
    hrefs = set(re.findall(r'href="([^"]+)"', html))
    for run in doc["runs"]:
        assert f"{run['name']}/report.html" in hrefs
        assert (out / run["name"] / "report.html").is_file()
    assert html.count('<a class="run" ') == 2 * len(doc["runs"])  # one linked point per run in each of the two plots
    assert "Pareto front" in html and "MIG is not plotted" in html
    assert all(any(run.get("pareto", [])) for run in doc["runs"] if run["fvu"] == min(r["fvu"] for r in doc["runs"]))


def test_sweep_reuses_finished_runs(tiny_sweep):
    cfg, out, _, _ = tiny_sweep
    doc = json.loads((out / "sweep.json").read_text())
    mtimes = {r["name"]: (out / r["name"] / "model.safetensors").stat().st_mtime_ns for r in doc["runs"]}
    lines: list[str] = []
    run_sweep(cfg, out, log=lines.append)
    assert len(lines) == 8 and all(": reused" in line for line in lines)
    assert mtimes == {n: (out / n / "model.safetensors").stat().st_mtime_ns for n in mtimes}


def test_sweep_prunes_each_relu_run_into_a_point_of_its_own(tiny_sweep, digits):
    from lucidae.prune import count_nonzero_weights, prune

    _, out, page, lines = tiny_sweep
    runs = {r["name"]: r for r in json.loads((out / "sweep.json").read_text())["runs"]}
    pruned = [name for name, r in runs.items() if "prune" in r["levers"]]
    assert len(pruned) == 2 and sum(": pruned in" in line for line in lines) == 2
    for name in pruned:
        parent = name.removesuffix("-prune0.5-ft2")
        assert parent != name
        assert (
            runs[name]["levers"] == {**runs[parent]["levers"], "prune": 0.5} and runs[parent]["levers"]["act"] == "relu"
        )
        # the same held-out samples as the run it came from, and the model prune makes from the training rows
        record = json.loads((out / name / "run.json").read_text())
        assert record == json.loads((out / parent / "run.json").read_text())
        train = np.setdiff1d(np.arange(len(digits.X)), record["test_indices"])
        expected = prune(load(out / parent), digits.X[train], amount=0.5, fine_tune_epochs=2).estimator
        np.testing.assert_array_equal(load(out / name).transform(digits.X[:50]), expected.transform(digits.X[:50]))
        assert count_nonzero_weights(load(out / name).module_) < count_nonzero_weights(load(out / parent).module_)
        assert runs[name]["near_zero_weights"] > runs[parent]["near_zero_weights"]
        assert f'href="{name}/report.html"' in page.read_text()


@pytest.mark.parametrize(
    "name, kwargs, fragment",
    [
        ("SparseAutoEncoder", {}, "AutoEncoder (model family 'sparse')"),
        ("TopKAutoEncoder", {"k": 2}, "TopK keeps k=2 latents"),
        ("VAE", {"hidden_dims": (16,)}, "(model family 'vae')"),
        (
            "ConvAutoEncoder",
            {"conv_channels": (4, 8), "hidden_dims": ()},
            "1x8x8-4x4x4-8x2x2-4-8x2x2-4x4x4-1x8x8 (4x4 stride-2",
        ),
    ],
)
def test_report_works_for_every_model_family(digits, tmp_path, name, kwargs, fragment):
    from lucidae.estimators import ESTIMATORS

    if name not in ESTIMATORS:
        pytest.skip(f"{name} is not part of this lucidae")
    est = ESTIMATORS[name](latent_dim=4, epochs=1, verbose=0, random_state=0, **kwargs)
    out, _ = fit_run(est, digits, DataConfig(data="digits"), tmp_path / name, quiet=True)
    html = build_report(out, max_latents=2).read_text()
    assert fragment in html_lib.unescape(html)
    assert len(re.findall(r'<div class="card( dead)?" id="latent-', html)) == 2
    assert _metrics(out)["estimator"] == name


def test_known_factors_add_disentanglement_to_report_and_sweep(tmp_path):
    from lucidae.datasets.shapes import make_shapes
    from lucidae.metrics import mig

    ds = make_shapes(400, image_size=16, random_state=0)
    est = AutoEncoder(hidden_dims=(), latent_dim=3, epochs=1, verbose=0, random_state=0)
    out, record = fit_run(est, ds, DataConfig(data="shapes"), tmp_path / "shapes", quiet=True)
    html = build_report(out, dataset=ds, max_latents=2).read_text()
    test = np.asarray(record["test_indices"])
    expected = mig(load(out).transform(ds.X[test]), ds.factors[test])
    assert _metrics(out)["metrics"]["mig"] == pytest.approx(expected)
    assert ">mig</td>" in html and "disentanglement" in html

    rows = [
        {"name": f"r{i}", "levers": {"latent_dim": 3}, "status": "trained", "fit_seconds": 1.0, "fvu": f,
         "l0": 3.0, "near_zero_weights": 0.0, "mig": g, "dead_latents": 0, "warnings": []}
        for i, (f, g) in enumerate([(0.2, 0.1), (0.3, 0.4), (0.4, 0.3)])
    ]  # fmt: skip
    page = write_sweep_page(tmp_path / "sweep", rows, [], title="factors")
    sweep_html = page.read_text()
    assert 'id="plot-mig"' in sweep_html and "MIG is not plotted" not in sweep_html
    doc = json.loads((tmp_path / "sweep" / "sweep.json").read_text())
    assert ["mig" in r.get("pareto", []) for r in doc["runs"]] == [True, True, False]  # r2 is dominated by r1


def test_sweep_counts_a_vaes_collapsed_latents_beside_the_dead_ones(tmp_path):
    rows = [
        {"name": f"r{i}", "levers": {"beta": b}, "status": "trained", "fit_seconds": 1.0, "fvu": f, "l0": 3.0,
         "near_zero_weights": 0.0, "mig": None, "dead_latents": 0, "collapsed_latents": c, "warnings": []}
        for i, (b, f, c) in enumerate([(1.0, 0.3, 0), (6.0, 1.0, 10)])
    ]  # fmt: skip
    html = write_sweep_page(tmp_path / "sweep", rows, [], title="betas").read_text()
    cells = re.findall(r'<td class="num">([^<]*collapsed[^<]*)</td>', html)
    assert cells == ["0, 10 collapsed"]


# ----------------------------------------------------------------- generation
TILE_SCALE = 48 // 8  # image_tiles(target=48) upscales the 8x8 digits 6 times
TILE = 8 * TILE_SCALE + 2  # a tile and its 2-pixel gutter


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory, digits):
    from lucidae.estimators import ESTIMATORS

    if "VAE" not in ESTIMATORS:
        pytest.skip("VAE is not part of this lucidae")
    # beta 0.5 and a high rate: in 4 epochs the code is not collapsed, so samples and paths differ visibly
    est = ESTIMATORS["VAE"](hidden_dims=(16,), latent_dim=3, beta=0.5, lr=1e-2, epochs=4, verbose=0, random_state=0)
    out, _ = fit_run(est, digits, DataConfig(data="digits"), tmp_path_factory.mktemp("vae") / "vae", quiet=True)
    return out, build_report(out, max_latents=1)


def test_collapsed_vae_latent_is_flagged(vae_run, tmp_path):
    import shutil

    import torch

    assert "Collapsed latents" not in _warning_titles(vae_run[0])  # its three latents are all in use
    assert _metrics(vae_run[0])["metrics"]["n_collapsed"] == 0
    run_dir = tmp_path / "collapsed"
    shutil.copytree(vae_run[0], run_dir)
    est = load(run_dir)
    with torch.no_grad():  # latent 0's posterior mean no longer depends on the input: collapsed
        est.module_.encoder[-2].weight[0].zero_()
    est.save(run_dir)
    build_report(run_dir)
    doc = _metrics(run_dir)
    assert [latent["collapsed"] for latent in doc["latents"]] == [True, False, False]
    assert doc["metrics"]["n_collapsed"] == 1 and doc["metrics"]["n_dead"] == 0
    assert "Collapsed latents" in _warning_titles(run_dir)
    page = (run_dir / "report.html").read_text()
    assert 'class="card dead" id="latent-0"' in page and '<span class="badge">collapsed</span>' in page


def _generation_section(html: str) -> str:
    start = html.index('<h2 id="generation">')
    return html[start : html.index('<p class="note">Written by lucidae.', start)]


def _gray(src: str) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))).convert("L"), dtype=np.float64)


def _tiles(img: np.ndarray, n: int) -> list[np.ndarray]:
    """The n 8x8 images of a one-row strip, read back at their original resolution, in [0, 1]."""
    assert img.shape == (2 + TILE, 2 + n * TILE)  # white gutters of 2 pixels around every tile
    return [img[2 : 2 + 8 * TILE_SCALE : TILE_SCALE, x : x + 8 * TILE_SCALE : TILE_SCALE] / 255.0
            for x in range(2, 2 + n * TILE, TILE)]  # fmt: skip


def test_vae_report_shows_prior_samples_and_interpolations(vae_run, digits):
    run_dir, page = vae_run
    section = _generation_section(page.read_text())
    est = load(run_dir)
    srcs = re.findall(r'<img src="([^"]*)" alt="([^"]*)"', section)
    assert [alt for _, alt in srcs][0] == "new images sampled from the prior"
    assert len(srcs) == 1 + 3 and all(alt.startswith("interpolation from") for _, alt in srcs[1:])
    assert "new images made by drawing codes at random from that prior" in section
    # digits lie in [0, 1], so the shared grey scale maps a value v to about 255 * v
    drawn = _tiles(_gray(srcs[0][0]), 10)
    expected = est.sample(10, random_state=0).reshape(10, 8, 8)
    for got, want in zip(drawn, expected):
        np.testing.assert_allclose(got, np.clip(want, 0, 1), atol=2.5 / 255)
    pairs = _metrics(run_dir)["generation"]["interpolation_pairs"]
    assert len(pairs) == 3
    for (src, _), (a, b) in zip(srcs[1:], pairs):
        assert digits.y[a] != digits.y[b]  # paths between classes, not within one
        strip = _tiles(_gray(src), 10)
        np.testing.assert_allclose(strip[0], digits.X[a].reshape(8, 8), atol=2.5 / 255)  # the samples themselves
        np.testing.assert_allclose(strip[-1], digits.X[b].reshape(8, 8), atol=2.5 / 255)
        ends = est.reconstruct(digits.X[[a, b]]).reshape(2, 8, 8)
        np.testing.assert_allclose(strip[1], np.clip(ends[0], 0, 1), atol=2.5 / 255)  # then their reconstructions
        np.testing.assert_allclose(strip[-2], np.clip(ends[1], 0, 1), atol=2.5 / 255)
        za, zb = est.transform(digits.X[[a, b]]).astype(np.float64)  # posterior means
        middle = est.inverse_transform((za + (zb - za) * (3 / 7))[None, :].astype(np.float32)).reshape(8, 8)
        np.testing.assert_allclose(strip[4], np.clip(middle, 0, 1), atol=2.5 / 255)
        assert f"#{a} (label {digits.y[a]}) to #{b} (label {digits.y[b]})" in section


def test_tabular_report_has_no_generation_section(tabular_run):
    assert 'id="generation"' not in (tabular_run / "report.html").read_text()
    assert _metrics(tabular_run)["generation"] is None


@pytest.mark.browser
def test_vae_report_loads_cleanly_in_a_browser(vae_run, tmp_path):
    from test_report_browser import _probe, _screenshot_is_not_blank  # same checks as the other pages

    result = _probe(vae_run[1], tmp_path)
    assert result["errors"] == [] and result["console"] == [] and result["broken"] == []
    assert result["images"] >= 4 + 2  # the generation strips and the rest of the page
    assert "Generation" in result["text"]
    _screenshot_is_not_blank(vae_run[1], tmp_path)


# ------------------------------------------------------------- verdict and readable cards (issue #20)
def _section(html: str, start: str, end: str) -> str:
    i = html.index(start)
    return html[i : html.index(end, i)]


def _card(html: str, i: int) -> str:
    start = html.index(f'id="latent-{i}"')
    end = html.find('<div class="card', start)
    return html[start : end if end > 0 else len(html)]


def test_verdict_comes_first_and_says_the_model_loses_to_pca(digits_run, digits):
    from sklearn.decomposition import PCA

    run_dir, page, record = digits_run
    html = page.read_text()
    assert html.index('<h2 id="verdict">') < html.index('<h2 id="warnings">') < html.index('<h2 id="model">')
    verdict = _metrics(run_dir)["verdict"]
    test = np.asarray(record["test_indices"])
    train = np.setdiff1d(np.arange(digits.n_samples), test)
    pca = PCA(6, random_state=0).fit(digits.X[train].astype(np.float64))  # identity scaling: raw == scaled
    X = digits.X[test].astype(np.float64)
    pca_fvu = ((X - pca.inverse_transform(pca.transform(X))) ** 2).sum() / ((X - X.mean(axis=0)) ** 2).sum()
    assert verdict["pca_fvu"] == pytest.approx(pca_fvu, rel=1e-3)
    assert verdict["fvu"] == pytest.approx(_metrics(run_dir)["metrics"]["fvu"])
    assert verdict["fvu"] > verdict["pca_fvu"] and verdict["wins"] is False  # 4 epochs: PCA-6 does better
    assert verdict["pca_components"] == 6 and verdict["fvu_over_pca"] == pytest.approx(verdict["fvu"] / pca_fvu, 1e-3)
    top = _section(html, '<h2 id="verdict">', '<h2 id="warnings">')
    assert "Loses to PCA" in top and f"FVU {verdict['fvu']:.4f}" in top and f"FVU {verdict['pca_fvu']:.4f}" in top
    assert "All 6 latents are in use." in top


def test_each_card_names_the_label_its_latent_is_purest_for(digits_run, digits):
    from lucidae.metrics import label_purity

    run_dir, page, record = digits_run
    html, doc = page.read_text(), _metrics(run_dir)
    test = np.asarray(record["test_indices"])
    Z = load(run_dir).transform(digits.X[test])
    ref = label_purity(Z, digits.y[test])
    for i in range(6):
        card = _card(html, i)
        share, label = ref["purity"][i], ref["label"][i]
        assert doc["latents"][i]["label_purity"] == pytest.approx(share)
        assert doc["latents"][i]["label"] == label
        if share >= 2 * ref["chance"]:
            assert f"Responds to label {label}: {share:.0%} of its {ref['n_top']} most active samples" in card
        else:
            assert f"No single label: at most {share:.0%} of its {ref['n_top']}" in card
        best = int(np.argsort(-Z[:, i], kind="stable")[0])  # the top-activating sample is labelled with its label
        assert f"<strong>{digits.y[test][best]}</strong><br>#{test[best]}</figcaption>" in card
        assert 'alt="colour scale from' in card and "(1st pct)" in card and "latent value" in card


def test_pca_angle_is_said_in_words_that_do_not_reassure(digits_run):
    doc = _metrics(digits_run[0])
    angle, note = doc["metrics"]["pca_angle_max"], doc["notes"]["pca_angle_max"]
    assert "within" not in note and "(0: the same subspace; 90: orthogonal)" in note
    assert ("nearly orthogonal" in note) == (angle >= 60)


def test_worst_reconstructed_samples_are_shown_with_their_error(digits_run, digits):
    run_dir, page, record = digits_run
    doc = _metrics(run_dir)
    test = np.asarray(record["test_indices"])
    X = digits.X[test].astype(np.float64)
    R = load(run_dir).reconstruct(digits.X[test]).astype(np.float64)
    errors = ((X - R) ** 2).sum(axis=1) / (((X - X.mean(axis=0)) ** 2).sum() / len(X))  # slow: one sample each
    assert errors.mean() == pytest.approx(doc["metrics"]["fvu"], rel=1e-4)
    worst = np.argsort(-errors)[:5]
    assert [w["index"] for w in doc["worst_samples"]] == test[worst].tolist()
    assert [w["error"] for w in doc["worst_samples"]] == pytest.approx(errors[worst].tolist(), rel=1e-4)
    assert [w["label"] for w in doc["worst_samples"]] == digits.y[test[worst]].tolist()
    section = _section(page.read_text(), '<h3 id="worst">', '<h2 id="warnings">')
    for w in doc["worst_samples"]:
        assert f'alt="held-out sample #{w["index"]} over its reconstruction"' in section


def test_run_still_improving_at_its_last_epoch_is_warned(digits_run, tmp_path):
    import shutil

    from lucidae.train import History

    run_dir = tmp_path / "improving"
    shutil.copytree(digits_run[0], run_dir)
    est = load(run_dir)
    val = [0.08, 0.05, 0.04, 0.038, 0.036]  # best is the last: training stopped too soon
    est.history_ = History([{"epoch": i + 1, "loss": v, "val_loss": v} for i, v in enumerate(val)], best_epoch=5)
    est.save(run_dir)
    build_report(run_dir)
    doc = _metrics(run_dir)
    warning = next(w for w in doc["warnings"] if w["title"] == "Still improving")
    assert "epoch (5)" in warning["text"] and "5.3%" in warning["text"] and "warm_start" in warning["text"]
    assert doc["verdict"]["still_improving"] is True
    est.history_ = History([{"epoch": i + 1, "loss": v, "val_loss": v} for i, v in enumerate([*val, 0.037])])
    est.save(run_dir)
    build_report(run_dir)  # the best epoch is no longer the last: no warning
    assert "Still improving" not in _warning_titles(run_dir)
    assert _metrics(run_dir)["verdict"]["still_improving"] is False


def test_generation_section_only_for_a_generative_model(digits_run, vae_run):
    assert 'id="generation"' not in digits_run[1].read_text()  # a plain AutoEncoder cannot generate
    assert _metrics(digits_run[0])["generation"] is None
    assert '<h2 id="generation">Generation</h2>' in vae_run[1].read_text()


def test_tabular_cards_write_in_standard_deviations(tabular_run):
    from lucidae import explain
    from lucidae.datasets import load_dataset

    doc = _metrics(tabular_run)
    run = json.loads((tabular_run / "run.json").read_text())
    X = load_dataset(run["data_path"]).X[np.asarray(run["test_indices"])]
    direction = explain.latent_writes(load(tabular_run), X, latents=[0])[0].direction / X.std(axis=0)
    order = np.argsort(-np.abs(direction), kind="stable")
    names = load(tabular_run).feature_names_
    got = doc["latents"][0]["writes_standardised"]
    assert [w["feature"] for w in got] == [names[c] for c in order[: len(got)]]
    assert [w["sd"] for w in got] == pytest.approx(direction[order[: len(got)]].tolist(), rel=1e-4, abs=1e-6)
    card = html_lib.unescape(_card((tabular_run / "report.html").read_text(), 0))
    assert f"Writes most: {names[order[0]]} {direction[order[0]]:+.3g} sd" in card
    assert "writes (in feature standard deviations)" in card
    assert '<div class="scroll"><table>' in card  # a wide table scrolls inside its card instead of spilling over
    assert '<h3 id="worst">' in (tabular_run / "report.html").read_text()


OVERFLOW_PROBE = """<script>
window.addEventListener("load", function () {
  var spill = [];
  document.querySelectorAll(".card").forEach(function (card) {
    var right = card.getBoundingClientRect().right;
    Array.prototype.forEach.call(card.children, function (el) {
      var over = el.getBoundingClientRect().right - right;
      if (over > 1) spill.push(card.id + " " + el.tagName + " " + Math.round(over));
    });
  });
  var out = document.createElement("pre");
  out.id = "lucidae-probe";
  out.textContent = JSON.stringify(spill);
  document.body.appendChild(out);
});
</script>"""


@pytest.mark.browser
def test_wide_tables_stay_inside_their_cards(tmp_path):
    from test_report_browser import _run_chromium

    from lucidae.datasets import load_dataset

    rng = np.random.default_rng(0)
    names = [f"a_rather_long_feature_name_{j}" for j in range(8)]
    X = rng.random((200, 8)) * np.array([1, 10, 100, 1000, 1e4, 1, 1, 1])
    csv = tmp_path / "wide.csv"
    csv.write_text(",".join(names) + "\n" + "\n".join(",".join(f"{v:.4f}" for v in row) for row in X) + "\n")
    ds = load_dataset(str(csv))
    est = AutoEncoder(hidden_dims=(), latent_dim=3, epochs=2, verbose=0, random_state=0)
    out, _ = fit_run(est, ds, DataConfig(data=str(csv)), tmp_path / "wide", quiet=True)
    page = build_report(out)
    probed = page.with_name("probe.html")
    probed.write_text(page.read_text().replace("<head>", "<head>\n" + OVERFLOW_PROBE, 1))
    result = _run_chromium(["--window-size=1200,1600", "--virtual-time-budget=10000", "--dump-dom", probed.as_uri()],
                           tmp_path)  # fmt: skip
    match = re.search(r'<pre id="lucidae-probe">(.*?)</pre>', result.stdout, re.S)
    assert match, result.stderr[-2000:]
    assert json.loads(html_lib.unescape(match.group(1))) == []
