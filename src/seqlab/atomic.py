"""Atomic files and directories: written under a temporary name, synced, then renamed into place, so a crash
never leaves a half-written file under the real name. JSON and safetensors only, plus optimizer state read back
with ``weights_only=True``: nothing is ever unpickled."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors.torch import save_file

from seqlab.errors import SeqlabError


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


def read_json(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SeqlabError(f"{path}: missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise SeqlabError(f"{path}: corrupted JSON ({e})") from None
