#!/usr/bin/env bash
# The GPU checks as one prepared run: the CUDA tests (CUDA-graph step equals the
# eager step; members per GPU follow its memory), then model-steps/s of the naive loop, the
# Trainer and the VectorizedTrainer (K = 1, 10, 40, with and without CUDA graph, fp64/fp32).
# Needs torch, torchvision, scikit-learn and pytest only (no Ray, MLflow or Inception weights).
#
#   bash benchmarks/gpu_check.sh [OUT_FOLDER]     # ~2 min on one H200 (2026-12-04)
#
# Paste throughput.md into docs/benchmarks.md with the date and the GPU from gpu.txt.
set -euo pipefail
out=${1:-${OUT:-gpu_check}}
mkdir -p "$out"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
# a failing test does not stop the benchmark: device time is scarce, both results are wanted
tests=0
python -m pytest -m gpu -p no:cacheprovider -q -rs tests/test_vectorized.py 2>&1 \
    | tee "$out/gpu_tests.log" || tests=$?
python benchmarks/train_throughput.py --steps 200 --json "$out/throughput.json" 2>&1 \
    | tee "$out/throughput.md"
exit "$tests"
