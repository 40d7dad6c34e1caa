"""``CausalTransformer``: the naive sequence model in neural form, causal self-attention over the history.

    P(x_t | x_<t) = head(Transformer(x_{t-context} .. x_{t-1})_last)

Pre-LayerNorm blocks of multi-head causal self-attention and an MLP. Positions enter as ALiBi biases
(Press et al. 2022), ``-slope_h * (i - j)`` on the score of query ``i`` for key ``j``, which depend only on
distances, so the model runs the same on any window of the stream. In every layer a position attends to
itself and the ``context - 1`` positions before it (sliding-window attention, so the top layer sees
``num_layers * (context - 1)`` elements back). The state is each layer's input at the last ``context - 1``
positions (a cache, as Transformer-XL keeps): carried across training windows, through ``log_prob``'s chunks
and ``step``, it makes all three compute exactly the same function.
Discrete or continuous data through the ``Elements`` codec (an embedding and ``Categorical``, a standardised
value and a continuous head, or a frame of ``D`` values and a ``FrameHead``: ``CausalTransformer.for_frames``).
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
class CausalTransformerConfig:
    context: int = 128  # elements each prediction attends to
    d_model: int = 128
    num_layers: int = 2
    num_heads: int = 4
    dropout: float = 0.0
    head: str = "gaussian"  # continuous data only: gaussian, studentt or mixture
    components: int = 3  # mixture components
    covariates: int = 0  # continuous data only: past covariates beside each value (seqlab.models.element_codecs)

    def validate(self) -> None:
        validate_head(self)
        for name in ("context", "d_model", "num_layers", "num_heads"):
            if getattr(self, name) <= 0:
                raise SeqlabError(f"{name} must be a positive integer, got {getattr(self, name)}")
        if self.d_model % self.num_heads:
            raise SeqlabError(f"d_model {self.d_model} is not divisible by num_heads {self.num_heads}")
        if not 0.0 <= self.dropout < 1.0:
            raise SeqlabError(f"dropout must be in [0, 1), got {self.dropout}")


class Block(nn.Module):
    def __init__(self, d: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.q, self.kv, self.proj = nn.Linear(d, d), nn.Linear(d, 2 * d), nn.Linear(d, d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, keys: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """x (B, T, D) the new positions; keys (B, S + T, D) the cached ones and x; bias (1, heads, T, S + T)."""
        B, T, D = x.shape
        d = D // self.heads
        q = self.q(self.norm1(x)).view(B, T, self.heads, d).transpose(1, 2)  # (B, heads, T, d)
        k, v = self.kv(self.norm1(keys)).view(B, -1, 2, self.heads, d).permute(2, 0, 3, 1, 4)  # (B, heads, S+T, d)
        attended = nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        x = x + self.dropout(self.proj(attended.transpose(1, 2).reshape(B, T, D)))
        return x + self.dropout(self.mlp(self.norm2(x)))


class CausalTransformer(ElementsModel):
    """Shapes: ``forward(x_prev (B, T), state (B, S) or None) -> (params (B, T, P), state (B, <= context - 1))``.

    Example::

        >>> config = CausalTransformerConfig(context=8, d_model=16)
        >>> CausalTransformer(Vocabulary.from_text("hello world"), config).log_prob("hello").shape
        torch.Size([5])
    """

    kind = "causal_transformer"
    config_class = CausalTransformerConfig

    def __init__(
        self,
        data: DataDescription = None,
        config: CausalTransformerConfig | None = None,
        location: float = 0.0,
        scale: float = 1.0,
    ) -> None:
        super().__init__()
        config = config or CausalTransformerConfig()
        self.setup_elements(data, config, config.d_model, location, scale)
        self.blocks = nn.ModuleList(
            Block(config.d_model, config.num_heads, config.dropout) for _ in range(config.num_layers)
        )
        self.norm = nn.LayerNorm(config.d_model)
        self.out = nn.Linear(config.d_model, self.head.num_params)
        # ALiBi: head h's slope is 2^(-8 (h + 1) / heads)
        slopes = [2.0 ** (-8.0 * (h + 1) / config.num_heads) for h in range(config.num_heads)]
        self.register_buffer("slopes", torch.tensor(slopes), persistent=False)

    def _bias(self, S: int, T: int, device) -> torch.Tensor:
        """(1, heads, T, S + T) additive bias: ALiBi inside the window, -inf outside it or in the future."""
        distance = (S + torch.arange(T, device=device))[:, None] - torch.arange(S + T, device=device)[None, :]
        allowed = (distance >= 0) & (distance < self.config.context)
        bias = -self.slopes[:, None, None] * distance.to(self.slopes.dtype)
        return bias.masked_fill(~allowed, float("-inf"))[None].to(self.out.weight.dtype)

    def forward(self, x_prev: torch.Tensor, state: tuple[torch.Tensor, ...] | None = None):
        h = self.elements(x_prev)  # (B, T, D)
        T, S = x_prev.shape[1], 0 if state is None else state[0].shape[1]
        bias = self._bias(S, T, x_prev.device)
        keep = self.config.context - 1
        new_state = []
        for k, block in enumerate(self.blocks):
            keys = h if state is None else torch.cat([state[k], h], dim=1)  # this layer's input, cached + new
            new_state.append(keys[:, max(0, keys.shape[1] - keep) :])
            h = block(h, keys, bias)
        return self.elements.head_params(self.out(self.norm(h))), tuple(new_state)

    # -- SequenceModel --------------------------------------------------------------------------------------
    def log_prob(self, x) -> torch.Tensor:
        x = self.encode(x).to(self.out.weight.device)
        return teacher_forced_log_prob(self, x, self.elements.start, chunk=4 * self.config.context)

    def initial_state(self):
        return None

    @inference
    def step(self, x_prev, state):
        """One element in (``None``: the start symbol), the next one's params and the updated caches out."""
        params, state = self(self.element_input(x_prev), state)
        return params[0, 0], state

    @classmethod
    def conformance_cases(cls) -> list[ConformanceCase]:
        tiny = {"context": 3, "d_model": 8, "num_heads": 2, "num_layers": 2, "dropout": 0.5}
        fit = {"steps": 3, "batch_size": 2, "window": 8, "eval_every": 3}
        return [
            ConformanceCase(
                "text", "text", lambda text: cls(Vocabulary.from_text(text), CausalTransformerConfig(**tiny)), fit
            ),
            ConformanceCase(
                "series, mixture",
                "series",
                lambda y: cls.for_series(y, CausalTransformerConfig(**tiny, head="mixture", components=2)),
                fit,
            ),
            ConformanceCase(
                "frames", "frames", lambda y: cls.for_frames(y, CausalTransformerConfig(**tiny), binary=[2]), fit
            ),
        ]

    def describe(self) -> str:
        c = self.config
        n = sum(p.numel() for p in self.parameters())
        return (
            f"CausalTransformer(context {c.context}, {c.num_layers} layers x d_model {c.d_model}, {c.num_heads} "
            f"heads, {self.elements.describe()}, {n:,} parameters)"
        )
