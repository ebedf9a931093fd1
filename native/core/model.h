// The DynTet model, forward math: the single source of truth for what a trained avatar computes.
// The trainer (CPU loops and CUDA kernels), the CPU reference renderer (native and WASM) and the
// WGSL shaders of the player all implement exactly these formulas; the WGSL is checked against
// this file through the reference renderer. Backward passes live beside their forward in
// native/train and must differentiate exactly what is written here.
//
// Spaces and units
//   canonical face space: MediaPipe's canonical face model space, centimetres.
//   box: an axis-aligned box in that space; u = (p - box_min) / (box_max - box_min) in [0,1]^3 is
//        the normalised position every encoding takes.
//   pose: column-major 4x4 (MediaPipe's facial transformation matrix), face space -> camera space
//        in cm, camera looking down -z, +y up.
//   image: pixel (0,0) is the top-left corner; pixel centres are at +0.5.
#pragma once
#include <cmath>
#include "common.h"

namespace dyntet {

constexpr int kNumBlendshapes = 52;  // MediaPipe FaceLandmarker order; index 0 is "_neutral"
constexpr int kPoseSize = 16;
constexpr int kMaxWidth = 256;       // widest MLP layer or input a DT_HD function handles

enum Activation : int { kActNone = 0, kActReLU = 1, kActLeakyReLU = 2, kActSigmoid = 3, kActTanh = 4 };
constexpr float kLeakySlope = 0.01f;

DT_HD float activate(int act, float x) {
  switch (act) {
    case kActReLU: return x > 0.f ? x : 0.f;
    case kActLeakyReLU: return x > 0.f ? x : kLeakySlope * x;
    case kActSigmoid: return 1.f / (1.f + expf(-x));
    case kActTanh: return tanhf(x);
    default: return x;
  }
}

// ---------------------------------------------------------------------------------------------
// Multiresolution hash grid (Instant-NGP style), 3D.
//   Level l has integer resolution res[l] (host-computed: floor(base * b^l),
//   b = exp((ln finest - ln base) / (L - 1)), in double) and (res+1)^3 lattice points. A level
//   whose lattice fits the table (dense) is indexed directly, otherwise spatially hashed.
//   Table layout: params[((l * T) + index) * F + f], T = 2^log2_table.
//   Output layout: out[l * F + f].
struct HashGridConfig {
  int levels = 16;
  int features = 2;
  int log2_table = 15;
  int base_res = 16;
  int finest_res = 1024;
};

struct HashLevel {
  uint32_t res;
  uint32_t dense;  // 1 if (res+1)^3 <= T
};

inline void hashgrid_levels(const HashGridConfig& c, HashLevel* out) {
  const double b = c.levels > 1 ? std::exp((std::log((double)c.finest_res) - std::log((double)c.base_res)) / (c.levels - 1)) : 1.0;
  const uint64_t T = 1ull << c.log2_table;
  for (int l = 0; l < c.levels; ++l) {
    uint32_t res = (uint32_t)std::floor(c.base_res * std::pow(b, (double)l) + 1e-6);
    if (res < 1) res = 1;
    const uint64_t n = (uint64_t)res + 1;
    out[l] = HashLevel{res, n * n * n <= T ? 1u : 0u};
  }
}

inline size_t hashgrid_param_count(const HashGridConfig& c) {
  return (size_t)c.levels * ((size_t)1 << c.log2_table) * (size_t)c.features;
}

DT_HD uint32_t hashgrid_index(HashLevel lv, uint32_t table_mask, uint32_t x, uint32_t y, uint32_t z) {
  if (lv.dense) {
    const uint32_t n = lv.res + 1;
    return x + n * (y + n * z);
  }
  return (x * 1u ^ y * 2654435761u ^ z * 805459861u) & table_mask;
}

// Cell and trilinear weights of u (clamped to [0,1]) in a level: corner c (bit 0 = x, 1 = y, 2 = z).
struct HashCell {
  uint32_t i0[3];
  float frac[3];
};

DT_HD HashCell hashgrid_cell(HashLevel lv, const float u[3]) {
  HashCell c;
  for (int a = 0; a < 3; ++a) {
    const float pos = clampf(u[a], 0.f, 1.f) * (float)lv.res;
    float fl = floorf(pos);
    if (fl > (float)lv.res - 1.f) fl = (float)lv.res - 1.f;
    c.i0[a] = (uint32_t)fl;
    c.frac[a] = pos - fl;
  }
  return c;
}

DT_HD float hashgrid_corner_weight(const HashCell& c, int corner) {
  float w = 1.f;
  for (int a = 0; a < 3; ++a) w *= ((corner >> a) & 1) ? c.frac[a] : 1.f - c.frac[a];
  return w;
}

DT_HD void hashgrid_encode(const HashGridConfig& cfg, const HashLevel* levels, const float* params,
                           const float u[3], float* out) {
  const uint32_t T = 1u << cfg.log2_table;
  for (int l = 0; l < cfg.levels; ++l) {
    const HashCell cell = hashgrid_cell(levels[l], u);
    for (int f = 0; f < cfg.features; ++f) out[l * cfg.features + f] = 0.f;
    for (int corner = 0; corner < 8; ++corner) {
      const uint32_t idx = hashgrid_index(levels[l], T - 1, cell.i0[0] + (corner & 1),
                                          cell.i0[1] + ((corner >> 1) & 1), cell.i0[2] + ((corner >> 2) & 1));
      const float w = hashgrid_corner_weight(cell, corner);
      const float* e = params + ((size_t)l * T + idx) * cfg.features;
      for (int f = 0; f < cfg.features; ++f) out[l * cfg.features + f] += w * e[f];
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Frequency encoding of u: x = 2u - 1, out = [x, then for k = 0..n-1: sin(2^k pi x) (3 values),
// cos(2^k pi x) (3 values)]. Size 3 + 6n.
DT_HD int freq_encoding_size(int n_freq) { return 3 + 6 * n_freq; }

// Element j of the encoding alone (one GPU thread per element writes the rows coalesced).
DT_HD float freq_encode_element(const float u[3], int j) {
  if (j < 3) return 2.f * u[j] - 1.f;
  const int k = (j - 3) / 6, r = j - 3 - 6 * k, a = r < 3 ? r : r - 3;
  const float x = (float)(1 << k) * 3.14159265358979f * (2.f * u[a] - 1.f);
  return r < 3 ? sinf(x) : cosf(x);
}

DT_HD void freq_encode(int n_freq, const float u[3], float* out) {
  for (int j = 0; j < freq_encoding_size(n_freq); ++j) out[j] = freq_encode_element(u, j);
}

// ---------------------------------------------------------------------------------------------
// Multilayer perceptron. Layers: in -> width (hidden_layers times, width -> width after the first)
// -> out; with hidden_layers = 0 a single in -> out layer. Parameters per layer: W[out][in]
// row-major, then b[out]; layers concatenated in order.
struct MlpConfig {
  int in = 32;
  int width = 64;
  int hidden_layers = 2;
  int out = 3;
  int hidden_act = kActReLU;
  int out_act = kActNone;
};

DT_HD int mlp_layer_count(const MlpConfig& c) { return c.hidden_layers + 1; }
DT_HD int mlp_layer_in(const MlpConfig& c, int k) { return k == 0 ? c.in : c.width; }
DT_HD int mlp_layer_out(const MlpConfig& c, int k) { return k == c.hidden_layers ? c.out : c.width; }

inline size_t mlp_param_count(const MlpConfig& c) {
  size_t n = 0;
  for (int k = 0; k < mlp_layer_count(c); ++k) n += (size_t)mlp_layer_out(c, k) * (mlp_layer_in(c, k) + 1);
  return n;
}

// x has c.in values, out gets c.out values. Uses two on-stack buffers of kMaxWidth.
DT_HD void mlp_forward(const MlpConfig& c, const float* params, const float* x, float* out) {
  float buf[2][kMaxWidth];
  const float* cur = x;
  const float* p = params;
  const int n_layers = mlp_layer_count(c);
  for (int k = 0; k < n_layers; ++k) {
    const int n_in = mlp_layer_in(c, k), n_out = mlp_layer_out(c, k);
    const bool last = k == n_layers - 1;
    float* dst = last ? out : buf[k & 1];
    const float* bias = p + (size_t)n_out * n_in;
    for (int o = 0; o < n_out; ++o) {
      float acc = bias[o];
      const float* w = p + (size_t)o * n_in;
      for (int i = 0; i < n_in; ++i) acc += w[i] * cur[i];
      dst[o] = activate(last ? c.out_act : c.hidden_act, acc);
    }
    p = bias + n_out;
    cur = dst;
  }
}

// ---------------------------------------------------------------------------------------------
// Expression condition: a temporal encoder over a window of W blendshape frames (pose excluded).
// Frame t's window is frames clamp(t + j - (W-1)/2, 0, n-1), j = 0..W-1, of its track; a live
// driver's track is the frames driven so far, t the newest. Input X[j][c], c < 52.
// Each conv layer: out[o][t'] = b[o] + sum_{i,k} W[o][i][k] * in[i][t'*stride + k] (no padding),
// then LeakyReLU; after the convs the [channel][time] map is flattened channel-major and a linear
// layer W[out_dim][flat], b[out_dim] with tanh gives the condition vector.
constexpr int kMaxConvLayers = 4;

struct Conv1dLayer {
  int in_ch, out_ch, kernel, stride;
};

struct ConditionConfig {
  int window = 9;
  int num_conv = 2;
  Conv1dLayer conv[kMaxConvLayers] = {{52, 32, 3, 2}, {32, 32, 3, 1}, {0, 0, 0, 0}, {0, 0, 0, 0}};
  int out_dim = 16;
};

DT_HD int condition_conv_out_len(const ConditionConfig& c, int k) {
  int len = c.window;
  for (int i = 0; i <= k; ++i) len = (len - c.conv[i].kernel) / c.conv[i].stride + 1;
  return len;
}

DT_HD int condition_flat_size(const ConditionConfig& c) {
  return c.conv[c.num_conv - 1].out_ch * condition_conv_out_len(c, c.num_conv - 1);
}

inline size_t condition_param_count(const ConditionConfig& c) {
  size_t n = 0;
  for (int k = 0; k < c.num_conv; ++k)
    n += (size_t)c.conv[k].out_ch * c.conv[k].in_ch * c.conv[k].kernel + c.conv[k].out_ch;
  n += (size_t)c.out_dim * condition_flat_size(c) + c.out_dim;
  return n;
}

// window: W x 52 floats, frame-major. out: out_dim floats.
DT_HD void condition_forward(const ConditionConfig& c, const float* params, const float* window, float* out) {
  constexpr int kMaxMap = 52 * 32;  // channels x time of the largest map
  float buf[2][kMaxMap];
  // Layer input map is [channel][time]; transpose the window into that layout first.
  int len = c.window, ch = kNumBlendshapes;
  for (int t = 0; t < len; ++t)
    for (int i = 0; i < ch; ++i) buf[0][i * len + t] = window[t * kNumBlendshapes + i];
  const float* p = params;
  int cur = 0;
  for (int k = 0; k < c.num_conv; ++k) {
    const Conv1dLayer L = c.conv[k];
    const int out_len = (len - L.kernel) / L.stride + 1;
    const float* bias = p + (size_t)L.out_ch * L.in_ch * L.kernel;
    for (int o = 0; o < L.out_ch; ++o)
      for (int t = 0; t < out_len; ++t) {
        float acc = bias[o];
        for (int i = 0; i < L.in_ch; ++i)
          for (int q = 0; q < L.kernel; ++q)
            acc += p[((size_t)o * L.in_ch + i) * L.kernel + q] * buf[cur][i * len + t * L.stride + q];
        buf[cur ^ 1][o * out_len + t] = activate(kActLeakyReLU, acc);
      }
    p = bias + L.out_ch;
    cur ^= 1;
    len = out_len;
    ch = L.out_ch;
  }
  const int flat = ch * len;
  const float* bias = p + (size_t)c.out_dim * flat;
  for (int o = 0; o < c.out_dim; ++o) {
    float acc = bias[o];
    for (int i = 0; i < flat; ++i) acc += p[(size_t)o * flat + i] * buf[cur][i];
    out[o] = tanhf(acc);
  }
}

// ---------------------------------------------------------------------------------------------
// Deformation of one active grid vertex: MLP([freq(u), cond]) -> o[4];
// displacement = tanh(o[0..2]) * elastic_scale (cm), sdf delta = tanh(o[3]) * sdf_delta_scale
// (zero when the delta is frozen). Vertices outside the active band (|sdf| > band) do not move.
struct DeformConfig {
  int n_freq = 6;
  MlpConfig mlp{3 + 6 * 6 + 16, 64, 2, 4, kActReLU, kActNone};
  float sdf_delta_scale = 0.5f;  // cm
  int freeze_sdf_delta = 0;
};

DT_HD void deform_vertex(const DeformConfig& c, const float* params, const float u[3], const float* cond,
                         int cond_dim, float elastic_scale, float disp[3], float* sdf_delta) {
  float in[kMaxWidth], o[4];
  freq_encode(c.n_freq, u, in);
  const int nf = freq_encoding_size(c.n_freq);
  for (int i = 0; i < cond_dim; ++i) in[nf + i] = cond[i];
  mlp_forward(c.mlp, params, in, o);
  for (int a = 0; a < 3; ++a) disp[a] = tanhf(o[a]) * elastic_scale;
  *sdf_delta = c.freeze_sdf_delta ? 0.f : tanhf(o[3]) * c.sdf_delta_scale;
}

// ---------------------------------------------------------------------------------------------
// Texture: MLP([hashgrid(u_canonical), cond]) with a sigmoid output gives RGB in [0,1]
// (display-referred, the same encoding as the video frames).
struct TextureConfig {
  HashGridConfig grid;
  MlpConfig mlp{16 * 2 + 16, 64, 2, 3, kActReLU, kActSigmoid};
};

// ---------------------------------------------------------------------------------------------
// Camera: MediaPipe's perspective camera, vertical field of view 63 degrees, OpenGL clip space.
struct Camera {
  float fovy_deg = 63.f;
  float znear = 1.f;
  float zfar = 10000.f;
  int width = 512;
  int height = 512;
};

// Face-space point -> clip space (x, y, z, w) with the pose then the projection.
DT_HD void project_to_clip(const Camera& cam, const float* pose, const float p[3], float clip[4]) {
  float v[3];
  for (int r = 0; r < 3; ++r) v[r] = pose[r] * p[0] + pose[4 + r] * p[1] + pose[8 + r] * p[2] + pose[12 + r];
  const float f = 1.f / tanf(0.5f * cam.fovy_deg * 3.14159265358979f / 180.f);
  const float aspect = (float)cam.width / (float)cam.height;
  clip[0] = f / aspect * v[0];
  clip[1] = f * v[1];
  clip[2] = (cam.zfar + cam.znear) / (cam.znear - cam.zfar) * v[2] + 2.f * cam.zfar * cam.znear / (cam.znear - cam.zfar);
  clip[3] = -v[2];
}

// Clip space -> pixel coordinates (origin top-left, +y down).
DT_HD void clip_to_pixel(const Camera& cam, const float clip[4], float px[2]) {
  px[0] = (clip[0] / clip[3] * 0.5f + 0.5f) * (float)cam.width;
  px[1] = (0.5f - clip[1] / clip[3] * 0.5f) * (float)cam.height;
}

}  // namespace dyntet
