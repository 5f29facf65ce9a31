"""Reports and sweeps: what a trained autoencoder does, on one self-contained HTML page.

- :func:`build_report` turns a run folder (``lucidae train --out RUN``) into
  ``RUN/report.html`` and ``RUN/metrics.json``.
- :func:`run_sweep` trains a grid over the levers (code size, depth and width, linear
  or ReLU, regularisation, sparsity, beta) and writes ``sweep.html``, which plots
  fidelity against interpretability and marks the Pareto front.

matplotlib and jinja2 (the ``report`` extra) are imported only when a report is built.

Examples
--------
>>> from lucidae.report import build_report
>>> build_report("runs/digits")  # doctest: +SKIP
PosixPath('runs/digits/report.html')
"""

from lucidae.report.build import build_report

__all__ = ["build_report"]
