// Helpers for the training-op tests on top of the shared native/tests/test_harness.h: a
// printf-style check, a seeded RNG and a finite-difference gradient checker.
#pragma once
#include <cmath>
#include <cstdio>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "../../tests/test_harness.h"

namespace dt_test {

#define DT_CHECK(cond, ...)                                              \
  do {                                                                   \
    if (!(cond)) {                                                       \
      char dt_msg_[512];                                                 \
      std::snprintf(dt_msg_, sizeof dt_msg_, __VA_ARGS__);               \
      dyntet_test::fail(__FILE__, __LINE__, std::string(#cond ": ") + dt_msg_); \
    }                                                                    \
  } while (0)

struct Rng {
  std::mt19937_64 g;
  explicit Rng(uint64_t s) : g(s) {}
  float uni(float lo, float hi) { return std::uniform_real_distribution<float>(lo, hi)(g); }
  int integer(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(g); }
  std::vector<float> vec(size_t n, float lo, float hi) {
    std::vector<float> v(n);
    for (auto& x : v) x = uni(lo, hi);
    return v;
  }
};

inline bool all_finite(const std::vector<float>& v) {
  for (float x : v)
    if (!std::isfinite(x)) return false;
  return true;
}

// Central differences of J (evaluated in double from fp32 forward passes) against analytic
// gradients at chosen coordinates of x. The forward runs in fp32, so J carries rounding noise of
// about 6e-8 * noise_scale (noise_scale: the sum of |terms| in J); divided by 2h that bounds the
// FD noise, and the tolerance is a multiple of it plus a relative part for truncation error.
// Where the two step sizes h and h/2 disagree far beyond that noise the step crossed a kink
// (ReLU, a hash cell or clamp boundary): that coordinate is skipped, and at most 10% may be.
struct FdResult { int checked = 0, skipped = 0, failed = 0; double worst = 0; };

inline FdResult fd_check(const char* name, std::vector<float>& x, const std::vector<size_t>& idx,
                         const std::vector<float>& analytic, const std::function<double()>& J, float h,
                         double noise_scale, double rtol = 2e-3) {
  FdResult r;
  for (size_t k = 0; k < idx.size(); ++k) {
    const size_t i = idx[k];
    const float x0 = x[i];
    auto fd = [&](float hh) {
      x[i] = x0 + hh; const double jp = J();
      x[i] = x0 - hh; const double jm = J();
      x[i] = x0;
      // Use the step actually representable in fp32.
      return (jp - jm) / ((double)(x0 + hh) - (double)(x0 - hh));
    };
    const double f1 = fd(h), f2 = fd(h * 0.5f);
    const double noise = 50.0 * 6e-8 * noise_scale / h + 1e-6;
    const double a = analytic[k];
    if (std::fabs(f1 - f2) > 4 * noise + 0.05 * std::fabs(f2)) { ++r.skipped; continue; }
    ++r.checked;
    const double err = std::fabs(a - f2);
    const double tol = noise + rtol * std::max(std::fabs(a), std::fabs(f2));
    r.worst = std::max(r.worst, err / tol);
    if (!(err <= tol) || !std::isfinite(a)) {
      ++r.failed;
      if (r.failed <= 5) std::printf("  %s[%zu]: analytic %.8g fd %.8g (tol %.3g)\n", name, i, a, f2, tol);
    }
  }
  DT_CHECK(r.failed == 0, "%s: %d of %d gradients differ from finite differences", name, r.failed, r.checked);
  DT_CHECK(r.skipped * 10 <= (int)idx.size(), "%s: %d of %zu coordinates hit kinks (too many to trust)", name, r.skipped, idx.size());
  DT_CHECK(r.checked > 0, "%s: nothing checked", name);
  std::printf("  %-28s checked %3d skipped %2d worst err/tol %.3f\n", name, r.checked, r.skipped, r.worst);
  return r;
}

inline std::vector<size_t> pick(Rng& rng, size_t n, size_t count) {
  std::vector<size_t> v;
  if (n <= count) { for (size_t i = 0; i < n; ++i) v.push_back(i); return v; }
  for (size_t k = 0; k < count; ++k) v.push_back((size_t)rng.integer(0, (int)n - 1));
  return v;
}

}  // namespace dt_test
