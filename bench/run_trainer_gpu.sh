#!/usr/bin/env bash
# Builds the trainer with CUDA and runs the CPU/CUDA check and the training-step benchmark in one
# command (GPU machine: CUDA 13, cmake, ninja, g++; no Node needed). Results go to $OUT if set.
#   bash bench/run_trainer_gpu.sh [check_steps] [bench_steps]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${DYNTET_CUDA_BUILD:-$root/native/build/trainer-cuda}"
out="${OUT:-$root/native/build}"
mkdir -p "$out"
cmake -S "$root/native/trainer" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DDYNTET_CUDA=ON \
  -DCMAKE_CUDA_ARCHITECTURES="90-real;90-virtual" > "$out/trainer_gpu_configure.log"
ninja -C "$build" -j"$(nproc)" check_trainer_cuda test_trainer > "$out/trainer_gpu_build.log"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$out/trainer_gpu.txt" || true
"$build/check_trainer_cuda" "${1:-20}" "${2:-30}" | tee -a "$out/trainer_gpu.txt"
