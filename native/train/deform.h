// Deformation of active grid vertices (model.h's deform_vertex) for a batch of frames, forward and
// backward. Built from the frequency encoding and the MLP op (on CUDA its tiled GEMM path by
// default, see README.md): an assemble pass writes [freq(u), cond] rows, the MLP op maps them, an
// epilogue applies the tanh bounds. The forward is checked against deform_vertex itself in the tests.
#pragma once
#include "ops_common.h"

namespace dyntet {
namespace train {

struct DeformParams {
  DeformConfig cfg;
  int64_t n = 0;                   // active vertices
  int frames = 0;                  // B
  int cond_dim = 0;
  const float* u = nullptr;        // n x 3 normalised canonical positions
  const float* cond = nullptr;     // B x cond_dim
  const float* elastic = nullptr;  // n elastic scales (cm)
  const float* params = nullptr;   // mlp_param_count(cfg.mlp)
  float* scratch_in = nullptr;     // B*n x cfg.mlp.in work rows
  float* scratch_out = nullptr;    // B*n x 4 work rows
  float* disp = nullptr;           // forward: B x n x 3
  float* sdf_delta = nullptr;      // forward: B x n
  const float* g_disp = nullptr;   // backward: B x n x 3
  const float* g_sdf_delta = nullptr;  // backward: B x n; may be null
  float* g_params = nullptr;       // backward, accumulated; may be null
  float* g_cond = nullptr;         // backward, accumulated; may be null
  float* g_elastic = nullptr;      // backward, accumulated; may be null
  // Optional saved activations, frames x mlp_hidden_count(cfg.mlp) x n floats on the backend (frame
  // f's block as MlpParams::acts of its per-frame network). On CUDA the forward stores the hidden
  // outputs there and the backward, given the same acts and scratch_out as that forward left them,
  // skips its forward. Without them the backward recomputes the forward. The CPU op ignores it.
  float* acts = nullptr;
};

// The backward needs the forward's scratch (and overwrites scratch_in on the CPU); it recomputes
// the forward unless acts holds it.
void deform_forward(Backend b, const DeformParams& p);
void deform_backward(Backend b, const DeformParams& p);

}  // namespace train
}  // namespace dyntet
