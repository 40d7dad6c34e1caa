"""Heads: the distribution of the next element, given the parameters a backbone emits.

A head owns its parameterisation, its negative log-likelihood and its sampling, the same for every
model family (darts' likelihood models). Backbones emit ``(..., head.num_params)`` tensors.
Continuous heads: ``Gaussian``, ``StudentT``, ``GaussianMixture`` (``continuous_head(name)``), and
``SkewStudentT`` (GARCH's skewed-t noise); ``LinearPool``, a weighted mixture of other heads (``seqlab.models.Pool``).
Vector-valued elements (frames of ``D`` values, e.g. vocoder features or several price columns): ``FrameHead``, one
continuous head per dimension beside ``Bernoulli`` for the binary columns, independent given the parameters.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from scipy.special import stdtr, stdtrit  # the t distribution's CDF and inverse CDF; torch has neither

from seqlab.errors import SeqlabError


class Head:
    """Interface: ``num_params``, ``nll(params, x)``, ``sample(params, ...)``; continuous heads add ``mean``,
    ``cdf``, ``quantile`` and ``rescale``."""

    kind: str = ""
    num_params: int = 0
    discrete: bool = False

    def nll(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """-log p(x | params), elementwise over the leading dimensions."""
        raise NotImplementedError

    def sample(
        self,
        params: torch.Tensor,
        temperature: float = 1.0,
        top_k: int | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        raise NotImplementedError

    # Continuous heads also give the mean and quantiles of the next element, and map their parameters
    # through x -> location + scale * x (the models predict standardised values).
    def mean(self, params: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def cdf(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """P(X <= x | params), elementwise over the leading dimensions."""
        raise NotImplementedError

    def quantile(self, params: torch.Tensor, q: float | torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def rescale(self, params: torch.Tensor, location, scale) -> torch.Tensor:
        raise NotImplementedError


class Categorical(Head):
    """``p(x = v) = softmax(logits)_v`` over ``V`` classes; params are the logits ``(..., V)``."""

    kind = "categorical"
    discrete = True

    def __init__(self, num_classes: int) -> None:
        if num_classes < 2:
            raise SeqlabError(f"a categorical head needs at least 2 classes, got {num_classes}")
        self.num_params = self.num_classes = num_classes

    def nll(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.cross_entropy(
            params.reshape(-1, self.num_classes), x.reshape(-1), reduction="none"
        ).reshape(x.shape)

    def sample(self, params, temperature=1.0, top_k=None, generator=None) -> torch.Tensor:
        """Draw from ``softmax(logits / temperature)`` restricted to the ``top_k`` most likely classes."""
        _check_temperature(temperature)
        logits = params.float() / temperature
        if top_k is not None:
            if top_k < 1:
                raise SeqlabError(f"top_k must be at least 1, got {top_k}")
            kth = torch.topk(logits, min(top_k, self.num_classes), dim=-1).values[..., -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        probs = torch.softmax(logits, dim=-1)
        flat = torch.multinomial(probs.reshape(-1, self.num_classes), 1, generator=generator)
        return flat.reshape(probs.shape[:-1])


class Gaussian(Head):
    """``p(x) = N(x; mu, sigma^2)``; params ``(..., 2)`` are ``(mu, log sigma)``."""

    kind = "gaussian"
    num_params = 2

    def nll(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        mu, log_sigma = params[..., 0], params[..., 1]
        return 0.5 * math.log(2 * math.pi) + log_sigma + 0.5 * ((x - mu) / log_sigma.exp()) ** 2

    def sample(self, params, temperature=1.0, top_k=None, generator=None) -> torch.Tensor:
        """``mu + temperature * sigma * eps``: the temperature scales the spread."""
        _check_temperature(temperature)
        mu, sigma = params[..., 0], params[..., 1].exp()
        eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype)
        return mu + temperature * sigma * eps

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return params[..., 0]

    def cdf(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        mu, sigma = params[..., 0], params[..., 1].exp()
        return 0.5 * (1 + torch.erf((x - mu) / (sigma * math.sqrt(2.0))))

    def quantile(self, params: torch.Tensor, q: float | torch.Tensor) -> torch.Tensor:
        mu, sigma = params[..., 0], params[..., 1].exp()
        q = torch.as_tensor(q, dtype=mu.dtype)
        return mu + sigma * math.sqrt(2.0) * torch.erfinv(2.0 * q - 1.0)

    def rescale(self, params: torch.Tensor, location, scale) -> torch.Tensor:
        return torch.stack([params[..., 0] * scale + location, params[..., 1] + _log_of(scale, params)], -1)


class StudentT(Head):
    """Student's t with location ``mu``, scale ``sigma`` and ``nu > 2`` degrees of freedom (finite variance):

        p(x) = Gamma((nu+1)/2) / (Gamma(nu/2) sqrt(nu pi) sigma) * (1 + z^2 / nu)^(-(nu+1)/2),  z = (x - mu) / sigma

    params ``(..., 3)`` are ``(mu, log sigma, nu_raw)`` with ``nu = 2 + softplus(nu_raw)``. Heavy tails suit
    daily returns, whose large moves a Gaussian calls impossible. Samples are drawn by inversion of the CDF.
    """

    kind = "studentt"
    num_params = 3

    @staticmethod
    def unpack(params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return params[..., 0], params[..., 1].exp(), 2.0 + torch.nn.functional.softplus(params[..., 2])

    def nll(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        mu, sigma, nu = self.unpack(params)
        z = (x - mu) / sigma
        log_norm = torch.lgamma((nu + 1) / 2) - torch.lgamma(nu / 2) - 0.5 * torch.log(nu * math.pi) - sigma.log()
        return -(log_norm - (nu + 1) / 2 * torch.log1p(z**2 / nu))

    def sample(self, params, temperature=1.0, top_k=None, generator=None) -> torch.Tensor:
        _check_temperature(temperature)
        u = torch.rand(params.shape[:-1], generator=generator, dtype=torch.float64)
        mu = params[..., 0]
        return mu + temperature * (self.quantile(params, u.to(params.dtype)) - mu)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return params[..., 0]  # nu > 2: the mean exists and is mu

    def cdf(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        mu, sigma, nu = (v.detach().double().cpu() for v in self.unpack(params))
        z = ((x.detach().double().cpu() - mu) / sigma).expand(mu.shape)
        return torch.as_tensor(stdtr(nu.numpy(), z.numpy())).to(params.dtype).to(params.device)

    def quantile(self, params: torch.Tensor, q: float | torch.Tensor) -> torch.Tensor:
        mu, sigma, nu = self.unpack(params)
        q = torch.as_tensor(q, dtype=torch.float64).expand(mu.shape)
        t = torch.as_tensor(stdtrit(nu.detach().double().cpu().numpy(), q.cpu().numpy()))  # a scalar for 0-d params
        return mu + sigma * t.to(mu.dtype).to(mu.device)

    def rescale(self, params: torch.Tensor, location, scale) -> torch.Tensor:
        log_scale = _log_of(scale, params)
        return torch.stack([params[..., 0] * scale + location, params[..., 1] + log_scale, params[..., 2]], -1)


class SkewStudentT(Head):
    """Hansen's (1994) skewed t, standardised to mean 0 and variance 1, at location ``mu`` and scale ``sigma``
    (the standard deviation), as the ``arch`` package defines it, with ``z = (x - mu) / sigma``:

        p(x) = b c / sigma (1 + ((b z + a) / (1 + sgn(z + a/b) lam))^2 / (eta - 2))^(-(eta+1)/2)
        c = Gamma((eta+1)/2) / (sqrt(pi (eta-2)) Gamma(eta/2)),  a = 4 lam c (eta-2)/(eta-1),  b^2 = 1 + 3 lam^2 - a^2

    params ``(..., 4)`` are ``(mu, log sigma, eta_raw, lam_raw)`` with ``eta = 2 + softplus(eta_raw)`` and
    ``lam = tanh(lam_raw)`` in (-1, 1); ``lam < 0`` leans left. Samples by inversion of the CDF.
    """

    kind = "skewt"
    num_params = 4

    @staticmethod
    def unpack(params: torch.Tensor):
        eta = 2.0 + torch.nn.functional.softplus(params[..., 2])
        lam = torch.tanh(params[..., 3])
        log_c = torch.lgamma((eta + 1) / 2) - torch.lgamma(eta / 2) - 0.5 * torch.log(math.pi * (eta - 2))
        a = 4 * lam * log_c.exp() * (eta - 2) / (eta - 1)
        b = torch.sqrt(1 + 3 * lam**2 - a**2)
        return params[..., 0], params[..., 1].exp(), eta, lam, a, b, log_c

    def nll(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        mu, sigma, eta, lam, a, b, log_c = self.unpack(params)
        z = (x - mu) / sigma
        r = ((b * z + a) / (1 + torch.sign(z + a / b) * lam)) ** 2
        return -(b.log() + log_c - sigma.log() - (eta + 1) / 2 * torch.log1p(r / (eta - 2)))

    def sample(self, params, temperature=1.0, top_k=None, generator=None) -> torch.Tensor:
        _check_temperature(temperature)
        u = torch.rand(params.shape[:-1], generator=generator, dtype=torch.float64)
        mu = params[..., 0]
        return mu + temperature * (self.quantile(params, u.to(params.dtype)) - mu)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return params[..., 0]  # standardised: mean 0

    def cdf(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The t CDF of ``t = (b z + a) / ((1 -+ lam) sqrt(1 - 2 / eta))`` on the side ``z`` falls on (left of
        the mode ``-a / b``: ``(1 - lam) T(t)``, else ``(1 - lam) / 2 + (1 + lam) (T(t) - 1/2)``)."""
        mu, sigma, eta, lam, a, b, _ = (v.detach().double().cpu() for v in self.unpack(params))
        z = (x.detach().double().cpu() - mu) / sigma
        u = b * z + a
        side = torch.where(u < 0, 1 - lam, 1 + lam)
        level = torch.as_tensor(stdtr(eta.numpy(), (u / (side * torch.sqrt(1 - 2 / eta))).numpy()))
        p = torch.where(u < 0, (1 - lam) * level, (1 - lam) / 2 + (1 + lam) * (level - 0.5))
        return p.to(params.dtype).to(params.device)

    def quantile(self, params: torch.Tensor, q: float | torch.Tensor) -> torch.Tensor:
        """Inverse CDF: the t quantile of the side ``q`` falls on, stretched by ``1 -+ lam``, then standardised."""
        mu, sigma, eta, lam, a, b, _ = (v.detach().double().cpu() for v in self.unpack(params))
        q = torch.as_tensor(q, dtype=torch.float64).expand(mu.shape)
        left = q < (1 - lam) / 2
        level = torch.where(left, q / (1 - lam), 0.5 + (q - (1 - lam) / 2) / (1 + lam))
        t = torch.as_tensor(stdtrit(eta.numpy(), level.numpy()))
        z = (t * (1 + torch.sign(q - (1 - lam) / 2) * lam) * torch.sqrt(1 - 2 / eta) - a) / b
        return params[..., 0] + params[..., 1].exp() * z.to(params.dtype).to(params.device)

    def rescale(self, params: torch.Tensor, location, scale) -> torch.Tensor:
        log_scale = _log_of(scale, params)
        first = [params[..., 0] * scale + location, params[..., 1] + log_scale]
        return torch.stack([*first, params[..., 2], params[..., 3]], -1)


class GaussianMixture(Head):
    """``p(x) = sum_k w_k N(x; mu_k, sigma_k^2)`` with ``K`` components; params ``(..., 3K)`` are the mixture
    logits (``w = softmax``), the means and the log standard deviations, in that order."""

    kind = "mixture"

    def __init__(self, components: int = 3) -> None:
        if components < 1:
            raise SeqlabError(f"a mixture needs at least 1 component, got {components}")
        self.components = components
        self.num_params = 3 * components

    def unpack(self, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        logits, mu, log_sigma = params.split(self.components, dim=-1)
        return torch.log_softmax(logits, dim=-1), mu, log_sigma

    def nll(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        log_w, mu, log_sigma = self.unpack(params)
        z = (x[..., None] - mu) / log_sigma.exp()
        log_pdf = -0.5 * math.log(2 * math.pi) - log_sigma - 0.5 * z**2
        return -torch.logsumexp(log_w + log_pdf, dim=-1)

    def sample(self, params, temperature=1.0, top_k=None, generator=None) -> torch.Tensor:
        """A component by its weight, then ``mu_k + temperature * sigma_k * eps``."""
        _check_temperature(temperature)
        log_w, mu, log_sigma = self.unpack(params)
        flat = torch.multinomial(log_w.exp().reshape(-1, self.components).float(), 1, generator=generator)
        k = flat.reshape(mu.shape[:-1] + (1,))
        eps = torch.randn(k.shape, generator=generator, dtype=mu.dtype)
        t = torch.as_tensor(temperature, dtype=mu.dtype)[..., None]  # a float, or one per leading element
        return (mu.gather(-1, k) + t * log_sigma.gather(-1, k).exp() * eps)[..., 0]

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        log_w, mu, _ = self.unpack(params)
        return (log_w.exp() * mu).sum(-1)

    def cdf(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        log_w, mu, log_sigma = self.unpack(params)
        z = (x[..., None] - mu) / log_sigma.exp()
        return (log_w.exp() * 0.5 * (1 + torch.erf(z / math.sqrt(2.0)))).sum(-1)

    def quantile(self, params: torch.Tensor, q: float | torch.Tensor) -> torch.Tensor:
        """The mixture CDF has no closed-form inverse: bisection, 80 halvings of a bracket that holds it."""
        _, mu, log_sigma = self.unpack(params.double())
        spread = 12 * log_sigma.exp()
        lo, hi = (mu - spread).min(-1).values, (mu + spread).max(-1).values
        q = torch.as_tensor(q, dtype=torch.float64).expand(lo.shape)
        for _ in range(80):
            mid = 0.5 * (lo + hi)
            below = self.cdf(params.double(), mid) < q
            lo, hi = torch.where(below, mid, lo), torch.where(below, hi, mid)
        return (0.5 * (lo + hi)).to(params.dtype)

    def rescale(self, params: torch.Tensor, location, scale) -> torch.Tensor:
        logits, mu, log_sigma = params.split(self.components, dim=-1)
        location = torch.as_tensor(location, dtype=params.dtype, device=params.device)[..., None]  # per component
        scale = torch.as_tensor(scale, dtype=params.dtype, device=params.device)[..., None]
        return torch.cat([logits, mu * scale + location, log_sigma + torch.log(scale)], -1)


class LinearPool(Head):
    """A weighted mixture of other continuous heads: ``p(x) = sum_k w_k p_k(x | params_k)`` (a linear pool of
    predictive densities). ``weights (K,)`` are fixed (non-negative, summing to 1); params ``(..., P_1 + ... +
    P_K)`` are the heads' parameters concatenated in order."""

    kind = "pool"

    def __init__(self, heads: list[Head], weights: torch.Tensor) -> None:
        if len(heads) != len(weights) or not heads:
            raise SeqlabError(f"a pool needs one weight per head: {len(heads)} heads, {len(weights)} weights")
        self.heads, self.weights = list(heads), torch.as_tensor(weights, dtype=torch.float64)
        self.sizes = [h.num_params for h in self.heads]
        self.num_params = sum(self.sizes)

    def split(self, params: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return params.split(self.sizes, dim=-1)

    def component_log_probs(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """(..., K): ``log w_k + log p_k(x)`` (a zero weight gives -inf)."""
        parts = self.split(params.double())
        log_p = torch.stack([-h.nll(p, x.double()) for h, p in zip(self.heads, parts, strict=True)], -1)
        return torch.log(self.weights) + log_p

    def nll(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return -torch.logsumexp(self.component_log_probs(params, x), dim=-1).to(params.dtype)

    def sample(self, params, temperature=1.0, top_k=None, generator=None) -> torch.Tensor:
        """A head by its weight, then a draw from it (the temperature passed on)."""
        _check_temperature(temperature)
        parts = self.split(params)
        draws = torch.stack(
            [h.sample(p, temperature, None, generator).double() for h, p in zip(self.heads, parts, strict=True)], -1
        )
        k = torch.multinomial(self.weights.float(), draws[..., 0].numel(), replacement=True, generator=generator)
        return (
            draws.reshape(-1, len(self.heads)).gather(-1, k[:, None])[:, 0].reshape(draws.shape[:-1]).to(params.dtype)
        )

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        means = torch.stack([h.mean(p).double() for h, p in zip(self.heads, self.split(params), strict=True)], -1)
        return (means * self.weights).sum(-1).to(params.dtype)

    def cdf(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        cdfs = torch.stack([h.cdf(p, x).double() for h, p in zip(self.heads, self.split(params), strict=True)], -1)
        return (cdfs * self.weights).sum(-1).to(params.dtype)

    def quantile(self, params: torch.Tensor, q: float | torch.Tensor) -> torch.Tensor:
        """Bisection, 80 halvings, between the smallest and largest of the heads' own ``q`` quantiles (the
        pool's CDF there is at most and at least ``q``)."""
        params = params.double()
        each = torch.stack([h.quantile(p, q).double() for h, p in zip(self.heads, self.split(params), strict=True)], -1)
        lo, hi = each.min(-1).values, each.max(-1).values
        q = torch.as_tensor(q, dtype=torch.float64).expand(lo.shape)
        for _ in range(80):
            mid = 0.5 * (lo + hi)
            below = self.cdf(params, mid) < q
            lo, hi = torch.where(below, mid, lo), torch.where(below, hi, mid)
        return 0.5 * (lo + hi)


class Bernoulli(Head):
    """``p(x = 1) = sigmoid(l)`` for a binary value ``x`` in {0, 1}; params ``(..., 1)`` are the logit ``l``.

        -log p(x) = softplus(l) - x l

    The temperature divides the logit (``T < 1`` sharpens towards the likelier value), as ``Categorical``'s does."""

    kind = "bernoulli"
    num_params = 1

    def nll(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.binary_cross_entropy_with_logits(
            params[..., 0], x.to(params.dtype), reduction="none"
        )

    def sample(self, params, temperature=1.0, top_k=None, generator=None) -> torch.Tensor:
        _check_temperature(temperature)
        p = torch.sigmoid(params[..., 0] / temperature)
        return (torch.rand(p.shape, generator=generator, dtype=p.dtype) < p).to(params.dtype)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(params[..., 0])

    def quantile(self, params: torch.Tensor, q: float | torch.Tensor) -> torch.Tensor:
        """The smallest x in {0, 1} with P(X <= x) >= q: 1 where q > 1 - p."""
        q = torch.as_tensor(q, dtype=params.dtype, device=params.device)
        return (q > 1 - self.mean(params)).to(params.dtype)

    def rescale(self, params: torch.Tensor, location, scale) -> torch.Tensor:
        return params  # a probability has no scale


class FrameHead(Head):
    """A frame ``x (..., D)`` of ``D`` values, independent given the parameters: the ``binary`` dimensions by
    ``Bernoulli``, every other dimension ``d`` by ``per_dimension`` (a continuous head: ``Gaussian`` makes a
    diagonal Gaussian, ``GaussianMixture(K)`` a K-component mixture per dimension) with parameters of its own:

        -log p(x) = sum_{d continuous} -log p(x_d; theta_d) + sum_{d binary} softplus(l_d) - x_d l_d

    params ``(..., Dc * p + Db)``: the ``Dc`` continuous dimensions' ``p`` parameters each (dimension-major), then
    the ``Db`` binary logits. ``nll`` gives one value per frame ``(...)``; ``sample``, ``mean`` and ``quantile``
    give frames ``(..., D)``. The temperature is a number or one per dimension ``(D,)``: it scales the spread of a
    continuous dimension and divides the logit of a binary one.
    """

    kind = "frames"

    def __init__(self, dims: int, binary: Sequence[int] = (), per_dimension: Head | None = None) -> None:
        binary = sorted(int(d) for d in binary)
        if dims < 1 or len(set(binary)) != len(binary) or any(not 0 <= d < dims for d in binary):
            raise SeqlabError(
                f"a frame head needs dims >= 1 and distinct binary dimensions in [0, {dims}), got "
                f"dims={dims}, binary={binary}"
            )
        self.dims, self.binary = dims, binary
        self.continuous = [d for d in range(dims) if d not in set(binary)]
        self.per_dimension = per_dimension if per_dimension is not None else Gaussian()
        self.bernoulli = Bernoulli()
        self.p = self.per_dimension.num_params
        self.num_params = len(self.continuous) * self.p + len(binary)
        # index tensors made once (a list index costs a conversion per call: streaming calls this per frame)
        self.continuous_index = torch.tensor(self.continuous, dtype=torch.long)
        self.binary_index = torch.tensor(binary, dtype=torch.long)
        # (continuous values, binary values) concatenated, then put back in the frame's order
        self.order = torch.argsort(torch.tensor(self.continuous + binary, dtype=torch.long))
        self.components = getattr(self.per_dimension, "components", 1)

    def split(self, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """params (..., P) -> continuous params (..., Dc, p) and binary logits (..., Db, 1)."""
        n = len(self.continuous) * self.p
        lead = params.shape[:-1]
        return params[..., :n].reshape(*lead, len(self.continuous), self.p), params[..., n:, None]

    def join(self, continuous: torch.Tensor, binary: torch.Tensor) -> torch.Tensor:
        """(..., Dc) and (..., Db) -> frames (..., D)."""
        return torch.cat([continuous, binary.to(continuous.dtype)], dim=-1)[..., self.order.to(continuous.device)]

    def parts(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Frames (..., D) -> their continuous (..., Dc) and binary (..., Db) values."""
        device = x.device
        return x[..., self.continuous_index.to(device)], x[..., self.binary_index.to(device)]

    def nll(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        theta, logits = self.split(params)
        x_continuous, x_binary = self.parts(x)
        return self.per_dimension.nll(theta, x_continuous).sum(-1) + self.bernoulli.nll(logits, x_binary).sum(-1)

    def sample(self, params, temperature=1.0, top_k=None, generator=None) -> torch.Tensor:
        _check_temperature(temperature)
        t_continuous = t_binary = temperature
        if isinstance(temperature, torch.Tensor) and temperature.dim() > 0:
            if temperature.shape != (self.dims,):
                raise SeqlabError(f"give one temperature or {self.dims}, got {tuple(temperature.shape)}")
            temperature = temperature.to(params.dtype)
            t_continuous, t_binary = self.parts(temperature)
        theta, logits = self.split(params)
        continuous = self.per_dimension.sample(theta, t_continuous, None, generator)
        return self.join(continuous, self.bernoulli.sample(logits, t_binary, None, generator))

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        theta, logits = self.split(params)
        return self.join(self.per_dimension.mean(theta), self.bernoulli.mean(logits))

    def quantile(self, params: torch.Tensor, q: float | torch.Tensor) -> torch.Tensor:
        """Per dimension (the marginal quantiles)."""
        theta, logits = self.split(params)
        return self.join(self.per_dimension.quantile(theta, q), self.bernoulli.quantile(logits, q))

    def rescale(self, params: torch.Tensor, location, scale) -> torch.Tensor:
        """Continuous dimension ``d`` through ``x -> location[d] + scale[d] x`` (location, scale: (D,))."""
        location = torch.as_tensor(location, dtype=params.dtype, device=params.device)
        scale = torch.as_tensor(scale, dtype=params.dtype, device=params.device)
        theta, logits = self.split(params)
        location, scale = self.parts(location), self.parts(scale)
        theta = self.per_dimension.rescale(theta, location[0], scale[0])
        return torch.cat([theta.flatten(-2), logits[..., 0]], dim=-1)


class LogTransformed(Head):
    """``X = exp(Y)`` with ``Y`` from a continuous ``base`` head (a log-normal from a Gaussian, a log-t from a
    Student-t): the head of a model that predicts the log of positive values. params are ``base``'s, of ``log x``;
    ``nll(x) = base.nll(log x) + log x`` (the change of variables), ``-log 0 = inf`` for ``x <= 0``. Its mean is
    given for a Gaussian base only (``exp(mu + sigma^2 / 2)``); a log-t has none."""

    def __init__(self, base: Head) -> None:
        self.base = base
        self.kind = f"log-{base.kind}"
        self.num_params = base.num_params

    def nll(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        positive = x > 0
        log_x = torch.log(torch.where(positive, x, torch.ones_like(x)))
        nll = self.base.nll(params, log_x) + log_x
        return torch.where(positive, nll, torch.full_like(nll, math.inf))

    def sample(self, params, temperature=1.0, top_k=None, generator=None) -> torch.Tensor:
        return self.base.sample(params, temperature, top_k, generator).exp()

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        if isinstance(self.base, Gaussian):
            return (params[..., 0] + 0.5 * (2 * params[..., 1]).exp()).exp()
        raise SeqlabError(f"no mean for a {self.kind} head (a log-t has none); use its quantiles (the median)")

    def cdf(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        positive = x > 0
        cdf = self.base.cdf(params, torch.log(torch.where(positive, x, torch.ones_like(x))))
        return torch.where(positive, cdf, torch.zeros_like(cdf))

    def quantile(self, params: torch.Tensor, q: float | torch.Tensor) -> torch.Tensor:
        return self.base.quantile(params, q).exp()

    def rescale(self, params: torch.Tensor, location, scale) -> torch.Tensor:
        """``scale * X`` is ``exp(Y + log scale)``; a shift of ``X`` is no longer a log-something, so refused."""
        if torch.any(torch.as_tensor(location) != 0):
            raise SeqlabError(f"a {self.kind} head can be scaled, not shifted")
        return self.base.rescale(params, _log_of(scale, params), 1.0)


CONTINUOUS_HEADS = ("gaussian", "studentt", "mixture")


def continuous_head(name: str, components: int = 3) -> Head:
    """The head called ``name`` (one of ``CONTINUOUS_HEADS``); ``components`` for the mixture."""
    if name == "gaussian":
        return Gaussian()
    if name == "studentt":
        return StudentT()
    if name == "mixture":
        return GaussianMixture(components)
    raise SeqlabError(f"unknown head {name!r}; choose one of {', '.join(CONTINUOUS_HEADS)}")


def _log_of(scale, like: torch.Tensor) -> torch.Tensor:
    return torch.log(torch.as_tensor(scale, dtype=like.dtype, device=like.device))


def _check_temperature(temperature: float | torch.Tensor) -> None:
    """A positive temperature: a number, or a tensor of them (one per dimension of a frame)."""
    if isinstance(temperature, torch.Tensor):
        if not bool(((temperature > 0) & torch.isfinite(temperature)).all()):
            raise SeqlabError(f"temperatures must be positive, got {temperature.tolist()}")
    elif temperature <= 0:
        raise SeqlabError(f"temperature must be positive, got {temperature}")
