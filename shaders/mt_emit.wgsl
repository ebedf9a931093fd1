// Stage 3c: marching tetrahedra (native/core/marching_tets.h). Each tetrahedron slot writes its
// 0-2 triangles at its scanned offset, in case-table order, so triangle ids match the CPU
// reference. The offset is mt_count's in-block offset plus the block's scanned total
// (block_sums); a tetrahedron with triangles writes it to tet_offsets[t] (indexed by tetrahedron,
// not slot), the only entries antialias.wgsl reads.
// A surface vertex on edge (a, b), a < b, is p = (p_a s_b - p_b s_a) / (s_b - s_a) for both the
// deformed and the canonical positions: the same formula, operand order included, as the C++.
// Output per vertex, 8 u32: deformed xyz, canonical xyz, triangle id, tetrahedron id (which
// antialias.wgsl uses to find the triangle's neighbours on the grid).
struct EmitParams {
  box_min: vec4f,
  box_size: vec4f,
}
@group(0) @binding(0) var<uniform> G: GridParams;
@group(0) @binding(1) var<storage, read> verts: array<vec4f>;
@group(0) @binding(2) var<storage, read> offsets: array<u32>;         // per slot (mt_count)
@group(0) @binding(3) var<storage, read_write> out: array<u32>;
@group(0) @binding(4) var<uniform> E: EmitParams;
@group(0) @binding(5) var<storage, read_write> draw_args: array<u32>;  // [0]: 3 x triangles (drawIndirect layout), [4..6]: dispatchIndirect
@group(0) @binding(6) var<storage, read> total: array<u32>;             // top-level scan total
@group(0) @binding(7) var<storage, read> block_sums: array<u32>;        // per block of 256 slots, scanned
@group(0) @binding(8) var<storage, read_write> tet_offsets: array<u32>; // per tetrahedron
@group(0) @binding(9) var<storage, read> cubes: array<u32>;

// grid.h grid_vertex_position: min + extent * (i / R).
fn canonical(v: u32) -> vec3f {
  let n = G.res + 1u;
  let u = vec3f(f32(v % n), f32((v / n) % n), f32(v / (n * n))) / f32(G.res);
  return E.box_min.xyz + E.box_size.xyz * u;
}

fn write_vertex(slot: u32, a0: u32, b0: u32, tri: u32, tet: u32) {
  let a = min(a0, b0);
  let b = max(a0, b0);
  let va = verts[a];
  let vb = verts[b];
  let den = vb.w - va.w;
  let p = (va.xyz * vb.w - vb.xyz * va.w) / den;
  let c = (canonical(a) * vb.w - canonical(b) * va.w) / den;
  let o = slot * 8u;
  out[o] = bitcast<u32>(p.x); out[o + 1u] = bitcast<u32>(p.y); out[o + 2u] = bitcast<u32>(p.z);
  out[o + 3u] = bitcast<u32>(c.x); out[o + 4u] = bitcast<u32>(c.y); out[o + 5u] = bitcast<u32>(c.z);
  out[o + 6u] = tri; out[o + 7u] = tet;
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let s = gid.x + gid.y * nwg.x * 256u;
  if (s >= G.n_slot) { return; }
  let t = slot_tet(cubes[s / 6u], s);
  let v = tet_vertices(G.res, t);
  var mask = 0u;
  for (var i = 0u; i < 4u; i++) { mask |= select(0u, 1u << i, verts[v[i]].w < 0.0); }
  let nt = num_tris(mask);
  if (nt == 0u) { return; }
  // One block only (n_slot <= 256): block_sums holds the total, not a scanned offset.
  let base = offsets[s] + select(block_sums[s / 256u], 0u, G.n_slot <= 256u);
  tet_offsets[t] = base;
  let te = MT_TRI_EDGES[mask];
  for (var k = 0u; k < nt; k++) {
    let tri = base + k;
    if (tri >= G.max_tris) { return; }  // capacity reached: drop, never write out of bounds
    for (var j = 0u; j < 3u; j++) {
      let e = MT_EDGES[te[3u * k + j]];
      write_vertex(tri * 3u + j, v[e.x], v[e.y], tri, t);
    }
  }
}

// One invocation after the scan: the draw covers exactly the emitted triangles, and the
// per-triangle antialiasing pass (64 per workgroup, rows of at most 65535 workgroups) too.
@compute @workgroup_size(1)
fn finish() {
  let n = min(total[0], G.max_tris);
  draw_args[0] = n * 3u;
  draw_args[1] = 1u;
  draw_args[2] = 0u;
  draw_args[3] = 0u;
  let groups = (n + 63u) / 64u;
  let rows = max(1u, (groups + 65534u) / 65535u);
  draw_args[4] = (groups + rows - 1u) / rows;
  draw_args[5] = rows;
  draw_args[6] = 1u;
  draw_args[7] = 0u;
}
