"""Vanilla (Elman) RNN cell with tanh, one step."""

from __future__ import annotations

import torch

from seqlab.cells.base import CellBase


def rnn_step(
    x_t: torch.Tensor,
    h_prev: torch.Tensor,
    weight_ih: torch.Tensor,
    weight_hh: torch.Tensor,
    bias_ih: torch.Tensor,
    bias_hh: torch.Tensor,
) -> torch.Tensor:
    """``h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)``; x_t (B, D), h_prev (B, H) -> (B, H)."""
    return torch.tanh(x_t @ weight_ih.T + bias_ih + h_prev @ weight_hh.T + bias_hh)


class RNNCell(CellBase):
    r"""One step of the tanh RNN, the notes' ``h_t = tanh(W . [h_{t-1}, x_t] + b)``.

    .. math::
        h_t = \tanh(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh})

    Parameters: ``weight_ih (H, D)``, ``weight_hh (H, H)``, ``bias_ih (H,)``, ``bias_hh (H,)``, the
    layout of ``torch.nn.RNNCell(nonlinearity="tanh")``.

    Shapes: ``forward(x (B, D), h (B, H)) -> h_t (B, H)``.

    Example::

        >>> cell = RNNCell(3, 5)
        >>> cell(torch.randn(2, 3), torch.zeros(2, 5)).shape
        torch.Size([2, 5])
    """

    num_gates = 1
    kind = "rnn"

    def forward(self, x: torch.Tensor, h: torch.Tensor | None = None) -> torch.Tensor:
        if h is None:
            h = x.new_zeros(x.shape[0], self.hidden_size)
        return rnn_step(x, h, *self.weights())
