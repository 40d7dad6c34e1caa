"""The run folder: its layout, marker, lock and safe overwrite, the rules that keep the user's files safe. What the
Trainer keeps in it is ``runs/checkpoints.py``; which data file a saved run may read, ``runs/run_data.py``.

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
- Messages name the settings as the library does (``out``, ``overwrite``, ``resume``: ``OptionError``); the CLI
  spells them as its options.

Use::

    run = claim(out, overwrite=..., resume=...)          # checked, marked, locked
    trainer = Trainer(model, config, checkpoints.RunCheckpoints(run, data_record))
    try:
        trainer.fit(...)
    finally:
        run.close()    # unlocks; removes an uncommitted build-beside folder, the old run untouched
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

from seqlab import atomic, io
from seqlab.data.spec import DataSpec
from seqlab.errors import OptionError

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
        raise OptionError(f"{{0}} {path}: name a folder of its own for the run, not {str(path)!r}", "out")
    if path.is_symlink():
        raise OptionError(f"{{0}} {path}: is a symlink; seqlab never writes through one (name the real folder)", "out")
    if os.path.lexists(path) and not path.is_dir():
        raise OptionError(f"{{0}} {path}: exists and is a file, expected a run folder", "out")
    resolved, cwd = path.resolve(), Path.cwd().resolve()
    if resolved == cwd or resolved in cwd.parents:
        raise OptionError(
            f"{{0}} {path}: is the working directory or one of its parents; name a folder inside it", "out"
        )


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
            raise OptionError("{0} and {1} exclude each other: replace the run or continue it", "overwrite", "resume")
        _refuse_unsafe_target(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OptionError(f"{{0}} {path}: cannot create the folder {path.parent} ({e.strerror})", "out") from None
        atomic.recover(path)  # an overwrite killed mid-commit: the old or the new run back in place, leftovers gone
        if not path.exists():
            if resume:
                raise OptionError(f"{{0}} {path}: no such run folder to resume", "out")
            return cls._new(path)
        foreign = foreign_entries(path)
        if foreign:
            shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
            raise OptionError(f"{{0}} {path}: holds files seqlab did not write ({shown}); refusing to use it", "out")
        empty = not os.listdir(path)
        if not (empty or resume):  # refused before anything is written into the folder
            if not overwrite:
                raise OptionError(
                    f"{{0}} {path}: already holds a run; use {{1}} to continue it or {{2}}",
                    "out",
                    "resume",
                    "overwrite",
                )
            if not is_marked(path):
                raise OptionError(
                    f"{{0}} {path}: has no {MARKER_FILE} marker, so seqlab cannot tell it made it; "
                    "{1} replaces only marked runs (remove the folder yourself or choose another {0})",
                    "out",
                    "overwrite",
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
            raise OptionError(f"{{0}} {path}: was just created by another process", "out") from None
        except OSError as e:
            raise OptionError(f"{{0}} {path}: cannot create it ({e.strerror})", "out") from None
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
            raise OptionError(f"{{0}} {self.path}: cannot write {LOCK_FILE} ({e.strerror})", "out") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EACCES):
                raise OptionError(
                    f"{{0}} {self.path}: in use by another seqlab process (PID {holder})", "out"
                ) from None
            raise OptionError(f"{{0}} {self.path}: cannot lock it ({e.strerror})", "out") from None
        if os.fstat(fd).st_ino != os.stat(lock_path).st_ino:  # the folder was swapped while we waited
            os.close(fd)
            raise OptionError(f"{{0}} {self.path}: was replaced by another seqlab process; try again", "out")
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
