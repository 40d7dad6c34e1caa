"""``backtest``: rolling-origin backtest of probabilistic forecasts on one series, scored on data no model saw.

The series is taken on its modelled scale (after ``--transform``: daily log returns for prices); its last
``test_fraction`` is held out. Every model is fitted on the part before it (GARCH by maximum likelihood; the
neural models with their weights picked, and training stopped, on the tail of that training part:
``seqlab.runs.sizing``), and with ``refit_every = K`` fitted again every K held-out steps on all values before
that point. Nothing is ever chosen by a score on the held-out part.

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
import math
import time
from collections.abc import Callable, Sequence
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
from seqlab.metrics import forecast_scores
from seqlab.models.garch import GARCH, NAME_EXAMPLES, GARCHConfig
from seqlab.models.latent_ar import LatentAR, LatentARConfig
from seqlab.models.linear_ar import LinearAR
from seqlab.models.neural_ar import NeuralAR, NeuralARConfig
from seqlab.models.random_walk import RandomWalk
from seqlab.plots import backtest_chart
from seqlab.runs import sizing
from seqlab.runs.forecast import pick_series
from seqlab.runs.progress import fitting
from seqlab.runs.report import Column, markdown_table, write_report
from seqlab.training import Callback

NEURAL_MODELS = ("neural_ar", "rnn", "lstm", "gru")
GARCH_EXAMPLES = NAME_EXAMPLES  # GARCH-family names: volatility[-noise] (seqlab.models.garch)
BACKTEST_MODELS = ("random_walk", "linear_ar", *NEURAL_MODELS)
DEFAULT_MODELS = ("random_walk", "linear_ar", "garch-t", "egarch-t", "neural_ar", "gru", "lstm")
NEURAL_LR = 2e-3
ONE_STEP_LEVELS = (0.5, 0.8)  # central one-step intervals whose coverage is reported


def known_name(name: str) -> bool:
    return name in BACKTEST_MODELS or GARCHConfig.from_name(name) is not None


def make_model(name: str, train: np.ndarray, differenced: bool, head: str, hidden: int) -> SequenceModel:
    """``train``: the modelled series (T,), or (T, 1 + C) with past covariates, which the
    models that take them (``num_covariates``: the neural models, GARCH-X) read."""
    covariates = train.shape[1] - 1 if train.ndim == 2 else 0
    if name == "random_walk":
        return RandomWalk(differenced)
    if name == "linear_ar":
        return LinearAR(order="bic", max_order=10)  # BIC: AIC overfits a short series (monthly: +1 nat)
    if name == "neural_ar":
        config = NeuralARConfig(window=20, hidden_size=hidden, head=head, covariates=covariates)
        return NeuralAR.for_series(torch.from_numpy(train), config)
    if name in ("rnn", "lstm", "gru"):
        config = LatentARConfig(cell=name, hidden_size=hidden, head=head, covariates=covariates)
        return LatentAR.for_series(torch.from_numpy(train), config)
    if (garch := GARCHConfig.from_name(name)) is not None:
        model = GARCH(garch)
        if model.num_covariates and model.num_covariates != covariates:
            raise OptionError(
                f"{{0}}: {name} reads one exogenous variance beside the values; the data have {covariates} "
                "covariates (give {1} range)",
                "models",
                "features",
            )
        return model
    raise OptionError(f"{{0}}: unknown {name!r}; choose from {', '.join(BACKTEST_MODELS + GARCH_EXAMPLES)}", "models")


def fit_model(
    model: SequenceModel, data, passes: int, steps: int | None, seed: int, callbacks: Sequence[Callback] = ()
) -> dict:
    """Fit on ``data`` (everything before the fitting point): the neural models on all but its tail, which picks
    their weights and stops them (``sizing``), with the Trainer's ``callbacks``; returns what the fit did (steps,
    passes, stop reason)."""
    if not isinstance(model, (LatentAR, NeuralAR)):
        model.fit(data.numpy() if isinstance(data, torch.Tensor) else data)
        return {}
    fit_part, tail = sizing.split_tail(data)
    options = sizing.trainer_options(len(fit_part), passes)
    if steps is not None:
        options["steps"] = steps
    if tail is None:
        options["patience"] = 0
    model.fit(fit_part, tail, callbacks=callbacks, lr=NEURAL_LR, seed=seed, **options)
    record = model.training_result
    per_pass = sizing.steps_per_pass(len(fit_part), options["window"], options["batch_size"])
    return {"steps": record.steps, "passes": round(record.steps / per_pass, 1), "stopped": record.stopped_because}


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


def in_sample_aic(model: SequenceModel) -> float | None:
    """AIC on the training part of a GARCH-family model (what picks the default reference), else None."""
    if isinstance(model, GARCH) and model.training_result is not None:
        return 2 * len(model.params) - 2 * model.training_result.loglik
    return None


def newey_west_t(d: np.ndarray) -> float:
    """mean(d) / sqrt(S / n), S the Bartlett-weighted long-run variance with lag floor(4 (n / 100)^(2/9))."""
    n = len(d)
    if n < 2:
        return math.nan
    e = d - d.mean()
    lags = int(4 * (n / 100) ** (2 / 9))
    s = float(e @ e) / n
    for lag in range(1, min(lags, n - 1) + 1):
        s += 2 * (1 - lag / (lags + 1)) * float(e[lag:] @ e[:-lag]) / n
    return float(d.mean() / math.sqrt(s / n)) if s > 0 else math.nan


def paired(log_probs: np.ndarray, reference: np.ndarray) -> dict:
    """Mean of d_t = NLL_t(model) - NLL_t(reference) over the held-out steps, its standard error and NW t."""
    d = reference - log_probs
    se = float(d.std(ddof=1) / math.sqrt(len(d))) if len(d) > 1 else math.nan
    return {"d_nll": float(d.mean()), "d_nll_se": se, "d_nll_t": newey_west_t(d)}


def backtest(
    y: np.ndarray,
    models: list[str],
    horizon: int,
    folds: int,
    differenced: bool,
    test_fraction: float = 0.2,
    samples: int = 200,
    passes: int = sizing.MAX_PASSES,
    steps: int | None = None,
    head: str = "gaussian",
    hidden: int = 64,
    seed: int = 0,
    progress: bool = True,
    say: Callable[[str], None] = print,
    covariates: np.ndarray | None = None,
    reference: str | None = None,
    refit_every: int | None = None,
) -> dict:
    """Scores per model on ``y`` (n,), the modelled series; see the module docstring. ``covariates (n, C)``, row
    by row beside ``y``, are extra inputs of the neural models and GARCH-X (carried forward over each forecast's
    horizon)."""
    n = len(y)
    elements = y if covariates is None else np.column_stack([y, covariates])  # what models with covariates read
    cut = int(n * (1 - test_fraction))
    if cut < 30 or n - cut < horizon:
        raise SeqlabError(
            f"the series has {n} values: too few for a held-out part of {test_fraction:g} with horizon {horizon} "
            "after at least 30 training values"
        )
    if reference is not None and reference not in models:
        raise OptionError(f"{{0}} {reference}: not among the models backtested ({', '.join(models)})", "reference")
    refits = list(range(cut, n, refit_every)) if refit_every else [cut]
    origins = np.unique(np.linspace(cut, n - horizon, folds).round().astype(int))
    targets = np.stack([y[o : o + horizon] for o in origins])  # (K, h)
    # the random walk's point forecast (its median): no change in the level
    naive = np.zeros_like(targets) if differenced else np.stack([np.full(horizon, y[o - 1]) for o in origins])
    naive_mae = float(np.abs(naive - targets).mean())
    y_test = torch.from_numpy(y[cut:])
    rows, log_probs, aics = [], {}, {}
    notice = sizing.short_series_notice(torch.from_numpy(elements[:cut]))
    if notice and any(m in NEURAL_MODELS for m in models):
        say(f"seqlab: {notice}")
    for name in models:
        neural = name in NEURAL_MODELS
        params, paths, fits, fit_seconds = [], [], [], 0.0
        for j, start in enumerate(refits):
            end = refits[j + 1] if j + 1 < len(refits) else n
            torch.manual_seed(seed)
            model = make_model(name, elements[:start], differenced, head, hidden)
            data = torch.from_numpy(elements if model.num_covariates else y)  # what the model reads
            t0 = time.perf_counter()
            watched = fitting(ELEMENT_NAMES["series"], progress) if neural else contextlib.nullcontext(())
            with watched as callbacks:
                fits.append(fit_model(model, data[:start], passes, steps, seed, callbacks))
            fit_seconds += time.perf_counter() - t0
            if j == 0:
                aics[name] = in_sample_aic(model)
            params.append(one_step_params(model, data, start, end))
            mine = origins[(origins >= start) & (origins < end)]
            bar = tqdm(mine, desc=f"{name} forecasts", disable=not progress, leave=False, mininterval=1.0)
            for o in bar:
                k = int(np.flatnonzero(origins == o)[0])
                paths.append(model.sample_paths(data[:o], horizon, samples, seed=seed + k).double().numpy())
        p = torch.cat(params)  # (n - cut, P)
        lp = -model.head.nll(p, y_test).double().numpy()
        log_probs[name] = lp
        row = {"model": name, "nll": float(-lp.mean())}
        for level in ONE_STEP_LEVELS:
            lo, hi = model.head.quantile(p, (1 - level) / 2), model.head.quantile(p, (1 + level) / 2)
            row[f"coverage1_{round(100 * level)}"] = float(((y_test >= lo) & (y_test <= hi)).double().mean())
        row |= forecast_scores(np.stack(paths, axis=1), targets, naive_mae)  # paths (S, K, h)
        row["fit_seconds"] = round(fit_seconds, 2)
        if isinstance(model, LinearAR):
            row["model"] = f"linear_ar (order {model.order})"
        if neural:
            row["training"] = fits
        rows.append(row)
        trained = f", {fits[0]['passes']:g} passes ({fits[0]['stopped']})" if neural else ""
        say(
            f"seqlab: {row['model']}: one-step NLL {row['nll']:.4f}, 80% coverage {row['coverage1_80']:.2f}; "
            f"{horizon}-step CRPS {row['crps']:.5f}{trained}"
        )
    garch_aics = {m: a for m, a in aics.items() if a is not None}
    chosen = reference or (
        min(garch_aics, key=garch_aics.get) if garch_aics else "random_walk" if "random_walk" in models else models[0]
    )
    for name, row in zip(models, rows, strict=True):
        row |= (
            paired(log_probs[name], log_probs[chosen])
            if name != chosen
            else {"d_nll": 0.0, "d_nll_se": None, "d_nll_t": None}
        )
    return {
        "values": n,
        "train_values": cut,
        "test_values": n - cut,
        "horizon": horizon,
        "folds": len(origins),
        "samples": samples,
        "refit_every": refit_every,
        "fits": len(refits),
        "reference": chosen,
        "reference_chosen_by": "given" if reference else "AIC on the training part" if garch_aics else "default",
        "results": rows,
    }


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
class BacktestSpec:
    data: DataSpec
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
    out: Path | None = None  # directory for backtest.md, .csv, .json and .png
    progress: bool = True


@dataclass
class BacktestResult:
    title: str
    record: dict  # data, transform, sizes and the per-model rows ("results")
    table: str  # Markdown
    written: list[Path]


def run_backtest(spec: BacktestSpec, say: Callable[[str], None] = print) -> BacktestResult:
    unknown = [m for m in spec.models if not known_name(m)]
    if unknown or not spec.models:
        choices = ", ".join(BACKTEST_MODELS + GARCH_EXAMPLES)
        raise OptionError(
            f"{{0}}: unknown {', '.join(unknown) or '(none given)'}; choose from {choices} (GARCH: garch, gjr, "
            "egarch, or garchx / gjrx with the range, with -t or -skewt for the noise)",
            "models",
        )
    dataset = load_dataset(spec.data)
    if dataset.kind != "series":
        raise SeqlabError(f"{spec.data.source}: {dataset.kind} data; backtest takes a CSV series")
    series = pick_series(dataset.series, spec.series)
    y = dataset.transform.apply(series.values, series.source, series.lines)
    covariates = None if series.covariates is None else series.covariates[dataset.transform.lost :]
    transform = dataset.spec.transform
    named = ", ".join(filter(None, (dataset.spec.covariates, dataset.spec.features)))
    extra = f", covariates {named} (neural models and GARCH-X only)" if covariates is not None else ""
    say(f"seqlab: backtest on {series.source}, transform {transform}{extra}: {len(y):,} values")
    check_output_size("--samples x --folds x --horizon", (spec.samples, spec.folds, spec.horizon))
    result = backtest(
        y,
        list(spec.models),
        spec.horizon,
        spec.folds,
        differenced="diff" in dataset.transform.steps,
        test_fraction=dataset.spec.valid_fraction,
        samples=spec.samples,
        passes=spec.passes,
        steps=spec.steps,
        head=spec.head,
        hidden=spec.hidden,
        seed=spec.seed,
        progress=spec.progress,
        say=say,
        covariates=covariates,
        reference=spec.reference,
        refit_every=spec.refit_every,
    )
    record = {"data": series.source, "transform": transform, **result}
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
