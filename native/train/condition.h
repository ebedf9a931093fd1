// The temporal condition encoder of model.h (1D convolutions + LeakyReLU, then linear + tanh)
// over a batch of windows, forward and backward. One window per element; the backward
// recomputes the window's feature maps (a few KB) instead of storing them.
#pragma once
#include "ops_common.h"

namespace dyntet {
namespace train {

struct ConditionParams {
  ConditionConfig cfg;
  int64_t n = 0;                  // windows
  const float* params = nullptr;  // condition_param_count(cfg)
  const float* windows = nullptr; // n x window x 52
  float* out = nullptr;           // forward: n x out_dim
  const float* g_out = nullptr;   // backward: n x out_dim
  float* g_params = nullptr;      // backward, accumulated; may be null
  float* g_windows = nullptr;     // backward, written; may be null
};

void condition_validate(const ConditionConfig& c, const char* op);
void condition_forward_batch(Backend b, const ConditionParams& p);
void condition_backward_batch(Backend b, const ConditionParams& p);

constexpr int kCondMaxMap = 52 * 32;  // model.h's largest [channel][time] map

DT_HD void condition_backward_point(const ConditionConfig& c, const float* params, const float* window,
                                    const float* g_out, float* g_params, float* g_window) {
  float maps[kMaxConvLayers + 1][kCondMaxMap];
  int lens[kMaxConvLayers + 1], chs[kMaxConvLayers + 1];
  size_t poff[kMaxConvLayers + 1];
  lens[0] = c.window;
  chs[0] = kNumBlendshapes;
  for (int t = 0; t < c.window; ++t)
    for (int i = 0; i < kNumBlendshapes; ++i) maps[0][i * c.window + t] = window[t * kNumBlendshapes + i];
  poff[0] = 0;
  for (int k = 0; k < c.num_conv; ++k) {
    const Conv1dLayer L = c.conv[k];
    const int len = lens[k], out_len = (len - L.kernel) / L.stride + 1;
    const float* W = params + poff[k];
    const float* bias = W + (size_t)L.out_ch * L.in_ch * L.kernel;
    for (int o = 0; o < L.out_ch; ++o)
      for (int t = 0; t < out_len; ++t) {
        float acc = bias[o];
        for (int i = 0; i < L.in_ch; ++i)
          for (int q = 0; q < L.kernel; ++q)
            acc += W[((size_t)o * L.in_ch + i) * L.kernel + q] * maps[k][i * len + t * L.stride + q];
        maps[k + 1][o * out_len + t] = activate(kActLeakyReLU, acc);
      }
    poff[k + 1] = poff[k] + (size_t)L.out_ch * L.in_ch * L.kernel + L.out_ch;
    lens[k + 1] = out_len;
    chs[k + 1] = L.out_ch;
  }
  const int K = c.num_conv;
  const int flat = chs[K] * lens[K];
  const float* Wl = params + poff[K];
  const float* bl = Wl + (size_t)c.out_dim * flat;
  // g[0..1] hold gradients w.r.t. the current map (pre-activation once multiplied).
  float g[2][kCondMaxMap];
  for (int i = 0; i < flat; ++i) g[0][i] = 0.f;
  for (int o = 0; o < c.out_dim; ++o) {
    float acc = bl[o];
    for (int i = 0; i < flat; ++i) acc += Wl[(size_t)o * flat + i] * maps[K][i];
    const float y = tanhf(acc);
    const float gz = g_out[o] * (1.f - y * y);
    if (gz == 0.f) continue;
    if (g_params) {
      atomic_add(g_params + poff[K] + (size_t)c.out_dim * flat + o, gz);
      for (int i = 0; i < flat; ++i) atomic_add(g_params + poff[K] + (size_t)o * flat + i, gz * maps[K][i]);
    }
    for (int i = 0; i < flat; ++i) g[0][i] += Wl[(size_t)o * flat + i] * gz;
  }
  int cur = 0;
  for (int k = K - 1; k >= 0; --k) {
    const Conv1dLayer L = c.conv[k];
    const int len = lens[k], out_len = lens[k + 1];
    const float* W = params + poff[k];
    float* gn = g[cur ^ 1];
    for (int i = 0; i < L.in_ch * len; ++i) gn[i] = 0.f;
    for (int o = 0; o < L.out_ch; ++o)
      for (int t = 0; t < out_len; ++t) {
        const float gp = g[cur][o * out_len + t] * act_grad_from_output(kActLeakyReLU, maps[k + 1][o * out_len + t]);
        if (gp == 0.f) continue;
        if (g_params) atomic_add(g_params + poff[k] + (size_t)L.out_ch * L.in_ch * L.kernel + o, gp);
        for (int i = 0; i < L.in_ch; ++i)
          for (int q = 0; q < L.kernel; ++q) {
            const size_t wi = ((size_t)o * L.in_ch + i) * L.kernel + q;
            if (g_params) atomic_add(g_params + poff[k] + wi, gp * maps[k][i * len + t * L.stride + q]);
            gn[i * len + t * L.stride + q] += W[wi] * gp;
          }
      }
    cur ^= 1;
  }
  if (g_window)
    for (int t = 0; t < c.window; ++t)
      for (int i = 0; i < kNumBlendshapes; ++i) g_window[t * kNumBlendshapes + i] = g[cur][i * c.window + t];
}

}  // namespace train
}  // namespace dyntet
