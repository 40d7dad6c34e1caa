"""``TrainSpec``: what ``seqlab train`` was asked for, the one input of ``runs.train.train`` and of each family's
steps (``runs/family.py``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from seqlab.data.spec import DataSpec


@dataclass
class TrainSpec:
    data: DataSpec | None = None  # None: the default data (a new run) or the saved data (resume)
    # the model options given, by name (``cell``, ``hidden_size``, ``order``, ``vol`` ...: each family's
    # ``options``); the family's ``check`` turns them into its typed settings
    model: dict = field(default_factory=dict)
    trainer: dict = field(default_factory=dict)  # TrainerConfig fields given
    out: Path | None = None  # None: run_directory.default_run_dir
    resume: bool = False
    overwrite: bool = False
    family: str | None = None  # a name in FAMILIES; None: latent_ar for a new run, the checkpoint's on resume
    progress: bool = True  # show progress bars (the Trainer never prints: a bar is a callback)
