// Per-frame pose refinement (TrainerConfig::pose_frames): a frame's correction is a rotation
// vector w and a translation t in camera space, M' = [R(w) M_rot | h + t] with h = M's
// translation: the head turns about the face origin, then moves. Device and host code.
#pragma once
#include <cmath>
#include "../core/common.h"

namespace dyntet {

// I + c1 K + c2 K^2 with K = [w]x, the cross-product matrix of w (row-major): the shape of both
// the rotation and its Jacobian below.
DT_HD void identity_plus_cross(const float w[3], float c1, float c2, float M[9]) {
  const float K[9] = {0.f, -w[2], w[1], w[2], 0.f, -w[0], -w[1], w[0], 0.f};
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 3; ++c) {
      float kk = 0.f;
      for (int j = 0; j < 3; ++j) kk += K[r * 3 + j] * K[j * 3 + c];
      M[r * 3 + c] = (r == c ? 1.f : 0.f) + c1 * K[r * 3 + c] + c2 * kk;
    }
}

// R(w) by Rodrigues' formula, row-major: sin(th)/th and (1 - cos(th))/th^2 by their series near 0.
DT_HD void rotation_matrix(const float w[3], float R[9]) {
  const float th2 = w[0] * w[0] + w[1] * w[1] + w[2] * w[2], th = sqrtf(th2);
  identity_plus_cross(w, th < 1e-4f ? 1.f - th2 / 6.f : sinf(th) / th, th < 1e-4f ? 0.5f - th2 / 24.f : (1.f - cosf(th)) / th2, R);
}

// SO(3)'s left Jacobian: R(w + d) = R(J d) R(w) to first order in d, so a gradient g taken with
// respect to a small rotation applied after R(w) is J^T g with respect to w.
DT_HD void left_jacobian(const float w[3], float J[9]) {
  const float th2 = w[0] * w[0] + w[1] * w[1] + w[2] * w[2], th = sqrtf(th2);
  identity_plus_cross(w, th < 1e-3f ? 0.5f - th2 / 24.f : (1.f - cosf(th)) / th2,
                      th < 1e-3f ? 1.f / 6.f - th2 / 120.f : (th - sinf(th)) / (th2 * th), J);
}

}  // namespace dyntet
