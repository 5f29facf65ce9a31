"""Open the report and the sweep page in headless Chromium, as a reader would.

A probe script is injected at the top of a copy of each page; it records script
errors, Content-Security-Policy violations, console.error calls and alert() calls, and
after the load event writes them, with every image's load state, into the DOM, which
``chromium --dump-dom`` prints. Chromium's own log of console messages (stderr) must be
empty too, for the probed copy and for the unmodified page. A screenshot of the unmodified page must not be blank.
Without chromium the tests skip, except under CI (the CI variable set), where they fail:
``.ci/run`` installs it.
"""

import html as html_lib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from lucidae import AutoEncoder
from lucidae.cli import fit_run
from lucidae.config import DataConfig
from lucidae.datasets import Dataset
from lucidae.report import build_report
from lucidae.report.sweep import SweepConfig, run_sweep

pytestmark = pytest.mark.browser

pytest.importorskip("matplotlib")
pytest.importorskip("jinja2")

XSS_FEATURE = "<script>alert(1)</script>"
XSS_RUN = "run <b>bold</b> & <img src=x onerror=alert(2)>".replace("/", "")

PROBE = """<script>
(function () {
  var errors = [];
  window.addEventListener("error", function (e) {
    var t = e.target;
    errors.push("error: " + (e.message || (t && (t.src || t.href)) || "a resource failed"));
  }, true);
  window.addEventListener("securitypolicyviolation", function (e) {
    errors.push("csp: " + e.violatedDirective + " " + e.blockedURI);
  });
  console.error = function () { errors.push("console.error: " + Array.prototype.join.call(arguments, " ")); };
  window.alert = function (m) { errors.push("alert: " + m); };
  window.addEventListener("load", function () {
    var images = Array.prototype.slice.call(document.images);
    var broken = images.filter(function (im) { return !im.complete || im.naturalWidth === 0; })
                       .map(function (im) { return im.alt || im.src.slice(0, 40); });
    var out = document.createElement("pre");
    out.id = "lucidae-probe";
    out.textContent = JSON.stringify({errors: errors, images: images.length, broken: broken,
                                      text: document.body.innerText});
    document.body.appendChild(out);
  });
})();
</script>"""


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed, but CI is set: browser tests must run there (see .ci/run).")
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    return path


def _run_chromium(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    cmd = [
        _chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",  # the page's console messages go to stderr as "...:CONSOLE..." lines
        "--v=0",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)


def _probe(page: Path, tmp_path: Path) -> dict:
    source = page.read_text(encoding="utf-8")
    assert source.count("<head>") == 1
    probed = page.with_name(page.stem + ".probe.html")
    probed.write_text(source.replace("<head>", "<head>\n" + PROBE, 1), encoding="utf-8")
    try:
        result = _run_chromium(["--virtual-time-budget=10000", "--dump-dom", probed.as_uri()], tmp_path)
    finally:
        probed.unlink()
    match = re.search(r'<pre id="lucidae-probe">(.*?)</pre>', result.stdout, re.S)
    assert match, f"the probe did not report; chromium said: {result.stderr[-2000:]}"
    report = json.loads(html_lib.unescape(match.group(1)))
    report["console"] = _console_lines(result.stderr)
    return report


def _console_lines(stderr: str) -> list[str]:
    """Messages the page wrote to the console (errors, CSP violations), from chromium's log."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def _screenshot_is_not_blank(page: Path, tmp_path: Path) -> None:
    from PIL import Image

    shot = tmp_path / (page.stem + ".png")
    result = _run_chromium(
        ["--hide-scrollbars", "--window-size=1200,1600", f"--screenshot={shot}", page.as_uri()], tmp_path
    )
    assert shot.is_file(), result.stderr[-2000:]
    assert _console_lines(result.stderr) == []  # the unmodified page, without the probe
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float64)
    assert pixels.shape == (1600, 1200)
    assert pixels.std() > 10  # a blank (or single-colour) page has none
    assert (pixels < 128).mean() > 0.01  # some dark ink: text and pictures


@pytest.fixture(scope="module")
def pages(tmp_path_factory, digits):
    root = tmp_path_factory.mktemp("browser")
    image_run, _ = fit_run(
        AutoEncoder(hidden_dims=(16,), latent_dim=4, epochs=2, verbose=0, random_state=0),
        digits,
        DataConfig(data="digits"),
        root / "digits",
        quiet=True,
    )
    rng = np.random.default_rng(0)
    table = Dataset(
        X=rng.random((200, 4)),
        feature_names=[XSS_FEATURE, "a&b", 'width "cm"', "$price"],
        name="table <i>x</i>",
        description="noise with <b>hostile</b> names",
    )
    table_run, _ = fit_run(
        AutoEncoder(hidden_dims=(), latent_dim=2, epochs=2, verbose=0, random_state=0),
        table,
        DataConfig(data="unused"),
        root / XSS_RUN,
        quiet=True,
    )
    cfg = SweepConfig(
        latent_dims=(2,),
        depths=(0,),
        activations=("relu", "linear"),
        weight_decays=(),
        l1_coefficients=(),
        topk_ks=(),
        betas=(),
        epochs=2,
        max_latents=2,
    )
    return {
        "image": build_report(image_run),
        "table": build_report(table_run, dataset=table),
        "sweep": run_sweep(cfg, root / "sweep", log=lambda line: None),
    }


@pytest.mark.parametrize("kind", ["image", "table", "sweep"])
def test_page_loads_cleanly(pages, kind, tmp_path):
    result = _probe(pages[kind], tmp_path)
    assert result["errors"] == [] and result["console"] == []
    assert result["images"] >= (0 if kind == "sweep" else 2)  # the sweep's charts are inline SVG, not images
    assert kind != "sweep" or pages[kind].read_text().count('<svg class="sweep-chart"') == 2
    assert result["broken"] == []
    _screenshot_is_not_blank(pages[kind], tmp_path)


def test_hostile_names_are_shown_as_text(pages, tmp_path):
    result = _probe(pages["table"], tmp_path)
    assert result["errors"] == [] and result["console"] == []  # nothing executed, nothing blocked
    text = result["text"]
    assert XSS_FEATURE in text  # the reader sees the name as written ...
    assert XSS_RUN in text
    assert "<b>hostile</b>" in text
    source = pages["table"].read_text()
    assert XSS_FEATURE not in source and "<img src=x" not in source  # ... because the page escaped it
