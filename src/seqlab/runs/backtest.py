"""``backtest``: rolling-origin backtest of probabilistic forecasts on one series, scored on data no model saw.

The series is taken on its modelled scale (after ``--transform``: daily log returns for prices); its last
``test_fraction`` is held out. Every model is built by name (``seqlab.runs.contenders.series_contender``) and
fitted on the part before it (GARCH by maximum likelihood; the neural models with their weights picked, and
training stopped, on the tail of that training part: ``seqlab.runs.sizing``; the pool with its weights chosen
on that tail: ``seqlab.models.pool``), and with ``refit_every = K`` fitted again every K held-out steps on all
values before that point. Nothing is ever chosen by a score on the held-out part.

Three parts: the engine (``walk_forward``: fit, stream the one-step parameters, draw sample paths at the
origins), the scores of one walk (``scores``, from ``seqlab.metrics``), and the comparison (``backtest``: the
paired column against a reference, ``seqlab.metrics.paired_difference``).

- one-step scores over EVERY held-out value y_t, each given all values before it (the model fitted last before
  t): the NLL ``-log p(y_t | y_<t)`` and the coverage of the central 50% and 80% one-step intervals;
- multi-step scores at ``folds`` origins spread over the held-out part: ``samples`` paths of ``horizon`` values
  (``SequenceModel.sample_paths``) against what happened (``seqlab.metrics.forecast_scores``);
- a paired column against a reference model R: the mean over held-out steps of d_t = NLL_t(model) - NLL_t(R)
  (negative: the model is better), its standard error sd(d) / sqrt(n) and the Newey-West t (Bartlett kernel,
  lag floor(4 (n / 100)^(2/9))), which allows for the dependence of d_t across days. R is ``reference``, or by
  default the GARCH-family row with the best AIC on the training part (else the random walk).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from seqlab.base import SequenceModel
from seqlab.data.dataset import ELEMENT_NAMES
from seqlab.data.spec import DataSpec, load_dataset
from seqlab.errors import OptionError, SeqlabError
from seqlab.limits import check_output_size
from seqlab.metrics import forecast_scores, paired_difference
from seqlab.models.pool import PRIOR
from seqlab.plots import backtest_chart
from seqlab.runs import sizing
from seqlab.runs.contenders import (
    GARCH_EXAMPLES,
    NEURAL_SERIES_MODELS,
    SERIES_MODELS,
    FitRecord,
    GARCHFit,
    SeriesContender,
    SeriesOptions,
    check_contenders,
    known_series_name,
    series_contender,
)
from seqlab.runs.forecast import pick_series
from seqlab.runs.progress import fitting
from seqlab.runs.report import Column, markdown_table, write_report

DEFAULT_MODELS = ("random_walk", "linear_ar", "garch-t", "egarch-t", "neural_ar", "gru", "lstm")
ONE_STEP_LEVELS = (0.5, 0.8)  # central one-step intervals whose coverage is reported


@dataclass
class BacktestSpec:
    data: DataSpec | None = None  # the CSV series (run_backtest; ``backtest`` takes the values themselves)
    series: str | None = None  # which series, with several (default: the first)
    models: tuple[str, ...] = DEFAULT_MODELS
    horizon: int = 5
    folds: int = 50
    samples: int = 200
    passes: int = sizing.MAX_PASSES  # passes over the data per neural model at most (early stopping)
    steps: int | None = None  # a fixed number of training steps instead
    head: str = "gaussian"
    hidden: int = 64
    seed: int = 0
    reference: str | None = None  # the paired column's reference (default: best GARCH by AIC, else random walk)
    refit_every: int | None = None  # refit every K held-out steps on all values before
    pool_prior: float = PRIOR  # the pool's Dirichlet prior on its weights (seqlab.models.pool)
    out: Path | None = None  # directory for backtest.md, .csv, .json and .png
    progress: bool = True

    def contender_options(self, differenced: bool) -> SeriesOptions:
        """How each contender is built and trained; a pool combines the other models named (or its default)."""
        members = tuple(m for m in self.models if m != "pool") or SeriesOptions.pool_members
        return SeriesOptions(
            differenced, self.head, self.hidden, self.passes, self.steps, self.seed, members, self.pool_prior
        )


# -- the engine: walk forward over the held-out steps, refitting where told ------------------------------------


@dataclass
class Walk:
    """One contender walked forward over the held-out part: the head's parameters of every held-out step
    (each given all before it, from the model fitted last before it), the sample paths at each origin, and what
    each fit did."""

    params: torch.Tensor  # (n - cut, P)
    paths: np.ndarray  # (S, K, h)
    fits: list[FitRecord]
    fit_seconds: float
    model: SequenceModel  # the model fitted last


@torch.no_grad()
def one_step_params(model: SequenceModel, data: torch.Tensor, start: int, end: int) -> torch.Tensor:
    """(end - start, P): the head's parameters of each of ``data[start:end]`` given every element before it,
    streamed through ``step`` (the contract's own definition of ``log_prob``)."""
    params, state = model.step(None, model.initial_state())
    out = []
    for t in range(end):
        if t >= start:
            out.append(params.detach().double().cpu())
        if t < end - 1:
            params, state = model.step(data[t], state)
    return torch.stack(out)


def walk_forward(
    build: Callable[[np.ndarray], SeriesContender],
    elements: np.ndarray,
    refits: list[int],
    origins: np.ndarray,
    horizon: int,
    samples: int,
    seed: int,
    progress: bool,
) -> Walk:
    """Fit ``build(elements[:start])`` at each refit point on all values before it, stream its one-step
    parameters up to the next refit point and draw ``samples`` paths of ``horizon`` values at each origin in
    between (``elements (n[, 1 + C])``; a contender that reads no covariates sees the values)."""
    n = len(elements)
    params, paths, fits, fit_seconds = [], [], [], 0.0
    for j, start in enumerate(refits):
        end = refits[j + 1] if j + 1 < len(refits) else n
        torch.manual_seed(seed)
        contender = build(elements[:start])
        data = torch.from_numpy(contender.seen(elements))
        t0 = time.perf_counter()
        watched = fitting(ELEMENT_NAMES["series"], progress) if contender.trains else contextlib.nullcontext(())
        with watched as callbacks:
            fits.append(contender.fit(data[:start], callbacks))
        fit_seconds += time.perf_counter() - t0
        params.append(one_step_params(contender.model, data, start, end))
        mine = origins[(origins >= start) & (origins < end)]
        bar = tqdm(mine, desc=f"{contender.name} forecasts", disable=not progress, leave=False, mininterval=1.0)
        for o in bar:
            k = int(np.flatnonzero(origins == o)[0])
            paths.append(contender.model.sample_paths(data[:o], horizon, samples, seed=seed + k).double().numpy())
    return Walk(torch.cat(params), np.stack(paths, axis=1), fits, fit_seconds, contender.model)


@dataclass
class ModelResult:
    """One contender's outcome: its row (the table's and the JSON's), every fit's typed record, and the one-step
    log densities of the held-out values (for the paired column)."""

    name: str
    row: dict
    fits: list[FitRecord]
    log_probs: np.ndarray

    def line(self, horizon: int) -> str:
        """The one-line report of ``run_backtest``."""
        r = self.row
        return (
            f"seqlab: {r['model']}: one-step NLL {r['nll']:.4f}, 80% coverage {r['coverage1_80']:.2f}; "
            f"{horizon}-step CRPS {r['crps']:.5f}{self.fits[0].summary()}"
        )


@dataclass
class BacktestOutcome(Mapping):
    """What ``backtest`` returns: the record (JSON: sizes, the reference, the rows under ``results``), read as a
    mapping, and each model's ``ModelResult``."""

    record: dict
    models: list[ModelResult]

    def __getitem__(self, key: str) -> object:
        return self.record[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.record)

    def __len__(self) -> int:
        return len(self.record)


# -- the statistics of one walk ------------------------------------------------------------------------------


def scores(walk: Walk, y_test: torch.Tensor, targets: np.ndarray, naive_mae: float) -> tuple[dict, np.ndarray]:
    """(row, one-step log densities (n - cut,)): NLL, one-step coverage and the multi-step forecast scores."""
    head = walk.model.head
    lp = -head.nll(walk.params, y_test).double().numpy()
    row = {"nll": float(-lp.mean())}
    for level in ONE_STEP_LEVELS:
        lo, hi = head.quantile(walk.params, (1 - level) / 2), head.quantile(walk.params, (1 + level) / 2)
        row[f"coverage1_{round(100 * level)}"] = float(((y_test >= lo) & (y_test <= hi)).double().mean())
    return row | forecast_scores(walk.paths, targets, naive_mae), lp


def backtest(
    y: np.ndarray,
    spec: BacktestSpec,
    differenced: bool,
    test_fraction: float = 0.2,
    covariates: np.ndarray | None = None,
    say: Callable[[str], None] | None = None,
) -> BacktestOutcome:
    """Scores per model of ``spec.models`` on ``y`` (n,), the modelled series; see the module docstring.
    ``covariates (n, C)``, row by row beside ``y``, are extra inputs of the neural models (carried forward over
    each forecast's horizon). Prints nothing but, to ``say``, the notice that the series is short for the models
    that learn, before their fits; ``run_backtest`` reports the results."""
    n, models, horizon = len(y), list(spec.models), spec.horizon
    elements = y if covariates is None else np.column_stack([y, covariates])  # what the neural models read
    cut = int(n * (1 - test_fraction))
    if cut < 30 or n - cut < horizon:
        raise SeqlabError(
            f"the series has {n} values: too few for a held-out part of {test_fraction:g} with horizon {horizon} "
            "after at least 30 training values"
        )
    if spec.reference is not None and spec.reference not in models:
        raise OptionError(f"{{0}} {spec.reference}: not among the models backtested ({', '.join(models)})", "reference")
    refits = list(range(cut, n, spec.refit_every)) if spec.refit_every else [cut]
    origins = np.unique(np.linspace(cut, n - horizon, spec.folds).round().astype(int))
    targets = np.stack([y[o : o + horizon] for o in origins])  # (K, h)
    # the random walk's point forecast (its median): no change in the level
    naive = np.zeros_like(targets) if differenced else np.stack([np.full(horizon, y[o - 1]) for o in origins])
    naive_mae = float(np.abs(naive - targets).mean())
    y_test = torch.from_numpy(y[cut:])
    options = spec.contender_options(differenced)
    check_contenders(models, options, elements.shape[1] - 1 if elements.ndim == 2 else 0)  # before any fit
    notice = sizing.short_series_notice(torch.from_numpy(elements[:cut]))
    if notice and any(m in (*NEURAL_SERIES_MODELS, "pool") for m in models) and say is not None:
        say(f"seqlab: {notice}")  # before the fits, which may take long
    results = []
    for name in models:
        walk = walk_forward(
            lambda part, name=name: series_contender(name, part, options),
            elements,
            refits,
            origins,
            horizon,
            spec.samples,
            spec.seed,
            spec.progress,
        )
        row, log_probs = scores(walk, y_test, targets, naive_mae)
        first = walk.fits[0]
        row = {"model": walk.fits[-1].label(name), **row, "fit_seconds": round(walk.fit_seconds, 2)}
        if first.detail is not None:
            row[first.detail] = [fit.as_json() for fit in walk.fits]
        results.append(ModelResult(name, row, walk.fits, log_probs))
    garch_aics = {r.name: r.fits[0].aic for r in results if isinstance(r.fits[0], GARCHFit)}
    chosen = spec.reference or (
        min(garch_aics, key=garch_aics.get) if garch_aics else "random_walk" if "random_walk" in models else models[0]
    )
    reference = next(r for r in results if r.name == chosen)
    for r in results:
        r.row |= (
            paired_difference(r.log_probs, reference.log_probs)
            if r.name != chosen
            else {"d_nll": 0.0, "d_nll_se": None, "d_nll_t": None}
        )
    record = {
        "values": n,
        "train_values": cut,
        "test_values": n - cut,
        "horizon": horizon,
        "folds": len(origins),
        "samples": spec.samples,
        "refit_every": spec.refit_every,
        "fits": len(refits),
        "reference": chosen,
        "reference_chosen_by": "given" if spec.reference else "AIC on the training part" if garch_aics else "default",
        "results": [r.row for r in results],
    }
    return BacktestOutcome(record, results)


def columns(reference: str, horizon: int) -> list[Column]:
    return [
        Column("model", "model"),
        Column("nll", "NLL/step", "{:.4f}"),
        Column("coverage1_50", "1-step cover 50%", "{:.2f}"),
        Column("coverage1_80", "1-step cover 80%", "{:.2f}"),
        Column("d_nll", f"dNLL vs {reference}", "{:+.4f}"),
        Column("d_nll_se", "s.e.", "{:.4f}"),
        Column("d_nll_t", "t (NW)", "{:.2f}"),
        Column("mae", f"{horizon}-step MAE", "{:.5f}"),
        Column("mase", "MASE", "{:.3f}"),
        Column("crps", "CRPS", "{:.5f}"),
        Column("coverage_50", "cover 50%", "{:.2f}"),
        Column("coverage_80", "cover 80%", "{:.2f}"),
        Column("fit_seconds", "fit s", "{:.2f}"),
    ]


@dataclass
class BacktestResult:
    title: str
    record: dict  # data, transform, sizes and the per-model rows ("results")
    table: str  # Markdown
    written: list[Path]


def run_backtest(spec: BacktestSpec, say: Callable[[str], None] = print) -> BacktestResult:
    unknown = [m for m in spec.models if not known_series_name(m)]
    if unknown or not spec.models:
        choices = ", ".join(SERIES_MODELS + GARCH_EXAMPLES)
        raise OptionError(
            f"{{0}}: unknown {', '.join(unknown) or '(none given)'}; choose from {choices} (GARCH: garch, gjr, "
            "egarch, or garchx / gjrx with the range, with -t or -skewt for the noise)",
            "models",
        )
    if spec.data.kind != "series":  # by the file's name, before reading it (audio: a WORLD analysis)
        raise SeqlabError(f"{spec.data.source}: {spec.data.kind} data; backtest takes a CSV series")
    dataset = load_dataset(spec.data, series=spec.series)  # --series: the others' lengths do not matter
    series = pick_series(dataset.series, spec.series)
    y = dataset.transform.apply(series.values, series.source, series.lines)
    covariates = None if series.covariates is None else series.covariates[dataset.transform.lost :]
    transform = dataset.spec.transform
    named = ", ".join(filter(None, (dataset.spec.covariates, dataset.spec.features)))
    extra = f", covariates {named} (neural models and GARCH-X only)" if covariates is not None else ""
    say(f"seqlab: backtest on {series.source}, transform {transform}{extra}: {len(y):,} values")
    check_output_size("--samples x --folds x --horizon", (spec.samples, spec.folds, spec.horizon))
    differenced = "diff" in dataset.transform.steps
    result = backtest(y, spec, differenced, dataset.spec.valid_fraction, covariates, say)
    for model in result.models:
        say(model.line(spec.horizon))
    record = {"data": series.source, "transform": transform, **result.record}
    if covariates is not None:
        record["covariates"] = named
    refit = f", refit every {spec.refit_every} steps ({result['fits']} fits)" if spec.refit_every else ""
    title = (
        f"{series.source} ({transform}{extra}): one-step scores on all {result['test_values']:,} held-out values"
        f"{refit}; {result['folds']} origins x horizon {result['horizon']}, {result['samples']} sample paths; "
        f"dNLL: mean paired NLL difference against {result['reference']} (negative: better)"
    )
    table_columns = columns(result["reference"], result["horizon"])
    written = []
    if spec.out is not None:
        written = write_report(spec.out, "backtest", result["results"], record, title, table_columns)
        written.append(Path(spec.out) / "backtest.png")
        backtest_chart(result["results"], written[-1], title)
    return BacktestResult(title, record, markdown_table(result["results"], table_columns), written)
