"""The watchdog that restarts vocoder-frame generation which has left speech (``seqlab.data.vocoder.Watchdog``, issue
37), and the sampler's restart (``FrameSampler.generate(restart=...)``, ``FrameSampler.mean``)."""

import numpy as np
import pytest
import torch
from test_streaming import frame_model

from seqlab.data.spec import DataSpec, load_dataset
from seqlab.data.vocoder import STILL_FOR_S, STILL_WINDOW_S, WATCH_WINDOW_S, VocoderLayout, Watchdog
from seqlab.streaming import FrameSampler

LAYOUT = VocoderLayout(16_000)  # 5 ms frames, D = 43
PER_S = LAYOUT.frames_per_second


def first_restart(watchdog: Watchdog, predicted: np.ndarray, drawn: np.ndarray) -> int | None:
    """The index of the first frame after which ``watchdog`` restarts, or None."""
    for t in range(len(drawn)):
        if watchdog(predicted[t], drawn[t]):
            return t
    return None


def speech_like(seconds: float, seed: int = 0) -> np.ndarray:
    """Frames whose envelope moves as a random walk and whose voicing alternates 150 ms on, 50 ms off."""
    rng = np.random.default_rng(seed)
    n = int(seconds * PER_S)
    frames = np.zeros((n, LAYOUT.dim))
    frames[:, 0] = (np.arange(n) % 40) < 30
    frames[:, 2:] = np.cumsum(0.2 * rng.standard_normal((n, LAYOUT.dim - 2)), axis=0)
    return frames


def test_speech_like_frames_never_restart():
    frames = speech_like(10.0)
    assert first_restart(Watchdog(LAYOUT, np.ones(LAYOUT.dim)), frames, frames) is None


def test_a_second_without_a_voiced_draw_restarts_at_its_end():
    frames = speech_like(3.0)
    frames[200:, 0] = 0.0  # voicing stuck off from 1 s on
    watchdog = Watchdog(LAYOUT, np.ones(LAYOUT.dim))
    window = int(WATCH_WINDOW_S * PER_S)
    # restarted once fewer than 10 % of the last second's draws are voiced: frames 171-370 hold 19 (171-189)
    assert window == 200 and first_restart(watchdog, frames, frames) == 370
    assert watchdog.restarts == 1
    frames[200::12, 0] = 1.0  # one draw in 12 voiced: 8 %, still noise; one in 8 (12.5 %) is not
    assert first_restart(Watchdog(LAYOUT, np.ones(LAYOUT.dim)), frames, frames) is not None
    frames[200::8, 0] = 1.0
    assert first_restart(Watchdog(LAYOUT, np.ones(LAYOUT.dim)), frames, frames) is None


def test_a_still_predicted_envelope_is_a_drone_whatever_the_draws():
    """From 2 s on the predicted envelope holds still while the draws still jitter (a low temperature's noise
    around a fixed mean): the drone restarts once the windowed movement has been low for STILL_FOR_S."""
    predicted = speech_like(6.0)
    start = int(2 * PER_S)
    predicted[start:, 2:] = predicted[start, 2:]
    drawn = predicted + np.r_[0, 0, 0.05 * np.ones(LAYOUT.dim - 2)] * np.random.default_rng(1).standard_normal(
        predicted.shape
    )
    drawn[:, 0] = predicted[:, 0]
    t = first_restart(Watchdog(LAYOUT, np.ones(LAYOUT.dim)), predicted, drawn)
    window, hold = int(STILL_WINDOW_S * PER_S), int(STILL_FOR_S * PER_S)
    # the window's average falls under a tenth of its 90th percentile a few frames before it holds only still frames
    assert start + hold <= t <= start + window + hold
    early = speech_like(6.0)
    early[int(0.5 * PER_S) :, 2:] = early[int(0.5 * PER_S), 2:]  # still from 0.5 s on: most of what it has seen
    assert first_restart(Watchdog(LAYOUT, np.ones(LAYOUT.dim)), early, early) is not None
    slow = speech_like(6.0)
    slow[:, 2:] *= 0.05  # a voice whose envelope always moves slowly is not a drone: the rule is relative
    assert first_restart(Watchdog(LAYOUT, np.ones(LAYOUT.dim)), slow, slow) is None


@pytest.mark.slow  # WORLD's analysis of the bundled speech (seconds)
def test_the_bundled_speech_itself_never_restarts():
    frames = load_dataset(DataSpec("speech")).train.numpy()
    scale = frames.std(axis=0) + 1e-6
    assert first_restart(Watchdog(LAYOUT, scale), frames, frames) is None


@pytest.mark.parametrize("head", ["gaussian", "mixture"])
def test_frame_mean_is_the_heads_mean(head):
    model = frame_model("gru", 1, head)
    sampler = FrameSampler(model)
    params = sampler.step([1.0, 0.5, 2.0])
    expected = model.head.mean(torch.from_numpy(params).double()).numpy()
    assert np.allclose(sampler.mean(params)[1:], expected[1:], rtol=1e-6, atol=1e-9)
    assert sampler.mean(params)[0] == pytest.approx(1 / (1 + np.exp(-params[-1])))  # voicing: its probability


def test_a_restart_starts_the_recurrence_afresh():
    """At a temperature near 0 the draws are the predicted frames: after a restart at frame 4 the sampler
    repeats its first frames, as a new generation would."""
    model = frame_model("lstm", 2, "gaussian")
    sampler = FrameSampler(model)
    calls = []
    with np.errstate(over="ignore"):  # a voicing logit / 1e-3 overflows exp: a sure draw, as intended
        plain = sampler.generate(None, 12, 1e-3, seed=0)
        restarted = sampler.generate(None, 12, 1e-3, seed=0, restart=lambda m, x: calls.append(x) or len(calls) == 5)
    assert len(calls) == 12 and np.array_equal(restarted[:5], plain[:5])
    assert np.allclose(restarted[5:10], plain[:5], atol=1e-2)
    assert not np.allclose(restarted[5:10], plain[5:10], atol=1e-2)
