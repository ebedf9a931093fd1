// CPU reference renderer of a decoded asset: the ground truth the WebGPU player is compared with
// (PSNR >= 40 dB) and what `dyntet-train demo` renders with when there is no GPU. It runs exactly
// the model's math (model.h), the grid (grid.h), marching tets (marching_tets.h) and the
// per-pixel rasterisation, antialiasing and compositing (raster.h), in float.
//
// One frame, step by step (the WGSL player must do the same):
//   1. condition = condition_forward(window), the window being W x 52 blendshape frames
//      (model.h: frame t's window is frames clamp(t + j - (W-1)/2) of its track).
//   2. Per grid vertex v: sdf_v = canonical sdf, displacement 0. For each ACTIVE vertex (the
//      asset's sorted list): either the baked delta of this frame (dx, dy, dz, dsdf) or
//      deform_vertex(u_v, condition, elastic_v) with u_v = (i, j, k) / R (the vertex's lattice
//      coordinates, computed as float(i) / float(R)); sdf_v += dsdf, displacement = d.
//   3. marching_tets(grid, sdf, displacement): positions (deformed) and canonical positions.
//   4. clip = project_to_clip(camera, pose, position) (model.h, float).
//   5. Rasterise (raster.h conventions): pixel centres at +0.5, coverage by the sign test of the
//      homogeneous barycentrics with edges inclusive, triangles with any w <= 0 dropped, both
//      facings drawn, NDC depth in [-1, 1], smallest depth wins, ties to the smaller triangle id.
//   6. Covered pixel: canonical position c = interpolation of the triangle's canonical positions
//      with (l0, l1, l2); u = (c - box_min) / (box_max - box_min); rgb = texture MLP(
//      [hashgrid(u), condition]) with its sigmoid output. RGBA = (rgb, 1); background 0.
//   7. Antialias (raster.h aa_pair): silhouette edges from the mesh adjacency (the triangle
//      across each edge, found by its two vertex ids) and the facing in the image; gather over
//      each pixel's 4 neighbour pairs.
//   8. out = rgb_premultiplied + (1 - alpha) * background. Colours are display-referred floats in
//      [0, 1]; 8-bit output is round(clamp(v, 0, 1) * 255). The background is the caller's image,
//      else the asset's RGBA8 plate (bytes / 255) when it has the frame size, else black.
#pragma once
#include <cstdint>
#include <string>
#include <vector>
#include "asset.h"
#include "marching_tets.h"
#include "model.h"

namespace dyntet {

struct RefFrame {
  const float* window = nullptr;        // condition.window x 52 blendshape values, frame-major
  const float* pose = nullptr;          // 16 floats, column-major face -> camera
  const float* baked_deltas = nullptr;  // active x 4 (dx, dy, dz, dsdf) replacing the deformation MLP, or null
  const float* background = nullptr;    // width x height x 3 floats, or null
};

struct RefImage {
  int width = 0, height = 0;
  std::vector<float> rgb;     // width x height x 3, composited
  std::vector<float> alpha;   // antialiased coverage
  std::vector<int32_t> tri;   // front-most triangle per pixel, -1 background
  size_t num_triangles = 0;   // of the frame's mesh
};

// Counts of what the last render did (for tests and the demo's log).
struct RefStats {
  size_t vertices = 0, triangles = 0, covered_pixels = 0;
};

class ReferenceRenderer {
 public:
  // Checks that the asset's tensors have the sizes its metadata implies; on failure ok() is
  // false and error() says which tensor is wrong. The asset must outlive the renderer.
  explicit ReferenceRenderer(const Asset& asset);
  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }

  // Renders one frame; false (with error()) on bad input.
  bool render(const RefFrame& frame, RefImage& out);
  const RefStats& stats() const { return stats_; }
  const MtMesh& mesh() const { return mesh_; }

 private:
  const Asset& a_;
  std::string error_;
  GridSpec grid_;
  std::vector<HashLevel> levels_;
  std::vector<float> sdf_, disp_, clip_, plate_;
  MtMesh mesh_;
  RefStats stats_;
};

// The mesh adjacency the antialiasing uses: adj[3t+k] is the triangle across edge k of t
// (vertices k+1, k+2 mod 3), -1 for none, -2 when more than two triangles share the edge.
void mesh_adjacency(const int32_t* tris, size_t n_tris, std::vector<int32_t>& adj);

// Rasterises one frame of clip-space vertices into id/bary/depth (raster.h conventions).
void rasterize_ref(const float* clip, const int32_t* tris, size_t n_tris, int width, int height, std::vector<int32_t>& id,
                   std::vector<float>& bary, std::vector<float>& depth);

}  // namespace dyntet
