"""Forward recurrence kernel: the whole time loop in one launch.

Given the input projection ``gx (B, T, G)`` (computed outside, one large matrix product for all steps,
biases folded in), each step adds the recurrent product and applies the cell:

    rnn         h_t = tanh(gx_t + W_hh h_{t-1})
    lstm        [i, f, C~, o] = [sigma, sigma, tanh, sigma](gx_t + W_hh h_{t-1})
                C_t = f C_{t-1} + i C~;  h_t = o tanh(C_t)
    gru_after   [r, z] = sigma(gx_t + W_h{r,z} h_{t-1});  hn_t = W_hn h_{t-1} + b_hn;  n = tanh(gx_n + r hn_t)
    gru_before  [r, z] = sigma(gx_t + W_h{r,z} h_{t-1});  rh_t = r h_{t-1};  n = tanh(gx_n + W_hn rh_t)
    gru         h_t = (1 - z) n + z h_{t-1}

Layout: one program per block of ``BLOCK_B`` batch rows; it walks the hidden units in ``BLOCK_H`` chunks
and reads ``h_{t-1}`` for every unit, so a step ends with a block-wide barrier before the next one reads
what this one wrote. No two programs share data, so there is no grid-wide synchronisation (which would
deadlock in the interpreter, where programs run one after the other).

Buffers (fp32 unless said): ``hs (B, T+1, H)`` with ``hs[:, 0] = h_0`` and the kernel writing
``hs[:, t+1] = h_t``; ``cs`` the same for the LSTM's ``C``; ``gates (B, T, G)`` the activations and
``aux (B, T, H)`` (``hn_t`` or ``rh_t`` for the GRUs), both kept for the backward pass.
``w_t = W_hh^T (H, G)`` in the weight dtype.
"""

from __future__ import annotations

import triton
import triton.language as tl

from seqlab.kernels.common import rows_times_matrix, tanh


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
    offs_b = (tl.program_id(0) * BLOCK_B + tl.arange(0, BLOCK_B)).to(tl.int64)
    mask_b = offs_b < B
    hs_stride = (T + 1) * H  # one batch row of hs (and cs)
    for t in range(T):
        h_prev_ptr = hs_ptr + t * H  # h_{t-1}: row b at h_prev_ptr + b * hs_stride
        if CELL == "gru_before":
            # Phase 1: r, z for every unit, and rh = r h_{t-1}; the candidate needs all of rh.
            for j0 in range(0, H, BLOCK_H):
                offs_h = j0 + tl.arange(0, BLOCK_H)
                mask_h = offs_h < H
                mask = mask_b[:, None] & mask_h[None, :]
                gx_at = gx_ptr + (offs_b[:, None] * T + t) * G + offs_h[None, :]
                acc_r = tl.zeros((BLOCK_B, BLOCK_H), tl.float32)
                acc_z = tl.zeros((BLOCK_B, BLOCK_H), tl.float32)
                acc_r = rows_times_matrix(
                    acc_r,
                    h_prev_ptr,
                    hs_stride,
                    offs_b,
                    mask_b,
                    w_t_ptr,
                    G,
                    offs_h,
                    mask_h,
                    H,
                    BLOCK_K,
                    IEEE_FP32,
                    UPCAST_DOT,
                )
                acc_z = rows_times_matrix(
                    acc_z,
                    h_prev_ptr,
                    hs_stride,
                    offs_b,
                    mask_b,
                    w_t_ptr + H,
                    G,
                    offs_h,
                    mask_h,
                    H,
                    BLOCK_K,
                    IEEE_FP32,
                    UPCAST_DOT,
                )
                r = tl.sigmoid(tl.load(gx_at, mask, other=0.0) + acc_r)
                z = tl.sigmoid(tl.load(gx_at + H, mask, other=0.0) + acc_z)
                h_prev = tl.load(h_prev_ptr + offs_b[:, None] * hs_stride + offs_h[None, :], mask, other=0.0)
                gates_at = gates_ptr + (offs_b[:, None] * T + t) * G + offs_h[None, :]
                tl.store(gates_at, r, mask)
                tl.store(gates_at + H, z, mask)
                tl.store(aux_ptr + (offs_b[:, None] * T + t) * H + offs_h[None, :], r * h_prev, mask)
            tl.debug_barrier()
        for j0 in range(0, H, BLOCK_H):
            offs_h = j0 + tl.arange(0, BLOCK_H)
            mask_h = offs_h < H
            mask = mask_b[:, None] & mask_h[None, :]
            gx_at = gx_ptr + (offs_b[:, None] * T + t) * G + offs_h[None, :]  # gate k at + k * H
            gates_at = gates_ptr + (offs_b[:, None] * T + t) * G + offs_h[None, :]
            h_prev = tl.load(h_prev_ptr + offs_b[:, None] * hs_stride + offs_h[None, :], mask, other=0.0)
            if CELL == "rnn":
                acc = tl.zeros((BLOCK_B, BLOCK_H), tl.float32)
                acc = rows_times_matrix(
                    acc,
                    h_prev_ptr,
                    hs_stride,
                    offs_b,
                    mask_b,
                    w_t_ptr,
                    G,
                    offs_h,
                    mask_h,
                    H,
                    BLOCK_K,
                    IEEE_FP32,
                    UPCAST_DOT,
                )
                h = tanh(tl.load(gx_at, mask, other=0.0) + acc)
            elif CELL == "lstm":
                acc_i = tl.zeros((BLOCK_B, BLOCK_H), tl.float32)
                acc_f = tl.zeros((BLOCK_B, BLOCK_H), tl.float32)
                acc_g = tl.zeros((BLOCK_B, BLOCK_H), tl.float32)
                acc_o = tl.zeros((BLOCK_B, BLOCK_H), tl.float32)
                acc_i = rows_times_matrix(
                    acc_i,
                    h_prev_ptr,
                    hs_stride,
                    offs_b,
                    mask_b,
                    w_t_ptr,
                    G,
                    offs_h,
                    mask_h,
                    H,
                    BLOCK_K,
                    IEEE_FP32,
                    UPCAST_DOT,
                )
                acc_f = rows_times_matrix(
                    acc_f,
                    h_prev_ptr,
                    hs_stride,
                    offs_b,
                    mask_b,
                    w_t_ptr + H,
                    G,
                    offs_h,
                    mask_h,
                    H,
                    BLOCK_K,
                    IEEE_FP32,
                    UPCAST_DOT,
                )
                acc_g = rows_times_matrix(
                    acc_g,
                    h_prev_ptr,
                    hs_stride,
                    offs_b,
                    mask_b,
                    w_t_ptr + 2 * H,
                    G,
                    offs_h,
                    mask_h,
                    H,
                    BLOCK_K,
                    IEEE_FP32,
                    UPCAST_DOT,
                )
                acc_o = rows_times_matrix(
                    acc_o,
                    h_prev_ptr,
                    hs_stride,
                    offs_b,
                    mask_b,
                    w_t_ptr + 3 * H,
                    G,
                    offs_h,
                    mask_h,
                    H,
                    BLOCK_K,
                    IEEE_FP32,
                    UPCAST_DOT,
                )
                i = tl.sigmoid(tl.load(gx_at, mask, other=0.0) + acc_i)
                f = tl.sigmoid(tl.load(gx_at + H, mask, other=0.0) + acc_f)
                C_tilde = tanh(tl.load(gx_at + 2 * H, mask, other=0.0) + acc_g)
                o = tl.sigmoid(tl.load(gx_at + 3 * H, mask, other=0.0) + acc_o)
                cs_at = cs_ptr + offs_b[:, None] * hs_stride + offs_h[None, :]
                C = f * tl.load(cs_at + t * H, mask, other=0.0) + i * C_tilde
                h = o * tanh(C)
                tl.store(cs_at + (t + 1) * H, C, mask)
                tl.store(gates_at, i, mask)
                tl.store(gates_at + H, f, mask)
                tl.store(gates_at + 2 * H, C_tilde, mask)
                tl.store(gates_at + 3 * H, o, mask)
            elif CELL == "gru_after":
                acc_r = tl.zeros((BLOCK_B, BLOCK_H), tl.float32)
                acc_z = tl.zeros((BLOCK_B, BLOCK_H), tl.float32)
                acc_n = tl.zeros((BLOCK_B, BLOCK_H), tl.float32)
                acc_r = rows_times_matrix(
                    acc_r,
                    h_prev_ptr,
                    hs_stride,
                    offs_b,
                    mask_b,
                    w_t_ptr,
                    G,
                    offs_h,
                    mask_h,
                    H,
                    BLOCK_K,
                    IEEE_FP32,
                    UPCAST_DOT,
                )
                acc_z = rows_times_matrix(
                    acc_z,
                    h_prev_ptr,
                    hs_stride,
                    offs_b,
                    mask_b,
                    w_t_ptr + H,
                    G,
                    offs_h,
                    mask_h,
                    H,
                    BLOCK_K,
                    IEEE_FP32,
                    UPCAST_DOT,
                )
                acc_n = rows_times_matrix(
                    acc_n,
                    h_prev_ptr,
                    hs_stride,
                    offs_b,
                    mask_b,
                    w_t_ptr + 2 * H,
                    G,
                    offs_h,
                    mask_h,
                    H,
                    BLOCK_K,
                    IEEE_FP32,
                    UPCAST_DOT,
                )
                r = tl.sigmoid(tl.load(gx_at, mask, other=0.0) + acc_r)
                z = tl.sigmoid(tl.load(gx_at + H, mask, other=0.0) + acc_z)
                hn = acc_n + tl.load(b_hn_ptr + offs_h, mask_h, other=0.0)[None, :]
                n = tanh(tl.load(gx_at + 2 * H, mask, other=0.0) + r * hn)
                h = (1.0 - z) * n + z * h_prev
                tl.store(gates_at, r, mask)
                tl.store(gates_at + H, z, mask)
                tl.store(gates_at + 2 * H, n, mask)
                tl.store(aux_ptr + (offs_b[:, None] * T + t) * H + offs_h[None, :], hn, mask)
            else:  # gru_before, phase 2: the candidate from rh = r h_{t-1} of every unit
                acc_n = tl.zeros((BLOCK_B, BLOCK_H), tl.float32)
                rh_ptr = aux_ptr + t * H  # row b at rh_ptr + b * T * H
                acc_n = rows_times_matrix(
                    acc_n,
                    rh_ptr,
                    T * H,
                    offs_b,
                    mask_b,
                    w_t_ptr + 2 * H,
                    G,
                    offs_h,
                    mask_h,
                    H,
                    BLOCK_K,
                    IEEE_FP32,
                    UPCAST_DOT,
                )
                z = tl.load(gates_at + H, mask, other=0.0)
                n = tanh(tl.load(gx_at + 2 * H, mask, other=0.0) + acc_n)
                h = (1.0 - z) * n + z * h_prev
                tl.store(gates_at + 2 * H, n, mask)
            tl.store(hs_ptr + offs_b[:, None] * hs_stride + (t + 1) * H + offs_h[None, :], h, mask)
        tl.debug_barrier()  # h_t complete before step t + 1 reads it
