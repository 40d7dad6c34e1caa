"""NGram counting in bounded memory (``count_grams``): the counts of one ``np.unique`` over every code, whatever
the chunking, so the same ``log_prob`` for every smoothing; fitted from a token store's memory-mapped ids."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seqlab.data import token_store
from seqlab.data.spec import DataSpec, load_dataset
from seqlab.models import ngram
from seqlab.models.ngram import SMOOTHINGS, NGram, count_grams


def reference_counts(x: np.ndarray, k: int, V: int) -> tuple[np.ndarray, np.ndarray]:
    """The counting before issue 31: every k-gram's code in memory, one np.unique."""
    x = x.astype(np.int64)
    code = x[: len(x) - k + 1].copy()
    for j in range(1, k):
        code = code * V + x[j : len(x) - k + 1 + j]
    return np.unique(code, return_counts=True)


@pytest.fixture
def small_batches(monkeypatch):
    """Chunks, passes and tables tiny enough that a short text takes every path of ``count_grams``."""
    monkeypatch.setattr(ngram, "COUNT_CHUNK", 1000)
    monkeypatch.setattr(ngram, "COUNT_BATCH", 3000)
    monkeypatch.setattr(ngram, "DENSE_CODES", 500)


@pytest.mark.parametrize("k", [1, 2, 3, 6])
def test_counts_in_passes_equal_one_unique(small_batches, k):
    rng = np.random.default_rng(k)
    x = np.repeat(rng.integers(0, 7, size=4000), rng.integers(1, 4, size=4000)).astype(np.uint8)  # runs, skew
    grams, counts = count_grams(x, k, 7)
    want_grams, want_counts = reference_counts(x, k, 7)
    np.testing.assert_array_equal(grams, want_grams)
    np.testing.assert_array_equal(counts, want_counts)
    assert counts.sum() == len(x) - k + 1


def test_one_symbol_repeated_is_still_counted_in_bounded_passes(small_batches):
    x = np.zeros(10_000, dtype=np.uint8)
    grams, counts = count_grams(x, 6, 300)
    assert grams.tolist() == [0] and counts.tolist() == [10_000 - 5]


@pytest.fixture
def plays(tmp_path, monkeypatch):
    monkeypatch.setenv(token_store.CACHE_ENV, str(tmp_path / "cache"))
    return load_dataset(DataSpec("shakespeare"))


def test_every_smoothing_scores_the_plays_as_before(plays, monkeypatch):
    """On the bundled plays (a 300,000-character slice: a fast test), a model counted in many small passes from
    the memory-mapped ids scores the held-out play as one counted with a single np.unique over the string."""
    train, valid = str(plays.train)[:300_000], str(plays.valid)[:20_000]
    for smoothing in SMOOTHINGS:
        reference = NGram(order=3, smoothing=smoothing)
        reference.vocabulary = plays.store.vocabulary
        x = reference.encode(train).numpy()
        reference.levels = [ngram._Level(*reference_counts(x, k, reference.V), reference.V) for k in range(1, 5)]
        reference._prepare()
        monkeypatch.setattr(ngram, "COUNT_CHUNK", 20_000)
        monkeypatch.setattr(ngram, "COUNT_BATCH", 60_000)
        monkeypatch.setattr(ngram, "DENSE_CODES", 10_000)
        model = NGram(order=3, smoothing=smoothing, vocabulary=plays.store.vocabulary).fit(plays.train[:300_000])
        monkeypatch.undo()
        if smoothing == "mle":  # unseen contexts: probability 0, refused; compare on training text instead
            valid = train[-20_000:]
        a, b = model.log_prob(valid), reference.log_prob(valid)
        assert torch.allclose(a, b, rtol=0, atol=1e-9), smoothing


def test_fit_takes_the_token_store_part_without_copying_the_text(plays):
    model = NGram(order=2).fit(plays.train)
    assert model.vocabulary.symbols == plays.store.vocabulary.symbols
    assert sum(level.counts.sum() for level in model.levels[:1]) == len(plays.train)
