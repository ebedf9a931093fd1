// Marching tetrahedra on the procedural grid (grid.h). Input: a signed distance per grid vertex
// (negative inside; a value of exactly 0 counts as outside) and optionally a displacement per grid
// vertex. Output: an indexed triangle mesh, counter-clockwise seen from outside (normals point
// from negative to positive SDF), with one vertex per sign-changing grid edge.
//
// Determinism: output vertices are ordered by edge key (grid.h: v*7 + d-1), triangles by tet index
// then by the order of the case table, so every backend (CPU, CUDA, WASM, WGSL) that follows this
// file produces the same mesh, bit for bit, for the same input.
//
// Vertex on edge (a, b): p = (p_a * s_b - p_b * s_a) / (s_b - s_a), with p the displaced grid
// positions for `positions` and the undisplaced ones for `canonical`. The weight stored per vertex
// is w = s_b / (s_b - s_a), the share of endpoint a; the trainer differentiates through it.
//
// The tables below are the contract for the WGSL port (shaders/): mirror them verbatim.
#pragma once
#include <vector>
#include "common.h"
#include "grid.h"

namespace dyntet {

// Each table is written once, as a macro, and defines both the namespace-scope array (host code)
// and the function-local static copy that mt_tet_triangles reads (CUDA cannot index
// namespace-scope constexpr arrays in device code; a static local one it keeps once in global
// memory, read through the cache, rather than on each thread's stack).

// Tet-local edges (vertex pairs), in the order the case table refers to them.
#define DT_MT_EDGES {{0, 1}, {0, 2}, {0, 3}, {1, 2}, {1, 3}, {2, 3}}
constexpr int kMtEdges[6][2] = DT_MT_EDGES;

// Case = sum over tet vertices k of (sdf_k < 0) << k. Triangles per case.
#define DT_MT_NUM_TRIANGLES {0, 1, 1, 2, 1, 2, 2, 1, 1, 2, 2, 1, 2, 1, 1, 0}
constexpr int kMtNumTriangles[16] = DT_MT_NUM_TRIANGLES;

// Tet-local edges of each triangle (up to 2 per case), wound counter-clockwise seen from the
// positive side for a positively oriented tet; -1 pads.
#define DT_MT_TRIANGLE_EDGES                                                                    \
  {                                                                                             \
    {-1, -1, -1, -1, -1, -1}, {0, 1, 2, -1, -1, -1}, {0, 4, 3, -1, -1, -1}, {3, 1, 2, 3, 2, 4}, \
    {1, 3, 5, -1, -1, -1},    {2, 0, 3, 2, 3, 5},    {1, 0, 4, 1, 4, 5},    {2, 4, 5, -1, -1, -1}, \
    {2, 5, 4, -1, -1, -1},    {4, 0, 1, 4, 1, 5},    {3, 0, 2, 3, 2, 5},    {1, 5, 3, -1, -1, -1}, \
    {2, 1, 3, 2, 3, 4},       {0, 3, 4, -1, -1, -1}, {0, 2, 1, -1, -1, -1}, {-1, -1, -1, -1, -1, -1}, \
  }
constexpr int kMtTriangleEdges[16][6] = DT_MT_TRIANGLE_EDGES;

DT_HD bool mt_inside(float s) { return s < 0.f; }

DT_HD int mt_case(const float s[4]) {
  return (mt_inside(s[0]) ? 1 : 0) | (mt_inside(s[1]) ? 2 : 0) | (mt_inside(s[2]) ? 4 : 0) | (mt_inside(s[3]) ? 8 : 0);
}

DT_HD bool mt_edge_crosses(float sa, float sb) { return mt_inside(sa) != mt_inside(sb); }

// p = (pa*sb - pb*sa) / (sb - sa), per component; only called when the edge crosses.
DT_HD void mt_interpolate(const float pa[3], const float pb[3], float sa, float sb, float out[3]) {
  const float den = sb - sa;
  for (int k = 0; k < 3; ++k) out[k] = (pa[k] * sb - pb[k] * sa) / den;
}

DT_HD float mt_weight(float sa, float sb) { return sb / (sb - sa); }

// Backward of mt_interpolate: p = w pa + (1 - w) pb with w = sb / (sb - sa). From g = dL/dp,
// writes dL/dpa and dL/dpb (3 each; either may be null) and ADDS dL/dsa, dL/dsb:
//   dp/dsa = sb (pa - pb) / (sb - sa)^2,  dp/dsb = -sa (pa - pb) / (sb - sa)^2.
// When |sb - sa| < 1e-12 (both values within rounding of zero) the SDF gradients are left out:
// the crossing point is then undefined to first order. Templated on the real type so tests can
// run it in double.
template <class R>
DT_HD void mt_interpolate_backward(const R pa[3], const R pb[3], R sa, R sb, const R g[3], R* ga, R* gb, R* gsa,
                                   R* gsb) {
  const R d = sb - sa;
  const R w = sb / d;  // mt_weight
  R gt = R(0);  // g . (pa - pb)
  for (int k = 0; k < 3; ++k) {
    if (ga) ga[k] = w * g[k];
    if (gb) gb[k] = (R(1) - w) * g[k];
    gt += g[k] * (pa[k] - pb[k]);
  }
  if (!(d > R(1e-12) || d < R(-1e-12))) return;
  *gsa += gt * sb / (d * d);
  *gsb += -gt * sa / (d * d);
}

// One tet's surface triangles in marching_tets()'s case table, order and winding, as grid
// edges: v holds the tet's grid vertex ids in grid_tet_vertices order (positively oriented), s
// their SDF values. Corner q of triangle k lies on grid edge (edge[k][q][0], edge[k][q][1]), the
// smaller vertex id first (the edge key's base vertex, as in MtMesh::edges), so mt_interpolate
// along it gives bit for bit the vertex marching_tets() outputs for that edge, whichever tet
// asks. Triangles are counter-clockwise seen from outside. Returns the count (0, 1 or 2).
DT_HD int mt_tet_triangles(const int32_t v[4], const float s[4], int32_t edge[2][3][2]) {
  static constexpr int kEdges[6][2] = DT_MT_EDGES;
  static constexpr int kNum[16] = DT_MT_NUM_TRIANGLES;
  static constexpr int kTri[16][6] = DT_MT_TRIANGLE_EDGES;
  const int c = mt_case(s);
  for (int k = 0; k < kNum[c]; ++k)
    for (int q = 0; q < 3; ++q) {
      const int e = kTri[c][k * 3 + q];
      const int32_t a = v[kEdges[e][0]], b = v[kEdges[e][1]];
      edge[k][q][0] = a < b ? a : b;
      edge[k][q][1] = a < b ? b : a;
    }
  return kNum[c];
}

// The mesh. Arrays are flat: 3 floats per vertex in positions/canonical, 2 ints per vertex in
// edges (grid vertex ids a < b, a being the edge key's base vertex), 3 ints per triangle.
struct MtMesh {
  std::vector<float> positions;
  std::vector<float> canonical;
  std::vector<int32_t> edges;
  std::vector<float> weights;
  std::vector<int32_t> edge_keys;
  std::vector<int32_t> triangles;
  size_t num_vertices() const { return weights.size(); }
  size_t num_triangles() const { return triangles.size() / 3; }
};

// sdf: grid_num_vertices(g.res) values. displacement: 3 per grid vertex, or nullptr for none.
// Returns false (mesh untouched) when g.res is outside [1, kMaxGridRes] or the box is empty or
// not finite.
bool marching_tets(const GridSpec& g, const float* sdf, const float* displacement, MtMesh& out);

}  // namespace dyntet
