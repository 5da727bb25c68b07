#!/usr/bin/env bash
# GPU readiness check (issue 25), under 8 minutes on one H100-class GPU (the three
# timeouts sum to 480 s):
#   1. the CUDA-marked tests (tests/test_cuda.py: device generator, statistics on the device,
#      no host synchronisation inside the sampling loop, autocast/compile, certify_dataset);
#   2. bench_scale.py on ResNet-50 and ViT-B/16 (eager float32, measured at n = 2048, images per
#      hour at n = 1024 and 8192; bf16/fp16 autocast, channels_last, inference_mode);
#   3. torch.compile of forward + backward (hand-written gradient and SparseSmoothGrad+cert).
# Writes everything under $OUT (default /tmp/gpu_check). Run from anywhere:
#   bash benchmarks/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
OUT="${OUT:-/tmp/gpu_check}"
mkdir -p "$OUT"
started=$(date +%s)

python - <<'PY' | tee "$OUT/device.txt"
import torch
assert torch.cuda.is_available(), "no CUDA device: this script needs a GPU"
print("torch", torch.__version__, "CUDA", torch.version.cuda, "GPU", torch.cuda.get_device_name())
PY
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >> "$OUT/device.txt" || true

echo "== CUDA-marked tests"
timeout 100 python -m pytest -m cuda tests/test_cuda.py -q -p no:cacheprovider -n 0 -rs \
    2>&1 | tee "$OUT/tests.txt" || echo "CUDA tests FAILED or timed out (see $OUT/tests.txt)"

echo "== bench_scale: eager float32 table and fast-path options"
timeout 230 python benchmarks/bench_scale.py --device cuda --n 2048 --ig-n 128 --chunk 256 \
    --option-n 512 --options bf16 fp16 channels_last inference_mode \
    --json "$OUT/scale.json" 2>"$OUT/scale.log" | tee "$OUT/scale.txt" \
    || echo "bench_scale did not finish in its 230 s (see $OUT/scale.log)"

echo "== bench_scale: torch.compile (first call compiles forward and backward)"
timeout 150 python benchmarks/bench_scale.py --device cuda --n 256 --chunk 256 \
    --option-n 512 --methods grad --options compile \
    --json "$OUT/compile.json" 2>"$OUT/compile.log" | tee "$OUT/compile.txt" \
    || echo "compile run did not finish in its 150 s (see $OUT/compile.log)"

echo "gpu_check.sh: done in $(( $(date +%s) - started )) s; results in $OUT"
