#include "deform.h"

#include <mutex>

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

// CUDA: layer 0's input row is [freq(u_v), cond_f], so its product splits into a per-vertex part
// W0[:, :enc] freq(u_v) and a per-frame part b0 + W0[:, enc:] cond_f. Per frame the MLP op then
// runs over the n encoded vertices with layer 0 narrowed to the encoding and the frame's condition
// folded into its bias (per-frame parameter copies, a few KB): no input rows of B x n x in floats,
// no input gradient of layer 0, and layer 0's product over the positions shrinks from in to enc
// inputs. Same math as deform_vertex up to the order of layer 0's float sums. Backward: the
// per-frame copies' gradients fold back: W0[:, :enc] and the other layers sum over frames; the
// narrowed bias gradient gb_f gives db0 = sum_f gb_f, dW0[o][enc + i] = sum_f gb_f[o] cond_f[i]
// and d/dcond_f[i] = sum_o W0[o][enc + i] gb_f[o] (one owner per element, fixed order).
// (The split code is written for either backend; the CPU op keeps the row form as the reference.)
struct DeformWorkspace {
  std::mutex mu;
  Buffer<float> buf;
};
DeformWorkspace& deform_workspace() {
  static DeformWorkspace* w = new DeformWorkspace();  // never destroyed: no cudaFree after the runtime shuts down
  return *w;
}

struct SplitPlan {
  MlpConfig cfg;      // the per-frame network: layer 0 takes the encoding only
  int enc = 0, cd = 0, in = 0, o0 = 0;
  int64_t np = 0;     // its parameter count
  float* enc_rows = nullptr;  // n x enc
  float* pf = nullptr;        // B x np per-frame parameters
  float* gf = nullptr;        // B x np per-frame parameter gradients
  float* gy = nullptr;        // backward: B x n x 4 output gradients
  float* acts = nullptr;      // backward without DeformParams::acts: one frame's saved activations
  int64_t hc = 0;             // mlp_hidden_count(cfg) (per-frame floats per row of acts)
};

SplitPlan split_prepare(Backend be, const DeformParams& p, DeformWorkspace& w, bool backward) {
  SplitPlan s;
  s.enc = freq_encoding_size(p.cfg.n_freq);
  s.cd = p.cond_dim;
  s.in = p.cfg.mlp.in;
  s.cfg = p.cfg.mlp;
  s.cfg.in = s.enc;
  s.o0 = mlp_layer_out(s.cfg, 0);
  s.np = (int64_t)mlp_param_count(s.cfg);
  s.hc = mlp_hidden_count(s.cfg);
  const int64_t n = p.n, B = p.frames;
  // Backward: per-frame gradients, output gradients, and (without saved ones) one frame's activations.
  const int64_t back = backward ? B * s.np + B * n * 4 + (p.acts ? 0 : n * s.hc) : 0;
  float* base = w.buf.reserve(be, (size_t)(n * s.enc + B * s.np + back));
  s.enc_rows = base;
  s.pf = base + n * s.enc;
  if (backward) {
    s.gf = s.pf + B * s.np;
    s.gy = s.gf + B * s.np;
    s.acts = p.acts ? nullptr : s.gy + B * n * 4;
  }
  const int enc = s.enc, cd = s.cd, in = s.in, o0 = s.o0;
  const float* u = p.u;
  float* er = s.enc_rows;
  launch_1d(be, n * enc, [=] DT_LAMBDA(int64_t e) {
    const int64_t v = e / enc;
    er[e] = freq_encode_element(u + 3 * v, (int)(e - v * enc));
  });
  const int64_t np = s.np, l0 = (int64_t)o0 * (enc + 1), l0_full = (int64_t)o0 * (in + 1);
  const float* W = p.params;
  const float* cond = p.cond;
  float* pf = s.pf;
  launch_1d(be, B * np, [=] DT_LAMBDA(int64_t e) {
    const int64_t f = e / np, j = e - f * np;
    float v;
    if (j < (int64_t)o0 * enc) {
      const int64_t o = j / enc, i = j - o * enc;
      v = W[o * in + i];
    } else if (j < l0) {
      const int64_t o = j - (int64_t)o0 * enc;
      v = W[(int64_t)o0 * in + o];
      for (int i = 0; i < cd; ++i) v += W[o * in + enc + i] * cond[f * cd + i];
    } else {
      v = W[j - l0 + l0_full];
    }
    pf[e] = v;
  });
  return s;
}

// d/d elastic from the MLP outputs in scratch_out: one sum per vertex over frames, in frame order.
void elastic_grads(Backend b, const DeformParams& p) {
  if (!p.g_elastic) return;
  const int64_t n = p.n;
  const int B = p.frames;
  const float* o = p.scratch_out;
  const float* gd = p.g_disp;
  float* g_el = p.g_elastic;
  launch_1d(b, n, [=] DT_LAMBDA(int64_t v) {
    float s = 0.f;
    for (int f = 0; f < B; ++f)
      for (int a = 0; a < 3; ++a) s += gd[3 * ((int64_t)f * n + v) + a] * tanhf(o[4 * ((int64_t)f * n + v) + a]);
    g_el[v] += s;
  });
}

// The MLP's output gradients of rows [r0, r0 + rows) (through the tanh bounds) into g, 4 per row;
// g may be the rows' own outputs (each row reads then writes its own 4).
void output_grads(Backend b, const DeformParams& p, int64_t r0, int64_t rows, float* g) {
  const int64_t n = p.n;
  const float* o = p.scratch_out + r0 * 4;
  const float* el = p.elastic;
  const float* gd = p.g_disp + r0 * 3;
  const float* gs = p.g_sdf_delta ? p.g_sdf_delta + r0 : nullptr;
  const float scale = p.cfg.freeze_sdf_delta ? 0.f : p.cfg.sdf_delta_scale;
  launch_1d(b, rows, [=] DT_LAMBDA(int64_t r) {
    const int64_t v = (r0 + r) % n;
    float t[4];
    for (int a = 0; a < 4; ++a) t[a] = tanhf(o[4 * r + a]);
    for (int a = 0; a < 3; ++a) g[4 * r + a] = gd[3 * r + a] * el[v] * (1.f - t[a] * t[a]);
    g[4 * r + 3] = (gs && scale != 0.f) ? gs[r] * scale * (1.f - t[3] * t[3]) : 0.f;
  });
}

// Frame f's network over the encoded vertices: outputs in its slice of scratch_out, hidden outputs
// in acts when given.
MlpParams split_frame(const DeformParams& p, const SplitPlan& s, int f, float* acts) {
  MlpParams m;
  m.cfg = s.cfg;
  m.n = p.n;
  m.params = s.pf + f * s.np;
  m.x = s.enc_rows;
  m.y = p.scratch_out + (int64_t)f * p.n * 4;
  m.acts = acts;
  return m;
}
float* frame_acts(const DeformParams& p, const SplitPlan& s, int f) { return p.acts ? p.acts + (int64_t)f * p.n * s.hc : nullptr; }

void split_forward(Backend be, const DeformParams& p, const SplitPlan& s) {
  for (int f = 0; f < p.frames; ++f) mlp_forward(be, split_frame(p, s, f, frame_acts(p, s, f)));
}

// Per frame: (without saved activations, its forward again, saving them for one frame at a time)
// the output gradients, then its backward from the saved activations -> per-frame gradients ->
// g_params and g_cond.
void split_backward(Backend be, const DeformParams& p, const SplitPlan& s) {
  const int64_t B = p.frames, np = s.np, n = p.n;
  float* gz = s.gf;
  launch_1d(be, B * np, [=] DT_LAMBDA(int64_t e) { gz[e] = 0.f; });
  for (int f = 0; f < p.frames; ++f) {
    MlpParams m = split_frame(p, s, f, p.acts ? frame_acts(p, s, f) : s.acts);
    if (!p.acts) mlp_forward(be, m);
    if (!p.g_params && !p.g_cond) continue;  // the forward still leaves the outputs for g_elastic
    float* gy = s.gy + (int64_t)f * n * 4;
    output_grads(be, p, (int64_t)f * n, n, gy);
    m.g_y = gy;
    m.g_params = s.gf + f * np;
    mlp_backward(be, m);
  }
  if (!p.g_params && !p.g_cond) return;
  const int enc = s.enc, cd = s.cd, in = s.in, o0 = s.o0;
  const int64_t l0 = (int64_t)o0 * (enc + 1), l0_full = (int64_t)o0 * (in + 1);
  const float* gf = s.gf;
  const float* cond = p.cond;
  if (p.g_params) {
    const int64_t np_full = (int64_t)mlp_param_count(p.cfg.mlp);
    float* g = p.g_params;
    launch_1d(be, np_full, [=] DT_LAMBDA(int64_t j) {
      float s2 = 0.f;
      if (j < (int64_t)o0 * in) {
        const int64_t o = j / in, i = j - o * in;
        for (int64_t f = 0; f < B; ++f)
          s2 += i < enc ? gf[f * np + o * enc + i] : gf[f * np + (int64_t)o0 * enc + o] * cond[f * cd + (i - enc)];
      } else if (j < l0_full) {
        const int64_t o = j - (int64_t)o0 * in;
        for (int64_t f = 0; f < B; ++f) s2 += gf[f * np + (int64_t)o0 * enc + o];
      } else {
        for (int64_t f = 0; f < B; ++f) s2 += gf[f * np + j - l0_full + l0];
      }
      g[j] += s2;
    });
  }
  if (p.g_cond) {
    const float* W = p.params;
    float* gc = p.g_cond;
    launch_1d(be, B * cd, [=] DT_LAMBDA(int64_t e) {
      const int64_t f = e / cd, i = e - f * cd;
      float s2 = 0.f;
      for (int o = 0; o < o0; ++o) s2 += W[(int64_t)o * in + enc + i] * gf[f * np + (int64_t)o0 * enc + o];
      gc[e] += s2;
    });
  }
}

// The CUDA op takes the split form; DYNTET_DEFORM_SPLIT_CPU (a build-time switch for tests of the
// split algebra on the CPU) makes the CPU op take it too.
inline bool use_split(Backend b) {
#if defined(DYNTET_DEFORM_SPLIT_CPU)
  (void)b;
  return true;
#else
  return b == Backend::CUDA;
#endif
}

// Writes disp and sdf_delta from the MLP outputs in scratch_out.
void deform_epilogue(Backend b, const DeformParams& p) {
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

}  // namespace

// The row form: one input row per (frame, vertex), then the MLP over all of them (the CPU reference).
static MlpParams row_mlp(const DeformParams& p) {
  MlpParams m;
  m.cfg = p.cfg.mlp;
  m.n = p.n * p.frames;
  m.params = p.params;
  m.x = p.scratch_in;
  m.y = p.scratch_out;
  return m;
}

static void row_forward(Backend b, const DeformParams& p) {
  assemble(b, p);
  mlp_forward(b, row_mlp(p));
}

void deform_forward(Backend b, const DeformParams& p) {
  deform_check(p, "deform_forward");
  op_require(p.n * p.frames == 0 || (p.disp && p.sdf_delta), "deform_forward", "disp and sdf_delta must be non-null");
  if (p.n * p.frames == 0) return;
  if (use_split(b)) {
    DeformWorkspace& w = deform_workspace();
    std::lock_guard<std::mutex> lock(w.mu);
    split_forward(b, p, split_prepare(b, p, w, false));
    deform_epilogue(b, p);
    return;
  }
  row_forward(b, p);
  deform_epilogue(b, p);
}

void deform_backward(Backend b, const DeformParams& p) {
  deform_check(p, "deform_backward");
  op_require(p.n * p.frames == 0 || p.g_disp, "deform_backward", "g_disp must be non-null");
  if (p.n * p.frames == 0) return;
  const int64_t n = p.n;
  if (use_split(b)) {
    DeformWorkspace& w = deform_workspace();
    std::lock_guard<std::mutex> lock(w.mu);
    split_backward(b, p, split_prepare(b, p, w, true));
    elastic_grads(b, p);
    return;
  }
  row_forward(b, p);
  elastic_grads(b, p);
  // Output gradients overwrite the MLP outputs in place (each row reads then writes its own 4).
  output_grads(b, p, 0, n * p.frames, p.scratch_out);
  MlpParams m = row_mlp(p);
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
    launch_1d(b, (int64_t)p.frames * chunks * cd, [=] DT_LAMBDA(int64_t e) {
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
