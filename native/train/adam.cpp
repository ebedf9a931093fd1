#include "adam.h"

namespace dyntet {
namespace train {

float lr_at(const LrSchedule& s, int64_t step) {
  op_require(s.decay_steps > 0, "lr_at", "decay_steps must be > 0");
  op_require(s.floor > 0.f && s.floor <= 1.f, "lr_at", "floor must be in (0, 1]");
  const double q = s.smooth ? (double)step / s.decay_steps : (double)(step / s.decay_steps);
  const double f = std::pow(0.1, q);
  return (float)(s.base * (f > s.floor ? f : s.floor));
}

void adam_step(Backend b, const AdamParams& p) {
  op_require(p.n == 0 || (p.params && p.grads && p.m && p.v), "adam_step", "params, grads, m and v must be non-null");
  op_require(p.step >= 1, "adam_step", "step is 1-based (bias correction), got " + std::to_string(p.step));
  op_require(p.beta1 >= 0.f && p.beta1 < 1.f && p.beta2 >= 0.f && p.beta2 < 1.f, "adam_step", "betas must be in [0, 1)");
  const float c1 = 1.f / (1.f - (float)std::pow((double)p.beta1, (double)p.step));
  const float c2 = 1.f / (1.f - (float)std::pow((double)p.beta2, (double)p.step));
  const AdamParams q = p;
  launch_1d(b, p.n, [=] DT_LAMBDA(int64_t i) {
    const float g = q.grads[i];
    const float m = q.beta1 * q.m[i] + (1.f - q.beta1) * g;
    const float v = q.beta2 * q.v[i] + (1.f - q.beta2) * g * g;
    q.m[i] = m;
    q.v[i] = v;
    q.params[i] -= q.lr * (m * c1) / (sqrtf(v * c2) + q.eps);
    if (q.zero_grads) q.grads[i] = 0.f;
  });
}

}  // namespace train
}  // namespace dyntet
