#!/usr/bin/env bash
# Builds the trainer with CUDA and runs, in one unattended command (GPU machine: CUDA 13, cmake,
# ninja, g++; no Node needed), the CPU trainer tests (determinism, checkpoints, gradient checks,
# marching equal to the core's, mesh orientation) and the CPU/CUDA check plus the training-step
# benchmark. Results go to $OUT if set.
#   bash bench/run_trainer_gpu.sh [check_steps] [bench_steps]
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${DYNTET_CUDA_BUILD:-$root/native/build/trainer-cuda}"
out="${OUT:-$root/native/build}"
mkdir -p "$out"
if ! cmake -S "$root/native/trainer" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DDYNTET_CUDA=ON \
  -DCMAKE_CUDA_ARCHITECTURES="90-real;90-virtual" > "$out/trainer_gpu_configure.log" 2>&1 ||
  ! ninja -C "$build" -j"$(nproc)" check_trainer_cuda test_trainer > "$out/trainer_gpu_build.log" 2>&1; then
  tail -n 40 "$out/trainer_gpu_configure.log" "$out/trainer_gpu_build.log"
  echo "build failed"
  exit 1
fi
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$out/trainer_gpu.txt" || true
"$build/test_trainer" > "$out/trainer_cpu_tests.txt" 2>&1 && tests="pass" || tests="FAIL"
grep -E "^marching|^mesh|^sphere|FAIL|passed|failed" "$out/trainer_cpu_tests.txt"
"$build/check_trainer_cuda" "${1:-20}" "${2:-30}" | tee -a "$out/trainer_gpu.txt"
check=$?
printf '\n| step | result |\n|---|---|\n| CPU trainer tests | %s |\n| CPU/CUDA check and benchmark | %s |\n' \
  "$tests" "$([ "$check" -eq 0 ] && echo ran || echo "FAIL (exit $check)")" | tee -a "$out/trainer_gpu.txt"
[ "$tests" = pass ] && [ "$check" -eq 0 ]
