"""Lossy image compression with a trained autoencoder: quantised, entropy-coded latents.

The encoder side maps each image to its code, quantises every latent unit uniformly
between that unit's minimum and maximum over the batch (``bits`` bits, 8 or 4 are the
usual choices) and entropy-codes the symbols with one static model per unit, fitted on
the batch and stored in the stream, through constriction's ANS coder
(:func:`lucidae.applications.entropy.encode_columns`). The decoder needs the stream and the
same autoencoder, like a shared codebook: the stream carries a fingerprint of the weights
and refuses another model.

Stream layout, version 2 (little-endian)::

    magic "LUCZ" | version u8 | bits u8 | dtype u8 | ndim u8 | n_samples u32
    | sample shape (ndim x u32) | latent_dim u32 | model fingerprint (8 bytes)
    | per-unit minimum (latent_dim x f32) | per-unit maximum (latent_dim x f32)
    | unit models length u32 | unit models | payload length u32 | payload
    | CRC-32 of everything before it (u32)

Version 1 streams (lucidae before the constriction coder) have no unit models section and
an adaptive arithmetic-coded payload (:func:`lucidae.applications.entropy.decode`); they
are still read, and ``compress(..., version=1)`` still writes them for older readers.

A damaged or truncated stream raises :class:`~lucidae.errors.CorruptFileError` that says
which check failed, never garbage pixels.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from typing import Any

import numpy as np

from lucidae import metrics
from lucidae.applications.entropy import decode, decode_columns, encode, encode_columns
from lucidae.errors import ConfigError, CorruptFileError, DataError
from lucidae.memory import check_fits

MAGIC = b"LUCZ"
VERSION = 2
"""The stream format version :func:`compress` writes."""
READABLE_VERSIONS = (1, 2)
DTYPES = {0: np.dtype(np.float32), 1: np.dtype(np.uint8)}
"""Stream dtype code to the dtype of the decompressed images."""
MAX_BITS = 12
"""Quantisation depth is 1..12 bits per latent unit: the models keep one weight (or count) per level."""
MAX_DECISIONS_PER_BYTE = 8 * 5800
"""Version 1's adaptive binary coder never codes more than ~5,700 decisions in one bit (its counts top out at 8192)."""
MAX_SYMBOLS = 1 << 28
"""A header declaring more latent symbols than this is refused before anything is allocated."""


def model_fingerprint(estimator: Any) -> bytes:
    """First 8 bytes of the SHA-256 of an estimator's weights and scaling.

    Examples
    --------
    >>> from lucidae import AutoEncoder
    >>> from lucidae.datasets import load_digits
    >>> ae = AutoEncoder(latent_dim=2, epochs=1, verbose=0, random_state=0).fit(load_digits().X)
    >>> len(model_fingerprint(ae))
    8
    """
    digest = hashlib.sha256()
    for name, tensor in sorted(estimator.module_.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    digest.update(np.asarray(estimator.scaler_.offset, dtype=np.float64).tobytes())
    digest.update(np.asarray(estimator.scaler_.scale, dtype=np.float64).tobytes())
    return digest.digest()[:8]


def _check_bits(bits: Any) -> int:
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not 1 <= bits <= MAX_BITS:
        raise ConfigError(f"bits={bits!r} is invalid: expected an integer in [1, {MAX_BITS}] (8 and 4 are typical).")
    return int(bits)


def quantise(Z: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Uniform quantisation of each column of ``Z`` between its minimum and maximum.

    Returns
    -------
    q : ndarray of int64, shape (n, latent)
        Levels in ``[0, 2**bits - 1]``.
    lo, hi : ndarray of float32, shape (latent,)

    Examples
    --------
    >>> import numpy as np
    >>> q, lo, hi = quantise(np.array([[0.0], [0.5], [1.0]]), bits=2)
    >>> q.ravel().tolist(), dequantise(q, lo, hi, bits=2).ravel().tolist()
    ([0, 2, 3], [0.0, 0.6666666865348816, 1.0])
    """
    Z = np.asarray(Z, dtype=np.float32)  # (n, latent)
    levels = (1 << bits) - 1
    lo = Z.min(axis=0) if len(Z) else np.zeros(Z.shape[1], np.float32)
    hi = Z.max(axis=0) if len(Z) else np.zeros(Z.shape[1], np.float32)
    span = np.where(hi > lo, hi - lo, 1.0).astype(np.float64)
    q = np.rint((Z.astype(np.float64) - lo) / span * levels)
    return np.clip(q, 0, levels).astype(np.int64), lo.astype(np.float32), hi.astype(np.float32)


def dequantise(q: np.ndarray, lo: np.ndarray, hi: np.ndarray, bits: int) -> np.ndarray:
    """Inverse of :func:`quantise`, up to the quantisation step; float32 ``(n, latent)``.

    Examples
    --------
    >>> import numpy as np
    >>> dequantise(np.array([[0], [15]]), np.array([-1.0]), np.array([1.0]), bits=4).ravel().tolist()
    [-1.0, 1.0]
    """
    levels = (1 << bits) - 1
    lo64, hi64 = lo.astype(np.float64), hi.astype(np.float64)
    return (lo64 + q.astype(np.float64) / levels * (hi64 - lo64)).astype(np.float32)


def compress(estimator: Any, images: Any, *, bits: int = 8, version: int = VERSION) -> bytes:
    """Compress a batch of images (or any samples) with a fitted lucidae estimator.

    Parameters
    ----------
    estimator : fitted lucidae estimator
        Its ``transform`` gives the codes; the receiver needs the same model.
    images : array-like of shape (n, features) or (n, height, width) or (n, channels, height, width)
        Samples in the units the estimator was trained on (uint8 images stay uint8).
    bits : int, default=8
        Quantisation depth per latent unit, in [1, 12].
    version : {2, 1}, default=2
        Stream format. 1 is the adaptive arithmetic coder of lucidae before format 2, 50 to
        75 times slower on 20,000 digits and larger except for 4-bit codes of a few hundred
        images (up to about 1% smaller there); write it only for a reader that knows nothing newer.

    Returns
    -------
    bytes
        The stream described in the module docstring.

    Examples
    --------
    >>> from lucidae import AutoEncoder
    >>> from lucidae.datasets import load_digits
    >>> X = load_digits().X
    >>> ae = AutoEncoder(latent_dim=8, epochs=3, verbose=0, random_state=0).fit(X)
    >>> data = compress(ae, X[:100].reshape(100, 8, 8), bits=4)
    >>> len(data) < 100 * 64 * 4 // 8  # under the size of 4-bit raw pixels
    True
    >>> decompress(data, ae).shape
    (100, 8, 8)
    """
    bits = _check_bits(bits)
    if isinstance(version, bool) or version not in READABLE_VERSIONS:
        raise ConfigError(
            f"version={version!r} is invalid: expected one of {READABLE_VERSIONS} (2, the default, unless an old "
            "lucidae must read the stream)."
        )
    arr = np.asarray(images)
    if arr.ndim < 2:
        raise DataError(f"images has shape {arr.shape}; expected (n, features) or (n, [channels,] height, width).")
    sample_shape = tuple(int(s) for s in arr.shape[1:])
    if len(sample_shape) > 3:
        raise DataError(f"images has shape {arr.shape}; at most 3 dimensions per sample are supported.")
    X = arr.reshape(arr.shape[0], int(np.prod(sample_shape)))
    n_features = getattr(estimator, "n_features_in_", None)
    if X.shape[1] != n_features:
        raise DataError(
            f"Each image has {X.shape[1]} values but the model was trained on {n_features} features. "
            "Compress images of the size the model was trained on."
        )
    dtype_code = 1 if arr.dtype == np.uint8 else 0
    Z = estimator.transform(X) if len(X) else np.zeros((0, estimator.module_.latent_dim), np.float32)
    if not np.isfinite(Z).all():
        raise DataError("The model produced NaN or infinite codes for these images; check the input values.")
    q, lo, hi = quantise(Z, bits)  # (n, latent)
    if version == 1:
        models, payload = b"", encode(q.T.tolist(), alphabet=1 << bits)
    else:
        models, payload = encode_columns(q, bits)
    head = MAGIC + struct.pack("<BBBBI", version, bits, dtype_code, len(sample_shape), len(X))
    head += struct.pack(f"<{len(sample_shape)}I", *sample_shape)
    head += struct.pack("<I", Z.shape[1]) + model_fingerprint(estimator)
    head += lo.astype("<f4").tobytes() + hi.astype("<f4").tobytes()
    if version > 1:
        head += struct.pack("<I", len(models)) + models
    body = head + struct.pack("<I", len(payload)) + payload
    return body + struct.pack("<I", zlib.crc32(body))


class _Reader:
    """Bounds-checked reads from a stream: running past the end is a truncation."""

    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def take(self, n: int, what: str) -> bytes:
        if self.pos + n > len(self.data):
            raise CorruptFileError(
                f"The compressed stream is truncated: it ends inside the {what} "
                f"(needs {self.pos + n} bytes, has {len(self.data)}). Get the complete file again."
            )
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out


def read_header(data: bytes) -> dict[str, Any]:
    """Parse and check a stream's header and CRC without decoding the payload.

    Raises
    ------
    CorruptFileError
        For a wrong magic or version, a truncated stream, a CRC mismatch or an implausible header.

    Examples
    --------
    >>> read_header(b"JPEG....")
    Traceback (most recent call last):
    ...
    lucidae.errors.CorruptFileError: This is not a lucidae compressed stream: it starts with b'JPEG', not b'LUCZ'.
    """
    data = bytes(data)
    r = _Reader(data)
    magic = data[:4]
    if magic != MAGIC:
        raise CorruptFileError(f"This is not a lucidae compressed stream: it starts with {magic!r}, not {MAGIC!r}.")
    r.take(4, "magic")
    version, bits, dtype_code, ndim, n = struct.unpack("<BBBBI", r.take(8, "header"))
    if version not in READABLE_VERSIONS:
        raise CorruptFileError(
            f"Stream format version {version}; this lucidae reads versions {READABLE_VERSIONS}. A newer version "
            "needs a newer lucidae; anything else means the stream is damaged."
        )
    if not 1 <= bits <= MAX_BITS or dtype_code not in DTYPES or not 1 <= ndim <= 3:
        raise CorruptFileError(
            f"The stream header is damaged (bits={bits}, dtype code={dtype_code}, dimensions={ndim})."
        )
    shape = struct.unpack(f"<{ndim}I", r.take(4 * ndim, "image shape"))
    (latent_dim,) = struct.unpack("<I", r.take(4, "header"))
    if latent_dim < 1 or n * latent_dim > MAX_SYMBOLS:
        raise CorruptFileError(f"The stream header is damaged: {n} samples x {latent_dim} latents is implausible.")
    n_features = int(np.prod(shape, dtype=np.int64))
    # decoding allocates the levels and codes (n x latents) and the images (n x features) a few times over
    try:
        check_fits(
            8.0 * n * (2 * latent_dim + 3 * n_features),
            f"decoding this stream ({n} images of shape {tuple(shape)}, {latent_dim} latents)",
            hint="The stream header is damaged, or the stream was made on a machine with more memory.",
        )
    except ConfigError as err:  # refused before anything is allocated; a damaged header is the likely cause
        raise CorruptFileError(str(err)) from err
    fingerprint = r.take(8, "model fingerprint")
    lo = np.frombuffer(r.take(4 * latent_dim, "quantisation ranges"), dtype="<f4").astype(np.float32)
    hi = np.frombuffer(r.take(4 * latent_dim, "quantisation ranges"), dtype="<f4").astype(np.float32)
    models = b""
    if version > 1:
        (n_models,) = struct.unpack("<I", r.take(4, "header"))
        models = r.take(n_models, "unit models")
    (n_payload,) = struct.unpack("<I", r.take(4, "header"))
    payload = r.take(n_payload, "payload")
    if version == 1 and n * latent_dim * bits > MAX_DECISIONS_PER_BYTE * (len(payload) + 8):
        # the adaptive coder spends at least log2(8192/8191) bits on each of the n x latents x bits decisions
        raise CorruptFileError(
            f"The stream header is damaged: {n} samples x {latent_dim} latents x {bits} bits cannot be coded in "
            f"a {len(payload)}-byte payload."
        )
    (crc,) = struct.unpack("<I", r.take(4, "checksum"))
    if r.pos != len(data):
        raise CorruptFileError(
            f"The stream has {len(data) - r.pos} unexpected bytes after its checksum; it is damaged or two "
            "streams were joined."
        )
    if zlib.crc32(data[: r.pos - 4]) != crc:
        raise CorruptFileError("The compressed stream is corrupted: its CRC-32 does not match its contents.")
    if not (np.isfinite(lo).all() and np.isfinite(hi).all()):
        raise CorruptFileError("The stream's quantisation ranges are not finite numbers.")
    return {
        "version": version,
        "bits": bits,
        "dtype": DTYPES[dtype_code],
        "shape": tuple(shape),
        "n_samples": n,
        "latent_dim": latent_dim,
        "fingerprint": fingerprint,
        "lo": lo,
        "hi": hi,
        "models": models,
        "payload": payload,
    }


def decompress(data: bytes, estimator: Any) -> np.ndarray:
    """Decode a stream from :func:`compress` with the same fitted estimator.

    Returns
    -------
    ndarray of shape (n, *sample_shape)
        In the estimator's original units; uint8 when uint8 images were compressed.

    Raises
    ------
    CorruptFileError
        When the stream is damaged or truncated, or was made with a different model.

    Examples
    --------
    >>> from lucidae import AutoEncoder
    >>> from lucidae.datasets import load_digits
    >>> X = load_digits().X
    >>> ae = AutoEncoder(latent_dim=4, epochs=2, verbose=0, random_state=0).fit(X)
    >>> data = bytearray(compress(ae, X[:10]))
    >>> data[30] ^= 1
    >>> decompress(bytes(data), ae)
    Traceback (most recent call last):
    ...
    lucidae.errors.CorruptFileError: The compressed stream is corrupted: its CRC-32 does not match its contents.
    """
    h = read_header(data)
    if h["fingerprint"] != model_fingerprint(estimator):
        raise CorruptFileError(
            f"The stream was compressed with a different model (fingerprint {h['fingerprint'].hex()}, this "
            f"model's is {model_fingerprint(estimator).hex()}). Decompress with the model that compressed it."
        )
    n_features = int(np.prod(h["shape"]))
    if n_features != estimator.n_features_in_ or h["latent_dim"] != estimator.module_.latent_dim:
        raise CorruptFileError(  # pragma: no cover - the fingerprint matched, so only a forged header gets here
            "The stream's image size or code size does not match the model."
        )
    n, k, bits = h["n_samples"], h["latent_dim"], h["bits"]
    if h["version"] == 1:
        q = np.asarray(decode(h["payload"], n_streams=k, length=n, alphabet=1 << bits), dtype=np.int64).T  # (n, k)
    else:
        q = decode_columns(h["models"], h["payload"], n_samples=n, n_units=k, bits=bits)  # (n, k)
    Z = dequantise(q.reshape(n, k), h["lo"], h["hi"], bits)
    X = estimator.inverse_transform(Z) if n else np.zeros((0, n_features), np.float32)  # (n, features)
    if h["dtype"] == np.uint8:
        X = np.clip(np.rint(X), 0, 255).astype(np.uint8)
    return X.reshape(n, *h["shape"])


def psnr(reference: Any, estimate: Any, peak: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB: ``10 log10(peak^2 / MSE)`` over all values.

    :func:`lucidae.metrics.psnr` computes it, with ``peak`` as its ``data_range``; this
    form takes arrays of any shape that broadcast together (such as ``(n, height, width)``
    images), measured over all their values, and the range as a third positional argument.

    Examples
    --------
    >>> import numpy as np
    >>> round(psnr(np.zeros(4), np.full(4, 0.1)), 6)
    20.0
    """
    ref, est = np.broadcast_arrays(np.asarray(reference, dtype=np.float64), np.asarray(estimate, dtype=np.float64))
    return metrics.psnr(ref.ravel(), est.ravel(), data_range=peak)  # 1-D: every value is one sample
