"""The run directory: every file a training run writes and reads, and the rules that keep the user's files safe.

    OUT/.seqlab-run, OUT/.seqlab-lock           marker (JSON, format version) and lock (the owner's PID)
    OUT/config.json, OUT/model.safetensors      the best model so far (seqlab.io), with its DataSpec
    OUT/training.json                           progress, trainer config, data record, the best weights' SHA-256;
                                                ``final`` scores
    OUT/last/                                   the latest checkpoint, for ``--resume``: config.json,
                                                model.safetensors, optimizer.pt (read with weights_only=True),
                                                trainer.json, carried.safetensors, .seqlab-complete

- Checked at every depth: before anything is replaced or removed (``--overwrite``, ``--resume``), the folder is
  compared against ``RUN_LAYOUT``, the full list of what seqlab writes (with the temporary names of a write in
  progress, ``.NAME.tmp-PID`` / ``.NAME.old-PID``); anything else is the user's, and the run is refused naming it.
- Marked: ``.seqlab-run`` is written when seqlab creates or adopts the folder.
- Locked: one process at a time (``fcntl.flock`` on ``.seqlab-lock``); a second one gets a one-line error naming
  the first one's PID. The lock dies with its process. Holding it, seqlab removes its own temporary files that a
  killed writer left at the top of the folder.
- Overwritten safely: ``overwrite=True`` replaces only a marked folder holding nothing but seqlab's files, never
  ``.``, the working directory or one of its parents, never through a symlink. The new run is built beside the
  old one (``.NAME.tmp-PID``) and swapped in by ``commit()`` at its first checkpoint: a run that fails or is
  killed before that leaves the old run as it was.
- Checkpoints: ``RunCheckpoints`` is the ``Trainer``'s checkpointer for a run directory (``save_best``,
  ``save_last``, ``load_last``); its first ``save_last`` commits an overwriting run.

Use::

    run = claim(out, overwrite=..., resume=...)          # checked, marked, locked
    trainer = Trainer(model, config, RunCheckpoints(run, data_record))
    try:
        trainer.fit(...)
    finally:
        run.close()    # unlocks; removes an uncommitted build-beside folder, the old run untouched
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import asdict, replace
from pathlib import Path

import torch

from seqlab import atomic, io
from seqlab.data.bundled_data import BUNDLED, BUNDLED_PREFIX, resolve
from seqlab.data.dataset import kind_of_name
from seqlab.data.spec import DataSpec
from seqlab.errors import OptionError, SeqlabError
from seqlab.training import Progress, Trainer, TrainerConfig

MARKER_FILE = ".seqlab-run"
MARKER_FORMAT = "seqlab-run"
MARKER_VERSION = 1
LOCK_FILE = ".seqlab-lock"
TRAINING_FILE = "training.json"
LAST_DIR = "last"
TRAINER_FILE = "trainer.json"
OPTIMIZER_FILE = "optimizer.pt"
CARRIED_FILE = "carried.safetensors"
TRAINER_KEYS = ("progress", "trainer_config", "meta")  # what trainer.json holds, nothing else
# What seqlab writes in a run directory, at every depth: a name maps to None (a file) or to what the folder holds.
CHECKPOINT_LAYOUT: dict = dict.fromkeys(
    (io.CONFIG_FILE, io.WEIGHTS_FILE, OPTIMIZER_FILE, CARRIED_FILE, TRAINER_FILE, atomic.COMPLETE_FILE)
)
RUN_LAYOUT: dict = dict.fromkeys((MARKER_FILE, LOCK_FILE, atomic.COMPLETE_FILE, io.CONFIG_FILE, io.WEIGHTS_FILE))
RUN_LAYOUT |= {TRAINING_FILE: None, LAST_DIR: CHECKPOINT_LAYOUT}
LEFTOVER_KINDS = ("tmp", "old")  # .NAME.tmp-PID, .NAME.old-PID: atomic.py's names for a write in progress


def leftover_of(name: str) -> str | None:
    """NAME for a temporary name ``.NAME.tmp-PID`` or ``.NAME.old-PID`` (atomic.py's), else None."""
    stem, _, pid = name.rpartition("-")
    base, _, kind = stem.rpartition(".")
    if name.startswith(".") and pid.isdigit() and kind in LEFTOVER_KINDS and len(base) > 1:
        return base[1:]
    return None


def foreign_entries(directory: Path, layout: dict = RUN_LAYOUT, prefix: str = "") -> list[str]:
    """The paths under ``directory`` (relative, at every depth, sorted) that seqlab did not write: a name not in
    ``layout``, a folder where seqlab writes a file or the reverse, or a symlink. A foreign folder is named, not
    entered."""
    found = []
    for entry in sorted(os.scandir(directory), key=lambda e: e.name):
        name = entry.name if entry.name in layout else leftover_of(entry.name)
        expected = layout.get(name, False) if name is not None else False
        is_dir = entry.is_dir(follow_symlinks=False)
        if expected is False or entry.is_symlink() or is_dir != (expected is not None):
            found.append(prefix + entry.name)
        elif is_dir:
            found.extend(foreign_entries(Path(entry.path), expected, f"{prefix}{entry.name}/"))
    return found


def _refuse_unsafe_target(path: Path) -> None:
    """Never ``.``, the working directory or a parent of it, a symlink, or an existing non-directory."""
    if str(path) in (".", "") or path.name in ("", ".", ".."):
        raise SeqlabError(f"--out {path}: name a folder of its own for the run, not {str(path)!r}")
    if path.is_symlink():
        raise SeqlabError(f"--out {path}: is a symlink; seqlab never writes through one (name the real folder)")
    if os.path.lexists(path) and not path.is_dir():
        raise SeqlabError(f"--out {path}: exists and is a file, expected a run folder")
    resolved, cwd = path.resolve(), Path.cwd().resolve()
    if resolved == cwd or resolved in cwd.parents:
        raise SeqlabError(f"--out {path}: is the working directory or one of its parents; name a folder inside it")


def _remove_stale_temporaries(directory: Path) -> None:
    """Remove the temporary files (``.config.json.tmp-PID``...) that a killed writer left at the top of a run
    folder. Only seqlab's own names of files, and only while this process holds the folder's lock: no other
    seqlab process writes there, so whoever wrote them is gone (the folders ``.last.tmp-PID`` / ``.last.old-PID``
    are ``atomic.recover``'s)."""
    for entry in os.scandir(directory):
        name = leftover_of(entry.name)
        if name is not None and RUN_LAYOUT.get(name, False) is None and entry.is_file(follow_symlinks=False):
            os.unlink(entry.path)


def _write_marker(directory: Path) -> None:
    atomic.write_json(
        directory / MARKER_FILE,
        {"format": MARKER_FORMAT, "format_version": MARKER_VERSION, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")},
    )


def is_marked(directory: Path) -> bool:
    """True if ``directory`` carries a seqlab run marker of a version this code reads."""
    try:
        marker = json.loads((directory / MARKER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(marker, dict) and marker.get("format") == MARKER_FORMAT and marker.get("format_version") == 1


class RunDirectory:
    """A checked, marked and locked run folder. ``path`` is its final name; ``work`` is where the run writes
    now: ``path`` itself, or a folder beside it until ``commit()`` swaps it in for the run it overwrites."""

    def __init__(self, path: Path, work: Path) -> None:
        self.path, self.work = path, work
        self.created = False  # made by this run: removed again at close() if nothing was written into it
        self._locks: list[int] = []  # open lock files, held until close()

    @classmethod
    def create(cls, path: str | Path, overwrite: bool = False, resume: bool = False) -> RunDirectory:
        """Check ``path``, make or adopt it, lock it. ``resume``: continue the run in it; ``overwrite``: replace
        the run in it at ``commit()``. Without either, an existing folder must be empty."""
        path = Path(path)
        if overwrite and resume:
            raise SeqlabError("--overwrite and --resume exclude each other: replace the run or continue it")
        _refuse_unsafe_target(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise SeqlabError(f"--out {path}: cannot create the folder {path.parent} ({e.strerror})") from None
        atomic.recover(path)  # an overwrite killed mid-commit: the old or the new run back in place, leftovers gone
        if not path.exists():
            if resume:
                raise SeqlabError(f"--out {path}: no such run folder to resume")
            return cls._new(path)
        foreign = foreign_entries(path)
        if foreign:
            shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
            raise SeqlabError(f"--out {path}: holds files seqlab did not write ({shown}); refusing to use it")
        empty = not os.listdir(path)
        if not (empty or resume):  # refused before anything is written into the folder
            if not overwrite:
                raise SeqlabError(f"--out {path}: already holds a run; use --resume to continue it or --overwrite")
            if not is_marked(path):
                raise SeqlabError(
                    f"--out {path}: has no {MARKER_FILE} marker, so seqlab cannot tell it made it; "
                    "--overwrite replaces only marked runs (remove the folder yourself or choose another --out)"
                )
        run = cls(path, path)
        run._lock(path)
        _remove_stale_temporaries(path)
        if empty or resume:
            _write_marker(path)  # adopts an empty folder, or a run written before markers existed
            return run
        # build beside it, under the name atomic.recover() knows: the old run stays complete until commit()
        run.work = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        shutil.rmtree(run.work, ignore_errors=True)
        run.work.mkdir()
        _write_marker(run.work)
        run._lock(run.work)
        return run

    @classmethod
    def _new(cls, path: Path) -> RunDirectory:
        try:
            path.mkdir()
        except FileExistsError:  # another process made it between our check and now
            raise SeqlabError(f"--out {path}: was just created by another process") from None
        except OSError as e:
            raise SeqlabError(f"--out {path}: cannot create it ({e.strerror})") from None
        run = cls(path, path)
        run.created = True
        run._lock(path)
        _write_marker(path)
        return run

    def _lock(self, directory: Path) -> None:
        lock_path = directory / LOCK_FILE
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        except OSError as e:
            raise SeqlabError(f"--out {self.path}: cannot write {LOCK_FILE} ({e.strerror})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EACCES):
                raise SeqlabError(f"--out {self.path}: in use by another seqlab process (PID {holder})") from None
            raise SeqlabError(f"--out {self.path}: cannot lock it ({e.strerror})") from None
        if os.fstat(fd).st_ino != os.stat(lock_path).st_ino:  # the folder was swapped while we waited
            os.close(fd)
            raise SeqlabError(f"--out {self.path}: was replaced by another seqlab process; try again")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._locks.append(fd)

    @property
    def committed(self) -> bool:
        return self.work == self.path

    def commit(self) -> Path:
        """Swap the folder built beside the old run in for it (a no-op when there is none); returns ``path``.
        The swap is ``atomic.write_dir_atomically``'s: a kill at any moment leaves the old or the new run."""
        if self.committed:
            return self.path
        atomic.mark_complete(self.work)  # from here on a kill leaves the new run, restored by atomic.recover()
        atomic.swap_in(self.work, self.path)
        self.work = self.path
        return self.path

    def close(self) -> None:
        """Unlock; an uncommitted folder built beside the old run is removed (the old run is untouched), and a
        folder this run created is removed again if the run wrote nothing into it."""
        if not self.committed:
            shutil.rmtree(self.work, ignore_errors=True)
            self.work = self.path
        if self.created and self._locks and set(os.listdir(self.path)) <= {MARKER_FILE, LOCK_FILE}:
            for name in (MARKER_FILE, LOCK_FILE):  # a run that failed before writing anything: no empty run left
                (self.path / name).unlink(missing_ok=True)
            self.path.rmdir()
        for fd in self._locks:
            os.close(fd)
        self._locks.clear()

    def __enter__(self) -> RunDirectory:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


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


def default_run_dir(spec: DataSpec, name: str) -> Path:
    """``runs/NAME`` for text (the README's main job: runs/lstm), ``runs/DATA-NAME`` for a series or audio."""
    return Path("runs") / (name if spec.kind == "text" else f"{Path(spec.source).stem}-{name}")


# -- the Trainer's checkpoints -------------------------------------------------------------------------------
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
        io.save(trainer.model, self.run.work)
        saved = {"progress": progress.to_json(), "trainer_config": asdict(trainer.config), "meta": self.record}
        saved["weights_sha256"] = file_sha256(self.run.work / io.WEIGHTS_FILE)  # training_record checks it
        atomic.write_json(self.run.work / TRAINING_FILE, saved)

    def save_last(self, trainer: Trainer, progress: Progress, carried: dict[str, torch.Tensor]) -> None:
        if trainer.rank != 0:
            return

        def write(tmp: Path) -> None:
            io.save(trainer.model, tmp)
            atomic.write_torch(tmp / OPTIMIZER_FILE, trainer.optimizer.state_dict())
            atomic.write_safetensors(tmp / CARRIED_FILE, carried)
            atomic.write_json(
                tmp / TRAINER_FILE,
                {"progress": progress.to_json(), "trainer_config": asdict(trainer.config), "meta": self.record},
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


def resume_record(out: Path) -> tuple[dict, dict]:
    """(the data record, the trainer config's fields) of the checkpoint a resumed run continues."""
    saved = read_trainer_file(last_checkpoint(out))
    return saved["meta"], saved["trainer_config"]


# -- training.json and the data a run records -----------------------------------------------------------------
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


def recorded_data(meta, model, path: Path) -> DataSpec:
    """The data record ``meta`` of ``path`` (training.json, last/trainer.json) for ``model``, every field checked
    as config.json's is (``io.data_record``)."""
    return io.data_record(meta, model.to_config(), path, "meta")


def recorded_kind(spec: DataSpec | None) -> str | None:
    """The kind of data a checkpoint records, also when its file is gone (then from the name's suffix)."""
    if spec is None:
        return None
    try:
        return spec.kind
    except SeqlabError:
        return kind_of_name(spec.source)


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


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(FINGERPRINT_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def data_fingerprint(spec: DataSpec) -> dict:
    """``{"data_bytes", "data_sha256"}`` of the file ``spec`` reads: recorded by a run, checked by its resume."""
    path, _ = resolve(spec.source)
    return {"data_bytes": os.path.getsize(path), "data_sha256": file_sha256(path)}


def check_fingerprint(meta: dict, spec: DataSpec, out: Path) -> None:
    """Refuse to resume on data that changed since the run started: its size first (no read), then its hash.
    A run recorded before fingerprints existed is not checked."""
    if "data_sha256" not in meta:
        return
    path, _ = resolve(spec.source)
    if os.path.getsize(path) != meta.get("data_bytes") or file_sha256(path) != meta["data_sha256"]:
        raise SeqlabError(
            f"{out}: its data {spec.source} changed since the run started (size or SHA-256 differs from the "
            "record); resume only on the data it was trained on, or start a new run"
        )
