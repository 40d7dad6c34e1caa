"""``SequenceModel``: the one interface of every model in seqlab, declared in full.

Every model factorises ``P(x_1..x_T) = prod_s P(x_s | x_<s)`` and differs only in what it keeps of the
past. What every caller (the application layer, the CLI, the conformance suite) may rely on:

- ``kind`` (class attribute): the name it is saved and registered under (``MODELS``, filled by
  subclassing: a class that declares its own ``kind`` is registered, so a new family needs no wiring);
- ``encode(data, *, unknown, source) -> elements`` and ``decode(elements)``: user data <-> the model's tensors;
- ``to_config() -> dict`` / ``from_config(dict)`` and ``state_dict()`` / ``load_state_dict(tensors)``:
  the persistence round trip (``seqlab.io``); ``data_spec`` records the data it was trained on;
- ``describe() -> str``: one line for people;
- ``fit(train, valid=None, **options) -> self``: counts / closed form, or the one ``Trainer``; the training
  record (a ``TrainingResult`` for the neural models, else None) is kept as ``training_result``;
- ``log_prob(x) -> (T,)``: ``log P(x_s | x_<s)``, ``x_1`` conditioned on the start of the sequence;
- ``initial_state()`` and ``step(x_prev, state) -> (params, state)``: streaming in inference mode (no dropout,
  no gradient), ``params`` the head's parameters of the next element (``x_prev=None``: the start);
- ``sample(prompt, length, ...)``: decoded continuation; ``sample_elements`` is each model's fastest exact path
  (written here once on ``step``; the discrete latent models override it with the streaming sampler);
  ``draw(params, temperature, top_k, generator)`` is the next element from ``step``'s params (the head's
  sample; a model of frames also clamps it to the training range);
- ``forecast(context, horizon, ...) -> Forecast``: one type for every continuous model; sample paths through
  ``sample_paths``, quantiles on the data's scale; a model with a closed form (``closed_form_forecast``)
  gets exact quantiles and mean behind the same call.

An operation a model cannot do raises ``seqlab.errors.Unsupported`` (a ``SeqlabError``), never an
``AttributeError``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from seqlab.data.arrays import as_series
from seqlab.data.dataset import Dataset
from seqlab.data.spec import DataSpec
from seqlab.distributions import Head
from seqlab.errors import SeqlabError, Unsupported
from seqlab.transforms import Transform

LOG_PROB_CHUNK = 4096  # steps per forward pass in teacher_forced_log_prob: bounds memory on long inputs
MODELS: dict[str, type[SequenceModel]] = {}  # kind -> class: every SequenceModel that declares its own kind


@torch.no_grad()
def teacher_forced_log_prob(
    model: torch.nn.Module, x: torch.Tensor, first: float, chunk: int | None = None
) -> torch.Tensor:
    """``log P(x_s | x_<s)`` from a network ``model(x_prev (1, T), state) -> (params, state)``: one pass over
    chunks with the state carried, ``x_prev`` being ``x`` shifted right behind ``first`` (the start symbol);
    the head scores ``model.target(x)`` (the elements without their covariates)."""
    was_training = model.training
    model.eval()
    chunk = chunk or LOG_PROB_CHUNK
    x_prev = torch.cat([x.new_full((1, *x.shape[1:]), first), x[:-1]])[None]  # (1, T[, 1 + C])
    target = model.target(x)
    state, out = None, []
    for s in range(0, x.shape[0], chunk):
        params, state = model(x_prev[:, s : s + chunk], state)
        out.append(-model.head.nll(params[0], target[s : s + chunk]))
    model.train(was_training)
    return torch.cat(out) if out else torch.zeros(0)


@dataclass
class ConformanceCase:
    """One small configuration of a model family that ``tests/test_conformance.py`` runs through the contract.

    ``build(train)`` returns an unfitted model for ``train``: text over the symbols ``"abc"`` when ``data`` is
    ``"text"``, a float64 series (T,) when it is ``"series"``, float64 frames (T, 3) whose last column is binary
    when it is ``"frames"``; ``fit_options`` are passed to ``fit``."""

    name: str
    data: str  # "text", "series" or "frames"
    build: Callable[[Any], SequenceModel]
    fit_options: dict = field(default_factory=dict)


@dataclass
class Forecast:
    samples: np.ndarray  # (S, horizon) sample paths on the original scale; (S, horizon, D) for frames
    quantiles: dict[float, np.ndarray]  # q -> (horizon,); (horizon, D) for frames
    mean: np.ndarray  # (horizon,); (horizon, D) for frames
    exact: bool = False  # quantiles and mean from the model's closed form, not from the samples


class SequenceModel:
    """The contract (see the module docstring). Subclasses set ``kind`` and ``head`` and implement ``fit``,
    ``log_prob``, ``initial_state``, ``step``, ``describe`` and the persistence methods they support."""

    kind: ClassVar[str] = ""
    # what one element is, as ``Dataset.elements`` names it: "characters", "samples" (mu-law levels), "values",
    # "frames"; the commands ask this, never the type of a codec, to know what kind of data a model reads
    element_name: str = "values"
    head: Head
    training_result: Any = None  # what fit recorded (TrainingResult for the neural models)
    transform: Transform | None = None  # a model of a transformed series maps forecasts back through it
    data_spec: DataSpec | None = None  # what the model was trained on (saved in config.json)
    num_covariates: int = 0  # past covariates beside each value (continuous neural models)

    def trained_on(self, dataset: Dataset) -> SequenceModel:
        """Record what this is a model of: the data's spec (saved in config.json, read back by the commands) and,
        for a transformed series, the transform that forecasts are mapped back through. Returns the model."""
        self.transform, self.data_spec = dataset.transform, dataset.spec
        return self

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "kind" in cls.__dict__ and cls.kind:
            MODELS[cls.kind] = cls

    # -- what every model implements ----------------------------------------------------------------------
    def fit(self, train: Any, valid: Any = None, **options: Any) -> SequenceModel:
        raise self.unsupported("fit")

    def log_prob(self, x: Any) -> torch.Tensor:
        raise self.unsupported("log_prob")

    def initial_state(self) -> Any:
        raise self.unsupported("initial_state")

    def step(self, x_prev: torch.Tensor | None, state: Any) -> tuple[torch.Tensor, Any]:
        raise self.unsupported("step")

    def describe(self) -> str:
        return type(self).__name__

    # -- persistence (seqlab.io) -----------------------------------------------------------------------------
    def to_config(self) -> dict:
        raise self.unsupported("to_config (saving)")

    @classmethod
    def from_config(cls, config: dict) -> SequenceModel:
        raise Unsupported(f"{cls.__name__} cannot be loaded: it has no from_config")

    @classmethod
    def saved_parts(cls, config: dict) -> list[tuple[str, dict]]:
        """(tensor-name prefix, config) of each saved model this one is made of (a pool's members), for
        ``seqlab.io.load`` to check before anything is built; none for a model of its own."""
        return []

    def state_dict(self) -> dict[str, torch.Tensor]:
        raise self.unsupported("state_dict (saving)")

    def load_state_dict(self, tensors: dict[str, torch.Tensor]) -> Any:
        raise self.unsupported("load_state_dict (loading)")

    def save_files(self, directory: Path) -> None:
        """Write files of the model's own into the folder ``seqlab.io.save`` has just written (after config.json
        and model.safetensors); none by default (``InfiniGram``: its index). A model must load without them."""

    def files_at(self, directory: Path) -> None:
        """``seqlab.io.load`` names the model's folder before ``load_state_dict``, where ``save_files`` may have
        left files to use; nothing by default."""

    @classmethod
    def conformance_cases(cls) -> list[ConformanceCase]:
        """Small configurations the conformance suite runs; a registered family without any fails the suite."""
        return []

    def unsupported(self, operation: str) -> Unsupported:
        return Unsupported(f"{type(self).__name__} does not support {operation}")

    # -- conversions between user data (text, arrays) and the model's element tensors ------------------------
    def encode(self, data: Any, *, unknown: str = "error", source: str = "data") -> torch.Tensor:
        """Continuous models: a float64 series (T,); discrete models override this with their vocabulary."""
        return torch.from_numpy(as_series(data, model=type(self).__name__, source=source))

    def decode(self, x: torch.Tensor) -> Any:
        return x

    # -- sampling -----------------------------------------------------------------------------------------------
    def draw(
        self, params: torch.Tensor, temperature: float = 1.0, top_k: int | None = None, generator=None
    ) -> torch.Tensor:
        """The next element drawn from the head's ``params`` (what ``step`` returned)."""
        return self.head.sample(params, temperature, top_k, generator)

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
        check_sampling(length, temperature)
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        state = self.initial_state()
        params, state = self.step(None, state)
        for x in prompt:  # condition on the prompt: one step per element, never re-run
            params, state = self.step(x, state)
        out = []
        never_drawn = self.vocabulary.unknown_id if self.element_name == "characters" else None  # U+FFFD: never drawn
        for _ in range(length):
            if never_drawn is not None:
                params = params.clone()
                params[..., never_drawn] = float("-inf")
            x = self.draw(params.cpu(), temperature, top_k, generator)  # the generator lives on the CPU
            out.append(x)
            params, state = self.step(x, state)
        return torch.stack(out) if out else prompt.new_zeros((0, *prompt.shape[1:]))

    def sample(
        self,
        prompt: Any = "",
        length: int = 200,
        temperature: float = 1.0,
        top_k: int | None = None,
        seed: int | None = None,
    ) -> Any:
        """Decoded continuation of ``prompt`` (the prompt itself is not repeated), by ``sample_elements``."""
        prompt_x = self.encode(prompt, source="prompt")
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
                paths[s, h] = x = self.draw(p.cpu(), temperature, None, generator)
                p, st = self.step(x, st)
        return paths

    # -- forecasting ------------------------------------------------------------------------------------------
    def closed_form_forecast(self, context: np.ndarray, horizon: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Exact Gaussian ``(mean, sd)`` (horizon,) of the next values after ``context`` on the modelled scale,
        for models that have one; None (the default) means: use the sample paths."""
        return None

    def forecast(
        self,
        context: Any,
        horizon: int,
        num_samples: int = 500,
        quantiles: tuple[float, ...] = (0.1, 0.5, 0.9),
        seed: int | None = 0,
        covariates: Any = None,
    ) -> Forecast:
        """Probabilistic forecast of the ``horizon`` values after ``context`` (on the data's original scale):
        sample paths through ``sample_paths``, mapped back through ``transform`` if the model has one, and their
        empirical quantiles and mean per step ahead (exact ones where ``closed_form_forecast`` gives them and no
        transform intervenes). A model with past covariates takes them as ``covariates (n, C)`` beside
        ``context (n,)``."""
        if self.head.discrete:
            raise Unsupported(f"forecast needs a model of continuous data; this {type(self).__name__} is discrete")
        check_forecast(horizon, num_samples, quantiles)
        original = as_series(context, model=type(self).__name__, source="context")
        transform = self.transform
        lost = transform.lost if transform is not None else 0
        if len(original) < lost + 1:
            raise SeqlabError(f"the context has {len(original)} values; this model needs at least {lost + 1}")
        modelled_np = transform.apply(original, "context") if transform is not None else original
        modelled = torch.from_numpy(modelled_np)
        wanted = self.num_covariates
        if wanted:
            covariates = np.asarray(covariates if covariates is not None else np.zeros((0, 0)), dtype=np.float64)
            if covariates.shape != (len(original), wanted):
                raise SeqlabError(
                    f"this model takes {wanted} covariates beside each context value: expected covariates of "
                    f"shape ({len(original)}, {wanted}), got {covariates.shape}"
                )
            modelled = torch.cat([modelled[:, None], torch.from_numpy(covariates[lost:])], dim=1)  # (n, 1 + C)
        elif covariates is not None:
            raise SeqlabError(f"this {type(self).__name__} takes no covariates")
        paths = self.sample_paths(modelled, horizon, num_samples, seed=seed).double().numpy()
        closed = self.closed_form_forecast(modelled_np, horizon) if transform is None else None
        if transform is not None:
            paths = transform.invert(paths, original)
        if closed is not None:
            mean, sd = closed
            normal = torch.distributions.Normal(0.0, 1.0)
            z = {q: float(normal.icdf(torch.tensor(q, dtype=torch.float64))) for q in quantiles}
            return Forecast(paths, {q: mean + z[q] * sd for q in quantiles}, mean, exact=True)
        return Forecast(paths, {q: np.quantile(paths, q, axis=0) for q in quantiles}, paths.mean(axis=0))


def check_sampling(length: int, temperature: float) -> None:
    """A valid length, and a valid temperature when it is one number (a model of frames, which also takes one
    per dimension or per group, checks those when it draws)."""
    if length < 0:
        raise SeqlabError(f"length must be non-negative, got {length}")
    if isinstance(temperature, numbers.Real) and not (temperature > 0 and math.isfinite(temperature)):
        raise SeqlabError(f"temperature must be a positive number, got {temperature}")


def check_forecast(horizon: int, num_samples: int, quantiles: tuple[float, ...]) -> None:
    if horizon <= 0 or num_samples <= 0:
        raise SeqlabError(f"horizon and num_samples must be positive, got {horizon} and {num_samples}")
    for q in quantiles:
        if not 0.0 < q < 1.0:
            raise SeqlabError(f"quantiles must be in (0, 1), got {q}")
