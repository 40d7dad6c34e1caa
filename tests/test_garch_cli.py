"""GARCH through the command line: train (every volatility name), info, evaluate, forecast, and its errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import run_cli as cli

import seqlab
from seqlab.data.spec import DataSpec
from seqlab.errors import SeqlabError
from seqlab.models.garch import GARCH, GARCHConfig
from seqlab.runs import train


def write_prices(path, n=600, seed=0):
    """Prices whose log returns are a GARCH(1,1)-like series (volatility clustering)."""
    rng = np.random.default_rng(seed)
    r, s2 = np.empty(n), 1e-4
    for t in range(n):
        r[t] = np.sqrt(s2) * rng.standard_t(6) / np.sqrt(1.5)
        s2 = 1e-6 + 0.1 * r[t] ** 2 + 0.85 * s2
    path.write_text("Close\n" + "".join(f"{p}\n" for p in 50 * np.exp(np.cumsum(r))), encoding="utf-8")
    return np.diff(np.log(50 * np.exp(np.cumsum(r))))


@pytest.mark.parametrize("vol", ["garch", "gjr", "egarch"])
def test_train_info_evaluate_forecast(vol, tmp_path, capsys):
    source, out = tmp_path / "prices.csv", tmp_path / "run"
    write_prices(source)
    code, stdout, err = cli(
        ["train", "--data", str(source), "--model", "garch", "--vol", vol, "--dist", "t", "--out", str(out)], capsys
    )
    assert code == 0, err
    assert "held-out" in stdout and ("GJR" in stdout) == (vol == "gjr") and ("EGARCH" in stdout) == (vol == "egarch")
    code, stdout, err = cli(["info", str(out)], capsys)
    final = json.loads(stdout.split("final: ")[1])
    assert code == 0 and final["valid_values"] == 120 and "nu" in final["params"], err
    code, stdout, err = cli(["evaluate", str(out), "--data", str(source), "--json"], capsys)
    assert code == 0 and json.loads(stdout)["values"] == 120, err
    code, stdout, err = cli(["forecast", str(out), "--data", str(source), "--horizon", "3", "--samples", "50"], capsys)
    assert code == 0 and len(stdout.strip().splitlines()) == 5, err


@pytest.mark.cross_process
def test_train_scores_the_held_out_part_given_the_training_part(tmp_path, capsys):
    """The reported held-out NLL is the saved model's filter run through training and held-out parts, as arch would
    score it; a second fit here lands on the same optimum (to the optimiser's tolerance, not to the last digit: its
    path depends on the BLAS's rounding, which changes with the thread count and the memory alignment)."""
    source, out = tmp_path / "prices.csv", tmp_path / "run"
    r = write_prices(source)
    code, _, err = cli(["train", "--data", str(source), "--model", "garch", "--mean", "ar", "--out", str(out)], capsys)
    assert code == 0, err
    cut = int((len(r) + 1) * 0.8) - 1  # the rows are cut at 80%; the first return needs the row before it
    code, stdout, _ = cli(["info", str(out)], capsys)
    reported = json.loads(stdout.split("final: ")[1])["valid_nll_nats_per_value"]
    saved = seqlab.load(out)
    assert reported == pytest.approx(-float(saved.log_prob(r)[cut:].mean()), rel=1e-12)  # the same parameters
    refit = GARCH(GARCHConfig(mean="ar", lags=1)).fit(r[:cut])
    assert reported == pytest.approx(-float(refit.log_prob(r)[cut:].mean()), rel=1e-6)  # another optimiser run


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--model", "garch", "--hidden", "4"], "takes no --hidden"),
        (["--model", "gru", "--vol", "egarch"], "--vol: options of --model garch only"),
        (["--model", "garch", "--resume"], "nothing to --resume"),
        (["--model", "garch", "--data", "TEXT"], "GARCH models a series"),
    ],
)
def test_bad_options_are_one_line_errors(argv, message, tmp_path, capsys):
    source = tmp_path / "prices.csv"
    write_prices(source)
    text = tmp_path / "t.txt"
    text.write_text("abc" * 100, encoding="utf-8")
    argv = [str(text) if a == "TEXT" else a for a in argv]
    data = [] if "--data" in argv else ["--data", str(source)]
    code, _, err = cli(["train", *data, *argv, "--out", str(tmp_path / "run")], capsys)
    assert code == 1 and message in err and len(err.strip().splitlines()) == 1, err


def test_several_series_are_refused_by_name(tmp_path, capsys):
    source = tmp_path / "two.csv"
    rows = [f"{'a' if i < 60 else 'b'},{100 + np.sin(i) + i % 7}" for i in range(120)]
    source.write_text("id,Close\n" + "\n".join(rows) + "\n", encoding="utf-8")
    code, _, err = cli(
        ["train", "--data", str(source), "--id-column", "id", "--model", "garch", "--out", str(tmp_path / "run")],
        capsys,
    )
    assert code == 1 and "GARCH fits one series" in err and "a, b" in err, err


def test_backtest_names():
    assert GARCHConfig.from_name("garch") == GARCHConfig()
    assert GARCHConfig.from_name("gjr-t") == GARCHConfig(o=1, dist="t")
    assert GARCHConfig.from_name("egarch-skewt") == GARCHConfig(vol="egarch", o=1, dist="skewt")
    assert GARCHConfig.from_name("gru") is None and GARCHConfig.from_name("garch-cauchy") is None


def write_ohlc(path, n=600, seed=1):
    """Daily bars whose log returns have the variance of the range (a GARCH-X world): Close, High, Low."""
    rng = np.random.default_rng(seed)
    close, s2, rows = 50.0, 1e-4, []
    for _ in range(n):
        x = s2 * np.exp(0.5 * rng.standard_normal() - 0.125)  # the day's measured variance
        r = np.sqrt(s2) * rng.standard_normal()
        close *= np.exp(r)
        half = np.sqrt(x * np.log(2.0))  # (ln H - ln L)^2 / (4 ln 2) = x
        rows.append(f"{close},{close * np.exp(half)},{close * np.exp(-half)}\n")
        s2 = 2e-6 + 0.05 * r**2 + 0.6 * s2 + 0.3 * x
    path.write_text("Close,High,Low\n" + "".join(rows), encoding="utf-8")


def test_garchx_with_the_range_trains_forecasts_and_backtests(tmp_path, capsys):
    source, out = tmp_path / "ohlc.csv", tmp_path / "run"
    write_ohlc(source)
    argv = ["train", "--data", str(source), "--model", "garch", "--vol", "garchx", "--features", "range"]
    code, stdout, err = cli([*argv, "--out", str(out)], capsys)
    assert code == 0 and "GARCH-X(1,1)" in stdout and "delta=" in stdout, err
    code, stdout, err = cli(["info", str(out)], capsys)
    final = json.loads(stdout.split("final: ")[1])
    assert code == 0 and final["converged"] and "delta" in final["params"], err
    code, stdout, err = cli(["evaluate", str(out), "--data", str(source), "--json"], capsys)
    assert code == 0 and json.loads(stdout)["values"] == 120, err
    code, stdout, err = cli(["forecast", str(out), "--data", str(source), "--horizon", "3", "--samples", "50"], capsys)
    assert code == 0 and len(stdout.strip().splitlines()) == 5, err
    code, stdout, err = cli(
        ["backtest", "--data", str(source), "--features", "range", "--models", "random_walk,garch-t,garchx-t"]
        + ["--folds", "2", "--samples", "20", "--no-progress"],
        capsys,
    )
    assert code == 0 and "| garchx-t |" in stdout and "covariates range" in stdout, err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--vol", "garchx"], "needs one exogenous variance beside the values (give --features range"),
        (["--vol", "garch", "--features", "range"], "reads no covariates (the data have 1); --vol garchx"),
    ],
)
def test_garchx_option_errors(argv, message, tmp_path, capsys):
    source = tmp_path / "ohlc.csv"
    write_ohlc(source, n=100)
    code, _, err = cli(
        ["train", "--data", str(source), "--model", "garch", *argv, "--out", str(tmp_path / "r")], capsys
    )
    assert code == 1 and message in err and len(err.strip().splitlines()) == 1, err


def test_values_too_large_for_a_variance_are_one_line(tmp_path, capsys):
    """Issue 24: values around 1e300 with no transform were a division by zero reported as an internal error."""
    source = tmp_path / "big.csv"
    values = 1e300 * (1 + 0.1 * np.random.default_rng(0).standard_normal(300))
    source.write_text("Close\n" + "".join(f"{float(v)!r}\n" for v in values), encoding="utf-8")
    argv = ["train", "--data", str(source), "--model", "garch", "--transform", "none", "--out", str(tmp_path / "r")]
    code, _, err = cli(argv, capsys)
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    assert str(source) in err and "squares overflow float64" in err and "internal error" not in err, err


def test_the_train_spec_names_the_family(tmp_path):
    """``family="garch"`` picks the GARCH fit (issue 23: it was ``model={"cell": "garch"}``, a cell that is not one)."""
    source = tmp_path / "prices.csv"
    write_prices(source)
    spec = train.TrainSpec(DataSpec(str(source)), {"vol": "gjr"}, {}, tmp_path / "run", family="garch")
    run = train.train(spec, say=lambda *_: None)
    assert isinstance(run.model, GARCH) and run.model.config.o == 1 and run.training is None
    with pytest.raises(SeqlabError, match="unknown model family 'arima'"):
        train.train(train.TrainSpec(DataSpec(str(source)), family="arima"))
