"""The global model from the command line (issue 30): ``train --model global-lstm|gru|rnn`` fits one network on
every series of a panel and saves it with the ids it saw; ``info`` describes it and its panel; ``forecast``
forecasts every series in one batched pass (the numbers of ``GlobalAR.forecast_panel``); bad input is one line."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from helpers import assert_one_line_error, run_cli

import seqlab
from seqlab.cli import main
from seqlab.data.panel import load_panel
from seqlab.data.spec import DataSpec
from seqlab.models.global_ar import GlobalARConfig
from seqlab.runs.family import FAMILIES
from seqlab.runs.panel import season_phases
from seqlab.runs.train_global import best_progress, default_horizon
from seqlab.runs.train_spec import TrainSpec
from seqlab.training import TrainingResult

TINY = ["--steps", "3", "--hidden", "4", "--batch-size", "8", "--eval-every", "3", "--no-progress"]


def monthly(n: int) -> list[str]:
    return [str(d) for d in np.arange(np.datetime64("2001-01"), np.datetime64("2001-01") + n).astype("datetime64[D]")]


def write_panel(path, series: dict[str, list[float]]) -> None:
    rows = ["unique_id,ds,y"]
    for ident, values in series.items():
        rows += [f"{ident},{d},{v}" for d, v in zip(monthly(len(values)), values, strict=True)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")


def seasonal(n: int, level: float, seed: int) -> list[float]:
    t = np.arange(n)
    noise = np.random.default_rng(seed).normal(0, 2, n)
    return [round(float(v), 3) for v in level + 0.5 * t + 10 * np.sin(2 * np.pi * t / 12) + noise]


GOOD = {"s0": seasonal(40, 100, 0), "s1": seasonal(34, 1000, 1), "s2": seasonal(30, 50, 2)}
BAD = {"flat": [5.0] * 30, "short": [1.0, 2.0]}  # constant, and too short for the horizon (left out, named)


@pytest.fixture(scope="module")
def panel_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("global") / "panel.csv"
    write_panel(path, GOOD | BAD)
    return path


@pytest.fixture(scope="module")
def trained(panel_csv):
    out = panel_csv.parent / "run"
    argv = ["train", "--model", "global-gru", "--data", str(panel_csv), "--id-column", "unique_id", *TINY]
    assert main([*argv, "--horizon", "4", "--out", str(out)]) == 0
    return out


def read_rows(path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_train_fits_one_network_on_the_panel_and_names_the_series_left_out(panel_csv, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "--model", "global-lstm", "--data", str(panel_csv), "--id-column", "unique_id", *TINY]
    code, stdout, err = run_cli([*argv, "--out", str(out)], capsys)
    assert code == 0, err
    assert "3 series" in stdout and "left out flat: constant (5)" in stdout, stdout
    assert "left out short: 2 values" in stdout and "seqlab forecast" in stdout, stdout
    model = seqlab.load(out)
    assert model.kind == "global_ar" and model.config.cell == "lstm" and model.config.steps == 3
    assert model.config.season == 12 and model.config.horizon == default_horizon()  # the dates', the backtest's
    record = json.loads((out / "training.json").read_text())
    assert record["meta"]["panel"]["ids"] == ["s0", "s1", "s2"]  # in the order the network saw them
    assert set(record["meta"]["panel"]["left_out"]) == {"flat", "short"}
    assert record["final"]["steps"] == 3 and record["final"]["series"] == 3
    code, _, err = run_cli([*argv, "--out", str(out)], capsys)  # an existing run is refused, as train refuses it
    assert_one_line_error(code, err, "already holds a run", "--overwrite")


def test_the_budget_defaults_are_global_ar_configs_and_a_time_budget_alone_drops_the_steps(panel_csv):
    """Steps (and the rest) as GlobalARConfig has them, read, never copied; --time-budget alone: no step count."""
    family = FAMILIES["global-rnn"]
    spec = TrainSpec(DataSpec(str(panel_csv), id_column="unique_id"), family="global-rnn")
    dataset = family.load(spec.data, spec, None)
    config = family.check(spec, dataset)
    assert config.steps == GlobalARConfig().steps and config.time_budget == GlobalARConfig().time_budget
    assert config.cell == "rnn" and config.horizon == default_horizon() and config.season == 12
    spec.trainer = {"time_budget": 30.0}
    config = family.check(spec, dataset)
    assert config.steps == 0 and config.time_budget == 30.0


def test_info_describes_the_model_and_its_panel(trained, capsys):
    code, stdout, err = run_cli(["info", str(trained)], capsys)
    assert code == 0, err
    assert "GlobalAR(gru" in stdout and "panel: 3 series (s0, s1, s2), season 12, horizon 4" in stdout, stdout
    assert "2 left out (flat: constant (5)" in stdout and "final: " in stdout and "trainer: " in stdout, stdout
    assert '"ids"' not in stdout  # the ids are on the panel's line, not dumped with the data record


def test_forecast_writes_a_block_per_series_with_the_numbers_of_forecast_panel(trained, panel_csv, tmp_path, capsys):
    table = tmp_path / "forecast.csv"
    argv = ["forecast", str(trained), "--data", str(panel_csv), "--id-column", "unique_id", "--horizon", "3"]
    code, stdout, err = run_cli([*argv, "--samples", "40", "--seed", "5", "--out", str(table)], capsys)
    assert code == 0, err
    assert "3 series forecast in one pass, 2 left out" in stdout and "left out flat: constant (5)" in stdout
    rows = read_rows(table)
    assert [r["id"] for r in rows] == [i for i in GOOD for _ in range(3)]
    assert list(rows[0]) == ["id", "step", "median", "q0.1", "q0.5", "q0.9", "mean"]
    panel = load_panel(panel_csv, "unique_id", season=12)
    model = seqlab.load(trained)
    paths = model.forecast_panel(panel.values, panel.offsets, 3, 40, 5, season_phases(panel.starts, 12))
    for k in range(len(GOOD)):
        block = rows[3 * k : 3 * k + 3]
        assert [int(r["step"]) for r in block] == [1, 2, 3]
        np.testing.assert_allclose([float(r["median"]) for r in block], np.median(paths[k], axis=0), rtol=1e-12)
        np.testing.assert_allclose([float(r["q0.9"]) for r in block], np.quantile(paths[k], 0.9, axis=0), rtol=1e-12)
        np.testing.assert_allclose([float(r["mean"]) for r in block], paths[k].mean(axis=0), rtol=1e-12)
    one = tmp_path / "one.csv"
    code, _, err = run_cli([*argv, "--samples", "40", "--seed", "5", "--series", "s1", "--out", str(one)], capsys)
    assert code == 0, err
    assert read_rows(one) == rows[3:6]  # one series: its rows of the whole panel's pass


def test_a_series_embedding_forecasts_only_the_series_it_was_trained_on(panel_csv, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "--model", "global-rnn", "--data", str(panel_csv), "--id-column", "unique_id", *TINY]
    code, _, err = run_cli([*argv, "--series-embedding", "2", "--out", str(out)], capsys)
    assert code == 0, err
    other = tmp_path / "other.csv"
    write_panel(other, {"s2": GOOD["s2"], "s0": GOOD["s0"], "s1": GOOD["s1"]})  # the same series, another order
    forecast = ["forecast", str(out), "--id-column", "unique_id", "--horizon", "2", "--samples", "8"]
    code, stdout, err = run_cli([*forecast, "--data", str(other)], capsys)
    assert code == 0, err
    assert [line.split(",")[0] for line in stdout.splitlines()[2:]] == ["s0", "s0", "s1", "s1", "s2", "s2"]
    write_panel(other, {"s0": GOOD["s0"], "s9": GOOD["s1"]})
    code, _, err = run_cli([*forecast, "--data", str(other)], capsys)
    assert_one_line_error(code, err, str(other), "embeds the 3 series", "missing s1", "s2", "not trained on s9")


def test_one_series_without_an_id_column_is_a_panel_of_one(tmp_path, capsys):
    path = tmp_path / "one.csv"
    path.write_text(
        "Date,Close\n" + "".join(f"{d},{v}\n" for d, v in zip(monthly(40), GOOD["s0"], strict=True)), "utf-8"
    )
    out = tmp_path / "run"
    code, _, err = run_cli(["train", "--model", "global-gru", "--data", str(path), *TINY, "--out", str(out)], capsys)
    assert code == 0, err
    code, stdout, err = run_cli(["forecast", str(out), "--data", str(path), "--horizon", "2", "--samples", "8"], capsys)
    assert code == 0, err
    assert "1 series forecast" in stdout and stdout.splitlines()[-1].startswith("Close,2,")


def test_bad_input_is_one_line_naming_the_file_and_what_was_expected(trained, panel_csv, tmp_path, capsys):
    out = tmp_path / "never"
    train = ["train", "--model", "global-lstm", *TINY, "--out", str(out)]
    code, _, err = run_cli([*train, "--data", str(panel_csv), "--id-column", "series"], capsys)
    assert_one_line_error(code, err, str(panel_csv), "no id column 'series'", "unique_id")
    text = tmp_path / "notes.txt"
    text.write_text("a text, not a panel\n", encoding="utf-8")
    code, _, err = run_cli([*train, "--data", str(text)], capsys)
    assert_one_line_error(code, err, str(text), "text data", "panel of series", "CSV")
    code, _, err = run_cli([*train, "--data", str(panel_csv), "--id-column", "unique_id", "--transform", "log"], capsys)
    assert_one_line_error(code, err, "--model global-lstm takes no --transform")
    assert not out.exists()  # refused before a folder was claimed
    forecast = ["forecast", str(trained), "--data", str(panel_csv), "--id-column", "unique_id"]
    code, _, err = run_cli([*forecast, "--column", "sales"], capsys)
    assert_one_line_error(code, err, str(panel_csv), "no value column 'sales'", "columns are unique_id, ds, y")
    missing = tmp_path / "no_values.csv"
    missing.write_text("unique_id,ds\na,2001-01-01\n", encoding="utf-8")
    code, _, err = run_cli(["forecast", str(trained), "--data", str(missing), "--id-column", "unique_id"], capsys)
    assert_one_line_error(code, err, str(missing), "no value column", "name it with --column")
    code, _, err = run_cli([*forecast, "--plot", str(tmp_path / "fan.png")], capsys)
    assert_one_line_error(code, err, "--plot draws one series", "--series")
    code, _, err = run_cli([*forecast, "--series", "flat"], capsys)
    assert_one_line_error(code, err, "no series 'flat'", "left out: constant (5)")
    code, _, err = run_cli(["evaluate", str(trained), "--data", str(panel_csv)], capsys)
    assert_one_line_error(code, err, str(trained), "a global model is scored on a panel's held-out parts", "backtest")


def test_the_record_says_where_the_weights_kept_were_validated():
    """training.json's progress is the best validation's (step, seconds, validations since), as a checkpoint's."""
    history = [{"step": s, "elapsed": s / 10, "valid_nll": v} for s, v in ((50, 0.3), (100, 0.2), (150, 0.25))]
    kept = best_progress(TrainingResult(170, 17.0, 0.2, history, "reached 170 steps"))
    assert (kept.step, kept.elapsed, kept.best_valid_nll, kept.bad_validations) == (100, 10.0, 0.2, 1)
    assert best_progress(TrainingResult(3, 0.1, None, [], "reached 3 steps")).step == 3
