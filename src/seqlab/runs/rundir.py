"""The run directory's files, all in one place: what a training run writes and reads.

    OUT/config.json, OUT/model.safetensors      the best model so far (seqlab.io), with its DataSpec
    OUT/training.json                           progress, trainer config, data record; ``final`` scores
    OUT/last/                                   the latest checkpoint (model, optimizer, carried state)

Naming (``default_run_dir``), creating (``claim``), overwriting (``clear``), resuming (``resume_record``) and
the final scores (``write_final_scores``) are functions here so the locking and swapping of a run directory
can be wired in behind them without touching the commands.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from seqlab import atomic, io
from seqlab.data.spec import DataSpec
from seqlab.errors import OptionError, SeqlabError
from seqlab.training import LAST_DIR

TRAINING_FILE = "training.json"
TRAINER_FILE = "trainer.json"


def default_run_dir(spec: DataSpec, name: str) -> Path:
    """``runs/NAME`` for text (the README's main job: runs/lstm), ``runs/DATA-NAME`` for a series or audio."""
    return Path("runs") / (name if spec.kind == "text" else f"{Path(spec.source).stem}-{name}")


def holds_model(out: Path) -> bool:
    return (out / io.CONFIG_FILE).exists() or (out / LAST_DIR).exists()


def claim(out: Path, overwrite: bool) -> bool:
    """Check that a new run may be written to ``out``; True when an old run there is to be replaced."""
    if holds_model(out) and not overwrite:
        raise OptionError(f"{out}: already holds a model; use {{0}} to continue it or {{1}}", "resume", "overwrite")
    return holds_model(out)


def clear(out: Path) -> None:
    """Remove the old run in ``out`` (after the new run's settings were checked)."""
    shutil.rmtree(out)


def last_checkpoint(out: Path) -> Path:
    last = out / LAST_DIR
    if not last.is_dir():
        raise SeqlabError(f"{out}: nothing to resume (no {LAST_DIR}/ checkpoint)")
    return last


def resume_record(out: Path) -> tuple[dict, dict]:
    """(the data record, the trainer config's fields) of the checkpoint a resumed run continues."""
    path = last_checkpoint(out) / TRAINER_FILE
    saved = atomic.read_json(path)
    try:
        return saved["meta"], saved["trainer_config"]
    except (KeyError, TypeError):
        raise SeqlabError(f"{path}: corrupted checkpoint") from None


def training_record(directory: str | Path) -> dict:
    """``training.json`` of a run directory, or {} for a model saved without training."""
    path = Path(directory) / TRAINING_FILE
    return atomic.read_json(path) if path.exists() else {}


def write_final_scores(out: Path, scores: dict) -> None:
    """Record the best model's held-out scores as ``final`` in ``training.json``."""
    atomic.write_json(out / TRAINING_FILE, {**training_record(out), "final": scores})


def data_spec(directory: str | Path, model) -> DataSpec | None:
    """What the model in ``directory`` was trained on: its saved DataSpec, or the data record of a run trained
    before models carried one; None without either."""
    if model.data_spec is not None:
        return model.data_spec
    meta = training_record(directory).get("meta")
    return DataSpec.from_json(meta) if meta else None
