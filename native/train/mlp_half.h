// Half-precision tensor-core MLP kernels (the opt-in MlpCudaPath::Half and HalfLayered of mlp.h).
// Two forms. Fused kernels, below, for networks whose every layer is at most 128 wide with at most
// 16 outputs (the texture 2x64, the SDF and deformation 2x128 nets); and a layered form for nets up
// to 256 wide (declared at the end). Internal to native/train: mlp_forward / mlp_backward dispatch here.
//
// Products on tensor cores (mma.sync m16n8k16: fp16 operands, fp32 accumulation), the way
// tiny-cuda-nn's fully fused MLP works: a warp owns 16 points and carries their activations from
// layer to layer in registers (an mma's accumulator fragment is, once rounded to fp16, the next
// layer's operand fragment); the weights of every layer sit in shared memory as fp16. Biases are
// added in fp32 (the accumulators start from them), activations run in fp32 on the accumulators
// (model.h's activate) and are rounded to fp16 as the next layer's operand.
// Backward, two forms (half_bwd_fused picks by shared memory). Fused, when two 8-warp blocks fit
// an SM (the 2x64 texture): one kernel; a block takes 16 points per warp per step, recomputes the
// forward (or reads the saved fp16 activations), keeps the tile's input and hidden outputs in
// shared memory and per layer from the last sums the weight gradient G^T X over its tiles in fp32
// shared memory and forms the input gradient G W in registers. Two-kernel, for wider nets (the
// 2x128 SDF and deformation, 5x128), per chunk of rows (the workspace within 512 MB): a data
// kernel in the forward's manner (each warp alone on 16 points, weights in shared memory) forms
// each layer's pre-activation gradient G and G W in registers, storing G as fp16 in the
// workspace; then, per layer, a weight-gradient kernel sums G^T X (and the bias gradient, G's
// column sums) over the chunk, each warp owning one tile of the gradient in registers while its
// block streams 64-row slices of G and X through shared memory.
// Either way each block adds its sums into its own row of partial sums; a last kernel adds the rows
// in block order into g_params (no atomics: schedule-independent).
// Precision: every operand is rounded to fp16 (unit roundoff 2^-11, like TF32's 10-bit mantissa,
// and fp16's narrower exponent: magnitudes below 6e-5 lose relative precision); checked against
// the CPU reference with the TF32 tolerances (tests/check_cuda.cpp).
#pragma once
#include "mlp.h"

namespace dyntet {
namespace train {

// True when the fused half kernels take this config.
bool mlp_half_eligible(const MlpConfig& c);
// True when the layered form takes it (every layer at most 256 wide). The Half path runs the fused
// kernels where eligible, else the layered form, else tiled TF32; HalfLayered always the layered form.
bool mlp_half_layered_eligible(const MlpConfig& c);
#if defined(__CUDACC__)
// Both need mlp_half_eligible(p.cfg). acts (when set) hold fp16 activations in MlpParams::acts'
// memory (half of its bytes at most): written by the forward, read by the backward.
void mlp_half_forward(const MlpParams& p);
void mlp_half_backward(const MlpParams& p);
std::string mlp_half_plan(const MlpConfig& c, int64_t n);
// The layered form (see mlp_half.cpp): a tensor-core GEMM launch per layer over chunks of rows,
// fp16 activations in global memory between layers. Same acts contract, padded width pad16(width).
void mlp_half_layered_forward(const MlpParams& p);
void mlp_half_layered_backward(const MlpParams& p);
std::string mlp_half_layered_plan(const MlpConfig& c, int64_t n);
#endif

}  // namespace train
}  // namespace dyntet
