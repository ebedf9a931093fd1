// Small MLPs (model.h's MlpConfig and parameter layout) forward and backward over n points.
//
// CPU: the straightforward per-point loop; the forward calls model.h's mlp_forward, the backward
// recomputes the layer outputs with the same loop order and back-propagates them.
// CUDA: for layers up to kFusedMaxWidth wide a fused kernel evaluates a tile of points per block
// with the weights and every layer's activations in shared memory (fp32 throughout, the same sums
// in the same order per point as the CPU loop); weight gradients are reduced over the tile (and
// over all tiles a block handles, when shared memory allows) before one float atomicAdd per
// weight, so their last bits vary between CUDA runs. Wider networks take the per-point path.
#pragma once
#include "ops_common.h"

namespace dyntet {
namespace train {

constexpr int kMaxMlpLayers = 8;    // hidden_layers + 1
constexpr int kFusedMaxWidth = 128;

struct MlpParams {
  MlpConfig cfg;
  int64_t n = 0;
  const float* params = nullptr;  // mlp_param_count(cfg)
  const float* x = nullptr;       // n x cfg.in
  float* y = nullptr;             // forward: n x cfg.out
  const float* g_y = nullptr;     // backward: n x cfg.out
  float* g_params = nullptr;      // backward, accumulated; may be null
  float* g_x = nullptr;           // backward, written; may be null
};

// Throws OpError for a config the ops cannot run (sizes, activations, depth).
void mlp_validate(const MlpConfig& c, const char* op);
void mlp_forward(Backend b, const MlpParams& p);
void mlp_backward(Backend b, const MlpParams& p);
// Which CUDA path mlp_* takes for this config ("fused" or "per-point"); for benchmarks and logs.
const char* mlp_cuda_path(const MlpConfig& c);
// The fused kernels' launch plan for n points (tile size, whether weight gradients stay on chip),
// e.g. "fwd tile 128, bwd tile 64 (atomics per tile)"; needs a CUDA device in a CUDA build.
std::string mlp_cuda_plan(const MlpConfig& c, int64_t n);

// Per-point backward, usable inside other ops' kernels. x: input (c.in), g_y: d/d output.
// Adds to g_params (atomically), writes g_x (c.in values) when non-null.
DT_HD void mlp_backward_point(const MlpConfig& c, const float* params, const float* x, const float* g_y,
                              float* g_params, float* g_x) {
  float acts[kMaxMlpLayers + 1][kMaxWidth];
  const int L = mlp_layer_count(c);
  for (int i = 0; i < c.in; ++i) acts[0][i] = x[i];
  size_t offs[kMaxMlpLayers + 1];
  offs[0] = 0;
  for (int k = 0; k < L; ++k) {
    const int n_in = mlp_layer_in(c, k), n_out = mlp_layer_out(c, k);
    offs[k + 1] = offs[k] + (size_t)n_out * (n_in + 1);
    const float* W = params + offs[k];
    const float* bias = W + (size_t)n_out * n_in;
    const int act = k == L - 1 ? c.out_act : c.hidden_act;
    for (int o = 0; o < n_out; ++o) {
      float acc = bias[o];
      for (int i = 0; i < n_in; ++i) acc += W[(size_t)o * n_in + i] * acts[k][i];
      acts[k + 1][o] = activate(act, acc);
    }
  }
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
      if (gp == 0.f) continue;
      if (g_params) {
        float* gW = g_params + offs[k];
        atomic_add(gW + (size_t)n_out * n_in + o, gp);
        for (int i = 0; i < n_in; ++i) atomic_add(gW + (size_t)o * n_in + i, gp * acts[k][i]);
      }
      for (int i = 0; i < n_in; ++i) nxt[i] += W[(size_t)o * n_in + i] * gp;
    }
    cur ^= 1;
  }
  if (g_x)
    for (int i = 0; i < c.in; ++i) g_x[i] = g[cur][i];
}

}  // namespace train
}  // namespace dyntet
