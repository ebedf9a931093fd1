// A UV sphere in face space (cm) and per-frame poses looking at it: the scene of the raster
// benchmark and of the CUDA-vs-CPU check.
#pragma once
#include <cmath>
#include <vector>
#include "raster_ops.h"

namespace dyntet {
namespace bench {

// stacks x slices quads minus the pole caps: 2 * slices * (stacks - 1) triangles, wound
// counter-clockwise seen from outside.
inline void uv_sphere(int stacks, int slices, float radius, std::vector<float>& pos, std::vector<int>& tris) {
  pos.clear();
  tris.clear();
  const double pi = 3.14159265358979323846;
  pos.insert(pos.end(), {0.f, radius, 0.f});
  for (int i = 1; i < stacks; ++i) {
    const double th = pi * i / stacks;
    for (int j = 0; j < slices; ++j) {
      const double ph = 2 * pi * j / slices;
      pos.push_back((float)(radius * std::sin(th) * std::cos(ph)));
      pos.push_back((float)(radius * std::cos(th)));
      pos.push_back((float)(-radius * std::sin(th) * std::sin(ph)));
    }
  }
  pos.insert(pos.end(), {0.f, -radius, 0.f});
  const int south = 1 + (stacks - 1) * slices;
  auto ring = [&](int i, int j) { return 1 + (i - 1) * slices + (j % slices); };
  for (int j = 0; j < slices; ++j) tris.insert(tris.end(), {0, ring(1, j), ring(1, j + 1)});
  for (int i = 1; i < stacks - 1; ++i)
    for (int j = 0; j < slices; ++j) {
      const int a = ring(i, j), b = ring(i, j + 1), c = ring(i + 1, j), d = ring(i + 1, j + 1);
      tris.insert(tris.end(), {a, c, d, a, d, b});
    }
  for (int j = 0; j < slices; ++j) tris.insert(tris.end(), {south, ring(stacks - 1, j + 1), ring(stacks - 1, j)});
}

// Column-major pose: rotation about y by angle (radians), then a translation to (tx, ty, tz).
inline void pose_matrix(float angle, float tx, float ty, float tz, float* m) {
  const float c = std::cos(angle), s = std::sin(angle);
  const float M[16] = {c, 0, -s, 0, 0, 1, 0, 0, s, 0, c, 0, tx, ty, tz, 1};
  for (int k = 0; k < 16; ++k) m[k] = M[k];
}


// The training-style render chain on one backend: project -> rasterise -> interpolate (3
// channels) -> shade to RGBA -> silhouettes -> antialias -> composite, and its backward.
struct Pipeline {
  Backend b;
  RasterSize size;
  Camera cam;
  std::vector<int> vert_begin, tri_begin;
  std::vector<float> poses;
  int64_t n_vert = 0, n_tris = 0;
  Buffer<float> pos, clip, bary, depth, attr, interp, rgba, aa, bg, out;
  Buffer<float> g_out, g_aa, g_rgba, g_interp, g_bary, g_clip, g_pos, g_attr;
  Buffer<int> tris, id, adj;
  Buffer<unsigned char> sil, adj_scratch;
  Rasterizer<float> rz;

  // frames copies of one mesh, frame f rotated by 0.3 f radians, 40 cm in front of the camera.
  Pipeline(Backend backend, int frames, int width, int height, const std::vector<float>& mesh_pos, const std::vector<int>& mesh_tris)
      : b(backend), rz(backend) {
    size = RasterSize{frames, width, height};
    cam.width = width;
    cam.height = height;
    const int nv = (int)mesh_pos.size() / 3, nt = (int)mesh_tris.size() / 3;
    std::vector<float> P, A;
    std::vector<int> T;
    vert_begin = {0};
    tri_begin = {0};
    for (int f = 0; f < frames; ++f) {
      P.insert(P.end(), mesh_pos.begin(), mesh_pos.end());
      for (int k = 0; k < 3 * nv; ++k) A.push_back(0.5f + mesh_pos[k] / 20.f);
      for (int k = 0; k < 3 * nt; ++k) T.push_back(mesh_tris[k] + f * nv);
      vert_begin.push_back((f + 1) * nv);
      tri_begin.push_back((f + 1) * nt);
      float m[16];
      pose_matrix(0.3f * f, 0.5f * f, -0.3f * f, -40.f, m);
      poses.insert(poses.end(), m, m + 16);
    }
    n_vert = (int64_t)nv * frames;
    n_tris = (int64_t)nt * frames;
    const int64_t np = size.pixels();
    pos.resize(b, 3 * n_vert); pos.upload(P.data(), P.size());
    attr.resize(b, 3 * n_vert); attr.upload(A.data(), A.size());
    tris.resize(b, 3 * n_tris); tris.upload(T.data(), T.size());
    clip.resize(b, 4 * n_vert); id.resize(b, np); bary.resize(b, 2 * np); depth.resize(b, np);
    interp.resize(b, 3 * np); rgba.resize(b, 4 * np); aa.resize(b, 4 * np); out.resize(b, 3 * np);
    std::vector<float> B(3 * np);
    for (int64_t p = 0; p < np; ++p) { B[3 * p] = 0.2f; B[3 * p + 1] = 0.4f; B[3 * p + 2] = 0.6f; }
    bg.resize(b, 3 * np); bg.upload(B.data(), B.size());
    adj.resize(b, 3 * n_tris); sil.resize(b, n_tris);
    g_out.resize(b, 3 * np); g_aa.resize(b, 4 * np); g_rgba.resize(b, 4 * np); g_interp.resize(b, 3 * np);
    g_bary.resize(b, 2 * np); g_clip.resize(b, 4 * n_vert); g_pos.resize(b, 3 * n_vert); g_attr.resize(b, 3 * n_vert);
    std::vector<float> G(3 * np);
    for (int64_t p = 0; p < np; ++p) for (int c = 0; c < 3; ++c) G[3 * p + c] = ((p * 7 + c * 3) % 11) / 11.f - 0.45f;
    g_out.upload(G.data(), G.size());
  }

  void adjacency() { triangle_adjacency(b, n_tris, tris.data(), adj.data(), &adj_scratch); }

  void forward() {
    project_forward<float>(b, cam, vert_begin, poses, pos.data(), clip.data());
    rz.forward(size, clip.data(), n_vert, tris.data(), tri_begin, id.data(), bary.data(), depth.data());
    interpolate_forward<float>(b, size.pixels(), 3, attr.data(), tris.data(), id.data(), bary.data(), interp.data());
    // Shading stands in for the texture network: RGBA = (interpolated attribute, 1) where covered.
    float* ip = interp.data();
    float* cp = rgba.data();
    const int* idp = id.data();
    launch_1d(b, size.pixels(), [=] DT_LAMBDA(int64_t p) {
      const bool cov = idp[p] >= 0;
      for (int c = 0; c < 3; ++c) cp[4 * p + c] = cov ? ip[3 * p + c] : 0.f;
      cp[4 * p + 3] = cov ? 1.f : 0.f;
    });
    silhouette_edges<float>(b, n_tris, clip.data(), tris.data(), adj.data(), size.width, size.height, sil.data());
    antialias_forward<float>(b, size, 4, rgba.data(), clip.data(), tris.data(), sil.data(), adj.data(), id.data(), depth.data(), aa.data());
    composite_forward<float>(b, size.pixels(), aa.data(), bg.data(), out.data());
  }

  void backward() {
    g_aa.zero(); g_rgba.zero(); g_interp.zero(); g_bary.zero(); g_clip.zero(); g_pos.zero(); g_attr.zero();
    composite_backward<float>(b, size.pixels(), aa.data(), bg.data(), g_out.data(), g_aa.data(), nullptr);
    antialias_backward<float>(b, size, 4, rgba.data(), clip.data(), tris.data(), sil.data(), adj.data(), id.data(), depth.data(), g_aa.data(),
                              g_rgba.data(), g_clip.data());
    float* gi = g_interp.data();
    const float* gr = g_rgba.data();
    const int* idp = id.data();
    launch_1d(b, size.pixels(), [=] DT_LAMBDA(int64_t p) {
      for (int c = 0; c < 3; ++c) gi[3 * p + c] = idp[p] >= 0 ? gr[4 * p + c] : 0.f;
    });
    interpolate_backward<float>(b, size.pixels(), 3, attr.data(), tris.data(), id.data(), bary.data(), g_interp.data(),
                                g_attr.data(), g_bary.data());
    rasterize_backward<float>(b, size, clip.data(), tris.data(), id.data(), g_bary.data(), g_clip.data());
    project_backward<float>(b, cam, vert_begin, poses, g_clip.data(), g_pos.data());
  }
};

}  // namespace bench
}  // namespace dyntet
