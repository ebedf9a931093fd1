#include "mlp.h"

#include "mlp_half.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <mutex>
#if defined(__CUDACC__)
#include <mma.h>
#endif

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

// Tensor cores for the TF32 tiled path: WMMA needs sm_80 or newer (the host refuses older devices).
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
#define DT_TILED_WMMA 1
namespace wmma = nvcuda::wmma;
#else
#define DT_TILED_WMMA 0
#endif

// ---- tiled kernels (begin; tests/tiled_mlp_emulation.py compiles this region on CPU threads)
// One launch computes C (M x J) = sum over k of A(m, k) B(k, j) for a block tile of TBM x TBN,
// with A(m, k) = A[m * a_sm + k * a_sk] and B(k, j) = B[k * b_sk + j * b_sj] in global memory.
// Per layer of points x (n x in, row-major) and weights W (out x in, row-major):
//   forward  (mode 0): M = points, J = out, K = in:  A = x, B(k, j) = W[j][k]; C = act(bias + .)
//   input grad (mode 1): M = points, J = in, K = out: A = G, B(k, j) = W[k][j]; C = . * act'(h)
//   weight grad (mode 2): M = out, J = in, K = points of this split (blockIdx.z): A(m, k) = G[k][m],
//     B(k, j) = x[k][j]; C is added to this split's partial sums (bias: row sums of A).
constexpr int TBM = 128, TBN = 64, TBK = 16, TTHREADS = 128;
constexpr int TLDA = TBM + 4, TLDB = TBN + 4;  // padded smem rows; multiples of 4 floats (WMMA ldm)
constexpr int TNA = TBM * TBK / TTHREADS, TNB = TBN * TBK / TTHREADS;
constexpr int kTileSmemFloatsSimt = TBK * TLDA + TBK * TLDB;
constexpr int kTileSmemFloatsTc = TBM * TLDB;  // the accumulator staging tile (aliases the operand tiles)
static_assert(kTileSmemFloatsTc >= kTileSmemFloatsSimt, "staging tile covers the operand tiles");

struct TileArgs {
  int mode = 0;                   // 0 forward, 1 input gradient, 2 weight gradient
  int M = 0, J = 0;
  int64_t K = 0;                  // summed extent (mode 2: points of the chunk)
  int64_t kps = 0;                // mode 2: points per split (a multiple of TBK)
  const float* A = nullptr;
  int64_t a_sm = 0, a_sk = 0;
  const float* B = nullptr;
  int64_t b_sk = 0, b_sj = 0;
  float* C = nullptr;             // modes 0, 1: C[m * ldc + j]
  int64_t ldc = 0;
  const float* bias = nullptr;    // mode 0
  int act = 0;                    // mode 0: the layer's activation; mode 1: the one whose derivative multiplies
  const float* gy = nullptr;      // mode 0: when set, C = gy * act'(y) (output gradient of the last layer)
  const float* dact = nullptr;    // mode 1: the activation outputs h (ldc-strided); null: no factor
  float* P = nullptr;             // mode 2: partial sums of split 0 at this layer's parameter offset
  int64_t p_stride = 0;           // mode 2: floats between splits' partial sums
};

// Row of the 8 rows of a thread's register tile (two groups of 4, half a tile apart) and the same
// for columns; the groups keep a warp's float4 shared-memory reads free of bank conflicts.
__device__ __forceinline__ int tile_row(int ty, int i) { return i < 4 ? ty * 4 + i : TBM / 2 + ty * 4 + i - 4; }
__device__ __forceinline__ int tile_col(int tx, int j) { return j < 4 ? tx * 4 + j : TBN / 2 + tx * 4 + j - 4; }

template <bool TC>
__global__ void __launch_bounds__(TTHREADS) mlp_tile_kernel(TileArgs a) {
  extern __shared__ __align__(128) float tsm[];
  float* As = tsm;                // [TBK][TLDA]: As[k][m] = A(m0 + m, k0 + k)
  float* Bs = tsm + TBK * TLDA;   // [TBK][TLDB]: Bs[k][j] = B(k0 + k, j0 + j)
  const int tid = threadIdx.x, tx = tid % 8, ty = tid / 8;
  const int m0 = blockIdx.x * TBM, j0 = blockIdx.y * TBN;
  int64_t k0 = 0, k1 = a.K;
  if (a.mode == 2) {
    k0 = (int64_t)blockIdx.z * a.kps;
    k1 = k0 + a.kps < a.K ? k0 + a.kps : a.K;
  }
  // Global loads walk the unit-stride index fastest (coalesced).
  const bool a_kfast = a.a_sk == 1, b_jfast = a.b_sj == 1;
  float ra[TNA], rb[TNB];
  auto load = [&](int64_t kt) {
#pragma unroll
    for (int r = 0; r < TNA; ++r) {
      const int e = tid + r * TTHREADS;
      const int m = a_kfast ? e / TBK : e % TBM, k = a_kfast ? e % TBK : e / TBM;
      const int64_t gk = kt + k;
      ra[r] = (m0 + m < a.M && gk < k1) ? a.A[(int64_t)(m0 + m) * a.a_sm + gk * a.a_sk] : 0.f;
    }
#pragma unroll
    for (int r = 0; r < TNB; ++r) {
      const int e = tid + r * TTHREADS;
      const int j = b_jfast ? e % TBN : e / TBK, k = b_jfast ? e / TBN : e % TBK;
      const int64_t gk = kt + k;
      rb[r] = (j0 + j < a.J && gk < k1) ? a.B[gk * a.b_sk + (int64_t)(j0 + j) * a.b_sj] : 0.f;
    }
  };
  auto store = [&]() {
#pragma unroll
    for (int r = 0; r < TNA; ++r) {
      const int e = tid + r * TTHREADS;
      const int m = a_kfast ? e / TBK : e % TBM, k = a_kfast ? e % TBK : e / TBM;
      As[k * TLDA + m] = ra[r];
    }
#pragma unroll
    for (int r = 0; r < TNB; ++r) {
      const int e = tid + r * TTHREADS;
      const int j = b_jfast ? e % TBN : e / TBK, k = b_jfast ? e / TBN : e % TBK;
      Bs[k * TLDB + j] = rb[r];
    }
  };

  float acc[8][8];
  // fp32 forward: start from the bias, like the CPU loop (bias first, then inputs ascending).
#pragma unroll
  for (int j = 0; j < 8; ++j) {
    const int gj = j0 + tile_col(tx, j);
    const float b0 = (!TC && a.mode == 0 && gj < a.J) ? a.bias[gj] : 0.f;
#pragma unroll
    for (int i = 0; i < 8; ++i) acc[i][j] = b0;
  }
  const bool bias_rows = a.mode == 2 && blockIdx.y == 0 && tid < TBM;
  float bsum = 0.f;
#if DT_TILED_WMMA
  wmma::fragment<wmma::accumulator, 16, 16, 8, float> fc[2][4];
  if (TC) {
#pragma unroll
    for (int fi = 0; fi < 2; ++fi)
#pragma unroll
      for (int fj = 0; fj < 4; ++fj) wmma::fill_fragment(fc[fi][fj], 0.f);
  }
#endif

  if (k0 < k1) load(k0);
  for (int64_t kt = k0; kt < k1; kt += TBK) {
    __syncthreads();  // everyone is done reading the previous tiles
    store();
    __syncthreads();
    if (kt + TBK < k1) load(kt + TBK);  // next tiles into registers while this one is used
    if (bias_rows)
      for (int kk = 0; kk < TBK; ++kk) bsum += As[kk * TLDA + tid];
    if (!TC) {
#pragma unroll
      for (int kk = 0; kk < TBK; ++kk) {
        const float4 a0 = *reinterpret_cast<const float4*>(As + kk * TLDA + ty * 4);
        const float4 a1 = *reinterpret_cast<const float4*>(As + kk * TLDA + TBM / 2 + ty * 4);
        const float4 b0 = *reinterpret_cast<const float4*>(Bs + kk * TLDB + tx * 4);
        const float4 b1 = *reinterpret_cast<const float4*>(Bs + kk * TLDB + TBN / 2 + tx * 4);
        const float av[8] = {a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w};
        const float bv[8] = {b0.x, b0.y, b0.z, b0.w, b1.x, b1.y, b1.z, b1.w};
#pragma unroll
        for (int i = 0; i < 8; ++i)
#pragma unroll
          for (int j = 0; j < 8; ++j) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
      }
    }
#if DT_TILED_WMMA
    else {
      // Warp w owns rows [32w, 32w + 32) x all TBN columns: 2 x 4 fragments of 16 x 16.
      const int w = tid / 32;
#pragma unroll
      for (int kk = 0; kk < TBK; kk += 8) {
        wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::col_major> fa[2];
        wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, wmma::row_major> fb[4];
#pragma unroll
        for (int fi = 0; fi < 2; ++fi) {
          wmma::load_matrix_sync(fa[fi], As + kk * TLDA + w * 32 + fi * 16, TLDA);
          for (int t = 0; t < fa[fi].num_elements; ++t) fa[fi].x[t] = wmma::__float_to_tf32(fa[fi].x[t]);
        }
#pragma unroll
        for (int fj = 0; fj < 4; ++fj) {
          wmma::load_matrix_sync(fb[fj], Bs + kk * TLDB + fj * 16, TLDB);
          for (int t = 0; t < fb[fj].num_elements; ++t) fb[fj].x[t] = wmma::__float_to_tf32(fb[fj].x[t]);
        }
#pragma unroll
        for (int fi = 0; fi < 2; ++fi)
#pragma unroll
          for (int fj = 0; fj < 4; ++fj) wmma::mma_sync(fc[fi][fj], fa[fi], fb[fj], fc[fi][fj]);
      }
    }
#endif
  }
#if DT_TILED_WMMA
  if (TC) {
    // Stage the accumulators through shared memory (aliasing the operand tiles) into the same
    // per-thread 8 x 8 layout as the fp32 path, so both share the epilogue.
    float* Cs = tsm;
    const int w = tid / 32;
    __syncthreads();
#pragma unroll
    for (int fi = 0; fi < 2; ++fi)
#pragma unroll
      for (int fj = 0; fj < 4; ++fj)
        wmma::store_matrix_sync(Cs + (w * 32 + fi * 16) * TLDB + fj * 16, fc[fi][fj], TLDB, wmma::mem_row_major);
    __syncthreads();
#pragma unroll
    for (int i = 0; i < 8; ++i)
#pragma unroll
      for (int j = 0; j < 8; ++j) acc[i][j] = Cs[tile_row(ty, i) * TLDB + tile_col(tx, j)];
  }
#endif

  float* P = a.mode == 2 ? a.P + (int64_t)blockIdx.z * a.p_stride : nullptr;
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    const int gm = m0 + tile_row(ty, i);
    if (gm >= a.M) continue;
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const int gj = j0 + tile_col(tx, j);
      if (gj >= a.J) continue;
      float v = acc[i][j];
      if (a.mode == 0) {
        if (TC) v += a.bias[gj];
        const int64_t o = (int64_t)gm * a.ldc + gj;
        const float y = activate(a.act, v);
        a.C[o] = a.gy ? a.gy[o] * act_grad_from_output(a.act, y) : y;
      } else if (a.mode == 1) {
        const int64_t o = (int64_t)gm * a.ldc + gj;
        a.C[o] = a.dact ? v * act_grad_from_output(a.act, a.dact[o]) : v;
      } else {
        P[(int64_t)gm * a.J + gj] += v;  // one owner per element and split: no atomics
      }
    }
  }
  if (bias_rows && m0 + tid < a.M) P[(int64_t)a.M * a.J + m0 + tid] += bsum;
}

// g[w] += sum over splits s (ascending) of P[s * np + w].
__global__ void mlp_partial_reduce_kernel(const float* __restrict__ P, int S, int64_t np, float* __restrict__ g) {
  const int64_t w = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (w >= np) return;
  float s = 0.f;
  for (int z = 0; z < S; ++z) s += P[(int64_t)z * np + w];
  g[w] += s;
}

inline int64_t tile_blocks(int64_t v, int t) { return (v + t - 1) / t; }

// Workspace floats per point: backward keeps every hidden output plus two gradient buffers of the
// widest layer; forward two buffers of the widest hidden layer.
inline int64_t tiled_floats_per_point(const MlpConfig& c, bool backward) {
  const int L = mlp_layer_count(c);
  int64_t hidden = 0, maxh = 0, maxw = 0;
  for (int k = 0; k < L; ++k) {
    const int64_t o = mlp_layer_out(c, k), i = mlp_layer_in(c, k);
    if (k + 1 < L) { hidden += o; maxh = o > maxh ? o : maxh; }
    maxw = o > maxw ? o : maxw;
    maxw = i > maxw ? i : maxw;
  }
  return backward ? hidden + 2 * maxw : 2 * maxh;
}

// Small networks (every layer at most kSmallWidth wide, e.g. the trainer's deformation and
// texture MLPs) run all layers in one launch: a block keeps the weights (transposed) and a tile of
// TBM points' activations in shared memory, so the layers exchange nothing through global memory
// (per layer launches were latency-bound at these sizes). A layer wider than 8 is a TBM x 64 x
// n_in product in the tile kernel's 8 x 8 register tiles; a narrow one (the usual last layer)
// gives each thread one point. Same per-output order as the CPU loop (bias first, inputs
// ascending, FMA). Hidden outputs go to acts when set (MlpParams::acts' layout).
constexpr int kSmallWidth = 64, kSmallLda = TBM + 4;
static_assert(kSmallWidth == TBN && TTHREADS == TBM, "the small kernel uses the tile kernel's thread layout");

struct SmallArgs {
  MlpConfig c;
  int64_t n = 0;
  const float* params = nullptr;
  const float* x = nullptr;
  float* y = nullptr;             // forward output; backward: the saved output when acts is set
  float* acts = nullptr;          // hidden outputs (forward writes, backward reads when set)
  const float* g_y = nullptr;     // backward
  float* partial = nullptr;       // backward: one row of mlp_param_count(c) weight-gradient sums per block
  float* g_x = nullptr;           // backward, may alias x; may be null
};

// A layer's weights in shared memory: [n_in][stride] then the bias [stride] (zero-padded to 64
// columns for wide layers), rounded up to whole float4s.
constexpr int small_stride(int n_out) { return n_out <= 8 ? n_out : kSmallWidth; }
constexpr int small_layer_floats(int n_in, int n_out) { return ((n_in + 1) * small_stride(n_out) + 3) / 4 * 4; }

inline int small_smem_floats(const MlpConfig& c) {
  int w = 0;
  for (int k = 0; k < mlp_layer_count(c); ++k) w += small_layer_floats(mlp_layer_in(c, k), mlp_layer_out(c, k));
  return w + kSmallWidth * kSmallLda;
}

// Copies a tile of rows (row-major in global memory, `width` floats each; rows from cnt on as
// zeros) into shared memory as dst[feature * kSmallLda + point], times act'(y) when y is given.
// Every thread has 8 loads in flight before it stores: with one to three blocks per SM, one load
// at a time per thread left these kernels waiting on memory latency.
__device__ __forceinline__ void small_load_tile(const float* src, int width, int cnt, float* dst,
                                                const float* y = nullptr, int act = 0) {
  const int total = TBM * width, valid = cnt * width;
  for (int e0 = threadIdx.x; e0 < total; e0 += 8 * TTHREADS) {
    float v[8];
#pragma unroll
    for (int u = 0; u < 8; ++u) {
      const int e = e0 + u * TTHREADS;
      v[u] = e < valid ? (y ? src[e] * act_grad_from_output(act, y[e]) : src[e]) : 0.f;
    }
#pragma unroll
    for (int u = 0; u < 8; ++u) {
      const int e = e0 + u * TTHREADS;
      if (e < total) {
        const int m = e / width;
        dst[(e - m * width) * kSmallLda + m] = v[u];
      }
    }
  }
}

inline bool small_eligible(const MlpConfig& c) {
  for (int k = 0; k < mlp_layer_count(c); ++k)
    if (mlp_layer_in(c, k) > kSmallWidth || mlp_layer_out(c, k) > kSmallWidth) return false;
  return small_smem_floats(c) * sizeof(float) <= 160 * 1024;
}

__global__ void __launch_bounds__(TTHREADS) mlp_small_forward_kernel(SmallArgs a) {
  extern __shared__ __align__(128) float tsm[];
  const MlpConfig c = a.c;
  const int tid = threadIdx.x, tx = tid % 8, ty = tid / 8;
  const int L = mlp_layer_count(c);
  int wf = 0;
  {
    const float* g = a.params;
    for (int k = 0; k < L; ++k) {
      const int n_in = mlp_layer_in(c, k), n_out = mlp_layer_out(c, k), st = small_stride(n_out);
      for (int e = tid; e < (n_in + 1) * st; e += TTHREADS) {
        const int i = e / st, j = e - i * st;  // row i == n_in: the bias
        tsm[wf + e] = j >= n_out ? 0.f : g[i < n_in ? (int64_t)j * n_in + i : (int64_t)n_out * n_in + j];
      }
      wf += small_layer_floats(n_in, n_out);
      g += (int64_t)n_out * (n_in + 1);
    }
  }
  float* A = tsm + wf;  // A[i * kSmallLda + m]: feature i of the tile's point m
  for (int64_t base = (int64_t)blockIdx.x * TBM; base < a.n; base += (int64_t)gridDim.x * TBM) {
    const int cnt = (int)(a.n - base < TBM ? a.n - base : TBM);
    __syncthreads();  // weights stored; the previous tile's reads of A done
    small_load_tile(a.x + base * c.in, c.in, cnt, A);
    __syncthreads();
    const float* W = tsm;
    for (int k = 0; k < L; ++k) {
      const int n_in = mlp_layer_in(c, k), n_out = mlp_layer_out(c, k), st = small_stride(n_out);
      const int act = k == L - 1 ? c.out_act : c.hidden_act;
      const float* bias = W + n_in * st;
      if (st < kSmallWidth) {
        // Narrow: thread tid reads and writes only point tid's column.
        float acc[8];
#pragma unroll
        for (int j = 0; j < 8; ++j) acc[j] = j < n_out ? bias[j] : 0.f;
        for (int i = 0; i < n_in; ++i) {
          const float v = A[i * kSmallLda + tid];
#pragma unroll
          for (int j = 0; j < 8; ++j)
            if (j < n_out) acc[j] = fmaf(v, W[i * st + j], acc[j]);
        }
        if (k == L - 1) {
          if (tid < cnt)
            for (int j = 0; j < n_out; ++j) a.y[(base + tid) * c.out + j] = activate(act, acc[j]);
        } else {
          __syncthreads();  // the previous layer's acts copy may still read this column
#pragma unroll
          for (int j = 0; j < 8; ++j)
            if (j < n_out) A[j * kSmallLda + tid] = activate(act, acc[j]);
        }
      } else {
        float acc[8][8];
#pragma unroll
        for (int j = 0; j < 8; ++j) {
          const float b0 = bias[tile_col(tx, j)];
#pragma unroll
          for (int i = 0; i < 8; ++i) acc[i][j] = b0;
        }
        for (int i = 0; i < n_in; ++i) {
          const float4 a0 = *reinterpret_cast<const float4*>(A + i * kSmallLda + ty * 4);
          const float4 a1 = *reinterpret_cast<const float4*>(A + i * kSmallLda + TBM / 2 + ty * 4);
          const float4 b0 = *reinterpret_cast<const float4*>(W + i * kSmallWidth + tx * 4);
          const float4 b1 = *reinterpret_cast<const float4*>(W + i * kSmallWidth + kSmallWidth / 2 + tx * 4);
          const float av[8] = {a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w};
          const float bv[8] = {b0.x, b0.y, b0.z, b0.w, b1.x, b1.y, b1.z, b1.w};
#pragma unroll
          for (int r = 0; r < 8; ++r)
#pragma unroll
            for (int j = 0; j < 8; ++j) acc[r][j] = fmaf(av[r], bv[j], acc[r][j]);
        }
        __syncthreads();  // every read of A done before it is overwritten
#pragma unroll
        for (int r = 0; r < 8; ++r)
#pragma unroll
          for (int j = 0; j < 8; ++j) {
            const int m = tile_row(ty, r), o = tile_col(tx, j);
            if (o >= n_out) continue;
            const float v = activate(act, acc[r][j]);
            if (k < L - 1) A[o * kSmallLda + m] = v;
            else if (m < cnt) a.y[(base + m) * c.out + o] = v;
          }
      }
      if (k < L - 1) {
        __syncthreads();  // layer k's outputs complete before layer k + 1 reads them
        if (a.acts)
          for (int e = tid; e < cnt * n_out; e += TTHREADS) {
            const int m = e / n_out, o = e - m * n_out;
            a.acts[(int64_t)k * c.width * a.n + (base + m) * c.width + o] = A[o * kSmallLda + m];
          }
      }
      W += small_layer_floats(n_in, n_out);
    }
  }
}

// The backward of a small network for a tile of TBM points per step of a persistent block: the
// tile's input and every hidden output stay in shared memory (recomputed, or loaded from saved
// activations), each layer's output gradient overwrites its output in place. Weights in natural
// layout with rows of kSmallWs floats (an odd stride: the scalar weight reads of a warp fall in
// distinct banks). Per layer, from the last: the weight gradient G^T X summed over the tile
// (thread: 8 outputs x 4 inputs, float4 reads along the points) into the block's own row of
// partial sums (one owner per element, no atomics; the rows are added in a fixed order after),
// then the input gradient G W in 8 x 8 register tiles, times the activation's derivative.
constexpr int kSmallWs = kSmallWidth + 1;

__host__ __device__ inline int small_bwd_weight_floats(const MlpConfig& c) {
  int w = 0;
  for (int k = 0; k < mlp_layer_count(c); ++k) w += mlp_layer_out(c, k) * (kSmallWs + 1);
  return (w + 3) / 4 * 4;
}

inline int small_bwd_smem_floats(const MlpConfig& c) {
  int rows = c.in + c.out;
  for (int k = 0; k + 1 < mlp_layer_count(c); ++k) rows += mlp_layer_out(c, k);
  return small_bwd_weight_floats(c) + rows * kSmallLda;
}

inline bool small_bwd_eligible(const MlpConfig& c) {
  return small_eligible(c) && small_bwd_smem_floats(c) * sizeof(float) <= 200 * 1024;
}

__global__ void __launch_bounds__(TTHREADS) mlp_small_backward_kernel(SmallArgs a) {
  extern __shared__ __align__(128) float tsm[];
  const MlpConfig c = a.c;
  const int tid = threadIdx.x, tx = tid % 8, ty = tid / 8;
  const int L = mlp_layer_count(c);
  int wo[kMaxMlpLayers], go[kMaxMlpLayers];  // per layer: weight offset in smem and in the parameters
  float* H[kMaxMlpLayers + 1];                  // H[k]: layer k's input; H[L]: the output gradient
  int np = 0;
  {
    int w = 0, g = 0;
    for (int k = 0; k < L; ++k) {
      const int n_in = mlp_layer_in(c, k), n_out = mlp_layer_out(c, k);
      wo[k] = w; go[k] = g;
      for (int e = tid; e < n_out * (n_in + 1); e += TTHREADS) {
        const int o = e / (n_in + 1), i = e - o * (n_in + 1);  // i == n_in: the bias, stored after the rows
        const float v = i < n_in ? a.params[g + (int64_t)o * n_in + i] : a.params[g + (int64_t)n_out * n_in + o];
        tsm[i < n_in ? w + o * kSmallWs + i : w + n_out * kSmallWs + o] = v;
      }
      w += n_out * (kSmallWs + 1);
      g += n_out * (n_in + 1);
    }
    np = g;
    float* q = tsm + small_bwd_weight_floats(c);
    for (int k = 0; k <= L; ++k) {
      H[k] = q;
      q += (k == 0 ? c.in : k == L ? c.out : mlp_layer_out(c, k - 1)) * kSmallLda;
    }
  }
  float* part = a.partial ? a.partial + (int64_t)blockIdx.x * np : nullptr;
  for (int64_t base = (int64_t)blockIdx.x * TBM; base < a.n; base += (int64_t)gridDim.x * TBM) {
    const int cnt = (int)(a.n - base < TBM ? a.n - base : TBM);
    __syncthreads();  // weights stored; the previous tile is done with the buffers
    small_load_tile(a.x + base * c.in, c.in, cnt, H[0]);
    if (a.acts) {
      // Saved by the forward: hidden outputs from acts, the output gradient from g_y and y.
      for (int k = 1; k < L; ++k)
        small_load_tile(a.acts + (int64_t)(k - 1) * c.width * a.n + base * c.width, c.width, cnt, H[k]);
      small_load_tile(a.g_y + base * c.out, c.out, cnt, H[L], a.y + base * c.out, c.out_act);
      __syncthreads();
    } else {
      __syncthreads();
      // The forward, from the natural-layout weights (scalar reads, stride kSmallWs).
      for (int k = 0; k < L; ++k) {
        const int n_in = mlp_layer_in(c, k), n_out = mlp_layer_out(c, k);
        const int act = k == L - 1 ? c.out_act : c.hidden_act;
        const float* W = tsm + wo[k];
        const float* bias = W + n_out * kSmallWs;
        const float* A = H[k];
        if (n_out <= 8) {
          float acc[8];
#pragma unroll
          for (int j = 0; j < 8; ++j) acc[j] = j < n_out ? bias[j] : 0.f;
          for (int i = 0; i < n_in; ++i) {
            const float v = A[i * kSmallLda + tid];
#pragma unroll
            for (int j = 0; j < 8; ++j)
              if (j < n_out) acc[j] = fmaf(v, W[j * kSmallWs + i], acc[j]);
          }
          // Only column tid is read and written here; the last layer writes the output gradient.
#pragma unroll
          for (int j = 0; j < 8; ++j) {
            if (j >= n_out) continue;
            const float y = activate(act, acc[j]);
            if (k < L - 1) H[k + 1][j * kSmallLda + tid] = y;
            else H[L][j * kSmallLda + tid] = tid < cnt ? a.g_y[(base + tid) * c.out + j] * act_grad_from_output(act, y) : 0.f;
          }
        } else {
          float acc[8][8];
#pragma unroll
          for (int j = 0; j < 8; ++j) {
            const int o = tile_col(tx, j);
            const float b0 = o < n_out ? bias[o] : 0.f;
#pragma unroll
            for (int r = 0; r < 8; ++r) acc[r][j] = b0;
          }
          for (int i = 0; i < n_in; ++i) {
            const float4 a0 = *reinterpret_cast<const float4*>(A + i * kSmallLda + ty * 4);
            const float4 a1 = *reinterpret_cast<const float4*>(A + i * kSmallLda + TBM / 2 + ty * 4);
            const float av[8] = {a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w};
            float bv[8];
#pragma unroll
            for (int j = 0; j < 8; ++j) {
              const int o = tile_col(tx, j);
              bv[j] = o < n_out ? W[o * kSmallWs + i] : 0.f;
            }
#pragma unroll
            for (int r = 0; r < 8; ++r)
#pragma unroll
              for (int j = 0; j < 8; ++j) acc[r][j] = fmaf(av[r], bv[j], acc[r][j]);
          }
          // Layer k writes H[k + 1] (or H[L]), never its input: no barrier before the writes.
#pragma unroll
          for (int r = 0; r < 8; ++r)
#pragma unroll
            for (int j = 0; j < 8; ++j) {
              const int m = tile_row(ty, r), o = tile_col(tx, j);
              if (o >= n_out) continue;
              const float y = activate(act, acc[r][j]);
              if (k < L - 1) H[k + 1][o * kSmallLda + m] = y;
              else H[L][o * kSmallLda + m] = m < cnt ? a.g_y[(base + m) * c.out + o] * act_grad_from_output(act, y) : 0.f;
            }
        }
        __syncthreads();
      }
    }
    // Backward, from the last layer down; H[k + 1] holds layer k's pre-activation gradient.
    for (int k = L - 1; k >= 0; --k) {
      const int n_in = mlp_layer_in(c, k), n_out = mlp_layer_out(c, k);
      const float* G = H[k + 1];
      const float* X = H[k];
      if (part) {
        // dW[o][i] += sum over the tile of G[o][m] X[i][m]; o = r * 8 + tx, i = q * 16 + ty.
        float acc[8][4], bacc[8];
#pragma unroll
        for (int r = 0; r < 8; ++r) {
          bacc[r] = 0.f;
#pragma unroll
          for (int q = 0; q < 4; ++q) acc[r][q] = 0.f;
        }
        for (int m = 0; m < TBM; m += 4) {
          float4 g4[8], x4[4];
#pragma unroll
          for (int r = 0; r < 8; ++r)
            g4[r] = r * 8 + tx < n_out ? *reinterpret_cast<const float4*>(G + (r * 8 + tx) * kSmallLda + m) : make_float4(0.f, 0.f, 0.f, 0.f);
#pragma unroll
          for (int q = 0; q < 4; ++q)
            x4[q] = q * 16 + ty < n_in ? *reinterpret_cast<const float4*>(X + (q * 16 + ty) * kSmallLda + m) : make_float4(0.f, 0.f, 0.f, 0.f);
#pragma unroll
          for (int r = 0; r < 8; ++r) {
            bacc[r] += (g4[r].x + g4[r].y) + (g4[r].z + g4[r].w);
#pragma unroll
            for (int q = 0; q < 4; ++q) {
              acc[r][q] = fmaf(g4[r].x, x4[q].x, acc[r][q]);
              acc[r][q] = fmaf(g4[r].y, x4[q].y, acc[r][q]);
              acc[r][q] = fmaf(g4[r].z, x4[q].z, acc[r][q]);
              acc[r][q] = fmaf(g4[r].w, x4[q].w, acc[r][q]);
            }
          }
        }
        float* P = part + go[k];
#pragma unroll
        for (int r = 0; r < 8; ++r) {
          const int o = r * 8 + tx;
          if (o >= n_out) continue;
#pragma unroll
          for (int q = 0; q < 4; ++q) {
            const int i = q * 16 + ty;
            if (i < n_in) P[o * n_in + i] += acc[r][q];
          }
          if (ty == 0) P[n_out * n_in + o] += bacc[r];
        }
      }
      if (k == 0 && !a.g_x) break;
      // dX[m][i] = sum over o of G[o][m] W[o][i], in 8 x 8 register tiles.
      const float* W = tsm + wo[k];
      float acc[8][8];
#pragma unroll
      for (int r = 0; r < 8; ++r)
#pragma unroll
        for (int j = 0; j < 8; ++j) acc[r][j] = 0.f;
      for (int o = 0; o < n_out; ++o) {
        const float4 a0 = *reinterpret_cast<const float4*>(G + o * kSmallLda + ty * 4);
        const float4 a1 = *reinterpret_cast<const float4*>(G + o * kSmallLda + TBM / 2 + ty * 4);
        const float av[8] = {a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w};
        float bv[8];
#pragma unroll
        for (int j = 0; j < 8; ++j) {
          const int i = tile_col(tx, j);
          bv[j] = i < n_in ? W[o * kSmallWs + i] : 0.f;
        }
#pragma unroll
        for (int r = 0; r < 8; ++r)
#pragma unroll
          for (int j = 0; j < 8; ++j) acc[r][j] = fmaf(av[r], bv[j], acc[r][j]);
      }
      __syncthreads();  // every read of G and X (this layer's weight gradient included) done
#pragma unroll
      for (int r = 0; r < 8; ++r)
#pragma unroll
        for (int j = 0; j < 8; ++j) {
          const int m = tile_row(ty, r), i = tile_col(tx, j);
          if (i >= n_in) continue;
          if (k > 0) H[k][i * kSmallLda + m] = acc[r][j] * act_grad_from_output(c.hidden_act, H[k][i * kSmallLda + m]);
          else if (m < cnt) a.g_x[(base + m) * c.in + i] = acc[r][j];
        }
      if (k > 0) __syncthreads();
    }
  }
}

// The layer loops over chunks of points. Launcher: tile(tc, gx, gy, gz, args), zero(ptr, floats),
// reduce(P, S, np, g), outgrad(count, y, g_y, act, G): G = g_y * act'(y). The CUDA one launches
// the kernels above; the CPU emulation runs them on threads.
template <class Launcher>
void tiled_forward_run(const MlpParams& p, bool tc, float* ws, int64_t chunk, Launcher& run) {
  const MlpConfig& c = p.cfg;
  if (!tc && small_eligible(c)) {  // all layers in one launch, no workspace
    SmallArgs s;
    s.c = c; s.n = p.n; s.params = p.params; s.x = p.x; s.y = p.y; s.acts = p.acts;
    run.small(s);
    return;
  }
  const int L = mlp_layer_count(c);
  int maxh = 0;
  for (int k = 0; k + 1 < L; ++k) maxh = mlp_layer_out(c, k) > maxh ? mlp_layer_out(c, k) : maxh;
  float* F[2] = {ws, ws + (int64_t)maxh * chunk};
  for (int64_t c0 = 0; c0 < p.n; c0 += chunk) {
    const int nc = (int)(p.n - c0 < chunk ? p.n - c0 : chunk);
    const float* W = p.params;
    float* prev = nullptr;
    for (int k = 0; k < L; ++k) {
      const int n_in = mlp_layer_in(c, k), n_out = mlp_layer_out(c, k);
      float* out = F[k & 1];
      if (p.acts && k + 1 < L) out = p.acts + (int64_t)k * c.width * p.n + c0 * n_out;  // saved for the backward
      TileArgs t;
      t.mode = 0; t.M = nc; t.J = n_out; t.K = n_in;
      t.A = k == 0 ? p.x + c0 * c.in : prev; t.a_sm = n_in; t.a_sk = 1;
      t.B = W; t.b_sk = 1; t.b_sj = n_in;
      t.bias = W + (int64_t)n_out * n_in;
      t.act = k == L - 1 ? c.out_act : c.hidden_act;
      t.C = k == L - 1 ? p.y + c0 * c.out : out; t.ldc = n_out;
      run.tile(tc, tile_blocks(nc, TBM), tile_blocks(n_out, TBN), 1, t);
      W += (int64_t)n_out * (n_in + 1);
      prev = out;
    }
  }
}

// ws: chunk * tiled_floats_per_point(c, true) floats; partial: S * mlp_param_count(c) floats.
template <class Launcher>
void tiled_backward_run(const MlpParams& p, bool tc, float* ws, float* partial, int64_t chunk, int S, Launcher& run) {
  const MlpConfig& c = p.cfg;
  if (!tc && small_bwd_eligible(c)) {  // one launch, no workspace (the launcher brings the partial sums)
    SmallArgs s;
    s.c = c; s.n = p.n; s.params = p.params; s.x = p.x; s.y = p.y; s.acts = p.acts; s.g_y = p.g_y; s.g_x = p.g_x;
    run.small_backward(s, p.g_params);
    return;
  }
  const int L = mlp_layer_count(c);
  const int64_t np = (int64_t)mlp_param_count(c);
  int64_t woff[kMaxMlpLayers + 1];
  float* H[kMaxMlpLayers + 1];  // H[k]: layer k's input for k >= 1 (hidden outputs)
  int maxw = 0;
  woff[0] = 0;
  float* q = ws;
  H[0] = nullptr;
  for (int k = 0; k < L; ++k) {
    const int n_in = mlp_layer_in(c, k), n_out = mlp_layer_out(c, k);
    woff[k + 1] = woff[k] + (int64_t)n_out * (n_in + 1);
    if (k + 1 < L) { H[k + 1] = q; q += (int64_t)n_out * chunk; }
    maxw = n_out > maxw ? n_out : maxw;
    maxw = n_in > maxw ? n_in : maxw;
  }
  float* G[2] = {q, q + (int64_t)maxw * chunk};
  if (p.g_params) run.zero(partial, (size_t)S * np);
  for (int64_t c0 = 0; c0 < p.n; c0 += chunk) {
    const int nc = (int)(p.n - c0 < chunk ? p.n - c0 : chunk);
    const float* x = p.x + c0 * c.in;
    if (p.acts) {
      // Saved by mlp_forward: hidden outputs from acts, the output from y; G[0] = g_y * act'(y).
      for (int k = 1; k < L; ++k) H[k] = p.acts + (int64_t)(k - 1) * c.width * p.n + c0 * c.width;
      run.outgrad((int64_t)nc * c.out, p.y + c0 * c.out, p.g_y + c0 * c.out, c.out_act, G[0]);
    }
    // Otherwise the forward, keeping the hidden outputs; the last layer writes its output gradient G[0].
    for (int k = 0; k < L && !p.acts; ++k) {
      const int n_in = mlp_layer_in(c, k), n_out = mlp_layer_out(c, k);
      const float* W = p.params + woff[k];
      TileArgs t;
      t.mode = 0; t.M = nc; t.J = n_out; t.K = n_in;
      t.A = k == 0 ? x : H[k]; t.a_sm = n_in; t.a_sk = 1;
      t.B = W; t.b_sk = 1; t.b_sj = n_in;
      t.bias = W + (int64_t)n_out * n_in;
      t.act = k == L - 1 ? c.out_act : c.hidden_act;
      t.ldc = n_out;
      if (k + 1 < L) t.C = H[k + 1];
      else { t.C = G[0]; t.gy = p.g_y + c0 * c.out; }
      run.tile(tc, tile_blocks(nc, TBM), tile_blocks(n_out, TBN), 1, t);
    }
    int cur = 0;
    for (int k = L - 1; k >= 0; --k) {
      const int n_in = mlp_layer_in(c, k), n_out = mlp_layer_out(c, k);
      const float* W = p.params + woff[k];
      const float* Ain = k == 0 ? x : H[k];
      if (p.g_params) {  // before the input gradient: g_x may alias x
        TileArgs t;
        t.mode = 2; t.M = n_out; t.J = n_in; t.K = nc;
        t.kps = tile_blocks(tile_blocks(nc, S), TBK) * TBK;
        t.A = G[cur]; t.a_sm = 1; t.a_sk = n_out;
        t.B = Ain; t.b_sk = n_in; t.b_sj = 1;
        t.P = partial + woff[k]; t.p_stride = np;
        run.tile(tc, tile_blocks(n_out, TBM), tile_blocks(n_in, TBN), S, t);
      }
      if (k > 0 || p.g_x) {
        TileArgs t;
        t.mode = 1; t.M = nc; t.J = n_in; t.K = n_out;
        t.A = G[cur]; t.a_sm = n_out; t.a_sk = 1;
        t.B = W; t.b_sk = n_in; t.b_sj = 1;
        t.ldc = n_in;
        if (k > 0) { t.C = G[cur ^ 1]; t.dact = H[k]; t.act = c.hidden_act; }
        else t.C = p.g_x + c0 * c.in;
        run.tile(tc, tile_blocks(nc, TBM), tile_blocks(n_in, TBN), 1, t);
        cur ^= 1;
      }
    }
  }
  if (p.g_params) run.reduce(partial, S, np, p.g_params);
}
// ---- tiled kernels (end)

struct TiledWorkspace;

struct CudaLauncher {
  void tile(bool tc, int64_t gx, int64_t gy, int gz, const TileArgs& t) {
    const dim3 grid((unsigned)gx, (unsigned)gy, (unsigned)gz);
    if (tc) mlp_tile_kernel<true><<<grid, TTHREADS, kTileSmemFloatsTc * sizeof(float)>>>(t);
    else mlp_tile_kernel<false><<<grid, TTHREADS, kTileSmemFloatsSimt * sizeof(float)>>>(t);
    cuda_check(cudaGetLastError(), "mlp_tile_kernel");
  }
  void outgrad(int64_t count, const float* y, const float* gy, int act, float* G) {
    launch_1d(Backend::CUDA, count, [=] DT_LAMBDA(int64_t i) { G[i] = gy[i] * act_grad_from_output(act, y[i]); });
  }
  void small(const SmallArgs& s) {
    const int smem = small_smem_floats(s.c) * (int)sizeof(float);
    cuda_check(cudaFuncSetAttribute(mlp_small_forward_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem),
               "cudaFuncSetAttribute");
    int per_sm = 0;
    cuda_check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, mlp_small_forward_kernel, TTHREADS, smem),
               "cudaOccupancyMaxActiveBlocksPerMultiprocessor");
    // Persistent blocks: each loads the weights once and walks several tiles.
    const int64_t tiles = tile_blocks(s.n, TBM);
    const int grid = (int)std::min<int64_t>(tiles, (int64_t)sm_count() * std::max(per_sm, 1));
    mlp_small_forward_kernel<<<grid, TTHREADS, smem>>>(s);
    cuda_check(cudaGetLastError(), "mlp_small_forward_kernel");
  }
  // Partial sums: one row per block, zeroed, added into g_params in block order after the kernel.
  TiledWorkspace* w = nullptr;
  void small_backward(SmallArgs s, float* g_params);
  void zero(float* ptr, size_t floats) { cuda_check(cudaMemsetAsync(ptr, 0, floats * sizeof(float)), "cudaMemsetAsync"); }
  void reduce(const float* P, int S, int64_t np, float* g) {
    mlp_partial_reduce_kernel<<<(unsigned)tile_blocks(np, 256), 256>>>(P, S, np, g);
    cuda_check(cudaGetLastError(), "mlp_partial_reduce_kernel");
  }
};

// Grow-only device workspace of the tiled path (activations of a chunk, split partial sums).
// Calls run on the default stream, in order, so one workspace serves them all.
struct TiledWorkspace {
  std::mutex mu;
  Buffer<float> ws, partial;
};
TiledWorkspace& tiled_workspace() {
  static TiledWorkspace* w = new TiledWorkspace();  // never destroyed: no cudaFree after the runtime shuts down
  return *w;
}

std::atomic<int64_t> g_tiled_max_chunk{0};
constexpr int64_t kTiledBudgetBytes = 512ll << 20;
constexpr int64_t kTiledPartialFloats = 32ll << 20;

struct TiledPlan {
  int64_t chunk = 0;
  int S = 1;
};

TiledPlan tiled_plan(const MlpConfig& c, int64_t n, bool backward) {
  TiledPlan pl;
  const int64_t fpp = std::max<int64_t>(1, tiled_floats_per_point(c, backward));
  int64_t chunk = std::max<int64_t>(4096, kTiledBudgetBytes / (4 * fpp));
  chunk = std::min<int64_t>(chunk, 1ll << 22);
  if (g_tiled_max_chunk.load() > 0) chunk = std::min<int64_t>(chunk, g_tiled_max_chunk.load());
  if (chunk < n) chunk = std::max<int64_t>(TBM, chunk / TBM * TBM);
  pl.chunk = std::min<int64_t>(chunk, n);
  // Weight-gradient splits: ~1024 points each, at most 256, partial sums within budget.
  const int64_t np = (int64_t)mlp_param_count(c);
  pl.S = (int)std::max<int64_t>(1, std::min<int64_t>({pl.chunk / 1024, 256, kTiledPartialFloats / np}));
  return pl;
}

bool tf32_supported() {
  int dev = 0, major = 0;
  cuda_check(cudaGetDevice(&dev), "cudaGetDevice");
  cuda_check(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev), "cudaDeviceGetAttribute");
  return major >= 8;
}

void tiled_forward(const MlpParams& p, bool tc) {
  if (!tc && small_eligible(p.cfg)) {
    CudaLauncher run;
    tiled_forward_run(p, tc, nullptr, 0, run);
    return;
  }
  const TiledPlan pl = tiled_plan(p.cfg, p.n, false);
  TiledWorkspace& w = tiled_workspace();
  std::lock_guard<std::mutex> lock(w.mu);
  float* ws = w.ws.reserve(Backend::CUDA, (size_t)std::max<int64_t>(1, pl.chunk * tiled_floats_per_point(p.cfg, false)));
  CudaLauncher run;
  tiled_forward_run(p, tc, ws, pl.chunk, run);
}

void CudaLauncher::small_backward(SmallArgs s, float* g_params) {
  const int smem = small_bwd_smem_floats(s.c) * (int)sizeof(float);
  cuda_check(cudaFuncSetAttribute(mlp_small_backward_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem),
             "cudaFuncSetAttribute");
  int per_sm = 0;
  cuda_check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, mlp_small_backward_kernel, TTHREADS, smem),
             "cudaOccupancyMaxActiveBlocksPerMultiprocessor");
  const int grid = (int)std::min<int64_t>(tile_blocks(s.n, TBM), (int64_t)sm_count() * std::max(per_sm, 1));
  const int64_t np = (int64_t)mlp_param_count(s.c);
  if (g_params) {
    s.partial = w->partial.reserve(Backend::CUDA, (size_t)grid * np);
    zero(s.partial, (size_t)grid * np);
  }
  mlp_small_backward_kernel<<<grid, TTHREADS, smem>>>(s);
  cuda_check(cudaGetLastError(), "mlp_small_backward_kernel");
  if (g_params) reduce(s.partial, grid, np, g_params);
}

void tiled_backward(const MlpParams& p, bool tc) {
  TiledWorkspace& w = tiled_workspace();
  std::lock_guard<std::mutex> lock(w.mu);
  if (!tc && small_bwd_eligible(p.cfg)) {
    CudaLauncher run;
    run.w = &w;
    tiled_backward_run(p, tc, nullptr, nullptr, 0, 1, run);
    return;
  }
  const TiledPlan pl = tiled_plan(p.cfg, p.n, true);
  float* ws = w.ws.reserve(Backend::CUDA, (size_t)(pl.chunk * tiled_floats_per_point(p.cfg, true)));
  float* partial = p.g_params ? w.partial.reserve(Backend::CUDA, (size_t)pl.S * mlp_param_count(p.cfg)) : nullptr;
  CudaLauncher run;
  tiled_backward_run(p, tc, ws, partial, pl.chunk, pl.S, run);
}

}  // namespace
#endif

namespace {
std::atomic<int> g_default_path{-1};

MlpCudaPath env_cuda_path() {
  const char* e = std::getenv("DYNTET_MLP_PATH");
  if (!e || !*e) return MlpCudaPath::Tiled;
  const MlpCudaPath p = mlp_parse_cuda_path(e);
  return p == MlpCudaPath::Auto ? MlpCudaPath::Tiled : p;
}

[[maybe_unused]] MlpCudaPath resolve_path(MlpCudaPath p) { return p == MlpCudaPath::Auto ? mlp_default_cuda_path() : p; }
}  // namespace

MlpCudaPath mlp_parse_cuda_path(const std::string& name) {
  if (name == "auto") return MlpCudaPath::Auto;
  if (name == "tiled") return MlpCudaPath::Tiled;
  if (name == "tf32") return MlpCudaPath::TiledTF32;
  if (name == "fused") return MlpCudaPath::Fused;
  if (name == "half") return MlpCudaPath::Half;
  if (name == "half-layered") return MlpCudaPath::HalfLayered;
  throw OpError("mlp: unknown CUDA path '" + name + "' (DYNTET_MLP_PATH): use tiled, tf32, fused, half, half-layered or auto");
}

MlpCudaPath mlp_default_cuda_path() {
  int v = g_default_path.load();
  if (v < 0) {
    v = (int)env_cuda_path();
    g_default_path.store(v);
  }
  return (MlpCudaPath)v;
}

void mlp_set_cuda_path(MlpCudaPath path) {
  g_default_path.store((int)(path == MlpCudaPath::Auto ? env_cuda_path() : path));
}

int64_t mlp_set_tiled_max_chunk(int64_t points) {
#if defined(__CUDACC__)
  return g_tiled_max_chunk.exchange(points > 0 ? points : 0);
#else
  (void)points;
  return 0;
#endif
}

const char* mlp_cuda_path(const MlpConfig& c) { return mlp_cuda_path(c, MlpCudaPath::Auto); }

const char* mlp_cuda_path(const MlpConfig& c, MlpCudaPath path) {
#if defined(__CUDACC__)
  switch (resolve_path(path)) {
    case MlpCudaPath::TiledTF32: return tf32_supported() ? "tiled tf32" : "tiled";
    case MlpCudaPath::Fused: return fused_eligible(c) ? "fused" : "per-point";
    case MlpCudaPath::Half: return mlp_half_eligible(c) ? "half" : mlp_half_layered_eligible(c) ? "half layered" : tf32_supported() ? "tiled tf32" : "tiled";
    case MlpCudaPath::HalfLayered: return mlp_half_layered_eligible(c) ? "half layered" : tf32_supported() ? "tiled tf32" : "tiled";
    default: return "tiled";
  }
#else
  (void)c; (void)path;
  return "none (CPU-only build)";
#endif
}

std::string mlp_cuda_plan(const MlpConfig& c, int64_t n) { return mlp_cuda_plan(c, n, MlpCudaPath::Auto); }

std::string mlp_cuda_plan(const MlpConfig& c, int64_t n, MlpCudaPath path) {
#if defined(__CUDACC__)
  MlpCudaPath r = resolve_path(path);
  if (r == MlpCudaPath::Half || r == MlpCudaPath::HalfLayered) {
    if (r == MlpCudaPath::Half && mlp_half_eligible(c)) return mlp_half_plan(c, n);
    if (mlp_half_layered_eligible(c)) return mlp_half_layered_plan(c, n);
    r = MlpCudaPath::TiledTF32;
  }
  if (r == MlpCudaPath::Tiled || r == MlpCudaPath::TiledTF32) {
    const TiledPlan f = tiled_plan(c, n, false), b = tiled_plan(c, n, true);
    return std::string(mlp_cuda_path(c, r)) + " " + std::to_string(TBM) + "x" + std::to_string(TBN) + " tiles, chunks of " +
           std::to_string(f.chunk) + " (fwd) / " + std::to_string(b.chunk) + " (bwd) points, dW in " + std::to_string(b.S) + " splits";
  }
  if (!fused_eligible(c)) return "per-point";
  const FusedPlan f = plan_forward(c, n), b = plan_backward(c, n);
  std::string s = f.ok ? "fused: fwd tile " + std::to_string(f.P) : std::string("fwd per-point");
  s += b.ok ? ", bwd tile " + std::to_string(b.P) + (b.acc ? " (grads on chip" : " (atomics per tile") + (b.wsm ? ")" : ", weights from global)") : ", bwd per-point";
  return s;
#else
  (void)c; (void)n; (void)path;
  return "none (CPU-only build)";
#endif
}

void mlp_forward(Backend b, const MlpParams& p) {
  mlp_validate(p.cfg, "mlp_forward");
  op_require(p.n >= 0 && (p.n == 0 || (p.params && p.x && p.y)), "mlp_forward", "params, x and y must be non-null for n > 0");
  if (p.n == 0) return;
#if defined(__CUDACC__)
  if (b == Backend::CUDA) {
    const MlpCudaPath path = resolve_path(p.path);
    const bool half = path == MlpCudaPath::Half || path == MlpCudaPath::HalfLayered;
    if (path == MlpCudaPath::Half && mlp_half_eligible(p.cfg)) {
      mlp_half_forward(p);
      return;
    }
    if (half && mlp_half_layered_eligible(p.cfg)) {
      mlp_half_layered_forward(p);
      return;
    }
    if (path == MlpCudaPath::Tiled || path == MlpCudaPath::TiledTF32 || half) {
      tiled_forward(p, path != MlpCudaPath::Tiled && tf32_supported());
      return;
    }
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
  op_require(!p.acts || p.y, "mlp_backward", "y (the forward's output) must be non-null when acts is set");
#if defined(__CUDACC__)
  if (b == Backend::CUDA) {
    const MlpCudaPath path = resolve_path(p.path);
    const bool half = path == MlpCudaPath::Half || path == MlpCudaPath::HalfLayered;
    if (path == MlpCudaPath::Half && mlp_half_eligible(p.cfg)) {
      mlp_half_backward(p);
      return;
    }
    if (half && mlp_half_layered_eligible(p.cfg)) {
      mlp_half_layered_backward(p);
      return;
    }
    if (path == MlpCudaPath::Tiled || path == MlpCudaPath::TiledTF32 || half) {
      tiled_backward(p, path != MlpCudaPath::Tiled && tf32_supported());
      return;
    }
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
