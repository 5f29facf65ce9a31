"""Several processes: `torchrun -m lucidae train` with DistributedDataParallel matches one process."""

import os
import subprocess
import sys

import numpy as np
import torch
from typer.testing import CliRunner

from lucidae import load
from lucidae.cli import app
from lucidae.config import TrainConfig
from lucidae.distributed import World
from lucidae.train import _MemoryData

ARGS = ["--data", "digits", "--hidden-dims", "16", "--latent-dim", "4", "--epochs", "4", "--lr", "0.01"]
ARGS += ["--batch-size", "100", "--random-state", "0", "--verbose", "0", "--validation-fraction", "0.1"]


def test_ranks_split_every_global_batch_exactly():
    X = torch.arange(1030, dtype=torch.float32).reshape(-1, 1)  # 1030 rows: a last global batch of 30
    cfg = TrainConfig(batch_size=100, validation_fraction=0)
    one = _MemoryData(X, cfg, torch.Generator(), World(0, 1, 0), torch.device("cpu"))
    ranks = [_MemoryData(X, cfg, torch.Generator(), World(r, 3, r), torch.device("cpu")) for r in range(3)]
    single = list(one.batches(torch.Generator().manual_seed(5)))
    shards = [list(d.batches(torch.Generator().manual_seed(5))) for d in ranks]
    assert len(single) == 11 and all(len(s) == 11 for s in shards)
    for step, (xb, rows, weight) in enumerate(single):
        assert weight is None and rows == xb.shape[0]
        parts = [s[step] for s in shards]
        assert torch.equal(torch.cat([p[0] for p in parts]), xb)  # same rows, same order
        # mean of the ranks' weighted means == the global batch's mean (what DDP averages)
        means = [p[0].mean() * p[2] for p in parts]
        assert torch.allclose(sum(means) / 3, xb.mean())


def test_two_processes_train_the_same_model_as_one(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    cmd += ["-m", "lucidae", "train", *ARGS, "--out", str(tmp_path / "two")]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=400, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert proc.stdout.count("model saved to") == 1  # only rank 0 reports and writes
    result = CliRunner().invoke(app, ["train", *ARGS, "--out", str(tmp_path / "one")])
    assert result.exit_code == 0, result.output
    one, two = load(tmp_path / "one"), load(tmp_path / "two")
    assert one.history_.losses[-1] < 0.9 * one.history_.losses[0]  # it learned something worth comparing
    np.testing.assert_allclose(two.history_.losses, one.history_.losses, rtol=1e-4)
    np.testing.assert_allclose(
        [r["val_loss"] for r in two.history_.records], [r["val_loss"] for r in one.history_.records], rtol=1e-4
    )
    for (k, a), (_, b) in zip(one.module_.state_dict().items(), two.module_.state_dict().items()):
        torch.testing.assert_close(b, a, rtol=1e-3, atol=1e-5, msg=k)
    assert (tmp_path / "two" / "checkpoint" / "model.safetensors").is_file()
