// Implementation of the rendering ops (see raster_ops.h). Compiled as C++ for the CPU backend
// and, in the CUDA build, as CUDA so the same launch_1d bodies become kernels.
#include "raster_ops.h"

#include "../core/marching_tets.h"

#include <cmath>
#include <string>
#include <vector>

#if defined(__CUDACC__)
#include <cub/device/device_scan.cuh>
#endif

namespace dyntet {
namespace {

// Atomics (atomic_add for float and double, atomic_add_int) are launch.h's.

void check_size(const RasterSize& s) {
  if (s.frames < 1 || s.width < 1 || s.height < 1 || s.width > 16384 || s.height > 16384)
    throw RasterError("raster size must have frames >= 1 and 1 <= width, height <= 16384 (got " +
                      std::to_string(s.frames) + " x " + std::to_string(s.width) + " x " + std::to_string(s.height) + ")");
}

void check_ranges(const std::vector<int>& begin, int frames, const char* what) {
  if ((int)begin.size() != frames + 1)
    throw RasterError(std::string(what) + " must have frames + 1 = " + std::to_string(frames + 1) + " entries, got " +
                      std::to_string(begin.size()));
  for (int f = 0; f < frames; ++f)
    if (begin[f] < 0 || begin[f + 1] < begin[f])
      throw RasterError(std::string(what) + " must be non-decreasing and non-negative (frame " + std::to_string(f) + ")");
}

// Exclusive prefix sum of n ints (out must not alias in); returns the total.
int64_t exclusive_scan(Backend b, const int* in, int* out, int64_t n, Buffer<unsigned char>& tmp) {
  if (n == 0) return 0;
#if defined(__CUDACC__)
  if (b == Backend::CUDA) {
    size_t bytes = 0;
    cuda_check(cub::DeviceScan::ExclusiveSum(nullptr, bytes, in, out, (int)n), "exclusive scan");
    if (tmp.size() < bytes + 1 || tmp.backend() != b) tmp.resize(b, bytes + 1);
    cuda_check(cub::DeviceScan::ExclusiveSum(tmp.data(), bytes, in, out, (int)n), "exclusive scan");
    int last[2] = {0, 0};
    cuda_check(cudaMemcpy(&last[0], in + n - 1, sizeof(int), cudaMemcpyDeviceToHost), "cudaMemcpy");
    cuda_check(cudaMemcpy(&last[1], out + n - 1, sizeof(int), cudaMemcpyDeviceToHost), "cudaMemcpy");
    return (int64_t)last[0] + last[1];
  }
#endif
  (void)b;
  (void)tmp;
  int64_t acc = 0;
  for (int64_t i = 0; i < n; ++i) {
    out[i] = (int)acc;
    acc += in[i];
  }
  return acc;
}

// Tile rectangle [tx0, tx1] x [ty0, ty1] a triangle may cover; false when it covers nothing.
// Expanded by 0.05 pixel so rounding differences between the screen bound and the homogeneous
// coverage test (about 1e-3 pixel at 16k pixels) never lose a pixel.
template <class R>
DT_HD bool tri_tiles(const R* v0, const R* v1, const R* v2, int width, int height, int tile, int& tx0, int& tx1, int& ty0,
                     int& ty1) {
  if (!(v0[3] > R(0) && v1[3] > R(0) && v2[3] > R(0))) return false;
  const R* v[3] = {v0, v1, v2};
  R xmin = R(1e30), xmax = R(-1e30), ymin = R(1e30), ymax = R(-1e30);
  for (int i = 0; i < 3; ++i) {
    R sx, sy;
    clip_to_px(v[i], width, height, sx, sy);
    if (!(sx == sx) || !(sy == sy)) return false;
    xmin = sx < xmin ? sx : xmin; xmax = sx > xmax ? sx : xmax;
    ymin = sy < ymin ? sy : ymin; ymax = sy > ymax ? sy : ymax;
  }
  // Pixel x is a candidate when its centre x + 0.5 lies in [xmin, xmax] (plus the slack).
  if (xmax < R(-1) || ymax < R(-1) || xmin > R(width + 1) || ymin > R(height + 1)) return false;
  int x0 = (int)ceil((double)xmin - 0.55), x1 = (int)floor((double)xmax - 0.45);
  int y0 = (int)ceil((double)ymin - 0.55), y1 = (int)floor((double)ymax - 0.45);
  x0 = x0 < 0 ? 0 : x0; y0 = y0 < 0 ? 0 : y0;
  x1 = x1 > width - 1 ? width - 1 : x1; y1 = y1 > height - 1 ? height - 1 : y1;
  if (x0 > x1 || y0 > y1) return false;
  tx0 = x0 / tile; tx1 = x1 / tile; ty0 = y0 / tile; ty1 = y1 / tile;
  return true;
}

// A pose captured by value into a kernel.
struct Mat16 {
  float m[16];
};

}  // namespace

// ---- projection -----------------------------------------------------------------------------------
template <class R>
void project_forward(Backend b, const Camera& cam, const std::vector<int>& vert_begin, const std::vector<float>& poses,
                     const R* pos, R* clip) {
  const int frames = (int)vert_begin.size() - 1;
  if (frames < 1 || (int)poses.size() != 16 * frames)
    throw RasterError("project: poses must hold 16 floats per frame of vert_begin (frames + 1 entries)");
  check_ranges(vert_begin, frames, "vert_begin");
  for (int f = 0; f < frames; ++f) {
    Mat16 pm;
    for (int k = 0; k < 16; ++k) pm.m[k] = poses[16 * f + k];
    const Camera c = cam;
    const int64_t v0 = vert_begin[f];
    launch_1d(b, vert_begin[f + 1] - vert_begin[f], [=] DT_LAMBDA(int64_t i) {
      const int64_t v = v0 + i;
      // model.h's project_to_clip in R precision.
      R e[3];
      for (int r = 0; r < 3; ++r)
        e[r] = R(pm.m[r]) * pos[3 * v] + R(pm.m[4 + r]) * pos[3 * v + 1] + R(pm.m[8 + r]) * pos[3 * v + 2] + R(pm.m[12 + r]);
      const R fy = R(1) / R(tanf(0.5f * c.fovy_deg * 3.14159265358979f / 180.f));
      const R aspect = R(c.width) / R(c.height);
      clip[4 * v + 0] = fy / aspect * e[0];
      clip[4 * v + 1] = fy * e[1];
      clip[4 * v + 2] = R((c.zfar + c.znear) / (c.znear - c.zfar)) * e[2] + R(2.f * c.zfar * c.znear / (c.znear - c.zfar));
      clip[4 * v + 3] = -e[2];
    });
  }
}

template <class R>
void project_backward(Backend b, const Camera& cam, const std::vector<int>& vert_begin, const std::vector<float>& poses,
                      const R* grad_clip, R* grad_pos) {
  const int frames = (int)vert_begin.size() - 1;
  if (frames < 1 || (int)poses.size() != 16 * frames)
    throw RasterError("project: poses must hold 16 floats per frame of vert_begin (frames + 1 entries)");
  check_ranges(vert_begin, frames, "vert_begin");
  for (int f = 0; f < frames; ++f) {
    Mat16 pm;
    for (int k = 0; k < 16; ++k) pm.m[k] = poses[16 * f + k];
    const Camera c = cam;
    const int64_t v0 = vert_begin[f];
    launch_1d(b, vert_begin[f + 1] - vert_begin[f], [=] DT_LAMBDA(int64_t i) {
      const int64_t v = v0 + i;
      const R fy = R(1) / R(tanf(0.5f * c.fovy_deg * 3.14159265358979f / 180.f));
      const R aspect = R(c.width) / R(c.height);
      const R* g = grad_clip + 4 * v;
      // d clip / d e: x <- fy/aspect e0, y <- fy e1, z <- A e2, w <- -e2.
      const R ge[3] = {g[0] * fy / aspect, g[1] * fy, g[2] * R((c.zfar + c.znear) / (c.znear - c.zfar)) - g[3]};
      for (int a = 0; a < 3; ++a)
        grad_pos[3 * v + a] += R(pm.m[4 * a]) * ge[0] + R(pm.m[4 * a + 1]) * ge[1] + R(pm.m[4 * a + 2]) * ge[2];
    });
  }
}

// ---- marching tets backward -------------------------------------------------------------------------
template <class R>
void marching_tets_backward(Backend b, int64_t n_out, const int* edges, const R* sdf, const R* grid_pos,
                            const R* grid_canon, const R* grad_v, const R* grad_c, R* grad_sdf, R* grad_pos) {
  launch_1d(b, n_out, [=] DT_LAMBDA(int64_t k) {
    const int a = edges[2 * k], bb = edges[2 * k + 1];
    R ga[3], gb[3], gsa = R(0), gsb = R(0);
    // marching_tets.h's interpolation backward, for the deformed and the canonical position.
    mt_interpolate_backward(grid_pos + 3 * a, grid_pos + 3 * bb, sdf[a], sdf[bb], grad_v + 3 * k, ga, gb, &gsa, &gsb);
    if (grad_c)
      mt_interpolate_backward<R>(grid_canon + 3 * a, grid_canon + 3 * bb, sdf[a], sdf[bb], grad_c + 3 * k, nullptr, nullptr,
                                 &gsa, &gsb);
    for (int x = 0; x < 3; ++x) {
      atomic_add(&grad_pos[3 * a + x], ga[x]);
      atomic_add(&grad_pos[3 * bb + x], gb[x]);
    }
    if (gsa != R(0)) atomic_add(&grad_sdf[a], gsa);
    if (gsb != R(0)) atomic_add(&grad_sdf[bb], gsb);
  });
}

// ---- rasterisation ---------------------------------------------------------------------------------
template <class R>
void Rasterizer<R>::forward(const RasterSize& size, const R* clip, int64_t n_vert, const int* tris,
                            const std::vector<int>& tri_begin, int* id, R* bary, R* depth) {
  check_size(size);
  check_ranges(tri_begin, size.frames, "tri_begin");
  (void)n_vert;
  const Backend b = backend_;
  const int W = size.width, H = size.height, tile = tile_;
  const int tw = (W + tile - 1) / tile, th = (H + tile - 1) / tile;
  const int64_t tiles_per_frame = (int64_t)tw * th;
  const int64_t n_tiles = tiles_per_frame * size.frames;
  const int64_t n_tris = tri_begin[size.frames];
  if (setup_.size() < (size_t)n_tris || setup_.backend() != b) setup_.resize(b, (size_t)n_tris + 1);
  if (tile_count_.size() < (size_t)n_tiles || tile_count_.backend() != b) {
    tile_count_.resize(b, (size_t)n_tiles);
    tile_start_.resize(b, (size_t)n_tiles);
    tile_offset_.resize(b, (size_t)n_tiles);
  }
  tile_count_.zero();
  TriSetup<R>* setup = setup_.data();
  int* count = tile_count_.data();
  // Pass 1: triangle setup and the number of triangles per tile.
  for (int f = 0; f < size.frames; ++f) {
    const int64_t t0 = tri_begin[f];
    int* fcount = count + tiles_per_frame * f;
    launch_1d(b, tri_begin[f + 1] - t0, [=] DT_LAMBDA(int64_t i) {
      const int64_t t = t0 + i;
      const R* v0 = clip + 4 * (int64_t)tris[3 * t];
      const R* v1 = clip + 4 * (int64_t)tris[3 * t + 1];
      const R* v2 = clip + 4 * (int64_t)tris[3 * t + 2];
      setup[t] = tri_setup(v0, v1, v2, W, H);
      int x0, x1, y0, y1;
      if (!tri_tiles(v0, v1, v2, W, H, tile, x0, x1, y0, y1)) return;
      for (int ty = y0; ty <= y1; ++ty)
        for (int tx = x0; tx <= x1; ++tx) atomic_add_int(&fcount[ty * tw + tx], 1);
    });
  }
  // Start of each tile's list: the exclusive scan of the counts; a copy is the write cursor.
  int* start = tile_start_.data();
  const int64_t pairs = exclusive_scan(b, count, start, n_tiles, scan_tmp_);
  last_pairs_ = pairs;
  if (pairs > (int64_t)0x7fffffff) throw RasterError("rasteriser: too many (tile, triangle) pairs; lower the resolution or the triangle count");
  if (tile_list_.size() < (size_t)pairs + 1 || tile_list_.backend() != b) tile_list_.resize(b, (size_t)pairs + 1);
  int* cursor = tile_offset_.data();
  launch_1d(b, n_tiles, [=] DT_LAMBDA(int64_t i) { cursor[i] = start[i]; });
  int* list = tile_list_.data();
  // Pass 2: fill the lists (order inside a tile is arbitrary; the depth rule makes it irrelevant).
  for (int f = 0; f < size.frames; ++f) {
    const int64_t t0 = tri_begin[f];
    int* fcursor = cursor + tiles_per_frame * f;
    launch_1d(b, tri_begin[f + 1] - t0, [=] DT_LAMBDA(int64_t i) {
      const int64_t t = t0 + i;
      const R* v0 = clip + 4 * (int64_t)tris[3 * t];
      const R* v1 = clip + 4 * (int64_t)tris[3 * t + 1];
      const R* v2 = clip + 4 * (int64_t)tris[3 * t + 2];
      int x0, x1, y0, y1;
      if (!tri_tiles(v0, v1, v2, W, H, tile, x0, x1, y0, y1)) return;
      for (int ty = y0; ty <= y1; ++ty)
        for (int tx = x0; tx <= x1; ++tx) list[atomic_add_int(&fcursor[ty * tw + tx], 1)] = (int)t;
    });
  }
  // Pass 3: per pixel, the front-most triangle of its tile's list. After pass 2, cursor[i] is
  // the end of tile i's list and start[i] its start.
  const int64_t n_pix = size.pixels();
  launch_1d(b, n_pix, [=] DT_LAMBDA(int64_t p) {
    const int64_t f = p / ((int64_t)W * H);
    const int64_t r = p - f * W * H;
    const int y = (int)(r / W), x = (int)(r - (int64_t)y * W);
    const int64_t tl = f * tiles_per_frame + (y / tile) * tw + x / tile;
    R px, py;
    pixel_ndc(x, y, W, H, px, py);
    int best = -1;
    R bd = R(0), b1 = R(0), b2 = R(0);
    for (int k = start[tl], e = cursor[tl]; k < e; ++k) {
      const int t = list[k];
      R l1, l2, d;
      if (tri_eval(setup[t], px, py, l1, l2, d) && depth_less(d, t, bd, best)) { best = t; bd = d; b1 = l1; b2 = l2; }
    }
    id[p] = best;
    bary[2 * p] = b1;
    bary[2 * p + 1] = b2;
    depth[p] = bd;
  });
}

template <class R>
void rasterize_bruteforce(Backend b, const RasterSize& size, const R* clip, const int* tris, const std::vector<int>& tri_begin,
                          int* id, R* bary, R* depth) {
  check_size(size);
  check_ranges(tri_begin, size.frames, "tri_begin");
  const int W = size.width, H = size.height;
  for (int f = 0; f < size.frames; ++f) {
    const int64_t t0 = tri_begin[f], t1 = tri_begin[f + 1], base = (int64_t)f * W * H;
    launch_1d(b, (int64_t)W * H, [=] DT_LAMBDA(int64_t r) {
      const int y = (int)(r / W), x = (int)(r - (int64_t)y * W);
      R px, py;
      pixel_ndc(x, y, W, H, px, py);
      int best = -1;
      R bd = R(0), b1 = R(0), b2 = R(0);
      for (int64_t t = t0; t < t1; ++t) {
        const TriSetup<R> s = tri_setup(clip + 4 * (int64_t)tris[3 * t], clip + 4 * (int64_t)tris[3 * t + 1],
                                        clip + 4 * (int64_t)tris[3 * t + 2], W, H);
        R l1, l2, d;
        if (tri_eval(s, px, py, l1, l2, d) && depth_less(d, (int)t, bd, best)) { best = (int)t; bd = d; b1 = l1; b2 = l2; }
      }
      const int64_t p = base + r;
      id[p] = best;
      bary[2 * p] = b1;
      bary[2 * p + 1] = b2;
      depth[p] = bd;
    });
  }
}

template <class R>
void rasterize_backward(Backend b, const RasterSize& size, const R* clip, const int* tris, const int* id,
                        const R* grad_bary, R* grad_clip) {
  check_size(size);
  const int W = size.width, H = size.height;
  launch_1d(b, size.pixels(), [=] DT_LAMBDA(int64_t p) {
    const int t = id[p];
    if (t < 0) return;
    const R g1 = grad_bary[2 * p], g2 = grad_bary[2 * p + 1];
    if (g1 == R(0) && g2 == R(0)) return;
    const int64_t r = p % ((int64_t)W * H);
    const int y = (int)(r / W), x = (int)(r - (int64_t)y * W);
    R px, py;
    pixel_ndc(x, y, W, H, px, py);
    const int vi[3] = {tris[3 * (int64_t)t], tris[3 * (int64_t)t + 1], tris[3 * (int64_t)t + 2]};
    R gv[3][4];
    bary_backward(clip + 4 * (int64_t)vi[0], clip + 4 * (int64_t)vi[1], clip + 4 * (int64_t)vi[2], px, py, g1, g2, gv[0], gv[1], gv[2]);
    for (int i = 0; i < 3; ++i)
      for (int k = 0; k < 4; ++k)
        if (gv[i][k] != R(0)) atomic_add(&grad_clip[4 * (int64_t)vi[i] + k], gv[i][k]);
  });
}

// ---- interpolation ---------------------------------------------------------------------------------
template <class R>
void interpolate_forward(Backend b, int64_t n_pix, int channels, const R* attr, const int* tris, const int* id,
                         const R* bary, R* out) {
  if (channels < 1) throw RasterError("interpolate: channels must be >= 1");
  launch_1d(b, n_pix, [=] DT_LAMBDA(int64_t p) {
    const int t = id[p];
    R* o = out + p * channels;
    if (t < 0) { for (int c = 0; c < channels; ++c) o[c] = R(0); return; }
    const R* a0 = attr + (int64_t)tris[3 * (int64_t)t] * channels;
    const R* a1 = attr + (int64_t)tris[3 * (int64_t)t + 1] * channels;
    const R* a2 = attr + (int64_t)tris[3 * (int64_t)t + 2] * channels;
    const R l1 = bary[2 * p], l2 = bary[2 * p + 1];
    for (int c = 0; c < channels; ++c) o[c] = interp(a0[c], a1[c], a2[c], l1, l2);
  });
}

template <class R>
void interpolate_backward(Backend b, int64_t n_pix, int channels, const R* attr, const int* tris, const int* id,
                          const R* bary, const R* grad_out, R* grad_attr, R* grad_bary) {
  if (channels < 1) throw RasterError("interpolate: channels must be >= 1");
  launch_1d(b, n_pix, [=] DT_LAMBDA(int64_t p) {
    const int t = id[p];
    if (t < 0) return;
    const int64_t v[3] = {tris[3 * (int64_t)t], tris[3 * (int64_t)t + 1], tris[3 * (int64_t)t + 2]};
    const R l1 = bary[2 * p], l2 = bary[2 * p + 1], l0 = R(1) - l1 - l2;
    const R* g = grad_out + p * channels;
    R g1 = R(0), g2 = R(0);
    for (int c = 0; c < channels; ++c) {
      if (g[c] == R(0)) continue;
      const R a0 = attr[v[0] * channels + c];
      g1 += g[c] * (attr[v[1] * channels + c] - a0);
      g2 += g[c] * (attr[v[2] * channels + c] - a0);
      if (grad_attr) {
        atomic_add(&grad_attr[v[0] * channels + c], l0 * g[c]);
        atomic_add(&grad_attr[v[1] * channels + c], l1 * g[c]);
        atomic_add(&grad_attr[v[2] * channels + c], l2 * g[c]);
      }
    }
    if (grad_bary) {
      grad_bary[2 * p] += g1;
      grad_bary[2 * p + 1] += g2;
    }
  });
}

// ---- antialiasing ----------------------------------------------------------------------------------
namespace {

struct EdgeSlot {
  unsigned long long key;  // (min vertex + 1) << 32 | max vertex + 1; 0 = empty
  int count;
  int te[2];  // 3 * triangle + edge of the first two triangles that hold the edge
};

DT_HD unsigned long long cas_u64(unsigned long long* p, unsigned long long cmp, unsigned long long v) {
#if defined(__CUDA_ARCH__)
  return atomicCAS(p, cmp, v);
#else
  const unsigned long long old = *p;
  if (old == cmp) *p = v;
  return old;
#endif
}

DT_HD unsigned long long edge_key(int a, int b) {
  const unsigned long long lo = (unsigned long long)(a < b ? a : b) + 1, hi = (unsigned long long)(a < b ? b : a) + 1;
  return (lo << 32) | hi;
}

DT_HD uint32_t key_hash(unsigned long long k) {
  k ^= k >> 33; k *= 0xff51afd7ed558ccdull; k ^= k >> 33; k *= 0xc4ceb9fe1a85ec53ull; k ^= k >> 33;
  return (uint32_t)k;
}

}  // namespace

void triangle_adjacency(Backend b, int64_t n_tris, const int* tris, int* adj, Buffer<unsigned char>* scratch) {
  if (n_tris <= 0) return;
  size_t cap = 1;
  while (cap < (size_t)(3 * n_tris) * 2) cap <<= 1;
  Buffer<unsigned char> local;
  Buffer<unsigned char>& table = scratch ? *scratch : local;
  if (table.size() < cap * sizeof(EdgeSlot) || table.backend() != b) table.resize(b, cap * sizeof(EdgeSlot));
  EdgeSlot* slots = reinterpret_cast<EdgeSlot*>(table.data());
  const uint32_t mask = (uint32_t)(cap - 1);
  launch_1d(b, (int64_t)cap, [=] DT_LAMBDA(int64_t i) { slots[i].key = 0ull; slots[i].count = 0; slots[i].te[0] = slots[i].te[1] = -1; });
  launch_1d(b, 3 * n_tris, [=] DT_LAMBDA(int64_t he) {
    const int64_t t = he / 3;
    const int k = (int)(he - 3 * t);
    const unsigned long long key = edge_key(tris[3 * t + (k + 1) % 3], tris[3 * t + (k + 2) % 3]);
    uint32_t h = key_hash(key) & mask;
    for (;;) {
      const unsigned long long prev = cas_u64(&slots[h].key, 0ull, key);
      if (prev == 0ull || prev == key) break;
      h = (h + 1) & mask;
    }
    const int n = atomic_add_int(&slots[h].count, 1);
    if (n < 2) slots[h].te[n] = (int)he;
  });
  launch_1d(b, 3 * n_tris, [=] DT_LAMBDA(int64_t he) {
    const int64_t t = he / 3;
    const int k = (int)(he - 3 * t);
    const unsigned long long key = edge_key(tris[3 * t + (k + 1) % 3], tris[3 * t + (k + 2) % 3]);
    uint32_t h = key_hash(key) & mask;
    while (slots[h].key != key) h = (h + 1) & mask;
    const EdgeSlot s = slots[h];
    int r;
    if (s.count == 1) r = -1;
    else if (s.count > 2) r = -2;
    else r = (s.te[0] == (int)he ? s.te[1] : s.te[0]) / 3;
    adj[he] = r;
  });
  if (b == Backend::CUDA && !scratch) {
#if defined(__CUDACC__)
    cuda_check(cudaDeviceSynchronize(), "triangle_adjacency");  // the local table is freed on return
#endif
  }
}

template <class R>
void silhouette_edges(Backend b, int64_t n_tris, const R* clip, const int* tris, const int* adj, int width, int height,
                      unsigned char* sil) {
  launch_1d(b, n_tris, [=] DT_LAMBDA(int64_t t) { sil[t] = silhouette_mask(clip, tris, adj, t, width, height); });
}

template <class R>
void antialias_forward(Backend b, const RasterSize& size, int channels, const R* colour, const R* clip, const int* tris,
                       const unsigned char* sil, const int* adj, const int* id, const R* depth, R* out) {
  check_size(size);
  if (channels < 1 || channels > 16) throw RasterError("antialias: channels must be 1..16");
  const int W = size.width, H = size.height, C = channels;
  launch_1d(b, size.pixels(), [=] DT_LAMBDA(int64_t p) {
    const int64_t base = (p / ((int64_t)W * H)) * W * H;
    const int64_t r = p - base;
    const int y = (int)(r / W), x = (int)(r - (int64_t)y * W);
    R acc[16];
    for (int c = 0; c < C; ++c) acc[c] = colour[p * C + c];
    // Neighbours: left, right, up, down; p is the first pixel of the pair for right and down.
    const int dx[4] = {-1, 1, 0, 0}, dy[4] = {0, 0, -1, 1};
    for (int n = 0; n < 4; ++n) {
      const int qx = x + dx[n], qy = y + dy[n];
      if (qx < 0 || qx >= W || qy < 0 || qy >= H) continue;
      const int64_t q = base + (int64_t)qy * W + qx;
      const bool first = n == 1 || n == 3;
      const AaPair<R> a = first ? aa_pair(id, depth, tris, clip, sil, adj, W, H, p, q, x, y, qx, qy)
                                : aa_pair(id, depth, tris, clip, sil, adj, W, H, q, p, qx, qy, x, y);
      if (a.side != (first ? 1 : 2)) continue;
      for (int c = 0; c < C; ++c) acc[c] += a.w * (colour[q * C + c] - colour[p * C + c]);
    }
    for (int c = 0; c < C; ++c) out[p * C + c] = acc[c];
  });
}

template <class R>
void antialias_backward(Backend b, const RasterSize& size, int channels, const R* colour, const R* clip, const int* tris,
                        const unsigned char* sil, const int* adj, const int* id, const R* depth, const R* grad_out, R* grad_colour,
                        R* grad_clip) {
  check_size(size);
  if (channels < 1 || channels > 16) throw RasterError("antialias: channels must be 1..16");
  const int W = size.width, H = size.height, C = channels;
  launch_1d(b, size.pixels(), [=] DT_LAMBDA(int64_t p) {
    const int64_t base = (p / ((int64_t)W * H)) * W * H;
    const int64_t r = p - base;
    const int y = (int)(r / W), x = (int)(r - (int64_t)y * W);
    const R* g = grad_out + p * C;
    if (grad_colour)
      for (int c = 0; c < C; ++c) atomic_add(&grad_colour[p * C + c], g[c]);
    const int dx[4] = {-1, 1, 0, 0}, dy[4] = {0, 0, -1, 1};
    for (int n = 0; n < 4; ++n) {
      const int qx = x + dx[n], qy = y + dy[n];
      if (qx < 0 || qx >= W || qy < 0 || qy >= H) continue;
      const int64_t q = base + (int64_t)qy * W + qx;
      const bool first = n == 1 || n == 3;
      const AaPair<R> a = first ? aa_pair(id, depth, tris, clip, sil, adj, W, H, p, q, x, y, qx, qy)
                                : aa_pair(id, depth, tris, clip, sil, adj, W, H, q, p, qx, qy, x, y);
      if (a.side != (first ? 1 : 2)) continue;
      R gw = R(0);
      for (int c = 0; c < C; ++c) {
        gw += g[c] * (colour[q * C + c] - colour[p * C + c]);
        if (grad_colour) {
          atomic_add(&grad_colour[p * C + c], -a.w * g[c]);
          atomic_add(&grad_colour[q * C + c], a.w * g[c]);
        }
      }
      if (!grad_clip || gw == R(0)) continue;
      const R gt = a.t > R(0.5) ? gw : -gw;
      // F's pixel is p when front == 0 in the (first, second) order of the pair.
      const bool f_is_p = first ? a.front == 0 : a.front == 1;
      const R fx = R(f_is_p ? x : qx) + R(0.5), fy = R(f_is_p ? y : qy) + R(0.5);
      const R ox = R(f_is_p ? qx : x) + R(0.5), oy = R(f_is_p ? qy : y) + R(0.5);
      const int* tv = tris + 3 * (int64_t)a.tri;
      const R* verts[3] = {clip + 4 * (int64_t)tv[0], clip + 4 * (int64_t)tv[1], clip + 4 * (int64_t)tv[2]};
      R gi[4], gj[4];
      aa_crossing_backward(verts, W, H, fx, fy, ox, oy, a.edge, gt, gi, gj);
      const int vi = tv[(a.edge + 1) % 3], vj = tv[(a.edge + 2) % 3];
      for (int k = 0; k < 4; ++k) {
        if (gi[k] != R(0)) atomic_add(&grad_clip[4 * (int64_t)vi + k], gi[k]);
        if (gj[k] != R(0)) atomic_add(&grad_clip[4 * (int64_t)vj + k], gj[k]);
      }
    }
  });
}

// ---- compositing -----------------------------------------------------------------------------------
template <class R>
void composite_forward(Backend b, int64_t n_pix, const R* rgba, const R* bg, R* out) {
  launch_1d(b, n_pix, [=] DT_LAMBDA(int64_t p) {
    const R a = rgba[4 * p + 3];
    for (int c = 0; c < 3; ++c) out[3 * p + c] = composite(rgba[4 * p + c], a, bg[3 * p + c]);
  });
}

template <class R>
void composite_backward(Backend b, int64_t n_pix, const R* rgba, const R* bg, const R* grad_out, R* grad_rgba, R* grad_bg) {
  launch_1d(b, n_pix, [=] DT_LAMBDA(int64_t p) {
    const R a = rgba[4 * p + 3];
    R ga = R(0);
    for (int c = 0; c < 3; ++c) {
      const R g = grad_out[3 * p + c];
      if (grad_rgba) grad_rgba[4 * p + c] += g;
      ga -= g * bg[3 * p + c];
      if (grad_bg) grad_bg[3 * p + c] += (R(1) - a) * g;
    }
    if (grad_rgba) grad_rgba[4 * p + 3] += ga;
  });
}

// ---- instantiations ----------------------------------------------------------------------------------
#define DT_RASTER_INSTANTIATE(R)                                                                                         \
  template void project_forward<R>(Backend, const Camera&, const std::vector<int>&, const std::vector<float>&, const R*, R*); \
  template void project_backward<R>(Backend, const Camera&, const std::vector<int>&, const std::vector<float>&, const R*, R*); \
  template void marching_tets_backward<R>(Backend, int64_t, const int*, const R*, const R*, const R*, const R*, const R*, R*, R*); \
  template class Rasterizer<R>;                                                                                          \
  template void rasterize_bruteforce<R>(Backend, const RasterSize&, const R*, const int*, const std::vector<int>&, int*, R*, R*); \
  template void rasterize_backward<R>(Backend, const RasterSize&, const R*, const int*, const int*, const R*, R*);      \
  template void interpolate_forward<R>(Backend, int64_t, int, const R*, const int*, const int*, const R*, R*);         \
  template void interpolate_backward<R>(Backend, int64_t, int, const R*, const int*, const int*, const R*, const R*, R*, R*); \
  template void silhouette_edges<R>(Backend, int64_t, const R*, const int*, const int*, int, int, unsigned char*);     \
  template void antialias_forward<R>(Backend, const RasterSize&, int, const R*, const R*, const int*, const unsigned char*, const int*, \
                                     const int*, const R*, R*);                                                          \
  template void antialias_backward<R>(Backend, const RasterSize&, int, const R*, const R*, const int*, const unsigned char*, const int*, \
                                      const int*, const R*, const R*, R*, R*);                                           \
  template void composite_forward<R>(Backend, int64_t, const R*, const R*, R*);                                         \
  template void composite_backward<R>(Backend, int64_t, const R*, const R*, const R*, R*, R*);

DT_RASTER_INSTANTIATE(float)
DT_RASTER_INSTANTIATE(double)

}  // namespace dyntet
