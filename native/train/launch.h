// One source, two backends. Training ops are written as per-element DT_HD lambdas and launched
// with launch_1d(): a plain CPU loop in the reference build, a CUDA kernel when the same .cpp file
// is compiled by nvcc (CMake marks the op sources LANGUAGE CUDA in the CUDA build). Results must
// not depend on the order elements run in, except through atomics on floats (documented per op).
#pragma once
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <utility>
#include "../core/common.h"

#if defined(__CUDACC__)
#include <cuda_runtime.h>
#define DT_LAMBDA __host__ __device__
#else
#define DT_LAMBDA
#endif

namespace dyntet {

enum class Backend : int { CPU = 0, CUDA = 1 };

// Thrown for CUDA failures (no driver, no device, out of memory) with cudaGetErrorString's text.
struct BackendError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

#if defined(__CUDACC__)
inline void cuda_check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw BackendError(std::string(what) + ": " + cudaGetErrorString(e));
}

template <class F>
__global__ void launch_1d_kernel(int64_t n, F f) {
  const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) f(i);
}
#endif

template <class F>
void launch_1d(Backend b, int64_t n, F f) {
  if (n <= 0) return;
#if defined(__CUDACC__)
  if (b == Backend::CUDA) {
    const int block = 128;
    launch_1d_kernel<<<(unsigned)((n + block - 1) / block), block>>>(n, f);
    cuda_check(cudaGetLastError(), "kernel launch");
    return;
  }
#else
  if (b == Backend::CUDA) throw BackendError("this build has no CUDA support: rebuild the addon with CUDA (nvcc on PATH) or use the CPU backend");
#endif
  for (int64_t i = 0; i < n; ++i) f(i);
}

// Atomics usable from per-element code on both backends (the CPU loop is serial, so there they
// are plain read-modify-writes). Float sums through them depend on the CUDA schedule in their
// last bits; integer ones do not.

// Float (and double) atomic add.
DT_HD void atomic_add(float* p, float v) {
#if defined(__CUDA_ARCH__)
  atomicAdd(p, v);
#else
  *p += v;
#endif
}
DT_HD void atomic_add(double* p, double v) {
#if defined(__CUDA_ARCH__)
  atomicAdd(p, v);
#else
  *p += v;
#endif
}

// Float atomic add for loops in which every thread of a warp adds to the same address at the same
// time (per-point MLP weight gradients: all points walk the weights in one order). On CUDA, when
// the whole warp is converged on one address, the warp sums first and one lane adds (32x fewer
// atomics); otherwise each thread adds. Same result as atomic_add up to the order of float sums.
DT_HD void atomic_add_warp(float* p, float v) {
#if defined(__CUDA_ARCH__)
  const unsigned active = __activemask();
  if (active == 0xffffffffu && __match_any_sync(active, (unsigned long long)p) == active) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(active, v, o);
    if ((threadIdx.x & 31) == 0) atomicAdd(p, v);
  } else {
    atomicAdd(p, v);
  }
#else
  *p += v;
#endif
}

// Float adds from the lanes of a warp that mostly share a few targets (per-pixel gradients of a
// triangle's corners: neighbouring pixels of a warp lie on one or a few triangles, and every add
// to one address serialises). On CUDA the active lanes are grouped by `key` once; add() then sums
// each group's values with five shuffles (a tree over the group's ranks) and the group's first
// lane adds once. All lanes of a group must call add() with the same address. On the CPU, plain
// adds. Same result as atomic_add up to the order of float sums.
class WarpGroup {
 public:
  DT_HD explicit WarpGroup(long long key) {
#if defined(__CUDA_ARCH__)
    active_ = __activemask();
    const unsigned peers = __match_any_sync(active_, (unsigned long long)key);
    const int lane = threadIdx.x & 31;
    rank_ = __popc(peers & ((1u << lane) - 1u));
    const int size = __popc(peers);
    for (int k = 0; k < 5; ++k) {
      const int want = rank_ + (1 << k);
      src_[k] = lane;
      take_[k] = want < size && (rank_ & ((2 << k) - 1)) == 0;
      if (want < size) {
        unsigned m = peers;
        for (int j = 0; j < want; ++j) m &= m - 1u;  // drop the lowest `want` lanes
        src_[k] = __ffs(m) - 1;
      }
    }
#else
    (void)key;
#endif
  }
  DT_HD void add(float* p, float v) const {
#if defined(__CUDA_ARCH__)
    for (int k = 0; k < 5; ++k) {
      const float t = __shfl_sync(active_, v, src_[k]);
      if (take_[k]) v += t;
    }
    if (rank_ == 0 && v != 0.f) atomicAdd(p, v);
#else
    *p += v;
#endif
  }

 private:
#if defined(__CUDA_ARCH__)
  unsigned active_ = 0;
  int rank_ = 0;
  int src_[5] = {0, 0, 0, 0, 0};
  bool take_[5] = {false, false, false, false, false};
#endif
};

// Integer atomic add; returns the previous value (slot allocation, counters).
DT_HD int atomic_add_int(int* p, int v) {
#if defined(__CUDA_ARCH__)
  return atomicAdd(p, v);
#else
  const int old = *p;
  *p += v;
  return old;
#endif
}

// Atomic minimum of a 64-bit key (depth-buffer visibility: (depth bits << 32) | triangle id).
DT_HD void atomic_min_u64(unsigned long long* p, unsigned long long v) {
#if defined(__CUDA_ARCH__)
  atomicMin(p, v);
#else
  if (v < *p) *p = v;
#endif
}

// A device or host array owned by one backend.
template <class T>
class Buffer {
 public:
  Buffer() = default;
  Buffer(Backend b, size_t n) { resize(b, n); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  Buffer(Buffer&& o) noexcept { swap(o); }
  Buffer& operator=(Buffer&& o) noexcept { swap(o); return *this; }
  ~Buffer() { release(); }

  void resize(Backend b, size_t n) {
    release();
    backend_ = b;
    size_ = n;
    if (n == 0) return;
    if (b == Backend::CUDA) {
#if defined(__CUDACC__)
      cuda_check(cudaMalloc(&data_, n * sizeof(T)), "cudaMalloc");
      cuda_check(cudaMemset(data_, 0, n * sizeof(T)), "cudaMemset");
#else
      throw BackendError("this build has no CUDA support: rebuild the addon with CUDA (nvcc on PATH) or use the CPU backend");
#endif
    } else {
      data_ = new T[n]();
    }
  }
  // Grow-only scratch: at least n elements on backend b (reallocated, zeroed, when smaller or on
  // another backend; otherwise kept as is). Returns data().
  T* reserve(Backend b, size_t n) {
    if (size_ < n || backend_ != b) resize(b, n);
    return data_;
  }
  void zero() {
    if (!size_) return;
#if defined(__CUDACC__)
    if (backend_ == Backend::CUDA) { cuda_check(cudaMemset(data_, 0, size_ * sizeof(T)), "cudaMemset"); return; }
#endif
    std::memset(data_, 0, size_ * sizeof(T));
  }
  void upload(const T* src, size_t n) {
    if (n > size_) throw std::out_of_range("Buffer::upload larger than the buffer");
#if defined(__CUDACC__)
    if (backend_ == Backend::CUDA) { cuda_check(cudaMemcpy(data_, src, n * sizeof(T), cudaMemcpyHostToDevice), "cudaMemcpy"); return; }
#endif
    std::memcpy(data_, src, n * sizeof(T));
  }
  void download(T* dst, size_t n) const {
    if (n > size_) throw std::out_of_range("Buffer::download larger than the buffer");
#if defined(__CUDACC__)
    if (backend_ == Backend::CUDA) { cuda_check(cudaMemcpy(dst, data_, n * sizeof(T), cudaMemcpyDeviceToHost), "cudaMemcpy"); return; }
#endif
    std::memcpy(dst, data_, n * sizeof(T));
  }
  T* data() { return data_; }
  const T* data() const { return data_; }
  size_t size() const { return size_; }
  Backend backend() const { return backend_; }

 private:
  void release() {
    if (!data_) return;
#if defined(__CUDACC__)
    if (backend_ == Backend::CUDA) cudaFree(data_); else delete[] data_;
#else
    delete[] data_;
#endif
    data_ = nullptr;
    size_ = 0;
  }
  void swap(Buffer& o) {
    std::swap(data_, o.data_); std::swap(size_, o.size_); std::swap(backend_, o.backend_);
  }
  T* data_ = nullptr;
  size_t size_ = 0;
  Backend backend_ = Backend::CPU;
};

}  // namespace dyntet
