"""``Pool``: a linear pool of predictive densities (Hall & Mitchell 2007; Geweke & Amisano 2011).

K member models of one series, each giving a one-step density, mixed with fixed weights:

    p(x_t | x_<t) = sum_{k=1..K} w_k p_k(x_t | x_<t),      w_k >= 0,   sum_k w_k = 1

The weights maximise the log score of the pool on held-out steps of the *training* series,

    w = argmax_w  sum_{t in tail} log sum_k w_k p_k(x_t | x_<t)

where the tail is the last ``tail`` share of the training series, cut into ``blocks`` consecutive blocks, and
every member scored on a block was fitted on all values before that block only (each p_k(x_t | x_<t) is an
out-of-sample forecast, as it will be on new data: Geweke & Amisano's recursive scheme, with the members
refitted once per block rather than at every step). The objective is concave in w: the EM iteration
``w_k <- mean_t r_kt``, ``r_kt = w_k p_kt / sum_j w_j p_jt`` (Dempster, Laird & Rubin 1977, with fixed
components) climbs towards its maximum, and SLSQP with the exact gradient finishes the climb (``pool_weights``).
Then every member is fitted again on the whole training series, and the weights are kept. Nothing after the
training series is seen.

Shapes: the elements are the values (T,), or (T, 1 + C) with past covariates (read by the members that take them;
the others see the values); ``step``'s params are the members' head parameters concatenated,
``(P_1 + ... + P_K,)``, read by the ``LinearPool`` head. Members are built by ``make(name, part)`` (in
``seqlab.models.families``: ``series_contender``), saved and loaded with the pool.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

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
BLOCKS = 4  # the members are fitted again at the start of each of this many blocks of that tail
MIN_TAIL = 5  # values at least in that tail
MIN_MEMBER_VALUES = 20  # values at least before the tail, to fit the members on
EM_ITERATIONS, EM_TOLERANCE = 500, 1e-10  # EM's start for the exact optimiser (pool_weights)
WEIGHT_FLOOR = 1e-9  # a weight below this is set to zero (SLSQP leaves ~1e-17 where the optimum has 0)


@dataclass
class SeriesContender:
    """A model of a series built by name, with the fit that suits it: ``fit(data, callbacks) -> record`` on the
    values (T,), or on the elements (T, 1 + C) when ``reads_covariates``; ``trains``: whether a Trainer runs in
    it (the neural models, a pool of any), which then takes the ``callbacks`` (progress, Ctrl-C)."""

    name: str
    model: SequenceModel
    fit: Callable[[torch.Tensor, Sequence[Callback]], dict]
    reads_covariates: bool = False
    trains: bool = False

    def seen(self, x: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
        """What the contender reads of the elements ``x (T[, 1 + C])``: all of them, or the values (T,)."""
        return x if self.reads_covariates or x.ndim == 1 else x[:, 0]


def pool_weights(log_probs: np.ndarray) -> np.ndarray:
    """(K,) weights maximising ``L(w) = sum_t log sum_k w_k p_kt`` over the simplex, for the members' one-step
    log densities ``log_probs (K, N)``: EM from equal weights (see the module docstring), which nears the maximum
    fast and then crawls, finished by SLSQP with the exact gradient ``dL/dw_k = sum_t p_kt / p_t``, where ``p_t =
    sum_k w_k p_kt`` (densities taken relative to the largest of each step, which leaves the argmax alone)."""
    K = log_probs.shape[0]
    if not np.isfinite(log_probs).all():
        raise SeqlabError("a pool member gave a non-finite log density on the weighting tail")
    p = np.exp(log_probs - log_probs.max(axis=0))  # (K, N), each column's largest 1
    w = np.full(K, 1.0 / K)
    for _ in range(EM_ITERATIONS):
        new = (w[:, None] * p / (w @ p)).mean(axis=1)
        if np.abs(new - w).max() < EM_TOLERANCE:
            break
        w = new

    def loss(v: np.ndarray) -> tuple[float, np.ndarray]:
        mix = np.maximum(v @ p, 1e-300)  # (N,)
        return -float(np.log(mix).mean()), -(p / mix).mean(axis=1)

    polished = minimize(
        loss,
        w,
        jac=True,
        method="SLSQP",
        bounds=[(0.0, 1.0)] * K,
        constraints={"type": "eq", "fun": lambda v: v.sum() - 1, "jac": lambda v: np.ones(K)},
        options={"ftol": 1e-15, "maxiter": 200},
    )
    best = polished.x if polished.success and loss(polished.x)[0] <= loss(w)[0] else w
    best = np.where(best < WEIGHT_FLOOR, 0.0, best)  # below the optimiser's resolution: no share at all
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
    ) -> None:
        if not members:
            raise SeqlabError("a pool needs at least one member")
        if len(set(members)) != len(members):
            raise SeqlabError(f"a pool's members must differ; got {', '.join(members)}")
        if not 0.0 < tail < 1.0:
            raise SeqlabError(f"the pool's weighting tail must be a share in (0, 1), got {tail}")
        if blocks < 1:
            raise SeqlabError(f"the pool's weighting tail needs at least one block, got {blocks}")
        self.names, self.make, self.seed, self.tail, self.blocks = list(members), make, seed, tail, blocks
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

    def _fit_members(self, x: torch.Tensor, callbacks: Sequence[Callback]) -> list[SeriesContender]:
        """Every member built for and fitted on ``x`` (T[, 1 + C]), its Trainer (if any) given ``callbacks``; a
        member that cannot be fitted on so few values is named in the error."""
        fitted = []
        for name in self.names:
            torch.manual_seed(self.seed)
            try:
                contender = self.make(name, x.numpy())
                contender.fit(contender.seen(x), callbacks)
            except SeqlabError as e:
                raise SeqlabError(f"pool member {name} on {len(x)} values: {e}") from None
            fitted.append(contender)
        return fitted

    def _values(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, 0] if x.dim() == 2 else x

    def _member_log_prob(self, model: SequenceModel, reads_covariates: bool, x: torch.Tensor) -> torch.Tensor:
        return model.log_prob(x if reads_covariates else self._values(x)).double().cpu()

    def tail_length(self, n: int) -> int:
        """How many of ``n`` training values weight the members: the last ``tail`` share, at least ``MIN_TAIL``."""
        return max(MIN_TAIL, round(self.tail * n))

    def fit(self, train: Any, valid: Any = None, callbacks: Sequence[Callback] = ()) -> Pool:
        """Weights on the tail of ``train`` (members fitted before each of its blocks), then the members on all
        of ``train``; ``valid`` is not used (the pool never looks past its training series). ``callbacks`` go to
        the members' Trainers."""
        if self.make is None:
            raise Unsupported("a loaded Pool cannot be fitted again: build a new one (series_contender('pool'))")
        x = self._elements(train, "training series")
        n_tail = self.tail_length(len(x))
        start = len(x) - n_tail
        if start < MIN_MEMBER_VALUES:
            needed = next(n for n in range(MIN_MEMBER_VALUES, 2**31) if n - self.tail_length(n) >= MIN_MEMBER_VALUES)
            raise SeqlabError(
                f"the pool needs at least {needed} training values ({MIN_MEMBER_VALUES} to fit its members on before "
                f"the last {self.tail:.0%}, on which it weights them); got {len(x)}"
            )
        bounds = np.linspace(start, len(x), min(self.blocks, n_tail) + 1).round().astype(int)
        scored = []
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):  # (K, b - a) each: fitted on x[:a], scored on x[a:b]
            before = self._fit_members(x[:a], callbacks)
            scored.append(
                np.stack([self._member_log_prob(c.model, c.reads_covariates, x[:b])[a:].numpy() for c in before])
            )
        log_probs = np.concatenate(scored, axis=1)  # (K, n_tail)
        w = pool_weights(log_probs)
        pooled = np.logaddexp.reduce(np.log(np.maximum(w, 1e-300))[:, None] + log_probs, axis=0)
        self.tail_scores = {
            "tail_values": n_tail,
            "fits_at": bounds[:-1].tolist(),
            "member_nll": dict(zip(self.names, (-log_probs.mean(axis=1)).tolist(), strict=True)),
            "pool_nll": float(-pooled.mean()),
        }
        final = self._fit_members(x, callbacks)
        self.members = [c.model for c in final]
        self.reads_covariates = [c.reads_covariates for c in final]
        self.weights, self._conditioned = torch.from_numpy(w), None
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
            given = x_prev if x_prev is None or reads or x_prev.dim() == 0 else x_prev[0]
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
        weight, then a value from it, fed to every member), conditioned once on the context (``_condition``)."""
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        params, state = self._condition(context)
        head = self.head
        paths = torch.empty(num_samples, horizon, dtype=torch.float64)
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
        return f"Pool (linear, weights by log score on the training tail): {shares}"

    def shares(self) -> list[tuple[str, float, str]]:
        """(name, weight, the member's own description) per member."""
        self._check_fitted()
        return [(n, float(w), m.describe()) for n, w, m in zip(self.names, self.weights, self.members, strict=True)]

    # -- persistence ---------------------------------------------------------------------------------------------
    def to_config(self) -> dict:
        self._check_fitted()
        config = {"members": self.names, "seed": self.seed, "tail": self.tail, "covariates": self.num_covariates}
        config["blocks"] = self.blocks
        members = [{"model": m.kind, **m.to_config()} for m in self.members]
        return {"config": config, "members": members, "tail_scores": self.tail_scores}

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
        tensors = {"weights": self.weights.clone()}
        for i, member in enumerate(self.members):
            tensors |= {f"member{i}.{k}": v.detach().cpu().contiguous() for k, v in member.state_dict().items()}
        return tensors

    def load_state_dict(self, tensors: dict[str, torch.Tensor]) -> None:
        weights = tensors.get("weights")
        if weights is None or weights.shape != (len(self.names),) or weights.dtype != torch.float64:
            raise RuntimeError(f"expected float64 'weights' of shape ({len(self.names)},)")
        if bool((weights < 0).any()) or abs(float(weights.sum()) - 1) > 1e-6:
            raise RuntimeError("the pool's weights must be non-negative and sum to 1")
        known = {"weights"} | {k for k in tensors if k.split(".")[0] in {f"member{i}" for i in range(len(self.names))}}
        if set(tensors) != known:
            raise RuntimeError(f"unexpected tensors {sorted(set(tensors) - known)[:3]}")
        for i, member in enumerate(self.members):
            prefix = f"member{i}."
            member.load_state_dict({k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)})
            if isinstance(member, torch.nn.Module):
                member.eval()
        self.weights, self._conditioned = weights.clone(), None

    @classmethod
    def conformance_cases(cls) -> list[ConformanceCase]:
        def make(name: str, part: np.ndarray) -> SeriesContender:
            model = {"random_walk": RandomWalk(), "ar": LinearAR(order=1), "garch": GARCH(GARCHConfig())}[name]
            return SeriesContender(name, model, lambda y, callbacks: model.fit(y.numpy()) and {})

        return [
            ConformanceCase("random_walk, ar, garch", "series", lambda y: cls(["random_walk", "ar", "garch"], make)),
        ]
