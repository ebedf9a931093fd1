// Shared by deform.wgsl and texture.wgsl (prepended by the renderer): model.h activate() and
// mlp_forward() for a tile of MLP_POINTS points per workgroup of MLP_THREADS invocations, over the
// storage array `mlp_weights` (vec4f) declared by the including stage.
//
// Why tiles and not one point per invocation: a per-invocation activation array indexed by loop
// counters that are only known at run time cannot live in registers, so GPU compilers put it in
// per-thread local memory (every multiply-add became a local load), and every invocation read
// every weight for itself. Here the activations of the tile live in workgroup memory as
// act[input * 8 + g] = the input's value for points 4g..4g+3, and each invocation computes a
// block of 4 outputs x 4 points of a layer: per input one vec4 load of 4 points' activations
// (shared by the 16 invocations of a row), one vec4 load of 4 weights (16 consecutive vec4s across
// a row: coalesced and cached), and 16 multiply-adds into registers.
//
// Same math as the C++: every output starts from its bias and adds w[i] * x[i] for i = 0..n-1 in
// order. Weights come repacked by the renderer (renderer.ts packMlp): per layer, n_in rows of
// ceil(n_out / 4) vec4s (row i, vec4 g: W[4g..4g+3][i], zero past n_out), then the biases as
// ceil(n_out / 4) vec4s. Widths and inputs are at most 64 (LIMITS.maxMlpWidth), outputs at most 4.
const MLP_POINTS: u32 = 32u;
const MLP_THREADS: u32 = 128u;
const MLP_GROUPS: u32 = 8u;                 // MLP_POINTS / 4
var<workgroup> act: array<vec4f, 512>;     // 64 inputs x 8 groups of 4 points: 8 KiB

fn activate4(a: u32, x: vec4f) -> vec4f {
  switch a {
    case 1u: { return max(x, vec4f(0.0)); }
    case 2u: { return select(0.01 * x, x, x > vec4f(0.0)); }
    case 3u: { return 1.0 / (1.0 + exp(-x)); }
    // Clamped: some backends build tanh from exp(2x), which overflows to NaN for large x.
    case 4u: { return tanh(clamp(x, vec4f(-15.0), vec4f(15.0))); }
    default: { return x; }
  }
}

// Input d (< 64) of point p (< MLP_POINTS).
fn mlp_set_input(p: u32, d: u32, x: f32) {
  act[d * MLP_GROUPS + p / 4u][p % 4u] = x;
}

// Block (og, pg): outputs 4og..4og+3 of points 4pg..4pg+3; column j of the result holds the 4
// outputs of point 4pg + j. mlp_rows adds rows i0..i1-1 of the layer at `base` (n_out/4 = no4
// vec4s per row) times the inputs in `act`, in order, to `a`.
fn mlp_rows(a: mat4x4f, base: u32, i0: u32, i1: u32, no4: u32, og: u32, pg: u32) -> mat4x4f {
  var a0 = a[0];
  var a1 = a[1];
  var a2 = a[2];
  var a3 = a[3];
  for (var i = i0; i < i1; i++) {
    let w = mlp_weights[base + i * no4 + og];
    let x = act[i * MLP_GROUPS + pg];
    a0 += w * x.x;
    a1 += w * x.y;
    a2 += w * x.z;
    a3 += w * x.w;
  }
  return mat4x4f(a0, a1, a2, a3);
}

// Writes a block's activated outputs into `act` as the next layer's inputs (after a barrier that
// ends every read of this layer's inputs).
fn mlp_store(og: u32, pg: u32, a: mat4x4f) {
  let r = 4u * og * MLP_GROUPS + pg;
  act[r] = vec4f(a[0].x, a[1].x, a[2].x, a[3].x);
  act[r + MLP_GROUPS] = vec4f(a[0].y, a[1].y, a[2].y, a[3].y);
  act[r + 2u * MLP_GROUPS] = vec4f(a[0].z, a[1].z, a[2].z, a[3].z);
  act[r + 3u * MLP_GROUPS] = vec4f(a[0].w, a[1].w, a[2].w, a[3].w);
}

fn activate_block(h: u32, a: mat4x4f) -> mat4x4f {
  return mat4x4f(activate4(h, a[0]), activate4(h, a[1]), activate4(h, a[2]), activate4(h, a[3]));
}

// `layers` hidden layers of `width` outputs, in place in `act`, the first at vec4 offset `base`
// with `ni` inputs. Every invocation of the workgroup calls it with the same (uniform) arguments,
// after a barrier that publishes the inputs. Returns the vec4 offset of the layer after them.
fn mlp_layers(lid: u32, base0: u32, ni0: u32, width: u32, layers: u32, hact: u32) -> u32 {
  let og = lid % 16u;               // outputs 4og..4og+3
  let pg = lid / 16u;               // points 4pg..4pg+3
  let no4 = (width + 3u) / 4u;
  let busy = og < no4;
  var base = base0;
  var ni = ni0;
  for (var k = 0u; k < layers; k++) {
    var a = mat4x4f();
    if (busy) {
      let b = mlp_weights[base + ni * no4 + og];
      a = activate_block(hact, mlp_rows(mat4x4f(b, b, b, b), base, 0u, ni, no4, og, pg));
    }
    workgroupBarrier();             // every read of this layer's inputs is done
    if (busy) { mlp_store(og, pg, a); }
    workgroupBarrier();
    base += (ni + 1u) * no4;
    ni = width;
  }
  return base;
}

// The hidden layers of an MLP whose inputs are in `act`. Returns the vec4 offset of the output
// layer in mlp_weights; its inputs are then act rows 0..n_in-1, n_in = width (or in_dim when
// hidden = 0).
fn mlp_hidden(lid: u32, in_dim: u32, width: u32, hidden: u32, hact: u32) -> u32 {
  return mlp_layers(lid, 0u, in_dim, width, hidden, hact);
}

// The output layer (at most 4 outputs, padded to a vec4) of point p, after mlp_hidden.
fn mlp_out(p: u32, base: u32, ni: u32, oact: u32) -> vec4f {
  let g = p / 4u;
  let c = p % 4u;
  var acc = mlp_weights[base + ni];
  for (var i = 0u; i < ni; i++) { acc += mlp_weights[base + i] * act[i * MLP_GROUPS + g][c]; }
  return activate4(oact, acc);
}
