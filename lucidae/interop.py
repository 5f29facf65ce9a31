"""Sparse autoencoders to and from the open folder layouts of SAELens and EleutherAI's sparsify.

Both tools store an SAE as a folder with a ``cfg.json`` and a safetensors file of four
tensors. lucidae writes and reads exactly what is listed here (no pickle, and nothing
is downloaded); check a folder against it when a tool changes its format.

**SAELens** (``to_saelens`` / ``from_saelens``): ``DIR/cfg.json`` and
``DIR/sae_weights.safetensors`` holding

- ``W_enc`` ``(d_in, d_sae)``, ``b_enc`` ``(d_sae,)``, ``W_dec`` ``(d_sae, d_in)``, ``b_dec`` ``(d_in,)``;
- ``threshold`` ``(d_sae,)`` for ``"jumprelu"`` (``log_threshold``, its log, is read too);
- ``scaling_factor`` ``(d_sae,)`` when ``cfg.finetuning_scaling_factor`` is true (read only;
  it multiplies the code before decoding, so it is folded into ``W_dec``).

``cfg.json`` fields read: ``architecture`` (``"standard"``, ``"topk"``, ``"jumprelu"``;
``"gated"`` is refused as not supported yet; missing means ``"standard"``), ``d_in``,
``d_sae``, ``k`` or ``activation_fn_kwargs.k`` (topk; SAELens 5 also wrote a TopK SAE as
``"standard"`` with ``activation_fn_str="topk"``), ``activation_fn_str`` (``"relu"``
or ``"topk"``), ``apply_b_dec_to_input`` (default true), ``normalize_activations``
(``"none"`` or ``"expected_average_only_in"``, which SAELens does not apply at inference;
``"constant_norm_rescale"`` and ``"layer_norm"`` rescale each sample and are refused),
``finetuning_scaling_factor`` and ``rescale_acts_by_decoder_norm`` (must be false).
The model SAELens computes, and lucidae reproduces::

    pre = (x - b_dec * apply_b_dec_to_input) @ W_enc + b_enc
    standard: z = relu(pre)
    topk:     z = relu of the k largest entries of pre, zero elsewhere
    jumprelu: z = relu(pre) * (pre > threshold)
    x_hat = z @ W_dec + b_dec

lucidae always subtracts ``b_dec`` before encoding; a folder with
``apply_b_dec_to_input=false`` is read with ``b_enc + b_dec @ W_enc`` as its encoder
bias, the same ``pre``. Written: the fields of SAELens 5's ``SAEConfig`` (``model_name``,
``hook_name``, ``hook_layer``, ``dtype`` ``"float32"``, ``device``, ``context_size`` and the
rest, with neutral values), the ``k`` and ``metadata`` of SAELens 6, and
``apply_b_dec_to_input=true``, ``normalize_activations="none"``.

**sparsify** (``to_sparsify`` / ``from_sparsify``): one hookpoint's folder,
``DIR/cfg.json`` and ``DIR/sae.safetensors`` holding ``encoder.weight``
``(num_latents, d_in)``, ``encoder.bias`` ``(num_latents,)``, ``W_dec`` ``(num_latents, d_in)``,
``b_dec`` ``(d_in,)``. ``cfg.json``: ``d_in``, ``num_latents`` (0 means
``d_in * expansion_factor``), ``expansion_factor``, ``k``, ``activation`` (``"topk"``;
``"groupmax"`` is refused), ``normalize_decoder``, ``multi_topk``, ``skip_connection`` and
``transcode`` (both must be false; a ``W_skip`` tensor is refused). sparsify computes
``z = topk_k(relu(encoder(x - b_dec)))``, ``x_hat = z @ W_dec + b_dec``. It has only TopK
SAEs, so a ReLU SAE is written with ``k = num_latents``: keeping every latent of
``relu(pre)`` is exactly the ReLU SAE; such a folder is read back as a ReLU SAE.

Next to either layout lucidae writes ``lucidae.json`` (lucidae's version, the model
family, the feature names); the other tools ignore it, and reading uses it when present.

Scaling: lucidae SAEs train without input scaling by default. A model fitted with a
scaling ``x_s = (x - offset) / scale`` is exported with the scaling folded in exactly:
``W_enc[j, :] / scale[j]``, ``W_dec[:, j] * scale[j]``, ``b_dec = offset + scale * b_dec``,
so the exported SAE reads raw inputs and gives the same codes and reconstructions
(up to float32 rounding); its decoder rows are then no longer of unit norm.

Differences to know: lucidae's TopK keeps the k largest pre-activations as they are,
SAELens and sparsify pass them through a ReLU; the two agree whenever a sample has at
least k positive pre-activations (the usual case in a trained SAE), and a sample with
fewer gets small negative values from lucidae where the other tools have zeros.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file
from safetensors.torch import save as safetensors_bytes
from sklearn.utils.validation import check_is_fitted

from lucidae._version import __version__
from lucidae.errors import ConfigError, CorruptFileError
from lucidae.estimators import BaseAutoEncoder, estimator_for
from lucidae.io import atomic_write, write_json
from lucidae.models import build_model
from lucidae.scaling import Scaler
from lucidae.schema import read_safetensors_header
from lucidae.train import History, seeded

CFG = "cfg.json"
"""The config file of both layouts."""
SAELENS_WEIGHTS = "sae_weights.safetensors"
"""SAELens's weights file."""
SPARSIFY_WEIGHTS = "sae.safetensors"
"""sparsify's weights file."""
SIDECAR = "lucidae.json"
"""lucidae's own notes next to an exported SAE (version, family, feature names); other tools ignore it."""
MAX_CFG_BYTES = 1 << 20
"""A cfg.json is a few hundred bytes; a larger one is refused before it is parsed."""
FAMILIES = ("sparse", "topk", "jumprelu")
"""lucidae model families that these layouts can hold."""
SAELENS_ARCHITECTURES = {"standard": "sparse", "topk": "topk", "jumprelu": "jumprelu"}
"""SAELens ``architecture`` to lucidae model family."""
FLOAT_DTYPES = ("F16", "BF16", "F32", "F64")
"""Safetensors dtypes accepted for weights (read as float32)."""
UNIT_NORM_TOL = 1e-4
"""Decoder atoms within this of norm 1 count as unit-norm (kept on when an imported model is trained further)."""


@dataclass
class _SAETensors:
    """One SAE in SAELens's orientation, float64 numpy, reading raw (unscaled) inputs."""

    family: str
    W_enc: np.ndarray  # (d_in, d_sae)
    b_enc: np.ndarray  # (d_sae,)
    W_dec: np.ndarray  # (d_sae, d_in)
    b_dec: np.ndarray  # (d_in,)
    k: int = 0
    threshold: np.ndarray | None = None  # (d_sae,), jumprelu only

    @property
    def d_in(self) -> int:
        return int(self.W_enc.shape[0])

    @property
    def d_sae(self) -> int:
        return int(self.W_enc.shape[1])

    def unit_norm(self) -> bool:
        norms = np.linalg.norm(self.W_dec, axis=1)  # (d_sae,)
        return bool(np.all(np.abs(norms - 1.0) <= UNIT_NORM_TOL))


# ---------------------------------------------------------------------- lucidae -> tensors
def _tensors_of(est: Any) -> _SAETensors:
    """The fitted SAE ``est`` as SAELens-oriented tensors, its input scaling folded in."""
    if not isinstance(est, BaseAutoEncoder):
        raise ConfigError(
            f"Only a fitted lucidae sparse autoencoder can be exported; got {type(est).__name__}. "
            "Pass a SparseAutoEncoder, TopKAutoEncoder or JumpReLUAutoEncoder (or lucidae.load a run folder)."
        )
    check_is_fitted(est, "module_")
    family = est.model_config_.model
    if family not in FAMILIES:
        raise ConfigError(
            f"{type(est).__name__} (model family {family!r}) cannot be exported: SAELens and sparsify hold "
            f"sparse autoencoders, lucidae families {list(FAMILIES)}. Train a TopKAutoEncoder or SparseAutoEncoder."
        )
    module = est.module_
    W_enc = module.encoder.weight.detach().cpu().double().numpy().T  # (d_in, d_sae)
    b_enc = module.encoder.bias.detach().cpu().double().numpy()  # (d_sae,)
    W_dec = module.decoder.weight.detach().cpu().double().numpy().T  # (d_sae, d_in)
    b_dec = module.decoder.bias.detach().cpu().double().numpy()  # (d_in,)
    offset = np.asarray(est.scaler_.offset, dtype=np.float64)  # (d_in,)
    scale = np.asarray(est.scaler_.scale, dtype=np.float64)  # (d_in,)
    if not (np.all(offset == 0.0) and np.all(scale == 1.0)):
        # The model reads x_s = (x - offset) / scale. Then x_s - b_dec = (x - b_dec') / scale with
        # b_dec' = offset + scale * b_dec, and the reconstruction scale * (z @ W_dec + b_dec) + offset
        # is z @ (W_dec * scale) + b_dec': the same SAE on raw inputs, exactly.
        W_enc = W_enc / scale[:, None]
        W_dec = W_dec * scale[None, :]
        b_dec = offset + scale * b_dec
    threshold = None
    if family == "jumprelu":
        threshold = module.threshold.detach().cpu().double().numpy()  # (d_sae,)
    k = int(est.model_config_.k) if family == "topk" else 0
    return _SAETensors(family, W_enc, b_enc, W_dec, b_dec, k=k, threshold=threshold)


def _f32(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))


def _write(
    path: str | os.PathLike, weights_name: str, tensors: dict[str, np.ndarray], cfg: dict[str, Any], est: Any
) -> Path:
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{folder} is a file; expected a folder to write the SAE into. Choose another --out.")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"Cannot create the folder {folder}: {err}. Choose a writable location.") from err
    atomic_write(folder / weights_name, safetensors_bytes({k: _f32(v) for k, v in tensors.items()}))
    write_json(folder / CFG, cfg)
    write_json(
        folder / SIDECAR,
        {
            "lucidae_version": __version__,
            "model": est.model_config_.model,
            "estimator": type(est).__name__,
            "feature_names": [str(n) for n in est.feature_names_],
        },
    )
    return folder


def to_saelens(
    est: Any, path: str | os.PathLike, *, model_name: str = "", hook_name: str = "", hook_layer: int = 0
) -> Path:
    """Write a fitted lucidae SAE as a SAELens folder (``cfg.json`` + ``sae_weights.safetensors``).

    TopK models become ``architecture="topk"``, ReLU (L1) models ``"standard"`` and JumpReLU
    models ``"jumprelu"``. A model fitted with input scaling is written with the scaling
    folded into the weights (see the module notes), so SAELens reads raw activations.

    Parameters
    ----------
    est : SparseAutoEncoder, TopKAutoEncoder or JumpReLUAutoEncoder
        A fitted estimator.
    path : path-like
        The folder to write (created; other files in it are kept).
    model_name, hook_name, hook_layer : optional
        Where the activations came from (SAELens's ``model_name``, ``hook_name``,
        ``hook_layer``), used by SAELens to attach the SAE to a model; lucidae does not know them.

    Returns
    -------
    Path
        The folder written.

    Raises
    ------
    ConfigError
        When ``est`` is not a fitted sparse autoencoder, or the folder cannot be written.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from lucidae import TopKAutoEncoder
    >>> X = np.random.default_rng(0).standard_normal((64, 8)).astype(np.float32)
    >>> sae = TopKAutoEncoder(latent_dim=16, k=2, epochs=1, verbose=0, random_state=0).fit(X)
    >>> folder = to_saelens(sae, tempfile.mkdtemp() + "/sae")
    >>> sorted(p.name for p in folder.iterdir())
    ['cfg.json', 'lucidae.json', 'sae_weights.safetensors']
    >>> bool((from_saelens(folder).transform(X) == sae.transform(X)).all())
    True
    """
    t = _tensors_of(est)
    architecture = {v: k for k, v in SAELENS_ARCHITECTURES.items()}[t.family]
    cfg: dict[str, Any] = {
        "architecture": architecture,
        "d_in": t.d_in,
        "d_sae": t.d_sae,
        "dtype": "float32",
        "device": "cpu",
        "model_name": model_name,
        "hook_name": hook_name,
        "hook_layer": int(hook_layer),
        "hook_head_index": None,
        "activation_fn_str": "topk" if t.family == "topk" else "relu",
        "activation_fn_kwargs": {"k": t.k} if t.family == "topk" else {},
        "apply_b_dec_to_input": True,
        "finetuning_scaling_factor": False,
        "normalize_activations": "none",
        "context_size": 128,
        "dataset_path": "",
        "dataset_trust_remote_code": False,
        "prepend_bos": True,
        "sae_lens_training_version": None,
        "model_from_pretrained_kwargs": {},
        "seqpos_slice": [None],
        "reshape_activations": "none",
        "metadata": {
            "model_name": model_name,
            "hook_name": hook_name,
            "model_class_name": "HookedTransformer",
            "hook_head_index": None,
            "model_from_pretrained_kwargs": {},
            "prepend_bos": True,
            "dataset_path": "",
            "context_size": 128,
            "seqpos_slice": [None],
            "exported_by": f"lucidae {__version__}",
        },
    }
    if t.family == "topk":
        cfg["k"] = t.k
    tensors = {"W_enc": t.W_enc, "b_enc": t.b_enc, "W_dec": t.W_dec, "b_dec": t.b_dec}
    if t.threshold is not None:
        tensors["threshold"] = t.threshold
    return _write(path, SAELENS_WEIGHTS, tensors, cfg, est)


def to_sparsify(est: Any, path: str | os.PathLike) -> Path:
    """Write a fitted lucidae SAE as one sparsify hookpoint folder (``cfg.json`` + ``sae.safetensors``).

    sparsify keeps the folders of a model's hookpoints side by side (``OUT/layers.6``,
    ``OUT/layers.7``); ``path`` is one of them. TopK models keep their ``k``; a ReLU
    (L1) model is written with ``k = num_latents``, which in sparsify's formula keeps every
    ReLU latent, so it is the same model. Input scaling is folded into the weights.

    Parameters
    ----------
    est : SparseAutoEncoder or TopKAutoEncoder
        A fitted estimator.
    path : path-like
        The hookpoint folder to write (created; other files in it are kept).

    Returns
    -------
    Path
        The folder written.

    Raises
    ------
    ConfigError
        When ``est`` is not a fitted ReLU or TopK SAE (sparsify has no JumpReLU: use
        :func:`to_saelens`), or the folder cannot be written.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from lucidae import SparseAutoEncoder
    >>> X = np.random.default_rng(0).standard_normal((64, 8)).astype(np.float32)
    >>> sae = SparseAutoEncoder(latent_dim=16, epochs=1, verbose=0, random_state=0).fit(X)
    >>> folder = to_sparsify(sae, tempfile.mkdtemp() + "/layers.0")
    >>> json.loads((folder / "cfg.json").read_text())["k"]
    16
    >>> type(from_sparsify(folder)).__name__
    'SparseAutoEncoder'
    """
    t = _tensors_of(est)
    if t.family == "jumprelu":
        raise ConfigError(
            f"{type(est).__name__} is a JumpReLU SAE; sparsify holds TopK SAEs only. Export it with to_saelens "
            "(lucidae export --format saelens) instead."
        )
    k = t.k if t.family == "topk" else t.d_sae  # every ReLU latent kept: the ReLU SAE itself
    cfg = {
        "activation": "topk",
        "expansion_factor": max(1, t.d_sae // t.d_in),
        "normalize_decoder": t.unit_norm(),
        "num_latents": t.d_sae,
        "k": k,
        "multi_topk": False,
        "skip_connection": False,
        "transcode": False,
        "d_in": t.d_in,
    }
    tensors = {"encoder.weight": t.W_enc.T, "encoder.bias": t.b_enc, "W_dec": t.W_dec, "b_dec": t.b_dec}
    return _write(path, SPARSIFY_WEIGHTS, tensors, cfg, est)


# ---------------------------------------------------------------------- folders -> lucidae
def _fail(folder: Path, message: str) -> CorruptFileError:
    return CorruptFileError(f"{folder}: {message}")


def _read_json(folder: Path, name: str, what: str, *, required: bool = True) -> dict[str, Any] | None:
    path = folder / name
    if not path.is_file():
        if not required:
            return None
        if not folder.is_dir():
            raise CorruptFileError(f"{folder} is not a folder; expected {what}.")
        raise _fail(folder, f"{name} is missing; expected {what}. Point at the folder that holds {name}.")
    try:
        if path.stat().st_size > MAX_CFG_BYTES:
            raise _fail(folder, f"{name} is over {MAX_CFG_BYTES} bytes; a config is a few hundred.")
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as err:
        if isinstance(err, CorruptFileError):
            raise
        raise _fail(folder, f"{name} is not valid JSON ({type(err).__name__}: {err}).") from err
    if not isinstance(cfg, dict):
        raise _fail(folder, f"{name} must hold a JSON object, found {type(cfg).__name__}.")
    return cfg


def _cfg_int(folder: Path, cfg: dict[str, Any], key: str, default: Any = None, minimum: int = 1) -> int:
    value = cfg.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _fail(folder, f"cfg.json has {key}={value!r}; expected an integer >= {minimum}.")
    return value


def _cfg_flag(folder: Path, cfg: dict[str, Any], key: str, default: bool) -> bool:
    value = cfg.get(key, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise _fail(folder, f"cfg.json has {key}={value!r}; expected true or false.")
    return value


def _read_tensors(
    folder: Path, name: str, required: dict[str, tuple[int, ...]], optional: dict[str, tuple[int, ...]]
) -> dict[str, np.ndarray]:
    """The tensors of ``folder/name``, checked against the shapes the config implies before any is read."""
    path = folder / name
    if not path.is_file():
        raise _fail(folder, f"{name} is missing; the folder's weights are not there.")
    header = read_safetensors_header(path)
    missing = [k for k in required if k not in header]
    if missing:
        raise _fail(folder, f"{name} lacks tensor(s) {missing}; expected {sorted(required)}.")
    extra = sorted(set(header) - set(required) - set(optional))
    if extra:
        raise _fail(
            folder,
            f"{name} holds tensor(s) {extra[:5]} that this layout does not have (expected {sorted(required)}); "
            "lucidae will not ignore weights that may change the model.",
        )
    for key, entry in header.items():
        shape = tuple(entry["shape"])
        want = required.get(key, optional.get(key))
        if shape != want:
            raise _fail(folder, f"tensor {key!r} in {name} has shape {list(shape)}; cfg.json implies {list(want)}.")
        if entry["dtype"] not in FLOAT_DTYPES:
            raise _fail(folder, f"tensor {key!r} in {name} has dtype {entry['dtype']}; expected one of {FLOAT_DTYPES}.")
    try:
        loaded = load_file(str(path), device="cpu")
    except Exception as err:  # the safetensors reader raises its own types for damaged data
        raise _fail(folder, f"{name} could not be read ({type(err).__name__}: {err}).") from err
    out = {k: v.double().numpy() for k, v in loaded.items()}
    for key, value in out.items():
        if not np.isfinite(value).all():
            raise _fail(folder, f"tensor {key!r} in {name} has NaN or infinite values; the SAE cannot be used.")
    return out


def _feature_names(folder: Path, d_in: int) -> tuple[list[str], dict[str, Any]]:
    side = _read_json(folder, SIDECAR, "lucidae's notes", required=False) or {}
    names = side.get("feature_names")
    if names is None:
        return [f"x{i}" for i in range(d_in)], side
    if not isinstance(names, list) or len(names) != d_in or not all(isinstance(n, str) for n in names):
        raise _fail(
            folder, f"{SIDECAR} has feature_names that are not {d_in} strings (one per input); fix or delete it."
        )
    return names, side


def _estimator(t: _SAETensors, feature_names: list[str]) -> BaseAutoEncoder:
    """A fitted lucidae estimator holding the SAE ``t`` (identity scaling, empty history)."""
    cls = estimator_for(t.family)
    params: dict[str, Any] = {"latent_dim": t.d_sae, "verbose": 0, "unit_norm_decoder": t.unit_norm()}
    if t.family == "topk":
        params["k"] = t.k
    est = cls(**params)
    model_cfg = est.get_model_config(t.d_in)
    with seeded(0):  # the random start is overwritten below; seeded keeps the caller's RNG untouched
        module = build_model(model_cfg)
    state = {
        "encoder.weight": _f32(t.W_enc.T),  # (d_sae, d_in)
        "encoder.bias": _f32(t.b_enc),  # (d_sae,)
        "decoder.weight": _f32(t.W_dec.T),  # (d_in, d_sae)
        "decoder.bias": _f32(t.b_dec),  # (d_in,)
        "samples_since_fired": torch.zeros(t.d_sae, dtype=torch.long),  # (d_sae,)
    }
    if t.threshold is not None:
        state["threshold"] = _f32(t.threshold)  # (d_sae,)
    module.load_state_dict(state)
    est.module_ = module.eval()
    est.model_config_ = model_cfg
    est.scaler_ = Scaler("identity", np.zeros(t.d_in), np.ones(t.d_in))
    est.n_features_in_ = t.d_in
    est.feature_names_ = list(feature_names)
    est.image_shape_ = None
    est.history_ = History()
    est.n_iter_ = 0
    est.fit_seconds_ = 0.0
    est.init_scores_ = []
    est.best_init_ = 0
    return est


def from_saelens(path: str | os.PathLike) -> BaseAutoEncoder:
    """Load a SAELens SAE folder (``cfg.json`` + ``sae_weights.safetensors``) as a fitted lucidae estimator.

    ``"standard"`` becomes a :class:`~lucidae.estimators.SparseAutoEncoder`, ``"topk"`` a
    :class:`~lucidae.estimators.TopKAutoEncoder` and ``"jumprelu"`` a
    :class:`~lucidae.estimators.JumpReLUAutoEncoder`, computing SAELens's formula (module
    notes). The estimator has no input scaling and an empty history; ``save`` and
    :func:`lucidae.load` round-trip it. Nothing is unpickled and nothing is downloaded:
    fetch the folder first (for example with ``huggingface_hub.snapshot_download``).

    Parameters
    ----------
    path : path-like
        The folder holding ``cfg.json`` and ``sae_weights.safetensors``.

    Returns
    -------
    SparseAutoEncoder, TopKAutoEncoder or JumpReLUAutoEncoder
        Fitted.

    Raises
    ------
    CorruptFileError
        When a file is missing or damaged, the shapes disagree with ``cfg.json``, or the
        folder uses an architecture or option lucidae does not support (named in the message).

    Examples
    --------
    >>> import tempfile, torch
    >>> from safetensors.torch import save_file
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "cfg.json").write_text('{"architecture": "jumprelu", "d_in": 4, "d_sae": 8}')
    >>> save_file({"W_enc": torch.randn(4, 8), "b_enc": torch.zeros(8), "W_dec": torch.randn(8, 4),
    ...            "b_dec": torch.zeros(4), "threshold": torch.full((8,), 0.1)},
    ...           str(folder / "sae_weights.safetensors"))
    >>> type(from_saelens(folder)).__name__
    'JumpReLUAutoEncoder'
    """
    folder = Path(path)
    cfg = _read_json(folder, CFG, "a SAELens cfg.json")
    architecture = cfg.get("architecture", "standard")
    if architecture == "gated":
        raise _fail(
            folder,
            "architecture 'gated' is not supported by lucidae yet (it has no gated SAE family); supported: "
            f"{sorted(SAELENS_ARCHITECTURES)}.",
        )
    if architecture not in SAELENS_ARCHITECTURES:
        raise _fail(
            folder, f"cfg.json has architecture={architecture!r:.60}; expected one of {sorted(SAELENS_ARCHITECTURES)}."
        )
    family = SAELENS_ARCHITECTURES[architecture]
    activation = cfg.get("activation_fn_str", "topk" if family == "topk" else "relu")
    if family == "sparse" and activation == "topk":  # SAELens 5 wrote TopK SAEs as "standard" + activation topk
        family = "topk"
    elif activation not in (("topk", "relu") if family == "topk" else ("relu",)):
        raise _fail(
            folder,
            f"cfg.json has activation_fn_str={activation!r:.60} for architecture {architecture!r}; lucidae reads "
            "'relu' (and 'topk'). Other activations are not supported.",
        )
    d_in, d_sae = _cfg_int(folder, cfg, "d_in"), _cfg_int(folder, cfg, "d_sae")
    k = 0
    if family == "topk":
        kwargs = cfg.get("activation_fn_kwargs") or {}
        k = _cfg_int(folder, {"k": cfg.get("k", kwargs.get("k") if isinstance(kwargs, dict) else None)}, "k")
        if k > d_sae:
            raise _fail(folder, f"cfg.json has k={k}, more than d_sae={d_sae} latents; expected k <= d_sae.")
    norm = cfg.get("normalize_activations", "none")
    if norm not in (None, "none", "expected_average_only_in"):
        raise _fail(
            folder,
            f"cfg.json has normalize_activations={norm!r:.60}, which rescales every sample inside the SAE; lucidae "
            "supports 'none' (and 'expected_average_only_in', which SAELens does not apply at inference).",
        )
    if _cfg_flag(folder, cfg, "rescale_acts_by_decoder_norm", False):
        raise _fail(folder, "cfg.json has rescale_acts_by_decoder_norm=true, which lucidae does not support yet.")
    apply_b_dec = _cfg_flag(folder, cfg, "apply_b_dec_to_input", True)
    finetuning = _cfg_flag(folder, cfg, "finetuning_scaling_factor", False)
    required = {"W_enc": (d_in, d_sae), "b_enc": (d_sae,), "W_dec": (d_sae, d_in), "b_dec": (d_in,)}
    optional: dict[str, tuple[int, ...]] = {}
    if family == "jumprelu":
        optional = {"threshold": (d_sae,), "log_threshold": (d_sae,)}
    if finetuning:
        required["scaling_factor"] = (d_sae,)
    w = _read_tensors(folder, SAELENS_WEIGHTS, required, optional)
    threshold = None
    if family == "jumprelu":
        if ("threshold" in w) == ("log_threshold" in w):
            raise _fail(
                folder, f"{SAELENS_WEIGHTS} must hold one of 'threshold' or 'log_threshold' for a JumpReLU SAE."
            )
        threshold = w["threshold"] if "threshold" in w else np.exp(w["log_threshold"])  # (d_sae,)
    W_enc, b_enc, W_dec, b_dec = w["W_enc"], w["b_enc"], w["W_dec"], w["b_dec"]
    if not apply_b_dec:
        # x @ W_enc + b_enc == (x - b_dec) @ W_enc + (b_enc + b_dec @ W_enc): the same pre-activation
        b_enc = b_enc + b_dec @ W_enc  # (d_sae,)
    if finetuning:
        W_dec = w["scaling_factor"][:, None] * W_dec  # (d_sae, d_in): z * s @ W_dec == z @ (s W_dec)
    names, _ = _feature_names(folder, d_in)
    return _estimator(_SAETensors(family, W_enc, b_enc, W_dec, b_dec, k=k, threshold=threshold), names)


def from_sparsify(path: str | os.PathLike) -> BaseAutoEncoder:
    """Load one sparsify hookpoint folder (``cfg.json`` + ``sae.safetensors``) as a fitted lucidae estimator.

    A TopK SAE becomes a :class:`~lucidae.estimators.TopKAutoEncoder`; one whose ``k`` is
    ``num_latents`` (every ReLU latent kept, as :func:`to_sparsify` writes a ReLU SAE)
    becomes a :class:`~lucidae.estimators.SparseAutoEncoder`. The estimator has no input
    scaling and an empty history; ``save`` and :func:`lucidae.load` round-trip it.

    Parameters
    ----------
    path : path-like
        The hookpoint folder (for example ``checkpoints/run/layers.6``).

    Returns
    -------
    TopKAutoEncoder or SparseAutoEncoder
        Fitted.

    Raises
    ------
    CorruptFileError
        When a file is missing or damaged, the shapes disagree with ``cfg.json``, or the
        folder uses an option lucidae does not support (groupmax, skip connection, transcoder).

    Examples
    --------
    >>> import tempfile, torch
    >>> from safetensors.torch import save_file
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "cfg.json").write_text('{"d_in": 4, "num_latents": 8, "k": 2}')
    >>> save_file({"encoder.weight": torch.randn(8, 4), "encoder.bias": torch.zeros(8),
    ...            "W_dec": torch.randn(8, 4), "b_dec": torch.zeros(4)}, str(folder / "sae.safetensors"))
    >>> est = from_sparsify(folder)
    >>> type(est).__name__, est.model_config_.k
    ('TopKAutoEncoder', 2)
    """
    folder = Path(path)
    cfg = _read_json(folder, CFG, "a sparsify cfg.json (one hookpoint's folder, such as layers.6)")
    activation = cfg.get("activation", "topk")
    if activation != "topk":
        raise _fail(folder, f"cfg.json has activation={activation!r:.60}; lucidae reads sparsify's 'topk' SAEs only.")
    for flag in ("skip_connection", "transcode"):
        if _cfg_flag(folder, cfg, flag, False):
            raise _fail(
                folder, f"cfg.json has {flag}=true; lucidae reads plain SAEs (no skip connection, no transcoder)."
            )
    d_in = _cfg_int(folder, cfg, "d_in")
    n = _cfg_int(folder, cfg, "num_latents", 0, minimum=0)
    if n == 0:
        n = d_in * _cfg_int(folder, cfg, "expansion_factor", 32)
    k = _cfg_int(folder, cfg, "k")
    if k > n:
        raise _fail(folder, f"cfg.json has k={k}, more than num_latents={n}; expected k <= num_latents.")
    w = _read_tensors(
        folder,
        SPARSIFY_WEIGHTS,
        {"encoder.weight": (n, d_in), "encoder.bias": (n,), "W_dec": (n, d_in), "b_dec": (d_in,)},
        {},
    )
    names, side = _feature_names(folder, d_in)
    # k == num_latents keeps every latent of relu(pre): the ReLU SAE, unless lucidae wrote a TopK model with k = n
    family = "topk" if k < n or side.get("model") == "topk" else "sparse"
    k = k if family == "topk" else 0
    t = _SAETensors(family, w["encoder.weight"].T, w["encoder.bias"], w["W_dec"], w["b_dec"], k=k)
    return _estimator(t, names)


__all__ = ["from_saelens", "from_sparsify", "to_saelens", "to_sparsify"]
