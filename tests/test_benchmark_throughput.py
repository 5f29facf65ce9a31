"""The throughput benchmark's own arithmetic and trainers, on data small enough for a test.

The benchmark's figures (``benchmarks/train_throughput.py``) are only as good as its ceiling's
FLOP count and its loops; these check the count against torch's own FLOP counter on a real
training step and that every trainer it compares trains the same model to a similar loss.
"""

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "train_throughput.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("train_throughput", PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ceiling_counts_the_flops_of_a_real_training_step(bench):
    # the slow, obvious reference: torch counts the matrix products of one autograd step
    model = bench.classic_torch_model()
    x = torch.rand(bench.BATCH, bench.D)
    with FlopCounterMode(display=False) as counter:
        torch.nn.functional.mse_loss(model(x), x).backward()
    counted = counter.get_total_flops()
    shapes = bench.gemm_shapes(bench.BATCH)
    assert sum(2 * m * k * n for m, k, n in shapes) == counted
    assert len(shapes) == 11  # 4 forward, 4 weight gradients, 3 input gradients (none for the data)


def test_ceiling_reports_samples_and_flops_of_the_steps_it_ran(bench):
    clock, samples, flops = bench.matmul_ceiling(8, steps=3)
    assert samples == 3 * 8
    assert flops == 3 * sum(2 * m * k * n for m, k, n in bench.gemm_shapes(8))
    assert clock.wall > 0 and clock.cpu > 0


def test_every_trainer_trains_the_same_model_to_a_similar_loss(bench):
    # data of rank 4 through a sigmoid: compressible, so a trainer that learns ends far below
    # the data's variance (the benchmark's uniform noise cannot tell a trainer that learns
    # from one that predicts the mean)
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(4 * bench.BATCH, 4)) @ rng.normal(size=(4, bench.D))
    X = (1 / (1 + np.exp(-logits))).astype(np.float32)
    variance = float(X.var(axis=0).mean())
    losses = {}
    for name, run in (("idiomatic", bench.idiomatic_loop), ("tuned", bench.tuned_loop), ("lucidae", bench.lucidae_fit)):
        clock, loss, *_ = run(X, 10, seed=0)
        assert clock.wall > 0
        losses[name] = loss
    for name, loss in losses.items():
        assert math.isfinite(loss) and loss < 0.2 * variance, (name, loss, variance)
    assert max(losses.values()) / min(losses.values()) < 1.5, losses
