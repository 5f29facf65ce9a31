"""Tables as first-class data (#17): the CSV reader, missing cells, id columns, impute, and table defaults.

Each test here failed on the code before #17: the id column could not be named, empty
cells were "not numeric", a literal nan was reported at a row of the training split,
a byte-order mark stuck to the first name or swallowed the first row, a table got the
image defaults (min-max and a sigmoid), and the report warned of a scaling mismatch on
a random hold-out of the same table.
"""

from dataclasses import replace

import numpy as np
import pytest

from lucidae import AutoEncoder, load
from lucidae.config import DataConfig
from lucidae.datasets import load_array, load_dataset, read_options
from lucidae.datasets.tables import has_header, sniff_delimiter
from lucidae.errors import ConfigError, DataError


def write(path, text, bom=False):
    path.write_bytes(("\ufeff" if bom else "").encode() + text.encode("utf-8"))
    return path


# --------------------------------------------------------------------------- id columns, drop, delimiter
def test_id_column_is_kept_out_of_the_features_and_returned_as_ids(tmp_path):
    p = write(tmp_path / "t.csv", "customer_id,age,income\nC001,31,52000\nC002,45,61000\nC003,27,38000\n")
    with pytest.raises(DataError, match=r"\['customer_id'\] are not numeric .*'C001'.*line 2.*id_column"):
        load_array(p)
    ds = load_array(p, id_column="customer_id")
    assert ds.feature_names == ["age", "income"]
    assert ds.ids.tolist() == ["C001", "C002", "C003"]
    np.testing.assert_array_equal(ds.X, [[31, 52000], [45, 61000], [27, 38000]])


def test_drop_and_target_and_unknown_names(tmp_path):
    p = write(tmp_path / "t.csv", "id,a,notes,b,label\n1,0.5,x,2,cat\n2,1.5,y,3,dog\n")
    ds = load_array(p, id_column="id", drop="notes", target_column="label")
    assert ds.feature_names == ["a", "b"] and ds.y.tolist() == ["cat", "dog"] and ds.ids.tolist() == ["1", "2"]
    assert load_array(p, id_column="id", drop=["notes", "label"]).feature_names == ["a", "b"]
    with pytest.raises(DataError, match=r"drop='nope' is not a column .*\['id', 'a', 'notes', 'b', 'label'\]"):
        load_array(p, drop="nope")
    with pytest.raises(DataError, match="apply to .csv tables only"):
        load_dataset("digits", id_column="id")


@pytest.mark.parametrize("sep", [";", "\t", "|"])
def test_delimiter_is_sniffed_or_given(tmp_path, sep):
    p = write(tmp_path / "t.csv", f"a{sep}b{sep}c\n1{sep}2{sep}3\n4{sep}5{sep}6\n")
    assert load_array(p).feature_names == ["a", "b", "c"]
    assert load_array(p, delimiter={"\t": "tab"}.get(sep, sep)).X.shape == (2, 3)
    assert sniff_delimiter([f"1{sep}2", f"3{sep}4"]) == sep


def test_a_wrong_delimiter_is_a_clear_error(tmp_path):
    p = write(tmp_path / "t.csv", "a,b\n1,2\n3,4,5\n")
    with pytest.raises(DataError, match="line 3 has 3 fields; the first row has 2"):
        load_array(p)
    with pytest.raises(DataError, match="delimiter='ab' is invalid"):
        load_array(p, delimiter="ab")


# --------------------------------------------------------------------------- missing cells
def test_missing_cells_are_named_by_line_and_column(tmp_path):
    p = write(tmp_path / "t.csv", "age,income,score\n31,52000,1\n,61000,2\n27,NA,3\n40,N/A,\n33,100,null\n")
    with pytest.raises(DataError) as err:
        load_array(p)
    message = str(err.value)
    assert "5 missing cell(s)" in message and "not numeric" not in message
    places = "line 3 column 'age', line 4 column 'income', line 5 column 'income', line 5 column 'score', line 6"
    assert places in message
    assert "--impute median" in message
    ds = load_array(p, impute="median")
    assert int(np.isnan(ds.X).sum()) == 5 and ds.X.shape == (5, 3)


def test_a_literal_nan_is_reported_at_its_line_in_the_file(tmp_path):
    rows = [f"{i},{i * 2}" for i in range(20)]
    rows[3] = "nan,6"  # line 5 of the file (the header is line 1)
    rows[15] = "15,NaN"  # line 17
    p = write(tmp_path / "t.csv", "a,b\n" + "\n".join(rows) + "\n")
    with pytest.raises(DataError, match=r"2 missing cell\(s\).*line 5 column 'a', line 17 column 'b'"):
        load_array(p)


def test_values_beyond_float32_are_named(tmp_path):
    p = write(tmp_path / "t.csv", "a,b\n1,2\n3,1e39\n")
    with pytest.raises(DataError, match="beyond float32's range.*line 3 column 'b'"):
        load_array(p)


def test_impute_is_fitted_on_the_training_rows_saved_and_applied_later(tmp_path, rng):
    X = rng.normal(size=(120, 4)) * [1.0, 10.0, 100.0, 0.1] + [0.0, 5.0, -50.0, 1.0]
    X[rng.random(X.shape) < 0.1] = np.nan
    with pytest.raises(DataError, match="NaN.*impute='median'"):
        AutoEncoder(latent_dim=2, epochs=1, verbose=0).fit(X)
    ae = AutoEncoder(latent_dim=2, hidden_dims=(8,), epochs=2, verbose=0, random_state=0, impute="median")
    ae.fit(X[:100])
    np.testing.assert_allclose(ae.scaler_.fill, np.nanmedian(X[:100], axis=0))
    assert ae.scaler_.impute == "median"
    # every later call fills the held-out rows' NaN with the training rows' medians
    filled = np.where(np.isnan(X[100:]), ae.scaler_.fill, X[100:])
    np.testing.assert_array_equal(ae.transform(X[100:]), ae.transform(filled))
    np.testing.assert_array_equal(ae.reconstruct(X[100:]), ae.reconstruct(filled))
    assert np.isfinite(ae.score_samples(X[100:])).all()
    back = load(ae.save(tmp_path / "m"))
    np.testing.assert_array_equal(back.scaler_.fill, ae.scaler_.fill)
    np.testing.assert_array_equal(back.transform(X[100:]), ae.transform(X[100:]))
    with pytest.raises(DataError, match="infinite"):  # impute fills NaN only
        ae.transform(np.full((1, 4), np.inf))
    with pytest.raises(ConfigError, match="impute='mode'"):
        AutoEncoder(impute="mode", epochs=1, verbose=0).fit(X)


def test_a_feature_with_no_value_cannot_be_imputed(rng):
    X = rng.normal(size=(10, 3))
    X[:, 1] = np.nan
    with pytest.raises(DataError, match=r"Feature\(s\) \[1\] have no value"):
        AutoEncoder(impute="mean", epochs=1, verbose=0).fit(X)


# --------------------------------------------------------------------------- byte-order marks and headers
def test_a_bom_does_not_stick_to_the_first_name(tmp_path):
    p = write(tmp_path / "t.csv", "age,income\n31,52000\n45,61000\n", bom=True)
    assert load_array(p).feature_names == ["age", "income"]


def test_a_bom_without_header_keeps_the_first_row(tmp_path):
    p = write(tmp_path / "t.csv", "1,2,3\n4,5,6\n", bom=True)
    ds = load_array(p)
    assert ds.X.tolist() == [[1, 2, 3], [4, 5, 6]] and ds.feature_names == ["x0", "x1", "x2"]


def test_header_sniffing():
    assert has_header(["a", "b"], ["1", "2"]) and not has_header(["1", "2"], ["3", "4"])
    assert not has_header(["", "2"], ["3", "4"])  # a first row with a missing cell is data
    assert not has_header(["C1", "1"], ["C2", "2"])  # an id that is text is not a header


# --------------------------------------------------------------------------- DataConfig
def test_data_config_carries_the_table_options():
    cfg = DataConfig(data="t.csv", id_column="id", drop="a,b", impute="median", delimiter=";")
    cfg.validate()
    assert read_options(cfg) == {"id_column": "id", "drop": "a,b", "delimiter": ";", "impute": "median"}
    with pytest.raises(ConfigError, match="impute='mode'"):
        DataConfig(impute="mode").validate()
    with pytest.raises(ConfigError, match="delimiter"):
        DataConfig(delimiter="ab").validate()


# --------------------------------------------------------------------------- defaults for tables
def nonlinear_table(n, rng):
    """8 columns of very different scales, each a nonlinear function of 2 hidden factors, plus noise."""
    t = rng.uniform(-1.0, 1.0, size=(n, 2))
    a, b = t[:, 0], t[:, 1]
    cols = [
        np.sin(2.5 * a),
        a**2 + 0.5 * b,
        np.cos(2.0 * b) * a,
        np.exp(a + b),
        np.tanh(3.0 * b),
        a * b,
        b**3 - a,
        np.sin(2.0 * (a + b)),
    ]
    scales = np.array([1e-3, 1.0, 50.0, 1e3, 0.1, 7.0, 1e4, 300.0])
    offsets = np.array([0.0, 10.0, -200.0, 5e3, 1.0, 0.0, 2e4, 40.0])
    X = np.stack(cols, axis=1)
    X = X + 0.02 * X.std(axis=0) * rng.normal(size=X.shape)
    return X * scales + offsets


def test_a_table_gets_table_defaults_and_images_keep_theirs(rng, digits):
    X = rng.normal(size=(100, 6)) * [1, 10, 100, 1000, 3, 0.5] + 20
    ae = AutoEncoder(latent_dim=2, epochs=1, verbose=0, random_state=0).fit(X)
    assert ae.scaler_.kind == "standard" and ae.model_config_.output_activation == "linear"
    assert ae.get_params()["output_activation"] == "sigmoid"  # the parameter is untouched (scikit-learn)
    img = AutoEncoder(latent_dim=2, epochs=1, verbose=0, random_state=0).fit(digits.X[:200])
    assert img.scaler_.kind == "identity" and img.model_config_.output_activation == "sigmoid"
    u8 = AutoEncoder(latent_dim=2, epochs=1, verbose=0, random_state=0).fit((digits.X[:200] * 255).astype(np.uint8))
    assert u8.scaler_.kind == "uint8" and u8.model_config_.output_activation == "sigmoid"
    # asking for min-max keeps the sigmoid; asking for a linear output keeps it
    mm = AutoEncoder(latent_dim=2, epochs=1, verbose=0, scaling="minmax").fit(X)
    assert mm.scaler_.kind == "minmax" and mm.model_config_.output_activation == "sigmoid"


@pytest.mark.slow  # the defaults train for about 5,000 steps: half a minute on 2 cores
def test_defaults_beat_pca_on_a_nonlinear_table(rng):
    from sklearn.decomposition import PCA

    X = nonlinear_table(3000, rng)
    train, test = X[:2400], X[2400:]
    mean, std = train.mean(axis=0), train.std(axis=0)

    def fvu(truth, recon):
        truth_s, recon_s = (truth - mean) / std, (recon - mean) / std
        return float(((truth_s - recon_s) ** 2).sum() / ((truth_s - truth_s.mean(axis=0)) ** 2).sum())

    ae = AutoEncoder(latent_dim=2, random_state=0, verbose=0).fit(train)
    pca = PCA(2).fit((train - mean) / std)
    pca_fvu = fvu(test, pca.inverse_transform(pca.transform((test - mean) / std)) * std + mean)
    ae_fvu = fvu(test, ae.reconstruct(test))
    assert ae_fvu < pca_fvu, (ae_fvu, pca_fvu)


def test_no_scaling_warning_on_a_random_hold_out_of_the_same_table(tmp_path, rng):
    from lucidae.report import build_report
    from lucidae.runs import fit_run, split_rows

    X = rng.standard_t(df=3, size=(60, 6)) * [1, 10, 100, 1000, 3, 0.5] + 20
    train, test = split_rows(len(X), 0.2, seed=0, streaming=False)
    lo, hi = X[train].min(axis=0), X[train].max(axis=0)
    old_rule = (((X[test] - lo) / (hi - lo) < -0.01) | ((X[test] - lo) / (hi - lo) > 1.01)).mean()
    assert old_rule > 0.01  # the held-out rows do leave the training range a little, as random rows do
    path = tmp_path / "t.csv"
    np.savetxt(path, X, delimiter=",", header="a,b,c,d,e,f", comments="")
    ds = load_array(path)
    for scaling in ("auto", "minmax"):
        est = AutoEncoder(latent_dim=2, hidden_dims=(16,), epochs=3, verbose=0, random_state=0, scaling=scaling)
        out, _ = fit_run(est, ds, DataConfig(data=str(path), scaling=scaling), tmp_path / scaling, quiet=True)
        build_report(out)
        assert "Scaling mismatch" not in (out / "report.html").read_text(), scaling
    # data that really is on another scale still warns
    for scaling in ("auto", "minmax"):
        build_report(tmp_path / scaling, dataset=replace(ds, X=ds.X * 1000.0))
        assert "Scaling mismatch" in (tmp_path / scaling / "report.html").read_text(), scaling
