// Stage 5: texture of every covered pixel (model.h TextureConfig): the multiresolution hash grid
// of the canonical position, then the MLP of [features, condition] with a sigmoid, into RGB.
// Hash indices use u32 multiplies that wrap, exactly as the C++ does.
struct TexParams {
  box_min: vec4f,
  box_size: vec4f,
  width: u32, height: u32, levels: u32, features: u32,
  log2_table: u32, cond_dim: u32, in_dim: u32, mlp_width: u32,
  hidden: u32, hact: u32, oact: u32, _p: u32,
  level: array<vec4u, 24>,  // res, dense
}
@group(0) @binding(0) var<uniform> P: TexParams;
@group(0) @binding(1) var<storage, read> mlp_weights: array<f32>;
@group(0) @binding(2) var<storage, read> tables: array<f32>;
@group(0) @binding(3) var<storage, read> cond: array<f32>;
@group(0) @binding(4) var canon_tex: texture_2d<f32>;
@group(0) @binding(5) var id_tex: texture_2d<u32>;
@group(0) @binding(6) var<storage, read_write> color: array<vec4f>;  // rgb, coverage

fn grid_index(res: u32, dense: u32, mask: u32, q: vec3u) -> u32 {
  if (dense != 0u) {
    let n = res + 1u;
    return q.x + n * (q.y + n * q.z);
  }
  return ((q.x * 1u) ^ (q.y * 2654435761u) ^ (q.z * 805459861u)) & mask;
}

@compute @workgroup_size(8, 8)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  if (gid.x >= P.width || gid.y >= P.height) { return; }
  let pix = gid.y * P.width + gid.x;
  let id = textureLoad(id_tex, gid.xy, 0).x;
  if (id == 0u) {
    color[pix] = vec4f(0.0);
    return;
  }
  let u = (textureLoad(canon_tex, gid.xy, 0).xyz - P.box_min.xyz) / P.box_size.xyz;
  let T = 1u << P.log2_table;
  let F = P.features;
  for (var l = 0u; l < P.levels; l++) {
    let res = P.level[l].x;
    let dense = P.level[l].y;
    // hashgrid_cell: clamp u, floor, keep the cell inside the lattice.
    let pos = clamp(u, vec3f(0.0), vec3f(1.0)) * f32(res);
    let fl = min(floor(pos), vec3f(f32(res) - 1.0));
    let i0 = vec3u(fl);
    let fr = pos - fl;
    for (var f = 0u; f < F; f++) { h[l * F + f] = 0.0; }
    for (var corner = 0u; corner < 8u; corner++) {
      let bit = vec3u(corner & 1u, (corner >> 1u) & 1u, (corner >> 2u) & 1u);
      let idx = grid_index(res, dense, T - 1u, i0 + bit);
      let wv = select(1.0 - fr, fr, bit == vec3u(1u));
      let w = wv.x * wv.y * wv.z;
      let e = (l * T + idx) * F;
      for (var f = 0u; f < F; f++) { h[l * F + f] += w * tables[e + f]; }
    }
  }
  let nf = P.levels * F;
  for (var i = 0u; i < P.cond_dim; i++) { h[nf + i] = cond[i]; }
  let o = mlp(P.in_dim, P.mlp_width, P.hidden, 3u, P.hact, P.oact);
  color[pix] = vec4f(h[o], h[o + 1u], h[o + 2u], 1.0);
}
