#include "condition.h"

namespace dyntet {
namespace train {

void condition_validate(const ConditionConfig& c, const char* op) {
  op_require(c.num_conv >= 1 && c.num_conv <= kMaxConvLayers, op, "ConditionConfig.num_conv must be 1.." + std::to_string(kMaxConvLayers));
  op_require(c.window >= 1, op, "ConditionConfig.window must be >= 1");
  int len = c.window, ch = kNumBlendshapes;
  op_require(ch * len <= kCondMaxMap, op, "window * 52 must be <= " + std::to_string(kCondMaxMap) + " (model.h's map buffer)");
  for (int k = 0; k < c.num_conv; ++k) {
    const Conv1dLayer L = c.conv[k];
    const std::string at = "conv[" + std::to_string(k) + "]";
    op_require(L.in_ch == ch, op, at + ".in_ch must equal the previous layer's channels (" + std::to_string(ch) + ")");
    op_require(L.out_ch >= 1 && L.kernel >= 1 && L.stride >= 1, op, at + " needs out_ch, kernel and stride >= 1");
    op_require(L.kernel <= len, op, at + ".kernel is longer than its input (" + std::to_string(len) + " frames): use a longer window");
    len = (len - L.kernel) / L.stride + 1;
    ch = L.out_ch;
    op_require(ch * len <= kCondMaxMap, op, at + " output map exceeds " + std::to_string(kCondMaxMap) + " values");
  }
  op_require(c.out_dim >= 1 && c.out_dim <= kMaxWidth, op, "out_dim must be 1.." + std::to_string(kMaxWidth));
}

void condition_forward_batch(Backend b, const ConditionParams& p) {
  condition_validate(p.cfg, "condition_forward");
  op_require(p.n == 0 || (p.params && p.windows && p.out), "condition_forward", "params, windows and out must be non-null for n > 0");
  const ConditionConfig c = p.cfg;
  const float* params = p.params;
  const float* win = p.windows;
  float* out = p.out;
  launch_1d(b, p.n, [=] DT_LAMBDA(int64_t i) {
    condition_forward(c, params, win + (int64_t)c.window * kNumBlendshapes * i, out + (int64_t)c.out_dim * i);
  });
}

void condition_backward_batch(Backend b, const ConditionParams& p) {
  condition_validate(p.cfg, "condition_backward");
  op_require(p.n == 0 || (p.params && p.windows && p.g_out), "condition_backward", "params, windows and g_out must be non-null for n > 0");
  const ConditionConfig c = p.cfg;
  const float* params = p.params;
  const float* win = p.windows;
  const float* g_out = p.g_out;
  float* g_params = p.g_params;
  float* g_win = p.g_windows;
  const int64_t ws = (int64_t)c.window * kNumBlendshapes;
  launch_1d(b, p.n, [=] DT_LAMBDA(int64_t i) {
    condition_backward_point(c, params, win + ws * i, g_out + (int64_t)c.out_dim * i, g_params, g_win ? g_win + ws * i : nullptr);
  });
}

}  // namespace train
}  // namespace dyntet
