// Adam over flat parameter buffers, with the step learning-rate schedule of the design:
// lr(step) = base * max(floor, 0.1^(step / decay_steps)) (integer division: tenfold drops every
// decay_steps; `smooth` uses the real quotient instead).
#pragma once
#include "ops_common.h"

namespace dyntet {
namespace train {

struct LrSchedule {
  float base = 1e-3f;
  int decay_steps = 5000;
  float floor = 0.01f;  // fraction of base
  bool smooth = false;
};
float lr_at(const LrSchedule& s, int64_t step);

struct AdamParams {
  int64_t n = 0;
  float* params = nullptr;
  float* grads = nullptr;  // zeroed after the update when zero_grads
  float* m = nullptr;      // first moment, starts at 0
  float* v = nullptr;      // second moment, starts at 0
  float lr = 1e-3f;
  float beta1 = 0.9f, beta2 = 0.99f, eps = 1e-15f;
  int64_t step = 1;        // 1-based, for bias correction
  bool zero_grads = true;
};
void adam_step(Backend b, const AdamParams& p);

}  // namespace train
}  // namespace dyntet
