"""``Pool``: a linear pool of predictive densities (Hall & Mitchell 2007; Geweke & Amisano 2011).

K member models of one series, each giving a one-step density, mixed with fixed weights:

    p(x_t | x_<t) = sum_{k=1..K} w_k p_k(x_t | x_<t),      w_k >= 0,   sum_k w_k = 1

The weights maximise the log score of the pool on held-out steps of the *training* series,

    w = argmax_w  sum_{t in tail} log sum_k w_k p_k(x_t | x_<t)

where the tail is the last ``tail`` share of the training series, cut into ``blocks`` consecutive blocks, and
every member scored on a block was fitted on all values before that block only (each p_k(x_t | x_<t) is an
out-of-sample forecast, as it will be on new data: Geweke & Amisano's recursive scheme, with the members
refitted once per block rather than at every step). A member that cannot be fitted or scored on a block, for any
reason (too few values before it, a fit that fails, an error inside it), gets weight 0, and the record says why;
if it cannot be fitted on the whole training series either, it is dropped from the pool.

On a short series those log scores are a few dozen noisy numbers, and weights that maximise them alone put
everything on whichever member was lucky there. So the weights are a posterior mode: the log score plus a
symmetric Dirichlet(``prior``) log density on w,

    w = argmax_w  sum_{t in tail} log sum_k w_k p_k(x_t | x_<t)  +  (prior - 1) sum_k log w_k

which adds ``prior - 1`` pseudo-observations per member, pulling the weights towards equal ones when the tail is
short and leaving them to the data when it is long (the shrinkage of forecast combination, Diebold & Pauly
1990). The default, 1, is the log score alone: on a development panel of 240 short series that shares no value
with any scored one (``benchmarks/pool_dev.py``), it was most often both within 0.02 nats per value of the best
single member after the fact and no more than 0.02 behind the random walk, while any prior of 1.5 or more had
the better mean and a far smaller worst case (``docs/forecasting.md``).

The objective is concave in w: the EM iteration ``w_k <- (sum_t r_kt + prior - 1) / (N + K (prior - 1))``,
``r_kt = w_k p_kt / sum_j w_j p_jt`` (Dempster, Laird & Rubin 1977, with fixed components; with the prior, its
MAP form) climbs towards its maximum, and SLSQP with the exact gradient finishes the climb (``pool_weights``).
Then every member is fitted again on the whole training series, and the weights are kept. Nothing after the
training series is seen. A pool built with ``weights`` skips the tail and keeps those (weights chosen elsewhere:
the panel backtest chooses one set on the tails of every series of a panel, ``panel_weights``); one built with a
``centre`` (weights) and a ``strength`` replaces the symmetric prior with a Dirichlet of mean ``centre`` that adds
``strength`` pseudo-observations in all, ``strength * centre_k`` to member k: the panel backtest's ``panel_pool``
shrinks each series' weights towards the panel's so (a hierarchical prior, estimated from the panel).

Shapes: the elements are the values (T,), or (T, 1 + C) with past covariates (read by the members that take them;
the others see the values); ``step``'s params are the members' head parameters concatenated, ``(P_1 + ... + P_K,)``,
read by the ``LinearPool`` head; sample paths move together where every member has ``batch_state`` and
``batch_step`` (``step`` for many paths at once), else one path at a time. Members are built by ``make(name, part)``
(in ``seqlab.runs.contenders``: ``series_contender``), saved and loaded with the pool.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from scipy.optimize import minimize

from seqlab.base import MODELS, ConformanceCase, SequenceModel
from seqlab.data.arrays import as_series
from seqlab.distributions import LinearPool
from seqlab.errors import SeqlabError, Unsupported
from seqlab.models.garch import GARCH, GARCHConfig
from seqlab.models.linear_ar import LinearAR
from seqlab.models.random_walk import RandomWalk
from seqlab.training import Callback

TAIL = 0.5  # share of the training series on which the weights are chosen
PRIOR = 1.0  # Dirichlet concentration on the weights: prior - 1 pseudo-observations per member (pool_dev.py)
# At most: a million pseudo-observations per member make the weights equal to 5 digits on any tail a series has;
# 1e308 overflowed N + K (prior - 1) and saved NaN weights
MAX_PRIOR = 1e6
BLOCKS = 4  # the members are fitted again at the start of each of this many blocks of that tail
MIN_TAIL = 5  # values at least in that tail
MIN_MEMBER_VALUES = 20  # values at least before the tail, to fit the members on
EM_ITERATIONS, EM_TOLERANCE = 500, 1e-10  # EM's start for the exact optimiser (pool_weights)
WEIGHT_FLOOR = 1e-9  # a weight below this is set to zero (SLSQP leaves ~1e-17 where the optimum has 0)
# Members at most: every series model and GARCH variant seqlab names makes fewer than 40, each fitted BLOCKS + 1
# times; a saved pool claiming 8,000 took minutes to load before its loading was made linear
MAX_MEMBERS = 1024
MEMBER_PREFIX = "member"  # member i's tensors are saved as memberI.NAME


@dataclass(frozen=True)
class FitRecord:
    """What a series contender's fit reports besides the fitted model. This base: a fit in closed form or by
    maximum likelihood with nothing more to say (the random walk, a pool's member in a panel)."""

    detail: ClassVar[str | None] = None  # the backtest row's key that lists every fit's record, if any

    def as_json(self) -> dict:
        return asdict(self)

    def label(self, name: str) -> str:
        """The contender's name in a table (a linear AR adds its order)."""
        return name

    def summary(self) -> str:
        """What the one-line report adds after the scores (a trained model: passes; a pool: its weights)."""
        return ""


@dataclass
class SeriesContender:
    """A model of a series built by name, with the fit that suits it: ``fit(data, callbacks) -> record`` on the
    values (T,), or on the elements (T, 1 + C) when ``reads_covariates``; ``trains``: whether a Trainer runs in
    it (the neural models, a pool of any), which then takes the ``callbacks`` (progress, Ctrl-C)."""

    name: str
    model: SequenceModel
    fit: Callable[[torch.Tensor, Sequence[Callback]], FitRecord]
    reads_covariates: bool = False
    trains: bool = False

    def seen(self, x: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
        """What the contender reads of the elements ``x (T[, 1 + C])`` (``member_view``)."""
        return member_view(x, self.reads_covariates)


def member_view(x: torch.Tensor | np.ndarray, reads_covariates: bool, rows: bool = True):
    """What a member reads of the pool's elements: the whole row for members that read covariates, the value
    column for the rest. ``x`` is a sequence of rows (T[, 1 + C]), or one element ((1 + C,) or a scalar) with
    ``rows=False``; the batches of ``seqlab.export`` are sequences of rows (B[, 1 + C])."""
    columns = x.ndim == (2 if rows else 1)
    return x[..., 0] if columns and not reads_covariates else x


def failure(e: Exception) -> str:
    """Why a member failed, in words: our own errors say it; anything else is named by its type."""
    return str(e) if isinstance(e, SeqlabError) else f"{type(e).__name__}: {e}"


def check_prior(prior: float) -> None:
    """A Dirichlet concentration in [1, ``MAX_PRIOR``] (1: the log score alone; below 1 the objective is not
    concave)."""
    if not 1.0 <= prior <= MAX_PRIOR:
        raise SeqlabError(
            f"the pool's prior must be a number of at least 1 (1: the log score alone) and at most {MAX_PRIOR:g}, "
            f"got {prior:g}"
        )


def check_member_count(count: int) -> None:
    """At most ``MAX_MEMBERS`` members (checked before any is built or loaded)."""
    if count > MAX_MEMBERS:
        raise SeqlabError(f"a pool holds at most {MAX_MEMBERS:,} members, got {count:,}")


def check_weights(w: np.ndarray) -> None:
    """Weights that are finite, non-negative and sum to 1 (what ``load_state_dict`` takes)."""
    if not np.isfinite(w).all() or (w < 0).any() or abs(w.sum() - 1) > 1e-6:
        raise SeqlabError(f"the pool's weights are not finite non-negative shares summing to 1: {w.tolist()[:5]}")


def pool_weights(log_probs: np.ndarray, prior: float = 1.0, pseudo: np.ndarray | None = None) -> np.ndarray:
    """(K,) weights maximising ``L(w) = sum_t log sum_k w_k p_kt + sum_k e_k log w_k`` over the simplex, for the
    members' one-step log densities ``log_probs (K, N)``, with ``e_k = prior - 1`` pseudo-observations per member
    (``prior`` 1: the log score alone) or the ``pseudo`` ones given (K,) (a Dirichlet centred elsewhere than on
    equal weights: ``panel_pool``'s, on the panel's weights): EM from equal weights (see the module docstring),
    which nears the maximum fast and then crawls, finished by SLSQP with the exact gradient ``dL/dw_k = sum_t p_kt
    / p_t + e_k / w_k``, where ``p_t = sum_k w_k p_kt`` (densities taken relative to the largest of each step,
    which leaves the argmax alone)."""
    K, N = log_probs.shape
    if not np.isfinite(log_probs).all():
        raise SeqlabError("a pool member gave a non-finite log density on the weighting tail")
    check_prior(prior)
    extra = np.full(K, prior - 1.0) if pseudo is None else np.asarray(pseudo, dtype=np.float64)
    if extra.shape != (K,) or not (np.isfinite(extra).all() and (extra >= 0).all()):
        raise SeqlabError(f"expected {K} non-negative pseudo-observations, one per member, got {extra.tolist()[:5]}")
    p = np.exp(log_probs - log_probs.max(axis=0))  # (K, N), each column's largest 1
    w = np.full(K, 1.0 / K)
    for _ in range(EM_ITERATIONS):
        new = ((w[:, None] * p / (w @ p)).sum(axis=1) + extra) / (N + extra.sum())
        if np.abs(new - w).max() < EM_TOLERANCE:
            break
        w = new

    def loss(v: np.ndarray) -> tuple[float, np.ndarray]:
        mix = np.maximum(v @ p, 1e-300)  # (N,)
        safe = np.maximum(v, 1e-300)
        value = np.log(mix).sum() + (extra * np.log(safe)).sum()
        return -value / N, -((p / mix).sum(axis=1) + extra / safe) / N

    polished = minimize(
        loss,
        w,
        jac=True,
        method="SLSQP",
        bounds=[(1e-12 if e else 0.0, 1.0) for e in extra],
        constraints={"type": "eq", "fun": lambda v: v.sum() - 1, "jac": lambda v: np.ones(K)},
        options={"ftol": 1e-15, "maxiter": 200},
    )
    best = polished.x if polished.success and loss(polished.x)[0] <= loss(w)[0] else w
    # below the optimiser's resolution, and no pseudo-observation keeps it off 0: no share at all
    best = np.where((best < WEIGHT_FLOOR) & (extra == 0), 0.0, best)
    return best / best.sum()


class Pool(SequenceModel):
    """A linear pool of the members named in ``members`` (see the module docstring); ``make(name, part)``
    builds an unfitted ``SeriesContender`` for the training part ``part`` (a loaded pool has none and cannot be
    fitted again). ``seed`` seeds each member's fit."""

    kind = "pool"

    def __init__(
        self,
        members: list[str] | tuple[str, ...],
        make: Callable[[str, np.ndarray], SeriesContender] | None = None,
        seed: int = 0,
        tail: float = TAIL,
        covariates: int = 0,
        blocks: int = BLOCKS,
        prior: float = PRIOR,
        weights: Sequence[float] | None = None,
        centre: Sequence[float] | None = None,
        strength: float = 0.0,
    ) -> None:
        if not members:
            raise SeqlabError("a pool needs at least one member")
        check_member_count(len(members))
        if len(set(members)) != len(members):
            raise SeqlabError(f"a pool's members must differ; got {', '.join(members)}")
        if not 0.0 < tail < 1.0:
            raise SeqlabError(f"the pool's weighting tail must be a share in (0, 1), got {tail}")
        if blocks < 1:
            raise SeqlabError(f"the pool's weighting tail needs at least one block, got {blocks}")
        check_prior(prior)  # before any member is fitted
        if weights is not None:
            given = np.asarray(weights, dtype=np.float64)
            if given.shape != (len(members),):
                raise SeqlabError(f"a pool of {len(members)} members needs as many weights, got {len(given)}")
            check_weights(given)
        self.given_weights = None if weights is None else given
        if centre is not None:
            centre = np.asarray(centre, dtype=np.float64)
            if centre.shape != (len(members),):
                raise SeqlabError(
                    f"a pool of {len(members)} members needs a centre of as many weights, got {len(centre)}"
                )
            check_weights(centre)
            if prior != 1.0:
                raise SeqlabError("a pool takes a prior (equal weights) or a centre and strength, not both")
        if not (math.isfinite(strength) and strength >= 0):
            raise SeqlabError(
                f"the pool's strength must be a non-negative number of pseudo-observations, got {strength}"
            )
        self.centre, self.strength = centre, float(strength)
        self.names, self.make, self.seed, self.tail, self.blocks = list(members), make, seed, tail, blocks
        self.prior = prior
        self.num_covariates = covariates
        self.members: list[SequenceModel] = []
        self.reads_covariates: list[bool] = []
        self.weights: torch.Tensor | None = None  # (K,)
        self.tail_scores: dict | None = None  # what chose the weights (per member and the pool)
        self._conditioned: tuple | None = None  # (context, params, state) of the last sample_paths

    @property
    def head(self) -> LinearPool:
        self._check_fitted()
        return LinearPool([m.head for m in self.members], self.weights)

    def _check_fitted(self) -> None:
        if self.weights is None:
            raise SeqlabError("Pool is not fitted yet: call fit(series) first")

    # -- fitting -----------------------------------------------------------------------------------------------
    def _elements(self, x: Any, source: str = "series") -> torch.Tensor:
        """The values (T,) as float64, or with covariates the elements (T, 1 + C); refuses anything else."""
        if not self.num_covariates:
            return torch.from_numpy(as_series(x, model="Pool", source=source))
        a = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
        if a.dtype.kind not in "fiu" or a.ndim != 2 or a.shape[1] != 1 + self.num_covariates:
            raise SeqlabError(
                f"this pool takes a value and {self.num_covariates} covariates per row, shape (T, "
                f"{1 + self.num_covariates}); got {a.dtype} values of shape {a.shape} ({source})"
            )
        if not np.isfinite(a).all():
            raise SeqlabError(f"{source}: non-finite values; the pool fits one series (clean or fill them)")
        return torch.from_numpy(a.astype(np.float64))

    def _fit_member(self, name: str, x: torch.Tensor, callbacks: Sequence[Callback]) -> SeriesContender:
        """Member ``name`` built for and fitted on ``x`` (T[, 1 + C]), its Trainer (if any) given ``callbacks``."""
        torch.manual_seed(self.seed)
        contender = self.make(name, x.numpy())
        contender.fit(contender.seen(x), callbacks)
        return contender

    def _member_log_prob(self, model: SequenceModel, reads_covariates: bool, x: torch.Tensor) -> torch.Tensor:
        return model.log_prob(member_view(x, reads_covariates)).double().cpu()

    def tail_length(self, n: int) -> int:
        """How many of ``n`` training values weight the members: the last ``tail`` share, at least ``MIN_TAIL``."""
        return max(MIN_TAIL, round(self.tail * n))

    def score_tail(
        self, x: torch.Tensor, callbacks: Sequence[Callback] = ()
    ) -> tuple[np.ndarray, list[int], dict[str, str]]:
        """The members' out-of-sample log densities on the weighting tail of ``x`` (T[, 1 + C]): (K, n_tail), each
        block's from the members fitted on all values before it; the values at which they were fitted; and the
        members left out (name -> why: it could not be fitted or scored on some block), whose rows are -inf."""
        n_tail = self.tail_length(len(x))
        start = len(x) - n_tail
        if start < MIN_MEMBER_VALUES:
            needed = next(n for n in range(MIN_MEMBER_VALUES, 2**31) if n - self.tail_length(n) >= MIN_MEMBER_VALUES)
            raise SeqlabError(
                f"the pool needs at least {needed} training values ({MIN_MEMBER_VALUES} to fit its members on before "
                f"the last {self.tail:.0%}, on which it weights them); got {len(x)}"
            )
        bounds = np.linspace(start, len(x), min(self.blocks, n_tail) + 1).round().astype(int)
        log_probs = np.full((len(self.names), n_tail), -np.inf)
        left_out: dict[str, str] = {}
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):  # fitted on x[:a], scored on x[a:b]
            for k, name in enumerate(self.names):
                if name in left_out:
                    continue
                try:
                    contender = self._fit_member(name, x[:a], callbacks)
                    scored = self._member_log_prob(contender.model, contender.reads_covariates, x[:b])[a:].numpy()
                    if not np.isfinite(scored).all():
                        raise SeqlabError("a non-finite log density")
                    log_probs[k, a - start : b - start] = scored
                except Exception as e:  # any failure of one member leaves it out, never stops the pool
                    left_out[name] = f"fitted on {a} values: {failure(e)}"
                    log_probs[k] = -np.inf
        return log_probs, bounds[:-1].tolist(), left_out

    def fit(
        self, train: Any, valid: Any = None, callbacks: Sequence[Callback] = (), tail: tuple | None = None
    ) -> Pool:
        """Weights on the tail of ``train`` (members fitted before each of its blocks), then the members on all
        of ``train``; ``valid`` is not used (the pool never looks past its training series). ``callbacks`` go to
        the members' Trainers. ``tail``: what ``score_tail(train)`` returned, if it was run already (the panel
        runner's first pass), so the blocks are not fitted again."""
        if self.make is None:
            raise Unsupported("a loaded Pool cannot be fitted again: build a new one (series_contender('pool'))")
        x = self._elements(train, "training series")
        if self.given_weights is not None:
            return self._fit_members(x, self.given_weights.copy(), {}, callbacks)
        log_probs, fits_at, left_out = self.score_tail(x, callbacks) if tail is None else tail
        left_out = dict(left_out)
        scored = np.array([name not in left_out for name in self.names])
        if not scored.any():
            why = "; ".join(f"{name} {reason}" for name, reason in left_out.items())
            raise SeqlabError(f"no pool member could be scored on the weighting tail: {why}")
        w = np.zeros(len(self.names))
        pseudo = None
        if self.centre is not None and self.centre[scored].sum() > 0:
            pseudo = self.strength * self.centre[scored] / self.centre[scored].sum()
        w[scored] = pool_weights(log_probs[scored], self.prior, pseudo)
        check_weights(w)
        pooled = np.logaddexp.reduce(np.log(np.maximum(w[scored], 1e-300))[:, None] + log_probs[scored], axis=0)
        member_nll = (-log_probs.mean(axis=1)).tolist()
        self.tail_scores = {
            "tail_values": log_probs.shape[1],
            "fits_at": fits_at,
            "prior": self.prior,
            **({} if self.centre is None else {"centre": self.centre.tolist(), "strength": self.strength}),
            "member_nll": {n: v if ok else None for n, v, ok in zip(self.names, member_nll, scored, strict=True)},
            "pool_nll": float(-pooled.mean()),
            "left_out": left_out,
        }
        return self._fit_members(x, w, left_out, callbacks)

    def _fit_members(self, x: torch.Tensor, w: np.ndarray, left_out: dict, callbacks: Sequence[Callback]) -> Pool:
        """Every member fitted on the whole series ``x`` and the weights ``w`` kept. A member that fails is dropped
        if its weight is 0; with weights chosen on this series' tail, one with a share stops the fit, while with
        given weights (``weights``) its share goes to the others in proportion, and the record says so."""
        if self.given_weights is not None:
            self.tail_scores = {"given_weights": w.tolist(), "left_out": left_out}
        kept, final = [], []
        for k, name in enumerate(self.names):  # every member again on the whole series
            try:
                final.append(self._fit_member(name, x, callbacks))
                kept.append(k)
            except Exception as e:
                if w[k] > 0 and self.given_weights is None:
                    raise SeqlabError(f"pool member {name} on {len(x)} values: {failure(e)}") from None
                earlier = f"{left_out[name]}; " if name in left_out else ""
                left_out[name] = f"{earlier}on all {len(x)} values: {failure(e)}"
        if not w[kept].sum() > 0:
            why = "; ".join(f"{name} {reason}" for name, reason in left_out.items())
            raise SeqlabError(f"no pool member with a share could be fitted: {why}")
        w = w / w[kept].sum()
        self.names = [self.names[k] for k in kept]
        self.members = [c.model for c in final]
        self.reads_covariates = [c.reads_covariates for c in final]
        self.weights, self._conditioned = torch.from_numpy(w[kept]), None
        return self

    def record(self) -> dict:
        """What the fit chose: the weights per member and the log scores on the weighting tail."""
        self._check_fitted()
        return {"weights": dict(zip(self.names, self.weights.tolist(), strict=True)), **(self.tail_scores or {})}

    # -- the contract --------------------------------------------------------------------------------------------
    def encode(self, data: Any, *, unknown: str = "error", source: str = "data") -> torch.Tensor:
        return self._elements(data, source)

    def log_prob(self, x: Any) -> torch.Tensor:
        """``log sum_k w_k p_k(x_t | x_<t)`` for t = 1..T (T,), from each member's own ``log_prob``."""
        self._check_fitted()
        x = self._elements(x)
        each = torch.stack(
            [self._member_log_prob(m, c, x) for m, c in zip(self.members, self.reads_covariates, strict=True)], -1
        )  # (T, K)
        return torch.logsumexp(torch.log(self.weights) + each, dim=-1)

    def initial_state(self) -> tuple:
        self._check_fitted()
        return tuple(m.initial_state() for m in self.members), None

    def step(self, x_prev, state: tuple):
        """``x_prev`` (a value, or a value and its covariates; a value alone carries the last covariates
        forward) into every member; the members' head params concatenated (P_1 + ... + P_K,) out."""
        self._check_fitted()
        states, covariates = state
        if x_prev is not None:
            x_prev = torch.as_tensor(x_prev, dtype=torch.float64)
            if x_prev.dim() == 1:
                covariates = x_prev[1:]
            elif self.num_covariates:
                x_prev = torch.cat([x_prev[None], covariates])
        params, new_states = [], []
        for member, reads, s in zip(self.members, self.reads_covariates, states, strict=True):
            given = x_prev if x_prev is None else member_view(x_prev, reads, rows=False)
            p, s = member.step(given, s)
            params.append(p.detach().double().cpu().reshape(-1))
            new_states.append(s)
        return torch.cat(params), (tuple(new_states), covariates)

    def _condition(self, context: torch.Tensor) -> tuple[torch.Tensor, tuple]:
        """(params, state) after ``context``, stepped through every member; a context that extends the last one
        continues from where that one left off (the backtest's origins move forward through one series)."""
        context = torch.as_tensor(context, dtype=torch.float64)
        cached = self._conditioned
        if cached is not None and len(cached[0]) <= len(context) and torch.equal(cached[0], context[: len(cached[0])]):
            done, params, state = cached
        else:
            done, (params, state) = context[:0], self.step(None, self.initial_state())
        for x in context[len(done) :]:
            params, state = self.step(x, state)
        self._conditioned = (context.clone(), params, state)
        return params, state

    @torch.no_grad()
    def sample_paths(
        self, context: torch.Tensor, horizon: int, num_samples: int, temperature: float = 1.0, seed: int | None = None
    ) -> torch.Tensor:
        """As ``SequenceModel.sample_paths`` (each path drawn one step at a time through ``step``: a member by its
        weight, then a value from it, fed to every member), conditioned once on the context (``_condition``).
        Where every member has ``batch_state`` and ``batch_step`` (``step`` for S paths at once: ETS, the random
        walks) the S paths move together, drawn from the same law with another order of the random draws."""
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        params, state = self._condition(context)
        head = self.head
        paths = torch.empty(num_samples, horizon, dtype=torch.float64)
        if not self.num_covariates and all(hasattr(m, "batch_step") for m in self.members):
            # every member steps all paths at once: the same draws' law, one head.sample per step instead of
            # one per path and step (a pool of ETS and the naive models on 200 x 18 values: ~0.8 s -> ~10 ms)
            states = [m.batch_state(s, num_samples) for m, s in zip(self.members, state[0], strict=True)]
            p = params.expand(num_samples, -1)
            for h in range(horizon):
                paths[:, h] = x = head.sample(p, temperature, None, generator).double()
                if h + 1 < horizon:
                    stepped = [m.batch_step(x, st) for m, st in zip(self.members, states, strict=True)]
                    p = torch.cat([q.double() for q, _ in stepped], -1)
                    states = [st for _, st in stepped]
            return paths
        for s in range(num_samples):
            p, st = params, state
            for h in range(horizon):
                paths[s, h] = x = head.sample(p, temperature, None, generator)
                p, st = self.step(x, st)
        return paths

    def describe(self) -> str:
        if self.weights is None:
            return f"Pool of {', '.join(self.names)} (not fitted)"
        shares = ", ".join(f"{n} {w:.3f}" for n, w in zip(self.names, self.weights.tolist(), strict=True))
        return f"Pool (linear, weights by log score on the training tail, prior {self.prior:g}): {shares}"

    def shares(self) -> list[tuple[str, float, str]]:
        """(name, weight, the member's own description) per member."""
        self._check_fitted()
        return [(n, float(w), m.describe()) for n, w, m in zip(self.names, self.weights, self.members, strict=True)]

    # -- persistence ---------------------------------------------------------------------------------------------
    def to_config(self) -> dict:
        self._check_fitted()
        config = {"members": self.names, "seed": self.seed, "tail": self.tail, "covariates": self.num_covariates}
        config |= {"blocks": self.blocks, "prior": self.prior}
        members = [{"model": m.kind, **m.to_config()} for m in self.members]
        return {"config": config, "members": members, "tail_scores": self.tail_scores}

    @classmethod
    def saved_parts(cls, config: dict) -> list[tuple[str, dict]]:
        members = config.get("members")
        if not isinstance(members, list) or not all(isinstance(m, dict) for m in members):
            raise SeqlabError(f"expected a list of member configs, got {members!r:.60}")
        check_member_count(len(members))
        return [(f"{MEMBER_PREFIX}{i}.", member) for i, member in enumerate(members)]

    @classmethod
    def from_config(cls, config: dict) -> Pool:
        fields = config["config"]
        pool = cls(
            list(fields["members"]),
            None,
            int(fields["seed"]),
            float(fields["tail"]),
            int(fields["covariates"]),
            int(fields["blocks"]),
            float(fields.get("prior", 1.0)),  # a pool saved before the prior: the log score alone
        )
        members = config["members"]
        if not isinstance(members, list) or len(members) != len(pool.names):
            raise SeqlabError(f"expected {len(pool.names)} member configs, got {members!r:.60}")
        for member in members:
            kind = member.get("model") if isinstance(member, dict) else None
            if kind not in MODELS or kind == cls.kind:
                raise SeqlabError(f"unknown pool member kind {kind!r}")
            pool.members.append(MODELS[kind].from_config(member))
        pool.reads_covariates = [m.num_covariates > 0 for m in pool.members]
        pool.tail_scores = config.get("tail_scores")
        return pool

    def state_dict(self) -> dict[str, torch.Tensor]:
        self._check_fitted()
        check_weights(self.weights.numpy())  # never saved unless a load would take them
        tensors = {"weights": self.weights.clone()}
        for i, member in enumerate(self.members):
            prefix = f"{MEMBER_PREFIX}{i}."
            tensors |= {prefix + k: v.detach().cpu().contiguous() for k, v in member.state_dict().items()}
        return tensors

    def load_state_dict(self, tensors: dict[str, torch.Tensor]) -> None:
        """The weights and every member's tensors (``memberI.NAME``), sorted to their members in one pass over
        ``tensors``: the work is linear in the members (a scan of all tensors per member was quadratic)."""
        weights = tensors.get("weights")
        if weights is None or weights.shape != (len(self.names),) or weights.dtype != torch.float64:
            raise RuntimeError(f"expected float64 'weights' of shape ({len(self.names)},)")
        if not bool(torch.isfinite(weights).all()) or bool((weights < 0).any()) or abs(float(weights.sum()) - 1) > 1e-6:
            raise RuntimeError("the pool's weights must be finite, non-negative and sum to 1")
        index = {f"{MEMBER_PREFIX}{i}": i for i in range(len(self.members))}
        own: list[dict[str, torch.Tensor]] = [{} for _ in self.members]
        unexpected = []
        for name, tensor in tensors.items():
            member, dot, rest = name.partition(".")
            if member in index and dot:
                own[index[member]][rest] = tensor
            elif name != "weights":
                unexpected.append(name)
        if unexpected:
            raise RuntimeError(f"unexpected tensors {sorted(unexpected)[:3]}")
        for member, member_tensors in zip(self.members, own, strict=True):
            member.load_state_dict(member_tensors)
            if isinstance(member, torch.nn.Module):
                member.eval()
        self.weights, self._conditioned = weights.clone(), None

    @classmethod
    def conformance_cases(cls) -> list[ConformanceCase]:
        def make(name: str, part: np.ndarray) -> SeriesContender:
            model = {"random_walk": RandomWalk(), "ar": LinearAR(order=1), "garch": GARCH(GARCHConfig())}[name]
            return SeriesContender(name, model, lambda y, callbacks: model.fit(y.numpy()) and FitRecord())

        return [
            ConformanceCase("random_walk, ar, garch", "series", lambda y: cls(["random_walk", "ar", "garch"], make)),
        ]
