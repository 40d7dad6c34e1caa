"""The targets of docs/audio.md (``seqlab.voice.voice_targets``) and the line ``seqlab train`` ends with on audio
(``seqlab.runs.sample.voice_summary``): known metrics, and generated audio we control."""

import math

import numpy as np
import pytest
import soundfile

from seqlab.data.spec import DataSpec, load_dataset
from seqlab.models import LatentAR, LatentARConfig
from seqlab.runs import sample
from seqlab.voice import TARGETS, voice_targets

RATE = 16_000
DATA = {
    "voiced_fraction": 0.60,
    "median_f0_hz": 97.0,
    "f0_range_semitones": 5.8,
    "f0_jump_share": 0.004,
    "mean_voiced_run_ms": 99.0,
    "hnr_db": 9.7,
    "loudest_over_median_db": 12.9,
    "mel_cepstrum_distance_db": 0.0,
}
GOOD = {  # seed 0 of docs/audio.md's table: every target met
    "voiced_fraction": 0.47,
    "median_f0_hz": 95.1,
    "f0_range_semitones": 6.2,
    "f0_jump_share": 0.019,
    "mean_voiced_run_ms": 88.0,
    "hnr_db": 8.7,
    "loudest_over_median_db": 15.4,
    "mel_cepstrum_distance_db": 1.17,
}


def test_targets_of_a_good_sample_are_all_met():
    assert voice_targets(DATA, GOOD) == {key: True for key, *_ in TARGETS}


@pytest.mark.parametrize(
    "key, value, ok",
    [
        ("voiced_fraction", 0.23, False),  # under 0.4 x 0.60
        ("voiced_fraction", 0.24, True),  # the bound itself
        ("voiced_fraction", 0.85, False),  # over 1.4 x 0.60 = 0.84
        ("median_f0_hz", 97.0 * 0.84, False),
        ("median_f0_hz", 97.0 * 1.14, True),
        ("f0_range_semitones", 5.8 * 2.6, False),
        ("f0_range_semitones", 5.8 * 0.39, False),
        ("f0_jump_share", 0.16, False),
        ("mean_voiced_run_ms", 57.0, False),
        ("hnr_db", 2.9, False),
        ("loudest_over_median_db", 30.5, False),
        ("mel_cepstrum_distance_db", 4.84, False),  # issue 37's collapsed sample
        ("mel_cepstrum_distance_db", 2.49, True),
        ("median_f0_hz", math.nan, False),  # no voiced frame: no f0 to meet anything
    ],
)
def test_each_target_has_its_bound(key, value, ok):
    met = voice_targets(DATA, {**GOOD, key: value})
    assert met[key] is ok and all(met[k] for k in met if k != key)


def glide_wav(path):
    t = np.arange(3 * RATE) / RATE
    f0 = 120 * 2 ** (4 / 12 * np.sin(2 * np.pi * 0.5 * t))
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    soundfile.write(str(path), 0.2 * sum(np.sin(k * phase) / k for k in range(1, 30)), RATE, subtype="PCM_16")
    return path


@pytest.fixture(scope="module")
def glide(tmp_path_factory):
    """A 3 s harmonic glide as vocoder frames, and an untrained tiny frame model of it."""
    dataset = load_dataset(DataSpec(str(glide_wav(tmp_path_factory.mktemp("glide") / "glide.wav"))))
    model = LatentAR.for_dataset(dataset, LatentARConfig(cell="lstm", hidden_size=8, embedding_dim=4))
    return dataset, model


def test_train_summary_of_the_data_itself_meets_every_target(glide, monkeypatch):
    """Generated audio that is the training audio: the same voiced fraction, a distance of 0 dB."""
    dataset, model = glide
    real = soundfile.read(str(dataset.spec.source))[0].astype(np.float32)
    monkeypatch.setattr(sample, "generate_audio", lambda m, spec, s: (real[: int(0.9 * len(real))], RATE, real[:0]))
    line = sample.voice_summary(model, dataset)
    voiced = line.split("% voiced (the data ")
    assert voiced[0].endswith(voiced[1].split("%")[0])  # generated and data voiced fractions are the same
    assert "distance from the data's 0.00 dB" in line and "all 8 voice targets met" in line


def test_train_summary_of_silence_says_what_is_missed(glide, monkeypatch):
    dataset, model = glide
    silence = np.zeros(3 * RATE, dtype=np.float32)
    monkeypatch.setattr(sample, "generate_audio", lambda m, spec, s: (silence, RATE, silence[:0]))
    line = sample.voice_summary(model, dataset)
    assert "0% voiced (the data 100%)" in line and "data's none (no sound)" in line
    assert "targets missed: voiced fraction, median f0, " in line and line.endswith(
        "mean mel-cepstrum distance (docs/audio.md; seqlab evaluate --voice measures more)"
    )


def test_train_summary_generates_from_the_model(glide):
    """The real path: 3 s of frames drawn from the (untrained) model, synthesised and measured."""
    dataset, model = glide
    line = sample.voice_summary(model, dataset)
    assert line.startswith("voice of 3 s generated (seed 0): ") and " dB (target at most 2.5 dB); " in line
