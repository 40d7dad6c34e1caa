"""Rolling-origin backtest of probabilistic forecasts on one series (``seqlab backtest``).

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

import numpy as np
import torch
from tqdm import tqdm

from seqlab.errors import SeqlabError
from seqlab.metrics import forecast_scores
from seqlab.models import LatentAR, LatentARConfig, LinearAR, NeuralAR, NeuralARConfig
from seqlab.models.random_walk import RandomWalk

BACKTEST_MODELS = ("random_walk", "linear_ar", "neural_ar", "rnn", "lstm", "gru")
DEFAULT_MODELS = "random_walk,linear_ar,neural_ar,gru,lstm"
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
    raise SeqlabError(f"unknown model {name!r}; choose from {', '.join(BACKTEST_MODELS)}")


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
    ("model", "model", "{}"),
    ("nll", "NLL/step", "{:.4f}"),
    ("mae", "MAE", "{:.5f}"),
    ("rmse", "RMSE", "{:.5f}"),
    ("mase", "MASE", "{:.3f}"),
    ("crps", "CRPS", "{:.5f}"),
    ("coverage_50", "cover 50%", "{:.2f}"),
    ("coverage_80", "cover 80%", "{:.2f}"),
]


def markdown_table(rows: list[dict]) -> str:
    lines = ["| " + " | ".join(title for _, title, _ in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in rows:
        lines.append("| " + " | ".join(fmt.format(r[key]) for key, _, fmt in COLUMNS) + " |")
    return "\n".join(lines) + "\n"
