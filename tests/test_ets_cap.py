"""ETS's cap on beta (``ETSConfig(beta_max=...)``, ``ets_fit.fit_form(beta_max=...)``): every trended form's fit
keeps beta at or under the cap where the uncapped fit is above it, the cap is saved with the model, bad values are
refused in one line, and no cap gives the fits seqlab gave before the option existed."""

import math

import numpy as np
import pytest
import torch

import seqlab
from seqlab.errors import SeqlabError
from seqlab.models import ETS, ETSConfig
from seqlab.models.ets_fit import fit_form
from seqlab.models.ets_state import ETSForm

TRENDED = ["AAN", "AAdN", "MAN", "MAdN", "AAA", "AAdA", "MAA", "MAdA", "MAM", "MAdM"]
CAP = 0.02

# the fits of commit 4c1f95b (before beta_max) on ``trending()``: form, log-likelihood, alpha, beta, gamma, phi;
# another CPU's rounding may move L-BFGS-B's stopping point a little, hence the tolerances
PREVIOUS_FITS = {
    "ZZZ": ("MAA", -149.20897314055205, 0.5708706870227732, 0.17442200748299574, 0.08578703963716891, 1.0),
    "AAdN": ("AAdN", -175.8140557269657, 0.8674969056388664, 0.8674101559483025, 0.0, 0.9576596841769451),
    "MAdM": ("MAdM", -163.7986662666283, 0.5876394336919967, 0.17087419037443896, 0.08327411195123012, 0.98),
}
LOGLIK_TOLERANCE = 1e-6  # relative
SMOOTHING_TOLERANCE = 1e-4  # absolute


def trending(n: int = 72, m: int = 12) -> np.ndarray:
    """A positive monthly series whose slope wanders (a local linear trend) under a season: the uncapped fit of
    every trended form moves its slope fast (beta 0.17 to 0.87)."""
    rng = np.random.default_rng(7)
    t = np.arange(n)
    slope = np.cumsum(rng.normal(0, 0.6, n))
    return 2000 + np.cumsum(slope) + 8 * np.sin(2 * np.pi * t / m) + rng.normal(0, 1, n)


@pytest.mark.parametrize("name", TRENDED)
def test_every_trended_form_keeps_beta_under_the_cap(name):
    y, form = trending(), ETSForm.parse(name)
    free, free_loglik, _, _ = fit_form(form, y, 12)
    assert free.beta > 5 * CAP  # the cap binds: without it beta is far above
    capped, loglik, converged, message = fit_form(form, y, 12, beta_max=CAP)
    assert converged, message
    assert 0 < capped.beta <= CAP and capped.beta < capped.alpha
    assert capped.beta > 0.9 * CAP  # the optimum on the cap, reached (a barrier there stalled the search)
    assert loglik < free_loglik  # a smaller region
    assert math.isclose(float(ETS.with_params(form, capped, 12).log_prob(y).sum()), loglik, rel_tol=1e-9)


def test_a_cap_above_alpha_leaves_beta_under_alpha():
    """beta <= min(alpha, beta_max): a cap of 0.9 on a fit whose alpha is smaller keeps R's beta < alpha."""
    params, _, converged, _ = fit_form(ETSForm.parse("AAdA"), trending(), 12, beta_max=0.9)
    assert converged and params.alpha < 0.9 and 0 < params.beta < params.alpha


def test_the_automatic_choice_applies_the_cap():
    capped = ETS(ETSConfig("ZZZ", 12, beta_max=CAP)).fit(trending())
    free = ETS(ETSConfig("ZZZ", 12, beta_max=None)).fit(trending())
    assert free.form.has_trend and free.params.beta > CAP
    assert not capped.form.has_trend or capped.params.beta <= CAP
    assert capped.training_result.candidates != free.training_result.candidates


def test_the_default_is_a_cap():
    assert ETSConfig().beta_max == CAP


@pytest.mark.parametrize("cap", [0.05, None])
def test_the_cap_is_saved_with_the_model(tmp_path, cap):
    model = ETS(ETSConfig("MAdM", 12, beta_max=cap)).fit(trending())
    seqlab.save(model, tmp_path / "ets")
    loaded = seqlab.load(tmp_path / "ets")
    assert loaded.config.beta_max == cap and loaded.config == model.config
    assert torch.equal(loaded.log_prob(trending()), model.log_prob(trending()))
    refit = ETS(loaded.config).fit(trending())  # the loaded config fits as the saved one did
    assert refit.params.beta == model.params.beta
    assert (refit.params.beta <= cap) if cap is not None else refit.params.beta > 0.1


def test_a_model_saved_before_the_cap_loads_with_the_default():
    config = ETS(ETSConfig("AAN")).fit(trending()).to_config()
    del config["config"]["beta_max"]
    assert ETS.from_config(config).config.beta_max == ETSConfig().beta_max


@pytest.mark.parametrize("bad", [0, -0.1, 1e-5, 1.5, math.nan, math.inf, "0.1", True])
def test_bad_caps_are_refused_in_one_line(bad):
    with pytest.raises(SeqlabError, match="beta_max") as error:
        ETSConfig("ZZZ", 12, beta_max=bad).validate()
    assert "\n" not in str(error.value)
    with pytest.raises(SeqlabError, match="beta_max"):
        fit_form(ETSForm.parse("AAN"), trending(), 12, beta_max=bad)


@pytest.mark.parametrize("spec", sorted(PREVIOUS_FITS))
def test_no_cap_gives_the_previous_fits(spec):
    form, previous_loglik, *previous = PREVIOUS_FITS[spec]
    model = ETS(ETSConfig(spec, 12, beta_max=None)).fit(trending())
    p = model.params
    assert model.form.name == form
    assert math.isclose(model.training_result.loglik, previous_loglik, rel_tol=LOGLIK_TOLERANCE)
    assert np.allclose([p.alpha, p.beta, p.gamma, p.phi], previous, rtol=0, atol=SMOOTHING_TOLERANCE)
