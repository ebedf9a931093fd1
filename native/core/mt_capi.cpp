// C ABI of marching tetrahedra for the WebAssembly build: the bit-identity test against the
// native build and the native-vs-WASM speed benchmark use it. One mesh at a time, owned here.
#include "marching_tets.h"

#if defined(__EMSCRIPTEN__)
#include <emscripten/emscripten.h>
#define DT_MT_EXPORT extern "C" EMSCRIPTEN_KEEPALIVE
#else
#define DT_MT_EXPORT extern "C"
#endif

namespace {
dyntet::MtMesh g_mesh;
}

// box: min xyz then max xyz. displacement: 3 per grid vertex or null. Returns the triangle
// count, or -1 for a resolution or box the grid refuses.
DT_MT_EXPORT int dt_mt_run(int res, const float* box, const float* sdf, const float* displacement) {
  dyntet::GridSpec g;
  g.res = res;
  for (int k = 0; k < 3; ++k) {
    g.box_min[k] = box[k];
    g.box_max[k] = box[3 + k];
  }
  if (!dyntet::marching_tets(g, sdf, displacement, g_mesh)) return -1;
  return (int)g_mesh.num_triangles();
}
DT_MT_EXPORT int dt_mt_vertex_count() { return (int)g_mesh.num_vertices(); }
DT_MT_EXPORT const float* dt_mt_positions() { return g_mesh.positions.data(); }
DT_MT_EXPORT const float* dt_mt_canonical() { return g_mesh.canonical.data(); }
DT_MT_EXPORT const int32_t* dt_mt_triangles() { return g_mesh.triangles.data(); }
