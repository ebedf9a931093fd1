// The .dyntet writer in the WebAssembly build: decodes an asset and writes it again, so tests can
// check that files written by the WASM writer read natively (and equal the native writer's bytes).
// Part of the reference module, not of the player's core bundle.
#include <new>
#include "asset.h"

#if defined(__EMSCRIPTEN__)
#include <emscripten/emscripten.h>
#define DT_RW_EXPORT extern "C" EMSCRIPTEN_KEEPALIVE
#else
#define DT_RW_EXPORT extern "C"
#endif

namespace {
std::vector<uint8_t> g_written;
}

// Returns the size of the rewritten file (read with dt_rewrite_data), or -1 when the input is
// refused by the reader or the writer.
DT_RW_EXPORT int dt_rewrite(const uint8_t* bytes, size_t size) {
  dyntet::Asset a;
  g_written.clear();
  if (!dyntet::read_asset(bytes, size, a).ok()) return -1;
  if (!dyntet::write_asset(a, g_written).ok()) return -1;
  return (int)g_written.size();
}
DT_RW_EXPORT const uint8_t* dt_rewrite_data() { return g_written.data(); }
