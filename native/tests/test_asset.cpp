// .dyntet reader/writer: exact round trips for every chunk type and encoding, a specific error
// code for each kind of damage, a seeded mutation fuzz loop, and replay of the fuzz corpus.
//   test_asset [filter]            run the cases
//   test_asset --corpus DIR        read every file of DIR (each must succeed or fail cleanly)
//   test_asset --write-corpus DIR  write the interesting inputs of these cases into DIR
#include <cstdlib>
#include <dirent.h>
#include <fstream>
#include <iterator>
#include <limits>
#include <random>

#include "core/asset.h"
#include "test_harness.h"

using namespace dyntet;

namespace {

Tensor make_tensor(std::vector<uint32_t> shape, Encoding enc, uint32_t seed) {
  Tensor t;
  t.shape = std::move(shape);
  t.encoding = enc;
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-2.f, 2.f);
  t.data.resize(t.count());
  for (float& v : t.data) v = u(rng);
  // Quantised and half encodings are lossy: store values the encoding represents exactly, so the
  // round trip can be compared bit for bit (the writer must then reproduce them exactly).
  if (enc.dtype == DType::F16)
    for (float& v : t.data) v = std::ldexp(std::round(std::ldexp(v, 8)), -8);
  if (enc.dtype == DType::Q8 || enc.dtype == DType::Q16) {
    const int levels = enc.dtype == DType::Q8 ? 255 : 65535;
    const size_t rows = t.shape.empty() ? 1 : t.shape[0], per = t.count() / (rows ? rows : 1);
    for (size_t r = 0; r < rows; ++r) {
      // Each row spans exactly [-1, 3] sampled on the quantisation lattice (min and max present).
      for (size_t i = 0; i < per; ++i) {
        const int q = i == 0 ? 0 : i == 1 ? levels : (int)((i * 7919u) % (unsigned)(levels + 1));
        t.data[r * per + i] = -1.f + 4.f * (float)q / (float)levels;
      }
    }
  }
  return t;
}

AssetMetadata small_metadata() {
  AssetMetadata m;
  m.name = "test";
  m.width = 64;
  m.height = 48;
  m.grid_res = 4;
  m.active_band = 0.5f;
  m.box_min[0] = -10; m.box_min[1] = -12; m.box_min[2] = -9;
  m.box_max[0] = 10; m.box_max[1] = 11; m.box_max[2] = 8;
  m.texture.grid = HashGridConfig{2, 2, 6, 2, 8};
  m.condition.window = 5;
  m.condition.num_conv = 1;
  m.condition.conv[0] = Conv1dLayer{52, 4, 3, 1};
  m.condition.out_dim = 3;
  m.texture.mlp = MlpConfig{2 * 2 + 3, 8, 1, 3, kActReLU, kActSigmoid};
  m.deform.n_freq = 1;
  m.deform.mlp = MlpConfig{3 + 6 + 3, 8, 1, 4, kActReLU, kActNone};
  m.deform.sdf_delta_scale = 0.25f;
  return m;
}

// An asset with every chunk type, tensors in the given encoding.
Asset small_asset(Encoding enc) {
  Asset a;
  a.metadata = small_metadata();
  a.metadata_json = metadata_to_json(a.metadata, "\"attribution\":\"test fixture\"");
  const uint32_t nv = 5 * 5 * 5;
  a.sdf = make_tensor({nv}, enc, 1);
  a.elastic = make_tensor({nv}, Encoding{}, 2);
  a.active = {0, 3, 7, 64, 124};
  a.deform = make_tensor({(uint32_t)mlp_param_count(a.metadata.deform.mlp)}, enc, 3);
  a.condition = make_tensor({(uint32_t)condition_param_count(a.metadata.condition)}, enc, 4);
  a.hash_grid = make_tensor({(uint32_t)hashgrid_param_count(a.metadata.texture.grid)}, enc, 5);
  a.texture = make_tensor({(uint32_t)mlp_param_count(a.metadata.texture.mlp)}, enc, 6);
  Clip c;
  c.name = "talk";
  c.fps = 25.f;
  c.coefficients = make_tensor({6, (uint32_t)kNumCoefficients}, Encoding{}, 7);
  a.clips.push_back(c);
  BakedClip direct;
  direct.clip = "talk";
  direct.frames = 6;
  direct.active = 5;
  direct.deltas = make_tensor({6, 5 * 4}, enc, 8);
  a.baked.push_back(direct);
  Clip c2 = c;
  c2.name = "basis";
  a.clips.push_back(c2);
  BakedClip basis;
  basis.clip = "basis";
  basis.frames = 6;
  basis.active = 5;
  basis.mean = make_tensor({5 * 4}, Encoding{}, 9);
  basis.basis = make_tensor({2, 5 * 4}, enc, 10);
  basis.weights = make_tensor({6, 2}, Encoding{}, 11);
  a.baked.push_back(basis);
  a.has_plate = true;
  a.plate.width = 4;
  a.plate.height = 2;
  for (int i = 0; i < 4 * 2 * 4; ++i) a.plate.bytes.push_back((uint8_t)(i * 37));
  return a;
}

std::vector<uint8_t> write_ok(const Asset& a) {
  std::vector<uint8_t> bytes;
  AssetStatus s = write_asset(a, bytes);
  CHECK(s.ok());
  if (!s.ok()) std::fprintf(stderr, "    write_asset: %s\n", s.message.c_str());
  return bytes;
}

// Exact for f32 and f16 (the fixtures hold values f16 represents); for q8/q16 within half a
// quantisation step of the [-1, 3] range the fixtures span (the exact part is the byte-identical
// rewrite checked below).
bool same_tensor(const Tensor& x, const Tensor& y) {
  if (x.shape != y.shape || x.data.size() != y.data.size()) return false;
  const DType d = x.encoding.dtype;
  const double tol = d == DType::Q8 ? 0.5001 * 4.0 / 255 : d == DType::Q16 ? 0.5001 * 4.0 / 65535 : 0.0;
  for (size_t i = 0; i < x.data.size(); ++i)
    if (!(std::fabs((double)x.data[i] - (double)y.data[i]) <= tol)) return false;
  return true;
}

AssetError read_code(const std::vector<uint8_t>& bytes) {
  Asset out;
  return read_asset(bytes.data(), bytes.size(), out).code;
}

void put_u32(std::vector<uint8_t>& b, size_t at, uint32_t v) {
  for (int k = 0; k < 4; ++k) b[at + k] = (uint8_t)(v >> (8 * k));
}
uint32_t get_u32(const std::vector<uint8_t>& b, size_t at) {
  return (uint32_t)b[at] | ((uint32_t)b[at + 1] << 8) | ((uint32_t)b[at + 2] << 16) | ((uint32_t)b[at + 3] << 24);
}

// Header layout (docs/asset-format.md): magic[8], u16 major, u16 minor, u32 flags, u32 chunk
// count, u32 reserved, u64 table offset; table entries of 32 bytes: u32 type, u32 flags, u64 offset, u64 length,
// u32 crc, u32 reserved.
size_t table_offset(const std::vector<uint8_t>& b) { return (size_t)get_u32(b, 24) | ((size_t)get_u32(b, 28) << 32); }
uint32_t chunk_count(const std::vector<uint8_t>& b) { return get_u32(b, 16); }
size_t entry(const std::vector<uint8_t>& b, uint32_t k) { return table_offset(b) + (size_t)k * kAssetChunkEntrySize; }

// Recomputes a chunk's CRC after a deliberate edit of its payload (to reach checks behind the CRC).
void fix_crc(std::vector<uint8_t>& b, uint32_t k, size_t table) {
  const size_t e = table + (size_t)k * kAssetChunkEntrySize;
  const size_t off = (size_t)get_u32(b, e + 8), len = (size_t)get_u32(b, e + 16);
  put_u32(b, e + 24, crc32(b.data() + off, len));
}

int find_chunk(const std::vector<uint8_t>& b, uint32_t type) {
  for (uint32_t k = 0; k < chunk_count(b); ++k)
    if (get_u32(b, entry(b, k)) == type) return (int)k;
  return -1;
}

std::vector<std::pair<std::string, std::vector<uint8_t>>>& corpus_out() {
  static std::vector<std::pair<std::string, std::vector<uint8_t>>> c;
  return c;
}
void keep(const std::string& name, const std::vector<uint8_t>& b) { corpus_out().push_back({name, b}); }

}  // namespace

TEST(round_trip_every_chunk_and_encoding) {
  const Encoding encs[] = {{DType::F32, QuantMode::None}, {DType::F16, QuantMode::None}, {DType::Q16, QuantMode::PerTensor},
                           {DType::Q8, QuantMode::PerTensor}, {DType::Q8, QuantMode::PerRow}, {DType::Q16, QuantMode::PerRow}};
  for (const Encoding& enc : encs) {
    const Asset a = small_asset(enc);
    const std::vector<uint8_t> bytes = write_ok(a);
    Asset b;
    const AssetStatus s = read_asset(bytes.data(), bytes.size(), b);
    CHECK(s.ok());
    if (!s.ok()) { std::fprintf(stderr, "    dtype %d quant %d: %s\n", (int)enc.dtype, (int)enc.quant, s.message.c_str()); continue; }
    CHECK(b.metadata_json == a.metadata_json);
    CHECK_EQ(b.metadata.grid_res, 4);
    CHECK_EQ(b.metadata.texture.grid.log2_table, 6);
    CHECK(same_tensor(a.sdf, b.sdf));
    CHECK(same_tensor(a.elastic, b.elastic));
    CHECK(a.active == b.active);
    CHECK(same_tensor(a.deform, b.deform));
    CHECK(same_tensor(a.condition, b.condition));
    CHECK(same_tensor(a.hash_grid, b.hash_grid));
    CHECK(same_tensor(a.texture, b.texture));
    CHECK((int)b.sdf.encoding.dtype == (int)enc.dtype);
    CHECK_EQ(b.clips.size(), (size_t)2);
    if (b.clips.size() == 2) {
      CHECK(b.clips[0].name == "talk" && b.clips[1].name == "basis");
      CHECK(same_tensor(a.clips[0].coefficients, b.clips[0].coefficients));
      CHECK_EQ(b.clips[0].fps, 25.f);
    }
    CHECK_EQ(b.baked.size(), (size_t)2);
    if (b.baked.size() == 2) {
      CHECK(same_tensor(a.baked[0].deltas, b.baked[0].deltas));
      CHECK(b.baked[1].has_basis());
      CHECK(same_tensor(a.baked[1].basis, b.baked[1].basis));
      CHECK(same_tensor(a.baked[1].weights, b.baked[1].weights));
      CHECK_EQ(b.baked[1].expand().size(), (size_t)6 * 5 * 4);
    }
    CHECK(b.has_plate && b.plate.width == 4 && b.plate.height == 2 && b.plate.bytes == a.plate.bytes);
    // Writing what was read gives the same bytes: the format has one encoding of each asset.
    std::vector<uint8_t> again;
    CHECK(write_asset(b, again).ok());
    CHECK(again == bytes);
    if (enc.dtype == DType::Q8 && enc.quant == QuantMode::PerRow) keep("valid_q8_per_row.dyntet", bytes);
    if (enc.dtype == DType::F32) keep("valid_f32.dyntet", bytes);
  }
}

TEST(unknown_chunks_are_skipped) {
  const Asset a = small_asset(Encoding{});
  const std::vector<uint8_t> bytes = write_ok(a);
  // Retype the plate chunk as an unknown type: the reader must skip it and lose only the plate.
  std::vector<uint8_t> b = bytes;
  const int k = find_chunk(b, kChunkPlate);
  CHECK(k >= 0);
  if (k < 0) return;
  put_u32(b, entry(b, (uint32_t)k), fourcc('X', 'T', 'R', 'A'));
  Asset out;
  const AssetStatus s = read_asset(b.data(), b.size(), out);
  CHECK(s.ok());
  CHECK(!out.has_plate);
  CHECK(same_tensor(out.sdf, a.sdf));
  keep("unknown_chunk.dyntet", b);
}

TEST(damage_gives_specific_codes) {
  const std::vector<uint8_t> good = write_ok(small_asset(Encoding{DType::Q8, QuantMode::PerTensor}));
  CHECK(read_code(good) == AssetError::OK);

  // Truncations: at every 97th byte, and the empty file.
  for (size_t n = 0; n < good.size(); n += 97) {
    std::vector<uint8_t> t(good.begin(), good.begin() + n);
    const AssetError e = read_code(t);
    CHECK(e != AssetError::OK);
  }
  CHECK(read_code(std::vector<uint8_t>(good.begin(), good.begin() + 20)) == AssetError::TRUNCATED);
  CHECK(read_code({}) == AssetError::TRUNCATED);

  std::vector<uint8_t> b = good;
  b[1] = 'X';
  CHECK(read_code(b) == AssetError::BAD_MAGIC);
  keep("bad_magic.dyntet", b);

  b = good;
  b[8] = 2;  // major version 2
  CHECK(read_code(b) == AssetError::UNSUPPORTED_VERSION);
  keep("future_major.dyntet", b);

  b = good;
  b[10] = 7;  // a newer minor version is readable
  CHECK(read_code(b) == AssetError::OK);

  b = good;
  put_u32(b, 24, (uint32_t)good.size() + 64);  // table beyond the end
  CHECK(read_code(b) == AssetError::TABLE_OUT_OF_RANGE);
  keep("table_out_of_range.dyntet", b);

  b = good;
  put_u32(b, 16, 0x7fffffffu);  // absurd chunk count in a small file
  {
    const AssetError e = read_code(b);
    CHECK(e == AssetError::SIZE_LIMIT || e == AssetError::TABLE_OUT_OF_RANGE);
  }
  keep("absurd_chunk_count.dyntet", b);

  b = good;
  {
    const size_t e1 = entry(b, 1);
    put_u32(b, e1 + 16, 0xffffffffu);  // a 4 GiB chunk in a small file
    put_u32(b, e1 + 20, 0);
    CHECK(read_code(b) == AssetError::CHUNK_OUT_OF_RANGE);
  }
  keep("chunk_4gib.dyntet", b);

  b = good;
  {
    // Chunk 1 moved onto chunk 0's payload.
    const size_t e0 = entry(b, 0), e1 = entry(b, 1);
    put_u32(b, e1 + 8, get_u32(b, e0 + 8));
    CHECK(read_code(b) == AssetError::CHUNK_OVERLAP);
  }
  keep("overlap.dyntet", b);

  b = good;
  {
    const int k = find_chunk(b, kChunkGeometry);
    const size_t off = get_u32(b, entry(b, (uint32_t)k) + 8), len = get_u32(b, entry(b, (uint32_t)k) + 16);
    b[off + len - 1] ^= 0x5a;
    CHECK(read_code(b) == AssetError::CHECKSUM_MISMATCH);
  }
  keep("checksum.dyntet", b);
}

TEST(non_finite_values_are_rejected) {
  Asset a = small_asset(Encoding{});
  a.elastic.data[3] = std::numeric_limits<float>::quiet_NaN();
  std::vector<uint8_t> bytes;
  CHECK(write_asset(a, bytes).code == AssetError::BAD_ARGUMENT);  // the writer refuses too

  // Patch a NaN into an f32 tensor of a valid file (and fix its CRC so the NaN is what is found).
  const std::vector<uint8_t> good = write_ok(small_asset(Encoding{}));
  for (const float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
    std::vector<uint8_t> b = good;
    const int k = find_chunk(b, kChunkTexture);
    CHECK(k >= 0);
    if (k < 0) return;
    const size_t off = get_u32(b, entry(b, (uint32_t)k) + 8), len = get_u32(b, entry(b, (uint32_t)k) + 16);
    uint32_t bits;
    std::memcpy(&bits, &bad, 4);
    put_u32(b, off + len - 4, bits);  // the last parameter
    fix_crc(b, (uint32_t)k, table_offset(b));
    CHECK(read_code(b) == AssetError::NON_FINITE);
    keep(std::isnan(bad) ? "nan.dyntet" : "inf.dyntet", b);
  }
}

TEST(bad_metadata_and_missing_chunks) {
  Asset a = small_asset(Encoding{});
  a.metadata_json = "{\"name\": 3";
  std::vector<uint8_t> bytes = write_ok(a);
  CHECK(read_code(bytes) == AssetError::BAD_METADATA);
  keep("bad_json.dyntet", bytes);

  // Geometry sizes that disagree with the grid resolution in the metadata.
  a = small_asset(Encoding{});
  AssetMetadata m = a.metadata;
  m.grid_res = 5;
  a.metadata_json = metadata_to_json(m);
  bytes = write_ok(a);
  CHECK(read_code(bytes) == AssetError::BAD_TENSOR);

  // Retyping the geometry chunk leaves the file without one.
  std::vector<uint8_t> b = write_ok(small_asset(Encoding{}));
  const int k = find_chunk(b, kChunkGeometry);
  put_u32(b, entry(b, (uint32_t)k), fourcc('Z', 'Z', 'Z', 'Z'));
  CHECK(read_code(b) == AssetError::MISSING_CHUNK);
  keep("missing_geometry.dyntet", b);
}

// Seeded mutation fuzzing: flips, byte sets, u32 overwrites with interesting values, truncations
// and splices, on valid files of several encodings. Every input must come back as OK or a code,
// within the process (ASan/UBSan builds of this test catch memory errors the loop provokes).
TEST(mutation_fuzz_200k) {
  std::vector<std::vector<uint8_t>> seeds = {write_ok(small_asset(Encoding{})),
                                             write_ok(small_asset(Encoding{DType::Q8, QuantMode::PerRow})),
                                             write_ok(small_asset(Encoding{DType::F16, QuantMode::None}))};
  std::mt19937_64 rng(20261124);
  const uint32_t interesting[] = {0, 1, 0x7f, 0x80, 0xff, 0xffff, 0x10000, 0x7fffffff, 0x80000000u, 0xffffffffu, 16, 32};
  size_t ok = 0, failed = 0;
  const int n = 200000;
  for (int i = 0; i < n; ++i) {
    std::vector<uint8_t> b = seeds[rng() % seeds.size()];
    const int edits = 1 + (int)(rng() % 4);
    for (int e = 0; e < edits && !b.empty(); ++e) {
      const size_t at = rng() % b.size();
      switch (rng() % 5) {
        case 0: b[at] ^= (uint8_t)(1u << (rng() % 8)); break;
        case 1: b[at] = (uint8_t)rng(); break;
        case 2:
          if (at + 4 <= b.size()) put_u32(b, at & ~(size_t)3, interesting[rng() % (sizeof interesting / 4)]);
          break;
        case 3: b.resize(at); break;
        default: {
          const std::vector<uint8_t>& o = seeds[rng() % seeds.size()];
          const size_t from = rng() % o.size(), len = std::min<size_t>(rng() % 64, std::min(o.size() - from, b.size() - at));
          std::memcpy(b.data() + at, o.data() + from, len);
        }
      }
    }
    // Half the time repair CRCs so the mutation reaches the structural checks behind them.
    if ((i & 1) && b.size() >= kAssetHeaderSize) {
      const size_t t = table_offset(b);
      const uint32_t n_chunks = chunk_count(b);
      // (A table overlapping the header would move under its own CRC repairs: leave those alone.)
      if (n_chunks < 64 && t >= kAssetHeaderSize && t <= b.size() && (size_t)n_chunks * kAssetChunkEntrySize <= b.size() - t)
        for (uint32_t k = 0; k < n_chunks; ++k) {
          const size_t e = t + (size_t)k * kAssetChunkEntrySize;
          const uint64_t off = get_u32(b, e + 8), len = get_u32(b, e + 16);
          if (get_u32(b, e + 12) == 0 && get_u32(b, e + 20) == 0 && off + len <= b.size()) fix_crc(b, k, t);
        }
    }
    Asset out;
    const AssetStatus s = read_asset(b.data(), b.size(), out);
    if (s.ok()) ++ok; else ++failed;
    if (!s.ok()) CHECK(!s.message.empty());
  }
  std::printf("  %d mutated inputs: %zu read, %zu rejected with a code, 0 crashes\n", n, ok, failed);
  CHECK_EQ(ok + failed, (size_t)n);
  CHECK(failed > (size_t)n / 2);  // mutations must actually reach the validation
}

static int replay_corpus(const char* dir) {
  DIR* d = opendir(dir);
  if (!d) { std::fprintf(stderr, "cannot open corpus folder %s\n", dir); return 1; }
  int files = 0;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::ifstream f(std::string(dir) + "/" + e->d_name, std::ios::binary);
    std::vector<uint8_t> b((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    Asset out;
    const AssetStatus s = read_asset(b.data(), b.size(), out);
    // File names say what must happen: valid_* and unknown_* read, everything else is rejected.
    const bool want_ok = std::strncmp(e->d_name, "valid_", 6) == 0 || std::strncmp(e->d_name, "unknown_", 8) == 0;
    std::printf("  %-28s %s%s\n", e->d_name, s.ok() ? "OK" : asset_error_name(s.code), want_ok == s.ok() ? "" : "  <-- unexpected");
    if (want_ok != s.ok()) ++dyntet_test::failures();
    ++files;
  }
  closedir(d);
  std::printf("%d corpus files replayed\n", files);
  return files == 0 ? 1 : (dyntet_test::failures() ? 1 : 0);
}

int main(int argc, char** argv) {
  if (argc == 3 && std::strcmp(argv[1], "--corpus") == 0) return replay_corpus(argv[2]);
  if (argc == 3 && std::strcmp(argv[1], "--write-corpus") == 0) {
    char* none[] = {argv[0]};
    const int r = dyntet_test::run_all(1, none);
    for (const auto& [name, bytes] : corpus_out()) {
      std::ofstream f(std::string(argv[2]) + "/" + name, std::ios::binary);
      f.write((const char*)bytes.data(), (std::streamsize)bytes.size());
    }
    return r;
  }
  return dyntet_test::run_all(argc, argv);
}
