"""Synthetic long-range memory tasks: the adding problem and the copy-memory task.

Shape key: B batch, T time, D input size, V vocabulary size.

Adding problem (Hochreiter & Schmidhuber 1997; the two-channel form of Le et al. 2015)::

    x_t = (u_t, m_t),  u_t ~ U(0, 1),  m_t = 1 at one t in the first half and one in the second, else 0
    y   = sum_t u_t m_t                                    one target per sequence, read at t = T

Predicting the mean E[y] = 1 without looking gives MSE Var(y) = 2 / 12 = 1/6 ~ 0.167: the baseline.

Copy memory (Arjovsky, Shah & Bengio 2016), with ``K = 10`` symbols from an alphabet of 8::

    input   a_1 .. a_K  blank x (T - 1)  delimiter  blank x K        length T + 2K
    target  blank x (T + K)              a_1 .. a_K                  length T + 2K

Symbol ids: 0 blank, 1..8 the data symbols, 9 the delimiter (V = 10). A memoryless model that outputs
blank for T + K steps and the uniform distribution over the 8 data symbols for the last K steps has
cross-entropy ``K log 8 / (T + 2K)``, with K = 10 the paper's ``10 log(8) / (T + 20)``: the baseline.
"""

from __future__ import annotations

import math

import torch

ADDING_BASELINE_MSE = 1.0 / 6.0
COPY_SYMBOLS = 10  # K: symbols to remember
COPY_ALPHABET = 8  # data symbols 1..8
COPY_BLANK, COPY_DELIMITER = 0, COPY_ALPHABET + 1
COPY_VOCABULARY = COPY_ALPHABET + 2  # V = 10


def _check_length(T: int, minimum: int) -> None:
    if not isinstance(T, int) or T < minimum:
        raise ValueError(f"sequence length T must be an integer >= {minimum}, got {T!r}")


def adding_problem(batch_size: int, T: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """x (B, T, 2) with channels (value, marker), y (B,) the sum of the two marked values."""
    _check_length(T, 2)
    B, half = batch_size, T // 2
    values = torch.rand(B, T, generator=generator)
    first = torch.randint(0, half, (B,), generator=generator)  # one mark in [0, T/2)
    second = torch.randint(half, T, (B,), generator=generator)  # one in [T/2, T)
    markers = torch.zeros(B, T)
    rows = torch.arange(B)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    x = torch.stack([values, markers], dim=-1)  # (B, T, 2)
    y = (values * markers).sum(dim=1)  # (B,)
    return x, y


def copy_memory(batch_size: int, T: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """x (B, T + 2K) input ids, y (B, T + 2K) target ids, K = ``COPY_SYMBOLS``; see the module docstring."""
    _check_length(T, 1)
    B, K = batch_size, COPY_SYMBOLS
    symbols = torch.randint(1, COPY_ALPHABET + 1, (B, K), generator=generator)
    x = torch.full((B, T + 2 * K), COPY_BLANK, dtype=torch.long)
    y = torch.full((B, T + 2 * K), COPY_BLANK, dtype=torch.long)
    x[:, :K] = symbols
    x[:, T + K - 1] = COPY_DELIMITER  # after the K symbols and T - 1 blanks
    y[:, T + K :] = symbols
    return x, y


def copy_memory_baseline(T: int) -> float:
    """Cross-entropy per step (nats) of the best memoryless model: ``K log 8 / (T + 2K)``."""
    _check_length(T, 1)
    return COPY_SYMBOLS * math.log(COPY_ALPHABET) / (T + 2 * COPY_SYMBOLS)
