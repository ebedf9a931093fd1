// CUDA vs CPU check of the rendering ops: the render chain of bench/raster_scene.h on both
// backends; prints tables and exits non-zero on a mismatch.
//   raster_cuda_check [--res N] [--frames N] [--cpu-only]
//
// What is compared, and why the tolerances are what they are:
//
// Build. The comparison is meant to be compiled with -fmad=false (bench/run_raster_gpu.sh builds
// it so; the benchmark has its own, default-flag build). The CPU reference is compiled without
// FMA contraction, so with -fmad=false the GPU evaluates every per-element expression with the
// same IEEE float operations (nvcc's default -prec-div/-prec-sqrt keep division correctly
// rounded). The only per-element differences left come from the device's tanf (projection, a
// few ulp). Built with contraction, the same check is a diagnostic only: a*b+c rounded once
// moves pixel centres within rounding of an edge to the other triangle and changes the last bits
// of every term below.
//
// Forward (each backend runs the whole chain on its own values): per element, relative error
// against max(|cpu|, |gpu|, 1e-3 * tensor max) at most 1e-5, which is ~100x the tanf ulps after
// the chain's conditioning; pixels whose triangle id differs (a centre within rounding of an edge)
// are counted, allowed up to 1e-4 of the pixels, and excluded with their 4 neighbours.
//
// Backward, op by op: every backward op runs on both backends from the same inputs (the CPU's
// forward values and the CPU's upstream gradient), so each table row measures that op alone.
//  - Outputs written once per element (composite, interpolate's d/dbary, projection): relative
//    error at most 1e-5, as in the forward (same operations; expected equal).
//  - Outputs accumulated with float atomics (antialias d/dcolour and d/dclip, interpolate
//    d/dattr, rasterise d/dclip): the order of the additions differs on the GPU, and the result
//    may cancel to far below its terms, so no relative tolerance is meaningful. Instead the
//    check recomputes, on the host, every float term the op adds to each element i (the same
//    shared raster.h functions on the same inputs, so the terms are bit-identical to both
//    backends' terms in a -fmad=false build), sums them in double (ref_i), and counts them (n_i)
//    with their absolute sum A_i. Any order of float additions of those terms satisfies
//        |x_i - ref_i| <= gamma(n_i - 1) A_i + n_i 2^-53 A_i + 2 n_i 2^-126,
//    gamma(k) = k u / (1 - k u), u = 2^-24 (recursive summation bound, plus the double
//    reference's own rounding, plus global-memory float atomics flushing denormals to zero).
//    Both backends must meet it; the CPU meeting it checks the host's term bookkeeping.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "../../../bench/raster_scene.h"

using namespace dyntet;

namespace {
int g_fail = 0;

template <class T>
std::vector<T> host(const Buffer<T>& b) {
  std::vector<T> v(b.size());
  b.download(v.data(), v.size());
  return v;
}

template <class T>
void put(Buffer<T>& b, const std::vector<T>& v) {
  b.upload(v.data(), v.size());
}

void sync(Backend b) {
#if defined(__CUDACC__)
  if (b == Backend::CUDA) cuda_check(cudaDeviceSynchronize(), "sync");
#else
  (void)b;
#endif
}

// Relative difference per element against the tensor's scale; skip (per element) may exclude.
void compare(const char* name, const std::vector<float>& cpu, const std::vector<float>& gpu, double tol,
             const std::vector<char>* skip = nullptr) {
  double scale = 0;
  for (float v : cpu) scale = std::fmax(scale, std::fabs(v));
  double worst = 0;
  size_t bad = 0, n = 0;
  for (size_t i = 0; i < cpu.size(); ++i) {
    if (skip && (*skip)[i]) continue;
    ++n;
    const double d = std::fabs((double)cpu[i] - gpu[i]);
    const double rel = d / std::fmax(std::fmax(std::fabs(cpu[i]), std::fabs(gpu[i])), 1e-3 * scale + 1e-30);
    if (!(rel <= tol)) ++bad;
    if (!(rel <= worst)) worst = rel;
  }
  const bool ok = bad == 0 && cpu.size() == gpu.size();
  std::printf("| %-26s | %9zu | %10.3e | rel %10.3e | rel %8.0e | %s |\n", name, n, scale, worst, tol, ok ? "ok" : "MISMATCH");
  if (!ok) ++g_fail;
}

// Terms an op accumulates into each element of one output: their double sum, absolute sum and
// count.
struct Terms {
  std::vector<double> ref, abs;
  std::vector<int> n;
  explicit Terms(size_t size) : ref(size, 0.0), abs(size, 0.0), n(size, 0) {}
  void add(size_t i, float t) {
    ref[i] += (double)t;
    abs[i] += std::fabs((double)t);
    ++n[i];
  }
};

double sum_bound(int n, double a) {
  const double u = std::ldexp(1.0, -24);
  const double k = n > 1 ? n - 1 : 0;
  return (k * u / (1.0 - k * u) + n * std::ldexp(1.0, -53)) * a + 2.0 * n * std::ldexp(1.0, -126);
}

// One backend's accumulated output against the term bound.
void compare_accumulated(const char* name, const char* backend, const Terms& t, const std::vector<float>& x) {
  double worst = 0, scale = 0, worst_rel = 0;
  int max_n = 0;
  size_t bad = 0;
  for (size_t i = 0; i < t.ref.size(); ++i) scale = std::fmax(scale, std::fabs(t.ref[i]));
  for (size_t i = 0; i < t.ref.size() && i < x.size(); ++i) {
    const double err = std::fabs((double)x[i] - t.ref[i]);
    const double bound = sum_bound(t.n[i], t.abs[i]);
    const double r = bound > 0 ? err / bound : (err == 0 ? 0.0 : 1e300);
    if (!(r <= 1.0)) ++bad;
    if (!(r <= worst)) worst = r;
    worst_rel = std::fmax(worst_rel, err / std::fmax(std::fabs(t.ref[i]), 1e-3 * scale + 1e-30));
    max_n = t.n[i] > max_n ? t.n[i] : max_n;
  }
  const bool ok = bad == 0 && x.size() == t.ref.size();
  std::printf("| %-26s | %-4s | %9zu | %6d | %10.3e | %10.3e | %s |\n", name, backend, t.ref.size(), max_n, worst, worst_rel,
              ok ? "ok" : "MISMATCH");
  if (!ok) ++g_fail;
}

// The CPU chain's values every isolated backward op starts from.
struct State {
  std::vector<float> clip, bary, depth, attr, rgba, aa, g_aa, g_rgba, g_interp, g_bary, g_clip;
  std::vector<int> tris, id, adj;
  std::vector<unsigned char> sil;
};

// One backend's outputs of the isolated backward ops.
struct Outputs {
  std::vector<float> g_aa, g_rgba, g_clip_aa, g_attr, g_bary, g_clip_raster, g_pos;
};

// Runs each backward op of the chain on p's backend from the CPU's inputs s.
Outputs isolated_backward(bench::Pipeline& p, const State& s) {
  const RasterSize& z = p.size;
  const int64_t np = z.pixels();
  put(p.clip, s.clip); put(p.bary, s.bary); put(p.depth, s.depth); put(p.rgba, s.rgba); put(p.aa, s.aa);
  put(p.id, s.id); put(p.sil, s.sil); put(p.adj, s.adj);
  Outputs o;
  p.g_aa.zero();
  composite_backward<float>(p.b, np, p.aa.data(), p.bg.data(), p.g_out.data(), p.g_aa.data(), nullptr);
  sync(p.b);
  o.g_aa = host(p.g_aa);
  put(p.g_aa, s.g_aa);
  p.g_rgba.zero(); p.g_clip.zero();
  antialias_backward<float>(p.b, z, 4, p.rgba.data(), p.clip.data(), p.tris.data(), p.sil.data(), p.adj.data(), p.id.data(),
                            p.depth.data(), p.g_aa.data(), p.g_rgba.data(), p.g_clip.data());
  sync(p.b);
  o.g_rgba = host(p.g_rgba);
  o.g_clip_aa = host(p.g_clip);
  put(p.g_interp, s.g_interp);
  p.g_attr.zero(); p.g_bary.zero();
  interpolate_backward<float>(p.b, np, 3, p.attr.data(), p.tris.data(), p.id.data(), p.bary.data(), p.g_interp.data(),
                              p.g_attr.data(), p.g_bary.data());
  sync(p.b);
  o.g_attr = host(p.g_attr);
  o.g_bary = host(p.g_bary);
  put(p.g_bary, s.g_bary);
  p.g_clip.zero();
  rasterize_backward<float>(p.b, z, p.clip.data(), p.tris.data(), p.id.data(), p.g_bary.data(), p.g_clip.data());
  sync(p.b);
  o.g_clip_raster = host(p.g_clip);
  put(p.g_clip, s.g_clip);
  p.g_pos.zero();
  project_backward<float>(p.b, p.cam, p.vert_begin, p.poses, p.g_clip.data(), p.g_pos.data());
  sync(p.b);
  o.g_pos = host(p.g_pos);
  return o;
}

// The float terms of antialias_backward (raster_ops.cpp), element by element, same order.
void antialias_terms(const RasterSize& z, const State& s, Terms& g_colour, Terms& g_clip) {
  const int W = z.width, H = z.height, C = 4;
  const float* colour = s.rgba.data();
  const float* clip = s.clip.data();
  const int* tris = s.tris.data();
  for (int64_t p = 0; p < z.pixels(); ++p) {
    const int64_t base = (p / ((int64_t)W * H)) * W * H;
    const int64_t r = p - base;
    const int y = (int)(r / W), x = (int)(r - (int64_t)y * W);
    const float* g = s.g_aa.data() + p * C;
    for (int c = 0; c < C; ++c) g_colour.add(p * C + c, g[c]);
    const int dx[4] = {-1, 1, 0, 0}, dy[4] = {0, 0, -1, 1};
    for (int n = 0; n < 4; ++n) {
      const int qx = x + dx[n], qy = y + dy[n];
      if (qx < 0 || qx >= W || qy < 0 || qy >= H) continue;
      const int64_t q = base + (int64_t)qy * W + qx;
      const bool first = n == 1 || n == 3;
      const AaPair<float> a =
          first ? aa_pair(s.id.data(), s.depth.data(), tris, clip, s.sil.data(), s.adj.data(), W, H, p, q, x, y, qx, qy)
                : aa_pair(s.id.data(), s.depth.data(), tris, clip, s.sil.data(), s.adj.data(), W, H, q, p, qx, qy, x, y);
      if (a.side != (first ? 1 : 2)) continue;
      float gw = 0.f;
      for (int c = 0; c < C; ++c) {
        gw += g[c] * (colour[q * C + c] - colour[p * C + c]);
        g_colour.add(p * C + c, -a.w * g[c]);
        g_colour.add(q * C + c, a.w * g[c]);
      }
      if (gw == 0.f) continue;
      const float gt = a.t > 0.5f ? gw : -gw;
      const bool f_is_p = first ? a.front == 0 : a.front == 1;
      const float fx = (float)(f_is_p ? x : qx) + 0.5f, fy = (float)(f_is_p ? y : qy) + 0.5f;
      const float ox = (float)(f_is_p ? qx : x) + 0.5f, oy = (float)(f_is_p ? qy : y) + 0.5f;
      const int* tv = tris + 3 * (int64_t)a.tri;
      const float* verts[3] = {clip + 4 * (int64_t)tv[0], clip + 4 * (int64_t)tv[1], clip + 4 * (int64_t)tv[2]};
      float gi[4], gj[4];
      aa_crossing_backward(verts, W, H, fx, fy, ox, oy, a.edge, gt, gi, gj);
      const int vi = tv[(a.edge + 1) % 3], vj = tv[(a.edge + 2) % 3];
      for (int k = 0; k < 4; ++k) {
        if (gi[k] != 0.f) g_clip.add(4 * (int64_t)vi + k, gi[k]);
        if (gj[k] != 0.f) g_clip.add(4 * (int64_t)vj + k, gj[k]);
      }
    }
  }
}

// The float terms of interpolate_backward's d/dattr (3 channels).
void interpolate_terms(const RasterSize& z, const State& s, Terms& g_attr) {
  const int C = 3;
  for (int64_t p = 0; p < z.pixels(); ++p) {
    const int t = s.id[p];
    if (t < 0) continue;
    const int64_t v[3] = {s.tris[3 * (int64_t)t], s.tris[3 * (int64_t)t + 1], s.tris[3 * (int64_t)t + 2]};
    const float l1 = s.bary[2 * p], l2 = s.bary[2 * p + 1], l0 = 1.f - l1 - l2;
    const float* g = s.g_interp.data() + p * C;
    for (int c = 0; c < C; ++c) {
      if (g[c] == 0.f) continue;
      g_attr.add(v[0] * C + c, l0 * g[c]);
      g_attr.add(v[1] * C + c, l1 * g[c]);
      g_attr.add(v[2] * C + c, l2 * g[c]);
    }
  }
}

// The float terms of rasterize_backward (raster.h's bary_backward per covered pixel).
void rasterize_terms(const RasterSize& z, const State& s, Terms& g_clip) {
  const int W = z.width, H = z.height;
  for (int64_t p = 0; p < z.pixels(); ++p) {
    const int t = s.id[p];
    if (t < 0) continue;
    const float g1 = s.g_bary[2 * p], g2 = s.g_bary[2 * p + 1];
    if (g1 == 0.f && g2 == 0.f) continue;
    const int64_t r = p % ((int64_t)W * H);
    const int y = (int)(r / W), x = (int)(r - (int64_t)y * W);
    float px, py;
    pixel_ndc(x, y, W, H, px, py);
    const int vi[3] = {s.tris[3 * (int64_t)t], s.tris[3 * (int64_t)t + 1], s.tris[3 * (int64_t)t + 2]};
    float gv[3][4];
    bary_backward(s.clip.data() + 4 * (int64_t)vi[0], s.clip.data() + 4 * (int64_t)vi[1], s.clip.data() + 4 * (int64_t)vi[2],
                  px, py, g1, g2, gv[0], gv[1], gv[2]);
    for (int i = 0; i < 3; ++i)
      for (int k = 0; k < 4; ++k)
        if (gv[i][k] != 0.f) g_clip.add(4 * (int64_t)vi[i] + k, gv[i][k]);
  }
}
}  // namespace

int main(int argc, char** argv) {
  int res = 256, frames = 2;
  bool cpu_only = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--cpu-only") cpu_only = true;
    else if (a == "--res" && i + 1 < argc) res = std::atoi(argv[++i]);
    else if (a == "--frames" && i + 1 < argc) frames = std::atoi(argv[++i]);
    else {
      std::fprintf(stderr, "usage: raster_cuda_check [--res N] [--frames N] [--cpu-only]\n");
      return 2;
    }
  }
#if !defined(__CUDACC__)
  cpu_only = true;  // a CPU build checks the term bookkeeping against the CPU backend only
#endif
  try {
    std::vector<float> mp;
    std::vector<int> mt;
    bench::uv_sphere(80, 160, 12.f, mp, mt);
    bench::Pipeline cpu(Backend::CPU, frames, res, res, mp, mt);
    cpu.adjacency(); cpu.forward(); cpu.backward();
    std::printf("%s: %d frames x %dx%d, %zu triangles per frame\n", cpu_only ? "CPU term-bound self-check" : "CUDA vs CPU", frames,
                res, res, mt.size() / 3);
#if defined(__FMA__) || defined(__FP_FAST_FMAF)
    std::printf("note: the host compiler may contract a*b+c here; the CPU reference expects -ffp-contract=off\n");
#endif
    State s;
    s.clip = host(cpu.clip); s.bary = host(cpu.bary); s.depth = host(cpu.depth); s.attr = host(cpu.attr);
    s.rgba = host(cpu.rgba); s.aa = host(cpu.aa); s.g_aa = host(cpu.g_aa); s.g_rgba = host(cpu.g_rgba);
    s.g_interp = host(cpu.g_interp); s.g_bary = host(cpu.g_bary); s.g_clip = host(cpu.g_clip);
    s.tris = host(cpu.tris); s.id = host(cpu.id); s.adj = host(cpu.adj); s.sil = host(cpu.sil);
    const int64_t np = cpu.size.pixels();

    if (!cpu_only) {
#if defined(__CUDACC__)
      bench::Pipeline gpu(Backend::CUDA, frames, res, res, mp, mt);
      gpu.adjacency(); gpu.forward();
      sync(Backend::CUDA);
      std::printf("\n## Forward (each backend its own chain)\n\n");
      std::printf("| tensor | compared | max abs | worst | tol | result |\n|---|---:|---:|---:|---:|---|\n");
      const auto ac = s.adj, ag = host(gpu.adj);
      size_t adj_diff = 0;
      for (size_t i = 0; i < ac.size(); ++i) adj_diff += ac[i] != ag[i];
      std::printf("| %-26s | %9zu | | %10zu diff | 0 | %s |\n", "adjacency", ac.size(), adj_diff, adj_diff ? "MISMATCH" : "ok");
      if (adj_diff) ++g_fail;
      compare("clip", s.clip, host(gpu.clip), 1e-5);
      const auto ig = host(gpu.id);
      size_t id_diff = 0;
      std::vector<char> skip1(np, 0), skip2(2 * np, 0), skip3(3 * np, 0), skip4(4 * np, 0);
      for (int64_t p = 0; p < np; ++p)
        if (s.id[p] != ig[p]) {
          ++id_diff;
          // An id flip changes this pixel and, through antialiasing, its 4 neighbours.
          const int x = (int)(p % res), y = (int)((p / res) % res);
          const int64_t base = p - (int64_t)y * res - x;
          const int nb[5][2] = {{0, 0}, {-1, 0}, {1, 0}, {0, -1}, {0, 1}};
          for (auto& d : nb) {
            const int qx = x + d[0], qy = y + d[1];
            if (qx < 0 || qy < 0 || qx >= res || qy >= res) continue;
            const int64_t q = base + (int64_t)qy * res + qx;
            skip1[q] = 1;
            for (int c = 0; c < 2; ++c) skip2[2 * q + c] = 1;
            for (int c = 0; c < 3; ++c) skip3[3 * q + c] = 1;
            for (int c = 0; c < 4; ++c) skip4[4 * q + c] = 1;
          }
        }
      const bool id_ok = id_diff <= (size_t)(1e-4 * np);
      std::printf("| %-26s | %9lld | | %10zu diff | %8lld | %s |\n", "triangle id", (long long)np, id_diff, (long long)(1e-4 * np),
                  id_ok ? "ok" : "MISMATCH");
      if (!id_ok) ++g_fail;
      compare("barycentrics", s.bary, host(gpu.bary), 1e-5, &skip2);
      compare("depth", s.depth, host(gpu.depth), 1e-5, &skip1);
      compare("interpolated", host(cpu.interp), host(gpu.interp), 1e-5, &skip3);
      compare("antialiased", s.aa, host(gpu.aa), 1e-5, &skip4);
      compare("composited", host(cpu.out), host(gpu.out), 1e-5, &skip3);

      const Outputs oc = isolated_backward(cpu, s), og = isolated_backward(gpu, s);
      std::printf("\n## Backward, op by op from the CPU's inputs: outputs written once per element\n\n");
      std::printf("| tensor | compared | max abs | worst | tol | result |\n|---|---:|---:|---:|---:|---|\n");
      compare("composite d/drgba", oc.g_aa, og.g_aa, 1e-5);
      compare("interpolate d/dbary", oc.g_bary, og.g_bary, 1e-5);
      compare("project d/dpos", oc.g_pos, og.g_pos, 1e-5);
      std::printf("\n## Backward, atomics-accumulated outputs against the double reference of their terms\n\n");
      std::printf("| tensor | backend | elements | max terms | worst err / bound | worst rel err | result |\n"
                  "|---|---|---:|---:|---:|---:|---|\n");
      Terms t_col(4 * np), t_clip_aa(s.clip.size()), t_attr(s.attr.size()), t_clip_rb(s.clip.size());
      antialias_terms(cpu.size, s, t_col, t_clip_aa);
      interpolate_terms(cpu.size, s, t_attr);
      rasterize_terms(cpu.size, s, t_clip_rb);
      const std::pair<const Outputs*, const char*> runs[2] = {{&oc, "cpu"}, {&og, "cuda"}};
      for (const auto& [o, name] : runs) {
        compare_accumulated("antialias d/dcolour", name, t_col, o->g_rgba);
        compare_accumulated("antialias d/dclip", name, t_clip_aa, o->g_clip_aa);
        compare_accumulated("interpolate d/dattr", name, t_attr, o->g_attr);
        compare_accumulated("rasterise d/dclip", name, t_clip_rb, o->g_clip_raster);
      }
      std::printf("(worst rel err: |x - ref| / max(|ref|, 1e-3 max|ref|), for information; the bound is the criterion)\n");
#endif
    } else {
      // The CPU backend against the term bound: checks that the host's replication of every op's
      // terms is exact (a mismatch here is a bug in this file or a changed op, not rounding).
      const Outputs oc = isolated_backward(cpu, s);
      std::printf("\n| tensor | backend | elements | max terms | worst err / bound | worst rel err | result |\n"
                  "|---|---|---:|---:|---:|---:|---|\n");
      Terms t_col(4 * np), t_clip_aa(s.clip.size()), t_attr(s.attr.size()), t_clip_rb(s.clip.size());
      antialias_terms(cpu.size, s, t_col, t_clip_aa);
      interpolate_terms(cpu.size, s, t_attr);
      rasterize_terms(cpu.size, s, t_clip_rb);
      compare_accumulated("antialias d/dcolour", "cpu", t_col, oc.g_rgba);
      compare_accumulated("antialias d/dclip", "cpu", t_clip_aa, oc.g_clip_aa);
      compare_accumulated("interpolate d/dattr", "cpu", t_attr, oc.g_attr);
      compare_accumulated("rasterise d/dclip", "cpu", t_clip_rb, oc.g_clip_raster);
      // The isolated ops on the CPU reproduce the chained CPU backward exactly.
      std::printf("\n| tensor | compared | max abs | worst | tol | result |\n|---|---:|---:|---:|---:|---|\n");
      compare("chain vs isolated d/dattr", host(cpu.g_attr), oc.g_attr, 0.0);
      compare("chain vs isolated d/dpos", host(cpu.g_pos), oc.g_pos, 0.0);
    }
  } catch (const std::exception& e) {
    std::printf("raster_cuda_check: %s\n", e.what());
    return 2;
  }
  std::printf(g_fail ? "\n%d mismatch(es)\n" : "\nall checks passed\n", g_fail);
  return g_fail ? 1 : 0;
}
