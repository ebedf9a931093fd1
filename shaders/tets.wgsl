// Shared by mt_count.wgsl and mt_emit.wgsl (prepended by the renderer): the procedural grid and
// the marching-tets tables, mirrored verbatim from native/core/grid.h and marching_tets.h.
// Tet index = cube * 6 + t, cube = i + R (j + R k); corner c: bit 0 = +x, bit 1 = +y, bit 2 = +z.
// The 6 tets share the cube's 0-7 diagonal and are listed positively oriented.
const TET_CORNERS = array<vec4u, 6>(
  vec4u(0u, 1u, 3u, 7u), vec4u(0u, 1u, 7u, 5u), vec4u(0u, 2u, 7u, 3u),
  vec4u(0u, 2u, 6u, 7u), vec4u(0u, 4u, 5u, 7u), vec4u(0u, 4u, 7u, 6u));

// Tet-local edges, then per case (bit k = vertex k inside, sdf < 0) the triangle count and the
// tet-local edges of up to two triangles, wound counter-clockwise seen from outside.
const MT_EDGES = array<vec2u, 6>(vec2u(0u, 1u), vec2u(0u, 2u), vec2u(0u, 3u), vec2u(1u, 2u), vec2u(1u, 3u), vec2u(2u, 3u));
const MT_NUM_TRIS = array<u32, 16>(0u, 1u, 1u, 2u, 1u, 2u, 2u, 1u, 1u, 2u, 2u, 1u, 2u, 1u, 1u, 0u);
const MT_TRI_EDGES = array<array<u32, 6>, 16>(
  array<u32, 6>(0u, 0u, 0u, 0u, 0u, 0u), array<u32, 6>(0u, 1u, 2u, 0u, 0u, 0u),
  array<u32, 6>(0u, 4u, 3u, 0u, 0u, 0u), array<u32, 6>(3u, 1u, 2u, 3u, 2u, 4u),
  array<u32, 6>(1u, 3u, 5u, 0u, 0u, 0u), array<u32, 6>(2u, 0u, 3u, 2u, 3u, 5u),
  array<u32, 6>(1u, 0u, 4u, 1u, 4u, 5u), array<u32, 6>(2u, 4u, 5u, 0u, 0u, 0u),
  array<u32, 6>(2u, 5u, 4u, 0u, 0u, 0u), array<u32, 6>(4u, 0u, 1u, 4u, 1u, 5u),
  array<u32, 6>(3u, 0u, 2u, 3u, 2u, 5u), array<u32, 6>(1u, 5u, 3u, 0u, 0u, 0u),
  array<u32, 6>(2u, 1u, 3u, 2u, 3u, 4u), array<u32, 6>(0u, 3u, 4u, 0u, 0u, 0u),
  array<u32, 6>(0u, 2u, 1u, 0u, 0u, 0u), array<u32, 6>(0u, 0u, 0u, 0u, 0u, 0u));

// MT_NUM_TRIS without a table lookup (runtime-indexed const arrays are copied per access by some
// compilers): 1 or 3 inside corners give one triangle, 2 give two.
fn num_tris(mask: u32) -> u32 {
  let c = countOneBits(mask);
  return select(select(0u, 1u, c == 1u || c == 3u), 2u, c == 2u);
}

// Marching visits n_slot tetrahedra: slot s is tetrahedron 6 cubes[s / 6] + s % 6, over the
// candidate cubes (model.ts candidateCubes), in increasing order.
struct GridParams {
  res: u32, n_tet: u32, max_tris: u32, n_slot: u32,
}

fn slot_tet(cube: u32, s: u32) -> u32 {
  return cube * 6u + s % 6u;
}

fn tet_vertices(res: u32, tet: u32) -> vec4u {
  let cube = tet / 6u;
  let c = vec3u(cube % res, (cube / res) % res, cube / (res * res));
  let n = res + 1u;
  let k = TET_CORNERS[tet % 6u];
  var out: vec4u;
  for (var i = 0u; i < 4u; i++) {
    let b = k[i];
    let q = c + vec3u(b & 1u, (b >> 1u) & 1u, (b >> 2u) & 1u);
    out[i] = q.x + n * (q.y + n * q.z);
  }
  return out;
}
