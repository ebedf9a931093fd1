// Frames of a decoded .dyntet for the demo command, rendered by the CPU reference renderer
// (native/core/render_ref.h), as RGBA8.
#pragma once
#include <cstdint>
#include <string>
#include <vector>
#include "../core/asset.h"

namespace dyntet {
namespace preview {

struct RenderError {
  std::string msg;
};

// window: condition.window x 52 blendshapes (frame-major); pose: 16 floats, column-major.
// Returns RGBA8, width x height of the asset's camera; throws RenderError when the renderer refuses.
std::vector<uint8_t> render(const Asset& a, const float* window, const float pose[16]);

// The window of frame t of a track of n frames (model.h's clamp rule).
void clip_window(const Clip& c, int t, int window, std::vector<float>& out);

// The clip's rest expression: per blendshape, the median over its frames. Stills drawn from it
// (with a few blendshapes set) stay inside what the tracker gave in training, where all-zero
// blendshapes do not.
void clip_rest_blendshapes(const Clip& c, float out[kNumBlendshapes]);

}  // namespace preview
}  // namespace dyntet
