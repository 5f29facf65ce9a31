"""Metrics against hand-computed answers, slow obvious references and their limits."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lucidae import metrics
from lucidae.errors import DataError


# ---------------------------------------------------------------------- MIG
def _slow_mi(a, b):
    """I(a; b) from counting pairs, one loop per cell."""
    n = len(a)
    total = 0.0
    for x in set(a.tolist()):
        for y in set(b.tolist()):
            pxy = np.sum((a == x) & (b == y)) / n
            if pxy > 0:
                total += pxy * math.log(pxy / (np.mean(a == x) * np.mean(b == y)))
    return total


def test_mutual_information_matches_pair_counting(rng):
    v = rng.integers(0, 3, size=(300, 2))
    z = np.c_[v[:, 0] + rng.integers(0, 2, 300), rng.integers(0, 5, 300)]
    mi = metrics.mutual_information(z, v)
    for i in range(2):
        for k in range(2):
            assert mi[i, k] == pytest.approx(_slow_mi(z[:, i], v[:, k]), abs=1e-12)


def test_mig_hand_computed():
    # v is a fair coin; z0 copies it (I = log 2), z1 copies it on 3 of 4 samples.
    v = np.array([0, 0, 1, 1])
    z = np.c_[v, [0, 1, 1, 1]]
    # I(z1; v): p(z1=0)=1/4, p(z1=1)=3/4; p(0,0)=1/4, p(1,0)=1/4, p(1,1)=1/2
    i1 = (
        0.25 * math.log(0.25 / (0.25 * 0.5)) + 0.25 * math.log(0.25 / (0.75 * 0.5)) + 0.5 * math.log(0.5 / (0.75 * 0.5))
    )
    assert metrics.mig(z, v) == pytest.approx((math.log(2) - i1) / math.log(2))


def test_mig_limits(rng):
    v = np.c_[rng.integers(0, 3, 5000), rng.integers(0, 6, 5000), rng.random(5000)]
    assert metrics.mig(v, v) > 0.97  # perfect code
    assert metrics.mig(v[:, ::-1] * [2.0, -1.0, 3.0] + 7, v) > 0.97  # order, scale and sign do not matter
    assert metrics.mig(rng.normal(size=(5000, 3)), v) < 0.03  # random code
    assert metrics.mig(np.ones((5000, 3)), v) == 0.0  # constant code
    # two latents that both copy a factor: nothing separates them
    assert metrics.mig(np.c_[v[:, 0], v[:, 0]], v[:, :1]) == pytest.approx(0.0)


def test_mig_rejects_bad_input(rng):
    with pytest.raises(DataError, match="samples"):
        metrics.mig(rng.random((10, 2)), rng.random((9, 1)))
    with pytest.raises(DataError, match="No factor varies"):
        metrics.mig(rng.random((10, 2)), np.zeros(10))
    with pytest.raises(DataError, match="NaN"):
        metrics.mig(np.full((10, 2), np.nan), rng.random(10))


def test_discretize_equal_width_and_categories():
    assert metrics.discretize(np.array([0.0, 0.24, 0.26, 0.74, 0.76, 1.0]), n_bins=4).ravel().tolist() == [
        0,
        0,
        1,
        2,
        3,
        3,
    ]
    assert metrics.discretize(np.array([10, 30, 20, 10]), n_bins=4).ravel().tolist() == [0, 2, 1, 0]
