"""Forecasting: sample paths through ``step``, quantiles on the price scale, the scores, the random walk."""

import math

import numpy as np
import pytest
import torch

from seqlab.base import SequenceModel
from seqlab.data.dataset import join_series
from seqlab.data.text import Vocabulary
from seqlab.distributions import Gaussian
from seqlab.errors import SeqlabError
from seqlab.metrics import crps_from_samples, forecast_scores, interval_coverage
from seqlab.models import (
    CausalTransformer,
    CausalTransformerConfig,
    LatentAR,
    LatentARConfig,
    LinearAR,
    NeuralAR,
    NeuralARConfig,
)
from seqlab.models.random_walk import RandomWalk
from seqlab.training import masked_nll
from seqlab.transforms import Transform

RNG = np.random.default_rng(0)
AR2 = np.zeros(600)
for t in range(2, 600):
    AR2[t] = 0.6 * AR2[t - 1] - 0.3 * AR2[t - 2] + RNG.standard_normal()
PRICES = 50 * np.exp(np.cumsum(0.01 * RNG.standard_normal(300)))


def continuous_models():
    torch.manual_seed(0)
    return [
        LatentAR.for_series(AR2, LatentARConfig(cell="lstm", hidden_size=8, num_layers=2)),
        NeuralAR.for_series(AR2, NeuralARConfig(window=4, hidden_size=8)),
        CausalTransformer.for_series(AR2, CausalTransformerConfig(context=16, d_model=8, num_heads=2, num_layers=1)),
    ]


@pytest.mark.parametrize("model", continuous_models(), ids=lambda m: type(m).__name__)
def test_batched_paths_equal_stepping_one_path_at_a_time(model):
    """At a vanishing temperature a Gaussian draw is its mean: both samplers must then walk the same path."""
    context = torch.from_numpy(AR2[:50])
    batched = model.sample_paths(context, 6, 3, temperature=1e-9, seed=0)
    stepped = SequenceModel.sample_paths(model, context, 6, 1, temperature=1e-9, seed=0)
    assert batched.shape == (3, 6)
    assert torch.allclose(batched.double(), stepped.expand(3, -1).double(), atol=1e-5)


def test_sample_paths_of_linear_ar_match_its_closed_form():
    """The vectorised sampler behind forecast (LinearAR.sample_paths) against the closed form, and against
    stepping one path at a time through step at a vanishing temperature."""
    model = LinearAR(order=2).fit(AR2)
    mean, se = model.closed_form_forecast(AR2, horizon=4)
    paths = model.sample_paths(torch.from_numpy(AR2), 4, 20_000, seed=1).numpy()
    tolerance = 0.06 * se  # about 4 Monte Carlo standard errors of a 10% quantile from 20,000 draws
    z = 1.2815515655446004  # the standard normal's 90% quantile
    assert np.all(np.abs(np.quantile(paths, 0.1, axis=0) - (mean - z * se)) < tolerance)
    assert np.all(np.abs(np.quantile(paths, 0.9, axis=0) - (mean + z * se)) < tolerance)
    assert np.all(np.abs(paths.mean(axis=0) - mean) < tolerance)
    batched = model.sample_paths(torch.from_numpy(AR2), 5, 2, temperature=1e-9, seed=0)
    stepped = SequenceModel.sample_paths(model, torch.from_numpy(AR2), 5, 1, temperature=1e-9, seed=0)
    assert torch.allclose(batched, stepped.expand(2, -1), rtol=0, atol=1e-7)  # the draws differ by 1e-9 sigma


def test_forecast_comes_back_on_the_price_scale():
    transform = Transform.parse("log_return").fit(PRICES)
    model = LinearAR(order=1).fit(transform.apply(PRICES))
    model.transform = transform
    forecast = model.forecast(PRICES, 3, num_samples=500, seed=0)
    returns = transform.invert(
        model.sample_paths(torch.from_numpy(transform.apply(PRICES)), 3, 500, seed=0).numpy(), PRICES
    )
    assert np.allclose(forecast.samples, returns)
    assert np.all(forecast.samples > 0) and abs(forecast.quantiles[0.5][0] / PRICES[-1] - 1) < 0.01
    assert np.all(forecast.quantiles[0.1] < forecast.quantiles[0.5]) and np.all(
        forecast.quantiles[0.5] < forecast.quantiles[0.9]
    )


def test_forecast_bad_requests():
    model = LinearAR(order=1).fit(AR2)
    model.transform = Transform.parse("log_return")
    with pytest.raises(SeqlabError, match="the context has 1 values; this model needs at least 2"):
        model.forecast([5.0], 3)
    with pytest.raises(SeqlabError, match="horizon and num_samples must be positive"):
        LinearAR(order=1).fit(AR2).forecast(AR2, 0)
    with pytest.raises(SeqlabError, match="quantiles must be in"):
        LinearAR(order=1).fit(AR2).forecast(AR2, 2, quantiles=(0.5, 1.0))
    text_model = LatentAR(Vocabulary.from_text("abc"), LatentARConfig(hidden_size=4))
    with pytest.raises(SeqlabError, match="forecast needs a model of continuous data"):
        text_model.forecast([1.0, 2.0], 3)


def test_crps_and_coverage_against_closed_forms():
    y = np.array([0.3, -1.2, 2.0])
    draws = np.random.default_rng(1).standard_normal((200_000, 1))
    # CRPS of N(0, 1) at y: y (2 Phi(y) - 1) + 2 phi(y) - 1 / sqrt(pi)   (Gneiting & Raftery 2007)
    Phi = 0.5 * (1 + np.vectorize(math.erf)(y / math.sqrt(2)))
    exact = y * (2 * Phi - 1) + 2 * np.exp(-(y**2) / 2) / math.sqrt(2 * math.pi) - 1 / math.sqrt(math.pi)
    assert np.allclose(crps_from_samples(draws, y), exact, atol=5e-3)
    assert np.allclose(crps_from_samples(np.full((10, 3), 0.5), y), np.abs(0.5 - y))  # a point mass: |x - y|
    truth = np.random.default_rng(2).standard_normal(5000)
    paths = np.random.default_rng(3).standard_normal((400, 5000))  # a calibrated forecast of every value
    assert abs(interval_coverage(paths, truth, 0.8) - 0.8) < 0.02
    scores = forecast_scores(paths, truth, naive_mae=float(np.abs(truth).mean()))
    assert abs(scores["coverage_50"] - 0.5) < 0.02 and abs(scores["mase"] - 1) < 0.05


def test_random_walk_is_the_zero_mean_gaussian_of_the_increments():
    returns = np.diff(np.log(PRICES))
    walk = RandomWalk(differenced=True).fit(returns)
    assert walk.sigma == pytest.approx(float(np.sqrt(np.mean(returns**2))))
    expected = torch.distributions.Normal(0.0, walk.sigma).log_prob(torch.from_numpy(returns))
    assert torch.allclose(walk.log_prob(returns), expected)
    levels = RandomWalk(differenced=False).fit(PRICES)
    params, _ = levels.step(PRICES[-1], ())
    assert params[0] == PRICES[-1]


def test_training_skips_the_gaps_between_joined_series():
    head = Gaussian()
    target = torch.tensor([[0.5, float("nan"), -1.0]], dtype=torch.float64)
    params = torch.zeros(1, 3, 2, dtype=torch.float64, requires_grad=True)
    loss = masked_nll(head, params, target)
    loss.backward()
    assert torch.isfinite(params.grad).all() and params.grad[0, 1].abs().sum() == 0
    assert loss.item() == pytest.approx(float(head.nll(params[0, [0, 2]], target[0, [0, 2]]).mean().detach()))
    joined = join_series([AR2[:300], AR2[300:]])
    model = LatentAR.for_series(joined, LatentARConfig(cell="gru", hidden_size=8))
    assert model.fit(joined, joined, steps=5, batch_size=4, window=16) is model
    assert math.isfinite(model.training_result.best_valid_nll)


def covariate_series(n=1500, seed=0):
    """y_t = 0.9 c_{t-1} + small noise, c an AR(1): the covariate is the only way to predict y."""
    rng = np.random.default_rng(seed)
    c = np.zeros(n)
    for t in range(1, n):
        c[t] = 0.7 * c[t - 1] + rng.standard_normal()
    y = np.concatenate([[0.0], 0.9 * c[:-1]]) + 0.1 * rng.standard_normal(n)
    return np.column_stack([y, 100 + 10 * c])  # a covariate on its own scale, standardised by the model


@pytest.mark.parametrize(
    "make",
    [
        lambda x: LatentAR.for_series(x, LatentARConfig(cell="gru", hidden_size=16, covariates=1)),
        lambda x: NeuralAR.for_series(x, NeuralARConfig(window=3, hidden_size=16, covariates=1)),
        lambda x: CausalTransformer.for_series(
            x, CausalTransformerConfig(context=8, d_model=16, num_heads=2, num_layers=1, covariates=1)
        ),
    ],
    ids=["latent_ar", "neural_ar", "transformer"],
)
def test_past_covariates_are_inputs_and_help_when_they_carry_the_signal(make):
    x = covariate_series()
    torch.manual_seed(0)
    model = make(torch.from_numpy(x))
    # log_prob in one pass equals streaming the elements (value and covariate) through step
    elements = torch.from_numpy(x[:40])
    params, state = model.step(None, model.initial_state())
    stepped = []
    for row in elements:
        stepped.append(-model.head.nll(params, row[0]))
        params, state = model.step(row, state)
    assert torch.allclose(model.log_prob(elements).double(), torch.stack(stepped).double(), atol=1e-5)
    torch.manual_seed(0)
    blind = type(model).for_series(x[:, 0], type(model.config)(**{**vars(model.config), "covariates": 0}))
    options = {"steps": 150, "batch_size": 8, "window": 32, "lr": 5e-3}
    model.fit(torch.from_numpy(x[:1200]), **options)
    blind.fit(x[:1200, 0], **options)
    with_covariate = float(-model.log_prob(torch.from_numpy(x[1200:])).mean())
    without = float(-blind.log_prob(x[1200:, 0]).mean())
    assert with_covariate < without - 0.3
    forecast = model.forecast(x[:1200, 0], 2, num_samples=50, covariates=x[:1200, 1:])
    assert forecast.samples.shape == (50, 2)
    with pytest.raises(SeqlabError, match=r"expected covariates of shape \(1200, 1\), got \(0, 0\)"):
        model.forecast(x[:1200, 0], 2)
