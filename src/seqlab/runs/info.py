"""``info``: what a saved model is, what it was trained on, and how its training went."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from seqlab import io
from seqlab.data.spec import DataSpec
from seqlab.models.pool import Pool
from seqlab.runs import run_directory


@dataclass
class ModelInfo:
    description: str
    data: DataSpec | None
    training: dict  # training.json ({} for a model saved without a run)
    members: list[tuple[str, float, str]] = field(default_factory=list)  # a pool's: (name, weight, description)


def info(model_dir: Path) -> ModelInfo:
    model = io.load(model_dir)
    members = model.shares() if isinstance(model, Pool) else []
    data, training = run_directory.data_spec(model_dir, model), run_directory.training_record(model_dir)
    return ModelInfo(model.describe(), data, training, members)
