"""Folders saved by an earlier lucidae (commit 17bb738) still load and compute what they computed then.

``tests/data/saved_v1`` was written by that version (``expected.npz`` holds its own outputs on digits rows
200-219). Since then ModelConfig's defaults changed (``beta`` 6 -> 1, ``conv_channels`` -> sized to the image)
and loading checks that a model's config agrees with its params: fields a family does not use must not make
that check refuse an old model.
"""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import lucidae
from lucidae.applications.anomaly import load_detector
from lucidae.datasets import load_dataset
from lucidae.errors import LucidaeError
from lucidae.io import checksum, sha256_of

SAVED = Path(__file__).parent / "data" / "saved_v1"


@pytest.fixture(scope="module")
def rows():
    return load_dataset("digits").X[200:220]


@pytest.mark.parametrize("name", ["autoencoder", "vae", "topk"])
def test_an_old_estimator_loads_and_encodes_as_it_did(name, rows):
    expected = np.load(SAVED / "expected.npz")[name]
    est = lucidae.load(SAVED / name)
    np.testing.assert_array_equal(est.transform(rows), expected)


def test_an_old_detector_loads_and_scores_as_it_did(rows):
    expected = np.load(SAVED / "expected.npz")["detector"]
    np.testing.assert_array_equal(load_detector(SAVED / "detector").decision_function(rows[:, 20:30]), expected)
    assert type(lucidae.load(SAVED / "detector")).__name__ == "AnomalyDetector"


def test_the_old_folder_carries_the_old_defaults_this_test_is_about():
    # If this fails the fixture no longer tests what it claims: the unused fields hold other defaults than now.
    model = json.loads((SAVED / "autoencoder" / "config.json").read_text())["model"]
    assert model["beta"] == 6.0 and model["conv_channels"] != lucidae.config.ModelConfig().conv_channels


def test_a_field_the_family_uses_must_still_agree_with_the_params(tmp_path):
    # The relaxation covers unused fields only: an edited and resealed k of a TopK model is still refused.
    run = tmp_path / "topk"
    shutil.copytree(SAVED / "topk", run)
    config = json.loads((run / "config.json").read_text())
    config["model"]["k"] += 1
    config["sha256"] = checksum(config, sha256_of(run / "model.safetensors"))
    (run / "config.json").write_text(json.dumps(config))
    with pytest.raises(LucidaeError, match="k"):
        lucidae.load(run)
