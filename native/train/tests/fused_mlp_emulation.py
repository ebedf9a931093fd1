#!/usr/bin/env python3
"""Runs the fused CUDA MLP kernels of native/train/mlp.cpp on CPU threads, without a GPU.

The kernel text is taken from mlp.cpp as is and compiled as C++20 with one std::thread per CUDA
thread, __syncthreads() as a std::barrier and atomicAdd as std::atomic_ref; blocks run one after
another. It checks the kernels' indexing, tiling (partial last tile, several tiles per block) and
barrier placement against the CPU reference on small nets, for every backward plan (weight
gradients on chip or per tile, weights in shared or global memory). It is a logic check only:
tests/check_cuda.cpp on a real GPU remains the check of the CUDA build.
Then runs tiled_mlp_emulation.py (the same kind of check for the tiled kernels).
Usage: fused_mlp_emulation.py [--cxx g++]   (exit status non-zero on failure)
"""
import argparse
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
TRAIN = os.path.dirname(HERE)

PRELUDE = r'''
#include <barrier>
#include <thread>
#include <atomic>
#include <vector>
#include <cstdio>
#include <cmath>
#include <functional>
#include "mlp.h"
#define __device__
#define __forceinline__ inline
#define __global__
#define __restrict__
struct Dim { int x; };
thread_local Dim threadIdx, blockIdx;
Dim blockDim, gridDim;
thread_local float* emu_smem;
std::barrier<>* emu_bar;
#define __syncthreads() emu_bar->arrive_and_wait()
inline float atomicAdd(float* p, float v) { return std::atomic_ref<float>(*p).fetch_add(v); }
namespace dyntet { namespace train {
'''

EPILOGUE = r'''template <class K, class... Args>
void emu_launch(int grid, int P, size_t smem_floats, K k, Args... args) {
  blockDim.x = P; gridDim.x = grid;
  for (int b = 0; b < grid; ++b) {
    std::vector<float> sm(smem_floats);
    std::barrier<> bar(P);
    emu_bar = &bar;
    std::vector<std::thread> th;
    for (int t = 0; t < P; ++t) th.emplace_back([&, t] { threadIdx.x = t; blockIdx.x = b; emu_smem = sm.data(); k(args...); });
    for (auto& x : th) x.join();
  }
}
}}
using namespace dyntet; using namespace dyntet::train;
int main() {
  int fails = 0;
  for (MlpConfig c : {MlpConfig{7, 16, 2, 3, kActReLU, kActSigmoid}, MlpConfig{5, 12, 3, 4, kActLeakyReLU, kActNone}, MlpConfig{9, 0, 0, 5, kActTanh, kActNone}, MlpConfig{6, 20, 1, 2, kActTanh, kActTanh}})
  for (int acc = 0; acc < 2; ++acc) for (int wsm = 0; wsm < 2; ++wsm) {
    const int64_t n = 77; const int P = 16, grid = 2;
    const size_t np = mlp_param_count(c);
    std::vector<float> params(np), x(n * c.in), gy(n * c.out);
    unsigned s = 1; auto rnd = [&] { s = s * 1664525u + 1013904223u; return (float)((s >> 8) & 0xffff) / 65536.f - 0.5f; };
    for (auto& v : params) v = rnd(); for (auto& v : x) v = rnd(); for (auto& v : gy) v = rnd();
    std::vector<float> y1(n * c.out), y2(n * c.out), gp1(np, 0.f), gp2(np, 0.f), gx1(x.size()), gx2(x.size());
    MlpParams p; p.cfg = c; p.n = n; p.params = params.data(); p.x = x.data(); p.y = y1.data(); p.g_y = gy.data(); p.g_params = gp1.data(); p.g_x = gx1.data();
    mlp_forward(Backend::CPU, p); mlp_backward(Backend::CPU, p);
    int maxw = std::max(c.in, c.out); if (c.hidden_layers) maxw = std::max(maxw, c.width);
    emu_launch(grid, P, np + 2 * maxw * (P + 1), mlp_fused_forward_kernel, c, n, (const float*)params.data(), (const float*)x.data(), y2.data(), (int)np);
    size_t rows = c.out; for (int k = 0; k < mlp_layer_count(c); ++k) rows += mlp_layer_in(c, k);
    emu_launch(grid, P, (acc + wsm) * np + rows * (P + 1), mlp_fused_backward_kernel, c, n, (const float*)params.data(), (const float*)x.data(), (const float*)gy.data(), gp2.data(), gx2.data(), (int)np, acc, wsm);
    auto err = [](const std::vector<float>& a, const std::vector<float>& b) { double m = 0, d = 0; for (size_t i = 0; i < a.size(); ++i) { m = std::max(m, (double)std::fabs(a[i] - b[i])); d = std::max(d, (double)std::fabs(a[i])); } return m / d; };
    const double e1 = err(y1, y2), e2 = err(gp1, gp2), e3 = err(gx1, gx2);
    const bool ok = e1 < 1e-5 && e2 < 1e-4 && e3 < 1e-4;
    fails += !ok;
    std::printf("%d-%dx%d-%d acc=%d wsm=%d: fwd %.2e dparams %.2e dx %.2e %s\n", c.in, c.width, c.hidden_layers, c.out, acc, wsm, e1, e2, e3, ok ? "ok" : "FAIL");
  }
  return fails;
}
'''


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cxx", default=os.environ.get("CXX", "g++"))
    args = ap.parse_args()
    src = open(os.path.join(TRAIN, "mlp.cpp")).read()
    try:
        a = src.index("__device__ __forceinline__ int layer_max_width")
        b = src.index("struct FusedPlan")
    except ValueError:
        print("fused_mlp_emulation: kernel markers not found in mlp.cpp; update this script", file=sys.stderr)
        return 2
    kernels = src[a:b].replace("extern __shared__ float sm[];", "float* sm = emu_smem;")
    with tempfile.TemporaryDirectory() as tmp:
        cpp, exe = os.path.join(tmp, "emu.cpp"), os.path.join(tmp, "emu")
        with open(cpp, "w") as f:
            f.write(PRELUDE + kernels + EPILOGUE)
        r = subprocess.run([args.cxx, "-std=c++20", "-O1", "-pthread", "-I" + TRAIN, cpp, os.path.join(TRAIN, "mlp.cpp"), "-o", exe])
        if r.returncode != 0:
            print("fused_mlp_emulation: compiling the emulation failed", file=sys.stderr)
            return 2
        rc = subprocess.run([exe]).returncode
    # The tiled kernels' emulation runs as part of the same test.
    rc2 = subprocess.run([sys.executable, os.path.join(HERE, "tiled_mlp_emulation.py"), "--cxx", args.cxx]).returncode
    return rc or rc2


if __name__ == "__main__":
    sys.exit(main())
