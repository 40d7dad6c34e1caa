"""``SequenceModel``: the one interface of every model in seqlab.

Every model factorises ``P(x_1..x_T) = prod_s P(x_s | x_<s)`` and differs only in what it keeps of
the past. A model implements ``fit``, ``log_prob``, ``initial_state`` and ``step``; ``sample`` is
written here once, on top of ``step``, so every family gets it, and so is ``forecast`` for continuous data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from seqlab.distributions import Head
from seqlab.errors import SeqlabError

LOG_PROB_CHUNK = 4096  # steps per forward pass in teacher_forced_log_prob: bounds memory on long inputs


@torch.no_grad()
def teacher_forced_log_prob(
    model: torch.nn.Module, x: torch.Tensor, first: float, chunk: int | None = None
) -> torch.Tensor:
    """``log P(x_s | x_<s)`` from a network ``model(x_prev (1, T), state) -> (params, state)``: one pass over
    chunks with the state carried, ``x_prev`` being ``x`` shifted right behind ``first`` (the start symbol)."""
    was_training = model.training
    model.eval()
    chunk = chunk or LOG_PROB_CHUNK
    x_prev = torch.cat([x.new_full((1, *x.shape[1:]), first), x[:-1]])[None]  # (1, T[, 1 + C])
    target = x[..., 0] if x.dim() > 1 else x  # elements with covariates: only the value is predicted
    state, out = None, []
    for s in range(0, x.shape[0], chunk):
        params, state = model(x_prev[:, s : s + chunk], state)
        out.append(-model.head.nll(params[0], target[s : s + chunk]))
    model.train(was_training)
    return torch.cat(out) if out else torch.zeros(0)


class SequenceModel:
    """Interface:

    - ``fit(train, valid=None, ...)``: counts/closed form, or gradient training through ``Trainer``;
    - ``log_prob(x) -> (T,)``: ``log P(x_s | x_<s)`` for every position, ``x_1`` conditioned on the
      start of the sequence; its sum is the joint log-likelihood, minus its mean the NLL per step;
    - ``initial_state()`` and ``step(x_prev, state) -> (params, state)``: streaming, ``params`` are the
      head's parameters of the next element (``x_prev=None`` means the start of the sequence);
    - ``sample(prompt, length, ...)``: built on ``step``, O(1) work per generated element for latent models;
    - ``forecast(context, horizon, num_samples)``: sample paths through ``step``, quantiles on the data's scale.
    """

    head: Head

    def fit(self, train: Any, valid: Any = None, **options: Any) -> Any:
        raise NotImplementedError

    def log_prob(self, x: Any) -> torch.Tensor:
        raise NotImplementedError

    def initial_state(self) -> Any:
        raise NotImplementedError

    def step(self, x_prev: torch.Tensor | None, state: Any) -> tuple[torch.Tensor, Any]:
        raise NotImplementedError

    # Conversions between user data (text, arrays) and the model's element tensors.
    def encode(self, data: Any) -> torch.Tensor:
        return torch.as_tensor(data)

    def decode(self, x: torch.Tensor) -> Any:
        return x

    @torch.no_grad()
    def sample_elements(
        self,
        prompt: torch.Tensor,
        length: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        seed: int | None = None,
    ) -> torch.Tensor:
        """Continue ``prompt`` (P,) by ``length`` elements drawn one at a time through ``step``."""
        if length < 0:
            raise ValueError(f"length must be non-negative, got {length}")
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        state = self.initial_state()
        params, state = self.step(None, state)
        for x in prompt:  # condition on the prompt: one step per element, never re-run
            params, state = self.step(x, state)
        out = []
        for _ in range(length):
            x = self.head.sample(params.cpu(), temperature, top_k, generator)  # the generator lives on the CPU
            out.append(x)
            params, state = self.step(x, state)
        return torch.stack(out) if out else prompt.new_zeros((0,))

    def sample(
        self,
        prompt: Any = "",
        length: int = 200,
        temperature: float = 1.0,
        top_k: int | None = None,
        seed: int | None = None,
    ) -> Any:
        """Decoded continuation of ``prompt`` (the prompt itself is not repeated)."""
        prompt_x = self.encode(prompt)
        return self.decode(self.sample_elements(prompt_x, length, temperature, top_k, seed))

    @torch.no_grad()
    def sample_paths(
        self, context: torch.Tensor, horizon: int, num_samples: int, temperature: float = 1.0, seed: int | None = None
    ) -> torch.Tensor:
        """``num_samples`` continuations (S, horizon) of ``context`` (the model's elements), each drawn one
        element at a time through ``step`` from the state the context left. Models that can run a batch of
        paths at once override this with a faster, equivalent version."""
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        params, state = self.step(None, self.initial_state())
        for x in context:
            params, state = self.step(x, state)
        paths = torch.empty(num_samples, horizon, dtype=torch.float64)
        for s in range(num_samples):
            p, st = params, state
            for h in range(horizon):
                paths[s, h] = x = self.head.sample(p.cpu(), temperature, None, generator)
                p, st = self.step(x, st)
        return paths

    def forecast(
        self,
        context,
        horizon: int,
        num_samples: int = 500,
        quantiles: tuple[float, ...] = (0.1, 0.5, 0.9),
        seed: int | None = 0,
        covariates=None,
    ) -> Forecast:
        """Probabilistic forecast of the ``horizon`` values after ``context`` (on the data's original scale):
        sample paths through ``step``, mapped back through the model's ``transform`` if it has one, and their
        empirical quantiles and mean per step ahead. A model with past covariates takes them as
        ``covariates (n, C)``, row by row beside ``context (n,)``."""
        from seqlab.models.linear_ar import as_series

        if self.head.discrete:
            raise SeqlabError(f"forecast needs a model of continuous data; this {type(self).__name__} is discrete")
        if horizon <= 0 or num_samples <= 0:
            raise SeqlabError(f"horizon and num_samples must be positive, got {horizon} and {num_samples}")
        for q in quantiles:
            if not 0.0 < q < 1.0:
                raise SeqlabError(f"quantiles must be in (0, 1), got {q}")
        original = as_series(context, model=type(self).__name__, source="context")
        transform = getattr(self, "transform", None)
        lost = transform.lost if transform is not None else 0
        if len(original) < lost + 1:
            raise SeqlabError(f"the context has {len(original)} values; this model needs at least {lost + 1}")
        modelled = torch.from_numpy(transform.apply(original, "context") if transform is not None else original)
        wanted = getattr(getattr(self, "elements", None), "covariates", 0)
        if wanted:
            covariates = np.asarray(covariates if covariates is not None else np.zeros((0, 0)), dtype=np.float64)
            if covariates.shape != (len(original), wanted):
                raise SeqlabError(
                    f"this model takes {wanted} covariates beside each context value: expected covariates of "
                    f"shape ({len(original)}, {wanted}), got {covariates.shape}"
                )
            modelled = torch.cat([modelled[:, None], torch.from_numpy(covariates[lost:])], dim=1)  # (n, 1 + C)
        elif covariates is not None:
            raise SeqlabError("this model takes no covariates")
        paths = self.sample_paths(modelled, horizon, num_samples, seed=seed).double().numpy()
        if transform is not None:
            paths = transform.invert(paths, original)
        return Forecast(paths, {q: np.quantile(paths, q, axis=0) for q in quantiles}, paths.mean(axis=0))


@dataclass
class Forecast:
    samples: np.ndarray  # (S, horizon) sample paths on the original scale
    quantiles: dict[float, np.ndarray]  # q -> (horizon,)
    mean: np.ndarray  # (horizon,)
