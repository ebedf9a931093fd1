// make_synthetic_avatar: writes the synthetic test avatar (synthetic_head.h) as a .dyntet file,
// checks that model.h's forward math gives it the intended behaviour, and dumps marching-tets
// meshes of any .dyntet at given coefficients for tests.
//
//   make_synthetic_avatar write --out FILE [--resolution R] [--size WxH] [--frames N] [--bake | --bake-basis]
//     --bake also stores, for every clip, its baked per-frame deltas (a BAKE chunk, f16, direct
//     form): the deformation MLP's output for each active vertex at each frame's condition window,
//     so a player replaying the deltas draws what running the MLP draws. --bake-basis stores the
//     same values in the basis form (frames vectors, identity weights).
//   make_synthetic_avatar check [--resolution R]
//   make_synthetic_avatar mesh --in FILE [--set name=value ...] --out FILE.json
//
// Exit status: 0 success, 1 a check failed or the input was bad (message on stderr), 2 usage.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "../core/asset.h"
#include "../core/grid.h"
#include "../core/marching_tets.h"
#include "../core/model.h"
#include "preview_render.h"
#include "synthetic_head.h"

using namespace dyntet;

namespace {

const char* kUsage =
    "usage:\n"
    "  make_synthetic_avatar write --out FILE [--resolution R] [--size WxH] [--frames N] [--bake | --bake-basis]\n"
    "  make_synthetic_avatar check [--resolution R]\n"
    "  make_synthetic_avatar mesh --in FILE.dyntet --out FILE.json [--set blendshapeName=value ...]\n"
    "  make_synthetic_avatar render --in FILE.dyntet --out FILE.rgba [--rest] [--set name=value ...] [--yaw DEG] [--pitch DEG]\n"
    "      (--rest: blendshapes not --set take the first clip's median, not 0)\n"
    "  make_synthetic_avatar render --in FILE.dyntet --clip K --out PREFIX [--frames N]   (PREFIX0000.rgba, ...)\n";

struct UsageFail {
  std::string msg;
};

int parse_int(const std::string& flag, const std::string& v, int lo, int hi) {
  char* end = nullptr;
  const long x = std::strtol(v.c_str(), &end, 10);
  if (v.empty() || *end != '\0' || x < lo || x > hi)
    throw UsageFail{flag + " must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got \"" + v + "\""};
  return (int)x;
}

// Names of the 52 blendshapes (sdk/src/coefficients.ts order), for --set.
const char* const kNames[kNumBlendshapes] = {
    "_neutral", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "eyeBlinkLeft", "eyeBlinkRight",
    "eyeLookDownLeft", "eyeLookDownRight", "eyeLookInLeft", "eyeLookInRight", "eyeLookOutLeft",
    "eyeLookOutRight", "eyeLookUpLeft", "eyeLookUpRight", "eyeSquintLeft", "eyeSquintRight",
    "eyeWideLeft", "eyeWideRight", "jawForward", "jawLeft", "jawOpen", "jawRight", "mouthClose",
    "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft", "mouthFrownRight", "mouthFunnel",
    "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthPressLeft", "mouthPressRight",
    "mouthPucker", "mouthRight", "mouthRollLower", "mouthRollUpper", "mouthShrugLower",
    "mouthShrugUpper", "mouthSmileLeft", "mouthSmileRight", "mouthStretchLeft", "mouthStretchRight",
    "mouthUpperUpLeft", "mouthUpperUpRight", "noseSneerLeft", "noseSneerRight"};

Tensor tensor1d(const std::vector<float>& v, DType dt = DType::F32) {
  Tensor t;
  t.shape = {(uint32_t)v.size()};
  t.data = v;
  t.encoding.dtype = dt;
  t.encoding.quant = QuantMode::None;
  return t;
}

Asset to_asset(const synth::Avatar& a) {
  Asset out;
  AssetMetadata m;
  m.name = a.name;
  m.width = a.width, m.height = a.height;
  m.camera = a.camera;
  for (int i = 0; i < 3; ++i) m.box_min[i] = a.box_min[i], m.box_max[i] = a.box_max[i];
  m.grid_res = a.grid_res;
  m.active_band = a.active_band;
  m.texture = a.texture;
  m.deform = a.deform;
  m.condition = a.condition;
  out.metadata = m;
  out.metadata_json = metadata_to_json(
      m,
      "\"description\":\"Synthetic test avatar: an analytic head whose jaw opens and eyelids close under jawOpen and "
      "eyeBlinkLeft/Right, with hand-built network weights. A test fixture, not a trained avatar.\","
      "\"generator\":\"native/tools/make_synthetic_avatar\",\"attribution\":\"procedural, no source material\"");
  out.sdf = tensor1d(a.sdf);
  out.elastic = tensor1d(a.elastic);
  for (size_t v = 0; v < a.sdf.size(); ++v)
    if (std::fabs(a.sdf[v]) <= a.active_band) out.active.push_back((uint32_t)v);
  out.deform = tensor1d(a.deform_params);
  out.condition = tensor1d(a.condition_params);
  // Half floats halve the largest table; the colour logits and detail need no more.
  out.hash_grid = tensor1d(a.hash_tables, DType::F16);
  out.texture = tensor1d(a.texture_params);
  for (const auto& c : a.clips) {
    Clip clip;
    clip.name = c.name;
    clip.fps = c.fps;
    const size_t frames = c.blendshapes.size() / kNumBlendshapes;
    clip.coefficients.shape = {(uint32_t)frames, (uint32_t)kNumCoefficients};
    clip.coefficients.encoding = Encoding{DType::F32, QuantMode::None};
    for (size_t f = 0; f < frames; ++f) {
      clip.coefficients.data.insert(clip.coefficients.data.end(), c.blendshapes.begin() + f * kNumBlendshapes,
                                    c.blendshapes.begin() + (f + 1) * kNumBlendshapes);
      clip.coefficients.data.insert(clip.coefficients.data.end(), c.poses.begin() + f * kPoseSize,
                                    c.poses.begin() + (f + 1) * kPoseSize);
    }
    out.clips.push_back(std::move(clip));
  }
  out.has_plate = true;
  out.plate.encoding = PlateEncoding::RGBA8;
  out.plate.width = (uint32_t)a.width, out.plate.height = (uint32_t)a.height;
  out.plate.bytes = a.background;
  return out;
}

// The deformed grid of an avatar at one static coefficient frame (the window is that frame
// repeated, as for a one-frame track): sdf + delta and displacement per grid vertex.
struct Deformed {
  std::vector<float> sdf, disp;
};

Deformed deform_static(const AssetMetadata& m, const std::vector<float>& sdf, const std::vector<float>& elastic,
                       const std::vector<uint32_t>& active, const float* cond_params, const float* deform_params,
                       const float blendshapes[kNumBlendshapes]) {
  std::vector<float> window((size_t)m.condition.window * kNumBlendshapes);
  for (int j = 0; j < m.condition.window; ++j)
    for (int c = 0; c < kNumBlendshapes; ++c) window[(size_t)j * kNumBlendshapes + c] = blendshapes[c];
  float cond[kMaxWidth];
  condition_forward(m.condition, cond_params, window.data(), cond);
  GridSpec g;
  g.res = m.grid_res;
  for (int i = 0; i < 3; ++i) g.box_min[i] = m.box_min[i], g.box_max[i] = m.box_max[i];
  Deformed d;
  d.sdf = sdf;
  d.disp.assign(sdf.size() * 3, 0.f);
  for (uint32_t v : active) {
    float p[3], u[3], disp[3], delta;
    grid_vertex_position(g, (int32_t)v, p);
    {  // u of a grid vertex is its lattice coordinate (i, j, k) / R, as every backend computes it
      int32_t ijk[3];
      grid_vertex_ijk(g.res, (int32_t)v, ijk);
      for (int a = 0; a < 3; ++a) u[a] = (float)ijk[a] / (float)g.res;
    }
    deform_vertex(m.deform, deform_params, u, cond, m.condition.out_dim, elastic[v], disp, &delta);
    for (int a = 0; a < 3; ++a) d.disp[(size_t)v * 3 + a] = disp[a];
    d.sdf[v] += delta;
  }
  return d;
}

GridSpec grid_of(const AssetMetadata& m) {
  GridSpec g;
  g.res = m.grid_res;
  for (int i = 0; i < 3; ++i) g.box_min[i] = m.box_min[i], g.box_max[i] = m.box_max[i];
  return g;
}

// Baked deltas of every clip of an asset (render_ref.h step 2): per frame, the condition of the
// frame's window (model.h clamp rule) and deform_vertex of every active vertex, (dx, dy, dz,
// dsdf) per vertex, in the direct form.
void bake_clips(Asset& asset, bool as_basis) {
  const AssetMetadata& m = asset.metadata;
  const int R = m.grid_res, W = m.condition.window;
  const size_t na = asset.active.size();
  for (const Clip& c : asset.clips) {
    const uint32_t frames = c.coefficients.shape[0];
    BakedClip b;
    b.clip = c.name;
    b.frames = frames;
    b.active = (uint32_t)na;
    b.deltas.shape = {frames, (uint32_t)(na * 4)};
    b.deltas.encoding = Encoding{DType::F16, QuantMode::None};
    b.deltas.data.assign((size_t)frames * na * 4, 0.f);
    std::vector<float> win;
    for (uint32_t f = 0; f < frames; ++f) {
      preview::clip_window(c, (int)f, W, win);
      float cond[kMaxWidth];
      condition_forward(m.condition, asset.condition.data.data(), win.data(), cond);
      for (size_t i = 0; i < na; ++i) {
        const int32_t v = (int32_t)asset.active[i];
        int32_t ijk[3];
        grid_vertex_ijk(R, v, ijk);
        const float u[3] = {(float)ijk[0] / (float)R, (float)ijk[1] / (float)R, (float)ijk[2] / (float)R};
        float* d = &b.deltas.data[((size_t)f * na + i) * 4];
        deform_vertex(m.deform, asset.deform.data.data(), u, cond, m.condition.out_dim, asset.elastic.data[v], d, &d[3]);
      }
    }
    if (as_basis) {
      // The same deltas in the basis form (K = frames, mean 0, identity weights): expanding it
      // gives back exactly the direct form's f16 values, so players can be checked against both.
      b.basis = b.deltas;
      b.deltas = Tensor{};
      b.mean.shape = {(uint32_t)(na * 4)};
      b.mean.data.assign(na * 4, 0.f);
      b.weights.shape = {frames, frames};
      b.weights.data.assign((size_t)frames * frames, 0.f);
      for (uint32_t f = 0; f < frames; ++f) b.weights.data[(size_t)f * frames + f] = 1.f;
    }
    asset.baked.push_back(std::move(b));
  }
}

bool write_file(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream f(path, std::ios::binary);
  if (!f) return false;
  f.write((const char*)bytes.data(), (std::streamsize)bytes.size());
  return (bool)f;
}

int cmd_write(const std::string& out_path, const synth::Options& o, bool bake, bool bake_basis) {
  const synth::Avatar a = synth::build(o);
  std::vector<uint8_t> bytes;
  Asset asset = to_asset(a);
  if (bake || bake_basis) bake_clips(asset, bake_basis);
  const AssetStatus st = write_asset(asset, bytes);
  if (!st.ok()) {
    std::fprintf(stderr, "make_synthetic_avatar: the asset writer refused the avatar (%s): %s\n", asset_error_name(st.code), st.message.c_str());
    return 1;
  }
  if (!write_file(out_path, bytes)) {
    std::fprintf(stderr, "make_synthetic_avatar: cannot write %s: check that its folder exists and is writable\n", out_path.c_str());
    return 1;
  }
  std::printf("wrote %s: %zu bytes, grid R=%d, %dx%d, clip of %d frames%s\n", out_path.c_str(), bytes.size(), o.grid_res, o.width, o.height,
              o.clip_frames, bake_basis ? ", baked (basis form)" : bake ? ", baked" : "");
  return 0;
}

// Behaviour checks on the in-memory avatar with model.h's functions (ctest runs this).
int cmd_check(const synth::Options& o) {
  const synth::Avatar a = synth::build(o);
  const Asset asset = to_asset(a);
  AssetMetadata m = asset.metadata;
  int failures = 0;
  auto expect = [&](bool ok, const std::string& what) {
    std::printf("%s %s\n", ok ? "ok  " : "FAIL", what.c_str());
    if (!ok) ++failures;
  };
  float neutral[kNumBlendshapes] = {0}, jaw[kNumBlendshapes] = {0}, blink[kNumBlendshapes] = {0};
  jaw[synth::kJawOpen] = 1.f;
  blink[synth::kEyeBlinkLeft] = 1.f, blink[synth::kEyeBlinkRight] = 1.f;

  // Condition routing.
  {
    std::vector<float> window((size_t)m.condition.window * kNumBlendshapes, 0.f);
    window[(size_t)(m.condition.window / 2) * kNumBlendshapes + synth::kJawOpen] = 1.f;  // centre frame only
    window[(size_t)0 * kNumBlendshapes + synth::kEyeBlinkLeft] = 1.f;                    // an edge frame
    float cond[kMaxWidth];
    condition_forward(m.condition, a.condition_params.data(), window.data(), cond);
    char buf[160];
    std::snprintf(buf, sizeof buf, "condition carries the centre frame's jawOpen (c0 = %.4f, expected tanh(1) = %.4f) and ignores other frames (c1 = %.4f)", cond[0], std::tanh(1.f), cond[1]);
    expect(std::fabs(cond[0] - std::tanh(1.f)) < 1e-5f && cond[1] == 0.f, buf);
  }

  const GridSpec g = grid_of(m);
  const Deformed d0 = deform_static(m, a.sdf, a.elastic, asset.active, a.condition_params.data(), a.deform_params.data(), neutral);
  const Deformed d1 = deform_static(m, a.sdf, a.elastic, asset.active, a.condition_params.data(), a.deform_params.data(), jaw);
  const Deformed db = deform_static(m, a.sdf, a.elastic, asset.active, a.condition_params.data(), a.deform_params.data(), blink);

  // Neutral: nothing moves.
  {
    bool still = true;
    for (size_t v = 0; v < a.sdf.size(); ++v) still &= d0.sdf[v] == a.sdf[v] && d0.disp[v * 3] == 0.f && d0.disp[v * 3 + 1] == 0.f && d0.disp[v * 3 + 2] == 0.f;
    expect(still, "neutral coefficients leave every vertex and distance unchanged");
  }
  // jawOpen: movement and distance changes only on the lower face; the chin drops.
  {
    float max_drop = 0.f;
    bool local = true;
    int carved = 0;
    for (size_t v = 0; v < a.sdf.size(); ++v) {
      float p[3];
      grid_vertex_position(g, (int32_t)v, p);
      const bool changed = d1.sdf[v] != a.sdf[v] || d1.disp[v * 3] != 0.f || d1.disp[v * 3 + 1] != 0.f || d1.disp[v * 3 + 2] != 0.f;
      const bool mouth_region = p[1] < -2.5f && p[2] > -0.5f;
      if (changed && !mouth_region) local = false;
      max_drop = std::max(max_drop, -d1.disp[v * 3 + 1]);
      if (a.sdf[v] < 0.f && d1.sdf[v] >= 0.f) ++carved;
    }
    char buf[160];
    std::snprintf(buf, sizeof buf, "jawOpen = 1 drops the chin by %.2f cm (> 1) and carves %d grid vertices out of the mouth (> 0)", max_drop, carved);
    expect(max_drop > 1.f && carved > 0, buf);
    expect(local, "jawOpen = 1 changes nothing above the mouth or at the back of the head");
  }
  // Mouth gap: along the vertical line through the mouth centre, the mesh at jawOpen = 1 has
  // more surface crossings (an opening) than at neutral.
  {
    MtMesh m0, m1;
    marching_tets(g, d0.sdf.data(), d0.disp.data(), m0);
    marching_tets(g, d1.sdf.data(), d1.disp.data(), m1);
    auto mouth_verts = [](const MtMesh& mm) {
      int n = 0;
      for (size_t i = 0; i < mm.num_vertices(); ++i) {
        const float* c = &mm.canonical[i * 3];
        if (std::fabs(c[0]) < 1.5f && c[1] > -5.6f && c[1] < -3.3f && c[2] > 3.f) ++n;
      }
      return n;
    };
    const int n0 = mouth_verts(m0), n1 = mouth_verts(m1);
    char buf[200];
    std::snprintf(buf, sizeof buf, "the opened mouth has more surface in the mouth box (%d surface vertices vs %d closed); meshes have %zu and %zu triangles", n1, n0, m1.num_triangles(), m0.num_triangles());
    expect(n1 > n0 && m0.num_triangles() > 1000, buf);
  }
  // Blink: the distance falls (material added) only around the eyes.
  {
    int filled = 0;
    bool local = true;
    for (size_t v = 0; v < a.sdf.size(); ++v) {
      float p[3];
      grid_vertex_position(g, (int32_t)v, p);
      if (db.sdf[v] != a.sdf[v] && !(std::fabs(std::fabs(p[0]) - 3.2f) < 2.5f && std::fabs(p[1] - 2.6f) < 1.8f && p[2] > 4.f)) local = false;
      if (a.sdf[v] >= 0.f && db.sdf[v] < 0.f) ++filled;
    }
    char buf[160];
    std::snprintf(buf, sizeof buf, "both eyeBlinks = 1 fill %d grid vertices of the eye sockets (> 0), nothing else", filled);
    expect(filled > 0 && local, buf);
  }
  // Texture: hash grid + MLP reproduce the colour field on the surface.
  {
    HashLevel levels[32];
    hashgrid_levels(m.texture.grid, levels);
    MtMesh mesh;
    marching_tets(g, a.sdf.data(), nullptr, mesh);
    double err = 0.0;
    size_t n = 0;
    for (size_t i = 0; i < mesh.num_vertices(); i += 7) {
      float u[3], feat[kMaxWidth] = {0}, rgb[3], ref[3];
      for (int k = 0; k < 3; ++k) u[k] = (mesh.canonical[i * 3 + k] - m.box_min[k]) / (m.box_max[k] - m.box_min[k]);
      hashgrid_encode(m.texture.grid, levels, a.hash_tables.data(), u, feat);
      mlp_forward(m.texture.mlp, a.texture_params.data(), feat, rgb);
      synth::head_colour(&mesh.canonical[i * 3], ref);
      for (int k = 0; k < 3; ++k) err += std::fabs(rgb[k] - ref[k]);
      n += 3;
    }
    char buf[160];
    std::snprintf(buf, sizeof buf, "texture network matches the colour field on the surface: mean |error| %.4f (< 0.06) over %zu samples", err / n, n / 3);
    expect(n > 0 && err / n < 0.06, buf);
  }
  // Camera: the neutral head projects inside the frame, filling a sensible part of it.
  {
    float pose[16];
    synth::make_pose(0.f, 0.f, 0.f, 0.f, synth::kViewDistance, pose);
    const float top[3] = {0.f, 11.f, 0.f}, chin[3] = {0.f, -10.f, 5.f};
    float c0[4], c1[4], p0[2], p1[2];
    project_to_clip(a.camera, pose, top, c0);
    project_to_clip(a.camera, pose, chin, c1);
    clip_to_pixel(a.camera, c0, p0);
    clip_to_pixel(a.camera, c1, p1);
    const float frac = (p1[1] - p0[1]) / a.camera.height;
    char buf[160];
    std::snprintf(buf, sizeof buf, "the head spans %.0f%% of the frame height (top at y = %.0f px, chin at %.0f px)", frac * 100.f, p0[1], p1[1]);
    expect(p0[1] > 0.f && p1[1] < a.camera.height && frac > 0.3f, buf);
  }
  std::printf("%s\n", failures ? "synthetic avatar checks FAILED" : "synthetic avatar checks passed");
  return failures ? 1 : 0;
}

bool read_file(const std::string& path, std::vector<uint8_t>& out) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return false;
  out.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  return true;
}

// Meshes the asset at static coefficients and writes JSON: {vertices, triangles, positions[],
// canonical[], edgeKeys[]}.
int cmd_mesh(const std::string& in, const std::string& out, const float bs[kNumBlendshapes]) {
  std::vector<uint8_t> bytes;
  if (!read_file(in, bytes)) {
    std::fprintf(stderr, "make_synthetic_avatar: cannot read %s: check the path\n", in.c_str());
    return 1;
  }
  Asset a;
  const AssetStatus st = read_asset(bytes.data(), bytes.size(), a);
  if (!st.ok()) {
    std::fprintf(stderr, "make_synthetic_avatar: %s is not a valid .dyntet (%s): %s\n", in.c_str(), asset_error_name(st.code), st.message.c_str());
    return 1;
  }
  const AssetMetadata& m = a.metadata;
  const Deformed d = deform_static(m, a.sdf.data, a.elastic.data, a.active, a.condition.data.data(), a.deform.data.data(), bs);
  MtMesh mesh;
  if (!marching_tets(grid_of(m), d.sdf.data(), d.disp.data(), mesh)) {
    std::fprintf(stderr, "make_synthetic_avatar: the asset's grid is outside what marching tets supports\n");
    return 1;
  }
  std::FILE* f = std::fopen(out.c_str(), "wb");
  if (!f) {
    std::fprintf(stderr, "make_synthetic_avatar: cannot write %s\n", out.c_str());
    return 1;
  }
  std::fprintf(f, "{\"vertices\":%zu,\"triangles\":%zu,\"positions\":[", mesh.num_vertices(), mesh.num_triangles());
  for (size_t i = 0; i < mesh.positions.size(); ++i) std::fprintf(f, "%s%.6g", i ? "," : "", mesh.positions[i]);
  std::fprintf(f, "],\"canonical\":[");
  for (size_t i = 0; i < mesh.canonical.size(); ++i) std::fprintf(f, "%s%.6g", i ? "," : "", mesh.canonical[i]);
  std::fprintf(f, "],\"edgeKeys\":[");
  for (size_t i = 0; i < mesh.edge_keys.size(); ++i) std::fprintf(f, "%s%d", i ? "," : "", mesh.edge_keys[i]);
  std::fprintf(f, "]}\n");
  std::fclose(f);
  std::printf("wrote %s: %zu vertices, %zu triangles\n", out.c_str(), mesh.num_vertices(), mesh.num_triangles());
  return 0;
}

bool load_asset(const std::string& in, Asset& a) {
  std::vector<uint8_t> bytes;
  if (!read_file(in, bytes)) {
    std::fprintf(stderr, "make_synthetic_avatar: cannot read %s: check the path\n", in.c_str());
    return false;
  }
  const AssetStatus st = read_asset(bytes.data(), bytes.size(), a);
  if (!st.ok()) {
    std::fprintf(stderr, "make_synthetic_avatar: %s is not a valid .dyntet (%s): %s\n", in.c_str(), asset_error_name(st.code), st.message.c_str());
    return false;
  }
  return true;
}

// pose * rotation about the face's own origin.
void turn_pose(const float pose[16], float yaw, float pitch, float out[16]) {
  float r[16];
  synth::make_pose(yaw, pitch, 0.f, 0.f, 0.f, r);
  r[14] = 0.f;
  for (int c = 0; c < 4; ++c)
    for (int row = 0; row < 4; ++row) {
      float acc = 0.f;
      for (int k = 0; k < 4; ++k) acc += pose[k * 4 + row] * r[c * 4 + k];
      out[c * 4 + row] = acc;
    }
}

int cmd_render(const std::string& in, const std::string& out, const float set_bs[kNumBlendshapes], const bool is_set[kNumBlendshapes],
               bool rest, float yaw, float pitch, int clip_index, int frames) {
  Asset a;
  if (!load_asset(in, a)) return 1;
  const int window = a.metadata.condition.window;
  if (clip_index >= 0) {
    if (clip_index >= (int)a.clips.size()) {
      std::fprintf(stderr, "make_synthetic_avatar: --clip %d but the asset has %zu clips\n", clip_index, a.clips.size());
      return 1;
    }
    const Clip& c = a.clips[(size_t)clip_index];
    const int n = std::min(frames > 0 ? frames : (int)c.coefficients.shape[0], (int)c.coefficients.shape[0]);
    std::vector<float> win;
    for (int t = 0; t < n; ++t) {
      preview::clip_window(c, t, window, win);
      const std::vector<uint8_t> img = preview::render(a, win.data(), &c.coefficients.data[(size_t)t * kNumCoefficients + kNumBlendshapes]);
      char name[32];
      std::snprintf(name, sizeof name, "%04d.rgba", t);
      if (!write_file(out + name, img)) {
        std::fprintf(stderr, "make_synthetic_avatar: cannot write %s%s\n", out.c_str(), name);
        return 1;
      }
    }
    std::printf("rendered %d frames of clip \"%s\" at %dx%d\n", n, c.name.c_str(), a.metadata.camera.width, a.metadata.camera.height);
    return 0;
  }
  float bs[kNumBlendshapes] = {0};
  if (rest && !a.clips.empty()) preview::clip_rest_blendshapes(a.clips[0], bs);
  for (int k = 0; k < kNumBlendshapes; ++k)
    if (is_set[k]) bs[k] = set_bs[k];
  std::vector<float> win((size_t)window * kNumBlendshapes);
  for (int j = 0; j < window; ++j) std::copy(bs, bs + kNumBlendshapes, &win[(size_t)j * kNumBlendshapes]);
  float base[16], pose[16];
  if (!a.clips.empty()) std::copy_n(&a.clips[0].coefficients.data[kNumBlendshapes], 16, base);
  else synth::make_pose(0.f, 0.f, 0.f, 0.f, synth::kViewDistance, base);
  turn_pose(base, yaw, pitch, pose);
  if (!write_file(out, preview::render(a, win.data(), pose))) {
    std::fprintf(stderr, "make_synthetic_avatar: cannot write %s\n", out.c_str());
    return 1;
  }
  std::printf("rendered %s at %dx%d\n", out.c_str(), a.metadata.camera.width, a.metadata.camera.height);
  // The exact pose used, so other renderers (the WASM build, the player) can draw the same frame.
  std::printf("pose:");
  for (int k = 0; k < 16; ++k) std::printf(" %.9g", pose[k]);
  std::printf("\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const std::string verb = argv[1];
  try {
    synth::Options o;
    std::string out, in;
    float bs[kNumBlendshapes] = {0};
    bool is_set[kNumBlendshapes] = {false}, rest = false;
    float yaw = 0.f, pitch = 0.f;
    int clip_index = -1, frames = 0;
    bool bake = false, bake_basis = false;
    auto parse_float = [](const std::string& flag, const std::string& v) {
      char* end = nullptr;
      const float f = std::strtof(v.c_str(), &end);
      if (v.empty() || *end != '\0' || !(std::fabs(f) <= 90.f)) throw UsageFail{flag + " must be a number of degrees in [-90, 90], got \"" + v + "\""};
      return f;
    };
    for (int i = 2; i < argc; ++i) {
      const std::string flag = argv[i];
      auto value = [&]() -> std::string {
        if (i + 1 >= argc) throw UsageFail{flag + " needs a value"};
        return argv[++i];
      };
      if (flag == "--out") out = value();
      else if (flag == "--in") in = value();
      else if (flag == "--resolution") o.grid_res = parse_int(flag, value(), 4, 192);
      else if (flag == "--frames") o.clip_frames = frames = parse_int(flag, value(), 1, 100000);
      else if (flag == "--bake") bake = true;
      else if (flag == "--bake-basis") bake_basis = true;
      else if (flag == "--clip") clip_index = parse_int(flag, value(), 0, 1000000);
      else if (flag == "--yaw") yaw = parse_float(flag, value());
      else if (flag == "--pitch") pitch = parse_float(flag, value());
      else if (flag == "--size") {
        const std::string v = value();
        const size_t x = v.find('x');
        if (x == std::string::npos) throw UsageFail{"--size must look like 256x256, got \"" + v + "\""};
        o.width = parse_int("--size width", v.substr(0, x), 16, 4096);
        o.height = parse_int("--size height", v.substr(x + 1), 16, 4096);
      } else if (flag == "--set") {
        const std::string v = value();
        const size_t eq = v.find('=');
        int idx = -1;
        for (int c = 0; c < kNumBlendshapes && eq != std::string::npos; ++c)
          if (v.compare(0, eq, kNames[c]) == 0 && eq == std::strlen(kNames[c])) idx = c;
        if (idx < 0) throw UsageFail{"--set takes blendshapeName=value with a MediaPipe blendshape name (e.g. jawOpen=1), got \"" + v + "\""};
        char* end = nullptr;
        const float f = std::strtof(v.c_str() + eq + 1, &end);
        if (*end != '\0' || !(f >= 0.f && f <= 1.f)) throw UsageFail{"--set value must be a number in [0, 1], got \"" + v + "\""};
        bs[idx] = f;
        is_set[idx] = true;
      } else if (flag == "--rest") rest = true;
      else throw UsageFail{"unknown option " + flag};
    }
    if (verb == "write") {
      if (out.empty()) throw UsageFail{"write needs --out FILE"};
      return cmd_write(out, o, bake, bake_basis);
    }
    if (verb == "check") return cmd_check(o);
    if (verb == "mesh") {
      if (in.empty() || out.empty()) throw UsageFail{"mesh needs --in FILE.dyntet and --out FILE.json"};
      return cmd_mesh(in, out, bs);
    }
    if (verb == "render") {
      if (in.empty() || out.empty()) throw UsageFail{"render needs --in FILE.dyntet and --out FILE (or PREFIX with --clip)"};
      return cmd_render(in, out, bs, is_set, rest, yaw, pitch, clip_index, frames);
    }
    throw UsageFail{"unknown command \"" + verb + "\""};
  } catch (const preview::RenderError& e) {
    std::fprintf(stderr, "make_synthetic_avatar: the reference renderer refused the asset: %s\n", e.msg.c_str());
    return 1;
  } catch (const UsageFail& e) {
    std::fprintf(stderr, "make_synthetic_avatar: %s\n%s", e.msg.c_str(), kUsage);
    return 2;
  }
}
