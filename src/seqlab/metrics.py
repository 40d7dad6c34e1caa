"""Metrics: likelihood scores from per-step log-probabilities (``SequenceModel.log_prob``), and forecast
scores from sample paths (MAE, RMSE, MASE, CRPS, interval coverage)."""

from __future__ import annotations

import math
import sys

import numpy as np
import torch

from seqlab.errors import SeqlabError

LN2 = math.log(2.0)


MAX_EXP = math.log(sys.float_info.max)  # 709.78: math.exp overflows above it


def score_names(elements: str = "characters", discrete: bool = True) -> dict[str, str | None]:
    """The keys ``likelihood_scores`` uses for data of ``elements`` ("characters", "samples", "values"):
    {"nll", "bits", "perplexity", "count"} -> key (None where the measure does not apply).

    Text keeps the keys every seqlab record has used (``nll_nats``, ``bits_per_char``, ``perplexity``,
    ``tokens``). Other data are named per element: ``nll_nats_per_sample``, ``bits_per_sample``, ``samples`` for
    mu-law audio. A density (a continuous head: prices, raw audio samples) has an NLL in nats per element, which
    can be negative, and no bits or perplexity, measures of a discrete distribution: ``nll_nats_per_value``,
    ``values``."""
    if elements == "characters":
        return {"nll": "nll_nats", "bits": "bits_per_char", "perplexity": "perplexity", "count": "tokens"}
    unit = elements.removesuffix("s")
    names = {"nll": f"nll_nats_per_{unit}", "bits": None, "perplexity": None, "count": elements}
    if discrete:
        names |= {"bits": f"bits_per_{unit}", "perplexity": "perplexity"}
    return names


def likelihood_scores(log_probs: torch.Tensor, elements: str = "characters", discrete: bool = True) -> dict:
    """NLL per step in nats, in bits and as a perplexity (discrete data only), and the step count, under the
    names ``score_names(elements, discrete)`` gives. NaN entries (gaps between joined series: nothing was
    predicted there) are left out."""
    log_probs = log_probs[~torch.isnan(log_probs)]
    if log_probs.numel() == 0:
        raise SeqlabError("no steps to score")
    nll = float(-log_probs.double().mean())
    perplexity = math.exp(nll) if nll < MAX_EXP else math.inf  # a density of D-dim frames can score 1,000 nats
    values = {"nll": nll, "bits": nll / LN2, "perplexity": perplexity, "count": log_probs.numel()}
    return {key: values[role] for role, key in score_names(elements, discrete).items() if key is not None}


# -- forecasts: point errors and scores of the predictive distribution, from sample paths ------------------


def crps_from_samples(samples: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Continuous ranked probability score of the empirical distribution of ``samples (S, ...)`` at ``y (...)``:

        CRPS(F, y) = E|X - y| - 1/2 E|X - X'|      (Gneiting & Raftery 2007, eq. 21)

    with ``E|X - X'| = 2 / S^2 sum_i (2i - S - 1) x_(i)`` over the sorted samples (an O(S log S) form).
    Lower is better; for a point forecast it is the absolute error."""
    x = np.sort(np.asarray(samples, dtype=np.float64), axis=0)
    S = x.shape[0]
    spread = (2 * np.arange(1, S + 1) - S - 1).reshape((S,) + (1,) * (x.ndim - 1))
    return np.abs(x - y).mean(axis=0) - (spread * x).sum(axis=0) / S**2


def interval_coverage(samples: np.ndarray, y: np.ndarray, level: float) -> float:
    """Share of ``y`` inside the central ``level`` interval of ``samples (S, ...)`` (its empirical quantiles)."""
    lower, upper = np.quantile(samples, [(1 - level) / 2, (1 + level) / 2], axis=0)
    return float(((y >= lower) & (y <= upper)).mean())


def forecast_scores(samples: np.ndarray, y: np.ndarray, naive_mae: float) -> dict:
    """MAE (of the median), RMSE (of the mean), MASE (MAE over the random walk's MAE on the same targets),
    CRPS and the coverage of the 50% and 80% intervals, for sample paths ``(S, ...)`` of targets ``y (...)``."""
    median, mean = np.median(samples, axis=0), samples.mean(axis=0)
    mae = float(np.abs(median - y).mean())
    return {
        "mae": mae,
        "rmse": float(np.sqrt(((mean - y) ** 2).mean())),
        "mase": mae / naive_mae if naive_mae > 0 else math.nan,
        "crps": float(crps_from_samples(samples, y).mean()),
        "coverage_50": interval_coverage(samples, y, 0.5),
        "coverage_80": interval_coverage(samples, y, 0.8),
    }
