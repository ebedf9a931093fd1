// Stage 3b: exclusive prefix sum, in blocks of 256. scan_block turns each block into its exclusive
// scan and writes the block's total to sums[block]; the renderer applies it level by level to the
// block totals until one block remains, then add_block adds each block's scanned total back.
// The first level (one entry per tetrahedron) is mt_count.wgsl's own block scan, and its add is
// done by mt_emit.wgsl: these passes only see the block totals.
struct ScanParams { n: u32, _p0: u32, _p1: u32, _p2: u32 }
@group(0) @binding(0) var<uniform> S: ScanParams;
@group(0) @binding(1) var<storage, read_write> data: array<u32>;
@group(0) @binding(2) var<storage, read_write> sums: array<u32>;

var<workgroup> tmp: array<u32, 256>;

fn block_index(wid: vec3u, nwg: vec3u) -> u32 { return wid.x + wid.y * nwg.x; }

@compute @workgroup_size(256)
fn scan_block(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
              @builtin(local_invocation_index) li: u32) {
  let b = block_index(wid, nwg);
  let i = b * 256u + li;
  let x = select(0u, data[min(i, S.n - 1u)], i < S.n);
  tmp[li] = x;
  workgroupBarrier();
  // Hillis-Steele inclusive scan: 8 steps for 256 lanes.
  for (var d = 1u; d < 256u; d <<= 1u) {
    let y = select(0u, tmp[li - d], li >= d);
    workgroupBarrier();
    tmp[li] += y;
    workgroupBarrier();
  }
  if (i < S.n) { data[i] = tmp[li] - x; }
  // Guarded: a 2-D dispatch can have a few blocks past the end, whose write robustness would clamp onto the last total.
  if (li == 255u && b * 256u < S.n) { sums[b] = tmp[255]; }
}

@compute @workgroup_size(256)
fn add_block(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
             @builtin(local_invocation_index) li: u32) {
  let b = block_index(wid, nwg);
  let i = b * 256u + li;
  if (i < S.n) { data[i] += sums[b]; }
}
