"""WORLD vocoder frames (``seqlab.data.vocoder``): analysis -> synthesis keeps the pitch of a harmonic signal with
a known f0 contour, the layout's JSON round trip, and the one-line errors of the vocoder audio data."""

import json
import subprocess
import sys

import numpy as np
import pytest
import scipy.ndimage
import soundfile
import torch
from helpers import traced_peak_mb

from seqlab.data import vocoder
from seqlab.data.spec import DataSpec, load_dataset
from seqlab.data.vocoder import (
    VocoderLayout,
    analyse,
    analysis_rate,
    interpolated_log_f0,
    smooth_trajectories,
    synthesise,
)
from seqlab.errors import SeqlabError
from seqlab.metrics import likelihood_scores
from seqlab.voice import track_pitch

RATE = 16_000


def glide(seconds: float = 2.0, rate: int = RATE, base: float = 110.0, swing: float = 4.0):
    """A harmonic signal (sawtooth-like, 1/k partials below Nyquist) whose f0 swings +-``swing`` semitones around
    ``base`` Hz at 0.5 Hz: (samples (N,), f0 (N,))."""
    t = np.arange(int(seconds * rate)) / rate
    f0 = base * 2 ** (swing / 12 * np.sin(2 * np.pi * 0.5 * t))
    phase = 2 * np.pi * np.cumsum(f0) / rate
    harmonics = [k for k in range(1, 60) if k * f0.max() < rate / 2]
    x = 0.2 * sum(np.sin(k * phase) / k for k in harmonics)
    return x, f0


def test_analysis_then_synthesis_keeps_the_pitch_on_90_percent_of_frames():
    x, f0 = glide()
    layout = VocoderLayout(RATE)
    frames = analyse(x, RATE, layout=layout)
    assert frames.shape == (len(x) // 80 + 1, layout.dim) and layout.dim == 2 + 40 + 1
    assert frames[:, 0].mean() > 0.95  # voiced throughout
    frame_f0 = f0[::80][: len(frames) - 1]
    assert np.median(np.abs(12 * np.log2(np.exp(frames[:-1, 1]) / frame_f0))) < 0.1  # semitones
    y = synthesise(frames, layout)
    pitch, voiced = track_pitch(y[: len(x)], RATE)  # our YIN (tested against WORLD's Harvest in test_voice.py)
    truth = f0[::160][: len(pitch)]
    agree = voiced & (np.abs(12 * np.log2(np.where(voiced, pitch, 1.0) / truth)) < 1.0)
    assert agree.mean() >= 0.9


def test_log_f0_is_interpolated_through_unvoiced_frames_and_held_at_the_ends():
    f0 = np.array([0.0, 100.0, 0.0, 0.0, 400.0, 0.0])
    log_f0 = interpolated_log_f0(f0)
    assert np.allclose(np.exp(log_f0), [100, 100, 100 * 4 ** (1 / 3), 100 * 4 ** (2 / 3), 400, 400])


def test_synthesis_voices_only_frames_marked_voiced_and_clamps_f0():
    x, _ = glide(1.0)
    layout = VocoderLayout(RATE)
    frames = analyse(x, RATE, layout=layout)
    frames[:, 1] = np.log(5000.0)  # far above the layout's f0 ceiling
    loud = synthesise(frames, layout)
    pitch, voiced = track_pitch(loud, RATE)
    assert voiced.mean() > 0.8 and np.median(pitch[voiced]) == pytest.approx(layout.f0_ceil, rel=0.05)
    frames[:, 0] = 0.0  # every frame unvoiced: noise only
    assert track_pitch(synthesise(frames, layout), RATE)[1].mean() < 0.1
    with pytest.raises(SeqlabError, match=r"do not match the layout \(T, 43\)"):
        synthesise(frames[:, :10], layout)


def test_layout_json_round_trip_and_rates():
    layout = VocoderLayout(22_050)
    data = json.loads(json.dumps(layout.to_json()))
    assert VocoderLayout.from_json(data) == layout
    assert data["groups"]["aperiodicity"] == [42, 43] and data["columns"][:2] == ["voiced", "log_f0"]
    assert [analysis_rate(r) for r in (8000, 16000, 22050, 44100)] == [16000, 16000, 22050, 24000]
    with pytest.raises(SeqlabError, match="unknown vocoder"):
        VocoderLayout.from_json({**data, "vocoder": "straight"})


@pytest.mark.parametrize("subtype, rate, channels", [("PCM_U8", 8000, 1), ("PCM_24", 22050, 2), ("FLOAT", 44100, 1)])
def test_any_wav_the_loader_takes_becomes_frames(tmp_path, subtype, rate, channels):
    x, _ = glide(1.0, rate)
    path = tmp_path / "voice.wav"
    soundfile.write(str(path), np.repeat(x[:, None], channels, axis=1), rate, subtype=subtype)
    data = load_dataset(DataSpec(str(path)))
    layout = VocoderLayout.from_json(data.spec.vocoder)
    assert data.spec.audio_encoding == "vocoder" and layout.sample_rate == analysis_rate(rate) == data.rate
    assert data.train.shape[1] == layout.dim and len(data.train) + len(data.valid) == 201
    assert data.elements == "frames" and data.meta["voiced_fraction"] > 0.9


def test_a_silent_wav_is_refused_with_no_voiced_frame(tmp_path):
    path = tmp_path / "silence.wav"
    soundfile.write(str(path), np.zeros(RATE), RATE, subtype="PCM_16")
    with pytest.raises(SeqlabError, match=r"silence.wav: no voiced frame \(201 frames of 5 ms; silence or noise\)"):
        load_dataset(DataSpec(str(path)))


def test_a_wav_shorter_than_the_model_needs_names_the_file(tmp_path):
    x, _ = glide(0.15)
    path = tmp_path / "short.wav"
    soundfile.write(str(path), x, RATE, subtype="PCM_16")
    with pytest.raises(SeqlabError, match=r"short.wav: 0.150 s of audio \(31 frames of 5 ms\) is too short"):
        load_dataset(DataSpec(str(path)))


def test_a_wav_the_vocoder_cannot_analyse(tmp_path, monkeypatch):
    path = tmp_path / "tiny.wav"
    soundfile.write(str(path), np.full(50, 0.1), RATE, subtype="PCM_16")  # 3 ms: less than two frames
    with pytest.raises(SeqlabError, match=r"tiny.wav: 50 samples are too short for the vocoder"):
        load_dataset(DataSpec(str(path)))
    x, _ = glide(1.0)
    soundfile.write(str(path), x, RATE, subtype="PCM_16")

    def fails(*args, **kwargs):
        raise RuntimeError("WORLD failed")

    monkeypatch.setattr(vocoder.pyworld, "harvest", fails)  # what WORLD's own errors become
    with pytest.raises(SeqlabError, match=r"tiny.wav: the vocoder could not analyse it \(RuntimeError: WORLD failed"):
        load_dataset(DataSpec(str(path)))


def test_a_held_out_nll_beyond_709_nats_has_an_infinite_perplexity_not_an_overflow():
    scores = likelihood_scores(torch.tensor([-800.0, -1200.0]))  # frames of 43 dimensions can score this
    assert scores["nll_nats"] == 1000.0 and scores["perplexity"] == float("inf")


@pytest.mark.parametrize("width", [3, 5])
def test_smoothing_is_a_moving_average_of_envelope_and_aperiodicity_only(width):
    """Against scipy's uniform filter (ends held: mode "nearest"); voicing and log f0 come back unchanged."""
    layout = VocoderLayout(16_000)
    frames = np.random.default_rng(0).standard_normal((50, layout.dim))
    smoothed = smooth_trajectories(frames, layout, width)
    columns = layout.groups["envelope"] + layout.groups["aperiodicity"]
    expected = scipy.ndimage.uniform_filter1d(frames[:, columns], width, axis=0, mode="nearest")
    np.testing.assert_allclose(smoothed[:, columns], expected, rtol=0, atol=1e-12)
    kept = layout.groups["voicing"] + layout.groups["f0"]
    np.testing.assert_array_equal(smoothed[:, kept], frames[:, kept])
    np.testing.assert_array_equal(smooth_trajectories(frames, layout, 1), frames)
    with pytest.raises(SeqlabError, match="odd"):
        smooth_trajectories(frames, layout, 4)


@pytest.mark.slow  # a subprocess importing the vocoder: in CI's slow pass
def test_importing_the_vocoder_prints_no_pkg_resources_warning():
    """pyworld's ``import pkg_resources`` warns; the import in seqlab.data.vocoder silences exactly that warning
    (under -W error any warning that still escaped would fail the import)."""
    run = subprocess.run(
        [sys.executable, "-W", "error", "-c", "import seqlab.data.vocoder"], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    assert "pkg_resources" not in run.stderr


@pytest.mark.parametrize("rate", [16_000, 22_050])
def test_analysis_in_chunks_agrees_with_one_call(monkeypatch, rate):
    """Issue 35: long audio is analysed a chunk at a time (bounded memory); with 1 s chunks and 0.3 s of context
    the frames of a 4.3 s glide are WORLD's analysis of the whole, frame for frame, but for a few frames by the
    chunks' edges (a start one frame off fails: 98 % of voicing decisions agree)."""
    x, _ = glide(4.3, rate)
    x = x * (np.arange(len(x)) / rate % 0.37 < 0.29)  # 80 ms gaps: voicing edges that a frame's shift would move
    whole = vocoder.analyse(x, rate)
    seen = []
    monkeypatch.setattr(vocoder, "ANALYSIS_CHUNK_S", 1.0)
    monkeypatch.setattr(vocoder, "ANALYSIS_CONTEXT_S", 0.3)
    chunked = vocoder.analyse(x, rate, progress=lambda done, total: seen.append((done, total)))
    assert chunked.shape == whole.shape and [round(d, 2) for d, _ in seen] == [1.0, 2.0, 3.0, 4.0, 4.3]
    assert np.mean(chunked[:, 0] == whole[:, 0]) > 0.99
    both = (chunked[:, 0] > 0) & (whole[:, 0] > 0)
    f0_error = np.abs(chunked[both, 1] - whole[both, 1])  # Harvest repairs its contour over the whole signal, so
    # a few onsets differ by a frame (16 kHz: 2 of 737 frames over a semitone); the rest agree to 1e-7
    assert np.median(f0_error) < 1e-4 and np.mean(f0_error < np.log(2 ** (1 / 12))) > 0.99
    envelope = slice(2, 2 + vocoder.ENVELOPE_COEFFICIENTS)
    assert np.median(np.abs(chunked[:, envelope] - whole[:, envelope])) < 0.01 * np.abs(whole[:, envelope]).mean()


def test_long_audio_is_analysed_once_then_read_from_the_cache(monkeypatch):
    """Issue 35: evaluate, --resume and --spectrogram analysed the whole file again; audio of CACHE_MIN_S or more
    now keeps its frames in the cache (the tests' own, conftest.py). Shortened to 1 s here to stay fast."""
    monkeypatch.setattr(vocoder, "CACHE_MIN_S", 1.0)
    x, _ = glide(1.2)
    first = vocoder.analyse(x, RATE)
    path = vocoder.cache_file(x, VocoderLayout(RATE))
    assert path.exists()

    def fails(*args, **kwargs):
        raise AssertionError("analysed again")

    with monkeypatch.context() as m:
        m.setattr(vocoder.pyworld, "harvest", fails)
        assert np.array_equal(vocoder.analyse(x, RATE), first)
        other = x.copy()
        other[100] += 1e-3  # other samples: another entry, analysed
        with pytest.raises(SeqlabError, match="analysed again"):
            vocoder.analyse(other, RATE)
        with pytest.raises(SeqlabError, match="analysed again"):
            vocoder.analyse(x, RATE, layout=VocoderLayout(RATE, envelope=24))  # another layout
    path.write_bytes(path.read_bytes()[:100])  # a damaged entry is analysed again and rewritten
    assert np.array_equal(vocoder.analyse(x, RATE), first) and np.load(path).shape == first.shape
    monkeypatch.setattr(vocoder, "CACHE_MIN_S", 2.0)  # shorter than the threshold: never cached
    path.unlink()
    vocoder.analyse(x, RATE)
    assert not path.exists()


def test_analysis_memory_does_not_grow_with_the_audio(monkeypatch):
    """Issue 35 (class 3): each chunk's spectra (513 values a frame at 16 kHz for the envelope, as many for the
    aperiodicity) were kept until the last chunk was analysed, 1.6 MB per second of audio: 1 GB for 10 minutes.
    Now a chunk is coded before the next: from 2 s to 6 s of audio (4 to 12 chunks of 0.5 s) the peak grows by what
    the samples and the coded frames take (0.07 MB/s), not by the spectra (3.4 MB/s before)."""
    monkeypatch.setattr(vocoder, "ANALYSIS_CHUNK_S", 0.5)
    monkeypatch.setattr(vocoder, "ANALYSIS_CONTEXT_S", 0.25)
    monkeypatch.setattr(vocoder, "CACHE_MIN_S", 1e9)  # analysed, not read from the cache
    short, long = glide(2.0)[0], glide(6.0)[0]
    growth = (traced_peak_mb(analyse, long, RATE) - traced_peak_mb(analyse, short, RATE)) / 4
    assert growth < 0.5, f"{growth:.2f} MB per second of audio"
