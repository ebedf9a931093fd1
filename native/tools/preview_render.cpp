#include "preview_render.h"

#include <algorithm>
#include <cmath>

#include "../core/grid.h"
#include "../core/marching_tets.h"
#include "../core/model.h"
#include "../core/raster.h"
#include "../core/render_ref.h"

namespace dyntet {
namespace preview {

void clip_window(const Clip& c, int t, int window, std::vector<float>& out) {
  const int n = (int)c.coefficients.shape[0];
  out.assign((size_t)window * kNumBlendshapes, 0.f);
  for (int j = 0; j < window; ++j) {
    const int f = std::clamp(t + j - (window - 1) / 2, 0, n - 1);
    for (int k = 0; k < kNumBlendshapes; ++k) out[(size_t)j * kNumBlendshapes + k] = c.coefficients.data[(size_t)f * kNumCoefficients + k];
  }
}

void clip_rest_blendshapes(const Clip& c, float out[kNumBlendshapes]) {
  const int n = (int)c.coefficients.shape[0];
  std::vector<float> v((size_t)n);
  for (int k = 0; k < kNumBlendshapes; ++k) {
    for (int f = 0; f < n; ++f) v[(size_t)f] = c.coefficients.data[(size_t)f * kNumCoefficients + k];
    std::nth_element(v.begin(), v.begin() + n / 2, v.end());
    out[k] = n > 0 ? v[(size_t)n / 2] : 0.f;
  }
}

std::vector<uint8_t> render(const Asset& a, const float* window, const float pose[16]) {
  ReferenceRenderer r(a);
  RefImage img;
  RefFrame f;
  f.window = window;
  f.pose = pose;
  if (!r.ok() || !r.render(f, img)) throw RenderError{r.error()};
  std::vector<uint8_t> out((size_t)img.width * img.height * 4);
  for (size_t o = 0; o < (size_t)img.width * img.height; ++o) {
    for (int k = 0; k < 3; ++k) out[o * 4 + k] = (uint8_t)std::lround(std::clamp(img.rgb[o * 3 + k], 0.f, 1.f) * 255.f);
    // Coverage, so a caller can composite over a plate the renderer could not decode (PNG).
    out[o * 4 + 3] = (uint8_t)std::lround(std::clamp(img.alpha[o], 0.f, 1.f) * 255.f);
  }
  return out;
}

}  // namespace preview
}  // namespace dyntet
