// Reference renderer sanity through its C++ API: a sphere asset renders a disc of the expected
// radius and colour at a known pose, antialiasing only touches the rim, baked deltas move it by
// the expected amount, the reference rasteriser matches the training rasteriser, and an
// inconsistent asset is rejected with a message.
#include <cmath>
#include <cstdio>
#include <vector>

#include "../../core/render_ref.h"
#include "raster_ops.h"

extern "C" {
void* dt_ref_open(const uint8_t* bytes, size_t size);
const char* dt_ref_error(const void* handle);
int dt_ref_width(const void* h);
int dt_ref_height(const void* h);
int dt_ref_render(void* h, const float* window, const float* pose, const float* baked, const float* background, uint8_t* rgba);
void dt_ref_close(void* h);
}

using namespace dyntet;

namespace {
int g_fail = 0;
#define CHECK(cond, ...)                                                   \
  do {                                                                     \
    if (!(cond)) {                                                         \
      ++g_fail;                                                            \
      std::printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);          \
      std::printf(__VA_ARGS__);                                            \
      std::printf("\n");                                                   \
    }                                                                      \
  } while (0)

const float kRadius = 6.f, kDist = 40.f;

Asset sphere_asset(int size) {
  Asset a;
  AssetMetadata& m = a.metadata;
  m.width = m.height = size;
  m.camera.width = m.camera.height = size;
  m.grid_res = 32;
  for (int k = 0; k < 3; ++k) { m.box_min[k] = -10.f; m.box_max[k] = 10.f; }
  m.texture.grid = HashGridConfig{4, 2, 12, 4, 32};
  m.texture.mlp = MlpConfig{8 + m.condition.out_dim, 16, 1, 3, kActReLU, kActSigmoid};
  const size_t nv = (size_t)grid_num_vertices(m.grid_res);
  GridSpec g;
  g.res = m.grid_res;
  a.sdf.shape = {(uint32_t)nv};
  a.elastic.shape = {(uint32_t)nv};
  for (size_t v = 0; v < nv; ++v) {
    float p[3];
    for (int k = 0; k < 3; ++k) { g.box_min[k] = m.box_min[k]; g.box_max[k] = m.box_max[k]; }
    grid_vertex_position(g, (int32_t)v, p);
    const float s = std::sqrt(p[0] * p[0] + p[1] * p[1] + p[2] * p[2]) - kRadius;
    a.sdf.data.push_back(s);
    a.elastic.data.push_back(1.f);
    if (std::fabs(s) < 2.f) a.active.push_back((uint32_t)v);
  }
  a.deform.data.assign(mlp_param_count(m.deform.mlp), 0.f);
  a.condition.data.assign(condition_param_count(m.condition), 0.f);
  a.hash_grid.data.assign(hashgrid_param_count(m.texture.grid), 0.f);
  a.texture.data.assign(mlp_param_count(m.texture.mlp), 0.f);
  // Constant colour (0.8, 0.5, 0.2): zero weights, output biases at the logits.
  const float rgb[3] = {0.8f, 0.5f, 0.2f};
  for (int c = 0; c < 3; ++c) a.texture.data[a.texture.data.size() - 3 + c] = std::log(rgb[c] / (1.f - rgb[c]));
  for (Tensor* t : {&a.deform, &a.condition, &a.hash_grid, &a.texture}) t->shape = {(uint32_t)t->data.size()};
  return a;
}

void pose_at(float tx, float* pose) {
  const float P[16] = {1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, tx, 0, -kDist, 1};
  for (int k = 0; k < 16; ++k) pose[k] = P[k];
}

struct Disc {
  double area = 0, cx = 0, cy = 0;
};
Disc measure(const RefImage& im) {
  Disc d;
  for (int y = 0; y < im.height; ++y)
    for (int x = 0; x < im.width; ++x) {
      const double a = im.alpha[(size_t)y * im.width + x];
      d.area += a;
      d.cx += a * (x + 0.5);
      d.cy += a * (y + 0.5);
    }
  d.cx /= d.area;
  d.cy /= d.area;
  return d;
}

void test_disc() {
  std::printf("sphere disc\n");
  // Triangles of a few pixels (grid spacing 0.625 cm seen from 40 cm at 400 px): the silhouette
  // edge is usually the edge of the rim pixel's own triangle, which is what antialiasing needs.
  const int S = 400;
  Asset a = sphere_asset(S);
  std::vector<float> bg(3 * S * S, 0.f);
  for (size_t p = 0; p < (size_t)S * S; ++p) bg[3 * p + 2] = 1.f;  // blue background
  ReferenceRenderer r(a);
  CHECK(r.ok(), "renderer rejected a valid asset: %s", r.error().c_str());
  float pose[16];
  pose_at(0.f, pose);
  RefFrame f;
  f.pose = pose;
  f.background = bg.data();
  RefImage im;
  CHECK(r.render(f, im), "render failed: %s", r.error().c_str());
  const Disc d = measure(im);
  const double fy = 1.0 / std::tan(0.5 * 63.0 * M_PI / 180.0);
  const double expected = fy * kRadius / std::sqrt(kDist * kDist - kRadius * kRadius) * S / 2;
  const double radius = std::sqrt(d.area / M_PI);
  std::printf("  %zu triangles, disc radius %.3f px (expected %.3f), centre (%.3f, %.3f) (expected %.1f, %.1f)\n",
              im.num_triangles, radius, expected, d.cx, d.cy, S / 2.0, S / 2.0);
  CHECK(std::fabs(radius / expected - 1) < 0.02, "disc radius %.3f vs %.3f", radius, expected);
  CHECK(std::fabs(d.cx - S / 2.0) < 0.05 && std::fabs(d.cy - S / 2.0) < 0.05, "disc not centred");
  // Colour: texture inside, background outside, a blend on the rim only.
  int fractional = 0, rim_ok = 0;
  double worst_inside = 0;
  for (int y = 0; y < S; ++y)
    for (int x = 0; x < S; ++x) {
      const size_t p = (size_t)y * S + x;
      const double rr = std::hypot(x + 0.5 - S / 2.0, y + 0.5 - S / 2.0);
      const float al = im.alpha[p];
      if (al > 0.f && al < 1.f) {
        ++fractional;
        rim_ok += std::fabs(rr - expected) < 2.0;
      }
      if (rr < expected - 2) {
        worst_inside = std::fmax(worst_inside, std::fabs(im.rgb[3 * p] - 0.8) + std::fabs(im.rgb[3 * p + 1] - 0.5) +
                                                   std::fabs(im.rgb[3 * p + 2] - 0.2));
      }
      if (rr > expected + 2) CHECK(im.rgb[3 * p + 2] == 1.f && im.rgb[3 * p] == 0.f, "background pixel (%d,%d) not background", x, y);
    }
  std::printf("  %d antialiased pixels, %d of them on the rim; max colour error inside %.2e\n", fractional, rim_ok, worst_inside);
  CHECK(fractional > 100 && rim_ok == fractional, "antialiasing must touch the rim and only the rim");
  CHECK(worst_inside < 1e-5, "inside colour differs from the texture");

  // The reference rasteriser and the training rasteriser agree on this mesh.
  const MtMesh& mesh = r.mesh();
  std::vector<float> clip(4 * mesh.num_vertices());
  Camera cam = a.metadata.camera;
  for (size_t v = 0; v < mesh.num_vertices(); ++v) project_to_clip(cam, pose, &mesh.positions[3 * v], &clip[4 * v]);
  std::vector<int> id((size_t)S * S);
  std::vector<float> bary(2 * (size_t)S * S), depth((size_t)S * S);
  Rasterizer<float> rz(Backend::CPU);
  rz.forward({1, S, S}, clip.data(), (int64_t)mesh.num_vertices(), mesh.triangles.data(), {0, (int)mesh.num_triangles()}, id.data(),
             bary.data(), depth.data());
  int diff = 0;
  for (size_t p = 0; p < id.size(); ++p) diff += id[p] != im.tri[p];
  std::printf("  reference vs training rasteriser: %d pixels differ\n", diff);
  CHECK(diff == 0, "the rasterisers differ on %d pixels", diff);
}

void test_baked() {
  std::printf("baked deltas\n");
  const int S = 160;
  Asset a = sphere_asset(S);
  ReferenceRenderer r(a);
  float pose[16];
  pose_at(0.f, pose);
  std::vector<float> deltas(4 * a.active.size(), 0.f);
  for (size_t i = 0; i < a.active.size(); ++i) deltas[4 * i] = 1.f;  // 1 cm to +x
  RefFrame f;
  f.pose = pose;
  RefImage moved, shifted;
  f.baked_deltas = deltas.data();
  CHECK(r.render(f, moved), "%s", r.error().c_str());
  // The same displacement through the pose instead: the sphere's surface points are identical.
  pose_at(1.f, pose);
  f.baked_deltas = nullptr;
  CHECK(r.render(f, shifted), "%s", r.error().c_str());
  const Disc a1 = measure(moved), a2 = measure(shifted);
  std::printf("  baked +1 cm: centre x %.3f; pose +1 cm: centre x %.3f\n", a1.cx, a2.cx);
  CHECK(a1.cx > S / 2.0 + 2.0, "baked deltas did not move the surface");
  CHECK(std::fabs(a1.cx - a2.cx) < 0.05, "baked deltas and the equivalent pose differ");
  // An SDF delta of +1 everywhere in the band shrinks the sphere by 1 cm.
  for (size_t i = 0; i < a.active.size(); ++i) { deltas[4 * i] = 0.f; deltas[4 * i + 3] = 1.f; }
  pose_at(0.f, pose);
  f.baked_deltas = deltas.data();
  RefImage small;
  CHECK(r.render(f, small), "%s", r.error().c_str());
  const double fy = 1.0 / std::tan(0.5 * 63.0 * M_PI / 180.0);
  const double rs = kRadius - 1;
  const double expected = fy * rs / std::sqrt(kDist * kDist - rs * rs) * S / 2;
  const double radius = std::sqrt(measure(small).area / M_PI);
  std::printf("  sdf delta +1: radius %.3f px (expected %.3f)\n", radius, expected);
  CHECK(std::fabs(radius / expected - 1) < 0.02, "sdf delta radius");
}

void test_bad_asset() {
  std::printf("bad asset\n");
  Asset a = sphere_asset(32);
  a.texture.data.pop_back();
  ReferenceRenderer r(a);
  std::printf("  %s\n", r.error().c_str());
  CHECK(!r.ok(), "a texture tensor of the wrong size was accepted");
  RefImage im;
  RefFrame f;
  CHECK(!r.render(f, im), "render of a rejected asset succeeded");
  Asset b = sphere_asset(32);
  ReferenceRenderer r2(b);
  CHECK(!r2.render(f, im) && r2.error().find("pose") != std::string::npos, "missing pose not reported");
}
// Through the C API: write the asset to bytes, open, render, compare with the C++ render.
void test_capi() {
  std::printf("C API\n");
  const int S = 96;
  Asset a = sphere_asset(S);
  a.metadata_json = metadata_to_json(a.metadata);
  std::vector<uint8_t> bytes;
  const AssetStatus st = write_asset(a, bytes);
  CHECK(st.ok(), "write_asset: %s", st.message.c_str());
  if (!st.ok()) return;
  void* h = dt_ref_open(bytes.data(), bytes.size());
  CHECK(h != nullptr, "dt_ref_open: %s", dt_ref_error(nullptr));
  if (!h) return;
  CHECK(dt_ref_width(h) == S && dt_ref_height(h) == S, "size %dx%d", dt_ref_width(h), dt_ref_height(h));
  float pose[16];
  pose_at(0.5f, pose);
  std::vector<uint8_t> rgba(4 * S * S);
  CHECK(dt_ref_render(h, nullptr, pose, nullptr, nullptr, rgba.data()) == 0, "dt_ref_render: %s", dt_ref_error(h));
  ReferenceRenderer r(a);
  RefFrame f;
  f.pose = pose;
  RefImage im;
  r.render(f, im);
  int diff = 0;
  for (int p = 0; p < S * S; ++p)
    for (int c = 0; c < 3; ++c) diff += std::abs((int)rgba[4 * p + c] - (int)std::lround(std::fmin(std::fmax(im.rgb[3 * p + c], 0.f), 1.f) * 255.f)) > 0;
  std::printf("  C API vs C++ render: %d channel values differ\n", diff);
  CHECK(diff == 0, "C API render differs");
  CHECK(dt_ref_render(h, nullptr, nullptr, nullptr, nullptr, rgba.data()) != 0, "missing pose accepted");
  std::printf("  missing pose: %s\n", dt_ref_error(h));
  dt_ref_close(h);
  bytes[40] ^= 0xff;  // damage a payload byte: the checksum must catch it
  void* bad = dt_ref_open(bytes.data(), bytes.size());
  std::printf("  damaged file: %s\n", dt_ref_error(nullptr));
  CHECK(bad == nullptr, "a damaged file opened");
  dt_ref_close(bad);
}
}  // namespace

int main() {
  test_capi();
  test_disc();
  test_baked();
  test_bad_asset();
  if (g_fail) { std::printf("%d check(s) failed\n", g_fail); return 1; }
  std::printf("all reference renderer tests passed\n");
  return 0;
}
