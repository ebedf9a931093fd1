// A small CPU renderer of a decoded .dyntet for the demo command: condition, deformation of the
// active vertices, marching tets, rasterisation with raster.h's coverage and depth rule, texture
// with model.h's hash grid and MLP, composited over the plate. No antialiasing. It stands in until
// the reference renderer (native/core/render_ref.h) is available to the tools.
#pragma once
#include <cstdint>
#include <vector>
#include "../core/asset.h"

namespace dyntet {
namespace preview {

// window: condition.window x 52 blendshapes (frame-major); pose: 16 floats, column-major.
// Returns RGBA8, width x height of the asset's camera.
std::vector<uint8_t> render(const Asset& a, const float* window, const float pose[16]);

// The window of frame t of a track of n frames (model.h's clamp rule).
void clip_window(const Clip& c, int t, int window, std::vector<float>& out);

}  // namespace preview
}  // namespace dyntet
