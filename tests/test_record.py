"""The activation recorder: attention masks, batches of mixed lengths and provenance (issue #21, item 3).

The model here makes padding recognisable: the recorded layer outputs, for every position,
``(token id, position, 1)``; real tokens are ids >= 1 and padding is id 0, so a padding row
is any row whose first column is 0.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from lucidae import __version__
from lucidae.errors import ConfigError, CorruptFileError, DataError
from lucidae.record import _npy_header, read_provenance, record_activations, sidecar_path


class Encode(nn.Module):
    """Layer ``layer`` outputs (token id, position, 1) per position: (batch, seq, 3)."""

    def __init__(self, trim: bool = False):
        super().__init__()
        self.layer = nn.Identity()
        self.head = nn.Linear(3, 1)
        self.trim = trim  # drop the trailing all-padding columns of a batch, as dynamic padding does

    def forward(self, input_ids, attention_mask=None):
        if self.trim:
            keep = int((input_ids != 0).any(dim=0).nonzero().max()) + 1
            input_ids = input_ids[:, :keep]
        pos = torch.arange(input_ids.shape[1]).expand_as(input_ids)  # (batch, seq)
        feats = torch.stack([input_ids.float(), pos.float(), torch.ones_like(pos, dtype=torch.float32)], -1)
        return self.head(self.layer(feats))  # (batch, seq, 1)


def padded(sequences: list[list[int]], length: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad token lists with id 0; returns (ids, mask), both (batch, length)."""
    length = length or max(map(len, sequences))
    ids = torch.zeros(len(sequences), length, dtype=torch.long)
    mask = torch.zeros(len(sequences), length, dtype=torch.long)
    for i, seq in enumerate(sequences):
        ids[i, : len(seq)] = torch.tensor(seq)
        mask[i, : len(seq)] = 1
    return ids, mask


def expected_rows(sequences: list[list[int]]) -> np.ndarray:
    return np.array([[tok, pos, 1] for seq in sequences for pos, tok in enumerate(seq)], dtype=np.float32)


FIRST = [[1, 2, 3], [4], [5, 6]]  # padded to length 3
SECOND = [[7, 8, 9, 10, 11], [12, 13]]  # padded to length 5: a batch of another length


def dict_batches() -> list[dict[str, torch.Tensor]]:
    batches = []
    for group in (FIRST, SECOND):
        ids, mask = padded(group)
        batches.append({"input_ids": ids, "attention_mask": mask})
    return batches


# ---------------------------------------------------------------------- padding never becomes a row
def test_positions_mode_keeps_no_padding_row_across_batches_of_mixed_lengths(tmp_path):
    info: dict = {}
    acts = record_activations(Encode(), "layer", dict_batches(), positions=True, provenance=info)
    assert not (acts[:, 0] == 0).any()  # no padding row
    np.testing.assert_array_equal(acts, expected_rows(FIRST + SECOND))
    assert info["attention_mask"] == {
        "source": "attention_mask",
        "used": True,
        "batches_with_mask": 2,
        "masked_positions": 3 * 3 - 6 + 2 * 5 - 7,
    }

    path = tmp_path / "acts.npy"
    on_disk = record_activations(Encode(), "layer", dict_batches(), positions=True, out=path, sidecar=True)
    assert isinstance(on_disk, np.memmap)
    np.testing.assert_array_equal(np.load(path), expected_rows(FIRST + SECOND))
    on_disk[0, 0] = 99.0  # the returned memory map is writable, as before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["acts.npy", "acts.npy.meta.json"]  # stream renamed


def test_a_mask_given_as_a_tuple_element_or_in_a_sliced_dict(tmp_path):
    ids, mask = padded(FIRST + SECOND)  # one length, 5, with more padding
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(ids, mask), batch_size=2)
    np.testing.assert_array_equal(
        record_activations(Encode(), "layer", loader, positions=True, attention_mask=1), expected_rows(FIRST + SECOND)
    )
    # The default key does not apply to a tuple batch, whose second element is often a label.
    assert record_activations(Encode(), "layer", loader, positions=True).shape == (5 * 5, 3)

    sliced = {"input_ids": ids.numpy(), "attention_mask": mask.numpy().astype(bool)}
    path = tmp_path / "sliced.npy"
    record_activations(Encode(), "layer", sliced, batch_size=2, positions=True, out=path)
    np.testing.assert_array_equal(np.load(path), expected_rows(FIRST + SECOND))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sliced.npy", "sliced.npy.meta.json"]


def test_mixed_lengths_without_a_mask_are_concatenated():
    first, _ = padded([[1, 2, 3], [4, 5, 6]])
    second, _ = padded([[7, 8], [9, 10], [11, 12]])
    acts = record_activations(Encode(), "layer", [first, second], positions=True)
    np.testing.assert_array_equal(acts, expected_rows([[1, 2, 3], [4, 5, 6], [7, 8], [9, 10], [11, 12]]))
    with pytest.raises(DataError, match="positions=True or pool=True"):
        record_activations(Encode(), "layer", [first, second])  # flattened rows cannot change width


@pytest.mark.parametrize("to_disk", [False, True])
def test_a_known_sample_count_whose_lengths_change_midway_is_still_recorded(tmp_path, to_disk):
    # Sliced data plans n * positions rows from the first batch; the trimming model breaks that plan.
    sequences = [[1, 2], [3, 4], [5, 6, 7, 8], [9]]
    ids, _ = padded(sequences)
    out = tmp_path / "trim.npy" if to_disk else None
    acts = record_activations(Encode(trim=True), "layer", ids, batch_size=2, positions=True, out=out)
    trimmed = [[1, 2], [3, 4], [5, 6, 7, 8], [9, 0, 0, 0]]  # the second batch keeps its padding: no mask given
    np.testing.assert_array_equal(acts, expected_rows(trimmed))
    if to_disk:
        np.testing.assert_array_equal(np.load(out), expected_rows(trimmed))
        assert sorted(p.name for p in tmp_path.iterdir()) == ["trim.npy", "trim.npy.meta.json"]


def test_pooled_mode_averages_only_real_positions():
    info: dict = {}
    acts = record_activations(Encode(), "layer", dict_batches(), pool=True, provenance=info)
    means = np.array([[np.mean(s), (len(s) - 1) / 2, 1] for s in FIRST + SECOND], dtype=np.float32)
    np.testing.assert_allclose(acts, means, rtol=1e-6)
    assert info["mode"] == "pooled" and info["rows"] == info["samples"] == 5 and info["d"] == 3
    unmasked = record_activations(Encode(), "layer", dict_batches(), pool=True, attention_mask=None)
    assert unmasked[1, 0] == pytest.approx(4 / 3)  # [4, 0, 0]: padding counted when masks are ignored


def test_flattened_mode_is_unchanged_and_does_not_use_the_mask():
    ids, mask = padded(FIRST)
    info: dict = {}
    acts = record_activations(Encode(), "layer", [{"input_ids": ids, "attention_mask": mask}], provenance=info)
    assert acts.shape == (3, 9)
    assert info["mode"] == "flat" and info["attention_mask"]["used"] is False


# ---------------------------------------------------------------------- provenance
def test_provenance_in_memory_and_read_back_from_the_sidecar(tmp_path):
    in_memory: dict = {"caller": "kept"}
    record_activations(Encode(), "layer", dict_batches(), positions=True, provenance=in_memory)
    assert in_memory["caller"] == "kept"
    assert in_memory["model"] == f"{__name__}.Encode"
    assert in_memory["layer"] == "layer" and in_memory["layer_class"] == "torch.nn.modules.linear.Identity"
    assert (in_memory["mode"], in_memory["samples"], in_memory["rows"], in_memory["d"]) == ("positions", 5, 13, 3)
    assert in_memory["dtype"] == "float32" and in_memory["lucidae_version"] == __version__
    assert in_memory["file"] is None

    model = Encode()
    path = tmp_path / "sub" / "acts.npy"
    written: dict = {}
    # The layer given as a module is recorded by its dotted name.
    record_activations(model, model.layer, dict_batches(), pool=True, out=path, sidecar=True, provenance=written)
    assert sidecar_path(path) == tmp_path / "sub" / "acts.npy.meta.json"
    on_disk = json.loads(sidecar_path(path).read_text())
    assert on_disk == written == read_provenance(path) == read_provenance(sidecar_path(path))
    assert (on_disk["layer"], on_disk["mode"], on_disk["rows"], on_disk["file"]) == ("layer", "pooled", 5, "acts.npy")
    assert on_disk["attention_mask"]["used"] is True


def test_a_stale_or_damaged_sidecar_is_refused(tmp_path):
    path = tmp_path / "acts.npy"
    record_activations(Encode(), "layer", dict_batches(), positions=True, out=path, sidecar=True)
    np.save(path, np.zeros((4, 3), dtype=np.float32))  # the array replaced behind the sidecar's back
    with pytest.raises(CorruptFileError, match="13 rows of width 3"):
        read_provenance(path)

    # Recording again without a sidecar removes the old one, which no longer describes the file.
    record_activations(Encode(), "layer", dict_batches(), positions=True, out=path, sidecar=False)
    with pytest.raises(DataError, match=r"acts.npy.meta.json does not exist"):
        read_provenance(path)

    sidecar_path(path).write_text('{"format": "lucidae.record/1", "rows": "many"}')
    with pytest.raises(CorruptFileError, match="not a lucidae provenance record"):
        read_provenance(path)
    sidecar_path(path).write_text("{not json")
    with pytest.raises(CorruptFileError, match="not valid JSON"):
        read_provenance(path)


# ---------------------------------------------------------------------- errors
def test_bad_masks_and_options_are_refused_and_leave_no_stream_behind(tmp_path):
    ids, mask = padded(FIRST)
    with pytest.raises(DataError, match=r"has shape \(3, 2\).*positions \(3, 3\)"):
        record_activations(Encode(), "layer", [{"input_ids": ids, "attention_mask": mask[:, :2]}], positions=True)
    with pytest.raises(DataError, match="other than 0 and 1"):
        record_activations(Encode(), "layer", [{"input_ids": ids, "attention_mask": mask * 2}], positions=True)
    with pytest.raises(DataError, match="element 1 of a tuple batch"):
        record_activations(Encode(), "layer", [{"input_ids": ids}], positions=True, attention_mask=1)
    with pytest.raises(DataError, match="Sample 1 is all padding"):
        record_activations(Encode(), "layer", [{"input_ids": ids, "attention_mask": mask * (ids != 4)}], pool=True)
    path = tmp_path / "none.npy"
    with pytest.raises(DataError, match="no row is left"):
        record_activations(Encode(), "layer", [(ids, mask * 0)], positions=True, attention_mask=1, out=path)
    assert list(tmp_path.iterdir()) == []  # the row stream was removed
    with pytest.raises(ConfigError, match="positions=True and pool=True"):
        record_activations(Encode(), "layer", [ids], positions=True, pool=True)
    with pytest.raises(ConfigError, match="sidecar=True needs out="):
        record_activations(Encode(), "layer", [ids], sidecar=True)
    with pytest.raises(ConfigError, match="attention_mask=True"):
        record_activations(Encode(), "layer", [ids], attention_mask=True)
    with pytest.raises(DataError, match="differ in length"):
        record_activations(Encode(), "layer", {"input_ids": ids, "attention_mask": mask[:2]})


def test_the_streamed_header_has_room_for_any_row_count():
    # The row count is written over the header at the end, so its size must not depend on it.
    sizes = {len(_npy_header(rows, 4096)) for rows in (0, 7, 10**6, 10**19)}
    assert len(sizes) == 1 and sizes.pop() % 64 == 0
