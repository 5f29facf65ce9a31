"""Training throughput of lucidae against what a user would otherwise run, measured in one process.

Trains the classic model (784-128-32-128-784, ReLU, sigmoid output, batch 256, Adam at a
constant 1e-3, MSE) on random data of MNIST's size in [0, 1] with:

- ``lucidae fit``: ``AutoEncoder(...).fit(X)``, timed from the call to its return;
- an idiomatic PyTorch loop: ``TensorDataset`` + ``DataLoader(shuffle=True)``, ``nn.MSELoss``, ``Adam``;
- a hand-tuned PyTorch loop: what an expert writes for speed on a CPU, with no DataLoader (batches
  gathered with ``index_select`` from one tensor), ``Adam(fused=True)``, ``zero_grad(set_to_none=True)``
  and the epoch's loss summed on the device;
- the matmul ceiling: the fp32 GEMMs one training step of this model needs (forward, the
  gradient of each layer's input and weight), timed alone with ``torch.addmm``/``torch.mm``.
  No trainer can beat it on this machine, so lucidae's fraction of it says how much room is left;
- optional rows when installed: Keras running the classic Keras example, PyOD's AutoEncoder.

Each measurement is repeated ``--repeats`` times, interleaved, and the median is printed,
because the development machine is shared. Run: ``python benchmarks/train_throughput.py``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from functools import partial

import numpy as np
import torch
from torch import nn

N, D, HIDDEN, LATENT, BATCH, LR = 60_000, 784, 128, 32, 256, 1e-3


class Clock:
    """Wall and process-CPU seconds of a block.

    CPU seconds exclude the time this process waits for a core, so on a machine shared
    with other jobs they measure the work itself; with one thread they are the number
    to compare. Wall seconds are what a user waits on an idle machine.
    """

    def __enter__(self) -> Clock:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


def classic_torch_model() -> nn.Module:
    return nn.Sequential(
        nn.Linear(D, HIDDEN),
        nn.ReLU(),
        nn.Linear(HIDDEN, LATENT),
        nn.ReLU(),
        nn.Linear(LATENT, HIDDEN),
        nn.ReLU(),
        nn.Linear(HIDDEN, D),
        nn.Sigmoid(),
    )


def idiomatic_loop(X: np.ndarray, epochs: int, seed: int) -> tuple[Clock, float]:
    """The loop of the PyTorch tutorials; returns (clock, last epoch's mean loss)."""
    from torch.utils.data import DataLoader, TensorDataset

    torch.manual_seed(seed)
    model = classic_torch_model()
    loader = DataLoader(TensorDataset(torch.from_numpy(X)), batch_size=BATCH, shuffle=True)
    criterion = nn.MSELoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    with Clock() as clock:
        for _ in range(epochs):
            total, count = 0.0, 0
            for (xb,) in loader:
                optimizer.zero_grad()
                loss = criterion(model(xb), xb)
                loss.backward()
                optimizer.step()
                total += loss.item() * len(xb)
                count += len(xb)
    return clock, total / count


def tuned_loop(X: np.ndarray, epochs: int, seed: int) -> tuple[Clock, float]:
    """A loop tuned by hand for a CPU; returns (clock, last epoch's mean loss)."""
    torch.manual_seed(seed)
    model = classic_torch_model()
    data = torch.from_numpy(X)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR, fused=True)
    with Clock() as clock:
        for _ in range(epochs):
            order = torch.randperm(len(data))
            total = torch.zeros(())
            for start in range(0, len(data), BATCH):
                xb = data.index_select(0, order[start : start + BATCH])
                loss = nn.functional.mse_loss(model(xb), xb)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total += loss.detach() * len(xb)
    return clock, float(total) / len(data)


def lucidae_fit(X: np.ndarray, epochs: int, seed: int):
    from lucidae import AutoEncoder

    ae = AutoEncoder(
        hidden_dims=(HIDDEN,),
        latent_dim=LATENT,
        epochs=epochs,
        batch_size=BATCH,
        lr=LR,
        lr_schedule="constant",
        validation_fraction=0.0,
        scaling="none",
        random_state=seed,
        verbose=0,
    )
    with Clock() as clock:
        ae.fit(X)
    return clock, ae.history_.losses[-1], ae


def gemm_shapes(batch: int) -> list[tuple[int, int, int]]:
    """(m, k, n) of every matrix product in one training step of the classic model."""
    dims = [D, HIDDEN, LATENT, HIDDEN, D]
    shapes = []
    for i, (d_in, d_out) in enumerate(zip(dims, dims[1:])):
        shapes.append((batch, d_in, d_out))  # forward: x @ W.T
        shapes.append((d_out, batch, d_in))  # weight gradient: grad.T @ x
        if i > 0:  # the first layer's input needs no gradient
            shapes.append((batch, d_out, d_in))  # input gradient: grad @ W
    return shapes


def matmul_ceiling(batch: int, steps: int = 300) -> tuple[Clock, int, float]:
    """Time ``steps`` training steps' worth of the model's GEMMs alone; returns (clock, samples, flops)."""
    shapes = gemm_shapes(batch)
    mats = [(torch.rand(m, k), torch.rand(k, n), torch.empty(m, n)) for m, k, n in shapes]
    flops = sum(2 * m * k * n for m, k, n in shapes)
    for a, b, c in mats:  # warm up
        torch.mm(a, b, out=c)
    with Clock() as clock:
        for _ in range(steps):
            for a, b, c in mats:
                torch.mm(a, b, out=c)
    return clock, steps * batch, steps * flops


def optional_keras(X: np.ndarray, epochs: int) -> tuple[str, float] | None:
    """The classic Keras example: (row name with the backend, samples/s), or None when Keras is absent.

    Keras 3 runs on torch (the kernels everything else here uses) when TensorFlow is not installed.
    """
    import importlib.util
    import os

    if importlib.util.find_spec("keras") is None:
        return None
    if "KERAS_BACKEND" not in os.environ and importlib.util.find_spec("tensorflow") is None:
        os.environ["KERAS_BACKEND"] = "torch"
    import keras
    from keras import layers
    from keras.models import Model

    inp = keras.Input(shape=(D,))
    z = layers.Dense(HIDDEN, activation="relu")(inp)
    z = layers.Dense(LATENT, activation="relu")(z)
    h = layers.Dense(HIDDEN, activation="relu")(z)
    out = layers.Dense(D, activation="sigmoid")(h)
    model = Model(inp, out)
    model.compile(optimizer="adam", loss="mse")
    start = time.perf_counter()
    model.fit(X, X, epochs=epochs, batch_size=BATCH, shuffle=True, verbose=0)
    return f"keras ({keras.backend.backend()})", len(X) * epochs / (time.perf_counter() - start)


def optional_pyod(X: np.ndarray, epochs: int) -> tuple[str, float] | None:
    try:
        from pyod.models.auto_encoder import AutoEncoder as PyodAE
    except ImportError:
        return None
    model = PyodAE(hidden_neuron_list=[HIDDEN, LATENT, HIDDEN], epoch_num=epochs, batch_size=BATCH, verbose=0)
    start = time.perf_counter()
    model.fit(X)
    return "pyod AutoEncoder", len(X) * epochs / (time.perf_counter() - start)


def best_us(fn, steps: int = 40, repeats: int = 15) -> float:
    """Best (least disturbed) mean microseconds per call of ``fn`` over ``repeats`` bursts of ``steps`` calls."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            fn()
        times.append((time.perf_counter() - start) / steps * 1e6)
    return min(times)


def step_breakdown(X: np.ndarray) -> None:
    """Where one training step of ``fit`` spends its time: the GEMMs against everything else.

    Each part is timed alone, best of 15 bursts (the least disturbed by other jobs), on the
    model, optimiser and data ``fit`` uses. ``fit`` trains the classic model through the
    written-out step of :mod:`lucidae.fast_step`; the same step through autograd (what every
    other model takes) is timed beside it. The GEMMs are timed in the layouts the step
    really uses (``addmm`` with the bias, transposed operands) and in the ceiling's.
    """
    from lucidae.config import ModelConfig, TrainConfig
    from lucidae.fast_step import DenseStep, plain_dense_layers
    from lucidae.models import build_model
    from lucidae.train import fused_adam_step, make_optimizer

    torch.manual_seed(0)
    data = torch.from_numpy(X[: 50 * BATCH])
    model = build_model(ModelConfig(input_dim=D, hidden_dims=(HIDDEN,), latent_dim=LATENT))
    model.prepare(data)
    model.train()
    optimizer = make_optimizer(model, TrainConfig(lr=LR))
    adam = fused_adam_step(optimizer)
    dense_step = DenseStep(model, plain_dense_layers(model, TrainConfig()))
    order = torch.randperm(len(data))
    batch = {"i": 0}

    def gather() -> torch.Tensor:
        batch["i"] = (batch["i"] + 1) % 50
        return torch.index_select(data, 0, order[batch["i"] * BATCH : (batch["i"] + 1) * BATCH])

    xb = gather()

    def forward_only() -> None:
        with torch.no_grad():
            model(xb)

    def autograd_backward() -> None:
        optimizer.zero_grad(set_to_none=True)
        model.loss(xb, xb).total.backward()

    def full_step() -> None:
        dense_step(gather())
        adam()

    autograd_backward()
    parts = {
        "gather a shuffled batch": best_us(gather),
        "forward, no autograd": best_us(forward_only),
        "loss + gradients, through autograd": best_us(autograd_backward),
        "loss + gradients, written out (fit's)": best_us(partial(dense_step, xb)),
        "Adam (fused)": best_us(adam),
        "whole step": best_us(full_step),
    }
    dims = [D, HIDDEN, LATENT, HIDDEN, D]
    real, ceiling = 0.0, 0.0
    for i, (d_in, d_out) in enumerate(zip(dims, dims[1:])):
        x, w, g, b = torch.rand(BATCH, d_in), torch.rand(d_out, d_in), torch.rand(BATCH, d_out), torch.rand(d_out)
        real += best_us(partial(torch.addmm, b, x, w.t())) + best_us(partial(torch.mm, g.t(), x))
        if i > 0:
            real += best_us(partial(torch.mm, g, w))
    for m, k, n in gemm_shapes(BATCH):
        a, bm, c = torch.rand(m, k), torch.rand(k, n), torch.empty(m, n)
        ceiling += best_us(partial(torch.mm, a, bm, out=c))
    print(f"\none step, microseconds, best of 15 bursts ({torch.get_num_threads()} thread(s)):")
    for name, us in parts.items():
        print(f"  {name:<40}{us:>8,.0f}")
    print(f"  {'GEMMs in the layouts the step uses':<40}{real:>8,.0f}")
    print(f"  {'GEMMs in the layouts of the ceiling':<40}{ceiling:>8,.0f}")
    rest = parts["whole step"] - real
    print(
        f"  the step is {ceiling / parts['whole step']:.0%} of the ceiling: GEMM layouts cost "
        f"{real - ceiling:,.0f} us, everything else {rest:,.0f} us ({rest / parts['whole step']:.0%} of the step)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--optional", action="store_true", help="also run Keras / PyOD when installed")
    parser.add_argument("--breakdown", action="store_true", help="also time the parts of one training step")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    X = rng.random((N, D), dtype=np.float32)  # (n, 784) in [0, 1], MNIST's size

    # one-off costs (imports, first allocations) are paid here by both, not inside the timings
    idiomatic_loop(X[: 4 * BATCH], 1, seed=0)
    tuned_loop(X[: 4 * BATCH], 1, seed=0)
    lucidae_fit(X[: 4 * BATCH], 1, seed=0)
    trainers = {"torch": "idiomatic torch loop", "tuned": "hand-tuned torch loop", "lucidae": "lucidae fit"}
    rows: dict[str, dict[str, list[float]]] = {k: {"wall": [], "cpu": []} for k in (*trainers, "ceiling")}
    losses: dict[str, list[float]] = {k: [] for k in trainers}
    gflops: list[float] = []
    samples = N * args.epochs
    for r in range(args.repeats):
        for key, run in (("torch", idiomatic_loop), ("tuned", tuned_loop), ("lucidae", lucidae_fit)):
            clock, loss, *fitted = run(X, args.epochs, seed=r)
            rows[key]["wall"].append(samples / clock.wall)
            rows[key]["cpu"].append(samples / clock.cpu)
            losses[key].append(loss)
        ae = fitted[0]
        # as many steps as the fits take, straight after lucidae's: the machine's speed drifts over
        # seconds, and a ceiling measured over the same stretch keeps the fraction honest
        clock, n_ceil, flops = matmul_ceiling(BATCH, steps=samples // BATCH)
        rows["ceiling"]["wall"].append(n_ceil / clock.wall)
        rows["ceiling"]["cpu"].append(n_ceil / clock.cpu)
        gflops.append(flops / clock.cpu / 1e9)
        print(
            f"repeat {r + 1}: per wall s / per CPU s: lucidae {rows['lucidae']['wall'][-1]:,.0f} / "
            f"{rows['lucidae']['cpu'][-1]:,.0f}, idiomatic {rows['torch']['wall'][-1]:,.0f} / "
            f"{rows['torch']['cpu'][-1]:,.0f}, hand-tuned {rows['tuned']['wall'][-1]:,.0f} / "
            f"{rows['tuned']['cpu'][-1]:,.0f}, ceiling {rows['ceiling']['wall'][-1]:,.0f} / "
            f"{rows['ceiling']['cpu'][-1]:,.0f}",
            flush=True,
        )
    med = statistics.median
    m = {k: {c: med(v) for c, v in d.items()} for k, d in rows.items()}

    infer = {}
    for name, fn in (("transform", ae.transform), ("score_samples", ae.score_samples)):
        walls, cpus = [], []
        for _ in range(args.repeats):
            with Clock() as clock:
                fn(X)
            walls.append(clock.wall)
            cpus.append(clock.cpu)
        infer[name] = (N / med(walls), N / med(cpus))

    print()
    print(f"classic model {D}-{HIDDEN}-{LATENT}-{HIDDEN}-{D}, batch {BATCH}, Adam lr {LR:g}, MSE, ", end="")
    print(f"{N:,} random samples in [0, 1], {args.epochs} epochs")
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s); median of {args.repeats} interleaved repeats"
    )
    print()
    print(f"{'':24}{'samples/s':>11}{'vs torch':>10}{'samples/CPU-s':>15}{'vs torch':>10}{'final loss':>12}")
    for key, name in trainers.items():
        print(
            f"{name:<24}{m[key]['wall']:>11,.0f}{m[key]['wall'] / m['torch']['wall']:>10.2f}"
            f"{m[key]['cpu']:>15,.0f}{m[key]['cpu'] / m['torch']['cpu']:>10.2f}{med(losses[key]):>12.5f}"
        )
    if args.optional:
        for name, fn in (("keras classic example", optional_keras), ("pyod AutoEncoder", optional_pyod)):
            row = fn(X, args.epochs)
            if row is None:
                print(f"{name:<24}{'not installed':>11}")
            else:
                name, sps = row
                print(f"{name:<24}{sps:>11,.0f}{sps / m['torch']['wall']:>10.2f}")
    print(
        f"{'matmul ceiling':<24}{m['ceiling']['wall']:>11,.0f}{m['ceiling']['wall'] / m['torch']['wall']:>10.2f}"
        f"{m['ceiling']['cpu']:>15,.0f}{m['ceiling']['cpu'] / m['torch']['cpu']:>10.2f}"
        f"   ({med(gflops):.1f} fp32 GFLOP/CPU-s on the model's GEMM shapes)"
    )
    print()
    for clock in ("wall", "cpu"):
        # each repeat's trainer against the ceiling measured beside it, then the median of those
        # fractions (steadier than a ratio of medians on a machine whose speed drifts)
        parts = []
        for key, name in (("lucidae", "lucidae"), ("tuned", "hand-tuned loop"), ("torch", "idiomatic loop")):
            fractions = sorted(t / c for t, c in zip(rows[key][clock], rows["ceiling"][clock]))
            parts.append(f"{name} {med(fractions):.0%} ({fractions[0]:.0%} to {fractions[-1]:.0%})")
        print(f"fraction of the ceiling ({clock}), median of repeats (range): " + ", ".join(parts))
    for name, (wall, cpu) in infer.items():
        print(f"lucidae {name:<14}{wall:>11,.0f} samples/s {cpu:>11,.0f} samples/CPU-s")
    if args.breakdown:
        step_breakdown(X)


if __name__ == "__main__":
    main()
