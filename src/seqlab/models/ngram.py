"""``NGram``: the AR(tau) model of counts for discrete data, and ``MarkovChain`` (tau = 1).

    P(x_t | x_<t) = P(x_t | x_{t-tau} .. x_{t-1})      estimated from (tau + 1)-gram counts

Smoothing (``c`` raw counts, ``ctx`` the context, ``V`` the vocabulary size, ``P'`` the same model one
order lower, applied recursively down to the unigram):

- ``"mle"``:          c(ctx w) / c(ctx)
- ``"lidstone"``:     (c(ctx w) + gamma) / (c(ctx) + gamma V);  ``"laplace"`` is gamma = 1
- ``"witten_bell"``:  (c(ctx w) + N1+(ctx .) P'(w)) / (c(ctx) + N1+(ctx .))
- ``"kneser_ney"`` (interpolated): max(c*(ctx w) - D, 0) / c*(ctx) + D N*(ctx .) / c*(ctx) P'(w), where c*
  is the raw count at the highest order and the continuation count N1+(. ctx w) below it, and N*(ctx .) the
  number of symbols w with c*(ctx w) > 0.

A context never seen in training defers to the lower order (as NLTK does). With ``uniform_base=True``
(the default) the unigram level of Witten-Bell and Kneser-Ney is itself interpolated with the uniform
distribution 1/V (Chen & Goodman 1998), so that every symbol of the vocabulary, the unknown symbol
included, keeps a positive probability; ``uniform_base=False`` reproduces ``nltk.lm``, whose unigram
level gives probability 0 to any symbol it did not see (in the continuation sense, for Kneser-Ney).

Counts are kept as sorted int64 codes of the n-grams (base-V digits), so fitting is a few sorts and
scoring a few binary searches per order, vectorised over all positions. ``count_grams`` counts a large text
(a token store's memory-mapped ids) in bounded memory: tables for the low orders, range passes for the others.
"""

from __future__ import annotations

import numpy as np
import torch

from seqlab.base import ConformanceCase, SequenceModel
from seqlab.data.text import TextPart, Vocabulary, encode_symbols
from seqlab.distributions import Categorical
from seqlab.errors import SeqlabError

SMOOTHINGS = ("mle", "lidstone", "laplace", "witten_bell", "kneser_ney")


COUNT_CHUNK = 1 << 22  # positions whose codes are computed at once while counting
COUNT_BATCH = 1 << 25  # codes sorted at once while counting: with the counts kept, what bounds fit's memory
DENSE_CODES = 1 << 24  # up to this many possible k-grams (V^k), they are counted in a table: no sort at all


def count_grams(x: np.ndarray, k: int, V: int) -> tuple[np.ndarray, np.ndarray]:
    """(sorted distinct codes, counts) of the k-grams of ``x`` (T,) over ``V`` symbols, the code of
    ``x_i .. x_{i+k-1}`` being its base-``V`` number: ``np.unique(codes, return_counts=True)`` in bounded memory.
    ``x`` may be a memory-mapped uint8/uint16 array of any length: it is read ``COUNT_CHUNK`` positions at a time.

    A few possible k-grams (V^k <= ``DENSE_CODES``): one table of counts. Else in passes over ``x``, each keeping
    the codes of one range (bounds from quantiles of a sample of codes, so that a pass keeps about
    ``COUNT_BATCH``), each chunk reduced to its distinct codes with counts before they are merged: memory grows
    with the distinct k-grams of a range, never with the length of ``x``."""
    total = len(x) - k + 1
    if total <= 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)

    def codes(start: int, stop: int) -> np.ndarray:
        window = np.asarray(x[start : stop + k - 1]).astype(np.int64)
        code = window[: stop - start].copy()
        for j in range(1, k):
            code *= V
            code += window[j : j + stop - start]
        return code

    chunks = [(s, min(s + COUNT_CHUNK, total)) for s in range(0, total, COUNT_CHUNK)]
    if V**k <= DENSE_CODES:
        table = np.zeros(V**k, dtype=np.int64)
        for start, stop in chunks:
            table += np.bincount(codes(start, stop), minlength=V**k)
        grams = np.flatnonzero(table)
        return grams.astype(np.int64), table[grams]
    passes = -(-total // COUNT_BATCH)
    if passes == 1:
        return np.unique(codes(0, total), return_counts=True)
    positions = np.random.default_rng(0).integers(0, total, size=1 << 16)
    sample = np.zeros(len(positions), dtype=np.int64)
    for j in range(k):
        sample = sample * V + np.asarray(x[positions + j]).astype(np.int64)
    bounds = np.unique(np.quantile(sample, np.linspace(0, 1, passes + 1)[1:-1], method="lower"))
    edges = [None, *bounds.tolist(), None]
    grams, counts = [], []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        kept, numbers = [], []
        for start, stop in chunks:
            code = codes(start, stop)
            keep = np.ones(len(code), dtype=bool)
            if lo is not None:
                keep &= code >= lo
            if hi is not None:
                keep &= code < hi
            unique, number = np.unique(code[keep], return_counts=True)
            kept.append(unique)
            numbers.append(number)
        unique, number = np.concatenate(kept), np.concatenate(numbers)
        if not len(unique):  # a range the sample bounded that no code falls in
            continue
        order = np.argsort(unique, kind="stable")
        unique, number = unique[order], number[order]
        starts = np.flatnonzero(np.concatenate([[True], unique[1:] != unique[:-1]]))
        grams.append(unique[starts])
        counts.append(np.add.reduceat(number, starts))
    return np.concatenate(grams), np.concatenate(counts).astype(np.int64)


def _lookup(keys: np.ndarray, values: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """values[i] where keys[i] == query, else 0 (keys sorted)."""
    if len(keys) == 0:
        return np.zeros(len(queries), dtype=values.dtype)
    index = np.minimum(np.searchsorted(keys, queries), len(keys) - 1)
    return np.where(keys[index] == queries, values[index], 0)


class _Level:
    """Counts of the k-grams (contexts of length k - 1) and what the smoothing needs of them."""

    def __init__(self, grams: np.ndarray, counts: np.ndarray, V: int) -> None:
        self.grams, self.counts = grams, counts.astype(np.int64)  # sorted unique codes, raw counts
        self.contexts, self._starts = np.unique(grams // V, return_index=True)  # sorted because grams are
        # the smoothing's arithmetic is float64: keep float copies so that scoring converts nothing
        self.counts_float = self.counts.astype(np.float64)
        self.context_total = self._per_context(self.counts_float)  # c(ctx) = sum_w c(ctx w)
        context_distinct = np.diff(np.append(self._starts, len(grams)))
        self.context_distinct = context_distinct.astype(np.float64)  # N1+(ctx .)
        self.gram_context = grams // V  # the context code of each gram
        self.gram_context_index = np.repeat(np.arange(len(self.contexts)), context_distinct)
        self.continuation = None  # N1+(. gram), set from the level above
        self.context_continuation_total = None  # sum_w N1+(. ctx w)

    def _per_context(self, values: np.ndarray) -> np.ndarray:
        return np.add.reduceat(values, self._starts) if len(self._starts) else values[:0]

    def find(self, ctx: np.ndarray, gram: np.ndarray):
        """One binary search for both: (context index, context seen, gram index, gram seen).

        A gram's context owns a contiguous block of ``grams``; the search position of the gram lies in
        that block or just after it, so the context is found next to it."""
        n = len(self.grams)
        position = np.searchsorted(self.grams, gram)
        at = np.minimum(position, n - 1)
        before = np.maximum(position - 1, 0)
        context_at = self.gram_context[at] == ctx
        context_seen = context_at | (self.gram_context[before] == ctx)
        context_index = np.where(context_at, self.gram_context_index[at], self.gram_context_index[before])
        return context_index, context_seen, at, self.grams[at] == gram

    def set_continuation(self, continuation: np.ndarray) -> None:
        self.continuation = continuation.astype(np.float64)
        self.context_continuation_total = self._per_context(self.continuation)
        # N1+(. ctx w) > 0 for how many w: the continuation distribution's support
        self.context_continuation_distinct = self._per_context((self.continuation > 0).astype(np.float64))


class NGram(SequenceModel):
    element_name = "characters"
    """AR(``order``) model of counts over a character ``Vocabulary``: an (order + 1)-gram model.

    ``NGram(order=2, smoothing="kneser_ney")`` conditions each character on the two before it. At the start
    of a sequence the context is shorter and the model one order lower answers.

    Example::

        >>> model = NGram(order=2, smoothing="witten_bell").fit("abracadabra")
        >>> round(float(model.log_prob("abra").exp().prod()), 4) > 0
        True
    """

    kind = "ngram"

    def __init__(
        self,
        order: int = 5,
        smoothing: str = "kneser_ney",
        gamma: float = 0.1,
        discount: float = 0.75,
        uniform_base: bool = True,
        vocabulary: Vocabulary | None = None,
    ) -> None:
        if not isinstance(order, int) or order < 0:
            raise SeqlabError(f"NGram order must be a non-negative integer, got {order!r}")
        if smoothing not in SMOOTHINGS:
            raise SeqlabError(f"unknown smoothing {smoothing!r}; choose one of {', '.join(SMOOTHINGS)}")
        if smoothing == "lidstone" and gamma <= 0:
            raise SeqlabError(f"Lidstone smoothing needs gamma > 0, got {gamma}")
        if smoothing == "kneser_ney" and not 0 < discount < 1:
            raise SeqlabError(f"Kneser-Ney discount must be in (0, 1), got {discount}")
        self.order, self.smoothing, self.discount, self.uniform_base = order, smoothing, discount, uniform_base
        self.gamma = 1.0 if smoothing == "laplace" else gamma
        self.vocabulary = vocabulary
        self.levels: list[_Level] = []  # levels[k - 1] holds the k-grams, k = 1 .. order + 1

    # -- fitting ---------------------------------------------------------------------------------
    @property
    def V(self) -> int:
        return len(self.vocabulary)

    def encode(self, data, *, unknown: str = "error", source: str = "text") -> torch.Tensor:
        return encode_symbols(data, self.vocabulary, type(self).__name__, unknown, source)

    def decode(self, x: torch.Tensor) -> str:
        return self.vocabulary.decode(x.tolist())

    def fit(self, train, valid=None) -> NGram:
        """Count every k-gram of ``train`` (text or ids), k = 1 .. order + 1."""
        if isinstance(train, str | TextPart) and self.vocabulary is None:
            self.vocabulary = Vocabulary.from_text(train)
        x = self.encode(train, source="training data").numpy()
        n = self.order + 1
        if len(x) < n:
            raise SeqlabError(f"order {self.order} needs at least {n} training elements, got {len(x)}")
        if n * np.log(self.V) >= 62 * np.log(2):
            raise SeqlabError(f"order {self.order} is too high for a vocabulary of {self.V} symbols (codes overflow)")
        self.levels = [_Level(*count_grams(x, k, self.V), self.V) for k in range(1, n + 1)]
        self._prepare()
        return self

    def _prepare(self) -> None:
        """Continuation counts N1+(. gram) of every level below the top, from the level above."""
        for k in range(1, len(self.levels)):
            below, above = self.levels[k - 1], self.levels[k]
            suffixes = above.grams % (self.V**k)  # the last k symbols of each (k+1)-gram
            uniq, number = np.unique(suffixes, return_counts=True)
            below.set_continuation(_lookup(uniq, number, below.grams))

    # -- probabilities ---------------------------------------------------------------------------
    def _probs(self, contexts: np.ndarray, words: np.ndarray) -> np.ndarray:
        """P(words[i] | contexts[i]) for contexts (M, L) of one length L <= order, as float64 (M,)."""
        M, L = contexts.shape
        if not self.levels:
            raise SeqlabError("the model is not fitted yet")
        V = self.V
        n = L + 1  # the order of the recursion's top level here
        top = n == self.order + 1
        codes = [np.zeros(M, dtype=np.int64)]  # codes[j]: code of the last j context symbols
        for j in range(1, L + 1):
            codes.append(codes[j - 1] + contexts[:, L - j].astype(np.int64, copy=False) * V ** (j - 1))

        if self.smoothing in ("mle", "lidstone", "laplace"):
            level = self.levels[L]
            index, seen, gram_index, gram_seen = level.find(codes[L], codes[L] * V + words)
            gram_count = np.where(gram_seen, level.counts_float[gram_index], 0.0)
            total = np.where(seen, level.context_total[index], 0.0)
            if self.smoothing == "mle":
                with np.errstate(invalid="ignore", divide="ignore"):
                    return np.where(total > 0, gram_count / total, 0.0)
            return (gram_count + self.gamma) / (total + self.gamma * V)

        # interpolated: the unigram level first, then up to the top
        unigrams = self.levels[0]
        kn = self.smoothing == "kneser_ney"
        D = self.discount
        if kn and len(self.levels) > 1:
            number = _lookup(unigrams.grams, unigrams.continuation, words)
            total = float(unigrams.continuation.sum())
            distinct = float(np.count_nonzero(unigrams.continuation))
        else:  # Witten-Bell, or a Kneser-Ney model of order 0 (nothing to continue)
            number = _lookup(unigrams.grams, unigrams.counts_float, words)
            total = float(unigrams.counts.sum())
            distinct = float(len(unigrams.grams))
        if not self.uniform_base:
            p = number / total
        elif kn:
            p = np.maximum(number - D, 0.0) / total + D * distinct / total / V
        else:
            p = (number + distinct / V) / (total + distinct)

        for k in range(2, n + 1):  # level k: contexts of length k - 1
            level = self.levels[k - 1]
            ctx = codes[k - 1]
            index, seen, gram_index, gram_seen = level.find(ctx, ctx * V + words)
            distinct = np.where(seen, level.context_distinct[index], 0.0)
            if kn and not (top and k == n) and level.continuation is not None:
                number = np.where(gram_seen, level.continuation[gram_index], 0.0)
                total = np.where(seen, level.context_continuation_total[index], 0.0)
                # the interpolation weight counts the symbols the continuation counts give mass to (nltk counts
                # raw followers here, so its distribution sums above 1 when an n-gram occurs only at the start)
                distinct = np.where(seen, level.context_continuation_distinct[index], 0.0)
            else:
                number = np.where(gram_seen, level.counts_float[gram_index], 0.0)
                total = np.where(seen, level.context_total[index], 0.0)
            use = seen & (total > 0)
            safe_total = np.where(use, total, 1.0)
            if kn:
                alpha = np.maximum(number - D, 0.0) / safe_total
                gamma = D * distinct / safe_total
            else:
                alpha = number / (safe_total + distinct)
                gamma = distinct / (safe_total + distinct)
            p = np.where(use, alpha + gamma * p, p)
        return p

    def score(self, symbol: str, context: str = "") -> float:
        """P(symbol | context) as ``nltk.lm``'s ``score``: the last ``order`` symbols of the context count."""
        ctx = self.encode(context, source="context").numpy()[-self.order :] if self.order else np.zeros(0, int)
        w = self.encode(symbol, source="symbol").numpy()
        return float(self._probs(ctx[None, :].astype(np.int64), w[:1].astype(np.int64))[0])

    def check_fitted(self) -> None:
        if not self.levels:
            raise SeqlabError(f"this {type(self).__name__} is not fitted yet: call fit(text) first")

    def next_distribution(self, context_ids: np.ndarray) -> np.ndarray:
        """P(. | context) over the whole vocabulary, (V,)."""
        self.check_fitted()
        ctx = np.asarray(context_ids, dtype=np.int64)[-self.order :] if self.order else np.zeros(0, np.int64)
        return self._probs(np.repeat(ctx[None, :], self.V, axis=0), np.arange(self.V, dtype=np.int64))

    def log_prob(self, x) -> torch.Tensor:
        """log P(x_s | x_{s-order} .. x_{s-1}) for every position (shorter contexts at the start)."""
        self.check_fitted()
        ids = self.encode(x).numpy().astype(np.int64)
        T, tau = len(ids), self.order
        p = np.empty(T, dtype=np.float64)
        for s in range(min(tau, T)):  # the first positions see shorter contexts
            p[s] = self._probs(ids[None, :s], ids[s : s + 1])[0]
        if T > tau:
            windows = np.lib.stride_tricks.sliding_window_view(ids, tau + 1)  # (T - tau, tau + 1)
            p[tau:] = self._probs(windows[:, :tau], windows[:, tau])
        if self.smoothing == "mle" and np.any(p == 0):
            s = int(np.argmin(p > 0))
            context = self.vocabulary.decode(ids[max(0, s - tau) : s])
            raise SeqlabError(
                f"the unsmoothed (MLE) model gives probability 0 to {self.vocabulary.symbols[ids[s]]!r} "
                f"at position {s} after {context!r}; use a smoothed model"
            )
        with np.errstate(divide="ignore"):
            return torch.from_numpy(np.log(p))

    # -- streaming ---------------------------------------------------------------------------------
    def initial_state(self) -> tuple:
        return ()

    def step(self, x_prev, state: tuple):
        """state: the last ``order`` ids; returns the log-probabilities of the next symbol (V,)."""
        if x_prev is not None:
            state = (*state, int(x_prev))[-self.order :] if self.order else ()
        with np.errstate(divide="ignore"):
            return torch.from_numpy(np.log(self.next_distribution(np.array(state, dtype=np.int64)))), state

    @property
    def head(self) -> Categorical:
        return Categorical(self.V)

    # -- persistence --------------------------------------------------------------------------------
    def to_config(self) -> dict:
        return {
            "config": {
                "order": self.order,
                "smoothing": self.smoothing,
                "gamma": self.gamma,
                "discount": self.discount,
                "uniform_base": self.uniform_base,
            },
            "vocabulary": self.vocabulary.to_json(),
        }

    @classmethod
    def from_config(cls, config: dict) -> NGram:
        return cls(**config["config"], vocabulary=Vocabulary.from_json(config["vocabulary"]))

    def state_dict(self) -> dict[str, torch.Tensor]:
        out = {}
        for k, level in enumerate(self.levels, start=1):
            out[f"grams_{k}"] = torch.from_numpy(level.grams)
            out[f"counts_{k}"] = torch.from_numpy(level.counts)
        return out

    def load_state_dict(self, tensors: dict[str, torch.Tensor]) -> None:
        n = self.order + 1
        expected = {f"{name}_{k}" for k in range(1, n + 1) for name in ("grams", "counts")}
        if set(tensors) != expected:
            raise RuntimeError(f"expected tensors {sorted(expected)}, got {sorted(tensors)}")
        self.levels = [
            _Level(tensors[f"grams_{k}"].numpy(), tensors[f"counts_{k}"].numpy(), self.V) for k in range(1, n + 1)
        ]
        self._prepare()

    @classmethod
    def conformance_cases(cls) -> list[ConformanceCase]:
        return [
            ConformanceCase(f"order 2, {s}", "text", lambda text, s=s: cls(order=2, smoothing=s)) for s in SMOOTHINGS
        ]

    def describe(self) -> str:
        if not self.levels:
            return f"NGram(order={self.order}, {self.smoothing}, not fitted)"
        grams = sum(len(level.grams) for level in self.levels)
        return (
            f"NGram(order={self.order}, {self.smoothing}, vocabulary {self.V}, {grams:,} distinct n-grams of orders "
            f"1..{self.order + 1})"
        )
