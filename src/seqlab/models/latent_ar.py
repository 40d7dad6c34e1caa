"""The latent autoregressive model: an RNN, LSTM or GRU over text, audio or a continuous series.

    H_t = Net(H_{t-1}, x_{t-1})            the recurrent cell(s), H_0 = 0, x_0 = <start>
    x_t ~ P(x_t | x_{t-1}, H_t)            the head sees H_t and the previous element

Net is a ``Recurrent`` stack; the head's parameters are ``W_out . [H_t, e(x_{t-1})] + b_out``
with ``e`` the input embedding.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from seqlab.base import ConformanceCase, check_sampling, teacher_forced_log_prob
from seqlab.cells import parse_forget_init
from seqlab.data.text import Vocabulary
from seqlab.errors import SeqlabError
from seqlab.models.element_codecs import DataDescription
from seqlab.models.elements import ElementsModel, inference, validate_head
from seqlab.recurrent import CELLS, Recurrent
from seqlab.streaming import FrameSampler, StreamingSampler


@dataclass
class LatentARConfig:
    cell: str = "lstm"
    hidden_size: int = 512
    num_layers: int = 1
    embedding_dim: int = 64
    dropout: float = 0.0
    reset: str = "after"  # GRU only: where the reset gate applies (seqlab.cells.GRUCell)
    backend: str = "auto"
    head: str = "gaussian"  # continuous data only: gaussian, studentt or mixture
    components: int = 3  # mixture components
    covariates: int = 0  # continuous data only: past covariates beside each value (seqlab.models.element_codecs)
    # continuous data only: in training, Gaussian noise of this standard deviation (in units of each dimension's
    # spread) added to the standardised input values, so the model learns to recover from its own imperfect draws
    input_noise: float = 0.0
    # LSTM only: "zero" (torch.nn's init), a number ("1", the default here) or "chrono:T_MAX" (seqlab.cells.lstm)
    forget_init: str = "1"

    def validate(self) -> None:
        validate_head(self)
        if self.cell not in CELLS:
            raise SeqlabError(f"unknown model {self.cell!r}; choose one of {', '.join(CELLS)}")
        for name in ("hidden_size", "num_layers", "embedding_dim"):
            if getattr(self, name) <= 0:
                raise SeqlabError(f"{name} must be a positive integer, got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise SeqlabError(f"dropout must be in [0, 1), got {self.dropout}")
        if not 0.0 <= self.input_noise < 100.0:
            raise SeqlabError(f"input_noise must be in [0, 100), got {self.input_noise}")
        try:
            parse_forget_init(self.forget_init)
        except ValueError as e:
            raise SeqlabError(str(e)) from None


class LatentAR(ElementsModel):
    """Latent AR model of text (a ``Vocabulary``), mu-law audio (``MuLaw``), a continuous series (``None``) or
    frames of ``D`` values (a ``FrameLayout``; build it with ``LatentAR.for_frames(frames (T, D), config,
    binary=[...], groups={...})``).

    Shapes: ``forward(x_prev (B, T), state) -> (params (B, T, P), state)`` where ``x_prev[:, t]`` is the
    element before the one predicted at ``t`` (the start padding at the start of a sequence) and ``P`` is
    the head's parameter count (``V`` logits for discrete data); frames are ``x_prev (B, T, D)``.

    Example::

        >>> model = LatentAR(Vocabulary.from_text("hello world"), LatentARConfig(cell="gru", hidden_size=32))
        >>> model.log_prob("hello").shape
        torch.Size([5])
    """

    kind = "latent_ar"
    config_class = LatentARConfig
    state_batch_dim = 1  # h (and C) are (L, B, H)

    def __init__(
        self,
        data: DataDescription = None,
        config: LatentARConfig | None = None,
        location: float = 0.0,
        scale: float = 1.0,
    ) -> None:
        super().__init__()
        config = config or LatentARConfig()
        self.setup_elements(data, config, config.embedding_dim, location, scale)
        self.rnn = Recurrent(
            config.cell,
            config.embedding_dim,
            config.hidden_size,
            config.num_layers,
            dropout=config.dropout,
            backend=config.backend,
            reset=config.reset,
            forget_init=config.forget_init,
        )
        # Dropout on every non-recurrent connection (Zaremba et al. 2014); none at all when p = 0.
        self.drop = nn.Dropout(config.dropout) if config.dropout > 0 else nn.Identity()
        self.out = nn.Linear(config.hidden_size + config.embedding_dim, self.head.num_params)
        self.elements.init_output(self.out)

    # -- the network ------------------------------------------------------------------------
    def forward(self, x_prev: torch.Tensor, state=None):
        e = self.drop(self.elements(x_prev))  # (B, T, E)
        H, state = self.rnn(e, state)  # (B, T, H)
        return self.elements.head_params(self.out(self.drop(torch.cat([H, e], dim=-1)))), state  # (B, T, P)

    def initial_state(self, batch_size: int = 1):
        return self.rnn.initial_state(batch_size)

    # -- SequenceModel ----------------------------------------------------------------------
    def log_prob(self, x) -> torch.Tensor:
        """``log P(x_s | x_<s)`` for s = 1..T; ``x`` is text, samples or (T,) elements. One pass, state carried."""
        return teacher_forced_log_prob(self, self.encode(x).to(self.out.weight.device), self.elements.start)

    @inference
    def step(self, x_prev, state):
        """One element in, the next element's head parameters (P,) and the new state out: O(1) per element."""
        params, state = self(self.element_input(x_prev), state)
        return params[0, 0], state

    def sample_elements(self, prompt, length, temperature=1.0, top_k=None, seed=None) -> torch.Tensor:
        """Discrete data and frames (of a Gaussian or mixture head): the NumPy streaming samplers
        (``seqlab.streaming``, the same equations as ``step``, checked against it in tests/test_streaming.py);
        other continuous data: one ``step`` per element. ``temperature``: for frames also one per dimension or
        ``{group: temperature}``."""
        check_sampling(length, temperature)
        if self.discrete:
            ids = StreamingSampler(self).generate(prompt.cpu().numpy(), length, temperature, top_k, seed)
            return torch.from_numpy(ids)
        if FrameSampler.supports(self):
            frames = FrameSampler(self).generate(prompt.cpu().numpy(), length, temperature, seed)
            return torch.from_numpy(frames).to(self.out.weight.dtype)
        return super().sample_elements(prompt, length, temperature, top_k, seed)

    @classmethod
    def conformance_cases(cls) -> list[ConformanceCase]:
        tiny = {"hidden_size": 6, "embedding_dim": 4}
        fit = {"steps": 3, "batch_size": 2, "window": 8, "eval_every": 3}
        variants = [("rnn", "after"), ("lstm", "after"), ("gru", "after"), ("gru", "before")]
        cases = [
            ConformanceCase(
                f"{cell}{'' if cell != 'gru' else ' reset ' + reset}, text",
                "text",
                lambda text, cell=cell, reset=reset: cls(
                    Vocabulary.from_text(text), LatentARConfig(cell=cell, **tiny, reset=reset)
                ),
                fit,
            )
            for cell, reset in variants
        ]
        cases.append(
            ConformanceCase(
                "gru, 2 layers, dropout, series",
                "series",
                lambda y: cls.for_series(y, LatentARConfig(cell="gru", **tiny, num_layers=2, dropout=0.5)),
                fit,
            )
        )
        cases += [
            ConformanceCase(
                f"lstm, frames, {head}",
                "frames",
                lambda y, head=head: cls.for_frames(y, LatentARConfig(**tiny, head=head, components=2), binary=[2]),
                fit,
            )
            for head in ("gaussian", "mixture")
        ]
        return cases

    def describe(self) -> str:
        c = self.config
        reset = f", reset={c.reset}" if c.cell == "gru" else ""
        n = sum(p.numel() for p in self.parameters())
        return (
            f"LatentAR({c.cell}{reset}, {c.num_layers} x {c.hidden_size}, embedding {c.embedding_dim}, "
            f"{self.elements.describe()}, {n:,} parameters)"
        )
