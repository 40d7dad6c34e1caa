"""LatentAR: the chain rule through log_prob and step agree, sampling is O(1) per element, save/load."""

import pytest
import torch

from seqlab import SeqlabError
from seqlab.base import SequenceModel
from seqlab.data import Vocabulary
from seqlab.models import LatentAR, LatentARConfig
from seqlab.streaming import StreamingSampler

TEXT = "to be, or not to be: that is the question.\n" * 20


def make(cell="lstm", **kw):
    torch.manual_seed(0)
    return LatentAR(
        Vocabulary.from_text(TEXT), LatentARConfig(cell=cell, hidden_size=16, num_layers=2, embedding_dim=8, **kw)
    ).double()


def test_log_prob_chunks_carry_the_state(monkeypatch):
    model = make()
    x = model.encode(TEXT[:100])
    whole = model.log_prob(x)
    monkeypatch.setattr("seqlab.base.LOG_PROB_CHUNK", 7)
    assert torch.allclose(model.log_prob(x), whole, rtol=0, atol=1e-12)


def test_sampling_is_one_step_per_element():
    """Each generated element costs one forward call over one time step: linear, never quadratic."""
    model = make()
    calls = []
    original = model.forward

    def counting_forward(x_prev, state=None):
        calls.append(tuple(x_prev.shape))
        return original(x_prev, state)

    model.forward = counting_forward
    for length in (10, 100):
        calls.clear()
        out = SequenceModel.sample_elements(model, model.encode("to be"), length, seed=1)  # the generic path
        assert len(out) == length
        assert calls == [(1, 1)] * (1 + len("to be") + length)


def test_sample_takes_the_streaming_sampler():
    """A discrete LatentAR samples through its fastest exact path: the NumPy streaming sampler."""
    model = make()
    prompt = model.encode("to be")
    expected = StreamingSampler(model).generate(prompt.numpy(), 40, 0.8, None, 7)
    assert model.sample("to be", 40, temperature=0.8, seed=7) == model.decode(torch.from_numpy(expected))


def test_sampling_is_reproducible_and_respects_top_k():
    model = make()
    assert model.sample("to", 50, seed=3) == model.sample("to", 50, seed=3)
    # top_k=1 is greedy decoding: the most likely character every time
    greedy = model.sample("to", 20, top_k=1, seed=0)
    params, state = model.step(None, model.initial_state())
    for ch in "to":
        params, state = model.step(model.encode(ch)[0], state)
    assert greedy[0] == model.vocabulary.symbols[int(params.argmax())]
    with pytest.raises(ValueError, match="temperature"):
        model.sample("to", 5, temperature=0.0)


def test_bad_model_options():
    with pytest.raises(SeqlabError, match="hidden_size must be a positive"):
        LatentAR(Vocabulary.from_text(TEXT), LatentARConfig(hidden_size=0))
    with pytest.raises(SeqlabError, match="unknown model"):
        LatentAR(Vocabulary.from_text(TEXT), LatentARConfig(cell="transformer"))
