// The procedural tetrahedral grid. R (cubes per axis) and an axis-aligned box define it
// completely: no vertex or tet arrays exist anywhere (trainer, asset, player). Every function is
// DT_HD so CUDA kernels, CPU loops and (by a line-for-line port) WGSL compute the same thing.
//
//   vertex (i,j,k), 0 <= i,j,k <= R:  index i + (R+1)*(j + (R+1)*k),
//                                     position box_min + (box_max - box_min) * (i,j,k) / R
//   cube (i,j,k), 0 <= i,j,k < R:     index i + R*(j + R*k); corner c (bit 0 = +x, 1 = +y, 2 = +z)
//   tet:                              index cube*6 + t, t in [0,6)
//
// Each cube is split into 6 tets that all share its main diagonal (corner 0 to corner 7): tet t
// walks 0 -> e_a -> e_a+e_b -> 7 along one ordering (a,b,c) of the axes (Kuhn/Freudenthal split).
// Every face of a cube is then cut along the diagonal from its lowest to its highest corner, so
// neighbouring cubes conform. Tet vertices are listed positively oriented:
// det(p1-p0, p2-p0, p3-p0) > 0, which the marching-tets case table relies on for its winding.
//
// Every grid edge joins a vertex v to v + d for one of 7 offsets d (a non-empty subset of the
// axes, as a corner bitmask 1..7), so an edge is named by the key v*7 + (d-1). Sorting by that key
// is the order of marching-tets output vertices.
#pragma once
#include "common.h"

namespace dyntet {

// Largest supported R: vertex ids, tet ids (6 * 512^3) and edge keys (7 * 513^3) all fit int32.
constexpr int kMaxGridRes = 512;

struct GridSpec {
  int res = 32;
  float box_min[3] = {-1.f, -1.f, -1.f};
  float box_max[3] = {1.f, 1.f, 1.f};
};

DT_HD int32_t grid_num_vertices(int res) { return (res + 1) * (res + 1) * (res + 1); }
DT_HD int32_t grid_num_cubes(int res) { return res * res * res; }
DT_HD int32_t grid_num_tets(int res) { return 6 * res * res * res; }
DT_HD int32_t grid_num_edge_keys(int res) { return 7 * grid_num_vertices(res); }

// Corners of tet t of a cube (positively oriented), as corner bitmasks.
DT_HD int grid_tet_corner(int t, int k) {
  // Even axis orderings keep the walk order; odd ones swap the last two vertices. (static: CUDA
  // then keeps one copy in global memory, read through the cache, instead of building it on
  // each thread's stack.)
  static constexpr int kTetCorners[6][4] = {
      {0, 1, 3, 7},  // x,y,z
      {0, 1, 7, 5},  // x,z,y (odd)
      {0, 2, 7, 3},  // y,x,z (odd)
      {0, 2, 6, 7},  // y,z,x
      {0, 4, 5, 7},  // z,x,y
      {0, 4, 7, 6},  // z,y,x (odd)
  };
  return kTetCorners[t][k];
}

DT_HD void grid_vertex_ijk(int res, int32_t v, int32_t ijk[3]) {
  const int32_t n = res + 1;
  ijk[0] = v % n;
  ijk[1] = (v / n) % n;
  ijk[2] = v / (n * n);
}

DT_HD int32_t grid_vertex_index(int res, int32_t i, int32_t j, int32_t k) {
  const int32_t n = res + 1;
  return i + n * (j + n * k);
}

// Position of a grid vertex. Written as min + extent * (i / R) so every backend rounds alike.
DT_HD void grid_vertex_position(const GridSpec& g, int32_t v, float p[3]) {
  int32_t ijk[3];
  grid_vertex_ijk(g.res, v, ijk);
  for (int a = 0; a < 3; ++a)
    p[a] = g.box_min[a] + (g.box_max[a] - g.box_min[a]) * ((float)ijk[a] / (float)g.res);
}

// Normalised position of a grid vertex in [0,1]^3, (i,j,k) / R: the input of the model's
// encodings. grid_vertex_position is box_min + (box_max - box_min) * u with this same u.
DT_HD void grid_vertex_unit(int res, int32_t v, float u[3]) {
  int32_t ijk[3];
  grid_vertex_ijk(res, v, ijk);
  for (int a = 0; a < 3; ++a) u[a] = (float)ijk[a] / (float)res;
}

// Grid vertex at corner c of cube `cube`.
DT_HD int32_t grid_cube_corner(int res, int32_t cube, int c) {
  const int32_t i = cube % res, j = (cube / res) % res, k = cube / (res * res);
  return grid_vertex_index(res, i + (c & 1), j + ((c >> 1) & 1), k + ((c >> 2) & 1));
}

// The 4 grid vertex ids of a tet, positively oriented.
DT_HD void grid_tet_vertices(int res, int32_t tet, int32_t out[4]) {
  const int32_t cube = tet / 6;
  const int t = tet % 6;
  for (int k = 0; k < 4; ++k) out[k] = grid_cube_corner(res, cube, grid_tet_corner(t, k));
}

// Edge key of the grid edge between two tet vertices given as corners ca, cb of the same cube
// (one corner's bits are a subset of the other's).
DT_HD int32_t grid_edge_key(int res, int32_t cube, int ca, int cb) {
  const int lo = ca < cb ? ca : cb, hi = ca < cb ? cb : ca;
  return grid_cube_corner(res, cube, lo) * 7 + ((hi ^ lo) - 1);
}

// The two endpoint vertex ids of an edge key: a = key / 7, b = a + offset(d).
DT_HD void grid_edge_vertices(int res, int32_t key, int32_t* a, int32_t* b) {
  const int32_t v = key / 7;
  const int d = key % 7 + 1;
  const int32_t n = res + 1;
  *a = v;
  *b = v + (d & 1) + n * (((d >> 1) & 1) + n * ((d >> 2) & 1));
}

}  // namespace dyntet
