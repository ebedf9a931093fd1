#include "deform.h"

#include "encoding.h"
#include "mlp.h"

namespace dyntet {
namespace train {

namespace {
void deform_check(const DeformParams& p, const char* op) {
  mlp_validate(p.cfg.mlp, op);
  op_require(p.cfg.n_freq >= 0 && p.cfg.n_freq <= 20, op, "n_freq must be 0..20");
  op_require(p.cfg.mlp.in == freq_encoding_size(p.cfg.n_freq) + p.cond_dim, op,
             "mlp.in must be 3 + 6 * n_freq + cond_dim = " + std::to_string(freq_encoding_size(p.cfg.n_freq) + p.cond_dim));
  op_require(p.cfg.mlp.out == 4, op, "mlp.out must be 4 (displacement xyz, sdf delta)");
  op_require(p.frames >= 0 && p.n >= 0, op, "n and frames must be >= 0");
  op_require(p.n * p.frames == 0 || (p.u && p.cond && p.elastic && p.params && p.scratch_in && p.scratch_out), op,
             "u, cond, elastic, params, scratch_in and scratch_out must be non-null");
}

// Rows are frame-major: row r = f * n + v.
void assemble(Backend b, const DeformParams& p) {
  const int nf = p.cfg.n_freq, enc = freq_encoding_size(nf), cd = p.cond_dim, in = p.cfg.mlp.in;
  const int64_t n = p.n;
  const float* u = p.u;
  const float* cond = p.cond;
  float* rows = p.scratch_in;
  launch_1d(b, n * p.frames, [=] DT_LAMBDA(int64_t r) {
    const int64_t f = r / n, v = r - f * n;
    float* row = rows + r * in;
    freq_encode(nf, u + 3 * v, row);
    for (int i = 0; i < cd; ++i) row[enc + i] = cond[f * cd + i];
  });
}
}  // namespace

void deform_forward(Backend b, const DeformParams& p) {
  deform_check(p, "deform_forward");
  op_require(p.n * p.frames == 0 || (p.disp && p.sdf_delta), "deform_forward", "disp and sdf_delta must be non-null");
  if (p.n * p.frames == 0) return;
  assemble(b, p);
  MlpParams m;
  m.cfg = p.cfg.mlp;
  m.n = p.n * p.frames;
  m.params = p.params;
  m.x = p.scratch_in;
  m.y = p.scratch_out;
  mlp_forward(b, m);
  const int64_t n = p.n;
  const float* o = p.scratch_out;
  const float* el = p.elastic;
  float* disp = p.disp;
  float* sd = p.sdf_delta;
  const float scale = p.cfg.freeze_sdf_delta ? 0.f : p.cfg.sdf_delta_scale;
  launch_1d(b, n * p.frames, [=] DT_LAMBDA(int64_t r) {
    const int64_t v = r % n;
    for (int a = 0; a < 3; ++a) disp[3 * r + a] = tanhf(o[4 * r + a]) * el[v];
    sd[r] = scale == 0.f ? 0.f : tanhf(o[4 * r + 3]) * scale;
  });
}

void deform_backward(Backend b, const DeformParams& p) {
  deform_check(p, "deform_backward");
  op_require(p.n * p.frames == 0 || p.g_disp, "deform_backward", "g_disp must be non-null");
  if (p.n * p.frames == 0) return;
  assemble(b, p);
  MlpParams m;
  m.cfg = p.cfg.mlp;
  m.n = p.n * p.frames;
  m.params = p.params;
  m.x = p.scratch_in;
  m.y = p.scratch_out;
  mlp_forward(b, m);
  // Output gradients overwrite the MLP outputs in place (each row reads then writes its own 4).
  const int64_t n = p.n;
  const int B = p.frames;
  float* o = p.scratch_out;
  const float* el = p.elastic;
  const float* gd = p.g_disp;
  const float* gs = p.g_sdf_delta;
  float* g_el = p.g_elastic;
  const float scale = p.cfg.freeze_sdf_delta ? 0.f : p.cfg.sdf_delta_scale;
  if (g_el)
    launch_1d(b, n, [=] DT_LAMBDA(int64_t v) {
      float s = 0.f;
      for (int f = 0; f < B; ++f)
        for (int a = 0; a < 3; ++a) s += gd[3 * ((int64_t)f * n + v) + a] * tanhf(o[4 * ((int64_t)f * n + v) + a]);
      g_el[v] += s;
    });
  launch_1d(b, n * B, [=] DT_LAMBDA(int64_t r) {
    const int64_t v = r % n;
    for (int a = 0; a < 3; ++a) {
      const float t = tanhf(o[4 * r + a]);
      o[4 * r + a] = gd[3 * r + a] * el[v] * (1.f - t * t);
    }
    const float t = tanhf(o[4 * r + 3]);
    o[4 * r + 3] = (gs && scale != 0.f) ? gs[r] * scale * (1.f - t * t) : 0.f;
  });
  // Input gradients reuse the input rows (the fused kernel reads a tile before writing it; the
  // per-point path reads its row before writing it), so no extra scratch is needed.
  m.g_y = p.scratch_out;
  m.g_params = p.g_params;
  m.g_x = p.g_cond ? p.scratch_in : nullptr;
  mlp_backward(b, m);
  if (p.g_cond) {
    // Sum d/dcond over vertex chunks of each frame, then one atomic per (frame, chunk, dim).
    const int enc = freq_encoding_size(p.cfg.n_freq), cd = p.cond_dim, in = p.cfg.mlp.in;
    const int64_t chunk = 1024, chunks = (n + chunk - 1) / chunk;
    const float* gx = p.scratch_in;
    float* g_cond = p.g_cond;
    launch_1d(b, (int64_t)B * chunks * cd, [=] DT_LAMBDA(int64_t e) {
      const int d = (int)(e % cd);
      const int64_t c = (e / cd) % chunks, f = e / ((int64_t)cd * chunks);
      const int64_t v1 = (c + 1) * chunk < n ? (c + 1) * chunk : n;
      float s = 0.f;
      for (int64_t v = c * chunk; v < v1; ++v) s += gx[(f * n + v) * in + enc + d];
      atomic_add(g_cond + f * cd + d, s);
    });
  }
}

}  // namespace train
}  // namespace dyntet
