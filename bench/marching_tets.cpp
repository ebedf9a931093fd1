// Marching tetrahedra, native: triangles per second on a bumpy sphere at R = 32..128 (table), or
// a binary dump of one mesh for the native-vs-WASM identity test.
//   bench_marching_tets                         table
//   bench_marching_tets --dump R SDF.f32 OUT    read (R+1)^3 floats, write the mesh of box [-1,1]^3:
//                                               u32 nv, u32 nt, f32 positions[nv*3], f32 canonical[nv*3], i32 triangles[nt*3]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>
#include "core/marching_tets.h"

using namespace dyntet;

static std::vector<float> bumpy_sphere(int R) {
  std::vector<float> sdf((size_t)grid_num_vertices(R));
  GridSpec g;
  g.res = R;
  for (int32_t v = 0; v < grid_num_vertices(R); ++v) {
    float p[3];
    grid_vertex_position(g, v, p);
    const float r = std::sqrt(p[0] * p[0] + p[1] * p[1] + p[2] * p[2]);
    sdf[(size_t)v] = r - 0.7f - 0.05f * std::sin(9.f * p[0]) * std::sin(7.f * p[1]) * std::sin(8.f * p[2]);
  }
  return sdf;
}

int main(int argc, char** argv) {
  if (argc == 5 && std::strcmp(argv[1], "--dump") == 0) {
    const int R = std::atoi(argv[2]);
    std::vector<float> sdf((size_t)grid_num_vertices(R));
    FILE* f = std::fopen(argv[3], "rb");
    if (!f || std::fread(sdf.data(), 4, sdf.size(), f) != sdf.size()) { std::fprintf(stderr, "cannot read %s\n", argv[3]); return 1; }
    std::fclose(f);
    GridSpec g;
    g.res = R;
    MtMesh m;
    if (!marching_tets(g, sdf.data(), nullptr, m)) { std::fprintf(stderr, "marching_tets refused R=%d\n", R); return 1; }
    FILE* o = std::fopen(argv[4], "wb");
    const uint32_t nv = (uint32_t)m.num_vertices(), nt = (uint32_t)m.num_triangles();
    std::fwrite(&nv, 4, 1, o);
    std::fwrite(&nt, 4, 1, o);
    std::fwrite(m.positions.data(), 4, m.positions.size(), o);
    std::fwrite(m.canonical.data(), 4, m.canonical.size(), o);
    std::fwrite(m.triangles.data(), 4, m.triangles.size(), o);
    std::fclose(o);
    return 0;
  }
  std::printf("marching tetrahedra, native (this build), bumpy sphere in [-1,1]^3, median of 7 runs\n\n");
  std::printf("| R | tets | triangles | ms | M triangles/s |\n|---:|---:|---:|---:|---:|\n");
  for (int R : {32, 64, 96, 128}) {
    const std::vector<float> sdf = bumpy_sphere(R);
    GridSpec g;
    g.res = R;
    MtMesh m;
    std::vector<double> ms;
    for (int rep = 0; rep < 7; ++rep) {
      const auto t0 = std::chrono::steady_clock::now();
      marching_tets(g, sdf.data(), nullptr, m);
      ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(ms.begin(), ms.end());
    std::printf("| %d | %d | %zu | %.2f | %.2f |\n", R, grid_num_tets(R), m.num_triangles(), ms[3], m.num_triangles() / ms[3] / 1e3);
  }
  return 0;
}
