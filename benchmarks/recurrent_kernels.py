"""Recurrent layers on the GPU: seqlab's Triton kernels against cuDNN and the plain PyTorch step loop.

Named cases ``{cell}--{impl}++{mode}``:

- cell: ``rnn``, ``lstm``, ``gru_after`` (cuDNN's GRU), ``gru_before`` (the notes' GRU, which cuDNN cannot run);
- impl: ``triton-rows`` and ``triton-units`` (``Recurrent(backend="triton", layout="rows" / "units")``: a program
  per 16 batch rows owning every hidden unit, or hidden units split over the SMs with ``W_hh`` resident and a grid
  barrier per step), ``cudnn`` (``backend="torch"``: cuDNN on CUDA), ``loop`` (``backend="reference"``: a Python
  loop over seqlab's cells, one small launch per operation);
- mode: ``fw`` (forward) or ``fwbw`` (forward and backward, gradients of x, h_0 and every parameter).

Each over dtype (float32 with tf32 off, bfloat16) x B x H x T (one layer, input size D = H), timed with CUDA
events by ``triton.testing.do_bench`` (median). The ratio column is measured in the same run: cuDNN's time
over the case's time for the same cell, dtype, shape and mode (higher is faster than cuDNN); for
``gru_before``, which cuDNN cannot run, the loop's time over the case's; ``units/rows`` is the rows layout's time
over the units layout's. Triton's forward output is also checked against cuDNN's (or the loop's) in every
configuration: the ``rel err`` column. A case that fails (a compile error, the grid barrier giving up) is a row
with its error, and the run goes on.

    python benchmarks/recurrent_kernels.py                       # the full grid: B 1 16 64, H 256 768 1024, T 1024
    python benchmarks/recurrent_kernels.py --quick               # B 1 16, H 256, T 256
    python benchmarks/recurrent_kernels.py --cases 'lstm--*' 'gru_before--*++fw'   # fnmatch patterns
    python benchmarks/recurrent_kernels.py --budget 240         # start no new (B, H, dtype) after 240 s
    python benchmarks/recurrent_kernels.py --smoke               # no GPU: tiny shapes in the Triton interpreter

``--smoke`` only checks that every case runs and agrees (its times are CPU interpreter wall times, not
performance numbers). The table prints last.
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import platform
import statistics
import sys
import time

import torch

CELLS = {
    "rnn": ("rnn", "after"),
    "lstm": ("lstm", "after"),
    "gru_after": ("gru", "after"),
    "gru_before": ("gru", "before"),
}
IMPLS = {  # name: (backend, layout)
    "triton-rows": ("triton", "rows"),
    "triton-units": ("triton", "units"),
    "cudnn": ("torch", "auto"),
    "loop": ("reference", "auto"),
}
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
DEFAULT_CASES = ["*--triton-*", "*--cudnn++*", "gru_before--loop++*", "lstm--loop++fw"]


def case_names() -> list[str]:
    return [f"{cell}--{impl}++{mode}" for cell in CELLS for impl in IMPLS for mode in ("fw", "fwbw")]


def selected(patterns: list[str]) -> list[str]:
    names = [n for n in case_names() if any(fnmatch.fnmatch(n, p) for p in patterns)]
    return [n for n in names if not n.startswith("gru_before--cudnn")]  # cuDNN has no reset-before GRU


def timer(smoke: bool):
    """Median milliseconds of fn(): CUDA events through do_bench on the GPU, perf_counter in the interpreter."""
    if smoke:

        def measure(fn):
            fn()
            times = []
            for _ in range(3):
                start = time.perf_counter()
                fn()
                times.append(1e3 * (time.perf_counter() - start))
            return statistics.median(times)

        return measure
    from triton.testing import do_bench

    return lambda fn: do_bench(fn, warmup=25, rep=200, return_mode="median")


def run_case(name: str, dtype: torch.dtype, B: int, H: int, T: int, device: str, measure) -> tuple[float, torch.Tensor]:
    from seqlab import Recurrent

    cell_key, rest = name.split("--")
    impl, mode = rest.split("++")
    cell, reset = CELLS[cell_key]
    torch.manual_seed(0)
    backend, layout = IMPLS[impl]
    layer = Recurrent(cell, H, H, reset=reset, backend=backend, layout=layout).to(device, dtype)
    x = torch.randn(B, T, H, device=device, dtype=dtype, requires_grad=mode == "fwbw")
    state = layer.initial_state(B, device=device, dtype=dtype)
    dy = torch.randn(B, T, H, device=device, dtype=dtype)
    with torch.no_grad():
        y_check, _ = layer(x, state)

    def forward():
        with torch.no_grad():
            layer(x, state)

    def forward_backward():
        y, _ = layer(x, state)
        y.backward(dy)

    return measure(forward if mode == "fw" else forward_backward), y_check


def machine(device: str) -> str:
    import triton

    where = torch.cuda.get_device_name() if device == "cuda" else f"CPU ({platform.machine()}), Triton interpreter"
    return f"{where}; torch {torch.__version__}, triton {triton.__version__}, cuDNN {torch.backends.cudnn.version()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=DEFAULT_CASES, help=f"fnmatch patterns over {case_names()}")
    parser.add_argument("--dtypes", nargs="+", default=list(DTYPES), choices=list(DTYPES))
    parser.add_argument("--batch", nargs="+", type=int, default=[1, 16, 64])
    parser.add_argument("--hidden", nargs="+", type=int, default=[256, 768, 1024])
    parser.add_argument("--steps", type=int, default=1024, help="T, time steps per sequence")
    parser.add_argument("--quick", action="store_true", help="B 1 16, H 256, T 256")
    parser.add_argument("--smoke", action="store_true", help="tiny shapes in the Triton interpreter (no GPU)")
    parser.add_argument(
        "--budget", type=float, help="seconds: start no new (B, H, dtype) after this; table of the rest"
    )
    args = parser.parse_args()
    if args.quick:
        args.batch, args.hidden, args.steps = [1, 16], [256], 256
    if args.smoke:
        os.environ.setdefault("TRITON_INTERPRET", "1")  # before seqlab.kernels (and so triton's jit) is imported
        args.batch, args.hidden, args.steps = [1, 3], [24], 4
    elif not torch.cuda.is_available():
        print("benchmarks/recurrent_kernels.py needs a CUDA GPU; use --smoke for an interpreter run on the CPU.")
        return
    device = "cuda" if torch.cuda.is_available() and not args.smoke else "cpu"
    torch.backends.cuda.matmul.allow_tf32 = False  # float32 means float32 for every implementation
    torch.backends.cudnn.allow_tf32 = False
    measure = timer(args.smoke)

    names = selected(args.cases)
    rows = []  # (name, dtype, B, H, ms or None, rel err or the error's text)
    start, skipped = time.perf_counter(), []
    for B in args.batch:  # small batches first: the targets that matter most come in before any --budget ends
        for H in args.hidden:
            for dtype_name in args.dtypes:
                if args.budget is not None and time.perf_counter() - start > args.budget:
                    skipped.append(f"{dtype_name} B={B} H={H}")
                    continue
                outputs = {}
                for name in names:
                    try:
                        ms, y = run_case(name, DTYPES[dtype_name], B, H, args.steps, device, measure)
                    except Exception as error:  # one failing case must not cost the rest of a GPU session
                        rows.append([name, dtype_name, B, H, None, f"{type(error).__name__}: {error}"[:200]])
                        print(f"{name} {dtype_name} B={B} H={H}: FAILED {rows[-1][5]}", file=sys.stderr, flush=True)
                        continue
                    outputs[name] = y
                    rows.append([name, dtype_name, B, H, ms, None])
                    print(f"{name} {dtype_name} B={B} H={H}: {ms:.3f} ms", file=sys.stderr, flush=True)
                for row in rows[-len(names) :]:  # triton's forward against cuDNN's, or the loop's
                    cell, impl = row[0].split("--")[0], row[0].split("--")[1].split("++")[0]
                    if not impl.startswith("triton") or row[0] not in outputs:
                        continue
                    for other in (f"{cell}--cudnn++fw", f"{cell}--loop++fw"):
                        if other in outputs:
                            y, e = outputs[row[0]].double(), outputs[other].double()
                            row[5] = ((y - e).abs().max() / e.abs().max()).item()
                            break

    times = {(r[0], r[1], r[2], r[3]): r[4] for r in rows if r[4] is not None}
    print(f"\nmachine: {machine(device)}")
    if args.smoke:
        print(
            f"SMOKE RUN, T = {args.steps}: CPU Triton interpreter wall times, not performance numbers; cudnn = oneDNN"
        )
    else:
        print(f"T = {args.steps}, one layer, D = H; median of CUDA-event timings (triton.testing.do_bench); tf32 off")
    if skipped:
        print(f"not run (--budget {args.budget:g} s reached): {', '.join(skipped)}")
    print("\n| case | dtype | B | H | ms | us/step | ratio | units/rows | rel err |")
    print("|---|---|---:|---:|---:|---:|---|---:|---:|")
    for name, dtype_name, B, H, ms, err in rows:
        if ms is None:
            print(f"| {name} | {dtype_name} | {B} | {H} | failed | | | | {err} |")
            continue
        cell, rest = name.split("--")
        impl, mode = rest.split("++")
        base = "cudnn" if cell != "gru_before" else "loop"
        base_ms = times.get((f"{cell}--{base}++{mode}", dtype_name, B, H))
        ratio = f"{base_ms / ms:.2f}x {base}" if base_ms is not None else "-"
        rows_ms = times.get((f"{cell}--triton-rows++{mode}", dtype_name, B, H))
        units_vs_rows = f"{rows_ms / ms:.2f}" if impl == "triton-units" and rows_ms is not None else ""
        error = f"{err:.1e}" if err is not None else ""
        us = 1e3 * ms / args.steps
        print(f"| {name} | {dtype_name} | {B} | {H} | {ms:.3f} | {us:.1f} | {ratio} | {units_vs_rows} | {error} |")


if __name__ == "__main__":
    main()
