"""``Recurrent``: a multi-layer recurrent layer over a sequence, with interchangeable backends."""

from __future__ import annotations

import importlib.util

import torch
from torch import nn

from seqlab.cells import (
    RESET_VARIANTS,
    GRUCell,
    LSTMCell,
    RNNCell,
    gru_step,
    init_forget_gate,
    lstm_step,
    parse_forget_init,
    rnn_step,
)
from seqlab.cells.base import CellBase

CELLS: dict[str, type[CellBase]] = {"rnn": RNNCell, "lstm": LSTMCell, "gru": GRUCell}
BACKENDS = ("auto", "reference", "torch", "triton")
LAYOUTS = ("auto", "rows", "units")  # backend="triton" only: seqlab.kernels.pick_layout

# State: h (L, B, H) for RNN and GRU; (h, C) each (L, B, H) for the LSTM, as torch.nn does.
State = torch.Tensor | tuple[torch.Tensor, torch.Tensor]


class Recurrent(nn.Module):
    """A stack of ``num_layers`` recurrent cells run over a batch-first sequence.

    ``forward(x (B, T, D), state=None) -> (y (B, T, H), state)`` where ``state`` is ``h (L, B, H)``
    for ``"rnn"`` and ``"gru"`` and ``(h, C)`` for ``"lstm"``, as in ``torch.nn.RNN/GRU/LSTM``; a
    missing state starts at zeros. Dropout (training only) is applied to the outputs of every layer
    but the last, as ``torch.nn`` does.

    ``forget_init`` (LSTM only; ignored by the other cells) sets every layer's forget-gate bias at
    initialisation: ``"zero"`` (the default: torch.nn's initialisation, unchanged), a number such as ``"1"``,
    or ``"chrono:T_MAX"`` (``seqlab.cells.init_forget_gate``).

    Layer ``k``'s parameters live in ``self.cells[k]``, a reference cell from ``seqlab.cells``;
    every backend computes with those same tensors:

    - ``"reference"``: a Python loop over time calling the reference cells (the oracle; slow);
    - ``"torch"``: ``torch.rnn_tanh / lstm / gru``, the kernels behind ``torch.nn.RNN/LSTM/GRU``
      (oneDNN on the CPU, cuDNN on the GPU); cannot run the GRU with ``reset="before"``;
    - ``"triton"``: ``seqlab.kernels``, fused Triton kernels running each layer's time loop in one launch
      (CUDA, or the CPU under ``TRITON_INTERPRET=1``); float32 and bfloat16, every cell and reset. A call
      they cannot take (another dtype, a CPU tensor without the interpreter, H > 4096) runs on ``"torch"`` (or
      ``"reference"``) after a one-time warning. ``layout`` picks how the kernels split the work: ``"rows"``
      (a program per 16 batch rows owns every hidden unit), ``"units"`` (hidden units split over programs
      that keep their slice of ``W_hh`` on chip, a grid barrier per step), or ``"auto"`` (by shape; a size
      ``"units"`` cannot take runs on ``"rows"`` after a one-time warning);
    - ``"auto"``: ``"torch"`` where it supports the variant, else ``"reference"``.

    Example::

        >>> layer = Recurrent("lstm", input_size=8, hidden_size=16, num_layers=2)
        >>> y, (h, C) = layer(torch.randn(4, 10, 8))
        >>> y.shape, h.shape
        (torch.Size([4, 10, 16]), torch.Size([2, 4, 16]))
    """

    def __init__(
        self,
        cell: str,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        dropout: float = 0.0,
        backend: str = "auto",
        reset: str = "after",
        layout: str = "auto",
        forget_init: str = "zero",
    ) -> None:
        super().__init__()
        if cell not in CELLS:
            raise ValueError(f"cell must be one of {sorted(CELLS)}, got {cell!r}")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        if reset not in RESET_VARIANTS:
            raise ValueError(f"reset must be one of {RESET_VARIANTS}, got {reset!r}")
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
        if input_size <= 0 or hidden_size <= 0 or num_layers <= 0:
            raise ValueError(
                f"sizes must be positive, got input_size={input_size}, hidden_size={hidden_size}, "
                f"num_layers={num_layers}"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        parse_forget_init(forget_init)  # raises ValueError on a bad spec, for every cell
        self.cell = cell
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.dropout = dropout
        self.reset = reset
        self.forget_init = forget_init
        extra = {"reset": reset} if cell == "gru" else {}
        self.cells = nn.ModuleList(
            CELLS[cell](input_size if k == 0 else hidden_size, hidden_size, **extra) for k in range(num_layers)
        )
        if cell == "lstm":
            for layer in self.cells:
                init_forget_gate(layer, forget_init)
        if backend == "triton" and importlib.util.find_spec("triton") is None:
            raise ImportError('backend="triton" needs the triton package (pip install triton; Linux, CUDA)')
        if backend == "torch" and not self.torch_supports():
            raise ValueError('backend="torch" cannot run the GRU with reset="before"; use "reference" or "auto"')
        self.backend = backend
        self.layout = layout

    def torch_supports(self) -> bool:
        return not (self.cell == "gru" and self.reset == "before")

    def resolved_backend(self) -> str:
        if self.backend == "auto":
            return "torch" if self.torch_supports() else "reference"
        return self.backend

    def initial_state(self, batch_size: int, device=None, dtype=None) -> State:
        p = self.cells[0].weight_hh
        h = torch.zeros(
            self.num_layers, batch_size, self.hidden_size, device=device or p.device, dtype=dtype or p.dtype
        )
        return (h, h.clone()) if self.cell == "lstm" else h

    def forward(self, x: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        if x.dim() != 3 or x.shape[-1] != self.input_size:
            raise ValueError(f"expected x of shape (B, T, {self.input_size}), got {tuple(x.shape)}")
        if state is None:
            state = self.initial_state(x.shape[0], x.device, x.dtype)
        backend = self.resolved_backend()
        if backend == "triton":
            return self._forward_triton(x, state)
        if backend == "torch":
            return self._forward_torch(x, state)
        return self._forward_reference(x, state)

    def _over_layers(self, x: torch.Tensor, state: State, run_layer) -> tuple[torch.Tensor, State]:
        """The layer stack, with dropout between layers; ``run_layer(y, cell, h0, C0) -> (y, h_T, C_T)`` runs
        one layer over the whole sequence (``C`` is None but for the LSTM)."""
        h0, C0 = state if self.cell == "lstm" else (state, None)
        h_last, C_last = [], []
        y = x  # (B, T, D) for the first layer, (B, T, H) after
        for k, cell in enumerate(self.cells):
            if k > 0 and self.dropout > 0 and self.training:
                y = nn.functional.dropout(y, self.dropout, training=True)
            y, h, C = run_layer(y, cell, h0[k], C0[k] if C0 is not None else None)
            h_last.append(h)
            C_last.append(C)
        h_n = torch.stack(h_last)  # (L, B, H)
        return y, ((h_n, torch.stack(C_last)) if self.cell == "lstm" else h_n)

    def _forward_reference(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        def run_layer(y, cell, h, C):
            outputs = []
            for t in range(y.shape[1]):
                if self.cell == "lstm":
                    h, C = lstm_step(y[:, t], (h, C), *cell.weights())
                elif self.cell == "gru":
                    h = gru_step(y[:, t], h, *cell.weights(), reset=self.reset)
                else:
                    h = rnn_step(y[:, t], h, *cell.weights())
                outputs.append(h)
            return torch.stack(outputs, dim=1), h, C  # (B, T, H)

        return self._over_layers(x, state, run_layer)

    def _forward_torch(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        flat_weights = [w for cell in self.cells for w in cell.weights()]
        args = (flat_weights, True, self.num_layers, self.dropout, self.training, False, True)
        if self.cell == "lstm":
            y, h_n, C_n = torch.lstm(x, tuple(state), *args)
            return y, (h_n, C_n)
        fn = torch.gru if self.cell == "gru" else torch.rnn_tanh
        y, h_n = fn(x, state, *args)
        return y, h_n

    def _forward_triton(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        from seqlab import kernels

        reason = kernels.unsupported_reason(x, self.cells[0].weight_hh)
        if reason is not None:
            fallback = "torch" if self.torch_supports() else "reference"
            kernels.warn_once(f'backend="triton" cannot run {reason}; using backend="{fallback}"')
            return self._forward_torch(x, state) if fallback == "torch" else self._forward_reference(x, state)
        layout = kernels.pick_layout(x, self.cells[0].weight_hh, self.layout)
        return self._over_layers(
            x,
            state,
            lambda y, cell, h, C: kernels.recurrence(
                y, h, C, *cell.weights(), cell=self.cell, reset=self.reset, layout=layout
            ),
        )

    def extra_repr(self) -> str:
        return f"cell={self.cell!r}, backend={self.backend!r}" + (
            f", reset={self.reset!r}" if self.cell == "gru" else ""
        )
