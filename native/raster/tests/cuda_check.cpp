// CUDA vs CPU check of the rendering ops (built only with DYNTET_CUDA=ON, runs on a GPU):
// the same scene through the render chain on both backends; prints a table and exits non-zero
// on a mismatch. Forward values must agree within 1e-5 relative, gradients within 1e-4
// (atomics make the order of float additions differ on the GPU). A few pixels whose centre is
// within rounding of an edge may pick a different triangle (the GPU contracts a*b+c into FMA);
// those are counted, allowed up to 1e-4 of the pixels, and excluded from the value comparison.
#include <cmath>
#include <cstdio>
#include <string>
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

// Relative difference per element against the tensor's scale; mask (per element) may skip.
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
  const bool ok = bad == 0;
  std::printf("| %-22s | %9zu | %10.3e | %10.3e | %8.0e | %s |\n", name, n, scale, worst, tol, ok ? "ok" : "MISMATCH");
  if (!ok) ++g_fail;
}
}  // namespace

int main() {
  try {
    std::vector<float> mp;
    std::vector<int> mt;
    bench::uv_sphere(80, 160, 12.f, mp, mt);
    const int frames = 2, res = 256;
    bench::Pipeline cpu(Backend::CPU, frames, res, res, mp, mt), gpu(Backend::CUDA, frames, res, res, mp, mt);
    for (auto* p : {&cpu, &gpu}) { p->adjacency(); p->forward(); p->backward(); }
    cuda_check(cudaDeviceSynchronize(), "sync");
    std::printf("CUDA vs CPU: %d frames x %dx%d, %zu triangles per frame\n", frames, res, res, mt.size() / 3);
    std::printf("| tensor | compared | max abs | worst rel | tol | result |\n|---|---:|---:|---:|---:|---|\n");
    const auto ac = host(cpu.adj), ag = host(gpu.adj);
    size_t adj_diff = 0;
    for (size_t i = 0; i < ac.size(); ++i) adj_diff += ac[i] != ag[i];
    std::printf("| %-22s | %9zu | | %10zu diff | 0 | %s |\n", "adjacency", ac.size(), adj_diff, adj_diff ? "MISMATCH" : "ok");
    if (adj_diff) ++g_fail;
    compare("clip", host(cpu.clip), host(gpu.clip), 1e-5);
    const auto ic = host(cpu.id), ig = host(gpu.id);
    const int64_t np = cpu.size.pixels();
    size_t id_diff = 0;
    std::vector<char> skip1(np, 0), skip2(2 * np, 0), skip3(3 * np, 0), skip4(4 * np, 0);
    for (int64_t p = 0; p < np; ++p)
      if (ic[p] != ig[p]) {
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
    std::printf("| %-22s | %9lld | | %10zu diff | %8lld | %s |\n", "triangle id", (long long)np, id_diff, (long long)(1e-4 * np),
                id_ok ? "ok" : "MISMATCH");
    if (!id_ok) ++g_fail;
    compare("barycentrics", host(cpu.bary), host(gpu.bary), 1e-5, &skip2);
    compare("depth", host(cpu.depth), host(gpu.depth), 1e-5, &skip1);
    compare("interpolated", host(cpu.interp), host(gpu.interp), 1e-5, &skip3);
    compare("antialiased", host(cpu.aa), host(gpu.aa), 1e-5, &skip4);
    compare("composited", host(cpu.out), host(gpu.out), 1e-5, &skip3);
    if (id_diff == 0) {
      // Gradients are comparable only when both backends saw the same topology.
      compare("grad rgba", host(cpu.g_rgba), host(gpu.g_rgba), 1e-4);
      compare("grad bary", host(cpu.g_bary), host(gpu.g_bary), 1e-4);
      compare("grad attr", host(cpu.g_attr), host(gpu.g_attr), 1e-4);
      compare("grad clip", host(cpu.g_clip), host(gpu.g_clip), 1e-4);
      compare("grad face pos", host(cpu.g_pos), host(gpu.g_pos), 1e-4);
    } else {
      // Re-run the GPU backward on the CPU's rasterisation so the gradients are comparable.
      gpu.id.upload(ic.data(), ic.size());
      const auto bc = host(cpu.bary), dc = host(cpu.depth);
      gpu.bary.upload(bc.data(), bc.size());
      gpu.depth.upload(dc.data(), dc.size());
      const auto rc = host(cpu.rgba), aac = host(cpu.aa), cc = host(cpu.clip);
      const auto sc = host(cpu.sil);
      gpu.rgba.upload(rc.data(), rc.size());
      gpu.aa.upload(aac.data(), aac.size());
      gpu.sil.upload(sc.data(), sc.size());
      gpu.clip.upload(cc.data(), cc.size());
      gpu.backward();
      cuda_check(cudaDeviceSynchronize(), "sync");
      std::printf("(gradients below computed on the GPU from the CPU's forward)\n");
      compare("grad rgba", host(cpu.g_rgba), host(gpu.g_rgba), 1e-4);
      compare("grad bary", host(cpu.g_bary), host(gpu.g_bary), 1e-4);
      compare("grad attr", host(cpu.g_attr), host(gpu.g_attr), 1e-4);
      compare("grad clip", host(cpu.g_clip), host(gpu.g_clip), 1e-4);
      compare("grad face pos", host(cpu.g_pos), host(gpu.g_pos), 1e-4);
    }
  } catch (const std::exception& e) {
    std::printf("raster_cuda_check: %s\n", e.what());
    return 2;
  }
  std::printf(g_fail ? "%d mismatch(es)\n" : "CUDA and CPU agree\n", g_fail);
  return g_fail ? 1 : 0;
}
