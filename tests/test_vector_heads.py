"""Vector-valued elements: ``FrameHead`` and ``Bernoulli`` against torch.distributions (float64), and models of
frames (``LatentAR.for_frames``): clamping to the training range, temperatures per group, a 2-D series fitted,
forecast and saved. The conformance suite runs a model of frames through the whole contract beside these."""

import math

import numpy as np
import pytest
import torch
from conftest import relative_error

import seqlab
from seqlab.distributions import Bernoulli, FrameHead, Gaussian, GaussianMixture, StudentT
from seqlab.errors import SeqlabError
from seqlab.models.latent_ar import LatentAR, LatentARConfig
from seqlab.models.neural_ar import NeuralAR, NeuralARConfig
from seqlab.training import masked_nll

D = torch.distributions
TINY = {"hidden_size": 8, "embedding_dim": 4}
FIT = {"batch_size": 4, "window": 16, "warmup_steps": 5}


def random_frame_params(head: FrameHead, n: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    params = torch.randn(n, head.num_params, dtype=torch.float64, generator=generator)
    theta, _ = head.split(params)
    if not isinstance(head.per_dimension, GaussianMixture):
        theta[..., 1] *= 0.5  # log sigma in a sane range (split returns a view: params change with it)
    return params


def reference(head: FrameHead, params: torch.Tensor):
    """(continuous dims' distribution, binary dims' distribution) built from torch.distributions, reading the
    parameter layout the head documents: Dc blocks of p parameters, then Db logits."""
    Dc, Db, p = len(head.continuous), len(head.binary), head.per_dimension.num_params
    theta = params[:, : Dc * p].reshape(-1, Dc, p)
    logits = params[:, Dc * p :]
    assert logits.shape[1] == Db
    if isinstance(head.per_dimension, Gaussian):
        continuous = D.Independent(D.Normal(theta[..., 0], theta[..., 1].exp()), 1)
    else:
        K = head.per_dimension.components
        w, mu, log_sigma = theta[..., :K], theta[..., K : 2 * K], theta[..., 2 * K :]
        continuous = D.Independent(D.MixtureSameFamily(D.Categorical(logits=w), D.Normal(mu, log_sigma.exp())), 1)
    return continuous, D.Independent(D.Bernoulli(logits=logits), 1)


HEADS = [
    FrameHead(4, binary=[0], per_dimension=Gaussian()),
    FrameHead(4, binary=[1, 3], per_dimension=GaussianMixture(3)),
    FrameHead(3, binary=[], per_dimension=GaussianMixture(1)),
]
IDS = ["gaussian-binary0", "mixture3-binary13", "mixture1"]


def random_frames(head: FrameHead, n: int) -> torch.Tensor:
    x = torch.randn(n, head.dims, dtype=torch.float64) * 1.5
    x[:, head.binary] = (torch.rand(n, len(head.binary), dtype=torch.float64) < 0.4).double()
    return x


@pytest.mark.parametrize("head", HEADS, ids=IDS)
def test_frame_nll_and_mean_match_torch_distributions(head):
    params = random_frame_params(head, 64)
    x = random_frames(head, 64)
    continuous, binary = reference(head, params)
    expected = -continuous.log_prob(x[:, head.continuous]) - binary.log_prob(x[:, head.binary])
    nll = head.nll(params, x)
    assert nll.shape == (64,), "one NLL per frame"
    assert relative_error(nll, expected) < 1e-12
    mean = head.mean(params)
    assert relative_error(mean[:, head.continuous], continuous.mean) < 1e-12
    if head.binary:
        assert relative_error(mean[:, head.binary], binary.mean) < 1e-12


def test_bernoulli_matches_torch_distributions():
    logits = torch.randn(200, 1, dtype=torch.float64) * 3
    x = (torch.rand(200, dtype=torch.float64) < 0.5).double()
    reference_dist = D.Bernoulli(logits=logits[:, 0])
    assert relative_error(Bernoulli().nll(logits, x), -reference_dist.log_prob(x)) < 1e-12
    cdf_at_0 = reference_dist.log_prob(torch.zeros(200, dtype=torch.float64)).exp()  # P(X = 0)
    for q in (0.1, 0.5, 0.9):  # the smallest x with CDF(x) >= q
        expected = (cdf_at_0 < q).double()
        assert torch.equal(Bernoulli().quantile(logits, q), expected)


@pytest.mark.parametrize("head", HEADS, ids=IDS)
def test_frame_samples_follow_the_marginals(head):
    params = random_frame_params(head, 2, seed=3)
    draws = head.sample(params.expand(40_000, *params.shape), generator=torch.Generator().manual_seed(1))
    assert draws.shape == (40_000, 2, head.dims)
    continuous, binary = reference(head, params)
    for q in (0.1, 0.5, 0.9):  # continuous: the head's quantiles, checked against the reference CDF elsewhere
        below = (draws[..., head.continuous] <= head.quantile(params, q)[..., head.continuous]).double().mean(0)
        assert (below - q).abs().max() < 0.015
    if head.binary:
        assert (draws[..., head.binary].mean(0) - binary.mean).abs().max() < 0.015
        assert set(draws[..., head.binary].unique().tolist()) <= {0.0, 1.0}


@pytest.mark.parametrize("head", HEADS, ids=IDS)
def test_frame_rescale_is_the_change_of_variables_per_dimension(head):
    """X'_d = l_d + s_d X_d on the continuous dimensions: density p(x) / prod s_d; binary ones untouched."""
    params = random_frame_params(head, 32)
    x = random_frames(head, 32)
    location = torch.linspace(-2.0, 3.0, head.dims, dtype=torch.float64)
    scale = torch.linspace(0.25, 4.0, head.dims, dtype=torch.float64)
    moved = head.rescale(params, location, scale)
    y = x.clone()
    y[:, head.continuous] = location[head.continuous] + scale[head.continuous] * x[:, head.continuous]
    log_jacobian = scale[head.continuous].log().sum()
    assert relative_error(head.nll(moved, y), head.nll(params, x) + log_jacobian) < 1e-12


def test_frame_head_takes_a_temperature_per_dimension():
    head = FrameHead(3, binary=[2], per_dimension=Gaussian())
    params = torch.zeros(5000, head.num_params, dtype=torch.float64)
    t = torch.tensor([1.0, 0.1, 1.0], dtype=torch.float64)
    draws = head.sample(params, t, generator=torch.Generator().manual_seed(0))
    sd = draws[:, :2].std(0)
    assert abs(sd[0] - 1.0) < 0.05 and abs(sd[1] - 0.1) < 0.005
    with pytest.raises(SeqlabError, match="temperature"):
        head.sample(params, torch.tensor([1.0, 0.0, 1.0]))
    with pytest.raises(SeqlabError, match="one temperature or 3"):
        head.sample(params, torch.tensor([1.0, 1.0]))
    with pytest.raises(SeqlabError, match="distinct binary"):
        FrameHead(3, binary=[3])


# -- models of frames -------------------------------------------------------------------------------------------


def voice_like_frames(n: int = 400, seed: int = 0) -> np.ndarray:
    """(n, 4): voicing (binary, in runs), a log-f0-like contour, and two envelope-like columns that follow it."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    voiced = (np.sin(t / 9.0) > -0.2).astype(np.float64)
    f0 = 4.6 + 0.1 * np.sin(t / 5.0) + 0.02 * rng.standard_normal(n)
    energy = np.where(voiced > 0, 1.0, -2.0) + 0.1 * rng.standard_normal(n)
    tilt = 0.5 * energy + 0.1 * rng.standard_normal(n)
    return np.stack([voiced, f0, energy, tilt], axis=1)


def frame_model(frames, head="gaussian", **config) -> LatentAR:
    torch.manual_seed(0)
    cfg = LatentARConfig(cell="gru", head=head, components=2, **TINY, **config)
    return LatentAR.for_frames(frames, cfg, binary=[0], groups={"source": [0, 1], "envelope": [2, 3]})


def test_for_frames_standardises_per_dimension_and_keeps_the_range():
    frames = voice_like_frames()
    gapped = np.concatenate([frames[:100], np.full((1, 4), np.nan), frames[100:]])
    model = frame_model(gapped)
    e = model.elements
    assert torch.allclose(e.location.double(), torch.from_numpy(frames.mean(0)), atol=1e-6)
    assert torch.allclose(e.scale.double(), torch.from_numpy(frames.std(0)), atol=1e-6)
    assert torch.allclose(e.low.double(), torch.from_numpy(frames.min(0)), atol=1e-6)
    assert torch.allclose(e.high.double(), torch.from_numpy(frames.max(0)), atol=1e-6)
    lp = model.log_prob(gapped[:20])
    assert lp.shape == (20,) and torch.isfinite(lp).all()
    assert torch.isnan(model.log_prob(gapped[95:105])[5]), "a gap row has no density"


def test_draws_are_clamped_to_the_training_range():
    frames = voice_like_frames()
    model = frame_model(frames)
    head = model.head
    params = torch.zeros(200, head.num_params)
    theta, _ = head.split(params)
    theta[..., 0] = 1e3  # every continuous mean far above the data
    theta[:100, :, 0] = -1e3  # half of them far below
    draws = model.draw(params, generator=torch.Generator().manual_seed(0))
    high, low = model.elements.high, model.elements.low
    assert torch.equal(draws[100:, 1:], high[1:].expand(100, 3)), "clamped at the maximum seen in training"
    assert torch.equal(draws[:100, 1:], low[1:].expand(100, 3)), "clamped at the minimum seen in training"
    assert set(draws[:, 0].tolist()) <= {0.0, 1.0}
    unclamped = head.sample(params, generator=torch.Generator().manual_seed(0))
    assert unclamped[:, 1:].abs().min() > 100, "the head itself would have drawn far outside"
    streamed = model.sample(None, 50, seed=1)  # through step: every draw within the range
    assert streamed.shape == (50, 4) and bool(((streamed >= low) & (streamed <= high)).all())


@pytest.mark.parametrize("head", ["gaussian", "mixture"])
def test_a_group_temperature_changes_only_its_group(head):
    model = frame_model(voice_like_frames(), head=head)
    raw = torch.zeros(4000, model.head.num_params)  # standardised: every continuous dimension at its mean
    theta, logits = model.head.split(raw)
    log_sigma = slice(1, 2) if head == "gaussian" else slice(4, 6)  # (mu, log sigma) or (w1 w2, mu1 mu2, ls1 ls2)
    theta[..., log_sigma] = math.log(0.2)  # each dimension at a fifth of its spread: rarely clamped
    logits[:] = 0.3
    params = model.elements.head_params(raw)

    def draw(temperature):
        return model.draw(params, temperature, generator=torch.Generator().manual_seed(5))

    base = draw(1.0)
    cold = draw({"envelope": 0.2})
    assert torch.equal(base[:, :2], cold[:, :2]), "the source group is untouched"
    assert not torch.equal(base[:, 2:], cold[:, 2:])
    ratio = cold[:, 2:].std(0) / base[:, 2:].std(0)
    assert torch.allclose(ratio, torch.full((2,), 0.2), rtol=0.1)
    cold_source = draw({"source": 0.05})
    assert torch.equal(base[:, 2:], cold_source[:, 2:]), "the envelope group is untouched"
    assert cold_source[:, 0].mean() > base[:, 0].mean() + 0.05, "a cold Bernoulli leans to its likelier value"
    assert torch.equal(draw([1.0, 1.0, 0.2, 0.2]), cold), "a temperature per dimension is the same thing"
    with pytest.raises(SeqlabError, match="no group 'pitch'"):
        draw({"pitch": 0.5})
    with pytest.raises(SeqlabError, match="positive"):
        draw({"source": -1.0})


def test_frames_are_checked_on_the_way_in():
    model = frame_model(voice_like_frames())
    frames = voice_like_frames(10)
    for bad, message in [
        (frames[:, :3], r"takes frames \(T, 4\)"),
        ("some text", "got text"),
        (np.where(np.arange(40).reshape(10, 4) == 13, np.nan, frames), "row 3 is partly NaN"),
        (np.where(np.arange(40).reshape(10, 4) == 9, np.inf, frames), "row 2, column 1 is infinite"),
        (np.where(np.arange(40).reshape(10, 4) == 8, 0.5, frames), "row 2, column 0 is 0.5; a binary column"),
    ]:
        with pytest.raises(SeqlabError, match=message):
            model.log_prob(bad)
    with pytest.raises(SeqlabError, match="covariates must be 0"):
        LatentAR.for_frames(frames, LatentARConfig(**TINY, covariates=1))


def two_column_prices(n: int = 600, seed: int = 1) -> np.ndarray:
    """Two price-like columns that move together: a common AR(1) (persistence 0.9) plus noise of their own."""
    rng = np.random.default_rng(seed)
    common = np.zeros(n)
    for t in range(1, n):
        common[t] = 0.9 * common[t - 1] + rng.standard_normal()
    returns = np.stack([common + 0.3 * rng.standard_normal(n), common + 0.3 * rng.standard_normal(n)], axis=1)
    return 0.01 * returns


@pytest.mark.parametrize("family", ["latent_ar", "neural_ar"])
def test_a_two_column_series_fits_forecasts_and_round_trips(family, tmp_path):
    """The same heads model several price columns jointly: training beats the i.i.d. start (each column's
    mean and spread, the zero-initialised head), forecasts come per column, and a saved model scores the same."""
    series = two_column_prices()
    train, valid = series[:500], series[500:]
    torch.manual_seed(0)
    if family == "latent_ar":
        model = LatentAR.for_frames(train, LatentARConfig(cell="lstm", **TINY))
    else:
        model = NeuralAR.for_frames(train, NeuralARConfig(window=4, hidden_size=16, num_layers=1, embedding_dim=4))
    before = float(model.log_prob(valid).mean())
    model.fit(train, valid, steps=120, lr=1e-2, eval_every=40, **FIT)
    after = float(model.log_prob(valid).mean())
    # both columns follow a persistent common part: given the past of both, each column's variance falls from
    # about 5.3 to 1.1 (in units of the noise), about 0.8 nats per column for the ideal model over i.i.d.
    assert after > before + 0.8, (before, after)
    assert model.log_prob(valid).shape == (100,)

    forecast = model.forecast(valid[:50], horizon=3, num_samples=64, quantiles=(0.1, 0.5, 0.9), seed=0)
    assert forecast.samples.shape == (64, 3, 2) and forecast.mean.shape == (3, 2)
    assert all(forecast.quantiles[q].shape == (3, 2) for q in (0.1, 0.5, 0.9))
    assert np.all(forecast.quantiles[0.1] <= forecast.quantiles[0.9])
    assert forecast.samples.min() >= train.min() - 1e-7 and forecast.samples.max() <= train.max() + 1e-7

    seqlab.save(model, tmp_path / "m")
    loaded = seqlab.load(tmp_path / "m")
    assert type(loaded) is type(model) and loaded.to_config() == model.to_config()
    assert loaded.to_config()["frames"] == {"dims": 2, "binary": [], "groups": {}}
    assert torch.equal(loaded.log_prob(valid), model.log_prob(valid))
    for name in ("location", "scale", "low", "high"):
        assert torch.equal(getattr(loaded.elements, name), getattr(model.elements, name))


def test_a_saved_model_of_frames_keeps_its_groups_and_samples_the_same(tmp_path):
    frames = voice_like_frames()
    model = frame_model(frames, head="mixture")
    model.fit(frames, steps=10, eval_every=10, **FIT)
    seqlab.save(model, tmp_path / "m")
    loaded = seqlab.load(tmp_path / "m")
    assert loaded.elements.layout == model.elements.layout
    assert "frames of 4 (1 binary), mixture x 2 head per dimension" in loaded.describe()
    t = {"source": 0.7, "envelope": 0.9}
    assert torch.equal(loaded.sample(None, 20, temperature=t, seed=4), model.sample(None, 20, temperature=t, seed=4))
    assert math.isfinite(float(loaded.log_prob(frames[:50]).sum()))


def test_student_t_per_dimension_works_too():
    frames = two_column_prices(200)
    model = LatentAR.for_frames(frames, LatentARConfig(**TINY, head="studentt"))
    assert isinstance(model.head.per_dimension, StudentT)
    assert model.log_prob(frames[:10]).shape == (10,)
    assert model.forecast(frames[:20], 2, num_samples=8).samples.shape == (8, 2, 2)


def test_input_noise_perturbs_training_inputs_only():
    frames = voice_like_frames(200)
    noisy = frame_model(frames, input_noise=0.3)
    clean = frame_model(frames)
    clean.load_state_dict(noisy.state_dict())
    x = torch.from_numpy(frames[:20]).float()[None]
    noisy.train()
    clean.train()
    assert not torch.equal(noisy.elements(x), clean.elements(x)), "training mode: noise on the inputs"
    assert torch.equal(noisy.elements(x[:, :1] * np.nan), clean.elements(x[:, :1] * np.nan)), "not on the padding"
    assert torch.equal(noisy.log_prob(frames[:20]), clean.log_prob(frames[:20])), "scoring runs without noise"
    fits = [frame_model(frames, input_noise=0.3).fit(frames, steps=4, eval_every=4, **FIT) for _ in range(2)]
    first, second = fits[0].state_dict(), fits[1].state_dict()
    assert all(torch.equal(first[name], second[name]) for name in first), "seeded: the same noise each run"
    with pytest.raises(SeqlabError, match="input_noise"):
        LatentAR.for_frames(frames, LatentARConfig(**TINY, input_noise=-0.1))


def test_the_training_loss_skips_gap_frames():
    """masked_nll over frames (B, T, D): the mean NLL of the frames without NaN; a gap row adds nothing, and
    its gradient is finite (NaN times a zero gradient would still be NaN)."""
    head = HEADS[1]
    params = random_frame_params(head, 6).reshape(2, 3, -1).requires_grad_(True)
    target = random_frames(head, 6).reshape(2, 3, -1)
    target[1, 1] = float("nan")
    loss = masked_nll(head, params, target)
    known = [(0, 0), (0, 1), (0, 2), (1, 0), (1, 2)]
    expected = torch.stack([head.nll(params[b, t], target[b, t]) for b, t in known]).mean()
    assert relative_error(loss.detach(), expected.detach()) < 1e-12
    loss.backward()
    assert torch.isfinite(params.grad).all() and bool((params.grad[1, 1] == 0).all())
    gapped = np.concatenate([voice_like_frames(150), np.full((1, 4), np.nan), voice_like_frames(150, seed=1)])
    model = frame_model(gapped).fit(gapped, steps=6, eval_every=3, **FIT)
    assert all(math.isfinite(record["train_nll"]) for record in model.training_result.history)
