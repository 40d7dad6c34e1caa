"""InfiniGram: the suffix array, equality with Witten-Bell n-grams when capped, finite log_prob on any input."""

import math

import numpy as np
import pytest
import torch
from helpers import SMALL_TEXT
from hypothesis import given, settings
from hypothesis import strategies as st

from seqlab import SeqlabError
from seqlab.models import InfiniGram, NGram
from seqlab.models.infinigram import suffix_array

TRAIN = SMALL_TEXT[:5000]


@given(st.lists(st.integers(0, 3), min_size=1, max_size=60))
def test_suffix_array_sorts_the_suffixes(x):
    sa = suffix_array(np.array(x, dtype=np.int64))
    suffixes = [x[i:] for i in sa]
    assert sorted(range(len(x)), key=lambda i: x[i:]) == list(sa) and suffixes == sorted(suffixes)


@pytest.mark.parametrize("n", [0, 1, 3, 5])
def test_capped_without_merging_equals_witten_bell_ngram(n):
    """NGram's Witten-Bell is checked against nltk.lm; the suffix-array counts must give the same numbers."""
    infinigram = InfiniGram(max_length=n, merge_identical=False).fit(TRAIN)
    ngram = NGram(order=n, smoothing="witten_bell").fit(TRAIN)
    x = SMALL_TEXT[5000:5600]
    assert torch.allclose(infinigram.log_prob(x), ngram.log_prob(x), rtol=1e-12, atol=0)


def brute_force(train: str, history: str, vocab: list[str], merge: bool) -> np.ndarray:
    """The docstring's recursion with occurrences counted by scanning the text."""
    V = len(vocab)
    p = np.full(V, 1.0 / V)
    previous = -1
    for L in range(len(history) + 1):
        suffix = history[len(history) - L :]
        followers = [train[i + L] for i in range(len(train) - L) if train[i : i + L] == suffix]
        if not followers:
            break
        counts = np.array([followers.count(v) for v in vocab], dtype=float)
        total = counts.sum()
        if not (merge and total == previous):
            distinct = np.count_nonzero(counts)
            p = (counts + distinct * p) / (total + distinct)
        previous = total
    return p


@pytest.mark.parametrize("merge", [True, False])
def test_matches_a_brute_force_scan(merge):
    train = "abracadabra, abracadabra! cadabra abra"
    model = InfiniGram(merge_identical=merge).fit(train)
    vocab = model.vocabulary.symbols
    for history in ["", "a", "abra", "cadabra", "abracadabra, abra", "zz"[:0] + "ra! c", "dabra abra"]:
        expected = brute_force(train, history, vocab, merge)
        assert np.allclose(model.distribution(model.encode(history).numpy()), expected, rtol=1e-12, atol=0)


@settings(deadline=None, max_examples=30)
@given(st.text(alphabet="abcd\n", min_size=2, max_size=80), st.text(alphabet="abcd\n", max_size=40))
def test_probabilities_sum_to_one_and_log_prob_is_finite(train, probe):
    model = InfiniGram().fit(train)
    x = model.encode(probe, unknown="map")
    p = model.distribution(x.numpy())
    assert math.isclose(p.sum(), 1.0, rel_tol=1e-12) and np.all(p > 0)
    assert torch.isfinite(model.log_prob(x)).all()


def test_bad_input():
    with pytest.raises(SeqlabError, match="max_length"):
        InfiniGram(max_length=-1)
    with pytest.raises(SeqlabError, match="discrete data"):
        InfiniGram().fit("abcabc").log_prob(torch.randn(4))
    with pytest.raises(SeqlabError, match="at least 2"):
        InfiniGram().fit("a")
