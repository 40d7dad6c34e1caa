"""The latent autoregressive model: an RNN, LSTM or GRU language model.

    H_t = Net(H_{t-1}, x_{t-1})            the recurrent cell(s), H_0 = 0, x_0 = <start>
    x_t ~ P(x_t | x_{t-1}, H_t)            the head sees H_t and the previous element

Net is a ``Recurrent`` stack; the head's parameters are ``W_out . [H_t, e(x_{t-1})] + b_out``
with ``e`` the input embedding.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from seqlab.base import SequenceModel, teacher_forced_log_prob
from seqlab.data.text import Vocabulary
from seqlab.distributions import Categorical
from seqlab.errors import SeqlabError
from seqlab.recurrent import CELLS, Recurrent


@dataclass
class LatentARConfig:
    cell: str = "lstm"
    hidden_size: int = 512
    num_layers: int = 1
    embedding_dim: int = 64
    dropout: float = 0.0
    reset: str = "after"  # GRU only: where the reset gate applies (seqlab.cells.GRUCell)
    backend: str = "auto"

    def validate(self) -> None:
        if self.cell not in CELLS:
            raise SeqlabError(f"unknown model {self.cell!r}; choose one of {', '.join(CELLS)}")
        for name in ("hidden_size", "num_layers", "embedding_dim"):
            if getattr(self, name) <= 0:
                raise SeqlabError(f"{name} must be a positive integer, got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise SeqlabError(f"dropout must be in [0, 1), got {self.dropout}")


class LatentAR(nn.Module, SequenceModel):
    """Character-level latent AR model over a ``Vocabulary`` with a ``Categorical`` head.

    Shapes: ``forward(x_prev (B, T) ids, state) -> (logits (B, T, V), state)`` where ``x_prev[:, t]``
    is the element before the one predicted at ``t`` (``start_id`` at the start of a sequence).

    Example::

        >>> model = LatentAR(Vocabulary.from_text("hello world"), LatentARConfig(cell="gru", hidden_size=32))
        >>> model.log_prob("hello").shape
        torch.Size([5])
    """

    kind = "latent_ar"
    state_batch_dim = 1  # h (and C) are (L, B, H)

    def __init__(self, vocabulary: Vocabulary, config: LatentARConfig | None = None) -> None:
        super().__init__()
        config = config or LatentARConfig()
        config.validate()
        self.config = config
        self.vocabulary = vocabulary
        V = len(vocabulary)
        self.head = Categorical(V)
        self.start_id = V  # an input-only symbol: "nothing before this"
        self.embed = nn.Embedding(V + 1, config.embedding_dim)
        self.rnn = Recurrent(
            config.cell,
            config.embedding_dim,
            config.hidden_size,
            config.num_layers,
            dropout=config.dropout,
            backend=config.backend,
            reset=config.reset,
        )
        # Dropout on every non-recurrent connection (Zaremba et al. 2014); none at all when p = 0.
        self.drop = nn.Dropout(config.dropout) if config.dropout > 0 else nn.Identity()
        self.out = nn.Linear(config.hidden_size + config.embedding_dim, self.head.num_params)

    # -- the network ------------------------------------------------------------------------
    def forward(self, x_prev: torch.Tensor, state=None):
        e = self.drop(self.embed(x_prev))  # (B, T, E)
        H, state = self.rnn(e, state)  # (B, T, H)
        return self.out(self.drop(torch.cat([H, e], dim=-1))), state  # (B, T, V)

    def initial_state(self, batch_size: int = 1):
        return self.rnn.initial_state(batch_size)

    # -- SequenceModel ----------------------------------------------------------------------
    def encode(self, data, unknown: str = "error", source: str = "text") -> torch.Tensor:
        if isinstance(data, str):
            return self.vocabulary.encode(data, unknown=unknown, source=source)
        return torch.as_tensor(data, dtype=torch.long)

    def decode(self, x: torch.Tensor) -> str:
        return self.vocabulary.decode(x.tolist())

    def log_prob(self, x) -> torch.Tensor:
        """``log P(x_s | x_<s)`` for s = 1..T; ``x`` is text or (T,) ids. One pass, state carried."""
        return teacher_forced_log_prob(self, self.encode(x).to(self.out.weight.device), self.start_id)

    @torch.no_grad()
    def step(self, x_prev: torch.Tensor | None, state):
        """One element in, the next element's logits (V,) and the new state out: O(1) per element."""
        token = self.start_id if x_prev is None else int(x_prev)
        logits, state = self(torch.tensor([[token]], device=self.out.weight.device), state)
        return logits[0, 0], state

    def fit(self, train: str, valid: str | None = None, **options):
        """Train on text with the shared ``Trainer``; ``options`` are ``TrainerConfig`` fields."""
        from seqlab.training import Trainer, TrainerConfig

        trainer = Trainer(self, TrainerConfig(**options))
        return trainer.fit(
            self.encode(train, source="training text"),
            None if valid is None else self.encode(valid, source="validation text"),
        )

    # -- persistence ------------------------------------------------------------------------
    def to_config(self) -> dict:
        return {"config": asdict(self.config), "vocabulary": self.vocabulary.to_json()}

    @classmethod
    def from_config(cls, config: dict) -> LatentAR:
        return cls(Vocabulary.from_json(config["vocabulary"]), LatentARConfig(**config["config"]))

    def describe(self) -> str:
        c = self.config
        reset = f", reset={c.reset}" if c.cell == "gru" else ""
        n = sum(p.numel() for p in self.parameters())
        return (
            f"LatentAR({c.cell}{reset}, {c.num_layers} x {c.hidden_size}, embedding {c.embedding_dim}, "
            f"vocabulary {len(self.vocabulary)}, {n:,} parameters)"
        )
