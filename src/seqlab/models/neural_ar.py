"""``NeuralAR``: the AR(tau) model with a neural network, an MLP over the last ``window`` elements.

    P(x_t | x_<t) = P(x_t | x_{t-tau} .. x_{t-1}) = head(MLP([e(x_{t-tau}), ..., e(x_{t-1})]))

``e`` is an embedding for discrete data (a ``Categorical`` head over a ``Vocabulary``) and the standardised
value itself for continuous data (a ``Gaussian`` head, returned on the original scale). Before the start
of a sequence the window is padded with a start symbol (discrete) or zeros plus a "missing" flag
(continuous). The recurrent "state" is just the last ``window`` elements, so the shared ``Trainer``
carries it across consecutive training windows exactly as it carries an RNN's hidden state.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from seqlab.base import SequenceModel, teacher_forced_log_prob
from seqlab.data.text import Vocabulary
from seqlab.distributions import Categorical, Gaussian
from seqlab.errors import SeqlabError
from seqlab.models.linear_ar import as_series


@dataclass
class NeuralARConfig:
    window: int = 8  # tau: how many previous elements the model sees
    hidden_size: int = 256
    num_layers: int = 2
    embedding_dim: int = 32  # discrete data only
    dropout: float = 0.0

    def validate(self) -> None:
        for name in ("window", "hidden_size", "num_layers", "embedding_dim"):
            if getattr(self, name) <= 0:
                raise SeqlabError(f"{name} must be a positive integer, got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise SeqlabError(f"dropout must be in [0, 1), got {self.dropout}")


class NeuralAR(nn.Module, SequenceModel):
    """MLP over a fixed window; discrete with ``vocabulary=...``, continuous with ``vocabulary=None``.

    Shapes: ``forward(x_prev (B, T), state (B, tau) or None) -> (params (B, T, P), state (B, tau))`` where
    ``x_prev[:, t]`` is the element before the one predicted at ``t``.

    Example::

        >>> model = NeuralAR(Vocabulary.from_text("hello world"), NeuralARConfig(window=3, hidden_size=16))
        >>> model.log_prob("hello").shape
        torch.Size([5])
    """

    kind = "neural_ar"

    def __init__(
        self,
        vocabulary: Vocabulary | None = None,
        config: NeuralARConfig | None = None,
        location: float = 0.0,
        scale: float = 1.0,
    ) -> None:
        super().__init__()
        config = config or NeuralARConfig()
        config.validate()
        self.config, self.vocabulary = config, vocabulary
        self.discrete = vocabulary is not None
        tau, H = config.window, config.hidden_size
        if self.discrete:
            V = len(vocabulary)
            self.head = Categorical(V)
            self.start_id = V
            self.embed = nn.Embedding(V + 1, config.embedding_dim)
            features = tau * config.embedding_dim
        else:
            self.head = Gaussian()
            # continuous values are standardised with the training series' location and scale
            self.register_buffer("location", torch.tensor(float(location)))
            self.register_buffer("scale", torch.tensor(float(scale)))
            features = 2 * tau  # value and "missing" flag per position
        layers: list[nn.Module] = []
        for k in range(config.num_layers):
            layers += [nn.Linear(features if k == 0 else H, H), nn.GELU()]
            if config.dropout > 0:
                layers.append(nn.Dropout(config.dropout))
        self.mlp = nn.Sequential(*layers)
        self.out = nn.Linear(H, self.head.num_params)

    # -- the network --------------------------------------------------------------------------------
    def initial_state(self, batch_size: int = 1) -> torch.Tensor:
        device = self.out.weight.device
        if self.discrete:
            return torch.full((batch_size, self.config.window), self.start_id, dtype=torch.long, device=device)
        return torch.full((batch_size, self.config.window), float("nan"), device=device, dtype=self.out.weight.dtype)

    def forward(self, x_prev: torch.Tensor, state: torch.Tensor | None = None):
        if state is None:
            state = self.initial_state(x_prev.shape[0])
        tau = self.config.window
        history = torch.cat([state.to(x_prev.dtype), x_prev], dim=1)  # (B, tau + T)
        windows = history.unfold(1, tau, 1)[:, 1:]  # (B, T, tau): the tau elements up to x_prev[:, t]
        return self.predict(windows), history[:, -tau:]

    def predict(self, windows: torch.Tensor) -> torch.Tensor:
        """Head parameters (B, T, P) of the element after each window (B, T, tau)."""
        if self.discrete:
            features = self.embed(windows).flatten(2)  # (B, T, tau * E)
        else:
            missing = torch.isnan(windows)
            values = torch.where(missing, torch.zeros_like(windows), (windows - self.location) / self.scale)
            features = torch.cat([values, missing.to(values.dtype)], dim=-1).to(self.out.weight.dtype)
        params = self.out(self.mlp(features))
        if not self.discrete:  # back to the original scale: mu * scale + location, log sigma + log scale
            params = torch.stack(
                [params[..., 0] * self.scale + self.location, params[..., 1] + torch.log(self.scale)], dim=-1
            )
        return params

    # -- SequenceModel ---------------------------------------------------------------------------------
    def encode(self, data, unknown: str = "error", source: str = "text") -> torch.Tensor:
        if self.discrete:
            if isinstance(data, str):
                return self.vocabulary.encode(data, unknown=unknown, source=source)
            array = np.asarray(data.detach().cpu() if isinstance(data, torch.Tensor) else data)
            if array.dtype.kind not in "iu":
                raise SeqlabError(f"this NeuralAR models discrete data (symbols); got {array.dtype} values ({source})")
            return torch.as_tensor(array, dtype=torch.long)
        return torch.from_numpy(as_series(data, model="this NeuralAR", source=source)).to(self.out.weight.dtype)

    def decode(self, x: torch.Tensor):
        return self.vocabulary.decode(x.tolist()) if self.discrete else x

    def log_prob(self, x) -> torch.Tensor:
        """``log P(x_s | x_s-window .. x_s-1)`` for s = 1..T (padded at the start)."""
        x = self.encode(x).to(self.out.weight.device)
        return teacher_forced_log_prob(self, x, self.start_id if self.discrete else float("nan"))

    @torch.no_grad()
    def step(self, x_prev, state):
        """state: the last ``window`` elements (1, tau); O(1) per element."""
        if state is None:
            state = self.initial_state(1)
        if x_prev is not None:
            x = torch.as_tensor(x_prev, dtype=state.dtype, device=state.device).reshape(1, 1)
            state = torch.cat([state[:, 1:], x], dim=1)
        return self.predict(state[:, None, :])[0, 0], state

    def fit(self, train, valid=None, **options):
        """Train with the shared ``Trainer``; ``options`` are ``TrainerConfig`` fields."""
        from seqlab.training import Trainer, TrainerConfig

        trainer = Trainer(self, TrainerConfig(**options))
        valid_x = None if valid is None else self.encode(valid, source="validation data")
        return trainer.fit(self.encode(train, source="training data"), valid_x)

    @classmethod
    def for_series(cls, series, config: NeuralARConfig | None = None) -> NeuralAR:
        """A continuous NeuralAR standardised by the series' mean and standard deviation."""
        y = as_series(series, model="NeuralAR", source="training series")
        return cls(None, config, location=float(y.mean()), scale=float(y.std()) or 1.0)

    # -- persistence --------------------------------------------------------------------------------------
    def to_config(self) -> dict:
        out = {"config": asdict(self.config)}
        if self.discrete:
            out["vocabulary"] = self.vocabulary.to_json()
        return out

    @classmethod
    def from_config(cls, config: dict) -> NeuralAR:
        vocabulary = Vocabulary.from_json(config["vocabulary"]) if "vocabulary" in config else None
        return cls(vocabulary, NeuralARConfig(**config["config"]))

    def describe(self) -> str:
        c = self.config
        data = f"vocabulary {len(self.vocabulary)}" if self.discrete else "continuous, Gaussian head"
        n = sum(p.numel() for p in self.parameters())
        return f"NeuralAR(window {c.window}, {c.num_layers} x {c.hidden_size} MLP, {data}, {n:,} parameters)"
