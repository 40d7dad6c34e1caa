"""Character vocabularies and train/validation splits for text."""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import mmap
from pathlib import Path

import numpy as np
import torch

from seqlab.atomic import write_array
from seqlab.errors import OptionError, SeqlabError

UNKNOWN = "\ufffd"  # the Unicode replacement character: the explicit unknown symbol


class Vocabulary:
    """The characters of a training text, sorted; id ``i`` is ``symbols[i]``.

    The last id is the explicit unknown symbol ``UNKNOWN``: training text never contains it, and
    ``encode(..., unknown="map")`` sends characters the vocabulary lacks to it (a large but finite
    cost); the default ``unknown="error"`` refuses them, naming the character and its position.
    """

    def __init__(self, symbols: list[str]) -> None:
        if UNKNOWN not in symbols:
            symbols = [*symbols, UNKNOWN]
        self.symbols = list(symbols)
        self.index = {s: i for i, s in enumerate(self.symbols)}
        self.unknown_id = self.index[UNKNOWN]
        self._sorted: tuple[np.ndarray, np.ndarray] | None = None  # code points sorted, and their ids

    @classmethod
    def from_text(cls, text: str | TextPart) -> Vocabulary:
        if isinstance(text, TextPart):
            return cls(text.symbols())
        return cls(sorted(set(text) - {UNKNOWN}))

    def __len__(self) -> int:
        return len(self.symbols)

    def encode(self, text: str | TextPart, unknown: str = "error", source: str = "text") -> torch.Tensor:
        """str -> (T,) int64 ids. ``unknown="error"`` raises on a character not in the vocabulary. A ``TextPart``
        (a slice of a token store on disk) -> its ids as a uint8 or uint16 tensor, memory-mapped when the
        vocabularies are the same (``TextPart.encode``)."""
        if unknown not in ("error", "map"):
            raise ValueError(f"unknown must be 'error' or 'map', got {unknown!r}")
        if isinstance(text, TextPart):
            return text.encode(self, unknown, source)
        ids = self._lookup(text)
        if ids is None:
            ids = np.array([self.index.get(ch, -1) for ch in text], dtype=np.int64)
        unknown_at = np.flatnonzero(ids < 0)
        if len(unknown_at):
            if unknown == "error":
                pos = int(unknown_at[0])
                line = text.count("\n", 0, pos) + 1
                column = pos - (text.rfind("\n", 0, pos) + 1) + 1
                missing = sorted(set(text) - set(self.index))
                raise OptionError(
                    f"{source}: character {text[pos]!r} (U+{ord(text[pos]):04X}) at line {line}, column {column} "
                    f"is not in the model's vocabulary ({len(missing)} unknown characters in all); "
                    "give {0} map to score it as the unknown symbol",
                    "unknown",
                )
            ids[unknown_at] = self.unknown_id
        return torch.from_numpy(ids)

    def _lookup(self, text: str) -> np.ndarray | None:
        """The ids of ``text`` (-1 where a character is not in the vocabulary) by one vectorised search over its
        code points; None for a string that has no UTF-32 form (a lone surrogate): then Python looks them up."""
        try:
            codepoints = np.frombuffer(text.encode("utf-32-le"), dtype="<u4").astype(np.int64)
        except UnicodeEncodeError:
            return None
        if self._sorted is None:
            points = np.array([ord(s) for s in self.symbols], dtype=np.int64)
            order = np.argsort(points)
            self._sorted = (points[order], order)
        points, order = self._sorted
        at = np.minimum(np.searchsorted(points, codepoints), len(points) - 1)
        return np.where(points[at] == codepoints, order[at], -1)

    def decode(self, ids) -> str:
        return "".join(self.symbols[int(i)] for i in ids)

    def to_json(self) -> list[str]:
        return self.symbols

    @classmethod
    def from_json(cls, symbols: list[str]) -> Vocabulary:
        """A saved vocabulary: unique single characters, or a one-line error (a tampered file)."""
        if not isinstance(symbols, list):
            raise SeqlabError(f"vocabulary: expected a list of characters, got a {type(symbols).__name__}")
        for i, s in enumerate(symbols):
            if not isinstance(s, str) or len(s) != 1:
                raise SeqlabError(f"vocabulary entry {i}: {s!r} is not a single character")
        if len(set(symbols)) != len(symbols):
            twice = sorted({s for s in symbols if symbols.count(s) > 1})
            raise SeqlabError(f"vocabulary: {twice[0]!r} appears more than once")
        return cls(list(symbols))


def encode_symbols(data, vocabulary: Vocabulary | None, model: str, unknown: str = "error", source: str = "data"):
    """Text (through ``vocabulary``) or integer symbol ids -> (T,) int64 ids; refuses continuous values. A
    ``TextPart`` gives uint8 or uint16 ids, memory-mapped where it can (``TextPart.encode``)."""
    if not isinstance(data, str | TextPart):
        array = np.asarray(data.detach().cpu() if isinstance(data, torch.Tensor) else data)
        if array.dtype.kind not in "iu":
            raise SeqlabError(f"{model} is a model of discrete data (symbols); got {array.dtype} values ({source})")
        return torch.as_tensor(array, dtype=torch.long)
    if vocabulary is None:
        raise SeqlabError(f"{model} has no vocabulary yet: fit it on text or pass vocabulary=...")
    return vocabulary.encode(data, unknown=unknown, source=source)


def id_dtype(size: int, source: str = "text") -> np.dtype:
    """The smallest unsigned type that holds ids ``0 .. size - 1``: uint8, uint16, or a one-line error."""
    if size <= 256:
        return np.dtype(np.uint8)
    if size <= 65536:
        return np.dtype(np.uint16)
    raise SeqlabError(
        f"{source}: {size - 1:,} distinct characters (and the unknown symbol), more than the 65,536 symbols a "
        "token store's uint16 ids hold"
    )


class TextPart:
    """Characters ``start .. stop`` of a text held as ids (``ids``, a memory-mapped array of a token store,
    ``seqlab.data.token_store``) under ``vocabulary``: what a text ``Dataset`` holds as its training and held-out
    parts. ``len``, truth and ``str`` behave as the text's; slicing gives a string (for the few commands that
    read characters); ``encode`` gives ids without reading the text into memory."""

    CHUNK = 1 << 22  # ids per numpy pass: bounds the memory of a scan over a large part

    def __init__(
        self,
        ids: np.ndarray,
        vocabulary: Vocabulary,
        cache: Path | None = None,
        start: int = 0,
        first: list[int] | None = None,
    ) -> None:
        # start: where the part begins in its store; first: each id's first position in the store (or None)
        self.ids, self.vocabulary, self.cache, self.start, self.first = ids, vocabulary, cache, start, first

    def __len__(self) -> int:
        return len(self.ids)

    def __str__(self) -> str:
        return self.decode(self.ids)

    def __getitem__(self, index: slice) -> str:
        if not isinstance(index, slice):
            raise TypeError("a TextPart is sliced (part[a:b], a string), not indexed")
        return self.decode(self.ids[index])

    def __eq__(self, other) -> bool:
        return isinstance(other, str | TextPart) and str(self) == str(other)

    __hash__ = None

    def decode(self, ids: np.ndarray) -> str:
        codepoints = np.array([ord(s) for s in self.vocabulary.symbols], dtype="<u4")
        return codepoints[np.asarray(ids)].tobytes().decode("utf-32-le")

    def _chunks(self):
        """(start, ids) a chunk at a time; each chunk's pages are handed back after use, so a scan of a large
        part does not grow the process's resident memory by the part's size (``release``)."""
        for s in range(0, len(self.ids), self.CHUNK):
            chunk = self.ids[s : s + self.CHUNK]
            yield s, np.asarray(chunk)
            release(chunk)

    def symbols(self) -> list[str]:
        """The characters that occur, sorted, without the unknown symbol (``Vocabulary.from_text``): from the
        store's first occurrences when the part starts the text (no scan), else by counting."""
        if self.first is not None and self.start == 0:
            present = np.flatnonzero(np.asarray(self.first) < len(self.ids))
            return [self.vocabulary.symbols[i] for i in present if i != self.vocabulary.unknown_id]
        counts = np.zeros(len(self.vocabulary), dtype=np.int64)
        for _, chunk in self._chunks():
            counts += np.bincount(chunk, minlength=len(self.vocabulary))
        return [self.vocabulary.symbols[i] for i in np.flatnonzero(counts) if i != self.vocabulary.unknown_id]

    def encode(self, vocabulary: Vocabulary, unknown: str = "error", source: str = "text") -> torch.Tensor:
        """The ids under ``vocabulary`` (T,), uint8 or uint16: the store's own array, memory-mapped, when the
        vocabularies are the same; else translated (on disk beside the store for a large part, in memory for a
        small one), a character ``vocabulary`` lacks refused (``unknown="error"``) or sent to its unknown id."""
        if vocabulary.symbols == self.vocabulary.symbols:
            return torch.from_numpy(self.ids)
        table = np.array([vocabulary.index.get(s, -1) for s in self.vocabulary.symbols], dtype=np.int64)
        table[self.vocabulary.unknown_id] = vocabulary.unknown_id
        missing = table < 0
        if missing.any() and unknown == "error":
            present = np.zeros(len(self.vocabulary), dtype=bool)
            first = None
            for start, chunk in self._chunks():
                present[chunk] = True
                bad = np.flatnonzero(missing[chunk])
                if first is None and len(bad):
                    first = start + int(bad[0])
            if first is not None:
                self._refuse(first, int((present & missing).sum()), source)
        table[missing] = vocabulary.unknown_id
        dtype = id_dtype(len(vocabulary), source)
        table = table.astype(dtype)
        if self.cache is None or len(self.ids) < self.CHUNK:
            return torch.from_numpy(table[self.ids])
        return torch.from_numpy(self._translated(table, dtype))

    def _translated(self, table: np.ndarray, dtype: np.dtype) -> np.ndarray:
        """The part translated through ``table`` into a file of the store's folder (written once, atomically)."""
        key = hashlib.sha256(table.tobytes() + str(dtype).encode()).hexdigest()[:16]
        path = self.cache / f"translated-{key}-{self.start}-{len(self.ids)}.bin"
        if not path.exists():
            write_array(path, (table[chunk] for _, chunk in self._chunks()))
        return np.memmap(path, dtype=dtype, mode="c", shape=(len(self.ids),))

    def _refuse(self, position: int, count: int, source: str) -> None:
        newline = self.vocabulary.index.get("\n")
        line, column = 1, position + 1
        if newline is not None:
            for start, chunk in self._chunks():
                if start >= position:
                    break
                lines = np.flatnonzero(chunk[: position - start] == newline)
                line += len(lines)
                if len(lines):
                    column = position - (start + int(lines[-1]))
        ch = self.vocabulary.symbols[int(self.ids[position])]
        raise OptionError(
            f"{source}: character {ch!r} (U+{ord(ch):04X}) at line {line}, column {column} is not in the model's "
            f"vocabulary ({count} unknown characters in all); give {{0}} map to score it as the unknown symbol",
            "unknown",
        )


def release(view: np.ndarray) -> None:
    """Hand the pages of ``view``, a slice of a read-only memory map, back to the kernel (MADV_DONTNEED): they stay
    in the page cache but leave this process's resident memory. Anything else is left alone."""
    base = view
    while isinstance(base, np.ndarray) and getattr(base, "_mmap", None) is None:
        base = base.base
    if not isinstance(base, np.memmap) or not hasattr(mmap, "MADV_DONTNEED") or view.nbytes == 0:
        return
    buffer = base._mmap
    start = view.ctypes.data - ctypes.addressof(ctypes.c_char.from_buffer(buffer))
    page = mmap.PAGESIZE
    lo = start // page * page
    hi = min(len(buffer), -(-(start + view.nbytes) // page) * page)
    with contextlib.suppress(OSError, ValueError):
        buffer.madvise(mmap.MADV_DONTNEED, lo, hi - lo)


def split_text(text: str, valid_fraction: float = 0.1, valid_from: str | None = None) -> tuple[str, str]:
    """Split into (train, valid): at the marker ``valid_from`` when it occurs (a held-out document),
    else the last ``valid_fraction`` of the text, moved back to the start of a line."""
    if not 0.0 < valid_fraction < 1.0:
        raise SeqlabError(f"valid_fraction must be in (0, 1), got {valid_fraction}")
    cut = text.find(valid_from) + 1 if valid_from else 0
    if cut <= 0:
        cut = int(len(text) * (1.0 - valid_fraction))
        newline = text.rfind("\n", 0, cut)
        if newline > len(text) // 2:
            cut = newline + 1
    return text[:cut], text[cut:]
