"""``NeuralAR``: the AR(tau) model with a neural network, an MLP over the last ``window`` elements.

    P(x_t | x_<t) = P(x_t | x_{t-tau} .. x_{t-1}) = head(MLP([e(x_{t-tau}), ..., e(x_{t-1})]))

``e`` is the input side of the model's ``Elements`` codec (``seqlab.models.element_codecs``): an embedding for
discrete data (a ``Categorical`` head over a ``Vocabulary``), a linear map of the standardised value (a
``Gaussian``, ``StudentT`` or mixture head, returned on the original scale) or of a frame of ``D`` values
(``NeuralAR.for_frames``, a ``FrameHead``). Before the start of a sequence the window is padded with a start
symbol (discrete) or NaN, embedded as zeros plus a "missing" flag (continuous). The recurrent "state" is just
the last ``window`` elements, so the shared ``Trainer`` carries it across consecutive training windows exactly
as it carries an RNN's hidden state.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from seqlab.base import ConformanceCase, teacher_forced_log_prob
from seqlab.data.text import Vocabulary
from seqlab.errors import SeqlabError
from seqlab.models.element_codecs import DataDescription
from seqlab.models.elements import ElementsModel, inference, validate_head


@dataclass
class NeuralARConfig:
    window: int = 8  # tau: how many previous elements the model sees
    hidden_size: int = 256
    num_layers: int = 2
    embedding_dim: int = 32  # per element
    dropout: float = 0.0
    head: str = "gaussian"  # continuous data only: gaussian, studentt or mixture
    components: int = 3  # mixture components
    covariates: int = 0  # continuous data only: past covariates beside each value (seqlab.models.element_codecs)

    def validate(self) -> None:
        validate_head(self)
        for name in ("window", "hidden_size", "num_layers", "embedding_dim"):
            if getattr(self, name) <= 0:
                raise SeqlabError(f"{name} must be a positive integer, got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise SeqlabError(f"dropout must be in [0, 1), got {self.dropout}")


class NeuralAR(ElementsModel):
    """MLP over a fixed window; discrete with ``data=`` a ``Vocabulary`` or ``MuLaw``, continuous with ``data=None``.

    Shapes: ``forward(x_prev (B, T), state (B, tau) or None) -> (params (B, T, P), state (B, tau))`` where
    ``x_prev[:, t]`` is the element before the one predicted at ``t``.

    Example::

        >>> model = NeuralAR(Vocabulary.from_text("hello world"), NeuralARConfig(window=3, hidden_size=16))
        >>> model.log_prob("hello").shape
        torch.Size([5])
    """

    kind = "neural_ar"
    config_class = NeuralARConfig

    def __init__(
        self,
        data: DataDescription = None,
        config: NeuralARConfig | None = None,
        location: float = 0.0,
        scale: float = 1.0,
    ) -> None:
        super().__init__()
        config = config or NeuralARConfig()
        self.setup_elements(data, config, config.embedding_dim, location, scale)
        H = config.hidden_size
        layers: list[nn.Module] = []
        for k in range(config.num_layers):
            layers += [nn.Linear(config.window * config.embedding_dim if k == 0 else H, H), nn.GELU()]
            if config.dropout > 0:
                layers.append(nn.Dropout(config.dropout))
        self.mlp = nn.Sequential(*layers)
        self.out = nn.Linear(H, self.head.num_params)
        self.elements.init_output(self.out)

    # -- the network --------------------------------------------------------------------------------
    def initial_state(self, batch_size: int = 1) -> torch.Tensor:
        return self.elements.padding((batch_size, self.config.window), self.out.weight.device)

    def forward(self, x_prev: torch.Tensor, state: torch.Tensor | None = None):
        if state is None:
            state = self.initial_state(x_prev.shape[0])
        tau = self.config.window
        history = torch.cat([state.to(x_prev.dtype), x_prev], dim=1)  # (B, tau + T[, 1 + C])
        windows = history.unfold(1, tau, 1)[:, 1:]  # (B, T, tau): the tau elements up to x_prev[:, t]
        if windows.dim() == 4:  # covariates: unfold put the window last, (B, T, 1 + C, tau)
            windows = windows.transpose(-1, -2)
        return self.predict(windows), history[:, -tau:]

    def predict(self, windows: torch.Tensor) -> torch.Tensor:
        """Head parameters (B, T, P) of the element after each window (B, T, tau)."""
        features = self.elements(windows).flatten(2)  # (B, T, tau * E)
        return self.elements.head_params(self.out(self.mlp(features)))

    # -- SequenceModel ---------------------------------------------------------------------------------
    def log_prob(self, x) -> torch.Tensor:
        """``log P(x_s | x_s-window .. x_s-1)`` for s = 1..T (padded at the start)."""
        x = self.encode(x).to(self.out.weight.device)
        return teacher_forced_log_prob(self, x, self.elements.start)

    @inference
    def step(self, x_prev, state):
        """state: the last ``window`` elements (1, tau); O(1) per element."""
        if state is None:
            state = self.initial_state(1)
        if x_prev is not None:
            state = torch.cat([state[:, 1:], self.element_input(x_prev).to(state.dtype)], dim=1)
        return self.predict(state[:, None])[0, 0], state

    @classmethod
    def conformance_cases(cls) -> list[ConformanceCase]:
        tiny = {"window": 3, "hidden_size": 8, "num_layers": 1, "embedding_dim": 4, "dropout": 0.5}
        fit = {"steps": 3, "batch_size": 2, "window": 8, "eval_every": 3}
        return [
            ConformanceCase("text", "text", lambda text: cls(Vocabulary.from_text(text), NeuralARConfig(**tiny)), fit),
            ConformanceCase(
                "series, studentt", "series", lambda y: cls.for_series(y, NeuralARConfig(**tiny, head="studentt")), fit
            ),
            ConformanceCase("frames", "frames", lambda y: cls.for_frames(y, NeuralARConfig(**tiny), binary=[2]), fit),
        ]

    def describe(self) -> str:
        c = self.config
        data = self.elements.describe()
        n = sum(p.numel() for p in self.parameters())
        return f"NeuralAR(window {c.window}, {c.num_layers} x {c.hidden_size} MLP, {data}, {n:,} parameters)"
