"""The report's live decoder and clickable map, driven in headless Chromium through Playwright.

Each run kind (a dense autoencoder on digits, a dense one on a table of mixed scales, a
TopK SAE, a VAE and a convolutional model) is trained once per module; every test opens
its page in a fresh browser context that aborts and counts any request other than the
page itself, and collects console errors and script errors. Without chromium or
Playwright the browser tests skip, except under CI (the CI variable set), where they fail.
"""

import base64
import hashlib
import json
import os
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from lucidae import VAE, AutoEncoder, ConvAutoEncoder, TopKAutoEncoder
from lucidae.config import DataConfig
from lucidae.datasets import Dataset
from lucidae.estimators import load
from lucidae.report import build_report
from lucidae.report import live as live_mod
from lucidae.runs import fit_run

pytest.importorskip("matplotlib")
pytest.importorskip("jinja2")

LOAD_SECONDS = 5.0
"""A page must be loaded, its script run and its first sample drawn within this."""
POSITIONS = 25
"""Slider positions each latent is moved through."""


def _chromium_path() -> str:
    path = "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else shutil.which("chromium")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed, but CI is set: browser tests must run there (see .ci/run).")
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    return path


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("playwright is not installed, but CI is set: install the dev extra.")
        pytest.skip("playwright is not installed (pip install -e .[dev])")
    path = _chromium_path()
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=path, args=["--headless", "--no-sandbox", "--disable-gpu"])
        yield chromium
        chromium.close()


class Opened:
    """A page opened in a fresh context, with what it asked for and what it complained about."""

    def __init__(self, browser, path: Path):
        self.url = path.resolve().as_uri()
        self.context = browser.new_context()
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.context.route("**", self._route)
        self.page = self.context.new_page()
        self.page.on("console", lambda m: m.type == "error" and self.errors.append("console: " + m.text))
        self.page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        start = time.perf_counter()
        self.page.goto(self.url, wait_until="load")
        self.page.wait_for_function("window.lucidaeLive !== undefined", timeout=LOAD_SECONDS * 1000)
        self.seconds = time.perf_counter() - start

    def _route(self, route):
        url = route.request.url
        if url == self.url or url.startswith("data:"):
            route.continue_()
        else:
            self.requests.append(url)
            route.abort()

    def js(self, script: str, arg=None):
        return self.page.evaluate(script, arg)

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def open_page(browser):
    opened: list[Opened] = []

    def _open(path: Path) -> Opened:
        opened.append(Opened(browser, path))
        return opened[-1]

    yield _open
    for o in opened:
        o.close()


def _table() -> Dataset:
    rng = np.random.default_rng(0)
    factors = rng.normal(size=(400, 2))
    mix = np.array([[1.0, 0.2], [0.5, -1.0], [-0.3, 0.8], [1.0, 1.0], [0.0, 1.0], [1.0, 0.0]])
    scales = np.array([0.01, 1.0, 5.0, 100.0, 2000.0, 0.5])
    offsets = np.array([0.0, 10.0, -3.0, 1000.0, 5e4, 0.0])
    X = (factors @ mix.T + 0.1 * rng.normal(size=(400, 6))) * scales + offsets
    return Dataset(X=X, feature_names=["tiny", "unit", "five", "</script><b>x", "huge", "half"], name="mixed")


def _run(root: Path, name: str, est, dataset: Dataset, spec: str) -> dict:
    run_dir, record = fit_run(est, dataset, DataConfig(data=spec), root / name, quiet=True)
    page = build_report(run_dir, dataset=dataset)
    X = np.asarray(dataset.X, dtype=np.float64)
    return {"page": page, "est": load(run_dir), "X": X, "X_eval": X[np.asarray(record["test_indices"])]}


@pytest.fixture(scope="module")
def digits_ae(tmp_path_factory, digits):
    est = AutoEncoder(hidden_dims=(32,), latent_dim=8, epochs=5, verbose=0, random_state=0)
    return _run(tmp_path_factory.mktemp("live"), "digits_ae", est, digits, "digits")


@pytest.fixture(scope="module")
def table_ae(tmp_path_factory):
    # Two hidden layers and GELU: the page's erf and its multi-layer path are exercised.
    est = AutoEncoder(hidden_dims=(16, 8), latent_dim=3, activation="gelu", output_activation="linear", epochs=30,
                      verbose=0, random_state=0)  # fmt: skip
    return _run(tmp_path_factory.mktemp("live"), "table_ae", est, _table(), "unused")


@pytest.fixture(scope="module")
def topk(tmp_path_factory, digits):
    est = TopKAutoEncoder(latent_dim=16, k=4, epochs=5, verbose=0, random_state=0)
    return _run(tmp_path_factory.mktemp("live"), "topk", est, digits, "digits")


@pytest.fixture(scope="module")
def vae(tmp_path_factory, digits):
    est = VAE(hidden_dims=(32,), latent_dim=4, beta=0.1, epochs=10, verbose=0, random_state=0)
    return _run(tmp_path_factory.mktemp("live"), "vae", est, digits, "digits")


@pytest.fixture(scope="module")
def conv(tmp_path_factory, digits):
    est = ConvAutoEncoder(latent_dim=4, conv_channels=(4, 8), hidden_dims=(), epochs=1, verbose=0, random_state=0)
    return _run(tmp_path_factory.mktemp("live"), "conv", est, digits, "digits")


LIVE_KINDS = ["digits_ae", "table_ae", "topk", "vae"]

MOVE = """([i, n]) => {
  const s = document.getElementById("lucidae-slider-" + i), c = document.getElementById("lucidae-live-canvas");
  const lo = parseFloat(s.min), hi = parseFloat(s.max), out = [];
  for (let k = 0; k < n; k++) {
    s.value = String(lo + (hi - lo) * k / (n - 1));
    s.dispatchEvent(new Event("input", {bubbles: true}));
    out.push([c.toDataURL(), c.dataset.values, c.dataset.code]);
  }
  return out;
}"""


def _close(js_values, est, codes, X) -> None:
    """The page's decoded values equal ``inverse_transform`` of the same codes to 1e-4 (per feature's spread)."""
    expected = est.inverse_transform(np.asarray(codes, dtype=np.float32)).astype(np.float64)
    spread = np.maximum(X.std(axis=0), 1.0)  # a column in thousands is compared in its own units / its spread
    np.testing.assert_array_less(np.abs(np.asarray(js_values, dtype=np.float64) - expected) / spread, 1e-4)


@pytest.mark.browser
@pytest.mark.parametrize("kind", LIVE_KINDS)
def test_sliders_redraw_what_the_model_decodes(kind, request, open_page):
    run = request.getfixturevalue(kind)
    est, X = run["est"], run["X"]
    o = open_page(run["page"])
    assert o.seconds < LOAD_SECONDS
    assert o.js("window.lucidaeLive.live") is True
    n_sliders = o.page.locator("#lucidae-sliders input[type=range]").count()
    assert n_sliders == est.module_.latent_dim
    enabled = [i for i in range(n_sliders) if o.page.locator(f"#lucidae-slider-{i}").is_enabled()]
    assert len(enabled) >= max(1, n_sliders // 2)
    for i in enabled:
        drawn = o.js(MOVE, [i, POSITIONS])
        pictures = {hashlib.sha256(url.encode()).hexdigest() for url, _, _ in drawn}
        assert len(pictures) >= 10, f"latent {i} drew {len(pictures)} distinct pictures"
        values = [json.loads(v) for _, v, _ in drawn]
        codes = [json.loads(c) for _, _, c in drawn]
        assert len({round(c[i], 9) for c in codes}) == POSITIONS
        _close(values, est, codes, X)
    # The way a reader moves it: Playwright sets the range input as a user would.
    slider = o.page.locator(f"#lucidae-slider-{enabled[0]}")
    target = float(slider.get_attribute("max"))
    slider.fill(str(target))
    code = json.loads(o.page.locator("#lucidae-live-canvas").get_attribute("data-code"))
    assert code[enabled[0]] == pytest.approx(target)
    assert o.requests == [] and o.errors == []


@pytest.mark.browser
@pytest.mark.parametrize("kind", LIVE_KINDS)
def test_decode_equals_inverse_transform(kind, request, open_page):
    run = request.getfixturevalue(kind)
    est, X = run["est"], run["X"]
    Z = est.transform(X[:300]).astype(np.float64)
    rng = np.random.default_rng(1)
    codes = Z.mean(axis=0) + rng.normal(size=(20, Z.shape[1])) * (Z.std(axis=0) + 0.1)
    codes = np.vstack([codes, Z[:5]])
    o = open_page(run["page"])
    js = o.js("(codes) => codes.map((c) => window.lucidaeLive.decode(c))", codes.tolist())
    _close(js, est, codes, X)
    assert o.requests == [] and o.errors == []


def _clickable_points(o: Opened, n: int) -> list[dict]:
    """``n`` map points that are on top at their centre, so a real click lands on them."""
    return o.js(
        """(n) => {
          const out = [];
          for (const p of document.querySelectorAll("#lucidae-map-svg circle")) {
            const r = p.getBoundingClientRect(), x = r.left + r.width / 2, y = r.top + r.height / 2;
            if (document.elementFromPoint(x, y) === p) out.push({i: +p.dataset.i, x: x, y: y});
            if (out.length === n) break;
          }
          return out;
        }""",
        n,
    )


@pytest.mark.browser
@pytest.mark.parametrize("kind", [*LIVE_KINDS, "conv"])
def test_map_click_shows_a_sample_and_a_second_compares(kind, request, open_page):
    run = request.getfixturevalue(kind)
    est, X = run["est"], run["X"]
    o = open_page(run["page"])
    o.page.locator("#lucidae-map-svg").scroll_into_view_if_needed()
    first, second = _clickable_points(o, 2)
    o.page.mouse.click(first["x"], first["y"])
    a = int(o.page.locator("#lucidae-map-detail").get_attribute("data-sample"))
    assert f"#{a}" in o.page.locator("#lucidae-map-caption").inner_text()
    shown = [o.js(f"document.getElementById('{c}').toDataURL()") for c in ("lucidae-map-original", "lucidae-map-recon")]
    assert all(len(s) > 100 for s in shown)
    assert o.page.locator("#lucidae-map-compare").get_attribute("data-pair") == ""
    code_a = est.transform(X[a : a + 1]).astype(np.float64)[0]
    if o.js("window.lucidaeLive.live"):
        # The sample became the sliders' base: the drawn sample is its reconstruction.
        base = json.loads(o.page.locator("#lucidae-live-canvas").get_attribute("data-code"))
        np.testing.assert_allclose(base, code_a, atol=1e-4)
        _close([json.loads(o.page.locator("#lucidae-live-canvas").get_attribute("data-values"))], est, [base], X)
    o.page.mouse.click(second["x"], second["y"])
    b = int(o.page.locator("#lucidae-map-detail").get_attribute("data-sample"))
    assert b != a
    assert json.loads(o.page.locator("#lucidae-map-compare").get_attribute("data-pair")) == [a, b]
    rows = o.page.locator("#lucidae-compare-table tr")
    assert rows.count() >= 2
    code_b = est.transform(X[b : b + 1]).astype(np.float64)[0]
    latent, va, vb = (o.page.locator("#lucidae-compare-table tr").nth(1).locator("td").nth(k).inner_text()
                      for k in range(3))  # fmt: skip
    assert float(va) == pytest.approx(code_a[int(latent)], abs=2e-3, rel=1e-2)
    assert float(vb) == pytest.approx(code_b[int(latent)], abs=2e-3, rel=1e-2)
    assert o.requests == [] and o.errors == []


@pytest.mark.browser
def test_conv_page_says_its_decoder_is_not_live(conv, open_page):
    o = open_page(conv["page"])
    assert o.seconds < LOAD_SECONDS
    assert o.js("window.lucidaeLive.live") is False
    assert "not run in the page" in o.page.locator("#lucidae-live-note").inner_text()
    assert o.page.locator("#lucidae-sliders").count() == 0
    assert "traversal (values" in o.page.content()  # the static traversals are kept
    assert o.requests == [] and o.errors == []


@pytest.mark.browser
def test_table_bars_are_in_standardised_units(table_ae, open_page):
    o = open_page(table_ae["page"])
    assert "standardised units" in o.page.locator("#lucidae-live").inner_text()
    values = json.loads(o.page.locator("#lucidae-live-canvas").get_attribute("data-values"))
    cells = o.page.locator("#lucidae-live-table tr").nth(5).locator("td").all_inner_texts()  # the "huge" column
    assert cells[0] == "huge"
    X = table_ae["X_eval"]  # the page standardises by the evaluation samples' mean and std
    from_page = float(cells[2])
    assert from_page == pytest.approx((values[4] - X.mean(axis=0)[4]) / X.std(axis=0)[4], abs=2e-3, rel=1e-2)
    assert "</script><b>x" in o.page.locator("#lucidae-live-table").inner_text()  # a hostile name shown as text
    assert o.requests == [] and o.errors == []


def test_page_states_the_weights_size_and_allows_only_its_script(digits_ae):
    html = digits_ae["page"].read_text()
    est = digits_ae["est"]
    nbytes = sum(4 * p.numel() for p in est.module_.decoder.parameters()) + 8 * est.n_features_in_
    assert f"take {nbytes / 1024:.1f} kB of this page" in html
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', html).group(1)
    assert "script-src &#39;sha256-" in csp and "unsafe-inline&#39;; script" not in csp
    scripts = re.findall(r"<script>(.*?)</script>", html, re.S)
    assert len(scripts) == 1
    digest = base64.b64encode(hashlib.sha256(scripts[0].encode()).digest()).decode()
    assert live_mod.script_hash() == f"'sha256-{digest}'"  # the CSP allows exactly the script the page holds
    assert "</script><b>" not in html.split('id="lucidae-live-data">', 1)[1].split("</script>", 1)[0]


def test_large_decoders_fall_back_to_the_static_traversals(digits_ae, monkeypatch):
    from types import SimpleNamespace

    est, X = digits_ae["est"], digits_ae["X"][:50]
    Z = est.transform(X)
    ev = SimpleNamespace(X_eval=X, recon=est.reconstruct(X), Z=Z, eval_idx=np.arange(50))
    lmap = SimpleNamespace(coords=Z[:, :2], indices=np.arange(50), color=None)
    assert live_mod.live_context(est, ev, lmap)["live"]
    monkeypatch.setattr(live_mod, "MAX_LIVE_WEIGHT_BYTES", 1000)
    ctx = live_mod.live_context(est, ev, lmap)
    assert not ctx["live"] and "above the" in ctx["note"] and ctx["weight_text"] in ctx["note"]
    assert '"layers"' not in str(ctx["json"])


@pytest.mark.parametrize(
    "activation", ["relu", "linear", "sigmoid", "tanh", "gelu", "leaky_relu", "softplus", "elu", "silu"]
)
@pytest.mark.parametrize("tied", [False, True])
def test_exported_steps_match_the_module(activation, tied):
    import torch

    from lucidae.config import ModelConfig
    from lucidae.models.dense import DenseAutoEncoder

    torch.manual_seed(0)
    cfg = ModelConfig(input_dim=7, hidden_dims=(5, 4), latent_dim=3, activation=activation, tied=tied,
                      output_activation="tanh")  # fmt: skip
    module = DenseAutoEncoder(cfg)
    z = torch.randn(6, 3) * 3
    steps, _ = live_mod.decoder_steps(module)
    np.testing.assert_allclose(live_mod.run_steps(steps, z.numpy()), module.decode(z).detach().numpy(), atol=1e-5)


@pytest.mark.parametrize(
    "cfg",
    [
        {"model": "linear"},
        {"model": "sparse"},
        {"model": "topk", "k": 2},
        {"model": "jumprelu"},
        {"model": "vae", "likelihood": "bernoulli"},
        {"model": "vae", "likelihood": "gaussian", "output_activation": "linear"},
    ],
    ids=lambda cfg: "-".join(str(v) for v in cfg.values()),
)
def test_exported_steps_match_every_family(cfg):
    import torch

    from lucidae.config import ModelConfig
    from lucidae.models import MODELS

    torch.manual_seed(0)
    config = ModelConfig(input_dim=7, hidden_dims=(5,), latent_dim=4, **cfg)
    module = MODELS[config.model](config)
    with torch.no_grad():  # a centre and biases away from zero, so forgetting one shows
        for p in module.parameters():
            p.add_(0.3)
        for b in module.buffers():
            if b.is_floating_point():  # the linear model's centre (SAEs count steps in integer buffers)
                b.add_(0.7)
    z = torch.randn(6, 4) * 2
    steps, _ = live_mod.decoder_steps(module)
    np.testing.assert_allclose(live_mod.run_steps(steps, z.numpy()), module.decode(z).detach().numpy(), atol=1e-5)


@pytest.mark.browser
def test_every_activation_decodes_in_the_browser(open_page, tmp_path):
    from types import SimpleNamespace

    from lucidae.report.build import render

    X = np.random.default_rng(0).normal(size=(60, 5)) * [1, 10, 0.1, 3, 1] + [0, 5, 0, -2, 1]
    activations = ["relu", "linear", "sigmoid", "tanh", "gelu", "leaky_relu", "softplus", "elu", "silu"]
    for k, act in enumerate(activations):
        est = AutoEncoder(hidden_dims=(6, 4), latent_dim=3, activation=act, tied=bool(k % 2), epochs=2, verbose=0,
                          output_activation=["linear", "tanh", "sigmoid"][k % 3], random_state=k).fit(X)  # fmt: skip
        Z = est.transform(X)
        ev = SimpleNamespace(X_eval=X, recon=est.reconstruct(X), Z=Z, eval_idx=np.arange(len(X)))
        ctx = live_mod.live_context(est, ev, SimpleNamespace(coords=Z[:, :2], indices=np.arange(len(X)), color=None))
        assert ctx["live"], act
        page = tmp_path / f"{act}.html"
        policy = f"default-src 'none'; style-src 'unsafe-inline'; script-src {ctx['csp']}"
        head = f'<meta http-equiv="Content-Security-Policy" content="{policy}">'
        body = render("_live.html.j2", {"live": ctx})  # the section alone, under the report's policy
        page.write_text(f"<!DOCTYPE html><html><head>{head}</head><body>{body}</body></html>")
        codes = Z[:4] * 3 - 1  # beyond the data's codes too: every branch of the activation
        o = open_page(page)
        _close(o.js("(codes) => codes.map((c) => window.lucidaeLive.decode(c))", codes.tolist()), est, codes, X)
        assert o.requests == [] and o.errors == [], act


def test_convolutional_decoders_are_not_exported():
    from lucidae.config import ModelConfig
    from lucidae.models import MODELS

    for model, extra in (("conv", {}), ("vae", {"architecture": "conv"})):
        cfg = ModelConfig(model=model, input_dim=256, image_shape=(16, 16), conv_channels=(4, 8), **extra)
        assert live_mod.decoder_steps(MODELS[model](cfg)) is None


@pytest.mark.browser
def test_a_mouse_drag_along_a_slider_redraws_as_it_goes(digits_ae, open_page):
    # A reader drags the thumb: real pointer events (down, moves, up), not a value set by script.
    o = open_page(digits_ae["page"])
    n = o.page.locator("#lucidae-sliders input[type=range]").count()
    i = next(i for i in range(n) if o.page.locator(f"#lucidae-slider-{i}").is_enabled())
    slider = o.page.locator(f"#lucidae-slider-{i}")
    slider.scroll_into_view_if_needed()
    box = slider.bounding_box()
    y = box["y"] + box["height"] / 2
    canvas = o.page.locator("#lucidae-live-canvas")
    o.page.mouse.move(box["x"] + 2, y)
    o.page.mouse.down()
    seen = []
    for k in range(1, 11):  # ten stops from the left end to the right end
        o.page.mouse.move(box["x"] + 2 + (box["width"] - 4) * k / 10, y, steps=3)
        seen.append((json.loads(canvas.get_attribute("data-code"))[i], canvas.get_attribute("data-values")))
    o.page.mouse.up()
    codes = [c for c, _ in seen]
    assert codes == sorted(codes) and codes[-1] > codes[0]  # the code follows the hand
    assert len({v for _, v in seen}) >= 5  # and the picture is redrawn on the way
    assert codes[-1] == pytest.approx(float(slider.get_attribute("max")), rel=0.05)
    assert o.requests == [] and o.errors == []
