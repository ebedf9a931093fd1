// Finite-difference checks of every backward pass in native/train, forward agreement with
// model.h, typed errors for bad arguments and determinism of the CPU backend.
#include <algorithm>
#include <cstring>

#include "../adam.h"
#include "../condition.h"
#include "../deform.h"
#include "../encoding.h"
#include "../losses.h"
#include "../mlp.h"
#include "harness.h"

using namespace dyntet;
using namespace dyntet::train;
using dt_test::fd_check;
using dt_test::pick;
using dt_test::Rng;

namespace {
const Backend CPU = Backend::CPU;

// J = sum r_k out_k and the noise scale sum |r_k out_k|.
double proj(const std::vector<float>& out, const std::vector<float>& r, double* abs_sum = nullptr) {
  double s = 0, a = 0;
  for (size_t k = 0; k < out.size(); ++k) { s += (double)r[k] * out[k]; a += std::fabs((double)r[k] * out[k]); }
  if (abs_sum) *abs_sum = a;
  return s;
}

std::vector<float> gather(const std::vector<float>& g, const std::vector<size_t>& idx) {
  std::vector<float> v;
  for (size_t i : idx) v.push_back(g[i]);
  return v;
}

void test_hashgrid() {
  std::printf("hashgrid\n");
  Rng rng(1);
  HashGridConfig cfg;
  cfg.levels = 4; cfg.features = 2; cfg.log2_table = 8; cfg.base_res = 2; cfg.finest_res = 16;
  const HashGrid g = make_hashgrid(cfg);
  DT_CHECK(g.levels[0].dense == 1 && g.levels[3].dense == 0, "test config must cover dense and hashed levels");
  const int64_t n = 12;
  std::vector<float> u = rng.vec(n * 3, 0.02f, 0.98f), table = rng.vec(g.param_count(), -1.f, 1.f);
  std::vector<float> r = rng.vec(n * g.out_dim(), -1.f, 1.f), out(n * g.out_dim());
  HashGridParams p;
  p.grid = g; p.n = n; p.u = u.data(); p.table = table.data(); p.out = out.data();
  auto J = [&](double* a = nullptr) { hashgrid_forward(CPU, p); return proj(out, r, a); };
  double noise;
  J(&noise);
  // Forward is model.h's hashgrid_encode, point by point.
  std::vector<float> ref(g.out_dim());
  hashgrid_encode(cfg, g.levels, table.data(), u.data() + 3, ref.data());
  DT_CHECK(std::memcmp(ref.data(), out.data() + g.out_dim(), ref.size() * 4) == 0, "forward differs from model.h");
  std::vector<float> gt(g.param_count(), 0.f), gu(n * 3);
  p.g_out = r.data(); p.g_table = gt.data(); p.g_u = gu.data();
  hashgrid_backward(CPU, p);
  DT_CHECK(dt_test::all_finite(gt) && dt_test::all_finite(gu), "non-finite gradient");
  std::vector<size_t> ti;
  for (size_t i = 0; i < gt.size(); ++i) if (gt[i] != 0.f && ti.size() < 40) ti.push_back(i);
  for (size_t k : pick(rng, gt.size(), 10)) ti.push_back(k);  // also untouched entries (gradient 0)
  fd_check("hashgrid d/dtable", table, ti, gather(gt, ti), [&] { return J(); }, 1e-2f, noise);
  std::vector<size_t> ui = pick(rng, u.size(), 36);
  fd_check("hashgrid d/du", u, ui, gather(gu, ui), [&] { return J(); }, 2e-4f, noise, 5e-3);
}

// The saved-Jacobian path (HashGridParams::jac): the forward's output unchanged, the backward's
// table gradient bit for bit and d/du within float rounding of the gather path, for 2 features
// and an odd width, with coordinates on and outside [0,1] (there d/du is 0, as without), and d/du
// against finite differences.
void test_hashgrid_saved() {
  std::printf("hashgrid, saved Jacobian\n");
  for (int F : {2, 3}) {
    Rng rng(40 + F);
    HashGridConfig cfg;
    cfg.levels = 4; cfg.features = F; cfg.log2_table = 8; cfg.base_res = 2; cfg.finest_res = 16;
    const HashGrid g = make_hashgrid(cfg);
    const int64_t n = 20;
    std::vector<float> u = rng.vec(n * 3, 0.02f, 0.98f), table = rng.vec(g.param_count(), -1.f, 1.f);
    const float edge[] = {0.f, 1.f, -0.1f, 1.2f};
    for (int k = 0; k < 4; ++k) u[3 * (n - 1 - k) + k % 3] = edge[k];  // the last 4 points: one edge axis each
    std::vector<float> r = rng.vec(n * g.out_dim(), -1.f, 1.f), out(n * g.out_dim()), out_s(out.size());
    std::vector<float> jac(hashgrid_jac_count(g, n), NAN);
    std::vector<float> gt(g.param_count(), 0.f), gt_s(gt.size(), 0.f), gu(n * 3), gu_s(n * 3);
    HashGridParams p;
    p.grid = g; p.n = n; p.u = u.data(); p.table = table.data(); p.out = out.data();
    p.g_out = r.data(); p.g_table = gt.data(); p.g_u = gu.data();
    hashgrid_forward(CPU, p);
    hashgrid_backward(CPU, p);
    HashGridParams s = p;
    s.out = out_s.data(); s.g_table = gt_s.data(); s.g_u = gu_s.data(); s.jac = jac.data();
    hashgrid_forward(CPU, s);
    DT_CHECK(dt_test::all_finite(jac), "F=%d: Jacobian not fully written", F);
    DT_CHECK(std::memcmp(out.data(), out_s.data(), out.size() * 4) == 0, "F=%d: forward output changed by the Jacobian", F);
    hashgrid_backward(CPU, s);
    DT_CHECK(std::memcmp(gt.data(), gt_s.data(), gt.size() * 4) == 0, "F=%d: table gradient differs from the gather path", F);
    double num = 0, den = 0;
    for (size_t k = 0; k < gu.size(); ++k) { num = std::max(num, (double)std::fabs(gu[k] - gu_s[k])); den = std::max(den, (double)std::fabs(gu[k])); }
    DT_CHECK(num <= 1e-6 * den, "F=%d: d/du differs from the gather path: %.3g of %.3g", F, num, den);
    for (int k = 0; k < 4; ++k)
      DT_CHECK(gu_s[3 * (n - 1 - k) + k % 3] == 0.f, "F=%d: d/du at u = %g must be 0", F, edge[k]);
    std::printf("  F=%d: saved vs gather d/du max diff %.3g (max |d/du| %.3g)\n", F, num, den);
    // Finite differences on the interior points (an edge coordinate sits on the clamp's kink).
    auto J = [&](double* a = nullptr) { hashgrid_forward(CPU, p); return proj(out, r, a); };
    double noise;
    J(&noise);
    std::vector<size_t> ui = pick(rng, (n - 4) * 3, 30);
    fd_check("hashgrid saved d/du", u, ui, gather(gu_s, ui), [&] { return J(); }, 2e-4f, noise, 5e-3);
  }
}

// Rows wider than the encoding (HashGridParams::row_stride, as in the trainer's texture MLP rows):
// the forward fills each row's first levels x features columns and leaves the rest alone, the
// backward reads its gradients from there; both bit for bit the contiguous layout's, with and
// without a saved Jacobian.
void test_hashgrid_row_stride() {
  std::printf("hashgrid, row stride\n");
  Rng rng(7);
  HashGridConfig cfg;
  cfg.levels = 4; cfg.features = 2; cfg.log2_table = 8; cfg.base_res = 2; cfg.finest_res = 16;
  const HashGrid g = make_hashgrid(cfg);
  const int64_t n = 15, D = g.out_dim(), W = D + 5;
  std::vector<float> u = rng.vec(n * 3, 0.02f, 0.98f), table = rng.vec(g.param_count(), -1.f, 1.f);
  std::vector<float> r = rng.vec(n * D, -1.f, 1.f), rw(n * W, 7.f);
  for (int64_t i = 0; i < n; ++i) std::copy(r.begin() + i * D, r.begin() + (i + 1) * D, rw.begin() + i * W);
  for (bool saved : {false, true}) {
    std::vector<float> out(n * D), wide(n * W, -3.f), jac(hashgrid_jac_count(g, n)), jac_w(jac.size());
    std::vector<float> gt(g.param_count(), 0.f), gt_w(gt.size(), 0.f), gu(n * 3), gu_w(n * 3);
    HashGridParams p;
    p.grid = g; p.n = n; p.u = u.data(); p.table = table.data(); p.out = out.data(); p.g_out = r.data();
    p.g_table = gt.data(); p.g_u = gu.data(); p.jac = saved ? jac.data() : nullptr;
    HashGridParams w = p;
    w.out = wide.data(); w.g_out = rw.data(); w.g_table = gt_w.data(); w.g_u = gu_w.data(); w.jac = saved ? jac_w.data() : nullptr;
    w.row_stride = W;
    hashgrid_forward(CPU, p); hashgrid_forward(CPU, w);
    hashgrid_backward(CPU, p); hashgrid_backward(CPU, w);
    for (int64_t i = 0; i < n; ++i) {
      DT_CHECK(std::memcmp(out.data() + i * D, wide.data() + i * W, D * 4) == 0, "saved=%d: row %d differs", (int)saved, (int)i);
      for (int64_t c = D; c < W; ++c) DT_CHECK(wide[i * W + c] == -3.f, "saved=%d: column %d of row %d overwritten", (int)saved, (int)c, (int)i);
    }
    DT_CHECK(std::memcmp(gt.data(), gt_w.data(), gt.size() * 4) == 0, "saved=%d: table gradient differs", (int)saved);
    DT_CHECK(std::memcmp(gu.data(), gu_w.data(), gu.size() * 4) == 0, "saved=%d: d/du differs", (int)saved);
  }
  bool threw = false;
  try {
    HashGridParams bad;
    bad.grid = g; bad.n = 1; bad.u = u.data(); bad.table = table.data(); bad.out = r.data(); bad.row_stride = D - 1;
    hashgrid_forward(CPU, bad);
  } catch (const OpError&) { threw = true; }
  DT_CHECK(threw, "row_stride below levels x features must be refused");
}

void test_freq() {
  std::printf("frequency encoding\n");
  Rng rng(2);
  const int nf = 4, D = freq_encoding_size(nf);
  const int64_t n = 8;
  std::vector<float> u = rng.vec(n * 3, 0.f, 1.f), out(n * D), r = rng.vec(n * D, -1.f, 1.f), gu(n * 3);
  FreqParams p;
  p.n_freq = nf; p.n = n; p.u = u.data(); p.out = out.data(); p.g_out = r.data(); p.g_u = gu.data();
  auto J = [&](double* a = nullptr) { freq_forward(CPU, p); return proj(out, r, a); };
  double noise;
  J(&noise);
  freq_backward(CPU, p);
  DT_CHECK(dt_test::all_finite(gu), "non-finite gradient");
  std::vector<size_t> idx = pick(rng, u.size(), 24);
  fd_check("freq d/du", u, idx, gather(gu, idx), [&] { return J(); }, 1e-3f, noise);
}

void test_mlp(const char* name, MlpConfig c, uint64_t seed) {
  std::printf("mlp %s\n", name);
  Rng rng(seed);
  const int64_t n = 6;
  std::vector<float> params = rng.vec(mlp_param_count(c), -0.6f, 0.6f), x = rng.vec(n * c.in, -1.f, 1.f);
  std::vector<float> y(n * c.out), r = rng.vec(n * c.out, -1.f, 1.f);
  std::vector<float> gp(params.size(), 0.f), gx(x.size());
  MlpParams p;
  p.cfg = c; p.n = n; p.params = params.data(); p.x = x.data(); p.y = y.data();
  p.g_y = r.data(); p.g_params = gp.data(); p.g_x = gx.data();
  auto J = [&](double* a = nullptr) { mlp_forward(CPU, p); return proj(y, r, a); };
  double noise;
  J(&noise);
  // The per-point pieces other ops use: the kept activations end in model.h's output, bit for bit.
  for (int64_t i = 0; i < n; ++i) {
    MlpActs acts;
    mlp_forward_acts(c, params.data(), x.data() + i * c.in, acts);
    DT_CHECK(std::memcmp(acts[mlp_layer_count(c)], y.data() + i * c.out, c.out * 4) == 0,
             "mlp_forward_acts differs from model.h's mlp_forward");
  }
  mlp_backward(CPU, p);
  DT_CHECK(dt_test::all_finite(gp) && dt_test::all_finite(gx), "non-finite gradient");
  std::vector<size_t> pi = pick(rng, params.size(), 60), xi = pick(rng, x.size(), 30);
  fd_check("mlp d/dparams", params, pi, gather(gp, pi), [&] { return J(); }, 1e-3f, noise);
  fd_check("mlp d/dx", x, xi, gather(gx, xi), [&] { return J(); }, 1e-3f, noise);
}

void test_condition() {
  std::printf("condition encoder\n");
  Rng rng(3);
  ConditionConfig c;  // model.h's default: 9-frame window, two convs, 16 outputs
  const int64_t n = 3;
  std::vector<float> params = rng.vec(condition_param_count(c), -0.2f, 0.2f);
  std::vector<float> win = rng.vec(n * c.window * kNumBlendshapes, 0.f, 1.f);
  std::vector<float> out(n * c.out_dim), r = rng.vec(out.size(), -1.f, 1.f);
  std::vector<float> gp(params.size(), 0.f), gw(win.size());
  ConditionParams p;
  p.cfg = c; p.n = n; p.params = params.data(); p.windows = win.data(); p.out = out.data();
  p.g_out = r.data(); p.g_params = gp.data(); p.g_windows = gw.data();
  auto J = [&](double* a = nullptr) { condition_forward_batch(CPU, p); return proj(out, r, a); };
  double noise;
  J(&noise);
  condition_backward_batch(CPU, p);
  DT_CHECK(dt_test::all_finite(gp) && dt_test::all_finite(gw), "non-finite gradient");
  std::vector<size_t> pi = pick(rng, params.size(), 60), wi = pick(rng, win.size(), 30);
  fd_check("condition d/dparams", params, pi, gather(gp, pi), [&] { return J(); }, 1e-3f, noise);
  fd_check("condition d/dwindow", win, wi, gather(gw, wi), [&] { return J(); }, 1e-3f, noise);
}

void test_deform() {
  std::printf("deformation\n");
  Rng rng(4);
  DeformConfig c;
  const int cd = 4;
  c.n_freq = 2;
  c.mlp = MlpConfig{freq_encoding_size(2) + cd, 16, 2, 4, kActLeakyReLU, kActNone};
  const int64_t n = 5;
  const int B = 2;
  std::vector<float> u = rng.vec(n * 3, 0.f, 1.f), cond = rng.vec(B * cd, -1.f, 1.f), el = rng.vec(n, 0.2f, 1.f);
  std::vector<float> params = rng.vec(mlp_param_count(c.mlp), -0.5f, 0.5f);
  std::vector<float> sin_(n * B * c.mlp.in), sout(n * B * 4), disp(n * B * 3), sd(n * B);
  std::vector<float> rd = rng.vec(disp.size(), -1.f, 1.f), rs = rng.vec(sd.size(), -1.f, 1.f);
  DeformParams p;
  p.cfg = c; p.n = n; p.frames = B; p.cond_dim = cd; p.u = u.data(); p.cond = cond.data(); p.elastic = el.data();
  p.params = params.data(); p.scratch_in = sin_.data(); p.scratch_out = sout.data(); p.disp = disp.data(); p.sdf_delta = sd.data();
  auto J = [&](double* a = nullptr) {
    deform_forward(CPU, p);
    double a1, a2;
    const double j = proj(disp, rd, &a1) + proj(sd, rs, &a2);
    if (a) *a = a1 + a2;
    return j;
  };
  double noise;
  J(&noise);
  // Forward agrees with model.h's deform_vertex.
  float dref[3], sref;
  deform_vertex(c, params.data(), u.data() + 3 * 2, cond.data() + cd, cd, el[2], dref, &sref);
  const int64_t r = 1 * n + 2;
  DT_CHECK(std::fabs(dref[0] - disp[3 * r]) <= 1e-6f && std::fabs(dref[2] - disp[3 * r + 2]) <= 1e-6f &&
               std::fabs(sref - sd[r]) <= 1e-6f, "forward differs from deform_vertex");
  std::vector<float> gp(params.size(), 0.f), gc(cond.size(), 0.f), ge(n, 0.f);
  p.g_disp = rd.data(); p.g_sdf_delta = rs.data(); p.g_params = gp.data(); p.g_cond = gc.data(); p.g_elastic = ge.data();
  deform_backward(CPU, p);
  DT_CHECK(dt_test::all_finite(gp) && dt_test::all_finite(gc) && dt_test::all_finite(ge), "non-finite gradient");
  std::vector<size_t> pi = pick(rng, params.size(), 50), ci = pick(rng, cond.size(), 8), ei = pick(rng, el.size(), 5);
  fd_check("deform d/dparams", params, pi, gather(gp, pi), [&] { return J(); }, 1e-3f, noise);
  fd_check("deform d/dcond", cond, ci, gather(gc, ci), [&] { return J(); }, 1e-3f, noise);
  fd_check("deform d/delastic", el, ei, gather(ge, ei), [&] { return J(); }, 1e-3f, noise);
}

// Loss helpers: value in double, gradient accumulated into g.
template <class Run>
// noise_scale: the magnitude of the loss terms one coordinate touches (terms it does not touch
// are recomputed bit for bit and cancel); by default a loose bound from the whole value.
void loss_fd(const char* name, std::vector<float>& x, std::vector<float>& g, Run run, Rng& rng, float h, size_t count = 40,
             double noise_scale = -1, double rtol = 2e-3) {
  double v = 0;
  std::fill(g.begin(), g.end(), 0.f);
  run(&v, g.data());
  DT_CHECK(std::isfinite(v) && dt_test::all_finite(g), "%s: non-finite value or gradient", name);
  auto J = [&] { double val = 0; run(&val, nullptr); return val; };
  std::vector<size_t> idx = pick(rng, x.size(), count);
  fd_check(name, x, idx, gather(g, idx), J, h, noise_scale >= 0 ? noise_scale : std::fabs(v) * 4 + 1e-3, rtol);
}

void test_losses() {
  std::printf("losses\n");
  Rng rng(5);
  const int B = 2, H = 20, W = 18, C = 3;
  const int64_t pix = (int64_t)B * H * W, n = pix * C;
  std::vector<float> pred = rng.vec(n, 0.f, 1.f), target = rng.vec(n, 0.f, 1.f), mask = rng.vec(pix, 0.f, 1.f), g(n);
  loss_fd("masked_l2", pred, g, [&](double* v, float* gp) {
    MaskedL2Params p; p.n = n; p.channels = C; p.pred = pred.data(); p.target = target.data(); p.mask = mask.data();
    p.scale = 1.f / n; p.value = v; p.g_pred = gp; masked_l2(CPU, p); }, rng, 1e-2f);
  std::vector<float> cov = rng.vec(pix, 0.05f, 0.95f), gc(pix);
  for (auto mode : {SilhouetteMode::L2, SilhouetteMode::BCE})
    loss_fd(mode == SilhouetteMode::L2 ? "silhouette L2" : "silhouette BCE", cov, gc, [&](double* v, float* gp) {
      SilhouetteParams p; p.n = pix; p.mode = mode; p.coverage = cov.data(); p.mask = mask.data(); p.scale = 1.f / pix;
      p.value = v; p.g_coverage = gp; silhouette_loss(CPU, p); }, rng, 1e-3f);
  std::vector<float> boxes = {2, 3, 10, 9, 5, 5, 15, 12, 0, 0, 4, 4, 1, 1, 17, 19, 3, 2, 8, 7, 30, 30, 40, 40};
  loss_fd("box_l2", pred, g, [&](double* v, float* gp) {
    BoxL2Params p; p.frames = B; p.height = H; p.width = W; p.channels = C; p.boxes_per_frame = 3; p.pred = pred.data();
    p.target = target.data(); p.boxes = boxes.data(); p.scale = 1e-2f; p.value = v; p.g_pred = gp; box_l2(CPU, p); }, rng, 1e-2f);
  // SSIM on correlated images (target = pred + noise) so the loss is in its useful range.
  std::vector<float> tgt2(n), scratch(8 * n);
  for (int64_t i = 0; i < n; ++i) tgt2[i] = clampf(pred[i] + rng.uni(-0.2f, 0.2f), 0.f, 1.f);
  for (auto w : {SsimWindow::Gaussian11, SsimWindow::Box7})
    loss_fd(w == SsimWindow::Box7 ? "ssim box7" : "ssim gauss11", pred, g, [&](double* v, float* gp) {
      SsimParams p; p.frames = B; p.height = H; p.width = W; p.channels = C; p.window = w; p.pred = pred.data();
      p.target = tgt2.data(); p.scratch = scratch.data(); p.scale = 1.f / (B * C * ssim_valid_pixels(H, W, w));
      p.value = v; p.g_pred = gp; ssim_loss(CPU, p); }, rng, 4e-3f, 60,
      // A pixel touches at most 121 window terms of ~scale each (scale ~2e-3 here).
      121.0 * 3e-3, 3e-4);
  {  // SSIM of an image with itself is 1, so the loss is 0.
    double v = 0;
    SsimParams p; p.frames = B; p.height = H; p.width = W; p.channels = C; p.pred = pred.data(); p.target = pred.data();
    p.scratch = scratch.data(); p.scale = 1.f; p.value = &v; ssim_loss(CPU, p);
    DT_CHECK(std::fabs(v) < 1e-3, "ssim(x, x) loss = %g, expected 0", v);
  }
  // SDF sign regulariser on a chain of edges with mixed signs.
  const int nv = 30;
  std::vector<float> sdf = rng.vec(nv, -1.f, 1.f), gs(nv);
  std::vector<int32_t> edges;
  for (int i = 0; i + 1 < nv; ++i) { edges.push_back(i); edges.push_back(i + 1); }
  for (int i = 0; i + 3 < nv; i += 3) { edges.push_back(i); edges.push_back(i + 3); }
  for (auto& s : sdf) if (std::fabs(s) < 0.05f) s = 0.3f;  // keep FD steps from flipping signs
  loss_fd("sdf_sign_reg", sdf, gs, [&](double* v, float* gp) {
    SdfRegParams p; p.edges = (int64_t)edges.size() / 2; p.vertices = nv; p.edge_index = edges.data(); p.sdf = sdf.data();
    p.scale = 0.1f; p.value = v; p.g_sdf = gp; sdf_sign_reg(CPU, p); }, rng, 1e-3f);
  // Landmark SDF prior: all three inputs in one vector (surf, out, in).
  const int np = 20;
  std::vector<float> s3 = rng.vec(3 * np, -0.5f, 0.5f), g3(3 * np);
  for (auto& s : s3) if (std::fabs(s) < 0.02f) s = 0.1f;
  loss_fd("sdf_prior", s3, g3, [&](double* v, float* gp) {
    SdfPriorParams p; p.n = np; p.s_surf = s3.data(); p.s_out = s3.data() + np; p.s_in = s3.data() + 2 * np; p.scale = 0.5f;
    p.value = v; p.g_surf = gp; p.g_out = gp ? gp + np : nullptr; p.g_in = gp ? gp + 2 * np : nullptr; sdf_prior(CPU, p); }, rng, 1e-3f);
  {
    std::vector<float> pts = {1, 2, 3}, nrm = {0, 0, 1}, o(6);
    prior_offset_points(CPU, 1, pts.data(), nrm.data(), 0.5f, o.data());
    DT_CHECK(o[2] == 3.5f && o[5] == 2.5f && o[3] == 1.f, "prior_offset_points wrong");
  }
  std::vector<float> d = rng.vec(60, -1.f, 1.f), dt = rng.vec(60, -1.f, 1.f), gd(60);
  loss_fd("landmark displacement", d, gd, [&](double* v, float* gp) {
    VecL2Params p; p.n = 60; p.pred = d.data(); p.target = dt.data(); p.scale = 0.3f; p.value = v; p.g_pred = gp; vec_l2(CPU, p); }, rng, 1e-2f);
  std::vector<float> e = rng.vec(40, -0.5f, 2.f), ge(40);
  for (auto& x : e) if (std::fabs(x) < 0.02f || std::fabs(x - 1.5f) < 0.02f) x = 0.7f;
  loss_fd("elastic_bound", e, ge, [&](double* v, float* gp) {
    ElasticBoundParams p; p.n = 40; p.elastic = e.data(); p.max_scale = 1.5f; p.scale = 2.f; p.value = v; p.g_elastic = gp;
    elastic_bound(CPU, p); }, rng, 1e-3f);
  std::vector<float> cs = rng.vec(2 * 5 * 4, -1.f, 1.f), gcs(cs.size());
  loss_fd("temporal_smoothness", cs, gcs, [&](double* v, float* gp) {
    SmoothnessParams p; p.sequences = 2; p.steps = 5; p.dim = 4; p.cond = cs.data(); p.scale = 0.7f; p.value = v; p.g_cond = gp;
    temporal_smoothness(CPU, p); }, rng, 1e-2f);
}

void test_adam() {
  std::printf("adam\n");
  Rng rng(6);
  const int n = 50;
  std::vector<float> x = rng.vec(n, -1.f, 1.f), m(n, 0.f), v(n, 0.f);
  std::vector<double> xr(x.begin(), x.end()), mr(n, 0.0), vr(n, 0.0);
  for (int step = 1; step <= 20; ++step) {
    std::vector<float> g = rng.vec(n, -1.f, 1.f);
    std::vector<double> gref(g.begin(), g.end());
    AdamParams p; p.n = n; p.params = x.data(); p.grads = g.data(); p.m = m.data(); p.v = v.data(); p.lr = 1e-2f; p.step = step;
    adam_step(CPU, p);
    for (int i = 0; i < n; ++i) {
      mr[i] = 0.9 * mr[i] + 0.1 * gref[i];
      vr[i] = 0.99 * vr[i] + 0.01 * gref[i] * gref[i];
      const double mh = mr[i] / (1 - std::pow(0.9, step)), vh = vr[i] / (1 - std::pow(0.99, step));
      xr[i] -= 1e-2 * mh / (std::sqrt(vh) + 1e-15);
    }
    DT_CHECK(g[0] == 0.f && g[n - 1] == 0.f, "gradients not zeroed");
  }
  double worst = 0;
  for (int i = 0; i < n; ++i) worst = std::max(worst, std::fabs(x[i] - xr[i]));
  DT_CHECK(worst < 1e-5, "adam differs from the double reference by %g", worst);
  LrSchedule s;
  DT_CHECK(lr_at(s, 0) == 1e-3f && std::fabs(lr_at(s, 4999) - 1e-3f) < 1e-9f, "lr before the first drop");
  DT_CHECK(std::fabs(lr_at(s, 5000) - 1e-4f) < 1e-10f, "lr after 5k steps is %g", lr_at(s, 5000));
  DT_CHECK(std::fabs(lr_at(s, 40000) - 1e-5f) < 1e-11f, "lr floor (1%%) is %g", lr_at(s, 40000));
  std::printf("  adam 20 steps vs double reference: max |diff| %.3g; lr(0,5k,10k,40k) = %g %g %g %g\n", worst,
              lr_at(s, 0), lr_at(s, 5000), lr_at(s, 10000), lr_at(s, 40000));
}

void test_errors() {
  std::printf("typed errors\n");
  auto throws = [](const char* what, auto f) {
    bool ok = false;
    try { f(); } catch (const OpError& e) { ok = std::strlen(e.what()) > 10; std::printf("  %s -> %s\n", what, e.what()); }
    DT_CHECK(ok, "%s should throw OpError", what);
  };
  throws("hash grid with 40 levels", [] { HashGridConfig c; c.levels = 40; make_hashgrid(c); });
  throws("mlp 300 wide", [] { MlpParams p; p.cfg.width = 300; p.n = 1; mlp_forward(Backend::CPU, p); });
  throws("mlp null input", [] { MlpParams p; p.n = 4; mlp_forward(Backend::CPU, p); });
  throws("condition kernel longer than window", [] { ConditionConfig c; c.window = 2; ConditionParams p; p.cfg = c; condition_forward_batch(Backend::CPU, p); });
  throws("ssim on a 5x5 image", [] { SsimParams p; p.frames = 1; p.height = 5; p.width = 5; ssim_loss(Backend::CPU, p); });
  throws("adam step 0", [] { AdamParams p; p.step = 0; adam_step(Backend::CPU, p); });
  throws("deform with wrong mlp.in", [] { DeformParams p; p.cond_dim = 3; deform_forward(Backend::CPU, p); });
#if !defined(DYNTET_HAS_CUDA)  // only a CPU-only build must refuse the CUDA backend
  bool backend_error = false;
  try {
    float x = 0;
    FreqParams p; p.n = 1; p.u = &x; p.out = &x; freq_forward(Backend::CUDA, p);
  } catch (const BackendError&) { backend_error = true; }
  DT_CHECK(backend_error, "CUDA backend in a CPU build must throw BackendError");
#endif
}

// Same fixed-seed inputs twice on the CPU: bit-identical results.
void test_determinism() {
  std::printf("determinism\n");
  auto run = [] {
    Rng rng(7);
    HashGridConfig hc; hc.levels = 8; hc.log2_table = 10; hc.finest_res = 128;
    const HashGrid g = make_hashgrid(hc);
    const int64_t n = 500;
    std::vector<float> u = rng.vec(n * 3, 0.f, 1.f), table = rng.vec(g.param_count(), -1e-2f, 1e-2f), enc(n * g.out_dim());
    HashGridParams hp; hp.grid = g; hp.n = n; hp.u = u.data(); hp.table = table.data(); hp.out = enc.data();
    hashgrid_forward(CPU, hp);
    MlpConfig mc{g.out_dim(), 32, 2, 3, kActReLU, kActSigmoid};
    std::vector<float> w = rng.vec(mlp_param_count(mc), -0.3f, 0.3f), y(n * 3), gy = rng.vec(n * 3, -1.f, 1.f);
    std::vector<float> gw(w.size(), 0.f), genc(enc.size()), gt(table.size(), 0.f), gu(u.size());
    MlpParams mp; mp.cfg = mc; mp.n = n; mp.params = w.data(); mp.x = enc.data(); mp.y = y.data(); mp.g_y = gy.data();
    mp.g_params = gw.data(); mp.g_x = genc.data();
    mlp_forward(CPU, mp);
    mlp_backward(CPU, mp);
    hp.g_out = genc.data(); hp.g_table = gt.data(); hp.g_u = gu.data();
    hashgrid_backward(CPU, hp);
    std::vector<float> all = y;
    for (auto* v : {&gw, &gt, &gu}) all.insert(all.end(), v->begin(), v->end());
    return all;
  };
  const std::vector<float> a = run(), b = run();
  DT_CHECK(a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * 4) == 0, "CPU results differ between runs");
  DT_CHECK(dt_test::all_finite(a), "non-finite values");
}
}  // namespace

TEST(hashgrid) { test_hashgrid(); }
TEST(hashgrid_saved_jacobian) { test_hashgrid_saved(); }
TEST(hashgrid_row_stride) { test_hashgrid_row_stride(); }
TEST(frequency_encoding) { test_freq(); }
TEST(mlp_tanh_sigmoid) { test_mlp("tanh/sigmoid", MlpConfig{7, 16, 2, 3, kActTanh, kActSigmoid}, 11); }
TEST(mlp_leaky_none) { test_mlp("leaky/none", MlpConfig{5, 12, 3, 4, kActLeakyReLU, kActNone}, 12); }
TEST(mlp_relu_tanh) { test_mlp("relu/tanh", MlpConfig{6, 20, 1, 2, kActReLU, kActTanh}, 13); }
TEST(mlp_linear) { test_mlp("linear (0 hidden)", MlpConfig{9, 0, 0, 5, kActReLU, kActNone}, 14); }
TEST(condition_encoder) { test_condition(); }
TEST(deformation) { test_deform(); }
TEST(losses) { test_losses(); }
TEST(adam) { test_adam(); }
TEST(typed_errors) { test_errors(); }
TEST(cpu_determinism) { test_determinism(); }

DYNTET_TEST_MAIN()
