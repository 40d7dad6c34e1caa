"""The commands under absurd options and a failing disk: sizes checked before allocation (seqlab.limits), one line
for every OSError naming the path, --valid-fraction 0, --prompt on audio, --seed -1, a temperature whose
probabilities would underflow, and text samples that never contain the unknown symbol U+FFFD."""

import errno
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile
import torch
from helpers import TINY_MODEL, TINY_TRAINING, assert_one_line_error, write_small_text
from helpers import run_cli as run

from seqlab import experiments, io, limits
from seqlab.cli import build_parser, main
from seqlab.cli_options import DATA_OPTIONS
from seqlab.data import Vocabulary
from seqlab.data.audio import MuLaw
from seqlab.data.spec import AUDIO_FIELDS, TEXT_FIELDS
from seqlab.errors import OptionError, SeqlabError
from seqlab.models import LatentAR, LatentARConfig
from seqlab.models.neural_ar import NeuralAR, NeuralARConfig
from seqlab.runs import sample

TEXT = "the cat sat on the mat; a dog ran far. " * 10


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Untrained text (LatentAR, NeuralAR), mu-law audio and series models: the unknown symbol is as likely as
    any other character, so an unmasked sampler emits it within a few hundred characters."""
    directory = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    vocabulary = Vocabulary.from_text(TEXT)
    io.save(LatentAR(vocabulary, LatentARConfig(hidden_size=8, embedding_dim=4)), directory / "text")
    io.save(NeuralAR(vocabulary, NeuralARConfig(hidden_size=8, embedding_dim=4, num_layers=1)), directory / "neural")
    io.save(LatentAR(MuLaw(8000), LatentARConfig(cell="gru", hidden_size=8, embedding_dim=4)), directory / "audio")
    series = torch.from_numpy(0.01 * np.random.default_rng(0).standard_normal(200))
    io.save(LatentAR.for_series(series, LatentARConfig(cell="gru", hidden_size=4)), directory / "series")
    prices = directory / "prices.csv"
    prices.write_text("Close\n" + "".join(f"{p}\n" for p in 50 * np.exp(np.cumsum(series.numpy()))))
    return directory, prices


@pytest.mark.parametrize("kind", ["text", "neural"])
def test_a_text_sample_never_contains_the_unknown_symbol(models, capsys, kind):
    directory, _ = models
    code, out, err = run(["sample", str(directory / kind), "--length", "600", "--seed", "3"], capsys)
    assert code == 0, err
    assert len(out.rstrip("\n")) == 600 and "\ufffd" not in out


@pytest.mark.parametrize(
    "argv, fragments",
    [
        (["sample", "{text}", "--length", "1000000000000"], ["--length", "over the limit"]),
        (["sample", "{audio}", "--seconds", "1e12", "--out", "{tmp}/g.wav"], ["--seconds", "over the limit"]),
        (["sample", "{text}", "--temperature", "1e-30"], ["--temperature", "--top-k 1"]),
        (["sample", "{audio}", "--prompt", "hello", "--out", "{tmp}/g.wav"], ["--prompt-audio", "--prompt"]),
        (["sample", "{audio}", "--out", "{tmp}/missing/g.wav"], ["missing/g.wav", "does not exist"]),
        (["sample", "{text}", "--seed", "-1"], ["--seed"]),
        (
            ["forecast", "{series}", "--data", "{prices}", "--samples", "1000000000", "--horizon", "1000"],
            ["--samples x --horizon", "over the limit"],
        ),
        (
            ["forecast", "{series}", "--data", "{prices}", "--horizon", "2", "--plot", "{tmp}/missing/f.png"],
            ["missing/f.png", "does not exist"],
        ),
        (["forecast", "{series}", "--data", "{prices}", "--seed", "-1"], ["--seed"]),
        (["backtest", "--samples", "1000000000", "--folds", "50", "--horizon", "100"], ["over the limit"]),
    ],
)
def test_absurd_options_are_one_line_before_any_work(models, tmp_path, capsys, argv, fragments):
    directory, prices = models
    names = {k: str(directory / k) for k in ("text", "audio", "series")} | {"prices": str(prices), "tmp": tmp_path}
    code, _, err = run([a.format(**names) for a in argv], capsys)
    assert_one_line_error(code, err, *fragments)


@pytest.fixture(scope="module")
def audio_files(tmp_path_factory):
    """A 2 s harmonic glide (speech-like: the vocoder finds its pitch), a 1 s tone at 8 kHz, and a vocoder-frame
    model trained one step on the glide."""
    directory = tmp_path_factory.mktemp("audio")
    t = np.arange(2 * 16000) / 16000
    phase = 2 * np.pi * np.cumsum(120 * 2 ** (4 / 12 * np.sin(np.pi * t))) / 16000
    soundfile.write(str(directory / "glide.wav"), 0.2 * sum(np.sin(k * phase) / k for k in range(1, 30)), 16000)
    soundfile.write(str(directory / "tone.wav"), 0.3 * np.sin(2 * np.pi * 220 * np.arange(8000) / 8000), 8000)
    argv = ["train", "--data", str(directory / "glide.wav"), "--steps", "1", *TINY_MODEL, *TINY_TRAINING]
    assert main([*argv, "--out", str(directory / "vocoder")]) == 0
    return directory


@pytest.mark.parametrize(
    "argv, fragments",
    [
        (["sample", "{audio}", "--seconds", "1e-5"], ["--seconds 1e-05 gives no sample at 8000 Hz", "0.000125 s"]),
        (
            ["sample", "{vocoder}", "--seconds", "0.001", "--data", "{glide}"],
            ["--seconds 0.001 gives no vocoder frame (5 ms each)", "at least 0.005 s"],
        ),
        (["evaluate", "{audio}", "--voice", "--seconds", "1e-5", "--data", "{tone}"], ["--seconds 1e-05", "10 ms"]),
        (["evaluate", "{vocoder}", "--voice", "--seconds", "0.001", "--data", "{glide}"], ["--seconds 0.001", "10 ms"]),
        (
            ["train", "--data", "{tone}", "--audio-encoding", "mu_law", "--sample-rate", "1000000000"],
            ["--sample-rate 1000000000", "at most 384000 Hz"],
        ),
        (["train", "--data", "{tone}", "--sample-rate", "1000000000"], ["--sample-rate 1000000000", "at most 384000"]),
        (["evaluate", "{audio}", "--data", "{tone}", "--sample-rate", "1000000000"], ["--sample-rate 1000000000"]),
    ],
)
def test_seconds_that_give_no_audio_and_an_absurd_sample_rate_are_one_line(
    models, audio_files, tmp_path, capsys, argv, fragments
):
    """Issue 35, item 6: zero frames were an IndexError (vocoder) or an empty WAV and "0 samples/s" (mu-law); a
    rate of 1e9 Hz resampled the file to a billion samples a second before anything looked at it."""
    names = {"audio": str(models[0] / "audio"), "vocoder": str(audio_files / "vocoder")}
    names |= {"glide": str(audio_files / "glide.wav"), "tone": str(audio_files / "tone.wav")}
    out = ["--out", str(tmp_path / "out")]
    code, _, err = run([a.format(**names) for a in argv] + out, capsys)
    assert_one_line_error(code, err, *fragments)
    assert not (tmp_path / "out").exists()


def test_resampling_past_the_memory_budget_is_one_line_before_it_allocates(models, audio_files, monkeypatch, capsys):
    monkeypatch.setattr(limits, "memory_budget", lambda: 2**20)  # 1 MiB: 1 s at 384 kHz takes 5.9 MiB
    argv = ["evaluate", str(models[0] / "audio"), "--data", str(audio_files / "tone.wav"), "--sample-rate", "384000"]
    code, _, err = run(argv, capsys)
    assert_one_line_error(code, err, "tone.wav resampled to 384000 Hz = 384,000", "over the limit")


def test_valid_fraction_zero_is_refused_not_silently_the_default(tmp_path, capsys):
    data = write_small_text(tmp_path)
    argv = ["train", "--data", str(data), "--steps", "1", "--valid-fraction", "0", *TINY_MODEL, *TINY_TRAINING]
    code, _, err = run([*argv, "--out", str(tmp_path / "run")], capsys)
    assert_one_line_error(code, err, "--valid-fraction", "(0, 1)")
    assert not (tmp_path / "run").exists()


def test_an_oserror_while_writing_is_one_line_naming_the_path(models, monkeypatch, capsys):
    directory, _ = models

    def full_disk(spec):
        raise OSError(errno.ENOSPC, "No space left on device", "/mnt/full/generated.wav")

    monkeypatch.setattr(sample, "sample", full_disk)
    code, _, err = run(["sample", str(directory / "audio")], capsys)
    assert_one_line_error(code, err, "/mnt/full/generated.wav: cannot write it: the disk is full")


# -- the commands agree ---------------------------------------------------------------------------------------------
SERIES_OPTIONS = {"valid_fraction": "0.2", "column": "Close", "date_column": "Date", "id_column": "Ticker"}
SERIES_OPTIONS |= {"fill": "ffill", "transform": "log_return", "covariates": "Volume", "features": "range"}
AUDIO_OPTIONS = {"audio_encoding": "raw", "sample_rate": "8000"}


def as_argv(options: dict) -> list[str]:
    return [a for name, value in options.items() for a in ("--" + name.replace("_", "-"), value)]


@pytest.mark.parametrize(
    "command, reads_audio",
    [(["train"], True), (["evaluate", "DIR"], True), (["forecast", "DIR"], False), (["backtest"], False)],
)
def test_every_command_that_reads_a_csv_takes_the_same_data_options(command, reads_audio):
    """A user who repeats their training's data options to another command is not told "unrecognized arguments"."""
    options = SERIES_OPTIONS | (AUDIO_OPTIONS if reads_audio else {})
    args = build_parser().parse_args([*command, *as_argv(options)])
    assert {name: str(getattr(args, name)) for name in options} == options
    assert set(options) == set(DATA_OPTIONS) - set(TEXT_FIELDS) - (set() if reads_audio else set(AUDIO_FIELDS))


@pytest.fixture(scope="module")
def dated_prices(tmp_path_factory):
    """A series model trained with --column and --date-column on a CSV that has more columns."""
    directory = tmp_path_factory.mktemp("dated")
    close = 20 * np.exp(np.cumsum(0.02 * np.random.default_rng(1).standard_normal(200)))
    days = np.datetime64("2001-01-01") + np.arange(200)
    rows = [f"{d},{c:.4f},{np.sqrt(c):.4f}" for d, c in zip(days, close, strict=True)]
    path = directory / "prices.csv"
    path.write_text("Day,Close,Other\n" + "\n".join(rows) + "\n", encoding="utf-8")
    out = directory / "model"
    options = ["--column", "Close", "--date-column", "Day", "--model", "gru", "--steps", "2", *TINY_MODEL]
    assert main(["train", "--data", str(path), *options, *TINY_TRAINING, "--out", str(out)]) == 0
    return path, out


def test_evaluate_takes_the_training_data_options_and_they_choose_the_data(dated_prices, capsys):
    path, out = dated_prices
    plain = run(["evaluate", str(out), "--data", str(path), "--json"], capsys)
    repeated = run(
        ["evaluate", str(out), "--data", str(path), "--column", "Close", "--date-column", "Day", "--json"], capsys
    )
    assert plain[0] == repeated[0] == 0, plain[2] + repeated[2]
    assert repeated[1] == plain[1]  # the model's own options, given again: the same scores
    other = run(["evaluate", str(out), "--data", str(path), "--column", "Other", "--json"], capsys)
    assert other[0] == 0, other[2]
    assert other[1] != plain[1]  # another column is another series: the option is read, not ignored
    code, _, err = run(["evaluate", str(out), "--data", str(path), "--column", "Volume"], capsys)
    assert_one_line_error(code, err, "Volume")


@pytest.mark.parametrize("command", ["evaluate", "forecast"])
def test_another_transform_than_the_models_is_a_one_line_error(dated_prices, command, capsys):
    path, out = dated_prices
    code, _, err = run([command, str(out), "--data", str(path), "--transform", "diff"], capsys)
    assert code == 1
    assert_one_line_error(code, err, "--transform diff", "trained with --transform log_return")
    code, _, err = run([command, str(out), "--data", str(path), "--transform", "log_return"], capsys)
    assert code == 0, err


def test_a_series_option_on_a_text_model_is_a_one_line_error(models, capsys):
    directory, _ = models
    code, _, err = run(["evaluate", str(directory / "text"), "--data", "shakespeare", "--column", "Close"], capsys)
    assert code == 1
    assert_one_line_error(code, err, "takes no --column")


@pytest.mark.parametrize("value", ["2", "1.5"])
def test_long_range_choose_rate_at_past_one_is_a_one_line_option_error(value, capsys):
    """It was reported as an internal error (a ValueError in the experiment, exit 2)."""
    code, _, err = run(["experiment", "long-range", "--quick", "--choose-rate-at", value], capsys)
    assert code == 1
    assert_one_line_error(code, err, "--choose-rate-at", "(0, 1]", value)


@pytest.mark.parametrize(
    "experiment, setting, flag",
    [
        ("long-range", "copy.steps", "--copy-steps"),
        ("long-range", "lstm_hidden", "--hidden"),
        ("cost", "cells", "--cells"),
    ],
)
def test_an_option_error_from_an_experiment_config_is_one_line_naming_its_flag(
    experiment, setting, flag, monkeypatch, capsys
):
    def refuse(config, show_progress=True, fitting=None):
        raise OptionError("{0} is refused here", setting)

    monkeypatch.setitem(experiments.EXPERIMENTS, experiment, (experiments.EXPERIMENTS[experiment][0], refuse))
    code, _, err = run(["experiment", experiment, "--quick", "--no-progress"], capsys)
    assert code == 1
    assert_one_line_error(code, err, f"{flag} is refused here")


# -- Ctrl-C during start-up (issue 24, item 5) ------------------------------------------------------------------


@pytest.mark.parametrize(
    "delay", [0.5, 1.0, pytest.param(2.0, marks=pytest.mark.slow), pytest.param(3.5, marks=pytest.mark.slow)]
)  # slow: the later signals wait for the training to start
def test_ctrl_c_while_seqlab_starts_is_quiet_with_exit_code_130(tmp_path, delay):
    """SIGINT at several moments after ``python -m seqlab train`` starts: while torch and seqlab import (the
    early ones, on any machine), or later, while training. Never a traceback; 130 (or death by SIGINT itself if
    it lands before Python's own handler is in place, which a shell reports as 130 too)."""
    data = tmp_path / "text.txt"
    data.write_text(TEXT * 40)
    argv = [sys.executable, "-m", "seqlab", "train", "--data", str(data), "--out", str(tmp_path / "run")]
    argv += ["--hidden", "4", "--embedding", "2", "--batch-size", "4", "--window", "16", "--steps", "10000000"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([*argv, "--no-progress"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(delay)
    assert process.poll() is None, "the command ended before the signal"
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=600)
    assert process.returncode in (130, -signal.SIGINT), (process.returncode, out, err)
    assert b"Traceback" not in out + err and b"internal error" not in err, err.decode()
    assert len(err.decode().strip().splitlines()) <= 1, err.decode()


# -- the pool's prior and members refused before any fit, finite weights, no NaN in JSON (issue 35, items 6, 7) ----


def price_csv(path, closes) -> str:
    days = np.datetime64("2001-01-01") + np.arange(len(closes))
    path.write_text("Date,Close\n" + "".join(f"{d},{c:.6f}\n" for d, c in zip(days, closes, strict=True)), "utf-8")
    return str(path)


@pytest.fixture
def no_fit(monkeypatch):
    """Building any contender (the first step of every fit) fails the test."""
    from seqlab.runs import backtest, train_pool

    def built(*args, **kwargs):
        raise AssertionError("a model was built before the options were checked")

    monkeypatch.setattr(backtest, "series_contender", built)
    monkeypatch.setattr(train_pool, "series_contender", built)


@pytest.mark.parametrize("prior", ["0.5", "1e308"])
def test_a_pool_prior_out_of_range_is_refused_before_any_fit(tmp_path, capsys, no_fit, prior):
    """1e308 saved NaN weights (then "no steps to score"); 0.5 was refused by backtest after the other models had
    been fitted."""
    data = price_csv(
        tmp_path / "prices.csv", 20 * np.exp(np.cumsum(0.02 * np.random.default_rng(2).standard_normal(150)))
    )
    argv = [
        "backtest",
        "--data",
        data,
        "--models",
        "random_walk,linear_ar,pool",
        "--pool-prior",
        prior,
        "--no-progress",
    ]
    code, _, err = run(argv, capsys)
    assert_one_line_error(code, err, "--pool-prior: the pool's prior must be a number of at least 1", "at most 1e+06")
    argv = ["train", "--data", data, "--model", "pool", "--pool-prior", prior, "--out", str(tmp_path / "pool")]
    code, _, err = run([*argv, "--no-progress"], capsys)
    assert_one_line_error(code, err, "--pool-prior: the pool's prior must be a number of at least 1", "at most 1e+06")
    assert not (tmp_path / "pool").exists()


def test_a_garch_x_member_without_its_covariate_names_the_options_before_any_fit(tmp_path, capsys, no_fit):
    """Inside a pool it was left out with a reason naming fields ("models: ... (give features range)")."""
    data = price_csv(
        tmp_path / "prices.csv", 20 * np.exp(np.cumsum(0.02 * np.random.default_rng(3).standard_normal(150)))
    )
    argv = ["train", "--data", data, "--model", "pool", "--members", "random_walk,garchx-t", "--no-progress"]
    code, _, err = run([*argv, "--out", str(tmp_path / "pool")], capsys)
    assert_one_line_error(code, err, "--members: garchx-t reads one exogenous variance", "give --features range")
    assert not (tmp_path / "pool").exists()
    argv = ["backtest", "--data", data, "--models", "random_walk,pool,garchx-t", "--no-progress"]
    code, _, err = run(argv, capsys)
    assert_one_line_error(code, err, "--models: garchx-t reads one exogenous variance", "give --features range")


def test_pool_weights_are_finite_at_the_largest_prior():
    from seqlab.models.pool import MAX_PRIOR, pool_weights

    w = pool_weights(np.random.default_rng(0).normal(-1.0, 1.0, (5, 60)), MAX_PRIOR)
    assert np.isfinite(w).all() and np.allclose(w, 0.2, atol=1e-4)


def test_a_pool_with_non_finite_weights_is_never_saved(tmp_path):
    from seqlab.models.pool import Pool
    from seqlab.models.random_walk import RandomWalk

    pool = Pool(["a", "b"])
    pool.members = [RandomWalk().fit(np.random.default_rng(0).standard_normal(30))] * 2
    pool.reads_covariates, pool.weights = [False, False], torch.tensor([float("nan")] * 2, dtype=torch.float64)
    with pytest.raises(SeqlabError, match="not finite"):
        io.save(pool, tmp_path / "pool")
    assert not (tmp_path / "pool" / io.WEIGHTS_FILE).exists()


def test_a_backtest_of_a_constant_series_writes_valid_json(tmp_path, capsys):
    """MASE divides by the random walk's MAE, 0 on a constant series: null, not NaN (which no JSON parser takes)."""
    import json

    def strict(text: str):
        return json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in JSON"))

    data = price_csv(tmp_path / "flat.csv", [5.0] * 120)
    argv = ["backtest", "--data", data, "--models", "random_walk", "--folds", "5", "--samples", "20", "--no-progress"]
    code, out, err = run([*argv, "--json", "--out", str(tmp_path / "out")], capsys)
    assert code == 0, err
    assert strict(out)["results"][0]["mase"] is None
    assert strict((tmp_path / "out" / "backtest.json").read_text())["results"][0]["mase"] is None


@pytest.mark.parametrize(
    "argv, written",
    [
        (["evaluate", "{vocoder}", "--voice", "--seconds", "0.5", "--out", "{tmp}/g.wav"], ["g.wav"]),
        (["sample", "{vocoder}", "--seconds", "0.5", "--out", "{tmp}/g.wav", "--spectrogram", "{tmp}/g.png"], []),
    ],
)
def test_voice_and_spectrogram_without_the_training_audio_are_refused_before_generating(
    audio_files, tmp_path, monkeypatch, capsys, argv, written
):
    """Issue 35, item 7: `evaluate --voice` and `sample --spectrogram` of a model trained on a local WAV, without
    --data (the recorded path is read only when named), generated and wrote the WAV, then refused; now the
    refusal comes first (generating is a tripwire here) and nothing is written."""

    def generated(*args, **kwargs):
        raise AssertionError("generated before the refusal")

    monkeypatch.setattr(sample.FrameSampler, "generate", generated)
    names = {"vocoder": str(audio_files / "vocoder"), "tmp": str(tmp_path)}
    code, _, err = run([a.format(**names) for a in argv], capsys)
    assert_one_line_error(code, err, "glide.wav", "give --data")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_silent_prompt_audio_is_told_what_sample_takes(audio_files, tmp_path, capsys):
    """Issue 35, item 7: a silent --prompt-audio was told to use --audio-encoding mu_law, an option of train that
    sample does not take; now the advice names --prompt-audio."""
    soundfile.write(str(tmp_path / "silent.wav"), np.zeros(16000), 16000)
    argv = ["sample", str(audio_files / "vocoder"), "--seconds", "0.5", "--out", str(tmp_path / "g.wav")]
    code, _, err = run([*argv, "--prompt-audio", str(tmp_path / "silent.wav")], capsys)
    assert_one_line_error(code, err, "silent.wav: no voiced frame", "give --prompt-audio a recording of a voice")
    assert "--audio-encoding" not in err and not (tmp_path / "g.wav").exists()
    usage = build_parser().parse_args(["sample", "x"])
    assert not hasattr(usage, "audio_encoding")  # the option the old advice named: still not sample's


def test_backtest_of_one_series_is_not_refused_for_another_short_series(tmp_path, capsys):
    """Issue 35, item 7: `backtest --series A` was refused because series B of the same file has 3 rows; the
    other series are neither checked nor split now, and a series the file lacks is one line naming those it has."""
    prices = 100 * np.exp(np.cumsum(np.random.default_rng(0).normal(0, 0.01, 200)))
    rows = [f"A,{p:.4f}" for p in prices] + [f"B,{p:.4f}" for p in prices[:3]]
    path = tmp_path / "panel.csv"
    path.write_text("id,Close\n" + "\n".join(rows) + "\n", "utf-8")
    argv = ["backtest", "--data", str(path), "--id-column", "id", "--models", "random_walk", "--horizon", "1"]
    code, stdout, err = run([*argv, "--folds", "1", "--series", "A", "--json"], capsys)
    assert code == 0, err
    assert json.loads(stdout)["data"].endswith("id A")
    code, _, err = run([*argv, "--folds", "1", "--series", "B"], capsys)  # B itself is too short: said so
    assert_one_line_error(code, err, "id B: 3 rows are too few")
    code, _, err = run([*argv, "--folds", "1", "--series", "C"], capsys)
    assert_one_line_error(code, err, "no series 'C'", "A, B")
