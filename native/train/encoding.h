// Input encodings of model.h with their backward passes: the multiresolution hash grid (gradients
// to the table and to the input position) and the frequency encoding (gradient to the position).
//
// CUDA note: hashgrid_backward scatters into the table gradient with float atomicAdd, so on CUDA
// the summation order (and the last bits of g_table) varies from run to run; the CPU loop is
// serial and deterministic. Compare the two within a tolerance, never bit for bit. For 1, 2 or 4
// features the CUDA passes are level-major kernels (encoding.cpp: one level's table in L2 at a
// time, vector loads and atomics); there d/du is summed per point in the CPU loop's order.
// With a saved Jacobian (HashGridParams::jac) d/du is summed in another order than without (sum
// over features after the corners), so the two paths agree up to float rounding.
#pragma once
#include "ops_common.h"

namespace dyntet {
namespace train {

constexpr int kMaxHashLevels = 32;

// A validated config with its level table, small enough to pass by value into kernels.
struct HashGrid {
  HashGridConfig cfg;
  HashLevel levels[kMaxHashLevels];
  int out_dim() const { return cfg.levels * cfg.features; }
  size_t param_count() const { return hashgrid_param_count(cfg); }
};
HashGrid make_hashgrid(const HashGridConfig& cfg);

struct HashGridParams {
  HashGrid grid;
  int64_t n = 0;
  const float* u = nullptr;      // n x 3 normalised positions
  const float* table = nullptr;  // grid.param_count()
  float* out = nullptr;          // forward: n rows of out_dim (row_stride apart)
  const float* g_out = nullptr;  // backward: n rows of out_dim (row_stride apart)
  float* g_table = nullptr;      // backward, accumulated; may be null
  float* g_u = nullptr;          // backward, written; may be null
  // Optional saved Jacobian, hashgrid_jac_count(grid, n) floats on the backend. The forward writes
  // d(out)/du into it; the backward, given the same buffer, takes d/du from it instead of gathering
  // the 8 table entries per point and level again (the table-gradient atomics stay). Contract: u,
  // table and n unchanged in between. Layout: hashgrid_jac_count.
  float* jac = nullptr;
  // Floats from one point's row of out / g_out to the next (0: out_dim). Lets the encoding fill the
  // first out_dim columns of wider rows, such as an MLP's input rows with more inputs after it.
  int64_t row_stride = 0;
  int64_t stride() const { return row_stride > 0 ? row_stride : grid.out_dim(); }
};
// Saved-Jacobian size. Entry (point i, level l, axis a, feature f) is jac[((l * 3 + a) * n + i) * F + f]:
// per (level, axis) a block of n rows, so neighbouring points (threads) use neighbouring addresses.
inline size_t hashgrid_jac_count(const HashGrid& g, int64_t n) { return (size_t)n * g.cfg.levels * 3 * g.cfg.features; }
void hashgrid_forward(Backend b, const HashGridParams& p);
void hashgrid_backward(Backend b, const HashGridParams& p);

struct FreqParams {
  int n_freq = 6;
  int64_t n = 0;
  const float* u = nullptr;      // n x 3
  float* out = nullptr;          // forward: n x freq_encoding_size(n_freq)
  const float* g_out = nullptr;  // backward: n x freq_encoding_size(n_freq)
  float* g_u = nullptr;          // backward, written
};
void freq_forward(Backend b, const FreqParams& p);
void freq_backward(Backend b, const FreqParams& p);

// Level l of model.h's hashgrid_encode (the same arithmetic, so the same bits): its `features`
// outputs (features <= 8). Lets a kernel give each thread one level, so that neighbouring
// threads write neighbouring outputs of a row.
DT_HD void hashgrid_encode_level(const HashGridConfig& cfg, const HashLevel& lv, int l, const float* params,
                                 const float u[3], float* out) {
  const uint32_t T = 1u << cfg.log2_table;
  const HashCell cell = hashgrid_cell(lv, u);
  float acc[8];
  for (int f = 0; f < cfg.features; ++f) acc[f] = 0.f;
  for (int corner = 0; corner < 8; ++corner) {
    const uint32_t idx = hashgrid_index(lv, T - 1, cell.i0[0] + (corner & 1), cell.i0[1] + ((corner >> 1) & 1),
                                        cell.i0[2] + ((corner >> 2) & 1));
    const float w = hashgrid_corner_weight(cell, corner);
    const float* e = params + ((size_t)l * T + idx) * cfg.features;
    for (int f = 0; f < cfg.features; ++f) acc[f] += w * e[f];
  }
  for (int f = 0; f < cfg.features; ++f) out[f] = acc[f];
}

// d/du[a] (a = 0..2) of one level's output feature, from its cell and the feature's values v[c] at
// the 8 corners: the derivative of hashgrid_encode_level, in hashgrid_backward_point's convention
// (hashgrid_cell clamps u to [0,1], so d frac/du = res inside (0,1) and 0 outside). The one
// definition of the saved Jacobian, for the CPU loop and the CUDA kernels alike.
DT_HD void hashgrid_level_jacobian(const HashLevel& lv, const HashCell& cell, const float u[3], const float v[8], float d[3]) {
  for (int a = 0; a < 3; ++a) {
    const float dfrac = (u[a] > 0.f && u[a] < 1.f) ? (float)lv.res : 0.f;
    float s = 0.f;
    for (int corner = 0; corner < 8; ++corner) {
      float dw = ((corner >> a) & 1) ? 1.f : -1.f;
      for (int b2 = 0; b2 < 3; ++b2)
        if (b2 != a) dw *= ((corner >> b2) & 1) ? cell.frac[b2] : 1.f - cell.frac[b2];
      s += dw * v[corner];
    }
    d[a] = s * dfrac;
  }
}

// All levels' Jacobians of one point into jac_i = jac + i * F (rows `stride` = n * F apart), any F.
DT_HD void hashgrid_jacobian_point(const HashGrid& g, const float* table, const float u[3], float* jac_i, int64_t stride) {
  const HashGridConfig& c = g.cfg;
  const uint32_t T = 1u << c.log2_table;
  for (int l = 0; l < c.levels; ++l) {
    const HashLevel lv = g.levels[l];
    const HashCell cell = hashgrid_cell(lv, u);
    size_t base[8];
    for (int corner = 0; corner < 8; ++corner)
      base[corner] = ((size_t)l * T + hashgrid_index(lv, T - 1, cell.i0[0] + (corner & 1), cell.i0[1] + ((corner >> 1) & 1),
                                                     cell.i0[2] + ((corner >> 2) & 1))) * c.features;
    for (int f = 0; f < c.features; ++f) {
      float v[8], d[3];
      for (int corner = 0; corner < 8; ++corner) v[corner] = table[base[corner] + f];
      hashgrid_level_jacobian(lv, cell, u, v, d);
      for (int a = 0; a < 3; ++a) jac_i[(l * 3 + a) * stride + f] = d[a];
    }
  }
}

// Writes d/du of one point (3 values) from its saved Jacobian (as above) and g_out (out_dim
// values): levels, then features, the order of the CUDA kernel.
DT_HD void hashgrid_du_from_jacobian(const HashGridConfig& c, const float* g_out, const float* jac_i, int64_t stride, float g_u[3]) {
  float gu[3] = {0.f, 0.f, 0.f};
  for (int l = 0; l < c.levels; ++l)
    for (int a = 0; a < 3; ++a)
      for (int f = 0; f < c.features; ++f) gu[a] += g_out[l * c.features + f] * jac_i[(l * 3 + a) * stride + f];
  for (int a = 0; a < 3; ++a) g_u[a] = gu[a];
}

// Per-element backward math, usable inside other ops' kernels.
// Adds table gradients (atomically) and, if g_u is non-null, writes d/du (3 values).
DT_HD void hashgrid_backward_point(const HashGrid& g, const float* table, const float u[3], const float* g_out,
                                   float* g_table, float* g_u) {
  const HashGridConfig& c = g.cfg;
  const uint32_t T = 1u << c.log2_table;
  float gu[3] = {0.f, 0.f, 0.f};
  for (int l = 0; l < c.levels; ++l) {
    const HashLevel lv = g.levels[l];
    const HashCell cell = hashgrid_cell(lv, u);
    // hashgrid_cell clamps u to [0,1]: outside that range the encoding is constant along the axis.
    float dfrac[3];
    for (int a = 0; a < 3; ++a) dfrac[a] = (u[a] > 0.f && u[a] < 1.f) ? (float)lv.res : 0.f;
    const float* go = g_out + l * c.features;
    for (int corner = 0; corner < 8; ++corner) {
      const uint32_t idx = hashgrid_index(lv, T - 1, cell.i0[0] + (corner & 1), cell.i0[1] + ((corner >> 1) & 1),
                                          cell.i0[2] + ((corner >> 2) & 1));
      const size_t base = ((size_t)l * T + idx) * c.features;
      if (g_table) {
        const float w = hashgrid_corner_weight(cell, corner);
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
        // Two features per entry (the default): one 8-byte vector atomic instead of two.
        if (c.features == 2 && ((reinterpret_cast<uintptr_t>(g_table) & 7u) == 0)) {
          if (go[0] != 0.f || go[1] != 0.f)
            atomicAdd(reinterpret_cast<float2*>(g_table + base), make_float2(w * go[0], w * go[1]));
        } else
#endif
        for (int f = 0; f < c.features; ++f)
          if (go[f] != 0.f) atomic_add(g_table + base + f, w * go[f]);
      }
      if (g_u) {
        float dot = 0.f;  // sum_f g_out[f] * e[f]
        for (int f = 0; f < c.features; ++f) dot += go[f] * table[base + f];
        for (int a = 0; a < 3; ++a) {
          float dw = ((corner >> a) & 1) ? 1.f : -1.f;
          for (int b2 = 0; b2 < 3; ++b2)
            if (b2 != a) dw *= ((corner >> b2) & 1) ? cell.frac[b2] : 1.f - cell.frac[b2];
          gu[a] += dot * dw * dfrac[a];
        }
      }
    }
  }
  if (g_u)
    for (int a = 0; a < 3; ++a) g_u[a] = gu[a];
}

// Writes d/du of freq_encode (3 values) from g_out (freq_encoding_size values).
DT_HD void freq_backward_point(int n_freq, const float u[3], const float* g_out, float g_u[3]) {
  const float pi = 3.14159265358979f;
  for (int a = 0; a < 3; ++a) {
    const float x = 2.f * u[a] - 1.f;
    float gx = g_out[a];
    for (int k = 0; k < n_freq; ++k) {
      const float s = (float)(1 << k) * pi;
      gx += s * (g_out[3 + 6 * k + a] * cosf(s * x) - g_out[3 + 6 * k + 3 + a] * sinf(s * x));
    }
    g_u[a] = 2.f * gx;
  }
}

}  // namespace train
}  // namespace dyntet
