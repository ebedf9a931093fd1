#include "mlp_half.h"

#include <algorithm>
#include <mutex>
#if defined(__CUDACC__)
#include <cuda_fp16.h>
#endif

namespace dyntet {
namespace train {

namespace {
// ---- half layout (begin; tests/half_mlp_emulation.py compiles the regions between these markers)
constexpr int kHalfMaxWidth = 128;  // every layer's input and hidden width
constexpr int kHalfMaxOut = 16;     // the last layer runs as two 8-wide mma tiles
constexpr int kPad = 8;             // halves of padding per shared-memory row (see the bank notes below)
constexpr size_t kHalfSmemLimit = 227 * 1024;  // shared memory per SM (and per block) on sm_80 / sm_90

int half_wp(int width) { return width <= 16 ? 16 : width <= 32 ? 32 : width <= 64 ? 64 : 128; }

// Shared-memory geometry of one config. Layer k's weights: [nout][kin + kPad] fp16 (row o holds
// W[o][0..in), zero-padded to kin, a multiple of 16; nout is the padded width, 16 for the last
// layer; rows beyond the real outputs are zero). Row strides of (kin + 8) halves put the 8 rows
// of a fragment load in 8 distinct bank groups, so the 32-bit operand loads and ldmatrix are
// conflict-free. dW accumulators: per layer nout x kin floats in mma fragment order.
struct HalfLayout {
  int L = 0, wp = 0, np = 0;
  int kin[kMaxMlpLayers] = {}, nout[kMaxMlpLayers] = {}, in_real[kMaxMlpLayers] = {}, out_real[kMaxMlpLayers] = {};
  int woff[kMaxMlpLayers] = {}, boff[kMaxMlpLayers] = {}, pofs[kMaxMlpLayers] = {}, dwoff[kMaxMlpLayers] = {};
  int w_halves = 0, b_floats = 0, dw_floats = 0;
};

HalfLayout half_layout(const MlpConfig& c) {
  HalfLayout l;
  l.L = mlp_layer_count(c);
  l.wp = half_wp(c.width);
  int w = 0, b = 0, p = 0, d = 0;
  for (int k = 0; k < l.L; ++k) {
    l.in_real[k] = mlp_layer_in(c, k);
    l.out_real[k] = mlp_layer_out(c, k);
    l.kin[k] = k == 0 ? (c.in + 15) / 16 * 16 : l.wp;
    l.nout[k] = k == l.L - 1 ? 16 : l.wp;
    l.woff[k] = w; l.boff[k] = b; l.pofs[k] = p; l.dwoff[k] = d;
    w += l.nout[k] * (l.kin[k] + kPad);
    b += l.nout[k];
    p += l.out_real[k] * (l.in_real[k] + 1);
    d += l.nout[k] * l.kin[k];
  }
  l.w_halves = (w + 7) / 8 * 8;
  l.b_floats = (b + 3) / 4 * 4;
  l.dw_floats = d;
  l.np = p;
  return l;
}

[[maybe_unused]] size_t half_fwd_smem(const HalfLayout& l, int nw) {
  return (size_t)l.w_halves * 2 + (size_t)l.b_floats * 4 + (size_t)nw * 16 * (l.kin[0] + kPad) * 2;
}
// The fused backward's shared memory: weights, biases, the tile's input, every hidden output, one
// gradient buffer (all fp16), then the fp32 weight- and bias-gradient sums.
size_t half_fused_bwd_smem(const HalfLayout& l, int nw) {
  const size_t R = (size_t)nw * 16;
  const size_t halves = (size_t)l.w_halves + R * (l.kin[0] + kPad) + (size_t)(l.L - 1) * R * (l.wp + kPad) + R * (l.wp + kPad);
  return halves * 2 + ((size_t)l.b_floats * 2 + l.dw_floats) * 4;
}
// The fused kernels take a net when two 8-warp blocks of the backward fit an SM (the 2x64 texture:
// 109 KB); wider nets run the layered form. Measured in one call (H200): 2x128 SDF + deformation,
// fused forward with a two-kernel backward (since removed) 9.58 ms against 6.07 layered; hash +
// 5x128 at 262k, 3.45 against 2.26 ms. On the H100 the 2x64 MLP at 1M: fused 1.28 ms against
// 2.50 layered (before the layered epilogue went through shared memory).
bool half_bwd_fused(const HalfLayout& l) { return half_fused_bwd_smem(l, 8) <= kHalfSmemLimit / 2; }

// Weight-gradient work split: a gradient tile of nout x kin (each at most 128: wider layers are cut
// into tiles of 128, see mlp_half_wgrad_kernel) in warp tiles of mtc x ntc mma tiles (16 x 8 each;
// ntc even, as ldmatrix.x4 gives two), as large as possible (fewer shared-memory loads per mma)
// while every warp of the block gets one.
struct HalfWgradTasks {
  int mtc = 1, ntc = 2, across = 1, count = 1;  // across: tiles along the input axis
};
DT_HD HalfWgradTasks half_wgrad_with(int MT, int NT, int mtc, int ntc) {
  HalfWgradTasks t;
  t.mtc = mtc;
  t.ntc = ntc;
  t.across = (NT + ntc - 1) / ntc;
  t.count = (MT + mtc - 1) / mtc * t.across;
  return t;
}
DT_HD HalfWgradTasks half_wgrad_tasks(int nout, int kin, int nw) {
  const int MT = nout / 16, NT = kin / 8;
  // At most 8 tasks for a tile of at most 128 x 128 (MT <= 8, NT <= 16); shrink while that stays within nw.
  HalfWgradTasks t = half_wgrad_with(MT, NT, MT < 2 ? MT : 2, NT < 8 ? NT : 8);
  while (t.count < nw) {
    const HalfWgradTasks s = t.mtc > 1 ? half_wgrad_with(MT, NT, 1, t.ntc) : t.ntc > 2 ? half_wgrad_with(MT, NT, t.mtc, t.ntc - 2) : t;
    if (s.count == t.count || s.count > nw) break;
    t = s;
  }
  return t;
}
constexpr int kWgradTile = 128;  // the largest gradient tile one block sums (per axis)
// Gradient tiles of a layer (blocks per row slice of the weight-gradient kernel).
inline int half_wgrad_tiles(int nout, int kin) { return ((nout + kWgradTile - 1) / kWgradTile) * ((kin + kWgradTile - 1) / kWgradTile); }
constexpr int kWgradRows = 64;  // rows staged in shared memory per step of the weight-gradient kernel
// Two ring slots of 64 rows of the tile's columns of G and X (fp16).
[[maybe_unused]] size_t half_wgrad_smem(int nout, int kin) {
  return (size_t)2 * kWgradRows * ((std::min(nout, kWgradTile) + kPad) + (std::min(kin, kWgradTile) + kPad)) * 2;
}

// Workspace budget of a chunk of rows (backward, and the layered form's forward).
constexpr int64_t kHalfWorkspaceBudget = (int64_t)512 << 20;
// Rows per chunk (a multiple of 16, at most n rounded up) whose workspace stays within budget bytes.
inline int64_t chunk_rows(int64_t bytes_per_row, int64_t n, int64_t budget) {
  const int64_t rows = std::max<int64_t>(16, budget / bytes_per_row / 16 * 16);
  return std::min<int64_t>(rows, (n + 15) / 16 * 16);
}
// The layered form, for nets up to 256 wide (wider than the fused kernels take) and as an
// alternative for narrower ones (MlpCudaPath::HalfLayered): one tensor-core GEMM launch per layer
// over a chunk of rows, activations as fp16 in global memory between layers, the bias and the
// activation (forward) or the activation's derivative (backward) applied in the GEMM's epilogue;
// the weight gradient by mlp_half_wgrad_kernel per layer. Sizes: inputs and widths padded to 16.
constexpr int kLayeredMaxWidth = 256;
constexpr int kGemmBM = 128, kGemmBK = 32;  // GEMM block tile: 128 rows x BN columns, K in steps of 32
constexpr int kGemmStages = 4;              // operand tiles in flight (cp.async ring)
// Shared memory of a GEMM block of BN columns: the operand ring, reused by the fp32 output tile.
inline size_t layered_gemm_smem(int bn) {
  return std::max((size_t)kGemmStages * (kGemmBM + bn) * (kGemmBK + kPad) * 2, (size_t)kGemmBM * (bn + 8) * 4);
}
inline int pad16(int v) { return (v + 15) / 16 * 16; }

// Layer k's prepared weights: W_k [nout][kin] and W_k^T [kin][nout] as fp16 (zero-padded), biases
// [nout] as fp32. wp: the padded hidden width (the row stride of hidden outputs and gradients).
struct LayeredLayout {
  int L = 0, wp = 0, gmax = 0;
  int kin[kMaxMlpLayers] = {}, nout[kMaxMlpLayers] = {}, in_real[kMaxMlpLayers] = {}, out_real[kMaxMlpLayers] = {}, pofs[kMaxMlpLayers] = {};
  int64_t woff[kMaxMlpLayers] = {}, wtoff[kMaxMlpLayers] = {}, boff[kMaxMlpLayers] = {};
  int64_t w_halves = 0, b_floats = 0, np = 0;
  int max_tiles = 1;  // the most weight-gradient tiles of any layer (half_wgrad_tiles)
};

inline LayeredLayout layered_layout(const MlpConfig& c) {
  LayeredLayout l;
  l.L = mlp_layer_count(c);
  l.wp = pad16(c.width);
  int64_t w = 0, b = 0, p = 0;
  for (int k = 0; k < l.L; ++k) {
    l.in_real[k] = mlp_layer_in(c, k);
    l.out_real[k] = mlp_layer_out(c, k);
    l.kin[k] = pad16(l.in_real[k]);
    l.nout[k] = pad16(l.out_real[k]);
    l.woff[k] = w;
    w += (int64_t)l.nout[k] * l.kin[k];
    l.wtoff[k] = w;
    w += (int64_t)l.nout[k] * l.kin[k];
    l.boff[k] = b;
    b += l.nout[k];
    l.pofs[k] = (int)p;
    p += (int64_t)l.out_real[k] * (l.in_real[k] + 1);
    l.gmax = std::max(l.gmax, l.nout[k]);
    l.max_tiles = std::max(l.max_tiles, half_wgrad_tiles(l.nout[k], l.kin[k]));
  }
  l.w_halves = (w + 7) / 8 * 8;
  l.b_floats = b;
  l.np = p;
  return l;
}

// Workspace of a chunk of m rows, in halves: the input as fp16 [m][kin0]; the hidden outputs [L -
// 1][m][wp] (unless the forward saved them in MlpParams::acts); two gradient buffers [m][gmax]
// (layer k's gradient in one, k - 1's into the other); the output as fp32 [m][out] (backward
// without saved activations: out_act' needs it).
struct LayeredSpace {
  int64_t x0 = 0, h = 0, g[2] = {}, yf = 0, halves = 0;
};
inline LayeredSpace layered_space(const LayeredLayout& l, int64_t m, bool saved, bool backward) {
  LayeredSpace s;
  int64_t o = 0;
  s.x0 = o;
  o += m * l.kin[0];
  s.h = o;
  if (!saved) o += (int64_t)(l.L - 1) * m * l.wp;
  if (backward) {
    s.g[0] = o;
    o += m * l.gmax;
    s.g[1] = o;
    o += m * l.gmax;
    s.yf = o;
    if (!saved) o += m * 2 * l.out_real[l.L - 1];
  }
  s.halves = (o + 7) / 8 * 8;
  return s;
}
inline int64_t layered_chunk(const LayeredLayout& l, int64_t n, bool saved, bool backward, int64_t budget = kHalfWorkspaceBudget) {
  return chunk_rows(layered_space(l, 16, saved, backward).halves * 2 / 16 + 1, n, budget);
}
// ---- half layout (end)
}  // namespace

bool mlp_half_eligible(const MlpConfig& c) {
  // width >= 8: fp16 activations of the padded width fit MlpParams::acts' bytes.
  if (c.hidden_layers < 1 || c.width < 8 || c.width > kHalfMaxWidth || c.in > kHalfMaxWidth || c.out > kHalfMaxOut) return false;
  if (mlp_layer_count(c) > kMaxMlpLayers) return false;
  return half_bwd_fused(half_layout(c));  // (the forward's shared memory is a part of the backward's)
}

bool mlp_half_layered_eligible(const MlpConfig& c) {
  // width >= 8: fp16 activations of the padded width fit MlpParams::acts' bytes.
  return c.hidden_layers >= 1 && c.width >= 8 && c.width <= kLayeredMaxWidth && c.in <= kLayeredMaxWidth && c.out <= kLayeredMaxWidth &&
         mlp_layer_count(c) <= kMaxMlpLayers;
}

#if defined(__CUDACC__)
namespace {

// ---- half kernels (begin)
// Two fp16 values (shared or global memory).
__device__ __forceinline__ uint32_t load32(const __half* p) { return *reinterpret_cast<const uint32_t*>(p); }
__device__ __forceinline__ uint32_t pack_half2(float lo, float hi) {
  const __half2 h = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&h);
}
__device__ __forceinline__ float2 unpack_half2(uint32_t v) {
  __half2 h;
  *reinterpret_cast<uint32_t*>(&h) = v;
  return __half22float2(h);
}

// ---- half mma (begin; the emulation substitutes these)
// D += A B for one 16 x 8 x 16 tile: A row-major 16 x 16 (4 regs), B 16 x 8 "col" (2 regs), fp32 D.
// Fragments (PTX ISA, mma.m16n8k16, g = lane / 4, t = lane % 4): A reg 0: (row g, cols 2t, 2t+1),
// reg 1: row g + 8, reg 2: cols + 8, reg 3: both; B reg 0: (k 2t, 2t+1; n g), reg 1: k + 8;
// D: d0, d1 (row g, cols 2t, 2t+1), d2, d3 (row g + 8).
__device__ __forceinline__ void mma16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Four 8 x 8 fp16 matrices: lane l gives the address of row (l % 8) of matrix l / 8 and receives,
// for matrix j, the elements (row g; columns 2t, 2t+1) of it in r[j].
__device__ __forceinline__ void ldsm_x4(uint32_t (&r)[4], const __half* p) {
  const unsigned s = (unsigned)__cvta_generic_to_shared(p);
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(s));
}

// Four 8 x 8 fp16 matrices, transposed: lane l gives the address of row (l % 8) of matrix l / 8 and
// receives, for matrix j, the elements (rows 2t, 2t+1; column g) of it in r[j].
__device__ __forceinline__ void ldsm_x4_t(uint32_t (&r)[4], const __half* p) {
  const unsigned s = (unsigned)__cvta_generic_to_shared(p);
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(s));
}

// 16 bytes global -> shared without a register round trip (cp.async, sm_80+); zeros when !valid
// (src-size 0: nothing is read, src only has to be a valid address). Completion by groups:
// commit closes a group, wait<N> waits until at most N groups are still in flight.
__device__ __forceinline__ void cp_async16(__half* dst, const __half* src, bool valid) {
  const unsigned s = (unsigned)__cvta_generic_to_shared(dst);
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(src), "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

// ---- half mma (end)

struct HalfArgs {
  MlpConfig c;
  int64_t n = 0;
  const float* params = nullptr;
  const float* x = nullptr;
  float* y = nullptr;           // forward output; backward: the saved output when acts is set
  __half* acts = nullptr;       // hidden outputs, [layer][point][wp] fp16
  const float* g_y = nullptr;
  float* g_x = nullptr;         // may alias x
  float* partial = nullptr;     // backward: one row of np floats per block
  const float* g_absmax = nullptr;  // backward: max |g_y| (device), for the gradient scale; null: unscaled
};

// Gradient scaling. Output gradients are often tiny (a mean over millions of pixels gives ~1e-7),
// below fp16's smallest subnormal (6e-8): cast as they are, they would vanish and the net would
// not train. So G is multiplied by the power of two that brings max |g_y| into [128, 256), leaving
// 256x headroom below fp16's 65504 for the growth through the layers, and the fp32 results are
// multiplied back (exact: powers of two). Zero or non-finite maxima leave G unscaled (NaN still
// propagates, so the trainer sees it).
__device__ __forceinline__ float half_grad_scale(const float* absmax) {
  if (!absmax) return 1.f;
  const float m = *absmax;
  if (!(m > 0.f && m <= 3.0e38f)) return 1.f;
  int e = 0;
  frexpf(m, &e);  // m = f * 2^e, f in [0.5, 1)
  const int k = 8 - e;
  return ldexpf(1.f, k < -100 ? -100 : k > 100 ? 100 : k);
}

// Weights (fp16, padded) and biases (fp32) of every layer into shared memory.
__device__ void half_load_weights(const HalfLayout& l, const float* params, __half* Ws, float* Bs) {
  for (int k = 0; k < l.L; ++k) {
    const int kin = l.kin[k], nout = l.nout[k], ni = l.in_real[k], no = l.out_real[k];
    const float* P = params + l.pofs[k];
    for (int e = threadIdx.x; e < nout * kin; e += blockDim.x) {
      const int o = e / kin, i = e - o * kin;
      Ws[l.woff[k] + o * (kin + kPad) + i] = __float2half_rn(o < no && i < ni ? P[o * ni + i] : 0.f);
    }
    for (int o = threadIdx.x; o < nout; o += blockDim.x) Bs[l.boff[k] + o] = o < no ? P[no * ni + o] : 0.f;
  }
}

// A warp's 16 input rows (fp32, row-major `in` wide) into shared memory as fp16, zero-padded.
__device__ __forceinline__ void half_load_x(const float* x, int in, int64_t n, int64_t r0, int kin, __half* xs) {
  const int lane = threadIdx.x & 31, ld = kin + kPad;
  for (int e = lane; e < 16 * kin; e += 32) {
    const int r = e / kin, i = e - r * kin;
    xs[r * ld + i] = __float2half_rn(r0 + r < n && i < in ? x[(r0 + r) * in + i] : 0.f);
  }
}

// Accumulators of NT 8-wide column tiles start from the bias (fp32), like the CPU loop.
template <int NT>
__device__ __forceinline__ void half_bias_init(float (&acc)[NT][4], const float* b) {
  const int t = threadIdx.x & 3;
#pragma unroll
  for (int nt = 0; nt < NT; ++nt) {
    const float b0 = b[nt * 8 + 2 * t], b1 = b[nt * 8 + 2 * t + 1];
    acc[nt][0] = b0; acc[nt][1] = b1; acc[nt][2] = b0; acc[nt][3] = b1;
  }
}

// acc (NT column tiles of 16 x 8) += A (one 16 x 16 operand tile at column kt * 16) W^T, W rows
// from shared memory ([n][ld] fp16, n = output). One ldmatrix.x4 gives the B fragments of two
// column tiles: matrices (n 0-7, k 0-7), (n 0-7, k 8-15), (n 8-15, k 0-7), (n 8-15, k 8-15).
template <int NT>
__device__ __forceinline__ void half_mma_row(float (&acc)[NT][4], const uint32_t (&a)[4], const __half* W, int ld, int kt) {
  const int lane = threadIdx.x & 31;
  const __half* w = W + ((lane & 7) + (lane >> 4) * 8) * ld + kt * 16 + ((lane >> 3) & 1) * 8;
#pragma unroll
  for (int np2 = 0; np2 < NT / 2; ++np2) {
    uint32_t B[4];
    ldsm_x4(B, w + np2 * 16 * ld);
    mma16816(acc[2 * np2], a, B[0], B[1]);
    mma16816(acc[2 * np2 + 1], a, B[2], B[3]);
  }
}

// The accumulators of a 16 x (8 NT) layer output, through the activation, as fp16 operand tiles
// of the next layer (column tiles 2j and 2j + 1 make operand tile j).
template <int NT>
__device__ __forceinline__ void half_to_operand(const float (&acc)[NT][4], uint32_t (&af)[NT / 2][4], int act) {
#pragma unroll
  for (int j = 0; j < NT / 2; ++j) {
    af[j][0] = pack_half2(activate(act, acc[2 * j][0]), activate(act, acc[2 * j][1]));
    af[j][1] = pack_half2(activate(act, acc[2 * j][2]), activate(act, acc[2 * j][3]));
    af[j][2] = pack_half2(activate(act, acc[2 * j + 1][0]), activate(act, acc[2 * j + 1][1]));
    af[j][3] = pack_half2(activate(act, acc[2 * j + 1][2]), activate(act, acc[2 * j + 1][3]));
  }
}

// Stores operand tiles (16 rows) at dst[row * ld + col] (shared or global memory).
template <int KT>
__device__ __forceinline__ void half_store_operand(const uint32_t (&af)[KT][4], __half* dst, int64_t ld) {
  const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
#pragma unroll
  for (int j = 0; j < KT; ++j) {
    __half* d = dst + j * 16 + 2 * t;
    *reinterpret_cast<uint32_t*>(d + g * ld) = af[j][0];
    *reinterpret_cast<uint32_t*>(d + (g + 8) * ld) = af[j][1];
    *reinterpret_cast<uint32_t*>(d + g * ld + 8) = af[j][2];
    *reinterpret_cast<uint32_t*>(d + (g + 8) * ld + 8) = af[j][3];
  }
}

// The forward of a warp's 16 points, input rows xs in shared memory (fp16, ld kin[0] + kPad).
// on_hidden(k, af): layer k's activated output (fp16 operand tiles); returns the last layer's
// pre-activation in out[2][4] (16 x 16, fp32).
template <int WP, class OnHidden>
__device__ __forceinline__ void half_warp_forward(const HalfLayout& l, int hidden_act, const __half* Ws, const float* Bs,
                                                  const __half* xs, float (&out)[2][4], OnHidden on_hidden) {
  constexpr int NT = WP / 8, KT = WP / 16;
  const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  uint32_t af[KT][4];
  {
    float acc[NT][4];
    half_bias_init<NT>(acc, Bs + l.boff[0]);
    const int ldx = l.kin[0] + kPad;
    for (int kt = 0; kt < l.kin[0] / 16; ++kt) {
      const __half* p = xs + g * ldx + kt * 16 + 2 * t;
      const uint32_t a[4] = {load32(p), load32(p + 8 * ldx), load32(p + 8), load32(p + 8 * ldx + 8)};
      half_mma_row<NT>(acc, a, Ws + l.woff[0], ldx, kt);
    }
    half_to_operand<NT>(acc, af, hidden_act);
    on_hidden(0, af);
  }
  for (int k = 1; k < l.L - 1; ++k) {
    float acc[NT][4];
    half_bias_init<NT>(acc, Bs + l.boff[k]);
#pragma unroll
    for (int kt = 0; kt < KT; ++kt) half_mma_row<NT>(acc, af[kt], Ws + l.woff[k], WP + kPad, kt);
    half_to_operand<NT>(acc, af, hidden_act);
    on_hidden(k, af);
  }
  half_bias_init<2>(out, Bs + l.boff[l.L - 1]);
#pragma unroll
  for (int kt = 0; kt < KT; ++kt) half_mma_row<2>(out, af[kt], Ws + l.woff[l.L - 1], WP + kPad, kt);
}

// A warp's input gradient of one layer: acc (16 x kin, fp32) = G W, G as KT operand tiles (16 x
// nout), W^T fragments from the layer's shared-memory weights ([nout][kin + kPad]) by ldmatrix.trans.
template <int KT>
__device__ __forceinline__ void half_input_grad(float (&acc)[kHalfMaxWidth / 8][4], const uint32_t (&gaf)[KT][4], const __half* W,
                                                int kin, int nout) {
  constexpr int MAXN = kHalfMaxWidth / 8;
  const int lane = threadIdx.x & 31, ldw = kin + kPad, NTk = kin / 8;
#pragma unroll
  for (int nt = 0; nt < MAXN; ++nt) acc[nt][0] = acc[nt][1] = acc[nt][2] = acc[nt][3] = 0.f;
#pragma unroll
  for (int kt = 0; kt < KT; ++kt) {
    if (kt * 16 >= nout) break;
#pragma unroll
    for (int np2 = 0; np2 < MAXN / 2; ++np2) {
      if (np2 * 2 >= NTk) break;
      uint32_t B[4];  // B(o, i) = W[o][i]: (o 0-7, i), (o 8-15, i), (o 0-7, i + 8), (o 8-15, i + 8)
      ldsm_x4_t(B, W + (kt * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * ldw + np2 * 16 + (lane >> 4) * 8);
      mma16816(acc[2 * np2], gaf[kt], B[0], B[1]);
      mma16816(acc[2 * np2 + 1], gaf[kt], B[2], B[3]);
    }
  }
}

// A warp's 16 rows of the fp32 input gradient (acc from half_input_grad, scaled back by gs_inv).
__device__ __forceinline__ void half_store_input_grad(const float (&acc)[kHalfMaxWidth / 8][4], float* g_x, int in, int64_t n, int64_t r0,
                                                      int kin, float gs_inv) {
  const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
#pragma unroll
  for (int nt = 0; nt < kHalfMaxWidth / 8; ++nt) {
    if (nt * 8 >= kin) break;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int row = g + (j >> 1) * 8, col = nt * 8 + 2 * t + (j & 1);
      if (r0 + row < n && col < in) g_x[(r0 + row) * in + col] = acc[nt][j] * gs_inv;
    }
  }
}

// Visits the 16 x 16 last-layer fragment: f(row, col, value) (value by reference when out is not const).
template <class A, class F>
__device__ __forceinline__ void half_out_visit(A& out, F f) {
  const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
#pragma unroll
  for (int nt = 0; nt < 2; ++nt)
#pragma unroll
    for (int j = 0; j < 4; ++j) f(g + (j >> 1) * 8, nt * 8 + 2 * t + (j & 1), out[nt][j]);
}

template <int WP>
__global__ void __launch_bounds__(256) mlp_half_forward_kernel(HalfArgs a, HalfLayout l) {
  extern __shared__ __align__(16) unsigned char hsm[];
  __half* Ws = reinterpret_cast<__half*>(hsm);
  float* Bs = reinterpret_cast<float*>(hsm + (size_t)l.w_halves * 2);
  const int warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
  __half* xs = reinterpret_cast<__half*>(Bs + l.b_floats) + warp * 16 * (l.kin[0] + kPad);
  half_load_weights(l, a.params, Ws, Bs);
  __syncthreads();
  const MlpConfig c = a.c;
  // From here each warp works alone on its 16 points (its own rows of xs).
  for (int64_t r0 = ((int64_t)blockIdx.x * nw + warp) * 16; r0 < a.n; r0 += (int64_t)gridDim.x * nw * 16) {
    half_load_x(a.x, c.in, a.n, r0, l.kin[0], xs);
    __syncwarp();
    float out[2][4];
    half_warp_forward<WP>(l, c.hidden_act, Ws, Bs, xs, out, [&](int k, const uint32_t (&af)[WP / 16][4]) {
      if (!a.acts) return;
      // Rows past n are stored too when the buffer has them; skip them (16-row tiles may overhang).
      if (r0 + 16 <= a.n) {
        half_store_operand<WP / 16>(af, a.acts + ((int64_t)k * a.n + r0) * WP, WP);
      } else {
        const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
#pragma unroll
        for (int j = 0; j < WP / 16; ++j)
#pragma unroll
          for (int q = 0; q < 4; ++q) {
            const int row = g + (q & 1) * 8, col = j * 16 + (q >> 1) * 8 + 2 * t;
            if (r0 + row < a.n) *reinterpret_cast<uint32_t*>(a.acts + ((int64_t)k * a.n + r0 + row) * WP + col) = af[j][q];
          }
      }
    });
    half_out_visit(out, [&](int row, int col, float v) {
      if (r0 + row < a.n && col < c.out) a.y[(r0 + row) * c.out + col] = activate(c.out_act, v);
    });
    __syncwarp();  // xs reads done before the next tile's load
  }
}

// The fused backward (one kernel), for nets whose tile fits two 8-warp blocks per SM (half_bwd_fused):
// a block takes 16 points per warp per step, recomputes the forward (or loads the saved fp16
// activations), keeps the tile's input and hidden outputs in shared memory, and per layer from the
// last computes the weight gradient G^T X over the tile (summed in fp32 shared memory over all of
// the block's tiles) and the input gradient G W in registers. No workspace in global memory.
template <int WP>
__global__ void __launch_bounds__(256) mlp_half_backward_fused_kernel(HalfArgs a, HalfLayout l) {
  constexpr int KT = WP / 16;
  extern __shared__ __align__(16) unsigned char hsm[];
  const int warp = threadIdx.x >> 5, nw = blockDim.x >> 5, R = nw * 16;
  const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const int L = l.L, ldx = l.kin[0] + kPad, ldh = WP + kPad;
  __half* Ws = reinterpret_cast<__half*>(hsm);
  __half* Xs = Ws + l.w_halves;               // [R][ldx]: the tile's input
  __half* Hs = Xs + R * ldx;                  // [L - 1][R][ldh]: hidden outputs
  __half* Gs = Hs + (L - 1) * R * ldh;        // [R][ldh]: the current layer's pre-activation gradient
  float* Bs = reinterpret_cast<float*>(Gs + R * ldh);
  float* dB = Bs + l.b_floats;                // bias-gradient sums
  float* dW = dB + l.b_floats;                // weight-gradient sums, mma fragment order
  half_load_weights(l, a.params, Ws, Bs);
  for (int e = threadIdx.x; e < l.b_floats; e += blockDim.x) dB[e] = 0.f;
  for (int e = threadIdx.x; e < l.dw_floats; e += blockDim.x) dW[e] = 0.f;
  __syncthreads();
  const MlpConfig c = a.c;
  const float gs = half_grad_scale(a.g_absmax), gs_inv = 1.f / gs;
  auto Xin = [&](int k) { return k == 0 ? Xs : Hs + (k - 1) * R * ldh; };
  auto ldin = [&](int k) { return k == 0 ? ldx : ldh; };
  for (int64_t base = (int64_t)blockIdx.x * R; base < a.n; base += (int64_t)gridDim.x * R) {
    const int64_t r0 = base + warp * 16;
    __half* xs = Xs + warp * 16 * ldx;
    half_load_x(a.x, c.in, a.n, r0, l.kin[0], xs);
    // The output gradient G = g_y * out_act'(y), zero past n and past c.out (so padded rows and
    // columns add nothing), as fp32 fragments of the 16 x 16 last-layer tile.
    float gout[2][4];
    if (a.acts) {
      for (int k = 0; k + 1 < L; ++k) {  // saved hidden outputs: this warp's 16 rows
        __half* h = Hs + k * R * ldh + warp * 16 * ldh;
        for (int e = lane; e < 16 * (WP / 8); e += 32) {
          const int r = e / (WP / 8), q = e - r * (WP / 8);
          uint4 v = make_uint4(0u, 0u, 0u, 0u);
          if (r0 + r < a.n) v = *reinterpret_cast<const uint4*>(a.acts + ((int64_t)k * a.n + r0 + r) * WP + q * 8);
          *reinterpret_cast<uint4*>(h + r * ldh + q * 8) = v;
        }
      }
      half_out_visit(gout, [&](int row, int col, float& v) {
        const int64_t i = (r0 + row) * c.out + col;
        v = r0 + row < a.n && col < c.out ? gs * a.g_y[i] * act_grad_from_output(c.out_act, a.y[i]) : 0.f;
      });
      __syncwarp();
    } else {
      __syncwarp();
      half_warp_forward<WP>(l, c.hidden_act, Ws, Bs, xs, gout, [&](int k, const uint32_t (&af)[KT][4]) {
        half_store_operand<KT>(af, Hs + k * R * ldh + warp * 16 * ldh, ldh);
      });
      half_out_visit(gout, [&](int row, int col, float& v) {
        const float yv = activate(c.out_act, v);
        v = r0 + row < a.n && col < c.out ? gs * a.g_y[(r0 + row) * c.out + col] * act_grad_from_output(c.out_act, yv) : 0.f;
      });
    }
    // gaf: the current layer's gradient as fp16 operand tiles (this warp's rows), also in Gs.
    uint32_t gaf[KT][4];
    gaf[0][0] = pack_half2(gout[0][0], gout[0][1]);
    gaf[0][1] = pack_half2(gout[0][2], gout[0][3]);
    gaf[0][2] = pack_half2(gout[1][0], gout[1][1]);
    gaf[0][3] = pack_half2(gout[1][2], gout[1][3]);
    {
      const uint32_t (&g0)[1][4] = *reinterpret_cast<const uint32_t (*)[1][4]>(&gaf[0]);
      half_store_operand<1>(g0, Gs + warp * 16 * ldh, ldh);
    }
    for (int k = L - 1; k >= 0; --k) {
      const int kin = l.kin[k], nout = l.nout[k];
      const __half* X = Xin(k);
      const int ld = ldin(k);
      __syncthreads();  // Gs and X of every warp written
      // Weight gradient over the tile: dW[o][i] += sum_r G[r][o] X[r][i]. Warp w takes output row
      // tiles mt = w, w + nw, ...; for each, every column tile at once (independent accumulators).
      {
        constexpr int MAXN = kHalfMaxWidth / 8;
        const int NTk = kin / 8;
        for (int mt = warp; mt < nout / 16; mt += nw) {
          float acc[MAXN][4];
#pragma unroll
          for (int nt = 0; nt < MAXN; ++nt) acc[nt][0] = acc[nt][1] = acc[nt][2] = acc[nt][3] = 0.f;
          for (int ks = 0; ks < R / 16; ++ks) {
            uint32_t A[4];  // A(o, r) = G[r][o]: matrices (r 0-7, o 0-7), (r 0-7, o 8-15), (r 8-15, o 0-7), (r 8-15, o 8-15)
            ldsm_x4_t(A, Gs + (ks * 16 + (lane & 7) + ((lane >> 4) & 1) * 8) * ldh + mt * 16 + ((lane >> 3) & 1) * 8);
#pragma unroll
            for (int np2 = 0; np2 < MAXN / 2; ++np2) {
              if (np2 * 2 >= NTk) break;
              uint32_t B[4];  // B(r, i) = X[r][i]: (r 0-7, i), (r 8-15, i), (r 0-7, i + 8), (r 8-15, i + 8)
              ldsm_x4_t(B, X + (ks * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * ld + np2 * 16 + (lane >> 4) * 8);
              mma16816(acc[2 * np2], A, B[0], B[1]);
              mma16816(acc[2 * np2 + 1], A, B[2], B[3]);
            }
          }
          float4* d = reinterpret_cast<float4*>(dW + l.dwoff[k]) + (size_t)mt * NTk * 32 + lane;
#pragma unroll
          for (int nt = 0; nt < MAXN; ++nt) {
            if (nt >= NTk) break;
            float4 v = d[nt * 32];
            v.x += acc[nt][0]; v.y += acc[nt][1]; v.z += acc[nt][2]; v.w += acc[nt][3];
            d[nt * 32] = v;
          }
        }
        // Bias gradient: column sums of G (fp32 sums of the fp16 values).
        for (int o = threadIdx.x; o < nout; o += blockDim.x) {
          float s = 0.f;
          for (int r = 0; r < R; ++r) s += __half2float(Gs[r * ldh + o]);
          dB[l.boff[k] + o] += s;
        }
      }
      if (k == 0 && !a.g_x) break;
      // Input gradient of this warp's rows: dX = G W (K = nout, N = kin), W^T fragments by ldmatrix.trans.
      constexpr int MAXN = kHalfMaxWidth / 8;
      float acc[MAXN][4];
      half_input_grad<KT>(acc, gaf, Ws + l.woff[k], kin, nout);
      __syncthreads();  // every warp's weight-gradient reads of Gs done before it is overwritten
      if (k > 0) {
        // G of layer k - 1 = dX * act'(its output), kept as operand tiles and in Gs.
        const __half* h = Xin(k) + warp * 16 * ldh;
#pragma unroll
        for (int j = 0; j < KT; ++j) {
          const __half* p = h + j * 16 + 2 * t;
          const float2 h0 = unpack_half2(load32(p + g * ldh)), h1 = unpack_half2(load32(p + (g + 8) * ldh));
          const float2 h2 = unpack_half2(load32(p + g * ldh + 8)), h3 = unpack_half2(load32(p + (g + 8) * ldh + 8));
          const int act = c.hidden_act;
          gaf[j][0] = pack_half2(acc[2 * j][0] * act_grad_from_output(act, h0.x), acc[2 * j][1] * act_grad_from_output(act, h0.y));
          gaf[j][1] = pack_half2(acc[2 * j][2] * act_grad_from_output(act, h1.x), acc[2 * j][3] * act_grad_from_output(act, h1.y));
          gaf[j][2] = pack_half2(acc[2 * j + 1][0] * act_grad_from_output(act, h2.x), acc[2 * j + 1][1] * act_grad_from_output(act, h2.y));
          gaf[j][3] = pack_half2(acc[2 * j + 1][2] * act_grad_from_output(act, h3.x), acc[2 * j + 1][3] * act_grad_from_output(act, h3.y));
        }
        half_store_operand<KT>(gaf, Gs + warp * 16 * ldh, ldh);
      } else {
        // Input gradient (fp32). g_x may alias x: this warp read its rows of x at the tile's start.
        half_store_input_grad(acc, a.g_x, c.in, a.n, r0, kin, gs_inv);
      }
    }
    __syncthreads();  // the tile's buffers are free
  }
  __syncthreads();
  // This block's sums into its row of partial sums, in model.h's parameter layout.
  float* part = a.partial + (int64_t)blockIdx.x * l.np;
  for (int k = 0; k < L; ++k) {
    const int kin = l.kin[k], nout = l.nout[k], ni = l.in_real[k], no = l.out_real[k], NTk = kin / 8;
    for (int e = threadIdx.x; e < nout * kin; e += blockDim.x) {
      // e = ((mt * NTk + nt) * 32 + lane) * 4 + j
      const int j = e & 3, ln = (e >> 2) & 31, f = e >> 7, mt = f / NTk, nt = f - mt * NTk;
      const int o = mt * 16 + (ln >> 2) + (j >> 1) * 8, i = nt * 8 + 2 * (ln & 3) + (j & 1);
      if (o < no && i < ni) part[l.pofs[k] + o * ni + i] = dW[l.dwoff[k] + e] * gs_inv;
    }
    for (int o = threadIdx.x; o < no; o += blockDim.x) part[l.pofs[k] + no * ni + o] = dB[l.boff[k] + o] * gs_inv;
  }
}

// The layered form's weight gradient G^T X and bias gradient (column sums of G) of one layer over m rows. The gradient is cut into tiles of at most
// 128 x 128 (half_wgrad_tiles; one for nets up to 128 wide); block b sums tile b % tiles over row
// slice b / tiles (the grid is a multiple of tiles). A block stages 64 rows of its tile's columns
// of G and X in shared memory per step (cp.async, two slots: the next rows load during this step); each warp owns one piece of the tile (half_wgrad_tasks)
// and keeps its sums in registers over all of the slice's rows (operands transposed by
// ldmatrix.trans), so the tensor cores are fed from shared memory with no read-modify-write of
// sums there. At the end the block adds its sums (unscaled) into its slice's row of partial sums
// (tiles write disjoint parts of it): no atomics.
struct HalfWgradArgs {
  const __half* G = nullptr;  // [m][ldg], the layer's (scaled) pre-activation gradient
  const __half* X = nullptr;  // [m][ldx], the layer's input
  int ldg = 0, ldx = 0;
  int64_t m = 0;              // rows to sum over
  int nout = 0, kin = 0, no = 0, ni = 0;  // padded (multiples of 16) and real sizes
  float* partial = nullptr;   // slice z adds into partial[z * np + pofs ...] (model.h's layout)
  int64_t np = 0;
  int pofs = 0;
  const float* g_absmax = nullptr;
};

__global__ void __launch_bounds__(256) mlp_half_wgrad_kernel(HalfWgradArgs a) {
  extern __shared__ __align__(16) unsigned char hsm[];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const int tiles_i = (a.kin + kWgradTile - 1) / kWgradTile, tiles = ((a.nout + kWgradTile - 1) / kWgradTile) * tiles_i;
  const int tile = blockIdx.x % tiles, slice = blockIdx.x / tiles, slices = gridDim.x / tiles;
  const int o0 = tile / tiles_i * kWgradTile, i0 = tile % tiles_i * kWgradTile;
  const int tn = a.nout - o0 < kWgradTile ? a.nout - o0 : kWgradTile, tkn = a.kin - i0 < kWgradTile ? a.kin - i0 : kWgradTile;
  const int ldgs = tn + kPad, ldxs = tkn + kPad, MT = tn / 16, NT = tkn / 8;
  const int stage = kWgradRows * (ldgs + ldxs);  // halves per ring slot: G rows, then X rows
  __half* ring = reinterpret_cast<__half*>(hsm);   // [2][stage]
  const HalfWgradTasks tk = half_wgrad_tasks(tn, tkn, blockDim.x >> 5);
  const bool active = warp < tk.count;
  const int mt0 = warp / tk.across * tk.mtc, nt0 = warp % tk.across * tk.ntc;
  const bool bias = active && nt0 == 0 && i0 == 0;  // these warps also sum G's columns (an mma with a B of ones)
  float acc[2][8][4], accb[2][4];
#pragma unroll
  for (int mi = 0; mi < 2; ++mi) {
#pragma unroll
    for (int j = 0; j < 4; ++j) accb[mi][j] = 0.f;
#pragma unroll
    for (int nj = 0; nj < 8; ++nj) acc[mi][nj][0] = acc[mi][nj][1] = acc[mi][nj][2] = acc[mi][nj][3] = 0.f;
  }
  const uint32_t ones = pack_half2(1.f, 1.f);
  const int gq = tn / 8, xq = tkn / 8;  // 16-byte pieces per row
  const __half* G = a.G + o0;
  const __half* X = a.X + i0;
  // Rows [base, base + 64) of the tile's columns of G and X into ring slot `slot` (cp.async; the
  // next slice loads while this one is multiplied).
  auto issue = [&](int64_t base, int slot) {
    __half* Gs = ring + slot * stage;
    __half* Xs = Gs + kWgradRows * ldgs;
    for (int e = threadIdx.x; e < kWgradRows * (gq + xq); e += blockDim.x) {
      const bool isg = e < kWgradRows * gq;
      const int f = isg ? e : e - kWgradRows * gq, w = isg ? gq : xq, r = f / w, q = f - r * w;
      const bool ok = base + r < a.m;
      if (isg) cp_async16(Gs + r * ldgs + q * 8, ok ? G + (base + r) * a.ldg + q * 8 : G, ok);
      else cp_async16(Xs + r * ldxs + q * 8, ok ? X + (base + r) * a.ldx + q * 8 : X, ok);
    }
  };
  const int64_t step = (int64_t)slices * kWgradRows;
  int slot = 0;
  if ((int64_t)slice * kWgradRows < a.m) issue((int64_t)slice * kWgradRows, 0);
  cp_async_commit();
  for (int64_t base = (int64_t)slice * kWgradRows; base < a.m; base += step, slot ^= 1) {
    if (base + step < a.m) issue(base + step, slot ^ 1);
    cp_async_commit();
    cp_async_wait<1>();  // this thread's pieces of `base` have landed
    __syncthreads();     // everyone's have
    const __half* Gs = ring + slot * stage;
    const __half* Xs = Gs + kWgradRows * ldgs;
    if (active) {
      for (int ks = 0; ks < kWgradRows / 16; ++ks) {
        uint32_t A[2][4];  // A(o, r) = G[r][o]: matrices (r 0-7, o 0-7), (r 0-7, o 8-15), (r 8-15, o 0-7), (r 8-15, o 8-15)
#pragma unroll
        for (int mi = 0; mi < 2; ++mi)
          if (mi < tk.mtc && mt0 + mi < MT)
            ldsm_x4_t(A[mi], Gs + (ks * 16 + (lane & 7) + ((lane >> 4) & 1) * 8) * ldgs + (mt0 + mi) * 16 + ((lane >> 3) & 1) * 8);
#pragma unroll
        for (int np2 = 0; np2 < 4; ++np2) {
          if (2 * np2 >= tk.ntc || nt0 + 2 * np2 >= NT) break;
          uint32_t B[4];  // B(r, i) = X[r][i]: (r 0-7, i), (r 8-15, i), (r 0-7, i + 8), (r 8-15, i + 8)
          ldsm_x4_t(B, Xs + (ks * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * ldxs + (nt0 + 2 * np2) * 8 + (lane >> 4) * 8);
#pragma unroll
          for (int mi = 0; mi < 2; ++mi)
            if (mi < tk.mtc && mt0 + mi < MT) {
              mma16816(acc[mi][2 * np2], A[mi], B[0], B[1]);
              mma16816(acc[mi][2 * np2 + 1], A[mi], B[2], B[3]);
            }
        }
        if (bias) {
#pragma unroll
          for (int mi = 0; mi < 2; ++mi)
            if (mi < tk.mtc && mt0 + mi < MT) mma16816(accb[mi], A[mi], ones, ones);
        }
      }
    }
    __syncthreads();  // slot free before the next iteration loads into it
  }
  cp_async_wait<0>();
  if (!active) return;
  const float gs_inv = 1.f / half_grad_scale(a.g_absmax);
  float* part = a.partial + (int64_t)slice * a.np + a.pofs;
#pragma unroll
  for (int mi = 0; mi < 2; ++mi) {
    if (mi >= tk.mtc) break;
#pragma unroll
    for (int nj = 0; nj < 8; ++nj) {
      if (nj >= tk.ntc) break;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int o = o0 + (mt0 + mi) * 16 + g + (j >> 1) * 8, i = i0 + (nt0 + nj) * 8 + 2 * t + (j & 1);
        if (o < a.no && i < a.ni) part[o * a.ni + i] += acc[mi][nj][j] * gs_inv;
      }
    }
    if (bias && t == 0) {  // column 0 of G^T 1: rows g and g + 8
      const int o = o0 + (mt0 + mi) * 16 + g;
      if (o < a.no) part[a.no * a.ni + o] += accb[mi][0] * gs_inv;
      if (o + 8 < a.no) part[a.no * a.ni + o + 8] += accb[mi][2] * gs_inv;
    }
  }
}

// ---- The layered form's kernels.
enum LayeredEpilogue : int {
  kEpiHidden = 0,      // C = act(A B^T + bias) as fp16
  kEpiOut = 1,         // F = act(A B^T + bias) as fp32, columns < ldf
  kEpiGrad = 2,        // C = (A B^T) * act'(H) as fp16: the previous layer's pre-activation gradient
  kEpiInputGrad = 3,   // F = (A B^T) / the gradient scale as fp32, columns < ldf: the input gradient
};

struct GemmArgs {
  const __half* A = nullptr;  // [M][lda] fp16
  int64_t lda = 0;
  const __half* B = nullptr;  // [N][ldb] fp16: row j holds column j of the product's right factor
  int ldb = 0;
  int64_t M = 0;
  int K = 0, N = 0;           // multiples of 16
  int epi = kEpiHidden, act = kActNone;
  const float* bias = nullptr;  // [N]
  __half* C = nullptr;          // [M][ldc]
  int64_t ldc = 0;
  const __half* H = nullptr;    // [M][ldh]
  int64_t ldh = 0;
  float* F = nullptr;           // [M][ldf]
  int ldf = 0;
  const float* g_absmax = nullptr;
};

// One layer as a GEMM over a 128-row x BN-column block tile, 8 warps (BN >= 64: 4 x 2 warps of 32 x
// 64; else 8 x 1 of 16 x BN). Operand tiles of 32 columns of K go through a kGemmStages-deep ring
// in shared memory ([row][32 + kPad], conflict-free ldmatrix), loaded by cp.async kGemmStages - 1
// steps ahead of their use, so the loads' latency hides behind the products of the steps before.
// Accumulators start from the bias like the CPU loop; the epilogue applies the activation (or
// its derivative) in fp32 and stores (coalesced, through shared memory).
template <int BN>
__global__ void __launch_bounds__(256, 2) mlp_layer_gemm_kernel(GemmArgs a) {
  constexpr int WN = BN >= 64 ? 64 : BN, WARPS_N = BN / WN, WARPS_M = 8 / WARPS_N, WM = kGemmBM / WARPS_M;
  constexpr int MTW = WM / 16, NTW = WN / 8, LDS = kGemmBK + kPad;
  constexpr int APT = kGemmBM * 4 / 256, BPT = (BN * 4 + 255) / 256;  // 16-byte pieces per thread (4 per row)
  extern __shared__ __align__(16) unsigned char hsm[];
  __half* As = reinterpret_cast<__half*>(hsm);         // [kGemmStages][128][LDS]
  __half* Bs = As + kGemmStages * kGemmBM * LDS;      // [kGemmStages][BN][LDS]
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const int wm = warp / WARPS_N, wn = warp % WARPS_N;
  const int ctiles = (a.N + BN - 1) / BN;
  const int64_t row0 = (int64_t)(blockIdx.x / ctiles) * kGemmBM;
  const int col0 = (int)(blockIdx.x % ctiles) * BN;
  auto issue = [&](int kt) {  // step kt's operand tiles into ring slot kt % kGemmStages
    const int k0 = kt * kGemmBK;
    __half* as = As + (kt % kGemmStages) * kGemmBM * LDS;
    __half* bs = Bs + (kt % kGemmStages) * BN * LDS;
#pragma unroll
    for (int j = 0; j < APT; ++j) {
      const int e = threadIdx.x + j * 256, r = e >> 2, col = k0 + (e & 3) * 8;
      const bool ok = row0 + r < a.M && col < a.K;
      cp_async16(as + r * LDS + (e & 3) * 8, ok ? a.A + (row0 + r) * a.lda + col : a.A, ok);
    }
#pragma unroll
    for (int j = 0; j < BPT; ++j) {
      const int e = threadIdx.x + j * 256, r = e >> 2, col = k0 + (e & 3) * 8;
      const bool ok = col0 + r < a.N && col < a.K;
      if (e < BN * 4) cp_async16(bs + r * LDS + (e & 3) * 8, ok ? a.B + (int64_t)(col0 + r) * a.ldb + col : a.B, ok);
    }
  };
  const bool with_bias = a.epi == kEpiHidden || a.epi == kEpiOut;
  float acc[MTW][NTW][4];
#pragma unroll
  for (int nj = 0; nj < NTW; ++nj) {
    const int col = col0 + wn * WN + nj * 8 + 2 * t;
    const float b0 = with_bias && col < a.N ? a.bias[col] : 0.f, b1 = with_bias && col < a.N ? a.bias[col + 1] : 0.f;
#pragma unroll
    for (int mi = 0; mi < MTW; ++mi) {
      acc[mi][nj][0] = b0; acc[mi][nj][1] = b1; acc[mi][nj][2] = b0; acc[mi][nj][3] = b1;
    }
  }
  const int KT = (a.K + kGemmBK - 1) / kGemmBK;
#pragma unroll
  for (int s = 0; s < kGemmStages - 1; ++s) {
    if (s < KT) issue(s);
    cp_async_commit();  // (empty groups too: the count stays uniform)
  }
  for (int kt = 0; kt < KT; ++kt) {
    cp_async_wait<kGemmStages - 2>();  // this thread's pieces of step kt have landed
    __syncthreads();                   // everyone's have; and slot (kt - 1) % stages is free again
    if (kt + kGemmStages - 1 < KT) issue(kt + kGemmStages - 1);
    cp_async_commit();
    const __half* as = As + (kt % kGemmStages) * kGemmBM * LDS;
    const __half* bs = Bs + (kt % kGemmStages) * BN * LDS;
#pragma unroll
    for (int ks = 0; ks < kGemmBK / 16; ++ks) {
      if (kt * kGemmBK + ks * 16 >= a.K) break;  // K is a multiple of 16: the last step may be half
      uint32_t af[MTW][4];
#pragma unroll
      for (int mi = 0; mi < MTW; ++mi) ldsm_x4(af[mi], as + (wm * WM + mi * 16 + (lane & 15)) * LDS + ks * 16 + (lane >> 4) * 8);
#pragma unroll
      for (int np2 = 0; np2 < NTW / 2; ++np2) {
        uint32_t b[4];  // (n 0-7, k 0-7), (n 0-7, k 8-15), (n 8-15, k 0-7), (n 8-15, k 8-15)
        ldsm_x4(b, bs + (wn * WN + np2 * 16 + (lane & 7) + (lane >> 4) * 8) * LDS + ks * 16 + ((lane >> 3) & 1) * 8);
#pragma unroll
        for (int mi = 0; mi < MTW; ++mi) {
          mma16816(acc[mi][2 * np2], af[mi], b[0], b[1]);
          mma16816(acc[mi][2 * np2 + 1], af[mi], b[2], b[3]);
        }
      }
    }
  }
  // Epilogue through shared memory (the ring is free now): the fp32 tile as [128][BN + 8], then
  // each thread takes 8 consecutive columns of a row at a time, so the stores (and the backward's
  // loads of H) are 16-byte and coalesced instead of the fragments' scattered 4-byte pieces.
  cp_async_wait<0>();
  __syncthreads();
  constexpr int LDC = BN + 8;
  float* Cs = reinterpret_cast<float*>(hsm);
#pragma unroll
  for (int mi = 0; mi < MTW; ++mi)
#pragma unroll
    for (int nj = 0; nj < NTW; ++nj)
#pragma unroll
      for (int hh = 0; hh < 2; ++hh)
        *reinterpret_cast<float2*>(Cs + (wm * WM + mi * 16 + g + hh * 8) * LDC + wn * WN + nj * 8 + 2 * t) =
            make_float2(acc[mi][nj][2 * hh], acc[mi][nj][2 * hh + 1]);
  __syncthreads();
  if (a.epi == kEpiHidden || a.epi == kEpiGrad) {
    for (int e = threadIdx.x; e < kGemmBM * (BN / 8); e += 256) {
      const int r = e / (BN / 8), c = (e - r * (BN / 8)) * 8;
      const int64_t row = row0 + r;
      const int col = col0 + c;
      if (row >= a.M || col >= a.N) continue;
      const float* v = Cs + r * LDC + c;
      float h[8];
      if (a.epi == kEpiGrad) {
        const uint4 hv = *reinterpret_cast<const uint4*>(a.H + row * a.ldh + col);
        const uint32_t hw[4] = {hv.x, hv.y, hv.z, hv.w};
#pragma unroll
        for (int q = 0; q < 4; ++q) {
          const float2 f = unpack_half2(hw[q]);
          h[2 * q] = v[2 * q] * act_grad_from_output(a.act, f.x);
          h[2 * q + 1] = v[2 * q + 1] * act_grad_from_output(a.act, f.y);
        }
      } else {
#pragma unroll
        for (int q = 0; q < 8; ++q) h[q] = activate(a.act, v[q]);
      }
      *reinterpret_cast<uint4*>(a.C + row * a.ldc + col) =
          make_uint4(pack_half2(h[0], h[1]), pack_half2(h[2], h[3]), pack_half2(h[4], h[5]), pack_half2(h[6], h[7]));
    }
  } else {
    const bool out = a.epi == kEpiOut;
    const float gs_inv = out ? 1.f : 1.f / half_grad_scale(a.g_absmax);
    const int ncol = a.ldf - col0 < BN ? a.ldf - col0 : BN;  // real columns of this tile
    for (int e = threadIdx.x; e < kGemmBM * ncol; e += 256) {
      const int r = e / ncol, c = e - r * ncol;
      const int64_t row = row0 + r;
      if (row >= a.M) break;
      const float v = Cs[r * LDC + c];
      a.F[row * a.ldf + col0 + c] = out ? activate(a.act, v) : v * gs_inv;
    }
  }
}

// Prepared weights of every layer (layered_layout): fp16 W and W^T, zero-padded, and fp32 biases.
__global__ void layered_prep_kernel(LayeredLayout l, const float* __restrict__ params, __half* __restrict__ W, float* __restrict__ B) {
  const int64_t i0 = (int64_t)blockIdx.x * blockDim.x + threadIdx.x, stride = (int64_t)gridDim.x * blockDim.x;
  for (int k = 0; k < l.L; ++k) {
    const int kin = l.kin[k], nout = l.nout[k], ni = l.in_real[k], no = l.out_real[k];
    const float* P = params + l.pofs[k];
    for (int64_t e = i0; e < (int64_t)nout * kin; e += stride) {
      const int o = (int)(e / kin), i = (int)(e - (int64_t)o * kin);
      const __half v = __float2half_rn(o < no && i < ni ? P[o * ni + i] : 0.f);
      W[l.woff[k] + e] = v;
      W[l.wtoff[k] + (int64_t)i * nout + o] = v;
    }
    for (int64_t o = i0; o < nout; o += stride) B[l.boff[k] + o] = o < no ? P[no * ni + o] : 0.f;
  }
}

// n rows of x (fp32, `in` wide) as fp16 rows of kin, zero-padded.
__global__ void layered_input_kernel(const float* __restrict__ x, int in, int64_t n, int kin, __half* __restrict__ X0) {
  for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < n * kin; e += (int64_t)gridDim.x * blockDim.x) {
    const int64_t r = e / kin;
    const int i = (int)(e - r * kin);
    X0[e] = __float2half_rn(i < in ? x[r * in + i] : 0.f);
  }
}

// The last layer's pre-activation gradient, scaled (half_grad_scale): g_y * out_act'(y) as fp16
// rows of nout (zero past out).
__global__ void layered_out_grad_kernel(const float* __restrict__ g_y, const float* __restrict__ y, int out, int act, int64_t n, int nout,
                                        const float* g_absmax, __half* __restrict__ G) {
  const float gs = half_grad_scale(g_absmax);
  for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < n * nout; e += (int64_t)gridDim.x * blockDim.x) {
    const int64_t r = e / nout;
    const int c = (int)(e - r * nout);
    G[e] = __float2half_rn(c < out ? gs * g_y[r * out + c] * act_grad_from_output(act, y[r * out + c]) : 0.f);
  }
}

// g[w] += sum over blocks b (ascending) of P[b * np + w].
__global__ void mlp_half_reduce_kernel(const float* __restrict__ P, int rows, int64_t np, float* __restrict__ g) {
  const int64_t w = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (w >= np) return;
  float s = 0.f;
  for (int z = 0; z < rows; ++z) s += P[(int64_t)z * np + w];
  g[w] += s;
}

// The layered form's schedule for one chunk of rows. launch(name, kernel, blocks, smem, args...)
// runs a kernel on 256 threads per block (CUDA, or the emulation's threads).
struct LayeredChunk {
  MlpConfig c;
  int64_t n = 0;                  // rows of this chunk
  const float* x = nullptr;       // the chunk's first row of each (g_x may alias x)
  float* y = nullptr;             // forward output; backward: the saved forward's output (with saved)
  const float* g_y = nullptr;
  float* g_x = nullptr;
  const __half* W = nullptr;      // prepared weights (layered_prep_kernel)
  const float* B = nullptr;
  __half* ws = nullptr;           // workspace (layered_space)
  LayeredSpace sp;
  __half* H = nullptr;            // hidden outputs: layer k at H + k * h_stride, rows of wp
  int64_t h_stride = 0;
  bool saved = false;             // H holds the forward's outputs (backward: no recomputation)
  float* partial = nullptr;       // weight gradient: `slices` rows of np partial sums; null: none
  int slices = 1;
  const float* g_absmax = nullptr;
};

// The chunk of rows [c0, c0 + nc) of p; the workspace ws laid out for m rows.
inline LayeredChunk layered_chunk_args(const MlpParams& p, const LayeredLayout& l, int64_t c0, int64_t nc, int64_t m, __half* ws, bool backward) {
  LayeredChunk ch;
  ch.c = p.cfg; ch.n = nc;
  ch.x = p.x + c0 * p.cfg.in;
  ch.y = p.y ? p.y + c0 * p.cfg.out : nullptr;
  ch.g_y = p.g_y ? p.g_y + c0 * p.cfg.out : nullptr;
  ch.g_x = p.g_x ? p.g_x + c0 * p.cfg.in : nullptr;
  ch.saved = p.acts != nullptr;
  ch.ws = ws; ch.sp = layered_space(l, m, ch.saved, backward);
  if (ch.saved) { ch.H = reinterpret_cast<__half*>(p.acts) + c0 * l.wp; ch.h_stride = p.n * l.wp; }
  else { ch.H = ws + ch.sp.h; ch.h_stride = m * l.wp; }
  return ch;
}

inline int64_t layered_blocks(int64_t count) { return std::max<int64_t>(1, std::min<int64_t>((count + 255) / 256, 4096)); }

template <class Launch>
void layered_gemm(Launch& launch, const GemmArgs& g) {
  const int64_t rt = (g.M + kGemmBM - 1) / kGemmBM;
  if (g.N <= 16) launch("mlp_layer_gemm_kernel<16>", mlp_layer_gemm_kernel<16>, rt * ((g.N + 15) / 16), layered_gemm_smem(16), g);
  else if (g.N <= 64) launch("mlp_layer_gemm_kernel<64>", mlp_layer_gemm_kernel<64>, rt * ((g.N + 63) / 64), layered_gemm_smem(64), g);
  else launch("mlp_layer_gemm_kernel<128>", mlp_layer_gemm_kernel<128>, rt * ((g.N + 127) / 128), layered_gemm_smem(128), g);
}

// Forward of a chunk: the input to fp16, then one GEMM per layer (hidden outputs into H, the last
// layer's activated output as fp32 into y).
template <class Launch>
void layered_forward_chunk(const LayeredLayout& l, const LayeredChunk& ch, float* y, Launch& launch) {
  const MlpConfig& c = ch.c;
  __half* X0 = ch.ws + ch.sp.x0;
  launch("layered_input_kernel", layered_input_kernel, layered_blocks(ch.n * l.kin[0]), 0, ch.x, c.in, ch.n, l.kin[0], X0);
  for (int k = 0; k < l.L; ++k) {
    GemmArgs g;
    g.A = k == 0 ? X0 : ch.H + (k - 1) * ch.h_stride;
    g.lda = k == 0 ? l.kin[0] : l.wp;
    g.B = ch.W + l.woff[k]; g.ldb = l.kin[k];
    g.M = ch.n; g.K = l.kin[k]; g.N = l.nout[k];
    g.bias = ch.B + l.boff[k];
    if (k + 1 < l.L) { g.epi = kEpiHidden; g.act = c.hidden_act; g.C = ch.H + k * ch.h_stride; g.ldc = l.wp; }
    else { g.epi = kEpiOut; g.act = c.out_act; g.F = y; g.ldf = c.out; }
    layered_gemm(launch, g);
  }
}

// Backward of a chunk: (without saved activations, the forward again into the workspace) the last
// layer's gradient, then per layer from the last its weight gradient (G_k^T X_k, into the partial
// sums) and the gradient one layer down (G_k W_k times act', or the input gradient at layer 0).
template <class Launch>
void layered_backward_chunk(const LayeredLayout& l, const LayeredChunk& ch, Launch& launch) {
  const MlpConfig& c = ch.c;
  __half* X0 = ch.ws + ch.sp.x0;
  float* yf = reinterpret_cast<float*>(ch.ws + ch.sp.yf);
  if (ch.saved) launch("layered_input_kernel", layered_input_kernel, layered_blocks(ch.n * l.kin[0]), 0, ch.x, c.in, ch.n, l.kin[0], X0);
  else layered_forward_chunk(l, ch, yf, launch);
  __half* G[2] = {ch.ws + ch.sp.g[0], ch.ws + ch.sp.g[1]};
  int cur = 0;
  const int Lk = l.L - 1;
  launch("layered_out_grad_kernel", layered_out_grad_kernel, layered_blocks(ch.n * l.nout[Lk]), 0, ch.g_y, ch.saved ? (const float*)ch.y : (const float*)yf,
         c.out, c.out_act, ch.n, l.nout[Lk], ch.g_absmax, G[cur]);
  for (int k = Lk; k >= 0; --k) {
    const __half* X = k == 0 ? X0 : ch.H + (k - 1) * ch.h_stride;
    if (ch.partial) {
      HalfWgradArgs w;
      w.G = G[cur]; w.ldg = l.nout[k];
      w.X = X; w.ldx = k == 0 ? l.kin[0] : l.wp;
      w.m = ch.n; w.nout = l.nout[k]; w.kin = l.kin[k]; w.no = l.out_real[k]; w.ni = l.in_real[k];
      w.partial = ch.partial; w.np = l.np; w.pofs = l.pofs[k]; w.g_absmax = ch.g_absmax;
      launch("mlp_half_wgrad_kernel", mlp_half_wgrad_kernel, (int64_t)ch.slices * half_wgrad_tiles(w.nout, w.kin), half_wgrad_smem(w.nout, w.kin), w);
    }
    if (k == 0 && !ch.g_x) break;
    GemmArgs g;
    g.A = G[cur]; g.lda = l.nout[k];
    g.B = ch.W + l.wtoff[k]; g.ldb = l.nout[k];
    g.M = ch.n; g.K = l.nout[k]; g.N = l.kin[k];
    if (k > 0) { g.epi = kEpiGrad; g.act = c.hidden_act; g.H = X; g.ldh = l.wp; g.C = G[cur ^ 1]; g.ldc = l.wp; }
    else { g.epi = kEpiInputGrad; g.F = ch.g_x; g.ldf = c.in; g.g_absmax = ch.g_absmax; }
    layered_gemm(launch, g);
    cur ^= 1;
  }
}

// ---- half kernels (end)

// max |g| over count values into *out (zeroed before): non-negative floats order as their bits.
__global__ void half_absmax_kernel(const float* __restrict__ g, int64_t count, float* __restrict__ out) {
  float m = 0.f;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < count; i += (int64_t)gridDim.x * blockDim.x) m = fmaxf(m, fabsf(g[i]));
  for (int o = 16; o > 0; o >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
  if ((threadIdx.x & 31) == 0 && m > 0.f) atomicMax(reinterpret_cast<unsigned*>(out), __float_as_uint(m));
}

int device_attr(cudaDeviceAttr attr) {
  int dev = 0, v = 0;
  cuda_check(cudaGetDevice(&dev), "cudaGetDevice");
  cuda_check(cudaDeviceGetAttribute(&v, attr, dev), "cudaDeviceGetAttribute");
  return v;
}

struct HalfLaunch {
  int threads = 0, grid = 0;
  size_t smem = 0;
};

template <class K>
HalfLaunch half_launch(K kernel, int nw, size_t smem, int64_t n) {
  HalfLaunch h;
  h.threads = nw * 32;
  h.smem = smem;
  cuda_check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem), "cudaFuncSetAttribute");
  int per_sm = 0;
  cuda_check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, h.threads, smem), "cudaOccupancyMaxActiveBlocksPerMultiprocessor");
  const int64_t tiles = (n + nw * 16 - 1) / (nw * 16);
  h.grid = (int)std::max<int64_t>(1, std::min<int64_t>(tiles, (int64_t)device_attr(cudaDevAttrMultiProcessorCount) * std::max(per_sm, 1)));
  return h;
}

template <int WP>
HalfLaunch half_fwd_launch(const HalfLayout& l, int64_t n) { return half_launch(mlp_half_forward_kernel<WP>, 8, half_fwd_smem(l, 8), n); }

HalfArgs half_args(const MlpParams& p) {
  HalfArgs a;
  a.c = p.cfg; a.n = p.n; a.params = p.params; a.x = p.x; a.y = p.y; a.g_y = p.g_y; a.g_x = p.g_x;
  a.acts = reinterpret_cast<__half*>(p.acts);
  return a;
}

template <int WP>
void half_forward_run(const MlpParams& p, const HalfLayout& l) {
  const HalfLaunch h = half_fwd_launch<WP>(l, p.n);
  mlp_half_forward_kernel<WP><<<h.grid, h.threads, h.smem>>>(half_args(p), l);
  cuda_check(cudaGetLastError(), "mlp_half_forward_kernel");
}

struct HalfWorkspace {
  std::mutex mu;
  Buffer<float> partial, absmax, space, weights;
};
HalfWorkspace& half_workspace() {
  static HalfWorkspace* w = new HalfWorkspace();  // never destroyed: no cudaFree after the runtime shuts down
  return *w;
}

template <int WP>
void half_backward_run(const MlpParams& p, const HalfLayout& l) {
  HalfWorkspace& w = half_workspace();
  std::lock_guard<std::mutex> lock(w.mu);
  float* m = w.absmax.reserve(Backend::CUDA, 1);
  const int64_t count = p.n * (int64_t)p.cfg.out;
  cuda_check(cudaMemsetAsync(m, 0, sizeof(float)), "cudaMemsetAsync");
  half_absmax_kernel<<<(unsigned)std::max<int64_t>(1, std::min<int64_t>((count + 255) / 256, (int64_t)device_attr(cudaDevAttrMultiProcessorCount) * 8)), 256>>>(p.g_y, count, m);
  cuda_check(cudaGetLastError(), "half_absmax_kernel");
  const HalfLaunch h = half_launch(mlp_half_backward_fused_kernel<WP>, 8, half_fused_bwd_smem(l, 8), p.n);
  HalfArgs a = half_args(p);
  // Without g_params the sums still go somewhere (the kernel always writes its row): a scratch row set.
  a.partial = w.partial.reserve(Backend::CUDA, (size_t)h.grid * l.np);
  a.g_absmax = m;
  mlp_half_backward_fused_kernel<WP><<<h.grid, h.threads, h.smem>>>(a, l);
  cuda_check(cudaGetLastError(), "mlp_half_backward_fused_kernel");
  if (p.g_params) {
    mlp_half_reduce_kernel<<<(unsigned)((l.np + 255) / 256), 256>>>(a.partial, h.grid, l.np, p.g_params);
    cuda_check(cudaGetLastError(), "mlp_half_reduce_kernel");
  }
}

// Runs the layered schedule's kernels on the current stream. Each launch sets its kernel's
// dynamic shared-memory limit to what it asks for: the limit is per kernel and process-wide, and
// one kernel serves layers of different needs (a launch above the limit fails).
struct CudaLaunch {
  template <class K, class... A>
  void operator()(const char* name, K kernel, int64_t blocks, size_t smem, A... args) {
    if (smem > 0) cuda_check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem), "cudaFuncSetAttribute");
    kernel<<<(unsigned)blocks, 256, smem>>>(args...);
    cuda_check(cudaGetLastError(), name);
  }
};

// Prepared weights into the workspace; returns (W, B).
std::pair<const __half*, const float*> layered_prepare(HalfWorkspace& w, const LayeredLayout& l, const float* params) {
  float* buf = w.weights.reserve(Backend::CUDA, (size_t)(l.w_halves / 2 + l.b_floats));
  __half* W = reinterpret_cast<__half*>(buf);
  float* B = buf + l.w_halves / 2;
  layered_prep_kernel<<<(unsigned)layered_blocks(l.w_halves / 2), 256>>>(l, params, W, B);
  cuda_check(cudaGetLastError(), "layered_prep_kernel");
  return {W, B};
}

void layered_forward_run(const MlpParams& p) {
  const LayeredLayout l = layered_layout(p.cfg);
  HalfWorkspace& w = half_workspace();
  std::lock_guard<std::mutex> lock(w.mu);
  const auto wb = layered_prepare(w, l, p.params);
  const bool saved = p.acts != nullptr;
  const int64_t chunk = layered_chunk(l, p.n, saved, false);
  __half* ws = reinterpret_cast<__half*>(w.space.reserve(Backend::CUDA, (size_t)layered_space(l, chunk, saved, false).halves / 2));
  CudaLaunch launch;
  for (int64_t c0 = 0; c0 < p.n; c0 += chunk) {
    const int64_t nc = std::min(chunk, p.n - c0);
    LayeredChunk ch = layered_chunk_args(p, l, c0, nc, chunk, ws, false);
    ch.W = wb.first; ch.B = wb.second;
    layered_forward_chunk(l, ch, ch.y, launch);
  }
}

void layered_backward_run(const MlpParams& p) {
  const LayeredLayout l = layered_layout(p.cfg);
  HalfWorkspace& w = half_workspace();
  std::lock_guard<std::mutex> lock(w.mu);
  const auto wb = layered_prepare(w, l, p.params);
  float* m = w.absmax.reserve(Backend::CUDA, 1);
  const int64_t count = p.n * (int64_t)p.cfg.out;
  cuda_check(cudaMemsetAsync(m, 0, sizeof(float)), "cudaMemsetAsync");
  half_absmax_kernel<<<(unsigned)std::max<int64_t>(1, std::min<int64_t>((count + 255) / 256, (int64_t)device_attr(cudaDevAttrMultiProcessorCount) * 8)), 256>>>(p.g_y, count, m);
  cuda_check(cudaGetLastError(), "half_absmax_kernel");
  const bool saved = p.acts != nullptr;
  const int64_t chunk = layered_chunk(l, p.n, saved, true);
  __half* ws = reinterpret_cast<__half*>(w.space.reserve(Backend::CUDA, (size_t)layered_space(l, chunk, saved, true).halves / 2));
  // Weight gradient: two blocks per SM over the widest layer's tiles, each summing a row slice
  // into its own row of partial sums (at most one slice per kWgradRows rows).
  const int slices = (int)std::max<int64_t>(1, std::min<int64_t>((chunk + kWgradRows - 1) / kWgradRows,
                                                                  2 * device_attr(cudaDevAttrMultiProcessorCount) / l.max_tiles));
  float* partial = nullptr;
  if (p.g_params) {
    partial = w.partial.reserve(Backend::CUDA, (size_t)slices * l.np);
    cuda_check(cudaMemsetAsync(partial, 0, sizeof(float) * (size_t)slices * l.np), "cudaMemsetAsync");
  }
  CudaLaunch launch;
  for (int64_t c0 = 0; c0 < p.n; c0 += chunk) {
    const int64_t nc = std::min(chunk, p.n - c0);
    LayeredChunk ch = layered_chunk_args(p, l, c0, nc, chunk, ws, true);
    ch.W = wb.first; ch.B = wb.second;
    ch.partial = partial; ch.slices = slices; ch.g_absmax = m;
    layered_backward_chunk(l, ch, launch);
  }
  if (partial) {
    mlp_half_reduce_kernel<<<(unsigned)((l.np + 255) / 256), 256>>>(partial, slices, l.np, p.g_params);
    cuda_check(cudaGetLastError(), "mlp_half_reduce_kernel");
  }
}
}  // namespace

void mlp_half_forward(const MlpParams& p) {
  const HalfLayout l = half_layout(p.cfg);
  switch (l.wp) {
    case 16: half_forward_run<16>(p, l); break;
    case 32: half_forward_run<32>(p, l); break;
    case 64: half_forward_run<64>(p, l); break;
    default: half_forward_run<128>(p, l); break;
  }
}

void mlp_half_backward(const MlpParams& p) {
  const HalfLayout l = half_layout(p.cfg);
  switch (l.wp) {
    case 16: half_backward_run<16>(p, l); break;
    case 32: half_backward_run<32>(p, l); break;
    case 64: half_backward_run<64>(p, l); break;
    default: half_backward_run<128>(p, l); break;
  }
}

void mlp_half_layered_forward(const MlpParams& p) { layered_forward_run(p); }
void mlp_half_layered_backward(const MlpParams& p) { layered_backward_run(p); }

std::string mlp_half_layered_plan(const MlpConfig& c, int64_t n) {
  const LayeredLayout l = layered_layout(c);
  const int64_t chunk = layered_chunk(l, n, false, true);
  return "half layered (fp16 mma): a GEMM per layer in 128-row tiles, weight gradient in " + std::to_string(l.max_tiles) +
         " tile(s) per row slice, chunks of " + std::to_string(chunk) + " rows (" +
         std::to_string(layered_space(l, chunk, false, true).halves * 2 >> 20) + " MB workspace)";
}

std::string mlp_half_plan(const MlpConfig& c, int64_t n) {
  const HalfLayout l = half_layout(c);
  return "half (fp16 mma): fwd 128 points per block (" + std::to_string(half_fwd_smem(l, 8) / 1024) + " KB), fused bwd 128 per block (" +
         std::to_string(half_fused_bwd_smem(l, 8) / 1024) + " KB), " + std::to_string((n + 127) / 128) + " tiles";
}
#endif

}  // namespace train
}  // namespace dyntet
