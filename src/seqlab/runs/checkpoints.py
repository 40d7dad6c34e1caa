"""What the Trainer keeps in a run folder and what a finished run records: ``RunCheckpoints`` (the best model with
``training.json``, the resumable state in ``last/``), reading them back for ``--resume`` (``last_checkpoint``,
``resume_record``), ``training.json`` itself (``training_record``, ``write_final_scores``) and the data a saved
run says it was trained on (``data_spec``). The folder and its file names are ``runs/run_directory.py``'s."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import torch

from seqlab import atomic, io
from seqlab.atomic import file_sha256
from seqlab.data.spec import DataSpec
from seqlab.errors import SeqlabError
from seqlab.runs.run_data import recorded_data
from seqlab.runs.run_directory import (
    CARRIED_FILE,
    LAST_DIR,
    OPTIMIZER_FILE,
    TRAINER_FILE,
    TRAINER_KEYS,
    TRAINING_FILE,
    RunDirectory,
)
from seqlab.training import Progress, Trainer, TrainerConfig


class RunCheckpoints:
    """The ``Trainer``'s checkpointer (``seqlab.training.Checkpoints``) for a run directory: the best model at the
    top with ``training.json``, the resumable state in ``last/`` (swapped in whole, ``atomic``). It writes into
    ``run.work`` and commits an overwriting run at its first ``last/``; only the main process writes.
    ``record``: the data record (``meta``) saved beside the trainer's settings."""

    def __init__(self, run: RunDirectory, record: dict) -> None:
        self.run, self.record = run, record

    def save_best(self, trainer: Trainer, progress: Progress) -> None:
        if trainer.rank != 0:
            return
        write_best(self.run.work, trainer.model, progress, trainer.config, self.record)

    def save_last(self, trainer: Trainer, progress: Progress, carried: dict[str, torch.Tensor]) -> None:
        if trainer.rank != 0:
            return

        def write(tmp: Path) -> None:
            io.save(trainer.model, tmp)
            atomic.write_torch(tmp / OPTIMIZER_FILE, trainer.optimizer.state_dict())
            atomic.write_safetensors(tmp / CARRIED_FILE, carried)
            atomic.write_json(
                tmp / TRAINER_FILE,
                {"progress": progress.to_json(), "trainer_config": saved_config(trainer.config), "meta": self.record},
            )

        self.run.work.mkdir(parents=True, exist_ok=True)
        atomic.write_dir_atomically(self.run.work / LAST_DIR, write)
        self.run.commit()  # an overwritten run is replaced now, at the first checkpoint (a no-op after it)

    def load_last(self, trainer: Trainer) -> tuple[Progress, dict[str, torch.Tensor]]:
        last = last_checkpoint(self.run.work)
        saved = io.load(last, expect=trainer.model.kind)
        if saved.to_config() != trainer.model.to_config():
            raise SeqlabError(f"{last}: the checkpoint's model config differs from the one requested")
        trainer.model.load_state_dict(saved.state_dict())
        info = read_trainer_file(last)
        progress = Progress.from_json(info["progress"], last / TRAINER_FILE)
        optimizer_state = atomic.read_torch(last / OPTIMIZER_FILE)
        try:
            trainer.optimizer.load_state_dict(optimizer_state)
        except (KeyError, TypeError, ValueError, RuntimeError) as e:
            why = f"not this run's optimizer state ({type(e).__name__}: {e})"
            raise SeqlabError(f"{last / OPTIMIZER_FILE}: corrupted checkpoint: {why}") from None
        return progress, atomic.read_safetensors(last / CARRIED_FILE)  # one line naming it if damaged

    def kept(self) -> str | None:
        last = self.run.work / LAST_DIR
        return str(last) if last.is_dir() else None

    def end(self, trainer: Trainer) -> None:
        pass  # the best model is on disk; the caller loads it (io.load)


def write_best(directory: Path, model, progress: Progress, config: TrainerConfig, record: dict) -> None:
    """The best model in ``directory`` (``seqlab.io``) with ``training.json``: its ``progress``, the trainer's
    settings, the data record ``record`` (``meta``) and the SHA-256 of the weights it describes."""
    io.save(model, directory)
    saved = {"progress": progress.to_json(), "trainer_config": saved_config(config), "meta": record}
    saved["weights_sha256"] = file_sha256(directory / io.WEIGHTS_FILE)  # training_record checks it
    atomic.write_json(directory / TRAINING_FILE, saved)


def last_checkpoint(out: Path) -> Path:
    last = out / LAST_DIR
    atomic.recover(last)  # a checkpoint swap a kill interrupted: its complete copy back in place first
    if not last.is_dir():
        raise SeqlabError(f"{out}: nothing to resume (no {LAST_DIR}/ checkpoint)")
    return last


def read_trainer_file(last: Path) -> dict:
    """``last/trainer.json``, its keys and the trainer's settings checked: a damaged or edited file is one line."""
    path = last / TRAINER_FILE
    saved = atomic.read_json(path)  # an object, or one line naming the file
    if unknown := sorted(set(saved) - set(TRAINER_KEYS)):
        raise SeqlabError(f"{path}: damaged or unexpected content (unknown key {unknown[0]!r})")
    if missing := [k for k in TRAINER_KEYS if k not in saved]:
        raise SeqlabError(f"{path}: corrupted checkpoint (no {missing[0]!r})")
    if not isinstance(saved["meta"], dict):
        raise SeqlabError(f"{path}: damaged or unexpected content (meta is not an object)")
    TrainerConfig.from_json(saved["trainer_config"], path)
    return saved


def saved_config(config) -> dict:
    """The trainer's settings as a checkpoint keeps them: not ``progress``, the display of the session that ran."""
    return asdict(config)


def resume_record(out: Path) -> tuple[dict, dict]:
    """(the data record, the trainer config's fields) of the checkpoint a resumed run continues; a checkpoint
    written before ``saved_config`` holds ``progress`` too, which the resumed session's own choice replaces."""
    saved = read_trainer_file(last_checkpoint(out))
    fields = TrainerConfig.upgraded(saved["trainer_config"])
    return saved["meta"], fields


# -- training.json ---------------------------------------------------------------------------------------------
def training_record(directory: str | Path) -> dict:
    """``training.json`` of a run directory, or {} for a model saved without training. A record that describes
    other weights than ``model.safetensors`` (a kill between the two writes of a new best model) is refused."""
    path = Path(directory) / TRAINING_FILE
    if not path.exists():
        return {}
    record = atomic.read_json(path)  # an object, or one line naming the file
    expected = record.get("weights_sha256")
    weights = Path(directory) / io.WEIGHTS_FILE
    if expected is not None and weights.is_file() and file_sha256(weights) != expected:
        raise SeqlabError(
            f"{path}: describes the weights of an earlier validation, not {weights} (a kill came between their "
            "writes); seqlab train --resume rewrites both at its next validation"
        )
    return record


def write_final_scores(out: Path, scores: dict) -> None:
    """Record the best model's held-out scores as ``final`` in ``training.json``."""
    atomic.write_json(out / TRAINING_FILE, {**training_record(out), "final": scores})


def data_spec(directory: str | Path, model) -> DataSpec | None:
    """What the model in ``directory`` was trained on: its saved DataSpec, or the data record of a run trained
    before models carried one; None without either."""
    if model.data_spec is not None:
        return model.data_spec
    meta = training_record(directory).get("meta")
    return recorded_data(meta, model, Path(directory) / TRAINING_FILE) if meta else None
