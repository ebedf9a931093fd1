// Speed of the training ops on CUDA (forward + backward), medians over repeated runs, for each MLP
// path: tiled fp32 (the default; plain keys), tiled TF32 tensor cores (keys ending "@tf32", opt-in,
// lower precision), the earlier fused kernels (keys ending "@fused"; skipped where they fall to
// the per-point path) and the fp16 tensor-core kernels (keys ending "@half", opt-in, lower
// precision: fused up to 128 wide, layered above; skipped for nets they do not take), and the
// layered form where @half runs the fused kernels ("@half-layered").
// --only KEY[,KEY...]: run only the shapes whose key starts with one of these (e.g. geom,tex_2x64).
// --paths NAME[,NAME...]: only these MLP paths (tiled, tf32, fused, half, half-layered), e.g. for a profiler.
// Prints a table and, with --json FILE, writes the medians for bench/torch_reference.py, which
// times the same shapes in PyTorch and prints the ratios.
// Build: cmake -S native/train -B build -DDYNTET_CUDA=ON && ninja -C build dyntet_train_bench
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "deform.h"
#include "encoding.h"
#include "mlp.h"

using namespace dyntet;
using namespace dyntet::train;

namespace {
constexpr Backend GPU = Backend::CUDA;

Buffer<float> random_buffer(size_t n, float lo, float hi, uint64_t seed) {
  std::mt19937_64 g(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> h(n);
  for (auto& x : h) x = d(g);
  Buffer<float> b(GPU, n);
  b.upload(h.data(), n);
  return b;
}

// Median over 21 runs after 3 warm-up runs; 5 runs after 1 when one run takes over 50 ms.
double median_ms(const std::function<void()>& f) {
  cudaEvent_t a, b;
  cudaEventCreate(&a);
  cudaEventCreate(&b);
  auto timed = [&] {
    cudaEventRecord(a);
    f();
    cudaEventRecord(b);
    cudaEventSynchronize(b);
    float ms = 0;
    cudaEventElapsedTime(&ms, a, b);
    return (double)ms;
  };
  const bool slow = timed() > 50.0;
  for (int i = 0; i < (slow ? 0 : 2); ++i) timed();
  std::vector<double> t;
  for (int i = 0; i < (slow ? 5 : 21); ++i) t.push_back(timed());
  cuda_check(cudaGetLastError(), "benchmark");
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

struct Row {
  std::string key, what;
  long long n;
  double ms;
};
std::vector<Row> rows;

void add(const std::string& key, const std::string& what, long long n, double ms) {
  rows.push_back({key, what, n, ms});
  std::printf("| %-34s | %-52s | %9lld | %9.3f |\n", key.c_str(), what.c_str(), n, ms);
  std::fflush(stdout);
}

const char* path_suffix(MlpCudaPath path) {
  return path == MlpCudaPath::TiledTF32 ? "@tf32" : path == MlpCudaPath::Fused ? "@fused" : path == MlpCudaPath::Half ? "@half" : path == MlpCudaPath::HalfLayered ? "@half-layered" : "";
}

std::vector<std::string> only;
std::vector<MlpCudaPath> only_paths;

std::vector<std::string> split_commas(const std::string& list) {
  std::vector<std::string> items;
  for (size_t a = 0, b; a <= list.size(); a = b + 1) {
    b = list.find(',', a);
    if (b == std::string::npos) b = list.size();
    if (b > a) items.push_back(list.substr(a, b - a));
  }
  return items;
}
bool wanted(const std::string& key) {
  if (only.empty()) return true;
  for (const std::string& o : only)
    if (key.compare(0, o.size(), o) == 0) return true;
  return false;
}

// Texture path: hash grid (16 x 2, 2^19, 16..4096) + MLP; forward and backward to the table,
// the MLP weights and the positions.
void bench_texture(int64_t n, int width, int hidden, const std::string& key0, MlpCudaPath path) {
  const std::string key = key0 + path_suffix(path);
  if (!wanted(key0)) return;
  HashGridConfig hc;
  hc.levels = 16; hc.features = 2; hc.log2_table = 19; hc.base_res = 16; hc.finest_res = 4096;
  const HashGrid g = make_hashgrid(hc);
  MlpConfig mc{g.out_dim(), width, hidden, 3, kActReLU, kActSigmoid};
  Buffer<float> u = random_buffer(n * 3, 0.f, 1.f, 1), table = random_buffer(g.param_count(), -1e-4f, 1e-4f, 2);
  Buffer<float> w = random_buffer(mlp_param_count(mc), -0.1f, 0.1f, 3), gy = random_buffer(n * 3, -1.f, 1.f, 4);
  Buffer<float> enc(GPU, n * g.out_dim()), y(GPU, n * 3), genc(GPU, n * g.out_dim()), gu(GPU, n * 3);
  Buffer<float> gt(GPU, g.param_count()), gw(GPU, mlp_param_count(mc));
  HashGridParams hp; hp.grid = g; hp.n = n; hp.u = u.data(); hp.table = table.data(); hp.out = enc.data();
  hp.g_out = genc.data(); hp.g_table = gt.data(); hp.g_u = gu.data();
  MlpParams mp; mp.cfg = mc; mp.n = n; mp.params = w.data(); mp.x = enc.data(); mp.y = y.data(); mp.g_y = gy.data();
  mp.g_params = gw.data(); mp.g_x = genc.data(); mp.path = path;
  const std::string net = std::to_string(hidden) + "x" + std::to_string(width) + " MLP (" + mlp_cuda_path(mc, path) + ")";
  const std::string plan = mlp_cuda_plan(mc, n, path);
  if (plan.find("per-point") != std::string::npos) {
    std::printf("| %-34s | %-52s | %9lld | %9s |\n", key.c_str(), (net + ": skipped, per-point path").c_str(), (long long)n, "n/a");
    return;
  }
  const std::string used = mlp_cuda_path(mc, path);
  if ((path == MlpCudaPath::Half || path == MlpCudaPath::HalfLayered) && used.rfind("half", 0) != 0) {
    std::printf("| %-34s | %-52s | %9lld | %9s |\n", key.c_str(), (net + ": skipped, same as @tf32").c_str(), (long long)n, "n/a");
    return;
  }
  if (path == MlpCudaPath::HalfLayered && used == mlp_cuda_path(mc, MlpCudaPath::Half)) {
    std::printf("| %-34s | %-52s | %9lld | %9s |\n", key.c_str(), (net + ": skipped, same as @half").c_str(), (long long)n, "n/a");
    return;
  }
  std::printf("  (%s: %s)\n", net.c_str(), plan.c_str());
  // The hash grid's saved Jacobian (HashGridParams::jac): the backward's d/du without table gathers.
  Buffer<float> jac(GPU, hashgrid_jac_count(g, n));
  HashGridParams hs = hp;
  hs.jac = jac.data();
  if (path == MlpCudaPath::Tiled && width == 64) {
    add(key + ".hash_fwd", "hash grid fwd", n, median_ms([&] { hashgrid_forward(GPU, hp); }));
    // A random output gradient, as the MLP gives (a zero one would skip the table atomics).
    Buffer<float> grand = random_buffer(n * g.out_dim(), -1.f, 1.f, 13);
    HashGridParams hq = hp;
    hq.g_out = grand.data();
    add(key + ".hash_fwd_bwd", "hash grid fwd+bwd (table, positions)", n, median_ms([&] {
          gt.zero(); hashgrid_forward(GPU, hq); hashgrid_backward(GPU, hq); }));
    HashGridParams hqs = hq;
    hqs.jac = jac.data();
    add(key + ".hash_fwd+saved", "hash grid fwd, writing the Jacobian", n, median_ms([&] { hashgrid_forward(GPU, hqs); }));
    add(key + ".hash_fwd_bwd+saved", "hash grid fwd+bwd (table, positions), saved Jacobian", n, median_ms([&] {
          gt.zero(); hashgrid_forward(GPU, hqs); hashgrid_backward(GPU, hqs); }));
  }
  add(key + ".mlp_fwd", net + " fwd", n, median_ms([&] { mlp_forward(GPU, mp); }));
  add(key + ".mlp_fwd_bwd", net + " fwd+bwd", n, median_ms([&] {
        gw.zero(); mlp_forward(GPU, mp); mlp_backward(GPU, mp); }));
  add(key, "hash grid + " + net + " fwd+bwd", n, median_ms([&] {
        gt.zero(); gw.zero();
        hashgrid_forward(GPU, hp); mlp_forward(GPU, mp); mlp_backward(GPU, mp); hashgrid_backward(GPU, hp); }));
  if (path == MlpCudaPath::Fused) return;
  // The backward from what the forward saved: the MLP's hidden outputs (MlpParams::acts) and the
  // hash grid's Jacobian, instead of recomputing the one and re-gathering the table for the other.
  Buffer<float> acts(GPU, (size_t)(mlp_hidden_count(mc) * n));
  MlpParams ms = mp;
  ms.acts = acts.data();
  add(key + "+saved", "hash grid + " + net + " fwd+bwd, saved acts + Jacobian", n, median_ms([&] {
        gt.zero(); gw.zero();
        hashgrid_forward(GPU, hs); mlp_forward(GPU, ms); mlp_backward(GPU, ms); hashgrid_backward(GPU, hs); }));
}

// Geometry path: SDF MLP over all grid vertices (frequency encoding -> 128 x 2 -> sdf, elastic)
// and the deformation MLP over the same vertices for B frames (128 x 2 -> 4), fwd + bwd.
void bench_geometry(int64_t nv, int B, const std::string& key0, MlpCudaPath path) {
  const std::string key = key0 + path_suffix(path);
  if (!wanted(key0)) return;
  mlp_set_cuda_path(path);  // deform's MLP runs on the process default
  const int nf = 6, enc = freq_encoding_size(nf), cd = 16;
  MlpConfig sc{enc, 128, 2, 2, kActReLU, kActNone};
  DeformConfig dc;
  dc.n_freq = nf;
  dc.mlp = MlpConfig{enc + cd, 128, 2, 4, kActReLU, kActNone};
  Buffer<float> u = random_buffer(nv * 3, 0.f, 1.f, 5), cond = random_buffer(B * cd, -1.f, 1.f, 6), el = random_buffer(nv, 0.2f, 1.f, 7);
  Buffer<float> sw = random_buffer(mlp_param_count(sc), -0.1f, 0.1f, 8), dw = random_buffer(mlp_param_count(dc.mlp), -0.1f, 0.1f, 9);
  Buffer<float> fenc(GPU, nv * enc), sout(GPU, nv * 2), gs = random_buffer(nv * 2, -1.f, 1.f, 10), gsw(GPU, sw.size());
  Buffer<float> si(GPU, nv * B * dc.mlp.in), so(GPU, nv * B * 4), disp(GPU, nv * B * 3), sd(GPU, nv * B);
  Buffer<float> gd = random_buffer(nv * B * 3, -1.f, 1.f, 11), gsd = random_buffer(nv * B, -1.f, 1.f, 12);
  Buffer<float> gdw(GPU, dw.size()), gc(GPU, B * cd), ge(GPU, nv);
  FreqParams fp; fp.n_freq = nf; fp.n = nv; fp.u = u.data(); fp.out = fenc.data();
  MlpParams mp; mp.cfg = sc; mp.n = nv; mp.params = sw.data(); mp.x = fenc.data(); mp.y = sout.data(); mp.g_y = gs.data(); mp.g_params = gsw.data();
  DeformParams dp; dp.cfg = dc; dp.n = nv; dp.frames = B; dp.cond_dim = cd; dp.u = u.data(); dp.cond = cond.data(); dp.elastic = el.data();
  dp.params = dw.data(); dp.scratch_in = si.data(); dp.scratch_out = so.data(); dp.disp = disp.data(); dp.sdf_delta = sd.data();
  dp.g_disp = gd.data(); dp.g_sdf_delta = gsd.data(); dp.g_params = gdw.data(); dp.g_cond = gc.data(); dp.g_elastic = ge.data();
  // On CUDA deform runs its MLP once per frame over the encoded vertices (the condition folded into
  // layer 0's bias, see deform.cpp): that network's plan.
  MlpConfig frame_mlp = dc.mlp;
  frame_mlp.in = enc;
  std::printf("  (SDF MLP: %s; deformation MLP per frame: %s)\n", mlp_cuda_plan(sc, nv).c_str(), mlp_cuda_plan(frame_mlp, nv).c_str());
  if (mlp_cuda_plan(frame_mlp, nv).find("per-point") != std::string::npos) {
    std::printf("| %-34s | %-52s | %9lld | %9s |\n", key.c_str(), "skipped, per-point path", (long long)nv, "n/a");
    mlp_set_cuda_path(MlpCudaPath::Auto);
    return;
  }
  add(key + ".sdf", "SDF MLP 2x128 (freq 6) fwd+bwd", nv, median_ms([&] {
        gsw.zero(); freq_forward(GPU, fp); mlp_forward(GPU, mp); mlp_backward(GPU, mp); }));
  add(key + ".deform", "deformation MLP 2x128 (freq 6 + cond 16) fwd+bwd, B=" + std::to_string(B), nv, median_ms([&] {
        gdw.zero(); gc.zero(); ge.zero(); deform_forward(GPU, dp); deform_backward(GPU, dp); }));
  add(key, "SDF + deformation fwd+bwd", nv, median_ms([&] {
        gsw.zero(); gdw.zero(); gc.zero(); ge.zero();
        freq_forward(GPU, fp); mlp_forward(GPU, mp); mlp_backward(GPU, mp);
        deform_forward(GPU, dp); deform_backward(GPU, dp); }));
  if (path == MlpCudaPath::Fused) { mlp_set_cuda_path(MlpCudaPath::Auto); return; }
  // The backward from what the forward saved (MlpParams::acts, DeformParams::acts), as the texture's
  // +saved rows: no forward recomputed.
  Buffer<float> sacts(GPU, (size_t)(mlp_hidden_count(sc) * nv)), dacts(GPU, (size_t)(B * mlp_hidden_count(frame_mlp) * nv));
  MlpParams ms = mp;
  ms.acts = sacts.data();
  DeformParams ds = dp;
  ds.acts = dacts.data();
  add(key + ".deform+saved", "deformation MLP fwd+bwd, saved acts, B=" + std::to_string(B), nv, median_ms([&] {
        gdw.zero(); gc.zero(); ge.zero(); deform_forward(GPU, ds); deform_backward(GPU, ds); }));
  add(key + "+saved", "SDF + deformation fwd+bwd, saved acts", nv, median_ms([&] {
        gsw.zero(); gdw.zero(); gc.zero(); ge.zero();
        freq_forward(GPU, fp); mlp_forward(GPU, ms); mlp_backward(GPU, ms);
        deform_forward(GPU, ds); deform_backward(GPU, ds); }));
  mlp_set_cuda_path(MlpCudaPath::Auto);
}
}  // namespace

int main(int argc, char** argv) {
  const char* json = nullptr;
  try {
    for (int i = 1; i < argc; ++i) {
      if (!std::strcmp(argv[i], "--json") && i + 1 < argc) json = argv[++i];
      else if (!std::strcmp(argv[i], "--paths") && i + 1 < argc) {
        for (const std::string& name : split_commas(argv[++i])) only_paths.push_back(mlp_parse_cuda_path(name));
      } else if (!std::strcmp(argv[i], "--only") && i + 1 < argc) {
        for (const std::string& key : split_commas(argv[++i])) only.push_back(key);
      }
    }
    cudaDeviceProp prop;
    cuda_check(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
    std::printf("training ops on %s, median of 21 runs (ms); MLP paths: tiled fp32 (plain keys), @tf32, @fused, @half, @half-layered\n\n", prop.name);
    std::printf("| %-34s | %-52s | %9s | %9s |\n|%s|%s|%s|%s|\n", "key", "what", "points", "ms",
                std::string(36, '-').c_str(), std::string(54, '-').c_str(), std::string(11, '-').c_str(), std::string(11, '-').c_str());
    std::vector<MlpCudaPath> paths = {MlpCudaPath::Tiled, MlpCudaPath::TiledTF32, MlpCudaPath::Fused, MlpCudaPath::Half, MlpCudaPath::HalfLayered};
    if (!only_paths.empty()) paths = only_paths;
    for (int64_t n : {262144LL, 1048576LL}) {
      const std::string s = n == 262144 ? "262k" : "1M";
      for (MlpCudaPath path : paths) {
        bench_texture(n, 64, 2, "tex_2x64_" + s, path);
        bench_texture(n, 128, 5, "tex_5x128_" + s, path);
        bench_texture(n, 256, 5, "tex_5x256_" + s, path);
      }
    }
    for (MlpCudaPath path : paths) bench_geometry(290000, 4, "geom_290k_b4", path);
  } catch (const std::exception& e) {
    std::printf("error: %s\n", e.what());
    return 2;
  }
  if (json) {
    FILE* f = std::fopen(json, "w");
    if (!f) { std::printf("cannot write %s\n", json); return 2; }
    std::fprintf(f, "{\n");
    for (size_t i = 0; i < rows.size(); ++i)
      std::fprintf(f, "  \"%s\": {\"n\": %lld, \"ms\": %.6f}%s\n", rows[i].key.c_str(), rows[i].n, rows[i].ms, i + 1 < rows.size() ? "," : "");
    std::fprintf(f, "}\n");
    std::fclose(f);
  }
  return 0;
}
