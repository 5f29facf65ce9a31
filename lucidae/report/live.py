"""The report's live decoder and clickable latent map: the data the page's inline script runs on.

The page decodes codes in the browser, so a reader can move one latent and watch the
decoded sample change. What the script needs travels in one JSON block of the page:

- ``layers``: the decoder as a list of steps applied to a code ``(latent,)`` in order:
  ``{"op": "linear", "in": i, "out": o, "w": <base64 float32 (o, i) row-major>, "b": <base64 (o,)>}``,
  ``{"op": "act", "name": "relu" | "sigmoid" | ..., ...parameters}`` and
  ``{"op": "add", "v": <base64 (features,)>}`` (the linear model's data centre);
  then ``scale`` and ``offset`` (base64, ``(features,)``) undo the model's scaling:
  ``x = y * scale + offset``, as ``est.scaler_.inverse_transform`` does.
- ``sliders``: each latent's 1st and 99th percentile over the evaluation codes, and
  ``base``, the mean code the sliders start from.
- ``map``: the latent map's 2-D coordinates of at most :data:`MAX_MAP_POINTS` evaluation
  samples, their labels, codes, originals and reconstructions (base64 float32).

Arrays travel as base64 float32 (little-endian, as every browser's typed arrays are):
a third of the size of JSON numbers and exact. The JSON is embedded with ``<``, ``>``
and ``&`` escaped, so no user string (a feature name, a label) can close the block.

The convolutional decoder is not run live (its transposed convolutions would need a
much larger script); its page keeps the static traversals and says so. A decoder whose
weights take more than :data:`MAX_LIVE_WEIGHT_BYTES` is not embedded either.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lucidae.models.dense import DenseAutoEncoder, LinearAutoEncoder, TiedLinear
from lucidae.models.sparse import SAE
from lucidae.models.vae import VariationalAutoEncoder

MAX_LIVE_WEIGHT_BYTES = 4 * 1024 * 1024
"""Bytes of float32 decoder weights (biases and scaling included) the page embeds at most: 4 MiB.

About a million parameters; beyond that the page grows by megabytes per report and
the static traversals are kept instead, with a note."""
MAX_MAP_POINTS = 500
"""Evaluation samples the clickable map embeds at most (a fixed random subset beyond that)."""
MAX_MAP_BYTES = 2 * 1024 * 1024
"""Bytes the map's samples (originals, reconstructions and codes, float32) take at most; fewer points beyond."""
CHECK_TOLERANCE = 1e-4
"""Largest difference, relative to the data's range, allowed between the exported decoder and the model's own."""

TEMPLATE = Path(__file__).parent / "templates" / "_live.html.j2"
"""The template whose inline script runs the decoder; its hash goes into the page's CSP."""

# Activation modules the script implements, with the parameters it needs from each.
_ACTIVATIONS: dict[type[nn.Module], str] = {
    nn.ReLU: "relu",
    nn.Identity: "linear",
    nn.Sigmoid: "sigmoid",
    nn.Tanh: "tanh",
    nn.GELU: "gelu",
    nn.LeakyReLU: "leaky_relu",
    nn.Softplus: "softplus",
    nn.ELU: "elu",
    nn.SiLU: "silu",
}


def _b64(array: Any) -> str:
    return base64.b64encode(np.ascontiguousarray(array, dtype="<f4").tobytes()).decode("ascii")


def _activation_step(module: nn.Module) -> dict[str, Any] | None:
    """One ``act`` step for a supported activation module, or None."""
    name = _ACTIVATIONS.get(type(module))
    if name is None:
        return None
    step: dict[str, Any] = {"op": "act", "name": name}
    if isinstance(module, nn.GELU):
        step["approximate"] = module.approximate
    elif isinstance(module, nn.LeakyReLU):
        step["slope"] = float(module.negative_slope)
    elif isinstance(module, nn.Softplus):
        step["beta"], step["threshold"] = float(module.beta), float(module.threshold)
    elif isinstance(module, nn.ELU):
        step["alpha"] = float(module.alpha)
    return step


def _linear_step(weight: torch.Tensor, bias: torch.Tensor | None) -> tuple[dict[str, Any], int]:
    w = weight.detach().cpu().float().numpy()  # (out, in)
    b = np.zeros(w.shape[0], np.float32) if bias is None else bias.detach().cpu().float().numpy()  # (out,)
    step = {"op": "linear", "in": int(w.shape[1]), "out": int(w.shape[0]), "w": _b64(w), "b": _b64(b)}
    return step, 4 * (w.size + b.size)


def _sequential_steps(seq: nn.Module) -> tuple[list[dict[str, Any]], int] | None:
    """The steps of an ``nn.Sequential`` of linear layers and activations, or None when it holds anything else."""
    if not isinstance(seq, nn.Sequential):
        return None
    steps, size = [], 0
    for layer in seq:
        if isinstance(layer, (nn.Linear, TiedLinear)):
            step, nbytes = _linear_step(layer.weight, layer.bias)
            steps.append(step)
            size += nbytes
        elif (act := _activation_step(layer)) is not None:
            steps.append(act)
        else:
            return None
    return steps, size


def decoder_steps(module: nn.Module) -> tuple[list[dict[str, Any]], int] | None:
    """The decoder of ``module`` as the page's steps and their weights' bytes; None for an unsupported decoder.

    Supported: the dense family (any ``hidden_dims``, tied or not, every activation the
    models offer), the linear model (its data centre added back), the sparse, TopK and
    JumpReLU SAEs (``z @ W_dec + b_dec``) and the dense VAE decoder with its output
    activation (a sigmoid for a Bernoulli likelihood). Not the convolutional decoders.

    Examples
    --------
    >>> from lucidae.config import ModelConfig
    >>> from lucidae.models.dense import DenseAutoEncoder
    >>> steps, nbytes = decoder_steps(DenseAutoEncoder(ModelConfig(input_dim=6, hidden_dims=(4,), latent_dim=2)))
    >>> [s["op"] if s["op"] == "linear" else s["name"] for s in steps], nbytes
    (['linear', 'relu', 'linear', 'sigmoid'], 168)
    >>> from lucidae.models.conv import ConvolutionalAutoEncoder
    >>> cfg = ModelConfig(model="conv", input_dim=256, image_shape=(16, 16), conv_channels=(8, 16))
    >>> decoder_steps(ConvolutionalAutoEncoder(cfg)) is None
    True
    """
    if isinstance(module, SAE):
        step, nbytes = _linear_step(module.decoder.weight, module.decoder.bias)
        return [step], nbytes
    if isinstance(module, VariationalAutoEncoder):
        found = _sequential_steps(module.decoder)
        out = _activation_step(module.output_activation)
        if found is None or out is None:
            return None
        return [*found[0], out], found[1]
    if isinstance(module, DenseAutoEncoder):
        found = _sequential_steps(module.decoder)
        if found is None:
            return None
        steps, nbytes = found
        if isinstance(module, LinearAutoEncoder):
            center = module.center.detach().cpu().float().numpy()  # (features,)
            steps = [*steps, {"op": "add", "v": _b64(center)}]
            nbytes += 4 * center.size
        return steps, nbytes
    return None


def _b64_decode(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype="<f4").astype(np.float64)


def run_steps(steps: list[dict[str, Any]], Z: np.ndarray) -> np.ndarray:
    """Apply the page's steps to codes ``Z`` ``(n, latent)`` in numpy: what the page's script computes.

    Used to check an export before it is embedded: a module whose ``decode`` does more
    than its layers show would otherwise be drawn wrong without a word.

    Examples
    --------
    >>> from lucidae.config import ModelConfig
    >>> from lucidae.models.dense import DenseAutoEncoder
    >>> m = DenseAutoEncoder(ModelConfig(input_dim=5, hidden_dims=(3,), latent_dim=2, activation="gelu"))
    >>> z = torch.rand(4, 2)
    >>> bool(np.allclose(run_steps(decoder_steps(m)[0], z.numpy()), m.decode(z).detach().numpy(), atol=1e-5))
    True
    """
    h = np.asarray(Z, dtype=np.float64)  # (n, width)
    for step in steps:
        if step["op"] == "linear":
            w = _b64_decode(step["w"]).reshape(step["out"], step["in"])
            h = h @ w.T + _b64_decode(step["b"])
        elif step["op"] == "add":
            h = h + _b64_decode(step["v"])
        else:
            h = _activate(step, h)
    return h


def _activate(step: dict[str, Any], h: np.ndarray) -> np.ndarray:
    name = step["name"]
    if name == "relu":
        return np.maximum(h, 0.0)
    if name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-h))
    if name == "tanh":
        return np.tanh(h)
    if name == "gelu":
        if step.get("approximate") == "tanh":
            return 0.5 * h * (1 + np.tanh(math.sqrt(2 / math.pi) * (h + 0.044715 * h**3)))
        erf = np.frompyfunc(math.erf, 1, 1)
        return 0.5 * h * (1 + erf(h / math.sqrt(2)).astype(np.float64))
    if name == "leaky_relu":
        return np.where(h >= 0, h, h * step["slope"])
    if name == "softplus":
        bh = step["beta"] * h
        return np.where(bh > step["threshold"], h, np.log1p(np.exp(np.minimum(bh, step["threshold"]))) / step["beta"])
    if name == "elu":
        return np.where(h > 0, h, step["alpha"] * np.expm1(np.minimum(h, 0)))
    if name == "silu":
        return h / (1.0 + np.exp(-h))
    return h  # "linear"


def script_hash() -> str:
    """The CSP source (``'sha256-...'``) of the inline script in ``_live.html.j2``, which the page allows.

    The page forbids every script but this one: the hash is of the exact text between
    its ``<script>`` tags, which Jinja2 leaves as written (it holds no template syntax).

    Examples
    --------
    >>> script_hash().startswith("'sha256-")
    True
    """
    match = re.search(r"<script>(.*?)</script>", TEMPLATE.read_text(encoding="utf-8"), re.S)
    if match is None:
        raise RuntimeError(f"{TEMPLATE} has no inline <script>")
    digest = hashlib.sha256(match.group(1).encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


def _size_text(nbytes: int) -> str:
    return f"{nbytes / 1024:.1f} kB" if nbytes < 1024 * 1024 else f"{nbytes / 1024 / 1024:.2f} MB"


def _embed(doc: dict[str, Any]) -> Any:
    """``doc`` as JSON that is safe inside a ``<script type="application/json">`` block."""
    from markupsafe import Markup

    text = json.dumps(doc, separators=(",", ":"), allow_nan=False)
    return Markup(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


def _map_points(ev: Any, lmap: Any) -> dict[str, Any]:
    """The clickable map's points: coordinates, labels, codes, originals and reconstructions of a capped subset."""
    rows = np.asarray(lmap.indices)  # rows of ev.X_eval the map shows
    n_features, n_latents = ev.X_eval.shape[1], ev.Z.shape[1]
    per_point = 4 * (2 * n_features + n_latents)
    limit = max(1, min(MAX_MAP_POINTS, MAX_MAP_BYTES // per_point))
    keep = np.arange(len(rows))
    if len(rows) > limit:
        keep = np.sort(np.random.default_rng(0).choice(len(rows), size=limit, replace=False))
    rows = rows[keep]
    coords = np.asarray(lmap.coords, dtype=np.float64)[keep]  # (n, 2)
    labels = None if lmap.color is None else [str(v) for v in np.asarray(lmap.color)[keep]]
    return {
        "n": len(rows),
        "of": int(len(lmap.indices)),
        "coords": [[round(float(a), 5), round(float(b), 5)] for a, b in coords],
        "labels": labels,
        "index": [int(i) for i in np.asarray(ev.eval_idx)[rows]],
        "x": _b64(np.asarray(ev.X_eval, dtype=np.float64)[rows]),  # (n, features) original units
        "recon": _b64(np.asarray(ev.recon, dtype=np.float64)[rows]),  # (n, features) original units
        "codes": _b64(np.asarray(ev.Z, dtype=np.float64)[rows]),  # (n, latent)
    }


def live_context(est: Any, ev: Any, lmap: Any) -> dict[str, Any]:
    """What ``_live.html.j2`` shows: the live decoder's data (or why there is none) and the clickable map.

    Parameters
    ----------
    est : fitted lucidae estimator
    ev : the report's evaluation
        Needs ``X_eval`` and ``recon`` ``(n, features)`` in original units, ``Z`` ``(n, latent)``
        and ``eval_idx`` ``(n,)``.
    lmap : explain.LatentMap
        The report's latent map of the same samples (``coords``, ``indices``, ``color``).

    Returns
    -------
    dict
        ``live`` (bool), ``note`` (why not, when not), ``weight_bytes`` and ``weight_text``,
        ``limit_text``, ``n_map``, ``image`` (bool), ``csp`` (the script's hash) and
        ``json`` (the embedded data, markup-safe).

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> from lucidae import AutoEncoder
    >>> X = np.random.default_rng(0).random((40, 3))
    >>> est = AutoEncoder(hidden_dims=(), latent_dim=2, epochs=1, verbose=0).fit(X)
    >>> Z = est.transform(X)
    >>> ev = SimpleNamespace(X_eval=X, recon=est.reconstruct(X), Z=Z, eval_idx=np.arange(40))
    >>> lmap = SimpleNamespace(coords=Z, indices=np.arange(40), color=None)
    >>> ctx = live_context(est, ev, lmap)
    >>> ctx["live"], ctx["weight_bytes"], ctx["n_map"]
    (True, 60, 40)
    """
    image_shape = est.image_shape_
    X = np.asarray(ev.X_eval, dtype=np.float64)  # (n, features) original units
    Z = np.asarray(ev.Z, dtype=np.float64)  # (n, latent)
    scaler = est.scaler_
    n_features = X.shape[1]
    scale = np.broadcast_to(np.asarray(scaler.scale, dtype=np.float64), (n_features,))
    offset = np.broadcast_to(np.asarray(scaler.offset, dtype=np.float64), (n_features,))
    doc: dict[str, Any] = {
        "n_latents": int(Z.shape[1]),
        "n_features": n_features,
        "image_shape": None if image_shape is None else [int(d) for d in image_shape],
        "feature_names": list(est.feature_names_)[:n_features],
        "map": _map_points(ev, lmap),
    }
    # The colour scale and the bars' units come from the evaluation samples, so a picture
    # decoded from a code reads like the data it was measured on.
    mean, std = X.mean(axis=0), X.std(axis=0)
    doc["range"] = [float(X.min()), float(X.max())] if X.size else [0.0, 1.0]
    doc["mean"], doc["std"] = _b64(mean), _b64(np.where(std > 0, std, 1.0))

    found = decoder_steps(est.module_)
    nbytes = 0 if found is None else found[1] + 8 * n_features  # the scaling's scale and offset
    note = ""
    if found is None:
        cfg = est.model_config_
        conv = cfg.model == "conv" or getattr(cfg, "architecture", "dense") == "conv"
        note = (
            f"This model's decoder ({'convolutional' if conv else cfg.model}) is not run in the page: moving a latent "
            "live needs a dense, linear, sparse or VAE dense decoder. The static traversals on the latent cards show "
            "what each latent does."
        )
    elif nbytes > MAX_LIVE_WEIGHT_BYTES:
        note = (
            f"The decoder's weights take {_size_text(nbytes)}, above the {_size_text(MAX_LIVE_WEIGHT_BYTES)} this page "
            "embeds, so they are left out; the static traversals on the latent cards show what each latent does."
        )
    elif len(Z):
        probe = Z[: min(len(Z), 16)]
        ours = run_steps(found[0], probe) * scale + offset  # (k, features)
        theirs = np.asarray(est.inverse_transform(probe), dtype=np.float64)
        span = max(float(np.ptp(theirs)), 1.0)
        if not np.allclose(ours, theirs, atol=CHECK_TOLERANCE * span, rtol=0):
            note = (
                "This model's decoder does more than its layers show, so the page does not run it; "
                "the static traversals on the latent cards show what each latent does."
            )
    live = found is not None and not note
    if live:
        lo, hi = (np.percentile(Z, q, axis=0) if len(Z) else np.zeros(Z.shape[1]) for q in (1, 99))
        doc["layers"] = found[0]
        doc["scale"], doc["offset"] = _b64(scale), _b64(offset)
        doc["sliders"] = [[float(a), float(b)] for a, b in zip(lo, hi)]
        doc["base"] = [float(v) for v in (Z.mean(axis=0) if len(Z) else np.zeros(Z.shape[1]))]
    return {
        "live": live,
        "note": note,
        "weight_bytes": nbytes,
        "weight_text": _size_text(nbytes),
        "limit_text": _size_text(MAX_LIVE_WEIGHT_BYTES),
        "n_map": doc["map"]["n"],
        "n_map_of": doc["map"]["of"],
        "image": image_shape is not None,
        "n_eval": len(X),
        "csp": script_hash(),
        "json": _embed(doc),
    }
