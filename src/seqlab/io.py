"""Saving and loading models in safe formats: weights as safetensors, everything else as JSON.

A model directory holds ``config.json`` (model kind, its config, vocabulary, and the ``DataSpec`` of the
data it was trained on when known) and ``model.safetensors``, each written atomically (``seqlab.atomic``).
Nothing is ever unpickled. The kinds ``load`` knows are the registry ``seqlab.base.MODELS``.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from seqlab.atomic import read_json, recover, write_json, write_safetensors
from seqlab.base import MODELS, SequenceModel
from seqlab.data.spec import DataSpec
from seqlab.errors import SeqlabError
from seqlab.transforms import Transform

FORMAT = "seqlab-model"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


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


def load(directory: str | Path, expect: str | None = None) -> SequenceModel:
    """Load the model saved in ``directory``; ``expect`` names the model kind the caller needs."""
    directory = Path(directory)
    recover(directory)  # a checkpoint swap a kill interrupted: the newest complete copy goes back in place
    if not directory.is_dir():
        raise SeqlabError(f"{directory}: no such model directory")
    if not (directory / CONFIG_FILE).exists():
        raise SeqlabError(f"{directory}: not a seqlab model directory (no {CONFIG_FILE})")
    config = read_json(directory / CONFIG_FILE)
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise SeqlabError(f"{directory / CONFIG_FILE}: not a seqlab model config")
    kind = config.get("model")
    if kind not in MODELS:
        raise SeqlabError(f"{directory}: unknown model kind {kind!r} (known: {', '.join(MODELS)})")
    if expect is not None and kind != expect:
        raise SeqlabError(f"{directory}: holds a {kind} model, expected {expect}")
    try:
        model = MODELS[kind].from_config(config)
    except (KeyError, TypeError, ValueError) as e:
        raise SeqlabError(f"{directory / CONFIG_FILE}: invalid model config ({e})") from None
    if "data" in config:
        model.data_spec = DataSpec.from_json(config["data"])
    if "transform" in config and model.transform is None:
        model.transform = Transform.from_json(config["transform"])
    load_weights(model, directory)
    return model


def load_weights(model: SequenceModel, directory: str | Path) -> None:
    """Load ``directory``'s ``model.safetensors`` into ``model`` (built from the same config), in eval mode."""
    directory = Path(directory)
    weights_path = directory / WEIGHTS_FILE
    if not weights_path.exists():
        raise SeqlabError(f"{weights_path}: missing")
    try:
        weights = load_file(str(weights_path))
    except (SafetensorError, OSError, ValueError) as e:
        raise SeqlabError(f"{weights_path}: corrupted or truncated ({e})") from None
    try:
        model.load_state_dict(weights)
    except RuntimeError as e:
        first = str(e).splitlines()[0] if str(e) else ""
        raise SeqlabError(f"{weights_path}: weights do not match {CONFIG_FILE} ({first})") from None
    if isinstance(model, torch.nn.Module):
        model.eval()
