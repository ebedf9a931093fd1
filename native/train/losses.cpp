#include "losses.h"

namespace dyntet {
namespace train {

namespace {
void need(bool ok, const char* op, const char* what) { op_require(ok, op, what); }

DT_HD float softplus(float x) { return x > 0.f ? x + log1pf(expf(-x)) : log1pf(expf(x)); }
DT_HD float sigmoidf(float x) { return 1.f / (1.f + expf(-x)); }

struct SsimWin {
  int r;
  float w[11];  // normalised 1D weights, 2r+1 used; the 2D window is their outer product
};

SsimWin make_window(SsimWindow kind) {
  SsimWin w{};
  if (kind == SsimWindow::Box7) {
    w.r = 3;
    for (int i = 0; i < 7; ++i) w.w[i] = 1.f / 7.f;
  } else {
    w.r = 5;
    double s = 0, g[11];
    for (int i = 0; i < 11; ++i) { g[i] = std::exp(-0.5 * (i - 5) * (i - 5) / (1.5 * 1.5)); s += g[i]; }
    for (int i = 0; i < 11; ++i) w.w[i] = (float)(g[i] / s);
  }
  return w;
}
}  // namespace

void masked_l2(Backend b, const MaskedL2Params& p) {
  const char* op = "masked_l2";
  need(p.channels >= 1 && p.n % p.channels == 0, op, "n must be a multiple of channels (>= 1)");
  need(p.n == 0 || (p.pred && p.target), op, "pred and target must be non-null");
  const MaskedL2Params q = p;
  launch_1d(b, p.n, [=] DT_LAMBDA(int64_t i) {
    const float m = q.mask ? q.mask[i / q.channels] : 1.f;
    const float d = q.pred[i] - q.target[i];
    if (q.g_pred) q.g_pred[i] += 2.f * q.scale * m * d;
    if (q.value) reduce_add_double(q.value, (double)q.scale * m * d * d);
  });
}

void silhouette_loss(Backend b, const SilhouetteParams& p) {
  need(p.n == 0 || (p.coverage && p.mask), "silhouette_loss", "coverage and mask must be non-null");
  const SilhouetteParams q = p;
  launch_1d(b, p.n, [=] DT_LAMBDA(int64_t i) {
    const float c = q.coverage[i], m = q.mask[i];
    float v, g;
    if (q.mode == SilhouetteMode::L2) {
      v = (c - m) * (c - m);
      g = 2.f * (c - m);
    } else {
      const float eps = 1e-6f;
      const float cc = clampf(c, eps, 1.f - eps);
      v = -(m * logf(cc) + (1.f - m) * logf(1.f - cc));
      g = (c > eps && c < 1.f - eps) ? (-m / cc + (1.f - m) / (1.f - cc)) : 0.f;
    }
    if (q.g_coverage) q.g_coverage[i] += q.scale * g;
    if (q.value) reduce_add_double(q.value, (double)q.scale * v);
  });
}

void box_l2(Backend b, const BoxL2Params& p) {
  const char* op = "box_l2";
  need(p.frames >= 0 && p.height >= 0 && p.width >= 0 && p.channels >= 1 && p.boxes_per_frame >= 0, op, "sizes must be >= 0 (channels >= 1)");
  const int64_t n = (int64_t)p.frames * p.height * p.width;
  need(n == 0 || (p.pred && p.target && (p.boxes || p.boxes_per_frame == 0)), op, "pred, target and boxes must be non-null");
  const BoxL2Params q = p;
  launch_1d(b, n, [=] DT_LAMBDA(int64_t i) {
    const int64_t hw = (int64_t)q.height * q.width;
    const int64_t f = i / hw, r = i - f * hw;
    const float cx = (float)(r % q.width) + 0.5f, cy = (float)(r / q.width) + 0.5f;
    int k = 0;
    for (int bi = 0; bi < q.boxes_per_frame; ++bi) {
      const float* bx = q.boxes + (f * q.boxes_per_frame + bi) * 4;
      if (cx >= bx[0] && cx < bx[2] && cy >= bx[1] && cy < bx[3]) ++k;
    }
    if (k == 0) return;
    double v = 0;
    for (int c = 0; c < q.channels; ++c) {
      const int64_t e = i * q.channels + c;
      const float d = q.pred[e] - q.target[e];
      if (q.g_pred) q.g_pred[e] += 2.f * q.scale * k * d;
      v += (double)d * d;
    }
    if (q.value) reduce_add_double(q.value, q.scale * k * v);
  });
}

int64_t ssim_valid_pixels(int height, int width, SsimWindow w) {
  const int r = w == SsimWindow::Box7 ? 3 : 5;
  const int64_t h = height - 2 * r, wd = width - 2 * r;
  return h > 0 && wd > 0 ? h * wd : 0;
}

void ssim_loss(Backend b, const SsimParams& p) {
  const char* op = "ssim_loss";
  need(p.frames >= 0 && p.channels >= 1, op, "frames must be >= 0 and channels >= 1");
  const SsimWin win = make_window(p.window);
  need(p.frames == 0 || (p.height > 2 * win.r && p.width > 2 * win.r), op,
       "images must be larger than the SSIM window (11 px for Gaussian11, 7 px for Box7)");
  const int64_t n = (int64_t)p.frames * p.height * p.width * p.channels;
  need(n == 0 || (p.pred && p.target && p.scratch), op, "pred, target and scratch (8 x image size floats) must be non-null");
  const SsimParams q = p;
  float* A = p.scratch;
  float* Bc = p.scratch + n;
  float* Cc = p.scratch + 2 * n;
  float* Hs = p.scratch + 3 * n;  // five planes of row sums
  // The window is the outer product of 1D weights, so every window sum is a sum along rows (Hs)
  // followed by one along columns: 2 (2r + 1) taps instead of (2r + 1)^2.
  // Pass 1a, rows: window-row sums of x, y, x^2, y^2, xy at the valid columns of every row.
  launch_1d(b, n, [=] DT_LAMBDA(int64_t e) {
    const int C = q.channels, W = q.width;
    const int x = (int)((e / C) % W);
    if (x < win.r || x >= W - win.r) return;
    float sx = 0.f, sy = 0.f, sxx = 0.f, syy = 0.f, sxy = 0.f;
    for (int dx = -win.r; dx <= win.r; ++dx) {
      const float w = win.w[dx + win.r];
      const int64_t k = e + (int64_t)dx * C;
      const float xv = q.pred[k], yv = q.target[k];
      sx += w * xv; sy += w * yv; sxx += w * xv * xv; syy += w * yv * yv; sxy += w * xv * yv;
    }
    Hs[e] = sx; Hs[n + e] = sy; Hs[2 * n + e] = sxx; Hs[3 * n + e] = syy; Hs[4 * n + e] = sxy;
  });
  // Pass 1b, columns, per valid pixel: SSIM and its partial derivatives w.r.t. the window moments
  // mu_x, E[x^2], E[xy] (mu_y, E[y^2] belong to the target). Invalid pixels get zeros.
  launch_1d(b, n, [=] DT_LAMBDA(int64_t e) {
    const int C = q.channels, W = q.width, H = q.height;
    const int64_t pix = e / C;
    const int x = (int)(pix % W), y = (int)((pix / W) % H);
    if (x < win.r || y < win.r || x >= W - win.r || y >= H - win.r) { A[e] = Bc[e] = Cc[e] = 0.f; return; }
    float mx = 0.f, my = 0.f, exx = 0.f, eyy = 0.f, exy = 0.f;
    for (int dy = -win.r; dy <= win.r; ++dy) {
      const float w = win.w[dy + win.r];
      const int64_t k = e + (int64_t)dy * W * C;
      mx += w * Hs[k]; my += w * Hs[n + k]; exx += w * Hs[2 * n + k]; eyy += w * Hs[3 * n + k]; exy += w * Hs[4 * n + k];
    }
    const float C1 = 1e-4f, C2 = 9e-4f;
    const float sx = exx - mx * mx, sy = eyy - my * my, sxy = exy - mx * my;
    const float N1 = 2.f * mx * my + C1, N2 = 2.f * sxy + C2, D1 = mx * mx + my * my + C1, D2 = sx + sy + C2;
    const float s = N1 * N2 / (D1 * D2);
    // d s / d mx with sx and sxy depending on mx: dN1 = 2my, dN2 = -2my, dD1 = 2mx, dD2 = -2mx.
    A[e] = s * (2.f * my / N1 - 2.f * my / N2 - 2.f * mx / D1 + 2.f * mx / D2);
    Bc[e] = -s / D2;        // d s / d E[x^2]
    Cc[e] = 2.f * s / N2;   // d s / d E[xy]
    if (q.value) reduce_add_double(q.value, (double)q.scale * (1.0 - (double)s));
  });
  if (!q.g_pred) return;
  // Pass 2, per pixel q: d/dx_q sum_p (1 - s_p) = -sum_p w(p - q) (A_p + 2 x_q B_p + y_q C_p), the
  // window sums again split into rows (into Hs, every pixel) and columns.
  launch_1d(b, n, [=] DT_LAMBDA(int64_t e) {
    const int C = q.channels, W = q.width;
    const int x = (int)((e / C) % W);
    float sa = 0.f, sb = 0.f, sc = 0.f;
    for (int dx = -win.r; dx <= win.r; ++dx) {
      const int xx = x + dx;
      if (xx < win.r || xx >= W - win.r) continue;
      const float w = win.w[dx + win.r];
      const int64_t k = e + (int64_t)dx * C;
      sa += w * A[k]; sb += w * Bc[k]; sc += w * Cc[k];
    }
    Hs[e] = sa; Hs[n + e] = sb; Hs[2 * n + e] = sc;
  });
  launch_1d(b, n, [=] DT_LAMBDA(int64_t e) {
    const int C = q.channels, W = q.width, H = q.height;
    const int y = (int)((e / C / W) % H);
    float sa = 0.f, sb = 0.f, sc = 0.f;
    for (int dy = -win.r; dy <= win.r; ++dy) {
      const int yy = y + dy;
      if (yy < win.r || yy >= H - win.r) continue;
      const float w = win.w[dy + win.r];
      const int64_t k = e + (int64_t)dy * W * C;
      sa += w * Hs[k]; sb += w * Hs[n + k]; sc += w * Hs[2 * n + k];
    }
    q.g_pred[e] += -q.scale * (sa + 2.f * q.pred[e] * sb + q.target[e] * sc);
  });
}

void sdf_sign_reg(Backend b, const SdfRegParams& p) {
  need(p.edges == 0 || (p.edge_index && p.sdf), "sdf_sign_reg", "edge_index and sdf must be non-null");
  const SdfRegParams q = p;
  launch_1d(b, p.edges, [=] DT_LAMBDA(int64_t e) {
    const int32_t a = q.edge_index[2 * e], c = q.edge_index[2 * e + 1];
    if (a < 0 || c < 0 || a >= q.vertices || c >= q.vertices) return;  // validated by the grid builder
    const float sa = q.sdf[a], sc = q.sdf[c];
    if ((sa > 0.f) == (sc > 0.f)) return;
    const float ta = sc > 0.f ? 1.f : 0.f, tc = sa > 0.f ? 1.f : 0.f;
    if (q.g_sdf) {
      atomic_add(q.g_sdf + a, q.scale * (sigmoidf(sa) - ta));
      atomic_add(q.g_sdf + c, q.scale * (sigmoidf(sc) - tc));
    }
    if (q.value) reduce_add_double(q.value, (double)q.scale * (softplus(sa) - ta * sa + softplus(sc) - tc * sc));
  });
}

void sdf_prior(Backend b, const SdfPriorParams& p) {
  need(p.n == 0 || (p.s_surf && p.s_out && p.s_in), "sdf_prior", "s_surf, s_out and s_in must be non-null");
  const SdfPriorParams q = p;
  launch_1d(b, p.n, [=] DT_LAMBDA(int64_t i) {
    const float s = q.s_surf[i], so = q.s_out[i] < 0.f ? q.s_out[i] : 0.f, si = q.s_in[i] > 0.f ? q.s_in[i] : 0.f;
    if (q.g_surf) q.g_surf[i] += 2.f * q.scale * s;
    if (q.g_out) q.g_out[i] += 2.f * q.scale * so;
    if (q.g_in) q.g_in[i] += 2.f * q.scale * si;
    if (q.value) reduce_add_double(q.value, (double)q.scale * (s * s + so * so + si * si));
  });
}

void prior_offset_points(Backend b, int64_t n, const float* points, const float* normals, float eps, float* out) {
  need(n == 0 || (points && normals && out), "prior_offset_points", "points, normals and out must be non-null");
  launch_1d(b, n, [=] DT_LAMBDA(int64_t i) {
    for (int a = 0; a < 3; ++a) {
      out[3 * i + a] = points[3 * i + a] + eps * normals[3 * i + a];
      out[3 * (n + i) + a] = points[3 * i + a] - eps * normals[3 * i + a];
    }
  });
}

void vec_l2(Backend b, const VecL2Params& p) {
  need(p.n == 0 || (p.pred && p.target), "vec_l2", "pred and target must be non-null");
  const VecL2Params q = p;
  launch_1d(b, p.n, [=] DT_LAMBDA(int64_t i) {
    const float d = q.pred[i] - q.target[i];
    if (q.g_pred) q.g_pred[i] += 2.f * q.scale * d;
    if (q.value) reduce_add_double(q.value, (double)q.scale * d * d);
  });
}

void elastic_bound(Backend b, const ElasticBoundParams& p) {
  need(p.n == 0 || p.elastic, "elastic_bound", "elastic must be non-null");
  need(p.max_scale > 0.f, "elastic_bound", "max_scale must be > 0 (cm)");
  const ElasticBoundParams q = p;
  launch_1d(b, p.n, [=] DT_LAMBDA(int64_t i) {
    const float e = q.elastic[i];
    const float hi = e > q.max_scale ? e - q.max_scale : 0.f, lo = e < 0.f ? e : 0.f;
    if (q.g_elastic) q.g_elastic[i] += 2.f * q.scale * (hi + lo);
    if (q.value && (hi != 0.f || lo != 0.f)) reduce_add_double(q.value, (double)q.scale * (hi * hi + lo * lo));
  });
}

void temporal_smoothness(Backend b, const SmoothnessParams& p) {
  need(p.sequences >= 0 && p.steps >= 0 && p.dim >= 0, "temporal_smoothness", "sizes must be >= 0");
  const int64_t n = (int64_t)p.sequences * p.steps * p.dim;
  need(n == 0 || p.cond, "temporal_smoothness", "cond must be non-null");
  const SmoothnessParams q = p;
  // Per element: its gradient from both neighbouring differences; the value counts the forward
  // difference only, so each pair is counted once.
  launch_1d(b, n, [=] DT_LAMBDA(int64_t e) {
    const int t = (int)((e / q.dim) % q.steps);
    const float c = q.cond[e];
    float g = 0.f;
    double v = 0;
    if (t + 1 < q.steps) {
      const float d = q.cond[e + q.dim] - c;
      g -= 2.f * d;
      v = (double)d * d;
    }
    if (t > 0) g += 2.f * (c - q.cond[e - q.dim]);
    if (q.g_cond) q.g_cond[e] += q.scale * g;
    if (q.value && t + 1 < q.steps) reduce_add_double(q.value, q.scale * v);
  });
}

}  // namespace train
}  // namespace dyntet
