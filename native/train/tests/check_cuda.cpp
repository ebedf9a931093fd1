// CUDA vs CPU: every training op forward and backward on the same random inputs on both
// backends; prints a table of errors and exits non-zero when one is out of tolerance.
// Error = max_i |cuda_i - cpu_i| / max_i |cpu_i| (normwise over the array: float atomics and
// FMA contraction reorder roundings, so single tiny entries carry no meaning on their own).
// Tolerances: 1e-5 forward, 1e-4 gradients (fp32). The MLPs run on every CUDA path (tiled fp32,
// the earlier fused kernels, and the opt-in TF32 tensor-core path with its own tolerance, see
// check_mlp).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <deque>
#include <string>
#include <vector>

#include "../adam.h"
#include "../condition.h"
#include "../deform.h"
#include "../encoding.h"
#include "../losses.h"
#include "../mlp.h"
#include "harness.h"

using namespace dyntet;
using namespace dyntet::train;

namespace {
int g_fail = 0;
std::deque<Buffer<float>> g_bufs;
std::deque<Buffer<double>> g_dbufs;

float* dev(const std::vector<float>& h) {
  g_bufs.emplace_back(Backend::CUDA, h.size() ? h.size() : 1);
  if (!h.empty()) g_bufs.back().upload(h.data(), h.size());
  return g_bufs.back().data();
}
double* dev_double() {
  g_dbufs.emplace_back(Backend::CUDA, 1);
  return g_dbufs.back().data();
}
int32_t* dev_int(const std::vector<int32_t>& h, std::deque<Buffer<int32_t>>& keep) {
  keep.emplace_back(Backend::CUDA, h.size());
  keep.back().upload(h.data(), h.size());
  return keep.back().data();
}
std::vector<float> down(const float* d, size_t n) {
  for (auto& b : g_bufs)
    if (b.data() == d) { std::vector<float> h(n); b.download(h.data(), n); return h; }
  throw std::runtime_error("unknown device buffer");
}
double down_double(const double* d) {
  for (auto& b : g_dbufs)
    if (b.data() == d) { double v; b.download(&v, 1); return v; }
  throw std::runtime_error("unknown device buffer");
}

void report(const std::string& op, const char* part, const std::vector<float>& cpu, const std::vector<float>& cuda, double tol) {
  double num = 0, den = 0;
  bool finite = true;
  for (size_t i = 0; i < cpu.size(); ++i) {
    if (!std::isfinite(cuda[i]) || !std::isfinite(cpu[i])) finite = false;
    num = std::max(num, (double)std::fabs(cuda[i] - cpu[i]));
    den = std::max(den, (double)std::fabs(cpu[i]));
  }
  const double err = den > 0 ? num / den : num;
  const bool ok = finite && err <= tol && cpu.size() == cuda.size();
  if (!ok) ++g_fail;
  std::printf("| %-34s | %-10s | %10zu | %9.2e | %7.0e | %-4s |\n", op.c_str(), part, cpu.size(), err, tol, ok ? "ok" : "FAIL");
}
// Normwise rms error ||cuda - cpu||_2 / ||cpu||_2 (for the TF32 path, see check_mlp).
void report_rms(const std::string& op, const char* part, const std::vector<float>& cpu, const std::vector<float>& cuda, double tol) {
  double num = 0, den = 0;
  bool finite = cpu.size() == cuda.size();
  for (size_t i = 0; i < cpu.size() && finite; ++i) {
    if (!std::isfinite(cuda[i]) || !std::isfinite(cpu[i])) finite = false;
    num += ((double)cuda[i] - cpu[i]) * ((double)cuda[i] - cpu[i]);
    den += (double)cpu[i] * cpu[i];
  }
  const double err = den > 0 ? std::sqrt(num / den) : std::sqrt(num);
  const bool ok = finite && err <= tol;
  if (!ok) ++g_fail;
  std::printf("| %-34s | %-10s | %10zu | %9.2e | %7.0e | %-4s |\n", op.c_str(), part, cpu.size(), err, tol, ok ? "ok" : "FAIL");
}
void report_value(const std::string& op, double cpu, double cuda) {
  report(op, "value", {(float)cpu}, {(float)cuda}, 1e-5);
}

// saved: the CUDA forward also writes the Jacobian (HashGridParams::jac) and the backward takes d/du
// from it; compared with the CPU gather path (and the Jacobian with the CPU's). extra > 0: on CUDA
// the encoding fills rows `extra` floats wider than itself (HashGridParams::row_stride, as the
// trainer's texture rows), compared with the CPU's contiguous rows.
void check_hashgrid(HashGridConfig cfg, int64_t n, std::string name, bool saved = false, int extra = 0) {
  dt_test::Rng rng(21);
  const HashGrid g = make_hashgrid(cfg);
  std::vector<float> u = rng.vec(n * 3, 0.f, 1.f), table = rng.vec(g.param_count(), -1e-1f, 1e-1f);
  std::vector<float> gout = rng.vec(n * g.out_dim(), -1.f, 1.f);
  std::vector<float> out(n * g.out_dim()), gt(table.size(), 0.f), gu(n * 3);
  HashGridParams p; p.grid = g; p.n = n;
  p.u = u.data(); p.table = table.data(); p.out = out.data(); p.g_out = gout.data(); p.g_table = gt.data(); p.g_u = gu.data();
  hashgrid_forward(Backend::CPU, p);
  hashgrid_backward(Backend::CPU, p);
  HashGridParams d = p;
  d.u = dev(u); d.table = dev(table); d.out = dev(out); d.g_out = dev(gout); d.g_table = dev(std::vector<float>(table.size(), 0.f)); d.g_u = dev(gu);
  std::vector<float> jac;
  if (saved) {
    name += " saved";
    jac.assign(hashgrid_jac_count(g, n), 0.f);
    HashGridParams c = p;
    std::vector<float> out_c(out.size());
    c.out = out_c.data(); c.jac = jac.data();
    hashgrid_forward(Backend::CPU, c);
    d.jac = dev(std::vector<float>(jac.size(), NAN));
  }
  const int64_t D = g.out_dim(), W = D + extra;
  if (extra > 0) {
    name += " rows +" + std::to_string(extra);
    std::vector<float> wide(n * W, 0.f);
    for (int64_t i = 0; i < n; ++i) std::copy(gout.begin() + i * D, gout.begin() + (i + 1) * D, wide.begin() + i * W);
    d.g_out = dev(wide);
    d.out = dev(std::vector<float>(n * W, 0.f));
    d.row_stride = W;
  }
  hashgrid_forward(Backend::CUDA, d);
  hashgrid_backward(Backend::CUDA, d);
  std::vector<float> out_d = down(d.out, n * W);
  for (int64_t i = 1; extra > 0 && i < n; ++i) std::copy(out_d.begin() + i * W, out_d.begin() + i * W + D, out_d.begin() + i * D);
  out_d.resize(n * D);
  report(name, "forward", out, out_d, 1e-5);
  if (saved) report(name, "jacobian", jac, down(d.jac, jac.size()), 1e-5);
  report(name, "d/dtable", gt, down(d.g_table, gt.size()), 1e-4);
  report(name, "d/du", gu, down(d.g_u, gu.size()), 1e-4);
}

void check_freq() {
  dt_test::Rng rng(22);
  const int nf = 6, D = freq_encoding_size(nf);
  const int64_t n = 10000;
  std::vector<float> u = rng.vec(n * 3, 0.f, 1.f), out(n * D), gout = rng.vec(n * D, -1.f, 1.f), gu(n * 3);
  FreqParams p; p.n_freq = nf; p.n = n; p.u = u.data(); p.out = out.data(); p.g_out = gout.data(); p.g_u = gu.data();
  freq_forward(Backend::CPU, p);
  freq_backward(Backend::CPU, p);
  FreqParams d = p;
  d.u = dev(u); d.out = dev(out); d.g_out = dev(gout); d.g_u = dev(gu);
  freq_forward(Backend::CUDA, d);
  freq_backward(Backend::CUDA, d);
  report("freq 6", "forward", out, down(d.out, out.size()), 1e-5);
  report("freq 6", "d/du", gu, down(d.g_u, gu.size()), 1e-4);
}

// True when a hidden pre-activation of x lies within `margin` (relative to the sum of |terms|)
// of a ReLU/LeakyReLU kink. There fp32 rounding in a different order (FMA contraction on the GPU)
// may legitimately pick the other side and flip a whole derivative, so the check keeps its random
// inputs away from kinks instead of loosening the tolerance.
bool near_kink(const MlpConfig& c, const float* params, const float* x, float margin = 1e-4f) {
  if (c.hidden_act != kActReLU && c.hidden_act != kActLeakyReLU) return false;
  std::vector<float> cur(x, x + c.in), nxt;
  const float* p = params;
  for (int k = 0; k + 1 < mlp_layer_count(c); ++k) {
    const int n_in = mlp_layer_in(c, k), n_out = mlp_layer_out(c, k);
    nxt.assign(n_out, 0.f);
    for (int o = 0; o < n_out; ++o) {
      float acc = p[(size_t)n_out * n_in + o], mag = std::fabs(acc);
      for (int i = 0; i < n_in; ++i) { acc += p[(size_t)o * n_in + i] * cur[i]; mag += std::fabs(p[(size_t)o * n_in + i] * cur[i]); }
      if (std::fabs(acc) <= margin * mag) return true;
      nxt[o] = activate(c.hidden_act, acc);
    }
    p += (size_t)n_out * (n_in + 1);
    cur.swap(nxt);
  }
  return false;
}

// path: which CUDA implementation (the CPU side is always the reference loop).
// TF32 (opt-in): inputs of every product are rounded to a 10-bit mantissa (unit roundoff
// u = 2^-11 = 4.9e-4), accumulation stays fp32. A layer's output then carries a relative error of
// about u * sqrt(sum w^2 x^2) / |sum w x|, ~u for the random-sign sums here, growing by about that
// much per layer: ~3e-3 rms after 6 layers, so 1e-2 rms for forward outputs. Gradients add one
// more such error per layer, and where a hidden ReLU pre-activation lies within that error of the
// kink (closer than the 1e-4 that near_kink keeps inputs from) TF32 may flip the unit and move that
// point's input gradient by up to ~1/sqrt(width) of its size; with ~10^3 hidden units per point a
// few per cent of the points can have one, so gradients get 5e-2 rms for ReLU-type nets and 1e-2
// for smooth ones. rms, not max: a flipped unit is a legitimate outlier, a wrong tile is not (a
// wrong tile or index shows as O(1) rms error; NaN fails regardless).
// saved: the CUDA forward stores the hidden outputs (MlpParams::acts) and the backward uses them.
// gy_mul scales the output gradient (the trainer's are ~1e-7: a mean over millions of pixels).
void check_mlp(MlpConfig c, int64_t n, MlpCudaPath path = MlpCudaPath::Tiled, int64_t max_chunk = 0, bool saved = false, float gy_mul = 1.f) {
  dt_test::Rng rng(23 + c.width);
  std::string name = "mlp " + std::to_string(c.in) + "-" + std::to_string(c.width) + "x" + std::to_string(c.hidden_layers) + "-" +
                     std::to_string(c.out) + " (" + mlp_cuda_path(c, path) + ")";
  if (max_chunk) name += " chunk " + std::to_string(max_chunk);
  if (saved) name += " saved";
  if (gy_mul != 1.f) { char b[32]; std::snprintf(b, sizeof b, " g_y x%g", gy_mul); name += b; }
  const float ws = 1.f / std::sqrt((float)std::max(c.in, c.width));
  std::vector<float> params = rng.vec(mlp_param_count(c), -2.f * ws, 2.f * ws), x = rng.vec(n * c.in, -1.f, 1.f);
  for (int64_t i = 0; i < n; ++i)
    while (near_kink(c, params.data(), x.data() + i * c.in))
      for (int k = 0; k < c.in; ++k) x[i * c.in + k] = rng.uni(-1.f, 1.f);
  std::vector<float> y(n * c.out), gy = rng.vec(n * c.out, -gy_mul, gy_mul), gp(params.size(), 0.f), gx(x.size());
  MlpParams p; p.cfg = c; p.n = n; p.params = params.data(); p.x = x.data(); p.y = y.data(); p.g_y = gy.data();
  p.g_params = gp.data(); p.g_x = gx.data();
  mlp_forward(Backend::CPU, p);
  mlp_backward(Backend::CPU, p);
  MlpParams d = p;
  d.path = path;
  d.params = dev(params); d.x = dev(x); d.y = dev(y); d.g_y = dev(gy); d.g_params = dev(std::vector<float>(params.size(), 0.f)); d.g_x = dev(gx);
  if (saved) d.acts = dev(std::vector<float>(std::max<int64_t>(1, mlp_hidden_count(c) * n), 0.f));
  const int64_t old_chunk = mlp_set_tiled_max_chunk(max_chunk);
  mlp_forward(Backend::CUDA, d);
  mlp_backward(Backend::CUDA, d);
  mlp_set_tiled_max_chunk(old_chunk);
  const std::string used = mlp_cuda_path(c, path);
  if (used == "tiled tf32" || used == "half" || used == "half layered") {
    // fp16 operands (the half paths) have TF32's unit roundoff (2^-11): the same bounds apply.
    const bool kinked = c.hidden_layers > 0 && (c.hidden_act == kActReLU || c.hidden_act == kActLeakyReLU);
    report_rms(name, "forward", y, down(d.y, y.size()), 1e-2);
    report_rms(name, "d/dparams", gp, down(d.g_params, gp.size()), kinked ? 5e-2 : 1e-2);
    report_rms(name, "d/dx", gx, down(d.g_x, gx.size()), kinked ? 5e-2 : 1e-2);
    return;
  }
  report(name, "forward", y, down(d.y, y.size()), 1e-5);
  report(name, "d/dparams", gp, down(d.g_params, gp.size()), 1e-4);
  report(name, "d/dx", gx, down(d.g_x, gx.size()), 1e-4);
}

void check_condition() {
  dt_test::Rng rng(24);
  ConditionConfig c;
  const int64_t n = 16;
  std::vector<float> params = rng.vec(condition_param_count(c), -0.2f, 0.2f), win = rng.vec(n * c.window * 52, 0.f, 1.f);
  std::vector<float> out(n * c.out_dim), gout = rng.vec(out.size(), -1.f, 1.f), gp(params.size(), 0.f), gw(win.size());
  ConditionParams p; p.cfg = c; p.n = n; p.params = params.data(); p.windows = win.data(); p.out = out.data();
  p.g_out = gout.data(); p.g_params = gp.data(); p.g_windows = gw.data();
  condition_forward_batch(Backend::CPU, p);
  condition_backward_batch(Backend::CPU, p);
  ConditionParams d = p;
  d.params = dev(params); d.windows = dev(win); d.out = dev(out); d.g_out = dev(gout); d.g_params = dev(std::vector<float>(gp.size(), 0.f)); d.g_windows = dev(gw);
  condition_forward_batch(Backend::CUDA, d);
  condition_backward_batch(Backend::CUDA, d);
  report("condition (default)", "forward", out, down(d.out, out.size()), 1e-5);
  report("condition (default)", "d/dparams", gp, down(d.g_params, gp.size()), 1e-4);
  report("condition (default)", "d/dwindow", gw, down(d.g_windows, gw.size()), 1e-4);
}

// The CUDA deformation runs its MLP per frame on the encoded vertices with the condition folded
// into layer 0's bias (deform.cpp); checked against the CPU loop over [freq(u), cond] rows.
// width: the MLP's hidden width (model.h's default 64; the benchmark's 128). On the reduced-
// precision paths (tf32, half) the errors are normwise rms with check_mlp's bounds. saved: the
// forward keeps the activations (DeformParams::acts) and the backward starts from them.
void check_deform(MlpCudaPath path, int width = 64, int B = 2, bool saved = false) {
  mlp_set_cuda_path(path);
  DeformConfig c;  // model.h's default: 6 frequencies, 16-d condition, 64 wide
  c.mlp.width = width;
  dt_test::Rng rng(25);
  // mlp_cuda_path names the per-frame network the CUDA op runs (its input: the encoding).
  MlpConfig frame_mlp = c.mlp;
  frame_mlp.in = freq_encoding_size(c.n_freq);
  const std::string used = mlp_cuda_path(frame_mlp);
  const std::string name = "deform (B=" + std::to_string(B) + ", " + std::to_string(width) + " wide, " + used + (saved ? ", saved" : "") + ")";
  const bool reduced = used == "tiled tf32" || used == "half" || used == "half layered";
  const int cd = 16;
  const int64_t n = 3000;
  std::vector<float> u = rng.vec(n * 3, 0.f, 1.f), cond = rng.vec(B * cd, -1.f, 1.f), el = rng.vec(n, 0.2f, 1.f);
  std::vector<float> params = rng.vec(mlp_param_count(c.mlp), -0.2f, 0.2f);
  std::vector<float> si(n * B * c.mlp.in), so(n * B * 4), disp(n * B * 3), sd(n * B);
  // Keep every (vertex, frame) row away from ReLU kinks (see near_kink).
  for (int64_t v = 0; v < n; ++v)
    for (bool again = true; again;) {
      again = false;
      for (int f = 0; f < B && !again; ++f) {
        std::vector<float> row(c.mlp.in);
        freq_encode(c.n_freq, u.data() + 3 * v, row.data());
        for (int i = 0; i < cd; ++i) row[freq_encoding_size(c.n_freq) + i] = cond[f * cd + i];
        again = near_kink(c.mlp, params.data(), row.data());
      }
      if (again)
        for (int a = 0; a < 3; ++a) u[3 * v + a] = rng.uni(0.f, 1.f);
    }
  std::vector<float> gd = rng.vec(disp.size(), -1.f, 1.f), gs = rng.vec(sd.size(), -1.f, 1.f);
  std::vector<float> gp(params.size(), 0.f), gc(cond.size(), 0.f), ge(n, 0.f);
  DeformParams p; p.cfg = c; p.n = n; p.frames = B; p.cond_dim = cd; p.u = u.data(); p.cond = cond.data(); p.elastic = el.data();
  p.params = params.data(); p.scratch_in = si.data(); p.scratch_out = so.data(); p.disp = disp.data(); p.sdf_delta = sd.data();
  p.g_disp = gd.data(); p.g_sdf_delta = gs.data(); p.g_params = gp.data(); p.g_cond = gc.data(); p.g_elastic = ge.data();
  deform_forward(Backend::CPU, p);
  deform_backward(Backend::CPU, p);
  DeformParams d = p;
  d.u = dev(u); d.cond = dev(cond); d.elastic = dev(el); d.params = dev(params); d.scratch_in = dev(si); d.scratch_out = dev(so);
  d.disp = dev(disp); d.sdf_delta = dev(sd); d.g_disp = dev(gd); d.g_sdf_delta = dev(gs);
  d.g_params = dev(std::vector<float>(gp.size(), 0.f)); d.g_cond = dev(std::vector<float>(gc.size(), 0.f)); d.g_elastic = dev(std::vector<float>(n, 0.f));
  if (saved) d.acts = dev(std::vector<float>((size_t)(B * mlp_hidden_count(frame_mlp) * n), 0.f));
  deform_forward(Backend::CUDA, d);
  auto rep = [&](const char* part, const std::vector<float>& cpu, const float* dv, double tol, double tol_reduced) {
    if (reduced) report_rms(name, part, cpu, down(dv, cpu.size()), tol_reduced);
    else report(name, part, cpu, down(dv, cpu.size()), tol);
  };
  rep("disp", disp, d.disp, 1e-5, 1e-2);
  rep("sdf delta", sd, d.sdf_delta, 1e-5, 1e-2);
  deform_backward(Backend::CUDA, d);
  rep("d/dparams", gp, d.g_params, 1e-4, 5e-2);
  rep("d/dcond", gc, d.g_cond, 1e-4, 5e-2);
  rep("d/delastic", ge, d.g_elastic, 1e-4, 1e-2);
  mlp_set_cuda_path(MlpCudaPath::Auto);
}

// Runs one loss on both backends: `run(backend, value, in_ptrs..., grad)` via two closures.
template <class Run>
void check_loss(const char* name, const std::vector<std::vector<float>>& inputs, size_t grad_size, Run run) {
  std::vector<const float*> hin, din;
  for (auto& v : inputs) { hin.push_back(v.data()); din.push_back(dev(v)); }
  std::vector<float> g(grad_size, 0.f);
  double v = 0;
  run(Backend::CPU, hin, &v, g.data());
  double* dv = dev_double();
  float* dg = dev(std::vector<float>(grad_size, 0.f));
  run(Backend::CUDA, din, dv, dg);
  report_value(name, v, down_double(dv));
  report(name, "gradient", g, down(dg, grad_size), 1e-4);
}

void check_losses() {
  dt_test::Rng rng(26);
  const int B = 2, H = 96, W = 80, C = 3;
  const int64_t pix = (int64_t)B * H * W, n = pix * C;
  std::vector<float> pred = rng.vec(n, 0.f, 1.f), target(n), mask = rng.vec(pix, 0.f, 1.f), cov = rng.vec(pix, 0.01f, 0.99f);
  for (int64_t i = 0; i < n; ++i) target[i] = clampf(pred[i] + rng.uni(-0.2f, 0.2f), 0.f, 1.f);
  check_loss("masked_l2", {pred, target, mask}, n, [&](Backend b, std::vector<const float*> in, double* v, float* g) {
    MaskedL2Params p; p.n = n; p.channels = C; p.pred = in[0]; p.target = in[1]; p.mask = in[2]; p.scale = 1.f / n; p.value = v; p.g_pred = g;
    masked_l2(b, p); });
  for (auto mode : {SilhouetteMode::L2, SilhouetteMode::BCE})
    check_loss(mode == SilhouetteMode::L2 ? "silhouette L2" : "silhouette BCE", {cov, mask}, pix,
               [&](Backend b, std::vector<const float*> in, double* v, float* g) {
      SilhouetteParams p; p.n = pix; p.mode = mode; p.coverage = in[0]; p.mask = in[1]; p.scale = 1.f / pix; p.value = v; p.g_coverage = g;
      silhouette_loss(b, p); });
  std::vector<float> boxes = {10, 20, 50, 40, 5, 5, 30, 30, 40, 10, 70, 35, 0, 0, 80, 96, 12, 14, 20, 22, 60, 60, 79, 90};
  check_loss("box_l2", {pred, target, boxes}, n, [&](Backend b, std::vector<const float*> in, double* v, float* g) {
    BoxL2Params p; p.frames = B; p.height = H; p.width = W; p.channels = C; p.pred = in[0]; p.target = in[1]; p.boxes = in[2];
    p.scale = 1e-3f; p.value = v; p.g_pred = g; box_l2(b, p); });
  for (auto w : {SsimWindow::Gaussian11, SsimWindow::Box7}) {
    std::vector<float> scratch(8 * n);
    check_loss(w == SsimWindow::Box7 ? "ssim box7" : "ssim gauss11", {pred, target, scratch}, n,
               [&](Backend b, std::vector<const float*> in, double* v, float* g) {
      SsimParams p; p.frames = B; p.height = H; p.width = W; p.channels = C; p.window = w; p.pred = in[0]; p.target = in[1];
      p.scratch = const_cast<float*>(in[2]); p.scale = 1.f / (B * C * ssim_valid_pixels(H, W, w)); p.value = v; p.g_pred = g;
      ssim_loss(b, p); });
  }
  {
    const int R = 24, nv = (R + 1) * (R + 1) * (R + 1);
    std::vector<float> sdf(nv);
    for (int i = 0; i < nv; ++i) {
      const float x = (float)(i % (R + 1)) / R - 0.5f, y = (float)((i / (R + 1)) % (R + 1)) / R - 0.5f, z = (float)(i / ((R + 1) * (R + 1))) / R - 0.5f;
      sdf[i] = std::sqrt(x * x + y * y + z * z) - 0.3f + rng.uni(-0.01f, 0.01f);
    }
    std::vector<int32_t> edges;
    for (int i = 0; i < nv; ++i) {
      if (i % (R + 1) < R) { edges.push_back(i); edges.push_back(i + 1); }
      if ((i / (R + 1)) % (R + 1) < R) { edges.push_back(i); edges.push_back(i + R + 1); }
      if (i / ((R + 1) * (R + 1)) < R) { edges.push_back(i); edges.push_back(i + (R + 1) * (R + 1)); }
    }
    std::deque<Buffer<int32_t>> keep;
    int32_t* de = dev_int(edges, keep);
    check_loss("sdf_sign_reg (sphere, R=24)", {sdf}, nv, [&](Backend b, std::vector<const float*> in, double* v, float* g) {
      SdfRegParams p; p.edges = (int64_t)edges.size() / 2; p.vertices = nv; p.edge_index = b == Backend::CUDA ? de : edges.data();
      p.sdf = in[0]; p.scale = 0.2f / p.edges; p.value = v; p.g_sdf = g; sdf_sign_reg(b, p); });
  }
  const int np = 478;
  std::vector<float> s3 = rng.vec(3 * np, -0.5f, 0.5f);
  check_loss("sdf_prior (478 landmarks)", {s3}, 3 * np, [&](Backend b, std::vector<const float*> in, double* v, float* g) {
    SdfPriorParams p; p.n = np; p.s_surf = in[0]; p.s_out = in[0] + np; p.s_in = in[0] + 2 * np; p.scale = 1.f / np; p.value = v;
    p.g_surf = g; p.g_out = g + np; p.g_in = g + 2 * np; sdf_prior(b, p); });
  std::vector<float> dsp = rng.vec(3 * np, -1.f, 1.f), dtg = rng.vec(3 * np, -1.f, 1.f);
  check_loss("landmark displacement", {dsp, dtg}, 3 * np, [&](Backend b, std::vector<const float*> in, double* v, float* g) {
    VecL2Params p; p.n = 3 * np; p.pred = in[0]; p.target = in[1]; p.scale = 1.f / np; p.value = v; p.g_pred = g; vec_l2(b, p); });
  std::vector<float> el = rng.vec(20000, -0.5f, 2.5f);
  check_loss("elastic_bound", {el}, el.size(), [&](Backend b, std::vector<const float*> in, double* v, float* g) {
    ElasticBoundParams p; p.n = 20000; p.elastic = in[0]; p.max_scale = 1.5f; p.scale = 1e-3f; p.value = v; p.g_elastic = g; elastic_bound(b, p); });
  std::vector<float> cs = rng.vec(4 * 8 * 16, -1.f, 1.f);
  check_loss("temporal_smoothness", {cs}, cs.size(), [&](Backend b, std::vector<const float*> in, double* v, float* g) {
    SmoothnessParams p; p.sequences = 4; p.steps = 8; p.dim = 16; p.cond = in[0]; p.scale = 0.1f; p.value = v; p.g_cond = g;
    temporal_smoothness(b, p); });
}

void check_adam() {
  dt_test::Rng rng(27);
  const int64_t n = 100000;
  std::vector<float> x = rng.vec(n, -1.f, 1.f), m(n, 0.f), v(n, 0.f);
  float *dx = dev(x), *dm = dev(m), *dvv = dev(v);
  for (int step = 1; step <= 5; ++step) {
    std::vector<float> g = rng.vec(n, -1.f, 1.f);
    float* dg = dev(g);
    AdamParams p; p.n = n; p.params = x.data(); p.grads = g.data(); p.m = m.data(); p.v = v.data(); p.step = step; p.lr = 1e-2f;
    adam_step(Backend::CPU, p);
    p.params = dx; p.grads = dg; p.m = dm; p.v = dvv;
    adam_step(Backend::CUDA, p);
  }
  report("adam (5 steps)", "params", x, down(dx, n), 1e-5);
  report("adam (5 steps)", "m, v", m, down(dm, n), 1e-5);
}
}  // namespace

int main() {
  try {
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
      std::printf("no usable CUDA device: %s\n", cudaGetErrorString(cudaGetLastError()));
      return 2;
    }
    cudaDeviceProp prop;
    cudaGetDeviceProperties(&prop, 0);
    std::printf("CUDA vs CPU on %s\n\n", prop.name);
    std::printf("| %-34s | %-10s | %10s | %9s | %7s | %-4s |\n", "op", "part", "values", "max err", "tol", "ok");
    std::printf("|%s|%s|%s|%s|%s|%s|\n", std::string(36, '-').c_str(), std::string(12, '-').c_str(), std::string(12, '-').c_str(),
                std::string(11, '-').c_str(), std::string(9, '-').c_str(), std::string(6, '-').c_str());
    HashGridConfig small; small.levels = 8; small.log2_table = 12; small.base_res = 4; small.finest_res = 256;
    check_hashgrid(small, 20000, "hashgrid 8x2, 2^12");
    HashGridConfig big; big.levels = 16; big.features = 2; big.log2_table = 19; big.base_res = 16; big.finest_res = 4096;
    check_hashgrid(big, 50000, "hashgrid 16x2, 2^19, 16..4096");
    // The level-major kernels' other widths (1 and 4 features) and the per-point fallback (3).
    for (int f : {1, 4, 3}) {
      HashGridConfig c = small;
      c.features = f;
      check_hashgrid(c, 7777, ("hashgrid 8x" + std::to_string(f) + ", 2^12").c_str());
    }
    // The saved-Jacobian path: the level-major kernels (1, 2, 4 features) and the per-point loop (3).
    check_hashgrid(big, 50000, "hashgrid 16x2, 2^19", true);
    for (int f : {1, 2, 4, 3}) {
      HashGridConfig c = small;
      c.features = f;
      check_hashgrid(c, 7777, "hashgrid 8x" + std::to_string(f) + ", 2^12", true);
    }
    // Wider rows (the trainer's texture MLP rows: 32 features, then 16 condition values).
    check_hashgrid(big, 50000, "hashgrid 16x2, 2^19 saved", true, 16);
    check_hashgrid(big, 50000, "hashgrid 16x2, 2^19", false, 16);
    check_freq();
    const MlpConfig mlps[] = {
        MlpConfig{32, 64, 2, 3, kActReLU, kActSigmoid},   // texture 2x64
        MlpConfig{48, 16, 1, 4, kActLeakyReLU, kActNone},
        MlpConfig{39, 128, 3, 4, kActReLU, kActTanh},
        MlpConfig{32, 32, 2, 1, kActTanh, kActNone},
        MlpConfig{39, 128, 2, 2, kActReLU, kActNone},     // SDF
        MlpConfig{55, 128, 2, 4, kActReLU, kActNone},     // deformation
        MlpConfig{32, 256, 2, 3, kActReLU, kActNone},
        MlpConfig{32, 256, 5, 3, kActReLU, kActSigmoid},  // texture 5x256
        MlpConfig{20, 200, 2, 7, kActTanh, kActNone},
    };
    for (MlpCudaPath path : {MlpCudaPath::Tiled, MlpCudaPath::Fused, MlpCudaPath::TiledTF32, MlpCudaPath::Half, MlpCudaPath::HalfLayered})
      for (const MlpConfig& c : mlps) {
        const bool wide = std::max(c.width, c.in) > 128;
        if (path == MlpCudaPath::Fused && wide && c.hidden_layers > 2) continue;  // per-point: slow, covered by the 2x256 net
        const bool half = path == MlpCudaPath::Half || path == MlpCudaPath::HalfLayered;
        if (half && std::string(mlp_cuda_path(c, path)).rfind("half", 0) != 0) continue;  // runs tf32: checked above
        check_mlp(c, wide ? 3000 : 20001, path);
      }
    // Several chunks (and g_params accumulated over them) on the tiled paths.
    check_mlp(MlpConfig{32, 64, 2, 3, kActReLU, kActSigmoid}, 20001, MlpCudaPath::Tiled, 3000);
    check_mlp(MlpConfig{55, 128, 2, 4, kActReLU, kActNone}, 9000, MlpCudaPath::TiledTF32, 4096);
    // Backward from the forward's saved activations, in one and in several chunks.
    check_mlp(MlpConfig{32, 256, 5, 3, kActReLU, kActSigmoid}, 3000, MlpCudaPath::Tiled, 0, true);
    check_mlp(MlpConfig{39, 128, 2, 2, kActReLU, kActNone}, 20001, MlpCudaPath::Tiled, 3000, true);
    check_mlp(MlpConfig{32, 64, 2, 3, kActReLU, kActSigmoid}, 20001, MlpCudaPath::TiledTF32, 0, true);
    // The half path's backward from its saved fp16 activations, and a net of padded widths.
    check_mlp(MlpConfig{32, 64, 2, 3, kActReLU, kActSigmoid}, 20001, MlpCudaPath::Half, 0, true);
    check_mlp(MlpConfig{39, 128, 2, 2, kActReLU, kActNone}, 20001, MlpCudaPath::Half, 0, true);
    check_mlp(MlpConfig{20, 40, 3, 7, kActTanh, kActSigmoid}, 5001, MlpCudaPath::Half, 0, true);
    // Gradient scaling: tiny and large output gradients (fp16 alone would flush or overflow them).
    check_mlp(MlpConfig{32, 64, 2, 3, kActReLU, kActSigmoid}, 20001, MlpCudaPath::Half, 0, true, 1e-7f);
    check_mlp(MlpConfig{39, 128, 2, 2, kActReLU, kActNone}, 20001, MlpCudaPath::Half, 0, false, 1e-7f);
    check_mlp(MlpConfig{32, 64, 2, 3, kActTanh, kActNone}, 20001, MlpCudaPath::Half, 0, false, 1e5f);
    // The layered form (one GEMM per layer): from saved activations, and gradient scaling.
    check_mlp(MlpConfig{32, 256, 5, 3, kActReLU, kActSigmoid}, 3000, MlpCudaPath::HalfLayered, 0, true);
    check_mlp(MlpConfig{39, 128, 2, 2, kActReLU, kActNone}, 20001, MlpCudaPath::HalfLayered, 0, true, 1e-7f);
    check_mlp(MlpConfig{20, 200, 2, 7, kActTanh, kActNone}, 3000, MlpCudaPath::HalfLayered, 0, false, 1e5f);
    // Small networks (every layer <= 64: forward and backward in one launch each), as the trainer
    // runs them: the texture from saved activations, the deformation recomputing its forward.
    check_mlp(MlpConfig{48, 64, 2, 3, kActReLU, kActSigmoid}, 175001, MlpCudaPath::Tiled, 0, true);
    check_mlp(MlpConfig{55, 64, 2, 4, kActReLU, kActNone}, 250001, MlpCudaPath::Tiled);
    check_condition();
    check_deform(MlpCudaPath::Tiled);
    check_deform(MlpCudaPath::Fused);
    check_deform(MlpCudaPath::Tiled, 128, 4);
    check_deform(MlpCudaPath::Half, 128, 4);
    check_deform(MlpCudaPath::Half);
    check_deform(MlpCudaPath::HalfLayered, 128, 4);
    check_deform(MlpCudaPath::Tiled, 128, 4, true);
    check_deform(MlpCudaPath::Half, 128, 4, true);
    check_deform(MlpCudaPath::Half, 64, 2, true);
    check_losses();
    check_adam();
    cuda_check(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
  } catch (const std::exception& e) {
    std::printf("error: %s\n", e.what());
    return 2;
  }
  std::printf("\n%s\n", g_fail ? "FAILED" : "all CUDA results agree with the CPU reference");
  return g_fail ? 1 : 0;
}
