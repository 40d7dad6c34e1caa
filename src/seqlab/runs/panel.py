"""``backtest --holdout`` on a panel: every series forecast from the origin ``horizon`` values before its end (the
M-competitions' protocol) by each model, judged by scale-free measures averaged over the series.

Per series and model: MASE (seasonal scale), sMAPE, MSIS at 95 %, the CRPS of the sample paths scaled like MASE,
the coverage of the central 80 % and 95 % intervals, the mean log score per value on the scale-free transform
``y / scale`` (``log p(y) + log scale``: Gaussian with the forecast's mean and sd at each step, exact for the
linear models, a moment match for ETS's multiplicative forms), and the seconds its fit and forecast took. The
aggregate is the mean of each measure over the series (series where a measure is undefined are left out of that
mean and counted), each model's mean rank by MASE, and its total time.

Series are independent, so ``jobs`` processes take chunks of them; series ``i`` draws its paths with seed
``seed + i`` and every fit runs on one thread, so any ``jobs`` gives the same numbers. ``panel_pool`` is the one
model that looks across series: a first pass scores its members on every series' training tail, and one set of
weights chosen on all those tails together (``panel_weights``) pools the members on every series.
"""

from __future__ import annotations

import math
import multiprocessing
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from scipy.stats import norm
from tqdm import tqdm

from seqlab import atomic, metrics
from seqlab.base import SequenceModel
from seqlab.data.panel import Panel, load_panel
from seqlab.errors import OptionError, SeqlabError
from seqlab.models.ets import ETS, ETSConfig
from seqlab.models.global_ar import GlobalAR, GlobalARConfig, ensemble_paths
from seqlab.models.global_ar import point_forecast as global_point_forecast
from seqlab.models.linear_ar import LinearAR
from seqlab.models.pool import FitRecord, Pool, SeriesContender, pool_weights
from seqlab.models.random_walk import RandomWalk
from seqlab.runs.report import Column, csv_text, markdown_table, write_text

MEMBERS: dict[str, Callable[[int], SequenceModel]] = {
    "naive": lambda m: RandomWalk(differenced=False),
    "seasonal_naive": lambda m: RandomWalk(differenced=False, season=m),
    "ets": lambda m: ETS(ETSConfig("ZZZ", m)),
    # lags 1 .. m + 1 (a season and the step before it), the order chosen by BIC
    "linear_ar": lambda m: LinearAR(order="bic", max_order=m + 1),
}


# not the linear AR model: fitted to trending levels it is often not stationary, and the pool's step from the start
# of the series needs the first values' marginal distribution, which such an AR(p) does not have
POOL_MEMBERS = ("naive", "seasonal_naive", "ets")


def pool_of_members(m: int, weights: np.ndarray | None = None, **prior) -> Pool:
    """The linear pool of POOL_MEMBERS, weighted on the training part's tail (seqlab.models.pool), or with the
    ``weights`` given, or on the tail with ``prior`` (Pool's ``centre`` and ``strength``)."""

    def make(name: str, part: np.ndarray) -> SeriesContender:
        model = MEMBERS[name](m)

        def fit(y: torch.Tensor, callbacks) -> FitRecord:
            model.fit(y.numpy())
            return FitRecord()

        return SeriesContender(name, model, fit)

    return Pool(list(POOL_MEMBERS), make, blocks=POOL_BLOCKS, weights=weights, **prior)


PANEL_MODELS: dict[str, Callable[[int], SequenceModel]] = MEMBERS | {"pool": pool_of_members}
# the pool whose weights on each series are shrunk towards one set chosen on the whole panel (panel_weights) by a
# Dirichlet prior centred there with PANEL_POOL_STRENGTH pseudo-observations (inf: the panel's weights on every
# series); 40 chosen on M1 and Tourism monthly against 10 and inf, not on M3 (benchmarks/pool_panels.py,
# docs/panels.md: the lowest mean of the pool's four ratios to its best member, each at most 1.01)
PANEL_POOL = "panel_pool"
PANEL_POOL_STRENGTH = 40.0
# POOL_MEMBERS and a global network, one set of weights chosen on the last horizon of every series' training part
# (where the network's validation window left it out of sample), each series' forecast the mixture of the members'
# sample paths in those shares (mix_global_pool)
GLOBAL_POOL = "panel_pool_global"
GLOBAL_POOL_NETWORK = "global-lstm"  # its network, unless the run names another global model (the first named)
# one network trained across every series of the panel (seqlab.models.global_ar), by its cell
GLOBAL_MODELS = {"global-lstm": "lstm", "global-gru": "gru", "global-rnn": "rnn"}
PANEL_WIDE = (PANEL_POOL, GLOBAL_POOL)  # per-series fits weighted by what a first pass over the panel found
DEFAULT_PANEL_MODELS = ("naive", "seasonal_naive", "ets", "linear_ar", "pool")
LEVELS = (0.8, 0.95)
MEASURES = ("mase", "smape", "msis", "scaled_crps", "coverage_80", "coverage_95", "log_score")
# the pool's members refitted before each of 4 blocks of its weighting tail, then on the whole part: 5 fits each;
# chosen on M1 and Tourism monthly against 1 block (benchmarks/pool_panels.py, docs/panels.md), not on M3
POOL_BLOCKS = 4
CHUNKS_PER_JOB = 16  # chunks of series per process: small last chunks even out the processes' finishing times


@dataclass
class PanelSpec:
    data: str
    id_column: str | None = None
    column: str | None = None
    date_column: str | None = None
    season: int | None = None
    horizon: int = 5
    models: tuple[str, ...] = DEFAULT_PANEL_MODELS
    samples: int = 200
    seed: int = 0
    jobs: int = 1
    cluster: str | None = None  # a Dask scheduler's address (tcp://host:8786), or local:N for N local workers
    steps: int | None = None  # the global models' training steps (default: GlobalARConfig's)
    global_seeds: int = 1  # a global model: this many networks (seeds seed, seed + 1, ...), forecast as a mixture
    out: Path | None = None
    progress: bool = True

    def check(self) -> None:
        unknown = [m for m in self.models if m not in PANEL_MODELS and m not in PANEL_WIDE and m not in GLOBAL_MODELS]
        if unknown:
            known = ", ".join([*PANEL_MODELS, *PANEL_WIDE, *GLOBAL_MODELS])
            raise OptionError(f"{{0}}: unknown {unknown[0]} on a panel; choose from {known}", "models")
        if self.jobs < 1:
            raise OptionError(f"{{0}} must be a positive integer, got {self.jobs}", "jobs")
        if self.global_seeds < 1:
            raise OptionError(f"{{0}} must be a positive integer, got {self.global_seeds}", "global_seeds")


@dataclass
class PanelResult:
    panel: Panel
    rows: list[dict]  # one per series and model
    summary: list[dict]  # one per model
    left_out: dict[str, str]
    seconds: float
    # per panel-wide pool (panel_pool, panel_pool_global), its weights per member, chosen on the whole panel
    panel_pool_weights: dict[str, dict[str, float]] | None = None
    written: list[Path] = field(default_factory=list)

    @property
    def record(self) -> dict:
        return {
            "data": self.panel.source,
            "series": len(self.panel),
            "season": self.panel.season,
            "models": self.summary,
            "left_out": self.left_out,
            "seconds": self.seconds,
        } | ({"panel_pool_weights": self.panel_pool_weights} if self.panel_pool_weights else {})


def forecast_one(model: SequenceModel, train: np.ndarray, horizon: int, samples: int, seed: int) -> dict:
    """Point, mean, sd, intervals and sample paths of ``model`` (fitted on ``train``) for the next ``horizon``."""
    paths = model.sample_paths(train, horizon, samples, seed=seed).numpy()
    return from_paths(paths, model.closed_form_forecast(train, horizon), point_forecast(model, train, horizon))


def from_paths(paths: np.ndarray, closed: tuple | None = None, point: np.ndarray | None = None) -> dict:
    """A forecast's summaries from its sample paths (S, horizon): the exact Gaussian ``closed`` (mean, sd) where
    the model has one, else the paths' moments and quantiles; the point forecast given, else the mean."""
    if closed is not None:
        mean, sd = closed
        bands = {
            level: (mean + norm.ppf((1 - level) / 2) * sd, mean - norm.ppf((1 - level) / 2) * sd) for level in LEVELS
        }
    else:
        mean, sd = paths.mean(axis=0), paths.std(axis=0)
        bands = {level: tuple(np.quantile(paths, [(1 - level) / 2, (1 + level) / 2], axis=0)) for level in LEVELS}
    point = mean if point is None else point
    return {"point": np.asarray(point), "mean": mean, "sd": np.maximum(sd, 1e-300), "bands": bands, "paths": paths}


def point_forecast(model: SequenceModel, train: np.ndarray, horizon: int) -> np.ndarray | None:
    """The model's own point forecast (ETS: every future error 0), the exact mean of a closed form, or a pool's
    weighted mean of its members' (the mixture's mean); None: take the paths' mean."""
    if hasattr(model, "point_forecast"):
        return np.asarray(model.point_forecast(train, horizon))
    if isinstance(model, Pool):
        points = [point_forecast(member, train, horizon) for member in model.members]
        if all(p is not None for p in points):
            return sum(float(w) * p for w, p in zip(model.weights, points, strict=True))
        return None
    closed = model.closed_form_forecast(train, horizon)
    return None if closed is None else closed[0]


def score_one(train: np.ndarray, y: np.ndarray, f: dict, period: int) -> dict:
    """The scale-free measures of one forecast (module docstring); NaN where a measure is undefined."""
    lower95, upper95 = f["bands"][0.95]
    scores = metrics.holdout_scores(train, y, f["point"], lower95, upper95, period, 0.95, f["paths"])
    lower80, upper80 = f["bands"][0.8]
    scores["coverage_80"] = metrics.coverage(y, lower80, upper80)
    scale = metrics.seasonal_scale(train, period)
    log_density = norm.logpdf(y, f["mean"], f["sd"]).mean()
    scores["log_score"] = float(log_density + math.log(scale)) if scale > 0 else math.nan
    return scores


def backtest_series(
    ident: str,
    y: np.ndarray,
    index: int,
    models: tuple[str, ...],
    horizon: int,
    period: int,
    samples: int,
    seed: int,
    shared_weights: np.ndarray | None = None,
    global_weights: np.ndarray | None = None,
    tail: dict | None = None,
) -> list[dict]:
    """Every model on one series: fitted on all but the last ``horizon`` values, scored on those (``panel_pool``
    with ``shared_weights``, chosen on the whole panel, and the series' ``tail`` scores from the first pass;
    ``panel_pool_global``'s members with a share of ``global_weights``). A single model's forecast is made once, for
    its own row and for ``panel_pool_global``'s members. None for a pool's weights: the panel gave none (the run
    said why), and its rows say so."""
    train, test = y[:-horizon], y[-horizon:]
    forecasts: dict[str, dict] = {}

    def forecast(name: str) -> dict:
        if name not in forecasts:
            model = PANEL_MODELS[name](period).fit(train)
            forecasts[name] = forecast_one(model, train, horizon, samples, seed + index)
        return forecasts[name]

    rows = []
    for name in models:
        start = time.perf_counter()
        row = {"id": ident, "model": name, "values": len(train)}
        try:
            if name in PANEL_WIDE and (shared_weights if name == PANEL_POOL else global_weights) is None:
                raise SeqlabError(f"{name}: the panel gave no weights (the run's output says why)")
            if name == GLOBAL_POOL:  # the members' forecasts, mixed with the network's and scored by the caller
                shares = zip(POOL_MEMBERS, global_weights[:-1], strict=True)
                row["members"] = [forecast(m) if w > 0 else None for m, w in shares]
            elif name == PANEL_POOL:
                model = panel_pool(period, shared_weights, train, tail)
                row |= score_one(train, test, forecast_one(model, train, horizon, samples, seed + index), period)
            else:
                row |= score_one(train, test, forecast(name), period)
            row["error"] = ""
        except Exception as e:  # one model failing on one series is a row with its reason, never a stopped panel
            row |= dict.fromkeys(MEASURES, math.nan) | {"error": f"{type(e).__name__}: {e}"}
        row["seconds"] = time.perf_counter() - start + (tail["seconds"] if name == PANEL_POOL and tail else 0.0)
        rows.append(row)
    return rows


def panel_pool(period: int, shared_weights: np.ndarray, train: np.ndarray, tail: dict | None = None) -> Pool:
    """``panel_pool`` fitted on ``train``: its weights on the series' tail shrunk towards the panel's (a series too
    short for a tail of its own takes the panel's). ``tail``: the series' scores from the first pass
    (``tail_chunk``), whose block fits are then not repeated."""
    if math.isinf(PANEL_POOL_STRENGTH) or tail is not None and tail["log_probs"] is None:
        return pool_of_members(period, shared_weights).fit(train)
    scored = None if tail is None else (tail["log_probs"], tail["fits_at"], tail["left_out"])
    try:
        return pool_of_members(period, centre=shared_weights, strength=PANEL_POOL_STRENGTH).fit(train, tail=scored)
    except SeqlabError:
        return pool_of_members(period, shared_weights).fit(train)


def backtest_chunk(chunk: list[tuple[str, np.ndarray, int, dict | None]], *arguments) -> list[dict]:
    """A process's share: its series one after the other (``backtest_series(ident, y, i, *arguments, tail)``),
    torch on one thread (no oversubscription, and the same arithmetic in every process)."""

    def rows() -> list[dict]:
        return [row for ident, y, i, tail in chunk for row in backtest_series(ident, y, i, *arguments, tail)]

    return _one_thread(rows)


def tail_chunk(chunk: list[tuple[str, np.ndarray, int]], horizon: int, period: int) -> list[dict]:
    """``panel_pool``'s first pass on a process's share: the pool members' out-of-sample log densities (K, n) on
    each series' weighting tail (``Pool.score_tail``), or why the series has none."""

    def one(ident: str, y: np.ndarray) -> dict:
        start = time.perf_counter()
        try:
            log_probs, fits_at, left_out = pool_of_members(period).score_tail(torch.from_numpy(y[:-horizon]))
            out = {"id": ident, "log_probs": log_probs, "fits_at": fits_at, "left_out": left_out}
        except Exception as e:  # a series the pool cannot weight on adds nothing to the panel's weights
            out = {"id": ident, "log_probs": None, "left_out": {"pool": f"{type(e).__name__}: {e}"}}
        return out | {"seconds": time.perf_counter() - start}

    return _one_thread(lambda: [one(ident, y) for ident, y, _ in chunk])


def last_values_chunk(chunk: list[tuple[str, np.ndarray, int]], horizon: int, period: int) -> list[dict]:
    """``panel_pool_global``'s first pass on a process's share: each POOL_MEMBER fitted on the training part but
    its last ``horizon`` values, and its one-step log densities (K, horizon) on those (the values where the global
    network's validation window left it out of sample); None where a member cannot be fitted or scored."""

    def one(ident: str, y: np.ndarray) -> dict:
        train = y[:-horizon]
        try:
            log_probs = []
            for name in POOL_MEMBERS:
                torch.manual_seed(0)
                model = PANEL_MODELS[name](period).fit(train[:-horizon])
                log_probs.append(model.log_prob(train).double().numpy()[-horizon:])
            return {"id": ident, "log_probs": np.stack(log_probs)}
        except Exception as e:  # this series adds nothing to the weights
            return {"id": ident, "log_probs": None, "why": f"{type(e).__name__}: {e}"}

    return _one_thread(lambda: [one(ident, y) for ident, y, _ in chunk])


def mixture_counts(weights: np.ndarray, total: int) -> np.ndarray:
    """How many of ``total`` paths each member gives a mixture with ``weights``: ``total * w_k`` rounded down, the
    remaining paths to the largest remainders (Hamilton's method: the counts sum to ``total`` and each is within
    one of its share)."""
    exact = np.asarray(weights, dtype=np.float64) * total
    counts = np.floor(exact).astype(np.int64)
    extra = np.argsort(-(exact - counts), kind="stable")[: total - counts.sum()]
    counts[extra] += 1
    return counts


def _one_thread(work: Callable[[], list]) -> list:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return work()
    finally:
        torch.set_num_threads(threads)


def panel_weights(tails: list[dict], pool: str = PANEL_POOL) -> np.ndarray:
    """One set of pool weights for a whole panel: those maximising the pool's log score summed over every value of
    every series' weighting tail (``pool_weights`` on the tails' ``log_probs`` (K, n) side by side, in the order
    given: the work's, so any number of processes gives the same sum). A series' scale adds the same constant to
    each member's log density at every value of its tail, so it does not move the weights: the series weigh by their
    tails' lengths alone. Series where a member could not be scored add nothing; where no series has every member
    scored (a season longer than the tails' starts, say), the members scored on every series' tail share the
    weights and the others get 0, as in a series' own pool."""
    scored = [t["log_probs"] for t in tails if t["log_probs"] is not None]
    complete = [lp for lp in scored if np.isfinite(lp).all()]
    if complete:
        return pool_weights(np.concatenate(complete, axis=1))
    kept = np.logical_and.reduce([np.isfinite(lp).all(axis=1) for lp in scored]) if scored else np.zeros(0, bool)
    if not kept.any():
        raise SeqlabError(f"{pool}: no member could be scored on the weighting tails of every series")
    w = np.zeros(len(kept))
    w[kept] = pool_weights(np.concatenate([lp[kept] for lp in scored], axis=1))
    return w


def summarise(rows: list[dict], models: tuple[str, ...]) -> list[dict]:
    """Per model: the mean of each measure over the series where it is defined, how many were not, the mean rank
    by MASE (1 best; ties share), and the total seconds."""
    by_series: dict[str, dict[str, float]] = {}
    for r in rows:
        by_series.setdefault(r["id"], {})[r["model"]] = r["mase"]
    ranks = {m: [] for m in models}
    for scores in by_series.values():
        values = np.array([scores.get(m, math.nan) for m in models])
        if np.isfinite(values).all():
            for m, rank in zip(models, _average_ranks(values), strict=True):
                ranks[m].append(rank)
    summary = []
    for m in models:
        own = [r for r in rows if r["model"] == m]
        entry: dict = {"model": m, "series": len(own)}
        for key in MEASURES:
            values = np.array([r[key] for r in own if r[key] is not None], dtype=float)
            finite = values[np.isfinite(values)]
            entry[key] = float(finite.mean()) if len(finite) else None
        entry["undefined"] = sum(1 for r in own if not np.isfinite(r["mase"]))
        entry["failed"] = sum(1 for r in own if r["error"])
        entry["mean_rank"] = float(np.mean(ranks[m])) if ranks[m] else None
        entry["seconds"] = float(sum(r["seconds"] for r in own))
        summary.append(entry)
    return summary


def _average_ranks(values: np.ndarray) -> np.ndarray:
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(1, len(values) + 1)
    for v in np.unique(values):  # ties share their mean rank
        ranks[values == v] = ranks[values == v].mean()
    return ranks


def run_panel_backtest(spec: PanelSpec, say: Callable[[str], None] = print) -> PanelResult:
    spec.check()
    panel = load_panel(spec.data, spec.id_column, spec.column, spec.date_column, spec.season, spec.horizon + 2)
    left_out = dict(panel.left_out)
    work = []
    for i, ident in enumerate(panel.ids):
        y = panel.series(i)
        if len(y) - spec.horizon <= panel.season:  # the seasonal scale needs more than a season before the horizon
            left_out[ident] = f"{len(y)} values: {spec.horizon} held out leave no more than a season ({panel.season})"
        else:
            work.append((ident, y, i))
    if not work:
        raise SeqlabError(f"{panel.source}: no series is long enough for a horizon of {spec.horizon}")
    say(
        f"seqlab: panel {panel.source}: {len(work)} series (season {panel.season}), {len(left_out)} left out; "
        f"horizon {spec.horizon}; models {', '.join(spec.models)}; {spec.jobs} process(es)"
    )
    local = tuple(m for m in spec.models if m not in GLOBAL_MODELS)
    networks = [m for m in spec.models if m in GLOBAL_MODELS]
    pooled_network = networks[0] if networks else GLOBAL_POOL_NETWORK
    if GLOBAL_POOL in spec.models and pooled_network not in networks:
        networks.append(pooled_network)
    run = _run_on_cluster if spec.cluster else _run
    order = {ident: k for k, (ident, _, _) in enumerate(work)}

    def in_order(results: list[dict]) -> list[dict]:  # the processes finish in any order; the work's is fixed
        return sorted(results, key=lambda r: order[r["id"]])

    start = time.perf_counter()
    shared, global_weights, panel_pool, rows = None, None, None, []
    if PANEL_POOL in local:
        say(f"seqlab: weighting the panel pool on the {len(work)} series' training tails")
        tails = in_order(run(work, tail_chunk, (spec.horizon, panel.season), spec.cluster or spec.jobs, spec.progress))
        try:
            shared = panel_weights(tails)
            panel_pool = {PANEL_POOL: dict(zip(POOL_MEMBERS, shared.tolist(), strict=True))}
            say("seqlab: panel pool weights " + ", ".join(f"{n} {w:.3f}" for n, w in panel_pool[PANEL_POOL].items()))
        except SeqlabError as e:  # its rows say why; the other models go on
            say(f"seqlab: {e}")
    trained = {}
    for name in networks:
        say(f"seqlab: training {name} on the {len(work)} series' training parts")
        trained[name] = train_global(name, work, panel, spec)
        if name in spec.models:
            rows += global_rows(name, work, spec, *trained[name])
    if GLOBAL_POOL in local:
        say(f"seqlab: weighting {GLOBAL_POOL} on the last {spec.horizon} values of the {len(work)} training parts")
        last = run(work, last_values_chunk, (spec.horizon, panel.season), spec.cluster or spec.jobs, spec.progress)
        try:
            global_weights = global_pool_weights(in_order(last), pooled_network, *trained[pooled_network])
            panel_pool = (panel_pool or {}) | {GLOBAL_POOL: global_weights}
            say(f"seqlab: {GLOBAL_POOL} weights " + ", ".join(f"{n} {w:.3f}" for n, w in global_weights.items()))
        except SeqlabError as e:
            say(f"seqlab: {e}")
    global_shares = None if global_weights is None else np.array(list(global_weights.values()))
    arguments = (local, spec.horizon, panel.season, spec.samples, spec.seed, shared, global_shares)
    if local:
        by_id = {t["id"]: t for t in tails} if PANEL_POOL in local else {}
        items = [(ident, y, i, by_id.get(ident)) for ident, y, i in work]  # each series with its first-pass tail
        local_rows = run(items, backtest_chunk, arguments, spec.cluster or spec.jobs, spec.progress)
        if global_weights is not None:
            local_rows = mix_global_pool(local_rows, work, order, spec, trained[pooled_network], global_weights)
        rows += local_rows
    seconds = time.perf_counter() - start
    rows.sort(key=lambda r: (order[r["id"]], spec.models.index(r["model"])))
    result = PanelResult(panel, rows, summarise(rows, spec.models), left_out, seconds, panel_pool)
    if spec.out is not None:
        result.written = write_panel_report(result, Path(spec.out))
    return result


def _run(work: list, task: Callable, arguments: tuple, jobs: int, progress: bool) -> list[dict]:
    """``task(chunk, *arguments)`` over chunks of ``work`` in ``jobs`` processes, its rows gathered."""
    bar = tqdm(total=len(work), unit="series", disable=not progress, leave=False)
    try:
        if jobs == 1:
            rows = []
            for item in work:
                rows += task([item], *arguments)
                bar.update(1)
            return rows
        chunks = _chunks(work, jobs)
        rows = []
        # fork: a worker needs nothing re-imported (a user's script without a __main__ guard works); each runs torch
        # on one thread (backtest_chunk), as PyTorch's own DataLoader workers do
        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("fork")) as pool:
            futures = {pool.submit(task, chunk, *arguments): len(chunk) for chunk in chunks}
            for future in as_completed(futures):
                rows += future.result()
                bar.update(futures[future])
        return rows
    finally:
        bar.close()


def season_phases(starts: list[str], season: int) -> np.ndarray:
    """Each series' position in the season at its first value, from its start date (monthly: the month, quarterly:
    the quarter); 0 where there is no date or no calendar season."""
    phases = np.zeros(len(starts), dtype=np.int64)
    for k, start in enumerate(starts):
        if start and season in (12, 4):
            month = int(start[5:7]) - 1
            phases[k] = month if season == 12 else month // 3
    return phases


def train_global(name: str, work: list, panel: Panel, spec: PanelSpec) -> tuple:
    """One network trained on every series' training part (its own validation window cut from their ends), or
    ``global_seeds`` networks of seeds ``seed, seed + 1, ...`` forecast as their mixture (``ensemble_paths``), every
    series forecast in one batched pass: (the networks, the paths (N, S, h), the training parts as values, offsets
    and phases, the seconds per series)."""
    h, m = spec.horizon, panel.season
    trains = [y[:-h] for _, y, _ in work]
    values = np.concatenate(trains)
    offsets = np.concatenate([[0], np.cumsum([len(t) for t in trains])]).astype(np.int64)
    phases = season_phases([panel.starts[i] for _, _, i in work], m)
    start = time.perf_counter()
    config = GlobalARConfig(cell=GLOBAL_MODELS[name], season=m, horizon=h, seed=spec.seed)
    config = replace(config, steps=spec.steps) if spec.steps else config
    members = []
    for k in range(spec.global_seeds):
        torch.manual_seed(spec.seed + k)  # the initial weights: the same numbers whatever ran before in the process
        members.append(GlobalAR(replace(config, seed=spec.seed + k)).fit_panel(values, offsets, m, phases))
    paths = ensemble_paths(members, values, offsets, h, spec.samples, spec.seed, phases)  # (N, S, h)
    return members, paths, (values, offsets, phases), (time.perf_counter() - start) / len(work)


def global_rows(name: str, work: list, spec: PanelSpec, members, paths, parts, each: float) -> list[dict]:
    """``train_global``'s forecasts scored as the per-series models' are; a row's seconds are the total shared
    evenly over the series."""
    h, m = spec.horizon, members[0].config.season
    rows = []
    for k, (ident, y, _) in enumerate(work):
        train = y[:-h]
        f = from_paths(paths[k], point=global_point_forecast(paths[k][None])[0])
        row = {"id": ident, "model": name, "values": len(train)} | score_one(train, y[-h:], f, m)
        rows.append(row | {"error": "", "seconds": each})
    return rows


def global_pool_weights(tails: list[dict], network: str, members, paths, parts, each: float) -> dict[str, float]:
    """``panel_pool_global``'s weights: ``panel_weights`` on the last horizon of every training part, the local
    members' log densities there (``tails``, ``last_values_chunk``'s, in the work's order) with the network's below
    them (the equal mixture of its seeds'; a series it does not validate adds nothing)."""
    validated, densities = None, []
    for seed_network in members:
        validated, log_density = seed_network.last_values_log_densities(*parts)
        densities.append(log_density)
    network_lp = np.logaddexp.reduce(np.stack(densities), axis=0) - math.log(len(members))  # (n, h)
    by_index = dict(zip(validated.tolist(), network_lp, strict=True))
    blocks = [
        {"log_probs": None if t["log_probs"] is None or k not in by_index else np.vstack([t["log_probs"], by_index[k]])}
        for k, t in enumerate(tails)
    ]
    weights = panel_weights(blocks, GLOBAL_POOL)
    return dict(zip([*POOL_MEMBERS, network], weights.tolist(), strict=True))


def mix_global_pool(
    rows: list[dict], work: list, order: dict[str, int], spec: PanelSpec, trained: tuple, weights: dict
) -> list[dict]:
    """``panel_pool_global``'s rows: each series' sample paths the mixture of its members' (from the processes) and
    the network's in the shares ``weights`` (``mixture_counts``), its point forecast the weighted mean of theirs
    (the network's: its paths' median), scored as every other model's."""
    members, paths, parts, each = trained
    w = np.array(list(weights.values()))
    counts = mixture_counts(w, spec.samples)
    h, m = spec.horizon, members[0].config.season
    for row in rows:
        if row["model"] != GLOBAL_POOL or "members" not in row:
            continue
        start = time.perf_counter()
        k = order[row["id"]]
        y = work[k][1]
        train = y[:-h]
        forecasts = row.pop("members")
        network = paths[k]
        shares = [(n, wk, f["paths"], f["point"]) for n, wk, f in zip(counts[:-1], w[:-1], forecasts, strict=True) if f]
        shares.append((counts[-1], w[-1], network, global_point_forecast(network[None])[0]))
        mixed = np.concatenate([paths_k[:n] for n, _, paths_k, _ in shares])  # a member without a share: None
        point = sum(wk * p for _, wk, _, p in shares)
        row |= score_one(train, y[-h:], from_paths(mixed, point=point), m)
        row["seconds"] += each + time.perf_counter() - start
    return rows


def _chunks(work: list, parts: int) -> list[list]:
    size = max(1, math.ceil(len(work) / (parts * CHUNKS_PER_JOB)))
    return [work[k : k + size] for k in range(0, len(work), size)]


def _run_on_cluster(work: list, task: Callable, arguments: tuple, address: str, progress: bool) -> list[dict]:
    """The same chunks on a Dask cluster: ``local:N`` starts N worker processes here, anything else is a running
    scheduler's address (``dask scheduler`` and ``dask worker ADDRESS`` on the machines; docs/panels.md)."""
    try:  # the optional extra (pip install seqlab[cluster]): imported only when a cluster is asked for
        from dask.distributed import Client, LocalCluster
        from dask.distributed import as_completed as completed
    except ImportError:
        raise OptionError("{0} needs Dask: pip install 'seqlab[cluster]'", "cluster") from None
    local = address.startswith("local:")
    if local and not address[6:].isdigit() or local and int(address[6:]) < 1:
        raise OptionError(f"{{0}} local:N needs a positive number of workers, got {address!r}", "cluster")
    cluster = LocalCluster(int(address[6:]), threads_per_worker=1, dashboard_address=None) if local else None
    bar = tqdm(total=len(work), unit="series", disable=not progress, leave=False)
    try:
        with Client(cluster if local else address) as client:
            workers = max(1, len(client.scheduler_info()["workers"]))
            futures = [client.submit(task, chunk, *arguments, pure=False) for chunk in _chunks(work, workers)]
            rows = []
            for future in completed(futures):
                part = future.result()
                rows += part
                bar.update(len({r["id"] for r in part}))
            return rows
    except OSError as e:
        raise SeqlabError(f"cannot reach the Dask scheduler at {address}: {e}") from None
    finally:
        bar.close()
        if cluster is not None:
            cluster.close()


SUMMARY_COLUMNS = [
    Column("model", "model"),
    Column("series", "series", "{:,}"),
    Column("mase", "MASE", "{:.3f}"),
    Column("smape", "sMAPE %", "{:.2f}"),
    Column("msis", "MSIS", "{:.2f}"),
    Column("scaled_crps", "scaled CRPS", "{:.3f}"),
    Column("coverage_80", "cover 80%", "{:.3f}"),
    Column("coverage_95", "cover 95%", "{:.3f}"),
    Column("log_score", "log score", "{:.3f}"),
    Column("mean_rank", "rank (MASE)", "{:.2f}"),
    Column("seconds", "seconds", "{:.1f}"),
]


def summary_table(result: PanelResult) -> str:
    return markdown_table(result.summary, SUMMARY_COLUMNS)


def write_panel_report(result: PanelResult, out: Path) -> list[Path]:
    """``out/panel.md`` (the summary), ``out/panel.json`` (the record) and ``out/panel_series.csv`` (every row)."""
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "panel.md", out / "panel.json", out / "panel_series.csv"]
    write_text(paths[0], summary_table(result))
    atomic.write_json(paths[1], result.record)
    write_text(paths[2], csv_text(result.rows))
    return paths
