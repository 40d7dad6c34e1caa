"""GARCH against the ``arch`` package: parameters, log-likelihoods, conditional variances, standard errors, on MSFT
daily log returns (x100, arch's scale) and on a simulated EGARCH-t series; the fast recursions against their
sequential references; streaming, sampling, persistence; degenerate input."""

import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from arch import arch_model
from arch.univariate import SkewStudent
from helpers import garch_returns, simulated_egarch_path, stepped_log_probs

from seqlab import io
from seqlab.data import load_series
from seqlab.distributions import SkewStudentT
from seqlab.errors import SeqlabError
from seqlab.models import GARCH, MODELS, GARCHConfig
from seqlab.models import volatility as vol

PARAMS_ATOL = 1e-4  # on returns in percent: two SLSQP runs stop within this of each other
LOGLIK_RTOL = 1e-6
VARIANCE_RTOL = 1e-4
BSE_RTOL = 1e-3  # numerical Hessians with different steps
FLOAT64_RTOL = 1e-12  # the same arithmetic in another order

MSFT = 100 * np.diff(np.log(load_series("msft")[0].values))


def simulated_egarch_t(n: int = 3000, seed: int = 0) -> np.ndarray:
    """EGARCH(1,1,1) with standardised t(6) noise and a constant mean 0.05 (returns in percent)."""
    rng = np.random.default_rng(seed)
    z = rng.standard_t(6, n) / math.sqrt(6 / 4)
    omega, alpha, gamma, beta = 0.02, 0.15, -0.08, 0.97
    ln_s, y = math.log(1.0), np.empty(n)
    for t in range(n):
        y[t] = 0.05 + math.exp(ln_s / 2) * z[t]
        ln_s = omega + alpha * (abs(z[t]) - vol.SQRT2_OV_PI) + gamma * z[t] + beta * ln_s
    return y


SIMULATED = simulated_egarch_t()

# (seqlab config, arch_model keywords)
CASES = {
    "garch-normal": ({}, {"vol": "GARCH", "p": 1, "q": 1, "dist": "normal"}),
    "garch-t": ({"dist": "t"}, {"vol": "GARCH", "p": 1, "q": 1, "dist": "t"}),
    "gjr-t": ({"o": 1, "dist": "t"}, {"vol": "GARCH", "p": 1, "o": 1, "q": 1, "dist": "t"}),
    "egarch-t": ({"vol": "egarch", "o": 1, "dist": "t"}, {"vol": "EGARCH", "p": 1, "o": 1, "q": 1, "dist": "t"}),
    "zero-mean-garch-t": ({"mean": "zero", "dist": "t"}, {"mean": "Zero", "vol": "GARCH", "dist": "t"}),
    "ar1-garch-skewt": (
        {"mean": "ar", "lags": 1, "dist": "skewt"},
        {"mean": "AR", "lags": 1, "vol": "GARCH", "p": 1, "q": 1, "dist": "skewt"},
    ),
}


def fit_both(series: np.ndarray, case: str):
    config, arch_options = CASES[case]
    model = GARCH(GARCHConfig(**config)).fit(series)
    reference = arch_model(series, **arch_options).fit(disp="off")
    return model, reference


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("data", ["msft", "simulated"])
@pytest.mark.cross_process
def test_fit_matches_arch(case, data):
    series = MSFT if data == "msft" else SIMULATED
    model, reference = fit_both(series, case)
    k = model.config.lags
    assert model.names == _seqlab_names(reference)
    np.testing.assert_allclose(model.params, reference.params.to_numpy(), rtol=0, atol=PARAMS_ATOL)
    assert model.training_result.loglik == pytest.approx(reference.loglikelihood, rel=LOGLIK_RTOL)
    assert model.training_result.nobs == reference.nobs
    # the model's own one-step densities at its parameters sum to the fitted log-likelihood
    assert float(model.log_prob(series)[k:].sum()) == pytest.approx(model.training_result.loglik, rel=1e-10)
    _, sigma2 = model.filter(series)
    np.testing.assert_allclose(np.sqrt(sigma2[k:]), reference.conditional_volatility[k:], rtol=VARIANCE_RTOL)
    np.testing.assert_allclose(model.training_result.bse_robust, reference.std_err.to_numpy(), rtol=BSE_RTOL)
    assert not model.training_result.bounds_active


def _seqlab_names(result) -> list[str]:
    """arch's parameter names in seqlab's spelling (``Const`` -> ``const``, ``y[i]`` -> ``phi[i]``)."""
    return ["const" if n == "Const" else f"phi[{n[2:-1]}]" if n.startswith("y[") else n for n in result.params.index]


@pytest.mark.cross_process
def test_classic_standard_errors_match_arch():
    model, _ = fit_both(MSFT, "garch-t")
    reference = arch_model(MSFT, dist="t").fit(disp="off", cov_type="classic")
    np.testing.assert_allclose(model.training_result.bse, reference.std_err.to_numpy(), rtol=BSE_RTOL)


@pytest.mark.cross_process
def test_unscaled_returns_give_the_same_model():
    """Fitted on raw log returns (rescaled by 100 inside), the parameters map back to the data's scale."""
    percent = GARCH(GARCHConfig(o=1, dist="t")).fit(MSFT)
    raw = GARCH(GARCHConfig(o=1, dist="t")).fit(MSFT / 100)
    assert raw.training_result.scale == 100.0
    expected = percent.params.copy()
    expected[0] /= 100  # mu
    expected[1] /= 100**2  # omega
    np.testing.assert_allclose(raw.params, expected, rtol=1e-6)  # x / 100 * 100 != x in floats
    # two fits (other data bits, so other SLSQP paths): the likelihood is flat at the optimum, where two runs agree to
    # a few 1e-12 (measured across thread counts and 1-ulp changes of the data; docs/reliability.md)
    assert raw.training_result.loglik == pytest.approx(
        percent.training_result.loglik + len(MSFT) * math.log(100), rel=1e-10
    )
    x = MSFT / 100
    assert float(raw.log_prob(x).sum()) == pytest.approx(float(percent.log_prob(MSFT).sum()) + len(x) * math.log(100))


@pytest.mark.cross_process
def test_egarch_unscaled_omega():
    percent = GARCH(GARCHConfig(vol="egarch", o=1)).fit(SIMULATED)
    raw = GARCH(GARCHConfig(vol="egarch", o=1)).fit(SIMULATED / 100)
    beta = percent.params[-1]
    assert raw.params[1] == pytest.approx(percent.params[1] - 2 * math.log(100) * (1 - beta), rel=1e-6)
    np.testing.assert_allclose(raw.log_prob(SIMULATED / 100) - math.log(100), percent.log_prob(SIMULATED), rtol=1e-6)


# -- fast paths against the sequential definitions -------------------------------------------------------------
@pytest.mark.parametrize("orders", [(1, 0, 1), (1, 1, 1), (2, 1, 2), (1, 2, 0), (0, 1, 1)])
def test_garch_filter_equals_the_loop(orders):
    p, o, q = orders
    rng = np.random.default_rng(1)
    e = rng.standard_normal(500) * 1.5
    params = np.concatenate(
        [[0.05], np.full(p, 0.08 / max(p, 1)), np.full(o, 0.1 / max(o, 1)), np.full(q, 0.8 / max(q, 1))]
    )
    bounds = vol.variance_bounds(e)
    process = vol.GARCHProcess(p, o, q)
    fast = process.variance(params, e, 1.3, bounds)
    slow = process.variance_reference(params, e, 1.3, bounds)
    np.testing.assert_allclose(fast, slow, rtol=FLOAT64_RTOL)


def test_garch_filter_falls_back_when_a_bound_binds():
    e = np.random.default_rng(2).standard_normal(300)
    bounds = vol.variance_bounds(e)
    params = np.array([1e-12, 0.0, 0.0])  # sigma2 ~ 0: below the floor from the first step
    process = vol.GARCHProcess()
    fast = process.variance(params, e, 1e-12, bounds)
    np.testing.assert_allclose(fast, process.variance_reference(params, e, 1e-12, bounds), rtol=0)
    assert (fast == bounds[:, 0]).all()


@pytest.mark.parametrize("orders, exogenous", [((2, 1, 2), 0), ((1, 1, 1), 1)])
def test_compiled_bounded_filter_is_the_reference_to_every_bit(orders, exogenous):
    """Where a step leaves the bounds the fit takes the compiled loop (``garch_filter``): the same sums in the same
    order as ``variance_reference``, so the same floats, with the floor and the ceiling both binding."""
    rng = np.random.default_rng(4)
    e = rng.standard_normal(500)
    x_prev = np.concatenate([[0.0], rng.exponential(size=499)]) if exogenous else None
    process = vol.GARCHProcess(*orders, exogenous=exogenous)
    # a trial point of the optimiser far outside the stationary region: sigma2 starts under its floor (omega and
    # the backcast tiny) and explodes through its ceiling
    p, o, q = orders
    params = np.concatenate([[1e-9], np.full(len(process.names) - 1, 0.8)])
    params[1 + p + o : 1 + p + o + q] = 1.2  # sum of the betas over 1: sigma2 grows without end
    bounds = vol.variance_bounds(e)
    fast = process.variance(params, e, 1e-9, bounds, x_prev)
    slow = process.variance_reference(params, e, 1e-9, bounds, x_prev)
    assert slow[0] == bounds[0, 0] and (slow > bounds[:, 1]).any()
    np.testing.assert_array_equal(fast, slow)


def test_egarch_fast_loop_equals_the_reference():
    e = np.random.default_rng(3).standard_normal(400)
    params = np.array([0.01, 0.12, -0.07, 0.96])
    process = vol.EGARCHProcess(1, 1, 1)
    fast = process.variance(params, e, 0.2, vol.variance_bounds(e))
    slow = process.variance_reference(params, e, 0.2, vol.variance_bounds(e))
    np.testing.assert_allclose(fast, slow, rtol=FLOAT64_RTOL)


def test_backcast_and_bounds_match_arch():
    from arch.univariate import GARCH as ArchGARCH

    e = MSFT[:2000] - MSFT[:2000].mean()
    assert vol.backcast(e) == pytest.approx(ArchGARCH().backcast(e), rel=FLOAT64_RTOL)
    np.testing.assert_allclose(vol.variance_bounds(e), ArchGARCH().variance_bounds(e), rtol=FLOAT64_RTOL)


# -- the skewed-t head ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("eta,lam", [(5.0, -0.3), (12.0, 0.2), (3.1, 0.0)])
def test_skewt_head_matches_arch(eta, lam):
    head = SkewStudentT()
    mu, sigma = 0.1, 1.7
    raw_eta = math.log(math.expm1(eta - 2))
    params = torch.tensor([mu, math.log(sigma), raw_eta, math.atanh(lam)], dtype=torch.float64)
    x = torch.linspace(-8, 8, 41, dtype=torch.float64)
    expected = SkewStudent().loglikelihood([eta, lam], (x - mu).numpy(), np.full(41, sigma**2), individual=True)
    np.testing.assert_allclose(-head.nll(params.expand(41, -1), x).numpy(), expected, rtol=1e-12)
    q = torch.tensor([0.01, 0.1, 0.5, 0.9, 0.99], dtype=torch.float64)
    expected_q = mu + sigma * SkewStudent().ppf(q.numpy(), [eta, lam])
    np.testing.assert_allclose(head.quantile(params.expand(5, -1), q).numpy(), expected_q, rtol=1e-10)
    draws = head.sample(params.expand(20000, -1), generator=torch.Generator().manual_seed(0))
    assert float(draws.mean()) == pytest.approx(mu, abs=0.05)  # standardised: mean mu, sd sigma
    assert float(draws.std()) == pytest.approx(sigma, rel=0.05)
    rescaled = head.rescale(params, 2.0, 3.0)
    np.testing.assert_allclose(head.quantile(rescaled.expand(5, -1), q).numpy(), 2.0 + 3.0 * expected_q, rtol=1e-10)


# -- the SequenceModel contract ---------------------------------------------------------------------------------
@pytest.mark.parametrize("case", ["gjr-t", "egarch-t", "ar1-garch-skewt", "garch-normal"])
def test_streaming_equals_log_prob(case):
    model = GARCH(GARCHConfig(**CASES[case][0])).fit(SIMULATED[:800])
    x = SIMULATED[800:1000]
    torch.testing.assert_close(stepped_log_probs(model, x), model.log_prob(x), rtol=1e-10, atol=1e-12)


def test_registered_and_round_trips(tmp_path):
    assert MODELS["garch"] is GARCH
    model = GARCH(GARCHConfig(o=1, mean="ar", lags=1, dist="skewt")).fit(SIMULATED)
    io.save(model, tmp_path / "m")
    loaded = io.load(tmp_path / "m", expect="garch")
    np.testing.assert_array_equal(loaded.params, model.params)
    assert loaded.backcast == model.backcast
    assert loaded.training_result.bse_robust == model.training_result.bse_robust
    assert loaded.training_result.loglik == model.training_result.loglik
    torch.testing.assert_close(loaded.log_prob(SIMULATED[:300]), model.log_prob(SIMULATED[:300]), rtol=0, atol=0)
    assert loaded.describe() == model.describe()
    assert "GJR-GARCH(1,1,1), AR(1) mean, skewed-t noise" in model.describe()


def test_sample_paths_follow_the_model():
    """Paths drawn all at once have the one-step law the model states, and the variance h steps ahead that the
    GJR recursion gives in closed form: E sigma2_{T+h} = omega + (alpha + gamma / 2 + beta) E sigma2_{T+h-1}."""
    model = GARCH(GARCHConfig(o=1, dist="t")).fit(MSFT)
    paths = model.sample_paths(torch.from_numpy(MSFT), horizon=20, num_samples=4000, seed=0).numpy()
    assert paths.shape == (4000, 20)
    params, state = model.step(None, model.initial_state())
    for x in MSFT:
        params, state = model.step(x, state)
    first_q = model.head.quantile(params.expand(2, -1), torch.tensor([0.1, 0.9], dtype=torch.float64)).numpy()
    share = np.mean((paths[:, 0] > first_q[0]) & (paths[:, 0] < first_q[1]))
    assert 0.77 < share < 0.83
    mu, omega, alpha, gamma, beta, _ = model.params
    expected = [model.filter(np.append(MSFT, 0.0))[1][-1]]  # sigma2_{T+1}
    for _ in range(19):
        expected.append(omega + (alpha + gamma / 2 + beta) * expected[-1])
    np.testing.assert_allclose(
        np.mean((paths - mu) ** 2, axis=0)[[0, 9, 19]], np.array(expected)[[0, 9, 19]], rtol=0.15
    )
    forecast = model.forecast(MSFT, horizon=5, num_samples=300)
    assert forecast.quantiles[0.9].shape == (5,) and (forecast.quantiles[0.1] < forecast.quantiles[0.9]).all()


def test_converged_is_the_optimisers_verdict():
    """Stopped after 2 SLSQP iterations the fit says so (arch's convergence flag), and describe() repeats it."""
    stopped = GARCH(GARCHConfig(dist="t")).fit(MSFT, maxiter=2)
    record = stopped.training_result
    assert not record.converged and record.iterations == 2 and "Iteration limit" in record.message
    assert "did not converge" in stopped.describe()
    assert GARCH(GARCHConfig(dist="t")).fit(MSFT).training_result.converged


def test_a_misspelt_option_is_an_error():
    with pytest.raises(TypeError, match="maxiterr"):
        GARCH().fit(SIMULATED[:500], maxiterr=3)


def test_fit_returns_self_and_encode_checks():
    model = GARCH()
    assert model.fit(SIMULATED[:500]) is model
    assert model.training_result.converged and model.training_result.iterations > 0
    assert model.encode([0.1, -0.2], source="prices").dtype == torch.float64
    assert "mu" in model.training_result.table()


# -- bad input: one-line errors that say what and where -------------------------------------------------------
def one_line_error(call, pattern: str) -> None:
    with pytest.raises(SeqlabError, match=pattern) as caught:
        call()
    assert "\n" not in str(caught.value)


def test_degenerate_inputs():
    one_line_error(lambda: GARCH().fit(np.full(500, 0.01)), "constant or nearly so")
    noise = 1e-14 * np.random.default_rng(0).standard_normal(500)
    one_line_error(lambda: GARCH().fit(0.01 + noise), "constant or nearly so")
    one_line_error(
        lambda: GARCH(GARCHConfig(mean="ar", lags=3)).fit([0.1, -0.2, 0.3, 0.1, -0.1]),
        r"needs at least \d+ values, got 5",
    )
    bad = SIMULATED[:100].copy()
    bad[42] = np.nan
    one_line_error(lambda: GARCH().fit(bad), "row 42 is nan")
    worse = bad.copy()
    worse[42] = np.inf
    one_line_error(lambda: GARCH().fit(worse), "row 42 is inf")
    one_line_error(lambda: GARCH(GARCHConfig(vol="figarch")), "vol must be one of")
    one_line_error(lambda: GARCH().log_prob([0.1, 0.2]), "not fitted")


@pytest.mark.parametrize("dist", ["normal", "t", "skewt"])
def test_sample_one_element_at_a_time(dist):
    """``sample`` draws through ``step``'s 0-d head parameters (the t quantile once failed on scalars)."""
    model = GARCH(GARCHConfig(dist=dist, mean="ar", lags=2)).fit(SIMULATED[:1000])
    out = model.sample([0.1, -0.2], 6, seed=0)
    assert out.shape == (6,) and torch.isfinite(out).all()
    assert torch.equal(out, model.sample([0.1, -0.2], 6, seed=0))


# -- GARCH-X: the day's range in the variance equation ---------------------------------------------------------
(_MSFT_OHLC,) = load_series("msft", features="range")
MSFT_RANGE = np.stack([MSFT, 100**2 * _MSFT_OHLC.covariates[1:, 0]], axis=1)  # (T, 2): return in %, range in %^2
GARCHX_TRUE = {"mu": 0.05, "omega": 0.05, "alpha[1]": 0.05, "beta[1]": 0.6, "delta": 0.3}


def simulated_garchx(n: int, seed: int) -> np.ndarray:
    """Rows (y_t, x_t): y_t = mu + sigma_t z_t, z ~ N(0, 1); x_t = sigma2_t u_t, u lognormal with mean 1 (a noisy
    measured variance of day t); sigma2_{t+1} = omega + alpha e_t^2 + beta sigma2_t + delta x_t."""
    rng = np.random.default_rng(seed)
    mu, omega, alpha, beta, delta = GARCHX_TRUE.values()
    rows, s2 = np.empty((n, 2)), omega / (1 - alpha - beta - delta)
    for t in range(n):
        e = math.sqrt(s2) * rng.standard_normal()
        x = s2 * math.exp(0.5 * rng.standard_normal() - 0.125)
        rows[t] = mu + e, x
        s2 = omega + alpha * e**2 + beta * s2 + delta * x
    return rows


@pytest.mark.parametrize("orders", [(1, 0, 1), (1, 1, 1), (2, 0, 1)])
def test_garchx_filter_equals_the_loop(orders):
    rng = np.random.default_rng(4)
    e, x_prev = rng.standard_normal(400), rng.exponential(1.0, 400)
    process = vol.GARCHProcess(*orders, exogenous=1)
    params = np.concatenate([[0.05], np.full(len(process.names) - 2, 0.3 / (len(process.names) - 2)), [0.4]])
    bounds = vol.variance_bounds(e)
    fast = process.variance(params, e, 1.1, bounds, x_prev)
    np.testing.assert_allclose(fast, process.variance_reference(params, e, 1.1, bounds, x_prev), rtol=FLOAT64_RTOL)
    plain = vol.GARCHProcess(*orders).variance(params[:-1], e, 1.1, None)  # delta x on top of the GARCH recursion
    np.testing.assert_allclose(fast - plain, 0.4 * lfilter_beta(params, orders, x_prev), rtol=1e-10)


def lfilter_beta(params, orders, u):
    """sum_j beta^j u_{t-j}: the exogenous term pushed through the beta recursion (q = 1 here)."""
    p, o, q = orders
    beta, out, s = params[1 + p + o], np.empty(len(u)), 0.0
    for t, u_t in enumerate(u):
        s = u_t + beta * s
        out[t] = s
    return out


def test_garchx_likelihood_matches_arch_with_its_variance_given():
    """arch has no exogenous regressors in the variance, but it scores a given variance path (FixedVariance): at
    the GARCH-X estimate, arch's Student-t log-likelihood of the returns given seqlab's sigma2 is seqlab's."""
    from arch.univariate import ConstantMean, FixedVariance, StudentsT

    model = GARCH(GARCHConfig(vol="garchx", dist="t")).fit(MSFT_RANGE)
    _, sigma2 = model.filter(MSFT_RANGE)
    reference = ConstantMean(MSFT, volatility=FixedVariance(sigma2, unit_scale=False), distribution=StudentsT())
    fixed = reference.fix([model.params[0], 1.0, model.params[-1]])
    assert model.training_result.loglik == pytest.approx(fixed.loglikelihood, rel=LOGLIK_RTOL)
    assert model.training_result.converged and not model.training_result.bounds_active
    assert model.names == ["mu", "omega", "alpha[1]", "beta[1]", "delta", "nu"]
    plain = GARCH(GARCHConfig(dist="t")).fit(MSFT)  # the range carries information GARCH-t lacks: LR >> chi2(1)
    assert 2 * (model.training_result.loglik - plain.training_result.loglik) > 20


def test_garchx_recovers_simulated_parameters():
    """Eight simulated series of 2,000 days: each estimate within 4 robust standard errors of the truth, the
    z-scores centred (|mean| < 3 / sqrt(8) per parameter) and spread as the standard errors say (sd in 0.4-1.8)."""
    z = []
    for seed in range(8):
        model = GARCH(GARCHConfig(vol="garchx")).fit(simulated_garchx(2000, seed))
        record = model.training_result
        assert record.converged
        z.append((model.params - np.array(list(GARCHX_TRUE.values()))) / np.array(record.bse_robust))
    z = np.array(z)  # (8, 5)
    assert np.abs(z).max() < 4, z
    assert (np.abs(z.mean(axis=0)) < 3 / math.sqrt(len(z))).all(), z.mean(axis=0)
    assert ((z.std(axis=0, ddof=1) > 0.4) & (z.std(axis=0, ddof=1) < 1.8)).all(), z.std(axis=0, ddof=1)


def test_garchx_streams_samples_and_round_trips(tmp_path):
    model = GARCH(GARCHConfig.from_name("gjrx-t"))
    model.fit(MSFT_RANGE[:3000])
    rows = MSFT_RANGE[3000:3200]
    assert model.num_covariates == 1 and "GJR-GARCH-X(1,1,1)" in model.describe()
    state, stepped = model.initial_state(), []
    params, state = model.step(None, state)
    for row in rows:
        stepped.append(-model.head.nll(params, torch.tensor(row[0])))
        params, state = model.step(torch.from_numpy(row), state)
    torch.testing.assert_close(torch.stack(stepped), model.log_prob(rows), rtol=1e-10, atol=1e-12)
    io.save(model, tmp_path / "m")
    loaded = io.load(tmp_path / "m", expect="garch")
    assert loaded.backcast_x == model.backcast_x
    torch.testing.assert_close(loaded.log_prob(rows), model.log_prob(rows), rtol=0, atol=0)
    paths = model.sample_paths(torch.from_numpy(rows), horizon=3, num_samples=500, seed=0)
    assert paths.shape == (500, 3) and torch.isfinite(paths).all()
    one_line_error(lambda: model.log_prob(MSFT[:10]), r"expected shape \(T, 2\)")
    negative = MSFT_RANGE[:500].copy()
    negative[7, 1] = -1.0
    one_line_error(lambda: GARCH(GARCHConfig(vol="garchx")).fit(negative), "row 7 is -1")


# -- short series: the fit reaches arch's optimum (issue 33) ---------------------------------------------------------
SHORT_RTOL = 1e-3  # seqlab's log-likelihood is never further than this (relative) below arch's
MONTHLY = Path(__file__).parent / "data"
VOLATILITY_FAMILIES = {
    "garch": ({}, "GARCH", 0),
    "gjr": ({"o": 1}, "GARCH", 1),
    "egarch": ({"vol": "egarch", "o": 1}, "EGARCH", 1),
}


def monthly_returns(file: str, ticker: str) -> np.ndarray:
    """Log returns of one ticker's month-end closes in tests/data (real MSFT closes, or the synthetic panel)."""
    frame = pd.read_csv(MONTHLY / f"{file}.csv")
    return np.diff(np.log(frame[frame.Ticker == ticker].Close.to_numpy()))


def assert_reaches_arch(y: np.ndarray, family: str, dist: str) -> None:
    config, arch_vol, o = VOLATILITY_FAMILIES[family]
    ours = GARCH(GARCHConfig(dist=dist, **config)).fit(y).training_result.loglik
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # arch's own fit often stops at its iteration limit on short series
        reference = arch_model(y, vol=arch_vol, p=1, o=o, q=1, dist=dist).fit(disp="off")
    theirs = reference.loglikelihood + len(y) * math.log(reference.scale)  # arch rescaled y by its scale
    assert ours >= theirs - SHORT_RTOL * abs(theirs), (family, dist, ours, theirs)


@pytest.mark.parametrize(
    "file, ticker, cut, family, dist",
    [
        ("msft_monthly", "M3", 97, "egarch", "normal"),  # SLSQP from arch's start stopped 540 nats short
        ("monthly", "S3", None, "egarch", "t"),  # 445 nats short
        ("monthly", "S3", None, "egarch", "skewt"),  # the variance underflowed to 0: ZeroDivisionError
        ("msft_monthly", "M1", 97, "egarch", "t"),
    ],
)
@pytest.mark.cross_process
def test_short_real_series_reach_archs_optimum(file, ticker, cut, family, dist):
    assert_reaches_arch(monthly_returns(file, ticker)[:cut], family, dist)


@pytest.mark.slow
@pytest.mark.parametrize("family", list(VOLATILITY_FAMILIES))
@pytest.mark.parametrize("dist", ["normal", "t", "skewt"])
def test_every_process_reaches_archs_optimum_on_short_series(family, dist):
    """Real monthly returns (the three MSFT stretches whole and their first 97 months, the synthetic panel) and
    simulated GARCH and EGARCH paths of 80-150 values."""
    series = [monthly_returns("msft_monthly", t)[:cut] for t in ("M1", "M2", "M3") for cut in (97, None)]
    series += [monthly_returns("monthly", t) for t in ("S0", "S1", "S2", "S3")]
    for seed in range(3):
        series += [garch_returns(80 + 35 * seed, seed), simulated_egarch_path(150 - 30 * seed, seed)]
    for y in series:
        assert_reaches_arch(y, family, dist)


def test_egarch_variance_never_reaches_zero_or_infinity():
    """ln sigma2 is clamped to float64's range both ways: parameters that drive it to -inf or +inf give tiny or huge
    but positive, finite variances, in the fast loop, the reference and the streaming step alike."""
    e = np.array([0.5, -2.0, 0.01, 3.0, -0.2] * 4)
    process = vol.EGARCHProcess()
    for params in ([-1e4, 0.0, 0.0, 0.5], [1e4, 0.0, 0.0, 0.5], [0.0, 400.0, -300.0, 0.9]):
        for sigma2 in (
            process.variance(np.array(params), e, 0.0, None),
            process.variance_reference(params, e, 0.0, None),
        ):
            assert np.isfinite(sigma2).all() and (sigma2 > 0).all(), (params, sigma2)
    assert float(process.step([-1e4, 0.0, 0.0, 0.5], process.initial(0.0))) > 0
