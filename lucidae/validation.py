"""Former home of lucidae's input checks, kept so that old imports still work.

The checks now live in two modules, one per job: :mod:`lucidae.arrays` (arrays and data
files a user hands lucidae) and :mod:`lucidae.schema` (saved model folders).
"""

from lucidae.arrays import MAX_NPY_BYTES, check_finite, check_npy, check_npz, check_numeric
from lucidae.schema import (
    CONFIG_KEYS,
    MAX_HEADER_BYTES,
    MAX_NAME_LENGTH,
    SAFETENSORS_DTYPES,
    SCALER_KINDS,
    check_tensors,
    expected_tensors,
    read_safetensors_header,
    validate_saved_config,
)

__all__ = [
    "CONFIG_KEYS",
    "MAX_HEADER_BYTES",
    "MAX_NAME_LENGTH",
    "MAX_NPY_BYTES",
    "SAFETENSORS_DTYPES",
    "SCALER_KINDS",
    "check_finite",
    "check_npy",
    "check_npz",
    "check_numeric",
    "check_tensors",
    "expected_tensors",
    "read_safetensors_header",
    "validate_saved_config",
]
