// Analytic test scene for the trainer: a sphere coloured by its normal, ray-traced exactly with
// model.h's camera conventions, seen from several head poses over a flat background.
#pragma once
#include <algorithm>
#include <cmath>
#include <vector>
#include "../trainer.h"

namespace dyntet {
namespace scene {

struct Sphere { float c[3] = {0.f, 0.f, 0.f}; float r = 5.f; };

// Column-major pose: rotation yaw (about y) then pitch (about x), translation (0, 0, -dist).
inline void make_pose(float yaw_deg, float pitch_deg, float dist, float* M) {
  const float y = yaw_deg * 3.14159265f / 180.f, p = pitch_deg * 3.14159265f / 180.f;
  const float Ry[9] = {std::cos(y), 0, std::sin(y), 0, 1, 0, -std::sin(y), 0, std::cos(y)};  // row-major
  const float Rx[9] = {1, 0, 0, 0, std::cos(p), -std::sin(p), 0, std::sin(p), std::cos(p)};
  float R[9];
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) {
      R[i * 3 + j] = 0;
      for (int k = 0; k < 3; ++k) R[i * 3 + j] += Rx[i * 3 + k] * Ry[k * 3 + j];
    }
  for (int i = 0; i < 16; ++i) M[i] = 0;
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 3; ++c) M[c * 4 + r] = R[r * 3 + c];
  M[14] = -dist;
  M[15] = 1;
}

// Renders image (H x W x 3) and mask (H x W) of the sphere; background colour bg.
inline void render(const Sphere& s, const float* M, int W, int H, float fovy_deg, const float bg[3], float* img, float* mask) {
  const float f = 1.f / std::tan(0.5f * fovy_deg * 3.14159265f / 180.f);
  const float aspect = (float)W / (float)H;
  // Camera centre and ray directions in face space: p = R^T (v - t).
  const float t[3] = {M[12], M[13], M[14]};
  float o[3];
  for (int a = 0; a < 3; ++a) o[a] = -(M[a * 4 + 0] * t[0] + M[a * 4 + 1] * t[1] + M[a * 4 + 2] * t[2]);
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x) {
      const float nx = ((x + 0.5f) / W) * 2.f - 1.f, ny = 1.f - ((y + 0.5f) / H) * 2.f;
      const float dc[3] = {nx * aspect / f, ny / f, -1.f};
      float d[3];
      for (int a = 0; a < 3; ++a) d[a] = M[a * 4 + 0] * dc[0] + M[a * 4 + 1] * dc[1] + M[a * 4 + 2] * dc[2];
      float oc[3], A = 0, B = 0, C = -s.r * s.r;
      for (int a = 0; a < 3; ++a) { oc[a] = o[a] - s.c[a]; A += d[a] * d[a]; B += 2 * d[a] * oc[a]; C += oc[a] * oc[a]; }
      const float disc = B * B - 4 * A * C;
      const int i = y * W + x;
      if (disc < 0) {
        for (int c = 0; c < 3; ++c) img[i * 3 + c] = bg[c];
        mask[i] = 0;
        continue;
      }
      const float tt = (-B - std::sqrt(disc)) / (2 * A);
      for (int a = 0; a < 3; ++a) img[i * 3 + a] = 0.5f + 0.5f * (oc[a] + tt * d[a]) / s.r;
      mask[i] = 1;
    }
}

// Symmetric mean distance between a triangle soup's vertices and the sphere surface.
inline double chamfer(const std::vector<float>& tris, const Sphere& s) {
  const size_t n = tris.size() / 3;
  if (n == 0) return 1e9;
  double a = 0;
  for (size_t i = 0; i < n; ++i) {
    const float dx = tris[i * 3] - s.c[0], dy = tris[i * 3 + 1] - s.c[1], dz = tris[i * 3 + 2] - s.c[2];
    a += std::fabs(std::sqrt(dx * dx + dy * dy + dz * dz) - s.r);
  }
  a /= n;
  const int K = 400;
  double b = 0;
  for (int k = 0; k < K; ++k) {
    const float z = 1.f - 2.f * (k + 0.5f) / K, rr = std::sqrt(1.f - z * z), ph = k * 2.39996323f;
    const float q[3] = {s.c[0] + s.r * rr * std::cos(ph), s.c[1] + s.r * rr * std::sin(ph), s.c[2] + s.r * z};
    double best = 1e30;
    for (size_t i = 0; i < n; ++i) {
      const double dx = tris[i * 3] - q[0], dy = tris[i * 3 + 1] - q[1], dz = tris[i * 3 + 2] - q[2];
      best = std::min(best, dx * dx + dy * dy + dz * dz);
    }
    b += std::sqrt(best);
  }
  return 0.5 * (a + b / K);
}

// A small config for the sphere scene (box [-8,8]^3, R = 16, 64x64).
inline TrainerConfig small_config() {
  TrainerConfig c;
  c.grid_res = 16;
  for (int a = 0; a < 3; ++a) { c.box_min[a] = -8.f; c.box_max[a] = 8.f; c.init_center[a] = 0.f; }
  c.init_center[0] = 1.2f;
  c.init_radii[0] = 7.f; c.init_radii[1] = 3.5f; c.init_radii[2] = 6.f;
  c.width = 64; c.height = 64;
  c.hash_levels = 8; c.hash_log2_table = 12; c.hash_base_res = 4; c.hash_finest_res = 64;
  c.tex_width = 32; c.tex_hidden = 1;
  c.deform_width = 32; c.deform_hidden = 1; c.deform_freq = 4;
  c.cond_dim = 8;
  c.lr = 3e-3f; c.lr_hash = 1e-2f; c.lr_grid = 1e-2f;
  c.w_sdf_reg_start = 0.02f; c.w_sdf_reg_end = 0.01f;
  return c;
}

// Frames of the scene: B views from a fixed set of yaw/pitch pairs starting at view k0.
struct Frames {
  int B, W, H;
  std::vector<float> images, masks, poses, windows;
  std::vector<uint8_t> images_u8, masks_u8;  // after quantise()
  Batch batch() const {
    Batch b;
    b.frames = B; b.images = images.data(); b.masks = masks.data(); b.poses = poses.data(); b.windows = windows.data();
    return b;
  }
  // Rounds images and masks to 8 bits, as video frames are; the floats become byte_to_unit of
  // the bytes, so batch() and batch_u8() hold the same values.
  void quantise() {
    auto q = [](const std::vector<float>& f, std::vector<uint8_t>& u) {
      u.resize(f.size());
      for (size_t i = 0; i < f.size(); ++i) u[i] = (uint8_t)std::lround(std::min(1.f, std::max(0.f, f[i])) * 255.f);
    };
    q(images, images_u8);
    q(masks, masks_u8);
    for (size_t i = 0; i < images.size(); ++i) images[i] = byte_to_unit(images_u8[i]);
    for (size_t i = 0; i < masks.size(); ++i) masks[i] = byte_to_unit(masks_u8[i]);
  }
  // The same batch with images and masks as bytes (quantise() first).
  Batch batch_u8() const {
    Batch b = batch();
    b.images = nullptr; b.masks = nullptr;
    b.images_u8 = images_u8.data(); b.masks_u8 = masks_u8.data();
    return b;
  }
};

inline Frames make_frames(const Sphere& s, const TrainerConfig& c, int B, int k0) {
  static const float views[8][2] = {{0, 0}, {35, 10}, {-35, -10}, {70, 0}, {-70, 5}, {10, 35}, {-10, -35}, {120, 0}};
  Frames f{B, c.width, c.height, {}, {}, {}, {}};
  const int HW = c.width * c.height;
  f.images.resize((size_t)B * HW * 3); f.masks.resize((size_t)B * HW); f.poses.resize(B * 16);
  f.windows.assign((size_t)B * c.cond_window * 52, 0.f);
  const float bg[3] = {0.2f, 0.3f, 0.4f};
  for (int b = 0; b < B; ++b) {
    const float* v = views[(k0 + b) % 8];
    make_pose(v[0], v[1], 20.f, f.poses.data() + b * 16);
    render(s, f.poses.data() + b * 16, c.width, c.height, c.fovy_deg, bg, f.images.data() + (size_t)b * HW * 3,
           f.masks.data() + (size_t)b * HW);
  }
  return f;
}

// A landmark-motion case on the config's start ellipsoid: `n` rest points on its surface and, for
// each of B frames, targets moved by a motion that depends on the frame and on the point (the front
// half, z > 0, rises by 0.3 (2b - 1) cm and comes forward 0.15 cm; the back half stays).
struct MotionCase {
  int n;
  std::vector<float> rest, targets;  // n x 3; B x n x 3
};
inline MotionCase make_motion(const TrainerConfig& c, int B, int n = 40) {
  MotionCase m{n, {}, {}};
  for (int k = 0; k < n; ++k) {
    const float z = 1.f - 2.f * (k + 0.5f) / n, r = std::sqrt(1.f - z * z), ph = k * 2.39996323f;
    m.rest.insert(m.rest.end(), {c.init_center[0] + c.init_radii[0] * r * std::cos(ph),
                                 c.init_center[1] + c.init_radii[1] * r * std::sin(ph), c.init_center[2] + c.init_radii[2] * z});
  }
  for (int b = 0; b < B; ++b)
    for (int k = 0; k < n; ++k) {
      const bool front = m.rest[k * 3 + 2] > c.init_center[2];
      m.targets.insert(m.targets.end(), {m.rest[k * 3], m.rest[k * 3 + 1] + (front ? 0.3f * (2 * b - 1) : 0.f),
                                         m.rest[k * 3 + 2] + (front ? 0.15f : 0.f)});
    }
  return m;
}

}  // namespace scene
}  // namespace dyntet
