#!/usr/bin/env python3
"""Runs the tiled CUDA MLP kernels of native/train/mlp.cpp on CPU threads, without a GPU.

The text between the "tiled kernels (begin)" and "(end)" markers of mlp.cpp (the GEMM tile kernel,
the split reduction and the host loops over layers and chunks) is compiled as C++20 with one
std::thread per CUDA thread, __syncthreads() as a std::barrier, blocks one after another. The
tensor-core variant runs on an emulation of the WMMA calls it uses (every lane of a warp holds the
whole 16x16 fragment, lane 0 stores it; inputs rounded to TF32 like __float_to_tf32). Compared
with the CPU reference: partial tiles in every dimension, several chunks, several weight-gradient
splits, an input gradient written over the input (g_x == x), missing g_params or g_x.
A logic check of indexing, tiling and barrier placement only; tests/check_cuda.cpp on a GPU
remains the check of the CUDA build.
Usage: tiled_mlp_emulation.py [--cxx g++]   (exit status non-zero on failure)
"""
import argparse
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
TRAIN = os.path.dirname(HERE)

PRELUDE = r'''
#include <algorithm>
#include <barrier>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <thread>
#include <type_traits>
#include <vector>
#include "mlp.h"
#define __device__
#define __host__
#define __forceinline__ inline
#define __global__
#define __restrict__
#define __launch_bounds__(...)
#define DT_TILED_WMMA 1
struct Dim3 { int x = 0, y = 0, z = 0; };
thread_local Dim3 threadIdx, blockIdx;
Dim3 blockDim, gridDim;
thread_local float* emu_smem;
std::barrier<>* emu_bar;
#define __syncthreads() emu_bar->arrive_and_wait()
struct float4 { float x, y, z, w; };
inline float4 make_float4(float x, float y, float z, float w) { return float4{x, y, z, w}; }
namespace dyntet { namespace train {
namespace wmma {
struct matrix_a {}; struct matrix_b {}; struct accumulator {};
struct row_major {}; struct col_major {};
namespace precision { struct tf32 {}; }
enum layout_t { mem_row_major, mem_col_major };
template <class Use, int M, int N, int K, class T, class Layout = void> struct fragment;
template <int M, int N, int K, class T, class Layout> struct fragment<matrix_a, M, N, K, T, Layout> {
  static constexpr int rows = M, cols = K, num_elements = M * K; static constexpr bool col = std::is_same_v<Layout, col_major>; float x[M * K]; };
template <int M, int N, int K, class T, class Layout> struct fragment<matrix_b, M, N, K, T, Layout> {
  static constexpr int rows = K, cols = N, num_elements = K * N; static constexpr bool col = std::is_same_v<Layout, col_major>; float x[K * N]; };
template <int M, int N, int K, class T> struct fragment<accumulator, M, N, K, T, void> {
  static constexpr int rows = M, cols = N, num_elements = M * N; float x[M * N]; };
template <class F> void fill_fragment(F& f, float v) { for (auto& e : f.x) e = v; }
template <class F> void load_matrix_sync(F& f, const float* p, unsigned ldm) {
  for (int r = 0; r < F::rows; ++r) for (int c = 0; c < F::cols; ++c) f.x[r * F::cols + c] = F::col ? p[r + c * ldm] : p[r * ldm + c]; }
template <class D, class A, class B> void mma_sync(D& d, const A& a, const B& b, const D& c) {
  float t[D::rows * D::cols];
  for (int m = 0; m < D::rows; ++m) for (int n = 0; n < D::cols; ++n) {
    float s = c.x[m * D::cols + n];
    for (int k = 0; k < A::cols; ++k) s += a.x[m * A::cols + k] * b.x[k * B::cols + n];
    t[m * D::cols + n] = s; }
  std::memcpy(d.x, t, sizeof t); }
template <class F> void store_matrix_sync(float* p, const F& f, unsigned ldm, layout_t) {
  if (threadIdx.x % 32) return;  // the fragment is the warp's: one lane writes it
  for (int r = 0; r < F::rows; ++r) for (int c = 0; c < F::cols; ++c) p[r * ldm + c] = f.x[r * F::cols + c]; }
inline float __float_to_tf32(float v) {
  uint32_t u; std::memcpy(&u, &v, 4);
  if ((u & 0x7f800000u) != 0x7f800000u) { u += 0x1000u; u &= 0xffffe000u; }
  std::memcpy(&v, &u, 4); return v; }
}  // namespace wmma
'''

EPILOGUE = r'''
// TTHREADS persistent threads run each block (creating threads per block is slow).
struct EmuLauncher {
  int launches = 0;
  std::function<void()> job;
  std::barrier<> start{TTHREADS + 1}, done{TTHREADS + 1};
  bool quit = false;
  std::vector<std::thread> pool;
  EmuLauncher() {
    for (int i = 0; i < TTHREADS; ++i) pool.emplace_back([this, i] {
      threadIdx.x = i;
      for (;;) { start.arrive_and_wait(); if (quit) return; job(); done.arrive_and_wait(); } });
  }
  ~EmuLauncher() { quit = true; start.arrive_and_wait(); for (auto& t : pool) t.join(); }
  void tile(bool tc, int64_t gx, int64_t gy, int gz, const TileArgs& t) {
    ++launches;
    blockDim.x = TTHREADS; gridDim.x = (int)gx; gridDim.y = (int)gy; gridDim.z = gz;
    std::vector<float> sm(kTileSmemFloatsTc);
    std::barrier<> bar(TTHREADS);
    emu_bar = &bar;
    for (int z = 0; z < gz; ++z) for (int y = 0; y < gy; ++y) for (int x = 0; x < gx; ++x) {
      std::fill(sm.begin(), sm.end(), std::nanf(""));  // garbage-filled: reads before writes show
      job = [&, x, y, z] { blockIdx.x = x; blockIdx.y = y; blockIdx.z = z; emu_smem = sm.data();
                           if (tc) mlp_tile_kernel<true>(t); else mlp_tile_kernel<false>(t); };
      start.arrive_and_wait();
      done.arrive_and_wait();
    }
  }
  void small(const SmallArgs& s) {
    ++launches;
    const int gx = (int)std::min<int64_t>((s.n + TBM - 1) / TBM, 2);  // persistent blocks walk several tiles
    blockDim.x = TTHREADS; gridDim.x = gx; gridDim.y = gridDim.z = 1;
    std::vector<float> sm(small_smem_floats(s.c));
    std::barrier<> bar(TTHREADS);
    emu_bar = &bar;
    for (int x = 0; x < gx; ++x) {
      std::fill(sm.begin(), sm.end(), std::nanf(""));
      job = [&, x] { blockIdx.x = x; blockIdx.y = blockIdx.z = 0; emu_smem = sm.data(); mlp_small_forward_kernel(s); };
      start.arrive_and_wait();
      done.arrive_and_wait();
    }
  }
  void small_backward(SmallArgs s, float* g_params) {
    ++launches;
    const int gx = (int)std::min<int64_t>((s.n + TBM - 1) / TBM, 2);
    const int64_t np = (int64_t)mlp_param_count(s.c);
    std::vector<float> part(gx * np, 0.f);
    if (g_params) s.partial = part.data();
    blockDim.x = TTHREADS; gridDim.x = gx; gridDim.y = gridDim.z = 1;
    std::vector<float> sm(small_bwd_smem_floats(s.c));
    std::barrier<> bar(TTHREADS);
    emu_bar = &bar;
    for (int x = 0; x < gx; ++x) {
      std::fill(sm.begin(), sm.end(), std::nanf(""));
      job = [&, x] { blockIdx.x = x; blockIdx.y = blockIdx.z = 0; emu_smem = sm.data(); mlp_small_backward_kernel(s); };
      start.arrive_and_wait();
      done.arrive_and_wait();
    }
    if (g_params)
      for (int64_t w = 0; w < np; ++w) { float t = 0.f; for (int z = 0; z < gx; ++z) t += part[z * np + w]; g_params[w] += t; }
  }
  void zero(float* p, size_t n) { std::fill(p, p + n, 0.f); }
  void outgrad(int64_t count, const float* y, const float* gy, int act, float* G) {
    for (int64_t i = 0; i < count; ++i) G[i] = gy[i] * act_grad_from_output(act, y[i]);
  }
  void reduce(const float* P, int S, int64_t np, float* g) {
    blockDim.x = 256;
    for (int64_t b = 0; b < (np + 255) / 256; ++b) for (int i = 0; i < 256; ++i) {
      blockIdx.x = (int)b; threadIdx.x = i; mlp_partial_reduce_kernel(P, S, np, g); }
  }
};
}}
using namespace dyntet; using namespace dyntet::train;

// fp32: normwise max error (as check_cuda); TF32: normwise rms error (a rare ReLU decision flipped
// by TF32 rounding moves single entries, not the rms).
double err(const std::vector<float>& ref, const std::vector<float>& got, bool rms) {
  double m = 0, d = 0, s = 0, q = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    if (!std::isfinite(got[i])) return INFINITY;
    const double e = std::fabs((double)got[i] - ref[i]);
    m = std::max(m, e); d = std::max(d, (double)std::fabs(ref[i])); s += e * e; q += (double)ref[i] * ref[i];
  }
  return rms ? (q > 0 ? std::sqrt(s / q) : std::sqrt(s)) : (d > 0 ? m / d : m);
}

// True when a hidden ReLU/LeakyReLU pre-activation of x is within `margin` (relative to the sum of
// |terms|) of the kink: TF32 rounding may flip the decision there (check_cuda.cpp does the same).
bool near_kink(const MlpConfig& c, const float* params, const float* x, float margin) {
  if (c.hidden_act != kActReLU && c.hidden_act != kActLeakyReLU) return false;
  std::vector<float> cur(x, x + c.in), nxt;
  const float* p = params;
  for (int k = 0; k + 1 < mlp_layer_count(c); ++k) {
    const int n_in = mlp_layer_in(c, k), n_out = mlp_layer_out(c, k);
    nxt.assign(n_out, 0.f);
    for (int o = 0; o < n_out; ++o) {
      float acc = p[(size_t)n_out * n_in + o], mag = std::fabs(acc);
      for (int i = 0; i < n_in; ++i) { acc += p[(size_t)o * n_in + i] * cur[i]; mag += std::fabs(p[(size_t)o * n_in + i] * cur[i]); }
      if (std::fabs(acc) <= margin * mag) return true;
      nxt[o] = activate(c.hidden_act, acc);
    }
    p += (size_t)n_out * (n_in + 1);
    cur.swap(nxt);
  }
  return false;
}

int main() {
  // grads: 3 both, 1 params only, 2 g_x only (aliasing x); saved: forward stores acts, backward uses them
  struct Case { MlpConfig c; int64_t n, chunk; int S; int grads; bool saved = false; };
  const Case cases[] = {
    {MlpConfig{7, 16, 2, 3, kActReLU, kActSigmoid}, 77, 77, 1, 3},
    {MlpConfig{5, 70, 2, 4, kActLeakyReLU, kActNone}, 300, 128, 3, 3},
    {MlpConfig{5, 70, 2, 4, kActLeakyReLU, kActNone}, 300, 128, 3, 2},
    {MlpConfig{9, 0, 0, 5, kActTanh, kActNone}, 200, 256, 2, 1},
    {MlpConfig{20, 133, 1, 2, kActTanh, kActTanh}, 150, 150, 4, 3},
    {MlpConfig{17, 40, 3, 1, kActSigmoid, kActNone}, 260, 128, 5, 3},
    {MlpConfig{17, 40, 3, 2, kActReLU, kActSigmoid}, 260, 128, 5, 3, true},
    {MlpConfig{5, 70, 2, 4, kActLeakyReLU, kActNone}, 300, 128, 3, 2, true},
    // Small networks (every layer <= 64): fp32 forward and backward each run in one launch.
    {MlpConfig{55, 64, 2, 4, kActReLU, kActNone}, 300, 300, 2, 3, true},
    {MlpConfig{48, 64, 2, 3, kActReLU, kActSigmoid}, 131, 131, 1, 3, true},
    {MlpConfig{6, 8, 2, 3, kActLeakyReLU, kActTanh}, 300, 300, 1, 3, true},
    {MlpConfig{64, 24, 1, 64, kActTanh, kActNone}, 257, 257, 2, 3},
    {MlpConfig{55, 64, 2, 4, kActReLU, kActNone}, 300, 300, 1, 2},
    {MlpConfig{48, 64, 2, 3, kActReLU, kActSigmoid}, 200, 200, 1, 1, true},
  };
  int fails = 0;
  for (const Case& k : cases)
  for (int tc = 0; tc < 2; ++tc) {
    const MlpConfig c = k.c;
    const int64_t n = k.n, np = (int64_t)mlp_param_count(c);
    std::vector<float> params(np), x(n * c.in), gy(n * c.out);
    unsigned s = 7; auto rnd = [&] { s = s * 1664525u + 1013904223u; return (float)((s >> 8) & 0xffff) / 65536.f - 0.5f; };
    for (auto& v : params) v = rnd(); for (auto& v : x) v = 2 * rnd(); for (auto& v : gy) v = rnd();
    for (int64_t i = 0; i < n; ++i)
      while (near_kink(c, params.data(), x.data() + i * c.in, tc ? 1e-2f : 1e-4f))
        for (int a = 0; a < c.in; ++a) x[i * c.in + a] = 2 * rnd();
    std::vector<float> y1(n * c.out), y2(n * c.out, NAN), gp1(np, 0.f), gp2(np, 0.f), gx1(x.size()), gx2(x.size(), NAN);
    MlpParams p; p.cfg = c; p.n = n; p.params = params.data(); p.x = x.data(); p.y = y1.data(); p.g_y = gy.data();
    p.g_params = (k.grads & 1) ? gp1.data() : nullptr; p.g_x = (k.grads & 2) ? gx1.data() : nullptr;
    mlp_forward(Backend::CPU, p); mlp_backward(Backend::CPU, p);
    // Tiled run; g_params starts from a non-zero value (the op adds), g_x overwrites a copy of x when grads == 2.
    for (auto& v : gp2) v = 0.25f;
    for (auto& v : gp1) v += (k.grads & 1) ? 0.25f : 0.f;
    std::vector<float> xa = x;
    MlpParams q = p; q.y = y2.data(); q.x = xa.data();
    q.g_params = (k.grads & 1) ? gp2.data() : nullptr;
    q.g_x = k.grads == 2 ? xa.data() : ((k.grads & 2) ? gx2.data() : nullptr);
    const int64_t maxh = tiled_floats_per_point(c, false), maxb = tiled_floats_per_point(c, true);
    std::vector<float> wsf(std::max<int64_t>(1, maxh * k.chunk), NAN), wsb(maxb * k.chunk, NAN), part(k.S * np, NAN);
    std::vector<float> acts(std::max<int64_t>(1, mlp_hidden_count(c) * n), NAN);
    if (k.saved) q.acts = acts.data();
    EmuLauncher run;
    tiled_forward_run(q, tc, wsf.data(), k.chunk, run);
    tiled_backward_run(q, tc, wsb.data(), part.data(), k.chunk, k.S, run);
    const std::vector<float>& gxt = k.grads == 2 ? xa : gx2;
    const double e1 = err(y1, y2, tc), e2 = (k.grads & 1) ? err(gp1, gp2, tc) : 0, e3 = (k.grads & 2) ? err(gx1, gxt, tc) : 0;
    const double tf = tc ? 1e-2 : 1e-5, tg = tc ? 1e-2 : 1e-4;
    const bool ok = e1 <= tf && e2 <= tg && e3 <= tg;
    fails += !ok;
    std::printf("%s%s %d-%dx%d-%d n=%lld chunk=%lld S=%d grads=%d: fwd %.2e dparams %.2e dx %.2e (%d launches) %s\n", tc ? "tf32" : "fp32", k.saved ? " saved acts" : "",
                c.in, c.width, c.hidden_layers, c.out, (long long)n, (long long)k.chunk, k.S, k.grads, e1, e2, e3, run.launches, ok ? "ok" : "FAIL");
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
        a = src.index("// ---- tiled kernels (begin")
        b = src.index("// ---- tiled kernels (end)")
    except ValueError:
        print("tiled_mlp_emulation: kernel markers not found in mlp.cpp; update this script", file=sys.stderr)
        return 2
    kernels = src[a:b].replace("extern __shared__ __align__(128) float tsm[];", "float* tsm = emu_smem;")
    if "float* tsm = emu_smem;" not in kernels:
        print("tiled_mlp_emulation: shared-memory declaration not found; update this script", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        cpp, exe = os.path.join(tmp, "emu.cpp"), os.path.join(tmp, "emu")
        with open(cpp, "w") as f:
            f.write(PRELUDE + kernels + EPILOGUE)
        r = subprocess.run([args.cxx, "-std=c++20", "-O1", "-pthread", "-ffp-contract=off", "-I" + TRAIN, cpp,
                            os.path.join(TRAIN, "mlp.cpp"), "-o", exe])
        if r.returncode != 0:
            print("tiled_mlp_emulation: compiling the emulation failed", file=sys.stderr)
            return 2
        return subprocess.run([exe]).returncode


if __name__ == "__main__":
    sys.exit(main())
