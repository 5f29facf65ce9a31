"""Memory estimates checked before anything large is allocated.

Configs and file headers may ask for anything (``--hidden-dims 1000000,1000000`` is four
terabytes of weights; a stream header may declare 67 million samples): torch and numpy
then fail with a raw allocation error, or worse, succeed and invite the operating
system's out-of-memory killer. :func:`check_fits` compares an estimate with the
machine's physical memory (``os.sysconf``, no extra dependency) first and refuses with a
:class:`~lucidae.errors.ConfigError` that names the size, the cause and what to do.

Examples
--------
>>> from lucidae.config import ModelConfig
>>> n = parameter_count(ModelConfig(input_dim=64, hidden_dims=(128,), latent_dim=32))
>>> n
24928
>>> check_fits(training_bytes(n, batch_size=128, widths=[64, 128, 32]), "training this model")
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch

from lucidae.errors import ConfigError
from lucidae.models import build_model

SHARE = 0.8
"""The share of physical memory an estimate may take before it is refused."""

COPIES = 7
"""Copies of the weights training keeps: the weights, their gradients, Adam's two moments, the best and the
last good weights, and the checkpoint's snapshot."""


def physical_memory() -> int | None:
    """Bytes of physical memory on this machine, or None where the OS does not say.

    Examples
    --------
    >>> (physical_memory() or 1) > 0
    True
    """
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return None
    return pages * size if pages > 0 and size > 0 else None


def _size(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB", "PB"):
        if n < 1024 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PB"  # pragma: no cover


def check_fits(nbytes: float, what: str, *, hint: str = "") -> None:
    """Refuse ``what`` when ``nbytes`` is more than :data:`SHARE` of the physical memory.

    Raises
    ------
    ConfigError
        Naming the estimate, the memory there is, and ``hint`` (what to do).

    Examples
    --------
    >>> check_fits(2**70, "decoding this stream")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    lucidae.errors.ConfigError: decoding this stream needs about 1024.0 EB...
    """
    total = physical_memory()
    if total is None or nbytes <= SHARE * total:
        return
    size = _size(nbytes) if nbytes < 1024**6 else f"{nbytes / 1024**6:.1f} EB"
    raise ConfigError(
        f"{what} needs about {size} of memory, but this machine has {_size(total)}. "
        + (hint or "Choose smaller sizes.")
    )


def parameter_count(model_cfg: object) -> int:
    """Parameters of the module ``model_cfg`` builds, counted on PyTorch's ``meta`` device (nothing is allocated).

    See the module's example.
    """
    with torch.device("meta"):
        module = build_model(model_cfg)
    return sum(p.numel() for p in module.parameters())


def training_bytes(n_parameters: int, *, batch_size: int, widths: Sequence[int], itemsize: int = 4) -> int:
    """Estimated bytes to train ``n_parameters`` weights on batches through layers of ``widths`` units.

    :data:`COPIES` copies of the weights, and each batch's activations kept for the
    backward pass (forward and backward through the encoder and its mirror).

    Examples
    --------
    >>> training_bytes(1000, batch_size=10, widths=[4, 8])
    29920
    """
    activations = 4 * batch_size * sum(int(w) for w in widths)
    return int(itemsize * (COPIES * n_parameters + activations))


def check_training(model_cfg: object, *, batch_size: int, what: str) -> None:
    """Refuse to train the module ``model_cfg`` describes when its estimate is beyond this machine's memory.

    Parameters are counted on the ``meta`` device (:func:`parameter_count`), so the check
    itself allocates nothing, however large the config.

    Raises
    ------
    ConfigError
        Naming the architecture, its parameter count, the estimate and the memory there is.

    Examples
    --------
    >>> from lucidae.config import ModelConfig
    >>> check_training(ModelConfig(input_dim=64, hidden_dims=(10**6, 10**6)), batch_size=128, what="this model")
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    lucidae.errors.ConfigError: training this model 64-1000000-...-64 (2,000,196,000,096 parameters) needs about ...
    """
    shapes = model_cfg.layer_shapes()  # type: ignore[attr-defined]
    n_params = parameter_count(model_cfg)
    widths = [int(w) for w in "-".join(shapes).split("-") if w.isdigit()]
    check_fits(
        training_bytes(n_params, batch_size=batch_size, widths=widths),
        f"training {what} {'-'.join(shapes)} ({n_params:,} parameters)",
        hint="Choose smaller hidden_dims / latent_dim (--hidden-dims, --latent-dim) or a smaller batch_size.",
    )


__all__ = ["COPIES", "SHARE", "check_fits", "check_training", "parameter_count", "physical_memory", "training_bytes"]
