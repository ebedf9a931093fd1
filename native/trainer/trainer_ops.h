// Local per-element ops the Trainer needs before the shared ones land: tetrahedral grid and
// marching tets (to be replaced by native/core/grid.h + marching_tets.h), MLP/hash-grid
// backward (native/train), rasterise/antialias forward+backward (native/raster).
// REPLACE-WHEN-AVAILABLE: each block below names the header it stands in for.
#pragma once
#include <cmath>
#include <cstdint>
#include "../core/model.h"

namespace dyntet {
namespace tops {

// ---- grid (stands in for native/core/grid.h) -----------------------------------------------
// Vertex (x,y,z) of an R^3 cube lattice has index x + (R+1)(y + (R+1) z). Each cube is split
// into 6 tetrahedra along its main diagonal (Kuhn split), which conforms across cubes.
DT_HD void tet_vertices(int R, int64_t tet, int v[4]) {
  const int k = (int)(tet % 6);
  int64_t c = tet / 6;
  const int x = (int)(c % R); c /= R;
  const int y = (int)(c % R);
  const int z = (int)(c / R);
  // Axis orders of the 6 permutations.
  const int perm[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
  int p[3] = {x, y, z};
  const int n = R + 1;
  v[0] = p[0] + n * (p[1] + n * p[2]);
  for (int s = 0; s < 3; ++s) {
    p[perm[k][s]] += 1;
    v[s + 1] = p[0] + n * (p[1] + n * p[2]);
  }
}

DT_HD void grid_position(int R, const float* bmin, const float* bmax, int v, float p[3], float u[3]) {
  const int n = R + 1;
  const int idx[3] = {v % n, (v / n) % n, v / (n * n)};
  for (int a = 0; a < 3; ++a) {
    u[a] = (float)idx[a] / (float)R;
    p[a] = bmin[a] + u[a] * (bmax[a] - bmin[a]);
  }
}

// ---- marching tets (stands in for native/core/marching_tets.h) -----------------------------
// Emits up to two triangles per tetrahedron; each corner is a grid edge (a, b) whose SDF
// changes sign, the surface point at t = s_a / (s_a - s_b).
DT_HD int marching_tet(const int v[4], const float s[4], int tri[2][3][2]) {
  int in[4], out[4], ni = 0, no = 0;
  for (int k = 0; k < 4; ++k) { if (s[k] < 0.f) in[ni++] = k; else out[no++] = k; }
  if (ni == 0 || ni == 4) return 0;
  if (ni == 1 || ni == 3) {
    const int lone = ni == 1 ? in[0] : out[0];
    const int* others = ni == 1 ? out : in;
    for (int c = 0; c < 3; ++c) { tri[0][c][0] = v[lone]; tri[0][c][1] = v[others[c]]; }
    return 1;
  }
  // Quad (in0,out0) (in0,out1) (in1,out1) (in1,out0) as two triangles.
  const int q[4][2] = {{in[0], out[0]}, {in[0], out[1]}, {in[1], out[1]}, {in[1], out[0]}};
  const int t0[3] = {0, 1, 2}, t1[3] = {0, 2, 3};
  for (int c = 0; c < 3; ++c) {
    tri[0][c][0] = v[q[t0[c]][0]]; tri[0][c][1] = v[q[t0[c]][1]];
    tri[1][c][0] = v[q[t1[c]][0]]; tri[1][c][1] = v[q[t1[c]][1]];
  }
  return 2;
}

DT_HD float edge_t(float sa, float sb) {
  const float d = sa - sb;
  return fabsf(d) < 1e-12f ? 0.5f : sa / d;
}

// ---- small atomics ----------------------------------------------------------------------------
DT_HD int atomic_inc(int* p) {
#if defined(__CUDA_ARCH__)
  return atomicAdd(p, 1);
#else
  return (*p)++;
#endif
}

DT_HD void atomic_min_u64(unsigned long long* p, unsigned long long v) {
#if defined(__CUDA_ARCH__)
  atomicMin(p, v);
#else
  if (v < *p) *p = v;
#endif
}

// Atomic add for per-sample gradients of shared weights: on CUDA, when the whole warp adds to the
// same address (the MLP weight loops), the warp sums first and one lane adds, 32x fewer atomics.
DT_HD void atomic_add_shared(float* p, float v) {
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

DT_HD float act_grad_from_output(int act, float y) {
  switch (act) {
    case kActReLU: return y > 0.f ? 1.f : 0.f;
    case kActLeakyReLU: return y > 0.f ? 1.f : kLeakySlope;
    case kActSigmoid: return y * (1.f - y);
    case kActTanh: return 1.f - y * y;
    default: return 1.f;
  }
}

// ---- MLP backward (stands in for native/train's MLP op) ------------------------------------
constexpr int kMaxLayers = 6;

// Forward that keeps every layer's output: acts[0] = input, acts[k+1] = layer k's output.
DT_HD void mlp_forward_keep(const MlpConfig& c, const float* params, const float* x, float acts[][kMaxWidth]) {
  for (int i = 0; i < c.in; ++i) acts[0][i] = x[i];
  const float* p = params;
  const int n_layers = mlp_layer_count(c);
  for (int k = 0; k < n_layers; ++k) {
    const int n_in = mlp_layer_in(c, k), n_out = mlp_layer_out(c, k);
    const float* bias = p + (size_t)n_out * n_in;
    const int act = k == n_layers - 1 ? c.out_act : c.hidden_act;
    for (int o = 0; o < n_out; ++o) {
      float acc = bias[o];
      const float* w = p + (size_t)o * n_in;
      for (int i = 0; i < n_in; ++i) acc += w[i] * acts[k][i];
      acts[k + 1][o] = activate(act, acc);
    }
    p = bias + n_out;
  }
}

// g_out: dL/d output (c.out values, overwritten). Adds parameter gradients atomically; writes
// dL/d input into g_in when non-null.
DT_HD void mlp_backward(const MlpConfig& c, const float* params, float acts[][kMaxWidth], float* g_out,
                        float* g_params, float* g_in) {
  const int n_layers = mlp_layer_count(c);
  size_t offs[kMaxLayers + 1];
  offs[0] = 0;
  for (int k = 0; k < n_layers; ++k)
    offs[k + 1] = offs[k] + (size_t)mlp_layer_out(c, k) * (mlp_layer_in(c, k) + 1);
  float gbuf[2][kMaxWidth];
  float* g = gbuf[0];
  for (int o = 0; o < c.out; ++o) g[o] = g_out[o];
  int cur = 0;
  for (int k = n_layers - 1; k >= 0; --k) {
    const int n_in = mlp_layer_in(c, k), n_out = mlp_layer_out(c, k);
    const int act = k == n_layers - 1 ? c.out_act : c.hidden_act;
    const float* W = params + offs[k];
    float* gW = g_params + offs[k];
    float* gb = gW + (size_t)n_out * n_in;
    float* gn = gbuf[cur ^ 1];
    for (int i = 0; i < n_in; ++i) gn[i] = 0.f;
    for (int o = 0; o < n_out; ++o) {
      const float gp = gbuf[cur][o] * act_grad_from_output(act, acts[k + 1][o]);
#if !defined(__CUDA_ARCH__)
      if (gp == 0.f) continue;  // (on the GPU a uniform loop keeps warps converged instead)
#endif
      atomic_add_shared(gb + o, gp);
      for (int i = 0; i < n_in; ++i) {
        atomic_add_shared(gW + (size_t)o * n_in + i, gp * acts[k][i]);
        gn[i] += W[(size_t)o * n_in + i] * gp;
      }
    }
    cur ^= 1;
  }
  if (g_in)
    for (int i = 0; i < c.in; ++i) g_in[i] = gbuf[cur][i];
}

// ---- hash grid backward (stands in for native/train's hash-grid op) --------------------------
DT_HD void hashgrid_backward(const HashGridConfig& cfg, const HashLevel* levels, const float u[3],
                             const float* g_out, float* g_params) {
  const uint32_t T = 1u << cfg.log2_table;
  for (int l = 0; l < cfg.levels; ++l) {
    const HashCell cell = hashgrid_cell(levels[l], u);
    for (int corner = 0; corner < 8; ++corner) {
      const uint32_t idx = hashgrid_index(levels[l], T - 1, cell.i0[0] + (corner & 1),
                                          cell.i0[1] + ((corner >> 1) & 1), cell.i0[2] + ((corner >> 2) & 1));
      const float w = hashgrid_corner_weight(cell, corner);
      float* e = g_params + ((size_t)l * T + idx) * cfg.features;
      for (int f = 0; f < cfg.features; ++f) {
        const float g = w * g_out[l * cfg.features + f];
        if (g != 0.f) atomic_add(e + f, g);
      }
    }
  }
}

// ---- antialias geometry (stands in for native/raster's antialias op) -------------------------
// Where the segment from the centre of covered pixel C towards its uncovered neighbour (unit step
// `sign` along axis a) leaves triangle corners P[3][2]: s in (0,1], and ds/d(corner coords).
DT_HD bool aa_exit(const float P[3][2], float cx, float cy, int a, float sign, float* s_out, float ds[3][2]) {
  const float C[2] = {cx, cy};
  const int b = 1 - a;
  float best = 2.f;
  int be = -1;
  float br = 0.f;
  for (int e = 0; e < 3; ++e) {
    const float* A = P[e];
    const float* B = P[(e + 1) % 3];
    const float h = B[b] - A[b];
    if (fabsf(h) < 1e-12f) continue;
    const float r = (C[b] - A[b]) / h;
    if (r < 0.f || r > 1.f) continue;
    const float s = (A[a] + r * (B[a] - A[a]) - C[a]) * sign;
    if (s > 0.f && s < best) { best = s; be = e; br = r; }
  }
  if (be < 0 || best > 1.f) return false;
  for (int k = 0; k < 3; ++k) ds[k][0] = ds[k][1] = 0.f;
  const int ia = be, ib = (be + 1) % 3;
  const float h = P[ib][b] - P[ia][b];
  const float dsdr = sign * (P[ib][a] - P[ia][a]);
  ds[ia][a] += sign * (1.f - br);
  ds[ib][a] += sign * br;
  ds[ia][b] += dsdr * (br - 1.f) / h;
  ds[ib][b] += dsdr * (-br / h);
  *s_out = best;
  return true;
}

}  // namespace tops
}  // namespace dyntet
