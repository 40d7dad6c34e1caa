"""NeuralAR: a fixed window and nothing more, the chain rule through step, training on text and on a series."""

import numpy as np
import pytest
import torch
from helpers import SMALL_TEXT

from seqlab import SeqlabError
from seqlab.data import Vocabulary
from seqlab.models import LinearAR, NeuralAR, NeuralARConfig

VOCAB = Vocabulary.from_text(SMALL_TEXT)


def discrete(window=4):
    torch.manual_seed(0)
    return NeuralAR(VOCAB, NeuralARConfig(window=window, hidden_size=16, embedding_dim=4)).double()


def ar2_series(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    y = np.zeros(n)
    for t in range(2, n):
        y[t] = 0.3 + 0.6 * y[t - 1] - 0.3 * y[t - 2] + 0.5 * rng.standard_normal()
    return y


def test_only_the_last_window_elements_matter():
    model = discrete(window=3)
    a, b = model.encode("abcdefgh"), model.encode("zbcdefgh")  # differ at position 0 only
    lp_a, lp_b = model.log_prob(a), model.log_prob(b)
    assert not torch.equal(lp_a[1:4], lp_b[1:4])  # positions 1..3 see position 0
    assert torch.equal(lp_a[4:], lp_b[4:])  # position 4 on does not: the window is 3


def test_learns_text():
    model = discrete(window=6).float()
    train, valid = VOCAB.encode(SMALL_TEXT[:16000]), VOCAB.encode(SMALL_TEXT[16000:18000])
    before = float(-model.log_prob(valid).mean())
    model.fit(train, valid, steps=150, batch_size=16, window=32, lr=3e-3, eval_every=150)
    after = float(-model.log_prob(valid).mean())
    assert after < before - 1.0  # from about log(V) = 4.2 nats to well below


def test_learns_an_ar2_series_as_well_as_least_squares():
    y = ar2_series()
    train, valid = y[:2500], y[2500:]
    torch.manual_seed(0)
    model = NeuralAR.for_series(train, NeuralARConfig(window=4, hidden_size=32, num_layers=1))
    model.fit(train, valid, steps=400, batch_size=16, window=32, lr=3e-3, eval_every=400)
    neural = float(-model.log_prob(valid).mean())
    linear = float(-LinearAR(order=2).fit(train).log_prob(valid).mean())
    assert abs(neural - linear) < 0.05  # both near the true noise NLL, log(0.5 sqrt(2 pi e)) = 0.73 nats


def test_bad_input():
    with pytest.raises(SeqlabError, match="discrete data"):
        discrete().log_prob(torch.randn(10))
    continuous = NeuralAR.for_series(ar2_series(), NeuralARConfig(window=2, hidden_size=8))
    with pytest.raises(SeqlabError, match="continuous data; got text"):
        continuous.log_prob("some text")
    with pytest.raises(SeqlabError, match="row 3 is nan"):
        continuous.log_prob([0.1, 0.2, 0.3, float("nan")])
    with pytest.raises(SeqlabError, match="window must be a positive"):
        NeuralAR(VOCAB, NeuralARConfig(window=0))
