"""Compile every kernel variant for a Hopper GPU (sm_90) on a machine without one; prints one line each.

The interpreter accepts code the compiler rejects (non-constexpr globals, some control flow), so the
CPU tests also compile: Triton's frontend, its optimiser and the bundled ptxas run without a GPU.
Run without TRITON_INTERPRET (it would turn the kernels into interpreted functions).

    python tests/compile_kernels.py
"""

import itertools
import time

import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

from seqlab.kernels.backward import recurrence_backward_kernel
from seqlab.kernels.common import NUM_GATES
from seqlab.kernels.forward import recurrence_forward_kernel

WEIGHT_POINTERS = ("w_t_ptr", "w_ptr")  # in the weight dtype; every other buffer is fp32


def signature(kernel, weight_dtype: str) -> dict[str, str]:
    types = {}
    for name in kernel.arg_names:
        if name.endswith("_ptr"):
            types[name] = "*" + (weight_dtype if name in WEIGHT_POINTERS else "fp32")
        else:
            types[name] = "i32" if name in ("B", "T", "H") else "constexpr"
    return types


def main() -> None:
    target = GPUTarget("cuda", 90, 32)
    kernels = [recurrence_forward_kernel, recurrence_backward_kernel]
    for kernel, cell, weight_dtype in itertools.product(kernels, NUM_GATES, ["fp32", "bf16"]):
        constants = dict(CELL=cell, NUM_GATES=NUM_GATES[cell], BLOCK_B=16, BLOCK_H=64, BLOCK_K=64)
        constants.update(IEEE_FP32=weight_dtype == "fp32", UPCAST_DOT=False)
        start = time.perf_counter()
        compiled = triton.compile(ASTSource(kernel, signature(kernel, weight_dtype), constants), target=target)
        seconds = time.perf_counter() - start
        size = len(compiled.asm["cubin"])
        print(f"ok {kernel.__name__} {cell} {weight_dtype}: {size} bytes of sm_90 code, {seconds:.1f} s")


if __name__ == "__main__":
    main()
