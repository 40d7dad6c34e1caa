"""Every command that takes --data, on files a user would bring (a text, a CSV of prices, a WAV) rather than the
bundled names the other tests mostly use: issue 33 found `explore --data FILE` broken for every local text while
every explore test used the bundled one. One chain per kind: train on the local file, then each command that
reads data, named again by its path (its held-out part) or another file (read whole). Audio's chain (train,
sample --spectrogram, evaluate --voice on a local WAV) is tests/test_cli_series_audio.py's
test_vocoder_train_sample_evaluate_voice."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import SMALL_TEXT, TINY_MODEL, TINY_TRAINING, run_cli

import seqlab


@pytest.mark.slow
def test_a_local_text_through_every_command(tmp_path, capsys):
    text, other = tmp_path / "my notes.txt", tmp_path / "other.txt"
    text.write_text(SMALL_TEXT[:8000], encoding="utf-8")
    other.write_text(SMALL_TEXT[8000:9000], encoding="utf-8")
    model = tmp_path / "model"
    argv = ["train", "--data", str(text), "--steps", "3", *TINY_MODEL, *TINY_TRAINING, "--out", str(model)]
    code, _, err = run_cli(argv, capsys)
    assert code == 0, err
    for data, source in ((text, f"{text} (validation part)"), (other, f"{other} (whole file)")):
        code, stdout, err = run_cli(["evaluate", str(model), "--data", str(data), "--json"], capsys)
        assert code == 0 and json.loads(stdout)["data"] == source, err
        code, _, err = run_cli(["explore", str(model), "--data", str(data), "--out", str(tmp_path / "p.html")], capsys)
        assert code == 0, err
    code, stdout, err = run_cli(["sample", str(model), "--prompt", "A", "--length", "20", "--seed", "0"], capsys)
    assert code == 0 and len(stdout) > 0, err
    code, stdout, err = run_cli(["info", str(model)], capsys)
    assert code == 0 and str(text) in stdout, err
    argv = [
        "compare",
        "--data",
        str(text),
        "--budget",
        "0.2",
        "--out",
        str(tmp_path / "cmp"),
        "--json",
        "--no-progress",
    ]
    code, stdout, err = run_cli(argv, capsys)
    assert code == 0 and len(json.loads(stdout)["results"]) > 3, err


@pytest.mark.slow
def test_a_local_price_csv_through_every_command(tmp_path, capsys):
    rng = np.random.default_rng(7)
    closes = 40 * np.exp(np.cumsum(0.05 * rng.standard_t(5, 130)))
    csv = tmp_path / "my prices.csv"
    rows = [f"{2000 + i // 12}-{i % 12 + 1:02d}-28,{c:.4f}" for i, c in enumerate(closes)]
    csv.write_text("Date,Close\n" + "\n".join(rows) + "\n", encoding="utf-8")
    for family in (
        ["--model", "garch", "--vol", "egarch", "--dist", "t"],
        ["--model", "gru", *TINY_MODEL, "--steps", "3"],
    ):
        model = tmp_path / family[1]
        argv = ["train", "--data", str(csv), *family, "--no-progress", "--out", str(model)]
        code, _, err = run_cli(argv, capsys)
        assert code == 0, err
        code, stdout, err = run_cli(["evaluate", str(model), "--data", str(csv), "--json"], capsys)
        assert code == 0 and np.isfinite(json.loads(stdout)["nll_nats_per_value"]), err
        argv = ["forecast", str(model), "--data", str(csv), "--horizon", "3", "--samples", "50"]
        code, stdout, err = run_cli(argv, capsys)
        assert code == 0 and len(stdout.strip().splitlines()) == 5, err
        code, _, err = run_cli(["info", str(model)], capsys)
        assert code == 0, err
        assert seqlab.load(model).log_prob(np.diff(np.log(closes))).isfinite().all()
    argv = ["backtest", "--data", str(csv), "--models", "random_walk,garch-t,egarch-t,linear_ar", "--folds", "3"]
    code, stdout, err = run_cli([*argv, "--samples", "20", "--json", "--no-progress"], capsys)
    assert code == 0 and [r["model"] for r in json.loads(stdout)["results"]][0] == "random_walk", err
