"""lucidae's own exceptions.

Every error lucidae raises for a reason of its own derives from :class:`LucidaeError`.
Where scikit-learn's estimator API expects a builtin type (``ValueError`` for bad
parameters or data, ``NotFittedError``), the lucidae class also derives from it, so
both ``except LucidaeError`` and ``except ValueError`` work.
"""

from __future__ import annotations


class LucidaeError(Exception):
    """Base class of every error lucidae raises on purpose.

    Examples
    --------
    >>> from lucidae.errors import LucidaeError, DataError
    >>> issubclass(DataError, LucidaeError) and issubclass(DataError, ValueError)
    True
    """


class DataError(LucidaeError, ValueError):
    """Input data is unusable: wrong shape, non-finite values, wrong dtype, bad file."""


class ConfigError(LucidaeError, ValueError):
    """A parameter or a configuration value is outside its allowed range."""


class CorruptFileError(LucidaeError, ValueError):
    """A saved model or data file is damaged, truncated, or not what it claims to be."""


class TrainingError(LucidaeError, RuntimeError):
    """Training could not go on (for example the loss became NaN)."""
