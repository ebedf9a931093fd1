// The .dyntet asset, format v1 (docs/asset-format.md is the byte-by-byte description).
//
//   header (32 bytes) | payloads (16-byte aligned) | chunk table (32 bytes per chunk)
//
// Little-endian throughout. The reader validates every size, offset and count before use, never
// allocates more than a small multiple of the input's own size, checks each chunk's CRC-32,
// rejects NaN/Inf in float data and returns a specific error code with a message that says what
// is wrong and what to do. It throws nothing (the WASM build has no exceptions): results are
// returned as AssetStatus.
#pragma once
#include <cstdint>
#include <string>
#include <vector>
#include "model.h"

namespace dyntet {

constexpr uint8_t kAssetMagic[8] = {0x89, 'D', 'Y', 'N', 'T', 'E', 'T', 0x0A};
constexpr uint16_t kAssetMajor = 1;
constexpr uint16_t kAssetMinor = 0;
constexpr size_t kAssetHeaderSize = 32;
constexpr size_t kAssetChunkEntrySize = 32;
constexpr size_t kAssetAlign = 16;
constexpr uint32_t kAssetMaxChunks = 65536;
constexpr size_t kAssetMaxMetadata = 1u << 20;  // 1 MiB of JSON
constexpr int kNumCoefficients = kNumBlendshapes + kPoseSize;  // 68 values per clip frame

constexpr uint32_t fourcc(char a, char b, char c, char d) {
  return (uint32_t)(uint8_t)a | ((uint32_t)(uint8_t)b << 8) | ((uint32_t)(uint8_t)c << 16) | ((uint32_t)(uint8_t)d << 24);
}

// Chunk types. Tensor-bearing chunks hold tensor records (see Tensor).
enum ChunkType : uint32_t {
  kChunkMeta = fourcc('M', 'E', 'T', 'A'),     // UTF-8 JSON metadata (exactly one)
  kChunkGeometry = fourcc('G', 'E', 'O', 'M'), // tensors: canonical sdf [NV], elastic scale [NV]
  kChunkActive = fourcc('A', 'C', 'T', 'V'),   // u32 count, then strictly increasing u32 vertex ids
  kChunkDeform = fourcc('D', 'E', 'F', 'M'),   // tensor: deformation MLP parameters
  kChunkCondition = fourcc('C', 'O', 'N', 'D'),// tensor: condition encoder parameters
  kChunkHashGrid = fourcc('H', 'A', 'S', 'H'), // tensor: hash-grid tables [levels * 2^log2 * F]
  kChunkTexture = fourcc('T', 'E', 'X', 'M'),  // tensor: texture MLP parameters
  kChunkClip = fourcc('C', 'L', 'I', 'P'),     // one per clip: name, fps, tensor [frames, 68]
  kChunkBaked = fourcc('B', 'A', 'K', 'E'),    // one per baked clip: per-frame active-vertex deltas
  kChunkPlate = fourcc('P', 'L', 'A', 'T'),    // background plate image
};

enum class AssetError : int {
  OK = 0,
  TRUNCATED,            // the file ends before a structure it declares
  BAD_MAGIC,            // not a .dyntet file
  UNSUPPORTED_VERSION,  // a major version this reader does not know
  TABLE_OUT_OF_RANGE,   // the chunk table lies outside the file
  CHUNK_OUT_OF_RANGE,   // a chunk lies outside the payload area or is misaligned
  CHUNK_OVERLAP,        // two chunks (or a chunk and the table) overlap
  CHECKSUM_MISMATCH,    // a chunk's CRC-32 differs: the file is damaged
  SIZE_LIMIT,           // a declared count or size is beyond what the file or the format allows
  NON_FINITE,           // NaN or Inf in float data
  BAD_METADATA,         // metadata missing fields, wrong types, or not valid UTF-8 JSON
  MISSING_CHUNK,        // a required chunk is absent (or a single-instance chunk repeats)
  BAD_TENSOR,           // a tensor record has an unknown dtype/quantisation or inconsistent shape
  BAD_ARGUMENT,         // the writer or C API was given inconsistent data
};

const char* asset_error_name(AssetError e);  // "TRUNCATED", ...

struct AssetStatus {
  AssetError code = AssetError::OK;
  std::string message;
  bool ok() const { return code == AssetError::OK; }
};

// Tensor encoding. Quantised values are unsigned integers q with value = offset + scale * q, the
// (scale, offset) pair per tensor or per row (row = first dimension).
enum class DType : uint8_t { F32 = 1, F16 = 2, Q16 = 3, Q8 = 4 };
enum class QuantMode : uint8_t { None = 0, PerTensor = 1, PerRow = 2 };

struct Encoding {
  DType dtype = DType::F32;
  QuantMode quant = QuantMode::None;  // must be None for F32/F16, not None for Q16/Q8
};

// A dense float tensor, up to 4 dimensions, row-major. `encoding` is how the writer stores it
// and, after reading, how it was stored; `data` is always the dequantised float32 values.
struct Tensor {
  std::vector<uint32_t> shape;
  std::vector<float> data;
  Encoding encoding;
  size_t count() const;  // product of shape (1 for an empty shape)
};

// A coefficient track: frames x 68 values (52 blendshapes, then the 16 pose values), frame-major.
struct Clip {
  std::string name;
  float fps = 25.f;
  Tensor coefficients;  // shape [frames, 68]
};

// Baked per-frame deltas of the active vertices of one clip: per frame and active vertex
// (dx, dy, dz, dsdf). Either direct (basis_size 0: `deltas` [frames, A*4]) or a small linear basis
// (deltas(f) = mean + sum_k weights[f][k] * basis[k]: `mean` [A*4], `basis` [K, A*4],
// `weights` [frames, K]).
struct BakedClip {
  std::string clip;  // name of the Clip it belongs to
  uint32_t frames = 0;
  uint32_t active = 0;
  Tensor deltas;   // direct form
  Tensor mean;     // basis form
  Tensor basis;
  Tensor weights;
  bool has_basis() const { return !basis.shape.empty(); }
  // Expands either form into frames x active x 4 floats.
  std::vector<float> expand() const;
};

// Background plate: raw RGBA8 (width*height*4 bytes) or an encoded PNG/JPEG the platform decodes
// (the browser's createImageBitmap; native tools decode PNG themselves).
enum class PlateEncoding : uint32_t { RGBA8 = 0, PNG = 1, JPEG = 2 };

struct Plate {
  PlateEncoding encoding = PlateEncoding::RGBA8;
  uint32_t width = 0, height = 0;
  std::vector<uint8_t> bytes;
};

// Typed view of the metadata JSON (the fields the native code needs; the JSON may hold more).
struct AssetMetadata {
  std::string name;
  int width = 512, height = 512;
  Camera camera;
  float box_min[3] = {-1, -1, -1}, box_max[3] = {1, 1, 1};
  int grid_res = 32;
  float active_band = 1.f;
  TextureConfig texture;
  DeformConfig deform;
  ConditionConfig condition;
};

struct Asset {
  std::string metadata_json;
  AssetMetadata metadata;  // parsed from metadata_json by read_asset; ignored by write_asset
  Tensor sdf;              // [(R+1)^3]
  Tensor elastic;          // [(R+1)^3]
  std::vector<uint32_t> active;  // strictly increasing grid vertex ids
  Tensor deform;           // [deform_param_count]
  Tensor condition;        // [condition_param_count]
  Tensor hash_grid;        // [levels * 2^log2_table * features]
  Tensor texture;          // [texture MLP param count]
  std::vector<Clip> clips;
  std::vector<BakedClip> baked;
  bool has_plate = false;
  Plate plate;
};

// Parses and validates. On failure `out` is unspecified and the status says why.
AssetStatus read_asset(const uint8_t* bytes, size_t size, Asset& out);

// Serialises `a` (tensors encoded as their `encoding` says). Fails with BAD_ARGUMENT on
// inconsistent shapes, non-finite values, or an invalid encoding.
AssetStatus write_asset(const Asset& a, std::vector<uint8_t>& out);

// The metadata JSON's schema -> AssetMetadata (BAD_METADATA with the offending field on failure).
AssetStatus parse_metadata(const std::string& json, AssetMetadata& out);
// AssetMetadata -> JSON with every field parse_metadata reads (plus `extra`, a JSON object's
// members without braces, e.g. "\"attribution\":\"...\"", appended verbatim).
std::string metadata_to_json(const AssetMetadata& m, const std::string& extra = "");

uint32_t crc32(const uint8_t* data, size_t size, uint32_t crc = 0);

}  // namespace dyntet
