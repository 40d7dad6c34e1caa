"""A synthetic panel of seasonal series: levels that differ by orders of magnitude, one seasonal shape they share.

Series ``i`` (``n_i`` values, season ``m``)::

    log x_t = log L_i + l_t + log(1 + a_i s((t + phase_i) mod m)) + sigma eps_t
    l_t     = l_{t-1} + d_i + tau eta_t,  l_0 = 0                       a drifting level (random walk)

with ``L_i = 10^U(0, levels)``, ``s`` one seasonal shape for the whole panel (two harmonics, max |s| = 1),
``a_i ~ U(0.1, 0.5)``, ``d_i ~ N(0, 0.005^2)`` a drift per step, ``eps, eta ~ N(0, 1)``. Every value is positive;
the panel is what a global model can learn from (one shape seen through every series) and what the seasonal
naive forecast does well on (the shape is stable), as monthly business series are.
"""

from __future__ import annotations

import math

import numpy as np


def seasonal_panel(
    num_series: int,
    lengths: int | tuple[int, int],
    season: int = 12,
    seed: int = 0,
    levels: float = 4.0,
    sigma: float = 0.05,
    tau: float = 0.02,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(values (sum of lengths,) float64, offsets (N + 1,) int64, phases (N,) int64)``: the panel of the module
    docstring. ``lengths``: one length, or ``(low, high)`` drawn uniformly (both included); ``phases[i]`` is the
    season position of series ``i``'s first value (what a calendar would tell)."""
    rng = np.random.default_rng(seed)
    low, high = (lengths, lengths) if isinstance(lengths, int) else lengths
    n = rng.integers(low, high + 1, size=num_series)
    k = np.arange(season)
    shape = np.sin(2 * math.pi * k / season) + 0.5 * np.cos(4 * math.pi * k / season + 1.0)
    shape = shape / np.abs(shape).max() if season > 1 else np.zeros(1)
    phases = rng.integers(0, season, size=num_series)
    parts = []
    for i in range(num_series):
        t = np.arange(n[i])
        drift = rng.normal(0.0, 0.005)
        level = np.cumsum(drift + tau * rng.standard_normal(n[i]))
        amplitude = rng.uniform(0.1, 0.5)
        log_x = levels * rng.uniform() * math.log(10) + level
        log_x = log_x + np.log1p(amplitude * shape[(t + phases[i]) % season]) + sigma * rng.standard_normal(n[i])
        parts.append(np.exp(log_x))
    offsets = np.concatenate([[0], np.cumsum(n)]).astype(np.int64)
    return np.concatenate(parts), offsets, phases.astype(np.int64)
