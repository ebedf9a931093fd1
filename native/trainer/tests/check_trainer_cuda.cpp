// GPU-machine check (CUDA build): runs the same training steps on the CPU and CUDA backends and
// prints loss and parameter differences, then times full training steps at 512x512, batch 4,
// R = 128. Prints tables only; the exit code is non-zero only when CUDA is unusable.
#include <chrono>
#include <string>
#include <utility>
#include <vector>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include "scene.h"

using namespace dyntet;

static double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b, size_t off, size_t n) {
  double m = 0;
  for (size_t i = off; i < off + n; ++i) m = std::max(m, (double)std::fabs(a[i] - b[i]));
  return m;
}

int main(int argc, char** argv) {
  const BackendInfo bi = query_backends();
  std::printf("CUDA compiled: %s, usable: %s %s\n", bi.cuda_compiled ? "yes" : "no", bi.cuda_usable ? "yes" : "no",
              bi.cuda_usable ? bi.cuda_device.c_str() : bi.cuda_error.c_str());
  if (!bi.cuda_usable) return 2;
  const int check_steps = argc > 1 ? std::atoi(argv[1]) : 20;
  const int bench_steps = argc > 2 ? std::atoi(argv[2]) : 30;

  // 1. CPU vs CUDA on the small sphere scene.
  {
    const scene::Sphere s;
    TrainerConfig c = scene::small_config();
    c.pose_frames = 8; c.pose_start = 0;  // pose refinement's gradients are in the comparison
    c.w_landmark_motion = 10.f;           // and the landmark motion prior's (gradient batch only)
    Trainer cpu(c, Device::CPU), gpu(c, Device::CUDA);
    {
      // Same parameters, same batch: gradients per block (float atomics reorder sums on the GPU).
      auto f = scene::make_frames(s, c, 4, 0);
      for (auto& w : f.windows) w = 0.3f;
      const int ids[4] = {5, 2, 7, 0};
      Batch batch = f.batch();
      batch.frame_ids = ids;
      const scene::MotionCase m = scene::make_motion(c, 4);
      batch.prior_points = m.rest.data();
      batch.prior_count = m.n;
      batch.motion_targets = m.targets.data();
      std::vector<float> ga, gb;
      const StepLosses la = cpu.gradient(batch, &ga), lb = gpu.gradient(batch, &gb);
      std::printf("\n## Gradients at initialisation, CPU vs CUDA (loss %.7f vs %.7f, of which landmark motion %.7f vs %.7f, triangles %d vs %d, pixels %d vs %d)\n\n",
                  la.total, lb.total, la.motion, lb.motion, la.triangles, lb.triangles, la.covered_pixels, lb.covered_pixels);
      std::printf("| block | max abs grad (cpu) | max abs diff | diff / max |\n|---|---|---|---|\n");
      for (const ParamBlock& blk : cpu.layout()) {
        double mx = 0;
        for (size_t i = blk.offset; i < blk.offset + blk.count; ++i) mx = std::max(mx, (double)std::fabs(ga[i]));
        const double d = max_abs_diff(ga, gb, blk.offset, blk.count);
        std::printf("| %s | %.3e | %.3e | %.2e |\n", blk.name.c_str(), mx, d, mx > 0 ? d / mx : 0.0);
      }
    }
    std::printf("\n## CPU vs CUDA, R=%d, %dx%d, batch 4\n\n", c.grid_res, c.width, c.height);
    std::printf("| step | loss cpu | loss cuda | rel diff | tris cpu | tris cuda | max |dsdf| | max |dtex| |\n");
    std::printf("|---|---|---|---|---|---|---|---|\n");
    for (int k = 0; k < check_steps; ++k) {
      const auto f = scene::make_frames(s, c, 4, k * 4);
      const StepLosses a = cpu.step(f.batch()), b = gpu.step(f.batch());
      const auto pa = cpu.parameters(), pb = gpu.parameters();
      const auto& L = cpu.layout();
      std::printf("| %d | %.6f | %.6f | %.2e | %d | %d | %.2e | %.2e |\n", k, a.total, b.total,
                  std::fabs(a.total - b.total) / std::max(1e-12f, std::fabs(a.total)), a.triangles, b.triangles,
                  max_abs_diff(pa, pb, L[0].offset, L[0].count), max_abs_diff(pa, pb, L[5].offset, L[5].count));
    }
    const double c0 = scene::chamfer(cpu.extract_mesh(), s), c1 = scene::chamfer(gpu.extract_mesh(), s);
    std::printf("\nchamfer after %d steps: cpu %.4f cm, cuda %.4f cm\n", check_steps, c0, c1);
    // 8-bit frames (converted on the device) against the same values uploaded as floats.
    auto f = scene::make_frames(s, c, 4, 0);
    f.quantise();
    std::vector<float> gf, gu, gc;
    cpu.set_parameters(gpu.parameters());  // compare gradients at the same parameters
    const StepLosses lf = gpu.gradient(f.batch(), &gf), lu = gpu.gradient(f.batch_u8(), &gu);
    const StepLosses lc = cpu.gradient(f.batch_u8(), &gc);
    double mx = 0, d = 0, dc = 0;
    for (size_t i = 0; i < gf.size(); ++i) {
      mx = std::max(mx, (double)std::fabs(gc[i]));
      d = std::max(d, (double)std::fabs(gf[i] - gu[i]));
      dc = std::max(dc, (double)std::fabs(gc[i] - gu[i]));
    }
    std::printf("\n8-bit frames: CUDA loss %.7f (float upload %.7f, CPU %.7f); max |grad diff| vs float upload %.2e, vs CPU at the same parameters %.2e (max |grad| %.2e)\n",
                lu.total, lf.total, lc.total, d, dc, mx);
  }

  // 2. Full training step at 512x512, batch 4, R = 128, with and without the texture's gradient
  // moving the geometry (texture_moves_geometry), which adds per-pixel work and atomics.
  for (const int moves : {1, 0}) {
    TrainerConfig c;
    c.texture_moves_geometry = moves;
    c.grid_res = 128;
    for (int a = 0; a < 3; ++a) { c.box_min[a] = -10.f; c.box_max[a] = 10.f; c.init_center[a] = 0.f; c.init_radii[a] = 7.5f; }
    c.width = c.height = 512;
    scene::Sphere s;
    s.r = 7.f;
    Trainer gpu(c, Device::CUDA);
    auto f = scene::make_frames(s, c, 4, 0);
    for (int b = 0; b < 4; ++b) f.poses[b * 16 + 14] = -30.f;  // farther camera for the bigger sphere
    f.quantise();  // 8-bit frames, as fit uploads them
    for (int k = 0; k < 3; ++k) gpu.step(f.batch_u8());
    double total = 0, best = 1e30;
    StepLosses l{};
    for (int k = 0; k < bench_steps; ++k) {
      const auto t0 = std::chrono::steady_clock::now();
      l = gpu.step(f.batch_u8());  // returns after the loss download, so the step is complete
      const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      total += ms;
      best = std::min(best, ms);
    }
    std::printf("\n## Full training step (forward, losses, backward, Adam), CUDA, texture_moves_geometry %d\n\n", moves);
    std::printf("| R | image | batch | triangles | covered px | mean ms/step | best ms/step | steps/s |\n|---|---|---|---|---|---|---|---|\n");
    std::printf("| %d | %dx%d | 4 | %d | %d | %.2f | %.2f | %.1f |\n", c.grid_res, c.width, c.height, l.triangles,
                l.covered_pixels, total / bench_steps, best, 1000.0 * bench_steps / total);

    // Where the time goes: the same step with a device wait after every stage (mean over steps).
    gpu.set_stage_timing(true);
    std::vector<std::pair<std::string, double>> sum;
    const int timed = std::max(1, bench_steps / 2);
    for (int k = 0; k < timed; ++k) {
      gpu.step(f.batch_u8());
      const auto& st = gpu.stage_times();
      if (sum.empty()) sum.assign(st.begin(), st.end());
      else
        for (size_t i = 0; i < st.size() && i < sum.size(); ++i) sum[i].second += st[i].second;
    }
    gpu.set_stage_timing(false);
    double all = 0;
    for (auto& e : sum) all += e.second;
    std::printf("\n## Per-stage time of the CUDA step, texture_moves_geometry %d (device wait after each stage, mean of %d steps)\n\n", moves, timed);
    std::printf("| stage | ms | share |\n|---|---|---|\n");
    for (auto& e : sum) std::printf("| %s | %.3f | %.1f%% |\n", e.first.c_str(), e.second / timed, all > 0 ? 100.0 * e.second / all : 0.0);
    std::printf("| total (with waits) | %.3f | 100%% |\n", all / timed);
  }
  return 0;
}
