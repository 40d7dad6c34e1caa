"""Heads: the distribution of the next element, given the parameters a backbone emits.

A head owns its parameterisation, its negative log-likelihood and its sampling, the same for every
model family (darts' likelihood models). Backbones emit ``(..., head.num_params)`` tensors.
Continuous heads (Gaussian, StudentT, mixtures) plug in through the same four methods.
"""

from __future__ import annotations

import math

import torch


class Head:
    """Interface: ``num_params``, ``nll(params, x)``, ``sample(params, ...)``."""

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


class Categorical(Head):
    """``p(x = v) = softmax(logits)_v`` over ``V`` classes; params are the logits ``(..., V)``."""

    kind = "categorical"
    discrete = True

    def __init__(self, num_classes: int) -> None:
        if num_classes < 2:
            raise ValueError(f"a categorical head needs at least 2 classes, got {num_classes}")
        self.num_params = self.num_classes = num_classes

    def nll(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.cross_entropy(
            params.reshape(-1, self.num_classes), x.reshape(-1), reduction="none"
        ).reshape(x.shape)

    def sample(self, params, temperature=1.0, top_k=None, generator=None) -> torch.Tensor:
        """Draw from ``softmax(logits / temperature)`` restricted to the ``top_k`` most likely classes."""
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        logits = params.float() / temperature
        if top_k is not None:
            if top_k < 1:
                raise ValueError(f"top_k must be at least 1, got {top_k}")
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
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        mu, sigma = params[..., 0], params[..., 1].exp()
        eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype)
        return mu + temperature * sigma * eps

    def quantile(self, params: torch.Tensor, q: float) -> torch.Tensor:
        mu, sigma = params[..., 0], params[..., 1].exp()
        return mu + sigma * math.sqrt(2.0) * torch.erfinv(torch.tensor(2.0 * q - 1.0, dtype=mu.dtype))
