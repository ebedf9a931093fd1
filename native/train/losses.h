// Training losses, each a forward value and a gradient in one pass (their gradients do not depend
// on upstream values). Conventions:
//  - `scale` multiplies the summed loss; the caller folds the weight and the normaliser (e.g.
//    w / (pixels * channels)) into it, so no op needs a device-side count.
//  - `value` (a double on the op's backend, may be null) gets the scaled loss ADDED.
//  - gradients are ADDED into g_* (several losses share the rendered image); may be null.
// Images are B x H x W x C float arrays, masks B x H x W.
#pragma once
#include "ops_common.h"

namespace dyntet {
namespace train {

// Sum over elements of scale * m * (p - t)^2, m = mask[i / channels] (1 when mask is null).
struct MaskedL2Params {
  int64_t n = 0;  // elements = pixels * channels
  int channels = 1;
  const float* pred = nullptr;
  const float* target = nullptr;
  const float* mask = nullptr;
  float scale = 1.f;
  double* value = nullptr;
  float* g_pred = nullptr;
};
void masked_l2(Backend b, const MaskedL2Params& p);

// Rendered coverage c vs the head mask m: L2 (c - m)^2 or binary cross-entropy
// -(m log c + (1 - m) log(1 - c)) with c clamped to [1e-6, 1 - 1e-6] (zero gradient when clamped).
enum class SilhouetteMode : int { L2 = 0, BCE = 1 };
struct SilhouetteParams {
  int64_t n = 0;
  SilhouetteMode mode = SilhouetteMode::L2;
  const float* coverage = nullptr;
  const float* mask = nullptr;
  float scale = 1.f;
  double* value = nullptr;
  float* g_coverage = nullptr;
};
void silhouette_loss(Backend b, const SilhouetteParams& p);

// L2 restricted to boxes: pixel (x, y) belongs to box (x0, y0, x1, y1) when its centre
// (x + 0.5, y + 0.5) lies in [x0, x1) x [y0, y1); a pixel in k boxes counts k times.
struct BoxL2Params {
  int frames = 0, height = 0, width = 0, channels = 3;
  int boxes_per_frame = 3;
  const float* pred = nullptr;
  const float* target = nullptr;
  const float* boxes = nullptr;  // frames x boxes_per_frame x 4, pixels
  float scale = 1.f;
  double* value = nullptr;
  float* g_pred = nullptr;
};
void box_l2(Backend b, const BoxL2Params& p);

// SSIM loss: scale * sum over channels and "valid" pixels (whose window lies inside the image)
// of 1 - SSIM, C1 = 0.01^2, C2 = 0.03^2 (images in [0,1]). Windows: 11x11 Gaussian (sigma 1.5)
// or 7x7 box, applied as a row pass then a column pass. Gradient w.r.t. pred only. Needs scratch
// of 8 * frames*H*W*C floats.
enum class SsimWindow : int { Gaussian11 = 0, Box7 = 1 };
struct SsimParams {
  int frames = 0, height = 0, width = 0, channels = 3;
  SsimWindow window = SsimWindow::Gaussian11;
  const float* pred = nullptr;
  const float* target = nullptr;
  float* scratch = nullptr;
  float scale = 1.f;
  double* value = nullptr;
  float* g_pred = nullptr;
};
void ssim_loss(Backend b, const SsimParams& p);
// Number of valid pixels per frame and channel (the usual normaliser).
int64_t ssim_valid_pixels(int height, int width, SsimWindow w);

// DMTet's SDF sign regulariser over grid edges (a, b) whose SDF signs differ:
// scale * [BCE(sigmoid(s_a), s_b > 0) + BCE(sigmoid(s_b), s_a > 0)].
struct SdfRegParams {
  int64_t edges = 0;
  int64_t vertices = 0;
  const int32_t* edge_index = nullptr;  // edges x 2
  const float* sdf = nullptr;           // vertices
  float scale = 1.f;
  double* value = nullptr;
  float* g_sdf = nullptr;
};
void sdf_sign_reg(Backend b, const SdfRegParams& p);

// Landmark-mesh SDF prior: the SDF is ~0 on landmark-surface points and has the right sign a
// small step along the outward normal: scale * sum [s_surf^2 + relu(-s_out)^2 + relu(s_in)^2],
// where s_out / s_in are the SDF at p + eps n / p - eps n (prior_offset_points makes them).
struct SdfPriorParams {
  int64_t n = 0;
  const float* s_surf = nullptr;
  const float* s_out = nullptr;
  const float* s_in = nullptr;
  float scale = 1.f;
  double* value = nullptr;
  float* g_surf = nullptr;
  float* g_out = nullptr;
  float* g_in = nullptr;
};
void sdf_prior(Backend b, const SdfPriorParams& p);
// Writes out[0..n) = points + eps * normals (outside) and out[n..2n) = points - eps * normals.
void prior_offset_points(Backend b, int64_t n, const float* points, const float* normals, float eps, float* out);

// Generic vector L2 to a target: scale * sum |d - t|^2 (used for the landmark displacement prior:
// predicted displacement at landmark points vs tracked landmark minus neutral landmark).
struct VecL2Params {
  int64_t n = 0;  // floats
  const float* pred = nullptr;
  const float* target = nullptr;
  float scale = 1.f;
  double* value = nullptr;
  float* g_pred = nullptr;
};
void vec_l2(Backend b, const VecL2Params& p);

// Elastic-scale bound: scale * sum [relu(e - max)^2 + relu(-e)^2].
struct ElasticBoundParams {
  int64_t n = 0;
  const float* elastic = nullptr;
  float max_scale = 1.f;
  float scale = 1.f;
  double* value = nullptr;
  float* g_elastic = nullptr;
};
void elastic_bound(Backend b, const ElasticBoundParams& p);

// Temporal smoothness of the condition over sequences of consecutive frames (S x T x D):
// scale * sum_{s, t < T-1} |c[s][t+1] - c[s][t]|^2.
struct SmoothnessParams {
  int sequences = 0, steps = 0, dim = 0;
  const float* cond = nullptr;
  float scale = 1.f;
  double* value = nullptr;
  float* g_cond = nullptr;
};
void temporal_smoothness(Backend b, const SmoothnessParams& p);

}  // namespace train
}  // namespace dyntet
