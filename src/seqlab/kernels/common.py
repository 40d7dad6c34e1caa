"""Triton building blocks shared by the forward and the backward recurrence kernels.

Cell names (a ``tl.constexpr`` string selects the cell at compile time; Triton kernels may read only
constexpr globals, so the names travel as arguments): ``"rnn"`` tanh RNN, ``"lstm"``, ``"gru_after"`` (reset
after the recurrent product, cuDNN's GRU), ``"gru_before"`` (reset before it, the notes').
"""

from __future__ import annotations

import triton
import triton.language as tl

NUM_GATES = {"rnn": 1, "lstm": 4, "gru_after": 3, "gru_before": 3}


@triton.jit
def tanh(x):
    # tanh(x) = 2 sigma(2x) - 1: tl has no tanh that also runs in the interpreter.
    return 2.0 * tl.sigmoid(2.0 * x) - 1.0


@triton.jit
def rows_times_matrix(
    acc,
    a_ptr,
    a_row_stride,
    offs_b,
    mask_b,
    w_ptr,
    w_row_stride,
    offs_n,
    mask_n,
    K,
    BLOCK_K: tl.constexpr,
    IEEE_FP32: tl.constexpr,
    UPCAST_DOT: tl.constexpr,
):
    """``acc (BLOCK_B, BLOCK_N) += A[offs_b, 0:K] @ W[0:K, offs_n]``, A fp32 rows, W in the weight dtype.

    ``IEEE_FP32``: exact fp32 products (no tf32). Otherwise the weights are bfloat16 and A is rounded to
    bfloat16 for the tensor cores, accumulating in fp32. ``UPCAST_DOT``: do that bfloat16 product in fp32
    arithmetic on the rounded values (the same numbers; the interpreter's bfloat16 ``tl.dot`` is wrong).
    """
    for k0 in range(0, K, BLOCK_K):
        offs_k = k0 + tl.arange(0, BLOCK_K)
        mask_k = offs_k < K
        a = tl.load(
            a_ptr + offs_b[:, None] * a_row_stride + offs_k[None, :], mask_b[:, None] & mask_k[None, :], other=0.0
        )
        w = tl.load(
            w_ptr + offs_k[:, None] * w_row_stride + offs_n[None, :], mask_k[:, None] & mask_n[None, :], other=0.0
        )
        if IEEE_FP32:
            acc += tl.dot(a, w, input_precision="ieee")
        elif UPCAST_DOT:
            acc += tl.dot(a.to(tl.bfloat16).to(tl.float32), w.to(tl.float32), input_precision="ieee")
        else:
            acc += tl.dot(a.to(tl.bfloat16), w)
    return acc
