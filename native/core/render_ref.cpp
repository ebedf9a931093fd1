#include "render_ref.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>

#include "grid.h"
#include "raster.h"

namespace dyntet {

void mesh_adjacency(const int32_t* tris, size_t n_tris, std::vector<int32_t>& adj) {
  adj.assign(3 * n_tris, -1);
  // Edge (min, max) -> first half-edge, and a count for non-manifold edges.
  std::unordered_map<uint64_t, std::pair<int64_t, int>> first;
  first.reserve(3 * n_tris);
  auto key = [](int32_t a, int32_t b) {
    const uint64_t lo = (uint32_t)(a < b ? a : b), hi = (uint32_t)(a < b ? b : a);
    return (lo << 32) | hi;
  };
  for (size_t he = 0; he < 3 * n_tris; ++he) {
    const size_t t = he / 3;
    const int k = (int)(he % 3);
    auto& e = first.try_emplace(key(tris[3 * t + (k + 1) % 3], tris[3 * t + (k + 2) % 3]), (int64_t)he, 0).first->second;
    ++e.second;
  }
  for (size_t he = 0; he < 3 * n_tris; ++he) {
    const size_t t = he / 3;
    const int k = (int)(he % 3);
    const auto& e = first.at(key(tris[3 * t + (k + 1) % 3], tris[3 * t + (k + 2) % 3]));
    if (e.second > 2) { adj[he] = -2; continue; }
    if (e.second < 2) continue;
    if (e.first != (int64_t)he) { adj[he] = (int32_t)(e.first / 3); adj[e.first] = (int32_t)t; }
  }
}

void rasterize_ref(const float* clip, const int32_t* tris, size_t n_tris, int W, int H, std::vector<int32_t>& id,
                   std::vector<float>& bary, std::vector<float>& depth) {
  const size_t np = (size_t)W * H;
  id.assign(np, -1);
  bary.assign(2 * np, 0.f);
  depth.assign(np, 0.f);
  // Every triangle visits the pixel centres inside its bounding box widened by 0.05 pixel (the
  // training rasteriser's binning); the depth rule makes the order irrelevant.
  for (size_t t = 0; t < n_tris; ++t) {
    const float* v[3] = {clip + 4 * (size_t)tris[3 * t], clip + 4 * (size_t)tris[3 * t + 1], clip + 4 * (size_t)tris[3 * t + 2]};
    if (!(v[0][3] > 0.f && v[1][3] > 0.f && v[2][3] > 0.f)) continue;
    float xmin = 1e30f, xmax = -1e30f, ymin = 1e30f, ymax = -1e30f;
    bool finite = true;
    for (int i = 0; i < 3; ++i) {
      float sx, sy;
      clip_to_px(v[i], W, H, sx, sy);
      finite = finite && std::isfinite(sx) && std::isfinite(sy);
      xmin = std::fmin(xmin, sx); xmax = std::fmax(xmax, sx);
      ymin = std::fmin(ymin, sy); ymax = std::fmax(ymax, sy);
    }
    if (!finite || xmax < -1.f || ymax < -1.f || xmin > W + 1.f || ymin > H + 1.f) continue;
    const int x0 = std::max(0, (int)std::ceil((double)xmin - 0.55)), x1 = std::min(W - 1, (int)std::floor((double)xmax - 0.45));
    const int y0 = std::max(0, (int)std::ceil((double)ymin - 0.55)), y1 = std::min(H - 1, (int)std::floor((double)ymax - 0.45));
    const TriSetup<float> s = tri_setup(v[0], v[1], v[2], W, H);
    for (int y = y0; y <= y1; ++y)
      for (int x = x0; x <= x1; ++x) {
        float px, py, l1, l2, d;
        pixel_ndc(x, y, W, H, px, py);
        if (!tri_eval(s, px, py, l1, l2, d)) continue;
        const size_t p = (size_t)y * W + x;
        if (!depth_less(d, (int)t, depth[p], id[p])) continue;
        id[p] = (int32_t)t;
        bary[2 * p] = l1;
        bary[2 * p + 1] = l2;
        depth[p] = d;
      }
  }
}

namespace {
std::string size_error(const char* what, size_t got, size_t want) {
  return std::string(what) + " has " + std::to_string(got) + " values but the metadata implies " + std::to_string(want) +
         "; the asset is inconsistent: re-export it";
}
}  // namespace

ReferenceRenderer::ReferenceRenderer(const Asset& asset) : a_(asset) {
  const AssetMetadata& m = a_.metadata;
  grid_.res = m.grid_res;
  for (int k = 0; k < 3; ++k) { grid_.box_min[k] = m.box_min[k]; grid_.box_max[k] = m.box_max[k]; }
  if (m.grid_res < 1 || m.grid_res > kMaxGridRes) { error_ = "grid_res must be in 1.." + std::to_string(kMaxGridRes); return; }
  if (m.width < 1 || m.height < 1 || m.width > 8192 || m.height > 8192) { error_ = "frame size must be 1..8192 pixels"; return; }
  const size_t nv = (size_t)grid_num_vertices(m.grid_res);
  if (a_.sdf.data.size() != nv) { error_ = size_error("sdf", a_.sdf.data.size(), nv); return; }
  if (a_.elastic.data.size() != nv) { error_ = size_error("elastic", a_.elastic.data.size(), nv); return; }
  for (size_t i = 0; i < a_.active.size(); ++i)
    if (a_.active[i] >= nv || (i && a_.active[i] <= a_.active[i - 1])) { error_ = "active vertex ids must be increasing grid vertex ids"; return; }
  const TextureConfig& tc = m.texture;
  const DeformConfig& dc = m.deform;
  const ConditionConfig& cc = m.condition;
  if (tc.grid.levels < 1 || tc.grid.levels > 32 || tc.grid.features < 1 || tc.grid.log2_table < 1 || tc.grid.log2_table > 24) {
    error_ = "texture hash grid config out of range";
    return;
  }
  if (a_.hash_grid.data.size() != hashgrid_param_count(tc.grid)) { error_ = size_error("hash grid", a_.hash_grid.data.size(), hashgrid_param_count(tc.grid)); return; }
  if (tc.mlp.in != tc.grid.levels * tc.grid.features + cc.out_dim || tc.mlp.out != 3 || tc.mlp.width > kMaxWidth || tc.mlp.in > kMaxWidth) {
    error_ = "texture MLP shape does not match hash grid + condition inputs and 3 outputs";
    return;
  }
  if (a_.texture.data.size() != mlp_param_count(tc.mlp)) { error_ = size_error("texture MLP", a_.texture.data.size(), mlp_param_count(tc.mlp)); return; }
  if (dc.mlp.in != freq_encoding_size(dc.n_freq) + cc.out_dim || dc.mlp.out != 4 || dc.mlp.width > kMaxWidth || dc.mlp.in > kMaxWidth) {
    error_ = "deformation MLP shape does not match frequency encoding + condition inputs and 4 outputs";
    return;
  }
  if (a_.deform.data.size() != mlp_param_count(dc.mlp)) { error_ = size_error("deformation MLP", a_.deform.data.size(), mlp_param_count(dc.mlp)); return; }
  if (cc.num_conv < 1 || cc.num_conv > kMaxConvLayers || cc.window < 1 || cc.out_dim < 1 || cc.out_dim > kMaxWidth ||
      condition_conv_out_len(cc, cc.num_conv - 1) < 1) {
    error_ = "condition encoder config out of range";
    return;
  }
  if (a_.condition.data.size() != condition_param_count(cc)) { error_ = size_error("condition encoder", a_.condition.data.size(), condition_param_count(cc)); return; }
  levels_.resize(tc.grid.levels);
  hashgrid_levels(tc.grid, levels_.data());
  if (a_.has_plate && a_.plate.encoding == PlateEncoding::RGBA8 && (int)a_.plate.width == m.width &&
      (int)a_.plate.height == m.height && a_.plate.bytes.size() == (size_t)m.width * m.height * 4) {
    plate_.resize((size_t)m.width * m.height * 3);
    for (size_t p = 0; p < (size_t)m.width * m.height; ++p)
      for (int c = 0; c < 3; ++c) plate_[3 * p + c] = a_.plate.bytes[4 * p + c] / 255.f;
  }
}

bool ReferenceRenderer::render(const RefFrame& f, RefImage& out) {
  if (!ok()) return false;
  if (!f.pose) { error_ = "render: pose is required (16 floats)"; return false; }
  const AssetMetadata& m = a_.metadata;
  const int W = m.width, H = m.height, R = m.grid_res;
  const size_t nv = (size_t)grid_num_vertices(R);
  // 1. Condition.
  float cond[kMaxWidth];
  std::vector<float> zeros;
  const float* window = f.window;
  if (!window) { zeros.assign((size_t)m.condition.window * kNumBlendshapes, 0.f); window = zeros.data(); }
  condition_forward(m.condition, a_.condition.data.data(), window, cond);
  // 2. Deformation of the active vertices.
  sdf_.assign(a_.sdf.data.begin(), a_.sdf.data.end());
  disp_.assign(3 * nv, 0.f);
  for (size_t i = 0; i < a_.active.size(); ++i) {
    const int32_t v = (int32_t)a_.active[i];
    float d[3], ds;
    if (f.baked_deltas) {
      for (int k = 0; k < 3; ++k) d[k] = f.baked_deltas[4 * i + k];
      ds = f.baked_deltas[4 * i + 3];
    } else {
      int32_t ijk[3];
      grid_vertex_ijk(R, v, ijk);
      const float u[3] = {(float)ijk[0] / (float)R, (float)ijk[1] / (float)R, (float)ijk[2] / (float)R};
      deform_vertex(m.deform, a_.deform.data.data(), u, cond, m.condition.out_dim, a_.elastic.data[v], d, &ds);
    }
    for (int k = 0; k < 3; ++k) disp_[3 * (size_t)v + k] = d[k];
    sdf_[v] += ds;
  }
  // 3. Surface.
  if (!marching_tets(grid_, sdf_.data(), disp_.data(), mesh_)) { error_ = "marching tets rejected the grid"; return false; }
  const size_t n_vert = mesh_.num_vertices(), n_tris = mesh_.num_triangles();
  // 4. Projection.
  Camera cam = m.camera;
  cam.width = W;
  cam.height = H;
  clip_.resize(4 * n_vert);
  for (size_t v = 0; v < n_vert; ++v) project_to_clip(cam, f.pose, &mesh_.positions[3 * v], &clip_[4 * v]);
  // 5. Rasterisation.
  std::vector<int32_t> id, adj;
  std::vector<float> bary, depth;
  rasterize_ref(clip_.data(), mesh_.triangles.data(), n_tris, W, H, id, bary, depth);
  // 6. Texture per covered pixel.
  const size_t np = (size_t)W * H;
  std::vector<float> rgba(4 * np, 0.f);
  const TextureConfig& tc = m.texture;
  const int n_enc = tc.grid.levels * tc.grid.features;
  size_t covered = 0;
  for (size_t p = 0; p < np; ++p) {
    const int32_t t = id[p];
    if (t < 0) continue;
    ++covered;
    const int32_t* tv = &mesh_.triangles[3 * (size_t)t];
    float u[3];
    for (int a = 0; a < 3; ++a) {
      const float c = interp(mesh_.canonical[3 * (size_t)tv[0] + a], mesh_.canonical[3 * (size_t)tv[1] + a],
                             mesh_.canonical[3 * (size_t)tv[2] + a], bary[2 * p], bary[2 * p + 1]);
      u[a] = (c - m.box_min[a]) / (m.box_max[a] - m.box_min[a]);
    }
    float in[kMaxWidth];
    hashgrid_encode(tc.grid, levels_.data(), a_.hash_grid.data.data(), u, in);
    for (int i = 0; i < m.condition.out_dim; ++i) in[n_enc + i] = cond[i];
    mlp_forward(tc.mlp, a_.texture.data.data(), in, &rgba[4 * p]);
    rgba[4 * p + 3] = 1.f;
  }
  // 7. Antialiasing (gather).
  mesh_adjacency(mesh_.triangles.data(), n_tris, adj);
  std::vector<unsigned char> sil(n_tris);
  for (size_t t = 0; t < n_tris; ++t) sil[t] = silhouette_mask(clip_.data(), mesh_.triangles.data(), adj.data(), (int64_t)t, W, H);
  std::vector<float> aa(rgba);
  const int dx[4] = {-1, 1, 0, 0}, dy[4] = {0, 0, -1, 1};
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x) {
      const int64_t p = (int64_t)y * W + x;
      for (int n = 0; n < 4; ++n) {
        const int qx = x + dx[n], qy = y + dy[n];
        if (qx < 0 || qx >= W || qy < 0 || qy >= H) continue;
        const int64_t q = (int64_t)qy * W + qx;
        const bool first = n == 1 || n == 3;
        const AaPair<float> pr = first ? aa_pair(id.data(), depth.data(), mesh_.triangles.data(), clip_.data(), sil.data(), adj.data(), W, H, p, q, x, y, qx, qy)
                                       : aa_pair(id.data(), depth.data(), mesh_.triangles.data(), clip_.data(), sil.data(), adj.data(), W, H, q, p, qx, qy, x, y);
        if (pr.side != (first ? 1 : 2)) continue;
        for (int c = 0; c < 4; ++c) aa[4 * p + c] += pr.w * (rgba[4 * q + c] - rgba[4 * p + c]);
      }
    }
  // 8. Compositing.
  const float* bg = f.background ? f.background : (plate_.empty() ? nullptr : plate_.data());
  out.width = W;
  out.height = H;
  out.rgb.resize(3 * np);
  out.alpha.resize(np);
  for (size_t p = 0; p < np; ++p) {
    out.alpha[p] = aa[4 * p + 3];
    for (int c = 0; c < 3; ++c) out.rgb[3 * p + c] = composite(aa[4 * p + c], aa[4 * p + 3], bg ? bg[3 * p + c] : 0.f);
  }
  out.tri = std::move(id);
  out.num_triangles = n_tris;
  stats_ = RefStats{n_vert, n_tris, covered};
  return true;
}

}  // namespace dyntet
