#!/usr/bin/env bash
# Issue 13's GPU measurements in one call (see issue13_gpu_check.py).
#
#   WHEELS=dir/with/keras-namex-optree-keras_hub-wheels \
#       bash benchmarks/issue13_gpu_check.sh [extra arguments]
#
# Installs the wheels in $WHEELS (if set; without dependencies: the GPU
# machine already has JAX, PyTorch and Triton, and must not get TensorFlow),
# then runs the script with its results in $OUT (default ./issue13-out),
# under a hard limit of 470 s so one 8-minute call always returns.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${WHEELS:-}" ]; then
    python -m pip install --quiet --no-deps --no-index "$WHEELS"/*.whl
fi
OUT="${OUT:-./issue13-out}"
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total --format=csv > "$OUT/gpu.txt" || true
timeout 470 python benchmarks/issue13_gpu_check.py --out "$OUT" \
    --budget-s 420 "$@"
