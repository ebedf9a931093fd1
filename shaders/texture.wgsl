// Stage 5: texture of every covered pixel (model.h TextureConfig): the multiresolution hash grid
// of the canonical position, then the MLP of [features, condition] with a sigmoid, into RGB.
// Hash indices use u32 multiplies that wrap, exactly as the C++ does.
//
// One workgroup per tile of 8 x 4 pixels (mlp.wgsl's 32-point tile). A tile with no covered pixel
// writes zeros and leaves at once (most of the frame around a head); otherwise the tile's points
// are encoded into workgroup memory, one (pixel, level) per invocation so that the 32 invocations
// of a warp read the same level at 32 neighbouring pixels, then mlp.wgsl runs the MLP on the tile.
// Uncovered pixels of a partly covered tile go through the MLP too (their result is dropped):
// cheaper than compacting the covered pixels into a list.
struct TexParams {
  box_min: vec4f,
  box_size: vec4f,
  width: u32, height: u32, levels: u32, features: u32,
  log2_table: u32, cond_dim: u32, in_dim: u32, mlp_width: u32,
  hidden: u32, hact: u32, oact: u32, _p: u32,
  level: array<vec4u, 24>,  // res, dense
}
@group(0) @binding(0) var<uniform> P: TexParams;
@group(0) @binding(1) var<storage, read> mlp_weights: array<vec4f>;  // packed by renderer.ts packMlp
@group(0) @binding(2) var<storage, read> tables: array<f32>;
@group(0) @binding(3) var<storage, read> cond: array<f32>;
@group(0) @binding(4) var canon_tex: texture_2d<f32>;
@group(0) @binding(5) var id_tex: texture_2d<u32>;
@group(0) @binding(6) var<storage, read_write> color: array<vec4f>;  // rgb, coverage

var<workgroup> tile_u: array<vec3f, 32>;  // normalised canonical position per tile pixel
var<workgroup> tile_covered: u32;

fn grid_index(res: u32, dense: u32, mask: u32, q: vec3u) -> u32 {
  if (dense != 0u) {
    let n = res + 1u;
    return q.x + n * (q.y + n * q.z);
  }
  return ((q.x * 1u) ^ (q.y * 2654435761u) ^ (q.z * 805459861u)) & mask;
}

// Level l's F features of the point at u, into the MLP inputs l * F.. of point p.
fn encode_level(p: u32, l: u32, u: vec3f) {
  let T = 1u << P.log2_table;
  let F = P.features;
  let res = P.level[l].x;
  let dense = P.level[l].y;
  // hashgrid_cell: clamp u, floor, keep the cell inside the lattice.
  let pos = clamp(u, vec3f(0.0), vec3f(1.0)) * f32(res);
  let fl = min(floor(pos), vec3f(f32(res) - 1.0));
  let i0 = vec3u(fl);
  let fr = pos - fl;
  var acc = vec4f(0.0);
  for (var corner = 0u; corner < 8u; corner++) {
    let bit = vec3u(corner & 1u, (corner >> 1u) & 1u, (corner >> 2u) & 1u);
    let idx = grid_index(res, dense, T - 1u, i0 + bit);
    let wv = select(1.0 - fr, fr, bit == vec3u(1u));
    let w = wv.x * wv.y * wv.z;
    let e = (l * T + idx) * F;
    // Constant components (F <= 4): a runtime index into a private vector can cost a spill.
    acc.x += w * tables[e];
    if (F > 1u) { acc.y += w * tables[e + 1u]; }
    if (F > 2u) { acc.z += w * tables[e + 2u]; }
    if (F > 3u) { acc.w += w * tables[e + 3u]; }
  }
  mlp_set_input(p, l * F, acc.x);
  if (F > 1u) { mlp_set_input(p, l * F + 1u, acc.y); }
  if (F > 2u) { mlp_set_input(p, l * F + 2u, acc.z); }
  if (F > 3u) { mlp_set_input(p, l * F + 3u, acc.w); }
}

@compute @workgroup_size(128)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let p = lid % MLP_POINTS;
  let q = wid.xy * vec2u(8u, 4u) + vec2u(p % 8u, p / 8u);
  let inside = q.x < P.width && q.y < P.height;
  let pix = q.y * P.width + q.x;
  if (lid < MLP_POINTS && inside) {
    let id = textureLoad(id_tex, q, 0).x;
    tile_u[p] = (textureLoad(canon_tex, q, 0).xyz - P.box_min.xyz) / P.box_size.xyz;
    if (id != 0u) { tile_covered = 1u; }
    else { color[pix] = vec4f(0.0); }
  }
  if (workgroupUniformLoad(&tile_covered) == 0u) { return; }
  // Inputs: the levels' features, then the condition; element e = (slot, pixel), pixel fastest.
  let nf = P.levels * P.features;
  for (var e = lid; e < MLP_POINTS * (P.levels + P.cond_dim); e += MLP_THREADS) {
    let s = e / MLP_POINTS;
    let pe = e % MLP_POINTS;
    if (s < P.levels) { encode_level(pe, s, tile_u[pe]); }
    else { mlp_set_input(pe, nf + s - P.levels, cond[s - P.levels]); }
  }
  workgroupBarrier();
  let base = mlp_hidden(lid, P.in_dim, P.mlp_width, P.hidden, P.hact);
  if (lid < MLP_POINTS && inside) {
    let ni = select(P.mlp_width, P.in_dim, P.hidden == 0u);
    let o = mlp_out(p, base, ni, P.oact);
    // Covered pixels only: the others were cleared above.
    if (textureLoad(id_tex, q, 0).x != 0u) { color[pix] = vec4f(o.xyz, 1.0); }
  }
}
