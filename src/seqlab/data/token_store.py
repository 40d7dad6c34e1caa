"""The token store: a text file encoded once into a memory-mapped array of character ids, as nanoGPT's
``train.bin`` is, so that no command holds a large text in memory.

``open_store(path)`` returns the file's ``TokenStore``: its ids (uint8 for at most 256 symbols with the unknown
one, else uint16) and its vocabulary (the file's own characters, sorted, then the unknown symbol, as
``Vocabulary.from_text`` makes it). The first call encodes the file in two streaming passes of ``CHUNK_BYTES``
(the characters it holds, then their ids), in bounded memory; later calls find it in the cache.

The cache: ``$SEQLAB_CACHE_DIR/tokens``, else ``$XDG_CACHE_HOME/seqlab/tokens``, else ``~/.cache/seqlab/tokens``; one
folder per store, named by the SHA-256 of the file's bytes and the encoding it was read with. A changed file has
another hash, so it is never read through a stale store (its old store stays until the cache is cleared: nothing
else is ever deleted but the temporary folders of dead writers). The hash (3 s per GB on a shared CPU) is taken
again unless the file's device, inode, size, modification and change times are those it had when it was last
hashed (``known_digest``): any write changes the change time, which no tool can set back.

A store is written into ``.KEY.tmp-PID``, synced, marked complete and renamed into place, so a killed encoding
leaves nothing a later run trusts; a lock file serialises two commands building the same store (the second one
waits, then opens the first one's). A full disk is one line, and the temporary folder is removed.

The file is read as UTF-8 by default (a leading byte-order mark dropped, CRLF read as LF, as ``load_text`` does);
``encoding="latin-1"`` reads any file byte by byte (each byte one symbol), and any other Python codec name works.
"""

from __future__ import annotations

import codecs
import contextlib
import errno
import fcntl
import hashlib
import json
import mmap
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seqlab.atomic import (
    file_sha256,
    fsync_dir,
    is_complete,
    mark_complete,
    read_json,
    recover,
    write_array,
    write_json,
)
from seqlab.data.bundled_data import resolve
from seqlab.data.files import BOM
from seqlab.data.text import UNKNOWN, TextPart, Vocabulary, id_dtype
from seqlab.errors import OptionError, SeqlabError

FORMAT = 1  # the layout of a store's folder; a store of another format is rebuilt
CHUNK_BYTES = 1 << 24  # bytes read per step of an encoding pass: what bounds its memory
CODEPOINTS = 0x110000
IDS_FILE, META_FILE = "ids.bin", "meta.json"
CACHE_ENV = "SEQLAB_CACHE_DIR"
NEWLINE = b"\n"


def cache_root(kind: str = "tokens") -> Path:
    """Where seqlab keeps what it derives from data (``kind``: token stores, suffix-array indexes): the folder
    ``$SEQLAB_CACHE_DIR`` names, else the user's cache folder, else (a home that cannot be written, as in some
    containers) one in the system's temporary folder."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser() / kind
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "seqlab"
    try:
        base.mkdir(parents=True, exist_ok=True)
        if os.access(base, os.W_OK | os.X_OK):
            return base / kind
    except OSError:
        pass
    return Path(tempfile.gettempdir()) / f"seqlab-cache-{os.getuid()}" / kind


@dataclass(frozen=True)
class TokenStore:
    directory: Path
    ids: np.ndarray  # (T,) uint8 or uint16, memory-mapped copy-on-write (never written back)
    vocabulary: Vocabulary
    source: str
    sha256: str
    encoding: str

    def __len__(self) -> int:
        return len(self.ids)

    first: list[int] | None = None  # each id's first position in the text (len(text): never)

    def part(self, start: int, stop: int) -> TextPart:
        return TextPart(self.ids[start:stop], self.vocabulary, self.directory, start, self.first)

    def find(self, text: str, start: int = 0, end: int | None = None, last: bool = False) -> int:
        """The first (``last``: the last) position in [start, end) where ``text`` occurs, or -1: ``str.find`` and
        ``str.rfind`` through the file's bytes, never reading it into memory."""
        if any(ch not in self.vocabulary.index for ch in text):
            return -1
        itemsize = self.ids.itemsize
        needle = np.array([self.vocabulary.index[ch] for ch in text], dtype=self.ids.dtype).tobytes()
        end = len(self) if end is None else end
        with open(self.directory / IDS_FILE, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
            lo, hi = start * itemsize, end * itemsize
            while True:  # a match must start on an id's first byte
                at = m.rfind(needle, lo, hi) if last else m.find(needle, lo, hi)
                if at < 0 or at % itemsize == 0:
                    return at // itemsize if at >= 0 else -1
                if last:
                    hi = at + len(needle) - 1
                else:
                    lo = at + 1


def split_store(store: TokenStore, valid_fraction: float, valid_from: str | None = None) -> int:
    """Where the held-out part starts: ``split_text``'s cut, found in the ids (the same position on the same
    text: at the marker ``valid_from`` when it occurs, else the last ``valid_fraction`` moved back to the start of
    a line if that line starts in the second half)."""
    if not 0.0 < valid_fraction < 1.0:
        raise SeqlabError(f"valid_fraction must be in (0, 1), got {valid_fraction}")
    n = len(store)
    cut = store.find(valid_from) + 1 if valid_from else 0
    if cut <= 0:
        cut = int(n * (1.0 - valid_fraction))
        newline = store.find("\n", 0, cut, last=True)
        if newline > n // 2:
            cut = newline + 1
    return cut


def _identity(info: os.stat_result) -> list[int]:
    return [info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns]


def known_digest(path: Path) -> str:
    """The SHA-256 of the file, taken from the last time it was hashed when its device, inode, size, modification
    and change times are all the same (as git's index does: any write changes the change time, which no tool can
    set back), else hashed now. A file changed within 2 s of its hashing is not remembered (a coarse clock could
    hide a change in that second, git's "racy" case)."""
    memo = cache_root("files") / (hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:32] + ".json")
    before = path.stat()
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        saved = json.loads(memo.read_text(encoding="utf-8"))
        if saved["identity"] == _identity(before) and isinstance(saved["sha256"], str):
            return saved["sha256"]
    digest = file_sha256(path)
    after = path.stat()
    if _identity(after) == _identity(before) and time.time() - after.st_mtime > 2:
        with contextlib.suppress(OSError):
            memo.parent.mkdir(parents=True, exist_ok=True)
            write_json(memo, {"path": str(path.resolve()), "identity": _identity(after), "sha256": digest})
    return digest


def codec_name(encoding: str) -> str:
    try:
        return codecs.lookup(encoding).name
    except LookupError:
        raise OptionError(
            f"unknown {{0}} {encoding!r}: give a Python codec name (utf-8, latin-1, cp1252...)", "encoding"
        ) from None


def open_store(source: str | Path, encoding: str = "utf-8", cache_dir: Path | None = None) -> TokenStore:
    """The token store of a text file (or a bundled name): from the cache, or encoded now (see the module)."""
    path, _ = resolve(source)
    codec = codec_name(encoding)
    digest = known_digest(path)
    root = Path(cache_dir) if cache_dir is not None else cache_root()
    final = root / f"{digest[:40]}-{codec}"
    if (store := _open(final, path, codec)) is not None:
        return store
    if is_complete(final):  # complete but unreadable (another format, damaged): ours to rebuild
        shutil.rmtree(final, ignore_errors=True)
    build_once(final, lambda tmp: _encode(path, codec, digest, tmp), f"{path}: cannot write its token store")
    store = _open(final, path, codec)
    if store is None:
        raise SeqlabError(f"{final}: the token store just written cannot be read back")
    return store


def build_once(final: Path, build: Callable[[Path], None], failure: str) -> None:
    """Make the cache folder ``final`` complete: unless another command finished it while this one waited for
    the lock, ``build(tmp)`` fills ``.NAME.tmp-PID``, which is marked complete and renamed into place. A dead
    writer's leftovers are removed first; an ``OSError`` (a full disk) is one line beginning with ``failure``,
    the temporary folder removed."""
    root = final.parent
    try:
        root.mkdir(parents=True, exist_ok=True)
        with _locked(root / f".{final.name}.lock"):
            if is_complete(final):  # built by the command we waited for
                return
            recover(final)  # a dead writer's complete folder is put in place; its partial ones are removed
            if is_complete(final):
                return
            shutil.rmtree(final, ignore_errors=True)  # ours, and not a whole folder (a dead writer's, damaged)
            tmp = root / f".{final.name}.tmp-{os.getpid()}"
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir()
            try:
                build(tmp)
                mark_complete(tmp)
                os.rename(tmp, final)
                fsync_dir(root)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    except OSError as e:
        why = "the disk is full" if e.errno == errno.ENOSPC else (e.strerror or str(e))
        raise SeqlabError(
            f"{failure} in {root} ({why}); free space there or set {CACHE_ENV} to another folder"
        ) from None


@contextlib.contextmanager
def _locked(lock: Path) -> Iterator[None]:
    """An exclusive ``flock`` on ``lock``: held until the block ends, dropped by the kernel if the process dies."""
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _open(directory: Path, path: Path, codec: str) -> TokenStore | None:
    """The complete store in ``directory``, or None (absent, another format, or damaged: then it is rebuilt)."""
    if not is_complete(directory):
        return None
    try:
        meta = read_json(directory / META_FILE)
        vocabulary = Vocabulary.from_json(meta["vocabulary"])
        dtype = np.dtype(meta["dtype"])
        length = int(meta["length"])
        ok = meta.get("format") == FORMAT and (directory / IDS_FILE).stat().st_size == length * dtype.itemsize
    except (SeqlabError, KeyError, TypeError, ValueError, OSError):
        return None
    if not ok:
        return None
    ids = np.memmap(directory / IDS_FILE, dtype=dtype, mode="c", shape=(length,))
    first = meta.get("first")
    if not (isinstance(first, list) and len(first) == len(vocabulary)):
        first = None
    return TokenStore(directory, ids, vocabulary, str(path), meta["sha256"], codec, first)


def _texts(path: Path, codec: str, digest=None) -> Iterator[bytes | np.ndarray]:
    """The file's text in chunks of code points, decoded as ``codec`` (UTF-8: a leading BOM dropped, NUL
    refused), CRLF as LF: the text ``load_text`` reads, without holding it. A chunk whose code points are all below
    256 comes as ``bytes`` (one byte each: what ``bytes.translate`` maps fastest), any other as a uint32 array.
    Errors name the byte offset. An ASCII chunk of UTF-8 is never decoded: its bytes are its code points."""
    decoder = codecs.getincrementaldecoder(codec)()
    utf8 = codec == "utf-8"
    offset, pending_cr, first = 0, False, True
    with open(path, "rb") as f:
        while True:
            raw = f.read(CHUNK_BYTES)
            if digest is not None:
                digest.update(raw)
            if utf8 and (nul := raw.find(b"\x00")) >= 0:
                raise SeqlabError(
                    f"{path}: looks binary (NUL byte at {_line_at(path, offset + nul)}, byte offset "
                    f"{offset + nul:,}), expected UTF-8 text"
                )
            if utf8 and raw.isascii() and not decoder.getstate()[0]:  # no character left half read before it
                text: str | bytes = raw
            else:
                try:
                    text = decoder.decode(raw, final=not raw)
                except UnicodeDecodeError as e:
                    at = offset + max(e.start, 0)
                    bad = raw[e.start] if 0 <= e.start < len(raw) else None
                    what = f", byte 0x{bad:02x}" if bad is not None else ", the file ends inside a character"
                    name = "UTF-8" if utf8 else codec
                    raise OptionError(
                        f"{path}: not valid {name} at {_line_at(path, at)} (byte offset {at:,}{what}); give {{0}} "
                        "latin-1 to read it byte by byte, or the file's own {0}",
                        "encoding",
                    ) from None
                if first and text and utf8:
                    text = text.removeprefix(BOM)
                if text.isascii() or _latin1(text):
                    text = text.encode("latin-1")
            offset += len(raw)
            first = first and not text
            text, pending_cr = _lf(text, pending_cr, final=not raw)
            if text:
                yield text if isinstance(text, bytes) else np.frombuffer(text.encode("utf-32-le"), dtype="<u4")
            if not raw:
                return


def _line_at(path: Path, offset: int) -> str:
    """ "line L, column C" of the byte at ``offset``, columns in bytes (counted only when an error names them)."""
    line, column = 1, offset + 1
    with open(path, "rb") as f:
        done = 0
        while done < offset and (raw := f.read(min(CHUNK_BYTES, offset - done))):
            if (last := raw.rfind(NEWLINE)) >= 0:
                column = offset - (done + last)
            line += raw.count(NEWLINE)
            done += len(raw)
    return f"line {line}, column {column}"


def _lf(text: str | bytes, pending_cr: bool, final: bool) -> tuple[str | bytes, bool]:
    """CRLF as LF in one chunk; a CR at its end is held back (its LF may begin the next chunk) and put back in
    front of the next one (``pending_cr``)."""
    cr, crlf, lf = ("\r", "\r\n", "\n") if isinstance(text, str) else (b"\r", b"\r\n", b"\n")
    if pending_cr:
        text = cr + text
    hold = not final and text.endswith(cr)
    if hold:
        text = text[:-1]
    return (text.replace(crlf, lf) if cr in text else text), hold


def _latin1(text: str) -> bool:
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


def _encode(path: Path, codec: str, digest: str, directory: Path) -> None:
    """Pass 1: the characters the file holds; pass 2: their ids, appended to ``IDS_FILE``, and the file's hash
    again (it must not change while it is read); then ``META_FILE``. A chunk of bytes is checked for symbols not
    seen yet by deleting the known ones (``bytes.translate``; the first ones from a sample), and mapped to ids by
    a 256-byte table."""
    first = np.full(CODEPOINTS, -1, dtype=np.int64)  # each code point's first position in the text
    known, position = b"", 0
    for chunk in _texts(path, codec):
        if isinstance(chunk, bytes):
            if not known:
                sample = np.unique(np.frombuffer(chunk[:65536], dtype=np.uint8))
                for b in sample.tolist():
                    first[b] = position + chunk.find(bytes([b]))
                known = bytes(sample.astype(np.uint8))
            if rest := chunk.translate(None, known):
                for b in np.unique(np.frombuffer(rest, dtype=np.uint8)).tolist():
                    first[b] = position + chunk.find(bytes([b]))
                known = bytes(np.flatnonzero(first[:256] >= 0).astype(np.uint8))
        else:
            new = np.unique(chunk)
            new = new[first[new] < 0]
            for c in new.tolist():
                first[c] = position + int(np.argmax(chunk == c))
        position += len(chunk)
    seen = first >= 0
    if not seen.any():
        raise SeqlabError(
            f"{path}: the file is empty" + (" (it holds only a byte-order mark)" if path.stat().st_size else "")
        )
    symbols = [chr(c) for c in np.flatnonzero(seen) if chr(c) != UNKNOWN]
    vocabulary = Vocabulary(symbols)
    dtype = id_dtype(len(vocabulary), str(path))
    table = np.zeros(CODEPOINTS, dtype=dtype)
    table[[ord(s) for s in vocabulary.symbols]] = np.arange(len(vocabulary))
    byte_table = table[:256].astype(np.uint8).tobytes() if dtype == np.uint8 else None

    def ids(chunk: bytes | np.ndarray) -> np.ndarray:
        if isinstance(chunk, bytes):
            if byte_table is not None:
                return np.frombuffer(chunk.translate(byte_table), dtype=np.uint8)
            return table[np.frombuffer(chunk, dtype=np.uint8)]
        return table[chunk]

    check = hashlib.sha256()
    length = write_array(directory / IDS_FILE, (ids(chunk) for chunk in _texts(path, codec, check)))
    if check.hexdigest() != digest:
        raise SeqlabError(f"{path}: the file changed while it was being read; run the command again")
    meta = {
        "format": FORMAT,
        "source": str(path),
        "sha256": digest,
        "encoding": codec,
        "dtype": dtype.name,
        "length": length,
        "vocabulary": vocabulary.to_json(),
        # by id: where it first occurs (the unknown symbol: where U+FFFD does, else never)
        "first": [int(first[ord(c)]) if first[ord(c)] >= 0 else length for c in vocabulary.symbols],
    }
    with open(directory / META_FILE, "w", encoding="utf-8") as f:
        f.write(json.dumps(meta) + "\n")
        f.flush()
        os.fsync(f.fileno())
