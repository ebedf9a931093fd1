// Analytic SDFs on the grid, shared by the marching-tets tests and the mesh dump tool (whose
// output the WASM build is compared with).
#pragma once
#include <cmath>
#include <cstring>
#include <string>
#include <vector>
#include "../core/grid.h"

namespace dyntet_test {

// shape: "sphere" (radius 0.7 at the origin offset by 0.013 to avoid symmetric ties),
// "torus" (major 0.55, minor 0.22), "wavy" (a sphere with a displacement field as well).
inline bool shape_sdf(const std::string& shape, const dyntet::GridSpec& g, std::vector<float>& sdf,
                      std::vector<float>& disp) {
  const int32_t nv = dyntet::grid_num_vertices(g.res);
  sdf.assign(nv, 0.f);
  disp.clear();
  for (int32_t v = 0; v < nv; ++v) {
    float p[3];
    dyntet::grid_vertex_position(g, v, p);
    const double x = p[0] - 0.013, y = p[1] + 0.007, z = p[2] - 0.003;
    if (shape == "sphere" || shape == "wavy") {
      sdf[v] = (float)(std::sqrt(x * x + y * y + z * z) - 0.7);
    } else if (shape == "torus") {
      const double q = std::sqrt(x * x + y * y) - 0.55;
      sdf[v] = (float)(std::sqrt(q * q + z * z) - 0.22);
    } else {
      return false;
    }
  }
  if (shape == "wavy") {
    disp.assign((size_t)nv * 3, 0.f);
    for (int32_t v = 0; v < nv; ++v) {
      float p[3];
      dyntet::grid_vertex_position(g, v, p);
      disp[(size_t)v * 3 + 0] = 0.01f * std::sin(9.f * p[1]);
      disp[(size_t)v * 3 + 1] = 0.01f * std::cos(7.f * p[2]);
      disp[(size_t)v * 3 + 2] = 0.01f * std::sin(5.f * p[0]);
    }
  }
  return true;
}

}  // namespace dyntet_test
