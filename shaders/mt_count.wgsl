// Stage 3a: triangles per tetrahedron slot (tets.wgsl: the candidate cubes' tetrahedra), scanned
// within blocks of 256 slots: offsets[s] gets the triangles of the slots before s in its block,
// sums[block] the block's total. scan.wgsl
// then scans the block totals level by level, and mt_emit.wgsl adds each block's scanned total
// (so the slot array is read and written once here, not again by a separate block scan and
// add). A prefix sum rather than an atomic append keeps the triangle order, and so every image,
// identical from run to run.
@group(0) @binding(0) var<uniform> G: GridParams;
@group(0) @binding(1) var<storage, read> verts: array<vec4f>;
@group(0) @binding(2) var<storage, read_write> offsets: array<u32>;
@group(0) @binding(3) var<storage, read_write> sums: array<u32>;
@group(0) @binding(4) var<storage, read> cubes: array<u32>;

var<workgroup> tmp: array<u32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) li: u32) {
  let b = wid.x + wid.y * nwg.x;
  let s = b * 256u + li;
  var x = 0u;
  if (s < G.n_slot) {
    let v = tet_vertices(G.res, slot_tet(cubes[s / 6u], s));
    var mask = 0u;
    for (var i = 0u; i < 4u; i++) { mask |= select(0u, 1u << i, verts[v[i]].w < 0.0); }
    x = num_tris(mask);
  }
  tmp[li] = x;
  workgroupBarrier();
  // Hillis-Steele inclusive scan: 8 steps for 256 lanes (as scan.wgsl scan_block).
  for (var d = 1u; d < 256u; d <<= 1u) {
    let y = select(0u, tmp[li - d], li >= d);
    workgroupBarrier();
    tmp[li] += y;
    workgroupBarrier();
  }
  if (s < G.n_slot) { offsets[s] = tmp[li] - x; }
  // Guarded: a 2-D dispatch can have a few blocks past the end, whose write robustness would clamp onto the last total.
  if (li == 255u && b * 256u < G.n_slot) { sums[b] = tmp[255]; }
}
