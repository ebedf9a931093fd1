// Trainer tests on the CPU backend: determinism, exact checkpoints, learning a sphere, errors.
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include "scene.h"

using namespace dyntet;

static int failures = 0;
#define CHECK(cond, ...)                                              \
  do {                                                                \
    if (!(cond)) {                                                    \
      std::printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);     \
      std::printf(__VA_ARGS__);                                       \
      std::printf("\n");                                              \
      ++failures;                                                     \
    }                                                                 \
  } while (0)

static bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * 4) == 0;
}

static void test_determinism() {
  const scene::Sphere s;
  const TrainerConfig c = scene::small_config();
  Trainer a(c, Device::CPU), b(c, Device::CPU);
  CHECK(same_bits(a.parameters(), b.parameters()), "fixed-seed initialisation differs");
  for (int k = 0; k < 3; ++k) {
    const auto f = scene::make_frames(s, c, 2, k * 2);
    const StepLosses la = a.step(f.batch()), lb = b.step(f.batch());
    CHECK(std::memcmp(&la, &lb, sizeof la) == 0, "losses differ at step %d: %g vs %g", k, la.total, lb.total);
    CHECK(la.triangles > 0 && la.covered_pixels > 0, "nothing rendered (triangles %d, pixels %d)", la.triangles, la.covered_pixels);
  }
  CHECK(same_bits(a.parameters(), b.parameters()), "parameters differ after 3 steps");
  // Every parameter block receives gradients (condition encoder included).
  {
    Trainer fresh(c, Device::CPU);
    const auto p0 = fresh.parameters(), p1 = a.parameters();
    for (const ParamBlock& blk : a.layout()) {
      bool changed = false;
      for (size_t i = blk.offset; i < blk.offset + blk.count && !changed; ++i) changed = p0[i] != p1[i];
      CHECK(changed, "parameter block %s did not change in 3 steps", blk.name.c_str());
    }
  }
  TrainerConfig c2 = c;
  c2.seed = 2;
  Trainer d(c2, Device::CPU);
  CHECK(!same_bits(a.parameters(), d.parameters()), "a different seed gave the same parameters");
}

static void test_checkpoint() {
  const scene::Sphere s;
  const TrainerConfig c = scene::small_config();
  Trainer a(c, Device::CPU);
  for (int k = 0; k < 3; ++k) a.step(scene::make_frames(s, c, 2, k).batch());
  const std::vector<uint8_t> blob = a.save_checkpoint();
  TrainerConfig other = c;
  other.grid_res = 8;  // the checkpoint's config must replace this one
  Trainer b(other, Device::CPU);
  b.load_checkpoint(blob.data(), blob.size());
  CHECK(b.save_checkpoint() == blob, "save after restore gives different bytes");
  CHECK(b.step_count() == 3 && b.config().grid_res == c.grid_res, "step/config not restored");
  for (int k = 3; k < 6; ++k) {
    const auto f = scene::make_frames(s, c, 2, k);
    const StepLosses la = a.step(f.batch()), lb = b.step(f.batch());
    CHECK(std::memcmp(&la, &lb, sizeof la) == 0, "continuation losses differ at step %d", k);
  }
  CHECK(same_bits(a.parameters(), b.parameters()), "continuation after restore differs from uninterrupted training");
  CHECK(a.save_checkpoint() == b.save_checkpoint(), "checkpoints differ after continuation");

  std::vector<uint8_t> bad = blob;
  bad[bad.size() / 2] ^= 1;
  bool threw = false;
  try { b.load_checkpoint(bad.data(), bad.size()); } catch (const TrainerError& e) { threw = std::strstr(e.what(), "checksum") != nullptr; }
  CHECK(threw, "corrupted checkpoint not rejected with a checksum error");
  threw = false;
  try { b.load_checkpoint(blob.data(), 5); } catch (const TrainerError&) { threw = true; }
  CHECK(threw, "truncated checkpoint not rejected");
}

// Central finite differences of the total loss against the analytic gradient for parameters of
// every block that has a clear gradient (texture, hash grid, deformation, condition, SDF).
static void test_gradients() {
  const scene::Sphere s;
  TrainerConfig c = scene::small_config();
  c.w_sdf_reg_start = c.w_sdf_reg_end = 0.f;  // its sign test is discontinuous at zero
  c.w_prior = 1.f;  // keeps the total small enough for float finite differences of tiny gradients
  Trainer t(c, Device::CPU);
  for (int k = 0; k < 5; ++k) t.step(scene::make_frames(s, c, 2, k).batch());
  auto f = scene::make_frames(s, c, 2, 1);
  for (auto& w : f.windows) w = 0.3f;  // a non-trivial condition input
  // Mouth/eye boxes and landmark-prior points so their losses are in the checked gradient.
  std::vector<float> boxes = {20, 30, 44, 40, 16, 18, 30, 28, 34, 18, 48, 28};
  boxes.insert(boxes.end(), boxes.begin(), boxes.end());
  std::vector<float> prior;
  for (int k = 0; k < 50; ++k) {
    const float z = 1.f - 2.f * (k + 0.5f) / 50, r = std::sqrt(1.f - z * z), ph = k * 2.4f;
    prior.insert(prior.end(), {s.r * r * std::cos(ph), s.r * r * std::sin(ph), s.r * z});
  }
  Batch batch = f.batch();
  batch.boxes = boxes.data();
  batch.prior_points = prior.data();
  batch.prior_count = 50;
  std::vector<float> g;
  const StepLosses l0 = t.gradient(batch, &g);
  CHECK(l0.box > 0 && l0.prior > 0, "box (%g) or prior (%g) loss missing", l0.box, l0.prior);
  const std::vector<float> p0 = t.parameters();
  int checked = 0, bad = 0;
  for (const ParamBlock& blk : t.layout()) {
    if (blk.name == "elastic") continue;
    // The largest gradients of the block: well above the float noise of the loss.
    std::vector<size_t> idx;
    for (size_t i = blk.offset; i < blk.offset + blk.count; ++i) idx.push_back(i);
    std::partial_sort(idx.begin(), idx.begin() + std::min<size_t>(4, idx.size()), idx.end(),
                      [&](size_t a, size_t b) { return std::fabs(g[a]) > std::fabs(g[b]); });
    int block_ok = 0;
    for (int q = 0; q < 4 && q < (int)idx.size(); ++q) {
      const size_t i = idx[q];
      if (std::fabs(g[i]) < 1e-4f) continue;
      const float eps = blk.name == "sdf" ? 2e-3f : (blk.name == "deform" ? 1e-4f : 1e-3f);
      std::vector<float> p = p0;
      p[i] = p0[i] + eps; t.set_parameters(p);
      const float lp = t.gradient(batch, nullptr).total;
      p[i] = p0[i] - eps; t.set_parameters(p);
      const float lm = t.gradient(batch, nullptr).total;
      const double fd = (lp - lm) / (2.0 * eps);
      const double rel = std::fabs(fd - g[i]) / std::max(std::fabs(fd), std::fabs((double)g[i]));
      std::printf("grad %-9s [%zu] analytic %+.5e fd %+.5e rel %.3f\n", blk.name.c_str(), i - blk.offset, g[i], fd, rel);
      ++checked;
      if (rel < 0.1) ++block_ok; else ++bad;
    }
    CHECK(block_ok > 0, "no parameter of block %s matched its finite difference", blk.name.c_str());
  }
  t.set_parameters(p0);
  CHECK(checked >= 10 && bad * 4 <= checked, "%d of %d gradient checks off by more than 10%%", bad, checked);
}

static void test_learns_sphere() {
  const scene::Sphere s;
  const TrainerConfig c = scene::small_config();
  Trainer t(c, Device::CPU);
  const double ch0 = scene::chamfer(t.extract_mesh(), s);
  float first = 0, last = 0;
  const int steps = 200;
  const auto t0 = std::chrono::steady_clock::now();
  for (int k = 0; k < steps; ++k) {
    const StepLosses l = t.step(scene::make_frames(s, c, 4, k * 4).batch());
    if (k < 10) first += l.photo + l.silhouette;
    if (k >= steps - 10) last += l.photo + l.silhouette;
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double ch1 = scene::chamfer(t.extract_mesh(), s);
  std::printf("sphere: image loss %.5f -> %.5f, chamfer %.3f -> %.3f cm, %d steps in %.2f s\n", first / 10, last / 10,
              ch0, ch1, steps, secs);
  CHECK(last < 0.5f * first, "image loss did not halve: %g -> %g", first / 10, last / 10);
  CHECK(ch1 < 0.5 * ch0, "chamfer distance did not halve: %g -> %g", ch0, ch1);
}

static void test_errors() {
  bool threw = false;
  try { Trainer t(scene::small_config(), Device::CUDA); } catch (const std::exception& e) {
    threw = std::strstr(e.what(), "CUDA backend requested") != nullptr;
    std::printf("CUDA request: %s\n", e.what());
  }
  CHECK(threw, "CUDA request without a usable GPU did not throw the clear error");
  TrainerConfig c = scene::small_config();
  c.tex_width = 1000;
  threw = false;
  try { Trainer t(c, Device::CPU); } catch (const TrainerError& e) { threw = std::strstr(e.what(), "tex_width") != nullptr; }
  CHECK(threw, "bad tex_width not reported by name");
}

int main() {
  test_errors();
  test_determinism();
  test_checkpoint();
  test_gradients();
  test_learns_sphere();
  if (failures) { std::printf("%d check(s) failed\n", failures); return 1; }
  std::printf("all trainer checks passed\n");
  return 0;
}
