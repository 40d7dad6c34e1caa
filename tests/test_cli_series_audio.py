"""The command line on prices and sound: train, forecast, backtest, sample audio, and their bad inputs."""

import itertools
import json
import shlex

import numpy as np
import pytest
import soundfile
from helpers import assert_one_line_error
from helpers import run_cli as run

from seqlab import training
from seqlab.cli import main
from seqlab.runs import train_neural

TINY = ["--hidden", "8", "--embedding", "4", "--batch-size", "2", "--window", "16", "--no-progress"]


@pytest.fixture(scope="module")
def prices(tmp_path_factory):
    directory = tmp_path_factory.mktemp("series")
    rng = np.random.default_rng(0)
    close = 20 * np.exp(np.cumsum(0.02 * rng.standard_normal(300)))
    days = np.datetime64("2001-01-01") + np.arange(300)
    lines = ["Date,Close,Volume"] + [
        f"{d},{c:.4f},{1000 + i}" for i, (d, c) in enumerate(zip(days, close, strict=True))
    ]
    path = directory / "prices.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = directory / "model"
    assert main(["train", "--data", str(path), "--steps", "4", "--out", str(out), "--head", "studentt", *TINY]) == 0
    return directory, path, out


def test_train_on_prices_then_forecast_table_and_fan_chart(prices, capsys):
    directory, path, out = prices
    code, stdout, _ = run(
        [
            "forecast",
            str(out),
            "--data",
            str(path),
            "--horizon",
            "4",
            "--samples",
            "200",
            "--out",
            str(directory / "f.csv"),
            "--plot",
            str(directory / "f.png"),
        ],
        capsys,
    )
    assert code == 0 and "last date 2001-10-27" in stdout
    table = np.loadtxt(directory / "f.csv", delimiter=",", skiprows=1)
    assert table.shape == (4, 5) and list(table[:, 0]) == [1, 2, 3, 4]
    assert np.all(table[:, 1] <= table[:, 2]) and np.all(table[:, 2] <= table[:, 3])  # q0.1 <= q0.5 <= q0.9
    assert (directory / "f.png").stat().st_size > 10_000
    evaluated = json.loads(run(["evaluate", str(out), "--data", str(path), "--json"], capsys)[1])
    assert (
        evaluated["values"] == 60
        and "bits_per_char" not in evaluated
        and evaluated["data"].endswith("(validation part)")
    )  # the last 20% of returns
    info = run(["info", str(out)], capsys)[1]
    assert "studentt head" in info and '"transform": "log_return"' in info


def test_backtest_json(prices, capsys):
    _, path, _ = prices
    argv = ["backtest", "--data", str(path), "--models", "random_walk,linear_ar,gru", "--steps", "3"]
    code, stdout, _ = run(
        [*argv, "--folds", "3", "--horizon", "2", "--samples", "50", "--json", "--no-progress"], capsys
    )
    assert code == 0
    result = json.loads(stdout)
    assert [r["model"].split()[0] for r in result["results"]] == ["random_walk", "linear_ar", "gru"]
    assert result["folds"] == 3 and result["test_values"] == 60
    for r in result["results"]:
        assert 0 <= r["coverage_80"] <= 1 and r["crps"] > 0 and np.isfinite(r["nll"])


def test_backtest_with_a_past_covariate(prices, capsys):
    _, path, _ = prices
    argv = ["backtest", "--data", str(path), "--models", "random_walk,neural_ar", "--covariates", "Volume"]
    code, stdout, err = run(
        [*argv, "--steps", "2", "--folds", "2", "--samples", "20", "--json", "--no-progress"], capsys
    )
    assert code == 0 and "covariates Volume (neural models and GARCH-X only)" in err
    result = json.loads(stdout)
    assert result["covariates"] == "Volume" and len(result["results"]) == 2


def test_train_on_audio_then_sample_seconds_to_a_wav(tmp_path, capsys):
    t = np.arange(8000) / 8000
    tone = (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    wav = tmp_path / "tone.wav"
    soundfile.write(str(wav), tone, 8000, subtype="PCM_16")
    out = tmp_path / "audio_model"
    argv = ["train", "--data", str(wav), "--audio-encoding", "mu_law", "--steps", "3", "--out", str(out), *TINY]
    assert main(argv) == 0
    assert "bits/sample" in capsys.readouterr().out
    generated, png = tmp_path / "gen.wav", tmp_path / "spec.png"
    code, stdout, _ = run(
        ["sample", str(out), "--seconds", "0.25", "--out", str(generated), "--spectrogram", str(png), "--seed", "1"]
        + ["--data", str(wav)],
        capsys,
    )
    assert code == 0 and "samples/s" in stdout
    audio, rate = soundfile.read(str(generated))
    assert rate == 8000 and len(audio) == 2000 and png.stat().st_size > 10_000
    run(["sample", str(out), "--seconds", "0.25", "--out", str(tmp_path / "again.wav"), "--seed", "1"], capsys)
    assert np.array_equal(audio, soundfile.read(str(tmp_path / "again.wav"))[0])  # seeded: the same sound
    # a prompt in another sample rate is resampled to the model's
    soundfile.write(str(tmp_path / "p.wav"), tone[:4000], 16000)
    code, _, _ = run(
        ["sample", str(out), "--seconds", "0.1", "--out", str(generated), "--prompt-audio", str(tmp_path / "p.wav")],
        capsys,
    )
    assert code == 0


def test_bad_series_and_audio_input(prices, tmp_path, capsys):
    directory, path, out = prices
    cases = [
        (["train", "--data", str(path), "--column", "Price"], ["no column 'Price'", "Date, Close, Volume"]),
        (["forecast", str(out), "--quantiles", "0.5,1.5"], ["--quantiles: expected numbers in (0, 1)"]),
        (["backtest", "--data", str(path), "--models", "arima"], ["--models: unknown arima"]),
        (["sample", str(out)], ["a model of a series", "with forecast"]),
        (["train", "--data", "speech", "--sample-rate", "0"], ["--sample-rate: expected a positive integer, got 0"]),
        (["forecast", str(out), "--data", str(path), "--context", "100000"], ["--context 100000", "has only 300 rows"]),
        (["backtest", "--data", "speech"], ["audio data; backtest takes a CSV series"]),
    ]
    for argv, fragments in cases:
        code, _, err = run(argv, capsys)
        assert_one_line_error(code, err, *fragments)
    negative = tmp_path / "neg.csv"
    negative.write_text("Date,Close\n" + "".join(f"2000-01-{d:02d},{d - 3}\n" for d in range(1, 29)), encoding="utf-8")
    code, _, err = run(["train", "--data", str(negative), "--out", str(tmp_path / "m")], capsys)
    assert_one_line_error(code, err, "line 2 is -2; the log transform needs positive values")


def test_raw_audio_with_a_continuous_head(tmp_path, capsys):
    tone = (0.3 * np.sin(2 * np.pi * 220 * np.arange(4000) / 8000)).astype(np.float32)
    wav = tmp_path / "tone.wav"
    soundfile.write(str(wav), tone, 8000, subtype="FLOAT")
    out = tmp_path / "raw_model"
    argv = ["train", "--data", str(wav), "--audio-encoding", "raw", "--head", "mixture", "--steps", "2"]
    assert main([*argv, "--out", str(out), *TINY]) == 0
    assert "nats/sample (a density" in capsys.readouterr().out  # raw samples: a density per sample
    code, _, _ = run(["sample", str(out), "--seconds", "0.01", "--out", str(tmp_path / "raw.wav")], capsys)
    assert code == 0 and len(soundfile.read(str(tmp_path / "raw.wav"))[0]) == 80


def test_vocoder_train_sample_evaluate_voice(tmp_path, capsys):
    """The default audio encoding end to end on a 3 s harmonic glide: WORLD frames, a tiny LatentAR, sampled
    frames synthesised to a WAV, and the voice metrics of 2 s generated beside the data's."""
    t = np.arange(3 * 16000) / 16000
    f0 = 120 * 2 ** (4 / 12 * np.sin(2 * np.pi * 0.5 * t))
    phase = 2 * np.pi * np.cumsum(f0) / 16000
    voice = 0.2 * sum(np.sin(k * phase) / k for k in range(1, 30))
    wav = tmp_path / "glide.wav"
    soundfile.write(str(wav), voice, 16000, subtype="PCM_16")
    out = tmp_path / "frames_model"
    assert main(["train", "--data", str(wav), "--steps", "40", "--out", str(out), *TINY]) == 0
    stdout = capsys.readouterr().out
    assert "training, 61 validation frames" in stdout and "nats/frame" in stdout
    voice = next(line for line in stdout.splitlines() if line.startswith("seqlab: voice of 3 s generated"))
    assert "voiced (the data " in voice and "mean mel-cepstrum distance from the data's" in voice, voice
    # the next step it prints names the local WAV again (a recorded path is read only when named), and runs as printed
    advice = next(line for line in stdout.splitlines() if line.startswith("seqlab: measure its voice with: "))
    argv = shlex.split(advice.removeprefix("seqlab: measure its voice with: seqlab "))
    assert argv[-2:] == ["--data", str(wav)], advice
    code, _, err = run([*argv, "--seconds", "0.5"], capsys)
    assert code == 0, err
    generated, png = tmp_path / "gen.wav", tmp_path / "spec.png"
    argv = ["sample", str(out), "--seconds", "1", "--out", str(generated), "--data", str(wav), "--seed", "0"]
    code, stdout, _ = run([*argv, "--spectrogram", str(png)], capsys)
    assert code == 0 and "samples/s" in stdout and png.stat().st_size > 10_000
    audio, rate = soundfile.read(str(generated))
    assert rate == 16000 and len(audio) == 16000 and np.abs(audio).max() > 0.01
    code, stdout, _ = run(["evaluate", str(out), "--voice", "--seconds", "2", "--data", str(wav), "--json"], capsys)
    assert code == 0
    result = json.loads(stdout)
    assert result["data"]["voiced_fraction"] > 0.9 and 95 < result["data"]["median_f0_hz"] < 152  # the glide
    assert result["generated"]["voiced_fraction"] > 0.0 and result["seconds"] == pytest.approx(2.0, abs=0.01)
    code, stdout, _ = run(["evaluate", str(out), "--voice", "--seconds", "1", "--data", str(wav)], capsys)
    assert code == 0 and "mean HNR of voiced frames (dB)" in stdout
    code, _, err = run(["evaluate", str(out), "--voice"], capsys)  # a local file is read only when named
    assert_one_line_error(code, err, "was trained on the local file")


def test_the_default_audio_run_says_when_its_time_ceiling_cut_it_short(tmp_path, capsys, monkeypatch):
    """The default speech run is a step count with a time ceiling; stopped by the ceiling, train says so and how
    to finish (here the ceiling is made 1 s). The Trainer's clock advances 0.25 s each time it is read (issue 35,
    class 8): on the wall clock, whether 10,000 steps outlast 1 s was the machine's speed and load."""
    monkeypatch.setitem(train_neural.KIND_DEFAULTS["vocoder"], "time_budget", 1.0)
    ticks = itertools.count()
    monkeypatch.setattr(training.time, "perf_counter", lambda: next(ticks) * 0.25)
    t = np.arange(2 * 16000) / 16000
    wav = tmp_path / "tone.wav"
    soundfile.write(str(wav), 0.2 * np.sin(2 * np.pi * 150 * t), 16000, subtype="PCM_16")
    out = tmp_path / "m"
    code, stdout, err = run(["train", "--data", str(wav), "--out", str(out), *TINY], capsys)
    assert code == 0, err
    assert "budget 10000 steps (at most 1 s)" in stdout
    assert "ceiling stopped it at" in stdout and "of the default 10,000 steps" in stdout
    assert json.loads((out / "training.json").read_text())["progress"]["step"] < 10
    assert f"seqlab train --resume --out {out} --time-budget 1800" in stdout



def test_the_vocoder_analysis_shows_its_progress(tmp_path, capsys):
    t = np.arange(2 * 16000) / 16000
    wav = tmp_path / "tone.wav"
    soundfile.write(str(wav), 0.2 * np.sin(2 * np.pi * 150 * t), 16000, subtype="PCM_16")
    quiet = [a for a in TINY if a != "--no-progress"]
    argv = ["train", "--data", str(wav), "--steps", "1", "--sample-length", "0", *quiet]
    code, _, err = run([*argv, "--out", str(tmp_path / "a")], capsys)
    assert code == 0 and f"analysing {wav}" in err and "s of audio" in err, err
    code, _, err = run([*argv, "--out", str(tmp_path / "b"), "--no-progress"], capsys)
    assert code == 0 and "analysing" not in err, err
