// Tests of the rendering ops on the CPU backend: the tiled rasteriser against a brute-force
// loop, every backward pass against central finite differences (in double, where the ops are
// exact up to rounding), NaN handling and argument errors.
#include <cmath>
#include <cstring>
#include <cstdio>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "raster_ops.h"
#include "../../../bench/raster_scene.h"

using namespace dyntet;

namespace {

int g_failures = 0;

#define CHECK(cond, ...)                                  \
  do {                                                    \
    if (!(cond)) {                                        \
      ++g_failures;                                       \
      std::printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
      std::printf(__VA_ARGS__);                           \
      std::printf("\n");                                  \
    }                                                     \
  } while (0)

const Backend kCpu = Backend::CPU;

// Compares analytic and numeric gradients; NaN anywhere fails. Elements whose magnitudes are
// both below floor (relative to the largest gradient) are compared absolutely.
bool grads_match(const char* name, const std::vector<double>& ana, const std::vector<double>& num, double tol = 1e-3,
                 bool expect_fail = false) {
  double gmax = 0;
  for (double v : num) gmax = std::fmax(gmax, std::fabs(v));
  double worst = 0;
  size_t worst_i = 0;
  bool ok = gmax > 0;
  for (size_t i = 0; i < ana.size(); ++i) {
    const double d = std::fabs(ana[i] - num[i]);
    const double scale = std::fmax(std::fmax(std::fabs(ana[i]), std::fabs(num[i])), 1e-4 * gmax);
    const double rel = d / scale;
    if (!(rel <= worst)) { worst = rel; worst_i = i; }
    if (!(rel < tol)) ok = false;
  }
  std::printf("  %-34s n=%-5zu max|g|=%.3e worst rel err=%.2e (at %zu)%s\n", name, ana.size(), gmax, worst, worst_i,
              gmax > 0 ? "" : " [all-zero gradient]");
  if (!expect_fail) CHECK(ok, "%s gradients differ from finite differences", name);
  return ok;
}

// Central differences of a scalar function over params.
std::vector<double> numeric_grad(std::vector<double>& params, const std::function<double()>& loss, double h) {
  std::vector<double> g(params.size());
  for (size_t i = 0; i < params.size(); ++i) {
    const double keep = params[i];
    params[i] = keep + h;
    const double lp = loss();
    params[i] = keep - h;
    const double lm = loss();
    params[i] = keep;
    g[i] = (lp - lm) / (2 * h);
  }
  return g;
}

struct Raster {
  std::vector<int> id;
  std::vector<double> bary, depth;
};

Raster rasterize(const RasterSize& s, const std::vector<double>& clip, const std::vector<int>& tris, const std::vector<int>& begin) {
  Raster r;
  r.id.resize(s.pixels());
  r.bary.resize(2 * s.pixels());
  r.depth.resize(s.pixels());
  Rasterizer<double> rz(kCpu);
  rz.forward(s, clip.data(), (int64_t)clip.size() / 4, tris.data(), begin, r.id.data(), r.bary.data(), r.depth.data());
  return r;
}

// A random clip-space triangle soup, w in [0.5, 3], a few dropped (w < 0) triangles.
template <class R>
void random_soup(std::mt19937& rng, int n_tris, std::vector<R>& clip, std::vector<int>& tris, bool allow_behind) {
  std::uniform_real_distribution<double> u(-1.2, 1.2), uw(0.5, 3.0), uz(-0.9, 0.9), us(0.05, 0.5);
  for (int t = 0; t < n_tris; ++t) {
    const double cx = u(rng), cy = u(rng), sc = us(rng);
    for (int k = 0; k < 3; ++k) {
      const double w = (allow_behind && rng() % 40 == 0) ? -1.0 : uw(rng);
      const double x = cx + sc * u(rng), y = cy + sc * u(rng), z = uz(rng);
      clip.push_back((R)(x * w)); clip.push_back((R)(y * w)); clip.push_back((R)(z * w)); clip.push_back((R)w);
      tris.push_back((int)(clip.size() / 4 - 1));
    }
  }
}

void test_tiled_vs_bruteforce() {
  std::printf("tiled rasteriser vs brute force\n");
  std::mt19937 rng(7);
  for (int trial = 0; trial < 4; ++trial) {
    const RasterSize s{3, 61 + 13 * trial, 47 + 9 * trial};
    std::vector<float> clip;
    std::vector<int> tris, begin{0};
    for (int f = 0; f < s.frames; ++f) {
      random_soup(rng, 150 + 60 * f, clip, tris, true);
      if (f == 1) {
        // Vertices exactly on pixel centres (w = 1): edges through centres, bounds on centres.
        const size_t first = clip.size() - 4 * 3 * (150 + 60 * f);
        for (size_t v = first; v < clip.size(); v += 4) {
          const int ix = (int)std::floor((clip[v] / clip[v + 3] * 0.5 + 0.5) * s.width);
          const int iy = (int)std::floor((0.5 - clip[v + 1] / clip[v + 3] * 0.5) * s.height);
          clip[v] = 2.f * (ix + 0.5f) / s.width - 1.f;
          clip[v + 1] = 1.f - 2.f * (iy + 0.5f) / s.height;
          clip[v + 2] /= clip[v + 3];
          clip[v + 3] = 1.f;
        }
      }
      begin.push_back((int)tris.size() / 3);
    }
    // Exact ties: duplicate some triangles so the id rule decides.
    const int n0 = (int)tris.size() / 3;
    for (int k = 0; k < 3; ++k) tris.insert(tris.end(), tris.begin() + 3 * k, tris.begin() + 3 * k + 3);
    begin[1] += 0;  // duplicates go to the last frame's range
    begin.back() = n0 + 3;
    const int64_t P = s.pixels();
    std::vector<int> id_t(P), id_b(P);
    std::vector<float> bt(2 * P), bb(2 * P), dt(P), db(P);
    for (int tile : {8, 16, 5}) {
      Rasterizer<float> rz(kCpu, tile);
      rz.forward(s, clip.data(), (int64_t)clip.size() / 4, tris.data(), begin, id_t.data(), bt.data(), dt.data());
      rasterize_bruteforce<float>(kCpu, s, clip.data(), tris.data(), begin, id_b.data(), bb.data(), db.data());
      int64_t diff = 0, covered = 0;
      for (int64_t p = 0; p < P; ++p) {
        covered += id_b[p] >= 0;
        if (id_t[p] != id_b[p] || bt[2 * p] != bb[2 * p] || bt[2 * p + 1] != bb[2 * p + 1] || dt[p] != db[p]) ++diff;
      }
      std::printf("  %dx%dx%d tile %2d: %lld covered pixels, %lld differ\n", s.frames, s.width, s.height, tile,
                  (long long)covered, (long long)diff);
      CHECK(diff == 0, "tiled and brute-force rasterisers differ on %lld pixels", (long long)diff);
      CHECK(covered > P / 4, "soup covers too little to be a test (%lld)", (long long)covered);
    }
  }
}

void test_tie_and_nan() {
  std::printf("ties and NaN\n");
  // Two identical triangles: the smaller id wins everywhere.
  std::vector<float> clip = {-1, -1, 0, 1, 3, -1, 0, 1, -1, 3, 0, 1};
  std::vector<int> tris = {0, 1, 2, 0, 1, 2};
  const RasterSize s{1, 16, 16};
  std::vector<int> id(256);
  std::vector<float> b(512), d(256);
  Rasterizer<float> rz(kCpu);
  rz.forward(s, clip.data(), 3, tris.data(), {0, 2}, id.data(), b.data(), d.data());
  int zeros = 0;
  for (int v : id) zeros += v == 0;
  CHECK(zeros == 256, "full-screen duplicate triangles: id 0 should win all 256 pixels, won %d", zeros);
  // NaN vertices never cover a pixel and never reach the outputs.
  clip[0] = std::nanf("");
  rz.forward(s, clip.data(), 3, tris.data(), {0, 2}, id.data(), b.data(), d.data());
  int covered = 0;
  bool finite = true;
  for (int p = 0; p < 256; ++p) {
    covered += id[p] >= 0;
    finite = finite && std::isfinite(b[2 * p]) && std::isfinite(b[2 * p + 1]) && std::isfinite(d[p]);
  }
  CHECK(covered == 0, "a NaN triangle covered %d pixels", covered);
  CHECK(finite, "NaN reached the rasteriser outputs");
  // The checker itself must reject NaN gradients.
  CHECK(!grads_match("NaN analytic gradient (must fail)", {std::nan("")}, {1.0}, 1e-3, true), "grads_match accepted a NaN gradient");
  CHECK(!grads_match("NaN numeric gradient (must fail)", {1.0, 1.0}, {1.0, std::nan("")}, 1e-3, true), "grads_match accepted a NaN");
}

void test_errors() {
  std::printf("argument errors\n");
  Rasterizer<float> rz(kCpu);
  int threw = 0;
  try { rz.forward({1, 0, 10}, nullptr, 0, nullptr, {0, 0}, nullptr, nullptr, nullptr); } catch (const RasterError& e) { ++threw; std::printf("  %s\n", e.what()); }
  try { rz.forward({2, 8, 8}, nullptr, 0, nullptr, {0, 0}, nullptr, nullptr, nullptr); } catch (const RasterError& e) { ++threw; std::printf("  %s\n", e.what()); }
  try { rz.forward({1, 8, 8}, nullptr, 0, nullptr, {3, 1}, nullptr, nullptr, nullptr); } catch (const RasterError& e) { ++threw; std::printf("  %s\n", e.what()); }
  CHECK(threw == 3, "expected 3 RasterErrors, got %d", threw);
}

// Weighted sum of an array with fixed pseudo-random weights: the scalar loss of the FD checks.
double weighted(const std::vector<double>& v, const std::vector<double>& w) {
  double s = 0;
  for (size_t i = 0; i < v.size(); ++i) s += v[i] * w[i];
  return s;
}
std::vector<double> rand_vec(std::mt19937& rng, size_t n, double lo = -1, double hi = 1) {
  std::uniform_real_distribution<double> u(lo, hi);
  std::vector<double> v(n);
  for (auto& x : v) x = u(rng);
  return v;
}

// A small mesh in clip space: a fan of 4 triangles around a centre vertex, consistently wound,
// with w varying so perspective correction matters; the whole thing sits inside the image.
void fan_mesh(std::vector<double>& clip, std::vector<int>& tris) {
  const double V[5][4] = {{0.05, 0.02, 0.1, 1.3}, {-0.6, -0.55, 0.2, 1.0}, {0.7, -0.5, 0.3, 1.6}, {0.6, 0.65, 0.0, 1.2},
                          {-0.65, 0.55, 0.4, 0.9}};
  clip.clear();
  for (auto& v : V) for (int k = 0; k < 4; ++k) clip.push_back(v[k] * (k < 3 ? V[&v - V][3] : 1.0));
  tris = {0, 1, 2, 0, 2, 3, 0, 3, 4, 0, 4, 1};
}

void test_rasterize_backward() {
  std::printf("rasterise backward (barycentrics -> clip)\n");
  std::mt19937 rng(11);
  std::vector<double> clip;
  std::vector<int> tris;
  fan_mesh(clip, tris);
  const RasterSize s{1, 24, 20};
  const Raster r0 = rasterize(s, clip, tris, {0, 4});
  const auto w = rand_vec(rng, 2 * s.pixels());
  // Keep the FD away from topology changes: only pixels whose id is stable under the step count.
  const double h = 1e-6;
  std::vector<double> wmask = w;
  {
    std::vector<double> pc = clip;
    for (size_t i = 0; i < pc.size(); ++i) {
      for (double sg : {-1.0, 1.0}) {
        pc[i] = clip[i] + sg * 10 * h;
        const Raster r = rasterize(s, pc, tris, {0, 4});
        for (int64_t p = 0; p < s.pixels(); ++p)
          if (r.id[p] != r0.id[p]) wmask[2 * p] = wmask[2 * p + 1] = 0;
      }
      pc[i] = clip[i];
    }
  }
  std::vector<double> ga(clip.size(), 0.0);
  rasterize_backward<double>(kCpu, s, clip.data(), tris.data(), r0.id.data(), wmask.data(), ga.data());
  auto loss = [&]() { return weighted(rasterize(s, clip, tris, {0, 4}).bary, wmask); };
  const auto gn = numeric_grad(clip, loss, h);
  grads_match("d(bary)/d(clip)", ga, gn);
}

void test_interpolate_backward() {
  std::printf("interpolate backward\n");
  std::mt19937 rng(12);
  std::vector<double> clip;
  std::vector<int> tris;
  fan_mesh(clip, tris);
  const RasterSize s{1, 16, 16};
  const Raster r = rasterize(s, clip, tris, {0, 4});
  const int C = 3;
  auto attr = rand_vec(rng, 5 * C);
  auto bary = r.bary;
  const auto w = rand_vec(rng, s.pixels() * C);
  std::vector<double> out(s.pixels() * C);
  auto loss = [&]() {
    interpolate_forward<double>(kCpu, s.pixels(), C, attr.data(), tris.data(), r.id.data(), bary.data(), out.data());
    return weighted(out, w);
  };
  std::vector<double> g_attr(attr.size(), 0.0), g_bary(bary.size(), 0.0);
  interpolate_backward<double>(kCpu, s.pixels(), C, attr.data(), tris.data(), r.id.data(), bary.data(), w.data(), g_attr.data(),
                               g_bary.data());
  grads_match("d(out)/d(attr)", g_attr, numeric_grad(attr, loss, 1e-6));
  grads_match("d(out)/d(bary)", g_bary, numeric_grad(bary, loss, 1e-6));
}

void test_composite_backward() {
  std::printf("composite backward\n");
  std::mt19937 rng(13);
  const int64_t P = 40;
  auto rgba = rand_vec(rng, 4 * P, 0, 1), bg = rand_vec(rng, 3 * P, 0, 1);
  const auto w = rand_vec(rng, 3 * P);
  std::vector<double> out(3 * P);
  auto loss = [&]() { composite_forward<double>(kCpu, P, rgba.data(), bg.data(), out.data()); return weighted(out, w); };
  std::vector<double> g_rgba(rgba.size(), 0.0), g_bg(bg.size(), 0.0);
  composite_backward<double>(kCpu, P, rgba.data(), bg.data(), w.data(), g_rgba.data(), g_bg.data());
  grads_match("d(out)/d(rgba)", g_rgba, numeric_grad(rgba, loss, 1e-6));
  grads_match("d(out)/d(bg)", g_bg, numeric_grad(bg, loss, 1e-6));
}

void test_marching_tets_backward() {
  std::printf("marching tets backward\n");
  std::mt19937 rng(14);
  const int N = 10, n_out = 12;
  auto sdf = rand_vec(rng, N), pos = rand_vec(rng, 3 * N, -2, 2), canon = rand_vec(rng, 3 * N, -2, 2);
  // Edges between a negative and a positive vertex, so every output vertex is a real crossing.
  for (int i = 0; i < N; ++i) sdf[i] = (i % 2 ? 1 : -1) * (0.2 + std::fabs(sdf[i]));
  std::vector<int> edges;
  for (int k = 0; k < n_out; ++k) { const int a = (2 * k) % N, b = (2 * k + 3) % N; edges.push_back(a); edges.push_back(b); }
  const auto wv = rand_vec(rng, 3 * n_out), wc = rand_vec(rng, 3 * n_out);
  auto loss = [&]() {
    double l = 0;
    for (int k = 0; k < n_out; ++k) {
      const int a = edges[2 * k], b = edges[2 * k + 1];
      const double t = sdf[a] / (sdf[a] - sdf[b]);
      for (int x = 0; x < 3; ++x) {
        l += wv[3 * k + x] * (pos[3 * a + x] + t * (pos[3 * b + x] - pos[3 * a + x]));
        l += wc[3 * k + x] * (canon[3 * a + x] + t * (canon[3 * b + x] - canon[3 * a + x]));
      }
    }
    return l;
  };
  std::vector<double> g_sdf(N, 0.0), g_pos(3 * N, 0.0);
  marching_tets_backward<double>(kCpu, n_out, edges.data(), sdf.data(), pos.data(), canon.data(), wv.data(), wc.data(),
                                 g_sdf.data(), g_pos.data());
  grads_match("d(verts)/d(sdf)", g_sdf, numeric_grad(sdf, loss, 1e-6));
  grads_match("d(verts)/d(grid pos)", g_pos, numeric_grad(pos, loss, 1e-6));
}

void test_project_backward() {
  std::printf("projection backward\n");
  std::mt19937 rng(15);
  Camera cam;
  cam.width = 64; cam.height = 48;
  const std::vector<int> vb = {0, 3, 7};
  std::vector<float> poses(32);
  for (int f = 0; f < 2; ++f) {
    const auto m = rand_vec(rng, 16, -0.3, 0.3);
    for (int k = 0; k < 16; ++k) poses[16 * f + k] = (float)m[k] + ((k % 5) == 0 ? 1.f : 0.f);
    poses[16 * f + 14] = -50.f;
    poses[16 * f + 15] = 1.f;
  }
  auto pos = rand_vec(rng, 3 * 7, -5, 5);
  const auto w = rand_vec(rng, 4 * 7);
  std::vector<double> clip(4 * 7);
  auto loss = [&]() { project_forward<double>(kCpu, cam, vb, poses, pos.data(), clip.data()); return weighted(clip, w); };
  std::vector<double> g(pos.size(), 0.0);
  project_backward<double>(kCpu, cam, vb, poses, w.data(), g.data());
  grads_match("d(clip)/d(face pos)", g, numeric_grad(pos, loss, 1e-5));
  // Agreement with model.h's float projection.
  project_forward<double>(kCpu, cam, vb, poses, pos.data(), clip.data());
  double worst = 0;
  for (int v = 0; v < 7; ++v) {
    const int f = v < 3 ? 0 : 1;
    const float p[3] = {(float)pos[3 * v], (float)pos[3 * v + 1], (float)pos[3 * v + 2]};
    float c[4];
    project_to_clip(cam, poses.data() + 16 * f, p, c);
    for (int k = 0; k < 4; ++k) worst = std::fmax(worst, std::fabs(c[k] - clip[4 * v + k]) / (1 + std::fabs(c[k])));
  }
  std::printf("  projection vs model.h project_to_clip: max rel diff %.2e\n", worst);
  CHECK(worst < 1e-5, "projection differs from model.h (%.3e)", worst);
}

void test_adjacency() {
  std::printf("adjacency and silhouettes\n");
  // Octahedron, consistently wound: closed, so every edge has exactly one neighbour.
  const double V[6][3] = {{1, 0, 0}, {-1, 0, 0}, {0, 1, 0}, {0, -1, 0}, {0, 0, 1}, {0, 0, -1}};
  std::vector<int> tris = {0, 2, 4, 2, 1, 4, 1, 3, 4, 3, 0, 4, 2, 0, 5, 1, 2, 5, 3, 1, 5, 0, 3, 5};
  std::vector<int> adj(24);
  triangle_adjacency(kCpu, 8, tris.data(), adj.data());
  bool ok = true;
  for (int t = 0; t < 8; ++t)
    for (int k = 0; k < 3; ++k) {
      const int n = adj[3 * t + k];
      if (n < 0 || n == t) { ok = false; continue; }
      bool back = false;
      for (int j = 0; j < 3; ++j) back = back || adj[3 * n + j] == t;
      ok = ok && back;
    }
  CHECK(ok, "octahedron adjacency is not closed and symmetric");
  // Seen along -z from z = +3 (w = 3 - z): the 4 upper faces face the camera, the lower ones away,
  // so exactly the equator edges are silhouettes.
  std::vector<double> clip;
  for (auto& v : V) { clip.push_back(v[0]); clip.push_back(v[1]); clip.push_back(0.0); clip.push_back(3.0 - v[2]); }
  std::vector<unsigned char> sil(8);
  silhouette_edges<double>(kCpu, 8, clip.data(), tris.data(), adj.data(), 32, 32, sil.data());
  int n_sil = 0;
  for (int t = 0; t < 8; ++t) n_sil += __builtin_popcount(sil[t]);
  std::printf("  octahedron: %d silhouette half-edges (expected 8)\n", n_sil);
  CHECK(n_sil == 8, "expected 8 silhouette half-edges, got %d", n_sil);
}

// Antialiasing: forward sanity (a half-plane edge gives the exact area coverage along a row)
// and gradients to colours and to clip positions.
void test_antialias() {
  std::printf("antialias\n");
  std::mt19937 rng(16);
  std::vector<double> clip;
  std::vector<int> tris;
  fan_mesh(clip, tris);
  const RasterSize s{1, 28, 24};
  const int C = 4;
  std::vector<int> adj(12);
  triangle_adjacency(kCpu, 4, tris.data(), adj.data());
  auto colour = rand_vec(rng, s.pixels() * C, 0, 1);
  const auto w = rand_vec(rng, s.pixels() * C);
  std::vector<double> out(s.pixels() * C);
  std::vector<unsigned char> sil(4);
  auto loss = [&]() {
    const Raster r = rasterize(s, clip, tris, {0, 4});
    silhouette_edges<double>(kCpu, 4, clip.data(), tris.data(), adj.data(), s.width, s.height, sil.data());
    antialias_forward<double>(kCpu, s, C, colour.data(), clip.data(), tris.data(), sil.data(), adj.data(), r.id.data(), r.depth.data(),
                              out.data());
    return weighted(out, w);
  };
  const Raster r0 = rasterize(s, clip, tris, {0, 4});
  loss();
  // Interior edges of the fan are shared and never antialiased: count changed pixels only on
  // the outline.
  int changed = 0, interior_changed = 0;
  for (int64_t p = 0; p < s.pixels(); ++p) {
    bool diff = false;
    for (int c = 0; c < C; ++c) diff = diff || out[p * C + c] != colour[p * C + c];
    changed += diff;
    const int x = (int)(p % s.width), y = (int)(p / s.width);
    bool all_cov = r0.id[p] >= 0;
    for (int dy = -1; dy <= 1; ++dy)
      for (int dx = -1; dx <= 1; ++dx) {
        const int qx = x + dx, qy = y + dy;
        if (qx < 0 || qy < 0 || qx >= s.width || qy >= s.height) continue;
        all_cov = all_cov && r0.id[qy * s.width + qx] >= 0;
      }
    interior_changed += diff && all_cov;
  }
  std::printf("  fan: %d pixels changed by antialiasing, %d of them inside the coverage\n", changed, interior_changed);
  CHECK(changed > 10, "antialiasing changed only %d pixels", changed);
  CHECK(interior_changed == 0, "antialiasing changed %d interior pixels (shared edges)", interior_changed);

  std::vector<double> g_col(colour.size(), 0.0), g_clip(clip.size(), 0.0);
  antialias_backward<double>(kCpu, s, C, colour.data(), clip.data(), tris.data(), sil.data(), adj.data(), r0.id.data(), r0.depth.data(),
                             w.data(), g_col.data(), g_clip.data());
  grads_match("d(aa)/d(colour)", g_col, numeric_grad(colour, loss, 1e-6));
  // Position gradients: the rasterisation must not change under the step; the fan is chosen so
  // that no pixel centre lies within 1e-5 of an edge (checked here).
  const double h = 1e-7;
  bool stable = true;
  for (size_t i = 0; i < clip.size() && stable; ++i) {
    const double keep = clip[i];
    for (double sg : {-1.0, 1.0}) {
      clip[i] = keep + sg * 100 * h;
      const Raster r = rasterize(s, clip, tris, {0, 4});
      stable = stable && r.id == r0.id;
    }
    clip[i] = keep;
  }
  CHECK(stable, "the FD configuration changes topology; pick another mesh");
  grads_match("d(aa)/d(clip)", g_clip, numeric_grad(clip, loss, h), 2e-3);
}

// A mask loss through antialiasing alone moves the geometry: coverage (alpha) of a covered
// triangle over background has a nonzero gradient to the vertices, pointing outwards when the
// loss asks for more coverage.
void test_aa_mask_gradient() {
  std::printf("antialias mask gradient direction\n");
  std::vector<double> clip = {-0.5, -0.5, 0, 1, 0.55, -0.45, 0, 1, -0.45, 0.6, 0, 1};
  std::vector<int> tris = {0, 1, 2};
  const RasterSize s{1, 20, 20};
  const Raster r = rasterize(s, clip, tris, {0, 1});
  std::vector<int> adj(3);
  triangle_adjacency(kCpu, 1, tris.data(), adj.data());
  std::vector<unsigned char> sil(1);
  silhouette_edges<double>(kCpu, 1, clip.data(), tris.data(), adj.data(), 20, 20, sil.data());
  std::vector<double> alpha(s.pixels()), gout(s.pixels(), -1.0);  // loss = -sum(alpha): grow
  for (int64_t p = 0; p < s.pixels(); ++p) alpha[p] = r.id[p] >= 0 ? 1.0 : 0.0;
  std::vector<double> gcol(s.pixels(), 0.0), gclip(clip.size(), 0.0);
  antialias_backward<double>(kCpu, s, 1, alpha.data(), clip.data(), tris.data(), sil.data(), adj.data(), r.id.data(), r.depth.data(),
                             gout.data(), gcol.data(), gclip.data());
  // Descending -sum(alpha) moves vertex 0 (bottom-left in NDC) further down-left: the gradient
  // of the loss along x and y at vertex 0 must be positive (moving it +x, +y loses coverage).
  std::printf("  grad of -coverage at vertex 0: (%.4f, %.4f)\n", gclip[0], gclip[1]);
  CHECK(gclip[0] > 0 && gclip[1] > 0, "coverage gradient has the wrong direction");
}


// Antialiasing gradients where the triangles are smaller than a pixel, so the silhouette is
// reached by walking across the mesh: a projected sphere at low resolution. Checks a sample of
// the clip coordinates (those with a gradient, plus some without) against central differences.
void test_antialias_walk() {
  std::printf("antialias through the mesh walk (sub-pixel triangles)\n");
  std::vector<float> mp;
  std::vector<int> tris;
  bench::uv_sphere(24, 48, 12.f, mp, tris);
  const int S = 40;
  Camera cam;
  cam.width = cam.height = S;
  float pose[16];
  bench::pose_matrix(0.2f, 0.3f, -0.2f, -40.f, pose);
  std::vector<double> pos(mp.begin(), mp.end()), clip(4 * (mp.size() / 3));
  const std::vector<int> vb = {0, (int)(mp.size() / 3)}, tb = {0, (int)(tris.size() / 3)};
  project_forward<double>(kCpu, cam, vb, std::vector<float>(pose, pose + 16), pos.data(), clip.data());
  const int64_t nt = (int64_t)tris.size() / 3;
  std::vector<int> adj(3 * nt);
  triangle_adjacency(kCpu, nt, tris.data(), adj.data());
  const RasterSize s{1, S, S};
  std::mt19937 rng(21);
  auto colour = rand_vec(rng, s.pixels() * 4, 0, 1);
  const auto w = rand_vec(rng, s.pixels() * 4);
  std::vector<unsigned char> sil(nt);
  std::vector<double> out(s.pixels() * 4);
  auto loss = [&]() {
    const Raster r = rasterize(s, clip, tris, tb);
    silhouette_edges<double>(kCpu, nt, clip.data(), tris.data(), adj.data(), S, S, sil.data());
    antialias_forward<double>(kCpu, s, 4, colour.data(), clip.data(), tris.data(), sil.data(), adj.data(), r.id.data(), r.depth.data(),
                              out.data());
    return weighted(out, w);
  };
  loss();
  const Raster r0 = rasterize(s, clip, tris, tb);
  int changed = 0;
  for (int64_t p = 0; p < s.pixels(); ++p) changed += out[4 * p + 3] != colour[4 * p + 3];
  std::vector<double> gc(colour.size(), 0.0), gclip(clip.size(), 0.0);
  antialias_backward<double>(kCpu, s, 4, colour.data(), clip.data(), tris.data(), sil.data(), adj.data(), r0.id.data(), r0.depth.data(),
                             w.data(), gc.data(), gclip.data());
  std::vector<size_t> idx;
  for (size_t i = 0; i < clip.size(); ++i)
    if (gclip[i] != 0.0 || rng() % 50 == 0) idx.push_back(i);
  std::printf("  %lld triangles, %d pixels antialiased, %zu clip coordinates checked\n", (long long)nt, changed, idx.size());
  CHECK(changed > 20, "too few antialiased pixels (%d) for a test", changed);
  const double h = 1e-7;
  std::vector<double> ana, num;
  int unstable = 0;
  for (size_t i : idx) {
    const double keep = clip[i];
    clip[i] = keep + h;
    const Raster rp = rasterize(s, clip, tris, tb);
    const double lp = loss();
    clip[i] = keep - h;
    const Raster rm = rasterize(s, clip, tris, tb);
    const double lm = loss();
    clip[i] = keep;
    if (rp.id != r0.id || rm.id != r0.id) { ++unstable; continue; }
    ana.push_back(gclip[i]);
    num.push_back((lp - lm) / (2 * h));
  }
  std::printf("  %d coordinates skipped (their step changes the rasterisation)\n", unstable);
  CHECK(unstable * 10 < (int)idx.size(), "too many unstable coordinates (%d)", unstable);
  grads_match("d(aa)/d(clip), walk", ana, num, 2e-3);
}

}  // namespace

// The pixel-space antialiasing edge math (aa_exit_px, aa_crossing_backward_px; the Trainer calls
// them on its pixel-space corners): the clip-space functions are them after clip_to_px, bit for
// bit, and the crossing gradient matches central differences of the exit parameter.
void test_aa_pixel_space() {
  std::printf("antialias edge math in pixel space\n");
  std::mt19937 rng(21);
  std::uniform_real_distribution<double> u(-0.8, 0.8), uw(0.6, 2.0);
  const int W = 37, H = 29;
  int checked = 0, same = 0;
  std::vector<double> ana, num;
  for (int trial = 0; trial < 200; ++trial) {
    // A triangle in clip space and a pixel pair with the first pixel inside it.
    float clip[3][4];
    for (auto& v : clip) {
      const double w = uw(rng);
      v[0] = (float)(u(rng) * w); v[1] = (float)(u(rng) * w); v[2] = 0.f; v[3] = (float)w;
    }
    const float* verts[3] = {clip[0], clip[1], clip[2]};
    float sx[3], sy[3];
    for (int i = 0; i < 3; ++i) clip_to_px(verts[i], W, H, sx[i], sy[i]);
    // F: a random point inside the triangle (the covered pixel's centre in the Trainer's use).
    const double b0 = 0.05 + 0.9 * std::uniform_real_distribution<double>(0, 1)(rng);
    const double b1 = (1 - b0) * std::uniform_real_distribution<double>(0.05, 0.95)(rng);
    const float fx = (float)(b0 * sx[0] + b1 * sx[1] + (1 - b0 - b1) * sx[2]);
    const float fy = (float)(b0 * sy[0] + b1 * sy[1] + (1 - b0 - b1) * sy[2]);
    const int axis = (int)(rng() % 2);
    const float sg = rng() % 2 ? 1.f : -1.f;
    const float ox = axis == 0 ? fx + sg : fx, oy = axis == 1 ? fy + sg : fy;
    int e1, e2;
    const float t1 = aa_exit(verts, W, H, fx, fy, ox, oy, e1);
    const float t2 = aa_exit_px(sx, sy, fx, fy, ox, oy, e2);
    ++checked;
    same += e1 == e2 && std::memcmp(&t1, &t2, 4) == 0;
    if (e2 < 0 || !(t2 > 0.05f && t2 < 0.95f)) continue;
    // Gradient of t w.r.t. the edge's corners in double, against central differences.
    double dx[3], dy[3];
    for (int i = 0; i < 3; ++i) { dx[i] = sx[i]; dy[i] = sy[i]; }
    const int i = (e2 + 1) % 3, j = (e2 + 2) % 3;
    double ga[2], gb[2];
    aa_crossing_backward_px<double>(dx[i], dy[i], dx[j], dy[j], fx, fy, ox, oy, 1.0, ga, gb);
    const double g4[4] = {ga[0], ga[1], gb[0], gb[1]};
    double* coord[4] = {&dx[i], &dy[i], &dx[j], &dy[j]};
    for (int k = 0; k < 4; ++k) {
      const double keep = *coord[k], h = 1e-6;
      int ep, em;
      *coord[k] = keep + h;
      const double tp = aa_exit_px<double>(dx, dy, fx, fy, ox, oy, ep);
      *coord[k] = keep - h;
      const double tm = aa_exit_px<double>(dx, dy, fx, fy, ox, oy, em);
      *coord[k] = keep;
      if (ep != e2 || em != e2) continue;  // the step changed the exit edge (a kink)
      ana.push_back(g4[k]);
      num.push_back((tp - tm) / (2 * h));
    }
  }
  std::printf("  %d of %d exits identical through clip and pixel space\n", same, checked);
  CHECK(same == checked, "aa_exit and aa_exit_px differ");
  CHECK(ana.size() > 100, "too few crossings checked (%zu)", ana.size());
  grads_match("d(t)/d(edge corners, px)", ana, num);
  // Degenerate: an edge lying on the line through both pixel centres (ef = eo = 0), and one whose
  // edge function differs by 1e-25 px^2 across the pair, where (ef - eo)^2 underflows in float.
  {
    float ga[2] = {7, 7}, gb[2] = {7, 7};
    aa_crossing_backward_px<float>(1.5f, 2.5f, 9.5f, 2.5f, 4.5f, 2.5f, 5.5f, 2.5f, 1.f, ga, gb);
    CHECK(ga[0] == 0 && ga[1] == 0 && gb[0] == 0 && gb[1] == 0, "collinear edge: gradients %g %g %g %g, not zero", ga[0], ga[1], gb[0], gb[1]);
    // Near the origin so that float keeps the tilt: ef = -3e-25, eo = -4e-25, (ef - eo)^2 = 1e-50.
    aa_crossing_backward_px<float>(0.f, 0.f, 8.f, 1e-25f, 3.f, 0.f, 4.f, 0.f, 1.f, ga, gb);
    CHECK(std::isfinite(ga[0]) && std::isfinite(ga[1]) && std::isfinite(gb[0]) && std::isfinite(gb[1]),
          "near-collinear edge: gradients %g %g %g %g not finite", ga[0], ga[1], gb[0], gb[1]);
  }
}

int main() {
  test_tiled_vs_bruteforce();
  test_tie_and_nan();
  test_errors();
  test_rasterize_backward();
  test_interpolate_backward();
  test_composite_backward();
  test_marching_tets_backward();
  test_project_backward();
  test_adjacency();
  test_antialias();
  test_aa_mask_gradient();
  test_antialias_walk();
  test_aa_pixel_space();
  if (g_failures) {
    std::printf("%d check(s) failed\n", g_failures);
    return 1;
  }
  std::printf("all raster op tests passed\n");
  return 0;
}
