// Stage 1: expression condition (model.h condition_forward). 1D convolutions over a window of
// blendshape frames, LeakyReLU, then a tanh linear layer. The frames live in a GPU ring (live
// driving) or the whole baked track (clip playback); frame k sits in slot k % cap. The encoder is a
// few thousand multiply-adds, so one invocation runs it.
struct CondParams {
  window: u32, num_conv: u32, out_dim: u32, t: u32,  // t: the frame shown
  n: u32, cap: u32, _p0: u32, _p1: u32,             // n: frames in the track so far
  conv: array<vec4<u32>, 4>,                        // in_ch, out_ch, kernel, stride
}
@group(0) @binding(0) var<uniform> P: CondParams;
@group(0) @binding(1) var<storage, read> weights: array<f32>;
@group(0) @binding(2) var<storage, read> frames: array<f32>;
@group(0) @binding(3) var<storage, read_write> scratch: array<f32>;
@group(0) @binding(4) var<storage, read_write> cond: array<f32>;

const MAP: u32 = 1664u;  // 52 x 32: the largest [channel][time] map (LIMITS.maxConvMap)

@compute @workgroup_size(1)
fn main() {
  var len = P.window;
  let half = (P.window - 1u) / 2u;
  // Transpose the window into [channel][time], clamping at both ends of the track.
  for (var j = 0u; j < len; j++) {
    let f = clamp(i32(P.t) + i32(j) - i32(half), 0, i32(P.n) - 1);
    let slot = u32(f) % P.cap;
    for (var i = 0u; i < 52u; i++) { scratch[i * len + j] = frames[slot * 52u + i]; }
  }
  var p = 0u;
  var cur = 0u;
  var ch = 52u;
  for (var k = 0u; k < P.num_conv; k++) {
    let L = P.conv[k];
    let out_len = (len - L.z) / L.w + 1u;
    let bias = p + L.y * L.x * L.z;
    for (var o = 0u; o < L.y; o++) {
      for (var t = 0u; t < out_len; t++) {
        var acc = weights[bias + o];
        for (var i = 0u; i < L.x; i++) {
          for (var q = 0u; q < L.z; q++) {
            acc += weights[p + (o * L.x + i) * L.z + q] * scratch[cur * MAP + i * len + t * L.w + q];
          }
        }
        scratch[(cur ^ 1u) * MAP + o * out_len + t] = select(0.01 * acc, acc, acc > 0.0);
      }
    }
    p = bias + L.y;
    cur ^= 1u;
    len = out_len;
    ch = L.y;
  }
  let flat = ch * len;
  let bias = p + P.out_dim * flat;
  for (var o = 0u; o < P.out_dim; o++) {
    var acc = weights[bias + o];
    for (var i = 0u; i < flat; i++) { acc += weights[p + o * flat + i] * scratch[cur * MAP + i]; }
    cond[o] = tanh(clamp(acc, -15.0, 15.0));
  }
}
