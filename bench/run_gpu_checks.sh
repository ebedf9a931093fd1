#!/usr/bin/env bash
# One command on the GPU machine: build native/train with CUDA, run the CPU finite-difference
# tests, the CUDA-vs-CPU check (every op; the MLPs on the tiled fp32, fused and opt-in TF32 paths)
# and the benchmarks, then time the same shapes in PyTorch and print ours vs PyTorch with ratios.
# Results go to $OUT (or the build folder's out/). Exit status: non-zero when a test or the CUDA
# check fails. Needs cmake, ninja, nvcc, a C++17 compiler; python3 with torch for the reference
# (optional). Each step has a time limit so the whole run stays within ~6 minutes.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${DYNTET_TRAIN_BUILD:-$ROOT/native/build/train-cuda}"
OUTDIR="${OUT:-$BUILD/out}"
mkdir -p "$OUTDIR"
cd "$ROOT"
t0=$(date +%s)
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader 2>&1 | tee "$OUTDIR/gpu.txt"

cmake -S native/train -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DDYNTET_CUDA=ON \
  -DCMAKE_CUDA_ARCHITECTURES="${CUDA_ARCH:-90-real;90-virtual}" > "$OUTDIR/cmake.log" 2>&1 || { tail -30 "$OUTDIR/cmake.log"; exit 3; }
ninja -C "$BUILD" -j"$(nproc)" dyntet_train_tests dyntet_check_cuda dyntet_train_bench > "$OUTDIR/build.log" 2>&1 || { tail -40 "$OUTDIR/build.log"; exit 3; }
echo "== built in $(( $(date +%s) - t0 )) s"

status=0
echo "== CPU finite-difference tests"
timeout 60 "$BUILD/dyntet_train_tests" > "$OUTDIR/train_ops_tests.txt" 2>&1 || status=1
tail -1 "$OUTDIR/train_ops_tests.txt"
echo "== CUDA vs CPU"
timeout 200 "$BUILD/dyntet_check_cuda" 2>&1 | tee "$OUTDIR/check_cuda.txt"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
echo "== benchmarks ($(( $(date +%s) - t0 )) s so far)"
timeout 150 "$BUILD/dyntet_train_bench" --json "$OUTDIR/train_ops_bench.json" 2>&1 | tee "$OUTDIR/train_ops_bench.txt"
if command -v python3 > /dev/null && python3 -c "import torch" 2> /dev/null; then
  echo "== PyTorch reference ($(( $(date +%s) - t0 )) s so far)"
  ours=()
  [ -s "$OUTDIR/train_ops_bench.json" ] && ours=(--ours "$OUTDIR/train_ops_bench.json")
  timeout 120 python3 bench/torch_reference.py "${ours[@]}" --json "$OUTDIR/torch_reference.json" 2>&1 | tee "$OUTDIR/torch_reference.txt"
else
  echo "PyTorch not found: skipping the reference timings"
fi
echo "== done in $(( $(date +%s) - t0 )) s, status $status"
exit $status
