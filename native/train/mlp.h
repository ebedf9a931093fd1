// Small MLPs (model.h's MlpConfig and parameter layout) forward and backward over n points.
//
// CPU: the straightforward per-point loop; the forward calls model.h's mlp_forward, the backward
// recomputes the layer outputs with the same loop order and back-propagates them.
// CUDA, three paths (MlpCudaPath; the default is Tiled):
// - Tiled: one tiled fp32 GEMM launch per layer over a chunk of points (a block computes
//   128 points x 64 outputs with an 8x8 register tile per thread, operand tiles streamed through
//   shared memory). The backward stores every hidden layer's output of the chunk in a workspace,
//   then per layer computes dX = dY W^T (times the activation's derivative) and dW = dY^T X, the
//   latter split over point ranges into per-split partial sums that one pass adds into g_params
//   at the end (no float atomics, so the result does not depend on the schedule). fp32 with the
//   same per-output summation order as the CPU loop (bias first, inputs ascending, FMA).
//   Networks whose every layer is at most 64 wide run forward and backward as one fused launch
//   each (weights and a 128-point tile's activations in shared memory, weight gradients as
//   per-block partial sums), see README.md.
// - TiledTF32: the same tiling with tensor cores (WMMA m16n16k8, inputs rounded to TF32, fp32
//   accumulation). Lower precision: opt-in only, checked with its own tolerance.
// - Fused: the earlier kernels, up to kFusedMaxWidth wide: a tile of points per block with the
//   weights and every layer's activations in shared memory, one thread per point; weight
//   gradients reduced over the tile (and over all tiles of a persistent block when shared memory
//   allows) before one float atomicAdd per weight, so their last bits vary between runs. Wider
//   networks take the per-point path (one thread per point, atomics per weight: slow).
// - Half: fp16 tensor-core kernels (mma.sync, fp32 accumulation): fused kernels in the style of
//   tiny-cuda-nn's fully fused MLP for the small nets (the 2x64 texture), a layered form (a
//   tensor-core GEMM launch per layer) for the others up to 256 wide (mlp_half.h); wider configs
//   run TiledTF32. Lower precision: opt-in only, checked with its own tolerance.
// - HalfLayered: the layered form for every config it takes (to compare it with the fused kernels).
#pragma once
#include "ops_common.h"

namespace dyntet {
namespace train {

constexpr int kMaxMlpLayers = 8;    // hidden_layers + 1
constexpr int kFusedMaxWidth = 128;

// Which CUDA implementation mlp_forward/mlp_backward use (ignored on the CPU backend).
enum class MlpCudaPath : int {
  Auto = 0,       // the process default: mlp_set_cuda_path(), else $DYNTET_MLP_PATH, else Tiled
  Tiled = 1,      // fp32 tiled GEMM per layer (default)
  TiledTF32 = 2,  // tensor cores, TF32 inputs, fp32 accumulation (opt-in, lower precision)
  Fused = 3,      // the earlier fused kernels (per-point above kFusedMaxWidth)
  Half = 4,       // fp16 tensor cores, fp32 accumulation (opt-in, lower precision; mlp_half.h)
  HalfLayered = 5,  // the same precision, one GEMM launch per layer (mlp_half.h)
};

struct MlpParams {
  MlpConfig cfg;
  int64_t n = 0;
  const float* params = nullptr;  // mlp_param_count(cfg)
  const float* x = nullptr;       // n x cfg.in
  float* y = nullptr;             // forward: n x cfg.out
  const float* g_y = nullptr;     // backward: n x cfg.out
  float* g_params = nullptr;      // backward, accumulated; may be null
  float* g_x = nullptr;           // backward, written; may be null (may alias x)
  MlpCudaPath path = MlpCudaPath::Auto;
  // Optional saved activations, mlp_hidden_count(cfg) x n floats on the backend. On the tiled CUDA
  // paths mlp_forward stores every hidden layer's output there, and mlp_backward given the same
  // acts (and y = that forward's output) uses them instead of recomputing the forward: about a
  // quarter less work. Contract: backward must see acts and y exactly as that forward left them
  // (same params, x, n, path). The Half path stores fp16 activations in the first bytes instead.
  // Other paths (CPU, fused) ignore it and recompute.
  float* acts = nullptr;
};

// Floats per point of MlpParams::acts: the sum of the hidden layers' widths.
inline int64_t mlp_hidden_count(const MlpConfig& c) { return (int64_t)c.hidden_layers * (c.hidden_layers > 0 ? c.width : 0); }

// Throws OpError for a config the ops cannot run (sizes, activations, depth).
void mlp_validate(const MlpConfig& c, const char* op);
void mlp_forward(Backend b, const MlpParams& p);
void mlp_backward(Backend b, const MlpParams& p);
// Process-wide CUDA path for MlpParams::path == Auto (the Trainer's ops and deform use Auto).
// $DYNTET_MLP_PATH = tiled | tf32 | fused | half | half-layered sets the initial value; Auto resets to that.
void mlp_set_cuda_path(MlpCudaPath path);
MlpCudaPath mlp_default_cuda_path();
// Parses "tiled", "tf32", "fused", "half", "half-layered" or "auto"; throws OpError otherwise.
MlpCudaPath mlp_parse_cuda_path(const std::string& name);
// Upper bound on the points the tiled path processes per chunk (0: automatic, from a workspace
// budget of 512 MB). For tests of the chunking; returns the previous value.
int64_t mlp_set_tiled_max_chunk(int64_t points);
// Which CUDA path mlp_* takes for this config ("tiled", "tiled tf32", "fused", "half", "half layered"
// or "per-point");
// for benchmarks and logs. Without `path`: the process default.
const char* mlp_cuda_path(const MlpConfig& c);
const char* mlp_cuda_path(const MlpConfig& c, MlpCudaPath path);
// The launch plan for n points, e.g. "fwd tile 128, bwd tile 64 (atomics per tile)" for the fused
// kernels or the chunk and split counts of the tiled ones; needs a CUDA device in a CUDA build.
std::string mlp_cuda_plan(const MlpConfig& c, int64_t n);
std::string mlp_cuda_plan(const MlpConfig& c, int64_t n, MlpCudaPath path);

// Per-point pieces, usable inside other ops' kernels (the Trainer's per-pixel texture and
// per-vertex deformation backward passes call them).

// Every layer's output of one point: acts[0] = x, acts[k + 1] = layer k's output after its
// activation; acts[mlp_layer_count(c)] equals model.h's mlp_forward(c, params, x) bit for bit
// (same summation order: bias first, inputs ascending).
typedef float MlpActs[kMaxMlpLayers + 1][kMaxWidth];

DT_HD void mlp_forward_acts(const MlpConfig& c, const float* params, const float* x, MlpActs acts) {
  const int L = mlp_layer_count(c);
  for (int i = 0; i < c.in; ++i) acts[0][i] = x[i];
  const float* W = params;
  for (int k = 0; k < L; ++k) {
    const int n_in = mlp_layer_in(c, k), n_out = mlp_layer_out(c, k);
    const float* bias = W + (size_t)n_out * n_in;
    const int act = k == L - 1 ? c.out_act : c.hidden_act;
    for (int o = 0; o < n_out; ++o) {
      float acc = bias[o];
      for (int i = 0; i < n_in; ++i) acc += W[(size_t)o * n_in + i] * acts[k][i];
      acts[k + 1][o] = activate(act, acc);
    }
    W = bias + n_out;
  }
}

// Backward from the activations of mlp_forward_acts. g_y: d/d output (c.out values). Adds to
// g_params (may be null) through atomic_add_warp: every point of a warp walks the weights in the
// same order, so on CUDA a converged warp sums its 32 contributions before one atomic (for that
// the device loop does not skip zero gradients, which keeps the warp converged; the CPU loop
// does). Writes g_x (c.in values) when non-null.
DT_HD void mlp_backward_acts(const MlpConfig& c, const float* params, const MlpActs acts, const float* g_y,
                             float* g_params, float* g_x) {
  const int L = mlp_layer_count(c);
  size_t offs[kMaxMlpLayers + 1];
  offs[0] = 0;
  for (int k = 0; k < L; ++k) offs[k + 1] = offs[k] + (size_t)mlp_layer_out(c, k) * (mlp_layer_in(c, k) + 1);
  float g[2][kMaxWidth];
  int cur = 0;
  for (int o = 0; o < c.out; ++o) g[0][o] = g_y[o];
  for (int k = L - 1; k >= 0; --k) {
    const int n_in = mlp_layer_in(c, k), n_out = mlp_layer_out(c, k);
    const int act = k == L - 1 ? c.out_act : c.hidden_act;
    const float* W = params + offs[k];
    float* nxt = g[cur ^ 1];
    for (int i = 0; i < n_in; ++i) nxt[i] = 0.f;
    for (int o = 0; o < n_out; ++o) {
      const float gp = g[cur][o] * act_grad_from_output(act, acts[k + 1][o]);
#if !defined(__CUDA_ARCH__)
      if (gp == 0.f) continue;
#endif
      if (g_params) {
        float* gW = g_params + offs[k];
        atomic_add_warp(gW + (size_t)n_out * n_in + o, gp);
        for (int i = 0; i < n_in; ++i) atomic_add_warp(gW + (size_t)o * n_in + i, gp * acts[k][i]);
      }
      for (int i = 0; i < n_in; ++i) nxt[i] += W[(size_t)o * n_in + i] * gp;
    }
    cur ^= 1;
  }
  if (g_x)
    for (int i = 0; i < c.in; ++i) g_x[i] = g[cur][i];
}

// Per-point backward: recomputes the activations, then mlp_backward_acts. x: input (c.in),
// g_y: d/d output. Adds to g_params, writes g_x (c.in values) when non-null.
DT_HD void mlp_backward_point(const MlpConfig& c, const float* params, const float* x, const float* g_y,
                              float* g_params, float* g_x) {
  MlpActs acts;
  mlp_forward_acts(c, params, x, acts);
  mlp_backward_acts(c, params, acts, g_y, g_params, g_x);
}

}  // namespace train
}  // namespace dyntet
