"""``Elements``: what a neural model needs to know about the data's kind, in one place.

Discrete data (a ``Vocabulary``): ids are embedded, a start symbol ``V`` pads before the sequence, and the
head is ``Categorical(V)``. Continuous data: each value is standardised with the training series' location
and scale and embedded from ``(value, missing flag)`` (NaN is the start padding), and the head is ``Gaussian``
with its parameters returned on the original scale.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from seqlab.data.text import Vocabulary
from seqlab.distributions import Categorical, Gaussian, Head
from seqlab.errors import SeqlabError
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
            if isinstance(data, str):
                return self.vocabulary.encode(data, unknown=unknown, source=source)
            array = np.asarray(data.detach().cpu() if isinstance(data, torch.Tensor) else data)
            if array.dtype.kind not in "iu":
                raise SeqlabError(
                    f"this {self.model_name} models discrete data (symbols); got {array.dtype} values ({source})"
                )
            return torch.as_tensor(array, dtype=torch.long)
        series = as_series(data, model=f"this {self.model_name}", source=source)
        return torch.from_numpy(series).to(self.embedding.weight.dtype)

    def decode(self, x: torch.Tensor):
        return self.vocabulary.decode(x.tolist()) if self.discrete else x

    def describe(self) -> str:
        return f"vocabulary {len(self.vocabulary)}" if self.discrete else "continuous, Gaussian head"
