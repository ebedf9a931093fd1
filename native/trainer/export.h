// Baking a trained model into a .dyntet asset (docs/asset-format.md): the Trainer's parameters
// become the asset's tensors, quantised to fit a byte budget, plus the clips' coefficient tracks,
// their per-frame deltas (a PCA basis) and the background plate.
#pragma once
#include <cstdint>
#include <string>
#include <vector>
#include "../core/asset.h"
#include "trainer.h"

namespace dyntet {

// A coefficient track to store (and bake): frames x 68 values, 52 blendshapes then 16 pose.
struct ExportClip {
  std::string name;
  float fps = 25.f;
  std::vector<float> coefficients;
  bool bake = true;  // store per-frame deltas so players can skip the deformation MLP
};

struct ExportOptions {
  std::string name = "avatar";
  std::string extra_json;          // metadata members appended verbatim (e.g. "\"attribution\":\"...\"")
  size_t budget_bytes = 4u << 20;  // 0: no limit (the most precise tier)
  int max_basis = 32;              // baked deltas: at most this many PCA components
  std::vector<ExportClip> clips;
  bool has_plate = false;
  Plate plate;
};

// One chunk of the written file.
struct ExportChunk {
  std::string type;  // fourcc, e.g. "HASH"
  std::string label; // clip name for CLIP/BAKE chunks
  size_t bytes = 0;  // payload bytes
};

struct ExportReport {
  int tier = 0;                  // precision tier chosen (0 = most precise); see kExportTiers in export.cpp
  std::string tier_description;  // e.g. "sdf q16, elastic q8, hash f16, MLPs f16, basis 24 x q8"
  std::vector<ExportChunk> chunks;
  size_t total_bytes = 0;
  size_t active_vertices = 0;
  int basis = 0;                 // PCA components kept (0: no baked deltas)
  double bake_rms = 0;           // RMS error of the baked deltas against the trainer's, cm
  double bake_max = 0;           // largest absolute error, cm
};

// Throws TrainerError when the asset cannot fit the budget at the least precise tier (the
// message names what to lower), or when a clip is malformed.
std::vector<uint8_t> export_asset(Trainer& trainer, const ExportOptions& options, ExportReport* report = nullptr);

// Chunk sizes of an encoded asset, read from its chunk table.
std::vector<ExportChunk> asset_chunk_sizes(const std::vector<uint8_t>& bytes);

}  // namespace dyntet
