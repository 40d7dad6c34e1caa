"""The run directory's files, all in one place: what a training run writes and reads.

    OUT/config.json, OUT/model.safetensors      the best model so far (seqlab.io), with its DataSpec
    OUT/training.json                           progress, trainer config, data record; ``final`` scores
    OUT/last/                                   the latest checkpoint (model, optimizer, carried state)

Naming (``default_run_dir``), claiming (``claim``: checked, marked and locked by ``RunDirectory``), the swap of
an overwritten run at the new run's first checkpoint (``commit_at_first_checkpoint``), resuming
(``resume_record``) and the final scores (``write_final_scores``). Nothing here deletes a user's folder: an old
run is replaced only by ``RunDirectory.commit()``, which refuses folders holding anything seqlab did not write.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from seqlab import atomic
from seqlab.data.bundled_data import BUNDLED, BUNDLED_PREFIX, resolve
from seqlab.data.dataset import AUDIO_SUFFIXES
from seqlab.data.spec import DataSpec
from seqlab.errors import OptionError, SeqlabError
from seqlab.runs.directory import RunDirectory
from seqlab.training import LAST_DIR, Trainer

TRAINING_FILE = "training.json"
TRAINER_FILE = "trainer.json"


def default_run_dir(spec: DataSpec, name: str) -> Path:
    """``runs/NAME`` for text (the README's main job: runs/lstm), ``runs/DATA-NAME`` for a series or audio."""
    return Path("runs") / (name if spec.kind == "text" else f"{Path(spec.source).stem}-{name}")


def claim(out: Path, overwrite: bool = False, resume: bool = False, main: bool = True) -> RunDirectory:
    """Check, mark and lock ``out`` for a new run (``overwrite``: replacing the run in it at the first checkpoint)
    or a resumed one; leftovers of an interrupted swap are recovered first. Close it when the run ends.
    Under torchrun only the main process (``main``) claims the folder: the others never write into it."""
    if not main:
        return RunDirectory(Path(out), Path(out))
    return RunDirectory.create(out, overwrite=overwrite, resume=resume)


@contextlib.contextmanager
def released_on_error(run: RunDirectory) -> Iterator[None]:
    """Close ``run`` if the block fails (bad settings found after the folder was claimed)."""
    try:
        yield
    except BaseException:
        run.close()
        raise


def commit_at_first_checkpoint(trainer: Trainer, run: RunDirectory) -> None:
    """Write into ``run.work``; the first complete checkpoint swaps it in for the run it replaces."""
    trainer.out = run.work

    def commit(t: Trainer) -> None:
        t.out = run.commit()

    trainer.after_checkpoint = commit


def last_checkpoint(out: Path) -> Path:
    last = out / LAST_DIR
    atomic.recover(last)  # a checkpoint swap a kill interrupted: its complete copy back in place first
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


def recorded_kind(spec: DataSpec | None) -> str | None:
    """The kind of data a checkpoint records, also when its file is gone (then from the name's suffix)."""
    if spec is None:
        return None
    try:
        return spec.kind
    except SeqlabError:
        suffix = Path(spec.source).suffix.lower()
        return "series" if suffix == ".csv" else "audio" if suffix in AUDIO_SUFFIXES else "text"


def readable_data(spec: DataSpec, directory: str | Path) -> DataSpec:
    """The trust rule for the data a checkpoint records: bundled data is read (as ``bundled:NAME``, never a local
    file of that name); a local path is never read unless the user names it (``source`` given), since a
    checkpoint from elsewhere could name any file on this machine."""
    name = spec.source.removeprefix(BUNDLED_PREFIX)
    if spec.source.startswith(BUNDLED_PREFIX) or (name in BUNDLED and "/" not in name):
        return replace(spec, source=BUNDLED_PREFIX + name)
    raise OptionError(
        f"{directory}: was trained on the local file {spec.source}; seqlab reads a file a checkpoint names only "
        "when you name it too: give {0} with the data to use",
        "source",
    )


FINGERPRINT_CHUNK = 2**20


def data_fingerprint(spec: DataSpec) -> dict:
    """``{"data_bytes", "data_sha256"}`` of the file ``spec`` reads: recorded by a run, checked by its resume."""
    path, _ = resolve(spec.source)
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(FINGERPRINT_CHUNK):
            digest.update(chunk)
    return {"data_bytes": os.path.getsize(path), "data_sha256": digest.hexdigest()}


def check_fingerprint(meta: dict, spec: DataSpec, out: Path) -> None:
    """Refuse to resume on data that changed since the run started: its size first (no read), then its hash.
    A run recorded before fingerprints existed is not checked."""
    if "data_sha256" not in meta:
        return
    path, _ = resolve(spec.source)
    if os.path.getsize(path) != meta.get("data_bytes") or data_fingerprint(spec)["data_sha256"] != meta["data_sha256"]:
        raise SeqlabError(
            f"{out}: its data {spec.source} changed since the run started (size or SHA-256 differs from the "
            "record); resume only on the data it was trained on, or start a new run"
        )
