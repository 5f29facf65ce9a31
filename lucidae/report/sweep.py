"""Former home of the sweep, kept so that old imports still work: it is :mod:`lucidae.sweep` now.

The sweep trains and prunes, which is not report code; it moved up a layer, beside the
other workflows, and this module only re-exports it.
"""

from lucidae.config import SweepConfig
from lucidae.sweep import SWEEP_JSON, SWEEP_PAGE, GridPoint, grid, pareto_front, run_sweep, write_sweep_page

__all__ = [
    "SWEEP_JSON",
    "SWEEP_PAGE",
    "GridPoint",
    "SweepConfig",
    "grid",
    "pareto_front",
    "run_sweep",
    "write_sweep_page",
]
