"""``GARCH``: the econometric latent AR model of volatility, with a fixed Net (Bollerslev 1986).

The notes' latent AR model ``H_t = Net(H_{t-1}, x_{t-1})``, ``x_t ~ P(x_t | x_{t-1}, H_t)``, with the conditional
variance as the latent state and a Net of a handful of parameters:

    x_t = mu_t + e_t,      e_t = sigma_t z_t,      z_t ~ D(0, 1) i.i.d.          (normal, t or skewed t)
    mu_t = 0  |  mu  |  c + sum_{i=1..k} phi_i x_{t-i}                            (mean: zero, constant, AR(k))
    GARCH(p, q), GJR with o > 0:
        H_t = sigma^2_t = omega + sum_{i<=p} alpha_i e^2_{t-i} + sum_{i<=o} gamma_i e^2_{t-i} 1[e_{t-i} < 0]
                          + sum_{j<=q} beta_j sigma^2_{t-j}
        stationary when sum alpha + sum gamma / 2 + sum beta < 1 (omega > 0, alpha >= 0, alpha + gamma >= 0, beta >= 0)
    EGARCH(p, o, q):
        ln sigma^2_t = omega + sum alpha_i (|z_{t-i}| - sqrt(2/pi)) + sum gamma_i z_{t-i} + sum beta_j ln sigma^2_{t-j}
        stationary when sum beta < 1

Fitted by maximum likelihood exactly as the ``arch`` package fits ``arch_model`` (same start values, bounds,
stationarity constraints, backcast and SLSQP), so parameters and log-likelihoods agree with it; the data are
first rescaled by a power of ten into arch's comfortable range (variance in [0.1, 1e4)) and the results mapped
back. Standard errors: the inverse of the numerical Hessian of the log-likelihood (``bse``) and the sandwich
``H^-1 J H^-1`` with ``J`` the outer product of the per-step scores (``bse_robust``, arch's default).

Streaming: the state is the last ``k`` values, the last residuals ``e`` and variances ``sigma^2``; before the
sample, ``e^2`` and ``sigma^2`` are the fitted backcast (``seqlab.models.volatility``), the model's H_0. With an
AR(k) mean the variance recursion starts at the (k+1)-th value, as arch's; the first k values are predicted
with the first variance and the missing lags at the mean's unconditional level.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
from scipy.optimize import minimize

from seqlab.base import ConformanceCase, SequenceModel
from seqlab.data.arrays import as_series
from seqlab.distributions import Gaussian, Head, SkewStudentT, StudentT
from seqlab.errors import SeqlabError
from seqlab.models import volatility as vol

VOLATILITIES = ("garch", "egarch")
MEANS = ("zero", "constant", "ar")
NOISES = ("normal", "t", "skewt")


@dataclass
class GARCHConfig:
    p: int = 1  # ARCH lags (alpha)
    o: int = 0  # asymmetric lags (gamma): GJR-GARCH, or EGARCH's z term
    q: int = 1  # variance lags (beta)
    vol: str = "garch"  # garch (GJR with o > 0) or egarch
    mean: str = "constant"  # zero, constant or ar
    lags: int = 0  # k, the AR order of the mean when mean="ar"
    dist: str = "normal"  # normal, t or skewt (Hansen)

    def validate(self) -> None:
        for name, choices in (("vol", VOLATILITIES), ("mean", MEANS), ("dist", NOISES)):
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


@dataclass
class GARCHFit:
    """What a fit leaves: parameters (data scale) with their standard errors, the log-likelihood, the optimiser."""

    names: list[str]
    params: list[float]
    bse: list[float]  # inverse Hessian
    bse_robust: list[float]  # sandwich
    loglik: float
    nobs: int
    converged: bool
    iterations: int
    message: str
    scale: float  # the data were multiplied by this while fitting
    bounds_active: bool = False  # a variance bound clipped sigma^2 at the optimum (never, on sane data)

    def table(self) -> str:
        columns = zip(self.names, self.params, self.bse_robust, strict=True)
        rows = [f"{n:>10} {v:>14.6g} {s:>12.4g}" for n, v, s in columns]
        return "\n".join([f"{'':>10} {'estimate':>14} {'robust s.e.':>12}", *rows])


class GARCH(SequenceModel):
    """GARCH / GJR / EGARCH with a zero, constant or AR(k) mean and normal, t or skewed-t noise.

    Shapes: ``log_prob(x (T,)) -> (T,)``; ``step`` returns the head's params ``(P,)``: ``(mu, log sigma)``
    (normal), ``(mu, log s, nu_raw)`` (``StudentT`` with scale ``s = sigma sqrt((nu-2)/nu)``) or
    ``(mu, log sigma, eta_raw, lam_raw)`` (``SkewStudentT``).

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
        self.head: Head = {"normal": Gaussian, "t": StudentT, "skewt": SkewStudentT}[self.config.dist]()
        self.params: np.ndarray | None = None  # data scale, in the order of ``names``
        self.backcast: float | None = None  # H_0: sigma^2 before the sample (EGARCH: its log)
        self.result: GARCHFit | None = None

    # -- the parameter vector [mean, volatility, noise] ------------------------------------------------------
    @property
    def num_mean(self) -> int:
        return {"zero": 0, "constant": 1, "ar": 1 + self.config.lags}[self.config.mean]

    @property
    def num_vol(self) -> int:
        c = self.config
        return 1 + c.p + c.o + c.q

    @property
    def names(self) -> list[str]:
        c = self.config
        mean = {"zero": [], "constant": ["mu"], "ar": ["const"] + [f"phi[{i}]" for i in range(1, c.lags + 1)]}
        vol_names = ["omega"] + [f"alpha[{i}]" for i in range(1, c.p + 1)] + [f"gamma[{i}]" for i in range(1, c.o + 1)]
        noise = {"normal": [], "t": ["nu"], "skewt": ["eta", "lambda"]}[c.dist]
        return mean[c.mean] + vol_names + [f"beta[{j}]" for j in range(1, c.q + 1)] + noise

    def _split(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        m, v = self.num_mean, self.num_vol
        return theta[:m], theta[m : m + v], theta[m + v :]

    # -- the pieces ------------------------------------------------------------------------------------------
    def _design(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(X (n, num_mean), target (n,)) with n = T - k: rows [1, y_{t-1}, ..., y_{t-k}] for t = k .. T-1."""
        k, T = self.config.lags, len(y)
        X = np.ones((T - k, self.num_mean))
        for i in range(1, k + 1):
            X[:, i] = y[k - i : T - i]
        return X, y[k:]

    def _variance(self, vp: np.ndarray, e: np.ndarray, b: float, bounds: np.ndarray | None) -> np.ndarray:
        c = self.config
        recursion = vol.egarch_variance if c.vol == "egarch" else vol.garch_variance
        return recursion(vp, e, c.p, c.o, c.q, b, bounds)

    def _noise_loglik(self, dp: np.ndarray, e: np.ndarray, sigma2: np.ndarray) -> np.ndarray:
        if self.config.dist == "t":
            return vol.t_loglik(e, sigma2, float(dp[0]))
        if self.config.dist == "skewt":
            return vol.skewt_loglik(e, sigma2, float(dp[0]), float(dp[1]))
        return vol.normal_loglik(e, sigma2)

    def _loglik(self, theta, X, target, b, bounds) -> np.ndarray:
        """Per-step log-likelihood (n,) of the sample at the parameters ``theta``."""
        mp, vp, dp = self._split(theta)
        e = target - X @ mp if len(mp) else target
        return self._noise_loglik(dp, e, self._variance(vp, e, b, bounds))

    # -- fitting ---------------------------------------------------------------------------------------------
    def fit(self, train, valid=None, maxiter: int = 200, **unused) -> GARCH:
        """Maximum likelihood on ``train`` (a 1-D series); ``valid`` is not used (no hyper-parameters)."""
        c = self.config
        y = as_series(train, model="GARCH", source="training series")
        needed = c.lags + len(self.names) + 2
        if len(y) < needed:
            raise SeqlabError(
                f"{self.describe_spec()} has {len(self.names)} parameters and needs at least {needed} values, "
                f"got {len(y)}"
            )
        spread = float(np.std(y))
        if spread <= 1e-9 * max(float(np.abs(y).max()), 1e-300):
            raise SeqlabError(
                f"the training series is constant or nearly so (standard deviation {spread:.3g}): "
                "GARCH needs returns that move"
            )
        X, target = self._design(y)
        mean_start = np.linalg.lstsq(X, target, rcond=None)[0] if self.num_mean else np.zeros(0)
        e0 = target - X @ mean_start
        scale = _rescale_factor(float(np.var(e0)))
        ys = y * scale
        X, target = self._design(ys)
        mean_start = np.linalg.lstsq(X, target, rcond=None)[0] if self.num_mean else np.zeros(0)
        e0 = target - X @ mean_start
        if float(np.var(e0)) <= 1e-12 * float(np.mean(target**2)):
            raise SeqlabError("the mean model explains the training series exactly: no residual variance to model")
        b = vol.backcast(e0)
        if c.vol == "egarch":
            b = math.log(b)
        bounds_v = vol.variance_bounds(e0)
        vol_start = self._vol_start(e0, b, bounds_v)
        z0 = e0 / np.sqrt(self._variance(vol_start, e0, b, bounds_v))
        theta0 = np.concatenate([mean_start, vol_start, self._noise_start(z0)])
        A, lower = self._constraints()
        box = [(-np.inf, np.inf)] * self.num_mean + self._vol_bounds(e0) + self._noise_bounds()

        def objective(theta):
            return -float(np.sum(self._loglik(theta, X, target, b, bounds_v)))

        opt = minimize(
            objective,
            theta0,
            method="SLSQP",
            bounds=box,
            constraints=[{"type": "ineq", "fun": lambda th: A @ th - lower, "jac": lambda th: A}],
            options={"maxiter": maxiter},
        )
        if opt.status != 0 or not np.isfinite(opt.fun):
            raise SeqlabError(
                f"{self.describe_spec()} did not converge on the training series ({len(y)} values) after "
                f"{opt.nit} iterations: {opt.message} (status {opt.status})"
            )
        theta = opt.x
        mp, vp, _ = self._split(theta)
        e = target - X @ mp if len(mp) else target
        active = bool(np.any(self._variance(vp, e, b, bounds_v) != self._variance(vp, e, b, None)))
        cov, cov_robust = self._covariances(theta, X, target, b, bounds_v)
        J, shift = self._unscale(theta, scale)
        self.params = J @ theta + shift
        self.backcast = b - 2 * math.log(scale) if c.vol == "egarch" else b / scale**2
        self.result = GARCHFit(
            names=self.names,
            params=self.params.tolist(),
            bse=np.sqrt(np.abs(np.diag(J @ cov @ J.T))).tolist(),
            bse_robust=np.sqrt(np.abs(np.diag(J @ cov_robust @ J.T))).tolist(),
            loglik=-float(opt.fun) + len(target) * math.log(scale),  # p(y) = s p_scaled(s y)
            nobs=len(target),
            converged=True,
            iterations=int(opt.nit),
            message=str(opt.message),
            scale=scale,
            bounds_active=active,
        )
        return self

    def _vol_start(self, e: np.ndarray, b: float, bounds: np.ndarray) -> np.ndarray:
        """arch's grid of start values, the best by the Gaussian log-likelihood."""
        c = self.config
        p, o, q = c.p, c.o, c.q
        candidates = []
        if c.vol == "egarch":
            target = math.log(np.mean(e**2))
            for alpha in (0.01, 0.05, 0.1, 0.2):
                for gamma in (-0.1, 0.0, 0.1):
                    for beta in (0.5, 0.7, 0.9, 0.98):
                        sv = (1.0 - beta) * target * np.ones(p + o + q + 1)
                        sv[1 : 1 + p] = alpha / p if p else 0
                        if o:
                            sv[1 + p : 1 + p + o] = gamma / o
                        if q:
                            sv[1 + p + o :] = beta / q
                        candidates.append(sv)
        else:
            target = float(np.mean(e**2))
            for alpha in (0.01, 0.05, 0.1, 0.2):
                for gamma in (0.01, 0.05, 0.1, 0.2):
                    for persistence in (0.5, 0.7, 0.9, 0.98):
                        sv = (1.0 - persistence) * target * np.ones(p + o + q + 1)
                        rest = persistence
                        if p:
                            sv[1 : 1 + p] = alpha / p
                            rest -= alpha
                        if o:
                            sv[1 + p : 1 + p + o] = gamma / o
                            rest -= gamma / 2.0
                        if q:
                            sv[1 + p + o :] = rest / q
                        candidates.append(sv)
        scores = [float(np.sum(vol.normal_loglik(e, self._variance(sv, e, b, bounds)))) for sv in candidates]
        return candidates[int(np.argmax(scores))]

    def _noise_start(self, z: np.ndarray) -> np.ndarray:
        if self.config.dist == "normal":
            return np.zeros(0)
        kurtosis = float(np.mean((z - z.mean()) ** 4) / np.var(z) ** 2)
        nu = max((4.0 * kurtosis - 6.0) / (kurtosis - 3.0) if kurtosis > 3.75 else 12.0, 4.0)
        return np.array([nu]) if self.config.dist == "t" else np.array([nu, 0.0])

    def _vol_bounds(self, e: np.ndarray) -> list[tuple[float, float]]:
        c = self.config
        if c.vol == "egarch":
            ln_v, width = math.log(float(np.mean(e**2))), math.log(10000.0)
            return [(ln_v - width, ln_v + width)] + [(-np.inf, np.inf)] * (c.p + c.o) + [(0.0, float(c.q))] * c.q
        v = float(np.mean(e**2))
        gammas = [(-1.0, 2.0) if i < c.p else (0.0, 2.0) for i in range(c.o)]
        return [(1e-8 * v, 10.0 * v)] + [(0.0, 1.0)] * c.p + gammas + [(0.0, 1.0)] * c.q

    def _noise_bounds(self) -> list[tuple[float, float]]:
        return {"normal": [], "t": [(2.05, 500.0)], "skewt": [(2.05, 300.0), (-1.0, 1.0)]}[self.config.dist]

    def _constraints(self) -> tuple[np.ndarray, np.ndarray]:
        """``A theta - lower >= 0``: positivity and stationarity (arch's), over the whole parameter vector."""
        c = self.config
        p, o, q = c.p, c.o, c.q
        k = p + o + q
        m = self.num_mean
        rows: list[np.ndarray] = []
        lower: list[float] = []
        if c.vol == "egarch":
            row = np.zeros(k + 1)
            row[1 + p + o :] = -1.0
            rows.append(row)
            lower.append(-1.0)  # sum beta < 1
        else:
            for i in range(k + 1):  # omega, alpha, beta >= 0; alpha_i + gamma_i >= 0 (gamma alone beyond p)
                row = np.zeros(k + 1)
                row[i] = 1.0
                if p < i <= p + o and i - p - 1 < p:
                    row[i - p] = 1.0
                rows.append(row)
                lower.append(0.0)
            row = np.zeros(k + 1)
            row[1:] = -1.0
            row[1 + p : 1 + p + o] = -0.5
            rows.append(row)
            lower.append(-1.0)  # sum alpha + sum gamma / 2 + sum beta < 1
        n_noise = len(self._noise_bounds())
        A = np.zeros((len(rows), m + k + 1 + n_noise))
        A[:, m : m + k + 1] = np.array(rows)
        return A, np.array(lower)

    def _covariances(self, theta, X, target, b, bounds) -> tuple[np.ndarray, np.ndarray]:
        """``(H^-1, H^-1 J H^-1)`` on the fitting scale: ``H`` the numerical Hessian of minus the total
        log-likelihood (central differences), ``J = sum_t s_t s_t'`` with ``s_t`` the per-step scores."""
        K = len(theta)
        eps = np.finfo(float).eps
        h = eps ** (1 / 4) * np.maximum(np.abs(theta), 0.1)
        basis = np.eye(K) * h

        def total(th):
            return float(np.sum(self._loglik(th, X, target, b, bounds)))

        hessian = np.empty((K, K))
        for i in range(K):
            for j in range(i, K):
                di, dj = basis[i], basis[j]
                f = total(theta + di + dj) - total(theta + di - dj) - total(theta - di + dj) + total(theta - di - dj)
                hessian[i, j] = hessian[j, i] = f / (4 * h[i] * h[j])
        h = eps ** (1 / 3) * np.maximum(np.abs(theta), 0.1)
        scores = np.stack(
            [
                (self._loglik(theta + d, X, target, b, bounds) - self._loglik(theta - d, X, target, b, bounds))
                / (2 * hi)
                for d, hi in zip(np.eye(K) * h, h, strict=True)
            ],
            axis=1,
        )  # (n, K)
        try:
            inverse = np.linalg.inv(-hessian)
        except np.linalg.LinAlgError:
            inverse = np.full((K, K), np.nan)
        return inverse, inverse @ (scores.T @ scores) @ inverse

    def _unscale(self, theta: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
        """``(J, shift)`` with data-scale parameters ``J theta + shift`` for a fit on ``scale * y``: the mean's
        constant / s, GARCH omega / s^2, EGARCH omega - 2 ln s (1 - sum beta); the rest unchanged."""
        K, m = len(theta), self.num_mean
        J, shift = np.eye(K), np.zeros(K)
        if m:
            J[0, 0] = 1.0 / scale
        if self.config.vol == "egarch":
            beta = slice(m + 1 + self.config.p + self.config.o, m + self.num_vol)
            J[m, beta] = 2 * math.log(scale)
            shift[m] = -2 * math.log(scale)
        else:
            J[m, m] = 1.0 / scale**2
        return J, shift

    # -- the fitted model as a SequenceModel -----------------------------------------------------------------
    def _check_fitted(self) -> None:
        if self.params is None:
            raise SeqlabError("GARCH is not fitted yet: call fit(returns) first")

    def encode(self, data, *, unknown: str = "error", source: str = "data") -> torch.Tensor:
        """A 1-D float64 series; ``unknown`` is for discrete models (a series has no unknown symbols)."""
        return torch.from_numpy(as_series(data, model="GARCH", source=source))

    def decode(self, x: torch.Tensor):
        return x

    def _unconditional_mean(self) -> float:
        mp = self._split(self.params)[0]
        if self.config.mean != "ar":
            return float(mp[0]) if len(mp) else 0.0
        persistence = 1.0 - float(np.sum(mp[1:]))
        return float(mp[0]) / persistence if abs(persistence) > 1e-8 else float(mp[0])

    def _head_params(self, mu, sigma2) -> torch.Tensor:
        """(..., P) head parameters of ``x = mu + sigma z``, ``z`` the standardised noise."""
        mu = torch.as_tensor(mu, dtype=torch.float64)
        log_sigma = 0.5 * torch.log(torch.as_tensor(sigma2, dtype=torch.float64))
        dp = self._split(self.params)[2]
        if self.config.dist == "normal":
            return torch.stack([mu, log_sigma], -1)
        nu = float(dp[0])
        raw = torch.full_like(mu, _softplus_inverse(nu - 2.0))
        if self.config.dist == "t":  # the t's scale s: sigma^2 = s^2 nu / (nu - 2)
            return torch.stack([mu, log_sigma + 0.5 * math.log((nu - 2) / nu), raw], -1)
        lam = torch.full_like(mu, math.atanh(float(np.clip(dp[1], -1 + 1e-12, 1 - 1e-12))))
        return torch.stack([mu, log_sigma, raw, lam], -1)

    def filter(self, x) -> tuple[np.ndarray, np.ndarray]:
        """Conditional means and variances ``(mu (T,), sigma2 (T,))`` of every value of ``x`` given the ones before."""
        self._check_fitted()
        y = as_series(x, model="GARCH")
        k, T = self.config.lags, len(y)
        mp, vp, _ = self._split(self.params)
        mu = np.zeros(T)
        if self.num_mean:
            padded = np.concatenate([np.full(k, self._unconditional_mean()), y])  # missing lags at the mean's level
            X, _ = self._design(padded)  # (T, 1 + k)
            mu = X @ mp
        e = y[k:] - mu[k:]
        sigma2 = np.empty(T)
        sigma2[k:] = self._variance(vp, e, self.backcast, None) if T > k else []
        first = self._variance(vp, np.zeros(1), self.backcast, None)[0]  # the first step sees only the backcast
        sigma2[: min(k, T)] = first
        return mu, sigma2

    def log_prob(self, x) -> torch.Tensor:
        """``log P(x_t | x_<t)`` for t = 1..T (T,): the head's density at the filtered mean and variance."""
        mu, sigma2 = self.filter(x)
        y = torch.from_numpy(as_series(x, model="GARCH"))
        return -self.head.nll(self._head_params(mu, sigma2), y)

    # -- streaming: the state is (last k values, last residuals, their variances), NaN before the sample -------
    def _lag_count(self) -> int:
        c = self.config
        return max(c.p, c.o, c.q, 1)

    def initial_state(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        self._check_fitted()
        m = self._lag_count()
        return np.full(self.config.lags, np.nan), np.full(m, np.nan), np.full(m, np.nan), 0

    def _predict(self, y_lags, e_lags, s_lags) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance of the next value from lags (..., k) and (..., m) newest first, broadcasting over
        leading dims; NaN lags are before the sample (the mean's level, the backcast)."""
        c = self.config
        mp, vp, _ = self._split(self.params)
        if c.mean == "zero":
            mu = np.zeros(e_lags.shape[:-1])
        else:
            lags = np.where(np.isnan(y_lags), self._unconditional_mean(), y_lags)
            mu = mp[0] + lags @ mp[1:]
        p, o, q, b = c.p, c.o, c.q, self.backcast
        alpha, gamma, beta = vp[1 : 1 + p], vp[1 + p : 1 + p + o], vp[1 + p + o :]
        before = np.isnan(e_lags)
        if c.vol == "egarch":
            z = np.where(before, 0.0, e_lags / np.sqrt(np.where(before, 1.0, s_lags)))
            shock = np.where(before, 0.0, np.abs(z) - vol.SQRT2_OV_PI)
            ln_lags = np.where(np.isnan(s_lags), b, np.log(np.where(np.isnan(s_lags), 1.0, s_lags)))
            ln_s = vp[0] + shock[..., :p] @ alpha + z[..., :o] @ gamma + ln_lags[..., :q] @ beta
            return mu, np.exp(np.minimum(ln_s, vol.LNSIGMA_MAX))
        e2 = np.where(before, b, e_lags**2)
        negative = np.where(before, 0.5 * b, e_lags**2 * (e_lags < 0))
        s = np.where(np.isnan(s_lags), b, s_lags)
        return mu, vp[0] + e2[..., :p] @ alpha + negative[..., :o] @ gamma + s[..., :q] @ beta

    def _advance(self, state, x: float):
        """The state after observing ``x`` (the recursion starts once k values are known)."""
        y_lags, e_lags, s_lags, seen = state
        mu, sigma2 = self._predict(y_lags, e_lags, s_lags)
        if seen >= self.config.lags:
            e_lags = np.concatenate([[x - float(mu)], e_lags[:-1]])
            s_lags = np.concatenate([[float(sigma2)], s_lags[:-1]])
        if self.config.lags:
            y_lags = np.concatenate([[x], y_lags[:-1]])
        return y_lags, e_lags, s_lags, seen + 1

    def step(self, x_prev, state):
        """``x_prev`` (or ``None`` at the start) in, the next value's head params (P,) and the new state out."""
        self._check_fitted()
        if x_prev is not None:
            state = self._advance(state, float(x_prev))
        mu, sigma2 = self._predict(*state[:3])
        return self._head_params(float(mu), float(sigma2)), state

    @torch.no_grad()
    def sample_paths(self, context, horizon, num_samples, temperature=1.0, seed=None) -> torch.Tensor:
        """(S, horizon) paths after ``context`` (T,): the context filtered in one pass, then all S paths per step."""
        self._check_fitted()
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        y = as_series(context, model="GARCH", source="context")
        k, m, S = self.config.lags, self._lag_count(), num_samples
        mu, sigma2 = self.filter(y) if len(y) else (np.zeros(0), np.zeros(0))
        e, s = (y - mu)[k:], sigma2[k:]
        y_lags = np.tile(_newest_first(y, k), (S, 1))  # (S, k)
        e_lags, s_lags = np.tile(_newest_first(e, m), (S, 1)), np.tile(_newest_first(s, m), (S, 1))  # (S, m)
        seen = len(y)
        paths = torch.empty(S, horizon, dtype=torch.float64)
        for h in range(horizon):
            mean, var = self._predict(y_lags, e_lags, s_lags)  # (S,), (S,)
            x = self.head.sample(self._head_params(mean, var), temperature, None, generator).double()
            paths[:, h] = x
            xs = x.numpy()
            if seen >= k:
                e_lags = np.concatenate([(xs - mean)[:, None], e_lags[:, :-1]], axis=1)
                s_lags = np.concatenate([np.broadcast_to(var, (S,))[:, None], s_lags[:, :-1]], axis=1)
            if k:
                y_lags = np.concatenate([xs[:, None], y_lags[:, :-1]], axis=1)
            seen += 1
        return paths

    # -- persistence ---------------------------------------------------------------------------------------
    def to_config(self) -> dict:
        self._check_fitted()
        fit = asdict(self.result)
        for key in ("params", "bse", "bse_robust"):
            fit.pop(key)  # in the weights
        return {"config": asdict(self.config), "fit": fit}

    @classmethod
    def from_config(cls, config: dict) -> GARCH:
        model = cls(GARCHConfig(**config["config"]))
        model.result = GARCHFit(params=[], bse=[], bse_robust=[], **config["fit"])
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
        return {
            "params": torch.from_numpy(self.params),
            "bse": torch.tensor(self.result.bse, dtype=torch.float64),
            "bse_robust": torch.tensor(self.result.bse_robust, dtype=torch.float64),
            "backcast": torch.tensor([self.backcast], dtype=torch.float64),
        }

    def load_state_dict(self, tensors: dict[str, torch.Tensor]) -> None:
        K = len(self.names)
        shapes = {"params": (K,), "bse": (K,), "bse_robust": (K,), "backcast": (1,)}
        if set(tensors) != set(shapes) or any(tuple(tensors[n].shape) != s for n, s in shapes.items()):
            raise RuntimeError(f"expected params, bse, bse_robust of shape ({K},) and backcast of shape (1,)")
        self.params = tensors["params"].double().numpy().copy()
        self.backcast = float(tensors["backcast"][0])
        if self.result is not None:
            self.result.params = self.params.tolist()
            self.result.bse = tensors["bse"].tolist()
            self.result.bse_robust = tensors["bse_robust"].tolist()

    # -- text ------------------------------------------------------------------------------------------------
    def describe_spec(self) -> str:
        c = self.config
        if c.vol == "egarch":
            name = f"EGARCH({c.p},{c.o},{c.q})"
        else:
            name = f"GJR-GARCH({c.p},{c.o},{c.q})" if c.o else f"GARCH({c.p},{c.q})"
        mean = {"zero": "zero mean", "constant": "constant mean", "ar": f"AR({c.lags}) mean"}[c.mean]
        noise = {"normal": "normal", "t": "Student-t", "skewt": "skewed-t"}[c.dist]
        return f"{name}, {mean}, {noise} noise"

    def describe(self) -> str:
        if self.params is None:
            return f"{self.describe_spec()}, not fitted"
        values = ", ".join(f"{n}={v:.4g}" for n, v in zip(self.names, self.params, strict=True))
        fit = f"log-likelihood {self.result.loglik:.2f} on {self.result.nobs} values"
        return f"{self.describe_spec()}: {values}; {fit}"


def _rescale_factor(variance: float) -> float:
    """A power of ten ``s`` with ``s^2 variance`` in [0.1, 1e4) (arch's rule for well-scaled data)."""
    s, scaled = 1.0, variance
    while not 0.1 <= scaled < 10000.0 and scaled > 0:
        s = s * 10 if scaled < 1.0 else s / 10
        scaled = variance * s**2
    return s


def _newest_first(v: np.ndarray, n: int) -> np.ndarray:
    """The last ``n`` entries of ``v``, newest first, NaN-padded where ``v`` is shorter (before the sample)."""
    return np.concatenate([v[::-1][:n], np.full(max(0, n - len(v)), np.nan)])


def _softplus_inverse(y: float) -> float:
    """``x`` with ``torch.nn.functional.softplus(x) == y`` (softplus is the identity above 20)."""
    return y if y > 20 else math.log(math.expm1(y))
