"""Forward recurrence kernel, "rows" layout: the whole time loop in one launch.

Given the input projection ``gx (B, T, G)`` (computed outside, one large matrix product for all steps,
biases folded in), each step adds the recurrent product ``W_hh h_{t-1}`` and applies the cell
(``pointwise.cell_forward``; the equations are there).

Layout: one program per block of ``BLOCK_B`` batch rows; it walks the hidden units in ``BLOCK_H`` chunks
and reads ``h_{t-1}`` for every unit, so a step ends with a block-wide barrier before the next one reads
what this one wrote. No two programs share data, so there is no grid-wide synchronisation (which would
deadlock in the interpreter, where programs run one after the other). The GRU with the reset before the product
walks the units twice per step: r, z and ``rh_t = r h_{t-1}`` first, then the candidate, which needs all of ``rh_t``.

Buffers (fp32 unless said): ``hs (B, T+1, H)`` with ``hs[:, 0] = h_0`` and the kernel writing
``hs[:, t+1] = h_t``; ``cs`` the same for the LSTM's ``C``; ``gates (B, T, G)`` the activations and
``aux (B, T, H)`` (``hn_t`` or ``rh_t`` for the GRUs), both kept for the backward pass.
``w_t = W_hh^T (H, G)`` in the weight dtype.
"""

from __future__ import annotations

import triton
import triton.language as tl

from seqlab.kernels.common import rows_times_gates
from seqlab.kernels.pointwise import candidate_forward, cell_forward


@triton.jit
def recurrence_forward_kernel(
    gx_ptr,
    w_t_ptr,
    b_hn_ptr,
    hs_ptr,
    cs_ptr,
    gates_ptr,
    aux_ptr,
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
    PRODUCTS: tl.constexpr = 2 if CELL == "gru_before" else NUM_GATES  # gates whose product reads h_{t-1}
    offs_b = (tl.program_id(0) * BLOCK_B + tl.arange(0, BLOCK_B)).to(tl.int64)
    mask_b = offs_b < B
    hs_stride = (T + 1) * H  # one batch row of hs (and cs)
    for t in range(T):
        for half in tl.static_range(2 if CELL == "gru_before" else 1):
            for j0 in range(0, H, BLOCK_H):
                offs_h = j0 + tl.arange(0, BLOCK_H)
                mask_h = offs_h < H
                mask = mask_b[:, None] & mask_h[None, :]
                at_t = (offs_b[:, None] * T + t) * G + offs_h[None, :]  # (B, T, G) buffers at t
                h_prev_at = hs_ptr + offs_b[:, None] * hs_stride + t * H + offs_h[None, :]  # h_{t-1}
                if half == 1:  # gru_before: the candidate from every unit's rh_t (aux, row b at b T H)
                    a_n, _, _, _ = rows_times_gates(
                        aux_ptr + t * H, T * H, offs_b, mask_b, w_t_ptr + 2 * H, G, H, offs_h, mask_h, H, 1,
                        BLOCK_B, BLOCK_H, BLOCK_K, IEEE_FP32, UPCAST_DOT,
                    )  # fmt: skip
                    candidate_forward(a_n, gx_ptr + at_t, gates_ptr + at_t, h_prev_at, mask, H)
                else:
                    a0, a1, a2, a3 = rows_times_gates(
                        hs_ptr + t * H, hs_stride, offs_b, mask_b, w_t_ptr, G, H, offs_h, mask_h, H, PRODUCTS,
                        BLOCK_B, BLOCK_H, BLOCK_K, IEEE_FP32, UPCAST_DOT,
                    )  # fmt: skip
                    c_prev_at = cs_ptr + offs_b[:, None] * hs_stride + t * H + offs_h[None, :]
                    aux_at = aux_ptr + (offs_b[:, None] * T + t) * H + offs_h[None, :]
                    b_hn_at = b_hn_ptr + offs_h[None, :]
                    cell_forward(
                        CELL, a0, a1, a2, a3, gx_ptr + at_t, gates_ptr + at_t, h_prev_at, c_prev_at, aux_at, b_hn_at,
                        mask, H,
                    )  # fmt: skip
            tl.debug_barrier()  # every unit written before the next pass (or step) reads them
