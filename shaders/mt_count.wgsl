// Stage 3a: triangles per tetrahedron, written twice: counts (kept) and offsets (scanned in place
// by scan.wgsl into each tetrahedron's first output triangle). A prefix sum rather than an atomic
// append keeps the triangle order, and so every image, identical from run to run.
@group(0) @binding(0) var<uniform> G: GridParams;
@group(0) @binding(1) var<storage, read> verts: array<vec4f>;
@group(0) @binding(2) var<storage, read_write> offsets: array<u32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let t = gid.x + gid.y * nwg.x * 256u;
  if (t >= G.n_tet) { return; }
  let v = tet_vertices(G.res, t);
  var mask = 0u;
  for (var i = 0u; i < 4u; i++) { mask |= select(0u, 1u << i, verts[v[i]].w < 0.0); }
  offsets[t] = num_tris(mask);
}
