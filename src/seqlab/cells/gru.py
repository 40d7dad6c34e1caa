"""GRU cell (Cho et al. 2014) in both reset placements, one step."""

from __future__ import annotations

import torch

from seqlab.cells.base import CellBase
from seqlab.cells.lstm import keep_gate_bias

RESET_VARIANTS = ("before", "after")


def gru_step(
    x_t: torch.Tensor,
    h_prev: torch.Tensor,
    weight_ih: torch.Tensor,
    weight_hh: torch.Tensor,
    bias_ih: torch.Tensor,
    bias_hh: torch.Tensor,
    reset: str = "after",
) -> torch.Tensor:
    """One GRU step; x_t (B, D), h_prev (B, H) -> h_t (B, H). Gate rows: r, z, n (torch's order)."""
    return gru_values(x_t, h_prev, weight_ih, weight_hh, bias_ih, bias_hh, reset)["h"]


def gru_values(
    x_t: torch.Tensor,
    h_prev: torch.Tensor,
    weight_ih: torch.Tensor,
    weight_hh: torch.Tensor,
    bias_ih: torch.Tensor,
    bias_hh: torch.Tensor,
    reset: str = "after",
) -> dict[str, torch.Tensor]:
    """Every quantity of one GRU step, each (B, H): the gates ``r, z``, the candidate ``n`` (h~) and ``h``.
    The one copy of the GRU's equations: ``gru_step`` returns its ``h``."""
    H = h_prev.shape[-1]
    gi = x_t @ weight_ih.T + bias_ih  # (B, 3H)
    W_hr, W_hz, W_hn = weight_hh.split(H, dim=0)
    b_hr, b_hz, b_hn = bias_hh.split(H, dim=0)
    gi_r, gi_z, gi_n = gi.chunk(3, dim=-1)
    r_t = torch.sigmoid(gi_r + h_prev @ W_hr.T + b_hr)  # reset gate
    z_t = torch.sigmoid(gi_z + h_prev @ W_hz.T + b_hz)  # update gate
    if reset == "before":
        h_tilde = torch.tanh(gi_n + (r_t * h_prev) @ W_hn.T + b_hn)  # reset, then the product
    elif reset == "after":
        h_tilde = torch.tanh(gi_n + r_t * (h_prev @ W_hn.T + b_hn))  # the product, then reset
    else:
        raise ValueError(f"reset must be one of {RESET_VARIANTS}, got {reset!r}")
    # The notes' h_t = (1 - z_t) h_{t-1} + z_t h~_t is torch's (1 - z') n + z' h with z' = 1 - z.
    # We follow torch's convention so weights copy over unchanged: z_t is the fraction of h_{t-1} kept.
    h_t = (1.0 - z_t) * h_tilde + z_t * h_prev
    return {"r": r_t, "z": z_t, "n": h_tilde, "h": h_t}


class GRUCell(CellBase):
    r"""One step of the GRU, with the reset gate applied before or after the recurrent product.

    .. math::
        \begin{aligned}
        r_t &= \sigma(W_{ir} x_t + b_{ir} + W_{hr} h_{t-1} + b_{hr})      && \text{reset gate} \\
        z_t &= \sigma(W_{iz} x_t + b_{iz} + W_{hz} h_{t-1} + b_{hz})      && \text{update gate} \\
        \tilde h_t &= \tanh(W_{in} x_t + b_{in} + W_{hn} (r_t \odot h_{t-1}) + b_{hn})
            && \text{reset="before" (Cho et al. 2014, the notes)} \\
        \tilde h_t &= \tanh(W_{in} x_t + b_{in} + r_t \odot (W_{hn} h_{t-1} + b_{hn}))
            && \text{reset="after" (cuDNN, torch.nn.GRU)} \\
        h_t &= (1 - z_t) \odot \tilde h_t + z_t \odot h_{t-1}
        \end{aligned}

    ``z_t`` here is torch's update gate: the fraction of ``h_{t-1}`` kept. The notes write
    ``h_t = (1 - z_t) h_{t-1} + z_t h~_t``, the same model with ``z_t`` renamed to ``1 - z_t``.
    There is no cell state: ``h`` carries the memory.

    Gate packing order along the rows: ``r, z, n``; ``weight_ih (3H, D)``, ``weight_hh (3H, H)``,
    ``bias_ih (3H,)``, ``bias_hh (3H,)``, the layout of ``torch.nn.GRUCell``. With
    ``reset="after"`` the cell computes exactly ``torch.nn.GRUCell``; ``reset="before"`` is a
    different function of the same parameters.

    The default is ``reset="after"``, the variant cuDNN and oneDNN run (and so the fast one).

    Shapes: ``forward(x (B, D), h (B, H)) -> h_t (B, H)``.

    Example::

        >>> cell = GRUCell(3, 5, reset="before")
        >>> cell(torch.randn(2, 3)).shape
        torch.Size([2, 5])
    """

    num_gates = 3
    kind = "gru"

    def __init__(self, input_size: int, hidden_size: int, reset: str = "after") -> None:
        if reset not in RESET_VARIANTS:
            raise ValueError(f"reset must be one of {RESET_VARIANTS}, got {reset!r}")
        super().__init__(input_size, hidden_size)
        self.reset = reset

    def forward(self, x: torch.Tensor, h: torch.Tensor | None = None) -> torch.Tensor:
        if h is None:
            h = x.new_zeros(x.shape[0], self.hidden_size)
        return gru_step(x, h, *self.weights(), reset=self.reset)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, reset={self.reset!r}"


@torch.no_grad()
def init_update_gate(cell: GRUCell, spec: str, generator: torch.Generator | None = None) -> None:
    """Set the update-gate bias of ``cell`` as ``spec`` says, the rule ``init_forget_gate`` applies to the LSTM's
    forget gate: ``z_t`` (torch's convention) is the fraction of ``h_{t-1}`` kept, so ``b_z = c`` keeps about
    ``sigma(c)`` per step and chrono T_MAX (``b_z = log u``, ``u ~ U(1, T_MAX - 1)``) gives unit j a memory of
    about ``1 + u`` steps (Tallec & Ollivier 2018 derive the gate from time warping for gated units in general).
    The whole value goes into ``bias_ih``, 0 into ``bias_hh``; ``"zero"`` leaves torch.nn's initialisation."""
    b_z = keep_gate_bias(spec, cell.hidden_size, generator)
    if b_z is not None:
        H = cell.hidden_size
        cell.bias_ih[H : 2 * H] = b_z  # gate rows r, z, n
        cell.bias_hh[H : 2 * H] = 0.0
