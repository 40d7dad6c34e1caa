"""Forward recurrence, second layout: hidden units split over programs, each keeping its slice of ``W_hh``.

The same equations and buffers as ``forward.py`` (``gx (B, T, G)``, ``hs``/``cs (B, T+1, H)``, ``gates
(B, T, G)``, ``aux (B, T, H)``, ``w_t = W_hh^T (H, G)``); only the split of the work differs. Program ``p``
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

from seqlab.kernels.common import dot_in_weight_dtype, grid_barrier, tanh


@triton.jit
def forward_step_gates(
    t,
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
    """Step t on the program's units: ``h_t`` (and ``C_t``), or for gru_before its first half (r, z, rh)."""
    G = NUM_GATES * H
    hs_stride = (T + 1) * H  # one batch row of hs (and cs)
    for b0 in range(0, B, BLOCK_B):
        offs_b = (b0 + tl.arange(0, BLOCK_B)).to(tl.int64)
        mask_b = offs_b < B
        mask = mask_b[:, None] & mask_u[None, :]
        h_row = hs_ptr + offs_b[:, None] * hs_stride + t * H  # h_{t-1} of row b
        h_all = tl.load(h_row + offs_k[None, :], mask_b[:, None] & mask_k[None, :], other=0.0, cache_modifier=".cg")
        h_prev = tl.load(h_row + offs_u[None, :], mask, other=0.0, cache_modifier=".cg")  # (BLOCK_B, BLOCK_U)
        gx_at = gx_ptr + (offs_b[:, None] * T + t) * G + offs_u[None, :]  # gate k at + k * H
        gates_at = gates_ptr + (offs_b[:, None] * T + t) * G + offs_u[None, :]
        h_at = h_row + H + offs_u[None, :]  # h_t of row b
        if CELL == "rnn":
            h = tanh(tl.load(gx_at, mask, other=0.0) + dot_in_weight_dtype(h_all, w0, IEEE_FP32, UPCAST_DOT))
            tl.store(h_at, h, mask)
        elif CELL == "lstm":
            wh_i = dot_in_weight_dtype(h_all, w0, IEEE_FP32, UPCAST_DOT)  # (BLOCK_B, BLOCK_U): W_hi h_{t-1} on U_p
            wh_f = dot_in_weight_dtype(h_all, w1, IEEE_FP32, UPCAST_DOT)
            wh_g = dot_in_weight_dtype(h_all, w2, IEEE_FP32, UPCAST_DOT)
            wh_o = dot_in_weight_dtype(h_all, w3, IEEE_FP32, UPCAST_DOT)
            i = tl.sigmoid(tl.load(gx_at, mask, other=0.0) + wh_i)
            f = tl.sigmoid(tl.load(gx_at + H, mask, other=0.0) + wh_f)
            C_tilde = tanh(tl.load(gx_at + 2 * H, mask, other=0.0) + wh_g)
            o = tl.sigmoid(tl.load(gx_at + 3 * H, mask, other=0.0) + wh_o)
            c_at = cs_ptr + offs_b[:, None] * hs_stride + t * H + offs_u[None, :]  # C_{t-1}; C_t at + H
            C = f * tl.load(c_at, mask, other=0.0) + i * C_tilde
            tl.store(c_at + H, C, mask)
            tl.store(h_at, o * tanh(C), mask)
            tl.store(gates_at, i, mask)
            tl.store(gates_at + H, f, mask)
            tl.store(gates_at + 2 * H, C_tilde, mask)
            tl.store(gates_at + 3 * H, o, mask)
        elif CELL == "gru_after":
            wh_r = dot_in_weight_dtype(h_all, w0, IEEE_FP32, UPCAST_DOT)
            wh_z = dot_in_weight_dtype(h_all, w1, IEEE_FP32, UPCAST_DOT)
            r = tl.sigmoid(tl.load(gx_at, mask, other=0.0) + wh_r)
            z = tl.sigmoid(tl.load(gx_at + H, mask, other=0.0) + wh_z)
            b_hn = tl.load(b_hn_ptr + offs_u, mask_u, other=0.0)
            hn = dot_in_weight_dtype(h_all, w2, IEEE_FP32, UPCAST_DOT) + b_hn[None, :]
            n = tanh(tl.load(gx_at + 2 * H, mask, other=0.0) + r * hn)
            tl.store(h_at, (1.0 - z) * n + z * h_prev, mask)
            tl.store(gates_at, r, mask)
            tl.store(gates_at + H, z, mask)
            tl.store(gates_at + 2 * H, n, mask)
            tl.store(aux_ptr + (offs_b[:, None] * T + t) * H + offs_u[None, :], hn, mask)
        else:  # gru_before, first half: r, z and rh = r h_{t-1}, which every program's candidate reads
            wh_r = dot_in_weight_dtype(h_all, w0, IEEE_FP32, UPCAST_DOT)
            wh_z = dot_in_weight_dtype(h_all, w1, IEEE_FP32, UPCAST_DOT)
            r = tl.sigmoid(tl.load(gx_at, mask, other=0.0) + wh_r)
            z = tl.sigmoid(tl.load(gx_at + H, mask, other=0.0) + wh_z)
            tl.store(gates_at, r, mask)
            tl.store(gates_at + H, z, mask)
            tl.store(aux_ptr + (offs_b[:, None] * T + t) * H + offs_u[None, :], r * h_prev, mask)


@triton.jit
def forward_step_candidate(
    t,
    gx_ptr,
    hs_ptr,
    gates_ptr,
    aux_ptr,
    w2,
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
    """gru_before, second half of step t: ``n = tanh(gx_n + rh_t @ W_hn^T)`` from every unit's ``rh_t``, then h_t."""
    G = 3 * H
    hs_stride = (T + 1) * H
    for b0 in range(0, B, BLOCK_B):
        offs_b = (b0 + tl.arange(0, BLOCK_B)).to(tl.int64)
        mask_b = offs_b < B
        mask = mask_b[:, None] & mask_u[None, :]
        rh_at = aux_ptr + (offs_b[:, None] * T + t) * H + offs_k[None, :]
        rh_all = tl.load(rh_at, mask_b[:, None] & mask_k[None, :], other=0.0, cache_modifier=".cg")
        gx_at = gx_ptr + (offs_b[:, None] * T + t) * G + offs_u[None, :]
        gates_at = gates_ptr + (offs_b[:, None] * T + t) * G + offs_u[None, :]
        h_row = hs_ptr + offs_b[:, None] * hs_stride + t * H
        h_prev = tl.load(h_row + offs_u[None, :], mask, other=0.0)
        z = tl.load(gates_at + H, mask, other=0.0)
        n = tanh(tl.load(gx_at + 2 * H, mask, other=0.0) + dot_in_weight_dtype(rh_all, w2, IEEE_FP32, UPCAST_DOT))
        tl.store(gates_at + 2 * H, n, mask)
        tl.store(h_row + H + offs_u[None, :], (1.0 - z) * n + z * h_prev, mask)


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
            forward_step_gates(
                t, gx_ptr, b_hn_ptr, hs_ptr, cs_ptr, gates_ptr, aux_ptr, w0, w1, w2, w3, offs_u, mask_u, offs_k,
                mask_k, B, T, H, CELL, NUM_GATES, BLOCK_B, IEEE_FP32, UPCAST_DOT,
            )  # fmt: skip
        if CELL == "gru_before":
            if PERSISTENT:
                arrivals += 1
                grid_barrier(sync_ptr, arrivals, MAX_SPINS)  # every unit's rh_t before any candidate
            if PHASE != 1:
                forward_step_candidate(
                    t, gx_ptr, hs_ptr, gates_ptr, aux_ptr, w2, offs_u, mask_u, offs_k, mask_k, B, T, H, BLOCK_B,
                    IEEE_FP32, UPCAST_DOT,
                )  # fmt: skip
        if PERSISTENT:
            arrivals += 1
            grid_barrier(sync_ptr, arrivals, MAX_SPINS)  # every unit's h_t before step t + 1 reads it
