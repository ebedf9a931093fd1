#include "start_shape.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include "trainer.h"

namespace dyntet {
namespace {

constexpr float kFar = std::numeric_limits<float>::infinity();

// Squared distance along one line of n samples `spacing` apart: out[p] = min_q f[q] + (spacing (p - q))^2,
// by the lower envelope of parabolas (Felzenszwalb and Huttenlocher); infinite f[q] are no sources.
void distance_1d(const float* f, int n, float spacing, float* out, std::vector<int>& v, std::vector<float>& z) {
  v.resize(n);
  z.resize(n + 1);
  int k = -1;
  for (int q = 0; q < n; ++q) {
    if (f[q] == kFar) continue;
    const float xq = spacing * q;
    float s = -kFar;
    while (k >= 0) {
      const float xv = spacing * v[k];
      s = ((f[q] + xq * xq) - (f[v[k]] + xv * xv)) / (2.f * (xq - xv));
      if (s > z[k]) break;
      --k;
    }
    ++k;
    v[k] = q;
    z[k] = k == 0 ? -kFar : s;
    z[k + 1] = kFar;
  }
  if (k < 0) {
    std::fill(out, out + n, kFar);
    return;
  }
  int j = 0;
  for (int p = 0; p < n; ++p) {
    const float xp = spacing * p;
    while (z[j + 1] < xp) ++j;
    const float d = xp - spacing * v[j];
    out[p] = d * d + f[v[j]];
  }
}

// Exact squared Euclidean distance from every vertex of the (R+1)^3 lattice to the nearest vertex
// with source[v] set, cells of size h[3] (separable: x lines, then y, then z).
std::vector<float> distance_sq(const std::vector<uint8_t>& source, int n, const float h[3]) {
  std::vector<float> d(source.size());
  for (size_t i = 0; i < source.size(); ++i) d[i] = source[i] ? 0.f : kFar;
  std::vector<float> line(n), out(n), z;
  std::vector<int> v;
  const size_t stride[3] = {1, (size_t)n, (size_t)n * n};
  for (int axis = 0; axis < 3; ++axis) {
    const int a1 = (axis + 1) % 3, a2 = (axis + 2) % 3;
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < n; ++j) {
        const size_t base = (size_t)i * stride[a1] + (size_t)j * stride[a2];
        for (int k = 0; k < n; ++k) line[k] = d[base + k * stride[axis]];
        distance_1d(line.data(), n, h[axis], out.data(), v, z);
        for (int k = 0; k < n; ++k) d[base + k * stride[axis]] = out[k];
      }
  }
  return d;
}

}  // namespace

std::vector<float> start_shape_from_masks(const GridSpec& grid, const Camera& cam, const uint8_t* masks,
                                          const float* poses, int n, const float center[3], const float radii[3],
                                          const StartShapeOptions& opt, int* inside_count) {
  if (n < 1) throw TrainerError("start shape from masks: no frames given");
  if (!(opt.vote > 0.f && opt.vote <= 1.f) || !(opt.expand >= 1.f))
    throw TrainerError("start shape from masks: vote must be in (0, 1] and expand >= 1");
  const int V = grid_num_vertices(grid.res), N = grid.res + 1;
  const int W = cam.width, H = cam.height;
  std::vector<uint8_t> inside(V, 0);
  int count = 0;
  for (int vi = 0; vi < V; ++vi) {
    float p[3];
    grid_vertex_position(grid, vi, p);
    float q = 0.f;
    for (int a = 0; a < 3; ++a) {
      const float r = radii[a] * (a < 2 ? opt.expand : 1.f);
      const float d = (p[a] - center[a]) / r;
      q += d * d;
    }
    if (q > 1.f) continue;
    int seen = 0, in = 0;
    for (int f = 0; f < n; ++f) {
      float clip[4], px[2];
      project_to_clip(cam, poses + (size_t)f * 16, p, clip);
      if (clip[3] <= 1e-6f) continue;
      clip_to_pixel(cam, clip, px);
      const int x = (int)std::floor(px[0]), y = (int)std::floor(px[1]);
      if (x < 0 || y < 0 || x >= W || y >= H) continue;  // out of the frame: no vote
      ++seen;
      in += masks[((size_t)f * H + y) * W + x] >= 128;
    }
    if (seen > 0 && (float)in >= opt.vote * (float)seen) {
      inside[vi] = 1;
      ++count;
    }
  }
  if (inside_count) *inside_count = count;
  if (count == 0)
    throw TrainerError("start shape from masks: no grid vertex projects inside the head masks of the training frames; "
                       "check the dataset's masks/head and poses, or start from the ellipsoid (fit config \"startShape\": \"ellipsoid\")");
  float h[3];
  for (int a = 0; a < 3; ++a) h[a] = (grid.box_max[a] - grid.box_min[a]) / (float)grid.res;
  const float half = 0.5f * std::min(h[0], std::min(h[1], h[2]));
  std::vector<uint8_t> outside(V);
  for (int vi = 0; vi < V; ++vi) outside[vi] = !inside[vi];
  const std::vector<float> to_inside = distance_sq(inside, N, h);
  const bool any_outside = count < V;
  const std::vector<float> to_outside = any_outside ? distance_sq(outside, N, h) : std::vector<float>(V, kFar);
  std::vector<float> sdf(V);
  for (int vi = 0; vi < V; ++vi) {
    if (inside[vi])
      sdf[vi] = any_outside ? -(std::sqrt(to_outside[vi]) - half) : -half;
    else
      sdf[vi] = std::sqrt(to_inside[vi]) - half;
  }
  return sdf;
}

}  // namespace dyntet
