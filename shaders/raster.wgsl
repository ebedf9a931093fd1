// Stage 4: rasterisation to the G-buffer: canonical position (for the texture) and triangle id + 1
// (0 = background). The camera is model.h project_to_clip: pose, then MediaPipe's perspective
// projection in OpenGL clip space; WebGPU wants depth in [0, w], hence (z + w) / 2.
struct Camera {
  pose: mat4x4f,
  f: f32, aspect: f32, znear: f32, zfar: f32,
}
@group(0) @binding(0) var<uniform> C: Camera;

struct VsIn {
  @location(0) pos: vec3f,
  @location(1) canon: vec3f,
  @location(2) tri: u32,
}
struct VsOut {
  @builtin(position) clip: vec4f,
  @location(0) canon: vec3f,
  @location(1) @interpolate(flat) tri: u32,
}

@vertex
fn vs(v: VsIn) -> VsOut {
  let e = (C.pose * vec4f(v.pos, 1.0)).xyz;
  let z = (C.zfar + C.znear) / (C.znear - C.zfar) * e.z + 2.0 * C.zfar * C.znear / (C.znear - C.zfar);
  let w = -e.z;
  var o: VsOut;
  o.clip = vec4f(C.f / C.aspect * e.x, C.f * e.y, 0.5 * (z + w), w);
  o.canon = v.canon;
  o.tri = v.tri;
  return o;
}

struct FsOut {
  @location(0) canon: vec4f,
  @location(1) id: u32,
}

@fragment
fn fs(i: VsOut) -> FsOut {
  return FsOut(vec4f(i.canon, 1.0), i.tri + 1u);
}
