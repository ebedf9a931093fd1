// Conventions shared by the training ops in native/train: a typed error for bad arguments, a few
// per-element helpers used by several backward passes, and double accumulation of loss values.
// Every op is a plain function taking a small params struct of raw pointers on the op's backend
// (host memory for Backend::CPU, device memory for Backend::CUDA) plus sizes and configs, so the
// Trainer composes ops without copies. Backward passes ADD into parameter gradients (so several
// uses of one parameter block accumulate) and WRITE input gradients.
#pragma once
#include <cmath>
#include <stdexcept>
#include <string>
#include "launch.h"
#if defined(__CUDACC__)
#include <cooperative_groups.h>
#include <cooperative_groups/reduce.h>
#endif
#include "../core/model.h"

namespace dyntet {
namespace train {

// Thrown before any work is launched when an op's arguments are inconsistent; the message names
// the op, the argument and what a valid value looks like.
struct OpError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

inline void op_require(bool ok, const char* op, const std::string& what) {
  if (!ok) throw OpError(std::string(op) + ": " + what);
}

// d activate(act, x) / dx written in terms of the activation's output y (all of model.h's
// activations allow it), so backward passes only keep outputs.
DT_HD float act_grad_from_output(int act, float y) {
  switch (act) {
    case kActReLU: return y > 0.f ? 1.f : 0.f;
    case kActLeakyReLU: return y > 0.f ? 1.f : kLeakySlope;
    case kActSigmoid: return y * (1.f - y);
    case kActTanh: return 1.f - y * y;
    default: return 1.f;
  }
}

// Loss values are summed in double: with float atomics over ~10^6 pixels the sum would drift.
// Adds v into *p from per-element code. On CUDA the threads active at the call first sum their
// values within the warp, so a loss over 10^6 pixels costs ~3*10^4 atomics, not 10^6. (A plain
// double atomic add is launch.h's atomic_add(double*, double).)
DT_HD void reduce_add_double(double* p, double v) {
#if defined(__CUDA_ARCH__)
  namespace cg = cooperative_groups;
  cg::coalesced_group g = cg::coalesced_threads();
  const double s = cg::reduce(g, v, cg::plus<double>());
  if (g.thread_rank() == 0) atomicAdd(p, s);
#else
  *p += v;
#endif
}

}  // namespace train
}  // namespace dyntet
