// Stage 4: rasterisation to the G-buffer (canonical position for the texture, triangle id + 1 with
// 0 = background), in compute: a port of render_ref.cpp rasterize_ref with raster.h tri_setup,
// tri_eval and depth_less, which are the ground truth. Three entry points, one pass:
//
//   depth_main    one invocation per emitted triangle (the indirect workgroup counts that
//                 mt_emit.wgsl's finish() writes): every covered pixel centre of its bounding box
//                 takes the smallest depth key with an atomic max of the inverted key;
//   id_main       the same walk again: where the triangle's depth is the pixel's smallest, the
//                 smallest triangle id wins (atomic max of the inverted id): depth_less, so the
//                 image does not depend on the order triangles run in;
//   resolve_main  one invocation per pixel: the winner's barycentrics (tri_eval again) interpolate
//                 its canonical position (raster.h interp); both are written to the G-buffer
//                 textures and the two atomic buffers are reset to 0 (empty) for the next frame.
//
// Why not the graphics pipeline: compute GPUs such as the H100 have fixed-function rasterisers in
// only a few of their units, and this mesh has hundreds of thousands of pixel-sized triangles; in
// compute every unit runs the walk. It also follows the reference's coverage rule exactly (pixel
// centres, inclusive edges, w <= 0 and degenerate triangles dropped, depth in [-1, 1]).
// Triangles are walked over their whole bounding box by one invocation: right for the small
// triangles of a grid at R >= 24 at avatar sizes, slow (but still correct) for huge close-ups.
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
@group(0) @binding(4) var<storage, read_write> zkey: array<atomic<u32>>;  // per pixel: ~depth key, 0 = empty
@group(0) @binding(5) var<storage, read_write> zid: array<atomic<u32>>;   // per pixel: ~triangle id, 0 = empty
@group(0) @binding(6) var canon_out: texture_storage_2d<rgba32float, write>;
@group(0) @binding(7) var id_out: texture_storage_2d<r32uint, write>;

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

@compute @workgroup_size(64)
fn depth_main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let tri = triangle_index(gid, nwg);
  if (tri >= draw_args[0] / 3u) { return; }
  let w = walk_of(tri);
  for (var y = w.lo.y; y <= w.hi.y; y++) {
    for (var x = w.lo.x; x <= w.hi.x; x++) {
      let r = tri_eval(w.s, x, y);
      if (r.x > 0.0) { atomicMax(&zkey[y * A.width + x], depth_key(r.w)); }
    }
  }
}

@compute @workgroup_size(64)
fn id_main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let tri = triangle_index(gid, nwg);
  if (tri >= draw_args[0] / 3u) { return; }
  let w = walk_of(tri);
  for (var y = w.lo.y; y <= w.hi.y; y++) {
    for (var x = w.lo.x; x <= w.hi.x; x++) {
      let r = tri_eval(w.s, x, y);
      let p = y * A.width + x;
      // >=: equal with the same arithmetic as depth_main; should a compiler round the depth of
      // the two entry points differently, a nearer-looking triangle still fills the pixel.
      if (r.x > 0.0 && depth_key(r.w) >= atomicLoad(&zkey[p])) { atomicMax(&zid[p], ~tri); }
    }
  }
}

@compute @workgroup_size(8, 8)
fn resolve_main(@builtin(global_invocation_id) gid: vec3u) {
  if (gid.x >= A.width || gid.y >= A.height) { return; }
  let p = gid.y * A.width + gid.x;
  let won = atomicLoad(&zid[p]);
  atomicStore(&zkey[p], 0u);
  atomicStore(&zid[p], 0u);
  var canon = vec4f(0.0);
  var id = 0u;
  if (won != 0u) {
    let tri = ~won;
    let s = tri_setup(project(vertex_at(tri, 0u, 0u)), project(vertex_at(tri, 1u, 0u)), project(vertex_at(tri, 2u, 0u)));
    let r = tri_eval(s, gid.x, gid.y);
    // raster.h interp: a0 + l1 (a1 - a0) + l2 (a2 - a0).
    let a0 = vertex_at(tri, 0u, 3u);
    let a1 = vertex_at(tri, 1u, 3u);
    let a2 = vertex_at(tri, 2u, 3u);
    canon = vec4f(a0 + r.y * (a1 - a0) + r.z * (a2 - a0), 1.0);
    id = tri + 1u;
  }
  textureStore(canon_out, gid.xy, canon);
  textureStore(id_out, gid.xy, vec4u(id, 0u, 0u, 0u));
}
