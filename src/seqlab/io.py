"""Saving and loading models in safe formats: weights as safetensors, everything else as JSON.

A model directory holds ``config.json`` (model kind, its config, vocabulary) and
``model.safetensors``. Files are written to a temporary name and renamed into place, so a crash
never leaves a half-written file under the real name; ``write_dir_atomically`` swaps whole
directories (the resumable ``last/`` checkpoint) the same way. Nothing is ever unpickled.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from seqlab.errors import SeqlabError

FORMAT = "seqlab-model"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


def replace_into(path: Path, write: Callable[[Path], None]) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json(path: Path, data: dict) -> None:
    replace_into(Path(path), lambda p: p.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8"))


def write_safetensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    replace_into(Path(path), lambda p: save_file(tensors, str(p)))


def write_torch(path: Path, obj) -> None:
    """For optimizer state only (tensors, numbers, dicts): read back with ``weights_only=True``."""
    replace_into(Path(path), lambda p: torch.save(obj, p))


def read_torch(path: Path):
    try:
        return torch.load(path, weights_only=True, map_location="cpu")
    except FileNotFoundError:
        raise SeqlabError(f"{path}: missing") from None
    except Exception as e:  # truncated zip, foreign pickle: both refused here
        raise SeqlabError(f"{path}: corrupted or not a seqlab optimizer state ({type(e).__name__})") from None


def write_dir_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """Fill a fresh temporary directory with ``write(tmp)``, then swap it in for ``path``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    old = path.with_name(f".{path.name}.old-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        write(tmp)
        if path.exists():
            os.replace(path, old)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)


def save(model, directory: str | Path) -> None:
    """Write ``config.json`` and ``model.safetensors`` for ``model`` into ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = {"format": FORMAT, "format_version": FORMAT_VERSION, "model": model.kind, **model.to_config()}
    write_safetensors(directory / WEIGHTS_FILE, model.state_dict())
    write_json(directory / CONFIG_FILE, config)


def read_json(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SeqlabError(f"{path}: missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise SeqlabError(f"{path}: corrupted JSON ({e})") from None


def load(directory: str | Path, expect: str | None = None):
    """Load the model saved in ``directory``; ``expect`` names the model kind the caller needs."""
    from seqlab.models import MODELS

    directory = Path(directory)
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
