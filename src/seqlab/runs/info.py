"""``info``: what a saved model is, what it was trained on, and how its training went."""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from pathlib import Path

from seqlab import io
from seqlab.data.spec import DataSpec
from seqlab.errors import SeqlabError
from seqlab.models.pool import Pool
from seqlab.runs import checkpoints, run_directory

RECORD_OBJECTS = ("meta", "trainer_config", "progress", "final")  # the parts of training.json that info shows
PROGRESS_NUMBERS = ("step", "elapsed")


@dataclass
class ModelInfo:
    description: str
    data: DataSpec | None
    training: dict  # training.json ({} for a model saved without a run)
    members: list[tuple[str, float, str]] = field(default_factory=list)  # a pool's: (name, weight, description)
    panel: dict | None = None  # a global model's panel (training.json's meta.panel): series, ids, season, ...


SHOWN_IDS = 10  # a panel's ids shown by name


def panel_line(panel: dict) -> str:
    """A global model's panel in one line: how many series (the first ids), the season, the horizon, and the
    series left out with their reasons."""
    ids = [str(i) for i in panel.get("ids", [])]
    shown = ", ".join(ids[:SHOWN_IDS]) + (f" and {len(ids) - SHOWN_IDS:,} more" if len(ids) > SHOWN_IDS else "")
    line = f"{panel.get('series', len(ids)):,} series ({shown}), season {panel.get('season')}, horizon "
    line += f"{panel.get('horizon')}"
    left = panel.get("left_out") or {}
    if left:
        reasons = "; ".join(f"{k}: {v}" for k, v in list(left.items())[:SHOWN_IDS])
        more = f"; and {len(left) - SHOWN_IDS:,} more" if len(left) > SHOWN_IDS else ""
        line += f"; {len(left):,} left out ({reasons}{more})"
    return line


def info(model_dir: Path) -> ModelInfo:
    model = io.load(model_dir)
    members = model.shares() if isinstance(model, Pool) else []
    record = training_record(model_dir)
    panel = record.get("meta", {}).get("panel")
    if panel is not None and not isinstance(panel, dict):
        path = Path(model_dir) / run_directory.TRAINING_FILE
        raise SeqlabError(f"{path}: unexpected content (meta.panel is a {type(panel).__name__}, not an object)")
    return ModelInfo(model.describe(), checkpoints.data_spec(model_dir, model), record, members, panel)


def training_record(model_dir: Path) -> dict:
    """``training.json`` with the parts ``info`` shows checked: objects where objects belong, numbers for the
    best model's step and seconds; anything else is one line naming the file and the field."""
    record, path = checkpoints.training_record(model_dir), Path(model_dir) / run_directory.TRAINING_FILE
    for key in RECORD_OBJECTS:
        if key in record and not isinstance(record[key], dict):
            raise SeqlabError(f"{path}: unexpected content ({key} is a {type(record[key]).__name__}, not an object)")
    for key in PROGRESS_NUMBERS:
        value = record.get("progress", {}).get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Real)):
            raise SeqlabError(f"{path}: unexpected content (progress.{key} is {value!r}, not a number)")
    return record
