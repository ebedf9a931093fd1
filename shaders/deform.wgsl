// Stage 2: deformation of the active grid vertices (model.h deform_vertex), those near the surface.
// Vertex (x, y, z) of the (R+1)^3 lattice sits at u = (x, y, z) / R in the canonical box (grid.h).
// Inactive vertices never move: `main` with mode = 1 over every vertex writes their rest state
// at load; each frame then visits only the active list: `mlp_main` runs the MLP (mode 0) on tiles
// of 32 active vertices (mlp.wgsl), starting from layer 0's positional part that `mlp_pre` stored
// at load, or, when a clip carries baked deltas, `main` with mode 2 adds the frame's baked
// (dx, dy, dz, dsdf) per active vertex, which replace the MLP's output exactly as render_ref.h
// step 2 does.
struct DeformParams {
  box_min: vec4f,
  box_size: vec4f,
  res: u32, n_vert: u32, n_freq: u32, cond_dim: u32,
  in_dim: u32, width: u32, hidden: u32, hact: u32,
  n_active: u32, sdf_delta_scale: f32, freeze: u32, mode: u32,  // mode: 0 MLP, 1 rest state, 2 baked
  cached: u32, _p0: u32, _p1: u32, _p2: u32,                     // cached: mlp_pre's buffer is filled
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

// The MLP (mode 0), 32 active vertices per workgroup (mlp.wgsl tiles). Its inputs are the
// vertex's encoded lattice position, then the frame's condition; the position part of layer 0
// (bias plus positional terms, summed first as model.h does) never changes, so mlp_pre stores it
// per active vertex at load (P.cached = 1), and each frame adds only the condition's terms. The
// sums are the C++ ones in the same order. Without the cache (it would not fit the device's
// binding limit) mlp_main computes the positional part itself.
@group(0) @binding(8) var<storage, read_write> pre: array<vec4f>;  // per active vertex: no4 vec4s

// Layer 0's output count in vec4s: the hidden width, or the 4 outputs when there is no hidden layer.
fn layer0_groups() -> u32 {
  return select(1u, (P.width + 3u) / 4u, P.hidden > 0u);
}

// The positional inputs 0..nf-1 of the tile's vertices into `act` (element e = (input d, vertex
// pe), vertex fastest): freq_encode's raw x = 2u - 1, then sin and cos of 2^k pi x (k < n_freq).
fn encode_positional(first: u32, lid: u32, nf: u32) {
  for (var e = lid; e < MLP_POINTS * nf; e += MLP_THREADS) {
    let d = e / MLP_POINTS;
    let pe = e % MLP_POINTS;
    let v = active_ids[min(first + pe, P.n_active - 1u)];
    let x = 2.0 * lattice_u(v) - 1.0;
    var val: f32;
    if (d < 3u) {
      val = x[d];
    } else {
      let k = (d - 3u) / 6u;
      let r = (d - 3u) % 6u;
      let sx = f32(1u << k) * 3.14159265358979 * x[r % 3u];
      val = select(cos(sx), sin(sx), r < 3u);
    }
    mlp_set_input(pe, d, val);
  }
}

// Layer 0's bias plus its positional terms, block (og, pg) (mlp.wgsl mlp_rows), after
// encode_positional and a barrier.
fn layer0_positional(og: u32, pg: u32, nf: u32, no4: u32) -> mat4x4f {
  let b = mlp_weights[P.in_dim * no4 + og];
  return mlp_rows(mat4x4f(b, b, b, b), 0u, 0u, nf, no4, og, pg);
}

// The deformed vertex from the MLP's 4 outputs o (model.h deform_vertex).
fn write_deformed(i: u32, o: vec4f) {
  if (i >= P.n_active) { return; }
  let v = active_ids[i];
  let p = P.box_min.xyz + P.box_size.xyz * lattice_u(v);
  let t = tanh(clamp(o, vec4f(-15.0), vec4f(15.0)));
  let ds = select(t.w * P.sdf_delta_scale, 0.0, P.freeze != 0u);
  verts[v] = vec4f(p + t.xyz * elastic[v], sdf[v] + ds);
}

// At load: the positional part of layer 0 for every active vertex.
@compute @workgroup_size(128)
fn mlp_pre(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
           @builtin(local_invocation_index) lid: u32) {
  let first = (wid.x + wid.y * nwg.x) * MLP_POINTS;
  let nf = 3u + 6u * P.n_freq;
  let no4 = layer0_groups();
  encode_positional(first, lid, nf);
  workgroupBarrier();
  let og = lid % 16u;
  let pg = lid / 16u;
  if (og >= no4) { return; }
  let a = layer0_positional(og, pg, nf, no4);
  for (var j = 0u; j < 4u; j++) {
    let i = first + 4u * pg + j;
    if (i < P.n_active) { pre[i * no4 + og] = a[j]; }
  }
}

@compute @workgroup_size(128)
fn mlp_main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
            @builtin(local_invocation_index) lid: u32) {
  let first = (wid.x + wid.y * nwg.x) * MLP_POINTS;
  let nf = 3u + 6u * P.n_freq;
  let no4 = layer0_groups();
  let og = lid % 16u;
  let pg = lid / 16u;
  let busy = og < no4;
  var a = mat4x4f();
  if (P.cached != 0u) {
    if (busy) {
      for (var j = 0u; j < 4u; j++) { a[j] = pre[min(first + 4u * pg + j, P.n_active - 1u) * no4 + og]; }
    }
  } else {
    encode_positional(first, lid, nf);
    workgroupBarrier();
    if (busy) { a = layer0_positional(og, pg, nf, no4); }
    workgroupBarrier();             // every read of the encoded inputs is done
  }
  if (busy) {
    // The condition's terms: the same inputs for every vertex of the frame.
    for (var i = nf; i < P.in_dim; i++) {
      let w = mlp_weights[i * no4 + og];
      let c = cond[i - nf];
      a[0] += w * c;
      a[1] += w * c;
      a[2] += w * c;
      a[3] += w * c;
    }
  }
  if (P.hidden == 0u) {
    // Layer 0 is the output layer: block og = 0 holds the 4 outputs of vertices 4pg..4pg+3.
    if (og == 0u) {
      for (var j = 0u; j < 4u; j++) { write_deformed(first + 4u * pg + j, a[j]); }
    }
    return;
  }
  if (busy) { mlp_store(og, pg, activate_block(P.hact, a)); }
  workgroupBarrier();
  let base = mlp_layers(lid, (P.in_dim + 1u) * no4, P.width, P.width, P.hidden - 1u, P.hact);
  if (lid < MLP_POINTS) { write_deformed(first + lid, mlp_out(lid, base, P.width, 0u)); }
}
