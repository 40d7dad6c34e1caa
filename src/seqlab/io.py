"""Saving and loading models in safe formats: weights as safetensors, everything else as JSON.

A model directory holds ``config.json`` (model kind, its config, vocabulary, and the ``DataSpec`` of the
data it was trained on when known) and ``model.safetensors``, each written atomically (``seqlab.atomic``).
Nothing is ever unpickled. The kinds ``load`` knows are the registry ``seqlab.base.MODELS``.

A checkpoint is validated before anything it describes is allocated (``load``): ``config.json`` is a bounded
file of bounded nesting with a known ``format_version``; a dataclass model config has the field types of its
class, every number finite and every integer under ``MAX_CONFIG_INT``; the number of tensors and of their
elements that the config implies, computed by arithmetic (``implied_weights``: no module is built), must fit
``seqlab.limits.memory_budget()``, and the number of tensors must equal the safetensors header's; only then is
the model built on the ``meta`` device (no memory; its cost is now bounded by the header, so by the file's size)
and its tensor names, shapes and dtypes compared with the header's; the loaded floating-point weights are finite.
The data record (``data``: a ``DataSpec``) has every field of its type and range, and a vocoder layout within the
bounds WORLD takes that describes the model's frames (``data_record``), before any data is read or analysed.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
import stat
import typing
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open

from seqlab.atomic import read_json, read_safetensors, recover, write_json, write_safetensors
from seqlab.base import MODELS, SequenceModel
from seqlab.data.audio import MuLaw
from seqlab.data.spec import DataSpec
from seqlab.data.text import Vocabulary
from seqlab.data.vocoder import VocoderLayout
from seqlab.distributions import FrameHead, continuous_head
from seqlab.errors import SeqlabError
from seqlab.limits import memory_budget
from seqlab.models.element_codecs import FrameLayout, data_from_config
from seqlab.models.global_ar import FEATURES as GLOBAL_FEATURES
from seqlab.recurrent import CELLS
from seqlab.transforms import Transform

FORMAT = "seqlab-model"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
MAX_CONFIG_BYTES = 64 * 2**20  # config.json: a vocabulary of characters and a few settings, never this large
MAX_CONFIG_INT = 2**24  # no size, order or count in a model config comes near this


def save(model: SequenceModel, directory: str | Path) -> None:
    """Write ``config.json`` and ``model.safetensors`` for ``model`` into ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = {"format": FORMAT, "format_version": FORMAT_VERSION, "model": model.kind, **model.to_config()}
    if model.data_spec is not None:
        config["data"] = model.data_spec.to_json()
    if model.transform is not None:  # a model of a transformed series forecasts back through it
        config["transform"] = model.transform.to_json()
    write_safetensors(directory / WEIGHTS_FILE, model.state_dict())
    write_json(directory / CONFIG_FILE, config)
    model.save_files(directory)  # an InfiniGram's index beside it; nothing for most models


def load(directory: str | Path, expect: str | None = None) -> SequenceModel:
    """Load the model saved in ``directory``; ``expect`` names the model kind the caller needs."""
    directory = Path(directory)
    recover(directory)  # a checkpoint swap a kill interrupted: the newest complete copy goes back in place
    if not directory.is_dir():
        raise SeqlabError(f"{directory}: no such model directory")
    if not (directory / CONFIG_FILE).exists():
        raise SeqlabError(f"{directory}: not a seqlab model directory (no {CONFIG_FILE})")
    config_path = directory / CONFIG_FILE
    config = read_config(config_path)
    kind = config.get("model")
    if not isinstance(kind, str) or kind not in MODELS:
        raise SeqlabError(f"{directory}: unknown model kind {kind!r} (known: {', '.join(MODELS)})")
    if expect is not None and kind != expect:
        raise SeqlabError(f"{directory}: holds a {kind} model, expected {expect}")
    model_class = MODELS[kind]
    check_config_fields(model_class, config, config_path)
    header = weights_header(directory / WEIGHTS_FILE)
    check_before_building(model_class, config, header, config_path, directory / WEIGHTS_FILE)
    data_spec = data_record(config["data"], config, config_path) if "data" in config else None
    model = build(model_class, config, config_path)
    if data_spec is not None:
        model.data_spec = data_spec
    if "transform" in config and model.transform is None:
        model.transform = Transform.from_json(config["transform"])
    model.files_at(directory)  # where an InfiniGram looks for its index first
    load_weights(model, directory)
    return model


def check_before_building(
    model_class: type[SequenceModel],
    config: dict,
    header: dict,
    config_path: Path,
    weights_path: Path,
    prefix: str = "",
) -> int:
    """The checks of the module docstring for a neural model, and for every neural model a saved model is made
    of (a pool's members: their configs, their sizes by arithmetic, summed against the budget, and their tensors
    under their prefix in the header), before anything is allocated. Returns the elements a neural model implies."""
    if issubclass(model_class, torch.nn.Module):  # the shapes the config implies, without allocating them
        implied = implied_weights(model_class, config, config_path)
        check_weight_counts(implied, header, weights_path)
        with torch.device("meta"):  # bounded now: the header's tensors are as many as the config implies
            skeleton = build(model_class, config, config_path)
        check_weights_header({prefix + k: v for k, v in skeleton.state_dict().items()}, header, weights_path)
        return implied[1]
    try:
        parts = model_class.saved_parts(config)
    except SeqlabError as e:
        raise SeqlabError(f"{config_path}: invalid model config ({e})") from None
    total = 0
    grouped = tensors_by_part(header, prefix, [part_prefix for part_prefix, _ in parts])
    for (part_prefix, part), own in zip(parts, grouped, strict=True):
        kind = part.get("model")
        if not isinstance(kind, str) or kind not in MODELS or kind == model_class.kind:
            raise SeqlabError(f"{config_path}: invalid model config (a part of unknown kind {kind!r})")
        check_config_fields(MODELS[kind], part, config_path)
        total += check_before_building(MODELS[kind], part, own, config_path, weights_path, prefix + part_prefix)
        refuse_over_budget(4 * total, weights_path)
    return total


def tensors_by_part(header: dict, prefix: str, part_prefixes: list[str]) -> list[dict]:
    """The entries of ``header`` (names under ``prefix``) of each part, in one pass over it: a part's prefix is one
    dotted segment (``member3.``), so a name's part is found by its first segment, not by testing every part's
    prefix against every name (quadratic in the parts: 8,000 members took minutes). Names of no part are left
    to the model's own check."""
    index = {part_prefix: i for i, part_prefix in enumerate(part_prefixes)}
    if len(index) != len(part_prefixes) or any(p.count(".") != 1 or not p.endswith(".") for p in index):
        raise ValueError(f"part prefixes must be distinct single segments NAME., got {part_prefixes[:3]}")
    grouped: list[dict] = [{} for _ in part_prefixes]
    for name, entry in header.items():
        segment, dot, _ = name[len(prefix) :].partition(".")
        i = index.get(segment + dot) if name.startswith(prefix) else None
        if i is not None:
            grouped[i][name] = entry
    return grouped


def data_record(record, model_config: dict, path: Path, where: str = "data") -> DataSpec:
    """The ``DataSpec`` recorded at ``where`` in ``path`` (config.json's ``data``, training.json's ``meta``) for
    the model of ``model_config``: every field checked (``DataSpec.from_json``), and a vocoder layout must
    describe the model's frames (``frames``: their number, voicing and groups), whose weights are checked."""
    try:
        spec = DataSpec.from_json(record, where)
        if spec.vocoder is not None and "frames" in model_config:
            layout, frames = VocoderLayout.from_json(spec.vocoder), FrameLayout.from_json(model_config["frames"])
            if frames != FrameLayout(layout.dim, layout.groups["voicing"], layout.groups):
                raise SeqlabError(
                    f"{where}.vocoder describes frames of {layout.dim} values (envelope {layout.envelope}, "
                    f"{layout.aperiodicity} aperiodicity), not the model's frames of {frames.dims} and their groups"
                )
    except SeqlabError as e:
        raise SeqlabError(f"{path}: invalid data record ({e})") from None
    return spec


def build(model_class: type[SequenceModel], config: dict, config_path: Path) -> SequenceModel:
    try:
        return model_class.from_config(config)
    except SeqlabError as e:
        raise SeqlabError(f"{config_path}: invalid model config ({e})") from None
    except (KeyError, TypeError, ValueError, RuntimeError, OverflowError, AttributeError) as e:
        raise SeqlabError(f"{config_path}: invalid model config ({type(e).__name__}: {e})") from None


def read_config(path: Path) -> dict:
    """``config.json`` as a dict: a regular file of at most ``MAX_CONFIG_BYTES``, a seqlab config of a known
    format version (nesting too deep for the parser is refused by ``read_json``)."""
    try:
        info = os.stat(path)
    except OSError as e:
        raise SeqlabError(f"{path}: cannot read it ({e.strerror})") from None
    if not stat.S_ISREG(info.st_mode):
        raise SeqlabError(f"{path}: not a regular file")
    if info.st_size > MAX_CONFIG_BYTES:
        raise SeqlabError(f"{path}: {info.st_size:,} bytes, over the limit of {MAX_CONFIG_BYTES:,} for a model config")
    config = read_json(path)
    if config.get("format") != FORMAT:  # read_json: always an object
        raise SeqlabError(f"{path}: not a seqlab model config")
    version = config.get("format_version")
    if isinstance(version, bool) or version != FORMAT_VERSION:
        raise SeqlabError(f"{path}: format_version {version!r}; this seqlab reads format_version {FORMAT_VERSION}")
    return config


def check_config_fields(model_class: type[SequenceModel], config: dict, path: Path) -> None:
    """Types and ranges of the model's settings (``config["config"]``): every number finite, every integer at
    most ``MAX_CONFIG_INT`` in size; a dataclass config's fields of the type of their defaults."""
    fields = config.get("config", {})
    if not isinstance(fields, dict):
        raise SeqlabError(f"{path}: invalid model config ('config' is a {type(fields).__name__}, expected an object)")
    for name, value in fields.items():
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            if not math.isfinite(value) or abs(value) > MAX_CONFIG_INT:
                raise SeqlabError(f"{path}: invalid model config ({name} = {value!r} is out of range)")
    config_class = getattr(model_class, "config_class", None)
    if not dataclasses.is_dataclass(config_class):
        return
    for f in dataclasses.fields(config_class):
        if f.name not in fields or f.default is dataclasses.MISSING or f.default is None:
            continue
        value, expected = fields[f.name], type(f.default)
        if value is None and _accepts_none(config_class, f.name):  # e.g. ETSConfig.beta_max: float | None
            continue
        if expected is float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        else:
            ok = type(value) is expected
        if not ok:
            raise SeqlabError(f"{path}: invalid model config ({f.name} = {value!r}, expected a {expected.__name__})")


def _accepts_none(config_class: type, name: str) -> bool:
    """Whether the dataclass field ``name`` is annotated as optional (``X | None``)."""
    try:
        hint = typing.get_type_hints(config_class)[name]
    except (NameError, TypeError, KeyError):  # an annotation that does not resolve: hold it to its default's type
        return False
    return type(None) in typing.get_args(hint)


# -- the size of a neural model by arithmetic: (tensors, elements) of its state dict, no module built ------------


def linear(inputs: int, outputs: int) -> tuple[int, int]:
    """``nn.Linear(inputs, outputs)``: weight (outputs, inputs) and bias (outputs,)."""
    return 2, outputs * inputs + outputs


def layer_norm(size: int) -> tuple[int, int]:
    return 2, 2 * size


def elements_weights(data, settings, embedding_dim: int) -> tuple[tuple[int, int], int]:
    """``seqlab.models.element_codecs``' codec: its saved tensors, and the head's parameter count ``P``."""
    E = embedding_dim
    if isinstance(data, (Vocabulary, MuLaw)):  # discrete: embedding (V + 1, E), Categorical(V)
        return (1, (len(data) + 1) * E), len(data)
    per_value = continuous_head(settings.head, settings.components)
    if isinstance(data, FrameLayout):  # location, scale, low, high (D,) each; (D values, missing flag) -> E
        D = data.dims
        tensors, count = linear(D + 1, E)
        return (tensors + 4, count + 4 * D), FrameHead(D, data.binary, per_value).num_params
    C = settings.covariates
    tensors, count = linear(2 + C, E)  # (value, missing flag, covariates) -> E
    tensors, count = tensors + 2, count + 2  # location, scale
    if C:
        tensors, count = tensors + 2, count + 2 * C  # covariate_location, covariate_scale
    return (tensors, count), per_value.num_params


def latent_ar_weights(settings, E: int, P: int) -> list[tuple[int, int]]:
    """``Recurrent``: per layer weight_ih (G, D), weight_hh (G, H), two biases (G,); the head over [H, e]."""
    G, H, above = CELLS[settings.cell].num_gates * settings.hidden_size, settings.hidden_size, settings.num_layers - 1
    return [(4, G * (E + H + 2)), (4 * above, above * G * (2 * H + 2)), linear(H + E, P)]


def neural_ar_weights(settings, E: int, P: int) -> list[tuple[int, int]]:
    """The MLP over ``window`` embeddings: Linear(window E, H), then ``num_layers - 1`` of Linear(H, H)."""
    H, L = settings.hidden_size, settings.num_layers
    rest = linear(H, H)
    return [linear(settings.window * E, H), ((L - 1) * rest[0], (L - 1) * rest[1]), linear(H, P)]


def transformer_weights(settings, D: int, P: int) -> list[tuple[int, int]]:
    """Per block: two LayerNorms, q (D, D), kv (2D, D), proj (D, D), an MLP D -> 4D -> D; a final LayerNorm."""
    parts = [layer_norm(D), layer_norm(D), linear(D, D), linear(D, 2 * D), linear(D, D), linear(D, 4 * D)]
    parts.append(linear(4 * D, D))
    block = (sum(t for t, _ in parts), sum(n for _, n in parts))
    L = settings.num_layers
    return [(L * block[0], L * block[1]), layer_norm(D), linear(D, P)]


def global_ar_weights(settings) -> list[tuple[int, int]]:
    """The global panel model: its series scale (a scalar), the series embedding (if any), ``Recurrent`` over the
    features and that embedding, the head over H (``seqlab.models.global_ar``)."""
    H, E, above = settings.hidden_size, settings.series_embedding, settings.num_layers - 1
    G, D = CELLS[settings.cell].num_gates * H, GLOBAL_FEATURES + E
    P = continuous_head(settings.head, settings.components).num_params
    embedding = [(1, settings.num_series * E)] if E else []
    return [(1, 1), *embedding, (4, G * (D + H + 2)), (4 * above, above * G * (2 * H + 2)), linear(H, P)]


# kind -> (the field that sizes the embedding, the network's tensors); every nn.Module kind has one (a test checks);
# a model without an element codec (the global panel model) has no embedding field: its network alone
IMPLIED_WEIGHTS = {
    "latent_ar": ("embedding_dim", latent_ar_weights),
    "neural_ar": ("embedding_dim", neural_ar_weights),
    "causal_transformer": ("d_model", transformer_weights),
    "global_ar": (None, global_ar_weights),
}


def implied_weights(model_class: type[SequenceModel], config: dict, path: Path) -> tuple[int, int]:
    """(tensors, elements) of the state dict ``config`` describes, by arithmetic on its settings: the work and
    memory are those of reading the config, whatever numbers it holds (no module is built)."""
    if model_class.kind not in IMPLIED_WEIGHTS:
        raise SeqlabError(f"{path}: no size rule for a {model_class.kind} model; seqlab cannot check it safely")
    embedding_field, network = IMPLIED_WEIGHTS[model_class.kind]
    try:
        settings = model_class.config_class(**config.get("config", {}))
        settings.validate()
        if embedding_field is None:
            parts = network(settings)
            return sum(t for t, _ in parts), sum(n for _, n in parts)
        data = data_from_config(config)  # a Vocabulary, MuLaw, FrameLayout or None (a series)
    except SeqlabError as e:
        raise SeqlabError(f"{path}: invalid model config ({e})") from None
    except (KeyError, TypeError, ValueError, OverflowError, AttributeError) as e:
        raise SeqlabError(f"{path}: invalid model config ({type(e).__name__}: {e})") from None
    E = getattr(settings, embedding_field)
    elements, P = elements_weights(data, settings, E)
    parts = [elements, *network(settings, E, P)]
    return sum(t for t, _ in parts), sum(n for _, n in parts)


def refuse_over_budget(nbytes: int, path: Path) -> None:
    """Refuse, naming the config beside the weights file ``path``, a model of ``nbytes`` of weights over
    ``memory_budget()``."""
    if nbytes > memory_budget():
        raise SeqlabError(
            f"{path.with_name(CONFIG_FILE)}: describes a model of {nbytes / 2**30:.1f} GiB of weights, over the "
            f"limit of {memory_budget() / 2**30:.1f} GiB"
        )


def check_weight_counts(implied: tuple[int, int], header: dict, path: Path) -> None:
    """The config's implied size against the memory budget (float32 weights), and its number of tensors against
    the header's. Building the model on ``meta`` then costs what the header's tensors cost (shapes cost nothing
    there): bounded by the file's size. Which tensor differs in shape is said after that build."""
    tensors, elements = implied
    refuse_over_budget(4 * elements, path)
    if tensors != len(header):
        raise SeqlabError(
            f"{path}: weights do not match {CONFIG_FILE} (it implies {tensors:,} tensors, the file holds "
            f"{len(header):,})"
        )


def weights_header(path: Path) -> dict[str, tuple[tuple[int, ...], str]]:
    """name -> (shape, dtype) from the safetensors header, read without loading any tensor."""
    if not path.exists():
        raise SeqlabError(f"{path}: missing")
    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: (tuple(f.get_slice(k).get_shape()), f.get_slice(k).get_dtype()) for k in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise SeqlabError(f"{path}: corrupted or truncated ({e})") from None


DTYPE_NAMES = {torch.float32: "F32", torch.float64: "F64", torch.float16: "F16", torch.bfloat16: "BF16"}
DTYPE_NAMES |= {torch.int64: "I64", torch.int32: "I32", torch.int8: "I8", torch.uint8: "U8", torch.bool: "BOOL"}


def check_weights_header(expected: dict[str, torch.Tensor], header: dict, path: Path) -> None:
    """The header's tensors against the (meta) state dict the config implies: same names, shapes and dtypes, and
    a model small enough to build."""
    refuse_over_budget(sum(t.numel() * t.element_size() for t in expected.values()), path)
    missing, extra = sorted(set(expected) - set(header)), sorted(set(header) - set(expected))
    if missing or extra:
        raise SeqlabError(f"{path}: weights do not match {CONFIG_FILE} (missing {missing[:3]}, unexpected {extra[:3]})")
    for name, tensor in expected.items():
        shape, dtype = header[name]
        want = (tuple(tensor.shape), DTYPE_NAMES.get(tensor.dtype, str(tensor.dtype)))
        if (shape, dtype) != want:
            raise SeqlabError(
                f"{path}: tensor {name} is {dtype} {list(shape)}, but {CONFIG_FILE} implies {want[1]} {list(want[0])}"
            )


def load_weights(model: SequenceModel, directory: str | Path) -> None:
    """Load ``directory``'s ``model.safetensors`` into ``model`` (built from the same config), in eval mode."""
    directory = Path(directory)
    weights_path = directory / WEIGHTS_FILE
    weights = read_safetensors(weights_path)
    try:
        model.load_state_dict(weights)
    except RuntimeError as e:
        first = str(e).splitlines()[0] if str(e) else ""
        raise SeqlabError(f"{weights_path}: weights do not match {CONFIG_FILE} ({first})") from None
    for name, tensor in weights.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise SeqlabError(f"{weights_path}: tensor {name} holds NaN or infinite values; refusing to use it")
    if isinstance(model, torch.nn.Module):
        model.eval()
