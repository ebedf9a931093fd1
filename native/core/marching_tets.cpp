#include "marching_tets.h"

#include <algorithm>
#include <cmath>

namespace dyntet {

namespace {

void vertex_pos(const GridSpec& g, const float* disp, int32_t v, float canon[3], float moved[3]) {
  grid_vertex_position(g, v, canon);
  for (int a = 0; a < 3; ++a) moved[a] = disp ? canon[a] + disp[(size_t)v * 3 + a] : canon[a];
}

}  // namespace

bool marching_tets(const GridSpec& g, const float* sdf, const float* disp, MtMesh& out) {
  if (g.res < 1 || g.res > kMaxGridRes || !sdf) return false;
  for (int a = 0; a < 3; ++a)
    if (!std::isfinite(g.box_min[a]) || !std::isfinite(g.box_max[a]) || !(g.box_max[a] > g.box_min[a])) return false;
  const int R = g.res;
  const int32_t n = R + 1;
  out = MtMesh{};

  // Pass 1: crossing edges in key order (vertex ascending, then offset ascending), so the output
  // vertex order is the sorted edge-key order without a sort.
  for (int32_t k = 0; k < n; ++k)
    for (int32_t j = 0; j < n; ++j)
      for (int32_t i = 0; i < n; ++i) {
        const int32_t v = grid_vertex_index(R, i, j, k);
        const float sv = sdf[v];
        for (int d = 1; d <= 7; ++d) {
          const int32_t di = d & 1, dj = (d >> 1) & 1, dk = (d >> 2) & 1;
          if (i + di > R || j + dj > R || k + dk > R) continue;
          const int32_t w = grid_vertex_index(R, i + di, j + dj, k + dk);
          if (!mt_edge_crosses(sv, sdf[w])) continue;
          const float sw = sdf[w];
          float ca[3], pa[3], cb[3], pb[3], p[3], c[3];
          vertex_pos(g, disp, v, ca, pa);
          vertex_pos(g, disp, w, cb, pb);
          mt_interpolate(pa, pb, sv, sw, p);
          mt_interpolate(ca, cb, sv, sw, c);
          out.positions.insert(out.positions.end(), p, p + 3);
          out.canonical.insert(out.canonical.end(), c, c + 3);
          out.edges.push_back(v);
          out.edges.push_back(w);
          out.weights.push_back(mt_weight(sv, sw));
          out.edge_keys.push_back(v * 7 + (d - 1));
        }
      }

  // Pass 2: triangles, tet by tet; output vertex of an edge found by binary search on the keys.
  const int32_t cubes = grid_num_cubes(R);
  for (int32_t cube = 0; cube < cubes; ++cube) {
    float cs[8];
    bool any_in = false, any_out = false;
    for (int c = 0; c < 8; ++c) {
      cs[c] = sdf[grid_cube_corner(R, cube, c)];
      (mt_inside(cs[c]) ? any_in : any_out) = true;
    }
    if (!any_in || !any_out) continue;
    for (int t = 0; t < 6; ++t) {
      int corner[4];
      float s[4];
      for (int q = 0; q < 4; ++q) {
        corner[q] = grid_tet_corner(t, q);
        s[q] = cs[corner[q]];
      }
      const int cs_case = mt_case(s);
      for (int tri = 0; tri < kMtNumTriangles[cs_case]; ++tri)
        for (int q = 0; q < 3; ++q) {
          const int e = kMtTriangleEdges[cs_case][tri * 3 + q];
          const int32_t key = grid_edge_key(R, cube, corner[kMtEdges[e][0]], corner[kMtEdges[e][1]]);
          const auto it = std::lower_bound(out.edge_keys.begin(), out.edge_keys.end(), key);
          out.triangles.push_back((int32_t)(it - out.edge_keys.begin()));
        }
    }
  }
  return true;
}

}  // namespace dyntet
