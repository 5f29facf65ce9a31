"""Runs from the command line: the run's own data by default, prune on the right rows, seeds, saved detectors."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from lucidae import load
from lucidae.cli import app
from lucidae.datasets import load_digits
from lucidae.prune import prune
from lucidae.runs import eval_split

runner = CliRunner()
QUICK = ["--hidden-dims", "16", "--latent-dim", "4", "--epochs", "4", "--verbose", "0"]


def _table(path, n=120, seed=0, ids=True):
    """A 6-column table of very different scales, with a text id column."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 2))
    X = np.column_stack([z[:, 0], 100 * z[:, 1], 0.01 * z.sum(1), z[:, 0] ** 2, 5 + z[:, 1], rng.normal(size=n)])
    header = (["customer_id"] if ids else []) + [f"f{j}" for j in range(6)]
    lines = [",".join(header)]
    for i, row in enumerate(X):
        lines.append(",".join(([f"c{seed}-{i:04d}"] if ids else []) + [f"{v:.6g}" for v in row]))
    path.write_text("\n".join(lines) + "\n")
    return X


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "digits"
    result = runner.invoke(app, ["train", "--data", "digits", *QUICK, "--hidden-dims", "32", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_encode_and_reconstruct_without_data_use_the_runs_own_table(tmp_path):
    X = _table(tmp_path / "t.csv", ids=False)
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", "--data", str(tmp_path / "t.csv"), *QUICK, "--out", str(run)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["encode", str(run), "--out", str(tmp_path / "codes.npy")])
    assert result.exit_code == 0, result.output  # it read digits (64 features) before
    ae = load(run)
    np.testing.assert_allclose(np.load(tmp_path / "codes.npy"), ae.transform(X), atol=1e-4)  # the file holds 6 digits
    result = runner.invoke(app, ["reconstruct", str(run), "--out", str(tmp_path / "recon.npy")])
    assert result.exit_code == 0, result.output
    assert np.load(tmp_path / "recon.npy").shape == X.shape


def test_a_table_with_an_id_column_trains_from_the_cli_and_encode_keys_the_codes_by_it(tmp_path):
    X = _table(tmp_path / "t.csv")
    run = tmp_path / "run"
    args = ["train", "--data", str(tmp_path / "t.csv"), "--id-column", "customer_id", *QUICK, "--out", str(run)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert load(run).n_features_in_ == 6
    result = runner.invoke(app, ["encode", str(run), "--out", str(tmp_path / "codes.csv")])
    assert result.exit_code == 0, result.output
    lines = (tmp_path / "codes.csv").read_text().splitlines()
    assert lines[0].split(",")[0] == "customer_id" and len(lines[0].split(",")) == 1 + 4
    assert [line.split(",")[0] for line in lines[1:4]] == ["c0-0000", "c0-0001", "c0-0002"]
    codes = np.array([[float(v) for v in line.split(",")[1:]] for line in lines[1:]])
    np.testing.assert_allclose(codes, load(run).transform(X), atol=1e-4)
    # another file of the same layout is read with the run's id column
    _table(tmp_path / "new.csv", n=10, seed=1)
    result = runner.invoke(
        app, ["encode", str(run), "--data", str(tmp_path / "new.csv"), "--out", str(tmp_path / "n.csv")]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "n.csv").read_text().splitlines()[1].startswith("c1-0000,")
    # the run's CSV options are not forced onto data that is no CSV; the real mismatch is named
    result = runner.invoke(app, ["encode", str(run), "--data", "digits", "--out", str(tmp_path / "d.npy")])
    assert result.exit_code == 1 and "digits has 64 features" in result.output and "trained on 6" in result.output
    result = runner.invoke(app, ["detect", "--model", str(run), "--data", str(tmp_path / "new.csv")])
    assert result.exit_code == 1 and "not an AnomalyDetector" in result.output


def test_prune_measures_on_held_out_rows_fine_tunes_on_training_rows_and_writes_a_run_record(digits_run, tmp_path):
    out = tmp_path / "pruned"
    args = ["prune", str(digits_run), "--out", str(out), "--amount", "0.5", "--fine-tune-epochs", "2"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    parent_record = json.loads((digits_run / "run.json").read_text())
    X = load_digits().X
    test, train, _ = eval_split(parent_record, len(X))
    expected = prune(load(digits_run), X[train], X_eval=X[test], amount=0.5, fine_tune_epochs=2)
    assert f"held-out FVU ({len(test)} rows" in result.output
    assert f"{expected.fvu_before:.4f} -> {expected.fvu_after:.4f}" in result.output
    pruned = load(out)  # fine-tuned on the training rows only: the same model as prune() on them
    np.testing.assert_allclose(pruned.reconstruct(X[:50]), expected.estimator.reconstruct(X[:50]), atol=1e-6)
    record = json.loads((out / "run.json").read_text())
    assert record["test_indices"] == parent_record["test_indices"]
    assert record["metrics"]["test_fvu"] == pytest.approx(expected.fvu_after, rel=1e-4)
    assert record["pruned"]["amount"] == 0.5
    # the parent's own FVU on its held-out rows is what train reported
    assert expected.fvu_before == pytest.approx(parent_record["metrics"]["test_fvu"], rel=1e-4)
    info = runner.invoke(app, ["info", str(out)])
    assert info.exit_code == 0 and "test_fvu" in info.output and f"pruned from {digits_run.resolve()}" in info.output
    # naming the run's own data is the same as leaving --data out
    again = runner.invoke(app, [*args[:2], "--data", "digits", "--out", str(tmp_path / "again"), *args[4:]])
    assert again.exit_code == 0 and f"{expected.fvu_before:.4f} -> {expected.fvu_after:.4f}" in again.output


def test_prune_says_when_fine_tuning_would_help(digits_run, tmp_path):
    result = runner.invoke(app, ["prune", str(digits_run), "--out", str(tmp_path / "p"), "--amount", "0.95"])
    assert result.exit_code == 0, result.output
    assert "--fine-tune-epochs" in result.output
    gentle = runner.invoke(app, ["prune", str(digits_run), "--out", str(tmp_path / "q"), "--amount", "0"])
    assert gentle.exit_code == 0 and "--fine-tune-epochs" not in gentle.output


def test_prune_refuses_bad_options_before_loading_anything(tmp_path):
    result = runner.invoke(app, ["prune", str(tmp_path / "nowhere"), "--out", str(tmp_path / "p"), "--amount", "2"])
    assert result.exit_code == 2 and "amount=2.0" in result.output


def test_train_has_a_default_seed_printed_and_stored(tmp_path):
    runs, outputs = [], []
    for name in ("a", "b"):
        out = tmp_path / name
        result = runner.invoke(app, ["train", "--data", "digits", *QUICK, "--out", str(out)])
        assert result.exit_code == 0, result.output
        runs.append(load(out))
        outputs.append(result.output)
    X = load_digits().X[:20]
    np.testing.assert_array_equal(runs[0].transform(X), runs[1].transform(X))  # two identical runs agree
    assert all("seed 0" in output for output in outputs)
    assert json.loads((tmp_path / "a" / "train_options.json").read_text())["random_state"] == 0
    assert runs[0].random_state == 0


def test_two_identical_topics_runs_find_the_same_topics(tmp_path):
    from lucidae.datasets import make_topics

    folder = tmp_path / "corpus"
    folder.mkdir()
    for i, doc in enumerate(make_topics(n_docs=300, n_topics=5, vocab_size=200, random_state=0).documents):
        (folder / f"doc{i:04d}.txt").write_text(doc)
    found, outputs = [], []
    for name in ("a", "b"):
        out = tmp_path / f"{name}.json"
        args = ["topics", "--data", str(folder), "--n-latents", "8", "--k", "2", "--out", str(out)]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        found.append(json.loads(out.read_text()))
        outputs.append(result.output)
    assert found[0] == found[1]
    assert all("seed 0" in output for output in outputs)


def test_detect_checks_its_options_before_fitting(tmp_path):
    _table(tmp_path / "t.csv")
    result = runner.invoke(app, ["detect", "--data", str(tmp_path / "missing.csv"), "--explain", "-1"])
    assert result.exit_code == 2 and "--explain -1" in result.output
    result = runner.invoke(app, ["detect", "--data", str(tmp_path / "t.csv"), "--id-column", "customer_id",
                                 "--out", str(tmp_path / "x.txt")])  # fmt: skip
    assert result.exit_code == 2 and ".csv" in result.output and "flagged" not in result.output
    result = runner.invoke(app, ["detect", "--data", str(tmp_path / "t.csv"), "--model", str(tmp_path),
                                 "--contamination", "0.2"])  # fmt: skip
    assert result.exit_code == 2 and "--contamination" in result.output


def test_detect_model_scores_new_data_with_a_saved_detector_keyed_by_id(tmp_path):
    from lucidae.applications import load_detector

    _table(tmp_path / "train.csv", n=200)
    X_new = _table(tmp_path / "new.csv", n=30, seed=3)
    X_new[0] *= 50  # one clear outlier
    lines = (tmp_path / "new.csv").read_text().splitlines()
    lines[1] = ",".join([lines[1].split(",")[0]] + [f"{v:.6g}" for v in X_new[0]])
    (tmp_path / "new.csv").write_text("\n".join(lines) + "\n")
    args = ["detect", "--data", str(tmp_path / "train.csv"), "--id-column", "customer_id", "--train-steps", "30"]
    result = runner.invoke(app, [*args, "--explain", "1", "--save", str(tmp_path / "det")])
    assert result.exit_code == 0, result.output
    assert "(customer_id c0-" in result.output  # the explained sample is named by its id
    scores = tmp_path / "scores.csv"
    args = ["detect", "--model", str(tmp_path / "det"), "--data", str(tmp_path / "new.csv"), "--out", str(scores)]
    result = runner.invoke(app, [*args, "--explain", "0"])
    assert result.exit_code == 0, result.output
    rows = [line.split(",") for line in scores.read_text().splitlines()]
    assert rows[0] == ["customer_id", "score", "outlier"] and rows[1][0] == "c3-0000" and len(rows) == 31
    det = load_detector(tmp_path / "det")
    as_written = np.loadtxt(tmp_path / "new.csv", delimiter=",", skiprows=1, usecols=range(1, 7))
    expected = det.decision_function(as_written)
    np.testing.assert_allclose([float(r[1]) for r in rows[1:]], expected, rtol=1e-5)
    assert [int(r[2]) for r in rows[1:]] == (expected > det.threshold_).astype(int).tolist()
    assert rows[1][2] == "1"
    assert len(det.decision_scores_) == 200  # scored without refitting
