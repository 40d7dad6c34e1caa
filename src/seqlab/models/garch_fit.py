"""Maximum likelihood for a GARCH-family model: the likelihood of ``garch_likelihood`` (a mean, times a volatility
process, times a noise law), maximised.

``fit(Likelihood(mean, process, noise), y, x)`` does what ``arch``'s ``arch_model(...).fit()`` does, step for
step, so that parameters and log-likelihoods agree with it: the data are first rescaled by a power of ten into
arch's comfortable range (variance in [0.1, 1e4); an exogenous variance ``x`` by its square), the mean started by
least squares, the process from the best of its start grid by the Gaussian log-likelihood, the noise from the
standardised residuals; SLSQP under the process's bounds and linear constraints, the variance kept inside
``variance_bounds`` while optimising; then everything mapped back to the data's scale. Standard errors: the
inverse of the numerical Hessian of the log-likelihood (``bse``) and the sandwich ``H^-1 J H^-1`` with ``J`` the
outer product of the per-step scores (``bse_robust``, arch's default).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.linalg import block_diag
from scipy.optimize import OptimizeResult, minimize

from seqlab.errors import SeqlabError
from seqlab.models import volatility as vol
from seqlab.models.garch_likelihood import Likelihood
from seqlab.models.noise import Noise, NormalNoise

LARGEST_VALUE = 1e150  # squares (variances) of larger values overflow float64 in sums
STARTS = 3  # SLSQP runs from this many of the best starts of the grid (arch runs from the first)
RESTART_GAIN = 1e-6  # relative: another start's optimum replaces arch's path only when higher by more than this


@dataclass
class GARCHFit:
    """What a fit leaves: parameters (data scale) with their standard errors, the log-likelihood, the optimiser."""

    names: list[str]
    params: list[float]
    bse: list[float]  # inverse Hessian
    bse_robust: list[float]  # sandwich
    loglik: float
    nobs: int
    converged: bool  # SLSQP's own verdict (status 0); False: stopped at maxiter or by a failed line search
    iterations: int
    message: str
    scale: float  # the data were multiplied by this while fitting
    bounds_active: bool = False  # a variance bound clipped sigma^2 at the optimum (never, on sane data)

    def table(self) -> str:
        columns = zip(self.names, self.params, self.bse_robust, strict=True)
        rows = [f"{n:>10} {v:>14.6g} {s:>12.4g}" for n, v, s in columns]
        return "\n".join([f"{'':>10} {'estimate':>14} {'robust s.e.':>12}", *rows])


@dataclass
class Estimate:
    """``fit``'s answer on the data's scale: the parameters, the start of the recursion, the record."""

    params: np.ndarray
    backcast: float  # H_0: sigma2 before the sample (EGARCH: its log)
    backcast_x: float | None  # the exogenous variance before the sample (GARCH-X)
    record: GARCHFit


def rescale_factor(variance: float) -> float:
    """A power of ten ``s`` with ``s^2 variance`` in [0.1, 1e4) (arch's rule for well-scaled data)."""
    s, scaled = 1.0, variance
    while not 0.1 <= scaled < 10000.0 and scaled > 0:
        s = s * 10 if scaled < 1.0 else s / 10
        scaled = variance * s**2
    return s


def check_series(y: np.ndarray, x: np.ndarray | None, likelihood: Likelihood, what: str) -> None:
    """Refuse what no variance model can fit, in one line: too short, constant, or too large for float64."""
    needed = likelihood.mean.lags + len(likelihood.names) + 2
    if len(y) < needed:
        raise SeqlabError(
            f"{what} has {len(likelihood.names)} parameters and needs at least {needed} values, got {len(y)}"
        )
    largest = float(np.abs(y).max())
    if largest > LARGEST_VALUE:
        raise SeqlabError(
            f"the training series holds values up to {largest:.3g}: their squares overflow float64, so no variance "
            "can be modelled; rescale the data (for prices, model log returns)"
        )
    spread = float(np.std(y))
    if spread <= 1e-9 * max(largest, 1e-300):
        raise SeqlabError(
            f"the training series is constant or nearly so (standard deviation {spread:.3g}): "
            "GARCH needs returns that move"
        )
    if x is not None:
        if (x < 0).any():
            i = int(np.flatnonzero(x < 0)[0])
            raise SeqlabError(f"the exogenous variance must be non-negative; row {i} is {x[i]:.6g}")
        if float(np.abs(x).max()) > LARGEST_VALUE:
            raise SeqlabError(f"the exogenous variance holds values up to {float(x.max()):.3g}: too large for float64")


def lagged(x: np.ndarray, start: float, k: int) -> np.ndarray:
    """``x_prev`` aligned with the residuals of ``y[k:]``: ``x_{t-1}`` for t = k .. T-1, ``start`` before the sample."""
    return np.concatenate([[start], x[:-1]])[k:]


def fit(
    likelihood: Likelihood, y: np.ndarray, x: np.ndarray | None = None, maxiter: int = 200, starts: int = STARTS
) -> Estimate:
    """Maximum likelihood of ``likelihood`` on ``y (T,)`` (and the exogenous variance ``x (T,)`` of GARCH-X)."""
    mean, process, noise = likelihood.mean, likelihood.process, likelihood.noise
    X, target = mean.design(y)
    num_mean = len(mean.names)
    mean_start = np.linalg.lstsq(X, target, rcond=None)[0] if num_mean else np.zeros(0)
    scale = rescale_factor(float(np.var(likelihood.residuals(mean_start, X, target))))
    X, target = mean.design(y * scale)
    mean_start = np.linalg.lstsq(X, target, rcond=None)[0] if num_mean else np.zeros(0)
    e0 = likelihood.residuals(mean_start, X, target)
    if float(np.var(e0)) <= 1e-12 * float(np.mean(target**2)):
        raise SeqlabError("the mean model explains the training series exactly: no residual variance to model")
    b = process.backcast(e0)
    xb = vol.ewma_start(x * scale**2) if x is not None else None
    x_prev = lagged(x * scale**2, xb, mean.lags) if x is not None else None
    bounds_v = vol.variance_bounds(e0)
    candidates = process.start_grid(e0, x_prev)
    problem = Problem(X, target, b, bounds_v, x_prev, e0, maxiter)
    gaussian = Likelihood(mean, process, NormalNoise())
    scores = [float(np.sum(gaussian.per_step(np.concatenate([mean_start, sv]), *problem.data))) for sv in candidates]
    order = [int(k) for k in np.argsort(scores, kind="stable")[::-1]]
    # the best start of each persistence in the grid (arch's own first): where SLSQP ends depends far more on
    # the persistence it starts from than on the rest
    persistence = [round(float(process.persistence(candidates[k])), 6) for k in order]
    firsts = [k for i, k in enumerate(order) if persistence[i] not in persistence[:i]]
    ranked = [np.concatenate([mean_start, candidates[k]]) for k in firsts[:starts]]

    def residuals(theta: np.ndarray) -> np.ndarray:
        """The standardised residuals at ``[mean | process | ...]``."""
        mp, vp, _ = gaussian.split(theta[: len(gaussian.names)])
        e = gaussian.residuals(mp, X, target)
        return e / np.sqrt(process.variance(vp, e, b, bounds_v, x_prev))

    def search(noise: Noise) -> OptimizeResult:
        """The best of SLSQP's paths for ``noise``: arch's (the grid's best start by the Gaussian likelihood) first.
        On short series SLSQP can stop far below the optimum, and where depends on the last bits of the data (the
        BLAS's rounding), so the best starts of the other persistences follow, then the optimum of the noise this
        one nests (a t from the normal's), then a restart from the best point; another path replaces arch's only
        when clearly higher (``better``)."""
        lik = Likelihood(mean, process, noise)
        opt = problem.optimise(lik, np.concatenate([ranked[0], noise.start(residuals(ranked[0]))]))
        for theta in ranked[1:]:
            opt = better(opt, problem.optimise(lik, np.concatenate([theta, noise.start(residuals(theta))])))
        simpler = noise.simpler()
        if simpler is not None:
            inner = search(simpler)
            if finite(inner):
                head = inner.x[: len(gaussian.names)]
                extended = noise.extend(inner.x[len(gaussian.names) :], residuals(head))
                opt = better(opt, problem.optimise(lik, np.concatenate([head, extended])))
        return better(opt, problem.optimise(lik, opt.x)) if finite(opt) else opt

    opt = search(noise)
    if not finite(opt):
        raise SeqlabError(
            f"the likelihood is not finite after {opt.nit} iterations on the training series ({len(y)} values): "
            f"{opt.message}"
        )
    theta = opt.x
    mp, vp, _ = likelihood.split(theta)
    e = likelihood.residuals(mp, X, target)
    active = bool(np.any(process.variance(vp, e, b, bounds_v, x_prev) != process.variance(vp, e, b, None, x_prev)))
    cov, cov_robust = covariances(likelihood, theta, X, target, b, bounds_v, x_prev)
    J = block_diag(mean.unscale(scale), process.unscale(scale)[0], np.eye(len(noise.names)))
    shift = np.concatenate([np.zeros(num_mean), process.unscale(scale)[1], np.zeros(len(noise.names))])
    params = J @ theta + shift
    record = GARCHFit(
        names=likelihood.names,
        params=params.tolist(),
        bse=np.sqrt(np.abs(np.diag(J @ cov @ J.T))).tolist(),
        bse_robust=np.sqrt(np.abs(np.diag(J @ cov_robust @ J.T))).tolist(),
        loglik=-float(opt.fun) + len(target) * math.log(scale),  # p(y) = s p_scaled(s y)
        nobs=len(target),
        converged=bool(opt.status == 0),
        iterations=int(opt.nit),
        message=str(opt.message),
        scale=scale,
        bounds_active=active,
    )
    return Estimate(params, process.unscale_backcast(b, scale), None if xb is None else xb / scale**2, record)


def finite(opt: OptimizeResult) -> bool:
    return bool(np.isfinite(opt.fun) and np.isfinite(opt.x).all())


def better(incumbent: OptimizeResult, other: OptimizeResult) -> OptimizeResult:
    """``other`` when finite and higher than ``incumbent`` by more than ``RESTART_GAIN`` (relative), else
    ``incumbent``: the first path is kept where the others only equal it."""
    if not finite(other):
        return incumbent
    if not finite(incumbent) or other.fun < incumbent.fun - RESTART_GAIN * max(1.0, abs(incumbent.fun)):
        return other
    return incumbent


@dataclass
class Problem:
    """One fit's data on the fitting scale and what SLSQP needs of any likelihood over it."""

    X: np.ndarray
    target: np.ndarray
    b: float
    bounds: np.ndarray
    x_prev: np.ndarray | None
    e0: np.ndarray  # the residuals of the start, from which the box bounds are read
    maxiter: int

    @property
    def data(self) -> tuple:
        """What ``Likelihood.per_step`` reads after ``theta``."""
        return self.X, self.target, self.b, self.bounds, self.x_prev

    def optimise(self, likelihood: Likelihood, theta0: np.ndarray) -> OptimizeResult:
        """SLSQP from ``theta0`` under the process's bounds and linear constraints (the noise's bounds if any)."""
        num_mean, noise = len(likelihood.mean.names), likelihood.noise
        A_v, lower = likelihood.process.constraints()
        A = np.zeros((len(A_v), len(theta0)))
        A[:, num_mean : num_mean + A_v.shape[1]] = A_v
        box = [(-np.inf, np.inf)] * num_mean + likelihood.process.bounds(self.e0) + noise.bounds

        low, high = np.array([b[0] for b in box]), np.array([b[1] for b in box])
        best = [np.inf, theta0]

        def objective(theta):
            value = -float(np.sum(likelihood.per_step(theta, *self.data)))
            if value < best[0] and (theta >= low).all() and (theta <= high).all() and (A @ theta >= lower).all():
                best[:] = value, theta.copy()
            return value

        opt = minimize(
            objective,
            theta0,
            method="SLSQP",
            bounds=box,
            constraints=[{"type": "ineq", "fun": lambda th: A @ th - lower, "jac": lambda th: A}],
            options={"maxiter": self.maxiter},
        )
        # SLSQP can end below a feasible point it evaluated on the way (its merit function is not the likelihood)
        if not np.isfinite(opt.fun) or best[0] < opt.fun - RESTART_GAIN * max(1.0, abs(opt.fun)):
            opt.fun, opt.x = best
        return opt


def covariances(likelihood: Likelihood, theta, X, target, b, bounds, x_prev) -> tuple[np.ndarray, np.ndarray]:
    """``(H^-1, H^-1 J H^-1)`` on the fitting scale: ``H`` the numerical Hessian of minus the total
    log-likelihood (central differences), ``J = sum_t s_t s_t'`` with ``s_t`` the per-step scores."""
    K = len(theta)
    eps = np.finfo(float).eps
    h = eps ** (1 / 4) * np.maximum(np.abs(theta), 0.1)
    basis = np.eye(K) * h

    def per_step(th):
        return likelihood.per_step(th, X, target, b, bounds, x_prev)

    def total(th):
        return float(np.sum(per_step(th)))

    hessian = np.empty((K, K))
    for i in range(K):
        for j in range(i, K):
            di, dj = basis[i], basis[j]
            f = total(theta + di + dj) - total(theta + di - dj) - total(theta - di + dj) + total(theta - di - dj)
            hessian[i, j] = hessian[j, i] = f / (4 * h[i] * h[j])
    h = eps ** (1 / 3) * np.maximum(np.abs(theta), 0.1)
    steps = zip(np.eye(K) * h, h, strict=True)
    scores = np.stack([(per_step(theta + d) - per_step(theta - d)) / (2 * hi) for d, hi in steps], axis=1)  # (n, K)
    try:
        inverse = np.linalg.inv(-hessian)
    except np.linalg.LinAlgError:
        inverse = np.full((K, K), np.nan)
    return inverse, inverse @ (scores.T @ scores) @ inverse
