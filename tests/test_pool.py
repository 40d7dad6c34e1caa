"""The linear pool: its weights against a general-purpose optimiser, its head against scipy's densities and CDFs,
the honesty of its fit (weights from members fitted before the training tail, nothing after the training part),
a clear error on a series too short for a member, and the commands (train, info, forecast, backtest)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from arch.univariate import SkewStudent
from helpers import garch_returns
from helpers import run_cli as cli
from scipy.optimize import brentq, minimize
from scipy.stats import norm
from scipy.stats import t as student_t

from seqlab.base import SequenceModel
from seqlab.distributions import Gaussian, LinearPool, SkewStudentT, StudentT
from seqlab.errors import SeqlabError
from seqlab.models.pool import Pool, SeriesContender, pool_weights
from seqlab.models.random_walk import RandomWalk
from seqlab.runs.backtest import BacktestSpec, backtest
from seqlab.runs.contenders import SeriesOptions, series_contender

CDF_TOLERANCE = 1e-12  # float64 CDFs against scipy's


def log_score(w: np.ndarray, log_probs: np.ndarray) -> float:
    return float(np.logaddexp.reduce(np.log(np.maximum(w, 1e-300))[:, None] + log_probs, axis=0).sum())


def test_weights_maximise_the_log_score():
    """The optimum's conditions (KKT: dL/dw_k / N = mean_t p_kt / p_t is 1 where w_k > 0 and at most 1 where
    w_k = 0), and at least the log score scipy's SLSQP reaches from equal weights."""
    rng = np.random.default_rng(0)
    y = rng.standard_t(4, 300)
    log_probs = np.stack([norm.logpdf(y, 0, 1), norm.logpdf(y, 0, 2), student_t.logpdf(y, 4), norm.logpdf(y, 1, 1)])
    w = pool_weights(log_probs)
    result = minimize(
        lambda v: -log_score(v, log_probs),
        np.full(4, 0.25),
        method="SLSQP",
        bounds=[(0, 1)] * 4,
        constraints={"type": "eq", "fun": lambda v: v.sum() - 1},
        options={"ftol": 1e-14, "maxiter": 500},
    )
    assert w.sum() == pytest.approx(1, abs=1e-12) and (w >= 0).all()
    assert log_score(w, log_probs) >= -result.fun - 1e-9
    p = np.exp(log_probs)
    gradient = (p / (w @ p)).mean(axis=1)
    assert np.all(gradient <= 1 + 1e-6) and np.all(np.abs(gradient[w > 1e-6] - 1) < 1e-6), (w, gradient)
    assert w[2] > 0.5  # the true density takes most of the weight


@pytest.mark.parametrize("prior", [1.5, 5.0, 50.0])
def test_weights_with_a_dirichlet_prior_are_its_posterior_mode(prior):
    """With a Dirichlet(prior) on w the optimum is inside the simplex, where the gradient of
    ``sum_t log p_t + (prior - 1) sum_k log w_k`` is the same for every member (Lagrange; it equals N + K (prior -
    1) there), and no point scipy's SLSQP finds from equal weights scores higher. The pull towards equal weights
    grows with the prior and fades as the tail grows."""
    rng = np.random.default_rng(0)
    y = rng.standard_t(4, 300)
    log_probs = np.stack([norm.logpdf(y, 0, 1), norm.logpdf(y, 0, 2), student_t.logpdf(y, 4), norm.logpdf(y, 1, 1)])

    def objective(v, lp):
        return log_score(v, lp) + (prior - 1) * np.log(np.maximum(v, 1e-300)).sum()

    w = pool_weights(log_probs, prior)
    result = minimize(
        lambda v: -objective(v, log_probs),
        np.full(4, 0.25),
        method="SLSQP",
        bounds=[(1e-9, 1)] * 4,
        constraints={"type": "eq", "fun": lambda v: v.sum() - 1},
        options={"ftol": 1e-14, "maxiter": 500},
    )
    assert w.sum() == pytest.approx(1, abs=1e-12) and (w > 0).all()
    assert objective(w, log_probs) >= -result.fun - 1e-9
    p = np.exp(log_probs)
    gradient = (p / (w @ p)).sum(axis=1) + (prior - 1) / w
    assert np.allclose(gradient, 300 + 4 * (prior - 1), rtol=1e-6), (w, gradient)
    plain, short = pool_weights(log_probs), pool_weights(log_probs[:, :30], prior)
    assert np.abs(w - 0.25).max() < np.abs(plain - 0.25).max()
    assert np.abs(short - 0.25).max() < np.abs(pool_weights(log_probs[:, :30]) - 0.25).max()
    with pytest.raises(SeqlabError, match="at least 1"):
        pool_weights(log_probs, 0.5)


@pytest.mark.parametrize("strength", [5.0, 60.0])
def test_weights_with_a_centred_prior_are_its_posterior_mode(strength):
    """Pseudo-observations ``strength * centre_k`` (a Dirichlet of mean ``centre``, panel_pool's prior): inside the
    simplex the gradient of ``sum_t log p_t + sum_k e_k log w_k`` is the same for every member (it equals N + sum_k
    e_k there), no point scipy's SLSQP finds scores higher, the weights move towards the centre as the strength
    grows, and with a vast strength they are the centre."""
    rng = np.random.default_rng(1)
    y = rng.standard_t(4, 200)
    log_probs = np.stack([norm.logpdf(y, 0, 1), norm.logpdf(y, 0, 2), student_t.logpdf(y, 4)])
    centre = np.array([0.6, 0.3, 0.1])
    pseudo = strength * centre

    def objective(v):
        return log_score(v, log_probs) + (pseudo * np.log(np.maximum(v, 1e-300))).sum()

    w = pool_weights(log_probs, pseudo=pseudo)
    result = minimize(
        lambda v: -objective(v),
        np.full(3, 1 / 3),
        method="SLSQP",
        bounds=[(1e-9, 1)] * 3,
        constraints={"type": "eq", "fun": lambda v: v.sum() - 1},
        options={"ftol": 1e-14, "maxiter": 500},
    )
    assert w.sum() == pytest.approx(1, abs=1e-12) and (w > 0).all()
    assert objective(w) >= -result.fun - 1e-9
    p = np.exp(log_probs)
    gradient = (p / (w @ p)).sum(axis=1) + pseudo / w
    assert np.allclose(gradient, 200 + strength, rtol=1e-6), (w, gradient)
    assert np.abs(w - centre).sum() < np.abs(pool_weights(log_probs) - centre).sum()
    np.testing.assert_allclose(pool_weights(log_probs, pseudo=1e9 * centre), centre, atol=1e-5)
    np.testing.assert_allclose(pool_weights(log_probs, pseudo=np.full(3, 4.0)), pool_weights(log_probs, 5.0))
    with pytest.raises(SeqlabError, match="non-negative pseudo-observations"):
        pool_weights(log_probs, pseudo=np.array([1.0, -1.0, 0.0]))


def test_linear_pool_head_against_scipy():
    heads = [Gaussian(), StudentT(), SkewStudentT()]
    weights = torch.tensor([0.2, 0.5, 0.3], dtype=torch.float64)
    params = torch.tensor([0.1, np.log(0.5), -0.3, np.log(1.5), 1.0, 0.2, np.log(0.8), 2.0, -0.4], dtype=torch.float64)
    pool = LinearPool(heads, weights)
    nu, eta, lam = 2 + np.log1p(np.exp(1.0)), 2 + np.log1p(np.exp(2.0)), np.tanh(-0.4)
    skew = SkewStudent()

    def density(x: float) -> float:
        z = (x - 0.2) / 0.8
        skewt = np.exp(skew.loglikelihood(np.array([eta, lam]), np.array([z]), np.array([1.0]), individual=True)[0])
        return 0.2 * norm.pdf(x, 0.1, 0.5) + 0.5 * student_t.pdf(x, nu, -0.3, 1.5) + 0.3 * skewt / 0.8

    def cdf(x: float) -> float:
        skewt = skew.cdf(np.array([(x - 0.2) / 0.8]), np.array([eta, lam]))[0]
        return 0.2 * norm.cdf(x, 0.1, 0.5) + 0.5 * student_t.cdf(x, nu, -0.3, 1.5) + 0.3 * skewt

    for x in (-3.0, -0.5, 0.0, 0.4, 2.5):
        xt = torch.tensor(x, dtype=torch.float64)
        assert float(-pool.nll(params, xt)) == pytest.approx(np.log(density(x)), rel=1e-10)
        assert float(pool.cdf(params, xt)) == pytest.approx(cdf(x), abs=CDF_TOLERANCE)
    for q in (0.05, 0.5, 0.9):
        exact = brentq(lambda v, q=q: cdf(v) - q, -50, 50)
        assert float(pool.quantile(params, q)) == pytest.approx(exact, abs=1e-9)
    assert float(pool.mean(params)) == pytest.approx(0.2 * 0.1 + 0.5 * -0.3 + 0.3 * 0.2, abs=1e-12)


def test_linear_pool_samples_each_head_by_its_weight():
    heads = [Gaussian(), Gaussian()]
    pool = LinearPool(heads, torch.tensor([0.3, 0.7], dtype=torch.float64))
    params = torch.tensor([-10.0, 0.0, 10.0, 0.0], dtype=torch.float64).expand(20000, 4)
    draws = pool.sample(params, generator=torch.Generator().manual_seed(0))
    assert draws.shape == (20000,)
    assert float((draws < 0).double().mean()) == pytest.approx(0.3, abs=0.015)  # 4.6 standard errors


@pytest.mark.cross_process
def test_weights_come_from_members_fitted_before_the_training_tail():
    """Refit the members before each block of the tail by hand (the last half of 300 values: blocks from 150,
    187 or 188, 225, 262 or 263), score each block, choose the weights: the pool's; the members the pool keeps
    are fitted on the whole training series."""
    y = garch_returns(300, seed=1)
    options = SeriesOptions(pool_members=("random_walk", "linear_ar", "garch-t"))
    pool = series_contender("pool", y, options).model.fit(y)
    bounds = [150, *pool.record()["fits_at"][1:], 300]
    assert pool.record()["fits_at"][0] == 150 and len(bounds) == 5 and pool.record()["tail_values"] == 150
    log_probs = np.zeros((3, 150))
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        for k, name in enumerate(options.pool_members):
            member = series_contender(name, y[:a], options)
            member.fit(torch.from_numpy(y[:a]), ())
            log_probs[k, a - 150 : b - 150] = member.model.log_prob(y[:b])[a:].double().numpy()
    # the members here are second fits: garch-t's SLSQP path follows the BLAS's rounding, which moves these weights
    # by 1.3e-7 between 1 and 2 OpenBLAS threads and by 2.5e-7 after a 1-ulp change of the data (docs/reliability.md)
    assert np.allclose(pool.weights.numpy(), pool_weights(log_probs, pool.prior), rtol=0, atol=1e-5)
    whole = series_contender("garch-t", y, options)
    whole.fit(torch.from_numpy(y), ())
    # another SLSQP run too: its parameters moved by up to 1.4e-6 with the thread count, 2.6e-6 with a 1-ulp change
    assert np.allclose(pool.members[2].params, whole.model.params, rtol=1e-4, atol=0)


@pytest.mark.cross_process
def test_backtest_pool_never_sees_the_scored_part():
    """Another held-out part (same training part): the same weights, other scores; the pool's one-step NLL is
    that of the mixture of its members fitted on the training part."""
    y = garch_returns(400, seed=5)
    other = y.copy()
    other[320:] = garch_returns(80, seed=9)
    spec = BacktestSpec(models=("random_walk", "garch", "pool"), folds=2, samples=10, progress=False)
    runs = [backtest(v, spec, differenced=True, say=lambda m: None) for v in (y, other)]
    first, second = (r["results"][2] for r in runs)
    assert first["pool"] == second["pool"] and first["nll"] != second["nll"]
    pool = series_contender("pool", y[:320], spec.contender_options(True)).model.fit(y[:320])
    # a second fit of the pool (its GARCH members by SLSQP): its NLL here moves by 1.8e-10 between 1 and 2 OpenBLAS
    # threads and by 4.6e-10 after a 1-ulp change of the data; one value of the scored part seen moves it by 6e-3
    assert first["nll"] == pytest.approx(-float(pool.log_prob(y)[320:].mean()), rel=1e-6)


def test_sample_paths_continue_a_context_exactly_as_the_contract_draws_them():
    y = garch_returns(200, seed=3)
    pool = series_contender("pool", y[:150], SeriesOptions(pool_members=("random_walk", "garch-t"))).model.fit(y[:150])
    context = torch.from_numpy(y)
    pool.sample_paths(context[:120], 3, 5, seed=1)  # conditions on 120 values; the next call continues from there
    paths = pool.sample_paths(context[:170], 3, 50, seed=2)
    assert torch.equal(paths, SequenceModel.sample_paths(pool, context[:170], 3, 50, seed=2))
    other = context[:170].clone()
    other[10] += 1  # not an extension of the last context: conditioned afresh
    assert torch.equal(pool.sample_paths(other, 3, 50, seed=2), SequenceModel.sample_paths(pool, other, 3, 50, seed=2))


def monthly_series(n: int = 96, seed: int = 4) -> np.ndarray:
    t = np.arange(n)
    return 100 + 0.5 * t + 12 * np.sin(2 * np.pi * t / 12) + np.random.default_rng(seed).normal(0, 3, n)


def panel_pool(y: np.ndarray) -> Pool:
    from seqlab.runs.panel import pool_of_members  # naive, seasonal naive and ETS, as the panel backtest pools them

    return pool_of_members(12).fit(y)


@pytest.mark.parametrize("member", ["MAdM", "MAdM hyndman", "AAA", "MNN", "naive", "seasonal_naive", "increments"])
def test_a_members_batch_step_is_its_step_path_by_path(member):
    """``batch_step`` (the pool's batched paths) moves S paths as ``step`` moves each alone, to every digit."""
    from seqlab.models.ets import ETS, ETSConfig

    y = monthly_series()
    if member in ("naive", "seasonal_naive", "increments"):
        model = RandomWalk(differenced=member == "increments", season=12 if member == "seasonal_naive" else 1)
        model.fit(y if member != "increments" else np.diff(y))
    else:
        model = ETS(ETSConfig(*member.split()[:1], 12, *member.split()[1:])).fit(y)
    params, state = model.step(None, model.initial_state())
    for x in torch.from_numpy(y[:50]):
        params, state = model.step(x, state)
    rng = np.random.default_rng(0)
    states, batch = [state] * 5, model.batch_state(state, 5)
    for _ in range(15):  # past a season, so the seasonal parts come round again
        x = torch.from_numpy(y[50] + rng.normal(0, 5, 5))
        each = [model.step(x[i], states[i]) for i in range(5)]
        states = [st for _, st in each]
        params, batch = model.batch_step(x, batch)
        assert torch.equal(params, torch.stack([p for p, _ in each]).double()), member


def test_batched_pool_paths_follow_the_members_as_the_contract_does(monkeypatch):
    """The pool's batched paths against ``SequenceModel.sample_paths`` (path by path through ``step``): with the
    head drawing its mixture's mean (no randomness) they are equal to every digit; with random draws they agree
    in law (means and spreads per step within 4.5 standard errors of the difference, 600 paths each)."""
    y = monthly_series()
    pool = panel_pool(y[:84])
    assert pool.names == ["naive", "seasonal_naive", "ets"]
    pool.weights = torch.tensor([0.3, 0.3, 0.4], dtype=torch.float64)  # every member drawn often (ETS wins the fit)
    context = torch.from_numpy(y)
    n = 600  # the contract's loop steps each path alone: the costly half of this test
    batched = pool.sample_paths(context, 13, n, seed=1)
    looped = SequenceModel.sample_paths(pool, context, 13, n, seed=2)
    se_mean = torch.sqrt((batched.var(0) + looped.var(0)) / n)
    se_sd = 1.5 * se_mean / np.sqrt(2)  # sd / sqrt(2 n) each for a Gaussian; 1.5 for the mixture's heavier tails
    assert ((batched.mean(0) - looped.mean(0)).abs() < 4.5 * se_mean).all()
    assert ((batched.std(0) - looped.std(0)).abs() < 4.5 * se_sd).all()
    monkeypatch.setattr(LinearPool, "sample", lambda self, params, *a, **k: self.mean(params))
    pool._conditioned = None
    assert torch.equal(pool.sample_paths(context, 14, 3, seed=1), SequenceModel.sample_paths(pool, context, 14, 3))


def test_a_series_too_short_for_a_member_is_named():
    y = garch_returns(40, seed=2)
    pool = series_contender("pool", y[:12], SeriesOptions(pool_members=("random_walk", "garch-t"))).model
    with pytest.raises(
        SeqlabError,
        match=r"the pool needs at least 40 training values \(20 to fit its members on before the last 50%.* got 12",
    ):
        pool.fit(y[:12])
    ar = series_contender("pool", y, SeriesOptions(pool_members=("random_walk", "linear_ar"))).model
    ar.fit(y)  # 20 values before a tail of 20; BIC up to order 10 needs 22: no weight, the reason recorded
    assert ar.weights.tolist() == [1.0, 0.0] and ar.record()["member_nll"]["linear_ar"] is None
    assert ar.record()["left_out"] == {
        "linear_ar": "fitted on 20 values: order selection up to 10 needs more than 21 values, got 20"
    }
    assert torch.isfinite(ar.log_prob(y)).all()

    def make(name, part):  # "flaky" fits the tail's blocks, and fails on the whole training part
        model = RandomWalk()

        def fit(data, callbacks):
            if name == "flaky" and len(data) == len(y):
                raise SeqlabError("did not converge")
            return model.fit(data.numpy()) and {}

        return SeriesContender(name, model, fit)

    with pytest.raises(SeqlabError, match=r"^pool member flaky on 40 values: did not converge$"):
        Pool(["random_walk", "flaky"], make).fit(y)  # on the whole training part: the member is named
    alone = series_contender("pool", y, SeriesOptions(pool_members=("linear_ar",))).model
    with pytest.raises(SeqlabError, match=r"no pool member could be scored .*: linear_ar fitted on 20 values: order"):
        alone.fit(y)
    with pytest.raises(SeqlabError, match="members must differ"):
        Pool(["garch", "garch"])


def test_a_member_that_fails_for_any_reason_is_left_out():
    """Any exception of one member (here the ZeroDivisionError an EGARCH variance that underflowed to 0 raised) leaves
    it out with its reason instead of stopping the pool; one that cannot be fitted on the whole series either is
    dropped from the pool."""
    y = garch_returns(60, seed=3)

    class Broken(RandomWalk):
        def log_prob(self, x):
            raise ZeroDivisionError("float division by zero")

    def make(name, part, fails_to_fit=False):
        model = Broken() if name == "broken" else RandomWalk()

        def fit(data, callbacks):
            if name == "broken" and fails_to_fit:
                raise ZeroDivisionError("float division by zero")
            return model.fit(data.numpy()) and {}

        return SeriesContender(name, model, fit)

    pool = Pool(["random_walk", "broken"], make).fit(y)
    assert pool.weights.tolist() == [1.0, 0.0] and pool.record()["member_nll"]["broken"] is None
    assert pool.record()["left_out"] == {"broken": "fitted on 30 values: ZeroDivisionError: float division by zero"}
    pool = Pool(["random_walk", "broken"], lambda name, part: make(name, part, fails_to_fit=True)).fit(y)
    assert pool.names == ["random_walk"] and pool.weights.tolist() == [1.0]
    assert pool.record()["left_out"]["broken"].endswith("; on all 60 values: ZeroDivisionError: float division by zero")
    assert torch.isfinite(pool.log_prob(y)).all()


@pytest.mark.slow  # four commands end to end, 4 s: in CI's slow pass
def test_train_info_forecast_and_backtest_commands(tmp_path, capsys):
    path = tmp_path / "prices.csv"
    path.write_text("Close\n" + "".join(f"{p}\n" for p in 30 * np.exp(np.cumsum(garch_returns(300)))), "utf-8")
    out = tmp_path / "pool"
    members = "random_walk,garch-t,linear_ar"
    code, text, err = cli(
        ["train", "--data", str(path), "--model", "pool", "--members", members, "--out", str(out)], capsys
    )
    assert code == 0, err
    assert "held-out 60 values" in text
    code, text, _ = cli(["info", str(out)], capsys)
    weights = {line.split()[1][:-1]: float(line.split()[3]) for line in text.splitlines() if line.startswith("member")}
    assert code == 0 and set(weights) == set(members.split(",")) and sum(weights.values()) == pytest.approx(1, abs=2e-3)
    code, text, _ = cli(["forecast", str(out), "--data", str(path), "--horizon", "3", "--samples", "200"], capsys)
    rows = [line.split(",") for line in text.splitlines()[2:5]]
    assert code == 0 and [r[0] for r in rows] == ["1", "2", "3"]
    assert all(float(r[1]) < float(r[2]) < float(r[3]) for r in rows)  # q0.1 < median < q0.9, widening around it
    code, text, _ = cli(
        [
            "backtest",
            "--data",
            str(path),
            "--models",
            "random_walk,garch,pool",
            "--folds",
            "2",
            "--samples",
            "10",
            "--json",
            "--no-progress",
            "--pool-prior",
            "3",
        ],
        capsys,
    )
    result = json.loads(text)
    chosen = result["results"][2]["pool"][0]
    assert code == 0 and set(chosen["weights"]) == {"random_walk", "garch"}
    assert chosen["prior"] == 3 and min(chosen["weights"].values()) > 0  # the prior keeps every member in
    code, _, err = cli(["train", "--data", str(path), "--model", "pool", "--members", "random_walk,arima"], capsys)
    assert code == 1 and "--members: unknown member arima" in err
    code, _, err = cli(["train", "--data", str(path), "--model", "gru", "--members", "random_walk"], capsys)
    assert code == 1 and "--members: options of --model pool only" in err
    code, text, err = cli(
        ["train", "--data", str(path), "--model", "pool", "--members", members, "--pool-prior", "5", "--out", str(out)]
        + ["--overwrite"],
        capsys,
    )
    assert code == 0 and "prior 5" in text, err
    code, _, err = cli(["train", "--data", str(path), "--model", "pool", "--pool-prior", "0.5"], capsys)
    assert code == 1 and len(err.strip().splitlines()) == 1 and "prior must be a number of at least 1" in err
