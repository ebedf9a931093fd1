// Stage 1: expression condition (model.h condition_forward). 1D convolutions over a window of
// blendshape frames, LeakyReLU, then a tanh linear layer. The frames live in a GPU ring (live
// driving) or the whole baked track (clip playback); frame k sits in slot k % cap.
// One workgroup: each invocation computes a strided share of a layer's (channel, time) outputs,
// with barriers between layers; the maps live in workgroup memory. Every output sums its terms
// in the same order as the serial loop, so the result does not depend on the workgroup size.
struct CondParams {
  window: u32, num_conv: u32, out_dim: u32, t: u32,  // t: the frame shown
  n: u32, cap: u32, _p0: u32, _p1: u32,             // n: frames in the track so far
  conv: array<vec4<u32>, 4>,                        // in_ch, out_ch, kernel, stride
}
@group(0) @binding(0) var<uniform> P: CondParams;
@group(0) @binding(1) var<storage, read> weights: array<f32>;
@group(0) @binding(2) var<storage, read> frames: array<f32>;
@group(0) @binding(3) var<storage, read_write> cond: array<f32>;

const MAP: u32 = 1664u;  // 52 x 32: the largest [channel][time] map (LIMITS.maxConvMap)
const WG: u32 = 256u;
var<workgroup> maps: array<f32, 3328>;  // two maps, ping-pong between layers

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lid: u32) {
  var len = P.window;
  let half = (P.window - 1u) / 2u;
  // Transpose the window into [channel][time], clamping at both ends of the track.
  for (var e = lid; e < 52u * len; e += WG) {
    let i = e / len;
    let j = e % len;
    let f = clamp(i32(P.t) + i32(j) - i32(half), 0, i32(P.n) - 1);
    maps[e] = frames[(u32(f) % P.cap) * 52u + i];
  }
  workgroupBarrier();
  var p = 0u;
  var cur = 0u;
  var ch = 52u;
  for (var k = 0u; k < P.num_conv; k++) {
    let L = P.conv[k];
    let out_len = (len - L.z) / L.w + 1u;
    let bias = p + L.y * L.x * L.z;
    for (var e = lid; e < L.y * out_len; e += WG) {
      let o = e / out_len;
      let t = e % out_len;
      var acc = weights[bias + o];
      for (var i = 0u; i < L.x; i++) {
        for (var q = 0u; q < L.z; q++) {
          acc += weights[p + (o * L.x + i) * L.z + q] * maps[cur * MAP + i * len + t * L.w + q];
        }
      }
      maps[(cur ^ 1u) * MAP + e] = select(0.01 * acc, acc, acc > 0.0);
    }
    workgroupBarrier();
    p = bias + L.y;
    cur ^= 1u;
    len = out_len;
    ch = L.y;
  }
  let flat = ch * len;
  let bias = p + P.out_dim * flat;
  for (var o = lid; o < P.out_dim; o += WG) {
    var acc = weights[bias + o];
    for (var i = 0u; i < flat; i++) { acc += weights[p + o * flat + i] * maps[cur * MAP + i]; }
    cond[o] = tanh(clamp(acc, -15.0, 15.0));
  }
}
