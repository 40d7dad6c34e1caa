"""The NumPy streaming sampler against the reference: ``LatentAR.step`` logits and the softmax draw."""

import numpy as np
import pytest
import torch

from seqlab.data.audio import MuLaw
from seqlab.data.text import Vocabulary
from seqlab.models import LatentAR, LatentARConfig
from seqlab.streaming import StreamingSampler, draw

FLOAT32_TOLERANCE = 1e-5  # relative to the largest logit: float32 NumPy against float32 torch


@pytest.mark.parametrize(
    "cell, reset, layers", [("gru", "after", 1), ("gru", "before", 2), ("lstm", "after", 2), ("rnn", "after", 3)]
)
def test_logits_match_the_reference_step(cell, reset, layers):
    torch.manual_seed(0)
    model = LatentAR(MuLaw(8000), LatentARConfig(cell=cell, reset=reset, hidden_size=24, num_layers=layers)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(3.0)  # larger weights: saturated gates and a state that matters
    sampler = StreamingSampler(model)
    state, worst = None, 0.0
    for v in [None, 3, 250, 128, 128, 7, 255, 0, 64]:
        params, state = model.step(None if v is None else torch.tensor(v), state)
        logits = sampler.step(v)
        worst = max(worst, float(np.abs(logits - params.numpy()).max() / np.abs(params.numpy()).max()))
    assert worst < FLOAT32_TOLERANCE
    h = state[0] if cell == "lstm" else state
    assert np.allclose(np.stack(sampler.h), h[:, 0].numpy(), atol=1e-5)


def test_draw_inverts_the_softmax_cdf():
    logits = torch.randn(50, dtype=torch.float64)
    for temperature in (0.5, 1.0, 2.0):
        cdf = torch.cumsum(torch.softmax(logits / temperature, 0), 0)
        for u in np.linspace(0.001, 0.999, 37):
            expected = int(torch.searchsorted(cdf, torch.tensor(u, dtype=torch.float64), right=True))
            assert draw(logits.numpy(), temperature, None, u) == expected
    top3 = set(torch.topk(logits, 3).indices.tolist())
    assert {draw(logits.numpy(), 1.0, 3, u) for u in np.linspace(0, 0.9999, 200)} == top3


def test_generate_follows_the_model_and_is_reproducible():
    torch.manual_seed(1)
    vocabulary = Vocabulary.from_text("abcdef ")
    model = LatentAR(vocabulary, LatentARConfig(cell="gru", hidden_size=16)).eval()
    sampler = StreamingSampler(model)
    out = sampler.generate([0, 1], 200, seed=5)
    assert np.array_equal(out, sampler.generate([0, 1], 200, seed=5))
    # the same draws by hand: reference logits from model.step, the same uniform numbers
    uniforms = np.random.default_rng(5).random(200)
    params, state = model.step(None, None)
    for v in (0, 1):
        params, state = model.step(torch.tensor(v), state)
    for t in range(200):
        logits = params.numpy().copy()
        logits[vocabulary.unknown_id] = -np.inf  # the unknown symbol U+FFFD is never drawn
        assert out[t] == draw(logits, 1.0, None, uniforms[t])
        params, state = model.step(torch.tensor(int(out[t])), state)
    with pytest.raises(ValueError, match="discrete"):
        StreamingSampler(LatentAR(None, LatentARConfig(hidden_size=4)))
