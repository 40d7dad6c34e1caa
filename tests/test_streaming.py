"""The NumPy streaming samplers against the reference: ``LatentAR.step`` logits and the softmax draw (discrete
data); ``LatentAR.step`` params and the head's distributions (frames)."""

import numpy as np
import pytest
import torch

from seqlab.data.audio import MuLaw
from seqlab.data.text import Vocabulary
from seqlab.errors import Unsupported
from seqlab.models import LatentAR, LatentARConfig
from seqlab.streaming import FrameSampler, StreamingSampler, draw

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


# -- frames ------------------------------------------------------------------------------------------------------


def frame_model(cell: str, layers: int, head: str) -> LatentAR:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    frames = np.stack([rng.random(300) < 0.6, rng.standard_normal(300), 3 + 2 * rng.standard_normal(300)], 1)
    config = LatentARConfig(cell=cell, hidden_size=16, embedding_dim=6, num_layers=layers, head=head, components=3)
    model = LatentAR.for_frames(frames, config, binary=[0], groups={"voicing": [0], "rest": [1, 2]}).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))  # away from the zero-initialised head: params that depend on the input
    return model


FRAME_CASES = [("gru", 1, "gaussian"), ("lstm", 2, "mixture"), ("rnn", 1, "mixture")]


@pytest.mark.parametrize("cell, layers, head", FRAME_CASES)
def test_frame_params_match_the_reference_step(cell, layers, head):
    model = frame_model(cell, layers, head)
    sampler = FrameSampler(model)
    frames = [None, [1.0, 0.5, 2.0], [0.0, -1.0, 7.0], [np.nan] * 3, [1.0, 2.0, 3.0], [1.0, 0.0, -1.0]]
    state, worst = None, 0.0
    for x in frames:
        params, state = model.step(None if x is None else torch.tensor(x), state)
        ours = sampler.step(x)
        worst = max(worst, float(np.abs(ours - params.numpy()).max() / np.abs(params.numpy()).max()))
    assert worst < FLOAT32_TOLERANCE


@pytest.mark.parametrize("head", ["gaussian", "mixture"])
def test_frame_draws_follow_the_head(head):
    """Draws from fixed params against the head's quantiles (continuous; the head is checked against
    torch.distributions in test_vector_heads.py) and sigmoid(logit / t) (binary), at a temperature per dimension."""
    model = frame_model("gru", 1, head)
    model.elements.low.fill_(-1e6)
    model.elements.high.fill_(1e6)  # no clamp here: the distribution itself
    sampler = FrameSampler(model)
    params = sampler.step([1.0, 0.5, 2.0])
    t = np.array([0.5, 1.0, 2.0])
    rng = np.random.default_rng(0)
    draws = np.stack([sampler.draw(params, t, rng) for _ in range(20_000)])
    reference = torch.from_numpy(params).double()
    for q in (0.1, 0.5, 0.9):
        expected = model.head.quantile(reference, q).numpy()
        below = (draws[:, 1] <= expected[1]).mean()  # temperature 1 on dimension 1: the head's own quantiles
        assert abs(below - q) < 0.015
    mean = model.head.mean(reference).numpy()
    assert abs(draws[:, 2].mean() - mean[2]) < 0.1 * draws[:, 2].std()  # temperature 2: spread, same centre
    p = 1 / (1 + np.exp(-params[-1] / 0.5))
    assert abs(draws[:, 0].mean() - p) < 0.015 and set(np.unique(draws[:, 0])) <= {0.0, 1.0}


def test_frame_generate_follows_the_reference_step_and_clamps():
    model = frame_model("lstm", 2, "mixture")
    sampler = FrameSampler(model)
    temperature = {"voicing": 0.5, "rest": 0.8}
    out = sampler.generate(None, 60, temperature, seed=3)
    assert np.array_equal(out, sampler.generate(None, 60, temperature, seed=3))
    low, high = model.elements.low.double().numpy(), model.elements.high.double().numpy()
    assert np.all(out >= low) and np.all(out <= high)
    assert ((out == low) | (out == high))[:, 1:].any(), "the perturbed model draws outside: some draws are clamped"
    # the same draws by hand from the reference step's params
    t = np.array([0.5, 0.8, 0.8])
    rng = np.random.default_rng(3)
    params, state = model.step(None, None)
    for i in range(60):
        x = sampler.draw(params.numpy(), t, rng)
        assert np.allclose(x, out[i], rtol=1e-4, atol=1e-4), i
        params, state = model.step(torch.from_numpy(out[i]), state)
    sample = model.sample(None, 60, temperature=temperature, seed=3)  # LatentAR.sample takes this path
    assert torch.equal(sample, torch.from_numpy(out).float())
    with pytest.raises(Unsupported, match="gaussian or mixture"):
        FrameSampler(LatentAR.for_frames(out, LatentARConfig(hidden_size=4, head="studentt")))
