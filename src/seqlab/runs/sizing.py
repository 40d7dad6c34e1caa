"""How a neural model trains on a series of a given length: what ``train`` and ``backtest`` use when not told.

A short series (monthly prices: about 100 values per series) is learnt in a few hundred values, so a fixed
budget of steps overfits it many times over. Instead:

- validation on the tail of the *training* part (``VALID_TAIL`` of every series; never the part a command then
  scores), the weights kept at the best validation and training stopped after ``PATIENCE`` validations without
  gain, one validation per pass;
- a budget in passes over the data (``MAX_PASSES``), not in steps;
- a window of about an eighth of the data (4 to 64 values) and as many streams as fit (at most 16).

Shapes: a series is ``(T,)`` or ``(T, 1 + C)`` with covariates; several series are joined with a NaN row between
them (``seqlab.data.dataset.join_series``).
"""

from __future__ import annotations

import numpy as np
import torch

from seqlab.data.dataset import join_series

VALID_TAIL = 0.15  # share of each training series held back to pick the weights and stop
MAX_PASSES = 60  # passes over the training data at most (early stopping usually ends sooner)
PATIENCE = 5  # validations (one per pass) without gain before stopping
MAX_WINDOW, MAX_BATCH = 64, 16
SCALE_ONLY = 250  # below this many training values per series a network learns little beyond the scale


def pieces(x: torch.Tensor) -> list[np.ndarray]:
    """The series joined in ``x`` (T[, 1 + C]), split at the NaN rows between them."""
    a = x.double().numpy()
    gap = np.isnan(a if a.ndim == 1 else a[:, 0])
    bounds = [-1, *np.flatnonzero(gap), len(a)]
    return [a[s + 1 : e] for s, e in zip(bounds[:-1], bounds[1:], strict=True) if e - s > 1]


def split_tail(x: torch.Tensor, fraction: float = VALID_TAIL) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(fit part, validation tail) of the joined series ``x``: the last ``fraction`` of every series (at least
    one value, and only where at least 8 values are left to fit); None when no series can spare a tail."""
    fit, tail = [], []
    for p in pieces(x):
        n_tail = max(1, round(fraction * len(p)))
        if len(p) - n_tail >= 8:
            fit.append(p[:-n_tail])
            tail.append(p[-n_tail:])
        else:
            fit.append(p)
    if not tail:
        return x, None
    return join_series(fit), join_series(tail)


def window_and_batch(n: int) -> tuple[int, int]:
    """Window (4..64, about n / 8) and streams per batch (1..16, as many as fit) for ``n`` training elements."""
    window = min(MAX_WINDOW, max(4, n // 8))
    batch = max(1, min(MAX_BATCH, (n - window) // (window + 1) - 1))
    return window, batch


def steps_per_pass(n: int, window: int, batch: int) -> int:
    """Optimizer steps in one pass over ``n`` elements (``training.WindowStream``'s windows per epoch)."""
    return max(1, ((n - window) // batch - 1) // window)


def trainer_options(n: int, max_passes: int = MAX_PASSES) -> dict:
    """``TrainerConfig`` fields sized for ``n`` training elements: window, batch, a step budget of
    ``max_passes`` passes, one validation per pass and early stopping after ``PATIENCE`` without gain."""
    window, batch = window_and_batch(n)
    per_pass = steps_per_pass(n, window, batch)
    warmup = min(20, per_pass)
    return {
        "window": window,
        "batch_size": batch,
        "steps": per_pass * max_passes,
        "eval_every": per_pass,
        "patience": PATIENCE,
        "warmup_steps": warmup,
        "time_budget": None,
    }


def short_series_notice(x: torch.Tensor) -> str | None:
    """A notice when the training series are too short for a network to learn more than their scale."""
    lengths = [len(p) for p in pieces(x)]
    if not lengths or (typical := int(np.median(lengths))) >= SCALE_ONLY:
        return None
    return (
        f"notice: about {typical} training values per series: too few for a neural model to learn much beyond "
        f"the scale of the values; expect it to tie the random walk at best (GARCH or linear_ar are the models "
        f"for so short a series)"
    )
