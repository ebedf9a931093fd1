// Stage 2: deformation of the active grid vertices (model.h deform_vertex), those near the surface.
// Vertex (x, y, z) of the (R+1)^3 lattice sits at u = (x, y, z) / R in the canonical box (grid.h).
// Inactive vertices never move: `main` with mode = 1 over every vertex writes their rest state
// at load; each frame then visits only the active list: `mlp_main` runs the MLP (mode 0) on tiles
// of 32 active vertices (mlp.wgsl), or, when a clip carries baked deltas, `main` with mode 2 adds
// the frame's baked (dx, dy, dz, dsdf) per active vertex, which replace the MLP's output exactly as
// render_ref.h step 2 does.
struct DeformParams {
  box_min: vec4f,
  box_size: vec4f,
  res: u32, n_vert: u32, n_freq: u32, cond_dim: u32,
  in_dim: u32, width: u32, hidden: u32, hact: u32,
  n_active: u32, sdf_delta_scale: f32, freeze: u32, mode: u32,  // mode: 0 MLP, 1 rest state, 2 baked
}
@group(0) @binding(0) var<uniform> P: DeformParams;
@group(0) @binding(1) var<storage, read> mlp_weights: array<vec4f>;  // packed by renderer.ts packMlp
@group(0) @binding(2) var<storage, read> sdf: array<f32>;
@group(0) @binding(3) var<storage, read> elastic: array<f32>;
@group(0) @binding(4) var<storage, read> cond: array<f32>;
@group(0) @binding(5) var<storage, read_write> verts: array<vec4f>;  // deformed xyz, sdf
@group(0) @binding(6) var<storage, read> active_ids: array<u32>;
@group(0) @binding(7) var<storage, read> baked: array<vec4f>;  // this frame's deltas, per active vertex

// Lattice coordinate u of vertex v.
fn lattice_u(v: u32) -> vec3f {
  let n = P.res + 1u;
  return vec3f(vec3u(v % n, (v / n) % n, v / (n * n))) / f32(P.res);
}

// Rest state (mode 1, every vertex) or baked deltas (mode 2, active vertices): one per invocation.
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 64u;
  let init = P.mode == 1u;
  if (i >= select(P.n_active, P.n_vert, init)) { return; }
  let v = select(active_ids[i], i, init);
  let p = P.box_min.xyz + P.box_size.xyz * lattice_u(v);
  let s = sdf[v];
  if (init) {
    verts[v] = vec4f(p, s);
    return;
  }
  let d = baked[i];
  verts[v] = vec4f(p + d.xyz, s + d.w);
}

// The MLP (mode 0): one workgroup per 32 active vertices.
@compute @workgroup_size(128)
fn mlp_main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
            @builtin(local_invocation_index) lid: u32) {
  let first = (wid.x + wid.y * nwg.x) * MLP_POINTS;
  // Inputs, element e = (input d, vertex pe), vertex fastest: freq_encode's raw x = 2u - 1, then
  // sin and cos of 2^k pi x (k = 0..n_freq-1), then the condition.
  let nf = 3u + 6u * P.n_freq;
  for (var e = lid; e < MLP_POINTS * P.in_dim; e += MLP_THREADS) {
    let d = e / MLP_POINTS;
    let pe = e % MLP_POINTS;
    let v = active_ids[min(first + pe, P.n_active - 1u)];
    let x = 2.0 * lattice_u(v) - 1.0;
    var val: f32;
    if (d < 3u) {
      val = x[d];
    } else if (d < nf) {
      let k = (d - 3u) / 6u;
      let r = (d - 3u) % 6u;
      let sx = f32(1u << k) * 3.14159265358979 * x[r % 3u];
      val = select(cos(sx), sin(sx), r < 3u);
    } else {
      val = cond[d - nf];
    }
    mlp_set_input(pe, d, val);
  }
  workgroupBarrier();
  let base = mlp_hidden(lid, P.in_dim, P.width, P.hidden, P.hact);
  let i = first + lid;
  if (lid < MLP_POINTS && i < P.n_active) {
    let o = mlp_out(lid, base, select(P.width, P.in_dim, P.hidden == 0u), 0u);
    let v = active_ids[i];
    let p = P.box_min.xyz + P.box_size.xyz * lattice_u(v);
    let t = tanh(clamp(o, vec4f(-15.0), vec4f(15.0)));
    let ds = select(t.w * P.sdf_delta_scale, 0.0, P.freeze != 0u);
    verts[v] = vec4f(p + t.xyz * elastic[v], sdf[v] + ds);
  }
}
