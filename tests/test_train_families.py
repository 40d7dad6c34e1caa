"""Every registered family through ``seqlab train`` (issue 32): each newly trainable one trains on tiny data, then
``sample``, ``evaluate``, ``info``, ``forecast`` and ``explore --against`` read what it saved; the held-out scores it
reports are the library model's own, fitted on the same split; and each family's option errors are one line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers import SMALL_TEXT, assert_one_line_error
from helpers import run_cli as cli

import seqlab
from seqlab.data.spec import DataSpec, load_dataset
from seqlab.data.text import Vocabulary
from seqlab.metrics import likelihood_scores
from seqlab.models import InfiniGram, LinearAR, MarkovChain, NGram
from seqlab.models.ets import ETS, ETSConfig
from seqlab.runs import family as family_module
from seqlab.runs import train, train_global
from seqlab.runs.family import FAMILIES

TEXT = SMALL_TEXT[:6000]
NEURAL = ["--steps", "2", "--batch-size", "2", "--window", "16", "--no-progress"]
TEXT_FAMILIES = {
    "ngram": ["--order", "3", "--smoothing", "witten_bell"],
    "markov": ["--add-k", "0.5"],
    "infinigram": ["--max-length", "12"],
    "neural_ar": ["--context", "4", "--hidden", "8", "--embedding", "4", *NEURAL],
    "transformer": ["--context", "8", "--hidden", "8", "--attention-heads", "2", "--layers", "1", *NEURAL],
}
SERIES_FAMILIES = {
    "linear_ar": ["--order", "2"],
    "random_walk": [],
    "ets": ["--form", "ANN"],
    "neural_ar": ["--context", "4", "--hidden", "8", "--embedding", "4", *NEURAL],
    "transformer": ["--context", "8", "--hidden", "8", "--attention-heads", "2", "--layers", "1", *NEURAL],
}


@pytest.fixture(scope="module")
def text(tmp_path_factory):
    path = tmp_path_factory.mktemp("families") / "plays.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def prices(tmp_path_factory):
    rng = np.random.default_rng(3)
    path = tmp_path_factory.mktemp("families") / "prices.csv"
    closes = 30 * np.exp(np.cumsum(0.01 * rng.standard_t(5, 300)))
    rows = "".join(f"{c:.6f},{c * 1.01:.6f},{c * 0.99:.6f}\n" for c in closes)  # High, Low: for --features range
    path.write_text("Close,High,Low\n" + rows, encoding="utf-8")
    return path


def test_the_cli_offers_every_registered_family():
    """--model takes each family train knows, the global AR model by its cells (global-lstm, global-gru, global-rnn:
    one network over a panel, tests/test_cli_global.py)."""
    kinds = {family.kind for family in FAMILIES.values()}
    assert kinds == set(seqlab.models.MODELS)
    assert [name for name, f in FAMILIES.items() if f.kind == "global_ar"] == [
        "global-lstm",
        "global-gru",
        "global-rnn",
    ]


@pytest.mark.parametrize("family", TEXT_FAMILIES)
def test_a_text_family_trains_then_samples_evaluates_and_describes_itself(family, text, tmp_path, capsys):
    out = tmp_path / family
    argv = ["train", "--data", str(text), "--model", family, *TEXT_FAMILIES[family], "--out", str(out)]
    code, stdout, err = cli([*argv, "--sample-length", "15"], capsys)
    assert code == 0, err
    final = json.loads((out / "training.json").read_text())["final"]
    held_out = f"held-out {final['valid_tokens']:,} characters: {final['valid_bits_per_char']:.3f} bits/char"
    assert held_out in stdout and "seqlab: sample (temperature 0.8, seed 0):\n" in stdout, stdout
    model = seqlab.load(out)
    assert model.kind == FAMILIES[family].kind and model.data_spec.source == str(text)
    code, stdout, err = cli(["sample", str(out), "--length", "30", "--seed", "1"], capsys)
    assert code == 0 and len(stdout) == 31 and set(stdout) <= set(TEXT) | {"\n"}, err
    code, stdout, err = cli(["evaluate", str(out), "--data", str(text), "--json"], capsys)
    scores = json.loads(stdout)
    assert code == 0 and scores["tokens"] == final["valid_tokens"], err
    assert scores["bits_per_char"] == pytest.approx(final["valid_bits_per_char"], rel=1e-12)
    code, stdout, err = cli(["info", str(out)], capsys)
    assert code == 0 and stdout.startswith(f"{out}: {model.describe()}") and "final: " in stdout, err


@pytest.mark.parametrize(
    "family, build",
    [
        ("ngram", lambda v: NGram(order=3, smoothing="witten_bell", vocabulary=v)),
        ("markov", lambda v: MarkovChain(k=0.5, vocabulary=v)),
        ("infinigram", lambda v: InfiniGram(max_length=12, vocabulary=v)),
    ],
)
def test_the_reported_score_is_the_library_models_on_the_same_split(family, build, text, tmp_path, capsys):
    """train's held-out bits/char equal a model built and fitted by hand on the training part of the same split."""
    out = tmp_path / family
    argv = ["train", "--data", str(text), "--model", family, *TEXT_FAMILIES[family], "--out", str(out)]
    assert cli([*argv, "--sample-length", "0"], capsys)[0] == 0
    dataset = load_dataset(DataSpec(str(text)))
    train_text, valid_text = str(dataset.train), str(dataset.valid)
    assert train_text + valid_text == TEXT
    model = build(Vocabulary.from_text(train_text)).fit(train_text)
    expected = likelihood_scores(model.log_prob(model.encode(valid_text, unknown="map")))
    final = json.loads((out / "training.json").read_text())["final"]
    assert final["valid_bits_per_char"] == pytest.approx(expected["bits_per_char"], rel=1e-12)
    assert final["valid_tokens"] == len(valid_text)


@pytest.mark.parametrize("family", SERIES_FAMILIES)
def test_a_series_family_trains_then_forecasts_evaluates_and_describes_itself(family, prices, tmp_path, capsys):
    out = tmp_path / family
    argv = ["train", "--data", str(prices), "--model", family, *SERIES_FAMILIES[family], "--out", str(out)]
    code, stdout, err = cli(argv, capsys)
    assert code == 0 and "nats/value (a density" in stdout and f"seqlab forecast {out}" in stdout, err
    final = json.loads((out / "training.json").read_text())["final"]
    code, stdout, err = cli(["evaluate", str(out), "--data", str(prices), "--json"], capsys)
    assert code == 0 and json.loads(stdout)["values"] == final["valid_values"] == 60, err
    # evaluate scores the held-out part as train did: given the training part before it
    assert json.loads(stdout)["nll_nats_per_value"] == pytest.approx(final["valid_nll_nats_per_value"], rel=1e-9)
    code, stdout, err = cli(["forecast", str(out), "--data", str(prices), "--horizon", "3", "--samples", "20"], capsys)
    assert code == 0 and len(stdout.strip().splitlines()) == 5, err
    code, stdout, err = cli(["info", str(out)], capsys)
    assert code == 0 and "final: " in stdout and '"transform": "log_return"' in stdout, err
    code, _, err = cli(["sample", str(out)], capsys)
    assert code == 1 and "a model of a series" in err


@pytest.mark.parametrize(
    "family, options, build",
    [
        ("linear_ar", ["--order", "2"], lambda: LinearAR(order=2)),
        ("ets", ["--form", "ANN"], lambda: ETS(ETSConfig("ANN"))),
    ],
)
def test_a_series_is_scored_given_the_training_part_as_the_library_model_says(
    family, options, build, prices, tmp_path, capsys
):
    """The held-out NLL is the model fitted by hand on the training part, run through training and held-out parts."""
    out = tmp_path / family
    assert cli(["train", "--data", str(prices), "--model", family, *options, "--out", str(out)], capsys)[0] == 0
    dataset = load_dataset(DataSpec(str(prices)))
    y = np.concatenate([dataset.train.double().numpy(), dataset.valid.double().numpy()])
    model = build().fit(dataset.train.double().numpy())
    expected = -model.log_prob(y)[len(dataset.train) :].mean().item()
    final = json.loads((out / "training.json").read_text())["final"]
    assert final["valid_nll_nats_per_value"] == pytest.approx(expected, rel=1e-12)
    assert final["valid_given"] == "the training part before it"
    assert seqlab.load(out).describe() == model.describe()


def test_explore_compares_a_neural_model_against_a_trained_ngram(text, tmp_path, capsys):
    ngram, lstm = tmp_path / "ngram", tmp_path / "lstm"
    assert cli(["train", "--data", str(text), "--model", "ngram", "--order", "2", "--out", str(ngram)], capsys)[0] == 0
    argv = ["train", "--data", str(text), "--cell", "lstm", "--hidden", "8", *NEURAL, "--out", str(lstm)]
    assert cli([*argv, "--sample-length", "0"], capsys)[0] == 0
    page = tmp_path / "page.html"
    argv = ["explore", str(lstm), "--data", str(text), "--against", str(ngram), "--out", str(page), "--chars", "100"]
    code, stdout, err = cli(argv, capsys)
    assert code == 0 and "(the other model: " in stdout and page.stat().st_size > 0, err


def test_cell_and_the_older_model_spelling_save_the_same_model(text, tmp_path, capsys):
    runs = {}
    for name, option in (("new", ["--cell", "gru"]), ("old", ["--model", "gru"])):
        runs[name] = tmp_path / name
        argv = ["train", "--data", str(text), *option, "--hidden", "8", *NEURAL, "--out", str(runs[name])]
        assert cli([*argv, "--sample-length", "0"], capsys)[0] == 0
    new, old = seqlab.load(runs["new"]), seqlab.load(runs["old"])
    assert new.config == old.config and new.config.cell == "gru"
    assert all(torch.equal(a, b) for a, b in zip(new.state_dict().values(), old.state_dict().values(), strict=True))
    code, _, err = cli(["train", "--resume", "--cell", "lstm", "--out", str(runs["new"]), "--steps", "3"], capsys)
    assert_one_line_error(code, err, "holds a gru model, but --cell lstm was given")


def test_a_neural_ar_run_resumes_and_a_one_go_family_has_nothing_to_resume(text, tmp_path, capsys):
    out = tmp_path / "nar"
    argv = ["train", "--data", str(text), "--model", "neural_ar", *TEXT_FAMILIES["neural_ar"], "--out", str(out)]
    assert cli([*argv, "--sample-length", "0"], capsys)[0] == 0
    trainer_file = out / "last" / "trainer.json"
    saved = json.loads(trainer_file.read_text())
    assert "progress" not in saved["trainer_config"]  # a display choice of the session, not kept with the run
    saved["trainer_config"]["progress"] = True  # as checkpoints written before kept it: still resumed
    saved["trainer_config"]["eval_chars"] = saved["trainer_config"].pop("eval_elements")  # and its older name
    trainer_file.write_text(json.dumps(saved))
    code, _, err = cli(["train", "--resume", "--out", str(out), "--steps", "3", "--no-progress"], capsys)
    assert code == 0 and "characters/s" not in err, err  # the resumed session's own --no-progress
    assert json.loads((out / "training.json").read_text())["final"]["steps"] == 3
    code, _, err = cli(["train", "--resume", "--model", "transformer", "--out", str(out), "--steps", "4"], capsys)
    assert_one_line_error(code, err, "holds a neural_ar model, but --model transformer was given")
    code, _, err = cli(["train", "--model", "ngram", "--resume", "--out", str(out)], capsys)
    assert_one_line_error(
        code, err, "an n-gram model is counted in one go and has nothing to --resume; use --overwrite"
    )
    counted = tmp_path / "counted"
    assert cli(["train", "--data", str(text), "--model", "markov", "--out", str(counted)], capsys)[0] == 0
    code, _, err = cli(["train", "--resume", "--out", str(counted)], capsys)
    assert_one_line_error(code, err, f"{counted}: holds a markov model; a Markov chain is counted", "--resume")


@pytest.mark.parametrize(
    "argv, fragments",
    [
        (["--model", "ngram", "--data", "PRICES"], ["series data; an n-gram model models text"]),
        (["--model", "linear_ar", "--data", "TEXT"], ["text data; a linear AR model models one series"]),
        (["--model", "pool", "--data", "TEXT"], ["text data; a pool forecasts a series"]),
        (["--model", "ngram", "--hidden", "8", "--data", "TEXT"], ["--model ngram takes no --hidden", "--order"]),
        (["--model", "markov", "--steps", "8", "--data", "TEXT"], ["--model markov takes no --steps", "--add-k"]),
        (["--model", "ngram", "--order", "bic", "--data", "TEXT"], ["--order: NGram order must be"]),
        (
            ["--model", "neural_ar", "--order", "3", "--data", "TEXT"],
            ["--order: options of --model ngram or linear_ar"],
        ),
        (["--model", "neural_ar", "--cell", "gru", "--data", "TEXT"], ["--cell", "--model neural_ar has no cell"]),
        (["--model", "lstm", "--cell", "gru", "--data", "TEXT"], ["--model lstm names a cell; --cell gru"]),
        (["--order", "2", "--data", "TEXT"], ["--order: options of --model ngram or linear_ar only"]),
        (["--model", "linear_ar", "--data", "PRICES", "--features", "range"], ["reads no covariates"]),
        (["--model", "ngram", "--order", "x"], ["--order: expected an integer >= 0, aic or bic"]),
    ],
)
def test_each_familys_option_errors_are_one_line_and_write_nothing(argv, fragments, text, prices, tmp_path, capsys):
    named = {"TEXT": str(text), "PRICES": str(prices)}
    out = tmp_path / "out"
    code, _, err = cli(["train", *[named.get(a, a) for a in argv], "--out", str(out)], capsys)
    assert_one_line_error(code, err, *fragments)
    assert not out.exists()


def test_the_train_spec_types_its_result(text, tmp_path):
    """``family=None`` is latent AR for a new run; a one-go family's result holds its fitted model and no trainer."""
    spec = train.TrainSpec(DataSpec(str(text)), {"order": 2}, {}, tmp_path / "run", family="ngram")
    result = train.train(spec, say=lambda *_: None)
    assert isinstance(result.model, NGram) and result.model.order == 2 and result.training is None
    assert result.final["train_characters"] == len(load_dataset(DataSpec(str(text))).train)
    assert train.TrainSpec().family is None and train.family_named(train.DEFAULT_FAMILY).trains


@pytest.mark.parametrize(
    "family, model, trainer",
    [("ngram", {"order": 3}, {}), ("neural_ar", {"context": 4, "hidden_size": 8}, {"steps": 2})],
)
def test_a_long_held_out_part_is_scored_on_spread_blocks_unless_every_element_is_asked_for(
    family, model, trainer, text, tmp_path
):
    """Above ``score_limit`` the final score is a sample with its standard error; ``None`` (--score-all) scores all."""
    runs = {}
    for limit in (200, None):
        spec = train.TrainSpec(DataSpec(str(text)), model, trainer | {"score_limit": limit}, tmp_path / str(limit))
        spec.family = family
        runs[limit] = train.train(spec, say=lambda *_: None).final
    n_valid = len(load_dataset(DataSpec(str(text))).valid)
    assert runs[200]["valid_sampled_of"] == n_valid > 200 and runs[200]["valid_nll_standard_error"] > 0
    assert runs[200]["valid_tokens"] <= 200 < runs[None]["valid_tokens"] == n_valid
    assert "valid_sampled_of" not in runs[None]


def test_train_says_when_its_final_score_is_a_sample(text, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(train, "SCORE_LIMIT", 200)
    argv = ["train", "--data", str(text), "--model", "ngram", "--order", "2", "--no-progress"]
    code, stdout, err = cli([*argv, "--out", str(tmp_path / "a")], capsys)
    assert code == 0 and "(a sample of the held-out part: 50 blocks" in stdout, err
    code, stdout, err = cli([*argv, "--out", str(tmp_path / "b"), "--score-all"], capsys)
    assert code == 0 and "a sample" not in stdout, err


@pytest.mark.parametrize(
    "family, options",
    [
        ("neural_ar", ["--context", "4", "--audio-encoding", "mu_law"]),
        ("transformer", ["--context", "8", "--attention-heads", "2", "--layers", "1"]),  # vocoder frames
    ],
)
def test_an_audio_family_trains_then_generates_a_wav(family, options, tmp_path, capsys):
    soundfile = pytest.importorskip("soundfile")
    t = np.arange(16000) / 16000
    tone = tmp_path / "tone.wav"
    soundfile.write(tone, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 16000)
    out, wav = tmp_path / family, tmp_path / "generated.wav"
    argv = ["train", "--data", str(tone), "--model", family, *options, "--hidden", "8", *NEURAL, "--out", str(out)]
    code, stdout, err = cli(argv, capsys)
    assert code == 0 and f"seqlab sample {out}" in stdout, err
    code, stdout, err = cli(["sample", str(out), "--seconds", "0.1", "--out", str(wav), "--seed", "0"], capsys)
    assert code == 0, err
    audio, rate = soundfile.read(wav)
    assert rate == 16000 and abs(len(audio) - 1600) <= 80, (rate, len(audio))


@pytest.mark.parametrize("family", ["garch", "ngram", "pool", "global-lstm"])
def test_data_of_another_kind_is_refused_before_it_is_read(family, tmp_path, capsys, monkeypatch):
    """A WAV for a family that models no audio: refused by the file's kind, before its vocoder analysis."""
    wav = tmp_path / "voice.wav"
    wav.write_bytes(b"not read")

    def read(*_):
        raise AssertionError("the data was read")

    monkeypatch.setattr(family_module, "load_dataset", read)
    monkeypatch.setattr(train_global, "load_panel", read)  # how the global families read their panel
    code, _, err = cli(["train", "--model", family, "--data", str(wav), "--out", str(tmp_path / "m")], capsys)
    assert_one_line_error(code, err, f"{wav}: audio data;")
    assert not (tmp_path / "m").exists()
