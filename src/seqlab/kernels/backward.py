"""Backward recurrence kernel, "rows" layout: the time loop in reverse, in one launch.

It produces the gradients of the pre-activations, ``dgx (B, T, G)`` (with respect to the input
projection ``gx``) and ``dgh (B, T, G)`` (with respect to the recurrent term ``W_hh h_{t-1} + b_hh``; the
same as ``dgx`` except for the gru_after candidate, ``dgh_n = r dgx_n``), step by step from the last
(``pointwise.cell_backward``; the equations are there), with

    dL/dh_{t-1} = direct terms + W_hh^T dgh_t   (gru_before: only the r, z rows of W_hh)

Everything else (``dW_hh``, ``dW_ih``, the biases, ``dx``, ``dh_0``) is a large matrix product outside, in torch.
The per-unit terms that flow to step t - 1 (``dh_{t-1}`` direct, the LSTM's ``dC``) live in the
``dh_carry`` and ``dc_carry (B, H)`` buffers, which start as the gradients of the final state and end as
the direct part of ``dh_0`` and all of ``dC_0``. Same layout and barriers as the forward kernel (``forward.py``);
``w = W_hh (G, H)``.
"""

from __future__ import annotations

import triton
import triton.language as tl

from seqlab.kernels.common import rows_times_gates
from seqlab.kernels.pointwise import cell_backward, reset_backward


@triton.jit
def recurrence_backward_kernel(
    dy_ptr,
    w_ptr,
    hs_ptr,
    cs_ptr,
    gates_ptr,
    aux_ptr,
    dgx_ptr,
    dgh_ptr,
    dh_carry_ptr,
    dc_carry_ptr,
    B,
    T,
    H,
    CELL: tl.constexpr,
    NUM_GATES: tl.constexpr,
    BLOCK_B: tl.constexpr,
    BLOCK_H: tl.constexpr,
    BLOCK_K: tl.constexpr,
    IEEE_FP32: tl.constexpr,
    UPCAST_DOT: tl.constexpr,
):
    G = NUM_GATES * H
    K_RECURRENT = G - H if CELL == "gru_before" else G  # rows of W_hh that multiply h_{t-1} itself
    offs_b = (tl.program_id(0) * BLOCK_B + tl.arange(0, BLOCK_B)).to(tl.int64)
    mask_b = offs_b < B
    hs_stride = (T + 1) * H
    for s in range(T):
        t = T - 1 - s
        for half in tl.static_range(2 if CELL == "gru_before" else 1):
            for j0 in range(0, H, BLOCK_H):
                offs_h = j0 + tl.arange(0, BLOCK_H)
                mask_h = offs_h < H
                mask = mask_b[:, None] & mask_h[None, :]
                at_t = (offs_b[:, None] * T + t) * G + offs_h[None, :]  # (B, T, G) buffers at t
                bh_at = offs_b[:, None] * H + offs_h[None, :]  # (B, H) carry buffers
                h_prev_at = hs_ptr + offs_b[:, None] * hs_stride + t * H + offs_h[None, :]  # h_{t-1}
                if half == 1:  # gru_before: drh = W_hn^T dn_t from every unit's dn_t
                    drh, _, _, _ = rows_times_gates(
                        dgx_ptr + t * G + 2 * H, T * G, offs_b, mask_b, w_ptr + 2 * H * H, H, 0, offs_h, mask_h, H,
                        1, BLOCK_B, BLOCK_H, BLOCK_K, IEEE_FP32, UPCAST_DOT,
                    )  # fmt: skip
                    reset_backward(drh, gates_ptr + at_t, dgx_ptr + at_t, h_prev_at, dh_carry_ptr + bh_at, mask)
                else:
                    bth_at = (offs_b[:, None] * T + t) * H + offs_h[None, :]  # (B, T, H) buffers at t
                    dh = tl.load(dy_ptr + bth_at, mask, other=0.0) + tl.load(dh_carry_ptr + bh_at, mask, other=0.0)
                    if t < T - 1:  # W_hh^T dgh_{t+1}: every unit's gradient from the step after
                        w_dgh, _, _, _ = rows_times_gates(
                            dgh_ptr + (t + 1) * G, T * G, offs_b, mask_b, w_ptr, H, 0, offs_h, mask_h, K_RECURRENT,
                            1, BLOCK_B, BLOCK_H, BLOCK_K, IEEE_FP32, UPCAST_DOT,
                        )  # fmt: skip
                        dh += w_dgh
                    c_prev_at = cs_ptr + offs_b[:, None] * hs_stride + t * H + offs_h[None, :]
                    cell_backward(
                        CELL, dh, gates_ptr + at_t, dgx_ptr + at_t, dgh_ptr + at_t, h_prev_at, c_prev_at,
                        aux_ptr + bth_at, dh_carry_ptr + bh_at, dc_carry_ptr + bh_at, mask, H,
                    )  # fmt: skip
            tl.debug_barrier()  # every unit's dn (gru_before), dgh_t and carries before the next pass reads them
