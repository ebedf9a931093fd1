#!/usr/bin/env python3
"""Runs the half-precision tensor-core MLP kernels of native/train/mlp_half.cpp on CPU threads.

The kernel text (the regions between its "half layout" and "half kernels" markers, less the
inline-PTX helpers) is compiled as C++20 with one std::thread per CUDA thread, __syncthreads() as
a block barrier, __syncwarp() as a warp barrier, _Float16 for __half, and the PTX
instructions emulated from their documented fragment layouts (mma.sync m16n8k16 and
ldmatrix .x4, plain and .trans: every lane publishes its registers or row address, the warp meets at a
barrier, each lane computes its own result; cp.async as a plain copy). Compares forward and backward
(from recomputation and from saved activations) of both forms, the fused kernels and the layered
form (through the same schedule functions the CUDA build runs), with the CPU reference on small
nets with partial tiles, padded widths and inputs, several tiles per block and several blocks,
forced chunking and tiny or large output gradients. A logic check of indexing, fragment layouts
and barrier placement; fp16 rounding makes it a tolerance check (rms 1e-2), which an indexing or
layout error exceeds by far. tests/check_cuda.cpp on a GPU remains the check of the CUDA build.
Usage: half_mlp_emulation.py [--cxx g++]   (exit status non-zero on failure)
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
#include <vector>
#include <cstdio>
#include <cstdint>
#include <cstring>
#include <cmath>
#include <memory>
#include <algorithm>
#include <string>
#include "mlp.h"
#define __device__
#define __forceinline__ inline
#define __global__
#define __restrict__
#define __launch_bounds__(...)
struct Dim { int x; };
thread_local Dim threadIdx, blockIdx;
Dim blockDim, gridDim;
thread_local unsigned char* emu_smem;
std::barrier<>* emu_bar;
std::barrier<>* emu_warp_bar[32];
#define __syncthreads() emu_bar->arrive_and_wait()
#define __syncwarp() emu_warp_bar[threadIdx.x >> 5]->arrive_and_wait()
typedef _Float16 __half;
struct __half2 { __half x, y; };
struct float2 { float x, y; };
inline float2 make_float2(float a, float b) { return {a, b}; }
struct float4 { float x, y, z, w; };
struct uint4 { uint32_t x, y, z, w; };
inline uint4 make_uint4(uint32_t a, uint32_t b, uint32_t c, uint32_t d) { return {a, b, c, d}; }
inline __half __float2half_rn(float v) { return (__half)v; }
inline float __half2float(__half v) { return (float)v; }
inline __half2 __floats2half2_rn(float a, float b) { return {(__half)a, (__half)b}; }
inline float2 __half22float2(__half2 h) { return {(float)h.x, (float)h.y}; }
namespace dyntet { namespace train {
// Per-warp exchange slots for the emulated warp instructions.
struct WarpX { uint32_t a[32][4], b[32][2]; const __half* p[32]; };
WarpX emu_x[32];
inline float h_lo(uint32_t v) { __half2 h; std::memcpy(&h, &v, 4); return (float)h.x; }
inline float h_hi(uint32_t v) { __half2 h; std::memcpy(&h, &v, 4); return (float)h.y; }
inline float h_of(uint32_t v, int i) { return i ? h_hi(v) : h_lo(v); }
inline uint32_t pack2(__half a, __half b) { __half2 h{a, b}; uint32_t v; std::memcpy(&v, &h, 4); return v; }
inline void mma16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  const int w = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  WarpX& X = emu_x[w];
  for (int i = 0; i < 4; ++i) X.a[lane][i] = a[i];
  X.b[lane][0] = b0; X.b[lane][1] = b1;
  __syncwarp();
  auto A = [&](int r, int k) { const int l = (r % 8) * 4 + (k % 8) / 2; return h_of(X.a[l][(r >= 8) + 2 * (k >= 8)], k & 1); };
  auto B = [&](int k, int c) { const int l = c * 4 + (k % 8) / 2; return h_of(X.b[l][k >= 8], k & 1); };
  for (int j = 0; j < 4; ++j) {
    const int r = g + (j >> 1) * 8, c = 2 * t + (j & 1);
    float s = d[j];
    for (int k = 0; k < 16; ++k) s += A(r, k) * B(k, c);
    d[j] = s;
  }
  __syncwarp();
}
inline void ldsm_x4(uint32_t (&r)[4], const __half* p) {
  const int w = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  WarpX& X = emu_x[w];
  X.p[lane] = p;
  __syncwarp();
  for (int j = 0; j < 4; ++j) r[j] = pack2(X.p[8 * j + g][2 * t], X.p[8 * j + g][2 * t + 1]);
  __syncwarp();
}
// cp.async as a plain copy (completion tracking is moot when the copy is synchronous).
inline void cp_async16(__half* dst, const __half* src, bool valid) {
  if (valid) std::memcpy(dst, src, 16);
  else std::memset(dst, 0, 16);
}
inline void cp_async_commit() {}
template <int N> inline void cp_async_wait() {}
inline void ldsm_x4_t(uint32_t (&r)[4], const __half* p) {
  const int w = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  WarpX& X = emu_x[w];
  X.p[lane] = p;
  __syncwarp();
  for (int j = 0; j < 4; ++j) r[j] = pack2(X.p[8 * j + 2 * t][g], X.p[8 * j + 2 * t + 1][g]);
  __syncwarp();
}
'''

EPILOGUE = r'''
template <class K, class... A>
void emu_launch(int grid, int threads, size_t smem, K k, A... args) {
  blockDim.x = threads; gridDim.x = grid;
  for (int b = 0; b < grid; ++b) {
    std::vector<unsigned char> sm(smem + 16);
    std::barrier<> bar(threads);
    emu_bar = &bar;
    std::vector<std::unique_ptr<std::barrier<>>> wb;
    for (int w = 0; w < threads / 32; ++w) { wb.emplace_back(new std::barrier<>(32)); emu_warp_bar[w] = wb.back().get(); }
    std::vector<std::thread> th;
    for (int t = 0; t < threads; ++t) th.emplace_back([&, t] { threadIdx.x = t; blockIdx.x = b; emu_smem = sm.data(); k(args...); });
    for (auto& x : th) x.join();
  }
}
// Keeps ReLU-type pre-activations away from the kink by more than fp16's error (2^-11 relative to
// the sum of |terms|, times a margin), or a flipped unit would be a legitimate difference:
// redraws the inputs of points too near one.
template <class R>
void keep_off_kinks(const MlpConfig& c, const std::vector<float>& params, std::vector<float>& x, int64_t n, R& rnd) {
  auto near_kink = [&](const float* xi) {
    if (c.hidden_act != kActReLU && c.hidden_act != kActLeakyReLU) return false;
    std::vector<float> cur(xi, xi + c.in), nxt;
    const float* q = params.data();
    for (int k = 0; k + 1 < mlp_layer_count(c); ++k) {
      const int ni = mlp_layer_in(c, k), no = mlp_layer_out(c, k);
      nxt.assign(no, 0.f);
      for (int o = 0; o < no; ++o) {
        float acc = q[(size_t)no * ni + o], mag = std::fabs(acc);
        for (int i = 0; i < ni; ++i) { acc += q[(size_t)o * ni + i] * cur[i]; mag += std::fabs(q[(size_t)o * ni + i] * cur[i]); }
        if (std::fabs(acc) <= 2e-2f * mag) return true;
        nxt[o] = activate(c.hidden_act, acc);
      }
      q += (size_t)no * (ni + 1);
      cur.swap(nxt);
    }
    return false;
  };
  for (int64_t i = 0; i < n; ++i)
    for (int tries = 0; tries < 1000 && near_kink(x.data() + i * c.in); ++tries)
      for (int k = 0; k < c.in; ++k) x[i * c.in + k] = 2.f * rnd();
}
template <int WP>
int run(MlpConfig c, int64_t n, int nw, int grid, bool saved, float gy_mul = 1.f) {
  const HalfLayout l = half_layout(c);
  if (l.wp != WP) { std::printf("bad WP\n"); return 1; }
  const size_t np = mlp_param_count(c);
  std::vector<float> params(np), x(n * c.in), gy(n * c.out);
  unsigned s = 7; auto rnd = [&] { s = s * 1664525u + 1013904223u; return (float)((s >> 8) & 0xffff) / 65536.f - 0.5f; };
  const float ws = 2.f / std::sqrt((float)std::max(c.in, c.width));
  for (auto& v : params) v = rnd() * 2.f * ws; for (auto& v : x) v = 2.f * rnd(); for (auto& v : gy) v = 2.f * rnd() * gy_mul;
  float absmax = 0.f;  // what half_absmax_kernel computes before the backward launch
  for (float v : gy) absmax = std::max(absmax, std::fabs(v));
  keep_off_kinks(c, params, x, n, rnd);
  std::vector<float> y1(n * c.out), y2(n * c.out), gp1(np, 0.f), gp2(np, 0.f), gx1(x.size()), gx2(x.size());
  MlpParams p; p.cfg = c; p.n = n; p.params = params.data(); p.x = x.data(); p.y = y1.data(); p.g_y = gy.data(); p.g_params = gp1.data(); p.g_x = gx1.data();
  mlp_forward(Backend::CPU, p); mlp_backward(Backend::CPU, p);
  std::vector<float> acts(std::max<int64_t>(1, mlp_hidden_count(c) * n));
  HalfArgs a; a.c = c; a.n = n; a.params = params.data(); a.x = x.data(); a.y = y2.data(); a.g_y = gy.data(); a.g_x = gx2.data(); a.g_absmax = &absmax;
  a.acts = saved ? reinterpret_cast<__half*>(acts.data()) : nullptr;
  emu_launch(grid, 8 * 32, half_fwd_smem(l, 8), mlp_half_forward_kernel<WP>, a, l);
  auto err = [](const std::vector<float>& a, const std::vector<float>& b) {
    double num = 0, den = 0; for (size_t i = 0; i < a.size(); ++i) { if (!std::isfinite(b[i])) return 1e30; num += (a[i] - b[i]) * (double)(a[i] - b[i]); den += (double)a[i] * a[i]; }
    return std::sqrt(num / den); };
  int fails = 0;
  // The fused backward on every config (on the GPU the Half path gives it the nets whose tile fits
  // two blocks per SM; the rest take the layered form, run_layered below).
  std::vector<float> partial((size_t)grid * l.np, 123.f);
  std::fill(gx2.begin(), gx2.end(), 777.f);
  std::fill(gp2.begin(), gp2.end(), 0.f);
  a.partial = partial.data();
  emu_launch(grid, nw * 32, half_fused_bwd_smem(l, nw), mlp_half_backward_fused_kernel<WP>, a, l);
  for (size_t w = 0; w < np; ++w) for (int b = 0; b < grid; ++b) gp2[w] += partial[(size_t)b * np + w];
  const double e1 = err(y1, y2), e2 = err(gp1, gp2), e3 = err(gx1, gx2);
  const bool ok = e1 < 1e-2 && e2 < 1e-2 && e3 < 1e-2;
  std::printf("%d-%dx%d-%d n=%lld warps=%d grid=%d fused%s g_y x%g: fwd %.2e dparams %.2e dx %.2e (rms) %s\n", c.in, c.width, c.hidden_layers, c.out,
              (long long)n, nw, grid, saved ? " saved" : "", gy_mul, e1, e2, e3, ok ? "ok" : "FAIL");
  fails += ok ? 0 : 1;
  return fails;
}
// The layered form, scheduled by the same layered_forward_chunk / layered_backward_chunk that the
// CUDA build runs, with this emulation's launcher.
struct EmuLaunch {
  template <class K, class... A>
  void operator()(const char*, K kernel, int64_t blocks, size_t smem, A... args) { emu_launch((int)blocks, 256, smem, kernel, args...); }
};
int run_layered(MlpConfig c, int64_t n, bool saved, float gy_mul = 1.f, int64_t budget = kHalfWorkspaceBudget, int slices = 2) {
  const LayeredLayout l = layered_layout(c);
  const size_t np = mlp_param_count(c);
  std::vector<float> params(np), x(n * c.in), gy(n * c.out);
  unsigned s = 11; auto rnd = [&] { s = s * 1664525u + 1013904223u; return (float)((s >> 8) & 0xffff) / 65536.f - 0.5f; };
  const float wsc = 2.f / std::sqrt((float)std::max(c.in, c.width));
  for (auto& v : params) v = rnd() * 2.f * wsc; for (auto& v : x) v = 2.f * rnd(); for (auto& v : gy) v = 2.f * rnd() * gy_mul;
  float absmax = 0.f;
  for (float v : gy) absmax = std::max(absmax, std::fabs(v));
  keep_off_kinks(c, params, x, n, rnd);
  std::vector<float> y1(n * c.out), y2(n * c.out, 555.f), gp1(np, 0.f), gp2(np, 0.f), gx1(x.size()), gx2(x.size(), 777.f);
  MlpParams p; p.cfg = c; p.n = n; p.params = params.data(); p.x = x.data(); p.y = y1.data(); p.g_y = gy.data(); p.g_params = gp1.data(); p.g_x = gx1.data();
  mlp_forward(Backend::CPU, p); mlp_backward(Backend::CPU, p);
  std::vector<__half> W(l.w_halves, (__half)99.f);
  std::vector<float> B(l.b_floats, 99.f), acts(std::max<int64_t>(1, mlp_hidden_count(c) * n), 1234.f);
  EmuLaunch launch;
  launch("prep", layered_prep_kernel, 3, 0, l, (const float*)params.data(), W.data(), B.data());
  MlpParams q = p;
  q.y = y2.data(); q.g_params = nullptr; q.g_x = gx2.data(); q.acts = saved ? acts.data() : nullptr;
  {
    const int64_t chunk = layered_chunk(l, n, saved, false, budget);
    std::vector<__half> ws(layered_space(l, chunk, saved, false).halves, (__half)4321.f);
    for (int64_t c0 = 0; c0 < n; c0 += chunk) {
      LayeredChunk ch = layered_chunk_args(q, l, c0, std::min(chunk, n - c0), chunk, ws.data(), false);
      ch.W = W.data(); ch.B = B.data();
      layered_forward_chunk(l, ch, ch.y, launch);
    }
  }
  std::vector<float> partial((size_t)slices * l.np, 0.f);
  {
    const int64_t chunk = layered_chunk(l, n, saved, true, budget);
    std::vector<__half> ws(layered_space(l, chunk, saved, true).halves, (__half)4321.f);
    for (int64_t c0 = 0; c0 < n; c0 += chunk) {
      LayeredChunk ch = layered_chunk_args(q, l, c0, std::min(chunk, n - c0), chunk, ws.data(), true);
      ch.W = W.data(); ch.B = B.data(); ch.partial = partial.data(); ch.slices = slices; ch.g_absmax = &absmax;
      layered_backward_chunk(l, ch, launch);
    }
  }
  for (size_t w = 0; w < np; ++w) for (int b = 0; b < slices; ++b) gp2[w] += partial[(size_t)b * np + w];
  auto err = [](const std::vector<float>& a, const std::vector<float>& b) {
    double num = 0, den = 0; for (size_t i = 0; i < a.size(); ++i) { if (!std::isfinite(b[i])) return 1e30; num += (a[i] - b[i]) * (double)(a[i] - b[i]); den += (double)a[i] * a[i]; }
    return std::sqrt(num / den); };
  const double e1 = err(y1, y2), e2 = err(gp1, gp2), e3 = err(gx1, gx2);
  const bool ok = e1 < 1e-2 && e2 < 1e-2 && e3 < 1e-2;
  std::printf("%d-%dx%d-%d n=%lld layered%s chunk=%lld slices=%d g_y x%g: fwd %.2e dparams %.2e dx %.2e (rms) %s\n", c.in, c.width, c.hidden_layers, c.out,
              (long long)n, saved ? " saved" : "", (long long)layered_chunk(l, n, saved, true, budget), slices, gy_mul, e1, e2, e3, ok ? "ok" : "FAIL");
  return ok ? 0 : 1;
}
}}
using namespace dyntet; using namespace dyntet::train;
int main() {
  int fails = 0;
  // The layered form: 256 wide (two column tiles, a 2 x 2-tile weight gradient), out > 16, N = 48
  // (a 64-column tile overhanging), partial row tiles, chunks forced, tiny output gradients.
  fails += run_layered(MlpConfig{39, 256, 3, 3, kActTanh, kActSigmoid}, 150, false);
  fails += run_layered(MlpConfig{39, 256, 1, 3, kActReLU, kActSigmoid}, 150, false);
  fails += run_layered(MlpConfig{39, 256, 2, 3, kActTanh, kActNone}, 150, true);
  fails += run_layered(MlpConfig{20, 40, 3, 7, kActTanh, kActSigmoid}, 77, false, 1.f, kHalfWorkspaceBudget, 3);
  fails += run_layered(MlpConfig{32, 144, 1, 20, kActLeakyReLU, kActNone}, 130, true, 1e-7f);
  fails += run_layered(MlpConfig{39, 64, 2, 4, kActTanh, kActNone}, 150, false, 1.f, 1);
  fails += run_layered(MlpConfig{55, 128, 2, 16, kActTanh, kActNone}, 200, true, 1.f, 48 * 2 * (64 + 2 * 128 + 2 * 128) + 1);
  fails += run<32>(MlpConfig{39, 32, 2, 4, kActTanh, kActNone}, 150, 2, 2, false);
  fails += run<16>(MlpConfig{32, 16, 1, 3, kActTanh, kActSigmoid}, 100, 1, 2, true);
  fails += run<32>(MlpConfig{39, 32, 2, 4, kActReLU, kActNone}, 150, 2, 2, false);
  fails += run<32>(MlpConfig{39, 32, 2, 4, kActReLU, kActNone}, 150, 2, 2, true);
  fails += run<64>(MlpConfig{20, 48, 3, 7, kActTanh, kActSigmoid}, 77, 2, 1, false);
  fails += run<16>(MlpConfig{32, 16, 1, 3, kActLeakyReLU, kActSigmoid}, 100, 1, 2, true);
  fails += run<128>(MlpConfig{55, 128, 2, 16, kActReLU, kActNone}, 40, 1, 1, false);
  // 64 wide on 39 inputs (the deformation's per-frame net): layer 0's 64 x 48 gradient splits unevenly
  // (tanh: with ReLU, two hidden layers of 64 put some points within fp16 rounding of a kink).
  fails += run<64>(MlpConfig{39, 64, 2, 4, kActTanh, kActNone}, 150, 2, 2, false);
  // Output gradients of a mean over millions of pixels (1e-7: below fp16's subnormals unscaled)
  // and large ones (1e5: above fp16's range unscaled) train as well as unit ones.
  fails += run<32>(MlpConfig{39, 32, 2, 4, kActReLU, kActNone}, 150, 2, 2, true, 1e-7f);
  fails += run<64>(MlpConfig{20, 48, 3, 7, kActTanh, kActSigmoid}, 77, 2, 1, false, 1e-7f);
  fails += run<32>(MlpConfig{39, 32, 2, 4, kActTanh, kActNone}, 150, 2, 2, false, 1e5f);
  return fails;
}
'''


def region(src, name):
    a = src.index("// ---- %s (begin" % name)
    b = src.index("// ---- %s (end)" % name)
    return src[src.index("\n", a) + 1:b]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cxx", default=os.environ.get("CXX", "g++"))
    args = ap.parse_args()
    src = open(os.path.join(TRAIN, "mlp_half.cpp")).read()
    try:
        layout = region(src, "half layout")
        kernels = region(src, "half kernels")
        mma = region(src, "half mma")
    except ValueError:
        print("half_mlp_emulation: markers not found in mlp_half.cpp; update this script", file=sys.stderr)
        return 2
    kernels = kernels.replace(mma, "").replace("extern __shared__ __align__(16) unsigned char hsm[];", "unsigned char* hsm = emu_smem;")
    with tempfile.TemporaryDirectory() as tmp:
        cpp, exe = os.path.join(tmp, "emu.cpp"), os.path.join(tmp, "emu")
        with open(cpp, "w") as f:
            f.write(PRELUDE + layout + kernels + EPILOGUE)
        r = subprocess.run([args.cxx, "-std=c++20", "-O1", "-pthread", "-I" + TRAIN, cpp,
                            os.path.join(TRAIN, "mlp.cpp"), os.path.join(TRAIN, "mlp_half.cpp"), "-o", exe])
        if r.returncode != 0:
            print("half_mlp_emulation: compiling the emulation failed", file=sys.stderr)
            return 2
        return subprocess.run([exe]).returncode


if __name__ == "__main__":
    sys.exit(main())
