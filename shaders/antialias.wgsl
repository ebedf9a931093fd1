// Stage 6: analytic silhouette antialiasing, a port of native/core/raster.h (aa_exit,
// silhouette_mask, aa_pair) and of step 7 of native/core/render_ref.cpp, which is the ground
// truth. tets.wgsl is prepended (grid, marching-tets tables, GridParams). Two entry points:
//
//   tri_main   one invocation per emitted triangle, dispatched indirectly with the workgroup count
//              that mt_emit.wgsl's finish() writes after the triangle count. It stores the
//              triangle across each of its edges (render_ref.h mesh_adjacency) and its silhouette
//              mask (raster.h silhouette_mask), 16 bytes per triangle.
//   pair_main  one invocation per pixel: raster.h aa_pair for the pixel and its right and lower
//              neighbours (so every pair is decided once), as signed weights.
//   pixel_main one invocation per pixel: the gather over the pixel's 4 pairs, from the texture
//              stage's premultiplied colours (covered: (rgb, 1), background: 0) into the buffer
//              the composite reads.
//
// Adjacency without a hash map. Marching tets puts one mesh vertex on each sign-changing grid
// edge, and the reference joins triangles that share two vertex ids, i.e. two grid edges. The two
// grid edges of a triangle edge either share a grid vertex, and then they span a face of the
// triangle's tetrahedron: the surface crosses that face in exactly this one segment, so the
// neighbour is the triangle, in the other tetrahedron holding the face, that has both grid edges;
// or they do not, and the edge is the diagonal of a two-triangle (quad) case, shared with the
// tetrahedron's other triangle. Both are found on the procedural grid from the triangle's tet id
// (stored by mt_emit in the spare vertex slot) and the scanned per-tet offsets, so every frame
// gets the exact adjacency of the reference with no table to clear and no readback. A face is
// shared by at most two tetrahedra, so no edge has more than two triangles (no -2 entries), and
// a triangle holds both vertices of edge k of triangle t exactly when it is t or adj(t, k): that
// is how aa_pair's shared-edge test reads here.
//
// Clip-space vertices are not stored: both entry points project the emitted positions with the
// frame's camera (model.h project_to_clip) where they need them.
//
// Arithmetic follows the C++ operation by operation (operand order kept) so pixel decisions match.

struct Camera {
  pose: mat4x4f,
  f: f32, aspect: f32, znear: f32, zfar: f32,
}
struct AaParams {
  width: u32, height: u32, _p0: u32, _p1: u32,
}

@group(0) @binding(0) var<uniform> G: GridParams;
@group(0) @binding(1) var<storage, read> verts: array<vec4f>;        // deformed xyz, sdf per grid vertex
@group(0) @binding(2) var<storage, read> offsets: array<u32>;        // first triangle of each tet
@group(0) @binding(3) var<storage, read> total: array<u32>;          // top-level scan total
@group(0) @binding(4) var<storage, read> tri_verts: array<u32>;      // mt_emit output, 8 u32 per vertex
@group(0) @binding(5) var<uniform> C: Camera;
// Per triangle: the triangle across edge 0, 1, 2 (-1: none), and the silhouette mask (bit k: edge k).
@group(0) @binding(7) var<storage, read_write> tri_info: array<vec4i>;
@group(0) @binding(8) var<uniform> A: AaParams;
@group(0) @binding(9) var id_tex: texture_2d<u32>;                  // triangle id + 1, 0 = background
@group(0) @binding(10) var<storage, read> color: array<vec4f>;      // premultiplied RGBA per pixel
@group(0) @binding(11) var<storage, read_write> aa_out: array<vec4f>;
@group(0) @binding(12) var<storage, read_write> pairs: array<vec2f>;  // per pixel: right, lower pair

const MAX_WALK: i32 = 16;  // raster.h kAaMaxWalk

// ---------------------------------------------------------------------------------------------
// Per triangle.

// model.h project_to_clip.
fn project(p: vec3f) -> vec4f {
  var v: vec3f;
  for (var r = 0u; r < 3u; r++) {
    v[r] = C.pose[0][r] * p.x + C.pose[1][r] * p.y + C.pose[2][r] * p.z + C.pose[3][r];
  }
  return vec4f(C.f / C.aspect * v.x, C.f * v.y,
               (C.zfar + C.znear) / (C.znear - C.zfar) * v.z + 2.0 * C.zfar * C.znear / (C.znear - C.zfar), -v.z);
}

fn vertex_pos(tri: u32, j: u32) -> vec3f {
  let o = (tri * 3u + j) * 8u;
  return vec3f(bitcast<f32>(tri_verts[o]), bitcast<f32>(tri_verts[o + 1u]), bitcast<f32>(tri_verts[o + 2u]));
}

// Clip-space vertex j of triangle tri.
fn clip_of(tri: u32, j: u32) -> vec4f {
  return project(vertex_pos(tri, j));
}

fn tet_mask(v: vec4u) -> u32 {
  var mask = 0u;
  for (var i = 0u; i < 4u; i++) { mask |= select(0u, 1u << i, verts[v[i]].w < 0.0); }
  return mask;
}

// Grid edge (sorted vertex pair) under mesh vertex j of triangle k of a tet with corners v.
fn grid_edge(v: vec4u, mask: u32, k: u32, j: u32) -> vec2u {
  let te = MT_TRI_EDGES[mask];
  let e = MT_EDGES[te[3u * k + j]];
  return vec2u(min(v[e.x], v[e.y]), max(v[e.x], v[e.y]));
}

fn vertex_ijk(v: u32) -> vec3i {
  let n = G.res + 1u;
  return vec3i(i32(v % n), i32((v / n) % n), i32(v / (n * n)));
}

// Corner sets of the 6 tetrahedra of a cube (tets.wgsl TET_CORNERS as 8-bit masks: bit c for
// corner c), tets 0-3 in TET_SETS_A, 4-5 in TET_SETS_B, 8 bits each.
const TET_SETS_A: u32 = 0xC58DA38Bu;  // {0,1,3,7} {0,1,5,7} {0,2,3,7} {0,2,6,7}
const TET_SETS_B: u32 = 0x0000D1B1u;  // {0,4,5,7} {0,4,6,7}

fn tet_corner_set(s: u32) -> u32 {
  return select(TET_SETS_B >> (8u * (s - 4u)), TET_SETS_A >> (8u * s), s < 4u) & 0xFFu;
}

// The tetrahedron other than `own` that holds grid vertices a, b, c (a face), or -1 (grid
// boundary). The face lies inside one cube (both its tetrahedra are in that cube), or on the
// square between two cubes (the one axis along which all three vertices agree): at most two
// candidate cubes, whose six tetrahedra are tested by corner sets.
fn other_tet(own: u32, a: u32, b: u32, c: u32) -> i32 {
  let pa = vertex_ijk(a);
  let pb = vertex_ijk(b);
  let pc = vertex_ijk(c);
  let lo = min(min(pa, pb), pc);
  let hi = max(max(pa, pb), pc);
  let flat = vec3i(select(vec3<bool>(false), vec3<bool>(true), hi == lo));
  let res = i32(G.res);
  let n_cubes = select(1, 2, any(hi == lo));
  for (var d = 0; d < n_cubes; d++) {
    // Flat axis: the cube below (d = 0) or above (d = 1) the square; spanning axes: lo.
    let o = lo - flat + flat * d;
    if (any(o < vec3i(0)) || any(o >= vec3i(res))) { continue; }
    let rel = vec3u(pa - o);
    let rb = vec3u(pb - o);
    let rc = vec3u(pc - o);
    let need = (1u << (rel.x | (rel.y << 1u) | (rel.z << 2u))) | (1u << (rb.x | (rb.y << 1u) | (rb.z << 2u))) |
               (1u << (rc.x | (rc.y << 1u) | (rc.z << 2u)));
    let base = u32(o.x + res * (o.y + res * o.z)) * 6u;
    for (var s = 0u; s < 6u; s++) {
      let t = base + s;
      if (t != own && (tet_corner_set(s) & need) == need) { return i32(t); }
    }
  }
  return -1;
}

// The triangle of tetrahedron t (excluding triangle `skip`) with both grid edges ea and eb, or -1.
fn triangle_with_edges(t: u32, ea: vec2u, eb: vec2u, skip: u32, count: u32) -> i32 {
  let v = tet_vertices(G.res, t);
  let mask = tet_mask(v);
  let nt = num_tris(mask);
  for (var k = 0u; k < nt; k++) {
    let tri = offsets[t] + k;
    if (tri == skip || tri >= count) { continue; }  // over capacity: not drawn, as if absent
    var hits = 0u;
    for (var j = 0u; j < 3u; j++) {
      let e = grid_edge(v, mask, k, j);
      hits += select(0u, 1u, all(e == ea)) + select(0u, 1u, all(e == eb));
    }
    if (hits == 2u) { return i32(tri); }
  }
  return -1;
}

// Pixel-space position of a clip vertex (raster.h clip_to_px).
fn clip_to_px(v: vec4f) -> vec2f {
  let w = f32(A.width);
  let h = f32(A.height);
  return vec2f((v.x / v.w * 0.5 + 0.5) * w, (0.5 - v.y / v.w * 0.5) * h);
}

// raster.h edge_fn: edge (a, b) at p.
fn edge_fn(a: vec2f, b: vec2f, p: vec2f) -> f32 {
  return (b.x - a.x) * (p.y - a.y) - (b.y - a.y) * (p.x - a.x);
}

// raster.h screen_area (signed, times 2) and tri_drawn.
fn screen_area(c0: vec4f, c1: vec4f, c2: vec4f) -> f32 {
  return edge_fn(clip_to_px(c1), clip_to_px(c2), clip_to_px(c0));
}

fn drawn(c0: vec4f, c1: vec4f, c2: vec4f) -> bool {
  return c0.w > 0.0 && c1.w > 0.0 && c2.w > 0.0;
}

@compute @workgroup_size(64)
fn tri_main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let tri = gid.x + gid.y * nwg.x * 64u;
  let count = min(total[0], G.max_tris);
  if (tri >= count) { return; }
  let tet = tri_verts[tri * 24u + 7u];
  let k = tri - offsets[tet];
  let v = tet_vertices(G.res, tet);
  let mask = tet_mask(v);
  var ge: array<vec2u, 3>;
  var cl: array<vec4f, 3>;
  for (var j = 0u; j < 3u; j++) {
    ge[j] = grid_edge(v, mask, k, j);
    cl[j] = clip_of(tri, j);
  }
  // Adjacency: edge m joins mesh vertices m+1 and m+2 (mod 3).
  var adj = vec3i(-1);
  for (var m = 0u; m < 3u; m++) {
    let ea = ge[(m + 1u) % 3u];
    let eb = ge[(m + 2u) % 3u];
    var shared_v = 0u;
    var found = false;
    for (var i = 0u; i < 2u; i++) {
      for (var j = 0u; j < 2u; j++) {
        if (!found && ea[i] == eb[j]) { shared_v = ea[i]; found = true; }
      }
    }
    if (found) {
      // Face {ea, eb}: the three distinct grid vertices.
      let a = ea.x;
      let b = ea.y;
      let c = select(eb.x, eb.y, eb.x == shared_v);
      let t2 = other_tet(tet, a, b, c);
      if (t2 >= 0) { adj[m] = triangle_with_edges(u32(t2), ea, eb, tri, count); }
    } else {
      // Diagonal of a quad: the tetrahedron's other triangle.
      adj[m] = triangle_with_edges(tet, ea, eb, tri, count);
    }
  }
  // raster.h silhouette_mask.
  var sil = 0;
  if (drawn(cl[0], cl[1], cl[2])) {
    let a = screen_area(cl[0], cl[1], cl[2]);
    for (var m = 0u; m < 3u; m++) {
      let n = adj[m];
      var s = true;
      if (n >= 0) {
        let nu = u32(n);
        let n0 = clip_of(nu, 0u);
        let n1 = clip_of(nu, 1u);
        let n2 = clip_of(nu, 2u);
        s = !drawn(n0, n1, n2) || (a > 0.0) != (screen_area(n0, n1, n2) > 0.0);
      }
      if (s) { sil |= 1 << m; }
    }
  }
  tri_info[tri] = vec4i(adj, sil);
}

// ---------------------------------------------------------------------------------------------
// Per pixel.

// NDC depth of triangle t at pixel (x, y)'s centre: raster.h tri_setup's plane coefficients and
// tri_eval's zn / wn, the value the reference rasteriser stores for the pixel.
// Plane coefficients of edge function i (p = vertex i+1, q = vertex i+2), as tri_setup.
fn plane(p: vec4f, q: vec4f) -> vec3f {
  return vec3f(p.x * q.y - q.x * p.y, q.w * p.y - p.w * q.y, q.x * p.w - p.x * q.w);
}

fn pixel_depth(t: u32, x: u32, y: u32) -> f32 {
  let px = 2.0 * (f32(x) + 0.5) / f32(A.width) - 1.0;
  let py = 1.0 - 2.0 * (f32(y) + 0.5) / f32(A.height);
  let v0 = clip_of(t, 0u);
  let v1 = clip_of(t, 1u);
  let v2 = clip_of(t, 2u);
  let e0 = plane(v1, v2);
  let e1 = plane(v2, v0);
  let e2 = plane(v0, v1);
  let zc = e0 * v0.z + e1 * v1.z + e2 * v2.z;
  let wc = e0 * v0.w + e1 * v1.w + e2 * v2.w;
  let zn = zc.x + zc.y * px + zc.z * py;
  let wn = wc.x + wc.y * px + wc.z * py;
  return zn / wn;
}

// raster.h depth_less.
fn depth_less(d: f32, t: i32, bd: f32, bt: i32) -> bool {
  return bt < 0 || d < bd || (d == bd && t < bt);
}

// raster.h aa_exit: where the segment f -> o leaves triangle t; returns (t_exit, edge) with edge
// -1 when it does not (zero image area).
struct Exit {
  t: f32,
  edge: i32,
}

fn aa_exit(tri: u32, f: vec2f, o: vec2f) -> Exit {
  var s: array<vec2f, 3>;
  for (var i = 0u; i < 3u; i++) { s[i] = clip_to_px(clip_of(tri, i)); }
  let area = edge_fn(s[1], s[2], s[0]);
  var r = Exit(-1.0, -1);
  if (!(area != 0.0)) { return r; }
  let sgn = select(-1.0, 1.0, area > 0.0);
  var best = 0.0;
  for (var k = 0u; k < 3u; k++) {
    let i = (k + 1u) % 3u;
    let j = (k + 2u) % 3u;
    let ef = sgn * edge_fn(s[i], s[j], f);
    let eo = sgn * edge_fn(s[i], s[j], o);
    if (eo < ef) {
      let t = ef / (ef - eo);
      if (r.edge < 0 || t < best) { best = t; r.edge = i32(k); }
    }
  }
  if (r.edge >= 0) { r.t = best; }
  return r;
}

fn pixel_id(x: u32, y: u32) -> i32 {
  return i32(textureLoad(id_tex, vec2u(x, y), 0).x) - 1;
}

// raster.h aa_pair for pixels p = (xp, yp) (left / upper) and q = (xq, yq), covered by triangles
// tp and tq (-1: none): the weight of the change of the pixel `side` (1: p, 2: q; 0: none).
// Evaluated identically from either pixel.
struct Pair {
  side: i32,
  w: f32,
}

fn aa_pair(xp: u32, yp: u32, xq: u32, yq: u32, tp: i32, tq: i32) -> Pair {
  var r = Pair(0, 0.0);
  if (tp == tq) { return r; }
  var front: i32;
  if (tp < 0) {
    front = 1;
  } else if (tq < 0) {
    front = 0;
  } else {
    front = select(1, 0, depth_less(pixel_depth(u32(tp), xp, yp), tp, pixel_depth(u32(tq), xq, yq), tq));
  }
  let tf = select(tp, tq, front == 1);
  let to = select(tq, tp, front == 1);
  let fpix = select(vec2u(xp, yp), vec2u(xq, yq), front == 1);
  let opix = select(vec2u(xq, yq), vec2u(xp, yp), front == 1);
  let f = vec2f(f32(fpix.x) + 0.5, f32(fpix.y) + 0.5);
  let o = vec2f(f32(opix.x) + 0.5, f32(opix.y) + 0.5);
  // Walk from F across the mesh along f -> o until a silhouette edge (raster.h aa_pair).
  var cur = u32(tf);
  var k = -1;
  var t = 0.0;
  var found = false;
  for (var step = 0; step < MAX_WALK; step++) {
    let ex = aa_exit(cur, f, o);
    t = ex.t;
    k = ex.edge;
    if (k < 0 || !(t <= 1.0)) { return r; }
    let info = tri_info[cur];
    if (((info.w >> u32(k)) & 1) != 0) {
      found = true;
      break;
    }
    let n = info[k];
    if (n < 0) { return r; }
    cur = u32(n);
  }
  if (!found) { return r; }
  if (to >= 0) {
    // No edge when the other pixel's triangle shares it (holds both its vertices): it is the
    // triangle itself or the one across the edge (see the top of this file).
    if (u32(to) == cur || tri_info[cur][k] == to) { return r; }
  }
  if (t < 0.0) { t = 0.0; }
  if (t > 0.5) {
    r.side = select(2, 1, front == 1);  // the other pixel takes F's colour
  } else if (t < 0.5) {
    r.side = select(1, 2, front == 1);  // F's pixel takes the other colour
  } else {
    return r;
  }
  r.w = select(0.5 - t, t - 0.5, t > 0.5);
  return r;
}

// aa_pair's result as one signed weight: +w when p changes, -w when q changes, 0 for neither
// (w = |t - 1/2| > 0 whenever a pixel changes).
fn signed_weight(pr: Pair) -> f32 {
  return select(select(0.0, -pr.w, pr.side == 2), pr.w, pr.side == 1);
}

// Each pair once: pixel (x, y) with its right neighbour (.x) and the one below (.y).
@compute @workgroup_size(8, 8)
fn pair_main(@builtin(global_invocation_id) gid: vec3u) {
  let x = gid.x;
  let y = gid.y;
  if (x >= A.width || y >= A.height) { return; }
  let t = pixel_id(x, y);
  var r = vec2f(0.0);
  if (x + 1u < A.width) {
    let tq = pixel_id(x + 1u, y);
    if (tq != t) { r.x = signed_weight(aa_pair(x, y, x + 1u, y, t, tq)); }
  }
  if (y + 1u < A.height) {
    let tq = pixel_id(x, y + 1u);
    if (tq != t) { r.y = signed_weight(aa_pair(x, y, x, y + 1u, t, tq)); }
  }
  pairs[y * A.width + x] = r;
}

// The gather (render_ref.cpp step 7): the pixel's colour plus, for each of its pairs in the
// reference's order (left, right, up, down) that changes this pixel, w (C_other - C_pixel).
@compute @workgroup_size(8, 8)
fn pixel_main(@builtin(global_invocation_id) gid: vec3u) {
  let x = gid.x;
  let y = gid.y;
  if (x >= A.width || y >= A.height) { return; }
  let p = y * A.width + x;
  let cp = color[p];
  let here = pairs[p];
  var acc = cp;
  if (x > 0u) {
    let w = pairs[p - 1u].x;  // this pixel is the pair's q
    if (w < 0.0) { acc += -w * (color[p - 1u] - cp); }
  }
  if (here.x > 0.0) { acc += here.x * (color[p + 1u] - cp); }
  if (y > 0u) {
    let w = pairs[p - A.width].y;
    if (w < 0.0) { acc += -w * (color[p - A.width] - cp); }
  }
  if (here.y > 0.0) { acc += here.y * (color[p + A.width] - cp); }
  aa_out[p] = acc;
}
