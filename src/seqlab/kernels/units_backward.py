"""Backward recurrence, second layout: hidden units split over programs, each keeping its slice of ``W_hh``.

The same cell math (``pointwise.py``) and buffers as ``backward.py`` (``dgx``, ``dgh (B, T, G)``, the carries
``dh_carry``, ``dc_carry (B, H)``); program ``p`` owns the units ``U_p`` and reads, once per launch,

    V_p,k = W_hh[k H + 0:H, U_p]        (K_PAD, BLOCK_U) for each gate k (the columns of its units)

so that step t's ``dL/dh_t[:, U_p] = dy_t + carry + sum_k dgh_{t+1}[:, k H + 0:H] @ V_p,k`` (gru_before: the
r and z gates only) needs every unit's ``dgh_{t+1}``, which the previous (later-in-time) step wrote: one
grid-wide barrier per step. gru_before needs every unit's ``dn_t`` for ``drh = dn_t @ V_p,n``: a second
barrier inside the step. Same drivers as ``units_forward.py``: one persistent launch with barriers on the
GPU, one launch per step (and ``PHASE`` 1, 2 for gru_before) in the interpreter; ``s`` counts steps from the end.
"""

from __future__ import annotations

import triton
import triton.language as tl

from seqlab.kernels.common import dot_in_weight_dtype, grid_barrier
from seqlab.kernels.pointwise import cell_backward, reset_backward


@triton.jit
def backward_step(
    t,
    RESET: tl.constexpr,
    dy_ptr,
    hs_ptr,
    cs_ptr,
    gates_ptr,
    aux_ptr,
    dgx_ptr,
    dgh_ptr,
    dh_carry_ptr,
    dc_carry_ptr,
    v0,
    v1,
    v2,
    v3,
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
    """Step t in reverse on the program's units for every batch block: dh_t, then every gate gradient that needs
    only those units; with ``RESET`` gru_before's second half (``drh = dn_t @ V_p,n`` from every unit's dn)."""
    G = NUM_GATES * H
    hs_stride = (T + 1) * H
    for b0 in range(0, B, BLOCK_B):
        offs_b = (b0 + tl.arange(0, BLOCK_B)).to(tl.int64)
        mask_b = offs_b < B
        mask = mask_b[:, None] & mask_u[None, :]
        mask_all = mask_b[:, None] & mask_k[None, :]  # every unit
        at_t = (offs_b[:, None] * T + t) * G + offs_u[None, :]  # (B, T, G) buffers at t
        bh_at = offs_b[:, None] * H + offs_u[None, :]  # (B, H) carry buffers
        h_prev_at = hs_ptr + offs_b[:, None] * hs_stride + t * H + offs_u[None, :]  # h_{t-1}
        if RESET:
            dn_all = tl.load(
                dgx_ptr + (offs_b[:, None] * T + t) * G + 2 * H + offs_k[None, :], mask_all, other=0.0,
                cache_modifier=".cg",
            )  # fmt: skip
            drh = dot_in_weight_dtype(dn_all, v2, IEEE_FP32, UPCAST_DOT)
            reset_backward(drh, gates_ptr + at_t, dgx_ptr + at_t, h_prev_at, dh_carry_ptr + bh_at, mask)
        else:
            bth_at = (offs_b[:, None] * T + t) * H + offs_u[None, :]  # (B, T, H) buffers at t
            dh = tl.load(dy_ptr + bth_at, mask, other=0.0) + tl.load(dh_carry_ptr + bh_at, mask, other=0.0)
            if t < T - 1:  # sum_k dgh_{t+1, k} @ V_p,k: every unit's gradient from the step after
                dgh_next = dgh_ptr + (offs_b[:, None] * T + t + 1) * G + offs_k[None, :]  # gate k at + k * H
                dgh_0 = tl.load(dgh_next, mask_all, other=0.0, cache_modifier=".cg")
                dh += dot_in_weight_dtype(dgh_0, v0, IEEE_FP32, UPCAST_DOT)
                if NUM_GATES > 1:
                    dgh_1 = tl.load(dgh_next + H, mask_all, other=0.0, cache_modifier=".cg")
                    dh += dot_in_weight_dtype(dgh_1, v1, IEEE_FP32, UPCAST_DOT)
                    if CELL != "gru_before":  # gru_before's candidate rows multiply rh, not h
                        dgh_2 = tl.load(dgh_next + 2 * H, mask_all, other=0.0, cache_modifier=".cg")
                        dh += dot_in_weight_dtype(dgh_2, v2, IEEE_FP32, UPCAST_DOT)
                if NUM_GATES > 3:
                    dgh_3 = tl.load(dgh_next + 3 * H, mask_all, other=0.0, cache_modifier=".cg")
                    dh += dot_in_weight_dtype(dgh_3, v3, IEEE_FP32, UPCAST_DOT)
            c_prev_at = cs_ptr + offs_b[:, None] * hs_stride + t * H + offs_u[None, :]
            cell_backward(
                CELL, dh, gates_ptr + at_t, dgx_ptr + at_t, dgh_ptr + at_t, h_prev_at, c_prev_at, aux_ptr + bth_at,
                dh_carry_ptr + bh_at, dc_carry_ptr + bh_at, mask, H,
            )  # fmt: skip


@triton.jit
def units_backward_kernel(
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
    sync_ptr,
    B,
    T,
    H,
    s_first,
    s_last,
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
    offs_u = tl.program_id(0) * BLOCK_U + tl.arange(0, BLOCK_U)
    mask_u = offs_u < H
    offs_k = tl.arange(0, K_PAD)
    mask_k = offs_k < H
    # The columns of the program's units in W_hh, gate k's rows at v_at + k * H * H: on chip for every step.
    v_at = w_ptr + offs_k[:, None] * H + offs_u[None, :]
    v_mask = mask_k[:, None] & mask_u[None, :]
    v0 = tl.load(v_at, v_mask, other=0.0)
    v1 = v0
    v2 = v0
    v3 = v0
    if NUM_GATES > 1:
        v1 = tl.load(v_at + H * H, v_mask, other=0.0)
        v2 = tl.load(v_at + 2 * H * H, v_mask, other=0.0)
    if NUM_GATES > 3:
        v3 = tl.load(v_at + 3 * H * H, v_mask, other=0.0)
    arrivals = 0
    for s in range(s_first, s_last):
        t = T - 1 - s
        if PHASE != 2:
            backward_step(
                t, False, dy_ptr, hs_ptr, cs_ptr, gates_ptr, aux_ptr, dgx_ptr, dgh_ptr, dh_carry_ptr, dc_carry_ptr,
                v0, v1, v2, v3, offs_u, mask_u, offs_k, mask_k, B, T, H, CELL, NUM_GATES, BLOCK_B, IEEE_FP32,
                UPCAST_DOT,
            )  # fmt: skip
        if CELL == "gru_before":
            if PERSISTENT:
                arrivals += 1
                grid_barrier(sync_ptr, arrivals, MAX_SPINS)  # every unit's dn_t before drh
            if PHASE != 1:
                backward_step(
                    t, True, dy_ptr, hs_ptr, cs_ptr, gates_ptr, aux_ptr, dgx_ptr, dgh_ptr, dh_carry_ptr, dc_carry_ptr,
                    v0, v1, v2, v3, offs_u, mask_u, offs_k, mask_k, B, T, H, CELL, NUM_GATES, BLOCK_B, IEEE_FP32,
                    UPCAST_DOT,
                )  # fmt: skip
        if PERSISTENT:
            arrivals += 1
            grid_barrier(sync_ptr, arrivals, MAX_SPINS)  # every unit's dgh_t before step t - 1 reads it
