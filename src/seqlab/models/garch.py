"""``GARCH``: the econometric latent AR model of volatility, with a fixed Net (Bollerslev 1986).

The notes' latent AR model ``H_t = Net(H_{t-1}, x_{t-1})``, ``x_t ~ P(x_t | x_{t-1}, H_t)``, with the conditional
variance as the latent state and a Net of a handful of parameters, composed of three parts:

    x_t = mu_t + e_t,      e_t = sigma_t z_t                                      mean     (garch_likelihood.Mean)
    mu_t = 0  |  mu  |  c + sum_{i=1..k} phi_i x_{t-i}                            zero, constant, AR(k)
    sigma2_t = GARCH / GJR / GARCH-X / EGARCH recursion on e_<t                   process  (volatility.py)
    z_t ~ D(0, 1) i.i.d.: normal, Student-t or Hansen's skewed t                  noise    (noise.py)

fitted by maximum likelihood exactly as the ``arch`` package fits ``arch_model`` (``garch_fit.fit``), so
parameters and log-likelihoods agree with it. GARCH-X (``vol="garchx"``) adds ``delta x_{t-1}`` to the
variance equation, ``x`` a measured variance given beside each value (for example the day's Parkinson range,
``(ln High - ln Low)^2 / (4 ln 2)``): its elements are rows ``(value, x)`` (``num_covariates = 1``), its
likelihood is that of the values given the ``x`` before them, and beyond the data a forecast carries the last
``x`` forward (it has no model of ``x``), as the neural models do with their covariates.

Streaming: the state is the last ``k`` values, the process's lags (what its recursion reads of the past) and the
last ``x``; before the sample, ``e^2`` and ``sigma^2`` are the fitted backcast, the model's H_0 (``x``: its own). With
an AR(k) mean the variance recursion starts at the (k+1)-th value, as arch's; the first k values are predicted
with the first variance and the missing lags at the mean's unconditional level.

Names (``GARCHConfig.from_name``, what ``train --vol`` and ``backtest --models`` take): ``VOLATILITY[-NOISE]``
with VOLATILITY one of ``VOLATILITY_NAMES`` (garch, gjr, egarch, garchx, gjrx) and NOISE normal (the
default), t or skewt: ``garch-t``, ``egarch-skewt``, ``garchx-t``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from seqlab.base import ConformanceCase, SequenceModel
from seqlab.data.arrays import as_series
from seqlab.errors import SeqlabError
from seqlab.models import garch_fit
from seqlab.models.garch_fit import GARCHFit
from seqlab.models.garch_likelihood import MEANS, Likelihood, Mean
from seqlab.models.noise import NOISES
from seqlab.models.volatility import EGARCHProcess, GARCHProcess

VOLATILITIES = ("garch", "egarch", "garchx")
# the names `train --vol` and `backtest --models` know: gjr is GARCH with one asymmetric lag, an x the range
VOLATILITY_NAMES = {
    "garch": {"vol": "garch"},
    "gjr": {"vol": "garch", "o": 1},
    "egarch": {"vol": "egarch", "o": 1},
    "garchx": {"vol": "garchx"},
    "gjrx": {"vol": "garchx", "o": 1},
}
GARCH_EXAMPLES = ("garch", "garch-t", "gjr-t", "egarch-t", "egarch-skewt", "garchx-t")


@dataclass
class GARCHConfig:
    p: int = 1  # ARCH lags (alpha)
    o: int = 0  # asymmetric lags (gamma): GJR-GARCH, or EGARCH's z term
    q: int = 1  # variance lags (beta)
    vol: str = "garch"  # garch (GJR with o > 0), egarch, or garchx (garch + delta x_{t-1})
    mean: str = "constant"  # zero, constant or ar
    lags: int = 0  # k, the AR order of the mean when mean="ar"
    dist: str = "normal"  # normal, t or skewt (Hansen)

    def validate(self) -> None:
        for name, choices in (("vol", VOLATILITIES), ("mean", MEANS), ("dist", tuple(NOISES))):
            if getattr(self, name) not in choices:
                raise SeqlabError(f"GARCH {name} must be one of {', '.join(choices)}; got {getattr(self, name)!r}")
        for name in ("p", "o", "q", "lags"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value < 0:
                raise SeqlabError(f"GARCH {name} must be a non-negative integer, got {value!r}")
        if self.p + self.o == 0:
            raise SeqlabError("GARCH needs p >= 1 or o >= 1: without shocks the variance never moves")
        if self.mean == "ar" and self.lags < 1:
            raise SeqlabError(f"mean='ar' needs lags >= 1, got {self.lags}")
        if self.mean != "ar" and self.lags:
            raise SeqlabError(f"lags={self.lags} needs mean='ar', got mean={self.mean!r}")

    @classmethod
    def from_options(
        cls, vol: str = "garch", dist: str | None = None, mean: str | None = None, lags: int | None = None
    ) -> GARCHConfig:
        """From the names a user gives: ``vol`` one of ``VOLATILITY_NAMES``; None: the default (``lags`` alone
        implies an AR mean, an AR mean alone one lag)."""
        if vol not in VOLATILITY_NAMES:
            raise SeqlabError(f"unknown volatility {vol!r}; choose from {', '.join(VOLATILITY_NAMES)}")
        fields = dict(VOLATILITY_NAMES[vol])
        if dist is not None:
            fields["dist"] = dist
        if mean is not None:
            fields["mean"] = mean
        if lags is not None:
            fields["lags"] = lags
            fields.setdefault("mean", "ar")
        if fields.get("mean") == "ar" and "lags" not in fields:
            fields["lags"] = 1
        return cls(**fields)

    @classmethod
    def from_name(cls, name: str) -> GARCHConfig | None:
        """``garch``, ``gjr-t``, ``egarch-skewt``, ``garchx-t`` ... (volatility[-noise]) as a config; None for a
        name that is not a GARCH-family name."""
        vol, _, dist = name.partition("-")
        if vol not in VOLATILITY_NAMES or (dist and dist not in NOISES):
            return None
        return cls.from_options(vol, dist or "normal")


class GARCH(SequenceModel):
    """GARCH / GJR / GARCH-X / EGARCH with a zero, constant or AR(k) mean and normal, t or skewed-t noise.

    Shapes: ``log_prob(x (T,)) -> (T,)`` (GARCH-X: ``x (T, 2)``, rows ``(value, exogenous variance)``); ``step``
    returns the head's params ``(P,)``: ``(mu, log sigma)`` (normal), ``(mu, log s, nu_raw)`` (``StudentT`` with
    scale ``s = sigma sqrt((nu-2)/nu)``) or ``(mu, log sigma, eta_raw, lam_raw)`` (``SkewStudentT``).

    Example::

        >>> r = 0.01 * np.random.default_rng(0).standard_t(5, 2000)
        >>> model = GARCH(GARCHConfig(dist="t")).fit(r)
        >>> model.log_prob(r).shape
        torch.Size([2000])
    """

    kind = "garch"

    def __init__(self, config: GARCHConfig | None = None) -> None:
        self.config = config or GARCHConfig()
        self.config.validate()
        c = self.config
        if c.vol == "egarch":
            process = EGARCHProcess(c.p, c.o, c.q)
        else:
            process = GARCHProcess(c.p, c.o, c.q, exogenous=int(c.vol == "garchx"))
        self.likelihood = Likelihood(Mean(c.mean, c.lags), process, NOISES[c.dist]())
        self.head = self.likelihood.noise.head
        self.params: np.ndarray | None = None  # data scale, in the order of ``names``
        self.backcast: float | None = None  # H_0: sigma^2 before the sample (EGARCH: its log)
        self.backcast_x: float | None = None  # GARCH-X: the exogenous variance before the sample
        self.training_result: GARCHFit | None = None

    @property
    def names(self) -> list[str]:
        return self.likelihood.names

    @property
    def process(self):
        return self.likelihood.process

    @property
    def num_covariates(self) -> int:
        return self.process.exogenous

    def _values(self, data, source: str) -> tuple[np.ndarray, np.ndarray | None]:
        """``(y (T,), x (T,) or None)`` from the model's elements: a series, or GARCH-X's rows ``(value, x)``."""
        if not self.process.exogenous or isinstance(data, str):
            return as_series(data, model="GARCH", source=source), None
        rows = data.detach().cpu().numpy() if isinstance(data, torch.Tensor) else np.asarray(data, dtype=np.float64)
        if rows.ndim != 2 or rows.shape[1] != 2:
            raise SeqlabError(
                f"GARCH-X reads rows (value, exogenous variance): expected shape (T, 2), got {rows.shape} ({source})"
            )
        y = as_series(rows[:, 0], model="GARCH-X", source=source)
        return y, as_series(rows[:, 1], model="GARCH-X", source=f"{source}, exogenous variance")

    # -- fitting ---------------------------------------------------------------------------------------------
    def fit(self, train, valid=None, maxiter: int = 200) -> GARCH:
        """Maximum likelihood on ``train`` (``garch_fit.fit``); ``valid`` is not used (no hyper-parameters).
        ``training_result`` records the fit, ``converged`` the optimiser's own verdict."""
        y, x = self._values(train, "training series")
        garch_fit.check_series(y, x, self.likelihood, self.describe_spec())
        estimate = garch_fit.fit(self.likelihood, y, x, maxiter)
        self.params, self.backcast, self.backcast_x = estimate.params, estimate.backcast, estimate.backcast_x
        self.training_result = estimate.record
        return self

    # -- the fitted model as a SequenceModel -----------------------------------------------------------------
    def _check_fitted(self) -> None:
        if self.params is None:
            raise SeqlabError("GARCH is not fitted yet: call fit(returns) first")

    def encode(self, data, *, unknown: str = "error", source: str = "data") -> torch.Tensor:
        """A 1-D float64 series (GARCH-X: rows (value, x)); ``unknown`` is for discrete models."""
        y, x = self._values(data, source)
        return torch.from_numpy(y if x is None else np.stack([y, x], axis=1))

    def decode(self, x: torch.Tensor):
        return x

    def filter(self, data) -> tuple[np.ndarray, np.ndarray]:
        """Conditional means and variances ``(mu (T,), sigma2 (T,))`` of every value given the ones before."""
        self._check_fitted()
        y, x = self._values(data, "data")
        mean, process = self.likelihood.mean, self.process
        k, T = mean.lags, len(y)
        mp, vp, _ = self.likelihood.split(self.params)
        mu = np.zeros(T)
        if len(mp):
            padded = np.concatenate([np.full(k, mean.unconditional(mp)), y])  # missing lags at the mean's level
            X, _ = mean.design(padded)  # (T, 1 + k)
            mu = X @ mp
        e = y[k:] - mu[k:]
        x_prev = garch_fit.lagged(x, self.backcast_x, k) if x is not None else None
        sigma2 = np.empty(T)
        sigma2[k:] = process.variance(vp, e, self.backcast, None, x_prev) if T > k else []
        sigma2[: min(k, T)] = process.step(vp, process.initial(self.backcast), self.backcast_x)  # backcasts only
        return mu, sigma2

    def log_prob(self, x) -> torch.Tensor:
        """``log P(x_t | x_<t)`` for t = 1..T (T,): the head's density at the filtered mean and variance."""
        mu, sigma2 = self.filter(x)
        y = torch.from_numpy(self._values(x, "data")[0])
        return -self.head.nll(self._head_params(mu, sigma2), y)

    def _head_params(self, mu, sigma2) -> torch.Tensor:
        return self.likelihood.noise.head_params(mu, sigma2, self.likelihood.split(self.params)[2])

    # -- streaming: the state is (last k values, the process's lags, last x, values seen) ---------------------
    def initial_state(self) -> tuple:
        self._check_fitted()
        x_last = self.backcast_x if self.process.exogenous else None
        return np.full(self.config.lags, np.nan), self.process.initial(self.backcast), x_last, 0

    def _predict(self, y_lags, vol_lags, x_last) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance of the next value from the last values ``y_lags`` (..., k) newest first (NaN before
        the sample: the mean's level) and the process's lags, broadcasting over leading dims."""
        mean = self.likelihood.mean
        mp, vp, _ = self.likelihood.split(self.params)
        if not len(mp):
            mu = np.zeros(y_lags.shape[:-1])
        else:
            lags = np.where(np.isnan(y_lags), mean.unconditional(mp), y_lags)
            mu = mp[0] + lags @ mp[1:]
        return mu, self.process.step(vp, vol_lags, x_last)

    def _advance(self, state, row):
        """The state after observing ``row`` (a value, or GARCH-X's (value, x)); the recursion starts once k
        values are known."""
        y_lags, vol_lags, x_last, seen = state
        value = float(row[0]) if self.process.exogenous else float(row)
        mu, sigma2 = self._predict(y_lags, vol_lags, x_last)
        if seen >= self.config.lags:
            vol_lags = self.process.push(vol_lags, value - float(mu), float(sigma2))
        if self.config.lags:
            y_lags = np.concatenate([[value], y_lags[:-1]])
        if self.process.exogenous:
            x_last = float(row[1])
        return y_lags, vol_lags, x_last, seen + 1

    def step(self, x_prev, state):
        """``x_prev`` (or ``None`` at the start) in, the next value's head params (P,) and the new state out."""
        self._check_fitted()
        if x_prev is not None:
            state = self._advance(state, x_prev)
        mu, sigma2 = self._predict(*state[:3])
        return self._head_params(float(mu), float(sigma2)), state

    @torch.no_grad()
    def sample_paths(self, context, horizon, num_samples, temperature=1.0, seed=None) -> torch.Tensor:
        """(S, horizon) paths after ``context`` (T,) (GARCH-X: (T, 2), its last x carried forward): the context
        filtered in one pass, then all S paths per step."""
        self._check_fitted()
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        y, x = self._values(context, "context")
        k, S = self.config.lags, num_samples
        mu, sigma2 = self.filter(context) if len(y) else (np.zeros(0), np.zeros(0))
        vol_lags = self.process.initial(self.backcast)
        m = len(vol_lags[0])
        for e_t, s_t in zip((y - mu)[k:][-m:].tolist(), sigma2[k:][-m:].tolist(), strict=True):
            vol_lags = self.process.push(vol_lags, e_t, s_t)
        y_lags = np.tile(_newest_first(y, k), (S, 1))  # (S, k)
        x_last = None if x is None else (float(x[-1]) if len(x) else self.backcast_x)
        seen = len(y)
        paths = torch.empty(S, horizon, dtype=torch.float64)
        for h in range(horizon):
            mean, var = self._predict(y_lags, vol_lags, x_last)  # (S,), (S,) or a float for all
            mean, var = np.broadcast_to(mean, (S,)).copy(), np.broadcast_to(var, (S,)).copy()
            draw = self.head.sample(self._head_params(mean, var), temperature, None, generator).double()
            paths[:, h] = draw
            xs = draw.numpy()
            if seen >= k:
                vol_lags = self.process.push(vol_lags, xs - mean, var)
            if k:
                y_lags = np.concatenate([xs[:, None], y_lags[:, :-1]], axis=1)
            seen += 1
        return paths

    # -- persistence ---------------------------------------------------------------------------------------
    def to_config(self) -> dict:
        self._check_fitted()
        fit = asdict(self.training_result)
        for key in ("params", "bse", "bse_robust"):
            fit.pop(key)  # in the weights
        return {"config": asdict(self.config), "fit": fit}

    @classmethod
    def from_config(cls, config: dict) -> GARCH:
        model = cls(GARCHConfig(**config["config"]))
        model.training_result = GARCHFit(params=[], bse=[], bse_robust=[], **config["fit"])
        return model

    @classmethod
    def conformance_cases(cls) -> list[ConformanceCase]:
        return [
            ConformanceCase("garch(1,1) normal", "series", lambda y: cls()),
            ConformanceCase(
                "gjr-t, ar(1) mean", "series", lambda y: cls(GARCHConfig(o=1, mean="ar", lags=1, dist="t"))
            ),
            ConformanceCase("egarch skew-t", "series", lambda y: cls(GARCHConfig(vol="egarch", o=1, dist="skewt"))),
        ]

    def state_dict(self) -> dict[str, torch.Tensor]:
        self._check_fitted()
        starts = [self.backcast] + ([self.backcast_x] if self.process.exogenous else [])
        return {
            "params": torch.from_numpy(self.params),
            "bse": torch.tensor(self.training_result.bse, dtype=torch.float64),
            "bse_robust": torch.tensor(self.training_result.bse_robust, dtype=torch.float64),
            "backcast": torch.tensor(starts, dtype=torch.float64),
        }

    def load_state_dict(self, tensors: dict[str, torch.Tensor]) -> None:
        K, B = len(self.names), 1 + self.process.exogenous
        shapes = {"params": (K,), "bse": (K,), "bse_robust": (K,), "backcast": (B,)}
        if set(tensors) != set(shapes) or any(tuple(tensors[n].shape) != s for n, s in shapes.items()):
            raise RuntimeError(f"expected params, bse, bse_robust of shape ({K},) and backcast of shape ({B},)")
        self.params = tensors["params"].double().numpy().copy()
        self.backcast = float(tensors["backcast"][0])
        self.backcast_x = float(tensors["backcast"][1]) if self.process.exogenous else None
        if self.training_result is not None:
            self.training_result.params = self.params.tolist()
            self.training_result.bse = tensors["bse"].tolist()
            self.training_result.bse_robust = tensors["bse_robust"].tolist()

    # -- text ------------------------------------------------------------------------------------------------
    def describe_spec(self) -> str:
        c = self.config
        mean = {"zero": "zero mean", "constant": "constant mean", "ar": f"AR({c.lags}) mean"}[c.mean]
        return f"{self.process.describe()}, {mean}, {self.likelihood.noise.describe()} noise"

    def describe(self) -> str:
        if self.params is None:
            return f"{self.describe_spec()}, not fitted"
        values = ", ".join(f"{n}={v:.4g}" for n, v in zip(self.names, self.params, strict=True))
        record = self.training_result
        fit = f"log-likelihood {record.loglik:.2f} on {record.nobs} values"
        if not record.converged:
            fit += f"; the optimiser did not converge ({record.message})"
        return f"{self.describe_spec()}: {values}; {fit}"


def _newest_first(v: np.ndarray, n: int) -> np.ndarray:
    """The last ``n`` entries of ``v``, newest first, NaN-padded where ``v`` is shorter (before the sample)."""
    return np.concatenate([v[::-1][:n], np.full(max(0, n - len(v)), np.nan)])
