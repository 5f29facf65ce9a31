"""Entropy coders for the quantised latent codes of :mod:`lucidae.applications.compress`.

Two coders live here, one per stream format version.

Version 2 (:func:`encode_columns` / :func:`decode_columns`, what ``compress`` writes): each
latent unit gets a static model fitted on the batch being compressed and stored in the
stream, and the symbols are coded with `constriction`'s ANS coder (Rust; 50 to 75 times
faster end to end than the Python coder below, ``benchmarks/compression.py --speed``).
The model of a unit is a histogram over ``2**r`` equal bins of its ``2**bits`` levels
(``r = 0`` is the uniform model, ``r = bits`` one bin per level), the levels of a bin
weighing the same or following the line between neighbouring bin centres. The counts are
stored as ``round(sqrt(count) / step)`` (the square root is the variance-stabilising
transform of a count, so one step costs about the same in every bin), differenced and
Rice-coded. For each unit, :func:`choose_model` tries every resolution, step of
:data:`STEPS` and bin shape and keeps the one with the lowest *measured* total: the exact
stored-model bits plus the ideal code length of the unit's symbols under the stored model.
A few hundred codes pick 8 to 16 interpolated bins (a few bytes of table); 20,000 codes of
8 bits pick one bin per level (about 100 bytes per unit, 0.5% of the payload).

Only integers are stored and the decoder rebuilds the weights with additions,
multiplications and dyadic fractions, so encoder and decoder hand `constriction` the same
numbers on any machine; no ``exp`` or ``erf`` whose last bit could differ between
platforms. A quantised Gaussian (two float32 parameters per unit) was tried as a candidate
on the codes of 297 and 20,000 digits at 8 bits and lost to the histograms on every unit,
so it is not offered.

Version 1 (:func:`encode` / :func:`decode`, kept to read old streams): an adaptive arithmetic
coder for small integer symbols, written to be checked. Each stream (one per latent unit)
has its own adaptive model, so no table is sent: the decoder rebuilds the same counts as it
goes. Symbols are coded bit by bit through a binary tree of adaptive contexts (as in CABAC
and most modern image codecs). The coder is the classic integer arithmetic coder of
Witten, Neal and Cleary (1987, "Arithmetic coding for data compression", CACM 30(6))
with 32-bit registers and pending ("follow") bits. Its output length is within a few bytes
of the models' ideal code length ``sum(-log2 p)`` (:func:`ideal_bits`, computed
independently), which the tests check.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import constriction
import numpy as np

from lucidae.errors import CorruptFileError, DataError

PRECISION = 32
TOP = 1 << PRECISION
HALF = TOP >> 1
QUARTER = TOP >> 2

BINARY_INCREMENT = 2
"""Added to a bit's count each time it is coded; with counts starting at 1 this is the
Krichevsky-Trofimov estimator ``(n_bit + 1/2) / (n + 1)``, near-optimal for a fixed source."""
BINARY_MAX_TOTAL = 1 << 13
"""A context's counts are halved when their sum exceeds this, so it can follow a drifting source."""


def _contexts(n_streams: int, alphabet: int) -> list[list[list[int]]]:
    """Per stream, per node of the binary tree over the alphabet, the counts ``[zeros, ones]``."""
    return [[[1, 1] for _ in range(alphabet)] for _ in range(n_streams)]


def _bits_of(alphabet: int) -> int:
    if alphabet < 2 or alphabet & (alphabet - 1):
        raise ValueError(f"alphabet must be a power of two >= 2, got {alphabet}.")
    return alphabet.bit_length() - 1


def _update(counts: list[int], bit: int) -> None:
    counts[bit] += BINARY_INCREMENT
    if counts[0] + counts[1] > BINARY_MAX_TOTAL:
        counts[0] = (counts[0] + 1) // 2
        counts[1] = (counts[1] + 1) // 2


def encode(streams: Sequence[Sequence[int]], alphabet: int) -> bytes:
    """Arithmetic-code interleaved symbol streams, each with its own adaptive binary-tree model.

    A symbol of ``b = log2(alphabet)`` bits is coded bit by bit, most significant first;
    each bit has an adaptive probability that depends on the stream and on the bits
    before it (a node of a binary tree over the alphabet). The top bits' contexts fill
    up after a handful of symbols, so a short stream over 256 levels costs far less than
    with one 256-way count table that must learn every level separately.

    Parameters
    ----------
    streams : sequence of sequences of int
        ``streams[j][i]`` is symbol ``i`` of stream ``j`` (for latent codes: stream = latent
        unit, ``i`` = image). Symbols are coded in the order ``i`` then ``j``. All streams
        have the same length.
    alphabet : int
        A power of two; symbols are in ``range(alphabet)``.

    Returns
    -------
    bytes

    Examples
    --------
    >>> data = encode([[0, 1, 1, 1, 1, 1, 1, 1]], alphabet=16)
    >>> decode(data, n_streams=1, length=8, alphabet=16)
    [[0, 1, 1, 1, 1, 1, 1, 1]]
    """
    n_bits = _bits_of(alphabet)
    models = _contexts(len(streams), alphabet)
    length = len(streams[0]) if len(streams) else 0
    if any(len(s) != length for s in streams):
        raise ValueError("all streams must have the same length.")
    out: list[int] = []  # one int per bit; packed at the end (a per-bit method call costs more)
    emit, emit_many = out.append, out.extend
    low, high, pending = 0, TOP - 1, 0
    for i in range(length):
        for model, stream in zip(models, streams):
            symbol = int(stream[i])
            if not 0 <= symbol < alphabet:
                raise ValueError(f"symbol {symbol} is outside range({alphabet}).")
            node = 1
            for shift in range(n_bits - 1, -1, -1):
                bit = (symbol >> shift) & 1
                counts = model[node]
                total = counts[0] + counts[1]
                span = high - low + 1
                split = span * counts[0] // total
                if bit:
                    low = low + split
                else:
                    high = low + split - 1
                while True:
                    if high < HALF:
                        emit(0)
                        if pending:
                            emit_many([1] * pending)
                            pending = 0
                    elif low >= HALF:
                        emit(1)
                        if pending:
                            emit_many([0] * pending)
                            pending = 0
                        low -= HALF
                        high -= HALF
                    elif low >= QUARTER and high < 3 * QUARTER:
                        pending += 1
                        low -= QUARTER
                        high -= QUARTER
                    else:
                        break
                    low <<= 1
                    high = (high << 1) | 1
                _update(counts, bit)
                node = 2 * node + bit
    # Two more bits pin a value inside the final interval whatever follows (zeros).
    pending += 1
    bit = 0 if low < QUARTER else 1
    emit(bit)
    emit_many([1 - bit] * pending)
    return np.packbits(np.asarray(out, dtype=np.uint8)).tobytes()


def decode(data: bytes, n_streams: int, length: int, alphabet: int) -> list[list[int]]:
    """Inverse of :func:`encode`: ``n_streams`` streams of ``length`` symbols each.

    A damaged input decodes to wrong symbols rather than failing; callers protect the
    payload with a checksum (the compressed image format has a CRC).

    Examples
    --------
    >>> decode(encode([[3, 3], [0, 2]], alphabet=4), n_streams=2, length=2, alphabet=4)
    [[3, 3], [0, 2]]
    """
    n_bits = _bits_of(alphabet)
    models = _contexts(n_streams, alphabet)
    out: list[list[int]] = [[0] * length for _ in range(n_streams)]
    # Reads past the end give zeros, as the encoder's padding does.
    stream = np.unpackbits(np.frombuffer(bytes(data), dtype=np.uint8)).tolist() + [0] * PRECISION
    pos = 0
    value = 0
    for _ in range(PRECISION):
        value = (value << 1) | stream[pos]
        pos += 1
    low, high = 0, TOP - 1
    for i in range(length):
        for j, model in enumerate(models):
            node = 1
            for _ in range(n_bits):
                counts = model[node]
                total = counts[0] + counts[1]
                span = high - low + 1
                split = span * counts[0] // total
                bit = 1 if value >= low + split else 0
                if bit:
                    low = low + split
                else:
                    high = low + split - 1
                while True:
                    if high < HALF:
                        pass
                    elif low >= HALF:
                        low -= HALF
                        high -= HALF
                        value -= HALF
                    elif low >= QUARTER and high < 3 * QUARTER:
                        low -= QUARTER
                        high -= QUARTER
                        value -= QUARTER
                    else:
                        break
                    low <<= 1
                    high = (high << 1) | 1
                    value = (value << 1) | (stream[pos] if pos < len(stream) else 0)
                    pos += 1
                _update(counts, bit)
                node = 2 * node + bit
            out[j][i] = node - alphabet
    return out


def ideal_bits(streams: Sequence[Sequence[int]], alphabet: int) -> float:
    """The models' ideal code length in bits, ``sum(-log2 p)``, computed the slow, obvious way.

    Each symbol's probability is the product of its bits' adaptive probabilities, using
    plain dictionaries instead of the coder's tables. The arithmetic coder gets within a
    few bytes of this; the gap to the empirical (order-0) entropy is the price of
    learning the probabilities on the fly.

    Examples
    --------
    >>> round(ideal_bits([[0]], alphabet=4), 6)
    2.0
    """
    n_bits = _bits_of(alphabet)
    total_bits = 0.0
    for stream in streams:
        counts: dict[str, list[int]] = {}
        for s in stream:
            prefix = ""
            for b in format(s, f"0{n_bits}b"):
                c = counts.setdefault(prefix, [1, 1])
                total_bits -= math.log2(c[int(b)] / (c[0] + c[1]))
                _update(c, int(b))
                prefix += b
    return total_bits


# --------------------------------------------------------------------------- version 2: static models, ANS coder
STEPS = (0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0)
"""Candidate steps for the square roots of the stored bin counts. All are dyadic fractions, so
the decoder's weights ``(s * step) ** 2`` are exact floats on every machine."""
MAX_RICE = 24
UNIT_HEAD = ((4, "r"), (3, "step"), (1, "smooth"), (1, "diff2"), (5, "k"))
"""The fixed-width fields (bits, name) that open each unit's model in the stream, most significant bit first."""
UNIT_HEAD_BITS = sum(width for width, _ in UNIT_HEAD)
"""Largest Rice parameter: a stored value is at most ``sqrt(2**28) / 0.75`` (the symbol limit), under 2**15."""


class UnitModel(NamedTuple):
    """The static model of one latent unit, as stored in a version 2 stream.

    ``r``: the model has ``2**r`` equal bins; ``step``: index into :data:`STEPS`;
    ``k``: Rice parameter of the stored table; ``s``: per bin, ``round(sqrt(count) / step)``;
    ``smooth``: 1 if the levels' weights are interpolated linearly between bin centres, 0 if
    flat within each bin; ``diff2``: 1 if the table is stored as second differences (a smooth
    table's are smaller), 0 for first differences.
    """

    r: int
    step: int
    k: int
    s: np.ndarray
    smooth: int = 0
    diff2: int = 0


def _zigzag(s: np.ndarray, diff2: int = 0) -> np.ndarray:
    """First (or second) differences of the table along its last axis, mapped to 0, 1, 2, ... (0, -1, 1, -2, ...)."""
    d = np.diff(s, axis=-1, prepend=0)
    if diff2:
        d = np.diff(d, axis=-1, prepend=0)
    return np.where(d >= 0, 2 * d, -2 * d - 1)


def _level_weights(density: np.ndarray, width: int, smooth: bool) -> np.ndarray:
    """Per-level weights from per-bin densities ``(..., bins)``: flat in each bin, or linear between bin centres.

    Only additions, multiplications and exact dyadic fractions: the same bits on every machine.
    """
    if not smooth or width == 1:
        return np.repeat(density, width, axis=-1)
    bins = density.shape[-1]
    # level x sits t = (x - (width - 1) / 2) / width bin widths after the first bin's centre
    t = (np.arange(bins * width) - (width - 1) / 2) / width
    left = np.clip(np.floor(t), 0, bins - 1).astype(np.int64)
    right = np.minimum(left + 1, bins - 1)
    f = np.clip(t - left, 0.0, 1.0)  # beyond the outer centres the density stays flat
    return density[..., left] * (1.0 - f) + density[..., right] * f


def weights(model: UnitModel, bits: int) -> np.ndarray:
    """The unnormalised probabilities of the ``2**bits`` levels under a unit's stored model.

    A bin's density is its quantised count ``(s * step) ** 2``; its levels weigh the same
    (``smooth=0``) or follow the straight line between neighbouring bin centres (``smooth=1``,
    better for a smooth distribution cut into few bins).

    Examples
    --------
    >>> weights(UnitModel(r=1, step=1, k=0, s=np.array([2, 1])), bits=2).tolist()
    [4.0, 4.0, 1.0, 1.0]
    >>> weights(UnitModel(r=1, step=1, k=0, s=np.array([2, 1]), smooth=1), bits=2).tolist()
    [4.0, 3.25, 1.75, 1.0]
    """
    density = (model.s.astype(np.float64) * STEPS[model.step]) ** 2
    return _level_weights(density, 1 << (bits - model.r), bool(model.smooth))


def choose_model(counts: np.ndarray, bits: int) -> tuple[UnitModel, float]:
    """The stored model of one unit with the lowest measured total cost, and that cost in bits.

    Tries every resolution ``r`` in ``0..bits``, every step of :data:`STEPS` and both bin
    shapes (flat, interpolated); the cost of each is the exact length of its stored model
    (unit head and Rice-coded table) plus the ideal code length ``sum(-log2 p)`` of the
    unit's symbols under the quantised model (the ANS coder stays within a few bytes of it).

    Parameters
    ----------
    counts : ndarray of int, shape (2**bits,)
        How often each level occurs in the unit's column.
    bits : int

    Examples
    --------
    >>> model, cost = choose_model(np.array([0, 0, 0, 90, 0, 0, 0, 10]), bits=3)
    >>> model.r, model.s.tolist(), round(cost)  # 47 bits of symbols, the rest is the table and header
    (3, [0, 0, 0, 3, 0, 0, 0, 1], 82)
    """
    counts = np.asarray(counts, dtype=np.int64)
    if counts.sum() == 0:  # an empty batch: nothing to code, the cheapest table
        return UnitModel(0, STEPS.index(1.0), 0, np.zeros(1, np.int64)), 1.0
    steps = np.asarray(STEPS)
    ks = np.arange(MAX_RICE + 1)
    best: tuple[float, UnitModel] | None = None
    occurs = counts > 0
    for r in range(bits + 1):
        width = 1 << (bits - r)
        cb = counts.reshape(1 << r, width).sum(axis=1)  # (bins,)
        used = cb > 0
        S = np.rint(np.sqrt(cb)[None, :] / steps[:, None]).astype(np.int64)  # (step, bins)
        S[:, used] = np.maximum(S[:, used], 1)  # a bin that occurs must keep a nonzero weight
        Z = np.stack([_zigzag(S), _zigzag(S, diff2=1)])  # (order, step, bins)
        rice = (Z[..., None] >> ks).sum(axis=2) + Z.shape[2] * (ks + 1)  # (order, step, k)
        order = rice.min(axis=2).argmin(axis=0)  # (step,): the cheaper differences for each step
        rice = rice[order, np.arange(len(steps))]  # (step, k)
        D = (S * steps[:, None]) ** 2
        for smooth in (0, 1) if width > 1 else (0,):
            W = _level_weights(D, width, bool(smooth))  # (step, levels)
            coded = -(counts[occurs] * np.log2(W[:, occurs] / W.sum(axis=1, keepdims=True))).sum(axis=1)
            total = coded + rice.min(axis=1) + UNIT_HEAD_BITS
            i = int(np.argmin(total))
            if best is None or total[i] < best[0]:
                best = (float(total[i]), UnitModel(r, i, int(np.argmin(rice[i])), S[i], smooth, int(order[i])))
    assert best is not None
    return best[1], best[0]


def write_models(models: Sequence[UnitModel]) -> bytes:
    """Serialise unit models as one bit string: every unit's :data:`UNIT_HEAD` fields, then the Rice-coded tables.

    Examples
    --------
    >>> m = UnitModel(r=2, step=1, k=1, s=np.array([3, 5, 5, 0]), smooth=1, diff2=1)
    >>> data = write_models([m])
    >>> back = read_models(data, n_units=1, bits=4)[0]
    >>> (back.r, back.step, back.k, back.s.tolist(), back.smooth, back.diff2)
    (2, 1, 1, [3, 5, 5, 0], 1, 1)
    """
    fields = np.array([[getattr(m, name) for _, name in UNIT_HEAD] for m in models], np.int64)
    fields = fields.reshape(-1, len(UNIT_HEAD))
    head = np.concatenate(
        [(fields[:, [i]] >> np.arange(width - 1, -1, -1)) & 1 for i, (width, _) in enumerate(UNIT_HEAD)], axis=1
    ).ravel()
    z = np.concatenate([_zigzag(m.s, m.diff2) for m in models]) if models else np.zeros(0, np.int64)
    k = np.concatenate([np.full(len(m.s), m.k, np.int64) for m in models]) if models else np.zeros(0, np.int64)
    quotient = z >> k
    lengths = quotient + 1 + k  # unary quotient, its terminating 0, k remainder bits
    ends = np.cumsum(lengths)
    starts = ends - lengths
    n_head = len(head)
    out = np.zeros(n_head + (int(ends[-1]) if len(z) else 0), np.uint8)
    out[:n_head] = head
    starts, ends = starts + n_head, ends + n_head
    first_one = np.repeat(starts - (np.cumsum(quotient) - quotient), quotient)
    out[first_one + np.arange(int(quotient.sum()))] = 1
    for b in range(int(k.max()) if len(k) else 0):  # remainder bit b (from the least significant)
        has = k > b
        out[(ends - 1 - b)[has]] = (z[has] >> b) & 1
    return np.packbits(out).tobytes()


def read_models(data: bytes, n_units: int, bits: int) -> list[UnitModel]:
    """Inverse of :func:`write_models`, checking every field.

    Raises
    ------
    CorruptFileError
        When a field is out of range, the tables run past the end or leave bytes over.

    Examples
    --------
    >>> read_models(bytes([0b00000010, 0b00000011, 0]), n_units=1, bits=8)[0]  # r=0: the uniform model
    UnitModel(r=0, step=1, k=0, s=array([1]), smooth=0, diff2=0)
    >>> read_models(bytes([0b10010000, 0]), n_units=1, bits=4)
    Traceback (most recent call last):
    ...
    lucidae.errors.CorruptFileError: The stream's model of latent unit 0 is damaged: 2**9 bins for 4-bit levels.
    """
    bitstream = np.unpackbits(np.frombuffer(bytes(data), dtype=np.uint8))
    n_bits = len(bitstream)
    if n_bits < UNIT_HEAD_BITS * n_units:
        raise CorruptFileError(
            f"The stream's model section is truncated: {len(data)} bytes for {n_units} latent units "
            f"(needs at least {-(-UNIT_HEAD_BITS * n_units // 8)}). Get the complete file again."
        )
    head = bitstream[: UNIT_HEAD_BITS * n_units].reshape(n_units, UNIT_HEAD_BITS).astype(np.int64)
    fields, at = [], 0
    for width, _ in UNIT_HEAD:
        fields.append(head[:, at : at + width] @ (1 << np.arange(width - 1, -1, -1)))
        at += width
    # next_zero[p]: the first 0 bit at or after p (the end of a unary quotient), n_bits if none
    positions = np.where(bitstream == 0, np.arange(n_bits), n_bits)
    next_zero = np.minimum.accumulate(positions[::-1])[::-1].tolist() + [n_bits]
    padded = np.concatenate([bitstream, np.zeros(MAX_RICE, np.uint8)]).astype(np.int64)
    windows: dict[int, list[int]] = {}  # k -> the k-bit number starting at each position
    models, pos = [], UNIT_HEAD_BITS * n_units
    for unit in range(n_units):
        r, step, smooth, diff2, k = (int(f[unit]) for f in fields)
        if r > bits or step >= len(STEPS) or k > MAX_RICE:
            raise CorruptFileError(
                f"The stream's model of latent unit {unit} is damaged: "
                + (f"2**{r} bins for {bits}-bit levels." if r > bits else f"step {step}, Rice parameter {k}.")
            )
        if k not in windows:
            win = np.zeros(n_bits + 1, np.int64)
            for i in range(k):
                win = (win << 1) | padded[i : i + n_bits + 1]
            windows[k] = win.tolist()
        win_k = windows[k]
        z = [0] * (1 << r)
        for i in range(1 << r):
            end = next_zero[pos] if pos < n_bits else n_bits
            if end + 1 + k > n_bits:
                raise CorruptFileError(
                    f"The stream's model tables are truncated (latent unit {unit}). Get the complete file again."
                )
            z[i] = ((end - pos) << k) | win_k[end + 1]
            pos = end + 1 + k
        d = np.asarray(z, dtype=np.int64)
        s = np.cumsum(np.where(d % 2 == 0, d // 2, -(d + 1) // 2))
        if diff2:
            s = np.cumsum(s)
        if (s < 0).any():
            raise CorruptFileError(f"The stream's model of latent unit {unit} is damaged: a negative count.")
        models.append(UnitModel(r, step, k, s, smooth, diff2))
    if n_bits - pos >= 8 or bitstream[pos:].any():
        raise CorruptFileError(
            f"The stream's model section has {(n_bits - pos) // 8} bytes after its tables; it is damaged."
        )
    return models


def _ans_models(models: Sequence[UnitModel], bits: int) -> list[Any]:
    # perfect=False: the fast, documented-deterministic quantisation of the weights (encoder and decoder must agree)
    return [constriction.stream.model.Categorical(weights(m, bits), perfect=False) for m in models]


def encode_columns(q: np.ndarray, bits: int) -> tuple[bytes, bytes]:
    """Code each column of ``q`` with its own static model (:func:`choose_model`) and constriction's ANS coder.

    Parameters
    ----------
    q : ndarray of int, shape (n, units)
        Levels in ``range(2**bits)``; column ``j`` is latent unit ``j``.
    bits : int
        1 to 12.

    Returns
    -------
    models : bytes
        The unit models (:func:`write_models`); the decoder needs them.
    payload : bytes
        The ANS coder's 32-bit words, little-endian, column 0 first out.

    Examples
    --------
    >>> q = np.array([[0, 3], [1, 3], [1, 2], [1, 3]])
    >>> models, payload = encode_columns(q, bits=2)
    >>> decode_columns(models, payload, n_samples=4, n_units=2, bits=2).tolist() == q.tolist()
    True
    """
    q = np.asarray(q)
    n, n_units = q.shape
    if q.size and (q.min() < 0 or q.max() >= 1 << bits):
        raise DataError(
            f"Symbols run from {q.min()} to {q.max()}; expected levels in range({1 << bits}) for {bits} bits. "
            "Quantise the codes first (lucidae.applications.compress.quantise)."
        )
    models = [choose_model(np.bincount(q[:, j], minlength=1 << bits), bits)[0] for j in range(n_units)]
    coder = constriction.stream.stack.AnsCoder()
    if n:
        # a stack: the last column pushed is the first decoded, so push them from the last to the first
        for j, model in reversed(list(enumerate(_ans_models(models, bits)))):
            coder.encode_reverse(np.ascontiguousarray(q[:, j], dtype=np.int32), model)
    return write_models(models), coder.get_compressed().astype("<u4").tobytes()


def decode_columns(models: bytes, payload: bytes, n_samples: int, n_units: int, bits: int) -> np.ndarray:
    """Inverse of :func:`encode_columns`: the ``(n_samples, n_units)`` int64 levels.

    Raises
    ------
    CorruptFileError
        When the models are damaged, or the payload is not a whole ANS stream that the models
        consume exactly (a damaged payload almost always leaves words over or runs short).

    Examples
    --------
    >>> decode_columns(b"", b"", n_samples=0, n_units=0, bits=8).shape
    (0, 0)
    """
    units = read_models(models, n_units, bits)
    out = np.zeros((n_samples, n_units), np.int64)
    if len(payload) % 4:
        raise CorruptFileError(f"The stream's payload has {len(payload)} bytes; ANS payloads are whole 32-bit words.")
    if n_samples and any(not m.s.any() for m in units):
        raise CorruptFileError("The stream's model gives every level of a latent unit zero weight; it is damaged.")
    try:
        coder = constriction.stream.stack.AnsCoder(np.frombuffer(payload, dtype="<u4").astype(np.uint32))
        if n_samples:
            for j, model in enumerate(_ans_models(units, bits)):
                out[:, j] = coder.decode(model, n_samples)
    except (ValueError, RuntimeError) as exc:  # constriction refuses data that ends in a zero word, or runs out
        raise CorruptFileError(f"The stream's payload is damaged: {exc}") from exc
    if not coder.is_empty():
        raise CorruptFileError(
            "The stream's payload is damaged: the models do not consume it exactly "
            f"({coder.num_bits()} bits left over)."
        )
    return out
