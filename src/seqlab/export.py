"""A trained model's ``step`` as an ONNX graph, to run without seqlab or torch (onnxruntime, any language).

The graph is the model's ``step`` for a batch of B independent sequences: the previous element and the state in,
the head's parameters of the next element and the next state out, every tensor named, B dynamic:

    LatentAR            (x_prev, h[, c])           -> (params, h_next[, c_next])   h, c (L, B, H), LSTM: c
    NeuralAR            (x_prev, window)           -> (params, window_next)        window (B, tau[, F])
    CausalTransformer   (x_prev, cache, filled)    -> (params, cache_next, filled_next)
                        cache (L, B, K, d_model), K = max(context - 1, 1); filled (B,) int64 in 0 .. context - 1
    NGram, MarkovChain  (x_prev[, window])         -> (params[, window_next])      a dense table of log P, one row
                                                                                   per window of the last order ids
    RandomWalk          (x_prev[, window])         -> (params[, window_next])      levels: the last season values
    LinearAR            (x_prev[, window, filled]) -> (params[, window_next, filled_next])   affine in the window
    GlobalAR            (x_prev, scale, phase, history, t, h[, c]) -> (params, history_next, t_next, h_next[, c_next])
                        scale, phase: the series' own (inputs, not state): one graph for every series of a panel
    NGram, higher orders (x_prev, window)          -> (params, window_next)        the backoff form in two hash
                                                                                   tables (NGramBackoffStep)
    GARCH               (x_prev[, values], 3 lags[, x_last][, seen]) -> (params, each _next)   the process's own
                        step and push (volatility.py, traced with xp=torch), the mean, the noise's head params
    ETS                 (x_prev, level, slope, season) -> (params, each _next)      ets_state's equations
    Pool                (x_prev, m0_..., m1_..., ...) -> (params, m0_..._next, ...) the members' graphs side by side

``x_prev`` is the previous element: ids (B,) int64 for text and mu-law audio (the start symbol ``V`` before the
first), values (B,) for a series (NaN: the start, or a gap), (B, 1 + C) with past covariates, frames (B, D) (a
row of NaN: the start). ``params`` (B, P) is what ``step`` returns: the head's parameters on the data's scale.
Every state input ``s`` has its output ``s_next`` to feed back; each starts filled with its port's ``initial``.
The first call takes the start element and the initial state, and gives the first element's parameters
(``step(None, initial_state())``).

The transformer's cache has a fixed length (an ONNX graph's shapes are fixed but for B): ``step`` keeps up to
``context - 1`` earlier inputs of each layer; here the last K slots hold them, right-aligned, and ``filled`` says
how many are real (the rest are masked out of attention), so the same ALiBi distances apply.

The generation graph (``chunk_graph``, ``seqlab export --chunk K``) runs K steps and the draw after each in one
call, from random numbers given as inputs, for the models of ids and of frames (docs/export.md): one call of
onnxruntime per K elements instead of one, and fewer nodes per step (``LatentARIdStep``, ``LatentARFrameStep``).

Beside the graph, what a caller needs (vocabulary or frame layout, standardisation, clamps, the head and how to
sample from it, the transform of a series) is one JSON object in the file's metadata under ``seqlab``
(``metadata``; docs/export.md documents every key).

Tracing uses torch's TorchScript exporter (``dynamo=False``), which needs torch only (the dynamo exporter also
needs onnxscript); the recurrence is traced from the reference cells (``seqlab.cells``: plain matrix products and
gates, every cell and both GRU resets). The metadata is appended to the serialized ``ModelProto`` as its field
``metadata_props``, so writing a file needs no onnx package either.
"""

from __future__ import annotations

import copy
import io
import itertools
import json
import math
import warnings
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch
from torch import nn

from seqlab.base import SequenceModel
from seqlab.distributions import Head, LogTransformed
from seqlab.errors import SeqlabError, Unsupported
from seqlab.models.element_codecs import FrameElements, MuLawElements, ScalarElements, TextElements
from seqlab.models.ets import ETS
from seqlab.models.ets_state import starred
from seqlab.models.garch import GARCH
from seqlab.models.global_ar import GlobalAR, features, lag_steps
from seqlab.models.latent_ar import LatentAR
from seqlab.models.linear_ar import LinearAR
from seqlab.models.neural_ar import NeuralAR
from seqlab.models.ngram import NGram
from seqlab.models.pool import Pool, member_view
from seqlab.models.random_walk import RandomWalk
from seqlab.models.transformer import CausalTransformer

FORMAT = "seqlab-onnx"
FORMAT_VERSION = 1
METADATA_KEY = "seqlab"  # the metadata_props entry holding the JSON
OPSET = 17
EXAMPLE_BATCH = 2  # traced at batch 2: a batch of 1 can be folded into the graph as a constant
NAN = "nan"  # JSON has no NaN: a fill value of NaN is written as this string
NEURAL = (LatentAR, NeuralAR, CausalTransformer, GlobalAR)
CLASSICAL = (NGram, LinearAR, RandomWalk, GARCH, ETS, Pool)  # NGram: MarkovChain too
ONNX_KINDS = tuple(c.kind for c in NEURAL) + ("markov", *(c.kind for c in CLASSICAL))
MAX_TABLE = 2**23  # probabilities in an n-gram's dense table (64 MB in float64): orders up to 2 on text
MAX_CHUNK = 256  # elements per call of a generation graph (unrolled: its node count grows with it)
MAX_ENTRIES = 2**22  # contexts and pairs of an n-gram's backoff form beyond (two hash slots of 16 bytes each)


@dataclass
class Port:
    """One named input or output: its shape (``"batch"`` where the batch dimension is), numpy dtype and meaning;
    a state input also names the output fed back into it (``feedback``) and the value it starts at (``initial``:
    a number, or ``"nan"``); an input that is not state (the global model's scale) has ``initial``, its default."""

    name: str
    shape: list
    dtype: str
    meaning: str
    feedback: str | None = None
    initial: float | int | str | list | None = None  # a list: one element's value, the same in every sequence

    @property
    def batch_axis(self) -> int:
        return self.shape.index("batch")

    def example(self, batch: int) -> torch.Tensor:
        """A tensor of this port at ``batch``, filled with its initial value (0 for inputs without one)."""
        shape = [batch if d == "batch" else d for d in self.shape]
        fill = math.nan if self.initial == NAN else (self.initial or 0)
        return torch.tensor(fill, dtype=getattr(torch, self.dtype)).expand(shape).clone()

    def to_json(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass
class StepGraph:
    """A module computing ``step`` for a batch: ``module(*inputs) -> outputs``, in the order of the ports."""

    module: nn.Module
    inputs: list[Port]
    outputs: list[Port]

    def examples(self, batch: int = EXAMPLE_BATCH) -> tuple[torch.Tensor, ...]:
        return tuple(p.example(batch) for p in self.inputs)


# -- the graphs ------------------------------------------------------------------------------------------------------


def _frozen(model: nn.Module) -> nn.Module:
    """A copy on the CPU in inference mode (no dropout): exporting leaves the caller's model untouched."""
    return copy.deepcopy(model).cpu().eval()


class LatentARStep(nn.Module):
    """``LatentAR.step`` for a batch: ``(x_prev (B[, F]), h (L, B, H)[, c]) -> (params (B, P), h_next[, c_next])``."""

    def __init__(self, model: LatentAR) -> None:
        super().__init__()
        self.model = _frozen(model)
        self.model.rnn.backend = "reference"  # the reference cells trace to plain ops, for every cell and reset
        self.lstm = model.config.cell == "lstm"

    def forward(self, x_prev: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        params, new = self.model(x_prev[:, None], tuple(state) if self.lstm else state[0])
        return (params[:, 0], *(new if self.lstm else (new,)))


class NeuralARStep(nn.Module):
    """``NeuralAR.step`` for a batch: the window of the last ``tau`` elements shifted by ``x_prev``, then the MLP.
    At the start the window is all start padding, which shifting the start element into leaves as it is."""

    def __init__(self, model: NeuralAR) -> None:
        super().__init__()
        self.model = _frozen(model)

    def forward(self, x_prev: torch.Tensor, window: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        window = torch.cat([window[:, 1:], x_prev[:, None].to(window.dtype)], dim=1)  # (B, tau[, F])
        return self.model.predict(window[:, None])[:, 0], window


class TransformerStep(nn.Module):
    """``CausalTransformer.step`` for a batch, with each layer's cache of earlier inputs held in K fixed slots
    (right-aligned; ``filled`` of them real): ``(x_prev, cache (L, B, K, d), filled (B,)) -> (params, cache_next,
    filled_next)``. Slot ``j`` is ``K - j`` positions back, the distance ALiBi charges, as in ``step``."""

    def __init__(self, model: CausalTransformer) -> None:
        super().__init__()
        self.model = _frozen(model)
        self.keep = model.config.context - 1  # what step keeps of each layer's inputs
        self.slots = max(self.keep, 1)  # ONNX shapes: one slot, always masked, when nothing is kept

    def forward(self, x_prev: torch.Tensor, cache: torch.Tensor, filled: torch.Tensor):
        m, K = self.model, self.slots
        h = m.elements(x_prev[:, None])  # (B, 1, d)
        j = torch.arange(K, device=h.device)
        distance = torch.cat([K - j, j.new_zeros(1)]).to(h.dtype)  # (K + 1,): the cached slots, then x_prev itself
        real = torch.cat([j[None, :] >= (K - filled)[:, None], torch.ones_like(filled[:, None], dtype=torch.bool)], 1)
        bias = (-m.slopes.to(h.dtype)[:, None] * distance)[None, :, None, :]  # (1, heads, 1, K + 1)
        bias = bias.masked_fill(~real[:, None, None, :], float("-inf"))  # (B, heads, 1, K + 1)
        caches = []
        for k, block in enumerate(m.blocks):
            keys = torch.cat([cache[k], h], dim=1)  # (B, K + 1, d)
            caches.append(keys[:, 1:])
            h = block(h, keys, bias)
        params = m.elements.head_params(m.out(m.norm(h)))[:, 0]
        return params, torch.stack(caches), torch.clamp(filled + 1, max=self.keep)


class GlobalARStep(nn.Module):
    """``GlobalAR.step`` for a batch of series, each at its own ``scale`` s_i and season ``phase`` (``step`` uses
    ``series_scale`` and phase 0): the scaled value ``x_prev / s_i`` joins the history of the last 2m scaled
    values, the index ``t`` of the value predicted next advances, and the features of ``seqlab.models.global_ar``
    go through the network; params on the series' scale. NaN in ``x_prev`` is the start (a panel has no gaps).
    A model on log values (``transform="log"``) takes ``log(x_prev / s_i)`` and gives its log-t (log-normal, ...)
    head's params of ``log x``, as ``step`` does."""

    def __init__(self, model: GlobalAR) -> None:
        super().__init__()
        if model.embedding is not None:
            raise Unsupported(f"{model.describe()}: a series embedding is not exported yet (docs/export.md)")
        self.model = _frozen(model)
        self.model.rnn.backend = "reference"
        self.lstm, self.m = model.config.cell == "lstm", model.config.season

    def forward(self, x_prev, scale, phase, history, t, *rnn):
        start = torch.isnan(x_prev)
        z = torch.log(x_prev / scale) if self.model.log else x_prev / scale  # what the network sees (to_z)
        shifted = torch.cat([history[:, 1:], z[:, None]], dim=1)  # (B, 2m)
        history = torch.where(start[:, None], history, shifted)
        t = torch.where(start, t, t + 1)
        lags = torch.stack([history[:, -k] for k in lag_steps(self.m)], -1)[:, None]  # (B, 1, 4), as _advance
        f, baseline = features(lags, t[:, None], phase[:, None], self.m)
        raw, state = self.model(f, None, tuple(rnn) if self.lstm else rnn[0])
        params = self.model.scaled_params(raw[:, 0], baseline[:, 0])
        out = self.model.head.rescale(params, 0.0, scale.to(params.dtype))
        return (out, history, t, *(state if self.lstm else (state,)))


class NGramStep(nn.Module):
    """``NGram.step`` (and ``MarkovChain``'s) for a batch, from a dense table of ``log P(next | the last order ids)``:
    the window of the last ``order`` ids is a row number in base ``V + 1``, the digit ``V`` standing for "before
    the start" (the row of a shorter context, as ``step`` uses at the start of a sequence)."""

    def __init__(self, model: NGram) -> None:
        super().__init__()
        self.order, V = model.order, model.V
        self.register_buffer("table", torch.from_numpy(ngram_table(model)))  # ((V + 1)^order, V)
        self.register_buffer("digits", (V + 1) ** torch.arange(self.order - 1, -1, -1))  # (order,)

    def forward(self, x_prev: torch.Tensor, *window: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if not self.order:  # the unigram: no state, the one row for every element of the batch
            return (self.table[torch.zeros_like(x_prev)],)
        ids = torch.cat([window[0][:, 1:], x_prev[:, None]], dim=1)  # (B, order)
        return self.table[(ids * self.digits).sum(1)], ids


def ngram_table(model: NGram) -> np.ndarray:
    """Row ``r`` (the window's ids as base-(V + 1) digits): ``log P(. | the ids after the last V)`` (V,), from
    ``next_distribution``; ``Unsupported`` past ``MAX_TABLE`` probabilities."""
    model.check_fitted()
    V, n = model.V, model.order
    if (V + 1) ** n * V > MAX_TABLE:
        raise Unsupported(
            f"{model.describe()}: its dense table would hold (V + 1)^order x V = {V + 1}^{n} x {V} = "
            f"{(V + 1) ** n * V:,} probabilities; ONNX export takes at most {MAX_TABLE:,} (a lower order)"
        )
    rows, memo = [], {}
    for window in itertools.product(range(V + 1), repeat=n):
        context = window[max((i + 1 for i, v in enumerate(window) if v == V), default=0) :]
        if context not in memo:
            memo[context] = model.next_distribution(np.array(context, dtype=np.int64))
        rows.append(memo[context])
    with np.errstate(divide="ignore"):  # an unsmoothed model's impossible symbols: log 0 = -inf, as step says
        return np.log(np.stack(rows))


class HashTable(nn.Module):
    """A fixed map of int64 keys (>= 0) to float64 values as two tensors, for a graph: open addressing, home slot
    ``(key mod size) x MIX mod size`` (``size`` a prime below 2^31, so the product fits int64) then the next ones
    (linear probing), every key within ``probes`` slots of its home, so a lookup is one ``Gather`` of ``probes``
    slots and a comparison (ONNX has no search op). The multiplication spreads consecutive keys (the pairs of one
    context are): with ``key mod size`` alone they took consecutive slots and runs of hundreds formed."""

    MIX = 2654435761  # Knuth's multiplicative constant (2^32 / golden ratio)

    def __init__(self, keys: np.ndarray, values: np.ndarray) -> None:
        super().__init__()
        self.size = _prime_at_least(2 * len(keys) + 1)  # half full: short probe runs
        if self.size >= 2**31:
            raise Unsupported(f"{len(keys):,} keys are too many for one hash table of a graph")
        self.mix = self.MIX % self.size or 1
        slots, stored = np.full(self.size, -1, dtype=np.int64), np.zeros(self.size)
        home = keys % self.size * self.mix % self.size
        longest = 0
        for key, value, h in zip(keys.tolist(), values.tolist(), home.tolist(), strict=True):
            at = h
            while slots[at % self.size] != -1:
                at += 1
            slots[at % self.size], stored[at % self.size] = key, value
            longest = max(longest, at - h)
        self.probes = longest + 1
        # the first probes - 1 slots again at the end, so a run that wraps around is read without a modulo
        self.register_buffer("slots", torch.from_numpy(np.concatenate([slots, slots[: self.probes - 1]])))
        self.register_buffer("stored", torch.from_numpy(np.concatenate([stored, stored[: self.probes - 1]])))

    def forward(self, keys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(found, value)`` of ``keys`` (...), the value 0 where not found."""
        home = torch.remainder(torch.remainder(keys, self.size) * self.mix, self.size)
        at = home[..., None] + torch.arange(self.probes)  # (..., probes)
        hit = self.slots[at] == keys[..., None]
        return hit.any(-1), torch.where(hit, self.stored[at], torch.zeros_like(self.stored[at])).sum(-1)


def _prime_at_least(n: int) -> int:
    n |= 1
    while any(n % d == 0 for d in range(3, math.isqrt(n) + 1, 2)):
        n += 2
    return n


BACKOFF = ("witten_bell", "kneser_ney")  # an unseen context defers to the next shorter one (ngram.py)


class NGramBackoffStep(nn.Module):
    """``NGram.step`` for a batch from the model's backoff form, for the orders whose dense table is too large:
    for every context ``c`` seen in training (of every length j = 0 .. order) a weight ``gamma(c)`` and, for
    every symbol ``w`` seen after it, ``alpha(c, w)``, with

        P(w | c) = alpha(c, w) + gamma(c) P_below(w)

    where ``P_below`` is ``P(. | c without its oldest symbol)`` for Witten-Bell and Kneser-Ney (the recursion
    down to the empty context, whose ``gamma`` is 0) and a constant row for the smoothings that read one level
    (Lidstone: the uniform 1/V of an unseen context; MLE: 0). A context never seen leaves ``P_below`` as it is.
    Contexts are keyed as the dense table's rows are (base V + 1, the digit V before the start), the pairs
    ``(c, w)`` as ``key(c) V + w``; both are ``HashTable``s. ``alpha`` and ``gamma`` are read off
    ``next_distribution`` (``ngram_backoff``), so every smoothing exports the same way."""

    def __init__(self, model: NGram) -> None:
        super().__init__()
        self.order, self.V = model.order, model.V
        self.backoff = model.smoothing in BACKOFF
        contexts, gammas, pairs, alphas, below = ngram_backoff(model)
        self.contexts, self.alphas = HashTable(contexts, gammas), HashTable(pairs, alphas)
        self.register_buffer("below", torch.from_numpy(below))  # (V,): P_below of the one-level smoothings
        n, V = self.order, self.V
        digits = (V + 1) ** np.arange(n - 1, -1, -1)  # (order,)
        shown = np.arange(n)[None, :] >= n - np.arange(n + 1)[:, None]  # (J, order): context j shows its last j ids
        self.register_buffer("digits", torch.from_numpy(np.where(shown, digits, 0)))  # (J, order)
        self.register_buffer("padding", torch.from_numpy(np.where(shown, 0, digits * V).sum(1)))  # (J,): V digits

    def forward(self, x_prev: torch.Tensor, window: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n, V = self.order, self.V
        ids = torch.cat([window[:, 1:], x_prev[:, None]], dim=1)  # (B, order)
        keys = (ids[:, None, :] * self.digits).sum(-1) + self.padding  # (B, J): the context of length j = 0..order
        # the symbols after the last start digit V: a longer context would read across the start
        length = n - (torch.arange(1, n + 1) * (ids == V)).amax(1)  # (B,)
        j = torch.arange(n + 1)
        wanted = j <= length[:, None] if self.backoff else j == length[:, None]  # (B, J)
        seen, gamma = self.contexts(keys)
        used = seen & wanted
        _, alpha = self.alphas(keys[..., None] * V + torch.arange(V))  # (B, J, V)
        p = self.below.expand(ids.shape[0], V)
        for level in range(n + 1):  # the empty context first, then each longer one
            step = alpha[:, level] + gamma[:, level, None] * p
            p = torch.where(used[:, level, None], step, p)
        return torch.log(p), ids


def ngram_backoff(model: NGram) -> tuple[np.ndarray, ...]:
    """``(context keys, gamma, pair keys, alpha, below)`` of ``NGramBackoffStep``, from the n-grams seen in
    training (the model's saved counts: ``grams_k``, base-V codes) and ``next_distribution``; ``Unsupported``
    past ``MAX_ENTRIES`` entries, or where a distribution is not of that form to 1e-12 (a smoothing this
    export does not know)."""
    model.check_fitted()
    V, n = model.V, model.order
    if (V + 1) ** n * V >= 2**62:
        raise Unsupported(f"{model.describe()}: its contexts' keys (V + 1)^order x V overflow int64")
    saved = model.state_dict()
    grams = [saved[f"grams_{k}"].numpy() for k in range(1, n + 2)]  # grams[j]: the (j + 1)-grams
    entries = sum(len(np.unique(g // V)) + len(g) for g in grams)
    if entries > MAX_ENTRIES:
        raise Unsupported(
            f"{model.describe()}: its backoff form holds {entries:,} contexts and pairs; ONNX export takes at most "
            f"{MAX_ENTRIES:,} (a lower order)"
        )
    backoff = model.smoothing in BACKOFF
    below = np.zeros(V) if backoff or model.smoothing == "mle" else np.full(V, 1.0 / V)
    keys, gammas, pair_keys, alphas = [], [], [], []
    previous: dict[tuple, np.ndarray] = {}
    for j, level in enumerate(grams):  # contexts of length j
        context_codes, first = np.unique(level // V, return_index=True)
        followers = np.split(level % V, first[1:]) if j else [np.arange(V)]  # the empty context: its whole row
        current = {}
        for code, after in zip(context_codes.tolist(), followers, strict=True):
            context = tuple(code // V**i % V for i in range(j - 1, -1, -1))
            p = model.next_distribution(np.array(context, dtype=np.int64))
            base = (previous[context[1:]] if j else np.zeros(V)) if backoff else below
            unseen = np.ones(V, dtype=bool)
            unseen[after] = False
            gamma = 0.0
            if unseen.any() and base[unseen].max() > 0:
                w = int(np.flatnonzero(unseen)[np.argmax(base[unseen])])
                gamma = float(p[w] / base[w])
            alpha = p[after] - gamma * base[after]
            rebuilt = gamma * base
            rebuilt[after] += alpha
            if np.abs(rebuilt - p).max() > 1e-12 * p.max():
                raise Unsupported(f"{model.describe()}: P(. | {context}) is not of the backoff form ONNX export uses")
            key = sum(d * (V + 1) ** (n - 1 - i) for i, d in enumerate((V,) * (n - j) + context))
            keys.append(key)
            gammas.append(gamma)
            pair_keys.extend((key * V + after).tolist())
            alphas.extend(alpha.tolist())
            if backoff:
                current[context] = p
        previous = current
    keys, pair_keys = np.array(keys, dtype=np.int64), np.array(pair_keys, dtype=np.int64)
    return keys, np.array(gammas), pair_keys, np.array(alphas), below


class RandomWalkStep(nn.Module):
    """``RandomWalk.step`` for a batch: params ``(mean, log sigma)``, the mean 0 on increments, else the value
    ``season`` steps back, the oldest of the window of the last ``season`` values (NaN until there are as many)."""

    def __init__(self, model: RandomWalk) -> None:
        super().__init__()
        self.differenced, self.log_sigma = model.differenced, math.log(model.sigma)

    def forward(self, x_prev: torch.Tensor, *window: torch.Tensor) -> tuple[torch.Tensor, ...]:
        log_sigma = torch.full_like(x_prev, self.log_sigma)
        if self.differenced:
            return (torch.stack([torch.zeros_like(x_prev), log_sigma], -1),)
        values = torch.cat([window[0][:, 1:], x_prev[:, None]], dim=1)  # (B, season)
        return torch.stack([values[:, 0], log_sigma], -1), values


class LinearARStep(nn.Module):
    """``LinearAR.step`` for a batch: after ``s`` values the head's params are affine in them, ``base[s] + sum_j
    window_j slope[s, j]``, with ``s = filled`` (up to the order p: the fitted AR, ``intercept + phi . lags``;
    below it the stationary process's exact conditional, as ``step`` has it). NaN in ``x_prev`` is the start:
    it leaves the state as it is (a linear AR model has no gaps)."""

    def __init__(self, model: LinearAR) -> None:
        super().__init__()
        self.p = model.order
        base, slope = linear_ar_tables(model)
        self.register_buffer("base", torch.from_numpy(base))  # (p + 1, P)
        self.register_buffer("slope", torch.from_numpy(slope))  # (p + 1, p, P)

    def forward(self, x_prev: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if not self.p:
            return (self.base[torch.zeros_like(x_prev, dtype=torch.long)],)
        window, filled = state
        start = torch.isnan(x_prev)
        window = torch.where(start[:, None], window, torch.cat([window[:, 1:], x_prev[:, None]], dim=1))  # (B, p)
        filled = torch.where(start, filled, torch.clamp(filled + 1, max=self.p))
        return self.base[filled] + (window[:, :, None] * self.slope[filled]).sum(1), window, filled


def linear_ar_tables(model: LinearAR) -> tuple[np.ndarray, np.ndarray]:
    """``base (p + 1, P)`` and ``slope (p + 1, p, P)``: the params after ``s`` values are ``base[s] + sum_j
    h_j slope[s, p - s + j]`` (the values right-aligned in the window), read off ``step`` itself at zeros and at
    each unit vector (the mean is linear in the values, the spread does not depend on them)."""
    p = model.order

    def params(history: np.ndarray) -> np.ndarray:
        if not len(history):
            return model.step(None, model.initial_state())[0].double().numpy()
        return model.step(float(history[-1]), tuple(float(v) for v in history[:-1]))[0].double().numpy()

    base = np.stack([params(np.zeros(s)) for s in range(p + 1)])
    slope = np.zeros((p + 1, p, base.shape[1]))
    for s in range(1, p + 1):
        for j in range(s):
            slope[s, p - s + j] = params(np.eye(s)[j]) - base[s]
    return base, slope


class GARCHStep(nn.Module):
    """``GARCH.step`` for a batch: the mean from the last ``k`` values (NaN before the sample: the mean's level),
    the variance from the process's own recursion (``process.step`` and ``process.push``, traced with
    ``xp=torch``: the equations are written once, in ``seqlab.models.volatility``), the head's params from the
    noise law. The variance moves once ``k`` values are seen (``seen``), as in ``step``. NaN in ``x_prev`` is the
    start and leaves the state as it is (GARCH has no gaps); GARCH-X's ``x_prev`` is ``(value, x)``."""

    def __init__(self, model: GARCH) -> None:
        super().__init__()
        model.initial_state()  # a fitted model, or its own one-line error
        likelihood = model.likelihood
        self.mean, self.process, self.noise = likelihood.mean, likelihood.process, likelihood.noise
        mp, vp, self.noise_params = likelihood.split(model.params)
        self.mean_params, self.process_params = mp.tolist(), vp.tolist()
        self.level = self.mean.unconditional(mp)  # what lags before the sample are taken to be
        self.k, self.exogenous = model.config.lags, bool(self.process.exogenous)

    def predict(self, values, lags, x_last) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and variance (B,) of the next value, as ``GARCH._predict``."""
        like = lags[-1][0]
        if not self.mean_params:
            mu = torch.zeros_like(like)
        elif not self.k:
            mu = torch.full_like(like, self.mean_params[0])
        else:
            known = torch.where(torch.isnan(values), torch.full_like(values, self.level), values)  # (B, k)
            mu = self.mean_params[0] + (known * torch.tensor(self.mean_params[1:], dtype=known.dtype)).sum(1)
        return mu, self.process.step(self.process_params, lags, x_last, xp=torch)

    def forward(self, x_prev: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        state = list(state)
        values = state.pop(0) if self.k else None
        lags = [[t[:, i] for i in range(t.shape[1])] for t in state[:3]]  # newest first, each (B,)
        x_last = state[3] if self.exogenous else None
        seen = state[-1] if self.k else None
        value = x_prev[:, 0] if self.exogenous else x_prev
        start = torch.isnan(value)
        mu, sigma2 = self.predict(values, lags, x_last)
        moved = ~start if not self.k else ~start & (seen >= self.k)
        pushed = self.process.push(lags, value - mu, sigma2, xp=torch)
        pairs = zip(pushed, state[:3], strict=True)
        tensors = [torch.where(moved[:, None], torch.stack(new, 1), old) for new, old in pairs]
        lags = [[t[:, i] for i in range(t.shape[1])] for t in tensors]
        out = []
        if self.k:
            values = torch.where(start[:, None], values, torch.cat([value[:, None], values[:, :-1]], 1))
            out.append(values)
        out += tensors
        if self.exogenous:
            x_last = torch.where(start, x_last, x_prev[:, 1])
            out.append(x_last)
        if self.k:
            out.append(torch.where(start, seen, torch.clamp(seen + 1, max=self.k)))
        mu, sigma2 = self.predict(values, lags, x_last)
        return (self.noise.head_params(mu, sigma2, self.noise_params), *out)


class ETSStep(nn.Module):
    """``ETS.step`` for a batch: the state ``(level, slope, season (B, m) oldest first)`` moved by ``x_prev`` with
    ``ets_state.recursion``'s equations (``beta*``, ``gamma*``), then the next value's ``(mu, log sd)``. NaN in
    ``x_prev`` is the start and leaves the state as it is (ETS has no gaps). A form without a season has one
    season slot, 0, and ``gamma* = 0``; a multiplicative season moves by the form's ``season_update``."""

    def __init__(self, model: ETS) -> None:
        super().__init__()
        model.initial_state()  # a fitted model, or its own one-line error
        self.form, self.phi, self.sigma = model.form, model.params.phi, model.params.sigma
        self.alpha, self.beta, self.gamma = starred(model.params)

    def forward(self, x_prev, level, slope, season) -> tuple[torch.Tensor, ...]:
        multiplicative = self.form.season == "M"
        s = season[:, 0]
        b = self.phi * slope
        base = level + b
        y = x_prev
        new_level = self.alpha * (y / s if multiplicative else y - s) + (1 - self.alpha) * base
        if self.form.hyndman_season:  # Hyndman et al.'s update: y / (l + phi b) with gamma = gamma* (1 - alpha)
            gamma = self.gamma * (1 - self.alpha)
            new_s = gamma * (y / base) + (1 - gamma) * s
        else:
            new_s = self.gamma * (y / new_level if multiplicative else y - new_level) + (1 - self.gamma) * s
        new_slope = self.beta * (new_level - level) + (1 - self.beta) * b
        start = torch.isnan(x_prev)
        level = torch.where(start, level, new_level)
        slope = torch.where(start, slope, new_slope)
        season = torch.where(start[:, None], season, torch.cat([season[:, 1:], new_s[:, None]], 1))
        base = level + self.phi * slope
        mu = base * season[:, 0] if multiplicative else base + season[:, 0]
        sd = torch.full_like(mu, self.sigma) if self.form.error == "A" else mu.abs() * self.sigma
        return torch.stack([mu, sd.log()], -1), level, slope, season


class PoolStep(nn.Module):
    """``Pool.step`` for a batch: every member's graph side by side, each fed what it reads of the row
    (``pool.member_view``: the whole row for members that read covariates, the value column for the rest), their
    params concatenated in float64 as the ``LinearPool`` head reads them; the weights are in the metadata."""

    def __init__(self, graphs: list[StepGraph], reads_covariates: list[bool]) -> None:
        super().__init__()
        self.members = nn.ModuleList(g.module for g in graphs)
        self.x_ports = [g.inputs[0] for g in graphs]
        self.counts = [len(g.inputs) - 1 for g in graphs]
        self.reads = list(reads_covariates)

    def forward(self, x_prev: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        params, states, at = [], [], 0
        for member, port, count, reads in zip(self.members, self.x_ports, self.counts, self.reads, strict=True):
            given = member_view(x_prev, reads).to(getattr(torch, port.dtype))
            out = member(given, *state[at : at + count])
            at += count
            params.append(out[0].to(torch.float64))
            states += out[1:]
        return (torch.cat(params, -1), *states)


def step_graph(model: SequenceModel) -> StepGraph:
    """The ONNX-exportable ``step`` of ``model`` with its ports; ``Unsupported`` for a model without one."""
    if not isinstance(model, NEURAL + CLASSICAL):
        raise Unsupported(
            f"{type(model).__name__} has no ONNX graph (ONNX export covers {', '.join(ONNX_KINDS)}; "
            "docs/export.md lists what each kind exports)"
        )
    if isinstance(model, NGram):
        model.check_fitted()  # an unfitted one has no vocabulary, so no head to describe
    x, dtype = _element_port(model), _float_name(model)
    params = Port("params", ["batch", model.head.num_params], dtype, "the head's parameters of the next element")
    states: list[Port] = []
    if isinstance(model, LatentAR):
        c = model.config
        shape = [c.num_layers, "batch", c.hidden_size]
        states = [Port("h", shape, dtype, "hidden state of every layer", "h_next", 0)]
        if c.cell == "lstm":
            states.append(Port("c", shape, dtype, "cell state of every layer", "c_next", 0))
        module: nn.Module = LatentARStep(model)
    elif isinstance(model, NeuralAR):
        states = [_window(x, model.config.window)]
        module = NeuralARStep(model)
    elif isinstance(model, CausalTransformer):
        c, module = model.config, TransformerStep(model)
        shape = [c.num_layers, "batch", module.slots, c.d_model]
        meaning = "each layer's input at the last K positions, right-aligned (the last `filled` slots are real)"
        states = [
            Port("cache", shape, dtype, meaning, "cache_next", 0),
            Port("filled", ["batch"], "int64", f"real slots of the cache, 0 .. {c.context - 1}", "filled_next", 0),
        ]
    elif isinstance(model, GlobalAR):
        module, c = GlobalARStep(model), model.config
        x = Port("x_prev", ["batch"], "float64", "previous value (NaN: the start of the series)", initial=NAN)
        scale = float(model.series_scale)
        meaning = f"the series' scale s_i, the mean |x| of its last {c.context} values before the forecast origin "
        meaning += f"(1 if all 0; step uses series_scale, {scale:g})"
        fixed = [
            Port("scale", ["batch"], "float64", meaning, None, scale),
            Port("phase", ["batch"], "int64", "the season position of the series' first value", None, 0),
        ]
        shape = [c.num_layers, "batch", c.hidden_size]
        states = [
            Port("history", ["batch", 2 * c.season], "float64", "the last 2m values / scale", "history_next", NAN),
            Port("t", ["batch"], "int64", "the index in the series of the value predicted next", "t_next", 0),
            Port("h", shape, dtype, "hidden state of every layer", "h_next", 0),
        ]
        if c.cell == "lstm":
            states.append(Port("c", shape, dtype, "cell state of every layer", "c_next", 0))
        outputs = [params] + [Port(s.feedback, s.shape, s.dtype, f"the next {s.name}") for s in states]
        return StepGraph(module, [x, *fixed, *states], outputs)
    elif isinstance(model, GARCH):
        module, process, k = GARCHStep(model), model.process, model.config.lags
        if process.exogenous:
            meaning = "previous value and its exogenous variance (NaN: the start)"
            x = Port("x_prev", ["batch", 2], dtype, meaning, initial=NAN)
        lags = process.initial(model.backcast)
        m = len(lags[0])
        if k:
            meaning = f"the last {k} values, newest first (NaN before the sample: the mean's level)"
            states.append(Port("values", ["batch", k], dtype, meaning, "values_next", NAN))
        for name, value in zip(process.lag_names, lags, strict=True):
            meaning = f"the variance recursion's lags of {name}, newest first"
            states.append(Port(name, ["batch", m], dtype, meaning, f"{name}_next", float(value[0])))
        if process.exogenous:
            meaning = "the last exogenous variance"
            states.append(Port("x_last", ["batch"], dtype, meaning, "x_last_next", float(model.backcast_x)))
        if k:
            meaning = f"values seen, at most {k} (the variance moves once {k} are)"
            states.append(Port("seen", ["batch"], "int64", meaning, "seen_next", 0))
    elif isinstance(model, ETS):
        module, (level, slope, season) = ETSStep(model), model.initial_state()
        states = [
            Port("level", ["batch"], dtype, "the level l", "level_next", float(level)),
            Port("slope", ["batch"], dtype, "the slope b (0 without a trend)", "slope_next", float(slope)),
            Port(
                "season",
                ["batch", len(season)],
                dtype,
                "the last m seasons, oldest (the next value's) first",
                "season_next",
                [float(v) for v in season],
            ),
        ]
    elif isinstance(model, Pool):
        return _pool_graph(model, params)
    elif isinstance(model, NGram):
        dense = (model.V + 1) ** model.order * model.V <= MAX_TABLE
        module = NGramStep(model) if dense else NGramBackoffStep(model)
        states = [_window(x, model.order)] if model.order else []
    elif isinstance(model, RandomWalk):
        model.step(None, model.initial_state())  # a fitted model, or its own one-line error
        module = RandomWalkStep(model)
        states = [] if model.differenced else [_window(x, model.season)]
    else:
        module = LinearARStep(model)
        if model.order:
            meaning = "the last values, oldest first, right-aligned (the last `filled` are real)"
            states = [
                Port("window", ["batch", model.order], dtype, meaning, "window_next", 0),
                Port("filled", ["batch"], "int64", f"values seen, at most {model.order}", "filled_next", 0),
            ]
    outputs = [params] + [Port(s.feedback, s.shape, s.dtype, f"the next {s.name}") for s in states]
    return StepGraph(module, [x, *states], outputs)


# -- the generation graph: several steps and their draws per call ------------------------------------------------


FUSED = {"lstm": torch.lstm, "gru": torch.gru, "rnn": torch.rnn_tanh}  # torch's fused recurrences


def fused_step(cell: str, x: torch.Tensor, state: tuple, weights: list[torch.Tensor]) -> tuple[torch.Tensor, list]:
    """One step of a stack of layers (``weights``: W_ih, W_hh, b_ih, b_hh per layer) through torch's fused
    function, which the exporter writes as ONNX's LSTM, GRU (the reset after) or RNN op, one node per layer; time
    first, so no transposes around it. ``x`` (B, I) -> (the top layer's h (B, H), the new state's tensors)."""
    given = state if cell == "lstm" else state[0]
    top, *new = FUSED[cell](x[None], given, weights, True, len(weights) // 4, 0.0, False, False, False)
    return top[0], new


class LatentARIdStep(nn.Module):
    """``LatentAR.step`` of ids as the generation graph runs it, for speed (one call of the graph is dozens of
    steps, so nodes per step count): the recurrence through torch's fused ``lstm`` / ``gru`` / ``rnn_tanh``, which
    the exporter writes as ONNX's LSTM, GRU and RNN ops (one node per layer instead of a dozen; the GRU with the
    reset before has none and keeps the reference cells), and the output layer's view of the previous element
    folded into a table (V + 1, V), as ``seqlab.streaming`` folds it, with ``never_drawn``'s column at -inf."""

    def __init__(self, model: LatentAR, never_drawn: int | None) -> None:
        super().__init__()
        self.model = _frozen(model)
        self.fused = self.model.rnn.torch_supports()
        self.model.rnn.backend = "reference"  # where not fused: the cells trace to plain ops
        H = model.config.hidden_size
        with torch.no_grad():
            weight, embedding = self.model.out.weight, self.model.elements.embedding.weight
            table = embedding @ weight[:, H:].T + self.model.out.bias
            if never_drawn is not None:
                table[:, never_drawn] = -math.inf
        self.register_buffer("out_h", weight[:, :H].T.contiguous())  # (H, V)
        self.register_buffer("table", table)  # (V + 1, V)

    def forward(self, x_prev: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        rnn, e = self.model.rnn, self.model.elements.embedding(x_prev)  # (B, E)
        if not self.fused:
            top, new = rnn(e[:, None], state if rnn.cell == "lstm" else state[0])
            top, new = top[:, 0], new if rnn.cell == "lstm" else (new,)
        else:
            top, new = fused_step(rnn.cell, e, state, [w for cell in rnn.cells for w in cell.weights()])
        return (top @ self.out_h + self.table[x_prev], *new)


class LatentARFrameStep(nn.Module):
    """``LatentAR.step`` of frames as the generation graph runs it, with fewer nodes per step (as
    ``LatentARIdStep``): the embedding of (standardised values, missing flag) is linear, so it folds into the first
    layer's input weights and into the output layer (``seqlab.streaming.FrameSampler`` folds it the same way); the
    head's rescaling to the data's scale, affine in each parameter (means scaled and shifted, log sigmas shifted),
    folds into the output layer too; the recurrence runs through torch's fused functions (``fused_step``). Only for
    a cell torch has: the GRU with the reset before keeps ``LatentARStep``."""

    def __init__(self, model: LatentAR) -> None:
        super().__init__()
        m, H = _frozen(model), model.config.hidden_size
        self.cell, self.layers = m.rnn.cell, m.rnn.num_layers
        elements = m.elements
        with torch.no_grad():
            W_e, b_e = elements.embedding.weight, elements.embedding.bias  # (E, D + 1), (E,)
            weights = [w.clone() for cell in m.rnn.cells for w in cell.weights()]  # per layer: W_ih, W_hh, b_ih, b_hh
            weights[0], weights[2] = weights[0] @ W_e, weights[0] @ b_e + weights[2]
            W_out, b_out = m.out.weight, m.out.bias  # (P, H + E)
            raw = torch.cat([W_out[:, :H], W_out[:, H:] @ W_e], 1)  # (P, H + D + 1)
            raw_bias = W_out[:, H:] @ b_e + b_out
            zero = elements.head_params(torch.zeros_like(raw_bias))  # the rescaling, read off at 0 and 1
            slope = elements.head_params(torch.ones_like(raw_bias)) - zero
        for i, w in enumerate(weights):
            self.register_buffer(f"recurrent_{i}", w)
        self.register_buffer("out_weight", (slope[:, None] * raw).T.contiguous())  # (H + D + 1, P)
        self.register_buffer("out_bias", slope * raw_bias + zero)
        self.register_buffer("location", elements.location.clone())
        self.register_buffer("scale", elements.scale.clone())

    def forward(self, x_prev: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        missing = torch.isnan(x_prev).any(-1, keepdim=True)
        values = torch.where(missing, torch.zeros_like(x_prev), (x_prev - self.location) / self.scale)
        f = torch.cat([values, missing.to(values.dtype)], -1)  # (B, D + 1)
        top, new = fused_step(self.cell, f, state, [getattr(self, f"recurrent_{i}") for i in range(4 * self.layers)])
        return (torch.cat([top, f], -1) @ self.out_weight + self.out_bias, *new)


class IdChunk(nn.Module):
    """``chunk`` steps of a model of ids (text, mu-law), each followed by the draw of ``seqlab.streaming``'s
    sampler, in one graph: one call per ``chunk`` elements instead of one per element. After each step the id is
    ``given``'s where that is >= 0 (a prompt), else the one whose interval of the CDF of softmax(logits / T) holds
    the uniform number ``u`` (float64, compared in float64 as the NumPy sampler compares), never ``never_drawn``
    (None: the step's logits already exclude it)."""

    def __init__(self, step: nn.Module, vocabulary_size: int, never_drawn: int | None, dtype: str) -> None:
        super().__init__()
        self.step, self.last, self.dtype = step, vocabulary_size - 1, getattr(torch, dtype)
        self.masked = never_drawn is not None
        mask = torch.zeros(vocabulary_size)
        if never_drawn is not None:
            mask[never_drawn] = -math.inf
        self.register_buffer("never", mask)

    def forward(self, x_prev: torch.Tensor, *rest: torch.Tensor) -> tuple[torch.Tensor, ...]:
        *state, given, uniforms, temperature = rest
        # position first, so each step takes its column in one node (a Gather)
        given, uniforms, drawn = given.T, uniforms.T[:, :, None], []
        temperature = temperature[:, None].to(self.dtype)  # the logits' dtype, as NumPy divides float32 logits
        for k in range(given.shape[0]):  # unrolled when traced: the chunk length is fixed in the graph
            logits, *state = self.step(x_prev, *state)
            scaled = ((logits + self.never.to(logits.dtype)) if self.masked else logits) / temperature
            cdf = torch.cumsum(torch.exp(scaled - scaled.amax(-1, keepdim=True)), -1).double()
            index = (cdf <= uniforms[k] * cdf[:, -1:]).sum(-1)
            x_prev = torch.where(given[k] >= 0, given[k], torch.clamp(index, max=self.last))
            drawn.append(x_prev)
        return (torch.stack(drawn, 1), *state)


class FrameChunk(nn.Module):
    """``chunk`` steps of a model of frames whose head is a Gaussian or a mixture per continuous dimension, each
    followed by ``FrameSampler.draw`` (in float64, as there) from the numbers given: per continuous dimension a
    component where the weights' CDF first reaches ``uniforms`` (a mixture), then mu + T sigma ``normals``; per
    binary dimension 1 where ``coins`` < sigmoid(logit / T); then the clamp to the training range [low, high]."""

    def __init__(self, step: nn.Module, model: SequenceModel) -> None:
        super().__init__()
        head = model.head
        self.step, self.p, self.K = step, head.p, head.components
        self.n = len(head.continuous) * head.p  # the continuous dimensions' params, then one logit per binary one
        self.mixture, self.x_dtype = head.per_dimension.kind == "mixture", next(model.parameters()).dtype
        self.register_buffer("continuous", torch.tensor(head.continuous, dtype=torch.long))
        self.register_buffer("binary", torch.tensor(head.binary, dtype=torch.long))
        self.register_buffer("order", head.order.clone())  # continuous then binary values -> dimension order
        self.register_buffer("low", model.elements.low.detach().double().clone())
        self.register_buffer("high", model.elements.high.detach().double().clone())

    def forward(self, x_prev: torch.Tensor, *rest: torch.Tensor) -> tuple[torch.Tensor, ...]:
        state, numbers, temperature = rest[: -3 - self.mixture], rest[-3 - self.mixture : -1], rest[-1]
        normals, coins, uniforms = numbers[0], numbers[-1], numbers[1] if self.mixture else None
        t_continuous, t_binary = temperature[:, self.continuous], temperature[:, self.binary]
        drawn = []
        for k in range(normals.shape[1]):
            params, *state = self.step(x_prev, *state)
            params = params.double()
            theta = params[:, : self.n].reshape(params.shape[0], len(self.continuous), self.p)
            mu, log_sigma = theta[..., 0], theta[..., 1]
            if self.mixture:
                K = self.K
                w = torch.exp(theta[..., :K] - theta[..., :K].amax(-1, keepdim=True))
                cdf = torch.cumsum(w, -1) / w.sum(-1, keepdim=True)
                component = torch.clamp((cdf < uniforms[:, k, :, None]).sum(-1), max=K - 1)[..., None]
                mu = torch.gather(theta[..., K : 2 * K], -1, component)[..., 0]
                log_sigma = torch.gather(theta[..., 2 * K :], -1, component)[..., 0]
            values = mu + t_continuous * torch.exp(log_sigma) * normals[:, k]
            voiced = (coins[:, k] < torch.sigmoid(params[:, self.n :] / t_binary)).double()
            frame = torch.cat([values, voiced], -1)[:, self.order]
            frame = torch.minimum(torch.maximum(frame, self.low), self.high)
            drawn.append(frame)
            x_prev = frame.to(self.x_dtype)
        return (torch.stack(drawn, 1), *state)


def chunk_graph(model: SequenceModel, chunk: int) -> StepGraph:
    """The generation graph of ``model``: ``chunk`` steps and the draw after each per call (``IdChunk``,
    ``FrameChunk``), the random numbers given as inputs; ``Unsupported`` for a model whose draws are not in a
    graph (a series head: its draws need torch's or scipy's samplers)."""
    if not isinstance(chunk, int) or isinstance(chunk, bool) or not 1 <= chunk <= MAX_CHUNK:
        raise SeqlabError(f"the chunk length must be an integer from 1 to {MAX_CHUNK}, got {chunk!r}")
    step = step_graph(model)
    head, dtype = model.head, step.outputs[0].dtype
    states = step.inputs[1:]
    outputs = step.outputs[1:]
    if head.discrete:
        never = elements_json(model).get("never_drawn")
        if isinstance(model, LatentAR):  # the model of seqlab's fast sampler: as fast a graph as it can be
            module: nn.Module = IdChunk(LatentARIdStep(model, never), head.num_params, None, dtype)
        else:
            module = IdChunk(step.module, head.num_params, never, dtype)
        numbers = [
            Port("given", ["batch", chunk], "int64", "the element at each position if >= 0 (a prompt), -1: drawn"),
            Port("uniforms", ["batch", chunk], "float64", "u ~ U(0, 1) of each drawn element (unused where given)"),
            Port("temperature", ["batch"], "float64", "T of each sequence"),
        ]
        drawn = Port("ids", ["batch", chunk], "int64", "the elements, given or drawn, each fed to the next step")
    elif head.kind == "frames" and head.per_dimension.kind in ("gaussian", "mixture"):
        fast = isinstance(model, LatentAR) and model.rnn.torch_supports()
        module = FrameChunk(LatentARFrameStep(model) if fast else step.module, model)
        Dc, Db = len(head.continuous), len(head.binary)
        numbers = [Port("normals", ["batch", chunk, Dc], "float64", "eps ~ N(0, 1) of each continuous dimension")]
        if head.per_dimension.kind == "mixture":
            meaning = "u ~ U(0, 1) choosing each continuous dimension's component"
            numbers.append(Port("uniforms", ["batch", chunk, Dc], "float64", meaning))
        numbers += [
            Port("coins", ["batch", chunk, Db], "float64", "u ~ U(0, 1) of each binary dimension"),
            Port("temperature", ["batch", head.dims], "float64", "T of each dimension"),
        ]
        drawn = Port("frames", ["batch", chunk, head.dims], "float64", "the chunk's frames, each fed to the next step")
    else:
        raise Unsupported(
            f"{model.describe()}: a generation graph draws ids (text, mu-law) or frames of a Gaussian or mixture "
            "head; export its step graph and draw outside it"
        )
    return StepGraph(module, [step.inputs[0], *states, *numbers], [drawn, *outputs])


def _pool_graph(model: Pool, params: Port) -> StepGraph:
    """The members' graphs side by side; member i's state ports prefixed ``m{i}_``."""
    model.initial_state()  # a fitted pool, or its own one-line error
    graphs = []
    for name, member in zip(model.names, model.members, strict=True):
        try:
            graphs.append(step_graph(member))
        except Unsupported as e:
            raise Unsupported(f"pool member {name}: {e}") from None
    covariates = model.num_covariates
    shape = ["batch", 1 + covariates] if covariates else ["batch"]
    meaning = "previous value" + (f" and its {covariates} covariates" if covariates else "") + " (NaN: the start)"
    x = Port("x_prev", shape, "float64", meaning, initial=NAN)
    states, outputs = [], []
    for i, graph in enumerate(graphs):
        for port in graph.inputs[1:]:
            states.append(replace(port, name=f"m{i}_{port.name}", feedback=f"m{i}_{port.feedback}"))
        for port in graph.outputs[1:]:
            outputs.append(replace(port, name=f"m{i}_{port.name}"))
    module = PoolStep(graphs, model.reads_covariates)
    return StepGraph(module, [x, *states], [params, *outputs])


def _window(x: Port, length: int) -> Port:
    """A state of the last ``length`` elements, oldest first, starting as the start element."""
    shape = ["batch", length, *x.shape[1:]]
    return Port("window", shape, x.dtype, "the last elements, oldest first", "window_next", x.initial)


def _float_name(model) -> str:
    if not isinstance(model, nn.Module):
        return "float64"  # the classical models compute in float64
    return str(next(model.parameters()).dtype).removeprefix("torch.")


def _element_port(model) -> Port:
    """``x_prev``: one element per sequence of the batch, as ``step`` takes it, and the start element."""
    elements, dtype = getattr(model, "elements", None), _float_name(model)
    if model.head.discrete:  # text and mu-law ids
        start = elements.start if elements is not None else model.V
        return Port("x_prev", ["batch"], "int64", f"previous element id (start: {start})", initial=start)
    if elements is None:
        return Port("x_prev", ["batch"], dtype, "previous value (NaN: the start of a sequence)", initial=NAN)
    shape = ["batch", *elements.element_shape()]
    meaning = "previous value" if isinstance(elements, ScalarElements) else "previous frame"
    if elements.covariates:
        meaning += f" and its {elements.covariates} covariates"
    return Port("x_prev", shape, dtype, f"{meaning} (NaN: the start of a sequence or a gap)", initial=NAN)


# -- the metadata ------------------------------------------------------------------------------------------------


def _floats(t: torch.Tensor) -> list[float]:
    return [float(v) for v in t.detach().cpu().double().reshape(-1)]


def elements_json(model) -> dict:
    """What an element is and how the graph's input is made from data (the standardisation is inside the graph;
    it is recorded for callers that want the standardised scale)."""
    e = getattr(model, "elements", None)
    if e is None and model.head.discrete:  # the n-gram models
        never = model.vocabulary.unknown_id
        return {"kind": "text", "vocabulary": model.vocabulary.to_json(), "start": model.V, "never_drawn": never}
    if e is None:  # the classical series models; GARCH-X's covariate is its exogenous variance
        return {"kind": "series", "start": NAN, "covariates": model.num_covariates}
    if isinstance(e, MuLawElements):
        v = e.mu_law
        return {"kind": "mu_law", "levels": v.levels, "sample_rate": v.sample_rate, "start": e.start}
    if isinstance(e, TextElements):
        never = e.vocabulary.unknown_id
        return {"kind": "text", "vocabulary": e.vocabulary.to_json(), "start": e.start, "never_drawn": never}
    if isinstance(e, FrameElements):
        out = {"kind": "frames", "start": NAN, "layout": e.layout.to_json()}
        names = ("location", "scale", "low", "high")
        return out | {name: _floats(getattr(e, name)) for name in names}
    out = {"kind": "series", "start": NAN, "covariates": e.covariates}
    out |= {"location": float(e.location), "scale": float(e.scale)}
    if e.covariates:
        out |= {"covariate_location": _floats(e.covariate_location), "covariate_scale": _floats(e.covariate_scale)}
    return out


SAMPLING = {
    "categorical": "x = the id whose interval of the CDF of softmax(logits / T) holds u ~ U(0, 1)",
    "gaussian": "x = mu + T exp(log_sigma) eps, eps ~ N(0, 1)",
    "studentt": "x = mu + T exp(log_sigma) t, t ~ Student t with nu = 2 + softplus(nu_raw) degrees of freedom",
    "mixture": "k ~ softmax(logits), then x = mu_k + T exp(log_sigma_k) eps, eps ~ N(0, 1)",
    "skewt": "x = mu + T exp(log_sigma) z, z ~ Hansen's skewed t standardised to mean 0 and variance 1, with "
    "eta = 2 + softplus(eta_raw) degrees of freedom and skewness lambda = tanh(lam_raw) (arch's skewt)",
    "bernoulli": "x = 1 if u < sigmoid(logit / T), else 0",
    "pool": "k ~ the members' weights, then x from member k's head (members[k]) at its params",
}
PARAMS = {
    "categorical": "logits (V)",
    "gaussian": "mu, log_sigma",
    "studentt": "mu, log_sigma, nu_raw",
    "mixture": "K logits, K means mu_k, K log_sigma_k",
    "skewt": "mu, log_sigma, eta_raw, lam_raw",
    "pool": "each member's params in turn (members[k].columns: [first, last + 1))",
}


def head_json(head: Head) -> dict:
    """The head's kind, its parameter layout and how to sample it at temperature T."""
    if isinstance(head, LogTransformed):  # the global model on log values: x = exp(y), y from the base head
        base = head_json(head.base)
        sampling = f"x = exp(y), y drawn as the base head: {base['sampling']}"
        return {"kind": head.kind, "num_params": head.num_params, "params": f"{base['params']}, of log x",
                "sampling": sampling, "base": base}  # fmt: skip
    if head.kind == "frames":
        per = head_json(head.per_dimension)
        layout = f"{len(head.continuous)} x ({per['params']}) for the continuous dimensions in order, then one logit "
        layout += "per binary dimension"
        sampling = "each dimension independently: continuous ones as per_dimension, binary ones as "
        sampling += SAMPLING["bernoulli"] + "; then each value clamped to [low, high]"
        out = {"kind": "frames", "num_params": head.num_params, "params": layout, "dims": head.dims}
        return out | {"continuous": head.continuous, "binary": head.binary, "per_dimension": per, "sampling": sampling}
    out = {
        "kind": head.kind,
        "num_params": head.num_params,
        "params": PARAMS[head.kind],
        "sampling": SAMPLING[head.kind],
    }
    if head.kind == "mixture":
        out["components"] = head.components
    if head.kind == "pool":
        ends = np.cumsum(head.sizes).tolist()
        out["members"] = [
            {"weight": float(w), "columns": [end - size, end], "head": head_json(h)}
            for w, size, end, h in zip(head.weights.tolist(), head.sizes, ends, head.heads, strict=True)
        ]
    return out


def metadata(model: SequenceModel, graph: StepGraph, chunk: int | None = None) -> dict:
    """The JSON stored beside the graph (docs/export.md); ``chunk``: that of a generation graph."""
    out = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": model.kind,
        "description": model.describe(),
        "graph": "step" if chunk is None else "chunk",
        "inputs": [p.to_json() for p in graph.inputs],
        "outputs": [p.to_json() for p in graph.outputs],
        "elements": elements_json(model),
        "head": head_json(model.head),
        "transform": model.transform.to_json() if model.transform is not None else None,
        "data": model.data_spec.to_json() if model.data_spec is not None else None,
    }
    if chunk is not None:
        out["chunk"] = chunk
    if isinstance(model, GlobalAR):
        out |= _panel_json(model)
    if isinstance(model, Pool):
        out |= _pool_json(model)
    return out


def _pool_json(model: Pool) -> dict:
    """Each member's name, kind and description, in the order of ``head.members`` and of the ``m{i}_`` ports."""
    members = zip(model.names, model.members, model.reads_covariates, strict=True)
    return {
        "pool": [
            {"name": n, "model": m.kind, "description": m.describe(), "reads_covariates": r} for n, m, r in members
        ]
    }


def _panel_json(model: GlobalAR) -> dict:
    """What a global model's caller computes per series: its scale over the context, its season phase."""
    c = model.config
    return {"panel": {"season": c.season, "context_length": c.context, "series_scale": float(model.series_scale)}}


# -- the file --------------------------------------------------------------------------------------------------------


def export_onnx(model: SequenceModel, extra: dict | None = None, chunk: int | None = None) -> bytes:
    """The ONNX file (bytes) of ``model``'s step with its metadata (and ``extra`` keys merged into it); with
    ``chunk``, its generation graph instead: ``chunk`` steps and draws per call (``chunk_graph``)."""
    graph = step_graph(model) if chunk is None else chunk_graph(model, chunk)
    dynamic = {p.name: {p.batch_axis: "batch"} for p in graph.inputs + graph.outputs}
    buffer = io.BytesIO()
    with warnings.catch_warnings():  # the TorchScript exporter is chosen on purpose (module docstring)
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        # the recurrent ops' batch is dynamic here: their initial state is an input, as the warning asks
        warnings.filterwarnings("ignore", "Exporting a model to ONNX with a batch_size other than 1")
        torch.onnx.export(
            graph.module,
            graph.examples(),
            buffer,
            dynamo=False,
            input_names=[p.name for p in graph.inputs],
            output_names=[p.name for p in graph.outputs],
            dynamic_axes=dynamic,
            opset_version=OPSET,
        )
    meta = metadata(model, graph, chunk) | (extra or {})
    return with_metadata(buffer.getvalue(), {METADATA_KEY: json.dumps(meta, ensure_ascii=False, allow_nan=False)})


MODEL_METADATA_PROPS = 14  # ModelProto field: repeated StringStringEntryProto {key = 1, value = 2} (onnx.proto)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _length_delimited(field: int, payload: bytes) -> bytes:
    return _varint(field << 3 | 2) + _varint(len(payload)) + payload


def with_metadata(model_proto: bytes, props: dict[str, str]) -> bytes:
    """``model_proto`` with ``props`` added to its ``metadata_props``: protobuf appends a repeated field's entries
    wherever they appear in the message, so appending them to the serialized bytes is a valid ModelProto."""
    entries = (_length_delimited(1, k.encode()) + _length_delimited(2, v.encode()) for k, v in props.items())
    return model_proto + b"".join(_length_delimited(MODEL_METADATA_PROPS, e) for e in entries)
