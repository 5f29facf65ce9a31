"""Fidelity and interpretability metrics, each with its formula and reference.

Where things live
-----------------
Every name below can be imported from ``lucidae.metrics`` itself; the submodules group them:

* :mod:`lucidae.metrics.reconstruction`: how close a reconstruction is to its input:
  :func:`fvu`, :func:`mse`, :func:`explained_variance`, :func:`psnr`, :func:`fidelity`
  and the streaming :class:`FidelityAccumulator`.
* :mod:`lucidae.metrics.sparsity`: which latents fire and how often: :func:`l0`,
  :func:`activation_density`, :func:`dead_latents`, :func:`dense_latents`,
  :func:`density_histogram`, :func:`hoyer`, :func:`collapsed_latents` (with its
  threshold :data:`COLLAPSE_VARIANCE`), :func:`near_zero_weights` and the streaming
  :class:`ActivationAccumulator`.
* :mod:`lucidae.metrics.disentanglement`: scores against known factors:
  :func:`discretize` (default :data:`N_BINS`), :func:`entropy`,
  :func:`mutual_information`, :func:`mig`, :func:`sap`, :func:`dci` (its result
  :class:`DCI`), :func:`dci_from_importance` and :func:`modularity`.
* :mod:`lucidae.metrics.structure`: the code in the data's own terms:
  :func:`principal_angles`, :func:`pca_angles`, :func:`latent_correlation`,
  :func:`linear_probe` and :func:`label_purity`.

Conventions
-----------
* ``codes`` are latent codes ``(n_samples, n_latents)``; ``factors`` are known generative
  factors or labels ``(n_samples, n_factors)`` (a 1-D array is one factor).
* Disentanglement metrics that need probabilities (MIG, SAP's discrete variant,
  modularity) discretise each continuous column into ``n_bins`` **equal-width**
  histogram bins over its observed range, as ``_histogram_discretize`` in
  disentanglement_lib (Locatello et al. 2019) does; the default of 20 bins is theirs.
  A factor with at most ``n_bins`` distinct values is used as it is (its values become
  category indices), so discrete factors such as shape or a class label are never merged.
* Mutual information and entropies are in nats.
"""

from __future__ import annotations

from lucidae.metrics.disentanglement import (
    DCI,
    N_BINS,
    dci,
    dci_from_importance,
    discretize,
    entropy,
    mig,
    modularity,
    mutual_information,
    sap,
)
from lucidae.metrics.reconstruction import FidelityAccumulator, explained_variance, fidelity, fvu, mse, psnr
from lucidae.metrics.sparsity import (
    COLLAPSE_VARIANCE,
    ActivationAccumulator,
    activation_density,
    collapsed_latents,
    dead_latents,
    dense_latents,
    density_histogram,
    hoyer,
    l0,
    near_zero_weights,
)
from lucidae.metrics.structure import label_purity, latent_correlation, linear_probe, pca_angles, principal_angles

__all__ = [
    "COLLAPSE_VARIANCE",
    "DCI",
    "N_BINS",
    "ActivationAccumulator",
    "FidelityAccumulator",
    "activation_density",
    "collapsed_latents",
    "dci",
    "dci_from_importance",
    "dead_latents",
    "dense_latents",
    "density_histogram",
    "discretize",
    "entropy",
    "explained_variance",
    "fidelity",
    "fvu",
    "hoyer",
    "l0",
    "label_purity",
    "latent_correlation",
    "linear_probe",
    "mig",
    "modularity",
    "mse",
    "mutual_information",
    "near_zero_weights",
    "pca_angles",
    "principal_angles",
    "psnr",
    "sap",
]
