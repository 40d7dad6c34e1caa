"""Compile every kernel variant for a Hopper GPU (sm_90) on a machine without one; prints one line each.

The interpreter accepts code the compiler rejects (non-constexpr globals, some control flow), so the
CPU tests also compile: Triton's frontend, its optimiser and the bundled ptxas run without a GPU.
Run without TRITON_INTERPRET (it would turn the kernels into interpreted functions).

    python tests/compile_kernels.py                      # both layouts: 16 rows kernels, 16 units kernels
    python tests/compile_kernels.py rows                 # one layout
    python tests/compile_kernels.py units --hidden 1024  # the units kernels' resident slice sized for H = 1024

The units kernels compile as the GPU runs them: persistent, with the grid barrier (which the interpreter never
executes), for one hidden size (default 256; its slice is K_PAD x BLOCK_U per gate, BLOCK_U = 16). Each line also
reports the registers per thread and the local-memory stack (spilled registers), which decide whether the
slice of W_hh really stays on chip.
"""

import argparse
import itertools
import re
import subprocess
import tempfile
import time
from pathlib import Path

import torch
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

from seqlab.kernels.backward import recurrence_backward_kernel
from seqlab.kernels.common import NUM_GATES
from seqlab.kernels.forward import recurrence_forward_kernel
from seqlab.kernels.units import BLOCK_B, MAX_SPINS, units_plan
from seqlab.kernels.units_backward import units_backward_kernel
from seqlab.kernels.units_forward import units_forward_kernel

WEIGHT_POINTERS = ("w_t_ptr", "w_ptr")  # in the weight dtype; every other buffer is fp32 (sync_ptr: int32)
SCALARS = ("B", "T", "H", "t_first", "t_last", "s_first", "s_last")
UNITS_HIDDEN = 256


def resource_usage(cubin: bytes) -> tuple[int, int]:
    """Registers per thread and bytes of local-memory stack (spills) of the compiled kernel (bundled cuobjdump)."""
    cuobjdump = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "cuobjdump"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "kernel.cubin"
        path.write_bytes(cubin)
        done = subprocess.run([str(cuobjdump), "-res-usage", str(path)], capture_output=True, text=True, check=True)
    return int(re.search(r"REG:(\d+)", done.stdout)[1]), int(re.search(r"STACK:(\d+)", done.stdout)[1])


def signature(kernel, weight_dtype: str) -> dict[str, str]:
    types = {}
    for name in kernel.arg_names:
        if name == "sync_ptr":
            types[name] = "*i32"
        elif name.endswith("_ptr"):
            types[name] = "*" + (weight_dtype if name in WEIGHT_POINTERS else "fp32")
        else:
            types[name] = "i32" if name in SCALARS else "constexpr"
    return types


def constants_rows(cell: str, weight_dtype: str) -> tuple[dict, dict]:
    constants = dict(CELL=cell, NUM_GATES=NUM_GATES[cell], BLOCK_B=16, BLOCK_H=64, BLOCK_K=64)
    constants.update(IEEE_FP32=weight_dtype == "fp32", UPCAST_DOT=False)
    return constants, {}


def constants_units(cell: str, weight_dtype: str) -> tuple[dict, dict]:
    plan = units_plan(UNITS_HIDDEN, torch.device("cpu"))  # the CPU plan's BLOCK_U = 16
    constants = dict(CELL=cell, NUM_GATES=NUM_GATES[cell], BLOCK_B=BLOCK_B, BLOCK_U=plan.block_u, K_PAD=plan.k_pad)
    constants.update(PERSISTENT=True, PHASE=0, MAX_SPINS=MAX_SPINS, IEEE_FP32=weight_dtype == "fp32", UPCAST_DOT=False)
    return constants, {"num_warps": plan.num_warps, "launch_cooperative_grid": True}


LAYOUTS = {
    "rows": ([recurrence_forward_kernel, recurrence_backward_kernel], constants_rows),
    "units": ([units_forward_kernel, units_backward_kernel], constants_units),
}


def main(layouts: list[str]) -> None:
    target = GPUTarget("cuda", 90, 32)
    for layout in layouts:
        kernels, make_constants = LAYOUTS[layout]
        for kernel, cell, weight_dtype in itertools.product(kernels, NUM_GATES, ["fp32", "bf16"]):
            constants, options = make_constants(cell, weight_dtype)
            start = time.perf_counter()
            source = ASTSource(kernel, signature(kernel, weight_dtype), constants)
            compiled = triton.compile(source, target=target, options=options)
            seconds = time.perf_counter() - start
            size = len(compiled.asm["cubin"])
            registers, stack = resource_usage(compiled.asm["cubin"])
            print(
                f"ok {layout} {kernel.__name__} {cell} {weight_dtype}: {size} bytes of sm_90 code, "
                f"{options.get('num_warps', 4)} warps x {registers} registers, {stack} bytes of stack (spills), "
                f"{seconds:.1f} s"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("layouts", nargs="*", help=f"some of {list(LAYOUTS)} (default: all)")
    parser.add_argument("--hidden", type=int, default=UNITS_HIDDEN, help="H for the units kernels' plan")
    args = parser.parse_args()
    if not set(args.layouts) <= set(LAYOUTS):
        parser.error(f"layouts must be among {list(LAYOUTS)}, got {args.layouts}")
    UNITS_HIDDEN = args.hidden
    main(args.layouts or list(LAYOUTS))
