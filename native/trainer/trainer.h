// The DynTet Trainer: owns every parameter, the Adam state and the work buffers on one backend
// (CPU or CUDA, see native/train/launch.h) and runs whole training steps. The per-element math
// is model.h's; this header is host-only and never includes CUDA headers, so the addon and tests
// compile with a plain C++ compiler and link the (possibly nvcc-built) trainer library.
#pragma once
#include <utility>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace dyntet {

struct AssetMetadata;

// Thrown for bad configuration or batch data: the message says what was wrong and what to do.
struct TrainerError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Training configuration: plain numbers only, so it maps 1:1 onto a JSON object (see
// trainer_config_fields()). Defaults are the documented ones in docs/training.md.
struct TrainerConfig {
  // Tetrahedral grid: R cubes per axis inside [box_min, box_max] (canonical face space, cm).
  int grid_res = 32;
  float box_min[3] = {-10.f, -12.f, -10.f};
  float box_max[3] = {10.f, 10.f, 10.f};
  // Initial canonical SDF: an ellipsoid (centre, radii in cm).
  float init_center[3] = {0.f, -1.f, -2.f};
  float init_radii[3] = {8.f, 10.f, 8.f};
  float init_elastic = 0.5f;     // initial elastic scale, cm
  float active_band_cells = 3.f; // vertices with |sdf| < band * cell size are deformed
  // Image and camera (MediaPipe's 63 degree perspective camera).
  int width = 512;
  int height = 512;
  float fovy_deg = 63.f;
  // Condition encoder (conv layers are model.h's defaults) and its output size.
  int cond_window = 9;
  int cond_dim = 16;
  // Deformation MLP.
  int deform_freq = 6;
  int deform_width = 64;
  int deform_hidden = 2;
  float sdf_delta_scale = 0.5f;
  int freeze_sdf_delta = 0;
  // Rigid start: the deformation (offsets and SDF deltas) is scaled by a ramp that is 0 for the
  // first deform_rigid_steps steps and rises linearly to 1 over deform_ramp_steps more, so the
  // texture forms on one shape before the frames may move it. 0 and 0: always 1 (off).
  int deform_rigid_steps = 0;
  int deform_ramp_steps = 0;
  // 1: the texture's gradient at covered pixels moves the geometry (through the interpolated
  // canonical position and the barycentrics, as in DynTet); 0: only silhouettes move it.
  int texture_moves_geometry = 1;
  // 1: the texture MLP sees the expression condition (DESIGN.md); 0: it sees zeros there (its
  // weights for the condition start and stay at zero), so the colour depends on position alone.
  int texture_condition = 1;
  // Texture: hash grid + MLP.
  int hash_levels = 16;
  int hash_features = 2;
  int hash_log2_table = 15;
  int hash_base_res = 16;
  int hash_finest_res = 1024;
  int tex_width = 64;
  int tex_hidden = 2;
  // Loss weights (DESIGN.md's, SSIM/LPIPS not yet in).
  float w_photo = 1.f;
  float w_silhouette = 10.f;
  float w_ssim = 0.1f;  // 1 - SSIM (11x11 Gaussian) of the composite, standing in for LPIPS
  float w_box = 0.1f;
  float w_prior = 100.f;
  int prior_steps = 5000;
  // Landmark motion prior (off when 0): the deformation carries the rest landmark mesh
  // (Batch::prior_points) to each frame's tracked landmarks (Batch::motion_targets), for the first
  // landmark_motion_steps steps (0: every step).
  float w_landmark_motion = 0.f;
  int landmark_motion_steps = 0;
  float w_elastic = 100.f;
  float max_elastic = 1.5f;
  float w_sdf_reg_start = 0.2f;
  float w_sdf_reg_end = 0.01f;
  int sdf_reg_steps = 10000;
  // Adam and schedule: lr * max(lr_floor, 0.1^(step / lr_decay_steps)) per parameter group.
  float lr = 1e-3f;        // MLPs and condition encoder
  float lr_hash = 1e-2f;   // hash-grid tables
  float lr_grid = 1e-3f;   // per-vertex SDF and elastic scale
  int lr_decay_steps = 5000;
  float lr_floor = 0.01f;
  float adam_beta1 = 0.9f;
  float adam_beta2 = 0.99f;
  float adam_eps = 1e-15f;
  // Per-frame pose refinement: the image and silhouette losses also correct each training frame's
  // tracked head pose by a learned rigid motion (a rotation about the face origin, then a
  // translation; camera space, radians and cm). Off when 0; otherwise the number of training
  // frames, which Batch::frame_ids index. Corrections are for training only: renders and exports
  // use the poses they are given.
  int pose_frames = 0;
  int pose_start = 1500;             // first step at which the corrections learn (the shape forms first)
  float lr_pose_rotation = 1e-4f;    // radians
  float lr_pose_translation = 5e-4f; // cm
  float w_pose_reg = 1e-2f;          // w * mean over the batch of (|rotation|^2 + |translation|^2)
  // Capacity of the marching-tets output per frame (0: automatic, 48 R^2).
  int max_triangles = 0;
  uint64_t seed = 1;
};

// One named numeric field of TrainerConfig (arrays are flattened: box_min.0 ...).
struct ConfigField {
  const char* name;
  enum Kind { Int, Float, U64 } kind;
  size_t offset;
};
const std::vector<ConfigField>& trainer_config_fields();
double config_get(const TrainerConfig& c, const ConfigField& f);
void config_set(TrainerConfig& c, const ConfigField& f, double v);
// Checks ranges; throws TrainerError naming the field and the allowed range.
void validate_config(const TrainerConfig& c);

// One batch of B frames, host memory, all float32 unless said otherwise. Images and masks come
// either as floats or as 8-bit values (the frames' own bytes, 4x less to upload); bytes are
// converted on the device to byte_to_unit(v), the float the TypeScript side's v / 255 gives.
struct Batch {
  int frames = 0;
  const float* images = nullptr;   // B x H x W x 3, [0,1]; or images_u8
  const float* masks = nullptr;    // B x H x W, head mask [0,1]; or masks_u8
  const uint8_t* images_u8 = nullptr;  // B x H x W x 3 bytes (used when images is null)
  const uint8_t* masks_u8 = nullptr;   // B x H x W bytes (used when masks is null)
  const float* boxes = nullptr;    // B x 3 x 4: mouth, left eye, right eye (x0, y0, x1, y1) px; may be null
  const float* poses = nullptr;    // B x 16, column-major face -> camera
  const float* windows = nullptr;  // B x cond_window x 52 blendshapes
  const float* prior_points = nullptr;  // N x 3 canonical points on the landmark mesh; may be null
  int prior_count = 0;
  // B x N x 3: where each frame's tracker put those N points (canonical space, cm; NaN: unknown),
  // for the landmark motion prior; may be null (then the prior is off for the step).
  const float* motion_targets = nullptr;
  // B indices in [0, config.pose_frames): whose pose correction applies to each frame. May be
  // null (no correction: the tracked poses as given).
  const int* frame_ids = nullptr;
};

// Loss values of the last step (weighted, as added to the total).
struct StepLosses {
  float total = 0, photo = 0, silhouette = 0, ssim = 0, box = 0, prior = 0, elastic = 0, sdf_reg = 0, pose_reg = 0, motion = 0;
  int triangles = 0;       // surface triangles over the batch
  int covered_pixels = 0;  // pixels covered over the batch
  int skipped = 0;         // 1 when the update was skipped for NaN/Inf gradients
};

// The float of an 8-bit image value: v / 255 in double rounded once to float, which is what
// Float32Array stores for the JavaScript v / 255 (so both upload formats train identically).
inline float byte_to_unit(uint8_t v) { return (float)((double)v / 255.0); }

enum class Device { CPU = 0, CUDA = 1 };

// A named slice of the flat parameter vector.
struct ParamBlock {
  std::string name;
  size_t offset, count;
};

class Trainer {
 public:
  Trainer(const TrainerConfig& cfg, Device dev);
  ~Trainer();
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  StepLosses step(const Batch& batch);
  // Forward and backward without the optimiser update (for gradient checks): the losses, and the
  // gradient of the total loss w.r.t. the flat parameter vector when `grads` is non-null.
  StepLosses gradient(const Batch& batch, std::vector<float>* grads);
  // Replaces the flat parameter vector (size of parameters()); optimiser state is kept.
  void set_parameters(const std::vector<float>& p);
  // Replaces the canonical SDF with the visual hull of head masks (start_shape.h): `n` masks of
  // width x height bytes and their poses (n x 16). Before the first step only (throws otherwise).
  // Returns the number of grid vertices inside.
  int start_from_masks(const uint8_t* masks, const float* poses, int n, float vote = 0.9f, float expand = 1.3f);
  // Renders one frame: rgb (H x W x 3) over `background` (H x W x 3, or black when null) and
  // antialiased coverage (H x W).
  void render(const float* pose, const float* window, const float* background, float* rgb, float* coverage);
  // The deformed surface for a coefficient window (cond_window x 52; null: neutral, all zero),
  // in canonical face space: marching tets on the deformed grid, 9 floats per triangle.
  std::vector<float> extract_mesh(const float* window = nullptr);
  // The deformed grid for a coefficient window (null: neutral): every vertex's position (V x 3,
  // canonical face space, cm) and SDF (V), i.e. canonical + deformation; what export bakes.
  void deformed_grid(const float* window, std::vector<float>& pos, std::vector<float>& sdf);

  std::vector<uint8_t> save_checkpoint() const;
  // Replaces config, parameters, optimiser state, step and RNG state; throws TrainerError for a
  // malformed or incompatible blob.
  void load_checkpoint(const uint8_t* data, size_t size);

  std::vector<float> parameters() const;
  const std::vector<ParamBlock>& layout() const;
  const TrainerConfig& config() const;
  int64_t step_count() const;
  // The rigid start's factor on the deformation at the current step: 0 while rigid, then rising
  // to 1 (TrainerConfig::deform_rigid_steps); export folds it into the asset.
  float deform_ramp() const;
  Device device() const;
  // Benchmark aid: when on, each step waits for the device after every stage and records
  // (stage, ms) of the last step in stage_times(); slower, so off by default.
  void set_stage_timing(bool on);
  const std::vector<std::pair<std::string, double>>& stage_times() const;

  struct Impl;
 private:
  friend AssetMetadata trainer_metadata(const Trainer& t);
  std::unique_ptr<Impl> impl_;
};

// Backends compiled into this build, and whether CUDA is usable (with CUDA's error text if not).
struct BackendInfo {
  bool cpu = true;
  bool cuda_compiled = false;
  bool cuda_usable = false;
  std::string cuda_error;
  std::string cuda_device;
};
BackendInfo query_backends();

}  // namespace dyntet
