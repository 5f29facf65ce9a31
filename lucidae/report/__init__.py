"""Reports: what a trained autoencoder does, on one self-contained HTML page.

- :func:`build_report` turns a run folder (``lucidae train --out RUN``) into
  ``RUN/report.html`` and ``RUN/metrics.json``.
- :mod:`~lucidae.report.plots` draws the pictures; :mod:`~lucidae.report.evidence` gathers
  the numbers the page shows.

The sweep, which trains a grid over the levers and charts it with these pieces, is
:mod:`lucidae.sweep` (``lucidae.report.sweep`` still re-exports it).

matplotlib and jinja2 (the ``report`` extra) are imported only when a report is built.

Examples
--------
>>> from lucidae.report import build_report
>>> build_report("runs/digits")  # doctest: +SKIP
PosixPath('runs/digits/report.html')
"""

from lucidae.report.build import build_report

__all__ = ["build_report"]
