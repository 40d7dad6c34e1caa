#!/usr/bin/env bash
# One call on a CUDA machine, within 8 minutes: the kernel tests compiled and run on the GPU (both layouts), then the
# benchmark table (both layouts side by side with cuDNN and the step loop, measured in the same run).
#
#   bash benchmarks/gpu_check.sh [OUT_DIR] [TOTAL_SECONDS]
#
# Writes OUT_DIR/{gpu.txt,tests.txt,table.md,progress.txt} (default OUT_DIR: $OUT, else runs/gpu_check). Uses the
# python3 that holds a CUDA torch and triton (override with PYTHON=...); seqlab runs from src/, no install.
# TOTAL_SECONDS (default 450) bounds the whole call: the units layout's tests get at most 120 s, the other kernel
# tests 60 s (UNITS_TESTS_SECONDS, OTHER_TESTS_SECONDS), and the benchmark starts no new (B, H, dtype) once what is
# left falls under a margin, then prints what it finished (small batches first: the issue's B <= 16 targets come
# in before B = 64). Its table is docs/benchmarks.md's.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-${OUT:-runs/gpu_check}}"
total="${2:-450}"
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
# grid barrier, which only a GPU can check): the units layout's tests first, then the rest of the kernel and
# Recurrent tests, each phase stopped after its share of the time (the timings matter too).
run_tests() {  # SECONDS_ALLOWED, then pytest arguments
  local allowed=$1; shift
  timeout "$allowed" "$python" -m pytest -q -ra -p no:cacheprovider "$@" 2>&1 | tee -a "$out/tests.txt"
  local status=${PIPESTATUS[0]}
  [ "$status" = 124 ] && printf "\nstopped after %s s (timeout): %s\n" "$allowed" "$*" | tee -a "$out/tests.txt"
  return "$status"
}
: > "$out/tests.txt"
run_tests "${UNITS_TESTS_SECONDS:-120}" tests/test_kernels.py -k units
units_status=$?
run_tests "${OTHER_TESTS_SECONDS:-60}" tests/test_kernels.py tests/test_recurrent.py -k "not units"
other_status=$?
tests_status=$(( units_status != 0 || other_status != 0 ))

budget=$(( total - SECONDS - margin ))
budget=$(( budget > 30 ? budget : 30 ))
timeout $(( budget + margin + 60 )) "$python" benchmarks/recurrent_kernels.py --budget "$budget" \
  > "$out/table.md" 2> "$out/progress.txt"
bench_status=$?
cat "$out/table.md"
echo "units tests exit $units_status, other tests exit $other_status, benchmark exit $bench_status, ${SECONDS} s in all"
exit $(( tests_status != 0 || bench_status != 0 ))
