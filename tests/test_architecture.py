"""The layout holds: no import circle, few imports inside functions, small modules, old import paths alive.

docs/architecture.md describes the layers; import-linter (``make lint``) enforces which
may import which. These tests check what import-linter does not: circles through
imports placed inside functions too, how many such imports there are, module sizes,
that ``lucidae --help`` needs no torch, and that every name still imports from where
users imported it before the restructuring.
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import lucidae

ROOT = Path(lucidae.__file__).parent

MAX_LINES = 900
"""No module of the package is longer than this."""

MAX_LAZY_IMPORTS = 8
"""Imports of lucidae's own modules placed inside functions, outside the CLI (whose commands import lazily
so that it starts without torch)."""


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _resolve(name: str) -> str | None:
    """The longest lucidae module that ``name`` (a module or a name inside one) refers to."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str) -> list[tuple[str, int, bool]]:
    """(imported lucidae module, line, inside a function) for every import in ``module``, TYPE_CHECKING aside."""
    path = MODULES[module]
    tree = ast.parse(path.read_text())
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[tuple[str, int, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                for other in child.orelse:
                    visit(other, in_function)
                continue
            inside = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(child, ast.Import):
                targets = [a.name for a in child.names]
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")[: len(package.split(".")) - (child.level - 1)]
                    base = ".".join(anchor + ([child.module] if child.module else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in child.names]
            else:
                visit(child, inside)
                continue
            for target in targets:
                resolved = _resolve(target) if target.startswith("lucidae") else None
                if resolved and resolved != module:
                    found.append((resolved, child.lineno, in_function))

    visit(tree, False)
    return found


GRAPH = {m: _imports(m) for m in MODULES}


def test_the_import_walk_sees_imports_inside_functions():
    # the CLI imports the estimators inside its commands; a walk that missed those would find no circle anywhere
    lazy = [target for target, _, inside in GRAPH["lucidae.cli.app"] if inside]
    assert "lucidae.runs" in lazy and "lucidae.estimators" in lazy


def test_no_import_circle_among_the_modules():
    # Tarjan's strongly connected components over every import, function-level ones included
    edges = {m: sorted({t for t, _, _ in imports}) for m, imports in GRAPH.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for module in edges:
        if module not in index:
            connect(module)
    assert circles == []


def test_few_imports_of_lucidae_inside_functions_outside_the_cli():
    lazy = sorted(
        {(m, line) for m, imports in GRAPH.items() for _, line, inside in imports if inside}
        - {(m, line) for m, imports in GRAPH.items() if m.startswith("lucidae.cli") for _, line, _ in imports}
    )
    assert len(lazy) <= MAX_LAZY_IMPORTS, lazy


def test_no_module_is_longer_than_the_limit():
    long = {m: n for m, p in MODULES.items() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def test_the_cli_starts_without_torch():
    # `lucidae --help` must answer fast (benchmarks/cli_startup.py times it); torch alone takes seconds to import
    code = "import sys, lucidae.cli; print(sorted(m for m in ('torch', 'sklearn', 'matplotlib') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


OLD_PATHS = {
    "lucidae": ["AnomalyDetector", "AutoEncoder", "BetaTCVAE", "ConvAutoEncoder", "LinearAutoEncoder", "LucidaeError"]
    + ["SparseAutoEncoder", "TopKAutoEncoder", "VAE", "__version__", "load"],
    "lucidae.estimators": ["ESTIMATORS", "ESTIMATOR_ONLY", "BaseAutoEncoder", "NotAnEstimatorError", "estimator_for"]
    + ["init_seed", "run_score", "load", "AutoEncoder", "VAE", "BetaTCVAE", "ConvAutoEncoder"],
    "lucidae.cli": ["app", "main", "info", "fit_run", "estimator_from_configs", "CLI_CONFIGS", "CLI_EXCLUDE"]
    + ["_cli_default", "config_parameters", "RUN_FILE"],
    "lucidae.validation": ["check_numeric", "check_finite", "check_npy", "check_npz", "read_safetensors_header"]
    + ["expected_tensors", "check_tensors", "validate_saved_config", "CONFIG_KEYS"],
    "lucidae.io": ["read_run_record", "write_json", "write_model_dir", "read_config", "read_tensors"],
    "lucidae.report": ["build_report"],
    "lucidae.report.sweep": ["SweepConfig", "grid", "pareto_front", "run_sweep", "write_sweep_page"],
    "lucidae.activations": ["record_activations"],
    "lucidae.applications": ["AnomalyDetector", "AnomalyExplanation", "TextTopics", "load_detector", "load_topics"],
    "lucidae.applications.anomaly": ["AnomalyConfig", "AnomalyDetector", "default_estimator", "load_detector"],
    "lucidae.applications.text": ["TopicsConfig", "TextTopics", "read_documents", "load_topics"],
    "lucidae.applications.compress": ["psnr"],
    "lucidae.metrics": ["fvu", "mig", "collapsed_latents", "COLLAPSE_VARIANCE", "FidelityAccumulator"]
    + ["activation_density", "discretize", "entropy", "mutual_information", "psnr"],
    "lucidae.train": ["History", "train", "seeded", "resolve_device", "evaluate", "split_validation", "EVAL_BATCH"]
    + ["TrainingInterrupted", "resolve_seed", "auto_epochs", "lr_at"],
    "lucidae.models.conv": ["ConvolutionalAutoEncoder", "check_conv_config"],
}
"""Names users imported before the restructuring, by the module they imported them from."""


@pytest.mark.parametrize("module", sorted(OLD_PATHS))
def test_every_name_still_imports_from_its_old_home(module):
    imported = importlib.import_module(module)
    missing = [name for name in OLD_PATHS[module] if not hasattr(imported, name)]
    assert missing == []


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("lucidae.validation.check_numeric", "lucidae.arrays.check_numeric"),
        ("lucidae.validation.validate_saved_config", "lucidae.schema.validate_saved_config"),
        ("lucidae.cli.fit_run", "lucidae.runs.fit_run"),
        ("lucidae.cli.estimator_from_configs", "lucidae.runs.estimator_from_configs"),
        ("lucidae.report.sweep.run_sweep", "lucidae.sweep.run_sweep"),
        ("lucidae.report.sweep.SweepConfig", "lucidae.config.SweepConfig"),
        ("lucidae.applications.anomaly.AnomalyConfig", "lucidae.config.AnomalyConfig"),
        ("lucidae.activations.record_activations", "lucidae.record.record_activations"),
        ("lucidae.estimators.load", "lucidae.estimators.persist.load"),
        ("lucidae.AutoEncoder", "lucidae.estimators.dense.AutoEncoder"),
        ("lucidae.models.conv.check_conv_config", "lucidae.config.check_conv_config"),
    ],
)
def test_an_old_path_is_the_same_object_as_the_new_home(old, new):
    def get(path: str):
        module, _, name = path.rpartition(".")
        return getattr(importlib.import_module(module), name)

    assert get(old) is get(new)


def test_model_family_names_in_the_config_are_the_modules_families():
    from lucidae.config import MODEL_FAMILIES
    from lucidae.models import MODELS

    assert tuple(MODELS) == MODEL_FAMILIES
