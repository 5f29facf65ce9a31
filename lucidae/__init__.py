"""lucidae: autoencoders you can understand.

The estimators are imported on first use, so that ``import lucidae`` (and the
``lucidae`` command's start-up) does not pay for torch until a model is needed.

Examples
--------
>>> from lucidae import AutoEncoder
>>> from lucidae.datasets import load_digits
>>> X = load_digits().X
>>> ae = AutoEncoder(latent_dim=8, epochs=2, verbose=0, random_state=0).fit(X)
>>> ae.transform(X).shape
(1797, 8)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from lucidae._version import __version__
from lucidae.errors import LucidaeError

if TYPE_CHECKING:
    from lucidae.applications.anomaly import AnomalyDetector
    from lucidae.estimators import (
        VAE,
        AutoEncoder,
        BetaTCVAE,
        ConvAutoEncoder,
        JumpReLUAutoEncoder,
        LinearAutoEncoder,
        SparseAutoEncoder,
        TopKAutoEncoder,
    )
    from lucidae.estimators.persist import load_any as load

_LAZY = {
    "AnomalyDetector": "lucidae.applications.anomaly",
    "AutoEncoder": "lucidae.estimators",
    "BetaTCVAE": "lucidae.estimators",
    "ConvAutoEncoder": "lucidae.estimators",
    "JumpReLUAutoEncoder": "lucidae.estimators",
    "LinearAutoEncoder": "lucidae.estimators",
    "SparseAutoEncoder": "lucidae.estimators",
    "TopKAutoEncoder": "lucidae.estimators",
    "VAE": "lucidae.estimators",
    "load": "lucidae.estimators.persist:load_any",
}
"""Public name to the module that defines it, imported when the name is first asked for."""


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'lucidae' has no attribute {name!r}")
    module, _, attribute = _LAZY[name].partition(":")  # "module:attribute" where the names differ
    value = getattr(importlib.import_module(module), attribute or name)
    globals()[name] = value  # asked once: later lookups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = [
    "AnomalyDetector",
    "AutoEncoder",
    "BetaTCVAE",
    "ConvAutoEncoder",
    "JumpReLUAutoEncoder",
    "LinearAutoEncoder",
    "LucidaeError",
    "SparseAutoEncoder",
    "TopKAutoEncoder",
    "VAE",
    "__version__",
    "load",
]
