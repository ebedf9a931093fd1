#include "mlp.h"

#include <algorithm>

namespace dyntet {
namespace train {

void mlp_validate(const MlpConfig& c, const char* op) {
  op_require(c.in >= 1 && c.in <= kMaxWidth, op, "MlpConfig.in must be 1.." + std::to_string(kMaxWidth) + ", got " + std::to_string(c.in));
  op_require(c.out >= 1 && c.out <= kMaxWidth, op, "MlpConfig.out must be 1.." + std::to_string(kMaxWidth) + ", got " + std::to_string(c.out));
  op_require(c.hidden_layers >= 0 && c.hidden_layers < kMaxMlpLayers, op, "MlpConfig.hidden_layers must be 0.." + std::to_string(kMaxMlpLayers - 1));
  op_require(c.hidden_layers == 0 || (c.width >= 1 && c.width <= kMaxWidth), op, "MlpConfig.width must be 1.." + std::to_string(kMaxWidth));
  op_require(c.hidden_act >= kActNone && c.hidden_act <= kActTanh && c.out_act >= kActNone && c.out_act <= kActTanh, op,
             "activations must be one of kActNone, kActReLU, kActLeakyReLU, kActSigmoid, kActTanh");
}

#if defined(__CUDACC__)
namespace {

__device__ __forceinline__ int layer_max_width(const MlpConfig& c) {
  int w = c.in > c.out ? c.in : c.out;
  return c.hidden_layers > 0 && c.width > w ? c.width : w;
}

// Computes layer k of a tile for this thread's point: cur/nxt are [features][S] maps.
// Same summation order as model.h's mlp_forward (bias first, inputs ascending).
__device__ __forceinline__ void fused_layer(const float* w, int n_in, int n_out, int act, const float* cur, float* nxt,
                                            int S, int t) {
  const float* bias = w + (size_t)n_out * n_in;
  for (int o0 = 0; o0 < n_out; o0 += 8) {
    float acc[8];
#pragma unroll
    for (int j = 0; j < 8; ++j) acc[j] = o0 + j < n_out ? bias[o0 + j] : 0.f;
    for (int i = 0; i < n_in; ++i) {
      const float a = cur[i * S + t];
#pragma unroll
      for (int j = 0; j < 8; ++j)
        if (o0 + j < n_out) acc[j] = fmaf(w[(o0 + j) * n_in + i], a, acc[j]);
    }
#pragma unroll
    for (int j = 0; j < 8; ++j)
      if (o0 + j < n_out) nxt[(o0 + j) * S + t] = activate(act, acc[j]);
  }
}

__global__ void mlp_fused_forward_kernel(MlpConfig c, int64_t n, const float* __restrict__ params,
                                         const float* __restrict__ x, float* __restrict__ y, int np) {
  extern __shared__ float sm[];
  const int P = blockDim.x, S = P + 1, t = threadIdx.x;
  const int maxw = layer_max_width(c);
  float* Ws = sm;
  float* buf[2] = {sm + np, sm + np + maxw * S};
  for (int j = t; j < np; j += P) Ws[j] = params[j];
  const int L = mlp_layer_count(c);
  for (int64_t base = (int64_t)blockIdx.x * P; base < n; base += (int64_t)gridDim.x * P) {
    const int cnt = (int)(n - base < P ? n - base : P);
    __syncthreads();  // weights loaded / previous tile done with buf[0]
    for (int j = t; j < P * c.in; j += P) {
      const int pt = j / c.in, i = j - pt * c.in;
      buf[0][i * S + pt] = pt < cnt ? x[base * c.in + j] : 0.f;
    }
    __syncthreads();
    // From here each thread only touches its own column t, so layers need no barrier.
    const float* w = Ws;
    int cur = 0;
    for (int k = 0; k < L; ++k) {
      const int n_in = mlp_layer_in(c, k), n_out = mlp_layer_out(c, k);
      fused_layer(w, n_in, n_out, k == L - 1 ? c.out_act : c.hidden_act, buf[cur], buf[cur ^ 1], S, t);
      w += (size_t)n_out * (n_in + 1);
      cur ^= 1;
    }
    if (t < cnt)
      for (int o = 0; o < c.out; ++o) y[(base + t) * c.out + o] = buf[cur][o * S + t];
  }
}

__global__ void mlp_fused_backward_kernel(MlpConfig c, int64_t n, const float* __restrict__ params,
                                          const float* x, const float* __restrict__ g_y,
                                          float* __restrict__ g_params, float* g_x, int np,
                                          int acc_in_smem, int w_in_smem) {
  extern __shared__ float sm[];
  const int P = blockDim.x, S = P + 1, t = threadIdx.x;
  const int L = mlp_layer_count(c);
  // Weights come from shared memory, or (to leave room for the on-chip gradient sums) straight
  // from global memory, where every thread of a warp reads the same address (cached broadcast).
  float* Ws = sm;
  const float* Wsrc = w_in_smem ? Ws : params;
  float* Gacc = sm + (w_in_smem ? np : 0);  // per-block weight-gradient sums (only when acc_in_smem)
  float* A = Gacc + (acc_in_smem ? np : 0);
  int act_off[kMaxMlpLayers + 2];
  act_off[0] = 0;
  for (int k = 0; k < L; ++k) act_off[k + 1] = act_off[k] + mlp_layer_in(c, k) * S;
  // Gradients overwrite the activations in place: once layer k's pre-activation gradient is
  // formed from its output, that output is dead, so rows act_off[k+1] then hold the gradient.
  for (int j = t; j < np; j += P) {
    if (w_in_smem) Ws[j] = params[j];
    if (acc_in_smem) Gacc[j] = 0.f;
  }
  for (int64_t base = (int64_t)blockIdx.x * P; base < n; base += (int64_t)gridDim.x * P) {
    const int cnt = (int)(n - base < P ? n - base : P);
    __syncthreads();
    for (int j = t; j < P * c.in; j += P) {
      const int pt = j / c.in, i = j - pt * c.in;
      A[i * S + pt] = pt < cnt ? x[base * c.in + j] : 0.f;
    }
    __syncthreads();
    {
      const float* w = Wsrc;
      for (int k = 0; k < L; ++k) {
        const int n_in = mlp_layer_in(c, k), n_out = mlp_layer_out(c, k);
        fused_layer(w, n_in, n_out, k == L - 1 ? c.out_act : c.hidden_act, A + act_off[k], A + act_off[k + 1], S, t);
        w += (size_t)n_out * (n_in + 1);
      }
    }
    // Padding points get a zero output gradient, so they add nothing to the weight gradients.
    for (int o = 0; o < c.out; ++o) {
      const float gy = t < cnt ? g_y[(base + t) * c.out + o] : 0.f;
      float* a = A + act_off[L] + o * S + t;
      *a = gy * act_grad_from_output(c.out_act, *a);
    }
    size_t woff = (size_t)np;
    for (int k = L - 1; k >= 0; --k) {
      const int n_in = mlp_layer_in(c, k), n_out = mlp_layer_out(c, k);
      woff -= (size_t)n_out * (n_in + 1);
      const float* Gc = A + act_off[k + 1];
      float* Ak = A + act_off[k];
      __syncthreads();  // every column of Gc is written
      if (g_params) {
        const int nw = n_out * n_in, ne = nw + n_out;
        for (int e = t; e < ne; e += P) {
          float s = 0.f;
          if (e < nw) {
            const int o = e / n_in, i = e - o * n_in;
            for (int pt = 0; pt < P; ++pt) s = fmaf(Gc[o * S + pt], Ak[i * S + pt], s);
          } else {
            const int o = e - nw;
            for (int pt = 0; pt < P; ++pt) s += Gc[o * S + pt];
          }
          if (acc_in_smem) Gacc[woff + e] += s;
          else if (s != 0.f) atomicAdd(g_params + woff + e, s);
        }
      }
      if (k > 0) __syncthreads();  // all weight-gradient reads of Ak done before it is overwritten
      if (k > 0 || g_x) {
        const float* W = Wsrc + woff;
        for (int i0 = 0; i0 < n_in; i0 += 8) {
          float acc[8];
#pragma unroll
          for (int j = 0; j < 8; ++j) acc[j] = 0.f;
          for (int o = 0; o < n_out; ++o) {
            const float gp = Gc[o * S + t];
#pragma unroll
            for (int j = 0; j < 8; ++j)
              if (i0 + j < n_in) acc[j] = fmaf(W[o * n_in + i0 + j], gp, acc[j]);
          }
#pragma unroll
          for (int j = 0; j < 8; ++j) {
            if (i0 + j >= n_in) continue;
            if (k > 0) Ak[(i0 + j) * S + t] = acc[j] * act_grad_from_output(c.hidden_act, Ak[(i0 + j) * S + t]);
            else if (t < cnt) g_x[(base + t) * c.in + i0 + j] = acc[j];
          }
        }
      }
    }
  }
  if (acc_in_smem && g_params) {
    __syncthreads();
    for (int j = t; j < np; j += P)
      if (Gacc[j] != 0.f) atomicAdd(g_params + j, Gacc[j]);
  }
}

struct FusedPlan {
  bool ok = false;
  int P = 0;
  int acc = 0;
  int wsm = 1;
  size_t smem = 0;
  int grid = 0;
};

int max_width_host(const MlpConfig& c) {
  int w = std::max(c.in, c.out);
  return c.hidden_layers > 0 ? std::max(w, c.width) : w;
}

size_t smem_limit() {
  int dev = 0, v = 0;
  cuda_check(cudaGetDevice(&dev), "cudaGetDevice");
  cuda_check(cudaDeviceGetAttribute(&v, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev), "cudaDeviceGetAttribute");
  return (size_t)v;
}

int sm_count() {
  int dev = 0, v = 0;
  cuda_check(cudaGetDevice(&dev), "cudaGetDevice");
  cuda_check(cudaDeviceGetAttribute(&v, cudaDevAttrMultiProcessorCount, dev), "cudaDeviceGetAttribute");
  return v;
}

bool fused_eligible(const MlpConfig& c) { return max_width_host(c) <= kFusedMaxWidth; }

template <class K>
FusedPlan finish_plan(FusedPlan pl, K kernel, int64_t n) {
  cuda_check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)pl.smem), "cudaFuncSetAttribute");
  int per_sm = 0;
  cuda_check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, pl.P, pl.smem), "cudaOccupancyMaxActiveBlocksPerMultiprocessor");
  const int64_t tiles = (n + pl.P - 1) / pl.P;
  pl.grid = (int)std::min<int64_t>(tiles, (int64_t)sm_count() * std::max(per_sm, 1));
  pl.ok = true;
  return pl;
}

FusedPlan plan_forward(const MlpConfig& c, int64_t n) {
  FusedPlan pl;
  if (!fused_eligible(c)) return pl;
  const size_t np = mlp_param_count(c), lim = smem_limit();
  for (int P : {128, 64, 32}) {
    const size_t bytes = (np + 2 * (size_t)max_width_host(c) * (P + 1)) * sizeof(float);
    if (bytes <= lim) { pl.P = P; pl.smem = bytes; return finish_plan(pl, mlp_fused_forward_kernel, n); }
  }
  return pl;
}

FusedPlan plan_backward(const MlpConfig& c, int64_t n) {
  FusedPlan pl;
  if (!fused_eligible(c)) return pl;
  const size_t np = mlp_param_count(c), lim = smem_limit();
  size_t rows = (size_t)c.out;  // layer outputs, reused in place for the gradients
  for (int k = 0; k < mlp_layer_count(c); ++k) rows += mlp_layer_in(c, k);
  // Preference: weight-gradient sums on chip (one atomic per weight per block, not per tile),
  // with weights in shared memory at tiles >= 64, then with weights read from global memory,
  // then per-tile atomics.
  struct Option { int acc, wsm, min_P; };
  const Option options[3] = {{1, 1, 64}, {1, 0, 32}, {0, 1, 32}};
  for (const Option& o : options)
    for (int P : {128, 64, 32}) {
      if (P < o.min_P) continue;
      const size_t bytes = ((size_t)(o.acc + o.wsm) * np + rows * (P + 1)) * sizeof(float);
      if (bytes <= lim) {
        pl.P = P; pl.acc = o.acc; pl.wsm = o.wsm; pl.smem = bytes;
        return finish_plan(pl, mlp_fused_backward_kernel, n);
      }
    }
  return pl;
}

}  // namespace
#endif

const char* mlp_cuda_path(const MlpConfig& c) {
#if defined(__CUDACC__)
  return fused_eligible(c) ? "fused" : "per-point";
#else
  (void)c;
  return "none (CPU-only build)";
#endif
}

std::string mlp_cuda_plan(const MlpConfig& c, int64_t n) {
#if defined(__CUDACC__)
  if (!fused_eligible(c)) return "per-point";
  const FusedPlan f = plan_forward(c, n), b = plan_backward(c, n);
  std::string s = f.ok ? "fwd tile " + std::to_string(f.P) : std::string("fwd per-point");
  s += b.ok ? ", bwd tile " + std::to_string(b.P) + (b.acc ? " (grads on chip" : " (atomics per tile") + (b.wsm ? ")" : ", weights from global)") : ", bwd per-point";
  return s;
#else
  (void)c; (void)n;
  return "none (CPU-only build)";
#endif
}

void mlp_forward(Backend b, const MlpParams& p) {
  mlp_validate(p.cfg, "mlp_forward");
  op_require(p.n >= 0 && (p.n == 0 || (p.params && p.x && p.y)), "mlp_forward", "params, x and y must be non-null for n > 0");
  if (p.n == 0) return;
#if defined(__CUDACC__)
  if (b == Backend::CUDA) {
    const FusedPlan pl = plan_forward(p.cfg, p.n);
    if (pl.ok) {
      mlp_fused_forward_kernel<<<pl.grid, pl.P, pl.smem>>>(p.cfg, p.n, p.params, p.x, p.y, (int)mlp_param_count(p.cfg));
      cuda_check(cudaGetLastError(), "mlp_fused_forward_kernel");
      return;
    }
  }
#endif
  const MlpConfig c = p.cfg;
  const float* params = p.params;
  const float* x = p.x;
  float* y = p.y;
  launch_1d(b, p.n, [=] DT_LAMBDA(int64_t i) { mlp_forward(c, params, x + (int64_t)c.in * i, y + (int64_t)c.out * i); });
}

void mlp_backward(Backend b, const MlpParams& p) {
  mlp_validate(p.cfg, "mlp_backward");
  op_require(p.n >= 0 && (p.n == 0 || (p.params && p.x && p.g_y)), "mlp_backward", "params, x and g_y must be non-null for n > 0");
  if (p.n == 0 || (!p.g_params && !p.g_x)) return;
#if defined(__CUDACC__)
  if (b == Backend::CUDA) {
    const FusedPlan pl = plan_backward(p.cfg, p.n);
    if (pl.ok) {
      mlp_fused_backward_kernel<<<pl.grid, pl.P, pl.smem>>>(p.cfg, p.n, p.params, p.x, p.g_y, p.g_params, p.g_x,
                                                            (int)mlp_param_count(p.cfg), pl.acc, pl.wsm);
      cuda_check(cudaGetLastError(), "mlp_fused_backward_kernel");
      return;
    }
  }
#endif
  const MlpConfig c = p.cfg;
  const float* params = p.params;
  const float* x = p.x;
  const float* g_y = p.g_y;
  float* g_params = p.g_params;
  float* g_x = p.g_x;
  launch_1d(b, p.n, [=] DT_LAMBDA(int64_t i) {
    mlp_backward_point(c, params, x + (int64_t)c.in * i, g_y + (int64_t)c.out * i, g_params,
                       g_x ? g_x + (int64_t)c.in * i : nullptr);
  });
}

}  // namespace train
}  // namespace dyntet
