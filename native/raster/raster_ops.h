// Differentiable rendering ops for training: projection, marching-tets backward, tiled
// rasterisation, attribute interpolation, silhouette antialiasing and compositing, forward and
// backward. Each op is one function over raw pointers of one backend (CPU arrays, or device
// arrays on CUDA); the per-element math lives in native/core/raster.h.
//
// Layouts (P = frames * height * width pixels, frame-major then row-major):
//   clip [V][4]       clip-space vertices of all frames concatenated
//   tris [T][3]       int vertex indices into clip; frame f draws tris [tri_begin[f], tri_begin[f+1])
//   id   [P]          front-most triangle (global index) or -1
//   bary [P][2]       (l1, l2); depth [P]: NDC z
//   colour arrays [P][C], C channels; antialiasing works on premultiplied RGBA (C = 4)
// Backward functions ACCUMULATE into their gradient outputs (the caller zeroes them), so the
// gradients of several consumers of one tensor add up. Float accumulation goes through atomics,
// so on CUDA the last bits of gradients depend on scheduling; forward results never do.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>
#include "../core/model.h"
#include "../core/raster.h"
#include "../train/launch.h"

namespace dyntet {

// Invalid arguments (sizes, ranges) with what was wrong.
struct RasterError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

struct RasterSize {
  int frames = 1;
  int width = 0;
  int height = 0;
  int64_t pixels() const { return (int64_t)frames * width * height; }
};

// ---- projection -------------------------------------------------------------------------------
// pos [V][3] face space; vertices [vert_begin[f], vert_begin[f+1]) use poses[f*16..] (host
// array of frames*16 floats, column-major). clip [V][4].
template <class R>
void project_forward(Backend b, const Camera& cam, const std::vector<int>& vert_begin, const std::vector<float>& poses,
                     const R* pos, R* clip);
template <class R>
void project_backward(Backend b, const Camera& cam, const std::vector<int>& vert_begin, const std::vector<float>& poses,
                      const R* grad_clip, R* grad_pos);

// ---- marching tetrahedra backward ---------------------------------------------------------------
// Output vertex k lies on grid edge (edges[2k], edges[2k+1]) = (a, b) where the SDF crosses zero,
// v = (p_a s_b - p_b s_a) / (s_b - s_a) (deformed) and c the same of q (canonical), i.e.
// marching_tets.h's mt_interpolate, whose backward (mt_interpolate_backward) this runs. Gradients
// of v and c (grad_c may be null) go to the SDF values and the deformed grid positions.
template <class R>
void marching_tets_backward(Backend b, int64_t n_out, const int* edges, const R* sdf, const R* grid_pos,
                            const R* grid_canon, const R* grad_v, const R* grad_c, R* grad_sdf, R* grad_pos);

// ---- rasterisation ------------------------------------------------------------------------------
// Holds the scratch buffers of the tiled rasteriser between calls.
template <class R>
class Rasterizer {
 public:
  explicit Rasterizer(Backend b, int tile = 8) : backend_(b), tile_(tile) {}
  // Writes id, bary, depth for every pixel. tri_begin: host array of frames+1 entries.
  void forward(const RasterSize& size, const R* clip, int64_t n_vert, const int* tris, const std::vector<int>& tri_begin,
               int* id, R* bary, R* depth);
  // Number of (tile, triangle) pairs of the last forward (a binning statistic).
  int64_t last_pairs() const { return last_pairs_; }

 private:
  Backend backend_;
  int tile_;
  Buffer<TriSetup<R>> setup_;
  Buffer<int> tile_count_, tile_start_, tile_offset_, tile_list_;
  Buffer<unsigned char> scan_tmp_;
  int64_t last_pairs_ = 0;
};

// Reference rasteriser: every pixel tests every triangle of its frame (for tests).
template <class R>
void rasterize_bruteforce(Backend b, const RasterSize& size, const R* clip, const int* tris, const std::vector<int>& tri_begin,
                          int* id, R* bary, R* depth);

// grad_bary [P][2] -> grad_clip [V][4].
template <class R>
void rasterize_backward(Backend b, const RasterSize& size, const R* clip, const int* tris, const int* id,
                        const R* grad_bary, R* grad_clip);

// ---- interpolation ------------------------------------------------------------------------------
// attr [V][C] -> out [P][C] (zero where id < 0).
template <class R>
void interpolate_forward(Backend b, int64_t n_pix, int channels, const R* attr, const int* tris, const int* id,
                         const R* bary, R* out);
template <class R>
void interpolate_backward(Backend b, int64_t n_pix, int channels, const R* attr, const int* tris, const int* id,
                          const R* bary, const R* grad_out, R* grad_attr, R* grad_bary);

// ---- antialiasing -------------------------------------------------------------------------------
// adj [T][3]: the triangle across edge k (vertices k+1, k+2 mod 3), -1 for a boundary edge, -2
// for an edge shared by more than two triangles. Needs the tris of all frames at once.
// scratch (optional) keeps the hash table between calls, which also saves a device sync.
void triangle_adjacency(Backend b, int64_t n_tris, const int* tris, int* adj, Buffer<unsigned char>* scratch = nullptr);
// sil [T]: bit k set when edge k is a silhouette in its frame (no neighbour, neighbour dropped
// or facing the other way).
template <class R>
void silhouette_edges(Backend b, int64_t n_tris, const R* clip, const int* tris, const int* adj, int width, int height,
                      unsigned char* sil);
// colour [P][C] premultiplied -> out [P][C].
template <class R>
void antialias_forward(Backend b, const RasterSize& size, int channels, const R* colour, const R* clip, const int* tris,
                       const unsigned char* sil, const int* adj, const int* id, const R* depth, R* out);
template <class R>
void antialias_backward(Backend b, const RasterSize& size, int channels, const R* colour, const R* clip, const int* tris,
                        const unsigned char* sil, const int* adj, const int* id, const R* depth, const R* grad_out, R* grad_colour,
                        R* grad_clip);

// ---- compositing --------------------------------------------------------------------------------
// rgba [P][4] premultiplied, bg [P][3] -> out [P][3] = rgb + (1 - a) bg.
template <class R>
void composite_forward(Backend b, int64_t n_pix, const R* rgba, const R* bg, R* out);
template <class R>
void composite_backward(Backend b, int64_t n_pix, const R* rgba, const R* bg, const R* grad_out, R* grad_rgba, R* grad_bg);

}  // namespace dyntet
