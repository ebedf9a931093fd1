#include "preview_render.h"

#include <algorithm>
#include <cmath>

#include "../core/grid.h"
#include "../core/marching_tets.h"
#include "../core/model.h"
#include "../core/raster.h"

namespace dyntet {
namespace preview {

void clip_window(const Clip& c, int t, int window, std::vector<float>& out) {
  const int n = (int)c.coefficients.shape[0];
  out.assign((size_t)window * kNumBlendshapes, 0.f);
  for (int j = 0; j < window; ++j) {
    const int f = std::clamp(t + j - (window - 1) / 2, 0, n - 1);
    for (int k = 0; k < kNumBlendshapes; ++k) out[(size_t)j * kNumBlendshapes + k] = c.coefficients.data[(size_t)f * kNumCoefficients + k];
  }
}

std::vector<uint8_t> render(const Asset& a, const float* window, const float pose[16]) {
  const AssetMetadata& m = a.metadata;
  const int W = m.camera.width, H = m.camera.height;
  float cond[kMaxWidth];
  condition_forward(m.condition, a.condition.data.data(), window, cond);

  GridSpec g;
  g.res = m.grid_res;
  for (int i = 0; i < 3; ++i) g.box_min[i] = m.box_min[i], g.box_max[i] = m.box_max[i];
  std::vector<float> sdf = a.sdf.data, disp(sdf.size() * 3, 0.f);
  for (uint32_t v : a.active) {
    float p[3], u[3], d[3], delta;
    grid_vertex_position(g, (int32_t)v, p);
    int32_t ijk[3];  // u of a grid vertex is its lattice coordinate (i, j, k) / R, as every backend computes it
    grid_vertex_ijk(g.res, (int32_t)v, ijk);
    for (int k = 0; k < 3; ++k) u[k] = (float)ijk[k] / (float)g.res;
    deform_vertex(m.deform, a.deform.data.data(), u, cond, m.condition.out_dim, a.elastic.data[v], d, &delta);
    for (int k = 0; k < 3; ++k) disp[(size_t)v * 3 + k] = d[k];
    sdf[v] += delta;
  }
  MtMesh mesh;
  marching_tets(g, sdf.data(), disp.data(), mesh);

  const size_t nv = mesh.num_vertices();
  std::vector<float> clip(nv * 4);
  for (size_t i = 0; i < nv; ++i) project_to_clip(m.camera, pose, &mesh.positions[i * 3], &clip[i * 4]);

  std::vector<int> id((size_t)W * H, -1);
  std::vector<float> depth((size_t)W * H, 0.f), l1b((size_t)W * H), l2b((size_t)W * H);
  for (size_t t = 0; t < mesh.num_triangles(); ++t) {
    const int32_t* tri = &mesh.triangles[t * 3];
    const float *v0 = &clip[(size_t)tri[0] * 4], *v1 = &clip[(size_t)tri[1] * 4], *v2 = &clip[(size_t)tri[2] * 4];
    const TriSetup<float> s = tri_setup(v0, v1, v2);
    if (!s.valid) continue;
    float x0 = 1e30f, x1 = -1e30f, y0 = 1e30f, y1 = -1e30f;
    for (const float* v : {v0, v1, v2}) {
      float px[2];
      clip_to_pixel(m.camera, v, px);
      x0 = std::min(x0, px[0]), x1 = std::max(x1, px[0]), y0 = std::min(y0, px[1]), y1 = std::max(y1, px[1]);
    }
    const int ix0 = std::max(0, (int)std::floor(x0) - 1), ix1 = std::min(W - 1, (int)std::ceil(x1) + 1);
    const int iy0 = std::max(0, (int)std::floor(y0) - 1), iy1 = std::min(H - 1, (int)std::ceil(y1) + 1);
    for (int y = iy0; y <= iy1; ++y)
      for (int x = ix0; x <= ix1; ++x) {
        float px, py, l1, l2, d;
        pixel_ndc(x, y, W, H, px, py);
        if (!tri_eval(s, px, py, l1, l2, d)) continue;
        const size_t o = (size_t)y * W + x;
        if (!depth_less(d, (int)t, depth[o], id[o])) continue;
        id[o] = (int)t, depth[o] = d, l1b[o] = l1, l2b[o] = l2;
      }
  }

  HashLevel levels[64];
  hashgrid_levels(m.texture.grid, levels);
  const int n_grid = m.texture.grid.levels * m.texture.grid.features;
  const bool plate = a.has_plate && a.plate.encoding == PlateEncoding::RGBA8 && (int)a.plate.width == W && (int)a.plate.height == H;
  std::vector<uint8_t> out((size_t)W * H * 4);
  for (size_t o = 0; o < (size_t)W * H; ++o) {
    float rgb[3] = {0.f, 0.f, 0.f};
    if (plate)
      for (int k = 0; k < 3; ++k) rgb[k] = a.plate.bytes[o * 4 + k] / 255.f;
    if (id[o] >= 0) {
      const int32_t* tri = &mesh.triangles[(size_t)id[o] * 3];
      float u[3], in[kMaxWidth];
      for (int k = 0; k < 3; ++k) {
        const float c = interp(mesh.canonical[(size_t)tri[0] * 3 + k], mesh.canonical[(size_t)tri[1] * 3 + k],
                               mesh.canonical[(size_t)tri[2] * 3 + k], l1b[o], l2b[o]);
        u[k] = (c - m.box_min[k]) / (m.box_max[k] - m.box_min[k]);
      }
      hashgrid_encode(m.texture.grid, levels, a.hash_grid.data.data(), u, in);
      for (int i = 0; i < m.condition.out_dim; ++i) in[n_grid + i] = cond[i];
      mlp_forward(m.texture.mlp, a.texture.data.data(), in, rgb);
    }
    for (int k = 0; k < 3; ++k) out[o * 4 + k] = (uint8_t)std::lround(std::clamp(rgb[k], 0.f, 1.f) * 255.f);
    out[o * 4 + 3] = 255;
  }
  return out;
}

}  // namespace preview
}  // namespace dyntet
