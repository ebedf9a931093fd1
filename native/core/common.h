// Shared conventions of the DynTet C++ core. Every file under native/core compiles three ways:
// natively for the trainer and tests, with nvcc for CUDA kernels, and with emscripten for the
// player. Per-element math is written once as DT_HD functions and launched by a CPU loop or a
// CUDA kernel; nothing here may allocate or throw inside a DT_HD function.
#pragma once
#include <cstdint>
#include <cstddef>

#if defined(__CUDACC__)
#define DT_HD __host__ __device__ __forceinline__
#else
#define DT_HD inline
#endif

namespace dyntet {

struct float3_ { float x, y, z; };

DT_HD float clampf(float v, float lo, float hi) { return v < lo ? lo : (v > hi ? hi : v); }

}  // namespace dyntet
