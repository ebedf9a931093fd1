// Marching tetrahedra on analytic shapes: topology (closed 2-manifold, Euler characteristic),
// orientation (outward, consistent), geometry (volume), determinism, and the grid itself.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <utility>

#include "../core/marching_tets.h"
#include "mt_shapes.h"
#include "test_harness.h"

using namespace dyntet;

namespace {

GridSpec unit_grid(int R) {
  GridSpec g;
  g.res = R;
  return g;
}

struct Topology {
  bool closed_manifold = true;  // every undirected edge in exactly two triangles, opposite directions
  long euler = 0;
};

Topology topology(const MtMesh& m) {
  std::map<std::pair<int, int>, int> directed;
  for (size_t t = 0; t < m.num_triangles(); ++t)
    for (int k = 0; k < 3; ++k) directed[{m.triangles[t * 3 + k], m.triangles[t * 3 + (k + 1) % 3]}]++;
  Topology r;
  long undirected = 0;
  for (const auto& [e, count] : directed) {
    if (count != 1) r.closed_manifold = false;
    auto rev = directed.find({e.second, e.first});
    if (rev == directed.end() || rev->second != 1) r.closed_manifold = false;
    if (e.first < e.second) ++undirected;
  }
  // Also reject degenerate triangles that repeat a vertex.
  for (size_t t = 0; t < m.num_triangles(); ++t) {
    const int a = m.triangles[t * 3], b = m.triangles[t * 3 + 1], c = m.triangles[t * 3 + 2];
    if (a == b || b == c || a == c) r.closed_manifold = false;
  }
  r.euler = (long)m.num_vertices() - undirected + (long)m.num_triangles();
  return r;
}

double signed_volume(const MtMesh& m) {
  double v = 0;
  for (size_t t = 0; t < m.num_triangles(); ++t) {
    const float* a = &m.positions[m.triangles[t * 3] * 3];
    const float* b = &m.positions[m.triangles[t * 3 + 1] * 3];
    const float* c = &m.positions[m.triangles[t * 3 + 2] * 3];
    v += (a[0] * ((double)b[1] * c[2] - (double)b[2] * c[1]) - a[1] * ((double)b[0] * c[2] - (double)b[2] * c[0]) +
          a[2] * ((double)b[0] * c[1] - (double)b[1] * c[0])) / 6.0;
  }
  return v;
}

void check_sphere(int R) {
  GridSpec g = unit_grid(R);
  std::vector<float> sdf, disp;
  REQUIRE(dyntet_test::shape_sdf("sphere", g, sdf, disp));
  MtMesh m;
  REQUIRE(marching_tets(g, sdf.data(), nullptr, m));
  REQUIRE(m.num_triangles() > 100);
  const Topology t = topology(m);
  CHECK(t.closed_manifold);
  CHECK_EQ(t.euler, 2L);
  // Every face normal points away from the centre.
  size_t inward = 0;
  for (size_t f = 0; f < m.num_triangles(); ++f) {
    const float* a = &m.positions[m.triangles[f * 3] * 3];
    const float* b = &m.positions[m.triangles[f * 3 + 1] * 3];
    const float* c = &m.positions[m.triangles[f * 3 + 2] * 3];
    const double u[3] = {b[0] - a[0], b[1] - a[1], b[2] - a[2]}, w[3] = {c[0] - a[0], c[1] - a[1], c[2] - a[2]};
    const double n[3] = {u[1] * w[2] - u[2] * w[1], u[2] * w[0] - u[0] * w[2], u[0] * w[1] - u[1] * w[0]};
    const double ctr[3] = {(a[0] + b[0] + c[0]) / 3.0 - 0.013, (a[1] + b[1] + c[1]) / 3.0 + 0.007, (a[2] + b[2] + c[2]) / 3.0 - 0.003};
    if (n[0] * ctr[0] + n[1] * ctr[1] + n[2] * ctr[2] <= 0) ++inward;
  }
  CHECK_EQ(inward, (size_t)0);
  const double exact = 4.0 / 3.0 * M_PI * 0.7 * 0.7 * 0.7;
  const double vol = signed_volume(m);
  std::printf("  R=%d: %zu vertices, %zu triangles, volume %.5f vs %.5f (%.3f%%)\n", R, m.num_vertices(),
              m.num_triangles(), vol, exact, 100.0 * (vol - exact) / exact);
  CHECK(std::fabs(vol - exact) / exact < 0.02);
  // Per-vertex records are consistent with the grid and the documented formula.
  for (size_t v = 0; v < m.num_vertices(); ++v) {
    int32_t a, b;
    grid_edge_vertices(R, m.edge_keys[v], &a, &b);
    CHECK_EQ(a, m.edges[v * 2]);
    CHECK_EQ(b, m.edges[v * 2 + 1]);
    const float w = m.weights[v];
    CHECK(w >= 0.f && w <= 1.f);
    float pa[3], pb[3];
    grid_vertex_position(g, a, pa);
    grid_vertex_position(g, b, pb);
    for (int k = 0; k < 3; ++k) CHECK_NEAR(m.canonical[v * 3 + k], pa[k] * w + pb[k] * (1 - w), 1e-5);
    if (v > 0) CHECK(m.edge_keys[v] > m.edge_keys[v - 1]);
  }
}

}  // namespace

TEST(grid_tets_positive_and_fill_the_box) {
  GridSpec g;
  g.res = 3;
  g.box_min[0] = -1; g.box_max[0] = 2;
  double total = 0;
  for (int32_t t = 0; t < grid_num_tets(g.res); ++t) {
    int32_t v[4];
    grid_tet_vertices(g.res, t, v);
    float p[4][3];
    for (int k = 0; k < 4; ++k) grid_vertex_position(g, v[k], p[k]);
    double e[3][3];
    for (int k = 0; k < 3; ++k)
      for (int a = 0; a < 3; ++a) e[k][a] = p[k + 1][a] - p[0][a];
    const double det = e[0][0] * (e[1][1] * e[2][2] - e[1][2] * e[2][1]) - e[0][1] * (e[1][0] * e[2][2] - e[1][2] * e[2][0]) +
                       e[0][2] * (e[1][0] * e[2][1] - e[1][1] * e[2][0]);
    CHECK(det > 0);
    total += det / 6.0;
  }
  CHECK_NEAR(total, 3.0 * 2.0 * 2.0, 1e-4);
}

TEST(grid_vertex_index_layout) {
  const int R = 5;
  int32_t ijk[3];
  grid_vertex_ijk(R, grid_vertex_index(R, 2, 3, 4), ijk);
  CHECK_EQ(ijk[0], 2);
  CHECK_EQ(ijk[1], 3);
  CHECK_EQ(ijk[2], 4);
  CHECK_EQ(grid_vertex_index(R, 1, 0, 0), 1);
  CHECK_EQ(grid_vertex_index(R, 0, 1, 0), 6);
  CHECK_EQ(grid_vertex_index(R, 0, 0, 1), 36);
  GridSpec g;
  g.res = R;
  float p[3];
  grid_vertex_position(g, grid_vertex_index(R, 5, 0, 5), p);
  CHECK_EQ(p[0], 1.f);
  CHECK_EQ(p[1], -1.f);
  CHECK_EQ(p[2], 1.f);
}

TEST(case_table_every_sign_pattern_single_tet) {
  // One tet per case: the triangles' normals point from inside vertices to outside ones.
  const float P[4][3] = {{0, 0, 0}, {1, 0, 0}, {0, 1, 0}, {0, 0, 1}};
  for (int c = 0; c < 16; ++c) {
    float s[4];
    for (int k = 0; k < 4; ++k) s[k] = (c >> k) & 1 ? -0.5f - 0.1f * k : 0.4f + 0.1f * k;
    CHECK_EQ(mt_case(s), c);
    for (int t = 0; t < kMtNumTriangles[c]; ++t) {
      float q[3][3];
      for (int k = 0; k < 3; ++k) {
        const int e = kMtTriangleEdges[c][t * 3 + k];
        REQUIRE(e >= 0);
        const int a = kMtEdges[e][0], b = kMtEdges[e][1];
        CHECK(mt_edge_crosses(s[a], s[b]));
        mt_interpolate(P[a], P[b], s[a], s[b], q[k]);
      }
      const float u[3] = {q[1][0] - q[0][0], q[1][1] - q[0][1], q[1][2] - q[0][2]};
      const float w[3] = {q[2][0] - q[0][0], q[2][1] - q[0][1], q[2][2] - q[0][2]};
      const float n[3] = {u[1] * w[2] - u[2] * w[1], u[2] * w[0] - u[0] * w[2], u[0] * w[1] - u[1] * w[0]};
      float in_c[3] = {0, 0, 0}, out_c[3] = {0, 0, 0};
      int ni = 0, no = 0;
      for (int k = 0; k < 4; ++k)
        for (int a = 0; a < 3; ++a) {
          if (s[k] < 0) in_c[a] += P[k][a], ni += a == 0;
          else out_c[a] += P[k][a], no += a == 0;
        }
      float d = 0;
      for (int a = 0; a < 3; ++a) d += n[a] * (out_c[a] / no - in_c[a] / ni);
      CHECK(d > 0);
    }
  }
}

TEST(sphere_r32) { check_sphere(32); }
TEST(sphere_r64) { check_sphere(64); }

TEST(torus_genus_one) {
  GridSpec g = unit_grid(48);
  std::vector<float> sdf, disp;
  REQUIRE(dyntet_test::shape_sdf("torus", g, sdf, disp));
  MtMesh m;
  REQUIRE(marching_tets(g, sdf.data(), nullptr, m));
  const Topology t = topology(m);
  CHECK(t.closed_manifold);
  CHECK_EQ(t.euler, 0L);
  const double exact = 2.0 * M_PI * M_PI * 0.55 * 0.22 * 0.22;
  CHECK(std::fabs(signed_volume(m) - exact) / exact < 0.03);
}

TEST(displacement_moves_positions_not_canonical) {
  GridSpec g = unit_grid(24);
  std::vector<float> sdf, disp;
  REQUIRE(dyntet_test::shape_sdf("wavy", g, sdf, disp));
  MtMesh plain, moved;
  REQUIRE(marching_tets(g, sdf.data(), nullptr, plain));
  REQUIRE(marching_tets(g, sdf.data(), disp.data(), moved));
  CHECK(plain.triangles == moved.triangles);
  CHECK(plain.canonical == moved.canonical);
  CHECK(plain.positions != moved.positions);
  CHECK(topology(moved).closed_manifold);
}

TEST(deterministic_and_rejects_bad_grid) {
  GridSpec g = unit_grid(20);
  std::vector<float> sdf, disp;
  REQUIRE(dyntet_test::shape_sdf("torus", g, sdf, disp));
  MtMesh a, b;
  REQUIRE(marching_tets(g, sdf.data(), nullptr, a));
  REQUIRE(marching_tets(g, sdf.data(), nullptr, b));
  CHECK(a.positions == b.positions && a.triangles == b.triangles && a.weights == b.weights);
  GridSpec bad = g;
  bad.res = 0;
  CHECK(!marching_tets(bad, sdf.data(), nullptr, a));
  bad = g;
  bad.box_max[1] = bad.box_min[1];
  CHECK(!marching_tets(bad, sdf.data(), nullptr, a));
  // All outside or all inside: an empty mesh.
  std::vector<float> pos(sdf.size(), 1.f), neg(sdf.size(), -1.f);
  REQUIRE(marching_tets(g, pos.data(), nullptr, a));
  CHECK_EQ(a.num_triangles(), (size_t)0);
  REQUIRE(marching_tets(g, neg.data(), nullptr, a));
  CHECK_EQ(a.num_vertices(), (size_t)0);
}

DYNTET_TEST_MAIN()
