"""``info``: what a saved model is, what it was trained on, and how its training went."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from seqlab import io
from seqlab.data.spec import DataSpec
from seqlab.runs import run_directory


@dataclass
class ModelInfo:
    description: str
    data: DataSpec | None
    training: dict  # training.json ({} for a model saved without a run)


def info(model_dir: Path) -> ModelInfo:
    model = io.load(model_dir)
    return ModelInfo(
        model.describe(), run_directory.data_spec(model_dir, model), run_directory.training_record(model_dir)
    )
