"""``Elements``: what a neural model needs to know about the data's kind, in one place.

Discrete data (a ``Vocabulary``): ids are embedded, a start symbol ``V`` pads before the sequence, and the
head is ``Categorical(V)``. Continuous data: each value is standardised with the training series' location
and scale and embedded from ``(value, missing flag)`` (NaN is the start padding), and the head is ``Gaussian``
with its parameters returned on the original scale.
"""

from __future__ import annotations

from dataclasses import asdict

import torch
from torch import nn

from seqlab.base import SequenceModel
from seqlab.data.text import Vocabulary, encode_symbols
from seqlab.distributions import Categorical, Gaussian, Head
from seqlab.models.linear_ar import as_series


class Elements(nn.Module):
    def __init__(
        self,
        vocabulary: Vocabulary | None,
        embedding_dim: int,
        location: float = 0.0,
        scale: float = 1.0,
        model: str = "model",
    ) -> None:
        super().__init__()
        self.vocabulary, self.model_name = vocabulary, model
        self.discrete = vocabulary is not None
        self.head: Head
        if self.discrete:
            self.head = Categorical(len(vocabulary))
            self.start: float | int = len(vocabulary)
            self.embedding = nn.Embedding(len(vocabulary) + 1, embedding_dim)
        else:
            self.head = Gaussian()
            self.start = float("nan")
            self.register_buffer("location", torch.tensor(float(location)))
            self.register_buffer("scale", torch.tensor(float(scale)))
            self.embedding = nn.Linear(2, embedding_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Elements (...) -> embeddings (..., E)."""
        if self.discrete:
            return self.embedding(x)
        missing = torch.isnan(x)
        values = torch.where(missing, torch.zeros_like(x), (x - self.location) / self.scale)
        return self.embedding(torch.stack([values, missing.to(values.dtype)], dim=-1).to(self.embedding.weight.dtype))

    def head_params(self, raw: torch.Tensor) -> torch.Tensor:
        """The network's output (..., P) as the head's parameters on the data's scale."""
        if self.discrete:
            return raw
        return torch.stack([raw[..., 0] * self.scale + self.location, raw[..., 1] + torch.log(self.scale)], dim=-1)

    def padding(self, shape: tuple[int, ...], device=None) -> torch.Tensor:
        dtype = torch.long if self.discrete else self.embedding.weight.dtype
        return torch.full(shape, self.start, dtype=dtype, device=device)

    def encode(self, data, unknown: str = "error", source: str = "data") -> torch.Tensor:
        if self.discrete:
            return encode_symbols(data, self.vocabulary, f"this {self.model_name}", unknown, source)
        series = as_series(data, model=f"this {self.model_name}", source=source)
        return torch.from_numpy(series).to(self.embedding.weight.dtype)

    def decode(self, x: torch.Tensor):
        return self.vocabulary.decode(x.tolist()) if self.discrete else x

    def describe(self) -> str:
        return f"vocabulary {len(self.vocabulary)}" if self.discrete else "continuous, Gaussian head"


class ElementsModel(nn.Module, SequenceModel):
    """What the windowed neural models share: ``Elements``, a config dataclass, the ``Trainer``, persistence.

    Subclasses set ``config_class`` and build their network in ``__init__(vocabulary, config, location, scale)``
    after calling ``self.setup_elements(...)``."""

    config_class: type

    def setup_elements(self, vocabulary, config, embedding_dim: int, location: float, scale: float) -> None:
        config.validate()
        self.config, self.vocabulary = config, vocabulary
        self.elements = Elements(vocabulary, embedding_dim, location, scale, model=type(self).__name__)
        self.discrete, self.head = self.elements.discrete, self.elements.head

    def encode(self, data, unknown: str = "error", source: str = "data") -> torch.Tensor:
        return self.elements.encode(data, unknown, source)

    def decode(self, x: torch.Tensor):
        return self.elements.decode(x)

    def fit(self, train, valid=None, **options):
        """Train with the shared ``Trainer``; ``options`` are ``TrainerConfig`` fields."""
        from seqlab.training import Trainer, TrainerConfig

        valid_x = None if valid is None else self.encode(valid, source="validation data")
        return Trainer(self, TrainerConfig(**options)).fit(self.encode(train, source="training data"), valid_x)

    @classmethod
    def for_series(cls, series, config=None):
        """A continuous model standardised by the series' mean and standard deviation."""
        y = as_series(series, model=cls.__name__, source="training series")
        return cls(None, config, location=float(y.mean()), scale=float(y.std()) or 1.0)

    def to_config(self) -> dict:
        out = {"config": asdict(self.config)}
        if self.discrete:
            out["vocabulary"] = self.vocabulary.to_json()
        return out

    @classmethod
    def from_config(cls, config: dict):
        vocabulary = Vocabulary.from_json(config["vocabulary"]) if "vocabulary" in config else None
        return cls(vocabulary, cls.config_class(**config["config"]))
