// Stage 3a: triangles per tetrahedron, scanned within blocks of 256 tetrahedra: offsets[t] gets
// the triangles of the tetrahedra before t in its block, sums[block] the block's total. scan.wgsl
// then scans the block totals level by level, and mt_emit.wgsl adds each block's scanned total
// (so the 6R^3-entry array is read and written once here, not again by a separate block scan and
// add). A prefix sum rather than an atomic append keeps the triangle order, and so every image,
// identical from run to run.
@group(0) @binding(0) var<uniform> G: GridParams;
@group(0) @binding(1) var<storage, read> verts: array<vec4f>;
@group(0) @binding(2) var<storage, read_write> offsets: array<u32>;
@group(0) @binding(3) var<storage, read_write> sums: array<u32>;

var<workgroup> tmp: array<u32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) li: u32) {
  let b = wid.x + wid.y * nwg.x;
  let t = b * 256u + li;
  var x = 0u;
  if (t < G.n_tet) {
    let v = tet_vertices(G.res, t);
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
  if (t < G.n_tet) { offsets[t] = tmp[li] - x; }
  // Guarded: a 2-D dispatch can have a few blocks past the end, whose write robustness would clamp onto the last total.
  if (li == 255u && b * 256u < G.n_tet) { sums[b] = tmp[255]; }
}
