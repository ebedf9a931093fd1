// C ABI of the .dyntet reader for the WebAssembly build (sdk/src/asset.ts). A handle owns the
// decoded Asset; every pointer it hands out points into it and stays valid until dt_asset_close.
// Nothing here throws; failures are a status code (asset.h's AssetError) and a message.
#include <new>
#include "asset.h"

#if defined(__EMSCRIPTEN__)
#include <emscripten/emscripten.h>
#define DT_ASSET_EXPORT extern "C" EMSCRIPTEN_KEEPALIVE
#else
#define DT_ASSET_EXPORT extern "C"
#endif

namespace {
struct AssetHandle {
  dyntet::Asset asset;
  dyntet::AssetStatus status;
  std::vector<std::vector<float>> expanded;  // baked clips expanded on request
};
AssetHandle* H(void* h) { return static_cast<AssetHandle*>(h); }

// Tensor ids of dt_asset_tensor_*: the order of the player's model tables.
const dyntet::Tensor* tensor(AssetHandle* h, int which) {
  dyntet::Asset& a = h->asset;
  const dyntet::Tensor* t[] = {&a.sdf, &a.elastic, &a.deform, &a.condition, &a.hash_grid, &a.texture};
  return which >= 0 && which < 6 ? t[which] : nullptr;
}
}  // namespace

// Decodes; returns a handle (null only when out of memory). Check dt_asset_status first.
DT_ASSET_EXPORT void* dt_asset_open(const uint8_t* bytes, size_t size) {
  AssetHandle* h = new (std::nothrow) AssetHandle();
  if (!h) return nullptr;
  h->status = dyntet::read_asset(bytes, size, h->asset);
  if (!h->status.ok()) h->asset = dyntet::Asset{};
  else h->expanded.resize(h->asset.baked.size());
  return h;
}
DT_ASSET_EXPORT int dt_asset_status(void* h) { return (int)H(h)->status.code; }
DT_ASSET_EXPORT const char* dt_asset_error_name(void* h) { return dyntet::asset_error_name(H(h)->status.code); }
DT_ASSET_EXPORT const char* dt_asset_message(void* h) { return H(h)->status.message.c_str(); }
DT_ASSET_EXPORT const char* dt_asset_metadata(void* h) { return H(h)->asset.metadata_json.c_str(); }
DT_ASSET_EXPORT uint32_t dt_asset_tensor_count(void* h, int which) {
  const dyntet::Tensor* t = tensor(H(h), which);
  return t ? (uint32_t)t->data.size() : 0;
}
DT_ASSET_EXPORT const float* dt_asset_tensor_data(void* h, int which) {
  const dyntet::Tensor* t = tensor(H(h), which);
  return t ? t->data.data() : nullptr;
}
DT_ASSET_EXPORT int dt_asset_tensor_dtype(void* h, int which) {
  const dyntet::Tensor* t = tensor(H(h), which);
  return t ? (int)t->encoding.dtype : 0;
}
DT_ASSET_EXPORT uint32_t dt_asset_active_count(void* h) { return (uint32_t)H(h)->asset.active.size(); }
DT_ASSET_EXPORT const uint32_t* dt_asset_active_data(void* h) { return H(h)->asset.active.data(); }
DT_ASSET_EXPORT uint32_t dt_asset_clip_count(void* h) { return (uint32_t)H(h)->asset.clips.size(); }
DT_ASSET_EXPORT const char* dt_asset_clip_name(void* h, uint32_t i) { return H(h)->asset.clips[i].name.c_str(); }
DT_ASSET_EXPORT float dt_asset_clip_fps(void* h, uint32_t i) { return H(h)->asset.clips[i].fps; }
DT_ASSET_EXPORT uint32_t dt_asset_clip_frames(void* h, uint32_t i) { return H(h)->asset.clips[i].coefficients.shape[0]; }
DT_ASSET_EXPORT const float* dt_asset_clip_data(void* h, uint32_t i) { return H(h)->asset.clips[i].coefficients.data.data(); }
DT_ASSET_EXPORT uint32_t dt_asset_baked_count(void* h) { return (uint32_t)H(h)->asset.baked.size(); }
DT_ASSET_EXPORT const char* dt_asset_baked_clip(void* h, uint32_t i) { return H(h)->asset.baked[i].clip.c_str(); }
DT_ASSET_EXPORT uint32_t dt_asset_baked_frames(void* h, uint32_t i) { return H(h)->asset.baked[i].frames; }
// frames x active x 4 floats (dx, dy, dz, dsdf), expanded from either stored form.
DT_ASSET_EXPORT const float* dt_asset_baked_data(void* h, uint32_t i) {
  AssetHandle* a = H(h);
  if (a->expanded[i].empty()) a->expanded[i] = a->asset.baked[i].expand();
  return a->expanded[i].data();
}
// The stored basis form (deltas(f) = mean + sum_k weights[f][k] basis[k]) without expanding it:
// K (0 for the direct form), mean [active*4], basis [K][active*4], weights [frames][K].
DT_ASSET_EXPORT uint32_t dt_asset_baked_basis_size(void* h, uint32_t i) {
  const dyntet::BakedClip& b = H(h)->asset.baked[i];
  return b.has_basis() ? b.basis.shape[0] : 0;
}
DT_ASSET_EXPORT const float* dt_asset_baked_mean(void* h, uint32_t i) { return H(h)->asset.baked[i].mean.data.data(); }
DT_ASSET_EXPORT const float* dt_asset_baked_basis(void* h, uint32_t i) { return H(h)->asset.baked[i].basis.data.data(); }
DT_ASSET_EXPORT const float* dt_asset_baked_weights(void* h, uint32_t i) { return H(h)->asset.baked[i].weights.data.data(); }
DT_ASSET_EXPORT int dt_asset_has_plate(void* h) { return H(h)->asset.has_plate ? 1 : 0; }
DT_ASSET_EXPORT uint32_t dt_asset_plate_encoding(void* h) { return (uint32_t)H(h)->asset.plate.encoding; }
DT_ASSET_EXPORT uint32_t dt_asset_plate_width(void* h) { return H(h)->asset.plate.width; }
DT_ASSET_EXPORT uint32_t dt_asset_plate_height(void* h) { return H(h)->asset.plate.height; }
DT_ASSET_EXPORT uint32_t dt_asset_plate_size(void* h) { return (uint32_t)H(h)->asset.plate.bytes.size(); }
DT_ASSET_EXPORT const uint8_t* dt_asset_plate_data(void* h) { return H(h)->asset.plate.bytes.data(); }
DT_ASSET_EXPORT void dt_asset_close(void* h) { delete H(h); }
