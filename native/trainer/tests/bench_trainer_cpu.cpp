// CPU reference speed of a full training step (forward, losses, backward, Adam) on the sphere
// scene, for a few sizes. Prints a table. Usage: bench_trainer_cpu [steps]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include "scene.h"

using namespace dyntet;

int main(int argc, char** argv) {
  const int steps = argc > 1 ? std::atoi(argv[1]) : 5;
  std::printf("| R | image | batch | triangles | covered px | ms/step |\n|---|---|---|---|---|---|\n");
  const int sizes[][3] = {{16, 64, 4}, {32, 128, 4}, {64, 256, 4}};
  for (const auto& z : sizes) {
    TrainerConfig c;  // default widths (hash grid 16x2, 2^15; MLPs 64 wide)
    c.grid_res = z[0];
    for (int a = 0; a < 3; ++a) { c.box_min[a] = -8.f; c.box_max[a] = 8.f; c.init_center[a] = 0.f; c.init_radii[a] = 5.5f; }
    c.width = c.height = z[1];
    const scene::Sphere s;
    Trainer t(c, Device::CPU);
    const auto f = scene::make_frames(s, c, z[2], 0);
    t.step(f.batch());
    StepLosses l{};
    const auto t0 = std::chrono::steady_clock::now();
    for (int k = 0; k < steps; ++k) l = t.step(f.batch());
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / steps;
    std::printf("| %d | %dx%d | %d | %d | %d | %.1f |\n", z[0], z[1], z[1], z[2], l.triangles, l.covered_pixels, ms);
  }
  return 0;
}
