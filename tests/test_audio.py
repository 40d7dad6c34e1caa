"""WAV reading (checked against frames written with the standard library's ``wave``), resampling, mu-law."""

import struct
import wave

import numpy as np
import pytest
import soundfile
import torch

from seqlab.cli import main
from seqlab.data.audio import MuLaw, load_audio, resample, write_wav
from seqlab.errors import Notice, SeqlabError

RATE = 8000


def write_pcm(path, ints: np.ndarray, width: int, channels: int = 1, rate: int = RATE):
    """Integer frames written byte by byte with the standard library (not libsndfile)."""
    if width == 1:
        raw = (ints + 128).astype(np.uint8).tobytes()  # 8-bit WAV is unsigned
    elif width == 2:
        raw = ints.astype("<i2").tobytes()
    else:
        raw = b"".join(struct.pack("<i", int(v))[:3] for v in ints.reshape(-1))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(raw)


@pytest.mark.parametrize("width, full_scale", [(1, 128), (2, 32768), (3, 8388608)])
def test_integer_wavs_read_as_fractions_of_full_scale(tmp_path, width, full_scale):
    rng = np.random.default_rng(width)
    ints = rng.integers(-full_scale, full_scale, size=500)
    path = tmp_path / f"pcm{8 * width}.wav"
    write_pcm(path, ints, width)
    samples, rate = load_audio(path)
    assert rate == RATE and samples.dtype == np.float32
    assert np.allclose(samples, ints / full_scale, atol=1e-7)


def test_float_wav_and_stereo_mixdown_with_a_notice(tmp_path, capsys):
    t = np.arange(800) / RATE
    left, right = np.sin(2 * np.pi * 440 * t), 0.5 * np.cos(2 * np.pi * 300 * t)
    path = tmp_path / "stereo.wav"
    soundfile.write(str(path), np.stack([left, right], axis=1).astype(np.float32), RATE, subtype="FLOAT")
    with pytest.warns(Notice, match="stereo.wav: 2 channels mixed down to mono"):  # the library never prints
        samples, _ = load_audio(path)
    assert np.allclose(samples, (left + right) / 2, atol=1e-6)
    assert capsys.readouterr().err == ""
    # the CLI shows the notice as its own line
    argv = [
        "train",
        "--data",
        str(path),
        "--audio-encoding",
        "raw",
        "--steps",
        "1",
        "--hidden",
        "4",
        "--embedding",
        "2",
    ]
    for _ in range(2):  # every time, not once per process
        assert (
            main(
                [
                    *argv,
                    "--no-progress",
                    "--window",
                    "8",
                    "--batch-size",
                    "2",
                    "--out",
                    str(tmp_path / "m"),
                    "--overwrite",
                ]
            )
            == 0
        )
        assert "seqlab: stereo.wav: 2 channels mixed down to mono\n" in capsys.readouterr().err


def test_resampling_keeps_the_pitch_and_the_duration(tmp_path):
    t = np.arange(16000) / 16000
    tone = np.sin(2 * np.pi * 1000 * t).astype(np.float32)
    for rate in (8000, 22050):
        out = resample(tone, 16000, rate)
        assert len(out) == rate
        spectrum = np.abs(np.fft.rfft(out))
        assert np.argmax(spectrum) * rate / len(out) == pytest.approx(1000, abs=2)
    path = tmp_path / "tone.wav"
    write_wav(path, tone, 16000)
    samples, rate = load_audio(path, rate=8000)
    assert rate == 8000 and len(samples) == 8000


def test_mu_law_levels_invert_exactly_and_compand():
    codec = MuLaw(16000)
    ids = torch.arange(256)
    levels = codec.decode(ids)
    assert levels[0] == -1.0 and levels[-1] == 1.0 and np.all(np.diff(levels) > 0)
    assert torch.equal(codec.encode(levels), ids)
    # quiet sounds get finer steps than loud ones: the point of companding
    steps = np.diff(levels)
    assert steps[127] < steps[0] / 50
    x = np.linspace(-1, 1, 1001)
    f = np.sign(x) * np.log1p(255 * np.abs(x)) / np.log(256)  # the mu-law formula, written out
    assert torch.equal(codec.encode(x), torch.from_numpy(np.rint((f + 1) / 2 * 255).astype(np.int64)))
    assert MuLaw.from_json(codec.to_json()).sample_rate == 16000


def test_bad_audio_files(tmp_path):
    text = tmp_path / "notes.wav"
    text.write_text("not audio at all", encoding="utf-8")
    with pytest.raises(SeqlabError, match="notes.wav: not a readable audio file"):
        load_audio(text)
    empty = tmp_path / "empty.wav"
    write_pcm(empty, np.zeros(0, dtype=np.int64), 2)
    with pytest.raises(SeqlabError, match="empty.wav: holds no samples"):
        load_audio(empty)
    zero_rate = tmp_path / "zero_rate.wav"
    write_pcm(zero_rate, np.arange(100), 2)
    raw = bytearray(zero_rate.read_bytes())
    raw[24:28] = struct.pack("<I", 0)  # the header's sample-rate field
    zero_rate.write_bytes(bytes(raw))
    with pytest.raises(SeqlabError, match="zero_rate.wav: the header gives a sample rate of 0"):
        load_audio(zero_rate)
    with pytest.raises(SeqlabError, match="sample rate must be positive, got 0"):
        load_audio(empty, rate=0)


@pytest.mark.parametrize("rate", [1, 999, 384_001, 2**31 - 1])
def test_a_file_rate_outside_the_range_is_refused_before_reading(tmp_path, rate, monkeypatch):
    """Issue 35: a 40 KB WAV at 1 Hz was resampled to 3.2e8 samples (minutes, gigabytes); now one line, and no
    sample is read or resampled."""
    path = tmp_path / "odd.wav"
    write_pcm(path, np.arange(20_000) % 200, 2)
    raw = bytearray(path.read_bytes())
    raw[24:28] = struct.pack("<I", rate)  # the header's sample-rate field
    path.write_bytes(bytes(raw))
    monkeypatch.setattr(soundfile, "read", lambda *a, **k: pytest.fail("read the samples"))
    with pytest.raises(SeqlabError, match=rf"odd.wav: the header gives a sample rate of {rate:,} Hz; seqlab reads "):
        load_audio(path, 16_000)


def test_the_lowest_and_highest_file_rates_are_read(tmp_path):
    for rate in (1_000, 384_000):
        path = tmp_path / f"r{rate}.wav"
        soundfile.write(str(path), np.zeros(100), rate)
        assert load_audio(path)[1] == rate
