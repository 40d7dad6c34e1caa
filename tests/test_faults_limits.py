"""Bounded outputs: a generation length, horizon or sample count is checked against memory before anything is
allocated, with one line naming the quantity and the limit."""

import math

import pytest

from seqlab import SeqlabError
from seqlab.limits import check_output_size, memory_budget, positive_count


def test_an_output_over_the_memory_budget_is_refused_before_allocation():
    with pytest.raises(SeqlabError) as error:
        check_output_size("--samples x --horizon", (10**9, 10**8))  # 8e17 bytes: no machine has that
    message = str(error.value)
    assert message.startswith("--samples x --horizon = 1,000,000,000 x 100,000,000 asks for ")
    assert "over the limit of" in message and "\n" not in message


def test_the_limit_is_the_stated_budget():
    assert check_output_size("--length", (1000,), bytes_per_element=4, budget=4000) == 1000
    with pytest.raises(SeqlabError, match=r"--length = 1,001 asks for 3.9 KiB of output, over the limit of 3.9 KiB"):
        check_output_size("--length", (1001,), bytes_per_element=4, budget=4000)
    assert 0 < memory_budget() < 2**60


@pytest.mark.parametrize("value", [0, -1, 2.5, math.nan, math.inf, True, "7", None, 1e12 + 0.5])
def test_counts_must_be_whole_numbers_of_at_least_one(value):
    with pytest.raises(SeqlabError, match="--horizon must be a whole number >= 1"):
        positive_count("--horizon", value)


def test_a_float_that_is_whole_is_a_count():
    assert positive_count("--length", 1e3) == 1000
