"""``read_safetensors_header`` leans on ``safetensors.safe_open``: what it refuses, and that it reads no tensor.

The hostile model folders (through ``lucidae.load``) are in ``tests/test_reliability.py``
and ``tests/test_fuzz.py``; here the header reader is checked alone, and so is the
library behaviour it relies on.
"""

from __future__ import annotations

import json
import os
import struct

import pytest
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from lucidae.errors import CorruptFileError
from lucidae.schema import read_safetensors_header

resource = pytest.importorskip("resource")  # peak memory; POSIX only


@pytest.fixture
def weights(tmp_path):
    path = tmp_path / "m.safetensors"
    save_file({"a": torch.zeros(2, 3), "b": torch.zeros(5, dtype=torch.float64)}, str(path))
    return path


def _parts(path):
    raw = path.read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8 : 8 + length]), raw[8 + length :]


def _write(path, header, body, length=None):
    encoded = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(encoded) if length is None else length) + encoded + body)


def _safe_open_refuses(path, fragment):
    with pytest.raises(SafetensorError, match=fragment):
        with safe_open(path, framework="pt") as f:
            f.keys()


def test_the_header_of_a_valid_file(weights):
    assert read_safetensors_header(weights) == {
        "a": {"dtype": "F32", "shape": [2, 3]},
        "b": {"dtype": "F64", "shape": [5]},
    }


def test_a_2_to_the_40_byte_header_length(weights):
    header, body = _parts(weights)
    _write(weights, header, body, length=2**40)
    _safe_open_refuses(weights, "header too large")
    with pytest.raises(CorruptFileError, match=r"declares a 1099511627776-byte header, but the file has \d+ bytes"):
        read_safetensors_header(weights)


def test_a_truncated_file(weights):
    weights.write_bytes(weights.read_bytes()[:-4])
    _safe_open_refuses(weights, "incomplete metadata")
    with pytest.raises(CorruptFileError, match=r"tensor 'a' of shape \[2, 3\] and dtype F32 needs 24 bytes"):
        read_safetensors_header(weights)
    weights.write_bytes(b"\x01\x02\x03")
    with pytest.raises(CorruptFileError, match="is 3 bytes long; a safetensors file starts with an 8-byte length"):
        read_safetensors_header(weights)


def test_offsets_past_the_end(weights):
    header, body = _parts(weights)
    header["b"] = {"dtype": "F64", "shape": [10**9], "data_offsets": [0, 8 * 10**9]}
    _write(weights, header, body)
    _safe_open_refuses(weights, "invalid offset")
    with pytest.raises(CorruptFileError, match=r"'b' of shape \[1000000000\] .* needs 8000000000 bytes .* of the 64"):
        read_safetensors_header(weights)


def test_an_unknown_dtype(weights):
    header, body = _parts(weights)
    header["b"]["dtype"] = "Q7"
    _write(weights, header, body)
    _safe_open_refuses(weights, "unknown variant `Q7`")
    with pytest.raises(CorruptFileError, match="safetensors refuses its header .*unknown variant `Q7`"):
        read_safetensors_header(weights)


def test_an_extra_tensor_sharing_bytes_is_named_when_the_expected_tensors_are_known(weights):
    header, body = _parts(weights)
    header["sneaky"] = dict(header["b"])
    _write(weights, header, body)
    expected = {"a": ([2, 3], "F32"), "b": ([5], "F64")}
    with pytest.raises(CorruptFileError, match=r"holds tensor\(s\) \['sneaky'\] that config.json does not describe"):
        read_safetensors_header(weights, expected)
    with pytest.raises(CorruptFileError, match="safetensors refuses its header .*invalid offset"):
        read_safetensors_header(weights)


def test_a_huge_declared_shape_allocates_nothing(tmp_path):
    # A consistent 8 GB file, sparse on disk: safe_open accepts it, and reading its header
    # must not touch the 8 GB (the peak resident memory would jump by that much).
    path = tmp_path / "huge.safetensors"
    encoded = json.dumps({"big": {"dtype": "F64", "shape": [10**9], "data_offsets": [0, 8 * 10**9]}}).encode()
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(encoded)) + encoded)
        fh.truncate(8 + len(encoded) + 8 * 10**9)
    if os.stat(path).st_blocks * 512 > 10**8:
        pytest.skip("this file system does not keep sparse files sparse")
    before_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert read_safetensors_header(path) == {"big": {"dtype": "F64", "shape": [10**9]}}
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before_kb < 500_000  # KB: far below the 8 GB
