"""A data scientist's first hour, end to end through the CLI, on an ordinary table.

The CSV starts with a byte-order mark, has an id column, a text label column, features on
very different scales and a few missing cells (empty and "NA"): the missing cells are named
by their line in the file; training with --impute median --id-column --drop works; encode
without --data writes codes keyed by id; the report has no false scaling alarm; a saved
detector scores a second file.
"""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from lucidae import load
from lucidae.cli import app

runner = CliRunner()
COLUMNS = ["customer_id", "age", "income", "visits", "score", "ratio", "temperature", "label"]


def _write_table(path, n, seed, *, missing=(), outlier=None):
    """Rows from 2 hidden factors on very different scales; ``missing``: (row, column) cells left empty or NA."""
    rng = np.random.default_rng(seed)
    f = rng.normal(size=(n, 2))
    features = np.column_stack(
        [
            45 + 12 * f[:, 0],  # age, years
            52_000 + 15_000 * f[:, 1] + 4_000 * f[:, 0],  # income, currency
            np.round(np.exp(1 + 0.5 * f[:, 1])),  # visits, counts
            0.001 * (f[:, 0] - f[:, 1]),  # score, tiny units
            1 / (1 + np.exp(-f[:, 0])),  # ratio in (0, 1)
            -5 + 3 * np.tanh(f[:, 1]),  # temperature, negative
        ]
    ) + 0.01 * rng.normal(size=(n, 6))
    if outlier is not None:
        features[outlier] = [130, -90_000, 400, 0.5, 0.5, 40]
    lines = [",".join(COLUMNS)]
    for i in range(n):
        cells = [f"cust-{seed}-{i:04d}"] + [f"{v:.6g}" for v in features[i]] + [rng.choice(["churn", "stay"])]
        for row, column in missing:
            if row == i:
                cells[COLUMNS.index(column)] = "" if column == "age" else "NA"
        lines.append(",".join(cells))
    path.write_text("\ufeff" + "\n".join(lines) + "\n", encoding="utf-8")


@pytest.mark.slow
def test_a_table_from_csv_to_codes_report_and_scores(tmp_path):
    table = tmp_path / "customers.csv"
    _write_table(table, 300, seed=0, missing=[(4, "age"), (16, "income"), (40, "visits")])
    # data row i is on line i + 2 of the file (the header is line 1)
    read = ["--data", str(table), "--id-column", "customer_id", "--drop", "label"]
    quick = ["--latent-dim", "2", "--epochs", "40", "--verbose", "0"]

    refused = runner.invoke(app, ["train", *read, *quick, "--out", str(tmp_path / "refused")])
    assert refused.exit_code == 1, refused.output
    assert "Traceback" not in refused.output
    for where in ("line 6", "line 18", "'age'", "'income'"):
        assert where in refused.output, refused.output
    assert "impute" in refused.output  # says what to do

    run = tmp_path / "run"
    result = runner.invoke(app, ["train", *read, "--impute", "median", *quick, "--out", str(run)])
    assert result.exit_code == 0, result.output
    ae = load(run)
    assert list(ae.feature_names_) == COLUMNS[1:-1]  # no BOM in the first name, id and label left out
    assert ae.scaler_.kind == "standard"

    codes = tmp_path / "codes.csv"
    result = runner.invoke(app, ["encode", str(run), "--out", str(codes)])  # no --data: the run's own
    assert result.exit_code == 0, result.output
    lines = codes.read_text().splitlines()
    assert lines[0] == "customer_id,latent0,latent1" and len(lines) == 301
    assert [line.split(",")[0] for line in lines[1:3]] == ["cust-0-0000", "cust-0-0001"]
    values = np.array([[float(v) for v in line.split(",")[1:]] for line in lines[1:]])
    assert np.isfinite(values).all()  # the rows with missing cells were imputed, not dropped or NaN

    result = runner.invoke(app, ["report", str(run)])
    assert result.exit_code == 0, result.output
    metrics = json.loads((run / "metrics.json").read_text())
    titles = [w["title"] for w in metrics["warnings"]]
    assert "Scaling mismatch" not in titles, metrics["warnings"]
    assert (run / "report.html").stat().st_size > 10_000

    detector = tmp_path / "detector"
    fit = ["detect", *read, "--impute", "median", "--train-steps", "60", "--explain", "0", "--save", str(detector)]
    result = runner.invoke(app, fit)
    assert result.exit_code == 0, result.output

    new = tmp_path / "new_customers.csv"
    _write_table(new, 25, seed=1, missing=[(3, "income")], outlier=7)
    scores = tmp_path / "scores.csv"
    args = ["detect", "--model", str(detector), "--data", str(new), "--out", str(scores), "--explain", "1"]
    result = runner.invoke(app, args)  # the detector's id column, dropped columns and fill come with it
    assert result.exit_code == 0, result.output
    rows = [line.split(",") for line in scores.read_text().splitlines()]
    assert rows[0] == ["customer_id", "score", "outlier"] and len(rows) == 26
    assert rows[8][0] == "cust-1-0007" and rows[8][2] == "1"  # the planted outlier, named by its id
    assert max(rows[1:], key=lambda r: float(r[1]))[0] == "cust-1-0007"
    assert "cust-1-0007" in result.output
