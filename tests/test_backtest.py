"""The backtest's scores, checked against direct computations and statsmodels: one-step scores on every held-out
value, the paired column and its Newey-West t, rolling refits, the default reference, and neural models that
neither select on the scored part nor fall behind the random walk on short monthly series."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import statsmodels.api as sm
import torch
from helpers import garch_returns, simulated_egarch_path
from scipy.stats import norm
from scipy.stats import t as student_t

from seqlab.cli import main
from seqlab.data.spec import DataSpec
from seqlab.metrics import newey_west_t, paired_difference
from seqlab.models.garch import GARCH, GARCHConfig
from seqlab.models.pool import Pool
from seqlab.runs import backtest as backtest_module
from seqlab.runs import sizing
from seqlab.runs.backtest import BacktestSpec, backtest, run_backtest
from seqlab.runs.contenders import FitRecord, GARCHFit, OrderFit, series_contender
from seqlab.training import WindowStream

MONTHLY = Path(__file__).parent / "data" / "monthly.csv"


def quiet_backtest(y: np.ndarray, models: list[str], **options) -> dict:
    """``backtest`` on the values ``y`` (increments), 3 origins and 20 sample paths, printing nothing."""
    spec = BacktestSpec(models=tuple(models), folds=3, samples=20, progress=False, **options)
    return backtest(y, spec, differenced=True, say=lambda m: None)


def row(result, name):
    return next(r for r in result["results"] if r["model"].split()[0] == name)


@pytest.fixture
def fitted(monkeypatch) -> dict[str, list]:
    """The models the backtests of a test fit, per contender name in the order fitted: scored here, they give the
    backtest's numbers from the very parameters it scored. (A second fit is another SLSQP run, whose path follows the
    BLAS's rounding: its held-out NLL moved by up to 6e-7 between 1 and 2 OpenBLAS threads; docs/reliability.md.)"""
    models: dict[str, list] = {}

    def keep(name, part, options):
        contender = series_contender(name, part, options)
        models.setdefault(name, []).append(contender.model)
        return contender

    monkeypatch.setattr(backtest_module, "series_contender", keep)
    return models


def assert_fitted_on(model, y: np.ndarray, config: GARCHConfig) -> None:
    """``model`` is GARCH(config) fitted on all of ``y``: as many observations, and the maximum a fit here reaches
    (the log-likelihood is flat at the optimum: two SLSQP runs agree there to a few 1e-12, measured across thread
    counts and 1-ulp changes of the data, where their held-out NLLs differ by up to 1e-6; fitting the window one
    value later moves it by 2e-4)."""
    again = GARCH(config).fit(y)
    assert model.training_result.nobs == again.training_result.nobs == len(y) - config.lags
    assert model.training_result.loglik == pytest.approx(again.training_result.loglik, rel=1e-9)


@pytest.mark.cross_process
def test_one_step_scores_cover_every_held_out_value(fitted):
    """NLL and coverage over all held-out values, each given everything before it, from the model fitted on the
    training part: the same numbers as GARCH's own filter and scipy's normal quantiles."""
    y = garch_returns(600)
    result = quiet_backtest(y, ["garch"], horizon=2)
    cut = result["train_values"]
    (model,) = fitted["garch"]
    assert_fitted_on(model, y[:cut], GARCHConfig())
    assert row(result, "garch")["nll"] == pytest.approx(-float(model.log_prob(y)[cut:].mean()), rel=1e-12)
    mu, sigma2 = model.filter(y)
    for level in (50, 80):
        z = norm.ppf(0.5 + level / 200)
        inside = np.abs(y[cut:] - mu[cut:]) <= z * np.sqrt(sigma2[cut:])
        assert row(result, "garch")[f"coverage1_{level}"] == pytest.approx(inside.mean(), abs=1e-12)
    assert result["test_values"] == 120 and result["fits"] == 1


@pytest.mark.cross_process
def test_student_t_coverage_uses_the_t_quantiles(fitted):
    y = garch_returns(500, seed=3)
    result = quiet_backtest(y, ["garch-t"], horizon=1)
    cut = result["train_values"]
    (model,) = fitted["garch-t"]
    assert_fitted_on(model, y[:cut], GARCHConfig(dist="t"))
    mu, sigma2 = model.filter(y)
    nu = model.params[-1]
    half_width = student_t.ppf(0.9, nu) * np.sqrt(sigma2[cut:] * (nu - 2) / nu)
    inside = np.abs(y[cut:] - mu[cut:]) <= half_width
    assert row(result, "garch-t")["coverage1_80"] == pytest.approx(inside.mean(), abs=1e-12)


@pytest.mark.cross_process
def test_paired_column_and_its_newey_west_t_against_statsmodels(fitted):
    y = garch_returns(800, seed=1)
    result = quiet_backtest(y, ["random_walk", "garch-t"], horizon=1, reference="random_walk")
    cut = result["train_values"]
    (garch,) = fitted["garch-t"]
    assert_fitted_on(garch, y[:cut], GARCHConfig(dist="t"))
    rw_sigma = np.sqrt(np.mean(y[:cut] ** 2))
    d = -garch.log_prob(y)[cut:].numpy() + norm.logpdf(y[cut:], 0, rw_sigma)  # NLL(garch) - NLL(random walk)
    r = row(result, "garch-t")
    assert r["d_nll"] == pytest.approx(d.mean(), rel=1e-9)
    assert r["d_nll_se"] == pytest.approx(d.std(ddof=1) / np.sqrt(len(d)), rel=1e-9)
    lags = int(4 * (len(d) / 100) ** (2 / 9))
    fit = sm.OLS(d, np.ones(len(d))).fit(cov_type="HAC", cov_kwds={"maxlags": lags, "use_correction": False})
    assert r["d_nll_t"] == pytest.approx(float(fit.tvalues[0]), rel=1e-9)
    assert newey_west_t(d) == pytest.approx(float(fit.tvalues[0]), rel=1e-9)
    assert row(result, "random_walk")["d_nll"] == 0 and row(result, "random_walk")["d_nll_se"] is None


def test_a_model_identical_to_its_reference_has_no_t_and_valid_json():
    """Every d_t zero (a pool that put all its weight on the reference): the mean and s.e. are 0, no t (None, not
    NaN, which is not JSON)."""
    lp = np.random.default_rng(0).normal(size=50)
    same = paired_difference(lp, lp.copy())
    assert same == {"d_nll": 0.0, "d_nll_se": 0.0, "d_nll_t": None}
    assert json.loads(json.dumps(same, allow_nan=False)) == same
    assert paired_difference(lp[:1], lp[:1] + 1)["d_nll_se"] is None


@pytest.mark.cross_process
def test_refit_every_k_steps_uses_all_values_before_each_refit(fitted):
    y = garch_returns(500, seed=2)
    result = quiet_backtest(y, ["garch"], horizon=1, refit_every=40)
    cut, n = result["train_values"], len(y)
    assert result["fits"] == 3  # refits at cut, cut + 40, cut + 80
    log_probs = []
    for start, model in zip(range(cut, n, 40), fitted["garch"], strict=True):
        assert_fitted_on(model, y[:start], GARCHConfig())
        log_probs.append(model.log_prob(y[: min(start + 40, n)])[start:].numpy())
    assert row(result, "garch")["nll"] == pytest.approx(-np.concatenate(log_probs).mean(), rel=1e-12)


@pytest.mark.cross_process
def test_each_contender_reports_a_typed_record_and_the_run_prints_the_lines(capsys):
    """Every fit's record says what it is (the linear AR's order, GARCH's AIC); backtest() prints nothing, and
    run_backtest's lines are built from those records."""
    y = garch_returns(300, seed=2)
    result = quiet_backtest(y, ["random_walk", "linear_ar", "garch"], horizon=1)
    walk, ar, garch = (m.fits[0] for m in result.models)
    assert type(walk) is FitRecord and isinstance(ar, OrderFit) and isinstance(garch, GARCHFit)
    cut = result["train_values"]
    assert row(result, "linear_ar")["model"] == f"linear_ar (order {ar.order})"
    fitted = GARCH(GARCHConfig()).fit(y[:cut])
    assert garch.aic == pytest.approx(2 * len(fitted.params) - 2 * fitted.training_result.loglik, rel=1e-6)
    assert result.models[0].line(1).startswith("seqlab: random_walk: one-step NLL ")
    assert capsys.readouterr().out == ""


@pytest.mark.cross_process
def test_default_reference_is_the_garch_row_with_the_best_training_aic():
    y = garch_returns(600, seed=4)
    result = quiet_backtest(y, ["random_walk", "garch", "garch-t"], horizon=1)
    cut = result["train_values"]
    aic = {n: GARCH(GARCHConfig(dist=d)).fit(y[:cut]) for n, d in (("garch", "normal"), ("garch-t", "t"))}
    aic = {n: 2 * len(m.params) - 2 * m.training_result.loglik for n, m in aic.items()}
    assert result["reference"] == min(aic, key=aic.get)
    assert result["reference_chosen_by"] == "AIC on the training part"
    assert quiet_backtest(y, ["random_walk", "linear_ar"], horizon=1)["reference"] == ("random_walk")


def test_neural_training_never_sees_the_scored_part():
    """Another held-out part (same training part) changes the scores but not the training: weights picked and
    training stopped on the tail of the training part."""
    y = garch_returns(400, seed=5)
    other = y.copy()
    other[320:] = garch_returns(80, seed=9)
    runs = [quiet_backtest(v, ["gru"], horizon=1, hidden=8, passes=6) for v in (y, other)]
    first, second = (row(r, "gru") for r in runs)
    assert first["training"] == second["training"] and first["training"][0]["steps"] > 0
    assert first["nll"] != second["nll"]


def test_sizing_fits_the_window_stream_and_holds_back_each_series_tail():
    for n in (40, 97, 300, 6000):
        window, batch = sizing.window_and_batch(n)
        stream = WindowStream(np.zeros(n), batch, window, 0)
        assert stream.windows_per_epoch == sizing.steps_per_pass(n, window, batch) >= 1
    joined = torch.tensor([1.0, 2, 3, 4, 5, 6, 7, 8, 9, 10, float("nan"), 11, 12, 13, 14, 15, 16, 17, 18, 19, 20])
    fit, tail = sizing.split_tail(joined, 0.2)
    assert tail.tolist()[:2] == [9.0, 10.0] and tail.tolist()[3:] == [19.0, 20.0]
    assert torch.isnan(fit[8]) and len(fit) == 17


def test_short_monthly_series_no_model_worse_than_the_random_walk():
    """Issue 12's target, default options: on tests/data/monthly.csv (4 synthetic stocks x 100 months, long form;
    benchmarks/short_series.py wrote it), pooled over the series' held-out months, no model is worse than the
    random walk by more than 0.05 nats per step."""
    models = ("random_walk", "linear_ar", "garch-t", "neural_ar", "rnn", "lstm", "gru")
    differences = {m: [] for m in models}
    for series in ("S0", "S1", "S2", "S3"):
        spec = BacktestSpec(DataSpec(str(MONTHLY), id_column="Ticker"), series=series, models=models, folds=2)
        spec.samples, spec.progress, spec.reference = 20, False, "random_walk"
        for r in run_backtest(spec, say=lambda m: None).record["results"]:
            differences[r["model"].split()[0]].append(r["d_nll"])
    pooled = {m: float(np.mean(d)) for m, d in differences.items()}
    assert all(d <= 0.05 for d in pooled.values()), pooled


def short_simulated_panel(path: Path, seeds=range(3)) -> list[str]:
    """Month-end closes of GARCH-t and EGARCH-t return paths of 120 months, long form (Date, Ticker, Close)."""
    rows, names = ["Date,Ticker,Close"], []
    for seed in seeds:
        for name, r in (
            (f"G{seed}", 3 * garch_returns(120, 50 + seed)),
            (f"E{seed}", simulated_egarch_path(120, 50 + seed)),
        ):
            closes = 30 * np.exp(np.concatenate([[0.0], np.cumsum(r)]))
            rows += [f"{2000 + i // 12}-{i % 12 + 1:02d}-28,{name},{c:.6f}" for i, c in enumerate(closes)]
            names.append(name)
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return names


SHORT_MARGIN = 0.05  # nats per month: the mean over series of a row's difference from the random walk


@pytest.mark.slow
def test_default_models_and_the_pool_on_short_simulated_series(tmp_path):
    """Issue 33: the backtest's default models, GJR and the pool on simulated GARCH and EGARCH paths of 120 months
    (data the repository does not ship, shaped like a user's): every row but EGARCH within SHORT_MARGIN of the random
    walk on the mean over series, and no row stops the backtest. EGARCH-t is held to a finite score only: fitted on
    60 months its maximum likelihood (arch's as well as seqlab's) can have alpha < 0, a news impact under which a
    large shock lowers the next variance, and out of sample the variance then collapses (E1: +145 nats/month);
    docs/reliability.md."""
    names = short_simulated_panel(tmp_path / "panel.csv")
    models = (*backtest_module.DEFAULT_MODELS, "gjr-t", "pool")
    differences = {}
    for name in names:
        spec = BacktestSpec(DataSpec(str(tmp_path / "panel.csv"), id_column="Ticker"), series=name, models=models)
        spec.folds, spec.samples, spec.progress, spec.reference = 2, 20, False, "random_walk"
        for r in run_backtest(spec, say=lambda m: None).record["results"]:
            differences.setdefault(r["model"].split()[0], []).append(r["d_nll"])
    mean = {m: float(np.mean(d)) for m, d in differences.items()}
    assert set(mean) == set(models) and all(np.isfinite(v) for v in mean.values()), mean
    assert all(v <= SHORT_MARGIN for m, v in mean.items() if m != "egarch-t"), mean


@pytest.mark.slow
def test_a_pool_backtest_goes_on_when_a_member_fails(tmp_path, monkeypatch):
    """Issue 33: a pool member that raised inside its scoring (an EGARCH variance that underflowed to 0 raised
    ZeroDivisionError) stopped the backtest with an internal error; it is now left out of the weights with its
    reason."""
    short_simulated_panel(tmp_path / "panel.csv", seeds=[1])
    real_member_log_prob = Pool._member_log_prob

    def failing(self, model, reads_covariates, x):
        if model.describe().startswith("EGARCH"):
            raise ZeroDivisionError("float division by zero")
        return real_member_log_prob(self, model, reads_covariates, x)

    monkeypatch.setattr(Pool, "_member_log_prob", failing)
    spec = BacktestSpec(DataSpec(str(tmp_path / "panel.csv"), id_column="Ticker"), series="E1")
    spec.models, spec.folds, spec.samples, spec.progress = ("random_walk", "egarch-t", "pool"), 1, 10, False
    results = run_backtest(spec, say=lambda m: None).record["results"]
    assert [r["model"].split()[0] for r in results] == ["random_walk", "egarch-t", "pool"]
    assert all(np.isfinite(r["nll"]) for r in results)


def test_backtest_command_with_garch_names_a_reference_and_refits(tmp_path, capsys):
    path = tmp_path / "prices.csv"
    path.write_text("Close\n" + "".join(f"{p}\n" for p in 30 * np.exp(np.cumsum(garch_returns(400)))), "utf-8")
    argv = ["backtest", "--data", str(path), "--models", "random_walk,garch,gjr-t,egarch-t", "--reference", "garch"]
    code = main([*argv, "--refit-every", "50", "--folds", "2", "--samples", "10", "--json", "--no-progress"])
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and result["reference"] == "garch" and result["fits"] == 2
    assert [r["model"] for r in result["results"]] == ["random_walk", "garch", "gjr-t", "egarch-t"]
    code = main([*argv[:-2], "--reference", "gru", "--no-progress"])
    assert code == 1 and "--reference gru: not among the models" in capsys.readouterr().err
    assert main(["backtest", "--data", str(path), "--models", "garch-cauchy"]) == 1
    assert "unknown garch-cauchy" in capsys.readouterr().err
