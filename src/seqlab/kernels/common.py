"""Triton building blocks shared by the forward and the backward recurrence kernels.

Cell names (a ``tl.constexpr`` string selects the cell at compile time; Triton kernels may read only
constexpr globals, so the names travel as arguments): ``"rnn"`` tanh RNN, ``"lstm"``, ``"gru_after"`` (reset
after the recurrent product, cuDNN's GRU), ``"gru_before"`` (reset before it, the notes').
"""

from __future__ import annotations

import triton
import triton.language as tl
from triton.runtime.interpreter import InterpretedFunction

from seqlab.cells import NUM_GATES as CELL_GATES

# gates per kernel cell name, from the cells' own count (``seqlab.cells.NUM_GATES``): both GRU resets have 3
NUM_GATES = {"rnn": CELL_GATES["rnn"], "lstm": CELL_GATES["lstm"]} | {
    f"gru_{reset}": CELL_GATES["gru"] for reset in ("after", "before")
}


@triton.jit
def tanh(x):
    # tanh(x) = 2 sigma(2x) - 1: tl has no tanh that also runs in the interpreter. Written as x + x and sigma * 2:
    # the same numbers, but "2.0 * sigma(2.0 * x)" crashes LLVM's SLP vectorizer (Triton 3.9, sm_90) in the
    # fp32 units-layout LSTM forward at 8 or more warps.
    return tl.sigmoid(x + x) * 2.0 - 1.0


INTERPRETED = isinstance(tanh, InterpretedFunction)  # TRITON_INTERPRET=1 when triton's jit first ran


@triton.jit
def dot_in_weight_dtype(a, w, IEEE_FP32: tl.constexpr, UPCAST_DOT: tl.constexpr):
    """``a (M, K) fp32 @ w (K, N)`` in fp32: exact fp32 products, or (bfloat16 weights) ``a`` rounded to bfloat16
    for the tensor cores. ``UPCAST_DOT``: that bfloat16 product in fp32 arithmetic on the rounded values (the
    same numbers; the interpreter's bfloat16 ``tl.dot`` is wrong)."""
    if IEEE_FP32:
        return tl.dot(a, w, input_precision="ieee")
    elif UPCAST_DOT:
        return tl.dot(a.to(tl.bfloat16).to(tl.float32), w.to(tl.float32), input_precision="ieee")
    else:
        return tl.dot(a.to(tl.bfloat16), w)


@triton.jit
def rows_times_gates(
    a_ptr,
    a_row_stride,
    offs_b,
    mask_b,
    w_ptr,
    w_row_stride,
    gate_step,
    offs_n,
    mask_n,
    K,
    GATES: tl.constexpr,
    BLOCK_B: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
    IEEE_FP32: tl.constexpr,
    UPCAST_DOT: tl.constexpr,
):
    """``A[offs_b, 0:K] @ W[0:K, k gate_step + offs_n]`` for the first ``GATES`` (1 to 4) gates k: four
    (BLOCK_B, BLOCK_N) tiles, those past ``GATES`` zero. A is fp32 rows, read once per chunk for every gate; W is
    in the weight dtype, read from global memory chunk by chunk (``dot_in_weight_dtype`` for the precision flags)."""
    acc0 = tl.zeros((BLOCK_B, BLOCK_N), tl.float32)
    acc1 = tl.zeros((BLOCK_B, BLOCK_N), tl.float32)
    acc2 = tl.zeros((BLOCK_B, BLOCK_N), tl.float32)
    acc3 = tl.zeros((BLOCK_B, BLOCK_N), tl.float32)
    for k0 in range(0, K, BLOCK_K):
        offs_k = k0 + tl.arange(0, BLOCK_K)
        mask_k = offs_k < K
        a = tl.load(
            a_ptr + offs_b[:, None] * a_row_stride + offs_k[None, :], mask_b[:, None] & mask_k[None, :], other=0.0
        )
        w_at = w_ptr + offs_k[:, None] * w_row_stride + offs_n[None, :]
        w_mask = mask_k[:, None] & mask_n[None, :]
        acc0 += dot_in_weight_dtype(a, tl.load(w_at, w_mask, other=0.0), IEEE_FP32, UPCAST_DOT)
        if GATES > 1:
            acc1 += dot_in_weight_dtype(a, tl.load(w_at + gate_step, w_mask, other=0.0), IEEE_FP32, UPCAST_DOT)
        if GATES > 2:
            acc2 += dot_in_weight_dtype(a, tl.load(w_at + 2 * gate_step, w_mask, other=0.0), IEEE_FP32, UPCAST_DOT)
        if GATES > 3:
            acc3 += dot_in_weight_dtype(a, tl.load(w_at + 3 * gate_step, w_mask, other=0.0), IEEE_FP32, UPCAST_DOT)
    return acc0, acc1, acc2, acc3


@triton.jit
def grid_barrier(sync_ptr, arrivals, MAX_SPINS: tl.constexpr):
    """Wait until every program of the launch has arrived here for the ``arrivals``-th time (GPU only).

    ``sync_ptr[0]`` counts arrivals over the whole launch and is never reset, so the k-th barrier waits for
    ``k * num_programs`` (an int32: T * barriers per step * programs stays under 2^31 up to 8 million steps at 128
    programs). The block-wide barrier before the release-add orders this program's stores (all its
    threads) before its arrival; the acquire-reads order the other programs' stores before what follows.
    Every program must be resident at once (grid <= SM count) or this would wait forever: after
    ``MAX_SPINS`` reads it gives up and sets ``sync_ptr[1]``, and the host raises instead of hanging.
    """
    target = arrivals * tl.num_programs(0)
    tl.debug_barrier()
    tl.atomic_add(sync_ptr, 1, sem="release", scope="gpu")
    arrived = tl.atomic_add(sync_ptr, 0, sem="acquire", scope="gpu")
    spins = tl.where(tl.atomic_add(sync_ptr + 1, 0, sem="relaxed", scope="gpu") != 0, MAX_SPINS, 0)
    while (arrived < target) & (spins < MAX_SPINS):
        arrived = tl.atomic_add(sync_ptr, 0, sem="acquire", scope="gpu")
        spins += 1
    if arrived < target:
        tl.atomic_xchg(sync_ptr + 1, 1, sem="relaxed", scope="gpu")
    tl.debug_barrier()
