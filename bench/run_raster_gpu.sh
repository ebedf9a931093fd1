#!/usr/bin/env bash
# Builds the raster ops with CUDA and runs the CUDA-vs-CPU check and the raster benchmark, in one
# command on the GPU machine (CUDA 13, cmake, ninja, g++). Results go to $OUT when set.
# Usage (from the repository root): bash bench/run_raster_gpu.sh
set -u
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${BUILD_DIR:-$ROOT/build/raster-cuda}"
RESULTS="${OUT:-$BUILD/results}"
mkdir -p "$BUILD" "$RESULTS"
export PATH="$PATH:/usr/local/cuda/bin"
{
  echo "# raster GPU run $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>&1 || true
  nvcc --version | tail -n 2
} | tee "$RESULTS/raster_env.txt"
cmake -S "$ROOT/native/raster" -B "$BUILD" -G Ninja -DDYNTET_CUDA=ON -DCMAKE_BUILD_TYPE=Release > "$RESULTS/raster_build.log" 2>&1 &&
  cmake --build "$BUILD" -j "$(nproc)" >> "$RESULTS/raster_build.log" 2>&1
if [ $? -ne 0 ]; then tail -n 40 "$RESULTS/raster_build.log"; echo "build failed"; exit 1; fi
status=0
"$BUILD/dyntet_raster_tests" > "$RESULTS/raster_cpu_tests.txt" 2>&1 || status=1
"$BUILD/dyntet_render_ref_tests" >> "$RESULTS/raster_cpu_tests.txt" 2>&1 || status=1
grep -E "passed|failed" "$RESULTS/raster_cpu_tests.txt"
"$BUILD/raster_cuda_check" 2>&1 | tee "$RESULTS/raster_cuda_check.txt"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
"$BUILD/raster_bench" 2>&1 | tee "$RESULTS/raster_bench.txt"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
# Diagnosis of CPU/CUDA differences: the same check with fused multiply-add off on the GPU (the
# CPU build does not contract). Differences that vanish here are FMA rounding at near-degenerate
# triangles (a tolerance question); differences that stay are bugs.
NOFMA="${BUILD}-nofma"
if cmake -S "$ROOT/native/raster" -B "$NOFMA" -G Ninja -DDYNTET_CUDA=ON -DCMAKE_BUILD_TYPE=Release \
     -DCMAKE_CUDA_FLAGS="-fmad=false" > "$RESULTS/raster_nofma_build.log" 2>&1 &&
   cmake --build "$NOFMA" -j "$(nproc)" --target raster_cuda_check >> "$RESULTS/raster_nofma_build.log" 2>&1; then
  echo "## raster_cuda_check with -fmad=false (diagnostic; not part of the exit status)"
  "$NOFMA/raster_cuda_check" 2>&1 | tee "$RESULTS/raster_cuda_check_nofma.txt"
else
  echo "no-FMA build failed (see raster_nofma_build.log)"
fi
exit $status
