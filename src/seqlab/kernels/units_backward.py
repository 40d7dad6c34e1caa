"""Backward recurrence, second layout: hidden units split over programs, each keeping its slice of ``W_hh``.

The same equations and buffers as ``backward.py`` (``dgx``, ``dgh (B, T, G)``, the carries ``dh_carry``,
``dc_carry (B, H)``); program ``p`` owns the units ``U_p`` and reads, once per launch,

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


@triton.jit
def backward_step_gates(
    t,
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
    """dh_t on the program's units, then every gate gradient that needs only those units."""
    G = NUM_GATES * H
    hs_stride = (T + 1) * H
    for b0 in range(0, B, BLOCK_B):
        offs_b = (b0 + tl.arange(0, BLOCK_B)).to(tl.int64)
        mask_b = offs_b < B
        mask = mask_b[:, None] & mask_u[None, :]
        bh_at = offs_b[:, None] * H + offs_u[None, :]  # (B, H) carry buffers
        bth_at = (offs_b[:, None] * T + t) * H + offs_u[None, :]  # (B, T, H) buffers at t
        gate_at = (offs_b[:, None] * T + t) * G + offs_u[None, :]  # (B, T, G) buffers at t, gate k at + k * H
        h_at = hs_ptr + offs_b[:, None] * hs_stride + offs_u[None, :]  # h_t at h_at + (t + 1) * H
        dh = tl.load(dy_ptr + bth_at, mask, other=0.0) + tl.load(dh_carry_ptr + bh_at, mask, other=0.0)
        if t < T - 1:  # sum_k dgh_{t+1, k} @ V_p,k: every unit's gradient from the step after
            mask_bk = mask_b[:, None] & mask_k[None, :]
            dgh_next = dgh_ptr + (offs_b[:, None] * T + t + 1) * G + offs_k[None, :]  # gate k at + k * H
            dgh_0 = tl.load(dgh_next, mask_bk, other=0.0, cache_modifier=".cg")
            dh += dot_in_weight_dtype(dgh_0, v0, IEEE_FP32, UPCAST_DOT)
            if NUM_GATES > 1:
                dgh_z = tl.load(dgh_next + H, mask_bk, other=0.0, cache_modifier=".cg")
                dh += dot_in_weight_dtype(dgh_z, v1, IEEE_FP32, UPCAST_DOT)
            if NUM_GATES > 1:
                if CELL != "gru_before":  # gru_before's candidate rows multiply rh, not h
                    dgh_2 = tl.load(dgh_next + 2 * H, mask_bk, other=0.0, cache_modifier=".cg")
                    dh += dot_in_weight_dtype(dgh_2, v2, IEEE_FP32, UPCAST_DOT)
            if NUM_GATES > 3:
                dgh_3 = tl.load(dgh_next + 3 * H, mask_bk, other=0.0, cache_modifier=".cg")
                dh += dot_in_weight_dtype(dgh_3, v3, IEEE_FP32, UPCAST_DOT)
        if CELL == "rnn":
            h = tl.load(h_at + (t + 1) * H, mask, other=0.0)
            tl.store(dgx_ptr + gate_at, dh * (1.0 - h * h), mask)
            tl.store(dh_carry_ptr + bh_at, tl.zeros_like(dh), mask)
        elif CELL == "lstm":
            i = tl.load(gates_ptr + gate_at, mask, other=0.0)
            f = tl.load(gates_ptr + gate_at + H, mask, other=0.0)
            C_tilde = tl.load(gates_ptr + gate_at + 2 * H, mask, other=0.0)
            o = tl.load(gates_ptr + gate_at + 3 * H, mask, other=0.0)
            c_at = cs_ptr + offs_b[:, None] * hs_stride + offs_u[None, :]
            C_prev = tl.load(c_at + t * H, mask, other=0.0)
            tanh_C = 2.0 * tl.sigmoid(2.0 * tl.load(c_at + (t + 1) * H, mask, other=0.0)) - 1.0
            dC = tl.load(dc_carry_ptr + bh_at, mask, other=0.0) + dh * o * (1.0 - tanh_C * tanh_C)
            tl.store(dgx_ptr + gate_at, dC * C_tilde * i * (1.0 - i), mask)
            tl.store(dgx_ptr + gate_at + H, dC * C_prev * f * (1.0 - f), mask)
            tl.store(dgx_ptr + gate_at + 2 * H, dC * i * (1.0 - C_tilde * C_tilde), mask)
            tl.store(dgx_ptr + gate_at + 3 * H, dh * tanh_C * o * (1.0 - o), mask)
            tl.store(dc_carry_ptr + bh_at, dC * f, mask)
            tl.store(dh_carry_ptr + bh_at, tl.zeros_like(dh), mask)
        else:  # both GRUs
            z = tl.load(gates_ptr + gate_at + H, mask, other=0.0)
            n = tl.load(gates_ptr + gate_at + 2 * H, mask, other=0.0)
            h_prev = tl.load(h_at + t * H, mask, other=0.0)
            dn = dh * (1.0 - z) * (1.0 - n * n)
            dz = dh * (h_prev - n) * z * (1.0 - z)
            tl.store(dgx_ptr + gate_at + H, dz, mask)
            tl.store(dgx_ptr + gate_at + 2 * H, dn, mask)
            tl.store(dh_carry_ptr + bh_at, dh * z, mask)
            if CELL == "gru_after":
                r = tl.load(gates_ptr + gate_at, mask, other=0.0)
                hn = tl.load(aux_ptr + bth_at, mask, other=0.0)
                dr = dn * hn * r * (1.0 - r)
                tl.store(dgx_ptr + gate_at, dr, mask)
                tl.store(dgh_ptr + gate_at, dr, mask)
                tl.store(dgh_ptr + gate_at + H, dz, mask)
                tl.store(dgh_ptr + gate_at + 2 * H, r * dn, mask)


@triton.jit
def backward_step_reset(
    t,
    hs_ptr,
    gates_ptr,
    dgx_ptr,
    dh_carry_ptr,
    v2,
    offs_u,
    mask_u,
    offs_k,
    mask_k,
    B,
    T,
    H,
    BLOCK_B: tl.constexpr,
    IEEE_FP32: tl.constexpr,
    UPCAST_DOT: tl.constexpr,
):
    """gru_before, second half of step t: ``drh = dn_t @ V_p,n`` from every unit's dn, then dr and dh_{t-1} += drh r."""
    G = 3 * H
    hs_stride = (T + 1) * H
    for b0 in range(0, B, BLOCK_B):
        offs_b = (b0 + tl.arange(0, BLOCK_B)).to(tl.int64)
        mask_b = offs_b < B
        mask = mask_b[:, None] & mask_u[None, :]
        dn_at = dgx_ptr + (offs_b[:, None] * T + t) * G + 2 * H + offs_k[None, :]
        dn_all = tl.load(dn_at, mask_b[:, None] & mask_k[None, :], other=0.0, cache_modifier=".cg")
        drh = dot_in_weight_dtype(dn_all, v2, IEEE_FP32, UPCAST_DOT)
        gate_at = (offs_b[:, None] * T + t) * G + offs_u[None, :]
        bh_at = offs_b[:, None] * H + offs_u[None, :]
        r = tl.load(gates_ptr + gate_at, mask, other=0.0)
        h_prev = tl.load(hs_ptr + offs_b[:, None] * hs_stride + t * H + offs_u[None, :], mask, other=0.0)
        tl.store(dgx_ptr + gate_at, drh * h_prev * r * (1.0 - r), mask)
        tl.store(dh_carry_ptr + bh_at, tl.load(dh_carry_ptr + bh_at, mask, other=0.0) + drh * r, mask)


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
            backward_step_gates(
                t, dy_ptr, hs_ptr, cs_ptr, gates_ptr, aux_ptr, dgx_ptr, dgh_ptr, dh_carry_ptr, dc_carry_ptr,
                v0, v1, v2, v3, offs_u, mask_u, offs_k, mask_k, B, T, H, CELL, NUM_GATES, BLOCK_B, IEEE_FP32,
                UPCAST_DOT,
            )  # fmt: skip
        if CELL == "gru_before":
            if PERSISTENT:
                arrivals += 1
                grid_barrier(sync_ptr, arrivals, MAX_SPINS)  # every unit's dn_t before drh
            if PHASE != 1:
                backward_step_reset(
                    t, hs_ptr, gates_ptr, dgx_ptr, dh_carry_ptr, v2, offs_u, mask_u, offs_k, mask_k, B, T, H,
                    BLOCK_B, IEEE_FP32, UPCAST_DOT,
                )  # fmt: skip
        if PERSISTENT:
            arrivals += 1
            grid_barrier(sync_ptr, arrivals, MAX_SPINS)  # every unit's dgh_t before step t - 1 reads it
