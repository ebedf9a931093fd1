// Shared by deform.wgsl and texture.wgsl (prepended by the renderer): model.h's activate() and
// mlp_forward() over the storage array `mlp_weights` declared by the including stage.
// Layer k reads h[src..] and writes h[64 - src..]: two halves instead of two arrays, because WGSL
// functions cannot take storage pointers portably.
var<private> h: array<f32, 128>;

fn act(a: u32, x: f32) -> f32 {
  switch a {
    case 1u: { return max(x, 0.0); }
    case 2u: { return select(0.01 * x, x, x > 0.0); }
    case 3u: { return 1.0 / (1.0 + exp(-x)); }
    // Clamped: some backends build tanh from exp(2x), which overflows to NaN for large x.
    case 4u: { return tanh(clamp(x, -15.0, 15.0)); }
    default: { return x; }
  }
}

// Input in h[0..in_dim); returns the offset (0 or 64) of the output in h.
fn mlp(in_dim: u32, width: u32, hidden: u32, out_dim: u32, hact: u32, oact: u32) -> u32 {
  var p = 0u;
  var src = 0u;
  for (var k = 0u; k <= hidden; k++) {
    let ni = select(width, in_dim, k == 0u);
    let no = select(width, out_dim, k == hidden);
    let a = select(hact, oact, k == hidden);
    let dst = 64u - src;
    let bias = p + no * ni;
    for (var o = 0u; o < no; o++) {
      var acc = mlp_weights[bias + o];
      for (var i = 0u; i < ni; i++) { acc += mlp_weights[p + o * ni + i] * h[src + i]; }
      h[dst + o] = act(a, acc);
    }
    p = bias + no;
    src = dst;
  }
  return src;
}
