#!/usr/bin/env bash
# One call on a CUDA machine, within 8 minutes: the kernel tests compiled and run on the GPU (both layouts), then the
# benchmark table (both layouts side by side with cuDNN and the step loop, measured in the same run).
#
#   bash benchmarks/gpu_check.sh [OUT_DIR] [TOTAL_SECONDS]
#
# Writes OUT_DIR/{gpu.txt,tests.txt,table.md,progress.txt} (default OUT_DIR: $OUT, else runs/gpu_check). Uses the
# python3 that holds a CUDA torch and triton (override with PYTHON=...); seqlab runs from src/, no install.
# TOTAL_SECONDS (default 450) bounds the whole call: the tests get at most TESTS_SECONDS (default 150), and the
# benchmark starts no new (B, H, dtype) once what is left falls under a margin, then prints what it finished
# (small batches first: the issue's B <= 16 targets come in before B = 64). Its table is docs/benchmarks.md's.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-${OUT:-runs/gpu_check}}"
total="${2:-450}"
tests_seconds="${TESTS_SECONDS:-150}"
margin=90  # one (B, H, dtype) configuration: ~22 cases, each compiled once and timed by do_bench
python="${PYTHON:-python3}"
mkdir -p "$out"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 TRITON_DEFAULT_FP_FUSION=1
unset TRITON_INTERPRET

{ nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv; "$python" -c \
  "import torch, triton; p = torch.cuda.get_device_properties(0); print('torch', torch.__version__, 'cuda', torch.version.cuda, 'cudnn', torch.backends.cudnn.version(), 'triton', triton.__version__, p.name, p.multi_processor_count, 'SMs')"
} 2>&1 | tee "$out/gpu.txt"
"$python" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device visible to torch')" || exit 1

# Parity on the GPU (the same tests CI runs in the interpreter; here the units layout runs persistent, with its
# grid barrier) and the Recurrent layer's other backends. Stopped after TESTS_SECONDS: the timings matter too.
timeout "$tests_seconds" "$python" -m pytest -q -ra -p no:cacheprovider tests/test_kernels.py tests/test_recurrent.py \
  2>&1 | tee "$out/tests.txt"
tests_status=${PIPESTATUS[0]}
[ "$tests_status" = 124 ] && echo "tests stopped after ${tests_seconds} s (timeout): see the last lines above" | tee -a "$out/tests.txt"

budget=$(( total - SECONDS - margin ))
budget=$(( budget > 30 ? budget : 30 ))
timeout $(( budget + margin + 60 )) "$python" benchmarks/recurrent_kernels.py --budget "$budget" \
  > "$out/table.md" 2> "$out/progress.txt"
bench_status=$?
cat "$out/table.md"
echo "tests exit $tests_status, benchmark exit $bench_status, ${SECONDS} s in all"
exit $(( tests_status != 0 || bench_status != 0 ))
