"""``recurrence``: one recurrent layer over a sequence through the Triton kernels, differentiable.

    gx = x W_ih^T + b_ih (+ the parts of b_hh outside the reset)   one matrix product for all T steps
    hs, (cs, gates, aux) = forward kernel(gx, W_hh)                the time loop, one launch
    dgx, dgh = backward kernel(dy, dh_T, dC_T, saved)               the reverse time loop, one launch
    dW_hh = sum_t dgh_t^T h_{t-1};  dW_ih = sum_t dgx_t^T x_t;  dx = dgx W_ih;  db = sums   (torch, outside)

float32 runs exact fp32 products (no tf32); bfloat16 takes bfloat16 weights and inputs but keeps the
states, gates and accumulations in fp32 (the recurrent product rounds ``h_{t-1}`` to bfloat16 for the
tensor cores, as cuDNN does). Outputs come back in the input's dtype.

Two layouts fill the same buffers, so everything around the kernels is shared: ``"rows"`` (``forward.py``,
``backward.py``: a program per 16 batch rows owns every hidden unit) and ``"units"`` (``units*.py``: hidden units
split over programs that keep their slice of ``W_hh`` on chip, a grid barrier per step).
"""

from __future__ import annotations

import warnings

import torch
import triton

from seqlab.kernels import units
from seqlab.kernels.backward import recurrence_backward_kernel
from seqlab.kernels.common import INTERPRETED, NUM_GATES
from seqlab.kernels.forward import recurrence_forward_kernel

DTYPES = (torch.float32, torch.bfloat16)
# Not a correctness limit: past this W_hh (up to 4H x H, 256 MiB in fp32) is far beyond any L2 cache and each
# step would stream it from DRAM in one program; such layers go to the torch (or reference) backend.
MAX_HIDDEN = 4096
BLOCK_B = 16  # tl.dot needs at least 16 rows: B = 1 pads to 16
LAYOUTS = ("auto", "rows", "units")
# layout="auto" takes "units" from this hidden size up (and B <= UNITS_MAX_AUTO_BATCH): below it W_hh is small
# enough that re-reading it from L2 costs little and one launch without grid barriers wins. A design estimate,
# not a measurement: no GPU has timed the two layouts yet (docs/benchmarks.md).
UNITS_MIN_AUTO_HIDDEN = 128
UNITS_MAX_AUTO_BATCH = 64  # past it "rows" spreads the batch over SMs while "units" walks it in every program

_warned: set[str] = set()


def warn_once(message: str) -> None:
    """A ``UserWarning`` the first time ``message`` comes up in this process, silence after."""
    if message not in _warned:
        _warned.add(message)
        warnings.warn(message, stacklevel=3)


def unsupported_reason(x: torch.Tensor, weight: torch.Tensor) -> str | None:
    """Why the kernels cannot run on ``x`` with recurrent weight ``weight (G, H)``, or None if they can."""
    if x.dtype not in DTYPES or weight.dtype != x.dtype:
        return f"dtype {x.dtype} with weights {weight.dtype} (the kernels take float32 or bfloat16, both alike)"
    if x.device.type != "cuda" and not INTERPRETED:
        return f"tensors on {x.device.type} (the kernels need CUDA, or TRITON_INTERPRET=1 set before import)"
    if weight.shape[1] > MAX_HIDDEN:
        return f"hidden size {weight.shape[1]} > {MAX_HIDDEN}"
    return None


def pick_layout(x: torch.Tensor, weight: torch.Tensor, layout: str = "auto") -> str:
    """``"rows"`` or ``"units"`` for ``x (B, T, D)`` and ``weight (G, H)``: ``"auto"`` chooses by shape; an explicit
    ``"units"`` the shape does not fit becomes ``"rows"`` after a one-time warning."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    B, H = x.shape[0], weight.shape[1]
    plan = units.units_plan(H, x.device)
    if layout == "auto":
        fits = not isinstance(plan, str)
        return "units" if fits and H >= UNITS_MIN_AUTO_HIDDEN and B <= UNITS_MAX_AUTO_BATCH else "rows"
    if layout == "units" and isinstance(plan, str):
        warn_once(f'{plan}; using layout="rows"')
        return "rows"
    return layout


def _empty(*shape: int, device: torch.device) -> torch.Tensor:
    """An fp32 buffer the kernels fill (the tests swap in a NaN-filled one to catch unwritten elements)."""
    return torch.empty(*shape, device=device, dtype=torch.float32)


def _launch_options(H: int, dtype: torch.dtype) -> dict:
    block = min(64, max(16, triton.next_power_of_2(H)))
    return dict(
        BLOCK_B=BLOCK_B,
        BLOCK_H=block,
        BLOCK_K=block,
        IEEE_FP32=dtype == torch.float32,
        UPCAST_DOT=INTERPRETED,
    )


class _Recurrence(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, h0, C0, weight_ih, weight_hh, bias_ih, bias_hh, cell, layout):
        B, T, D = x.shape
        G, H = weight_hh.shape
        device = x.device
        placeholder = torch.zeros(1, device=device)  # for the buffers a cell does not use
        b_hh = bias_hh.float()
        if cell == "gru_after":  # b_hn stays inside r * (W_hn h + b_hn)
            b_hh = torch.cat([b_hh[: 2 * H], torch.zeros_like(b_hh[2 * H :])])
        gx = torch.addmm(bias_ih.float() + b_hh, x.reshape(B * T, D).float(), weight_ih.float().T)  # (B T, G)
        hs = _empty(B, T + 1, H, device=device)
        hs[:, 0] = h0
        cs = _empty(B, T + 1, H, device=device) if cell == "lstm" else placeholder
        if cell == "lstm":
            cs[:, 0] = C0
        gates = placeholder if cell == "rnn" else _empty(B, T, G, device=device)
        aux = _empty(B, T, H, device=device) if cell in ("gru_after", "gru_before") else placeholder
        b_hn = bias_hh[2 * H :].float().contiguous() if cell == "gru_after" else placeholder
        w_t = weight_hh.T.contiguous()  # (H, G)
        if layout == "units":
            plan = units.units_plan(H, device)
            units.forward(plan, cell, gx, w_t, b_hn, hs, cs, gates, aux, x.dtype)
        else:
            grid = (triton.cdiv(B, BLOCK_B),)
            recurrence_forward_kernel[grid](
                gx,
                w_t,
                b_hn,
                hs,
                cs,
                gates,
                aux,
                B,
                T,
                H,
                CELL=cell,
                NUM_GATES=NUM_GATES[cell],
                **_launch_options(H, x.dtype),
            )
        ctx.save_for_backward(x, weight_ih, weight_hh, hs, cs, gates, aux)
        ctx.cell = cell
        ctx.layout = layout
        y = hs[:, 1:].to(x.dtype, copy=True)  # (B, T, H)
        h_n = hs[:, T].to(x.dtype, copy=True)  # (B, H)
        C_n = cs[:, T].to(x.dtype, copy=True) if cell == "lstm" else x.new_zeros(0)
        if cell != "lstm":
            ctx.mark_non_differentiable(C_n)
        return y, h_n, C_n

    @staticmethod
    def backward(ctx, dy, dh_n, dC_n):
        x, weight_ih, weight_hh, hs, cs, gates, aux = ctx.saved_tensors
        cell = ctx.cell
        B, T, D = x.shape
        G, H = weight_hh.shape
        device = x.device
        f32 = torch.float32
        dy = torch.zeros(B, T, H, device=device) if dy is None else dy.to(f32).contiguous()
        dh_carry = torch.zeros(B, H, device=device) if dh_n is None else dh_n.to(f32, copy=True).contiguous()
        has_dC = cell == "lstm" and dC_n is not None
        dc_carry = dC_n.to(f32, copy=True).contiguous() if has_dC else torch.zeros(B, H, device=device)
        dgx = _empty(B, T, G, device=device)
        dgh = _empty(B, T, G, device=device) if cell == "gru_after" else dgx
        w = weight_hh.contiguous()  # (G, H)
        if ctx.layout == "units":
            plan = units.units_plan(H, device)
            units.backward(plan, cell, dy, w, hs, cs, gates, aux, dgx, dgh, dh_carry, dc_carry, x.dtype)
        else:
            grid = (triton.cdiv(B, BLOCK_B),)
            recurrence_backward_kernel[grid](
                dy,
                w,
                hs,
                cs,
                gates,
                aux,
                dgx,
                dgh,
                dh_carry,
                dc_carry,
                B,
                T,
                H,
                CELL=cell,
                NUM_GATES=NUM_GATES[cell],
                **_launch_options(H, x.dtype),
            )
        h_prev = hs[:, :-1].reshape(B * T, H)  # h_{t-1} for every step
        dgx2, dgh2 = dgx.view(B * T, G), dgh.view(B * T, G)
        K = 2 * H if cell == "gru_before" else G  # rows of W_hh applied to h_{t-1} itself
        if cell == "gru_before":  # the candidate's rows multiply rh_t = r_t h_{t-1}
            dW_hh = torch.cat([dgx2[:, :K].T @ h_prev, dgx2[:, K:].T @ aux.view(B * T, H)])
        else:
            dW_hh = dgh2.T @ h_prev
        dh0 = dh_carry + dgh[:, 0, :K] @ weight_hh[:K].float()
        dx = (dgx2 @ weight_ih.float()).view(B, T, D)
        dW_ih = dgx2.T @ x.reshape(B * T, D).float()
        weight_dtype = weight_hh.dtype
        return (
            dx.to(x.dtype),
            dh0.to(x.dtype),
            dc_carry.to(x.dtype) if cell == "lstm" else None,
            dW_ih.to(weight_dtype),
            dW_hh.to(weight_dtype),
            dgx2.sum(0).to(weight_dtype),
            dgh2.sum(0).to(weight_dtype),
            None,
            None,
        )


def recurrence(
    x: torch.Tensor,
    h0: torch.Tensor,
    C0: torch.Tensor | None,
    weight_ih: torch.Tensor,
    weight_hh: torch.Tensor,
    bias_ih: torch.Tensor,
    bias_hh: torch.Tensor,
    cell: str,
    reset: str = "after",
    layout: str = "auto",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """One layer: ``x (B, T, D)``, ``h0 (B, H)``, ``C0 (B, H)`` (LSTM, else None) -> ``y (B, T, H), h_T, C_T``.

    Parameters in ``torch.nn``'s layout (``seqlab.cells.base``); ``cell`` in rnn | lstm | gru, ``reset``
    (GRU only) before | after; ``layout`` rows | units | auto (``pick_layout``). Differentiable in every
    tensor argument. Check ``unsupported_reason`` first: this function runs the kernels unconditionally.
    """
    if cell == "gru":
        cell = f"gru_{reset}"
    G = NUM_GATES[cell] * h0.shape[-1]
    if weight_hh.shape != (G, h0.shape[-1]):
        raise ValueError(f"weight_hh must be ({G}, {h0.shape[-1]}) for {cell}, got {tuple(weight_hh.shape)}")
    if C0 is None:
        C0 = h0.new_zeros(h0.shape) if cell == "lstm" else h0.new_zeros(0)
    layout = pick_layout(x, weight_hh, layout)
    y, h_n, C_n = _Recurrence.apply(x.contiguous(), h0, C0, weight_ih, weight_hh, bias_ih, bias_hh, cell, layout)
    return y, h_n, (C_n if cell == "lstm" else None)
