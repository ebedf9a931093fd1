// Per-frame pose refinement (TrainerConfig::pose_frames): a frame's correction is a rotation
// vector w and a translation t in camera space, M' = [R(w) M_rot | h + t] with h = M's
// translation: the head turns about the face origin, then moves. Device and host code.
#pragma once
#include <cmath>
#include "../core/common.h"

namespace dyntet {

// R(w) by Rodrigues' formula, row-major.
DT_HD void rotation_matrix(const float w[3], float R[9]) {
  const float th2 = w[0] * w[0] + w[1] * w[1] + w[2] * w[2], th = sqrtf(th2);
  // sin(th)/th and (1 - cos(th))/th^2, by their series near zero.
  const float a = th < 1e-4f ? 1.f - th2 / 6.f : sinf(th) / th;
  const float b = th < 1e-4f ? 0.5f - th2 / 24.f : (1.f - cosf(th)) / th2;
  const float K[9] = {0.f, -w[2], w[1], w[2], 0.f, -w[0], -w[1], w[0], 0.f};
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 3; ++c) {
      float kk = 0.f;
      for (int j = 0; j < 3; ++j) kk += K[r * 3 + j] * K[j * 3 + c];
      R[r * 3 + c] = (r == c ? 1.f : 0.f) + a * K[r * 3 + c] + b * kk;
    }
}

// SO(3)'s left Jacobian: R(w + d) = R(J d) R(w) to first order in d, so a gradient g taken with
// respect to a small rotation applied after R(w) is J^T g with respect to w.
DT_HD void left_jacobian(const float w[3], float J[9]) {
  const float th2 = w[0] * w[0] + w[1] * w[1] + w[2] * w[2], th = sqrtf(th2);
  const float b = th < 1e-3f ? 0.5f - th2 / 24.f : (1.f - cosf(th)) / th2;
  const float c = th < 1e-3f ? 1.f / 6.f - th2 / 120.f : (th - sinf(th)) / (th2 * th);
  const float K[9] = {0.f, -w[2], w[1], w[2], 0.f, -w[0], -w[1], w[0], 0.f};
  for (int r = 0; r < 3; ++r)
    for (int q = 0; q < 3; ++q) {
      float kk = 0.f;
      for (int j = 0; j < 3; ++j) kk += K[r * 3 + j] * K[j * 3 + q];
      J[r * 3 + q] = (r == q ? 1.f : 0.f) + b * K[r * 3 + q] + c * kk;
    }
}

}  // namespace dyntet
