"""LSTM cell (Hochreiter & Schmidhuber 1997, with forget gate), one step."""

from __future__ import annotations

import torch

from seqlab.cells.base import CellBase


def lstm_step(
    x_t: torch.Tensor,
    state: tuple[torch.Tensor, torch.Tensor],
    weight_ih: torch.Tensor,
    weight_hh: torch.Tensor,
    bias_ih: torch.Tensor,
    bias_hh: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One LSTM step; x_t (B, D), state (h, C) each (B, H) -> (h_t, C_t). Gate rows: i, f, C~, o."""
    h_prev, C_prev = state
    gates = x_t @ weight_ih.T + bias_ih + h_prev @ weight_hh.T + bias_hh  # (B, 4H)
    i_pre, f_pre, C_pre, o_pre = gates.chunk(4, dim=-1)
    i_t = torch.sigmoid(i_pre)  # input gate: how much new information to write
    f_t = torch.sigmoid(f_pre)  # forget gate: how much of C_{t-1} to keep
    C_tilde = torch.tanh(C_pre)  # candidate information
    o_t = torch.sigmoid(o_pre)  # output gate
    C_t = f_t * C_prev + i_t * C_tilde  # the cell state: the conveyor belt
    h_t = o_t * torch.tanh(C_t)
    return h_t, C_t


class LSTMCell(CellBase):
    r"""One step of the LSTM.

    .. math::
        \begin{aligned}
        i_t &= \sigma(W_{ii} x_t + b_{ii} + W_{hi} h_{t-1} + b_{hi})      && \text{input gate} \\
        f_t &= \sigma(W_{if} x_t + b_{if} + W_{hf} h_{t-1} + b_{hf})      && \text{forget gate} \\
        \tilde C_t &= \tanh(W_{iC} x_t + b_{iC} + W_{hC} h_{t-1} + b_{hC}) && \text{candidate} \\
        o_t &= \sigma(W_{io} x_t + b_{io} + W_{ho} h_{t-1} + b_{ho})      && \text{output gate} \\
        C_t &= f_t \odot C_{t-1} + i_t \odot \tilde C_t \\
        h_t &= o_t \odot \tanh(C_t)
        \end{aligned}

    Gate packing order along the rows of the weights: ``i, f, C~, o`` (torch's ``i, f, g, o``), so
    ``weight_ih (4H, D)``, ``weight_hh (4H, H)``, ``bias_ih (4H,)``, ``bias_hh (4H,)``; the layout of
    ``torch.nn.LSTMCell``.

    Shapes: ``forward(x (B, D), (h, C) each (B, H)) -> (h_t, C_t) each (B, H)``.

    Example::

        >>> cell = LSTMCell(3, 5)
        >>> h, C = cell(torch.randn(2, 3))
        >>> h.shape, C.shape
        (torch.Size([2, 5]), torch.Size([2, 5]))
    """

    num_gates = 4
    kind = "lstm"

    def forward(
        self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if state is None:
            zeros = x.new_zeros(x.shape[0], self.hidden_size)
            state = (zeros, zeros)
        return lstm_step(x, state, *self.weights())
