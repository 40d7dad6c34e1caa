"""A run directory that seqlab owns, and that cannot eat user data.

- Marked: ``.seqlab-run`` (JSON, with a format version) is written when seqlab creates or adopts the folder.
- Locked: one process at a time (``fcntl.flock`` on ``.seqlab-lock``, which holds the owner's PID); a second
  one gets a one-line ``SeqlabError`` naming that PID. The lock dies with its process: nothing stale to clean.
- Overwritten safely: ``overwrite=True`` replaces only a folder that holds nothing but seqlab's files, never
  ``.``, the working directory or one of its parents, never through a symlink, and only one that carries the
  marker. The new run is built beside the old one (``.NAME.tmp-PID``) and swapped in by ``commit()``, called
  after its first checkpoint: a run that fails or is killed before that leaves the old run as it was.

Use::

    run = RunDirectory.create(out, overwrite=args.overwrite, resume=args.resume)   # checked, marked, locked
    trainer = Trainer(model, config, out=run.work)
    trainer.after_checkpoint = lambda t: setattr(t, "out", run.commit())          # swap in at the first one
    try:
        trainer.fit(...)
    finally:
        run.close()    # unlocks; removes an uncommitted build-beside folder, the old run untouched
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import time
from pathlib import Path

from seqlab import atomic
from seqlab.errors import SeqlabError

MARKER_FILE = ".seqlab-run"
MARKER_FORMAT = "seqlab-run"
MARKER_VERSION = 1
LOCK_FILE = ".seqlab-lock"
# What seqlab writes at the top of a run directory; anything else is the user's and is never deleted.
SEQLAB_FILES = frozenset(
    {MARKER_FILE, LOCK_FILE, atomic.COMPLETE_FILE, "config.json", "model.safetensors", "training.json", "last"}
)
LEFTOVER_KINDS = ("tmp", "old")  # .NAME.tmp-PID, .NAME.old-PID: atomic.py's names for a write in progress


def foreign_entries(directory: Path, known: frozenset[str] = SEQLAB_FILES) -> list[str]:
    """The names in ``directory`` that seqlab did not write, sorted."""

    def ours(name: str) -> bool:
        if name in known:
            return True
        stem, _, pid = name.rpartition("-")
        base, _, kind = stem.rpartition(".")
        return name.startswith(".") and pid.isdigit() and kind in LEFTOVER_KINDS and base[1:] in known

    return sorted(name for name in os.listdir(directory) if not ours(name))


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
