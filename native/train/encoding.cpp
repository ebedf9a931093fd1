#include "encoding.h"

#include <algorithm>

namespace dyntet {
namespace train {

HashGrid make_hashgrid(const HashGridConfig& cfg) {
  const char* op = "hashgrid";
  op_require(cfg.levels >= 1 && cfg.levels <= kMaxHashLevels, op, "levels must be 1.." + std::to_string(kMaxHashLevels) + ", got " + std::to_string(cfg.levels));
  op_require(cfg.features >= 1 && cfg.levels * cfg.features <= kMaxWidth, op, "levels * features must be 1.." + std::to_string(kMaxWidth) + " (model.h's kMaxWidth)");
  op_require(cfg.log2_table >= 4 && cfg.log2_table <= 24, op, "log2_table must be 4..24, got " + std::to_string(cfg.log2_table));
  op_require(cfg.base_res >= 1 && cfg.finest_res >= cfg.base_res, op, "need 1 <= base_res <= finest_res");
  HashGrid g{};
  g.cfg = cfg;
  hashgrid_levels(cfg, g.levels);
  return g;
}

#if defined(__CUDACC__)
namespace {
// CUDA kernels of the hash grid for 1, 2 or 4 features per entry. Level-major: at any time the
// GPU works on one or two levels, so the level's table (and its gradient, 4 MB each at 2^19 x 2)
// stays in L2 instead of every thread walking all 16 levels (64 MB) at once.
constexpr int kHashThreads = 256;
constexpr int kHashBlocksPerSm = 4;
constexpr int kHashMaxPerBlock = 2048;  // points per backward block: 24 KB of d/du sums

template <int F>
__device__ __forceinline__ void hash_load(const float* __restrict__ p, float (&e)[F]) {
  if constexpr (F == 2) {
    const float2 t = __ldg(reinterpret_cast<const float2*>(p));
    e[0] = t.x; e[1] = t.y;
  } else if constexpr (F == 4) {
    const float4 t = __ldg(reinterpret_cast<const float4*>(p));
    e[0] = t.x; e[1] = t.y; e[2] = t.z; e[3] = t.w;
  } else {
#pragma unroll
    for (int f = 0; f < F; ++f) e[f] = __ldg(p + f);
  }
}

template <int F>
__device__ __forceinline__ void hash_store(float* p, const float (&e)[F]) {
  if constexpr (F == 2) {
    *reinterpret_cast<float2*>(p) = make_float2(e[0], e[1]);
  } else if constexpr (F == 4) {
    *reinterpret_cast<float4*>(p) = make_float4(e[0], e[1], e[2], e[3]);
  } else {
#pragma unroll
    for (int f = 0; f < F; ++f) p[f] = e[f];
  }
}

// The saved Jacobian is written once and read once: streaming (evict-first) accesses, so that it
// does not push the level's table and table gradient out of L2.
template <int F>
__device__ __forceinline__ void jac_store(float* p, const float (&e)[F]) {
  if constexpr (F == 2) {
    __stcs(reinterpret_cast<float2*>(p), make_float2(e[0], e[1]));
  } else if constexpr (F == 4) {
    __stcs(reinterpret_cast<float4*>(p), make_float4(e[0], e[1], e[2], e[3]));
  } else {
#pragma unroll
    for (int f = 0; f < F; ++f) __stcs(p + f, e[f]);
  }
}

template <int F>
__device__ __forceinline__ void jac_load(const float* p, float (&e)[F]) {
  if constexpr (F == 2) {
    const float2 t = __ldcs(reinterpret_cast<const float2*>(p));
    e[0] = t.x; e[1] = t.y;
  } else if constexpr (F == 4) {
    const float4 t = __ldcs(reinterpret_cast<const float4*>(p));
    e[0] = t.x; e[1] = t.y; e[2] = t.z; e[3] = t.w;
  } else {
#pragma unroll
    for (int f = 0; f < F; ++f) e[f] = __ldcs(p + f);
  }
}

template <int F>
__device__ __forceinline__ void hash_corners(const HashLevel& lv, uint32_t mask, const HashCell& cell, uint32_t (&idx)[8]) {
#pragma unroll
  for (int c = 0; c < 8; ++c)
    idx[c] = hashgrid_index(lv, mask, cell.i0[0] + (c & 1), cell.i0[1] + ((c >> 1) & 1), cell.i0[2] + ((c >> 2) & 1));
}

// One thread per (point, level), blockIdx.y = level; the 8 corner loads are issued together.
// Same arithmetic as hashgrid_encode_level. kJac: also the level's Jacobian from the same loads.
template <int F, bool kJac>
__global__ void __launch_bounds__(kHashThreads) hashgrid_forward_kernel(HashGrid g, int64_t n, int64_t stride,
                                                                         const float* __restrict__ u,
                                                                         const float* __restrict__ table, float* __restrict__ out,
                                                                         float* __restrict__ jac) {
  const int64_t i = (int64_t)blockIdx.x * kHashThreads + threadIdx.x;
  if (i >= n) return;
  const int l = blockIdx.y;
  const HashLevel lv = g.levels[l];
  const uint32_t T = 1u << g.cfg.log2_table;
  const float p[3] = {u[3 * i], u[3 * i + 1], u[3 * i + 2]};
  const HashCell cell = hashgrid_cell(lv, p);
  uint32_t idx[8];
  hash_corners<F>(lv, T - 1, cell, idx);
  const float* tl = table + (size_t)l * T * F;
  float e[8][F];
#pragma unroll
  for (int c = 0; c < 8; ++c) hash_load<F>(tl + (size_t)idx[c] * F, e[c]);
  float acc[F];
#pragma unroll
  for (int f = 0; f < F; ++f) acc[f] = 0.f;
#pragma unroll
  for (int c = 0; c < 8; ++c) {
    const float w = hashgrid_corner_weight(cell, c);
#pragma unroll
    for (int f = 0; f < F; ++f) acc[f] += w * e[c][f];
  }
  hash_store<F>(out + i * stride + l * F, acc);
  if constexpr (kJac) {
    float j[3][F];
#pragma unroll
    for (int f = 0; f < F; ++f) {
      float v[8], d[3];
#pragma unroll
      for (int c = 0; c < 8; ++c) v[c] = e[c][f];
      hashgrid_level_jacobian(lv, cell, p, v, d);
#pragma unroll
      for (int a = 0; a < 3; ++a) j[a][f] = d[a];
    }
#pragma unroll
    for (int a = 0; a < 3; ++a) jac_store<F>(jac + (((size_t)l * 3 + a) * n + i) * F, j[a]);
  }
}

// Persistent blocks, each owning a range of points and walking the levels in order over it, so
// that all resident blocks work on about the same level (L2 locality for the table-gradient
// atomics). d/du is summed per point in shared memory by the one thread that owns the point, in
// the CPU loop's order (levels, then corners): deterministic, no atomics on g_u. kJac: d/du from
// the forward's saved Jacobian (coalesced reads) instead of the 8 table gathers per point and level.
template <int F, bool kJac>
__global__ void __launch_bounds__(kHashThreads, kHashBlocksPerSm)
    hashgrid_backward_kernel(HashGrid g, int64_t n, int64_t stride, int per_block, const float* __restrict__ u,
                             const float* __restrict__ table,
                             const float* __restrict__ jac, const float* __restrict__ g_out, float* __restrict__ g_table,
                             float* __restrict__ g_u) {
  extern __shared__ float gu_s[];  // per_block x 3 when g_u is set
  const int64_t b0 = (int64_t)blockIdx.x * per_block;
  const int cnt = (int)(n - b0 < per_block ? n - b0 : per_block);
  const uint32_t T = 1u << g.cfg.log2_table;
  if (g_u)
    for (int q = threadIdx.x; q < cnt; q += kHashThreads) gu_s[3 * q] = gu_s[3 * q + 1] = gu_s[3 * q + 2] = 0.f;
  for (int l = 0; l < g.cfg.levels; ++l) {
    const HashLevel lv = g.levels[l];
    const float* tl = table + (size_t)l * T * F;
    float* gl = g_table ? g_table + (size_t)l * T * F : nullptr;
    for (int q = threadIdx.x; q < cnt; q += kHashThreads) {
      const int64_t i = b0 + q;
      float go[F];
      hash_load<F>(g_out + i * stride + l * F, go);
      bool any = false;
#pragma unroll
      for (int f = 0; f < F; ++f) any |= go[f] != 0.f;
      if (!any && (kJac || !g_u)) continue;  // with kJac a zero g_out adds nothing to d/du
      const float p[3] = {u[3 * i], u[3 * i + 1], u[3 * i + 2]};
      const HashCell cell = hashgrid_cell(lv, p);
      uint32_t idx[8];
      hash_corners<F>(lv, T - 1, cell, idx);
      float e[8][F];
      if (!kJac && g_u) {
#pragma unroll
        for (int c = 0; c < 8; ++c) hash_load<F>(tl + (size_t)idx[c] * F, e[c]);
      }
      if (gl && any) {
#pragma unroll
        for (int c = 0; c < 8; ++c) {
          const float w = hashgrid_corner_weight(cell, c);
          float* d = gl + (size_t)idx[c] * F;
#if __CUDA_ARCH__ >= 900
          constexpr bool kVec = F == 2;  // one 8-byte vector atomic per corner (sm_90)
#else
          constexpr bool kVec = false;
#endif
          if constexpr (kVec) {
            atomicAdd(reinterpret_cast<float2*>(d), make_float2(w * go[0], w * go[1]));
          } else {
#pragma unroll
            for (int f = 0; f < F; ++f)
              if (go[f] != 0.f) atomicAdd(d + f, w * go[f]);
          }
        }
      }
      if (kJac && g_u) {
        float gu[3] = {gu_s[3 * q], gu_s[3 * q + 1], gu_s[3 * q + 2]};
#pragma unroll
        for (int a = 0; a < 3; ++a) {
          float j[F];
          jac_load<F>(jac + (((size_t)l * 3 + a) * n + i) * F, j);
#pragma unroll
          for (int f = 0; f < F; ++f) gu[a] += go[f] * j[f];
        }
        gu_s[3 * q] = gu[0]; gu_s[3 * q + 1] = gu[1]; gu_s[3 * q + 2] = gu[2];
      } else if (g_u) {
        float dfrac[3];
        for (int a = 0; a < 3; ++a) dfrac[a] = (p[a] > 0.f && p[a] < 1.f) ? (float)lv.res : 0.f;
        float gu[3] = {gu_s[3 * q], gu_s[3 * q + 1], gu_s[3 * q + 2]};
#pragma unroll
        for (int c = 0; c < 8; ++c) {
          float dot = 0.f;
#pragma unroll
          for (int f = 0; f < F; ++f) dot += go[f] * e[c][f];
#pragma unroll
          for (int a = 0; a < 3; ++a) {
            float dw = ((c >> a) & 1) ? 1.f : -1.f;
#pragma unroll
            for (int b2 = 0; b2 < 3; ++b2)
              if (b2 != a) dw *= ((c >> b2) & 1) ? cell.frac[b2] : 1.f - cell.frac[b2];
            gu[a] += dot * dw * dfrac[a];
          }
        }
        gu_s[3 * q] = gu[0]; gu_s[3 * q + 1] = gu[1]; gu_s[3 * q + 2] = gu[2];
      }
    }
  }
  if (g_u)
    for (int q = threadIdx.x; q < cnt; q += kHashThreads)
      for (int a = 0; a < 3; ++a) g_u[(b0 + q) * 3 + a] = gu_s[3 * q + a];
}

bool aligned(const void* p, size_t bytes) { return !p || (reinterpret_cast<uintptr_t>(p) % bytes) == 0; }

// The features the kernels handle (others, or vectors off their alignment, take the per-point loop).
int hash_kernel_features(const HashGridParams& p, bool backward) {
  const int F = p.grid.cfg.features;
  if (F != 1 && F != 2 && F != 4) return 0;
  const size_t a = (size_t)F * sizeof(float);
  if (!aligned(p.table, a)) return 0;
  if (backward ? !(aligned(p.g_out, a) && aligned(p.g_table, a)) : !aligned(p.out, a)) return 0;
  if (!aligned(p.jac, a)) return 0;
  if (p.stride() % F) return 0;  // rows must keep the vector alignment
  return F;
}

template <int F>
void hashgrid_forward_cuda(const HashGridParams& p) {
  const dim3 grid((unsigned)((p.n + kHashThreads - 1) / kHashThreads), (unsigned)p.grid.cfg.levels);
  if (p.jac)
    hashgrid_forward_kernel<F, true><<<grid, kHashThreads>>>(p.grid, p.n, p.stride(), p.u, p.table, p.out, p.jac);
  else
    hashgrid_forward_kernel<F, false><<<grid, kHashThreads>>>(p.grid, p.n, p.stride(), p.u, p.table, p.out, nullptr);
  cuda_check(cudaGetLastError(), "hashgrid_forward");
}

template <int F>
void hashgrid_backward_cuda(const HashGridParams& p) {
  int dev = 0, sms = 0;
  cuda_check(cudaGetDevice(&dev), "cudaGetDevice");
  cuda_check(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev), "cudaDeviceGetAttribute");
  // One wave of resident blocks where the points allow, whole warps per block.
  const int64_t resident = (int64_t)sms * kHashBlocksPerSm;
  int64_t per = (p.n + resident - 1) / resident;
  per = std::min<int64_t>(kHashMaxPerBlock, (per + 31) / 32 * 32);
  const int64_t blocks = (p.n + per - 1) / per;
  const size_t smem = p.g_u ? (size_t)per * 3 * sizeof(float) : 0;
  if (p.jac && p.g_u)
    hashgrid_backward_kernel<F, true><<<(unsigned)blocks, kHashThreads, smem>>>(p.grid, p.n, p.stride(), (int)per, p.u, p.table, p.jac, p.g_out,
                                                                                p.g_table, p.g_u);
  else
    hashgrid_backward_kernel<F, false><<<(unsigned)blocks, kHashThreads, smem>>>(p.grid, p.n, p.stride(), (int)per, p.u, p.table, nullptr, p.g_out,
                                                                                 p.g_table, p.g_u);
  cuda_check(cudaGetLastError(), "hashgrid_backward");
}
}  // namespace
#endif

void hashgrid_forward(Backend b, const HashGridParams& p) {
  op_require(p.n >= 0 && (p.n == 0 || (p.u && p.table && p.out)), "hashgrid_forward", "u, table and out must be non-null for n > 0");
  op_require(p.row_stride == 0 || p.row_stride >= p.grid.out_dim(), "hashgrid_forward", "row_stride must be 0 or >= levels * features");
  const HashGrid g = p.grid;
  const float* u = p.u;
  const float* table = p.table;
  float* out = p.out;
  const int64_t D = p.stride();
#if defined(__CUDACC__)
  if (b == Backend::CUDA && p.n > 0) {
    switch (hash_kernel_features(p, false)) {
      case 1: hashgrid_forward_cuda<1>(p); return;
      case 2: hashgrid_forward_cuda<2>(p); return;
      case 4: hashgrid_forward_cuda<4>(p); return;
      default: break;
    }
  }
#endif
  float* jac = p.jac;
  const int64_t stride = p.n * g.cfg.features;
  launch_1d(b, p.n, [=] DT_LAMBDA(int64_t i) {
    hashgrid_encode(g.cfg, g.levels, table, u + 3 * i, out + D * i);
    if (jac) hashgrid_jacobian_point(g, table, u + 3 * i, jac + i * g.cfg.features, stride);
  });
}

void hashgrid_backward(Backend b, const HashGridParams& p) {
  op_require(p.n >= 0 && (p.n == 0 || (p.u && p.table && p.g_out)), "hashgrid_backward", "u, table and g_out must be non-null for n > 0");
  op_require(p.row_stride == 0 || p.row_stride >= p.grid.out_dim(), "hashgrid_backward", "row_stride must be 0 or >= levels * features");
  const HashGrid g = p.grid;
  const float* u = p.u;
  const float* table = p.table;
  const float* g_out = p.g_out;
  float* g_table = p.g_table;
  float* g_u = p.g_u;
  const int64_t D = p.stride();
#if defined(__CUDACC__)
  if (b == Backend::CUDA && p.n > 0) {
    switch (hash_kernel_features(p, true)) {
      case 1: hashgrid_backward_cuda<1>(p); return;
      case 2: hashgrid_backward_cuda<2>(p); return;
      case 4: hashgrid_backward_cuda<4>(p); return;
      default: break;
    }
  }
#endif
  if (p.jac && g_u) {
    const float* jac = p.jac;
    const int64_t stride = p.n * g.cfg.features;
    launch_1d(b, p.n, [=] DT_LAMBDA(int64_t i) {
      if (g_table) hashgrid_backward_point(g, table, u + 3 * i, g_out + D * i, g_table, nullptr);
      hashgrid_du_from_jacobian(g.cfg, g_out + D * i, jac + i * g.cfg.features, stride, g_u + 3 * i);
    });
    return;
  }
  launch_1d(b, p.n, [=] DT_LAMBDA(int64_t i) {
    hashgrid_backward_point(g, table, u + 3 * i, g_out + D * i, g_table, g_u ? g_u + 3 * i : nullptr);
  });
}

void freq_forward(Backend b, const FreqParams& p) {
  op_require(p.n_freq >= 0 && freq_encoding_size(p.n_freq) <= kMaxWidth && p.n_freq <= 20, "freq_forward", "n_freq must be 0..20");
  op_require(p.n == 0 || (p.u && p.out), "freq_forward", "u and out must be non-null for n > 0");
  const int nf = p.n_freq, D = freq_encoding_size(nf);
  const float* u = p.u;
  float* out = p.out;
  // One element per thread: consecutive threads write consecutive floats.
  launch_1d(b, p.n * D, [=] DT_LAMBDA(int64_t e) {
    const int64_t i = e / D;
    out[e] = freq_encode_element(u + 3 * i, (int)(e - i * D));
  });
}

void freq_backward(Backend b, const FreqParams& p) {
  op_require(p.n_freq >= 0 && p.n_freq <= 20, "freq_backward", "n_freq must be 0..20");
  op_require(p.n == 0 || (p.u && p.g_out && p.g_u), "freq_backward", "u, g_out and g_u must be non-null for n > 0");
  const int nf = p.n_freq, D = freq_encoding_size(nf);
  const float* u = p.u;
  const float* g_out = p.g_out;
  float* g_u = p.g_u;
  launch_1d(b, p.n, [=] DT_LAMBDA(int64_t i) { freq_backward_point(nf, u + 3 * i, g_out + D * i, g_u + 3 * i); });
}

}  // namespace train
}  // namespace dyntet
