// Half-precision tensor-core MLP kernels (the opt-in MlpCudaPath::Half and HalfLayered of mlp.h).
// Internal to native/train: mlp_forward / mlp_backward dispatch here. Two forms, the Half path
// picking by shape:
// - Fused kernels, for nets up to 128 wide with at most 16 outputs whose backward tile fits two
//   8-warp blocks per SM (the 2x64 texture and the 64-wide deformation). Products on tensor cores
//   (mma.sync m16n8k16: fp16 operands, fp32 accumulation) the way tiny-cuda-nn's fully fused MLP
//   works: a warp owns 16 points and carries their activations from layer to layer in registers
//   (an accumulator fragment, once rounded to fp16, is the next layer's operand fragment); the
//   weights of every layer sit in shared memory as fp16. The backward is one kernel: a block takes
//   16 points per warp per step, recomputes the forward (or reads the saved fp16 activations),
//   keeps the tile's input and hidden outputs in shared memory and per layer from the last sums
//   the weight gradient G^T X over its tiles in fp32 shared memory and forms G W in registers.
// - The layered form, for every other net up to 256 wide (2x128 SDF and deformation, 5x128,
//   5x256): one GEMM launch per layer over chunks of rows, fp16 activations in global memory, the
//   weight gradient per layer in tiles of at most 128 x 128 (mlp_half.cpp).
// Biases are added in fp32 (the accumulators start from them), activations run in fp32 (model.h's
// activate) and are rounded to fp16 as the next layer's operand. Weight gradients go into one row
// of partial sums per block (or row slice), added in order into g_params by a last kernel (no
// atomics: schedule-independent).
// Precision: every operand is rounded to fp16 (unit roundoff 2^-11, like TF32's 10-bit mantissa,
// and fp16's narrower exponent: magnitudes below 6e-5 lose relative precision; the backward scales
// the output gradient by a power of two against that); checked against the CPU reference with the
// TF32 tolerances (tests/check_cuda.cpp).
#pragma once
#include "mlp.h"

namespace dyntet {
namespace train {

// True when the fused half kernels take this config (up to 128 wide, <= 16 outputs, the backward
// tile within half an SM's shared memory).
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
