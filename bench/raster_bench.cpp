// Raster benchmark: batch 4, 512x512, a ~100k-triangle sphere; prints a table of milliseconds
// for the render chain forward and forward+backward (see Pipeline in raster_scene.h).
// Usage: raster_bench [--cpu] [--frames N] [--size S] [--stacks N] [--iters N]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "raster_scene.h"

using namespace dyntet;

namespace {
void sync(Backend b) {
#if defined(__CUDACC__)
  if (b == Backend::CUDA) cuda_check(cudaDeviceSynchronize(), "sync");
#else
  (void)b;
#endif
}

double median_ms(Backend b, int iters, const std::function<void()>& fn) {
  std::vector<double> t;
  for (int i = 0; i < iters; ++i) {
    sync(b);
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    sync(b);
    t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}
}  // namespace

int main(int argc, char** argv) {
#if defined(__CUDACC__)
  Backend b = Backend::CUDA;
#else
  Backend b = Backend::CPU;
#endif
  int frames = 4, res = 512, stacks = 160, iters = 50;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() { if (i + 1 >= argc) { std::fprintf(stderr, "%s needs a value\n", a.c_str()); std::exit(2); } return std::atoi(argv[++i]); };
    if (a == "--cpu") b = Backend::CPU;
    else if (a == "--frames") frames = next();
    else if (a == "--size") res = next();
    else if (a == "--stacks") stacks = next();
    else if (a == "--iters") iters = next();
    else { std::fprintf(stderr, "unknown argument %s\nusage: raster_bench [--cpu] [--frames N] [--size S] [--stacks N] [--iters N]\n", a.c_str()); return 2; }
  }
  if (b == Backend::CPU && iters > 5) iters = 5;
  std::vector<float> mp;
  std::vector<int> mt;
  bench::uv_sphere(stacks, 2 * stacks, 12.f, mp, mt);  // about 40% of the image height
  try {
    bench::Pipeline pl(b, frames, res, res, mp, mt);
    pl.adjacency();
    for (int i = 0; i < 3; ++i) { pl.forward(); pl.backward(); }
    sync(b);
    const double t_adj = median_ms(b, iters, [&] { pl.adjacency(); });
    const double t_proj = median_ms(b, iters, [&] { project_forward<float>(b, pl.cam, pl.vert_begin, pl.poses, pl.pos.data(), pl.clip.data()); });
    const double t_rast = median_ms(b, iters, [&] {
      pl.rz.forward(pl.size, pl.clip.data(), pl.n_vert, pl.tris.data(), pl.tri_begin, pl.id.data(), pl.bary.data(), pl.depth.data());
    });
    const double t_aa = median_ms(b, iters, [&] {
      silhouette_edges<float>(b, pl.n_tris, pl.clip.data(), pl.tris.data(), pl.adj.data(), res, res, pl.sil.data());
      antialias_forward<float>(b, pl.size, 4, pl.rgba.data(), pl.clip.data(), pl.tris.data(), pl.sil.data(), pl.adj.data(), pl.id.data(),
                               pl.depth.data(), pl.aa.data());
    });
    const double t_fwd = median_ms(b, iters, [&] { pl.forward(); });
    const double t_fb = median_ms(b, iters, [&] { pl.forward(); pl.backward(); });
    std::vector<int> ids(pl.size.pixels());
    pl.id.download(ids.data(), ids.size());
    int64_t covered = 0;
    for (int v : ids) covered += v >= 0;
    std::printf("raster_bench: %s, %d frames x %dx%d, %lld triangles per frame, %.1f%% pixels covered, %.1f triangles per tile\n",
                b == Backend::CUDA ? "CUDA" : "CPU", frames, res, res, (long long)(mt.size() / 3), 100.0 * covered / pl.size.pixels(),
                (double)pl.rz.last_pairs() / (frames * ((res + 7) / 8) * ((res + 7) / 8)));
    std::printf("| stage | median ms | nvdiffrast H100 reference |\n|---|---:|---:|\n");
    std::printf("| project | %.3f | |\n| rasterise (tiled) | %.3f | |\n| silhouettes + antialias | %.3f | |\n", t_proj, t_rast, t_aa);
    std::printf("| adjacency (per topology change) | %.3f | |\n", t_adj);
    std::printf("| forward (project, rasterise, interpolate, shade, antialias, composite) | %.3f | 0.93 |\n", t_fwd);
    std::printf("| forward + backward | %.3f | 1.88 |\n", t_fb);
    if (b == Backend::CUDA) {
      std::printf("ratio to nvdiffrast: forward %.2fx, forward+backward %.2fx (target <= 2x)\n", t_fwd / 0.93, t_fb / 1.88);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "raster_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
