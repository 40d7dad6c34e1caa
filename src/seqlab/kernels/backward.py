"""Backward recurrence kernel: the time loop in reverse, in one launch.

It produces the gradients of the pre-activations, ``dgx (B, T, G)`` (with respect to the input
projection ``gx``) and ``dgh (B, T, G)`` (with respect to the recurrent term ``W_hh h_{t-1} + b_hh``; the
same as ``dgx`` except for the gru_after candidate, ``dgh_n = r dgx_n``). Everything else (``dW_hh``,
``dW_ih``, the biases, ``dx``, ``dh_0``) is a large matrix product outside, in torch.

With ``dh_t = dy_t + dL/dh_t`` through step t + 1, per step (sigma' = s(1 - s), tanh' = 1 - tanh^2):

    rnn         dgx = dh_t (1 - h_t^2)
    lstm        dC = dC_{t+1 -> t} + dh_t o tanh'(C_t);  dC_{t -> t-1} = dC f
                dgx = [dC C~ sigma'(i), dC C_{t-1} sigma'(f), dC i tanh'(C~), dh_t tanh(C_t) sigma'(o)]
    gru         dn = dh_t (1 - z) tanh'(n);  dz = dh_t (h_{t-1} - n) sigma'(z);  direct dh_{t-1} += dh_t z
    gru_after   dr = dn hn_t sigma'(r);  dgx = [dr, dz, dn];  dgh = [dr, dz, r dn]
    gru_before  drh = W_hn^T dn (all units: a second phase);  dr = drh h_{t-1} sigma'(r);  dh_{t-1} += drh r
    then        dL/dh_{t-1} = direct terms + W_hh^T dgh_t   (gru_before: only the r, z rows of W_hh)

The per-unit terms that flow to step t - 1 (``dh_{t-1}`` direct, the LSTM's ``dC``) live in the
``dh_carry`` and ``dc_carry (B, H)`` buffers, which start as the gradients of the final state and end as
the direct part of ``dh_0`` and all of ``dC_0``. Same layout and barriers as the forward kernel.
"""

from __future__ import annotations

import triton
import triton.language as tl

from seqlab.kernels.common import rows_times_matrix


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
        # Phase A: dh_t, then the gate gradients that need only this unit.
        for j0 in range(0, H, BLOCK_H):
            offs_h = j0 + tl.arange(0, BLOCK_H)
            mask_h = offs_h < H
            mask = mask_b[:, None] & mask_h[None, :]
            bh_at = offs_b[:, None] * H + offs_h[None, :]  # (B, H) carry buffers
            bth_at = (offs_b[:, None] * T + t) * H + offs_h[None, :]  # (B, T, H) buffers at t
            gate_at = (offs_b[:, None] * T + t) * G + offs_h[None, :]  # (B, T, G) buffers at t, gate k at + k * H
            h_at = hs_ptr + offs_b[:, None] * hs_stride + offs_h[None, :]  # hs at t + 1: h_at + (t + 1) * H
            dh = tl.load(dy_ptr + bth_at, mask, other=0.0) + tl.load(dh_carry_ptr + bh_at, mask, other=0.0)
            if t < T - 1:  # W_hh^T dgh_{t+1}: every unit's gradient from the step after
                dh = rows_times_matrix(
                    dh,
                    dgh_ptr + (t + 1) * G,
                    T * G,
                    offs_b,
                    mask_b,
                    w_ptr,
                    H,
                    offs_h,
                    mask_h,
                    K_RECURRENT,
                    BLOCK_K,
                    IEEE_FP32,
                    UPCAST_DOT,
                )
            if CELL == "rnn":
                h = tl.load(h_at + (t + 1) * H, mask, other=0.0)
                tl.store(dgx_ptr + gate_at, dh * (1.0 - h * h), mask)
                tl.store(dh_carry_ptr + bh_at, tl.zeros((BLOCK_B, BLOCK_H), tl.float32), mask)
            elif CELL == "lstm":
                i = tl.load(gates_ptr + gate_at, mask, other=0.0)
                f = tl.load(gates_ptr + gate_at + H, mask, other=0.0)
                C_tilde = tl.load(gates_ptr + gate_at + 2 * H, mask, other=0.0)
                o = tl.load(gates_ptr + gate_at + 3 * H, mask, other=0.0)
                c_at = cs_ptr + offs_b[:, None] * hs_stride + offs_h[None, :]
                C_prev = tl.load(c_at + t * H, mask, other=0.0)
                tanh_C = 2.0 * tl.sigmoid(2.0 * tl.load(c_at + (t + 1) * H, mask, other=0.0)) - 1.0
                dC = tl.load(dc_carry_ptr + bh_at, mask, other=0.0) + dh * o * (1.0 - tanh_C * tanh_C)
                tl.store(dgx_ptr + gate_at, dC * C_tilde * i * (1.0 - i), mask)
                tl.store(dgx_ptr + gate_at + H, dC * C_prev * f * (1.0 - f), mask)
                tl.store(dgx_ptr + gate_at + 2 * H, dC * i * (1.0 - C_tilde * C_tilde), mask)
                tl.store(dgx_ptr + gate_at + 3 * H, dh * tanh_C * o * (1.0 - o), mask)
                tl.store(dc_carry_ptr + bh_at, dC * f, mask)
                tl.store(dh_carry_ptr + bh_at, tl.zeros((BLOCK_B, BLOCK_H), tl.float32), mask)
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
        if CELL == "gru_before":
            tl.debug_barrier()  # every unit's dn before drh = W_hn^T dn
            for j0 in range(0, H, BLOCK_H):
                offs_h = j0 + tl.arange(0, BLOCK_H)
                mask_h = offs_h < H
                mask = mask_b[:, None] & mask_h[None, :]
                bh_at = offs_b[:, None] * H + offs_h[None, :]
                gate_at = (offs_b[:, None] * T + t) * G + offs_h[None, :]
                drh = tl.zeros((BLOCK_B, BLOCK_H), tl.float32)
                drh = rows_times_matrix(
                    drh,
                    dgx_ptr + t * G + 2 * H,
                    T * G,
                    offs_b,
                    mask_b,
                    w_ptr + 2 * H * H,
                    H,
                    offs_h,
                    mask_h,
                    H,
                    BLOCK_K,
                    IEEE_FP32,
                    UPCAST_DOT,
                )
                r = tl.load(gates_ptr + gate_at, mask, other=0.0)
                h_prev = tl.load(hs_ptr + offs_b[:, None] * hs_stride + t * H + offs_h[None, :], mask, other=0.0)
                tl.store(dgx_ptr + gate_at, drh * h_prev * r * (1.0 - r), mask)
                dh_direct = tl.load(dh_carry_ptr + bh_at, mask, other=0.0)
                tl.store(dh_carry_ptr + bh_at, dh_direct + drh * r, mask)
        tl.debug_barrier()  # dgh_t and the carries complete before step t - 1 reads them
