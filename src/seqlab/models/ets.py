"""``ETS``: exponential smoothing as a ``SequenceModel``, the latent AR model with a fixed linear Net.

Level, trend and season are the latent state ``H_t``, updated from ``H_{t-1}`` and the last value; the head is a
Gaussian with mean ``mu_t`` and standard deviation ``sigma`` (additive error) or ``|mu_t| sigma`` (multiplicative
error). The equations, the filter and the likelihood are in ``ets_state`` (its log-likelihood equals statsmodels'
``ETSModel.loglike`` at the same parameters), the fit and the automatic choice of the form by AICc in
``ets_fit``.

The state starts at the fitted ``H_0``, before the first training value: ``log_prob(x)`` and ``forecast(context,
...)`` read ``x`` and ``context`` as series that start where the training series started (the training series
itself, or it continued), as every latent model here does.

Example::

    >>> y = 100 + 10 * np.sin(2 * np.pi * np.arange(120) / 12) + np.random.default_rng(0).normal(0, 1, 120)
    >>> model = ETS(ETSConfig("ZZZ", period=12)).fit(y)  # every admissible form, the least AICc kept
    >>> model.forecast(y, 12).quantiles[0.9].shape
    (12,)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from seqlab.base import ConformanceCase, SequenceModel
from seqlab.data.arrays import as_series
from seqlab.distributions import Gaussian
from seqlab.errors import SeqlabError
from seqlab.models import ets_fit
from seqlab.models.ets_fit import ETSFit
from seqlab.models.ets_state import (
    SEASON_UPDATES,
    ETSForm,
    ETSParams,
    check_params,
    linear_forecast,
    run_filter,
    scale_of,
    simulate,
    starred,
)

State = tuple[float, float, np.ndarray]  # (level, slope, seasons (m,) oldest first)


@dataclass
class ETSConfig:
    model: str = "ZZZ"  # error (A, M), trend (N, A, Ad), season (N, A, M); Z: chosen by AICc (R's forecast::ets)
    period: int = 1  # m, the season's length in values (12 monthly, 4 quarterly); 1: no season
    # how a multiplicative season moves: statsmodels' (y_t / l_t, gamma*) or Hyndman et al.'s, R's and
    # statsforecast's ("hyndman": y_t / (l_{t-1} + phi b_{t-1}), gamma); ets_state's docstring, docs/panels.md
    season_update: str = "statsmodels"
    # the parameter region: "both", R's forecast::ets's default (the usual box, 0 < beta < alpha < 1,
    # 0 < gamma < 1 - alpha, 0.8 <= phi <= 0.98, and a seasonal form admissible, ets_fit.admissible), or "usual"
    # (the box alone, seqlab's region before issue 29's analysis; statsmodels' with phi in [0.8, 0.98])
    bounds: str = "both"
    # beta (the slope's smoothing, Hyndman et al.'s) at most this in every trended form: R's upper[2],
    # statsforecast's upper[1]; None: no cap beyond the region, seqlab's fit before the cap. 0.02: better on the
    # held-out parts of M1 and Tourism, monthly and quarterly, on balance (docs/panels.md, "The parameter region")
    beta_max: float | None = 0.02

    def validate(self) -> None:
        ets_fit.parse_spec(self.model)
        if self.bounds not in ets_fit.BOUNDS:
            raise SeqlabError(f"ETS bounds must be one of {', '.join(ets_fit.BOUNDS)}; got {self.bounds!r}")
        ets_fit.check_beta_max(self.beta_max)
        if self.season_update not in SEASON_UPDATES:
            raise SeqlabError(
                f"ETS season_update must be one of {', '.join(SEASON_UPDATES)}; got {self.season_update!r}"
            )
        if isinstance(self.period, bool) or not isinstance(self.period, (int, np.integer)) or self.period < 1:
            raise SeqlabError(f"ETS period must be a positive integer (1: no season), got {self.period!r}")
        season = self.model[-1]
        if season in ("A", "M") and self.period < 2:
            raise SeqlabError(f"ETS {self.model} has a season: give its length, period >= 2 (got {self.period})")


class ETS(SequenceModel):
    """Error, trend and season state-space model (see the module docstring); ``step`` returns the Gaussian head's
    ``(mu, log sd)`` (2,)."""

    kind = "ets"
    head = Gaussian()
    config_class = ETSConfig

    def __init__(self, config: ETSConfig | None = None) -> None:
        self.config = config or ETSConfig()
        self.config.validate()
        self.form: ETSForm | None = None  # the fitted (or chosen) form
        self.params: ETSParams | None = None
        self.training_result: ETSFit | None = None

    @classmethod
    def with_params(cls, form: ETSForm | str, params: ETSParams, period: int = 1) -> ETS:
        """A model at given parameters (no fit): to score, stream or forecast a known ETS process."""
        form = ETSForm.parse(form) if isinstance(form, str) else form
        model = cls(ETSConfig(form.name, period, form.season_update))
        if len(params.season) != (period if form.has_season else 1):
            raise SeqlabError(f"ETS {form.name}, period {period}: expected {period} seasons, got {len(params.season)}")
        check_params(form, params)
        model.form, model.params = form, params
        return model

    def _check_fitted(self) -> tuple[ETSForm, ETSParams]:
        if self.form is None or self.params is None:
            raise SeqlabError("ETS is not fitted yet: call fit(series) first")
        return self.form, self.params

    # -- fitting ---------------------------------------------------------------------------------------------------
    def fit(self, train, valid=None) -> ETS:
        """Maximum likelihood for each admissible form the config allows, the one of least AICc kept
        (``ets_fit.select``); ``valid`` is not used."""
        y = as_series(train, model="ETS", source="training series")
        c = self.config
        self.form, self.params, self.training_result = ets_fit.select(
            y, c.model, c.period, c.season_update, c.bounds, c.beta_max
        )
        return self

    # -- the fitted model as a SequenceModel -------------------------------------------------------------------
    def filter(self, data) -> tuple[np.ndarray, np.ndarray]:
        """One-step means and standard deviations ``(mu (T,), sd (T,))`` of every value given the ones before."""
        form, params = self._check_fitted()
        y = as_series(data, model="ETS")
        mu, _ = run_filter(form, params, y)
        return mu, scale_of(form, mu, params.sigma)

    def log_prob(self, x) -> torch.Tensor:
        """``log N(x_t; mu_t, sd_t^2)`` for t = 1..T (T,); their sum at sigma's maximum is statsmodels' loglike."""
        mu, sd = self.filter(x)
        y = torch.from_numpy(as_series(x, model="ETS"))
        return -self.head.nll(_head_params(mu, sd), y)

    def initial_state(self) -> State:
        _, params = self._check_fitted()
        return params.level, params.slope, params.season.copy()

    def step(self, x_prev, state: State):
        """``x_prev`` (``None`` at the start) in: the state moves by one value; the next value's ``(mu, log sd)``
        out."""
        form, params = self._check_fitted()
        if x_prev is not None:
            _, state = run_filter(form, params, np.array([float(x_prev)]), state)
        mean = _next_mean(form, params, state)
        sd = scale_of(form, np.array([mean]), params.sigma)
        return _head_params(np.array([mean]), sd)[0], state

    def batch_state(self, state: State, num_paths: int) -> tuple:
        """``state`` (``step``'s) copied for ``num_paths`` paths that ``batch_step`` moves together: level and
        slope (S,), the seasons (S, m) as a ring and the ring's position of the oldest."""
        level, slope, season = state
        season = np.tile(np.asarray(season, dtype=np.float64), (num_paths, 1))
        return np.full(num_paths, float(level)), np.full(num_paths, float(slope)), season, 0

    def batch_step(self, x_prev: torch.Tensor | None, state: tuple) -> tuple[torch.Tensor, tuple]:
        """``step`` for S paths at once (the pool's sample paths): ``x_prev`` (S,) into ``state``
        (``batch_state``'s, moved in place); the next values' ``(mu, log sd)`` (S, 2) out, as ``step`` gives
        them path by path (the filter's equations, ``ets_state.recursion``, over arrays)."""
        form, p = self._check_fitted()
        level, slope, season, j = state
        alpha, beta_star, gamma_star = starred(p)
        multiplicative = form.season == "M"
        if x_prev is not None:
            y = np.asarray(x_prev, dtype=np.float64)
            s = season[:, j]
            b = p.phi * slope
            base = level + b
            with np.errstate(divide="ignore", invalid="ignore"):
                if multiplicative:
                    new_level = alpha * (y / s) + (1.0 - alpha) * base
                    if form.hyndman_season:
                        gamma = gamma_star * (1.0 - alpha)
                        season[:, j] = gamma * (y / base) + (1.0 - gamma) * s
                    else:
                        season[:, j] = gamma_star * (y / new_level) + (1.0 - gamma_star) * s
                else:
                    new_level = alpha * (y - s) + (1.0 - alpha) * base
                    season[:, j] = gamma_star * (y - new_level) + (1.0 - gamma_star) * s
            if multiplicative and ((s == 0) | (new_level == 0)).any():  # where the path-by-path filter stops
                raise SeqlabError(f"ETS {form.name}: a seasonal factor or level reached 0; the model is undefined here")
            slope = beta_star * (new_level - level) + (1.0 - beta_star) * b
            level = new_level
            j = j + 1 if j + 1 < season.shape[1] else 0
        base = level + p.phi * slope
        mean = base * season[:, j] if multiplicative else base + season[:, j]
        return _head_params(mean, scale_of(form, mean, p.sigma)), (level, slope, season, j)

    def state_after(self, context) -> State:
        """``H_T``, the state after filtering ``context`` (T,) from ``H_0``: what forecasts start from."""
        form, params = self._check_fitted()
        y = as_series(context, model="ETS", source="context")
        return run_filter(form, params, y)[1]

    @torch.no_grad()
    def sample_paths(self, context, horizon, num_samples, temperature=1.0, seed=None) -> torch.Tensor:
        """(S, horizon) paths after ``context`` (T,): the context filtered in one pass, then all S paths
        simulated together (``ets_state.simulate``), the noise scaled by ``temperature``."""
        form, params = self._check_fitted()
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        noise = temperature * torch.randn(num_samples, horizon, generator=generator, dtype=torch.float64)
        return torch.from_numpy(simulate(form, params, self.state_after(context), noise.numpy()))

    def closed_form_forecast(self, context: np.ndarray, horizon: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Exact ``(mean, sd)`` for the linear forms (additive error, no multiplicative season); None otherwise."""
        form, params = self._check_fitted()
        return linear_forecast(form, params, self.state_after(context), horizon) if form.linear else None

    def point_forecast(self, context, horizon: int) -> np.ndarray:
        """The forecast equation with every future error at 0 (horizon,): the point forecast of the M-competitions'
        ETS (R's forecast, statsmodels' ``forecast``); the mean for the linear forms."""
        form, params = self._check_fitted()
        return simulate(form, params, self.state_after(context), np.zeros((1, horizon)))[0]

    # -- persistence -------------------------------------------------------------------------------------------
    def to_config(self) -> dict:
        form, _ = self._check_fitted()
        fit = asdict(self.training_result) if self.training_result is not None else None  # None: given parameters
        return {"config": asdict(self.config), "form": form.name, "fit": fit}

    @classmethod
    def from_config(cls, config: dict) -> ETS:
        model = cls(ETSConfig(**config["config"]))
        model.form = ETSForm.parse(config["form"], model.config.season_update)
        model.training_result = ETSFit(**config["fit"]) if config["fit"] is not None else None
        return model

    def state_dict(self) -> dict[str, torch.Tensor]:
        _, params = self._check_fitted()
        return {
            "smoothing": torch.from_numpy(params.smoothing()),  # alpha, beta, gamma, phi, sigma
            "initial_state": torch.from_numpy(params.initial_state()),  # level, slope, seasons (m,)
        }

    def load_state_dict(self, tensors: dict[str, torch.Tensor]) -> None:
        form = self.form
        m = self.config.period if form is not None and form.has_season else 1
        shapes = {"smoothing": (5,), "initial_state": (2 + m,)}
        if set(tensors) != set(shapes) or any(tuple(tensors[n].shape) != s for n, s in shapes.items()):
            raise RuntimeError(f"expected smoothing of shape (5,) and initial_state of shape ({2 + m},)")
        alpha, beta, gamma, phi, sigma = tensors["smoothing"].double().tolist()
        state = tensors["initial_state"].double().numpy().copy()
        params = ETSParams(alpha, beta, gamma, phi, float(state[0]), float(state[1]), state[2:], sigma)
        try:
            check_params(form, params)
        except SeqlabError as e:
            raise RuntimeError(str(e)) from None
        self.params = params

    @classmethod
    def conformance_cases(cls) -> list[ConformanceCase]:
        return [
            ConformanceCase("chosen by AICc", "series", lambda y: cls()),
            ConformanceCase("AAdN", "series", lambda y: cls(ETSConfig("AAdN"))),
            ConformanceCase("AAA, period 4", "series", lambda y: cls(ETSConfig("AAA", period=4))),
        ]

    # -- text --------------------------------------------------------------------------------------------------
    def describe(self) -> str:
        c = self.config
        season = f", period {c.period}" if c.period > 1 else ""
        if self.form is None or self.params is None:
            return f"ETS({c.model}{season}), not fitted"
        p, form, record = self.params, self.form, self.training_result
        values = [f"alpha={p.alpha:.4g}"]
        values += [f"beta={p.beta:.4g}"] * form.has_trend + [f"gamma={p.gamma:.4g}"] * form.has_season
        values += [f"phi={p.phi:.4g}"] * form.damped + [f"sigma={p.sigma:.4g}"]
        fit = ""
        if record is not None:
            fit = f"; log-likelihood {record.loglik:.2f}, AICc {record.aicc:.2f} on {record.nobs} values"
            if len(record.candidates) > 1:
                fit += f", chosen among {len(record.candidates)} forms"
            if not record.converged:
                fit += f"; the optimiser did not converge ({record.message})"
        return f"ETS({form.name}{season}): {', '.join(values)}{fit}"


def _next_mean(form: ETSForm, params: ETSParams, state: State) -> float:
    """The one-step mean from ``state``: the forecast equation, the next season being the oldest."""
    level, slope, season = state
    base = level + params.phi * slope
    return base * float(season[0]) if form.season == "M" else base + float(season[0])


def _head_params(mu: np.ndarray, sd: np.ndarray) -> torch.Tensor:
    """The Gaussian head's ``(mu, log sd)`` (T, 2)."""
    with np.errstate(divide="ignore"):
        return torch.from_numpy(np.stack([mu, np.log(sd)], axis=-1))
