"""Launching the second layout (hidden units split over programs): the plan, the drivers, its limits.

    programs P = ceil(H / BLOCK_U) <= SM count          every program resident, so the grid barrier ends
    resident slice per program: G/H gates x K_PAD x BLOCK_U weights (K_PAD = H rounded up to a power of two)

``BLOCK_U`` is the smallest power of two >= 16 (``tl.dot``'s least width) that fits P into the SMs: the more
programs, the smaller each one's slice of ``W_hh``. On the GPU one persistent launch runs all T steps with a
grid barrier per step; under the interpreter (no SMs, programs run in turn) one launch per step and phase.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import triton

from seqlab.kernels.common import INTERPRETED, NUM_GATES
from seqlab.kernels.units_backward import units_backward_kernel
from seqlab.kernels.units_forward import units_forward_kernel

# The resident slice is a (K_PAD, BLOCK_U) tensor per gate: at H = 1024 an fp32 LSTM's is 256 KiB a program, an
# SM's whole register file, and ptxas spills part of it; at 2048 the whole W_hh (64 MiB) exceeds the chip's
# registers and shared memory together, so past it nothing could stay resident.
UNITS_MAX_HIDDEN = 2048
MIN_BLOCK_U = 16  # tl.dot needs N >= 16
MAX_BLOCK_U = 128
BLOCK_B = 16  # batch rows per tl.dot; a program walks every batch block with the same resident slice
# Barrier reads before a program gives up (seconds on a GPU; a step's wait is microseconds): a grid that was not
# all resident (another kernel holding SMs) raises an error instead of hanging the GPU.
MAX_SPINS = 1 << 24
# Warps per program. From ptxas's report at H = 1024 (tests/compile_kernels.py units --hidden 1024, not a timing):
# 4 warps spill most of the fp32 slice to local memory, 16 warps get at most 128 registers a thread and ptxas
# spills there too; 8 warps compile 6 of the 8 fp32 kernels without spills. Untuned on a GPU.
NUM_WARPS = 8


@dataclass(frozen=True)
class UnitsPlan:
    block_u: int  # hidden units per program (all their gates)
    programs: int
    k_pad: int  # H rounded up to a power of two: the resident slice's rows
    num_warps: int
    persistent: bool  # one launch with grid barriers (GPU), else one launch per step (interpreter)


def sm_count(device: torch.device) -> int | None:
    """Streaming multiprocessors of a CUDA device; None in the interpreter (no residency limit)."""
    return torch.cuda.get_device_properties(device).multi_processor_count if device.type == "cuda" else None


def units_plan(H: int, device: torch.device) -> UnitsPlan | str:
    """The launch plan for hidden size ``H`` (the same for every cell and dtype), or why the layout cannot take it."""
    if H > UNITS_MAX_HIDDEN:
        return f'hidden size {H} > {UNITS_MAX_HIDDEN} for layout="units"'
    sms = sm_count(device)
    block_u = MIN_BLOCK_U
    while sms is not None and triton.cdiv(H, block_u) > sms and block_u < MAX_BLOCK_U:
        block_u *= 2
    programs = triton.cdiv(H, block_u)
    if sms is not None and programs > sms:
        return f'hidden size {H} needs {programs} resident programs for layout="units", the GPU has {sms} SMs'
    k_pad = max(16, triton.next_power_of_2(H))
    return UnitsPlan(block_u, programs, k_pad, NUM_WARPS, persistent=not INTERPRETED)


def _run(kernel, plan: UnitsPlan, args: tuple, sync: torch.Tensor, T: int, cell: str, constants: dict) -> None:
    grid = (plan.programs,)
    if plan.persistent:
        # A cooperative launch: the driver refuses a grid that cannot be resident all at once instead of starting it.
        kernel[grid](*args, 0, T, PERSISTENT=True, PHASE=0, launch_cooperative_grid=True, **constants)
        if sync[1].item():
            raise RuntimeError(
                'layout="units": the programs of the grid were not all resident at once (is another kernel '
                'holding SMs?); the grid barrier gave up. Use layout="rows".'
            )
        return
    for step in range(T):  # the launch boundary is the barrier
        for phase in (1, 2) if cell == "gru_before" else (0,):
            kernel[grid](*args, step, step + 1, PERSISTENT=False, PHASE=phase, **constants)


def _constants(plan: UnitsPlan, cell: str, dtype: torch.dtype) -> dict:
    return dict(
        CELL=cell,
        NUM_GATES=NUM_GATES[cell],
        BLOCK_B=BLOCK_B,
        BLOCK_U=plan.block_u,
        K_PAD=plan.k_pad,
        MAX_SPINS=MAX_SPINS,
        IEEE_FP32=dtype == torch.float32,
        UPCAST_DOT=INTERPRETED,
        num_warps=plan.num_warps,
    )


def forward(plan: UnitsPlan, cell: str, gx, w_t, b_hn, hs, cs, gates, aux, dtype: torch.dtype) -> None:
    """Fill ``hs``, ``cs``, ``gates``, ``aux`` from ``gx (B, T, G)`` and ``w_t = W_hh^T (H, G)`` (see forward.py)."""
    B, T, H = hs.shape[0], hs.shape[1] - 1, hs.shape[2]
    sync = torch.zeros(2, dtype=torch.int32, device=hs.device)  # arrivals, gave-up flag
    args = (gx, w_t, b_hn, hs, cs, gates, aux, sync, B, T, H)
    _run(units_forward_kernel, plan, args, sync, T, cell, _constants(plan, cell, dtype))


def backward(plan: UnitsPlan, cell: str, dy, w, hs, cs, gates, aux, dgx, dgh, dh_carry, dc_carry, dtype) -> None:
    """Fill ``dgx``, ``dgh`` and update the carries from ``dy (B, T, H)`` and ``w = W_hh (G, H)`` (see backward.py)."""
    B, T, H = dy.shape
    sync = torch.zeros(2, dtype=torch.int32, device=dy.device)
    args = (dy, w, hs, cs, gates, aux, dgx, dgh, dh_carry, dc_carry, sync, B, T, H)
    _run(units_backward_kernel, plan, args, sync, T, cell, _constants(plan, cell, dtype))
