// Stage 7: composite the antialiased head over the background plate, into the canvas (or an
// offscreen target for readback). A full-screen triangle; one fragment per output pixel.
// Colours are premultiplied (render_ref.h step 8): out = rgb + (1 - alpha) * background.
struct CompParams {
  width: u32, height: u32, bg_width: u32, bg_height: u32,
}
@group(0) @binding(0) var<uniform> P: CompParams;
@group(0) @binding(1) var<storage, read> color: array<vec4f>;
@group(0) @binding(2) var bg: texture_2d<f32>;

@vertex
fn vs(@builtin(vertex_index) i: u32) -> @builtin(position) vec4f {
  let xy = vec2f(f32((i << 1u) & 2u), f32(i & 2u));
  return vec4f(xy * 2.0 - 1.0, 0.0, 1.0);
}

@fragment
fn fs(@builtin(position) frag: vec4f) -> @location(0) vec4f {
  let p = vec2u(frag.xy);
  let c = color[p.y * P.width + p.x];
  // The plate is stored at the avatar's frame size; nearest sample when the canvas differs.
  let q = min(vec2u(vec2f(p) * vec2f(f32(P.bg_width), f32(P.bg_height)) / vec2f(f32(P.width), f32(P.height))),
              vec2u(P.bg_width - 1u, P.bg_height - 1u));
  let b = textureLoad(bg, q, 0);
  return vec4f(c.rgb + (1.0 - c.a) * b.rgb, 1.0);
}
