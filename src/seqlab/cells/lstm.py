"""LSTM cell (Hochreiter & Schmidhuber 1997, with forget gate), one step."""

from __future__ import annotations

import math

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
    values = lstm_values(x_t, state, weight_ih, weight_hh, bias_ih, bias_hh)
    return values["h"], values["c"]


def lstm_values(
    x_t: torch.Tensor,
    state: tuple[torch.Tensor, torch.Tensor],
    weight_ih: torch.Tensor,
    weight_hh: torch.Tensor,
    bias_ih: torch.Tensor,
    bias_hh: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """Every quantity of one LSTM step, each (B, H): the gates ``i, f, o``, the candidate ``g`` (C~), the cell
    state ``c`` and ``h``. The one copy of the LSTM's equations: ``lstm_step`` returns its ``h`` and ``c``."""
    h_prev, C_prev = state
    gates = x_t @ weight_ih.T + bias_ih + h_prev @ weight_hh.T + bias_hh  # (B, 4H)
    i_pre, f_pre, C_pre, o_pre = gates.chunk(4, dim=-1)
    i_t = torch.sigmoid(i_pre)  # input gate: how much new information to write
    f_t = torch.sigmoid(f_pre)  # forget gate: how much of C_{t-1} to keep
    C_tilde = torch.tanh(C_pre)  # candidate information
    o_t = torch.sigmoid(o_pre)  # output gate
    C_t = f_t * C_prev + i_t * C_tilde  # the cell state: the conveyor belt
    h_t = o_t * torch.tanh(C_t)
    return {"i": i_t, "f": f_t, "g": C_tilde, "o": o_t, "c": C_t, "h": h_t}


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


def parse_forget_init(spec: str) -> tuple[str, float]:
    """``"zero"`` -> ``("zero", 0.0)``; ``"1"`` -> ``("constant", 1.0)``; ``"chrono:200"`` -> ``("chrono", 200.0)``.

    Raises ``ValueError`` naming what was expected and what arrived."""
    text = str(spec).strip().lower()
    if text == "zero":
        return "zero", 0.0
    if text.startswith("chrono:"):
        try:
            t_max = float(text.removeprefix("chrono:"))
        except ValueError:
            t_max = float("nan")
        if not t_max > 2 or not math.isfinite(t_max):
            raise ValueError(f"forget_init chrono:T_MAX needs a number T_MAX > 2, got {spec!r}")
        return "chrono", t_max
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f'forget_init must be "zero", a number such as "1" or "chrono:T_MAX", got {spec!r}') from None
    if not math.isfinite(value):
        raise ValueError(f"forget_init must be a finite number, got {spec!r}")
    return "constant", value


@torch.no_grad()
def init_forget_gate(cell: LSTMCell, spec: str, generator: torch.Generator | None = None) -> None:
    """Set the forget-gate (and for chrono the input-gate) biases of ``cell`` as ``spec`` says
    (``parse_forget_init``); the weights are left alone.

    The pre-activation of a gate carries two biases, ``bias_ih + bias_hh``; a set gate gets its whole value in
    ``bias_ih`` and 0 in ``bias_hh``, so that ``b_f = bias_ih[H:2H] + bias_hh[H:2H]`` is exactly the value:

        "zero"        nothing changes: torch.nn's U(-1/sqrt(H), 1/sqrt(H)) in both, b_f about 0, sigma(b_f) ~ 0.5
        constant c    b_f = c                          (c = 1: sigma(1) = 0.73, the memory lasts ~ 1/(1 - 0.73) steps)
        chrono T_MAX  b_f = log(u), u ~ U(1, T_MAX - 1) per unit, and b_i = -b_f: unit j forgets on a time scale
                      1 / (1 - sigma(b_f)) ~ u, spread over 2 .. T_MAX (Tallec & Ollivier 2018, section 4)
    """
    b_f = keep_gate_bias(spec, cell.hidden_size, generator)
    if b_f is None:
        return
    H = cell.hidden_size
    forget, inputs = slice(H, 2 * H), slice(0, H)  # gate rows i, f, C~, o
    if parse_forget_init(spec)[0] == "chrono":
        cell.bias_ih[inputs] = -b_f
        cell.bias_hh[inputs] = 0.0
    cell.bias_ih[forget] = b_f
    cell.bias_hh[forget] = 0.0


def keep_gate_bias(spec: str, hidden_size: int, generator: torch.Generator | None = None) -> torch.Tensor | None:
    """The bias (H,) of a gate that keeps the memory (the LSTM's forget gate, the GRU's update gate in torch's
    convention) as ``spec`` says, or None for ``"zero"`` (leave torch.nn's initialisation): a constant c, or
    chrono T_MAX: ``log(u)``, ``u ~ U(1, T_MAX - 1)`` per unit (Tallec & Ollivier 2018)."""
    kind, value = parse_forget_init(spec)
    if kind == "zero":
        return None
    if kind == "constant":
        return torch.full((hidden_size,), value)
    return (1.0 + (value - 2.0) * torch.rand(hidden_size, generator=generator)).log()  # log U(1, T_MAX - 1)
