"""An adaptive arithmetic coder for small integer symbols, written to be checked.

Used by :mod:`lucidae.applications.compress` for quantised latent codes. Each stream
(one per latent unit) has its own adaptive model, so no table is sent: the decoder
rebuilds the same counts as it goes. Symbols are coded bit by bit through a binary
tree of adaptive contexts (as in CABAC and most modern image codecs), which learns a
skewed 256-level distribution from a few hundred samples where a 256-way count table
would still be paying to learn it. The coder is the classic integer arithmetic coder of
Witten, Neal and Cleary (1987, "Arithmetic coding for data compression", CACM 30(6))
with 32-bit registers and pending ("follow") bits.

The output length is within a few bytes of the models' ideal code length
``sum(-log2 p)`` (:func:`ideal_bits`, computed independently), which the tests check.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

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
