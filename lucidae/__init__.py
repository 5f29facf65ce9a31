"""lucidae: autoencoders you can understand.

Examples
--------
>>> from lucidae import AutoEncoder
>>> from lucidae.datasets import load_digits
>>> X = load_digits().X
>>> ae = AutoEncoder(latent_dim=8, epochs=2, verbose=0, random_state=0).fit(X)
>>> ae.transform(X).shape
(1797, 8)
"""

from lucidae._version import __version__
from lucidae.applications.anomaly import AnomalyDetector
from lucidae.errors import LucidaeError
from lucidae.estimators import (
    VAE,
    AutoEncoder,
    BetaTCVAE,
    ConvAutoEncoder,
    LinearAutoEncoder,
    SparseAutoEncoder,
    TopKAutoEncoder,
    load,
)

__all__ = [
    "AnomalyDetector",
    "AutoEncoder",
    "BetaTCVAE",
    "ConvAutoEncoder",
    "LinearAutoEncoder",
    "LucidaeError",
    "SparseAutoEncoder",
    "TopKAutoEncoder",
    "VAE",
    "__version__",
    "load",
]
