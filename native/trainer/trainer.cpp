// Trainer implementation. Compiled by the host compiler for the CPU-only build and by nvcc
// (LANGUAGE CUDA) for the CUDA build: the same lambdas then run as kernels.
#include <chrono>
#include "trainer.h"
#include "pose_refine.h"
#include "start_shape.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <cstdio>

#include "../core/asset.h"
#include "../core/grid.h"
#include "../core/marching_tets.h"
#include "../core/model.h"
#include "../core/raster.h"
#include "../train/condition.h"
#include "../train/encoding.h"
#include "../train/launch.h"
#include "../train/losses.h"
#include "../train/mlp.h"

namespace dyntet {

// ------------------------------------------------------------------------------------------------
// Config as data.
const std::vector<ConfigField>& trainer_config_fields() {
#define F_I(n) ConfigField{#n, ConfigField::Int, offsetof(TrainerConfig, n)}
#define F_F(n) ConfigField{#n, ConfigField::Float, offsetof(TrainerConfig, n)}
#define F_A(n, i) ConfigField{#n "." #i, ConfigField::Float, offsetof(TrainerConfig, n) + (i) * sizeof(float)}
  static const std::vector<ConfigField> fields = {
      F_I(grid_res), F_A(box_min, 0), F_A(box_min, 1), F_A(box_min, 2), F_A(box_max, 0), F_A(box_max, 1),
      F_A(box_max, 2), F_A(init_center, 0), F_A(init_center, 1), F_A(init_center, 2), F_A(init_radii, 0),
      F_A(init_radii, 1), F_A(init_radii, 2), F_F(init_elastic), F_F(active_band_cells), F_I(width), F_I(height),
      F_F(fovy_deg), F_I(cond_window), F_I(cond_dim), F_I(deform_freq), F_I(deform_width), F_I(deform_hidden),
      F_F(sdf_delta_scale), F_I(freeze_sdf_delta), F_I(deform_rigid_steps), F_I(deform_ramp_steps), F_I(texture_moves_geometry), F_I(texture_condition), F_I(hash_levels), F_I(hash_features), F_I(hash_log2_table),
      F_I(hash_base_res), F_I(hash_finest_res), F_I(tex_width), F_I(tex_hidden), F_F(w_photo), F_F(w_silhouette), F_F(w_ssim),
      F_F(w_box), F_F(w_prior), F_I(prior_steps), F_F(w_landmark_motion), F_I(landmark_motion_steps), F_F(w_elastic), F_F(max_elastic), F_F(w_sdf_reg_start),
      F_F(w_sdf_reg_end), F_I(sdf_reg_steps), F_F(lr), F_F(lr_hash), F_F(lr_grid), F_I(lr_decay_steps),
      F_F(lr_floor), F_F(adam_beta1), F_F(adam_beta2), F_F(adam_eps), F_I(max_triangles), F_I(pose_frames),
      F_I(pose_start), F_F(lr_pose_rotation), F_F(lr_pose_translation), F_F(w_pose_reg),
      ConfigField{"seed", ConfigField::U64, offsetof(TrainerConfig, seed)},
  };
#undef F_I
#undef F_F
#undef F_A
  return fields;
}

double config_get(const TrainerConfig& c, const ConfigField& f) {
  const char* p = reinterpret_cast<const char*>(&c) + f.offset;
  switch (f.kind) {
    case ConfigField::Int: { int v; std::memcpy(&v, p, sizeof v); return v; }
    case ConfigField::Float: { float v; std::memcpy(&v, p, sizeof v); return v; }
    default: { uint64_t v; std::memcpy(&v, p, sizeof v); return (double)v; }
  }
}

void config_set(TrainerConfig& c, const ConfigField& f, double v) {
  char* p = reinterpret_cast<char*>(&c) + f.offset;
  switch (f.kind) {
    case ConfigField::Int: {
      if (v != std::floor(v)) throw TrainerError(std::string("config.") + f.name + " must be an integer, got " + std::to_string(v));
      const int i = (int)v; std::memcpy(p, &i, sizeof i); break;
    }
    case ConfigField::Float: { const float x = (float)v; std::memcpy(p, &x, sizeof x); break; }
    default: {
      if (v < 0 || v != std::floor(v)) throw TrainerError(std::string("config.") + f.name + " must be a non-negative integer");
      const uint64_t u = (uint64_t)v; std::memcpy(p, &u, sizeof u); break;
    }
  }
}

namespace {
// Hidden layers allowed per MLP (the documented config range; native/train's per-point MLP
// passes keep up to train::kMaxMlpLayers layers on the stack).
constexpr int kMaxHiddenLayers = 5;
static_assert(kMaxHiddenLayers + 1 <= train::kMaxMlpLayers, "the MLP ops must hold every layer the config allows");

void need(bool ok, const std::string& msg) {
  if (!ok) throw TrainerError("invalid trainer config: " + msg);
}
}  // namespace

void validate_config(const TrainerConfig& c) {
  need(c.grid_res >= 2 && c.grid_res <= 256, "grid_res must be in [2, 256]");
  for (int a = 0; a < 3; ++a) need(c.box_max[a] > c.box_min[a], "box_max must exceed box_min on every axis");
  for (int a = 0; a < 3; ++a) need(c.init_radii[a] > 0, "init_radii must be positive");
  need(c.width >= 8 && c.width <= 4096 && c.height >= 8 && c.height <= 4096, "width and height must be in [8, 4096]");
  need(c.fovy_deg > 1 && c.fovy_deg < 179, "fovy_deg must be in (1, 179)");
  need(c.cond_window == 9, "cond_window must be 9 (model.h's condition encoder layers expect 9 frames)");
  need(c.cond_dim >= 1 && c.cond_dim <= 64, "cond_dim must be in [1, 64]");
  need(c.deform_freq >= 0 && c.deform_freq <= 10, "deform_freq must be in [0, 10]");
  need(c.deform_width >= 4 && c.deform_width <= kMaxWidth, "deform_width must be in [4, 256]");
  need(c.tex_width >= 4 && c.tex_width <= kMaxWidth, "tex_width must be in [4, 256]");
  need(c.deform_hidden >= 0 && c.deform_hidden <= kMaxHiddenLayers, "deform_hidden must be in [0, 5]");
  need(c.tex_hidden >= 0 && c.tex_hidden <= kMaxHiddenLayers, "tex_hidden must be in [0, 5]");
  need(3 + 6 * c.deform_freq + c.cond_dim <= kMaxWidth, "deform input (3 + 6 deform_freq + cond_dim) must be <= 256");
  need(c.hash_levels >= 1 && c.hash_levels <= 32, "hash_levels must be in [1, 32]");
  need(c.hash_features >= 1 && c.hash_features <= 8, "hash_features must be in [1, 8]");
  need(c.hash_levels * c.hash_features + c.cond_dim <= kMaxWidth, "hash_levels * hash_features + cond_dim must be <= 256");
  need(c.hash_log2_table >= 8 && c.hash_log2_table <= 24, "hash_log2_table must be in [8, 24]");
  need(c.hash_base_res >= 1 && c.hash_finest_res >= c.hash_base_res, "need 1 <= hash_base_res <= hash_finest_res");
  need(c.lr_decay_steps >= 1, "lr_decay_steps must be >= 1");
  need(c.lr > 0 && c.lr_hash > 0 && c.lr_grid > 0, "learning rates must be positive");
  need(c.adam_beta1 >= 0 && c.adam_beta1 < 1 && c.adam_beta2 >= 0 && c.adam_beta2 < 1, "adam betas must be in [0, 1)");
  need(c.max_triangles >= 0, "max_triangles must be >= 0 (0: automatic)");
  need(c.pose_frames >= 0 && c.pose_frames <= 1000000, "pose_frames must be in [0, 1e6] (0: no pose refinement)");
  need(c.pose_start >= 0, "pose_start must be >= 0");
  need(c.lr_pose_rotation > 0 && c.lr_pose_translation > 0, "pose learning rates must be positive");
  need(c.w_pose_reg >= 0, "w_pose_reg must be >= 0");
  need(c.w_landmark_motion >= 0, "w_landmark_motion must be >= 0 (0: off)");
  need(c.deform_rigid_steps >= 0 && c.deform_ramp_steps >= 0, "deform_rigid_steps and deform_ramp_steps must be >= 0 (0 and 0: no rigid start)");
  need(c.landmark_motion_steps >= 0, "landmark_motion_steps must be >= 0 (0: every step)");
  need(c.texture_moves_geometry == 0 || c.texture_moves_geometry == 1, "texture_moves_geometry must be 0 or 1");
  need(c.texture_condition == 0 || c.texture_condition == 1, "texture_condition must be 0 or 1");
}

// ------------------------------------------------------------------------------------------------
// Per-element passes (free functions with external linkage: nvcc's extended lambdas need that).
namespace ops {

struct Shapes {
  int R, V, B, H, W, cd;
  float bmin[3], bmax[3], band;
  int texture_moves_geometry;
  int texture_condition;
  GridSpec grid;  // R and the box again, as grid.h takes them
  Camera cam;
  ConditionConfig cond;
  DeformConfig deform;
  TextureConfig tex;
  train::HashGrid hash;  // tex.grid with its level table
};

// out[i] = lut[in[i]]: 8-bit frame values to floats (the table holds byte_to_unit).
void bytes_to_unit(Backend be, int64_t n, const uint8_t* in, const float* lut, float* out) {
  launch_1d(be, n, [=] DT_LAMBDA(int64_t i) { out[i] = lut[in[i]]; });
}

// Empty depth key: larger than any depth/triangle key.
void fill_depth(Backend be, int64_t n, unsigned long long* depth) {
  launch_1d(be, n, [=] DT_LAMBDA(int64_t i) { depth[i] = ~0ull; });
}

// The condition encoder (model.h condition_forward) one layer at a time over (frame, output)
// pairs: one thread per frame ran the whole stack serially from local memory (about 1 ms
// forward and 3 ms backward for a batch of 4 on an H100). Every output sums bias, then inputs
// and taps in model.h's order, so the result is condition_forward's. maps: per frame, K + 1 slots
// of kCondMaxMap floats ([channel][time], slot 0 the transposed window); the backward reads them.
constexpr int kCondSlot = train::kCondMaxMap;

void condition(Backend be, const Shapes S, const float* cparams, const float* windows, float* maps, float* cond) {
  const ConditionConfig c = S.cond;
  const int K = c.num_conv, W = c.window, B = S.B;
  launch_1d(be, (int64_t)B * W * kNumBlendshapes, [=] DT_LAMBDA(int64_t e) {
    const int b = (int)(e / (W * kNumBlendshapes)), t = (int)(e / kNumBlendshapes % W), i = (int)(e % kNumBlendshapes);
    maps[(int64_t)b * (K + 1) * kCondSlot + i * W + t] = windows[e];
  });
  size_t poff = 0;
  int len = W;
  for (int k = 0; k < K; ++k) {
    const Conv1dLayer L = c.conv[k];
    const int out_len = (len - L.kernel) / L.stride + 1, in_len = len;
    const float* p = cparams + poff;
    launch_1d(be, (int64_t)B * L.out_ch * out_len, [=] DT_LAMBDA(int64_t e) {
      const int b = (int)(e / (L.out_ch * out_len)), o = (int)(e / out_len % L.out_ch), t = (int)(e % out_len);
      const float* in = maps + ((int64_t)b * (K + 1) + k) * kCondSlot;
      float acc = p[(size_t)L.out_ch * L.in_ch * L.kernel + o];
      for (int i = 0; i < L.in_ch; ++i)
        for (int q = 0; q < L.kernel; ++q)
          acc += p[((size_t)o * L.in_ch + i) * L.kernel + q] * in[i * in_len + t * L.stride + q];
      maps[((int64_t)b * (K + 1) + k + 1) * kCondSlot + o * out_len + t] = activate(kActLeakyReLU, acc);
    });
    poff += (size_t)L.out_ch * L.in_ch * L.kernel + L.out_ch;
    len = out_len;
  }
  const int flat = condition_flat_size(c), od = c.out_dim;
  const float* p = cparams + poff;
  launch_1d(be, (int64_t)B * od, [=] DT_LAMBDA(int64_t e) {
    const int b = (int)(e / od), o = (int)(e % od);
    const float* in = maps + ((int64_t)b * (K + 1) + K) * kCondSlot;
    float acc = p[(size_t)od * flat + o];
    for (int i = 0; i < flat; ++i) acc += p[(size_t)o * flat + i] * in[i];
    cond[e] = tanhf(acc);
  });
}

// Vertices whose SDF lies in the band (the only ones the deformation moves), in a compact list,
// and each listed vertex's slot in it (slot[v], read by the backward): the band is a thin shell,
// so a launch over all vertices would run the MLP on nearly empty warps.
void band_select(Backend be, const Shapes S, const float* sdf, int* list, int* slot, int* count) {
  launch_1d(be, S.V, [=] DT_LAMBDA(int64_t v) {
    if (!(fabsf(sdf[v]) < S.band)) return;
    const int k = atomic_add_int(count, 1);
    list[k] = (int)v;
    slot[v] = k;
  });
}

// Rest positions and SDF of every (frame, vertex); the band's displacement is added by
// deform_apply.
void rest_vertices(Backend be, const Shapes S, const float* sdf, float* vpos, float* vsdf) {
  launch_1d(be, (int64_t)S.B * S.V, [=] DT_LAMBDA(int64_t i) {
    const int v = (int)(i % S.V);
    float p[3];
    grid_vertex_position(S.grid, v, p);
    for (int a = 0; a < 3; ++a) vpos[i * 3 + a] = p[a];
    vsdf[i] = sdf[v];
  });
}

// The deformation MLP's input rows (model.h's deform_vertex: [freq(u), cond]) of every (frame,
// band vertex), row b * nband + k for band slot k, so that native/train's batched MLP runs them
// (on CUDA all layers in one launch; on the CPU model.h's mlp_forward per row, as deform_vertex
// calls it). One thread per row element (model.h's freq_encode_element): a thread per row wrote
// 55 scattered floats per warp store and took longer than the MLP itself.
void deform_rows(Backend be, const Shapes S, int nband, const int* band, const float* cond, float* x) {
  const int in = S.deform.mlp.in, nf = freq_encoding_size(S.deform.n_freq);
  launch_1d(be, (int64_t)S.B * nband * in, [=] DT_LAMBDA(int64_t e) {
    const int64_t r = e / in;
    const int c = (int)(e - r * in);
    const int b = (int)(r / nband);
    if (c >= nf) { x[e] = cond[b * S.cd + c - nf]; return; }
    float u[3];
    grid_vertex_unit(S.R, band[r - (int64_t)b * nband], u);
    x[e] = freq_encode_element(u, c);
  });
}

// deform_vertex's bounds on the MLP outputs y (4 per row), times the rigid start's ramp (1 after
// it), added to the rest positions and SDF.
void deform_apply(Backend be, const Shapes S, int nband, const int* band, const float* elastic, const float* y,
                  float ramp, float* vpos, float* vsdf) {
  launch_1d(be, (int64_t)S.B * nband, [=] DT_LAMBDA(int64_t r) {
    const int b = (int)(r / nband), v = band[r % nband];
    const int64_t i = (int64_t)b * S.V + v;
    const float* o = y + r * 4;
    for (int a = 0; a < 3; ++a) vpos[i * 3 + a] += tanhf(o[a]) * elastic[v] * ramp;
    vsdf[i] += S.deform.freeze_sdf_delta ? 0.f : tanhf(o[3]) * S.deform.sdf_delta_scale * ramp;
  });
}

// Marching tets (grid.h's tets, marching_tets.h's case table): each triangle corner is a grid
// edge (a, b), a < b, stored as 6 ints per triangle; triangles are wound counter-clockwise seen
// from outside, like the asset's meshes.
void march(Backend be, const Shapes S, const float* vsdf, int* counter, int cap, int* tris, int* tri_frame) {
  const int64_t tets = grid_num_tets(S.R);
  launch_1d(be, (int64_t)S.B * tets, [=] DT_LAMBDA(int64_t i) {
    const int b = (int)(i / tets);
    int32_t v[4];
    grid_tet_vertices(S.R, (int32_t)(i % tets), v);
    float s[4];
    for (int k = 0; k < 4; ++k) s[k] = vsdf[(int64_t)b * S.V + v[k]];
    int32_t t[2][3][2];
    const int n = mt_tet_triangles(v, s, t);
    for (int k = 0; k < n; ++k) {
      const int slot = atomic_add_int(counter, 1);
      if (slot >= cap) continue;
      for (int c = 0; c < 3; ++c) { tris[slot * 6 + c * 2] = t[k][c][0]; tris[slot * 6 + c * 2 + 1] = t[k][c][1]; }
      tri_frame[slot] = b;
    }
  });
}

// Corner record: px, py, z_ndc, 1/w, u (normalised canonical position, 3). 7 floats.
constexpr int kCorner = 7;
// Corner gradient record: d/d(px, py, 1/w, u0, u1, u2), the same quantities as the corner record
// minus depth (which only decides visibility). 6 floats per corner, 18 per triangle.
constexpr int kCornerGrad = 6;

void corners(Backend be, const Shapes S, int ntri, const int* tris, const int* tri_frame, const float* vpos,
             const float* vsdf, const float* poses, float* corner) {
  launch_1d(be, (int64_t)ntri * 3, [=] DT_LAMBDA(int64_t i) {
    const int t = (int)(i / 3), c = (int)(i % 3), b = tri_frame[t];
    const int va = tris[t * 6 + c * 2], vb = tris[t * 6 + c * 2 + 1];
    const int64_t ia = (int64_t)b * S.V + va, ib = (int64_t)b * S.V + vb;
    float p[3], ua[3], ub[3], uc[3];
    mt_interpolate(vpos + ia * 3, vpos + ib * 3, vsdf[ia], vsdf[ib], p);
    grid_vertex_unit(S.R, va, ua);
    grid_vertex_unit(S.R, vb, ub);
    mt_interpolate(ua, ub, vsdf[ia], vsdf[ib], uc);
    float clip[4], px[2];
    project_to_clip(S.cam, poses + b * 16, p, clip);
    float* o = corner + i * kCorner;
    if (clip[3] <= 1e-6f) { o[3] = -1.f; return; }  // behind the camera: the triangle is dropped
    clip_to_pixel(S.cam, clip, px);
    o[0] = px[0]; o[1] = px[1]; o[2] = clip[2] / clip[3]; o[3] = 1.f / clip[3];
    for (int a = 0; a < 3; ++a) o[4 + a] = uc[a];
  });
}

// Screen barycentrics of a pixel centre in triangle t; false when outside or degenerate.
DT_HD bool bary(const float* cr, float px, float py, float w[3]) {
  const float* a = cr; const float* b = cr + kCorner; const float* c = cr + 2 * kCorner;
  // raster.h's edge function.
  const float area = edge_fn(a[0], a[1], b[0], b[1], c[0], c[1]);
  if (fabsf(area) < 1e-12f) return false;
  w[0] = edge_fn(b[0], b[1], c[0], c[1], px, py) / area;
  w[1] = edge_fn(c[0], c[1], a[0], a[1], px, py) / area;
  w[2] = edge_fn(a[0], a[1], b[0], b[1], px, py) / area;
  return w[0] >= 0.f && w[1] >= 0.f && w[2] >= 0.f;
}

void raster(Backend be, const Shapes S, int ntri, const int* tri_frame, const float* corner, unsigned long long* depth) {
  launch_1d(be, ntri, [=] DT_LAMBDA(int64_t t) {
    const float* cr = corner + t * 3 * kCorner;
    if (cr[3] <= 0.f || cr[kCorner + 3] <= 0.f || cr[2 * kCorner + 3] <= 0.f) return;
    float x0 = cr[0], x1 = cr[0], y0 = cr[1], y1 = cr[1];
    for (int c = 1; c < 3; ++c) {
      x0 = fminf(x0, cr[c * kCorner]); x1 = fmaxf(x1, cr[c * kCorner]);
      y0 = fminf(y0, cr[c * kCorner + 1]); y1 = fmaxf(y1, cr[c * kCorner + 1]);
    }
    const int ix0 = (int)fmaxf(0.f, floorf(x0 - 0.5f)), ix1 = (int)fminf((float)S.W - 1, ceilf(x1 - 0.5f));
    const int iy0 = (int)fmaxf(0.f, floorf(y0 - 0.5f)), iy1 = (int)fminf((float)S.H - 1, ceilf(y1 - 0.5f));
    const int b = tri_frame[t];
    for (int y = iy0; y <= iy1; ++y)
      for (int x = ix0; x <= ix1; ++x) {
        float w[3];
        if (!bary(cr, x + 0.5f, y + 0.5f, w)) continue;
        const float z = w[0] * cr[2] + w[1] * cr[kCorner + 2] + w[2] * cr[2 * kCorner + 2];
        if (z < -1.f || z > 1.f) continue;
        const float zd = z * 0.5f + 0.5f;
        unsigned int zb;
        memcpy(&zb, &zd, 4);
        const unsigned long long key = ((unsigned long long)zb << 32) | (unsigned long long)(unsigned)t;
        atomic_min_u64(depth + ((int64_t)b * S.H + y) * S.W + x, key);
      }
  });
}

// Resolves visibility and interpolates the canonical position (perspective-correct); uncovered
// pixels take the background, covered ones go into a compact list (index order on the CPU) whose
// texture MLP runs batched: texture_inputs, native/train's hashgrid_forward and mlp_forward, shade_apply.
void shade_select(Backend be, const Shapes S, const unsigned long long* depth, const float* corner, const float* bg,
                  int* pix_tri, float* pix_u, float* base, int* list, int* count) {
  const int64_t HW = (int64_t)S.H * S.W;
  launch_1d(be, S.B * HW, [=] DT_LAMBDA(int64_t i) {
    const int x = (int)(i % S.W), y = (int)((i % HW) / S.W);
    const unsigned long long key = depth[i];
    if (key == ~0ull) {
      pix_tri[i] = -1;
      float* o = base + i * 4;
      for (int c = 0; c < 3; ++c) o[c] = bg ? bg[i * 3 + c] : 0.f;
      o[3] = 0.f;
      return;
    }
    const int t = (int)(key & 0xffffffffull);
    pix_tri[i] = t;
    list[atomic_add_int(count, 1)] = (int)i;
    const float* cr = corner + (int64_t)t * 3 * kCorner;
    float w[3];
    bary(cr, x + 0.5f, y + 0.5f, w);
    float pw[3], sum = 0.f;
    for (int c = 0; c < 3; ++c) { pw[c] = w[c] * cr[c * kCorner + 3]; sum += pw[c]; }
    for (int a = 0; a < 3; ++a) {
      float u = 0.f;
      for (int c = 0; c < 3; ++c) u += pw[c] / sum * cr[c * kCorner + 4 + a];
      pix_u[i * 3 + a] = u;
    }
  });
}

// The texture MLP's inputs of the listed pixels: their canonical positions gathered into u (n x 3,
// what native/train's hashgrid_forward reads; it fills the rows' first levels x features columns)
// and the condition after them. One thread per row value, so that a warp writes consecutive floats.
void texture_inputs(Backend be, const Shapes S, int n, const int* list, const float* pix_u, const float* cond, float* u,
                    float* x) {
  const int64_t HW = (int64_t)S.H * S.W;
  const int in = S.tex.mlp.in, ne = S.tex.grid.levels * S.tex.grid.features, per = 3 + S.cd;
  launch_1d(be, (int64_t)n * per, [=] DT_LAMBDA(int64_t e) {
    const int64_t k = e / per;
    const int j = (int)(e - k * per);
    const int64_t i = list[k];
    if (j < 3) { u[k * 3 + j] = pix_u[i * 3 + j]; return; }
    x[k * in + ne + j - 3] = S.texture_condition ? cond[(int)(i / HW) * S.cd + j - 3] : 0.f;
  });
}

void shade_apply(Backend be, int n, const int* list, const float* y, float* base) {
  launch_1d(be, n, [=] DT_LAMBDA(int64_t k) {
    float* o = base + (int64_t)list[k] * 4;
    for (int c = 0; c < 3; ++c) o[c] = y[k * 3 + c];
    o[3] = 1.f;
  });
}

// Where the segment from the centre (cx, cy) of covered pixel pc towards its uncovered neighbour
// (one pixel along `axis`, direction `sign`) leaves pc's triangle (pixel-space corners cr):
// raster.h's aa_exit_px. Returns the crossing s in (0, 1] and the edge e (corners e+1, e+2), or
// false when the segment does not leave the triangle.
DT_HD bool aa_crossing(const float* cr, float cx, float cy, int axis, float sign, float sx[3], float sy[3], float* s,
                       int* e) {
  for (int c = 0; c < 3; ++c) { sx[c] = cr[c * kCorner]; sy[c] = cr[c * kCorner + 1]; }
  const float ox = axis == 0 ? cx + sign : cx, oy = axis == 1 ? cy + sign : cy;
  *s = aa_exit_px(sx, sy, cx, cy, ox, oy, *e);
  return *e >= 0 && *s > 0.f && *s <= 1.f;
}

// Analytic antialiasing of silhouette edges: for every horizontal and vertical pixel pair with
// exactly one covered pixel, the covered triangle's edge crossing moves colour across the pair.
void antialias(Backend be, const Shapes S, const int* pix_tri, const float* corner, const float* base, float* aa) {
  const int64_t HW = (int64_t)S.H * S.W;
  launch_1d(be, S.B * HW * 2, [=] DT_LAMBDA(int64_t j) {
    const int64_t i = j >> 1;
    const int axis = (int)(j & 1);
    const int x = (int)(i % S.W), y = (int)((i % HW) / S.W);
    if ((axis == 0 && x + 1 >= S.W) || (axis == 1 && y + 1 >= S.H)) return;
    const int64_t n = axis == 0 ? i + 1 : i + S.W;
    const bool ci = pix_tri[i] >= 0, cn = pix_tri[n] >= 0;
    if (ci == cn) return;
    const int64_t pc = ci ? i : n, pu = ci ? n : i;
    const float sign = ci ? 1.f : -1.f;
    const float* cr = corner + (int64_t)pix_tri[pc] * 3 * kCorner;
    const float cx = (float)(pc % S.W) + 0.5f, cy = (float)((pc % HW) / S.W) + 0.5f;
    float sx[3], sy[3], s;
    int e;
    if (!aa_crossing(cr, cx, cy, axis, sign, sx, sy, &s, &e)) return;
    const int64_t k = s > 0.5f ? pu : pc;
    for (int ch = 0; ch < 4; ++ch) atomic_add(aa + k * 4 + ch, (s - 0.5f) * (base[pc * 4 + ch] - base[pu * 4 + ch]));
  });
}

}  // namespace ops

// ------------------------------------------------------------------------------------------------
namespace {

uint64_t splitmix(uint64_t& s) {
  uint64_t z = (s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
float uniform(uint64_t& s, float lo, float hi) {
  return lo + (hi - lo) * (float)((splitmix(s) >> 11) * (1.0 / 9007199254740992.0));
}

void init_mlp(const MlpConfig& c, float* p, uint64_t& rng, float last_scale) {
  for (int k = 0; k < mlp_layer_count(c); ++k) {
    const int ni = mlp_layer_in(c, k), no = mlp_layer_out(c, k);
    float lim = std::sqrt(6.f / (float)(ni + no));
    if (k == c.hidden_layers) lim *= last_scale;
    for (int i = 0; i < no * ni; ++i) *p++ = uniform(rng, -lim, lim);
    for (int i = 0; i < no; ++i) *p++ = 0.f;
  }
}

}  // namespace

struct Trainer::Impl {
  TrainerConfig cfg;
  Backend be;
  Device dev;
  ops::Shapes S{};
  std::vector<ParamBlock> blocks;
  size_t n_params = 0;
  Buffer<float> params, grads, m, v;
  int64_t step = 0;
  uint64_t rng = 0;
  int64_t skipped_total = 0;  // steps skipped for non-finite gradients (not checkpointed)
  int skipped_in_row = 0;

  // Work buffers, sized for the current batch.
  int cur_B = -1, cap = 0;
  Buffer<float> comp, gcomp, ssim_scratch;
  Buffer<double> ssim_value;
  Buffer<float> cond, gcond, cmaps, cgrad, tex_x, tex_gy, vpos, vsdf, gvpos, gvsdf, corner, gcorner, base, aa, gout, grgb, pix_u;
  Buffer<float> images, masks, poses, windows, prior, motion, boxes, losses;
  // Pose refinement: the batch's tracked poses (poses holds the corrected ones), frame ids and
  // per-frame pose gradients.
  Buffer<float> tracked_poses, gpose;
  Buffer<int> frame_ids;
  Buffer<int> tris, tri_frame, pix_tri, counter, vlist, plist, band_slot;
  // Deformation MLP rows: the forward's inputs and outputs (B x band), the backward's inputs and
  // output gradients (listed pairs); byte frames before conversion, and the conversion table.
  Buffer<float> def_x, def_y, vb_x, vb_gy, byte_lut;
  // Texture MLP outputs and (CUDA) hidden activations of the covered pixels, for the backward.
  Buffer<float> tex_y, tex_acts, tex_u, tex_gu, tex_jac;
  int ncov = 0;
  Buffer<uint8_t> bytes;
  int nband = 0;
  Buffer<unsigned long long> depth;

  const ParamBlock& block(const char* name) const {
    for (auto& b : blocks) if (b.name == name) return b;
    throw TrainerError(std::string("internal: no parameter block ") + name);
  }

  void setup() {
    validate_config(cfg);
    S = ops::Shapes{};
    S.R = cfg.grid_res;
    S.V = (S.R + 1) * (S.R + 1) * (S.R + 1);
    S.H = cfg.height; S.W = cfg.width; S.cd = cfg.cond_dim;
    for (int a = 0; a < 3; ++a) { S.bmin[a] = cfg.box_min[a]; S.bmax[a] = cfg.box_max[a]; }
    S.grid.res = S.R;
    for (int a = 0; a < 3; ++a) { S.grid.box_min[a] = cfg.box_min[a]; S.grid.box_max[a] = cfg.box_max[a]; }
    float cell = 1e30f;
    for (int a = 0; a < 3; ++a) cell = std::min(cell, (cfg.box_max[a] - cfg.box_min[a]) / S.R);
    S.band = cfg.active_band_cells * cell;
    S.texture_moves_geometry = cfg.texture_moves_geometry;
    S.texture_condition = cfg.texture_condition;
    S.cam.fovy_deg = cfg.fovy_deg; S.cam.width = cfg.width; S.cam.height = cfg.height;
    S.cond = ConditionConfig{};
    S.cond.window = cfg.cond_window; S.cond.out_dim = cfg.cond_dim;
    S.deform.n_freq = cfg.deform_freq;
    S.deform.mlp = MlpConfig{3 + 6 * cfg.deform_freq + cfg.cond_dim, cfg.deform_width, cfg.deform_hidden, 4, kActReLU, kActNone};
    S.deform.sdf_delta_scale = cfg.sdf_delta_scale;
    S.deform.freeze_sdf_delta = cfg.freeze_sdf_delta;
    S.tex.grid = HashGridConfig{cfg.hash_levels, cfg.hash_features, cfg.hash_log2_table, cfg.hash_base_res, cfg.hash_finest_res};
    S.tex.mlp = MlpConfig{cfg.hash_levels * cfg.hash_features + cfg.cond_dim, cfg.tex_width, cfg.tex_hidden, 3, kActReLU, kActSigmoid};
    S.hash = train::make_hashgrid(S.tex.grid);

    blocks.clear();
    size_t off = 0;
    auto add = [&](const char* n, size_t c) { blocks.push_back({n, off, c}); off += c; };
    add("sdf", S.V);
    add("elastic", S.V);
    add("condition", condition_param_count(S.cond));
    add("deform", mlp_param_count(S.deform.mlp));
    add("hashgrid", hashgrid_param_count(S.tex.grid));
    add("texture", mlp_param_count(S.tex.mlp));
    if (cfg.pose_frames > 0) {  // zero at the start: the tracked poses
      add("pose_rotation", (size_t)cfg.pose_frames * 3);
      add("pose_translation", (size_t)cfg.pose_frames * 3);
    }
    n_params = off;
    params.resize(be, n_params); grads.resize(be, n_params); m.resize(be, n_params); v.resize(be, n_params);
    losses.resize(be, 8);
    counter.resize(be, 2);
    cur_B = -1;
  }

  void init_params() {
    rng = cfg.seed;
    std::vector<float> h(n_params, 0.f);
    const ParamBlock& bs = block("sdf");
    const ParamBlock& bel = block("elastic");
    for (int vi = 0; vi < S.V; ++vi) {
      float p[3];
      grid_vertex_position(S.grid, vi, p);
      // Scaled ellipsoid distance: exact on the axes, a smooth SDF-like field elsewhere.
      float q = 0.f, rmin = 1e30f;
      for (int a = 0; a < 3; ++a) {
        const float d = (p[a] - cfg.init_center[a]) / cfg.init_radii[a];
        q += d * d;
        rmin = std::min(rmin, cfg.init_radii[a]);
      }
      h[bs.offset + vi] = (std::sqrt(q) - 1.f) * rmin;
      h[bel.offset + vi] = cfg.init_elastic;
    }
    const ParamBlock& bc = block("condition");
    {
      float* p = h.data() + bc.offset;
      for (int k = 0; k < S.cond.num_conv; ++k) {
        const Conv1dLayer L = S.cond.conv[k];
        const float lim = std::sqrt(6.f / (float)(L.in_ch * L.kernel + L.out_ch));
        for (int i = 0; i < L.out_ch * L.in_ch * L.kernel; ++i) *p++ = uniform(rng, -lim, lim);
        for (int i = 0; i < L.out_ch; ++i) *p++ = 0.f;
      }
      const int flat = condition_flat_size(S.cond);
      const float lim = std::sqrt(6.f / (float)(flat + S.cond.out_dim));
      for (int i = 0; i < S.cond.out_dim * flat; ++i) *p++ = uniform(rng, -lim, lim);
      for (int i = 0; i < S.cond.out_dim; ++i) *p++ = 0.f;
    }
    // The deformation starts near zero so the initial shape is the ellipsoid.
    init_mlp(S.deform.mlp, h.data() + block("deform").offset, rng, 0.01f);
    const ParamBlock& bh = block("hashgrid");
    for (size_t i = 0; i < bh.count; ++i) h[bh.offset + i] = uniform(rng, -1e-4f, 1e-4f);
    init_mlp(S.tex.mlp, h.data() + block("texture").offset, rng, 1.f);
    if (!cfg.texture_condition) {
      // No condition input: its first-layer weights start at zero and, fed zeros, stay there, so
      // the exported MLP (and any player) ignores the condition too.
      const int in = S.tex.mlp.in, nfeat = in - S.cd;
      float* w = h.data() + block("texture").offset;
      for (int o = 0; o < mlp_layer_out(S.tex.mlp, 0); ++o)
        for (int c = nfeat; c < in; ++c) w[(size_t)o * in + c] = 0.f;
    }
    params.upload(h.data(), n_params);
    m.zero(); v.zero();
    step = 0;
  }

  void ensure_batch(int B) {
    if (B == cur_B) return;
    const int64_t V = S.V, HW = (int64_t)S.H * S.W;
    cap = B * (cfg.max_triangles > 0 ? cfg.max_triangles : 48 * S.R * S.R);
    cond.resize(be, (size_t)B * S.cd);
    gcond.resize(be, (size_t)B * S.cd);
    cmaps.resize(be, (size_t)B * (S.cond.num_conv + 1) * train::kCondMaxMap);
    cgrad.resize(be, (size_t)B * 2 * train::kCondMaxMap);
    comp.resize(be, B * HW * 3); gcomp.resize(be, B * HW * 3); ssim_scratch.resize(be, B * HW * 24);
    ssim_value.resize(be, 1);
    vpos.resize(be, B * V * 3); vsdf.resize(be, B * V); gvpos.resize(be, B * V * 3); gvsdf.resize(be, B * V);
    vlist.resize(be, B * V); plist.resize(be, B * HW); band_slot.resize(be, V);
    tex_x.resize(be, B * HW * S.tex.mlp.in); tex_gy.resize(be, B * HW * 3);
    tris.resize(be, (size_t)cap * 6); tri_frame.resize(be, cap);
    corner.resize(be, (size_t)cap * 3 * ops::kCorner); gcorner.resize(be, (size_t)cap * 3 * ops::kCornerGrad);
    depth.resize(be, B * HW); pix_tri.resize(be, B * HW); pix_u.resize(be, B * HW * 3);
    base.resize(be, B * HW * 4); aa.resize(be, B * HW * 4); gout.resize(be, B * HW * 4); grgb.resize(be, B * HW * 3);
    images.resize(be, B * HW * 3); masks.resize(be, B * HW); poses.resize(be, (size_t)B * 16);
    tracked_poses.resize(be, (size_t)B * 16); gpose.resize(be, (size_t)B * 6); frame_ids.resize(be, B);
    windows.resize(be, (size_t)B * S.cond.window * kNumBlendshapes);
    cur_B = B;
    S.B = B;
  }

  // Optional per-stage timing for benchmarks: each mark waits for the device (a 1-element
  // download is a blocking cudaMemcpy), so it perturbs overlap and stays off in training.
  bool timing = false;
  std::vector<std::pair<std::string, double>> stage_ms;
  std::chrono::steady_clock::time_point stage_t0;
  void mark(const char* name) {
    if (!timing) return;
    float x;
    losses.download(&x, 1);
    const auto t = std::chrono::steady_clock::now();
    stage_ms.emplace_back(name, std::chrono::duration<double, std::milli>(t - stage_t0).count());
    stage_t0 = t;
  }

  float* P(const char* n) { return params.data() + block(n).offset; }

  // Grow-only work buffers whose size depends on the step (band and gradient list lengths).
  template <class T>
  T* grow(Buffer<T>& b, size_t n) {
    if (b.size() < n) b.resize(be, n + n / 8);
    return b.data();
  }

  // The texture's hash grid over the n covered pixels' positions (tex_u), into the first columns of
  // the texture MLP's rows (tex_x). On CUDA, when the texture moves the geometry (the backward needs
  // d/du), the forward saves its Jacobian for the backward.
  train::HashGridParams texture_hash_params(int n) {
    train::HashGridParams hp;
    hp.grid = S.hash;
    hp.n = n;
    hp.u = tex_u.data();
    hp.table = P("hashgrid");
    hp.out = tex_x.data();
    hp.row_stride = S.tex.mlp.in;
    if (be == Backend::CUDA && S.texture_moves_geometry) hp.jac = grow(tex_jac, train::hashgrid_jac_count(S.hash, n));
    return hp;
  }

  // Deformed grid for the current condition (vpos, vsdf). The band list goes through vlist; the
  // MLP's rows and outputs stay in def_x / def_y (with band_slot) for the backward.
  void deform_vertices() {
    counter.zero();
    ops::band_select(be, S, P("sdf"), vlist.data(), band_slot.data(), counter.data());
    int nb[2];
    counter.download(nb, 2);
    nband = nb[0];
    mark("fwd vertices: band list");
    ops::rest_vertices(be, S, P("sdf"), vpos.data(), vsdf.data());
    const int64_t rows = (int64_t)S.B * nband;
    if (rows > 0) ops::deform_rows(be, S, nband, vlist.data(), cond.data(), grow(def_x, (size_t)rows * S.deform.mlp.in));
    mark("fwd vertices: rest + rows");
    if (rows == 0) return;
    train::MlpParams mp;
    mp.cfg = S.deform.mlp;
    mp.n = rows;
    mp.params = P("deform");
    mp.x = def_x.data();
    mp.y = grow(def_y, (size_t)rows * 4);
    train::mlp_forward(be, mp);
    ops::deform_apply(be, S, nband, vlist.data(), P("elastic"), def_y.data(), deform_ramp(), vpos.data(), vsdf.data());
  }
  float* G(const char* n) { return grads.data() + block(n).offset; }

  // Forward to the antialiased composite; returns the triangle count.
  int forward(const float* bg, StepLosses* out) {
    ops::condition(be, S, P("condition"), windows.data(), cmaps.data(), cond.data());
    mark("fwd condition");
    deform_vertices();
    mark("fwd vertices: deform MLP");
    counter.zero();
    ops::march(be, S, vsdf.data(), counter.data(), cap, tris.data(), tri_frame.data());
    int cnt[2];
    counter.download(cnt, 2);
    mark("fwd marching tets");
    if (cnt[0] > cap)
      throw TrainerError("marching tets produced " + std::to_string(cnt[0]) + " triangles, more than the capacity " +
                         std::to_string(cap) + "; raise config.max_triangles or lower grid_res");
    const int ntri = cnt[0];
    ops::corners(be, S, ntri, tris.data(), tri_frame.data(), vpos.data(), vsdf.data(), poses.data(), corner.data());
    ops::fill_depth(be, (int64_t)depth.size(), depth.data());
    ops::raster(be, S, ntri, tri_frame.data(), corner.data(), depth.data());
    mark("fwd corners + raster");
    counter.zero();
    ops::shade_select(be, S, depth.data(), corner.data(), bg, pix_tri.data(), pix_u.data(), base.data(), plist.data(),
                      counter.data());
    counter.download(cnt, 2);
    ncov = cnt[0];
    if (ncov > 0) {
      // The texture MLP over the covered pixels as one batched native/train mlp_forward (tiled GEMMs
      // on CUDA); rows, outputs and, on CUDA, hidden activations stay for the backward.
      ops::texture_inputs(be, S, ncov, plist.data(), pix_u.data(), cond.data(), grow(tex_u, (size_t)ncov * 3), tex_x.data());
      train::hashgrid_forward(be, texture_hash_params(ncov));
      train::MlpParams mp;
      mp.cfg = S.tex.mlp;
      mp.n = ncov;
      mp.params = P("texture");
      mp.x = tex_x.data();
      mp.y = grow(tex_y, (size_t)ncov * 3);
      if (be == Backend::CUDA) mp.acts = grow(tex_acts, (size_t)(ncov * train::mlp_hidden_count(S.tex.mlp)));
      train::mlp_forward(be, mp);
      ops::shade_apply(be, ncov, plist.data(), tex_y.data(), base.data());
    }
    mark("fwd shade (hash grid + texture MLP)");
    aa.zero();
    ops::antialias(be, S, pix_tri.data(), corner.data(), base.data(), aa.data());
    mark("fwd antialias");
    if (out) {
      out->triangles = ntri;
      out->covered_pixels = ncov;
    }
    return ntri;
  }

  // Uploads n values in [0, 1] given as floats or as bytes; bytes cross as bytes (4x less) and
  // become byte_to_unit(v) on the device through a 256-entry table made by that function.
  void upload_unit(Buffer<float>& dst, const float* f, const uint8_t* u8, int64_t n) {
    if (f) { dst.upload(f, (size_t)n); return; }
    if (byte_lut.size() != 256) {
      float lut[256];
      for (int v = 0; v < 256; ++v) lut[v] = byte_to_unit((uint8_t)v);
      byte_lut.resize(be, 256);
      byte_lut.upload(lut, 256);
    }
    grow(bytes, (size_t)n);
    bytes.upload(u8, (size_t)n);
    ops::bytes_to_unit(be, n, bytes.data(), byte_lut.data(), dst.data());
  }

  // The rigid start's factor on the deformation at the current step (TrainerConfig).
  float deform_ramp() const {
    if (step < cfg.deform_rigid_steps) return 0.f;
    if (cfg.deform_ramp_steps <= 0) return 1.f;
    return std::min(1.f, (float)(step - cfg.deform_rigid_steps) / (float)cfg.deform_ramp_steps);
  }

  float sdf_reg_weight() const {
    const float f = std::min(1.f, (float)step / (float)std::max(1, cfg.sdf_reg_steps));
    return cfg.w_sdf_reg_start + (cfg.w_sdf_reg_end - cfg.w_sdf_reg_start) * f;
  }

  StepLosses train_step(const Batch& bt, bool update = true);
  void adam();
};

// ------------------------------------------------------------------------------------------------
namespace ops {

struct LossCfg {
  float w_photo, w_sil, w_box, box_norm;
};

// Losses on the composite; writes dL/d(output rgb, coverage) into gout and the values into
// losses[0..2] (photo, silhouette, box).
void image_losses(Backend be, const Shapes S, LossCfg L, const float* base, const float* aa, const float* images,
                  const float* masks, const float* boxes, int has_boxes, float* gout, float* losses) {
  const int64_t HW = (int64_t)S.H * S.W;
  const float np = (float)(S.B * HW);
  launch_1d(be, S.B * HW, [=] DT_LAMBDA(int64_t i) {
    const int b = (int)(i / HW);
    const float x = (float)(i % S.W) + 0.5f, y = (float)((i % HW) / S.W) + 0.5f;
    bool in_box = false;
    if (has_boxes)
      for (int k = 0; k < 3; ++k) {
        const float* bx = boxes + (b * 3 + k) * 4;
        if (x >= bx[0] && x < bx[2] && y >= bx[1] && y < bx[3]) in_box = true;
      }
    float lp = 0.f, lb = 0.f;
    for (int c = 0; c < 3; ++c) {
      const float d = base[i * 4 + c] + aa[i * 4 + c] - images[i * 3 + c];
      lp += d * d;
      float g = 2.f * L.w_photo * d / (3.f * np);
      if (in_box) { lb += d * d; g += 2.f * L.w_box * d / (3.f * L.box_norm); }
      gout[i * 4 + c] = g;
    }
    const float dc = base[i * 4 + 3] + aa[i * 4 + 3] - masks[i];
    gout[i * 4 + 3] = 2.f * L.w_sil * dc / np;
    // Every pixel adds to the same three sums: one add per warp (no lane returns early).
    atomic_add_warp(losses + 0, L.w_photo * lp / (3.f * np));
    atomic_add_warp(losses + 1, L.w_sil * dc * dc / np);
    atomic_add_warp(losses + 2, in_box ? L.w_box * lb / (3.f * L.box_norm) : 0.f);
  });
}

void composite_rgb(Backend be, const Shapes S, const float* base, const float* aa, float* comp) {
  launch_1d(be, (int64_t)S.B * S.H * S.W * 3, [=] DT_LAMBDA(int64_t e) {
    const int64_t i = e / 3, c = e % 3;
    comp[e] = base[i * 4 + c] + aa[i * 4 + c];
  });
}

void add_rgb_grad(Backend be, const Shapes S, const float* g, float* gout) {
  launch_1d(be, (int64_t)S.B * S.H * S.W * 3, [=] DT_LAMBDA(int64_t e) { gout[(e / 3) * 4 + e % 3] += g[e]; });
}

void aa_backward(Backend be, const Shapes S, const int* pix_tri, const float* corner, const float* base,
                 const float* gout, float* grgb, float* gcorner) {
  const int64_t HW = (int64_t)S.H * S.W;
  // The unantialiased composite: covered pixels pass their gradient to the texture.
  launch_1d(be, S.B * HW, [=] DT_LAMBDA(int64_t i) {
    for (int c = 0; c < 3; ++c) grgb[i * 3 + c] = pix_tri[i] >= 0 ? gout[i * 4 + c] : 0.f;
  });
  launch_1d(be, S.B * HW * 2, [=] DT_LAMBDA(int64_t j) {
    const int64_t i = j >> 1;
    const int axis = (int)(j & 1);
    const int x = (int)(i % S.W), y = (int)((i % HW) / S.W);
    if ((axis == 0 && x + 1 >= S.W) || (axis == 1 && y + 1 >= S.H)) return;
    const int64_t n = axis == 0 ? i + 1 : i + S.W;
    const bool ci = pix_tri[i] >= 0, cn = pix_tri[n] >= 0;
    if (ci == cn) return;
    const int64_t pc = ci ? i : n, pu = ci ? n : i;
    const float sign = ci ? 1.f : -1.f;
    const int t = pix_tri[pc];
    const float* cr = corner + (int64_t)t * 3 * kCorner;
    const float cx = (float)(pc % S.W) + 0.5f, cy = (float)((pc % HW) / S.W) + 0.5f;
    float sx[3], sy[3], s;
    int e;
    if (!aa_crossing(cr, cx, cy, axis, sign, sx, sy, &s, &e)) return;
    const int64_t k = s > 0.5f ? pu : pc;
    float gs = 0.f;
    for (int ch = 0; ch < 4; ++ch) gs += gout[k * 4 + ch] * (base[pc * 4 + ch] - base[pu * 4 + ch]);
    for (int ch = 0; ch < 3; ++ch) atomic_add(grgb + pc * 3 + ch, (s - 0.5f) * gout[k * 4 + ch]);
    // ds/d(corners e+1, e+2) through raster.h's crossing backward.
    const int ia = (e + 1) % 3, ib = (e + 2) % 3;
    const float ox = axis == 0 ? cx + sign : cx, oy = axis == 1 ? cy + sign : cy;
    float ga[2], gb[2];
    aa_crossing_backward_px(sx[ia], sy[ia], sx[ib], sy[ib], cx, cy, ox, oy, gs, ga, gb);
    for (int a = 0; a < 2; ++a) {
      if (ga[a] != 0.f) atomic_add(gcorner + ((int64_t)t * 3 + ia) * kCornerGrad + a, ga[a]);
      if (gb[a] != 0.f) atomic_add(gcorner + ((int64_t)t * 3 + ib) * kCornerGrad + a, gb[a]);
    }
  });
}

// dL/d(texture MLP output) of the covered pixels (the forward's rows; zero for those without a
// colour gradient, which then add nothing).
void texture_out_grads(Backend be, int n, const int* list, const float* grgb, float* gy) {
  launch_1d(be, n, [=] DT_LAMBDA(int64_t k) {
    const int64_t i = list[k];
    for (int c = 0; c < 3; ++c) gy[k * 3 + c] = grgb[i * 3 + c];
  });
}

// From the MLP's input gradients (gx, one row per listed pixel): the condition's and, when the
// texture moves the geometry, the triangle corners' (from gu_hash, the hash grid's d/du per row;
// null otherwise). The hash-grid tables' come from native/train's hashgrid_backward. Pixels
// without a colour gradient (gy zero) are skipped.
void texture_backward(Backend be, const Shapes S, int n, const int* list, const int* pix_tri, const float* corner,
                      const float* gy, const float* gx, const float* gu_hash, float* gcond,
                      float* gcorner) {
  const int64_t HW = (int64_t)S.H * S.W;
  const int in = S.tex.mlp.in;
  launch_1d(be, n, [=] DT_LAMBDA(int64_t k) {
    if (gy[k * 3] == 0.f && gy[k * 3 + 1] == 0.f && gy[k * 3 + 2] == 0.f) return;
    const int64_t i = list[k];
    const int t = pix_tri[i];
    const int b = (int)(i / HW);
    const int ne = S.tex.grid.levels * S.tex.grid.features;
    const float* gin = gx + k * in;
    for (int c = 0; c < S.cd; ++c) atomic_add_warp(gcond + b * S.cd + c, gin[ne + c]);
    if (!gu_hash) return;
    const float gu[3] = {gu_hash[k * 3], gu_hash[k * 3 + 1], gu_hash[k * 3 + 2]};
    if (gu[0] == 0.f && gu[1] == 0.f && gu[2] == 0.f) return;
    // The texture's gradient moves the geometry: u = sum_c lambda_c U_c with perspective-correct
    // weights lambda_c = w_c q_c / sum_k w_k q_k (w: screen barycentrics, q = 1/w_clip), so dL/du
    // reaches the corners' canonical positions U_c (hence the SDF through the crossing point) and,
    // through the barycentrics, their screen positions and depths (hence the deformation).
    const float* cr = corner + (int64_t)t * 3 * kCorner;
    const int x = (int)(i % S.W), y = (int)((i % HW) / S.W);
    const float px = x + 0.5f, py = y + 0.5f;
    const float* A = cr; const float* Bc = cr + kCorner; const float* C = cr + 2 * kCorner;
    const float area = edge_fn(A[0], A[1], Bc[0], Bc[1], C[0], C[1]);
    if (!(fabsf(area) >= 1e-12f)) return;
    float w[3], q[3], pw[3], sum = 0.f;
    w[0] = edge_fn(Bc[0], Bc[1], C[0], C[1], px, py) / area;
    w[1] = edge_fn(C[0], C[1], A[0], A[1], px, py) / area;
    w[2] = edge_fn(A[0], A[1], Bc[0], Bc[1], px, py) / area;
    for (int c = 0; c < 3; ++c) { q[c] = cr[c * kCorner + 3]; pw[c] = w[c] * q[c]; sum += pw[c]; }
    if (!(sum > 1e-20f)) return;
    float glam[3], lam[3], dot = 0.f;
    float* gc = gcorner + (int64_t)t * 3 * kCornerGrad;
    // Neighbouring pixels share triangles: sum over the warp's pixels of one triangle first.
    const WarpGroup group(t);
    for (int c = 0; c < 3; ++c) {
      lam[c] = pw[c] / sum;
      glam[c] = gu[0] * cr[c * kCorner + 4] + gu[1] * cr[c * kCorner + 5] + gu[2] * cr[c * kCorner + 6];
      dot += lam[c] * glam[c];
      for (int a = 0; a < 3; ++a) group.add(gc + c * kCornerGrad + 3 + a, lam[c] * gu[a]);
    }
    float gw[3];
    for (int c = 0; c < 3; ++c) {
      const float gpw = (glam[c] - dot) / sum;  // d lambda_c / d pw_k = (delta_ck - lambda_c) / sum
      gw[c] = gpw * q[c];
      group.add(gc + c * kCornerGrad + 2, gpw * w[c]);
    }
    // w_c = N_c / area with N_0 = E(B, C, p), N_1 = E(C, A, p), N_2 = E(A, B, p), area = E(A, B, C)
    // and E(a, b, p) = (bx - ax)(py - ay) - (by - ay)(px - ax) (raster.h's edge_fn).
    float gN[3], garea = 0.f;
    for (int c = 0; c < 3; ++c) { gN[c] = gw[c] / area; garea -= gw[c] * w[c] / area; }
    float gxy[3][2] = {{0.f, 0.f}, {0.f, 0.f}, {0.f, 0.f}};
    // dE(a, b, p)/da = (by - py, px - bx), dE/db = (py - ay, ax - px).
    auto edge_grad = [&](int ia, int ib, float ptx, float pty, float gE) {
      const float* pa = cr + ia * kCorner; const float* pb = cr + ib * kCorner;
      gxy[ia][0] += gE * (pb[1] - pty); gxy[ia][1] += gE * (ptx - pb[0]);
      gxy[ib][0] += gE * (pty - pa[1]); gxy[ib][1] += gE * (pa[0] - ptx);
    };
    edge_grad(1, 2, px, py, gN[0]);
    edge_grad(2, 0, px, py, gN[1]);
    edge_grad(0, 1, px, py, gN[2]);
    // area = E(A, B, C) also depends on C: dE/dp = (ay - by, bx - ax).
    edge_grad(0, 1, C[0], C[1], garea);
    gxy[2][0] += garea * (A[1] - Bc[1]); gxy[2][1] += garea * (Bc[0] - A[0]);
    for (int c = 0; c < 3; ++c)
      for (int a = 0; a < 2; ++a)
        group.add(gc + c * kCornerGrad + a, gxy[c][a]);
  });
}

// Pose refinement (TrainerConfig::pose_frames): pose_refine.h's rotation and its Jacobian.
// Corrected poses (column-major 4x4) for the batch: out[b] = correction(ids[b]) * tracked[b].
void refine_poses(Backend be, int B, const float* tracked, const float* rot, const float* trans, const int* ids,
                  float* out) {
  launch_1d(be, B, [=] DT_LAMBDA(int64_t b) {
    const float* M = tracked + b * 16;
    float* O = out + b * 16;
    float R[9];
    rotation_matrix(rot + ids[b] * 3, R);
    for (int col = 0; col < 3; ++col) {
      for (int r = 0; r < 3; ++r) O[col * 4 + r] = R[r * 3] * M[col * 4] + R[r * 3 + 1] * M[col * 4 + 1] + R[r * 3 + 2] * M[col * 4 + 2];
      O[col * 4 + 3] = M[col * 4 + 3];
    }
    for (int r = 0; r < 3; ++r) O[12 + r] = M[12 + r] + trans[ids[b] * 3 + r];
    O[15] = M[15];
  });
}

// Per-frame pose gradients (gpose: B x 6, translation then the rotation applied after R(w)) into
// the correction parameters' gradients, plus the L2 pull towards the tracked pose (its value into
// *loss). Serial over the batch: a frame may appear twice.
void pose_gradients(Backend be, int B, const int* ids, const float* rot, const float* trans, const float* gpose,
                    float w_reg, float* g_rot, float* g_trans, float* loss) {
  launch_1d(be, 1, [=] DT_LAMBDA(int64_t) {
    for (int b = 0; b < B; ++b) {
      const float* w = rot + ids[b] * 3;
      const float* t = trans + ids[b] * 3;
      float J[9];
      left_jacobian(w, J);
      const float k = w_reg / (float)B;
      for (int a = 0; a < 3; ++a) {
        g_trans[ids[b] * 3 + a] += gpose[b * 6 + a] + 2.f * k * t[a];
        g_rot[ids[b] * 3 + a] += J[a] * gpose[b * 6 + 3] + J[3 + a] * gpose[b * 6 + 4] + J[6 + a] * gpose[b * 6 + 5] +
                                 2.f * k * w[a];
        *loss += k * (w[a] * w[a] + t[a] * t[a]);
      }
    }
  });
}

// Removes the corrections' common part (mean rotation vector and mean translation over all
// frames). A turn or shift shared by every frame is the same as turning or shifting the canonical
// head, which training would otherwise also do; renders use the tracked poses, so that drift
// showed up as a misregistration of every held-out frame (on the H100, may_5s head PSNR fell by
// 0.5 dB with a common turn of ~0.9 degrees). To first order in the angles.
void center_poses(Backend be, int frames, float* rot, float* trans) {
  launch_1d(be, 1, [=] DT_LAMBDA(int64_t) {
    float* const blocks[2] = {rot, trans};
    for (float* p : blocks) {
      double mean[3] = {0, 0, 0};
      for (int f = 0; f < frames; ++f)
        for (int a = 0; a < 3; ++a) mean[a] += p[f * 3 + a];
      for (int f = 0; f < frames; ++f)
        for (int a = 0; a < 3; ++a) p[f * 3 + a] -= (float)(mean[a] / frames);
    }
  });
}

// Corner pixel gradients -> surface point -> deformed grid vertex positions and SDF values, and
// (gpose non-null) each frame's pose-correction gradient.
void corner_backward(Backend be, const Shapes S, int ntri, const int* tris, const int* tri_frame, const float* vpos,
                     const float* vsdf, const float* poses, const float* corner, const float* gcorner, float* gvpos,
                     float* gvsdf, float* gpose) {
  launch_1d(be, (int64_t)ntri * 3, [=] DT_LAMBDA(int64_t i) {
    const int t = (int)(i / 3), c = (int)(i % 3), b = tri_frame[t];
    const float* gc = gcorner + i * kCornerGrad;
    const float gx = gc[0], gy = gc[1], gq = gc[2];
    const float gU[3] = {gc[3], gc[4], gc[5]};
    if ((gx == 0.f && gy == 0.f && gq == 0.f && gU[0] == 0.f && gU[1] == 0.f && gU[2] == 0.f) ||
        corner[i * kCorner + 3] <= 0.f)
      return;
    const int va = tris[t * 6 + c * 2], vb = tris[t * 6 + c * 2 + 1];
    const int64_t ia = (int64_t)b * S.V + va, ib = (int64_t)b * S.V + vb;
    const float sa = vsdf[ia], sb = vsdf[ib];
    float p[3];
    mt_interpolate(vpos + ia * 3, vpos + ib * 3, sa, sb, p);
    const float* M = poses + b * 16;
    float v[3];
    for (int r = 0; r < 3; ++r) v[r] = M[r] * p[0] + M[4 + r] * p[1] + M[8 + r] * p[2] + M[12 + r];
    const float f = 1.f / tanf(0.5f * S.cam.fovy_deg * 3.14159265358979f / 180.f);
    const float aspect = (float)S.cam.width / (float)S.cam.height;
    const float X = f / aspect * v[0], Y = f * v[1], W = -v[2];
    // px = (X/W * .5 + .5) * width, py = (.5 - Y/W * .5) * height, q = 1/W, W = -v2.
    float gv[3];
    gv[0] = gx * 0.5f * S.cam.width * (f / aspect) / W;
    gv[1] = -gy * 0.5f * S.cam.height * f / W;
    gv[2] = gx * 0.5f * S.cam.width * X / (W * W) - gy * 0.5f * S.cam.height * Y / (W * W) + gq / (W * W);
    if (gpose) {
      // Translation: gv itself; a small rotation about the face origin h: (v - h) x gv.
      const float d[3] = {v[0] - M[12], v[1] - M[13], v[2] - M[14]};
      const float g6[6] = {gv[0], gv[1], gv[2], d[1] * gv[2] - d[2] * gv[1], d[2] * gv[0] - d[0] * gv[2],
                           d[0] * gv[1] - d[1] * gv[0]};
      WarpGroup group(b);  // the corners of a warp mostly belong to one frame
      for (int a = 0; a < 6; ++a) group.add(gpose + b * 6 + a, g6[a]);
    }
    float gp[3];
    for (int a = 0; a < 3; ++a) gp[a] = M[a * 4 + 0] * gv[0] + M[a * 4 + 1] * gv[1] + M[a * 4 + 2] * gv[2];
    // Through the crossing point (marching_tets.h's interpolation) to both grid vertices.
    float ga[3], gb[3], gsa = 0.f, gsb = 0.f;
    mt_interpolate_backward(vpos + ia * 3, vpos + ib * 3, sa, sb, gp, ga, gb, &gsa, &gsb);
    for (int a = 0; a < 3; ++a) {
      atomic_add(gvpos + ia * 3 + a, ga[a]);
      atomic_add(gvpos + ib * 3 + a, gb[a]);
    }
    // The canonical position crosses the same edge between the undisplaced lattice points.
    if (gU[0] != 0.f || gU[1] != 0.f || gU[2] != 0.f) {
      float ua[3], ub[3];
      grid_vertex_unit(S.R, va, ua);
      grid_vertex_unit(S.R, vb, ub);
      mt_interpolate_backward(ua, ub, sa, sb, gU, (float*)nullptr, (float*)nullptr, &gsa, &gsb);
    }
    if (gsa != 0.f) atomic_add(gvsdf + ia, gsa);
    if (gsb != 0.f) atomic_add(gvsdf + ib, gsb);
  });
}

// The (frame, vertex) pairs that carry a gradient, SDF gradient added on the way; those inside the
// SDF band (where the deformation acts) go into a compact list so that the per-vertex MLP backward
// runs on full warps: most pairs have no gradient, and atomic_add_warp adds once per warp only
// when every lane is active. On the CPU the list keeps index order, so sums are unchanged.
void vertex_backward_select(Backend be, const Shapes S, const float* sdf, const float* gvpos, const float* gvsdf,
                            float* gsdf, int* list, int* count) {
  launch_1d(be, (int64_t)S.B * S.V, [=] DT_LAMBDA(int64_t i) {
    const int v = (int)(i % S.V);
    const float gs = gvsdf[i];
    if (gs == 0.f && gvpos[i * 3] == 0.f && gvpos[i * 3 + 1] == 0.f && gvpos[i * 3 + 2] == 0.f) return;
    atomic_add(gsdf + v, gs);
    if (!(fabsf(sdf[v]) < S.band)) return;
    list[atomic_add_int(count, 1)] = (int)i;
  });
}

// The listed (frame, vertex) pairs' deformation MLP rows for native/train's batched backward:
// dL/d(MLP output) through deform_vertex's tanh bounds, from the forward's outputs y (row
// b * nband + slot[v]); the elastic scale's gradient is added on the way.
void vertex_gather(Backend be, const Shapes S, int n, const int* list, int nband, const int* slot, const float* elastic,
                   float ramp, const float* fy, const float* gvpos, const float* gvsdf, float* gel, float* gy) {
  launch_1d(be, n, [=] DT_LAMBDA(int64_t k) {
    const int64_t i = list[k];
    const int b = (int)(i / S.V), v = (int)(i % S.V);
    const int64_t r = (int64_t)b * nband + slot[v];
    const float gs = gvsdf[i];
    const float gp[3] = {gvpos[i * 3], gvpos[i * 3 + 1], gvpos[i * 3 + 2]};
    const float* o = fy + r * 4;
    float* go = gy + k * 4;
    float gscale = 0.f;
    for (int a = 0; a < 3; ++a) {
      const float th = tanhf(o[a]);
      go[a] = gp[a] * elastic[v] * ramp * (1.f - th * th);
      gscale += gp[a] * th * ramp;
    }
    const float th3 = tanhf(o[3]);
    go[3] = S.deform.freeze_sdf_delta ? 0.f : gs * S.deform.sdf_delta_scale * ramp * (1.f - th3 * th3);
    atomic_add(gel + v, gscale);
  });
}

// ... and their input rows, copied from the forward's (one thread per element: coalesced).
void vertex_rows(Backend be, const Shapes S, int n, const int* list, int nband, const int* slot, const float* fx,
                 float* x) {
  const int in = S.deform.mlp.in;
  launch_1d(be, (int64_t)n * in, [=] DT_LAMBDA(int64_t e) {
    const int64_t k = e / in;
    const int c = (int)(e - k * in);
    const int64_t i = list[k];
    const int b = (int)(i / S.V), v = (int)(i % S.V);
    x[e] = fx[((int64_t)b * nband + slot[v]) * in + c];
  });
}

// The condition's share of the MLP's input gradients (gx, one row per listed pair).
void vertex_cond_grad(Backend be, const Shapes S, int n, const int* list, const float* gx, float* gcond) {
  const int in = S.deform.mlp.in, nf = freq_encoding_size(S.deform.n_freq);
  launch_1d(be, n, [=] DT_LAMBDA(int64_t k) {
    const int b = (int)(list[k] / S.V);
    // The list is in append order: a warp's pairs are nearly always of one frame.
    for (int c = 0; c < S.cd; ++c) atomic_add_warp(gcond + b * S.cd + c, gx[k * in + nf + c]);
  });
}

// dL/d(pre-activation) of conv layer k's output (b, o, t), from dL/d(map k + 1) in gbuf's `slot`.
DT_HD float cond_gpre(const float* gbuf, const float* maps, int K, int k, int slot, int out_len, int b, int o, int t) {
  const int j = o * out_len + t;
  return gbuf[((int64_t)b * 2 + slot) * kCondSlot + j] *
         train::act_grad_from_output(kActLeakyReLU, maps[((int64_t)b * (K + 1) + k + 1) * kCondSlot + j]);
}

// Condition encoder backward from the forward's maps and output (ops::condition of this step),
// one layer at a time: one thread per weight sums over frames and times (no atomics), one per
// (frame, input) for the gradient of the layer below. gbuf: two slots of kCondSlot per frame.
void condition_backward(Backend be, const Shapes S, const float* cparams, const float* maps, const float* cond,
                        const float* gcond, float* gcparams, float* gbuf) {
  const ConditionConfig c = S.cond;
  const int K = c.num_conv, B = S.B, flat = condition_flat_size(c), od = c.out_dim;
  size_t poff[kMaxConvLayers + 1];
  int lens[kMaxConvLayers + 1];
  poff[0] = 0;
  lens[0] = c.window;
  for (int k = 0; k < K; ++k) {
    poff[k + 1] = poff[k] + (size_t)c.conv[k].out_ch * c.conv[k].in_ch * c.conv[k].kernel + c.conv[k].out_ch;
    lens[k + 1] = (lens[k] - c.conv[k].kernel) / c.conv[k].stride + 1;
  }
  // Output layer: z = Wl x + bl, y = tanh(z).
  const float* Wl = cparams + poff[K];
  float* gWl = gcparams + poff[K];
  launch_1d(be, (int64_t)od * (flat + 1), [=] DT_LAMBDA(int64_t e) {
    const int o = (int)(e / (flat + 1)), i = (int)(e % (flat + 1));
    float acc = 0.f;
    for (int b = 0; b < B; ++b) {
      const float y = cond[b * od + o], gz = gcond[b * od + o] * (1.f - y * y);
      acc += i < flat ? gz * maps[((int64_t)b * (K + 1) + K) * kCondSlot + i] : gz;
    }
    gWl[i < flat ? (size_t)o * flat + i : (size_t)od * flat + o] += acc;
  });
  launch_1d(be, (int64_t)B * flat, [=] DT_LAMBDA(int64_t e) {
    const int b = (int)(e / flat), i = (int)(e % flat);
    float acc = 0.f;
    for (int o = 0; o < od; ++o) {
      const float y = cond[b * od + o];
      acc += Wl[(size_t)o * flat + i] * gcond[b * od + o] * (1.f - y * y);
    }
    gbuf[(int64_t)b * 2 * kCondSlot + i] = acc;  // d/d(map K), in slot 0
  });
  int cur = 0;
  for (int k = K - 1; k >= 0; --k) {
    const Conv1dLayer L = c.conv[k];
    const int in_len = lens[k], out_len = lens[k + 1], slot = cur;
    const float* Wk = cparams + poff[k];
    float* gWk = gcparams + poff[k];
    const int nw = L.out_ch * L.in_ch * L.kernel;
    launch_1d(be, (int64_t)nw + L.out_ch, [=] DT_LAMBDA(int64_t e) {
      float acc = 0.f;
      if (e < nw) {
        const int o = (int)(e / (L.in_ch * L.kernel)), i = (int)(e / L.kernel % L.in_ch), q = (int)(e % L.kernel);
        for (int b = 0; b < B; ++b)
          for (int t = 0; t < out_len; ++t)
            acc += cond_gpre(gbuf, maps, K, k, slot, out_len, b, o, t) * maps[((int64_t)b * (K + 1) + k) * kCondSlot + i * in_len + t * L.stride + q];
      } else {
        for (int b = 0; b < B; ++b)
          for (int t = 0; t < out_len; ++t) acc += cond_gpre(gbuf, maps, K, k, slot, out_len, b, (int)(e - nw), t);
      }
      gWk[e] += acc;
    });
    if (k == 0) break;  // the trainer does not need the gradient of the window
    launch_1d(be, (int64_t)B * L.in_ch * in_len, [=] DT_LAMBDA(int64_t e) {
      const int b = (int)(e / (L.in_ch * in_len)), i = (int)(e / in_len % L.in_ch), sx = (int)(e % in_len);
      float acc = 0.f;
      for (int o = 0; o < L.out_ch; ++o)
        for (int q = 0; q < L.kernel; ++q) {
          const int r = sx - q;
          if (r < 0 || r % L.stride != 0 || r / L.stride >= out_len) continue;
          acc += Wk[((size_t)o * L.in_ch + i) * L.kernel + q] * cond_gpre(gbuf, maps, K, k, slot, out_len, b, o, r / L.stride);
        }
      gbuf[((int64_t)b * 2 + (slot ^ 1)) * kCondSlot + i * in_len + sx] = acc;
    });
    cur ^= 1;
  }
}

// DMTet's sign regulariser on lattice edges whose SDF changes sign (two passes: count, then
// the mean of the binary cross-entropies), elastic-scale bound, landmark prior.
// Lattice edge j = 3 v + axis from vertex v to its +axis neighbour; false past the border.
DT_HD bool lattice_edge(int R, int64_t j, int* v0, int* v1) {
  const int v = (int)(j / 3), a = (int)(j % 3);
  int32_t idx[3];
  grid_vertex_ijk(R, v, idx);
  if (idx[a] + 1 > R) return false;
  *v0 = v;
  idx[a] += 1;
  *v1 = grid_vertex_index(R, idx[0], idx[1], idx[2]);
  return true;
}

// The grid cube holding canonical point p (clamped into the box) and its 8 corners' trilinear
// weights; corner c is +1 along axis a when bit a of c is set.
DT_HD void grid_trilinear(const Shapes& S, const float* p, int (&vc)[8], float (&wc)[8]) {
  int i0[3];
  float fr[3];
  for (int a = 0; a < 3; ++a) {
    float q = (p[a] - S.bmin[a]) / (S.bmax[a] - S.bmin[a]) * (float)S.R;
    q = clampf(q, 0.f, (float)S.R);
    float fl = floorf(q);
    if (fl > (float)S.R - 1.f) fl = (float)S.R - 1.f;
    i0[a] = (int)fl;
    fr[a] = q - fl;
  }
  for (int c = 0; c < 8; ++c) {
    float wt = 1.f;
    int id[3];
    for (int a = 0; a < 3; ++a) {
      const int bit = (c >> a) & 1;
      wt *= bit ? fr[a] : 1.f - fr[a];
      id[a] = i0[a] + bit;
    }
    vc[c] = grid_vertex_index(S.R, id[0], id[1], id[2]);
    wc[c] = wt;
  }
}

void regularisers(Backend be, const Shapes S, float w_reg, float w_el, float max_el, float w_prior,
                  const float* prior, int n_prior, const float* sdf, const float* elastic, float* gsdf, float* gel,
                  int* counter, float* losses) {
  const int R = S.R;
  int* cnt = counter;
  launch_1d(be, (int64_t)S.V * 3, [=] DT_LAMBDA(int64_t j) {
    int v0, v1;
    if (lattice_edge(R, j, &v0, &v1) && ((sdf[v0] < 0.f) != (sdf[v1] < 0.f))) atomic_add_int(cnt, 1);
  });
  int count = 0;
  {
    int h[2];
#if defined(__CUDACC__)
    if (be == Backend::CUDA) cuda_check(cudaMemcpy(h, counter, sizeof h, cudaMemcpyDeviceToHost), "cudaMemcpy");
    else std::memcpy(h, counter, sizeof h);
#else
    std::memcpy(h, counter, sizeof h);
#endif
    count = h[0];
  }
  if (count > 0 && w_reg > 0.f) {
    const float w = w_reg / (float)count;
    launch_1d(be, (int64_t)S.V * 3, [=] DT_LAMBDA(int64_t j) {
      int v0, v1;
      if (!lattice_edge(R, j, &v0, &v1)) return;
      const float a = sdf[v0], b = sdf[v1];
      if ((a < 0.f) == (b < 0.f)) return;
      const float ya = b > 0.f ? 1.f : 0.f, yb = a > 0.f ? 1.f : 0.f;
      auto sp = [](float x) { return x > 0.f ? x + log1pf(expf(-x)) : log1pf(expf(x)); };
      const float l = sp(a) - ya * a + sp(b) - yb * b;
      atomic_add(losses + 5, w * l);
      atomic_add(gsdf + v0, w * (1.f / (1.f + expf(-a)) - ya));
      atomic_add(gsdf + v1, w * (1.f / (1.f + expf(-b)) - yb));
    });
  }
  if (w_el > 0.f) {
    const float w = w_el / (float)S.V;
    launch_1d(be, S.V, [=] DT_LAMBDA(int64_t v) {
      const float e = elastic[v];
      const float over = e > max_el ? e - max_el : 0.f, under = e < 0.f ? -e : 0.f;
      if (over == 0.f && under == 0.f) return;
      atomic_add(losses + 4, w * (over * over + under * under));
      atomic_add(gel + v, w * 2.f * (over - under));
    });
  }
  if (w_prior > 0.f && n_prior > 0) {
    const float w = w_prior / (float)n_prior;
    launch_1d(be, n_prior, [=] DT_LAMBDA(int64_t k) {
      int vc[8];
      float wc[8], s = 0.f;
      grid_trilinear(S, prior + k * 3, vc, wc);
      for (int c = 0; c < 8; ++c) s += wc[c] * sdf[vc[c]];
      atomic_add(losses + 3, w * s * s);
      for (int c = 0; c < 8; ++c) atomic_add(gsdf + vc[c], w * 2.f * s * wc[c]);
    });
  }
}

// Landmark motion prior: the deformation should carry each landmark of the rest mesh (`rest`, the
// training frames' mean) to where the tracker saw it in this frame (`targets`, B x n x 3, canonical
// space, cm; NaN: not seen), so that expressions move the surface the way the face moved. The
// displacement at a point is the trilinear blend of its cube's deformed (band) vertices'
// displacements, weights renormalised over those corners; a point with less than half its weight
// on band vertices is skipped (the surface is not there). Loss w / (B n) sum |d - (target - rest)|^2;
// its gradient goes to the deformed vertex positions, as the image losses' does.
void landmark_motion(Backend be, const Shapes S, float w, int n, const float* rest, const float* targets,
                     const float* sdf, const float* vpos, float* gvpos, float* losses) {
  const float wn = w / (float)((int64_t)S.B * n);
  launch_1d(be, (int64_t)S.B * n, [=] DT_LAMBDA(int64_t j) {
    const int b = (int)(j / n), k = (int)(j % n);
    const float* t = targets + j * 3;
    if (!(t[0] - t[0] == 0.f && t[1] - t[1] == 0.f && t[2] - t[2] == 0.f)) return;  // NaN/Inf: not seen
    int vc[8];
    float wc[8], sum = 0.f;
    grid_trilinear(S, rest + (int64_t)k * 3, vc, wc);
    for (int c = 0; c < 8; ++c) {
      if (!(fabsf(sdf[vc[c]]) < S.band)) wc[c] = 0.f;
      sum += wc[c];
    }
    if (!(sum >= 0.5f)) return;
    float r[3] = {0.f, 0.f, 0.f};
    for (int c = 0; c < 8; ++c) {
      if (wc[c] == 0.f) continue;
      wc[c] /= sum;
      float p0[3];
      grid_vertex_position(S.grid, vc[c], p0);
      const float* p = vpos + ((int64_t)b * S.V + vc[c]) * 3;
      for (int a = 0; a < 3; ++a) r[a] += wc[c] * (p[a] - p0[a]);
    }
    for (int a = 0; a < 3; ++a) r[a] -= t[a] - rest[(int64_t)k * 3 + a];
    atomic_add(losses + 7, wn * (r[0] * r[0] + r[1] * r[1] + r[2] * r[2]));
    for (int c = 0; c < 8; ++c) {
      if (wc[c] == 0.f) continue;
      float* g = gvpos + ((int64_t)b * S.V + vc[c]) * 3;
      for (int a = 0; a < 3; ++a) atomic_add(g + a, wn * 2.f * wc[c] * r[a]);
    }
  });
}

// Sets *flag when any gradient is NaN or Inf (one bad element would poison Adam's moments and,
// through them, every parameter it touches).
void find_non_finite(Backend be, size_t n, const float* g, int* flag) {
  launch_1d(be, (int64_t)n, [=] DT_LAMBDA(int64_t i) {
    if (g[i] - g[i] != 0.f) *flag = 1;  // NaN and Inf give NaN here, finite values 0
  });
}

void adam(Backend be, size_t n, float* p, const float* g, float* m, float* v, float lr, float b1, float b2, float bc1,
          float bc2, float eps) {
  launch_1d(be, (int64_t)n, [=] DT_LAMBDA(int64_t i) {
    const float gi = g[i];
    const float mi = b1 * m[i] + (1.f - b1) * gi;
    const float vi = b2 * v[i] + (1.f - b2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] -= lr * (mi / bc1) / (sqrtf(vi / bc2) + eps);
  });
}

}  // namespace ops

StepLosses Trainer::Impl::train_step(const Batch& bt, bool update) {
  if (bt.frames < 1) throw TrainerError("batch.frames must be >= 1");
  if (!(bt.images || bt.images_u8) || !(bt.masks || bt.masks_u8) || !bt.poses || !bt.windows)
    throw TrainerError("batch needs images, masks, poses and windows");
  ensure_batch(bt.frames);
  if (timing) { stage_ms.clear(); stage_t0 = std::chrono::steady_clock::now(); }
  const int64_t HW = (int64_t)S.H * S.W;
  upload_unit(images, bt.images, bt.images_u8, bt.frames * HW * 3);
  upload_unit(masks, bt.masks, bt.masks_u8, bt.frames * HW);
  const bool refine = cfg.pose_frames > 0 && bt.frame_ids;
  if (refine) {
    for (int b = 0; b < bt.frames; ++b)
      if (bt.frame_ids[b] < 0 || bt.frame_ids[b] >= cfg.pose_frames)
        throw TrainerError("batch.frame_ids[" + std::to_string(b) + "] = " + std::to_string(bt.frame_ids[b]) +
                           " is outside [0, pose_frames = " + std::to_string(cfg.pose_frames) + ")");
    tracked_poses.upload(bt.poses, (size_t)bt.frames * 16);
    frame_ids.upload(bt.frame_ids, bt.frames);
    ops::refine_poses(be, bt.frames, tracked_poses.data(), P("pose_rotation"), P("pose_translation"), frame_ids.data(),
                      poses.data());
  } else {
    poses.upload(bt.poses, (size_t)bt.frames * 16);
  }
  // The corrections learn from pose_start on (before it their gradient is zero, so Adam keeps them).
  const bool learn_pose = refine && step >= cfg.pose_start;
  windows.upload(bt.windows, (size_t)bt.frames * S.cond.window * kNumBlendshapes);
  float box_norm = 1.f;
  if (bt.boxes) {
    if (boxes.size() != (size_t)bt.frames * 12) boxes.resize(be, (size_t)bt.frames * 12);
    boxes.upload(bt.boxes, (size_t)bt.frames * 12);
    double area = 0;
    for (int k = 0; k < bt.frames * 3; ++k) {
      const float* b = bt.boxes + k * 4;
      if (!(b[2] >= b[0] && b[3] >= b[1])) throw TrainerError("batch.boxes: every box needs x1 >= x0 and y1 >= y0 (pixels)");
      area += (double)(b[2] - b[0]) * (b[3] - b[1]);
    }
    box_norm = (float)std::max(1.0, area);
  }
  const bool use_prior = bt.prior_points && bt.prior_count > 0 && step < cfg.prior_steps;
  if (bt.motion_targets && !(bt.prior_points && bt.prior_count > 0))
    throw TrainerError("batch.motion_targets needs batch.prior_points: the rest positions of the same landmarks");
  const bool use_motion = bt.prior_points && bt.prior_count > 0 && bt.motion_targets && cfg.w_landmark_motion > 0.f &&
                          (cfg.landmark_motion_steps == 0 || step < cfg.landmark_motion_steps);
  if (use_prior || use_motion) {
    if (prior.size() != (size_t)bt.prior_count * 3) prior.resize(be, (size_t)bt.prior_count * 3);
    prior.upload(bt.prior_points, (size_t)bt.prior_count * 3);
  }
  if (use_motion) {
    const size_t n = (size_t)bt.frames * bt.prior_count * 3;
    if (motion.size() != n) motion.resize(be, n);
    motion.upload(bt.motion_targets, n);
  }

  mark("upload batch");
  StepLosses out;
  const int ntri = forward(images.data(), &out);
  grads.zero(); losses.zero(); gcorner.zero(); gvpos.zero(); gvsdf.zero(); gcond.zero();
  if (learn_pose) gpose.zero();
  ops::image_losses(be, S, ops::LossCfg{cfg.w_photo, cfg.w_silhouette, cfg.w_box, box_norm}, base.data(), aa.data(),
                    images.data(), masks.data(), boxes.data(), bt.boxes ? 1 : 0, gout.data(), losses.data());
  mark("image losses");
  float ssim_loss = 0.f;
  if (cfg.w_ssim > 0.f && S.H > 10 && S.W > 10) {
    // SSIM through native/train's op on the antialiased composite; its gradient joins gout.
    ops::composite_rgb(be, S, base.data(), aa.data(), comp.data());
    gcomp.zero(); ssim_value.zero();
    train::SsimParams sp;
    sp.frames = S.B; sp.height = S.H; sp.width = S.W; sp.channels = 3;
    sp.pred = comp.data(); sp.target = images.data(); sp.scratch = ssim_scratch.data();
    sp.scale = cfg.w_ssim / (float)(3 * S.B * train::ssim_valid_pixels(S.H, S.W, train::SsimWindow::Gaussian11));
    sp.value = ssim_value.data(); sp.g_pred = gcomp.data();
    train::ssim_loss(be, sp);
    ops::add_rgb_grad(be, S, gcomp.data(), gout.data());
    double v;
    ssim_value.download(&v, 1);
    ssim_loss = (float)v;
    mark("SSIM");
  }
  ops::aa_backward(be, S, pix_tri.data(), corner.data(), base.data(), gout.data(), grgb.data(), gcorner.data());
  mark("bwd antialias");
  if (ncov > 0) {
    // The texture MLP's backward over the forward's rows (covered pixels), from its saved
    // activations on CUDA (no recomputed forward); pixels without a colour gradient add nothing.
    ops::texture_out_grads(be, ncov, plist.data(), grgb.data(), tex_gy.data());
    train::MlpParams mp;
    mp.cfg = S.tex.mlp;
    mp.n = ncov;
    mp.params = P("texture");
    mp.x = tex_x.data();
    mp.y = tex_y.data();
    if (be == Backend::CUDA) mp.acts = tex_acts.data();
    mp.g_y = tex_gy.data();
    mp.g_params = G("texture");
    mp.g_x = tex_x.data();  // the inputs' gradients replace the inputs
    train::mlp_backward(be, mp);
  }
  mark("bwd texture: MLP");
  if (ncov > 0) {
    // The hash grid's backward (table gradient; d/du when the texture moves the geometry) from the
    // MLP's input gradients, on CUDA with the forward's saved Jacobian; then the condition and the
    // triangle corners.
    train::HashGridParams hp = texture_hash_params(ncov);
    hp.g_out = tex_x.data();
    hp.g_table = G("hashgrid");
    hp.g_u = S.texture_moves_geometry ? grow(tex_gu, (size_t)ncov * 3) : nullptr;
    train::hashgrid_backward(be, hp);
    ops::texture_backward(be, S, ncov, plist.data(), pix_tri.data(), corner.data(), tex_gy.data(), tex_x.data(), hp.g_u,
                          gcond.data(), gcorner.data());
  }
  mark("bwd texture: hash grid + corners");
  ops::corner_backward(be, S, ntri, tris.data(), tri_frame.data(), vpos.data(), vsdf.data(), poses.data(),
                       corner.data(), gcorner.data(), gvpos.data(), gvsdf.data(), learn_pose ? gpose.data() : nullptr);
  if (learn_pose)
    ops::pose_gradients(be, bt.frames, frame_ids.data(), P("pose_rotation"), P("pose_translation"), gpose.data(),
                        cfg.w_pose_reg, G("pose_rotation"), G("pose_translation"), losses.data() + 6);
  if (use_motion)
    ops::landmark_motion(be, S, cfg.w_landmark_motion, bt.prior_count, prior.data(), motion.data(), P("sdf"), vpos.data(),
                         gvpos.data(), losses.data());
  mark("bwd corners + marching tets");
  counter.zero();
  ops::vertex_backward_select(be, S, P("sdf"), gvpos.data(), gvsdf.data(), G("sdf"), vlist.data(), counter.data());
  int nsel[2];
  counter.download(nsel, 2);
  // The MLP's backward as one batched native/train mlp_backward over the listed pairs (tiled
  // GEMMs on CUDA, weight gradients as partial sums), like the texture's.
  const int nvb = nsel[0];
  if (nvb > 0) {
    ops::vertex_gather(be, S, nvb, vlist.data(), nband, band_slot.data(), P("elastic"), deform_ramp(), def_y.data(), gvpos.data(),
                       gvsdf.data(), G("elastic"), grow(vb_gy, (size_t)nvb * 4));
    ops::vertex_rows(be, S, nvb, vlist.data(), nband, band_slot.data(), def_x.data(),
                     grow(vb_x, (size_t)nvb * S.deform.mlp.in));
  }
  mark("bwd vertices: select + gather");
  if (nvb > 0) {
    train::MlpParams mp;
    mp.cfg = S.deform.mlp;
    mp.n = nvb;
    mp.params = P("deform");
    mp.x = vb_x.data();
    mp.g_y = vb_gy.data();
    mp.g_params = G("deform");
    mp.g_x = vb_x.data();  // the inputs' gradients replace the inputs
    train::mlp_backward(be, mp);
    ops::vertex_cond_grad(be, S, nvb, vlist.data(), vb_x.data(), gcond.data());
  }
  mark("bwd vertices: deform MLP");
  ops::condition_backward(be, S, P("condition"), cmaps.data(), cond.data(), gcond.data(), G("condition"), cgrad.data());
  mark("bwd condition");
  counter.zero();
  ops::regularisers(be, S, sdf_reg_weight(), cfg.w_elastic, cfg.max_elastic, use_prior ? cfg.w_prior : 0.f,
                    use_prior ? prior.data() : nullptr, use_prior ? bt.prior_count : 0, P("sdf"), P("elastic"),
                    G("sdf"), G("elastic"), counter.data(), losses.data());
  mark("regularisers");
  if (update) {
    // A step whose gradient holds NaN/Inf is skipped (counted, the schedule still advances) so a
    // rare degenerate configuration cannot destroy the model; many in a row is divergence.
    counter.zero();
    ops::find_non_finite(be, n_params, grads.data(), counter.data());
    int bad[2];
    counter.download(bad, 2);
    if (bad[0]) {
      out.skipped = 1;
      ++skipped_total;
      if (skipped_total <= 5) {  // name the culprit blocks (diagnosis of the rare bad step)
        std::string names;
        for (const ParamBlock& blk : blocks) {
          counter.zero();
          ops::find_non_finite(be, blk.count, grads.data() + blk.offset, counter.data());
          counter.download(bad, 2);
          if (bad[0]) names += (names.empty() ? "" : ", ") + blk.name;
        }
        float lv[8];
        losses.download(lv, 8);
        std::fprintf(stderr, "dyntet trainer: step %lld: NaN/Inf gradient in %s (losses photo %g sil %g box %g prior %g elastic %g sdf_reg %g motion %g, %d triangles); update skipped\n",
                     (long long)step, names.c_str(), lv[0], lv[1], lv[2], lv[3], lv[4], lv[5], lv[7], ntri);
      }
      if (++skipped_in_row >= 50)
        throw TrainerError("training diverged: the last 50 steps all had NaN/Inf gradients; lower lr/lr_grid or restart from an earlier checkpoint");
    } else {
      skipped_in_row = 0;
      adam();
    }
    ++step;
    mark("Adam");
  }
  float l[8];
  losses.download(l, 8);
  out.ssim = ssim_loss;
  out.photo = l[0]; out.silhouette = l[1]; out.box = l[2]; out.prior = l[3]; out.elastic = l[4]; out.sdf_reg = l[5];
  out.pose_reg = l[6];
  out.motion = l[7];
  out.total = l[0] + l[1] + l[2] + l[3] + l[4] + l[5] + l[6] + l[7] + ssim_loss;
  return out;
}

void Trainer::Impl::adam() {
  const double t = (double)step + 1.0;
  const float bc1 = (float)(1.0 - std::pow((double)cfg.adam_beta1, t));
  const float bc2 = (float)(1.0 - std::pow((double)cfg.adam_beta2, t));
  const double decay = std::max((double)cfg.lr_floor, std::pow(0.1, (double)step / cfg.lr_decay_steps));
  for (const ParamBlock& b : blocks) {
    const float base_lr = (b.name == "sdf" || b.name == "elastic") ? cfg.lr_grid
                          : b.name == "hashgrid"                    ? cfg.lr_hash
                          : b.name == "pose_rotation"               ? cfg.lr_pose_rotation
                          : b.name == "pose_translation"            ? cfg.lr_pose_translation
                                                                    : cfg.lr;
    ops::adam(be, b.count, params.data() + b.offset, grads.data() + b.offset, m.data() + b.offset, v.data() + b.offset,
              (float)(base_lr * decay), cfg.adam_beta1, cfg.adam_beta2, bc1, bc2, cfg.adam_eps);
  }
  if (cfg.pose_frames > 0 && step >= cfg.pose_start)
    ops::center_poses(be, cfg.pose_frames, P("pose_rotation"), P("pose_translation"));
}

// ------------------------------------------------------------------------------------------------
Trainer::Trainer(const TrainerConfig& cfg, Device dev) : impl_(new Impl) {
  impl_->cfg = cfg;
  impl_->dev = dev;
  impl_->be = dev == Device::CUDA ? Backend::CUDA : Backend::CPU;
  if (dev == Device::CUDA) {
    const BackendInfo bi = query_backends();
    if (!bi.cuda_compiled)
      throw BackendError("CUDA backend requested but this build has no CUDA support; rebuild with DYNTET_CUDA=ON or use --device cpu");
    if (!bi.cuda_usable)
      throw BackendError("CUDA backend requested but no usable GPU: " + bi.cuda_error + "; use --device cpu");
  }
  impl_->setup();
  impl_->init_params();
}

Trainer::~Trainer() = default;

StepLosses Trainer::step(const Batch& batch) { return impl_->train_step(batch); }

StepLosses Trainer::gradient(const Batch& batch, std::vector<float>* grads) {
  const StepLosses l = impl_->train_step(batch, false);
  if (grads) {
    grads->resize(impl_->n_params);
    impl_->grads.download(grads->data(), impl_->n_params);
  }
  return l;
}

void Trainer::set_parameters(const std::vector<float>& p) {
  if (p.size() != impl_->n_params)
    throw TrainerError("set_parameters: expected " + std::to_string(impl_->n_params) + " floats, got " + std::to_string(p.size()));
  impl_->params.upload(p.data(), p.size());
}

int Trainer::start_from_masks(const uint8_t* masks, const float* poses, int n, float vote, float expand) {
  Impl& I = *impl_;
  if (I.step != 0) throw TrainerError("start_from_masks: the start shape can only be set before the first step");
  if (!masks || !poses) throw TrainerError("start_from_masks: needs masks and poses");
  int inside = 0;
  const std::vector<float> sdf = start_shape_from_masks(I.S.grid, I.S.cam, masks, poses, n, I.cfg.init_center,
                                                        I.cfg.init_radii, StartShapeOptions{vote, expand}, &inside);
  std::vector<float> p = parameters();
  const ParamBlock& b = I.block("sdf");
  std::copy(sdf.begin(), sdf.end(), p.begin() + b.offset);
  set_parameters(p);
  return inside;
}

void Trainer::render(const float* pose, const float* window, const float* background, float* rgb, float* coverage) {
  Impl& I = *impl_;
  I.ensure_batch(1);
  const int64_t HW = (int64_t)I.S.H * I.S.W;
  I.poses.upload(pose, 16);
  I.windows.upload(window, (size_t)I.S.cond.window * kNumBlendshapes);
  std::vector<float> bg(HW * 3, 0.f);
  if (background) std::memcpy(bg.data(), background, bg.size() * sizeof(float));
  I.images.upload(bg.data(), bg.size());
  I.forward(I.images.data(), nullptr);
  std::vector<float> b(HW * 4), a(HW * 4);
  I.base.download(b.data(), b.size());
  I.aa.download(a.data(), a.size());
  for (int64_t i = 0; i < HW; ++i) {
    for (int c = 0; c < 3; ++c) rgb[i * 3 + c] = b[i * 4 + c] + a[i * 4 + c];
    if (coverage) coverage[i] = b[i * 4 + 3] + a[i * 4 + 3];
  }
}

void Trainer::deformed_grid(const float* window, std::vector<float>& pos, std::vector<float>& sdf) {
  Impl& I = *impl_;
  I.ensure_batch(1);
  std::vector<float> w((size_t)I.S.cond.window * kNumBlendshapes, 0.f);
  if (window) std::memcpy(w.data(), window, w.size() * sizeof(float));
  I.windows.upload(w.data(), w.size());
  ops::condition(I.be, I.S, I.P("condition"), I.windows.data(), I.cmaps.data(), I.cond.data());
  I.deform_vertices();
  pos.resize((size_t)I.S.V * 3);
  sdf.resize(I.S.V);
  I.vpos.download(pos.data(), pos.size());
  I.vsdf.download(sdf.data(), sdf.size());
}

std::vector<float> Trainer::extract_mesh(const float* window) {
  std::vector<float> pos, sdf;
  deformed_grid(window, pos, sdf);
  const int R = impl_->S.R;
  std::vector<float> out;
  // The triangles of marching_tets() (same case table, order, winding and vertex positions).
  for (int32_t tet = 0; tet < grid_num_tets(R); ++tet) {
    int32_t v[4];
    grid_tet_vertices(R, tet, v);
    float s[4];
    for (int k = 0; k < 4; ++k) s[k] = sdf[v[k]];
    int32_t tri[2][3][2];
    const int n = mt_tet_triangles(v, s, tri);
    for (int k = 0; k < n; ++k)
      for (int c = 0; c < 3; ++c) {
        const int32_t a = tri[k][c][0], b = tri[k][c][1];
        float p[3];
        mt_interpolate(&pos[(size_t)a * 3], &pos[(size_t)b * 3], sdf[a], sdf[b], p);
        out.insert(out.end(), p, p + 3);
      }
  }
  return out;
}

// Checkpoint: "DYNTETCK", u32 version, u32 field count, fields (u16 name length, name, u8 kind,
// 8-byte value), i64 step, u64 rng, u64 n, params, adam m, adam v (f32), u32 FNV-1a of all before.
namespace {
constexpr uint32_t kCkptVersion = 1;
uint32_t fnv1a(const uint8_t* p, size_t n) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n; ++i) { h ^= p[i]; h *= 16777619u; }
  return h;
}
template <class T> void put(std::vector<uint8_t>& o, const T& v) {
  const uint8_t* p = reinterpret_cast<const uint8_t*>(&v);
  o.insert(o.end(), p, p + sizeof(T));
}
struct Reader {
  const uint8_t* p; size_t n, at = 0;
  template <class T> T get() {
    if (n - at < sizeof(T)) throw TrainerError("checkpoint is truncated: the file ends early; it is not a complete dyntet checkpoint");
    T v; std::memcpy(&v, p + at, sizeof(T)); at += sizeof(T); return v;
  }
  void bytes(void* dst, size_t k) {
    if (n - at < k) throw TrainerError("checkpoint is truncated: the file ends early; it is not a complete dyntet checkpoint");
    std::memcpy(dst, p + at, k); at += k;
  }
};
}  // namespace

std::vector<uint8_t> Trainer::save_checkpoint() const {
  const Impl& I = *impl_;
  std::vector<uint8_t> o;
  const char magic[8] = {'D', 'Y', 'N', 'T', 'E', 'T', 'C', 'K'};
  o.insert(o.end(), magic, magic + 8);
  put(o, kCkptVersion);
  const auto& fields = trainer_config_fields();
  put(o, (uint32_t)fields.size());
  for (const ConfigField& f : fields) {
    const uint16_t len = (uint16_t)std::strlen(f.name);
    put(o, len);
    o.insert(o.end(), f.name, f.name + len);
    put(o, (uint8_t)f.kind);
    uint8_t raw[8] = {0};
    std::memcpy(raw, reinterpret_cast<const char*>(&I.cfg) + f.offset, f.kind == ConfigField::U64 ? 8 : 4);
    o.insert(o.end(), raw, raw + 8);
  }
  put(o, (int64_t)I.step);
  put(o, (uint64_t)I.rng);
  put(o, (uint64_t)I.n_params);
  const size_t at = o.size();
  o.resize(at + I.n_params * 4 * 3);
  float* dst = reinterpret_cast<float*>(o.data() + at);
  std::vector<float> tmp(I.n_params);
  I.params.download(tmp.data(), I.n_params); std::memcpy(dst, tmp.data(), I.n_params * 4);
  I.m.download(tmp.data(), I.n_params); std::memcpy(dst + I.n_params, tmp.data(), I.n_params * 4);
  I.v.download(tmp.data(), I.n_params); std::memcpy(dst + 2 * I.n_params, tmp.data(), I.n_params * 4);
  put(o, fnv1a(o.data(), o.size()));
  return o;
}

void Trainer::load_checkpoint(const uint8_t* data, size_t size) {
  if (size < 12 || std::memcmp(data, "DYNTETCK", 8) != 0)
    throw TrainerError("not a dyntet checkpoint (bad magic): pass a file written by saveCheckpoint()");
  uint32_t sum;
  std::memcpy(&sum, data + size - 4, 4);
  if (fnv1a(data, size - 4) != sum) throw TrainerError("checkpoint checksum mismatch: the file is corrupted or truncated");
  Reader r{data, size - 4};
  r.at = 8;
  const uint32_t ver = r.get<uint32_t>();
  if (ver != kCkptVersion)
    throw TrainerError("checkpoint version " + std::to_string(ver) + " is not supported (this build reads version " +
                       std::to_string(kCkptVersion) + ")");
  TrainerConfig cfg;
  const uint32_t nf = r.get<uint32_t>();
  const auto& fields = trainer_config_fields();
  for (uint32_t k = 0; k < nf; ++k) {
    const uint16_t len = r.get<uint16_t>();
    std::string name(len, '\0');
    r.bytes(&name[0], len);
    const uint8_t kind = r.get<uint8_t>();
    uint8_t raw[8];
    r.bytes(raw, 8);
    for (const ConfigField& f : fields)
      if (name == f.name && kind == (uint8_t)f.kind)
        std::memcpy(reinterpret_cast<char*>(&cfg) + f.offset, raw, f.kind == ConfigField::U64 ? 8 : 4);
  }
  const int64_t step = r.get<int64_t>();
  const uint64_t rng = r.get<uint64_t>();
  const uint64_t n = r.get<uint64_t>();
  Impl& I = *impl_;
  validate_config(cfg);
  I.cfg = cfg;
  I.setup();
  if (n != I.n_params || r.n - r.at != n * 12)
    throw TrainerError("checkpoint parameter count " + std::to_string(n) + " does not match its config (" +
                       std::to_string(I.n_params) + ")");
  std::vector<float> tmp(n);
  r.bytes(tmp.data(), n * 4); I.params.upload(tmp.data(), n);
  r.bytes(tmp.data(), n * 4); I.m.upload(tmp.data(), n);
  r.bytes(tmp.data(), n * 4); I.v.upload(tmp.data(), n);
  I.step = step;
  I.rng = rng;
}

std::vector<float> Trainer::parameters() const {
  std::vector<float> out(impl_->n_params);
  impl_->params.download(out.data(), out.size());
  return out;
}
const std::vector<ParamBlock>& Trainer::layout() const { return impl_->blocks; }
const TrainerConfig& Trainer::config() const { return impl_->cfg; }
int64_t Trainer::step_count() const { return impl_->step; }
float Trainer::deform_ramp() const { return impl_->deform_ramp(); }
Device Trainer::device() const { return impl_->dev; }
void Trainer::set_stage_timing(bool on) { impl_->timing = on; impl_->stage_ms.clear(); }
const std::vector<std::pair<std::string, double>>& Trainer::stage_times() const { return impl_->stage_ms; }

BackendInfo query_backends() {
  BackendInfo bi;
#if defined(__CUDACC__)
  bi.cuda_compiled = true;
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    bi.cuda_error = std::string(cudaGetErrorName(e)) + ": " + cudaGetErrorString(e);
    cudaGetLastError();
  } else if (n == 0) {
    bi.cuda_error = "no CUDA device found";
  } else {
    cudaDeviceProp p;
    if (cudaGetDeviceProperties(&p, 0) == cudaSuccess) bi.cuda_device = p.name;
    bi.cuda_usable = true;
  }
#else
  bi.cuda_error = "this build has no CUDA support (rebuild with DYNTET_CUDA=ON)";
#endif
  return bi;
}

// The model configuration of a trainer, as the asset's metadata states it (export.cpp).
AssetMetadata trainer_metadata(const Trainer& t) {
  const Trainer::Impl& I = *t.impl_;
  AssetMetadata m;
  m.width = I.S.W;
  m.height = I.S.H;
  m.camera = I.S.cam;
  for (int a = 0; a < 3; ++a) m.box_min[a] = I.S.bmin[a], m.box_max[a] = I.S.bmax[a];
  m.grid_res = I.S.R;
  m.active_band = I.S.band;
  m.texture = I.S.tex;
  m.deform = I.S.deform;
  m.condition = I.S.cond;
  return m;
}

}  // namespace dyntet
