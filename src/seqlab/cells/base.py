"""Shared parameter layout of the reference cells.

Shape key (used throughout seqlab): B batch, T time, D input size, H hidden size,
G = (number of gates) * H rows of the packed weights, V vocabulary size.

Every cell stores its weights exactly as ``torch.nn.RNNCell / LSTMCell / GRUCell`` do, so that
weights copy across with ``load_state_dict`` and the ``Recurrent`` layer can hand the same tensors
to cuDNN/oneDNN:

    weight_ih  (G, D)    input-to-hidden, gates stacked along rows
    weight_hh  (G, H)    hidden-to-hidden
    bias_ih    (G,)
    bias_hh    (G,)

``W . [h, x] + b`` of the notes is ``weight_hh @ h + weight_ih @ x + bias_hh + bias_ih``.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class CellBase(nn.Module):
    """Packed parameters of a cell with ``num_gates`` blocks of ``hidden_size`` rows."""

    num_gates: int = 1
    kind: str = ""

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        if input_size <= 0 or hidden_size <= 0:
            raise ValueError(f"input_size and hidden_size must be positive, got {input_size}, {hidden_size}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        G = self.num_gates * hidden_size
        self.weight_ih = nn.Parameter(torch.empty(G, input_size))
        self.weight_hh = nn.Parameter(torch.empty(G, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(G))
        self.bias_hh = nn.Parameter(torch.empty(G))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # Same initialisation as torch.nn: U(-1/sqrt(H), 1/sqrt(H)) for every tensor.
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def weights(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}"
