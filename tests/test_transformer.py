"""CausalTransformer: sliding-window attention, exact streaming through its caches, training, bad input."""

import numpy as np
import pytest
import torch
from helpers import SMALL_TEXT

from seqlab import SeqlabError
from seqlab.base import teacher_forced_log_prob
from seqlab.data import Vocabulary
from seqlab.models import CausalTransformer, CausalTransformerConfig

VOCAB = Vocabulary.from_text(SMALL_TEXT)


def model(context=5, layers=2, **kw):
    torch.manual_seed(0)
    config = CausalTransformerConfig(context=context, d_model=16, num_layers=layers, num_heads=2, **kw)
    return CausalTransformer(VOCAB, config).double()


def test_log_prob_chunks_compute_the_same_function():
    m = model()
    x = m.encode("to be, or not to be: that is the question")
    whole = m.log_prob(x)
    for chunk in (1, 3, 7):
        assert torch.allclose(teacher_forced_log_prob(m, x, m.elements.start, chunk=chunk), whole, rtol=0, atol=1e-12)


def test_receptive_field_is_layers_times_context_minus_one():
    m = model(context=3, layers=2)  # each prediction sees 2 * (3 - 1) + 1 = 5 inputs: x_{t-5} .. x_{t-1}
    a, b = m.encode("abcdefghijkl"), m.encode("zbcdefghijkl")  # differ in x_0 only
    lp_a, lp_b = m.log_prob(a), m.log_prob(b)
    assert all(not torch.equal(lp_a[t], lp_b[t]) for t in range(1, 6))
    assert torch.equal(lp_a[6:], lp_b[6:])


def test_learns_text():
    m = model(context=16).float()
    train, valid = VOCAB.encode(SMALL_TEXT[:16000]), VOCAB.encode(SMALL_TEXT[16000:18000])
    before = float(-m.log_prob(valid).mean())
    m.fit(train, valid, steps=60, batch_size=8, window=32, lr=3e-3, eval_every=60)
    assert float(-m.log_prob(valid).mean()) < before - 1.0


def test_continuous_series():
    rng = np.random.default_rng(0)
    y = np.cumsum(rng.standard_normal(400)) * 0.1 + 5.0
    torch.manual_seed(0)
    m = CausalTransformer.for_series(y, CausalTransformerConfig(context=8, d_model=16, num_heads=2)).double()
    lp = m.log_prob(y[:50])
    assert lp.shape == (50,) and torch.isfinite(lp).all()
    path = m.sample_elements(torch.from_numpy(y[:10]), 20, seed=0)
    assert path.shape == (20,) and torch.isfinite(path).all()


def test_bad_input():
    with pytest.raises(SeqlabError, match="not divisible"):
        CausalTransformerConfig(d_model=10, num_heads=4).validate()
    with pytest.raises(SeqlabError, match="context must be a positive"):
        CausalTransformerConfig(context=0).validate()
    with pytest.raises(SeqlabError, match="discrete data"):
        model().log_prob(torch.randn(5))
    with pytest.raises(SeqlabError, match="continuous data; got text"):
        CausalTransformer.for_series(np.arange(10.0)).log_prob("text")
