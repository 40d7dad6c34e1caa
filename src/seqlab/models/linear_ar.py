"""``LinearAR``: the Gaussian autoregressive model AR(tau) of a continuous series, by least squares.

    x_t = c + phi_1 x_{t-1} + ... + phi_tau x_{t-tau} + eps_t,      eps_t ~ N(0, sigma^2)

Fitted as statsmodels' ``AutoReg(x, tau, trend="c")`` is: ordinary least squares on the rows t = tau .. T-1,
``sigma2 = SSR / nobs``, standard errors ``sqrt(diag(sigma2 (X'X)^-1))``, and the Gaussian log-likelihood
``llf = -nobs/2 (log(2 pi sigma2) + 1)`` with ``aic = -2 llf + 2 (k + 1)`` and ``bic = -2 llf + log(nobs) (k + 1)``
(k = tau + 1 regression parameters, plus sigma^2). ``order="aic"`` or ``"bic"`` compares orders 0 .. max_order on
the common sample t = max_order .. T-1, then refits the chosen order on all rows it can use, as
``ar_select_order`` does (order 0 is the constant-only model).

With another head (``head="studentt"`` or ``"mixture"``) the noise ``eps_t / sigma`` follows that head's
distribution instead: the coefficients stay the least-squares ones, and the noise shape is then fitted by
maximum likelihood on the standardised residuals (a two-step quasi-likelihood fit).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from seqlab.base import ConformanceCase, SequenceModel
from seqlab.data.arrays import as_series
from seqlab.distributions import continuous_head
from seqlab.errors import SeqlabError


def _design(y: np.ndarray, order: int, hold_back: int) -> tuple[np.ndarray, np.ndarray]:
    """(X, target): X rows [1, y_{t-1}, ..., y_{t-order}] for t = hold_back .. T-1."""
    T = len(y)
    X = np.ones((T - hold_back, order + 1))
    for lag in range(1, order + 1):
        X[:, lag] = y[hold_back - lag : T - lag]
    return X, y[hold_back:]


class LinearAR(SequenceModel):
    """AR(``order``) with intercept and Gaussian noise; ``order`` an integer, ``"aic"`` or ``"bic"``.

    Fitted attributes, named as statsmodels users expect: ``order``, ``params`` (intercept, then lags
    1..order), ``bse``, ``sigma2``, ``llf``, ``aic``, ``bic``, ``nobs``.

    Example::

        >>> x = np.sin(np.arange(200) / 5.0) + 0.1 * np.random.default_rng(0).standard_normal(200)
        >>> LinearAR(order="bic", max_order=6).fit(x).order >= 2
        True
    """

    kind = "linear_ar"

    def __init__(self, order: int | str = 1, max_order: int = 10, head: str = "gaussian", components: int = 3) -> None:
        if isinstance(order, str):
            if order not in ("aic", "bic"):
                raise SeqlabError(f"order must be a non-negative integer, 'aic' or 'bic'; got {order!r}")
        elif not isinstance(order, (int, np.integer)) or order < 0:
            raise SeqlabError(f"order must be a non-negative integer, 'aic' or 'bic'; got {order!r}")
        if max_order < 0:
            raise SeqlabError(f"max_order must be non-negative, got {max_order}")
        self.selection = order if isinstance(order, str) else None
        self.order = None if isinstance(order, str) else int(order)
        self.max_order = max_order
        self.params: np.ndarray | None = None
        self.criteria: dict[int, float] = {}
        try:
            self.head = continuous_head(head, components)
        except ValueError as e:
            raise SeqlabError(str(e)) from None
        self.head_name, self.components = head, components
        self.noise: torch.Tensor | None = None  # the head's params of eps / sigma; None: the exact Gaussian

    # -- fitting ------------------------------------------------------------------------------------------
    def _ols(self, y: np.ndarray, order: int, hold_back: int) -> dict:
        X, target = _design(y, order, hold_back)
        if np.ptp(y) == 0:
            raise SeqlabError(f"the training series is constant (every value is {y[0]:g}): nothing to fit")
        params, *_ = np.linalg.lstsq(X, target, rcond=None)
        resid = target - X @ params
        nobs, k = len(target), order + 1
        sigma2 = float(resid @ resid / nobs)
        if not sigma2 > 0 or np.linalg.matrix_rank(X) < k:  # a deterministic or degenerate series
            raise SeqlabError(
                f"AR({order}) on this series is degenerate (the lagged values are collinear or predict it exactly, "
                f"residual variance {sigma2:g}); try a lower order or a transform"
            )
        llf = -nobs / 2 * (math.log(2 * math.pi * sigma2) + 1)
        return {
            "params": params,
            "sigma2": sigma2,
            "bse": np.sqrt(np.diag(sigma2 * np.linalg.inv(X.T @ X))),
            "llf": llf,
            "aic": -2 * llf + 2 * (k + 1),
            "bic": -2 * llf + math.log(nobs) * (k + 1),
            "nobs": nobs,
        }

    def fit(self, train, valid=None) -> LinearAR:
        y = as_series(train, source="training series")
        if self.selection is not None:
            top = self.max_order
            if len(y) <= 2 * top + 1:
                raise SeqlabError(f"order selection up to {top} needs more than {2 * top + 1} values, got {len(y)}")
            fits = {p: self._ols(y, p, hold_back=top) for p in range(top + 1)}
            self.criteria = {p: fit[self.selection] for p, fit in fits.items()}
            self.order = min(self.criteria, key=self.criteria.get)
        p = self.order
        if len(y) <= 2 * p + 1:
            raise SeqlabError(f"order {p} needs more than {2 * p + 1} values to fit, got {len(y)}")
        fit = self._ols(y, p, hold_back=p)
        self.params, self.sigma2, self.bse = fit["params"], fit["sigma2"], fit["bse"]
        self.llf, self.aic, self.bic, self.nobs = fit["llf"], fit["aic"], fit["bic"], fit["nobs"]
        if self.head_name != "gaussian":
            X, target = _design(y, p, p)
            self.noise = self._fit_noise((target - X @ self.params) / math.sqrt(self.sigma2))
        return self

    def _fit_noise(self, z: np.ndarray) -> torch.Tensor:
        """Maximum-likelihood head parameters for the standardised residuals ``z`` (L-BFGS)."""
        z_t = torch.from_numpy(z)
        if self.head_name == "studentt":
            start = [0.0, 0.0, 2.0]
        else:  # a mixture: components spread over the residuals' range, equal weights
            K = self.components
            start = [0.0] * K + list(np.quantile(z, np.linspace(0.1, 0.9, K))) + [math.log(0.7)] * K
        params = torch.tensor(start, dtype=torch.float64, requires_grad=True)
        optimizer = torch.optim.LBFGS([params], max_iter=500, tolerance_grad=1e-10, line_search_fn="strong_wolfe")

        def closure():
            optimizer.zero_grad()
            loss = self.head.nll(params.expand(len(z_t), -1), z_t).mean()
            loss.backward()
            return loss

        optimizer.step(closure)
        return params.detach()

    def _params(self, mean: float, var: float) -> torch.Tensor:
        """The head's parameters of a value with this conditional mean and variance (of the Gaussian fit)."""
        if self.noise is None:
            return torch.tensor([mean, 0.5 * math.log(var)], dtype=torch.float64)
        return self.head.rescale(self.noise, torch.tensor(mean, dtype=torch.float64), math.sqrt(var))

    def _check_fitted(self) -> None:
        if self.params is None:
            raise SeqlabError("LinearAR is not fitted yet")

    @property
    def intercept(self) -> float:
        return float(self.params[0])

    @property
    def phi(self) -> np.ndarray:
        return self.params[1:]

    # -- the stationary process ---------------------------------------------------------------------------
    def is_stationary(self) -> bool:
        """All roots of 1 - phi_1 z - ... - phi_p z^p outside the unit circle."""
        if self.order == 0:
            return True
        roots = np.roots(np.r_[-self.phi[::-1], 1.0])
        return bool(np.all(np.abs(roots) > 1.0))

    def autocovariances(self, lags: int) -> np.ndarray:
        """gamma_0 .. gamma_lags of the stationary process (Yule-Walker equations solved for gamma)."""
        p, phi = self.order, self.phi
        A = np.eye(p + 1)
        for k in range(p + 1):
            for i in range(1, p + 1):
                A[k, abs(k - i)] -= phi[i - 1]
        b = np.zeros(p + 1)
        b[0] = self.sigma2
        gamma = list(np.linalg.solve(A, b))
        for k in range(p + 1, lags + 1):
            gamma.append(sum(phi[i - 1] * gamma[k - i] for i in range(1, p + 1)))
        return np.array(gamma[: lags + 1])

    def _conditional(self, history: np.ndarray) -> tuple[float, float]:
        """Mean and variance of the next value given ``history`` (the last values, oldest first)."""
        p = self.order
        if len(history) >= p:
            lags = history[::-1][:p]
            return self.intercept + float(self.phi @ lags), self.sigma2
        # fewer than p values: the stationary process's exact Gaussian conditional
        if not self.is_stationary():
            raise SeqlabError(
                f"the fitted AR({p}) is not stationary: the first {p} values have no marginal distribution"
            )
        mu = self.intercept / (1.0 - self.phi.sum())
        s = len(history)
        gamma = self.autocovariances(s)
        if s == 0:
            return mu, float(gamma[0])
        cov = gamma[np.abs(np.subtract.outer(np.arange(s), np.arange(s)))]  # (s, s) Toeplitz
        cross = gamma[s - np.arange(s)]  # cov(x_s, x_j), j = 0..s-1
        weights = np.linalg.solve(cov, cross)
        return mu + float(weights @ (history - mu)), float(gamma[0] - weights @ cross)

    # -- SequenceModel --------------------------------------------------------------------------------------
    def log_prob(self, x) -> torch.Tensor:
        """log N(x_t; E[x_t | x_<t], Var[x_t | x_<t]) for every t; the first ``order`` use the stationary law."""
        self._check_fitted()
        y = as_series(x)
        p, T = self.order, len(y)
        mean, var = np.empty(T), np.full(T, self.sigma2)
        for t in range(min(p, T)):
            mean[t], var[t] = self._conditional(y[:t])
        if T > p:
            X, _ = _design(y, p, p)
            mean[p:] = X @ self.params
        if self.noise is not None:
            params = self.head.rescale(self.noise.expand(T, -1), torch.from_numpy(mean), torch.from_numpy(np.sqrt(var)))
            return -self.head.nll(params, torch.from_numpy(y))
        return torch.from_numpy(-0.5 * (np.log(2 * math.pi * var) + (y - mean) ** 2 / var))

    def initial_state(self) -> tuple:
        return ()

    def step(self, x_prev, state: tuple):
        """state: the last ``order`` values; returns the next value's Gaussian params (mu, log sigma)."""
        self._check_fitted()
        if x_prev is not None:
            state = (*state, float(x_prev))[-self.order :] if self.order else ()
        mean, var = self._conditional(np.array(state, dtype=np.float64))
        return self._params(mean, var), state

    def closed_form_forecast(self, context, horizon: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Exact Gaussian forecast (Gaussian noise only): the iterated mean of the next ``horizon`` values after
        ``context`` and ``se_h = sigma sqrt(sum_{j<h} psi_j^2)`` with the MA(infinity) weights psi of the AR."""
        self._check_fitted()
        history = list(as_series(context, source="context"))
        if self.noise is not None or len(history) < self.order:
            return None
        mean = []
        for _ in range(horizon):
            lags = np.array(history[::-1][: self.order])
            mean.append(self.intercept + float(self.phi @ lags))
            history.append(mean[-1])
        psi = [1.0]
        for j in range(1, horizon):
            psi.append(sum(self.phi[i - 1] * psi[j - i] for i in range(1, min(j, self.order) + 1)))
        return np.array(mean), np.sqrt(self.sigma2 * np.cumsum(np.square(psi)))

    @torch.no_grad()
    def sample_paths(self, context, horizon, num_samples, temperature=1.0, seed=None) -> torch.Tensor:
        """All paths at once: the AR recursion vectorised over the (S,) paths, the noise drawn by the head."""
        self._check_fitted()
        y = as_series(context, source="context")
        if len(y) < self.order:  # the start of a series: the stationary law, through step
            return super().sample_paths(context, horizon, num_samples, temperature, seed)
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        p = self.order
        lags = np.tile(y[len(y) - p :][::-1], (num_samples, 1))  # (S, p): newest first
        paths = np.empty((num_samples, horizon))
        for h in range(horizon):
            mean = torch.from_numpy(self.intercept + lags @ self.phi)  # (S,)
            if self.noise is None:
                params = torch.stack([mean, torch.full_like(mean, 0.5 * math.log(self.sigma2))], dim=-1)
            else:
                params = self.head.rescale(self.noise.expand(num_samples, -1), mean, math.sqrt(self.sigma2))
            paths[:, h] = x = self.head.sample(params, temperature, None, generator).double().numpy()
            lags = np.concatenate([x[:, None], lags[:, :-1]], axis=1) if p else lags
        return torch.from_numpy(paths)

    # -- persistence ------------------------------------------------------------------------------------------
    def to_config(self) -> dict:
        self._check_fitted()
        return {
            "config": {
                "order": self.order,
                "max_order": self.max_order,
                "head": self.head_name,
                "components": self.components,
            },
            "fit": {
                "sigma2": self.sigma2,
                "llf": self.llf,
                "aic": self.aic,
                "bic": self.bic,
                "nobs": self.nobs,
                "selection": self.selection,
            },
        }

    @classmethod
    def from_config(cls, config: dict) -> LinearAR:
        model = cls(**config["config"])
        fit = config["fit"]
        model.sigma2, model.llf, model.aic, model.bic = fit["sigma2"], fit["llf"], fit["aic"], fit["bic"]
        model.nobs, model.selection = fit["nobs"], fit["selection"]
        return model

    def state_dict(self) -> dict[str, torch.Tensor]:
        tensors = {"params": torch.from_numpy(self.params), "bse": torch.from_numpy(self.bse)}
        return tensors if self.noise is None else {**tensors, "noise": self.noise}

    def load_state_dict(self, tensors: dict[str, torch.Tensor]) -> None:
        expected = {"params", "bse"} | ({"noise"} if self.head_name != "gaussian" else set())
        if set(tensors) != expected or tensors["params"].shape != (self.order + 1,):
            raise RuntimeError(f"expected {', '.join(sorted(expected))} with params of shape ({self.order + 1},)")
        self.params, self.bse = tensors["params"].numpy(), tensors["bse"].numpy()
        self.noise = tensors.get("noise")

    @classmethod
    def conformance_cases(cls) -> list[ConformanceCase]:
        return [
            ConformanceCase("order 2", "series", lambda y: cls(order=2)),
            ConformanceCase("aic, studentt noise", "series", lambda y: cls(order="aic", max_order=3, head="studentt")),
        ]

    def describe(self) -> str:
        if self.params is None:
            return f"LinearAR(order={self.order or self.selection}, not fitted)"
        how = f", chosen by {self.selection.upper()} over 0..{self.max_order}" if self.selection else ""
        noise = f", {self.head.kind} noise" if self.noise is not None else ""
        return f"LinearAR(order={self.order}{how}, sigma2={self.sigma2:.6g}, nobs={self.nobs}{noise})"
