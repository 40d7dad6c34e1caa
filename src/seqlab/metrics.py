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


def likelihood_scores(log_probs: torch.Tensor) -> dict:
    """NLL per step in nats, in bits (bits per character for text), perplexity, and the step count.
    NaN entries (gaps between joined series: nothing was predicted there) are left out."""
    log_probs = log_probs[~torch.isnan(log_probs)]
    if log_probs.numel() == 0:
        raise SeqlabError("no steps to score")
    nll = float(-log_probs.double().mean())
    perplexity = math.exp(nll) if nll < MAX_EXP else math.inf  # a density of D-dim frames can score 1,000 nats
    return {"nll_nats": nll, "bits_per_char": nll / LN2, "perplexity": perplexity, "tokens": log_probs.numel()}


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
