// C API of the reference renderer, for the WASM module (and any FFI): open an asset from bytes,
// render frames to RGBA8, close. No exceptions cross it; failures return null / non-zero and
// the message is read with dt_ref_error.
#include <cmath>
#include <cstdint>
#include <new>
#include <string>

#include "asset.h"
#include "render_ref.h"

#if defined(__EMSCRIPTEN__)
#include <emscripten/emscripten.h>
#define DT_REF_EXPORT extern "C" EMSCRIPTEN_KEEPALIVE
#else
#define DT_REF_EXPORT extern "C"
#endif

namespace {
struct RefHandle {
  dyntet::Asset asset;
  dyntet::ReferenceRenderer* renderer = nullptr;
  dyntet::RefImage image;
  std::string error;
};
std::string g_open_error;
}  // namespace

// Returns a handle, or null with dt_ref_error(null) saying why (the asset reader's message).
DT_REF_EXPORT void* dt_ref_open(const uint8_t* bytes, size_t size) {
  RefHandle* h = new (std::nothrow) RefHandle();
  if (!h) { g_open_error = "out of memory"; return nullptr; }
  const dyntet::AssetStatus st = dyntet::read_asset(bytes, size, h->asset);
  if (!st.ok()) {
    g_open_error = std::string(dyntet::asset_error_name(st.code)) + ": " + st.message;
    delete h;
    return nullptr;
  }
  h->renderer = new (std::nothrow) dyntet::ReferenceRenderer(h->asset);
  if (!h->renderer || !h->renderer->ok()) {
    g_open_error = h->renderer ? "BAD_ASSET: " + h->renderer->error() : "out of memory";
    delete h->renderer;
    delete h;
    return nullptr;
  }
  return h;
}

DT_REF_EXPORT const char* dt_ref_error(const void* handle) {
  return handle ? static_cast<const RefHandle*>(handle)->error.c_str() : g_open_error.c_str();
}

DT_REF_EXPORT int dt_ref_width(const void* h) { return static_cast<const RefHandle*>(h)->asset.metadata.width; }
DT_REF_EXPORT int dt_ref_height(const void* h) { return static_cast<const RefHandle*>(h)->asset.metadata.height; }
// Frames of blendshapes the condition window holds (each 52 floats).
DT_REF_EXPORT int dt_ref_window(const void* h) { return static_cast<const RefHandle*>(h)->asset.metadata.condition.window; }
// Number of active vertices: a baked frame has 4 floats per active vertex.
DT_REF_EXPORT int dt_ref_active(const void* h) { return (int)static_cast<const RefHandle*>(h)->asset.active.size(); }

// Renders one frame into rgba (width * height * 4 bytes): RGB = round(clamp(v) * 255) of the
// composited colour, A = the antialiased coverage the same way. window: dt_ref_window x 52
// floats (null: neutral); pose: 16 floats; baked: dt_ref_active x 4 floats or null;
// background: width * height * 3 floats or null (the plate, else black). 0 on success.
DT_REF_EXPORT int dt_ref_render(void* handle, const float* window, const float* pose, const float* baked, const float* background,
                                uint8_t* rgba) {
  RefHandle* h = static_cast<RefHandle*>(handle);
  if (!h) return -1;
  if (!pose || !rgba) { h->error = "dt_ref_render: pose and rgba output are required"; return -1; }
  dyntet::RefFrame f;
  f.window = window;
  f.pose = pose;
  f.baked_deltas = baked;
  f.background = background;
  if (!h->renderer->render(f, h->image)) { h->error = h->renderer->error(); return -1; }
  const size_t np = (size_t)h->image.width * h->image.height;
  auto q = [](float v) { return (uint8_t)std::lround(std::fmin(std::fmax(v, 0.f), 1.f) * 255.f); };
  for (size_t p = 0; p < np; ++p) {
    for (int c = 0; c < 3; ++c) rgba[4 * p + c] = q(h->image.rgb[3 * p + c]);
    rgba[4 * p + 3] = q(h->image.alpha[p]);
  }
  return 0;
}

DT_REF_EXPORT void dt_ref_close(void* handle) {
  RefHandle* h = static_cast<RefHandle*>(handle);
  if (!h) return;
  delete h->renderer;
  delete h;
}
