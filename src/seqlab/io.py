"""Saving and loading models in safe formats: weights as safetensors, everything else as JSON.

A model directory holds ``config.json`` (model kind, its config, vocabulary) and
``model.safetensors``, each written atomically (``seqlab.atomic``). Nothing is ever unpickled.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from seqlab.atomic import read_json, recover, write_json, write_safetensors
from seqlab.errors import SeqlabError

FORMAT = "seqlab-model"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


def save(model, directory: str | Path) -> None:
    """Write ``config.json`` and ``model.safetensors`` for ``model`` into ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = {"format": FORMAT, "format_version": FORMAT_VERSION, "model": model.kind, **model.to_config()}
    write_safetensors(directory / WEIGHTS_FILE, model.state_dict())
    write_json(directory / CONFIG_FILE, config)


def load(directory: str | Path, expect: str | None = None):
    """Load the model saved in ``directory``; ``expect`` names the model kind the caller needs."""
    from seqlab.models import MODELS

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
    return model
