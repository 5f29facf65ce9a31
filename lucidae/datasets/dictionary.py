"""Data made from a known sparse dictionary, to check that a sparse autoencoder finds it.

Each sample is a sparse, non-negative combination of a few unit-norm "atoms" drawn at
random in a higher-dimensional space than the data has room for (more atoms than
features: superposition). A sparse autoencoder that works should learn decoder columns
that match the true atoms; :func:`atom_recovery` measures how well.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lucidae.datasets.base import Dataset
from lucidae.errors import DataError

COEFFICIENT_RANGE = (0.5, 1.5)
"""Magnitudes of the active coefficients are drawn uniformly from this range: bounded away
from zero so that every active atom is visible in its sample, as in the toy models of
Sharkey et al. (2022)."""


@dataclass
class DictionaryDataset(Dataset):
    """A :class:`Dataset` that also carries the dictionary it was generated from.

    ``factors`` holds the true sparse coefficients, shape ``(n_samples, n_atoms)``.

    Examples
    --------
    >>> ds = make_sparse_dictionary(10, n_atoms=8, n_features=4, random_state=0)
    >>> ds.atoms.shape, ds.factors.shape
    ((8, 4), (10, 8))
    """

    atoms: np.ndarray | None = None
    """The true dictionary, one unit-norm atom per row, shape ``(n_atoms, n_features)``."""


def make_sparse_dictionary(
    n_samples: int,
    n_atoms: int = 256,
    n_features: int = 64,
    active: tuple[int, int] = (3, 5),
    nonnegative: bool = True,
    noise: float = 0.0,
    random_state: int | np.random.Generator | None = None,
) -> DictionaryDataset:
    """Samples that are sparse combinations of random unit atoms: ground truth for sparse autoencoders.

    ``X = C @ atoms + noise`` where ``atoms`` has ``n_atoms`` random unit-norm rows in
    ``n_features`` dimensions and each row of ``C`` has between ``active[0]`` and
    ``active[1]`` non-zero coefficients (count uniform over that range, atoms chosen
    uniformly without replacement), with magnitudes uniform in :data:`COEFFICIENT_RANGE`.

    Parameters
    ----------
    n_samples : int
        Number of rows.
    n_atoms : int, default=256
        Size of the true dictionary; may exceed ``n_features`` (superposition).
    n_features : int, default=64
        Dimension of each sample.
    active : (int, int), default=(3, 5)
        Smallest and largest number of active atoms per sample, inclusive.
    nonnegative : bool, default=True
        Non-negative coefficients (as feature activations are); else random signs.
    noise : float, default=0.0
        Standard deviation of Gaussian noise added to every entry.
    random_state : int, Generator or None
        Seed for reproducible data.

    Returns
    -------
    DictionaryDataset
        ``X`` (float32), ``factors`` = true coefficients ``(n_samples, n_atoms)`` and
        ``atoms`` = the true dictionary ``(n_atoms, n_features)``, unit rows.

    Raises
    ------
    DataError
        When a size is not positive or ``active`` is not a range within ``[1, n_atoms]``.

    Examples
    --------
    >>> ds = make_sparse_dictionary(100, random_state=0)
    >>> ds.X.shape, ds.atoms.shape
    ((100, 64), (256, 64))
    >>> counts = (ds.factors != 0).sum(axis=1)
    >>> int(counts.min()), int(counts.max())
    (3, 5)
    """
    for name, value in (("n_samples", n_samples), ("n_atoms", n_atoms), ("n_features", n_features)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise DataError(f"{name}={value!r} is invalid: expected an integer >= 1.")
    low, high = (int(a) for a in active)
    if not 1 <= low <= high <= n_atoms:
        raise DataError(
            f"active={active!r} is invalid: expected (low, high) with 1 <= low <= high <= n_atoms={n_atoms}."
        )
    if not np.isfinite(noise) or noise < 0:
        raise DataError(f"noise={noise!r} is invalid: expected a standard deviation >= 0.")
    rng = np.random.default_rng(random_state)
    atoms = rng.standard_normal((n_atoms, n_features))  # (atoms, features)
    atoms /= np.linalg.norm(atoms, axis=1, keepdims=True)
    counts = rng.integers(low, high + 1, size=n_samples)  # (n,)
    # A random permutation per row, cut at each row's count: atoms without replacement.
    chosen = rng.random((n_samples, n_atoms)).argsort(axis=1)[:, :high]  # (n, high)
    keep = np.arange(high)[None, :] < counts[:, None]  # (n, high)
    magnitudes = rng.uniform(*COEFFICIENT_RANGE, size=(n_samples, high))  # (n, high)
    if not nonnegative:
        magnitudes *= rng.choice([-1.0, 1.0], size=magnitudes.shape)
    coefficients = np.zeros((n_samples, n_atoms))  # (n, atoms)
    rows = np.broadcast_to(np.arange(n_samples)[:, None], chosen.shape)
    coefficients[rows[keep], chosen[keep]] = magnitudes[keep]
    X = coefficients @ atoms  # (n, features)
    if noise > 0:
        X += noise * rng.standard_normal(X.shape)
    return DictionaryDataset(
        X=X.astype(np.float32),
        name="sparse_dictionary",
        description=(
            f"{n_samples} sparse combinations of {low}-{high} of {n_atoms} random unit atoms in "
            f"{n_features} dimensions ({'non-negative' if nonnegative else 'signed'} coefficients, "
            f"noise sd {noise:g})."
        ),
        factors=coefficients.astype(np.float32),
        factor_names=[f"atom{i}" for i in range(n_atoms)],
        atoms=atoms.astype(np.float32),
    )


def atom_recovery(true_atoms: np.ndarray, learned_atoms: np.ndarray) -> float:
    """Mean over true atoms of the best cosine similarity with any learned atom.

    1.0 means every true atom has an exact match (up to a positive scale) in the learned
    dictionary. The sign counts: a learned column pointing the opposite way is no match.
    Random directions in 64 dimensions score about 0.3 against 256 atoms.

    Parameters
    ----------
    true_atoms : array of shape (n_true, n_features)
    learned_atoms : array of shape (n_learned, n_features)
        For a sparse autoencoder, its decoder columns (``module_.atoms``).

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> A = np.eye(3)
    >>> atom_recovery(A, np.vstack([2 * A[:2], [1.0, 1.0, 0.0]]))  # third atom missed: (1 + 1 + 0) / 3
    0.6666666666666666
    """
    A = np.asarray(true_atoms, dtype=np.float64)
    B = np.asarray(learned_atoms, dtype=np.float64)
    if A.ndim != 2 or B.ndim != 2 or A.shape[1] != B.shape[1]:
        raise DataError(
            f"atom_recovery needs two 2-D arrays with the same number of columns, got {A.shape} and {B.shape}."
        )
    A = A / np.maximum(np.linalg.norm(A, axis=1, keepdims=True), 1e-12)
    B = B / np.maximum(np.linalg.norm(B, axis=1, keepdims=True), 1e-12)
    return float((A @ B.T).max(axis=1).mean())
