"""How long ``lucidae --help`` takes to answer, against the floors it cannot go below.

Target (issue "One house, no circles"): well under 1.5 s on the 2-core development machine.
Runs each command ``--repeats`` times, interleaved (the machine is shared), and prints
the medians, wall seconds from process start to exit:

- ``lucidae --help``: the real console script's module (``python -m lucidae --help``);
- the floor: a typer app with one command answering ``--help``, in the same interpreter;
- what the CLI would pay if it imported the estimators: ``python -c "import torch"``.

The CLI imports only configs, typer and its own option plumbing at start-up; every
command imports what it runs. ``tests/test_architecture.py`` checks that torch is not
imported (a fact, not a timing); this script measures the time.

Run: ``python benchmarks/cli_startup.py``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

FLOOR = """
import typer
app = typer.Typer()
@app.command()
def hello(name: str = "x"):
    pass
@app.command()
def bye():
    pass
app()
"""

COMMANDS = {
    "lucidae --help": [sys.executable, "-m", "lucidae", "--help"],
    "lucidae train --help": [sys.executable, "-m", "lucidae", "train", "--help"],
    "typer floor (2 commands, --help)": [sys.executable, "-c", FLOOR, "--help"],
    "import torch": [sys.executable, "-c", "import torch"],
}


def seconds(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for command in COMMANDS.values():  # warm the file cache once
        seconds(command)
    for _ in range(args.repeats):
        for name, command in COMMANDS.items():
            times[name].append(seconds(command))
    median = {name: statistics.median(values) for name, values in times.items()}
    floor = median["typer floor (2 commands, --help)"]
    print(f"{'command':36s} {'median s':>9s} {'x floor':>8s}")
    for name, value in median.items():
        print(f"{name:36s} {value:9.3f} {value / floor:8.2f}")
    verdict = "meets" if median["lucidae --help"] < 1.5 else "misses"
    print(f"lucidae --help {verdict} the 1.5 s target ({median['lucidae --help']:.3f} s)")


if __name__ == "__main__":
    main()
