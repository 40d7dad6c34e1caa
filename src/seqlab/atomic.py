"""Atomic files and directories: written under a temporary name, synced, then renamed into place, so a crash
never leaves a half-written file under the real name. JSON and safetensors only, plus optimizer state read back
with ``weights_only=True``: nothing is ever unpickled.

A directory (a checkpoint) is replaced in four steps, each one durable before the next::

    1. write  .NAME.tmp-PID/...           every file synced; COMPLETE_FILE written last, then the folder synced
    2. rename NAME -> .NAME.old-PID       (if NAME exists)   parent synced
    3. rename .NAME.tmp-PID -> NAME                          parent synced
    4. remove .NAME.old-PID

Every file is serialized in memory first and written by Python, so a full disk, a quota or a read-only folder
is an ``OSError`` naming the destination (a serializer writing itself reports a full disk as a zip position
mismatch, "unexpected pos"); the temporary file is removed and whatever was under the name stays.

SIGINT and SIGTERM wait until steps 2-3 are done. A SIGKILL or a power cut can still land anywhere: then
``recover(NAME)``, called by every writer and reader, finds the leftovers of the dead process and restores the
newest complete copy under NAME (the new one if it was complete, else the old one), so a reader always finds
either the old or the new checkpoint, whole.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import os
import re
import shutil
import signal
import stat
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from safetensors.torch import save as safetensors_bytes

from seqlab.errors import SeqlabError

COMPLETE_FILE = ".seqlab-complete"  # written last inside a checkpoint directory: everything before it is synced
DEFERRED_SIGNALS = (signal.SIGINT, signal.SIGTERM)
FAULT_ENV = "SEQLAB_TEST_KILL_AT"  # tests only: "STEP" or "STEP@N" sends SIGKILL to this process at that step

# Tests only: called with the name of each step of a directory swap ("write", "complete", "rename-old",
# "rename-new", "remove-old"); raising or killing there simulates a crash at that instruction.
fault_hook: Callable[[str], None] | None = None
_fault_counts: dict[str, int] = {}


def _fault_point(step: str) -> None:
    if fault_hook is not None:
        fault_hook(step)
    target = os.environ.get(FAULT_ENV)
    if target:
        name, _, nth = target.partition("@")
        if name == step:
            _fault_counts[step] = _fault_counts.get(step, 0) + 1
            if _fault_counts[step] == int(nth or 1):
                os.kill(os.getpid(), signal.SIGKILL)


def fsync_dir(path: Path) -> None:
    """Make a directory's entries (created, renamed, removed names) durable."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


STDOUT_NAME = "-"  # an output file named "-" is standard output


def _through_descriptor(path: Path) -> bool:
    """Whether ``path`` is, or links through, /dev/fd/N or /proc/PID/fd/N (as /dev/stdout does): a file some
    process holds open, to be written into; replacing what it resolves to would cut that process off from it."""
    name = os.path.abspath(path)
    for _ in range(40):  # the kernel's own limit on a chain of links
        if re.match(r"/(dev|proc/[^/]+)/fd/", name):
            return True
        if not os.path.islink(name):
            return False
        name = os.path.join(os.path.dirname(name), os.readlink(name))
    return False


def _stream_target(path: Path) -> str | None:
    """Where writing ``path`` must stream rather than replace a file: "-" (standard output), or ``path`` itself
    when it is (or leads to) a character device such as /dev/null, a FIFO, a socket or an open descriptor. None
    for a regular file or a missing one. A directory or a block device (a disk) is refused."""
    if str(path) == STDOUT_NAME:
        return STDOUT_NAME
    if _through_descriptor(path):
        return str(path)
    try:
        mode = os.stat(path).st_mode  # follows links, as the kernel does
    except FileNotFoundError:
        return None
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, "is a directory; name a file", str(path))
    if stat.S_ISBLK(mode):
        raise SeqlabError(f"{path}: is a block device (a disk); seqlab writes files, FIFOs and character devices")
    return None if stat.S_ISREG(mode) else str(path)


def _file_target(path: Path) -> Path:
    """The file a write to ``path`` replaces: a symlink's target (the link stays a link), else ``path``."""
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def _temporary_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def _create_new(name: Path) -> None:
    """Create ``name`` empty, never through a link or over another's file (O_EXCL), so that a folder where no file
    can be made fails here with an ``OSError``, whatever the writer would have raised."""
    name.unlink(missing_ok=True)  # a leftover of an earlier attempt under our own PID
    os.close(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))


def _stream_into(target: str, write: Callable[[Path], None]) -> None:
    """``write`` into a private temporary file, then its bytes into ``target`` ("-": standard output). Opened
    without O_CREAT, so a device or FIFO that vanished in between is never replaced by a regular file, and with
    O_APPEND, so output already sent to a redirected /dev/stdout is not overwritten."""
    fd, name = tempfile.mkstemp(prefix="seqlab-")
    os.close(fd)
    try:
        write(Path(name))
        data = Path(name).read_bytes()
    finally:
        os.unlink(name)
    if target == STDOUT_NAME:
        sys.stdout.flush()  # what was printed before comes first
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    with open(os.open(target, os.O_WRONLY | os.O_APPEND), "wb") as f:
        f.write(data)


def replace_into(path: Path, write: Callable[[Path], None]) -> None:
    """Write ``path`` through ``write(tmp)`` into ``.NAME.tmp-PID``, sync it, rename it over ``path``. An
    ``OSError`` names ``path`` (not the temporary file); a directory at ``path`` is refused before writing.

    Nothing the user named is ever swapped for a new file: a symlink is followed (its target replaced, the link
    kept); "-" (standard output), a character device (/dev/null), a FIFO or an open descriptor (/dev/stdout) is
    streamed into; a block device is refused."""
    path = Path(path)
    try:
        stream = _stream_target(path)
        if stream is not None:
            _stream_into(stream, write)
            return
        target = _file_target(path)
        tmp = _temporary_name(target)
        try:
            _create_new(tmp)
            write(tmp)
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
            os.replace(tmp, target)
        finally:
            with contextlib.suppress(OSError):  # the error that matters is the one being raised
                tmp.unlink(missing_ok=True)
    except OSError as e:
        raise OSError(e.errno, e.strerror or str(e), str(path)) from None


def write_bytes(path: Path, data: bytes) -> None:
    replace_into(Path(path), lambda p: p.write_bytes(data))


def write_json(path: Path, data: dict) -> None:
    replace_into(Path(path), lambda p: p.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8"))


def write_safetensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    write_bytes(path, safetensors_bytes({k: v.detach().contiguous().cpu() for k, v in tensors.items()}))


def write_torch(path: Path, obj) -> None:
    """For optimizer state only (tensors, numbers, dicts): read back with ``weights_only=True``."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    write_bytes(path, buffer.getvalue())


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """All tensors of a safetensors file, or one line naming it: missing, unreadable, or not a safetensors file
    (a zip or pickle under that name: "header too large")."""
    try:
        return load_file(str(path))
    except FileNotFoundError:
        raise SeqlabError(f"{path}: missing") from None
    except OSError as e:
        raise SeqlabError(f"{path}: cannot read it ({e.strerror or e})") from None
    except (SafetensorError, ValueError, RuntimeError) as e:
        raise SeqlabError(f"{path}: corrupted: not a whole safetensors file ({e})") from None


def read_torch(path: Path):
    try:
        return torch.load(path, weights_only=True, map_location="cpu")
    except FileNotFoundError:
        raise SeqlabError(f"{path}: missing") from None
    except OSError as e:
        raise SeqlabError(f"{path}: cannot read it ({e.strerror or e})") from None
    except Exception as e:  # truncated zip, foreign pickle: both refused here
        raise SeqlabError(f"{path}: corrupted or not a seqlab optimizer state ({type(e).__name__})") from None


@contextlib.contextmanager
def deferred_signals() -> Iterator[None]:
    """Hold SIGINT and SIGTERM until the block ends, then deliver them to the handlers that were installed."""
    if threading.current_thread() is not threading.main_thread():  # only the main thread receives signals
        yield
        return
    pending: list[int] = []
    previous = {s: signal.signal(s, lambda signum, frame: pending.append(signum)) for s in DEFERRED_SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        for s in dict.fromkeys(pending):
            signal.raise_signal(s)


def _leftovers(path: Path) -> list[tuple[Path, int, str]]:
    """(leftover, PID that wrote it, "tmp" or "old") for every ``.NAME.tmp-PID`` / ``.NAME.old-PID`` beside path."""
    found = []
    prefix = f".{path.name}."
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(path.parent):
            if not entry.name.startswith(prefix) or not entry.is_dir(follow_symlinks=False):
                continue
            kind, _, pid = entry.name[len(prefix) :].partition("-")
            if kind in ("tmp", "old") and pid.isdigit():
                found.append((Path(entry.path), int(pid), kind))
    return found


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # our own leftovers are from an earlier, failed attempt
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_complete(directory: Path) -> bool:
    return (directory / COMPLETE_FILE).is_file()


def recover(path: str | Path) -> bool:
    """Finish or undo a directory swap that a dead process left half done; True if ``path`` exists afterwards.

    If ``path`` is missing, the newest complete leftover (``.NAME.tmp-PID`` before ``.NAME.old-PID``) is renamed
    back to it; then the leftovers of dead processes are removed. Leftovers of a live process are its work in
    progress and stay untouched."""
    path = Path(path)
    dead = [(p, kind) for p, pid, kind in _leftovers(path) if not _alive(pid)]
    if not os.path.lexists(path):
        complete = [(kind == "tmp", (p / COMPLETE_FILE).stat().st_mtime, p) for p, kind in dead if is_complete(p)]
        if complete:
            best = max(complete)[2]
            try:
                with deferred_signals():
                    os.rename(best, path)
                    fsync_dir(path.parent)
            except OSError as e:
                why = f"{path}: missing; its complete copy {best.name} cannot be moved back"
                raise SeqlabError(f"{why} ({e.strerror})") from None
    for p, _ in dead:
        if p.exists():
            shutil.rmtree(p, ignore_errors=True)
    return os.path.lexists(path)


def mark_complete(directory: Path) -> None:
    """Write ``COMPLETE_FILE`` last into a fully written ``directory`` and make it durable."""
    with open(directory / COMPLETE_FILE, "w", encoding="utf-8") as f:
        f.write("complete\n")
        f.flush()
        os.fsync(f.fileno())
    fsync_dir(directory)


def swap_in(tmp: Path, path: Path) -> None:
    """Put the complete directory ``tmp`` (named ``.NAME.tmp-PID``) in place of ``path``: steps 2-4 of the module
    docstring, with SIGINT and SIGTERM held until both renames are durable."""
    old = path.with_name(f".{path.name}.old-{os.getpid()}")
    with deferred_signals():
        _fault_point("rename-old")
        if os.path.lexists(path):
            os.rename(path, old)
            fsync_dir(path.parent)
        _fault_point("rename-new")
        try:
            os.rename(tmp, path)
        except OSError:
            if os.path.lexists(old) and not os.path.lexists(path):
                os.rename(old, path)  # put the old one back before reporting the failure
            raise
        fsync_dir(path.parent)
    _fault_point("remove-old")
    shutil.rmtree(old, ignore_errors=True)


def write_dir_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """Fill a fresh temporary directory with ``write(tmp)``, then swap it in for ``path`` (see the module
    docstring): at every instant either the old or the new directory is complete, under ``path`` or under a
    name ``recover`` restores."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    recover(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        write(tmp)
        _fault_point("write")
        mark_complete(tmp)
        _fault_point("complete")
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, OSError) and e.filename is not None and Path(e.filename).is_relative_to(tmp):
            inside = path / Path(e.filename).relative_to(tmp)  # the user's name for it, not the temporary one
            raise OSError(e.errno, e.strerror, str(inside)) from None
        raise
    swap_in(tmp, path)


def check_parent_dir(path: str | Path | None) -> None:
    """Refuse an output file that cannot be written before the work that produces it (None: no output): its
    folder missing, a folder under its name, a block device, or a folder where no file can be made (/proc)."""
    if path is None or str(path) == STDOUT_NAME:
        return
    parent = Path(path).parent
    if not parent.is_dir():
        raise SeqlabError(f"{path}: cannot write it: the folder {parent} does not exist")
    if Path(path).is_dir():
        raise SeqlabError(f"{path}: is a directory; name a file to write")
    try:
        if _stream_target(Path(path)) is None:
            probe = _temporary_name(_file_target(Path(path)))
            _create_new(probe)
            probe.unlink()
    except OSError as e:
        raise SeqlabError(f"{path}: cannot write it ({e.strerror or e})") from None


def read_json(path: Path) -> dict:
    """A seqlab JSON file (always an object), or one line naming it and what is wrong."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SeqlabError(f"{path}: missing") from None
    except OSError as e:
        raise SeqlabError(f"{path}: cannot read it ({e.strerror or e})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise SeqlabError(f"{path}: corrupted JSON ({e})") from None
    except RecursionError:
        raise SeqlabError(f"{path}: JSON nested too deeply to be a seqlab file") from None
    if not isinstance(data, dict):
        raise SeqlabError(f"{path}: unexpected content (a JSON {type(data).__name__}, expected an object)")
    return data


def write_array(path: Path, chunks: Iterable[np.ndarray]) -> int:
    """Write the arrays' bytes one after another into ``path`` atomically (``.NAME.tmp-PID``, synced, renamed);
    the number of elements written. A failure (a full disk) removes the temporary file and raises ``OSError``."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    n = 0
    try:
        with open(tmp, "wb") as f:
            for chunk in chunks:
                f.write(memoryview(np.ascontiguousarray(chunk)).cast("B"))
                n += len(chunk)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
    return n


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, read 1 MiB at a time (the data fingerprints, the weights' check, token stores)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(2**20):
            digest.update(chunk)
    return digest.hexdigest()
