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

Index: the suffix array of the *reversed* training text. A suffix of the history read backwards is a
prefix there, so the occurrences of ``s_{L+1}`` are a sub-range of those of ``s_L``: one narrowing step per
extra symbol. The symbol that follows an occurrence in the forward text precedes it in the reversed one.
"""

from __future__ import annotations

import bisect

import numpy as np
import torch

from seqlab.base import ConformanceCase, SequenceModel
from seqlab.data.text import TextPart, Vocabulary, encode_symbols
from seqlab.distributions import Categorical
from seqlab.errors import SeqlabError


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


class InfiniGram(SequenceModel):
    """Witten-Bell interpolation over every suffix length of the history that occurs in the training text.

    ``max_length=None`` (the default) puts no limit on the suffix length.

    Example::

        >>> model = InfiniGram().fit("to be or not to be, that is the question")
        >>> bool(torch.isfinite(model.log_prob("to be or not")).all())
        True
    """

    kind = "infinigram"

    def __init__(
        self, max_length: int | None = None, merge_identical: bool = True, vocabulary: Vocabulary | None = None
    ) -> None:
        if max_length is not None and (not isinstance(max_length, int) or max_length < 0):
            raise SeqlabError(f"max_length must be a non-negative integer or None, got {max_length!r}")
        self.max_length, self.merge_identical, self.vocabulary = max_length, merge_identical, vocabulary
        self.text: np.ndarray | None = None

    @property
    def V(self) -> int:
        return len(self.vocabulary)

    @property
    def head(self) -> Categorical:
        return Categorical(self.V)

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
        x = self.encode(train, source="training data").numpy().astype(np.int64)
        if len(x) < 2:
            raise SeqlabError(f"InfiniGram needs at least 2 training elements, got {len(x)}")
        self._index(x)
        return self

    def _index(self, x: np.ndarray) -> None:
        self.text = x
        reversed_text = x[::-1].copy()
        self._rsa = suffix_array(reversed_text)
        # as Python lists: the binary searches read single elements, which lists serve fastest
        self._rev = reversed_text.tolist()
        self._rsa_list = self._rsa.tolist()
        # the symbol after each occurrence in the forward text: the one before it in the reversed text
        self._follower = np.where(self._rsa > 0, reversed_text[np.maximum(self._rsa - 1, 0)], -1)
        self._unigram = np.bincount(x, minlength=self.V).astype(np.float64)  # every symbol follows the empty suffix

    def _narrow(self, lo: int, hi: int, depth: int, symbol: int) -> tuple[int, int]:
        """Within [lo, hi) (suffixes sharing their first ``depth`` symbols), those whose next one is ``symbol``."""
        rev, rsa, n = self._rev, self._rsa_list, len(self._rev)

        def key(i: int) -> int:
            j = rsa[i] + depth
            return rev[j] if j < n else -1

        return (
            bisect.bisect_left(range(hi), symbol, lo, hi, key=key),
            bisect.bisect_right(range(hi), symbol, lo, hi, key=key),
        )

    def _followers(self, lo: int, hi: int) -> np.ndarray:
        """Counts (V,) of the symbols that follow the occurrences in [lo, hi)."""
        nxt = self._follower[lo:hi]
        return np.bincount(nxt[nxt >= 0], minlength=self.V).astype(np.float64)

    def check_fitted(self) -> None:
        if self.text is None:
            raise SeqlabError("this InfiniGram is not fitted yet: call fit(text) first")

    def distribution(self, history: np.ndarray) -> np.ndarray:
        """P(. | history) over the vocabulary, (V,)."""
        if self.text is None:
            raise SeqlabError("InfiniGram is not fitted yet")
        V = self.V
        p = np.full(V, 1.0 / V)
        counts = self._unigram
        limit = len(history) if self.max_length is None else min(self.max_length, len(history))
        lo, hi, L, previous_total = 0, len(self._rev), 0, -1.0
        while True:
            total = counts.sum()
            if total > 0 and not (self.merge_identical and total == previous_total):
                distinct = np.count_nonzero(counts)
                p = (counts + distinct * p) / (total + distinct)
            previous_total = total
            if L == limit:
                return p
            lo, hi = self._narrow(lo, hi, L, int(history[len(history) - 1 - L]))
            L += 1
            if lo >= hi:  # s_L never occurs: nothing longer does either
                return p
            counts = self._followers(lo, hi)

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
        return {"text": torch.from_numpy(self.text)}

    def load_state_dict(self, tensors: dict[str, torch.Tensor]) -> None:
        if set(tensors) != {"text"}:
            raise RuntimeError(f"expected the tensor 'text', got {sorted(tensors)}")
        self._index(tensors["text"].numpy().astype(np.int64))

    @classmethod
    def conformance_cases(cls) -> list[ConformanceCase]:
        return [
            ConformanceCase("unbounded", "text", lambda text: cls()),
            ConformanceCase("max length 2, unmerged", "text", lambda text: cls(max_length=2, merge_identical=False)),
        ]

    def describe(self) -> str:
        length = "unbounded" if self.max_length is None else f"at most {self.max_length}"
        if self.text is None:
            return f"InfiniGram(suffixes of {length} symbols, not fitted)"
        return f"InfiniGram(suffixes of {length} symbols, {len(self.text):,} training symbols, vocabulary {self.V})"
