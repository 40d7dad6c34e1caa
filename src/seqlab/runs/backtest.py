"""``backtest``: rolling-origin backtest of probabilistic forecasts on one series.

The series is taken on its modelled scale (after ``--transform``: daily log returns for prices). Its last
``test_fraction`` is held out; every model is fitted once on the part before it. Then, at ``folds`` origins
spread evenly over the held-out part, each model draws ``samples`` paths of ``horizon`` values from
everything before the origin (``SequenceModel.sample_paths``), and the paths are scored against what
happened (``seqlab.metrics.forecast_scores``). The one-step NLL over the whole held-out part (each value
given all values before it) is reported beside them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from seqlab.data.spec import DataSpec, load_dataset
from seqlab.errors import OptionError, SeqlabError
from seqlab.limits import check_output_size
from seqlab.metrics import forecast_scores
from seqlab.models.latent_ar import LatentAR, LatentARConfig
from seqlab.models.linear_ar import LinearAR
from seqlab.models.neural_ar import NeuralAR, NeuralARConfig
from seqlab.models.random_walk import RandomWalk
from seqlab.plots import backtest_chart
from seqlab.runs.forecast import pick_series
from seqlab.runs.report import Column, markdown_table, write_report

BACKTEST_MODELS = ("random_walk", "linear_ar", "neural_ar", "rnn", "lstm", "gru")
DEFAULT_MODELS = ("random_walk", "linear_ar", "neural_ar", "gru", "lstm")
NEURAL_TRAINING = {"batch_size": 16, "window": 64, "lr": 2e-3, "warmup_steps": 20}


def training_options(n: int) -> dict:
    """``NEURAL_TRAINING``, with the window and batch shrunk to fit a short series of ``n`` values."""
    window = min(NEURAL_TRAINING["window"], max(4, n // 8))
    batch = max(1, min(NEURAL_TRAINING["batch_size"], (n - window) // (window + 1) - 1))
    return {**NEURAL_TRAINING, "window": window, "batch_size": batch}


def make_model(name: str, train: np.ndarray, differenced: bool, head: str, hidden: int):
    """``train``: the modelled series (T,), or (T, 1 + C) with past covariates, which only the neural models use."""
    covariates = train.shape[1] - 1 if train.ndim == 2 else 0
    if name == "random_walk":
        return RandomWalk(differenced)
    if name == "linear_ar":
        return LinearAR(order="aic", max_order=10)
    if name == "neural_ar":
        config = NeuralARConfig(window=20, hidden_size=hidden, head=head, covariates=covariates)
        return NeuralAR.for_series(torch.from_numpy(train), config)
    if name in ("rnn", "lstm", "gru"):
        config = LatentARConfig(cell=name, hidden_size=hidden, head=head, covariates=covariates)
        return LatentAR.for_series(torch.from_numpy(train), config)
    raise OptionError(f"{{0}}: unknown {name!r}; choose from {', '.join(BACKTEST_MODELS)}", "models")


def backtest(
    y: np.ndarray,
    models: list[str],
    horizon: int,
    folds: int,
    differenced: bool,
    test_fraction: float = 0.2,
    samples: int = 200,
    steps: int = 300,
    head: str = "gaussian",
    hidden: int = 64,
    seed: int = 0,
    progress: bool = True,
    say: Callable[[str], None] = print,
    covariates: np.ndarray | None = None,
) -> dict:
    """Scores per model on ``y`` (the modelled series); see the module docstring. ``covariates (n, C)``, row by
    row beside ``y``, are extra inputs of the neural models (carried forward over each forecast's horizon)."""
    n = len(y)
    elements = y if covariates is None else np.column_stack([y, covariates])  # what the neural models read
    cut = int(n * (1 - test_fraction))
    if cut < 30 or n - cut < horizon:
        raise SeqlabError(
            f"the series has {n} values: too few for a held-out part of {test_fraction:g} with horizon {horizon} "
            "after at least 30 training values"
        )
    origins = np.unique(np.linspace(cut, n - horizon, folds).round().astype(int))
    targets = np.stack([y[o : o + horizon] for o in origins])  # (K, h)
    # the random walk's point forecast (its median): no change in the level
    naive = np.zeros_like(targets) if differenced else np.stack([np.full(horizon, y[o - 1]) for o in origins])
    naive_mae = float(np.abs(naive - targets).mean())
    train = y[:cut]
    neural = (LatentAR, NeuralAR)
    rows = []
    for name in models:
        torch.manual_seed(seed)
        model = make_model(name, elements[:cut], differenced, head, hidden)
        data = torch.from_numpy(elements) if isinstance(model, neural) else y
        t0 = time.perf_counter()
        if isinstance(model, neural):
            options = training_options(cut)
            model.fit(data[:cut], steps=steps, eval_every=steps, progress=progress, seed=seed, **options)
        else:
            model.fit(train)
        fit_seconds = time.perf_counter() - t0
        log_probs = model.log_prob(data)
        nll = float(-log_probs[cut:].double().mean())
        paths = []
        bar = tqdm(origins, desc=f"{name} forecasts", disable=not progress, leave=False, mininterval=1.0)
        for k, o in enumerate(bar):
            context = torch.as_tensor(data[:o])
            paths.append(model.sample_paths(context, horizon, samples, seed=seed + k).double().numpy())
        stacked = np.stack(paths, axis=1)  # (S, K, h)
        scores = forecast_scores(stacked, targets, naive_mae)
        row = {"model": name, "nll": nll, **scores, "fit_seconds": round(fit_seconds, 2)}
        if isinstance(model, LinearAR):
            row["model"] = f"linear_ar (order {model.order})"
        rows.append(row)
        say(
            f"seqlab: {row['model']}: NLL {nll:.4f}, CRPS {scores['crps']:.5f}, "
            f"80% coverage {scores['coverage_80']:.2f}"
        )
    return {
        "values": n,
        "train_values": cut,
        "test_values": n - cut,
        "horizon": horizon,
        "folds": len(origins),
        "samples": samples,
        "results": rows,
    }


COLUMNS = [
    Column("model", "model"),
    Column("nll", "NLL/step", "{:.4f}"),
    Column("mae", "MAE", "{:.5f}"),
    Column("rmse", "RMSE", "{:.5f}"),
    Column("mase", "MASE", "{:.3f}"),
    Column("crps", "CRPS", "{:.5f}"),
    Column("coverage_50", "cover 50%", "{:.2f}"),
    Column("coverage_80", "cover 80%", "{:.2f}"),
]


@dataclass
class BacktestSpec:
    data: DataSpec
    series: str | None = None  # which series, with several (default: the first)
    models: tuple[str, ...] = DEFAULT_MODELS
    horizon: int = 5
    folds: int = 50
    samples: int = 200
    steps: int = 300  # training steps per neural model
    head: str = "gaussian"
    hidden: int = 64
    seed: int = 0
    out: Path | None = None  # directory for backtest.md, .csv, .json and .png
    progress: bool = True


@dataclass
class BacktestResult:
    title: str
    record: dict  # data, transform, sizes and the per-model rows ("results")
    table: str  # Markdown
    written: list[Path]


def run_backtest(spec: BacktestSpec, say: Callable[[str], None] = print) -> BacktestResult:
    unknown = [m for m in spec.models if m not in BACKTEST_MODELS]
    if unknown or not spec.models:
        raise OptionError(
            f"{{0}}: unknown {', '.join(unknown) or '(none given)'}; choose from {', '.join(BACKTEST_MODELS)}",
            "models",
        )
    dataset = load_dataset(spec.data)
    if dataset.kind != "series":
        raise SeqlabError(f"{spec.data.source}: {dataset.kind} data; backtest takes a CSV series")
    series = pick_series(dataset.series, spec.series)
    y = dataset.transform.apply(series.values, series.source, series.lines)
    covariates = None if series.covariates is None else series.covariates[dataset.transform.lost :]
    transform = dataset.spec.transform
    extra = f", covariates {dataset.spec.covariates} (neural models only)" if covariates is not None else ""
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
        steps=spec.steps,
        head=spec.head,
        hidden=spec.hidden,
        seed=spec.seed,
        progress=spec.progress,
        say=say,
        covariates=covariates,
    )
    record = {"data": series.source, "transform": transform, **result}
    if covariates is not None:
        record["covariates"] = dataset.spec.covariates
    title = (
        f"{series.source} ({transform}{extra}): {result['test_values']:,} held-out values, "
        f"{result['folds']} origins x horizon {result['horizon']}, {result['samples']} sample paths"
    )
    written = []
    if spec.out is not None:
        written = write_report(spec.out, "backtest", result["results"], record, title, COLUMNS)
        written.append(Path(spec.out) / "backtest.png")
        backtest_chart(result["results"], written[-1], title)
    return BacktestResult(title, record, markdown_table(result["results"], COLUMNS), written)
