#include "synthetic_head.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace dyntet {
namespace synth {
namespace {

constexpr float kPi = 3.14159265358979f;

// Feature positions of the analytic head (cm). The face looks down +z, +y up, subject's left at +x.
constexpr float kMouthY = -4.45f;
constexpr float kMouthHalfWidth = 1.4f;   // full slit height over |x| < this
constexpr float kMouthFrontZ = 4.5f;      // slit only on the face, not the back of the head
constexpr float kEyeX = 3.2f, kEyeY = 2.6f, kEyeballZ = 5.5f, kEyeballR = 1.35f;
constexpr float kLidFrontZ = 5.5f;

// Network gains: condition c = tanh(score), so c(1) = 0.76.
constexpr float kJawGain = 2.0f;    // o[1] = -kJawGain c_jaw: tanh(-1.52) = -0.91 of the elastic scale
constexpr float kJawMax = 1.8f;     // elastic scale of the chin (cm)
constexpr float kSlitGain = 1.1f;   // slit half-height per unit of c_jaw (cm)
constexpr float kSlitOut = 3.0f;    // o[3] per cm of slit
constexpr float kLidGain = 2.0f;
constexpr float kLidOut = 1.5f;
constexpr float kSdfDeltaScale = 1.0f;  // cm

float length3(float x, float y, float z) { return std::sqrt(x * x + y * y + z * z); }

float ellipsoid(float x, float y, float z, float rx, float ry, float rz) {
  const float k0 = length3(x / rx, y / ry, z / rz);
  const float k1 = length3(x / (rx * rx), y / (ry * ry), z / (rz * rz));
  return k1 > 0.f ? k0 * (k0 - 1.f) / k1 : -std::min(rx, std::min(ry, rz));
}

float smin(float a, float b, float k) {
  const float h = std::max(k - std::fabs(a - b), 0.f) / k;
  return std::min(a, b) - h * h * k * 0.25f;
}

float smax(float a, float b, float k) { return -smin(-a, -b, k); }

float capsule(const float p[3], const float a[3], const float b[3], float r) {
  float pa[3], ba[3];
  for (int i = 0; i < 3; ++i) pa[i] = p[i] - a[i], ba[i] = b[i] - a[i];
  const float t = std::clamp((pa[0] * ba[0] + pa[1] * ba[1] + pa[2] * ba[2]) / (ba[0] * ba[0] + ba[1] * ba[1] + ba[2] * ba[2]), 0.f, 1.f);
  return length3(pa[0] - t * ba[0], pa[1] - t * ba[1], pa[2] - t * ba[2]) - r;
}

float ramp(float v) { return std::clamp(v, 0.f, 1.f); }

float smooth(float v) {
  v = ramp(v);
  return v * v * (3.f - 2.f * v);
}

float mixf(float a, float b, float t) { return a + (b - a) * t; }

void mix3(float* c, const float* d, float t) {
  for (int i = 0; i < 3; ++i) c[i] = mixf(c[i], d[i], t);
}

// Deterministic integer hash (splitmix64 finaliser): fixture bytes never depend on a library RNG.
uint64_t hash64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

float hash_unit(uint64_t x) { return (float)(hash64(x) >> 40) / (float)(1ull << 24) * 2.f - 1.f; }

float logit(float c) {
  c = std::clamp(c, 0.02f, 0.98f);
  return std::log(c / (1.f - c));
}

float eyeball_dist(const float p[3], float side) {
  return length3(p[0] - side * kEyeX, p[1] - kEyeY, p[2] - kEyeballZ) - kEyeballR;
}

}  // namespace

float head_sdf(const float p[3]) {
  const float x = p[0], y = p[1], z = p[2];
  float d = ellipsoid(x, y - 1.5f, z + 1.f, 7.6f, 9.5f, 9.f);             // cranium
  d = smin(d, ellipsoid(x, y + 4.8f, z - 1.2f, 5.4f, 5.4f, 5.6f), 2.f);    // jaw and chin
  const float na[3] = {0.f, 1.2f, 6.9f}, nb[3] = {0.f, -1.6f, 8.4f};
  d = smin(d, capsule(p, na, nb, 0.85f), 1.f);                              // nose
  d = smin(d, ellipsoid(x, y - kMouthY, z - 6.2f, 2.5f, 0.85f, 0.9f), 0.6f);  // lips
  const float neck = std::max(std::sqrt(x * x + (z + 1.5f) * (z + 1.5f)) - 4.6f, y + 3.f);
  d = smin(d, neck, 2.f);
  d = std::max(d, -11.9f - y);  // flat cut under the neck, inside the box
  for (float side : {-1.f, 1.f}) {
    d = smax(d, -ellipsoid(x - side * kEyeX, y - kEyeY, z - 7.2f, 1.7f, 1.1f, 1.3f), 0.5f);  // socket
    d = std::min(d, eyeball_dist(p, side));
  }
  return d;
}

void head_colour(const float p[3], float rgb[3]) {
  const float x = p[0], y = p[1], z = p[2];
  const float skin[3] = {0.86f, 0.66f, 0.54f};
  for (int i = 0; i < 3; ++i) rgb[i] = skin[i];
  // Fine skin shading so that texture lookups at the wrong place show.
  const float freckle = 0.04f * std::sin(3.1f * x + 1.3f) * std::sin(2.7f * y) * std::sin(2.3f * z + 0.4f);
  for (int i = 0; i < 3; ++i) rgb[i] += freckle;
  // Cheek blush.
  const float blush[3] = {0.88f, 0.52f, 0.48f};
  for (float side : {-1.f, 1.f}) {
    const float r2 = ((x - side * 4.2f) * (x - side * 4.2f) + (y + 1.6f) * (y + 1.6f)) / 3.5f;
    mix3(rgb, blush, 0.55f * std::exp(-r2) * smooth((z - 2.f) / 2.f));
  }
  // Neck a little darker.
  const float neck[3] = {0.76f, 0.57f, 0.47f};
  mix3(rgb, neck, smooth((-8.5f - y) / 1.5f));
  // Hair: crown, back and sides above the ears, with strands.
  const float hairline = 5.6f + 0.06f * x * x - 0.45f * std::max(0.f, -z);
  const float hair_t = smooth((y - hairline) / 0.6f) + smooth((-2.5f - z) / 1.f) * smooth((y + 2.f) / 1.f);
  if (hair_t > 0.f) {
    const float strands = 0.5f + 0.5f * std::sin(5.5f * x + 1.7f * std::sin(1.3f * y) + 0.8f * z);
    const float hair[3] = {0.22f + 0.10f * strands, 0.13f + 0.06f * strands, 0.07f + 0.03f * strands};
    mix3(rgb, hair, std::min(1.f, hair_t));
  }
  // Eyebrows.
  for (float side : {-1.f, 1.f}) {
    const float bx = (x - side * 3.2f) / 1.6f, by = (y - 4.25f - 0.12f * (x - side * 3.2f) * side * -1.f) / 0.32f;
    const float brow[3] = {0.25f, 0.16f, 0.10f};
    if (z > 4.5f) mix3(rgb, brow, smooth(1.5f - (bx * bx + by * by) * 1.5f));
  }
  // Lips and the mouth interior (canonical points inside the head behind the lips: seen only when
  // the slit opens), with a band of upper teeth.
  const float lx = x / 2.4f, ly = (y - kMouthY) / 0.78f;
  if (z > 4.f) {
    const float lips[3] = {0.74f, 0.32f, 0.33f};
    mix3(rgb, lips, smooth((1.f - (lx * lx + ly * ly)) * 3.f));
    const float line[3] = {0.45f, 0.16f, 0.17f};
    mix3(rgb, line, smooth(1.f - std::fabs(y - kMouthY) / 0.18f) * smooth((1.f - std::fabs(lx)) * 4.f));
    const float sdf = head_sdf(p);
    if (sdf < -0.3f && std::fabs(x) < 2.3f && std::fabs(y - kMouthY) < 1.6f) {
      const float inner[3] = {0.22f, 0.05f, 0.06f};
      mix3(rgb, inner, smooth((-sdf - 0.3f) / 0.3f));
      const float teeth[3] = {0.93f, 0.91f, 0.84f};
      if (y > kMouthY && y < kMouthY + 0.75f && sdf > -1.3f && std::fabs(x) < 1.8f) mix3(rgb, teeth, 0.9f);
    }
  }
  // Eyes: eyeball (white, iris, pupil) at the eyeball's surface; the rest of the socket, which
  // only shows when a blink fills it, is the eyelid with a lash line at its lower edge.
  for (float side : {-1.f, 1.f}) {
    const float ex = x - side * kEyeX, ey = y - kEyeY;
    if (z < 4.5f || (ex * ex) / (2.f * 2.f) + (ey * ey) / (1.4f * 1.4f) > 1.f) continue;
    const float db = eyeball_dist(p, side);
    if (db < 0.25f) {
      const float white[3] = {0.94f, 0.93f, 0.90f}, iris[3] = {0.28f, 0.45f, 0.62f}, pupil[3] = {0.04f, 0.04f, 0.05f};
      const float r = std::sqrt(ex * ex + ey * ey);
      float c[3] = {white[0], white[1], white[2]};
      mix3(c, iris, smooth((0.68f - r) / 0.1f));
      mix3(c, pupil, smooth((0.3f - r) / 0.08f));
      mix3(rgb, c, smooth((0.25f - db) / 0.1f));
    } else {
      const float lid[3] = {0.80f, 0.58f, 0.50f}, lash[3] = {0.12f, 0.08f, 0.07f};
      mix3(rgb, lid, 0.8f);
      mix3(rgb, lash, smooth(1.f - std::fabs(ey + 0.15f) / 0.25f));
    }
  }
  for (int i = 0; i < 3; ++i) rgb[i] = std::clamp(rgb[i], 0.f, 1.f);
}

void make_pose(float yaw_deg, float pitch_deg, float tx, float ty, float dist, float out[16]) {
  const float a = yaw_deg * kPi / 180.f, b = pitch_deg * kPi / 180.f;
  const float ca = std::cos(a), sa = std::sin(a), cb = std::cos(b), sb = std::sin(b);
  // R = Ry(yaw) Rx(pitch), rows r, columns c.
  const float R[3][3] = {{ca, sa * sb, sa * cb}, {0.f, cb, -sb}, {-sa, ca * sb, ca * cb}};
  for (int c = 0; c < 3; ++c) {
    for (int r = 0; r < 3; ++r) out[c * 4 + r] = R[r][c];
    out[c * 4 + 3] = 0.f;
  }
  out[12] = tx, out[13] = ty, out[14] = -dist, out[15] = 1.f;
}

namespace {

// Writes one dense layer's weight as y_unit += a * (coordinate in cm): the MLP sees x_n = 2u - 1,
// and cm = centre + half * x_n, so the weight is a * half and the bias gains a * centre.
struct LayerWriter {
  float* W;
  float* b;
  int n_in;
  void set(int o, int i, float w) { W[(size_t)o * n_in + i] = w; }
  void add(int o, int i, float w) { W[(size_t)o * n_in + i] += w; }
};

void build_condition(Avatar& a) {
  ConditionConfig& c = a.condition;  // model.h's defaults: window 9, convs 52->32 (k3 s2), 32->32 (k3), 16 out
  a.condition_params.assign(condition_param_count(c), 0.f);
  float* p = a.condition_params.data();
  const int routes[3] = {kJawOpen, kEyeBlinkLeft, kEyeBlinkRight};
  // conv 0: output step 1 covers frames 2..4, its last tap (q = 2) is the centre frame 4.
  const Conv1dLayer L0 = c.conv[0];
  for (int o = 0; o < 3; ++o) p[((size_t)o * L0.in_ch + routes[o]) * L0.kernel + 2] = 1.f;
  p += (size_t)L0.out_ch * L0.in_ch * L0.kernel + L0.out_ch;
  // conv 1: output step 0 covers conv-0 steps 0..2, its middle tap reads step 1.
  const Conv1dLayer L1 = c.conv[1];
  for (int o = 0; o < 3; ++o) p[((size_t)o * L1.in_ch + o) * L1.kernel + 1] = 1.f;
  p += (size_t)L1.out_ch * L1.in_ch * L1.kernel + L1.out_ch;
  // linear: flat index channel * len + step 0.
  const int len = condition_conv_out_len(c, 1);
  const int flat = condition_flat_size(c);
  for (int o = 0; o < 3; ++o) p[(size_t)o * flat + o * len] = 1.f;
}

void build_deform(Avatar& a) {
  DeformConfig& d = a.deform;
  d.n_freq = 6;
  d.mlp = MlpConfig{freq_encoding_size(6) + a.condition.out_dim, 16, 2, 4, kActReLU, kActNone};
  d.sdf_delta_scale = kSdfDeltaScale;
  d.freeze_sdf_delta = 0;
  a.deform_params.assign(mlp_param_count(d.mlp), 0.f);
  float* p = a.deform_params.data();
  const int nf = freq_encoding_size(d.n_freq);
  const int cj = nf + 0, cl = nf + 1, cr = nf + 2;
  float centre[3], half[3];
  for (int i = 0; i < 3; ++i) centre[i] = 0.5f * (a.box_min[i] + a.box_max[i]), half[i] = 0.5f * (a.box_max[i] - a.box_min[i]);

  // Layer 0: in -> 16.
  LayerWriter L0{p, p + (size_t)16 * d.mlp.in, d.mlp.in};
  // unit o = relu(s * (coord_axis - t)).
  auto coord_unit = [&](int o, int axis, float s, float t) {
    L0.set(o, axis, s * half[axis]);
    L0.b[o] = s * (centre[axis] - t);
  };
  coord_unit(0, 1, 1.f, kMouthY);          // relu(y - ym)
  coord_unit(1, 1, -1.f, kMouthY);         // relu(ym - y)
  coord_unit(2, 0, 1.f, kMouthHalfWidth);  // relu(x - w)
  coord_unit(3, 0, -1.f, -kMouthHalfWidth);  // relu(-x - w)
  coord_unit(4, 2, -1.f, kMouthFrontZ);    // relu(zm - z)
  L0.set(5, cj, 1.f);                      // relu(c_jaw)
  coord_unit(6, 0, 1.f, kEyeX);            // |x - ex|
  coord_unit(7, 0, -1.f, kEyeX);
  coord_unit(8, 0, 1.f, -kEyeX);           // |x + ex|
  coord_unit(9, 0, -1.f, -kEyeX);
  coord_unit(10, 1, 1.f, kEyeY);           // |y - ey|
  coord_unit(11, 1, -1.f, kEyeY);
  coord_unit(12, 2, -1.f, kLidFrontZ);     // relu(ze - z)
  L0.set(13, cl, 1.f);
  L0.set(14, cr, 1.f);
  p = L0.b + 16;

  // Layer 1: 16 -> 16.
  LayerWriter L1{p, p + 16 * 16, 16};
  // mouth slit: relu(kSlitGain c - |y - ym| - 0.7 (|x| - w)+ - 2 (zm - z)+)
  L1.set(0, 5, kSlitGain), L1.set(0, 0, -1.f), L1.set(0, 1, -1.f), L1.set(0, 2, -0.7f), L1.set(0, 3, -0.7f), L1.set(0, 4, -2.f);
  // eyelids (subject's left eye at +x): relu(kLidGain c - |dx| - 1.4 |dy| - 2 (ze - z)+)
  L1.set(1, 13, kLidGain), L1.set(1, 6, -1.f), L1.set(1, 7, -1.f), L1.set(1, 10, -1.4f), L1.set(1, 11, -1.4f), L1.set(1, 12, -2.f);
  L1.set(2, 14, kLidGain), L1.set(2, 8, -1.f), L1.set(2, 9, -1.f), L1.set(2, 10, -1.4f), L1.set(2, 11, -1.4f), L1.set(2, 12, -2.f);
  L1.set(3, 5, 1.f);  // c_jaw passes through
  p = L1.b + 16;

  // Output layer: 16 -> 4 (dx, dy, dz, sdf delta).
  LayerWriter L2{p, p + 4 * 16, 16};
  L2.set(1, 3, -kJawGain);
  L2.set(3, 0, kSlitOut);
  L2.set(3, 1, -kLidOut);
  L2.set(3, 2, -kLidOut);
}

// Texture: levels 16..128 (8 levels, 2 features, 2^16 entries); levels 0-3 are dense (res <= 39).
constexpr int kLevelRG = 3, kLevelB = 2;  // the finer (mean, blue) and coarser (red) colour levels

void build_texture(Avatar& a) {
  TextureConfig& t = a.texture;
  t.grid = HashGridConfig{8, 2, 16, 16, 128};
  const int F = t.grid.features;
  const int n_grid = t.grid.levels * F;
  t.mlp = MlpConfig{n_grid + a.condition.out_dim, 16, 2, 3, kActReLU, kActSigmoid};
  HashLevel levels[32];
  hashgrid_levels(t.grid, levels);
  const uint32_t T = 1u << t.grid.log2_table;
  a.hash_tables.assign(hashgrid_param_count(t.grid), 0.f);
  for (int l = 0; l < t.grid.levels; ++l) {
    float* tab = a.hash_tables.data() + (size_t)l * T * F;
    if (levels[l].dense) {
      if (l != kLevelRG && l != kLevelB) continue;
      const uint32_t n = levels[l].res + 1;
      for (uint32_t z = 0; z < n; ++z)
        for (uint32_t y = 0; y < n; ++y)
          for (uint32_t x = 0; x < n; ++x) {
            const uint32_t ijk[3] = {x, y, z};
            float pc[3], rgb[3];
            for (int i = 0; i < 3; ++i) pc[i] = a.box_min[i] + (a.box_max[i] - a.box_min[i]) * (float)ijk[i] / (float)levels[l].res;
            head_colour(pc, rgb);
            float* e = tab + (size_t)hashgrid_index(levels[l], T - 1, x, y, z) * F;
            // Luminance-like mean logit and blue at the finer level (blue irises are small), red at
            // the coarser one (lips and blush are broad): chroma blurs less visibly than luminance.
            const float lr = logit(rgb[0]), lg = logit(rgb[1]), lb = logit(rgb[2]), mean = (lr + lg + lb) / 3.f;
            if (l == kLevelRG) e[0] = mean, e[1] = lb - mean;
            else e[0] = lr - mean;
          }
    } else {
      // Hashed levels: fine pseudo-random detail (luminance in feature 0, red in feature 1).
      for (uint32_t i = 0; i < T; ++i) {
        tab[(size_t)i * F + 0] = 0.09f * hash_unit(((uint64_t)l << 32) | (i * 2u));
        tab[(size_t)i * F + 1] = 0.05f * hash_unit(((uint64_t)l << 32) | (i * 2u + 1u));
      }
    }
  }
  a.texture_params.assign(mlp_param_count(t.mlp), 0.f);
  float* p = a.texture_params.data();
  const int W = t.mlp.width;
  LayerWriter L0{p, p + (size_t)W * t.mlp.in, t.mlp.in};
  auto pair_in = [&](int unit, int input, float w) { L0.add(unit, input, w), L0.add(unit + 1, input, -w); };
  pair_in(0, kLevelRG * F + 0, 1.f);  // mean logit
  pair_in(2, kLevelB * F + 0, 1.f);   // red - mean
  pair_in(4, kLevelRG * F + 1, 1.f);  // blue - mean
  for (int l = 0; l < t.grid.levels; ++l)
    if (!levels[l].dense) pair_in(6, l * F + 0, 1.f), pair_in(8, l * F + 1, 1.f);
  p = L0.b + W;
  LayerWriter L1{p, p + W * W, W};
  for (int u = 0; u < 10; u += 2) L1.set(u, u, 1.f), L1.set(u, u + 1, -1.f), L1.set(u + 1, u + 1, 1.f), L1.set(u + 1, u, -1.f);
  p = L1.b + W;
  LayerWriter L2{p, p + 3 * W, W};
  // Logits from (mean m, red r, blue b): R = m + r, G = m - r - b, B = m + b; plus detail.
  const float mix[3][3] = {{1.f, 1.f, 0.f}, {1.f, -1.f, -1.f}, {1.f, 0.f, 1.f}};
  for (int c = 0; c < 3; ++c) {
    for (int q = 0; q < 3; ++q) L2.set(c, 2 * q, mix[c][q]), L2.set(c, 2 * q + 1, -mix[c][q]);
    L2.set(c, 6, 1.f), L2.set(c, 7, -1.f);  // luminance detail
  }
  L2.set(0, 8, 1.f), L2.set(0, 9, -1.f);                // red detail
}

void build_background(Avatar& a) {
  a.background.resize((size_t)a.width * a.height * 4);
  for (int y = 0; y < a.height; ++y)
    for (int x = 0; x < a.width; ++x) {
      const float u = (x + 0.5f) / a.width, v = (y + 0.5f) / a.height;
      // A soft studio gradient with a faint tile pattern: plain enough to see the head against,
      // structured enough that a misplaced plate shows.
      const float tile = ((x / 16 + y / 16) & 1) ? 0.02f : 0.f;
      const float r = 0.30f + 0.18f * v + tile, g = 0.36f + 0.16f * v + tile, b = 0.46f + 0.10f * v - 0.08f * u + tile;
      uint8_t* px = &a.background[((size_t)y * a.width + x) * 4];
      px[0] = (uint8_t)std::lround(std::clamp(r, 0.f, 1.f) * 255.f);
      px[1] = (uint8_t)std::lround(std::clamp(g, 0.f, 1.f) * 255.f);
      px[2] = (uint8_t)std::lround(std::clamp(b, 0.f, 1.f) * 255.f);
      px[3] = 255;
    }
}

void build_clip(Avatar& a, const Options& o) {
  Avatar::Clip clip;
  clip.name = "synthetic-talk";
  clip.fps = o.fps;
  const int n = o.clip_frames;
  clip.blendshapes.assign((size_t)n * kNumBlendshapes, 0.f);
  clip.poses.assign((size_t)n * kPoseSize, 0.f);
  auto pulse = [](float t, float centre, float half) { return std::max(0.f, 1.f - std::fabs(t - centre) / half); };
  for (int f = 0; f < n; ++f) {
    const float t = f / o.fps;
    float* bs = &clip.blendshapes[(size_t)f * kNumBlendshapes];
    bs[kJawOpen] = 0.5f - 0.5f * std::cos(2.f * kPi * t / 1.5f);  // opens and closes twice in 3 s
    const float both = std::max(pulse(t, 0.9f, 0.12f), pulse(t, 2.4f, 0.12f));
    bs[kEyeBlinkLeft] = std::max(both, pulse(t, 1.7f, 0.15f));  // a wink of the left eye
    bs[kEyeBlinkRight] = both;
    make_pose(20.f * std::sin(2.f * kPi * t / 3.f), 6.f * std::sin(2.f * kPi * t / 1.5f), 0.f, 0.f, kViewDistance,
              &clip.poses[(size_t)f * kPoseSize]);
  }
  a.clips.push_back(std::move(clip));
}

}  // namespace

Avatar build(const Options& o) {
  Avatar a;
  a.width = o.width, a.height = o.height;
  a.camera.width = o.width, a.camera.height = o.height;
  a.grid_res = o.grid_res;
  const int n = o.grid_res + 1;
  a.sdf.resize((size_t)n * n * n);
  a.elastic.resize(a.sdf.size());
  for (int k = 0; k < n; ++k)
    for (int j = 0; j < n; ++j)
      for (int i = 0; i < n; ++i) {
        const int ijk[3] = {i, j, k};
        float p[3];
        for (int ax = 0; ax < 3; ++ax) p[ax] = a.box_min[ax] + (a.box_max[ax] - a.box_min[ax]) * (float)ijk[ax] / (float)o.grid_res;
        const size_t v = (size_t)i + (size_t)n * ((size_t)j + (size_t)n * k);
        a.sdf[v] = head_sdf(p);
        // Only the lower face moves: below the mouth line, in front, fading out down the neck.
        a.elastic[v] = kJawMax * smooth((kMouthY + 0.1f - p[1]) / 1.0f) * smooth(p[2] / 2.5f) * smooth((p[1] + 12.f) / 2.f);
      }
  build_condition(a);
  build_deform(a);
  build_texture(a);
  build_background(a);
  build_clip(a, o);
  return a;
}

}  // namespace synth
}  // namespace dyntet
