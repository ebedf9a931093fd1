// Stage 2: deformation of the active grid vertices (model.h deform_vertex), those near the surface.
// Vertex (x, y, z) of the (R+1)^3 lattice sits at u = (x, y, z) / R in the canonical box (grid.h).
// Inactive vertices never move: one pass with mode = 1 over every vertex writes their rest state
// at load; each frame then visits only the active list, with the MLP (mode 0) or, when a clip
// carries baked deltas, with the frame's baked (dx, dy, dz, dsdf) per active vertex (mode 2),
// which replace the MLP's output exactly as render_ref.h step 2 does.
struct DeformParams {
  box_min: vec4f,
  box_size: vec4f,
  res: u32, n_vert: u32, n_freq: u32, cond_dim: u32,
  in_dim: u32, width: u32, hidden: u32, hact: u32,
  n_active: u32, sdf_delta_scale: f32, freeze: u32, mode: u32,  // mode: 0 MLP, 1 rest state, 2 baked
}
@group(0) @binding(0) var<uniform> P: DeformParams;
@group(0) @binding(1) var<storage, read> mlp_weights: array<f32>;
@group(0) @binding(2) var<storage, read> sdf: array<f32>;
@group(0) @binding(3) var<storage, read> elastic: array<f32>;
@group(0) @binding(4) var<storage, read> cond: array<f32>;
@group(0) @binding(5) var<storage, read_write> verts: array<vec4f>;  // deformed xyz, sdf
@group(0) @binding(6) var<storage, read> active_ids: array<u32>;
@group(0) @binding(7) var<storage, read> baked: array<vec4f>;  // this frame's deltas, per active vertex

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 64u;
  let init = P.mode == 1u;
  if (i >= select(P.n_active, P.n_vert, init)) { return; }
  let v = select(active_ids[i], i, init);
  let n = P.res + 1u;
  let ijk = vec3u(v % n, (v / n) % n, v / (n * n));
  let u = vec3f(ijk) / f32(P.res);
  let p = P.box_min.xyz + P.box_size.xyz * u;
  let s = sdf[v];
  if (init) {
    verts[v] = vec4f(p, s);
    return;
  }
  if (P.mode == 2u) {
    let d = baked[i];
    verts[v] = vec4f(p + d.xyz, s + d.w);
    return;
  }
  // freq_encode: x = 2u - 1, then sin/cos of 2^k pi x.
  let x = 2.0 * u - 1.0;
  h[0] = x.x; h[1] = x.y; h[2] = x.z;
  for (var k = 0u; k < P.n_freq; k++) {
    let sx = f32(1u << k) * 3.14159265358979 * x;
    let b = 3u + 6u * k;
    h[b] = sin(sx.x); h[b + 1u] = sin(sx.y); h[b + 2u] = sin(sx.z);
    h[b + 3u] = cos(sx.x); h[b + 4u] = cos(sx.y); h[b + 5u] = cos(sx.z);
  }
  let nf = 3u + 6u * P.n_freq;
  for (var i = 0u; i < P.cond_dim; i++) { h[nf + i] = cond[i]; }
  let o = mlp(P.in_dim, P.width, P.hidden, 4u, P.hact, 0u);
  let e = elastic[v];
  let disp = vec3f(tanh(clamp(h[o], -15.0, 15.0)), tanh(clamp(h[o + 1u], -15.0, 15.0)), tanh(clamp(h[o + 2u], -15.0, 15.0))) * e;
  let ds = select(tanh(clamp(h[o + 3u], -15.0, 15.0)) * P.sdf_delta_scale, 0.0, P.freeze != 0u);
  verts[v] = vec4f(p + disp, s + ds);
}
