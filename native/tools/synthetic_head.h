// The synthetic test avatar: an analytic head (signed distance and colour fields in canonical
// face space, cm) and the hand-built network weights that make model.h's forward functions
// reproduce it. It is a deterministic test fixture for the player, the reference renderer and the
// end-to-end tests, not a demo of what training produces.
//
// Construction (see docs/model.md for the model itself):
//   condition encoder: the two convolutions route jawOpen, eyeBlinkLeft, eyeBlinkRight of the
//     window's centre frame to condition channels 0, 1, 2 (LeakyReLU passes the non-negative
//     scores unchanged; the final tanh compresses them: c = tanh(score)).
//   deformation MLP: ReLU units on the raw coordinates (the first three frequency-encoding
//     outputs) and on the condition. Displacement: o[1] = -kJawGain * c_jaw, scaled per vertex by
//     the elastic scale, which is non-zero only on the lower face, so only the jaw moves.
//     SDF delta: a mouth slit relu(kSlitGain c_jaw - |y - y_mouth| - ...) carved outward, and two
//     eyelid patches relu(kLidGain c_blink - ...) that fill the eye sockets.
//   texture: logits of the colour field stored at two dense hash-grid levels (mean logit and blue
//     at the finer, red at the coarser), small pseudo-random detail in every hashed level, and an
//     MLP of ReLU pairs (relu(x) - relu(-x) = x) that mixes them back to RGB before the sigmoid.
#pragma once
#include <cstdint>
#include <string>
#include <vector>
#include "../core/model.h"

namespace dyntet {
namespace synth {

struct Options {
  int grid_res = 32;
  int width = 256;
  int height = 256;
  int clip_frames = 75;  // 3 s at 25 fps
  float fps = 25.f;
};

// Everything a .dyntet holds, as float tables in model.h's layouts.
struct Avatar {
  std::string name = "synthetic-head";
  int width = 0, height = 0;
  Camera camera;
  float box_min[3] = {-12.f, -12.5f, -12.5f};
  float box_max[3] = {12.f, 11.5f, 11.5f};
  int grid_res = 0;
  float active_band = 2.f;  // cm
  std::vector<float> sdf, elastic;  // (R+1)^3, x fastest
  ConditionConfig condition;
  std::vector<float> condition_params;
  DeformConfig deform;
  std::vector<float> deform_params;
  TextureConfig texture;
  std::vector<float> hash_tables;
  std::vector<float> texture_params;
  std::vector<uint8_t> background;  // RGBA8, width x height
  struct Clip {
    std::string name;
    float fps = 25.f;
    std::vector<float> blendshapes;  // frames x 52
    std::vector<float> poses;        // frames x 16, column-major
  };
  std::vector<Clip> clips;
};

// Blendshape indices (MediaPipe order, sdk/src/coefficients.ts).
constexpr int kEyeBlinkLeft = 9;
constexpr int kEyeBlinkRight = 10;
constexpr int kJawOpen = 25;

// Analytic fields, canonical cm.
float head_sdf(const float p[3]);
void head_colour(const float p[3], float rgb[3]);

Avatar build(const Options& o);

// Distance of the head from the camera in the built-in clip (cm): the head fills about 60% of
// the frame height, as in a typical talking-head video.
constexpr float kViewDistance = 33.f;

// A pose matrix (column-major, face -> camera) for yaw/pitch in degrees at distance `dist` cm.
void make_pose(float yaw_deg, float pitch_deg, float tx, float ty, float dist, float out[16]);

}  // namespace synth
}  // namespace dyntet
