"""The synthetic long-range tasks: their structure, targets and memoryless baselines."""

import math

import pytest
import torch

from seqlab.data.synthetic import (
    ADDING_BASELINE_MSE,
    COPY_ALPHABET,
    COPY_BLANK,
    COPY_DELIMITER,
    COPY_SYMBOLS,
    adding_problem,
    copy_memory,
    copy_memory_baseline,
)


def test_adding_problem_marks_one_value_in_each_half_and_targets_their_sum():
    x, y = adding_problem(500, 30, torch.Generator().manual_seed(0))
    assert x.shape == (500, 30, 2) and y.shape == (500,)
    markers = x[..., 1]
    assert torch.equal(markers[:, :15].sum(1), torch.ones(500)) and torch.equal(markers[:, 15:].sum(1), torch.ones(500))
    assert torch.allclose(y, (x[..., 0] * markers).sum(1))
    assert ((x[..., 0] >= 0) & (x[..., 0] < 1)).all()


def test_predicting_the_mean_of_the_adding_problem_costs_one_sixth():
    _, y = adding_problem(200_000, 10, torch.Generator().manual_seed(1))
    mse_of_the_mean = float(((y - 1.0) ** 2).mean())
    assert abs(mse_of_the_mean - ADDING_BASELINE_MSE) < 0.003  # sd of the estimate ~ 0.0005
    assert abs(ADDING_BASELINE_MSE - 0.1667) < 1e-4


def test_copy_memory_layout():
    T, K = 15, COPY_SYMBOLS
    x, y = copy_memory(8, T, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (8, T + 2 * K)
    assert ((x[:, :K] >= 1) & (x[:, :K] <= COPY_ALPHABET)).all()
    assert (x[:, K : T + K - 1] == COPY_BLANK).all() and (x[:, T + K - 1] == COPY_DELIMITER).all()
    assert (x[:, T + K :] == COPY_BLANK).all()
    assert (y[:, : T + K] == COPY_BLANK).all() and torch.equal(y[:, T + K :], x[:, :K])


@pytest.mark.parametrize("T", [1, 10, 100])
def test_copy_memory_baseline_is_the_cross_entropy_of_the_memoryless_predictor(T):
    """Blank with certainty until the delimiter has passed, then uniform over the 8 data symbols."""
    _, y = copy_memory(64, T, torch.Generator().manual_seed(T))
    logits = torch.full((*y.shape, COPY_ALPHABET + 2), -math.inf)
    logits[:, : T + COPY_SYMBOLS, COPY_BLANK] = 0.0
    logits[:, T + COPY_SYMBOLS :, 1 : COPY_ALPHABET + 1] = 0.0
    cross_entropy = torch.nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten())
    assert abs(float(cross_entropy) - copy_memory_baseline(T)) < 1e-6
    assert abs(copy_memory_baseline(T) - 10 * math.log(8) / (T + 20)) < 1e-12


def test_bad_lengths_are_refused():
    g = torch.Generator()
    with pytest.raises(ValueError, match="T must be an integer >= 2"):
        adding_problem(2, 1, g)
    with pytest.raises(ValueError, match="T must be an integer >= 1"):
        copy_memory(2, 0, g)
