"""Continuous heads against torch.distributions: NLL, mean, quantiles, sampling, and the change of scale."""

import math

import numpy as np
import pytest
import torch
from conftest import relative_error

from seqlab.distributions import Gaussian, GaussianMixture, LogTransformed, StudentT, continuous_head

torch.manual_seed(0)


def random_params(head, n=64):
    params = torch.randn(n, head.num_params, dtype=torch.float64)
    if isinstance(head, (Gaussian, StudentT)):
        params[:, 1] = params[:, 1] * 0.5  # log sigma in a sane range
    return params


def reference(head, params):
    """The same distribution built from torch.distributions (not our code)."""
    D = torch.distributions
    if isinstance(head, Gaussian):
        return D.Normal(params[:, 0], params[:, 1].exp())
    if isinstance(head, StudentT):
        nu = 2 + torch.nn.functional.softplus(params[:, 2])
        return D.StudentT(nu, params[:, 0], params[:, 1].exp())
    K = head.components
    logits, mu, log_sigma = params[:, :K], params[:, K : 2 * K], params[:, 2 * K :]
    return D.MixtureSameFamily(D.Categorical(logits=logits), D.Normal(mu, log_sigma.exp()))


HEADS = [Gaussian(), StudentT(), GaussianMixture(1), GaussianMixture(4)]


@pytest.mark.parametrize("head", HEADS, ids=lambda h: f"{h.kind}{getattr(h, 'components', '')}")
def test_nll_and_mean_match_torch_distributions(head):
    params = random_params(head)
    x = torch.randn(64, dtype=torch.float64) * 2
    dist = reference(head, params)
    assert relative_error(head.nll(params, x), -dist.log_prob(x)) < 1e-12
    assert relative_error(head.mean(params), dist.mean) < 1e-12


@pytest.mark.parametrize("head", HEADS, ids=lambda h: f"{h.kind}{getattr(h, 'components', '')}")
def test_quantiles_are_where_the_reference_cdf_says(head):
    params = random_params(head, 16)
    dist = reference(head, params)
    draws = dist.sample((400_000,)) if isinstance(head, StudentT) else None  # (N, 16): torch has no t CDF
    for q in (0.05, 0.25, 0.5, 0.8, 0.99):
        x = head.quantile(params, q)
        if draws is not None:  # check against 400k of torch's own draws instead
            assert ((draws <= x).double().mean(0) - q).abs().max() < 0.005
        else:
            assert (dist.cdf(x) - q).abs().max() < 1e-9


@pytest.mark.parametrize("head", HEADS, ids=lambda h: f"{h.kind}{getattr(h, 'components', '')}")
def test_samples_follow_the_distribution(head):
    params = random_params(head, 4)
    generator = torch.Generator().manual_seed(1)
    draws = head.sample(params.expand(50_000, *params.shape), generator=generator)  # (N, 4)
    for q in (0.1, 0.5, 0.9):
        assert ((draws <= head.quantile(params, q)).double().mean(0) - q).abs().max() < 0.01
    same = head.sample(params.expand(10, *params.shape), generator=torch.Generator().manual_seed(1))
    again = head.sample(params.expand(10, *params.shape), generator=torch.Generator().manual_seed(1))
    assert torch.equal(same, again)


@pytest.mark.parametrize("head", HEADS, ids=lambda h: f"{h.kind}{getattr(h, 'components', '')}")
def test_rescale_is_the_change_of_variables(head):
    """X' = l + s X has density p(x) / s: the models predict standardised values and rescale them."""
    params = random_params(head)
    x = torch.randn(64, dtype=torch.float64)
    location, scale = 3.0, 0.25
    moved = head.rescale(params, torch.tensor(location), torch.tensor(scale))
    assert relative_error(head.nll(moved, location + scale * x), head.nll(params, x) + math.log(scale)) < 1e-12
    assert relative_error(head.quantile(moved, 0.3), location + scale * head.quantile(params, 0.3)) < 1e-9


@pytest.mark.parametrize("base", HEADS, ids=lambda h: f"{h.kind}{getattr(h, 'components', '')}")
def test_log_transformed_head_is_torch_exp_transform(base):
    """exp of the base's draws: its density is torch's TransformedDistribution(base, ExpTransform) (LogNormal for
    a Gaussian), its quantiles exp of the base's, its CDF the base's at log x; scaling X moves log X."""
    head, params = LogTransformed(base), random_params(base)
    x = torch.rand(64, dtype=torch.float64) * 5 + 0.01
    dist = torch.distributions.TransformedDistribution(reference(base, params), torch.distributions.ExpTransform())
    assert relative_error(head.nll(params, x), -dist.log_prob(x)) < 1e-12
    assert relative_error(head.quantile(params, 0.3), base.quantile(params, 0.3).exp()) < 1e-12
    assert relative_error(head.cdf(params, x), base.cdf(params, x.log())) < 1e-12
    assert torch.isinf(head.nll(params[:2], torch.tensor([0.0, -1.0], dtype=torch.float64))).all()
    assert (head.cdf(params[:2], torch.tensor([0.0, -1.0], dtype=torch.float64)) == 0).all()
    moved = head.rescale(params, 0.0, 4.0)
    assert relative_error(head.nll(moved, 4.0 * x), head.nll(params, x) + math.log(4.0)) < 1e-12
    with pytest.raises(ValueError, match="scaled, not shifted"):
        head.rescale(params, 1.0, 1.0)
    if isinstance(base, Gaussian):
        lognormal = torch.distributions.LogNormal(params[:, 0], params[:, 1].exp())
        assert relative_error(head.mean(params), lognormal.mean) < 1e-12
    else:
        with pytest.raises(ValueError, match="no mean for a log-"):
            head.mean(params)
    draws = head.sample(params[:4].expand(20_000, 4, base.num_params), generator=torch.Generator().manual_seed(2))
    assert (draws > 0).all()
    assert ((draws <= head.quantile(params[:4], 0.7)).double().mean(0) - 0.7).abs().max() < 0.015


def test_student_t_has_heavier_tails_than_the_gaussian_it_matches():
    t_params = torch.tensor([[0.0, 0.0, -3.0]], dtype=torch.float64)  # nu close to 2
    g_params = torch.tensor([[0.0, 0.0]], dtype=torch.float64)
    far = torch.tensor([8.0], dtype=torch.float64)
    assert StudentT().nll(t_params, far) < Gaussian().nll(g_params, far)


def test_bad_head_options():
    with pytest.raises(ValueError, match="unknown head 'cauchy'"):
        continuous_head("cauchy")
    with pytest.raises(ValueError, match="at least 1 component"):
        GaussianMixture(0)
    with pytest.raises(ValueError, match="temperature"):
        Gaussian().sample(torch.zeros(2), temperature=0)
    assert np.isclose(float(continuous_head("mixture", 5).num_params), 15)
