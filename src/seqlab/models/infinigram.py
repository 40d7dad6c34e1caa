"""``InfiniGram``: the naive sequence model for discrete data, conditioning on the whole history.

For a history ``h = x_1 .. x_{t-1}`` let ``s_L`` be its last ``L`` symbols. The model finds every ``s_L``
that occurs in the training text (up to the longest one, however long: the suffix array makes that cheap)
and interpolates the next-symbol counts over all these suffix lengths, Witten-Bell style, from the
uniform distribution up:

    P_{-1}(w)    = 1 / V
    P_L(w | h)   = (c(s_L w) + N1+(s_L .) P_{L-1}(w | h)) / (c(s_L .) + N1+(s_L .))       L = 0, 1, ..., L_max

``c(s_L w)`` counts the occurrences of ``s_L`` followed by ``w``, ``c(s_L .)`` those followed by anything,
``N1+(s_L .)`` the distinct symbols that follow. Every symbol keeps a positive probability (the uniform
floor), so ``log_prob`` is finite on any input in the vocabulary. With ``merge_identical=True`` (the default)
a suffix that occurs exactly where the next shorter one does (the same occurrences, so the same counts) is
not counted again: it adds no evidence, and each repetition would only shrink the shorter suffixes' share.
With ``merge_identical=False`` and ``max_length=n`` it is exactly ``NGram(order=n, smoothing="witten_bell")``
(tested); uncapped, it is an n-gram model whose n grows with the data (Liu et al. 2024, "Infini-gram").

On a held-out play it is worse than a smoothed fixed-window model (docs/benchmarks.md): long matches in one
play mislead about another. That is the naive model's weakness the notes describe, measured.

Index (``SuffixIndex``): the suffix array of the *reversed* training text. A suffix of the history read
backwards is a prefix there, so the occurrences of ``s_{L+1}`` are a sub-range of those of ``s_L``: one
narrowing step (two binary searches) per extra symbol. The symbol that follows an occurrence in the forward text
precedes it in the reversed one; the counts of those followers over a range come from a table of cumulative
counts every ``block`` entries (an FM-index's occurrence table) plus at most two partial blocks.

The array is built by libdivsufsort (``pydivsufsort``: 15x faster than the prefix doubling kept below as the
reference, benchmarks/infinigram_speed.py) and kept memory-mapped on disk with the reversed text, in the
seqlab cache (``$SEQLAB_CACHE_DIR/infinigram``, keyed by the text's hash, written atomically like the token
store): ``seqlab.io`` saves the text in ``model.safetensors`` and a load reopens the index (or builds it once).
A saved model also keeps the index beside it, ``DIR/index/KEY/``: hard links of the cache's files (no copy on one
file system; a copy where links fail, only up to ``COPY_LIMIT``, else nothing), which a load opens first when
complete and matching the text, then the cache's, else it builds the index again; a folder without one loads
as before.
On disk: the text (1 or 2 bytes a symbol), the array (4 bytes a symbol, 8 past 2^31 symbols) and the table
(at most 1/2 byte a symbol).
"""

from __future__ import annotations

import bisect
import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pydivsufsort
import torch

from seqlab.atomic import fsync_dir, is_complete, mark_complete, write_array
from seqlab.base import ConformanceCase, SequenceModel
from seqlab.data.text import TextPart, Vocabulary, encode_symbols, release
from seqlab.data.token_store import build_once, cache_root
from seqlab.distributions import Categorical
from seqlab.errors import SeqlabError

INDEX_FORMAT = 1
INDEX_CHUNK = 1 << 22  # entries per numpy pass when the table is built: bounds that pass's memory
EXTEND_BELOW = 64  # occurrences few enough to compare with the history directly (SuffixIndex.extension)
EXTEND_STEP = 256  # symbols compared at once
INDEX_DIR = "index"  # beside a saved model's config.json: INDEX_DIR/KEY/ holds the index's files
INDEX_FILES = ("rev.bin", "sa.bin", "occ.bin", "meta.json")
COPY_LIMIT = 64 * 2**20  # where hard links fail (another file system), an index up to this size is copied


def suffix_array(x: np.ndarray) -> np.ndarray:
    """Suffix array of the int sequence ``x`` by prefix doubling (each round one sort of the rank pairs)."""
    n = len(x)
    rank = np.unique(x, return_inverse=True)[1].astype(np.int64)
    k = 1
    while True:
        second = np.full(n, -1, dtype=np.int64)
        second[: n - k] = rank[k:]
        key = rank * (n + 1) + (second + 1)
        order = np.argsort(key, kind="stable")
        sorted_key = key[order]
        new_rank = np.empty(n, dtype=np.int64)
        new_rank[order] = np.concatenate([[0], np.cumsum(sorted_key[1:] != sorted_key[:-1])])
        rank = new_rank
        if rank.max() == n - 1 or k >= n:
            return order
        k *= 2


def sorted_suffixes(x: np.ndarray) -> np.ndarray:
    """Suffix array of ``x`` (uint8 or uint16 ids) by libdivsufsort: int32 below 2^31 symbols, else int64. Two-byte
    ids are sorted as big-endian byte pairs (the order of the symbols), keeping the suffixes at even bytes."""
    if x.dtype == np.uint8:
        return pydivsufsort.divsufsort(np.ascontiguousarray(x))
    pairs = np.ascontiguousarray(x.astype(">u2")).view(np.uint8)
    sa = pydivsufsort.divsufsort(pairs)
    return sa[sa % 2 == 0] // 2


class SuffixIndex:
    """The reversed text ``rev`` and its suffix array ``sa``, memory-mapped from a cache folder, with the
    follower counts table ``occ``: what every query reads. ``open_index(x, V)`` finds or builds it."""

    def __init__(self, directory: Path) -> None:
        meta = json.loads((directory / "meta.json").read_text(encoding="utf-8"))
        self.directory, self.n, self.V, self.block = directory, meta["length"], meta["V"], meta["block"]
        self.rev = np.memmap(directory / "rev.bin", dtype=meta["text_dtype"], mode="r", shape=(self.n,))
        self.sa = np.memmap(directory / "sa.bin", dtype=meta["sa_dtype"], mode="r", shape=(self.n,))
        self.occ = np.memmap(directory / "occ.bin", dtype=np.int64, mode="r", shape=(self.n // self.block + 1, self.V))
        self.unigram = np.array(meta["unigram"], dtype=np.float64)

    @staticmethod
    def build(x: np.ndarray, V: int, directory: Path) -> None:
        """Write the index of ``x`` into ``directory``: peak memory about 5 bytes a symbol (the text reversed and
        libdivsufsort's int32 array; 11 for two-byte symbols, 9 past 2^31 symbols)."""
        n = len(x)
        rev = np.empty(n, dtype=x.dtype)
        for s in range(0, n, INDEX_CHUNK):  # reversed a chunk at a time, the text's pages handed back after each
            chunk = x[s : s + INDEX_CHUNK]
            rev[n - s - len(chunk) : n - s] = chunk[::-1]
            release(chunk)
        write_array(directory / "rev.bin", [rev])
        sa = sorted_suffixes(rev)
        sa_dtype = np.uint32 if n < 2**32 else np.uint64
        write_array(directory / "sa.bin", (sa[s : s + INDEX_CHUNK].astype(sa_dtype) for s in range(0, n, INDEX_CHUNK)))
        # the table: counts of each follower before every block-th entry; blocks large enough that it stays small
        block = table_block(V)
        running = np.zeros(V, dtype=np.int64)
        rows = []
        for s in range(0, n, block):
            rows.append(running.copy())
            positions = sa[s : s + block].astype(np.int64)
            followers = rev[positions[positions > 0] - 1]
            running += np.bincount(followers, minlength=V)
        rows.append(running.copy())
        del sa
        write_array(directory / "occ.bin", rows)
        unigram = running.copy()  # every symbol follows something but the text's first one
        unigram[rev[-1]] += 1
        meta = {
            "format": INDEX_FORMAT,
            "length": n,
            "V": V,
            "block": block,
            "text_dtype": rev.dtype.name,
            "sa_dtype": np.dtype(sa_dtype).name,
            "unigram": unigram.tolist(),
        }
        with open(directory / "meta.json", "w", encoding="utf-8") as f:
            f.write(json.dumps(meta) + "\n")
            f.flush()
            os.fsync(f.fileno())

    # -- queries ---------------------------------------------------------------------------------------------
    def narrow(self, lo: int, hi: int, depth: int, symbol: int) -> tuple[int, int]:
        """Within [lo, hi) (suffixes sharing their first ``depth`` symbols), those whose next one is ``symbol``."""
        rev, sa, n = self.rev, self.sa, self.n

        def key(i: int) -> int:
            j = int(sa[i]) + depth
            return int(rev[j]) if j < n else -1

        return (
            bisect.bisect_left(range(hi), symbol, lo, hi, key=key),
            bisect.bisect_right(range(hi), symbol, lo, hi, key=key),
        )

    def _partial(self, lo: int, hi: int) -> np.ndarray:
        positions = np.asarray(self.sa[lo:hi], dtype=np.int64)
        return np.bincount(self.rev[positions[positions > 0] - 1], minlength=self.V)

    def followers(self, lo: int, hi: int) -> np.ndarray:
        """Counts (V,) of the symbols that follow the occurrences in [lo, hi) (float64)."""
        b = self.block
        first, last = -(-lo // b), hi // b  # whole blocks first .. last - 1
        if first >= last:
            return self._partial(lo, hi).astype(np.float64)
        counts = self.occ[last] - self.occ[first] + self._partial(lo, first * b) + self._partial(last * b, hi)
        return counts.astype(np.float64)

    def extension(self, lo: int, hi: int, depth: int, backwards: np.ndarray, most: int) -> int:
        """How many more symbols (at most ``most``) every suffix in [lo, hi) shares with ``backwards[depth:]``:
        over those lengths the range, and so the counts, stay the same."""
        starts = np.asarray(self.sa[lo:hi], dtype=np.int64) + depth
        k = 0
        while k < most:
            step = min(EXTEND_STEP, most - k)
            columns = starts[:, None] + (k + np.arange(step))
            symbols = np.where(columns < self.n, self.rev[np.minimum(columns, self.n - 1)], -1)
            differ = np.flatnonzero((symbols != backwards[depth + k : depth + k + step]).any(axis=0))
            if len(differ):
                return k + int(differ[0])
            k += step
        return most

    def find(self, pattern) -> tuple[int, int]:
        """The range of suffixes of the reversed text that begin with ``pattern`` reversed: its occurrences."""
        lo, hi = 0, self.n
        for depth, symbol in enumerate(reversed([int(s) for s in pattern])):
            lo, hi = self.narrow(lo, hi, depth, symbol)
            if lo >= hi:
                break
        return lo, hi


def table_block(V: int) -> int:
    """Entries between rows of the follower table: a row holds V counts of 8 bytes, so at most 1/2 byte a symbol,
    and a query counts at most two partial blocks by hand."""
    return max(4096, 16 * V)


def index_key(x: np.ndarray, V: int) -> str:
    digest = hashlib.sha256(f"{INDEX_FORMAT}:{V}:{x.dtype.name}:".encode())
    for s in range(0, len(x), INDEX_CHUNK):
        chunk = x[s : s + INDEX_CHUNK]
        digest.update(np.ascontiguousarray(chunk).data)
        release(chunk)
    return digest.hexdigest()[:40]


def open_index(x: np.ndarray, V: int, beside: Path | None = None) -> SuffixIndex:
    """The index of the text ``x`` (uint8 or uint16 ids over ``V`` symbols): from ``beside`` (a saved model's
    ``INDEX_DIR``) where it holds a complete and readable one for this text, else from the cache, or built now."""
    key = index_key(x, V)
    if beside is not None and is_complete(beside / key):  # the folder's name is the hash of this text, as the cache's
        try:
            index = SuffixIndex(beside / key)
            if index.n == len(x) and index.V == V:
                return index
        except (OSError, ValueError, KeyError, TypeError):
            pass  # damaged: the cache's, as if it were not there
    final = cache_root("infinigram") / key
    build_once(final, lambda tmp: SuffixIndex.build(x, V, tmp), "cannot write the InfiniGram index")
    try:
        return SuffixIndex(final)
    except (OSError, ValueError, KeyError) as e:
        raise SeqlabError(f"{final}: a damaged InfiniGram index ({e}); remove that folder to rebuild it") from None


def keep_beside(index: SuffixIndex, directory: Path) -> bool:
    """Put ``index``'s files into ``directory/INDEX_DIR/KEY`` (``KEY``: its cache folder's name, the text's hash):
    hard links, or copies up to ``COPY_LIMIT`` where links fail; written into a temporary folder, marked complete
    and renamed, so a kill leaves nothing a load trusts; another text's index there is removed. False where it was
    not kept (the model still loads: the cache's index, or one built again)."""
    key = index.directory.name
    root = directory / INDEX_DIR
    final = root / key
    if is_complete(final):  # saved again into the same folder, or loaded from it
        return True
    sources = [index.directory / name for name in INDEX_FILES]
    tmp = root / f".{key}.tmp-{os.getpid()}"
    try:
        root.mkdir(exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        try:
            for source in sources:
                os.link(source, tmp / source.name)
        except OSError:
            if sum(source.stat().st_size for source in sources) > COPY_LIMIT:
                return False
            for source in sources:
                (tmp / source.name).unlink(missing_ok=True)
                copy_synced(source, tmp / source.name)
        mark_complete(tmp)
        os.rename(tmp, final)
        fsync_dir(root)
        for old in root.iterdir():
            if old.name != key and not old.name.startswith("."):
                shutil.rmtree(old, ignore_errors=True)
        return True
    except OSError:
        return False
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def copy_synced(source: Path, target: Path) -> None:
    shutil.copyfile(source, target)
    with open(target, "rb") as f:
        os.fsync(f.fileno())


class InfiniGram(SequenceModel):
    element_name = "characters"
    """Witten-Bell interpolation over every suffix length of the history that occurs in the training text.

    ``max_length=None`` (the default) puts no limit on the suffix length. Besides ``log_prob``, the index
    answers ``count`` (occurrences of a string), ``next_counts`` (what follows a history) and ``infinigram``
    (Liu et al.'s probability from the longest suffix that occurs, with that suffix's length).

    Example::

        >>> model = InfiniGram().fit("to be or not to be, that is the question")
        >>> bool(torch.isfinite(model.log_prob("to be or not")).all())
        True
        >>> model.count("to be")
        2
    """

    kind = "infinigram"

    def __init__(
        self, max_length: int | None = None, merge_identical: bool = True, vocabulary: Vocabulary | None = None
    ) -> None:
        if max_length is not None and (not isinstance(max_length, int) or max_length < 0):
            raise SeqlabError(f"max_length must be a non-negative integer or None, got {max_length!r}")
        self.max_length, self.merge_identical, self.vocabulary = max_length, merge_identical, vocabulary
        self.index: SuffixIndex | None = None
        self.saved_index: Path | None = None  # a saved model's INDEX_DIR, looked in first by the next load

    @property
    def V(self) -> int:
        return len(self.vocabulary)

    @property
    def head(self) -> Categorical:
        return Categorical(self.V)

    @property
    def text(self) -> np.ndarray | None:
        """The training ids (a view of the index's memory-mapped reversed text), or None before ``fit``."""
        return None if self.index is None else self.index.rev[::-1]

    def encode(self, data, *, unknown: str = "error", source: str = "text") -> torch.Tensor:
        return encode_symbols(data, self.vocabulary, "InfiniGram", unknown, source)

    def decode(self, x: torch.Tensor) -> str:
        return self.vocabulary.decode(x.tolist())

    # -- the index ------------------------------------------------------------------------------------------
    def fit(self, train, valid=None) -> InfiniGram:
        if isinstance(train, str | TextPart) and self.vocabulary is None:
            self.vocabulary = Vocabulary.from_text(train)
        if self.vocabulary is None:
            raise SeqlabError("InfiniGram needs vocabulary=... to take symbol ids")
        same = isinstance(train, TextPart) and train.vocabulary.symbols == self.vocabulary.symbols
        x = train.ids if same else self.encode(train, source="training data")  # a store's memmap: read in chunks
        if len(x) < 2:
            raise SeqlabError(f"InfiniGram needs at least 2 training elements, got {len(x)}")
        self._index(x)
        return self

    def _index(self, x: torch.Tensor | np.ndarray) -> None:
        dtype = np.uint8 if self.V <= 256 else np.uint16
        if isinstance(x, torch.Tensor):  # ids given by the caller (a store's part is in range by construction)
            x = x.numpy() if x.dtype in (torch.uint8, torch.uint16) else x.numpy().astype(dtype)
            if len(x) and int(x.max()) >= self.V:
                raise SeqlabError(f"InfiniGram: symbol id {int(x.max())} is outside the vocabulary of {self.V}")
        self.index = open_index(x.astype(dtype, copy=False), self.V, self.saved_index)

    def check_fitted(self) -> None:
        if self.index is None:
            raise SeqlabError("this InfiniGram is not fitted yet: call fit(text) first")

    def _ids(self, data) -> np.ndarray:
        """A query's ids; a character never seen in training is the unknown symbol, which occurs nowhere."""
        return self.encode(data, unknown="map", source="query").numpy().astype(np.int64)

    def count(self, string) -> int:
        """How often ``string`` (text or ids) occurs in the training text."""
        self.check_fitted()
        lo, hi = self.index.find(self._ids(string))
        return max(0, hi - lo)

    def next_counts(self, history) -> np.ndarray:
        """(V,) counts of the symbols that follow ``history`` (text or ids) in the training text."""
        self.check_fitted()
        lo, hi = self.index.find(self._ids(history))
        return self.index.followers(lo, hi) if lo < hi else np.zeros(self.V)

    def infinigram(self, history) -> tuple[np.ndarray, int]:
        """Liu et al.'s infini-gram: (P(. | history) (V,) from the counts after the longest suffix of ``history``
        that occurs followed by something, that suffix's length). The empty suffix: the unigram frequencies."""
        self.check_fitted()
        h = self._ids(history)
        index, lo, hi, best = self.index, 0, self.index.n, (self.index.unigram, 0)
        for L in range(1, len(h) + 1):
            lo, hi = index.narrow(lo, hi, L - 1, int(h[len(h) - L]))
            if lo >= hi:
                break
            counts = index.followers(lo, hi)
            if counts.sum() > 0:
                best = (counts, L)
        return best[0] / best[0].sum(), best[1]

    def distribution(self, history: np.ndarray) -> np.ndarray:
        """P(. | history) over the vocabulary, (V,): the Witten-Bell interpolation of the module docstring.

        With ``merge_identical``, a suffix whose few occurrences all go on matching the history adds nothing
        until one stops: those suffix lengths are skipped in one comparison (``SuffixIndex.extension``), so a
        long repeated match (a duplicated document) costs one step, not one per symbol."""
        self.check_fitted()
        index, V = self.index, self.V
        p = np.full(V, 1.0 / V)
        counts = index.unigram
        limit = len(history) if self.max_length is None else min(self.max_length, len(history))
        backwards = np.asarray(history, dtype=np.int64)[::-1]
        lo, hi, L, previous_total = 0, index.n, 0, -1.0
        while True:
            total = counts.sum()
            if total > 0 and not (self.merge_identical and total == previous_total):
                distinct = np.count_nonzero(counts)
                p = (counts + distinct * p) / (total + distinct)
            previous_total = total
            if L == limit:
                return p
            if self.merge_identical and L > 0 and hi - lo <= EXTEND_BELOW:
                L += index.extension(lo, hi, L, backwards, limit - L)  # the same occurrences, the same counts
                if L == limit:
                    return p
            lo, hi = index.narrow(lo, hi, L, int(backwards[L]))
            L += 1
            if lo >= hi:  # s_L never occurs: nothing longer does either
                return p
            counts = index.followers(lo, hi)

    # -- SequenceModel ----------------------------------------------------------------------------------------
    def log_prob(self, x) -> torch.Tensor:
        self.check_fitted()
        ids = self.encode(x).numpy().astype(np.int64)
        out = np.empty(len(ids))
        for t in range(len(ids)):
            out[t] = self.distribution(ids[:t])[ids[t]]
        return torch.from_numpy(np.log(out))

    def initial_state(self) -> np.ndarray:
        return np.zeros(0, dtype=np.int64)

    def step(self, x_prev, state: np.ndarray):
        """state: the whole history so far (the model conditions on all of it)."""
        self.check_fitted()
        if x_prev is not None:
            state = np.append(state, int(x_prev))
        return torch.from_numpy(np.log(self.distribution(state))), state

    # -- persistence ------------------------------------------------------------------------------------------
    def to_config(self) -> dict:
        config = {"max_length": self.max_length, "merge_identical": self.merge_identical}
        return {"config": config, "vocabulary": self.vocabulary.to_json()}

    @classmethod
    def from_config(cls, config: dict) -> InfiniGram:
        return cls(**config["config"], vocabulary=Vocabulary.from_json(config["vocabulary"]))

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The training text as uint8 or uint16 ids (int64 before issue 31: both load); the index is in the cache
        and beside the model (``save_files``)."""
        return {"text": torch.from_numpy(np.ascontiguousarray(self.text))}

    def load_state_dict(self, tensors: dict[str, torch.Tensor]) -> None:
        if set(tensors) != {"text"}:
            raise RuntimeError(f"expected the tensor 'text', got {sorted(tensors)}")
        text = tensors["text"]
        if text.dim() != 1 or text.is_floating_point() or (len(text) and int(text.min()) < 0):
            raise RuntimeError("the tensor 'text' is not a sequence of symbol ids")
        try:
            self._index(text)
        finally:
            self.saved_index = None

    def save_files(self, directory: Path) -> None:
        """The index beside the model, ``directory/INDEX_DIR/KEY`` (``keep_beside``: hard links of the cache's)."""
        if self.index is not None:
            keep_beside(self.index, Path(directory))

    def files_at(self, directory: Path) -> None:
        """The next ``load_state_dict`` opens the index kept beside the model in ``directory`` first."""
        self.saved_index = Path(directory) / INDEX_DIR

    @classmethod
    def conformance_cases(cls) -> list[ConformanceCase]:
        return [
            ConformanceCase("unbounded", "text", lambda text: cls()),
            ConformanceCase("max length 2, unmerged", "text", lambda text: cls(max_length=2, merge_identical=False)),
        ]

    def describe(self) -> str:
        length = "unbounded" if self.max_length is None else f"at most {self.max_length}"
        if self.index is None:
            return f"InfiniGram(suffixes of {length} symbols, not fitted)"
        return f"InfiniGram(suffixes of {length} symbols, {self.index.n:,} training symbols, vocabulary {self.V})"
