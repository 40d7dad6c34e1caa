"""Forward recurrence, second layout: hidden units split over programs, each keeping its slice of ``W_hh``.

The same cell math (``pointwise.py``) and buffers as ``forward.py`` (``gx (B, T, G)``, ``hs``/``cs (B, T+1, H)``,
``gates (B, T, G)``, ``aux (B, T, H)``, ``w_t = W_hh^T (H, G)``); only the split of the work differs. Program ``p``
owns the units ``U_p = [p BLOCK_U, (p + 1) BLOCK_U)`` with all their gates, and before its first step reads

    W_p,k = W_hh^T[0:H, k H + U_p]        (K_PAD, BLOCK_U) for each gate k, kept on chip for the whole launch

Step t, for every block of ``BLOCK_B`` batch rows:  ``a_k = gx_t[:, k H + U_p] + h_{t-1}[:, 0:H] @ W_p,k``,
then the cell on ``U_p`` alone, writing ``h_t[:, U_p]``. The next step needs ``h_t`` of every unit, written
by every program: the new ``h_t`` goes through global memory (read back with ``.cg``, past the SM's
non-coherent L1) and a grid-wide barrier separates the steps. The GRU with the reset before the product
needs ``rh_t = r_t h_{t-1}`` of every unit before its candidate: a second barrier inside the step.

One kernel, two drivers (``units.py``):

- ``PERSISTENT`` (GPU): one launch runs ``t_first..t_last`` = all T steps with the barriers; the grid is at
  most the SM count so every program is resident and the spin-wait ends.
- otherwise (the interpreter, where programs run one after another and a barrier would wait forever): one
  launch per step, ``t_last = t_first + 1``, and ``PHASE`` 1 then 2 for the GRU reset-before's two halves;
  the launch boundary is the barrier. ``PHASE`` 0 runs everything.
"""

from __future__ import annotations

import triton
import triton.language as tl

from seqlab.kernels.common import dot_in_weight_dtype, grid_barrier
from seqlab.kernels.pointwise import candidate_forward, cell_forward


@triton.jit
def forward_step(
    t,
    CANDIDATE: tl.constexpr,
    gx_ptr,
    b_hn_ptr,
    hs_ptr,
    cs_ptr,
    gates_ptr,
    aux_ptr,
    w0,
    w1,
    w2,
    w3,
    offs_u,
    mask_u,
    offs_k,
    mask_k,
    B,
    T,
    H,
    CELL: tl.constexpr,
    NUM_GATES: tl.constexpr,
    BLOCK_B: tl.constexpr,
    IEEE_FP32: tl.constexpr,
    UPCAST_DOT: tl.constexpr,
):
    """Step t on the program's units for every batch block: ``h_t`` (and ``C_t``), or for gru_before its first
    half (r, z, rh) and, with ``CANDIDATE``, its second (``n`` from every unit's ``rh_t``, then ``h_t``)."""
    G = NUM_GATES * H
    hs_stride = (T + 1) * H  # one batch row of hs (and cs)
    for b0 in range(0, B, BLOCK_B):
        offs_b = (b0 + tl.arange(0, BLOCK_B)).to(tl.int64)
        mask_b = offs_b < B
        mask = mask_b[:, None] & mask_u[None, :]
        mask_all = mask_b[:, None] & mask_k[None, :]  # every unit
        at_t = (offs_b[:, None] * T + t) * G + offs_u[None, :]  # (B, T, G) buffers at t
        h_row = hs_ptr + offs_b[:, None] * hs_stride + t * H  # h_{t-1} of row b
        aux_row = aux_ptr + (offs_b[:, None] * T + t) * H
        if CANDIDATE:
            rh_all = tl.load(aux_row + offs_k[None, :], mask_all, other=0.0, cache_modifier=".cg")
            a_n = dot_in_weight_dtype(rh_all, w2, IEEE_FP32, UPCAST_DOT)
            candidate_forward(a_n, gx_ptr + at_t, gates_ptr + at_t, h_row + offs_u[None, :], mask, H)
        else:
            h_all = tl.load(h_row + offs_k[None, :], mask_all, other=0.0, cache_modifier=".cg")
            a0 = dot_in_weight_dtype(h_all, w0, IEEE_FP32, UPCAST_DOT)  # (BLOCK_B, BLOCK_U): W_h0 h_{t-1} on U_p
            a1 = a0
            a2 = a0
            a3 = a0
            if NUM_GATES > 1:
                a1 = dot_in_weight_dtype(h_all, w1, IEEE_FP32, UPCAST_DOT)
                if CELL != "gru_before":  # its candidate's product reads rh_t, after the barrier
                    a2 = dot_in_weight_dtype(h_all, w2, IEEE_FP32, UPCAST_DOT)
            if NUM_GATES > 3:
                a3 = dot_in_weight_dtype(h_all, w3, IEEE_FP32, UPCAST_DOT)
            c_prev_at = cs_ptr + offs_b[:, None] * hs_stride + t * H + offs_u[None, :]
            cell_forward(
                CELL, a0, a1, a2, a3, gx_ptr + at_t, gates_ptr + at_t, h_row + offs_u[None, :], c_prev_at,
                aux_row + offs_u[None, :], b_hn_ptr + offs_u[None, :], mask, H,
            )  # fmt: skip


@triton.jit
def units_forward_kernel(
    gx_ptr,
    w_t_ptr,
    b_hn_ptr,
    hs_ptr,
    cs_ptr,
    gates_ptr,
    aux_ptr,
    sync_ptr,
    B,
    T,
    H,
    t_first,
    t_last,
    CELL: tl.constexpr,
    NUM_GATES: tl.constexpr,
    BLOCK_B: tl.constexpr,
    BLOCK_U: tl.constexpr,
    K_PAD: tl.constexpr,
    PERSISTENT: tl.constexpr,
    PHASE: tl.constexpr,
    MAX_SPINS: tl.constexpr,
    IEEE_FP32: tl.constexpr,
    UPCAST_DOT: tl.constexpr,
):
    G = NUM_GATES * H
    offs_u = tl.program_id(0) * BLOCK_U + tl.arange(0, BLOCK_U)
    mask_u = offs_u < H
    offs_k = tl.arange(0, K_PAD)
    mask_k = offs_k < H
    # The program's slice of W_hh^T, gate k's columns at w_at + k * H: read once, on chip for every step.
    w_at = w_t_ptr + offs_k[:, None] * G + offs_u[None, :]
    w_mask = mask_k[:, None] & mask_u[None, :]
    w0 = tl.load(w_at, w_mask, other=0.0)
    w1 = w0
    w2 = w0
    w3 = w0
    if NUM_GATES > 1:
        w1 = tl.load(w_at + H, w_mask, other=0.0)
        w2 = tl.load(w_at + 2 * H, w_mask, other=0.0)
    if NUM_GATES > 3:
        w3 = tl.load(w_at + 3 * H, w_mask, other=0.0)
    arrivals = 0  # grid barriers passed so far (PERSISTENT)
    for t in range(t_first, t_last):
        if PHASE != 2:
            forward_step(
                t, False, gx_ptr, b_hn_ptr, hs_ptr, cs_ptr, gates_ptr, aux_ptr, w0, w1, w2, w3, offs_u, mask_u, offs_k,
                mask_k, B, T, H, CELL, NUM_GATES, BLOCK_B, IEEE_FP32, UPCAST_DOT,
            )  # fmt: skip
        if CELL == "gru_before":
            if PERSISTENT:
                arrivals += 1
                grid_barrier(sync_ptr, arrivals, MAX_SPINS)  # every unit's rh_t before any candidate
            if PHASE != 1:
                forward_step(
                    t, True, gx_ptr, b_hn_ptr, hs_ptr, cs_ptr, gates_ptr, aux_ptr, w0, w1, w2, w3, offs_u, mask_u,
                    offs_k, mask_k, B, T, H, CELL, NUM_GATES, BLOCK_B, IEEE_FP32, UPCAST_DOT,
                )  # fmt: skip
        if PERSISTENT:
            arrivals += 1
            grid_barrier(sync_ptr, arrivals, MAX_SPINS)  # every unit's h_t before step t + 1 reads it
