"""``Elements``: what a neural model needs to know about the data's kind, in one place.

Discrete data (a ``Vocabulary`` of characters, or ``MuLaw`` audio levels): ids are embedded, a start symbol
``V`` pads before the sequence, and the head is ``Categorical(V)``. Continuous data: each value is standardised
with the training series' location and scale and embedded from ``(value, missing flag)`` (NaN is the start
padding and marks a gap between series), and the head (``Gaussian``, ``StudentT`` or ``GaussianMixture``)
returns its parameters on the original scale.

Past covariates (``covariates=C``, e.g. the traded volume beside a price): an element is then a vector
``(value, covariate_1 .. covariate_C)`` (shape ``(..., 1 + C)``); the covariates, standardised too, are extra
inputs, and only the value is predicted. Their future is unknown, so forecasts carry the last observed
covariates forward (persistence).

A model of a transformed series (``seqlab.transforms``: log, diff, log returns) carries its ``transform``,
saved with it, so forecasts come back on the scale of the data it was given.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import asdict

import numpy as np
import torch
from torch import nn

from seqlab.base import SequenceModel
from seqlab.data.arrays import as_series
from seqlab.data.audio import MuLaw
from seqlab.data.text import Vocabulary, encode_symbols
from seqlab.distributions import CONTINUOUS_HEADS, Categorical, GaussianMixture, Head, continuous_head
from seqlab.errors import SeqlabError
from seqlab.training import Trainer, TrainerConfig
from seqlab.transforms import Transform

Codec = Vocabulary | MuLaw  # what maps discrete data to ids and back


def zero_output(layer: nn.Linear, head: Head) -> None:
    """Start a continuous head at params 0: N(location, scale) of the training data (the i.i.d. model of the
    standardised series) until the data say otherwise. On a short series early stopping then keeps a model near
    that baseline instead of a random network's predictions (monthly prices: -0.04 instead of +0.18 nats/step
    against the random walk, docs/forecasting.md)."""
    nn.init.zeros_(layer.weight)
    if not isinstance(head, GaussianMixture):  # a mixture keeps its random bias: equal components never part
        nn.init.zeros_(layer.bias)


def inference(method: Callable) -> Callable:
    """Run a model's ``method`` in inference mode: ``eval()`` (no dropout) and no gradient, the mode restored
    after. ``step`` and ``sample_paths`` use it, so streaming right after ``fit`` is deterministic."""

    @functools.wraps(method)
    def run(self, *args, **kwargs):
        was_training = self.training
        if was_training:
            self.eval()
        try:
            with torch.no_grad():
                return method(self, *args, **kwargs)
        finally:
            if was_training:
                self.train(True)

    return run


def validate_head(config) -> None:
    """The ``head``, ``components`` and ``covariates`` fields that every neural model's config carries."""
    if config.covariates < 0:
        raise SeqlabError(f"covariates must be a non-negative integer, got {config.covariates}")
    if config.head not in CONTINUOUS_HEADS:
        raise SeqlabError(f"unknown head {config.head!r}; choose one of {', '.join(CONTINUOUS_HEADS)}")
    if config.components <= 0:
        raise SeqlabError(f"components must be a positive integer, got {config.components}")


class Elements(nn.Module):
    def __init__(
        self,
        vocabulary: Codec | None,
        embedding_dim: int,
        location: float = 0.0,
        scale: float = 1.0,
        model: str = "model",
        head: str = "gaussian",
        components: int = 3,
        covariates: int = 0,
    ) -> None:
        super().__init__()
        self.covariates = covariates
        self.vocabulary, self.model_name = vocabulary, model
        self.discrete = vocabulary is not None
        self.head: Head
        if self.discrete:
            self.head = Categorical(len(vocabulary))
            self.start: float | int = len(vocabulary)
            self.embedding = nn.Embedding(len(vocabulary) + 1, embedding_dim)
        else:
            self.head = continuous_head(head, components)
            self.start = float("nan")
            self.register_buffer("location", torch.tensor(float(location)))
            self.register_buffer("scale", torch.tensor(float(scale)))
            saved = covariates > 0  # no empty tensors in the checkpoints of models without covariates
            self.register_buffer("covariate_location", torch.zeros(covariates), persistent=saved)
            self.register_buffer("covariate_scale", torch.ones(covariates), persistent=saved)
            self.embedding = nn.Linear(2 + covariates, embedding_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Elements (...) or, with covariates, (..., 1 + C) -> embeddings (..., E)."""
        if self.discrete:
            return self.embedding(x)
        x, covariates = (x[..., 0], x[..., 1:]) if self.covariates else (x, None)
        missing = torch.isnan(x)
        values = torch.where(missing, torch.zeros_like(x), (x - self.location) / self.scale)
        features = [values[..., None], missing.to(values.dtype)[..., None]]
        if covariates is not None:
            standard = (covariates - self.covariate_location) / self.covariate_scale
            features.append(torch.nan_to_num(standard, nan=0.0))  # a gap's covariates: the average
        return self.embedding(torch.cat(features, dim=-1).to(self.embedding.weight.dtype))

    def head_params(self, raw: torch.Tensor) -> torch.Tensor:
        """The network's output (..., P) as the head's parameters on the data's scale."""
        return raw if self.discrete else self.head.rescale(raw, self.location, self.scale)

    def padding(self, shape: tuple[int, ...], device=None) -> torch.Tensor:
        dtype = torch.long if self.discrete else self.embedding.weight.dtype
        shape = tuple(shape) + ((1 + self.covariates,) if self.covariates else ())
        return torch.full(shape, self.start, dtype=dtype, device=device)

    def encode(self, data, unknown: str = "error", source: str = "data") -> torch.Tensor:
        if isinstance(self.vocabulary, MuLaw):
            if isinstance(data, torch.Tensor) and not data.is_floating_point():
                return data.long()  # level ids already
            return self.vocabulary.encode(data)
        if self.discrete:
            return encode_symbols(data, self.vocabulary, f"this {self.model_name}", unknown, source)
        if isinstance(data, torch.Tensor) and data.is_floating_point():
            return data.to(self.embedding.weight.dtype)  # elements already (NaN marks gaps between series)
        series = as_series(data, model=f"this {self.model_name}", source=source)
        return torch.from_numpy(series).to(self.embedding.weight.dtype)

    def decode(self, x: torch.Tensor):
        if isinstance(self.vocabulary, MuLaw):
            return self.vocabulary.decode(x)
        return self.vocabulary.decode(x.tolist()) if self.discrete else x

    def describe(self) -> str:
        if isinstance(self.vocabulary, MuLaw):
            return self.vocabulary.describe()
        if self.discrete:
            return f"vocabulary {len(self.vocabulary)}"
        head = self.head.kind + (f" x {self.head.components}" if self.head.kind == "mixture" else "")
        extra = f", {self.covariates} covariate{'s' if self.covariates > 1 else ''}" if self.covariates else ""
        return f"continuous, {head} head{extra}"


class ElementsModel(nn.Module, SequenceModel):
    """What the windowed neural models share: ``Elements``, a config dataclass, the ``Trainer``, persistence.

    Subclasses set ``config_class`` and build their network in ``__init__(vocabulary, config, location, scale)``
    after calling ``self.setup_elements(...)``."""

    config_class: type

    def setup_elements(self, vocabulary, config, embedding_dim: int, location: float, scale: float) -> None:
        config.validate()
        self.config, self.vocabulary = config, vocabulary
        self.elements = Elements(
            vocabulary,
            embedding_dim,
            location,
            scale,
            type(self).__name__,
            config.head,
            config.components,
            config.covariates,
        )
        self.discrete, self.head = self.elements.discrete, self.elements.head

    @property
    def num_covariates(self) -> int:
        return self.elements.covariates

    def encode(self, data, *, unknown: str = "error", source: str = "data") -> torch.Tensor:
        return self.elements.encode(data, unknown, source)

    def decode(self, x: torch.Tensor):
        return self.elements.decode(x)

    def fit(self, train, valid=None, **options) -> ElementsModel:
        """Train with the shared ``Trainer`` (``options`` are ``TrainerConfig`` fields); its record is kept in
        ``training_result``. Returns the model, in inference mode."""
        try:
            config = TrainerConfig(**options)
        except TypeError as e:
            raise SeqlabError(f"fit: {e}".replace("__init__() ", "")) from None
        unknown = "map" if self.discrete and isinstance(valid, str) else "error"
        valid_x = None if valid is None else self.encode(valid, unknown=unknown, source="validation data")
        self.training_result = Trainer(self, config).fit(self.encode(train, source="training data"), valid_x)
        self.eval()
        return self

    @inference
    def sample_paths(self, context, horizon, num_samples, temperature=1.0, seed=None) -> torch.Tensor:
        """All paths at once: the context in one teacher-forced pass, then one batched step per element."""
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        start = self.start_element()
        x_prev = torch.cat([start, context.to(start.dtype).to(start.device)[None]], dim=1)  # (1, 1 + n)
        params, state = self(x_prev, None)
        known = context[-1, 1:].to(start.dtype).to(start.device) if self.elements.covariates else None
        batch_dim = getattr(self, "state_batch_dim", 0)
        state = _expand_state(state, batch_dim, num_samples)
        params = params[:, -1].expand(num_samples, -1)  # (S, P)
        paths = []
        for _ in range(horizon):
            x = self.head.sample(params.cpu(), temperature, None, generator)  # (S,)
            paths.append(x)
            x_next = x[:, None].to(start.dtype).to(start.device)  # (S, 1)
            if known is not None:  # the future covariates are unknown: carry the last ones forward
                x_next = torch.cat([x_next[..., None], known.expand(num_samples, 1, -1)], dim=-1)
            params, state = self(x_next, state)
            params = params[:, 0]
        return torch.stack(paths, dim=1)  # (S, horizon)

    def start_element(self) -> torch.Tensor:
        """The padding that stands before the first element, as a (1, 1) input."""
        return self.elements.padding((1, 1), next(self.parameters()).device)

    def element_input(self, x_prev) -> torch.Tensor:
        """One element (or ``None``: the start of a sequence) as a (1, 1) input to ``forward``."""
        start = self.start_element()
        if x_prev is None:
            return start
        return torch.as_tensor(x_prev, dtype=start.dtype, device=start.device).reshape(start.shape)

    @classmethod
    def for_series(cls, series, config=None):
        """A continuous model standardised by the series' mean and standard deviation (NaN gaps ignored);
        with ``config.covariates``, ``series`` is ``(T, 1 + C)`` and the covariates are standardised too."""
        x = series.detach().cpu().numpy() if isinstance(series, torch.Tensor) else np.asarray(series, dtype=np.float64)
        C = getattr(config, "covariates", 0) if config is not None else 0
        if C and (x.ndim != 2 or x.shape[1] != 1 + C):
            raise SeqlabError(f"{cls.__name__} with {C} covariates takes (T, {1 + C}) elements, got {x.shape}")
        values = x[:, 0] if C else series
        y = np.concatenate([as_series(s, model=cls.__name__, source="training series") for s in _pieces(values)])
        model = cls(None, config, location=float(y.mean()), scale=float(y.std()) or 1.0)
        if C:
            with torch.no_grad():
                model.elements.covariate_location.copy_(torch.from_numpy(np.nanmean(x[:, 1:], axis=0)))
                model.elements.covariate_scale.copy_(torch.from_numpy(np.nanstd(x[:, 1:], axis=0)).clamp_min(1e-12))
        return model

    def to_config(self) -> dict:
        out = {"config": asdict(self.config)}
        if self.discrete:
            out["vocabulary"] = self.vocabulary.to_json()
        if self.transform is not None:
            out["transform"] = self.transform.to_json()
        return out

    @classmethod
    def from_config(cls, config: dict):
        model = cls(codec_from_json(config.get("vocabulary")), cls.config_class(**config["config"]))
        if "transform" in config:
            model.transform = Transform.from_json(config["transform"])
        return model


def _expand_state(state, batch_dim: int, n: int):
    """A carried state of batch 1 repeated to batch ``n`` (tensors or tuples of them)."""
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(_expand_state(s, batch_dim, n) for s in state)
    sizes = [-1] * state.dim()
    sizes[batch_dim] = n
    return state.expand(*sizes).contiguous()


def codec_from_json(data) -> Codec | None:
    if data is None:
        return None
    return MuLaw.from_json(data) if isinstance(data, dict) else Vocabulary.from_json(data)


def _pieces(series) -> list:
    """A series with NaN gaps (between concatenated series) as its gap-free pieces."""
    x = series.detach().cpu().numpy() if isinstance(series, torch.Tensor) else np.asarray(series, dtype=np.float64)
    if x.ndim != 1 or not np.isnan(x).any():
        return [series]
    pieces = [p[~np.isnan(p)] for p in np.split(x, np.flatnonzero(np.isnan(x)))]
    return [p for p in pieces if len(p)]
