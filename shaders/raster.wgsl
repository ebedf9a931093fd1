// Stage 4: rasterisation to the G-buffer (canonical position for the texture, triangle id + 1 with
// 0 = background), in compute: a port of render_ref.cpp rasterize_ref with raster.h tri_setup,
// tri_eval and depth_less, which are the ground truth. Small triangles (bounding box of at most
// SMALL_PIXELS pixels) are drawn by one invocation each with per-pixel atomics; the others are
// binned into 16x16-pixel screen tiles, each tile then rasterised by one workgroup, one
// invocation per pixel:
//
//   bin_count  one invocation per emitted triangle (the indirect workgroup counts that
//              mt_emit.wgsl's finish() writes): a small triangle takes the smallest depth key of
//              its covered pixels (atomic max of the inverted key); another adds 1 to every
//              tile its bounding box touches;
//   bin_scan   one workgroup: exclusive prefix sum of the counts into tile_start (and
//              tile_start[tiles] = the total); the counts become each tile's write cursor;
//   bin_emit   the same walk again: a small triangle whose depth is its pixel's smallest puts its
//              inverted id there (atomic max: the smallest id wins ties); another writes its id
//              into each touched tile's list;
//   tile_main  one workgroup per tile: chunks of the tile's triangles are set up once into
//              workgroup memory, then every pixel keeps the triangle with the smallest depth,
//              the smallest id on ties (depth_less), against the small triangles' winner too, so
//              the image does not depend on the order of anything; the winner's barycentrics
//              interpolate its canonical position (raster.h interp) into the G-buffer, and the
//              tile's cursor and its pixels' atomics are reset for the next frame.
//
// Why not the graphics pipeline: compute GPUs such as the H100 have fixed-function rasterisers in
// only a few of their units, and this mesh has hundreds of thousands of pixel-sized triangles. It
// also follows the reference's coverage rule exactly (pixel centres, inclusive edges, w <= 0 and
// degenerate triangles dropped, depth in [-1, 1]). Why tiles: a walk per triangle with per-pixel
// atomics serialises wherever triangles overlap (a trained head: 1.4 ms for 80k triangles on an
// H100); per tile there are no atomics on pixels. Pixel-sized triangles (a fine grid seen whole)
// stay cheaper with atomics: many per tile would make every pixel test them all. A tile list
// that outgrows its buffer (huge close-up triangles) loses its last entries.
struct Camera {
  pose: mat4x4f,
  f: f32, aspect: f32, znear: f32, zfar: f32,
}
struct Size {
  width: u32, height: u32, _p0: u32, _p1: u32,
}
@group(0) @binding(0) var<uniform> C: Camera;
@group(0) @binding(1) var<uniform> A: Size;
@group(0) @binding(2) var<storage, read> tri_verts: array<u32>;      // mt_emit output, 8 u32 per vertex
@group(0) @binding(3) var<storage, read> draw_args: array<u32>;      // [0]: 3 x triangles
@group(0) @binding(4) var<storage, read_write> tile_count: array<atomic<u32>>;  // per tile; 0 between frames
@group(0) @binding(5) var<storage, read_write> tile_start: array<u32>;  // per tile, then the total
@group(0) @binding(6) var canon_out: texture_storage_2d<rgba32float, write>;
@group(0) @binding(7) var id_out: texture_storage_2d<r32uint, write>;
@group(0) @binding(8) var<storage, read_write> tile_tris: array<u32>;  // the tiles' lists, back to back
@group(0) @binding(9) var<storage, read_write> zkey: array<atomic<u32>>;  // per pixel, small triangles: ~depth key, 0 = empty
@group(0) @binding(10) var<storage, read_write> zid: array<atomic<u32>>;  // per pixel, small triangles: ~triangle id, 0 = empty

const TILE: u32 = 16u;
const SMALL_PIXELS: u32 = 12u;

fn is_small(w: Walk) -> bool {
  return (w.hi.x - w.lo.x + 1u) * (w.hi.y - w.lo.y + 1u) <= SMALL_PIXELS;
}

const MIN_AREA_RATIO: f32 = 1e-3;  // raster.h kMinAreaRatio

// model.h project_to_clip.
fn project(p: vec3f) -> vec4f {
  var v: vec3f;
  for (var r = 0u; r < 3u; r++) {
    v[r] = C.pose[0][r] * p.x + C.pose[1][r] * p.y + C.pose[2][r] * p.z + C.pose[3][r];
  }
  return vec4f(C.f / C.aspect * v.x, C.f * v.y,
               (C.zfar + C.znear) / (C.znear - C.zfar) * v.z + 2.0 * C.zfar * C.znear / (C.znear - C.zfar), -v.z);
}

fn vertex_at(tri: u32, j: u32, what: u32) -> vec3f {  // what: 0 deformed, 3 canonical position
  let o = (tri * 3u + j) * 8u + what;
  return vec3f(bitcast<f32>(tri_verts[o]), bitcast<f32>(tri_verts[o + 1u]), bitcast<f32>(tri_verts[o + 2u]));
}

// raster.h clip_to_px.
fn clip_to_px(v: vec4f) -> vec2f {
  return vec2f((v.x / v.w * 0.5 + 0.5) * f32(A.width), (0.5 - v.y / v.w * 0.5) * f32(A.height));
}

// raster.h TriSetup: rows e0, e1, e2 of edge-function plane coefficients, zc, wc, valid.
struct Setup {
  e0: vec3f, e1: vec3f, e2: vec3f,
  zc: vec3f, wc: vec3f,
  valid: bool,
}

fn plane(p: vec4f, q: vec4f) -> vec3f {
  return vec3f(p.x * q.y - q.x * p.y, q.w * p.y - p.w * q.y, q.x * p.w - p.x * q.w);
}

// raster.h tri_setup.
fn tri_setup(v0: vec4f, v1: vec4f, v2: vec4f) -> Setup {
  var s: Setup;
  s.valid = v0.w > 0.0 && v1.w > 0.0 && v2.w > 0.0;
  if (s.valid) {
    let p0 = clip_to_px(v0);
    let p1 = clip_to_px(v1);
    let p2 = clip_to_px(v2);
    let a2 = (p1.x - p0.x) * (p2.y - p0.y) - (p1.y - p0.y) * (p2.x - p0.x);
    let d0 = p1 - p0;
    let d1 = p2 - p1;
    let d2 = p0 - p2;
    let l2 = max(max(max(0.0, d0.x * d0.x + d0.y * d0.y), d1.x * d1.x + d1.y * d1.y), d2.x * d2.x + d2.y * d2.y);
    if (!(abs(a2) > MIN_AREA_RATIO * l2)) { s.valid = false; }  // also rejects NaN
  }
  s.e0 = plane(v1, v2);
  s.e1 = plane(v2, v0);
  s.e2 = plane(v0, v1);
  s.zc = s.e0 * v0.z + s.e1 * v1.z + s.e2 * v2.z;
  s.wc = s.e0 * v0.w + s.e1 * v1.w + s.e2 * v2.w;
  return s;
}

// raster.h tri_eval at pixel (x, y)'s centre: (covered, l1, l2, depth) as x > 0 when covered.
fn tri_eval(s: Setup, x: u32, y: u32) -> vec4f {
  let px = 2.0 * (f32(x) + 0.5) / f32(A.width) - 1.0;
  let py = 1.0 - 2.0 * (f32(y) + 0.5) / f32(A.height);
  let c = vec3f(s.e0.x + s.e0.y * px + s.e0.z * py, s.e1.x + s.e1.y * px + s.e1.z * py, s.e2.x + s.e2.y * px + s.e2.z * py);
  let S = c.x + c.y + c.z;
  let none = vec4f(0.0);
  if (!s.valid || S == 0.0) { return none; }
  if (S > 0.0) {
    if (c.x < 0.0 || c.y < 0.0 || c.z < 0.0) { return none; }
  } else {
    if (c.x > 0.0 || c.y > 0.0 || c.z > 0.0) { return none; }
  }
  let zn = s.zc.x + s.zc.y * px + s.zc.z * py;
  let wn = s.wc.x + s.wc.y * px + s.wc.z * py;
  let depth = zn / wn;
  if (!(depth >= -1.0 && depth <= 1.0)) { return none; }  // also rejects NaN
  return vec4f(1.0, c.y / S, c.z / S, depth);
}

// Depth as an unsigned key in the same order (negative floats flipped), inverted so that the
// smallest depth is the largest key and 0 stays "empty"; -0 counts as +0, as the C++ compares.
fn depth_key(d: f32) -> u32 {
  let b = bitcast<u32>(select(d, 0.0, d == 0.0));
  return ~select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);
}

struct Walk {
  s: Setup,
  lo: vec2u,
  hi: vec2u,  // inclusive; lo > hi: nothing to visit
}

// rasterize_ref's bounding box (widened by 0.05 pixel) of a triangle, clamped to the image.
fn walk_of(tri: u32) -> Walk {
  let v0 = project(vertex_at(tri, 0u, 0u));
  let v1 = project(vertex_at(tri, 1u, 0u));
  let v2 = project(vertex_at(tri, 2u, 0u));
  var w: Walk;
  w.s = tri_setup(v0, v1, v2);
  w.lo = vec2u(1u);
  w.hi = vec2u(0u);
  if (!w.s.valid) { return w; }
  let p0 = clip_to_px(v0);
  let p1 = clip_to_px(v1);
  let p2 = clip_to_px(v2);
  let mn = min(min(p0, p1), p2);
  let mx = max(max(p0, p1), p2);
  let size = vec2f(f32(A.width), f32(A.height));
  // Not finite, or off the image (the C++'s test), is skipped; the clamps keep the conversions
  // to integers in range.
  if (!(all(abs(mn) <= vec2f(3.0e38)) && all(abs(mx) <= vec2f(3.0e38)))) { return w; }
  if (any(mx < vec2f(-1.0)) || any(mn > size + 1.0)) { return w; }
  let lo = clamp(ceil(mn - 0.55), vec2f(0.0), size - 1.0);
  let hi = clamp(floor(mx - 0.45), vec2f(-1.0), size - 1.0);
  w.lo = vec2u(lo);
  w.hi = vec2u(max(hi, vec2f(0.0)));
  if (any(hi < lo)) { w.lo = vec2u(1u); w.hi = vec2u(0u); }
  return w;
}

// Invocation i visits triangle (i % 32) * stride + i / 32, stride = ceil(n / 32): the 32 lanes of
// a subgroup take triangles n / 32 apart. Marching emits neighbouring triangles next to each
// other, and neighbours cover the same pixels, whose atomics would serialise within a subgroup.
// Returns n (skip) past the end; the dispatch (a multiple of 64 invocations >= n) covers all.
fn triangle_index(gid: vec3u, nwg: vec3u) -> u32 {
  let i = gid.x + gid.y * nwg.x * 64u;
  let n = draw_args[0] / 3u;
  let stride = (n + 31u) / 32u;
  if (i >= 32u * stride) { return n; }
  return (i % 32u) * stride + i / 32u;
}

fn tiles_x() -> u32 { return (A.width + TILE - 1u) / TILE; }
fn tiles_y() -> u32 { return (A.height + TILE - 1u) / TILE; }

@compute @workgroup_size(64)
fn bin_count(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let tri = triangle_index(gid, nwg);
  if (tri >= draw_args[0] / 3u) { return; }
  let w = walk_of(tri);
  if (w.lo.x > w.hi.x) { return; }
  if (is_small(w)) {
    for (var y = w.lo.y; y <= w.hi.y; y++) {
      for (var x = w.lo.x; x <= w.hi.x; x++) {
        let r = tri_eval(w.s, x, y);
        if (r.x > 0.0) { atomicMax(&zkey[y * A.width + x], depth_key(r.w)); }
      }
    }
    return;
  }
  for (var ty = w.lo.y / TILE; ty <= w.hi.y / TILE; ty++) {
    for (var tx = w.lo.x / TILE; tx <= w.hi.x / TILE; tx++) { atomicAdd(&tile_count[ty * tiles_x() + tx], 1u); }
  }
}

var<workgroup> scan_tmp: array<u32, 256>;

@compute @workgroup_size(256)
fn bin_scan(@builtin(local_invocation_index) li: u32) {
  let n = tiles_x() * tiles_y();
  var carry = 0u;
  for (var base = 0u; base < n; base += 256u) {
    let i = base + li;
    var v = 0u;
    if (i < n) { v = atomicLoad(&tile_count[i]); }
    scan_tmp[li] = v;
    workgroupBarrier();
    for (var o = 1u; o < 256u; o <<= 1u) {  // inclusive scan (Hillis-Steele)
      var add = 0u;
      if (li >= o) { add = scan_tmp[li - o]; }
      workgroupBarrier();
      scan_tmp[li] += add;
      workgroupBarrier();
    }
    if (i < n) {
      let start = carry + scan_tmp[li] - v;
      tile_start[i] = start;
      atomicStore(&tile_count[i], start);  // bin_emit's cursor
    }
    carry += scan_tmp[255];
    workgroupBarrier();
  }
  if (li == 0u) { tile_start[n] = carry; }
}

@compute @workgroup_size(64)
fn bin_emit(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let tri = triangle_index(gid, nwg);
  if (tri >= draw_args[0] / 3u) { return; }
  let w = walk_of(tri);
  if (w.lo.x > w.hi.x) { return; }
  if (is_small(w)) {
    for (var y = w.lo.y; y <= w.hi.y; y++) {
      for (var x = w.lo.x; x <= w.hi.x; x++) {
        let r = tri_eval(w.s, x, y);
        let p = y * A.width + x;
        // >=: equal with the same arithmetic as bin_count; should a compiler round the depth of
        // the two entry points differently, a nearer-looking triangle still fills the pixel.
        if (r.x > 0.0 && depth_key(r.w) >= atomicLoad(&zkey[p])) { atomicMax(&zid[p], ~tri); }
      }
    }
    return;
  }
  let cap = arrayLength(&tile_tris);
  for (var ty = w.lo.y / TILE; ty <= w.hi.y / TILE; ty++) {
    for (var tx = w.lo.x / TILE; tx <= w.hi.x / TILE; tx++) {
      let slot = atomicAdd(&tile_count[ty * tiles_x() + tx], 1u);
      if (slot < cap) { tile_tris[slot] = tri; }
    }
  }
}

// One chunk of a tile's triangles, set up once per workgroup: the edge and depth planes, the
// bounding box (lo.xy, hi.xy; lo > hi: skip) and the id.
const CHUNK: u32 = 128u;
var<workgroup> chunk_planes: array<vec4f, 640>;  // 5 per triangle: e0, e1, e2, zc, wc
var<workgroup> chunk_box: array<vec4u, 128>;
var<workgroup> chunk_tri: array<u32, 128>;
var<workgroup> tile_range: vec2u;

@compute @workgroup_size(16, 16)
fn tile_main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u,
             @builtin(local_invocation_index) li: u32) {
  let t = wg.y * tiles_x() + wg.x;
  let x = wg.x * TILE + lid.x;
  let y = wg.y * TILE + lid.y;
  if (li == 0u) { tile_range = vec2u(tile_start[t], min(tile_start[t + 1u], arrayLength(&tile_tris))); }
  let range = workgroupUniformLoad(&tile_range);
  let inside = x < A.width && y < A.height;
  let pix = select(0u, y * A.width + x, inside);
  // Start from the small triangles' winner: inverted depth key (larger is nearer, 0 = empty)
  // and inverted id (larger is smaller).
  var best_key = 0u;
  var best_id = 0u;
  if (inside) { best_key = atomicLoad(&zkey[pix]); best_id = atomicLoad(&zid[pix]); }
  for (var c = range.x; c < range.y; c += CHUNK) {
    if (li < CHUNK) {
      var box = vec4u(1u, 1u, 0u, 0u);
      var tri = 0u;
      if (c + li < range.y) {
        tri = tile_tris[c + li];
        let w = walk_of(tri);
        if (w.lo.x <= w.hi.x) {
          box = vec4u(w.lo, w.hi);
          chunk_planes[li * 5u] = vec4f(w.s.e0, 0.0);
          chunk_planes[li * 5u + 1u] = vec4f(w.s.e1, 0.0);
          chunk_planes[li * 5u + 2u] = vec4f(w.s.e2, 0.0);
          chunk_planes[li * 5u + 3u] = vec4f(w.s.zc, 0.0);
          chunk_planes[li * 5u + 4u] = vec4f(w.s.wc, 0.0);
        }
      }
      chunk_box[li] = box;
      chunk_tri[li] = tri;
    }
    workgroupBarrier();
    let n = min(CHUNK, range.y - c);
    for (var j = 0u; j < n; j++) {
      let b = chunk_box[j];
      if (x < b.x || y < b.y || x > b.z || y > b.w) { continue; }
      var s: Setup;
      s.e0 = chunk_planes[j * 5u].xyz;
      s.e1 = chunk_planes[j * 5u + 1u].xyz;
      s.e2 = chunk_planes[j * 5u + 2u].xyz;
      s.zc = chunk_planes[j * 5u + 3u].xyz;
      s.wc = chunk_planes[j * 5u + 4u].xyz;
      s.valid = true;
      let r = tri_eval(s, x, y);
      if (r.x > 0.0) {
        let key = depth_key(r.w);
        let id = ~chunk_tri[j];
        if (key > best_key || (key == best_key && id > best_id)) { best_key = key; best_id = id; }
      }
    }
    workgroupBarrier();
  }
  if (li == 0u) { atomicStore(&tile_count[t], 0u); }
  if (!inside) { return; }
  atomicStore(&zkey[pix], 0u);
  atomicStore(&zid[pix], 0u);
  var canon = vec4f(0.0);
  var id = 0u;
  if (best_id != 0u) {
    let tri = ~best_id;
    let s = tri_setup(project(vertex_at(tri, 0u, 0u)), project(vertex_at(tri, 1u, 0u)), project(vertex_at(tri, 2u, 0u)));
    let r = tri_eval(s, x, y);
    // raster.h interp: a0 + l1 (a1 - a0) + l2 (a2 - a0).
    let a0 = vertex_at(tri, 0u, 3u);
    let a1 = vertex_at(tri, 1u, 3u);
    let a2 = vertex_at(tri, 2u, 3u);
    canon = vec4f(a0 + r.y * (a1 - a0) + r.z * (a2 - a0), 1.0);
    id = tri + 1u;
  }
  textureStore(canon_out, vec2u(x, y), canon);
  textureStore(id_out, vec2u(x, y), vec4u(id, 0u, 0u, 0u));
}
