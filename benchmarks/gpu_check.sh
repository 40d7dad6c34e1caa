#!/usr/bin/env bash
# One call on a CUDA machine: the kernel tests compiled and run on the GPU, then the benchmark table.
#
#   bash benchmarks/gpu_check.sh [OUT_DIR] [BENCHMARK_SECONDS]
#
# Writes OUT_DIR/{gpu.txt,tests.txt,table.md,progress.txt} (default OUT_DIR: $OUT, else runs/gpu_check). Uses the
# python3 that holds a CUDA torch and triton (override with PYTHON=...); seqlab runs from src/, no install.
# The benchmark starts no new (B, H, dtype) after BENCHMARK_SECONDS (default 300) and prints what it finished;
# its table is docs/benchmarks.md's "Fused recurrent kernels" table.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-${OUT:-runs/gpu_check}}"
budget="${2:-300}"
python="${PYTHON:-python3}"
mkdir -p "$out"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 TRITON_DEFAULT_FP_FUSION=1
unset TRITON_INTERPRET

{ nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv; "$python" -c \
  "import torch, triton; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'cudnn', torch.backends.cudnn.version(), 'triton', triton.__version__, torch.cuda.get_device_name())"
} 2>&1 | tee "$out/gpu.txt"
"$python" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device visible to torch')" || exit 1

# Parity on the GPU (the same tests CI runs in the interpreter) and the Recurrent layer's other backends.
"$python" -m pytest -q -ra -p no:cacheprovider tests/test_kernels.py tests/test_recurrent.py 2>&1 | tee "$out/tests.txt"
tests_status=${PIPESTATUS[0]}

"$python" benchmarks/recurrent_kernels.py --budget "$budget" > "$out/table.md" 2> "$out/progress.txt"
bench_status=$?
cat "$out/table.md"
echo "tests exit $tests_status, benchmark exit $bench_status"
exit $(( tests_status != 0 || bench_status != 0 ))
