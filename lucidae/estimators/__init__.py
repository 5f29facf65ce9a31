"""scikit-learn estimators: thin wrappers that validate, scale, build, train and save.

One file per family, on a shared base:

- :mod:`~lucidae.estimators.base`: :class:`BaseAutoEncoder` (parameters to configs, fit,
  transform, save) and the registry of estimator classes;
- :mod:`~lucidae.estimators.dense`: :class:`AutoEncoder`, :class:`LinearAutoEncoder`;
- :mod:`~lucidae.estimators.sparse`: :class:`SparseAutoEncoder`, :class:`TopKAutoEncoder`,
  :class:`JumpReLUAutoEncoder`;
- :mod:`~lucidae.estimators.image`: :class:`ConvAutoEncoder`, :class:`VAE`, :class:`BetaTCVAE`;
- :mod:`~lucidae.estimators.persist`: :func:`load`.

Examples
--------
>>> from lucidae.estimators import AutoEncoder, estimator_for
>>> estimator_for("dense") is AutoEncoder
True
"""

from lucidae.estimators.base import (
    COLLAPSE_CHECK_ROWS,
    DEFAULT_BETA,
    DEFAULT_BETA_FEATURES,
    ESTIMATOR_ONLY,
    ESTIMATORS,
    BaseAutoEncoder,
    estimator_for,
    init_seed,
    run_score,
)
from lucidae.estimators.dense import AutoEncoder, LinearAutoEncoder
from lucidae.estimators.image import VAE, BetaTCVAE, ConvAutoEncoder
from lucidae.estimators.persist import (
    LOADERS,
    NotAnEstimatorError,
    load,
    read_inner_estimator,
    write_inner_estimator,
)
from lucidae.estimators.sparse import JumpReLUAutoEncoder, SparseAutoEncoder, TopKAutoEncoder

__all__ = [
    "COLLAPSE_CHECK_ROWS",
    "DEFAULT_BETA",
    "DEFAULT_BETA_FEATURES",
    "ESTIMATORS",
    "ESTIMATOR_ONLY",
    "LOADERS",
    "VAE",
    "AutoEncoder",
    "BaseAutoEncoder",
    "BetaTCVAE",
    "ConvAutoEncoder",
    "JumpReLUAutoEncoder",
    "LinearAutoEncoder",
    "NotAnEstimatorError",
    "SparseAutoEncoder",
    "TopKAutoEncoder",
    "estimator_for",
    "init_seed",
    "load",
    "read_inner_estimator",
    "run_score",
    "write_inner_estimator",
]
