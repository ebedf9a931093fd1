#include "asset.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "grid.h"
#include "json.h"

namespace dyntet {

// ---------------------------------------------------------------------------------------------
// Little helpers

uint32_t crc32(const uint8_t* data, size_t size, uint32_t crc) {
  static uint32_t table[256];
  static bool init = false;
  if (!init) {
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      table[i] = c;
    }
    init = true;
  }
  crc = ~crc;
  for (size_t i = 0; i < size; ++i) crc = table[(crc ^ data[i]) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

const char* asset_error_name(AssetError e) {
  switch (e) {
    case AssetError::OK: return "OK";
    case AssetError::TRUNCATED: return "TRUNCATED";
    case AssetError::BAD_MAGIC: return "BAD_MAGIC";
    case AssetError::UNSUPPORTED_VERSION: return "UNSUPPORTED_VERSION";
    case AssetError::TABLE_OUT_OF_RANGE: return "TABLE_OUT_OF_RANGE";
    case AssetError::CHUNK_OUT_OF_RANGE: return "CHUNK_OUT_OF_RANGE";
    case AssetError::CHUNK_OVERLAP: return "CHUNK_OVERLAP";
    case AssetError::CHECKSUM_MISMATCH: return "CHECKSUM_MISMATCH";
    case AssetError::SIZE_LIMIT: return "SIZE_LIMIT";
    case AssetError::NON_FINITE: return "NON_FINITE";
    case AssetError::BAD_METADATA: return "BAD_METADATA";
    case AssetError::MISSING_CHUNK: return "MISSING_CHUNK";
    case AssetError::BAD_TENSOR: return "BAD_TENSOR";
    case AssetError::BAD_ARGUMENT: return "BAD_ARGUMENT";
  }
  return "UNKNOWN";
}

size_t Tensor::count() const {
  size_t n = 1;
  for (uint32_t d : shape) n *= d;
  return n;
}

namespace {

AssetStatus err(AssetError code, const std::string& msg) { return AssetStatus{code, msg}; }
const AssetStatus kOk{};

std::string fourcc_str(uint32_t t) {
  std::string s;
  for (int k = 0; k < 4; ++k) {
    const char c = (char)((t >> (8 * k)) & 0xFF);
    s += (c >= 32 && c < 127) ? c : '?';
  }
  return s;
}

uint16_t rd16(const uint8_t* p) { return (uint16_t)(p[0] | (p[1] << 8)); }
uint32_t rd32(const uint8_t* p) { return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24); }
uint64_t rd64(const uint8_t* p) { return (uint64_t)rd32(p) | ((uint64_t)rd32(p + 4) << 32); }
float rdf(const uint8_t* p) {
  const uint32_t u = rd32(p);
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

void wr16(std::vector<uint8_t>& o, uint16_t v) { o.push_back(v & 0xFF); o.push_back(v >> 8); }
void wr32(std::vector<uint8_t>& o, uint32_t v) { for (int k = 0; k < 4; ++k) o.push_back((v >> (8 * k)) & 0xFF); }
void wr64(std::vector<uint8_t>& o, uint64_t v) { wr32(o, (uint32_t)v); wr32(o, (uint32_t)(v >> 32)); }
void wrf(std::vector<uint8_t>& o, float f) { uint32_t u; std::memcpy(&u, &f, 4); wr32(o, u); }
void pad_to(std::vector<uint8_t>& o, size_t align) { while (o.size() % align) o.push_back(0); }

uint16_t float_to_half(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint32_t sign = (x >> 16) & 0x8000;
  const int32_t e8 = (int32_t)((x >> 23) & 0xFF);
  uint32_t mant = x & 0x7FFFFF;
  if (e8 == 0xFF) return (uint16_t)(sign | 0x7C00 | (mant ? 0x200 : 0));
  const int32_t exp = e8 - 127 + 15;
  if (exp >= 31) return (uint16_t)(sign | 0x7C00);
  if (exp <= 0) {
    if (exp < -10) return (uint16_t)sign;
    mant |= 0x800000;
    const int shift = 14 - exp;
    uint32_t h = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1), mid = 1u << (shift - 1);
    if (rem > mid || (rem == mid && (h & 1))) ++h;
    return (uint16_t)(sign | h);
  }
  uint32_t h = sign | ((uint32_t)exp << 10) | (mant >> 13);
  const uint32_t rem = mant & 0x1FFF;
  if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) ++h;  // a carry into the exponent is correct rounding
  return (uint16_t)h;
}

float half_to_float(uint16_t h) {
  const uint32_t sign = (uint32_t)(h & 0x8000) << 16;
  const uint32_t exp = (h >> 10) & 0x1F, mant = h & 0x3FF;
  if (exp == 0) {
    const float v = std::ldexp((float)mant, -24);
    return sign ? -v : v;
  }
  const uint32_t bits = sign | ((exp == 0x1F ? 0xFFu : exp + 112) << 23) | (mant << 13);
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

size_t dtype_size(DType d) {
  switch (d) {
    case DType::F32: return 4;
    case DType::F16: return 2;
    case DType::Q16: return 2;
    case DType::Q8: return 1;
  }
  return 0;
}

bool valid_encoding(Encoding e) {
  const bool q = e.dtype == DType::Q16 || e.dtype == DType::Q8;
  const bool f = e.dtype == DType::F32 || e.dtype == DType::F16;
  if (!q && !f) return false;
  if (f) return e.quant == QuantMode::None;
  return e.quant == QuantMode::PerTensor || e.quant == QuantMode::PerRow;
}

// ---------------------------------------------------------------------------------------------
// Tensor records

constexpr size_t kTensorHeader = 20;

AssetStatus write_tensor(std::vector<uint8_t>& o, const Tensor& t, const char* what) {
  if (t.shape.empty() || t.shape.size() > 4)
    return err(AssetError::BAD_ARGUMENT, std::string(what) + ": a tensor needs 1 to 4 dimensions");
  if (!valid_encoding(t.encoding))
    return err(AssetError::BAD_ARGUMENT, std::string(what) + ": invalid encoding (f32/f16 take no quantisation, q16/q8 need per-tensor or per-row)");
  uint64_t count = 1;
  for (uint32_t d : t.shape) count *= d;
  if (count != t.data.size())
    return err(AssetError::BAD_ARGUMENT, std::string(what) + ": shape holds " + std::to_string(count) + " values but data has " + std::to_string(t.data.size()));
  for (float v : t.data)
    if (!std::isfinite(v)) return err(AssetError::BAD_ARGUMENT, std::string(what) + ": contains NaN or Inf");
  o.push_back((uint8_t)t.encoding.dtype);
  o.push_back((uint8_t)t.encoding.quant);
  o.push_back((uint8_t)t.shape.size());
  o.push_back(0);
  for (size_t k = 0; k < 4; ++k) wr32(o, k < t.shape.size() ? t.shape[k] : 1);
  const DType dt = t.encoding.dtype;
  if (dt == DType::F32) {
    for (float v : t.data) wrf(o, v);
  } else if (dt == DType::F16) {
    for (float v : t.data) {
      const uint16_t h = float_to_half(v);
      if ((h & 0x7C00) == 0x7C00) return err(AssetError::BAD_ARGUMENT, std::string(what) + ": a value exceeds the f16 range (65504); store it as f32 or q16");
      wr16(o, h);
    }
  } else {
    const bool per_row = t.encoding.quant == QuantMode::PerRow;
    const size_t rows = per_row ? t.shape[0] : 1;
    const size_t row_len = rows ? count / rows : 0;
    const float levels = dt == DType::Q16 ? 65535.f : 255.f;
    std::vector<float> scale(rows), offset(rows);
    for (size_t r = 0; r < rows; ++r) {
      float lo = 0, hi = 0;
      if (row_len) {
        lo = hi = t.data[r * row_len];
        for (size_t i = 0; i < row_len; ++i) {
          lo = std::min(lo, t.data[r * row_len + i]);
          hi = std::max(hi, t.data[r * row_len + i]);
        }
      }
      offset[r] = lo;
      scale[r] = (float)(((double)hi - (double)lo) / levels);
      if (!std::isfinite(scale[r])) return err(AssetError::BAD_ARGUMENT, std::string(what) + ": value range too large to quantise");
      wrf(o, scale[r]);
      wrf(o, offset[r]);
    }
    for (size_t r = 0; r < rows; ++r)
      for (size_t i = 0; i < row_len; ++i) {
        const float v = t.data[r * row_len + i];
        double q = scale[r] > 0 ? std::nearbyint(((double)v - offset[r]) / scale[r]) : 0.0;
        q = std::min<double>(std::max(q, 0.0), levels);
        if (dt == DType::Q16) wr16(o, (uint16_t)q);
        else o.push_back((uint8_t)q);
      }
  }
  pad_to(o, 4);
  return kOk;
}

// Reads a tensor record at p[*pos, end); advances *pos past it (4-byte aligned).
AssetStatus read_tensor(const uint8_t* p, size_t end, size_t* pos, Tensor& t, const std::string& what) {
  size_t at = *pos;
  if (end - at < kTensorHeader) return err(AssetError::TRUNCATED, what + ": the chunk ends inside a tensor header; the file is damaged, export it again");
  const uint8_t dtype = p[at], quant = p[at + 1], ndim = p[at + 2];
  Encoding e{(DType)dtype, (QuantMode)quant};
  if (dtype < 1 || dtype > 4 || quant > 2 || !valid_encoding(e))
    return err(AssetError::BAD_TENSOR, what + ": unknown dtype " + std::to_string(dtype) + " / quantisation " + std::to_string(quant) + " (written by a newer exporter?)");
  if (ndim < 1 || ndim > 4) return err(AssetError::BAD_TENSOR, what + ": " + std::to_string(ndim) + " dimensions (expected 1 to 4)");
  at += 4;
  const size_t esize = dtype_size(e.dtype);
  // Bound the element count by the bytes left before multiplying further, so no product overflows.
  const uint64_t avail = end - at - 16;
  uint64_t count = 1;
  t.shape.assign(ndim, 0);
  for (int k = 0; k < 4; ++k) {
    const uint32_t d = rd32(p + at + 4 * k);
    if (k >= ndim) {
      if (d != 1) return err(AssetError::BAD_TENSOR, what + ": unused dimension is not 1");
      continue;
    }
    t.shape[k] = d;
    if (d != 0 && count > avail / d) return err(AssetError::SIZE_LIMIT, what + ": declares more values than its chunk holds; the file is damaged or was cut short");
    count *= d;
  }
  at += 16;
  const size_t rows = e.quant == QuantMode::PerRow ? t.shape[0] : (e.quant == QuantMode::PerTensor ? 1 : 0);
  const uint64_t need = (uint64_t)rows * 8 + count * esize;
  if (need > end - at) return err(AssetError::SIZE_LIMIT, what + ": declares " + std::to_string(need) + " bytes of data but only " + std::to_string(end - at) + " remain in its chunk");
  std::vector<float> scale(rows), offset(rows);
  for (size_t r = 0; r < rows; ++r) {
    scale[r] = rdf(p + at + r * 8);
    offset[r] = rdf(p + at + r * 8 + 4);
    if (!std::isfinite(scale[r]) || !std::isfinite(offset[r])) return err(AssetError::NON_FINITE, what + ": a quantisation scale or offset is NaN/Inf");
  }
  at += rows * 8;
  t.encoding = e;
  t.data.resize(count);
  const size_t row_len = rows > 1 ? count / rows : count;
  for (size_t i = 0; i < count; ++i) {
    float v;
    switch (e.dtype) {
      case DType::F32: v = rdf(p + at + i * 4); break;
      case DType::F16: v = half_to_float(rd16(p + at + i * 2)); break;
      case DType::Q16: { const size_t r = rows > 1 ? i / row_len : 0; v = offset[r] + scale[r] * (float)rd16(p + at + i * 2); break; }
      default: { const size_t r = rows > 1 ? i / row_len : 0; v = offset[r] + scale[r] * (float)p[at + i]; break; }
    }
    if (!std::isfinite(v)) return err(AssetError::NON_FINITE, what + ": value " + std::to_string(i) + " is NaN or Inf; re-export the avatar (training may have diverged)");
    t.data[i] = v;
  }
  at += count * esize;
  at = std::min<size_t>(end, (at + 3) & ~(size_t)3);
  *pos = at;
  return kOk;
}

// ---------------------------------------------------------------------------------------------
// Metadata

const JsonValue* member(const JsonValue* o, const char* k) { return o ? o->get(k) : nullptr; }

struct MetaReader {
  std::string error;
  bool num(const JsonValue* o, const char* key, double& v, const char* path, bool required = true) {
    const JsonValue* x = member(o, key);
    if (!x) {
      if (required && error.empty()) error = std::string("missing number ") + path + "." + key;
      return !required;
    }
    if (x->type != JsonValue::Number || !std::isfinite(x->number)) {
      if (error.empty()) error = std::string(path) + "." + key + " is not a finite number";
      return false;
    }
    v = x->number;
    return true;
  }
  bool integer(const JsonValue* o, const char* key, int& v, const char* path, int lo, int hi, bool required = true) {
    double d = v;
    if (!num(o, key, d, path, required)) return false;
    if (d != std::floor(d) || d < lo || d > hi) {
      if (error.empty()) error = std::string(path) + "." + key + " = " + std::to_string(d) + " is not an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
      return false;
    }
    v = (int)d;
    return true;
  }
  bool flt(const JsonValue* o, const char* key, float& v, const char* path, bool required = true) {
    double d = v;
    if (!num(o, key, d, path, required)) return false;
    v = (float)d;
    if (!std::isfinite(v)) { if (error.empty()) error = std::string(path) + "." + key + " overflows float"; return false; }
    return true;
  }
  bool vec3(const JsonValue* o, const char* key, float v[3], const char* path) {
    const JsonValue* x = member(o, key);
    if (!x || x->type != JsonValue::Array || x->items.size() != 3) {
      if (error.empty()) error = std::string(path) + "." + key + " must be an array of 3 numbers";
      return false;
    }
    for (int a = 0; a < 3; ++a) {
      if (x->items[a].type != JsonValue::Number || !std::isfinite((float)x->items[a].number)) {
        if (error.empty()) error = std::string(path) + "." + key + " must be an array of 3 finite numbers";
        return false;
      }
      v[a] = (float)x->items[a].number;
    }
    return true;
  }
  bool mlp(const JsonValue* o, MlpConfig& c, const char* path) {
    if (!o || o->type != JsonValue::Object) { if (error.empty()) error = std::string("missing object ") + path; return false; }
    return integer(o, "in", c.in, path, 1, kMaxWidth) && integer(o, "width", c.width, path, 1, kMaxWidth) &&
           integer(o, "hiddenLayers", c.hidden_layers, path, 0, 16) && integer(o, "out", c.out, path, 1, kMaxWidth) &&
           integer(o, "hiddenAct", c.hidden_act, path, 0, 4) && integer(o, "outAct", c.out_act, path, 0, 4);
  }
};

}  // namespace

AssetStatus parse_metadata(const std::string& json, AssetMetadata& m) {
  JsonValue root;
  std::string perr;
  if (!json_parse(json, root, perr)) return err(AssetError::BAD_METADATA, "metadata is not valid JSON (" + perr + "); re-export the avatar");
  if (root.type != JsonValue::Object) return err(AssetError::BAD_METADATA, "metadata must be a JSON object");
  MetaReader r;
  const JsonValue* name = root.get("name");
  if (name && name->type == JsonValue::String) m.name = name->string;
  const JsonValue* frame = root.get("frame");
  const JsonValue* cam = root.get("camera");
  const JsonValue* box = root.get("box");
  const JsonValue* grid = root.get("grid");
  const JsonValue* tex = root.get("texture");
  const JsonValue* def = root.get("deform");
  const JsonValue* cond = root.get("condition");
  bool ok = r.integer(frame, "width", m.width, "frame", 1, 16384) && r.integer(frame, "height", m.height, "frame", 1, 16384) &&
            r.flt(cam, "fovyDeg", m.camera.fovy_deg, "camera") && r.flt(cam, "znear", m.camera.znear, "camera") &&
            r.flt(cam, "zfar", m.camera.zfar, "camera") && r.vec3(box, "min", m.box_min, "box") && r.vec3(box, "max", m.box_max, "box") &&
            r.integer(grid, "res", m.grid_res, "grid", 1, kMaxGridRes) && r.flt(grid, "activeBand", m.active_band, "grid");
  m.camera.width = m.width;
  m.camera.height = m.height;
  const JsonValue* hg = member(tex, "grid");
  HashGridConfig& h = m.texture.grid;
  ok = ok && r.integer(hg, "levels", h.levels, "texture.grid", 1, 32) && r.integer(hg, "features", h.features, "texture.grid", 1, 8) &&
       r.integer(hg, "log2Table", h.log2_table, "texture.grid", 4, 24) && r.integer(hg, "baseRes", h.base_res, "texture.grid", 1, 1 << 16) &&
       r.integer(hg, "finestRes", h.finest_res, "texture.grid", 1, 1 << 20) && r.mlp(member(tex, "mlp"), m.texture.mlp, "texture.mlp");
  ok = ok && r.integer(def, "nFreq", m.deform.n_freq, "deform", 0, 12) && r.mlp(member(def, "mlp"), m.deform.mlp, "deform.mlp") &&
       r.flt(def, "sdfDeltaScale", m.deform.sdf_delta_scale, "deform");
  if (ok) {
    const JsonValue* fz = member(def, "freezeSdfDelta");
    if (fz && fz->type != JsonValue::Bool) { r.error = "deform.freezeSdfDelta must be true or false"; ok = false; }
    m.deform.freeze_sdf_delta = fz && fz->boolean ? 1 : 0;
  }
  ok = ok && r.integer(cond, "window", m.condition.window, "condition", 1, 64) && r.integer(cond, "outDim", m.condition.out_dim, "condition", 1, 64);
  const JsonValue* conv = member(cond, "conv");
  if (ok && (!conv || conv->type != JsonValue::Array || conv->items.empty() || conv->items.size() > (size_t)kMaxConvLayers)) {
    r.error = "condition.conv must be an array of 1 to 4 layers";
    ok = false;
  }
  if (ok) {
    m.condition.num_conv = (int)conv->items.size();
    int ch = kNumBlendshapes, len = m.condition.window;
    for (int k = 0; k < kMaxConvLayers; ++k) m.condition.conv[k] = {0, 0, 0, 0};
    for (int k = 0; ok && k < m.condition.num_conv; ++k) {
      Conv1dLayer& L = m.condition.conv[k];
      const JsonValue* c = &conv->items[k];
      ok = r.integer(c, "inCh", L.in_ch, "condition.conv[]", 1, 256) && r.integer(c, "outCh", L.out_ch, "condition.conv[]", 1, 256) &&
           r.integer(c, "kernel", L.kernel, "condition.conv[]", 1, 64) && r.integer(c, "stride", L.stride, "condition.conv[]", 1, 64);
      if (!ok) break;
      if (L.in_ch != ch) { r.error = "condition.conv[" + std::to_string(k) + "].inCh = " + std::to_string(L.in_ch) + " but its input has " + std::to_string(ch) + " channels"; ok = false; break; }
      if (len < L.kernel) { r.error = "condition.conv[" + std::to_string(k) + "] kernel is longer than its input"; ok = false; break; }
      len = (len - L.kernel) / L.stride + 1;
      if (k == 0 && kNumBlendshapes * m.condition.window > 52 * 32) { r.error = "condition.window too long"; ok = false; break; }
      if (L.out_ch * len > 52 * 32) { r.error = "condition.conv[" + std::to_string(k) + "] map exceeds 52x32 values"; ok = false; break; }
      ch = L.out_ch;
    }
  }
  if (ok) {
    for (int a = 0; a < 3; ++a)
      if (!(m.box_max[a] > m.box_min[a])) { r.error = "box.max must exceed box.min on every axis"; ok = false; }
    if (ok && !(m.camera.fovy_deg > 0 && m.camera.fovy_deg < 180 && m.camera.znear > 0 && m.camera.zfar > m.camera.znear)) {
      r.error = "camera needs 0 < fovyDeg < 180 and 0 < znear < zfar";
      ok = false;
    }
    const int cdim = m.condition.out_dim;
    if (ok && m.deform.mlp.in != freq_encoding_size(m.deform.n_freq) + cdim) { r.error = "deform.mlp.in must be 3 + 6*nFreq + condition.outDim"; ok = false; }
    if (ok && m.deform.mlp.out != 4) { r.error = "deform.mlp.out must be 4"; ok = false; }
    if (ok && m.texture.mlp.in != h.levels * h.features + cdim) { r.error = "texture.mlp.in must be levels*features + condition.outDim"; ok = false; }
    if (ok && m.texture.mlp.out != 3) { r.error = "texture.mlp.out must be 3"; ok = false; }
  }
  if (!ok) return err(AssetError::BAD_METADATA, "metadata: " + r.error + "; re-export the avatar with a current exporter");
  return kOk;
}

namespace {

std::string jnum(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.9g", v);
  return b;
}

std::string jmlp(const MlpConfig& c) {
  return "{\"in\":" + std::to_string(c.in) + ",\"width\":" + std::to_string(c.width) + ",\"hiddenLayers\":" + std::to_string(c.hidden_layers) +
         ",\"out\":" + std::to_string(c.out) + ",\"hiddenAct\":" + std::to_string(c.hidden_act) + ",\"outAct\":" + std::to_string(c.out_act) + "}";
}

std::string jstr(const std::string& s) {
  std::string o = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') { o += '\\'; o += c; }
    else if ((unsigned char)c < 0x20) { char b[8]; std::snprintf(b, sizeof b, "\\u%04x", c); o += b; }
    else o += c;
  }
  return o + "\"";
}

}  // namespace

std::string metadata_to_json(const AssetMetadata& m, const std::string& extra) {
  std::string s = "{\"format\":\"dyntet\",\"name\":" + jstr(m.name);
  s += ",\"frame\":{\"width\":" + std::to_string(m.width) + ",\"height\":" + std::to_string(m.height) + "}";
  s += ",\"camera\":{\"fovyDeg\":" + jnum(m.camera.fovy_deg) + ",\"znear\":" + jnum(m.camera.znear) + ",\"zfar\":" + jnum(m.camera.zfar) + "}";
  s += ",\"box\":{\"min\":[" + jnum(m.box_min[0]) + "," + jnum(m.box_min[1]) + "," + jnum(m.box_min[2]) + "],\"max\":[" + jnum(m.box_max[0]) + "," +
       jnum(m.box_max[1]) + "," + jnum(m.box_max[2]) + "]}";
  s += ",\"grid\":{\"res\":" + std::to_string(m.grid_res) + ",\"activeBand\":" + jnum(m.active_band) + "}";
  const HashGridConfig& h = m.texture.grid;
  s += ",\"texture\":{\"grid\":{\"levels\":" + std::to_string(h.levels) + ",\"features\":" + std::to_string(h.features) + ",\"log2Table\":" +
       std::to_string(h.log2_table) + ",\"baseRes\":" + std::to_string(h.base_res) + ",\"finestRes\":" + std::to_string(h.finest_res) +
       "},\"mlp\":" + jmlp(m.texture.mlp) + "}";
  s += ",\"deform\":{\"nFreq\":" + std::to_string(m.deform.n_freq) + ",\"mlp\":" + jmlp(m.deform.mlp) + ",\"sdfDeltaScale\":" + jnum(m.deform.sdf_delta_scale) +
       ",\"freezeSdfDelta\":" + (m.deform.freeze_sdf_delta ? "true" : "false") + "}";
  s += ",\"condition\":{\"window\":" + std::to_string(m.condition.window) + ",\"conv\":[";
  for (int k = 0; k < m.condition.num_conv; ++k) {
    const Conv1dLayer& L = m.condition.conv[k];
    s += (k ? "," : "") + std::string("{\"inCh\":") + std::to_string(L.in_ch) + ",\"outCh\":" + std::to_string(L.out_ch) + ",\"kernel\":" +
         std::to_string(L.kernel) + ",\"stride\":" + std::to_string(L.stride) + "}";
  }
  s += "],\"outDim\":" + std::to_string(m.condition.out_dim) + "}";
  if (!extra.empty()) s += "," + extra;
  return s + "}";
}

// ---------------------------------------------------------------------------------------------
// Expansion of baked deltas

std::vector<float> BakedClip::expand() const {
  if (!has_basis()) return deltas.data;
  const size_t row = (size_t)active * 4;
  const size_t K = basis.shape.empty() ? 0 : basis.shape[0];
  std::vector<float> out((size_t)frames * row);
  for (size_t f = 0; f < frames; ++f)
    for (size_t i = 0; i < row; ++i) {
      float v = mean.data[i];
      for (size_t k = 0; k < K; ++k) v += weights.data[f * K + k] * basis.data[k * row + i];
      out[f * row + i] = v;
    }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Writer

namespace {

void put_name(std::vector<uint8_t>& o, const std::string& name) {
  wr32(o, (uint32_t)name.size());
  o.insert(o.end(), name.begin(), name.end());
  pad_to(o, 4);
}

AssetStatus check_shape(const Tensor& t, std::initializer_list<uint32_t> shape, const std::string& what) {
  if (t.shape != std::vector<uint32_t>(shape)) return err(AssetError::BAD_ARGUMENT, what + ": shape does not match the clip/active sizes");
  return kOk;
}

}  // namespace

AssetStatus write_asset(const Asset& a, std::vector<uint8_t>& out) {
  struct Piece { uint32_t type; std::vector<uint8_t> bytes; };
  std::vector<Piece> pieces;
  AssetStatus s;
  if (a.metadata_json.size() > kAssetMaxMetadata || !utf8_valid(a.metadata_json.data(), a.metadata_json.size()))
    return err(AssetError::BAD_ARGUMENT, "metadata must be UTF-8 JSON of at most 1 MiB");
  pieces.push_back({kChunkMeta, std::vector<uint8_t>(a.metadata_json.begin(), a.metadata_json.end())});
  {
    Piece p{kChunkGeometry, {}};
    if (!(s = write_tensor(p.bytes, a.sdf, "sdf")).ok() || !(s = write_tensor(p.bytes, a.elastic, "elastic")).ok()) return s;
    pieces.push_back(std::move(p));
  }
  {
    Piece p{kChunkActive, {}};
    wr32(p.bytes, (uint32_t)a.active.size());
    for (size_t i = 0; i < a.active.size(); ++i) {
      if (i && a.active[i] <= a.active[i - 1]) return err(AssetError::BAD_ARGUMENT, "active vertex ids must be strictly increasing");
      wr32(p.bytes, a.active[i]);
    }
    pieces.push_back(std::move(p));
  }
  const std::pair<uint32_t, const Tensor*> singles[] = {
      {kChunkDeform, &a.deform}, {kChunkCondition, &a.condition}, {kChunkHashGrid, &a.hash_grid}, {kChunkTexture, &a.texture}};
  for (const auto& [type, t] : singles) {
    Piece p{type, {}};
    if (!(s = write_tensor(p.bytes, *t, fourcc_str(type).c_str())).ok()) return s;
    pieces.push_back(std::move(p));
  }
  for (const Clip& c : a.clips) {
    Piece p{kChunkClip, {}};
    if (c.name.size() > 256 || !utf8_valid(c.name.data(), c.name.size())) return err(AssetError::BAD_ARGUMENT, "clip names are UTF-8, at most 256 bytes");
    if (!(std::isfinite(c.fps) && c.fps > 0)) return err(AssetError::BAD_ARGUMENT, "clip " + c.name + ": fps must be positive");
    if (c.coefficients.shape.size() != 2 || c.coefficients.shape[1] != (uint32_t)kNumCoefficients)
      return err(AssetError::BAD_ARGUMENT, "clip " + c.name + ": coefficients must have shape [frames, 68]");
    put_name(p.bytes, c.name);
    wrf(p.bytes, c.fps);
    if (!(s = write_tensor(p.bytes, c.coefficients, ("clip " + c.name).c_str())).ok()) return s;
    pieces.push_back(std::move(p));
  }
  for (const BakedClip& b : a.baked) {
    Piece p{kChunkBaked, {}};
    if (b.clip.size() > 256 || !utf8_valid(b.clip.data(), b.clip.size())) return err(AssetError::BAD_ARGUMENT, "baked clip names are UTF-8, at most 256 bytes");
    const std::string what = "baked clip " + b.clip;
    put_name(p.bytes, b.clip);
    const uint32_t row = b.active * 4;
    const uint32_t K = b.has_basis() ? b.basis.shape[0] : 0;
    wr32(p.bytes, b.frames);
    wr32(p.bytes, b.active);
    wr32(p.bytes, K);
    wr32(p.bytes, 0);
    if (K == 0) {
      if (!(s = check_shape(b.deltas, {b.frames, row}, what)).ok() || !(s = write_tensor(p.bytes, b.deltas, what.c_str())).ok()) return s;
    } else {
      if (!(s = check_shape(b.mean, {row}, what + " mean")).ok() || !(s = check_shape(b.basis, {K, row}, what + " basis")).ok() ||
          !(s = check_shape(b.weights, {b.frames, K}, what + " weights")).ok())
        return s;
      if (!(s = write_tensor(p.bytes, b.mean, what.c_str())).ok() || !(s = write_tensor(p.bytes, b.basis, what.c_str())).ok() ||
          !(s = write_tensor(p.bytes, b.weights, what.c_str())).ok())
        return s;
    }
    pieces.push_back(std::move(p));
  }
  if (a.has_plate) {
    Piece p{kChunkPlate, {}};
    const Plate& pl = a.plate;
    if ((uint32_t)pl.encoding > 2) return err(AssetError::BAD_ARGUMENT, "plate encoding must be RGBA8, PNG or JPEG");
    if (pl.encoding == PlateEncoding::RGBA8 && pl.bytes.size() != (size_t)pl.width * pl.height * 4)
      return err(AssetError::BAD_ARGUMENT, "RGBA8 plate needs width*height*4 bytes");
    wr32(p.bytes, (uint32_t)pl.encoding);
    wr32(p.bytes, pl.width);
    wr32(p.bytes, pl.height);
    wr32(p.bytes, (uint32_t)pl.bytes.size());
    p.bytes.insert(p.bytes.end(), pl.bytes.begin(), pl.bytes.end());
    pieces.push_back(std::move(p));
  }

  out.clear();
  out.insert(out.end(), kAssetMagic, kAssetMagic + 8);
  wr16(out, kAssetMajor);
  wr16(out, kAssetMinor);
  wr32(out, 0);
  wr32(out, (uint32_t)pieces.size());
  wr32(out, 0);
  wr64(out, 0);  // table offset, patched below
  std::vector<uint8_t> table;
  for (const Piece& p : pieces) {
    pad_to(out, kAssetAlign);
    wr32(table, p.type);
    wr32(table, 0);
    wr64(table, out.size());
    wr64(table, p.bytes.size());
    wr32(table, crc32(p.bytes.data(), p.bytes.size()));
    wr32(table, 0);
    out.insert(out.end(), p.bytes.begin(), p.bytes.end());
  }
  pad_to(out, kAssetAlign);
  const uint64_t table_offset = out.size();
  for (int k = 0; k < 8; ++k) out[24 + k] = (uint8_t)(table_offset >> (8 * k));
  out.insert(out.end(), table.begin(), table.end());
  return kOk;
}

// ---------------------------------------------------------------------------------------------
// Reader

namespace {

struct Entry {
  uint32_t type, flags;
  uint64_t offset, length;
  uint32_t crc;
};

AssetStatus read_name(const uint8_t* p, size_t end, size_t* pos, std::string& name, const char* what) {
  if (end - *pos < 4) return err(AssetError::TRUNCATED, std::string(what) + ": chunk ends before its name");
  const uint32_t n = rd32(p + *pos);
  if (n > 256 || n > end - *pos - 4) return err(AssetError::SIZE_LIMIT, std::string(what) + ": name length " + std::to_string(n) + " exceeds 256 bytes or its chunk");
  name.assign((const char*)p + *pos + 4, n);
  if (!utf8_valid(name.data(), name.size())) return err(AssetError::BAD_METADATA, std::string(what) + ": name is not UTF-8");
  *pos = std::min<size_t>(end, (*pos + 4 + n + 3) & ~(size_t)3);
  return kOk;
}

AssetStatus expect(const Tensor& t, std::initializer_list<uint32_t> shape, const std::string& what) {
  uint64_t want = 1;
  for (uint32_t d : shape) want *= d;
  if (t.count() != want) return err(AssetError::BAD_TENSOR, what + " has " + std::to_string(t.count()) + " values, the metadata implies " + std::to_string(want));
  return kOk;
}

}  // namespace

AssetStatus read_asset(const uint8_t* d, size_t size, Asset& out) {
  out = Asset{};
  if (!d && size) return err(AssetError::BAD_ARGUMENT, "no data");
  if (size == 0) return err(AssetError::TRUNCATED, "the file is empty; check the download");
  if (size < 8 ? std::memcmp(d, kAssetMagic, size) != 0 : std::memcmp(d, kAssetMagic, 8) != 0) {
    return err(AssetError::BAD_MAGIC, "not a .dyntet file (wrong magic bytes); pass an asset written by dyntet-train export");
  }
  if (size < kAssetHeaderSize) return err(AssetError::TRUNCATED, "the file is " + std::to_string(size) + " bytes, shorter than the 32-byte header; the download was cut short");
  const uint16_t major = rd16(d + 8), minor = rd16(d + 10);
  if (major != kAssetMajor)
    return err(AssetError::UNSUPPORTED_VERSION, "format version " + std::to_string(major) + "." + std::to_string(minor) + " is not supported by this player (it reads 1.x); update @dyntet/player or re-export for v1");
  const uint32_t count = rd32(d + 16);
  const uint64_t table = rd64(d + 24);
  if (count > kAssetMaxChunks) return err(AssetError::SIZE_LIMIT, "the file declares " + std::to_string(count) + " chunks (at most 65536 allowed); the file is damaged");
  if (table < kAssetHeaderSize || table > size || (uint64_t)count * kAssetChunkEntrySize > size - table)
    return err(AssetError::TABLE_OUT_OF_RANGE, "the chunk table (" + std::to_string(count) + " entries at offset " + std::to_string(table) + ") lies outside the " +
                                                   std::to_string(size) + "-byte file; the file is truncated or damaged");
  std::vector<Entry> entries(count);
  for (uint32_t i = 0; i < count; ++i) {
    const uint8_t* e = d + table + (size_t)i * kAssetChunkEntrySize;
    Entry& x = entries[i];
    x = {rd32(e), rd32(e + 4), rd64(e + 8), rd64(e + 16), rd32(e + 24)};
    if (x.offset < kAssetHeaderSize || x.offset % kAssetAlign || x.offset > size || x.length > size - x.offset)
      return err(AssetError::CHUNK_OUT_OF_RANGE, "chunk " + std::to_string(i) + " (" + fourcc_str(x.type) + ") at offset " + std::to_string(x.offset) + ", length " +
                                                      std::to_string(x.length) + " lies outside the file or is misaligned; the file is damaged");
    const uint64_t tend = table + (uint64_t)count * kAssetChunkEntrySize;
    if (x.length && x.offset < tend && table < x.offset + x.length)
      return err(AssetError::CHUNK_OVERLAP, "chunk " + std::to_string(i) + " (" + fourcc_str(x.type) + ") overlaps the chunk table; the file is damaged");
  }
  {
    std::vector<uint32_t> order(count);
    for (uint32_t i = 0; i < count; ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return entries[a].offset < entries[b].offset; });
    uint64_t prev_end = 0;
    for (uint32_t i : order) {
      if (!entries[i].length) continue;
      if (entries[i].offset < prev_end)
        return err(AssetError::CHUNK_OVERLAP, "chunk " + std::to_string(i) + " (" + fourcc_str(entries[i].type) + ") overlaps another chunk; the file is damaged");
      prev_end = entries[i].offset + entries[i].length;
    }
  }
  for (uint32_t i = 0; i < count; ++i)
    if (crc32(d + entries[i].offset, entries[i].length) != entries[i].crc)
      return err(AssetError::CHECKSUM_MISMATCH, "chunk " + std::to_string(i) + " (" + fourcc_str(entries[i].type) + ") fails its CRC-32 check; the file is corrupted, download or export it again");

  bool seen_meta = false, seen_geom = false, seen_active = false, seen[4] = {false, false, false, false};
  for (uint32_t i = 0; i < count; ++i) {
    const Entry& x = entries[i];
    const uint8_t* p = d + x.offset;
    const size_t end = x.length;
    size_t pos = 0;
    AssetStatus s;
    const std::string what = fourcc_str(x.type);
    auto once = [&](bool& flag) -> AssetStatus {
      if (flag) return err(AssetError::MISSING_CHUNK, "chunk " + what + " appears more than once; the file is damaged");
      flag = true;
      return kOk;
    };
    switch (x.type) {
      case kChunkMeta:
        if (!(s = once(seen_meta)).ok()) return s;
        if (end > kAssetMaxMetadata) return err(AssetError::SIZE_LIMIT, "metadata is larger than 1 MiB");
        out.metadata_json.assign((const char*)p, end);
        break;
      case kChunkGeometry:
        if (!(s = once(seen_geom)).ok()) return s;
        if (!(s = read_tensor(p, end, &pos, out.sdf, "canonical sdf")).ok() || !(s = read_tensor(p, end, &pos, out.elastic, "elastic scale")).ok()) return s;
        break;
      case kChunkActive: {
        if (!(s = once(seen_active)).ok()) return s;
        if (end < 4) return err(AssetError::TRUNCATED, "active-vertex chunk is shorter than its count");
        const uint32_t n = rd32(p);
        if (n > (end - 4) / 4) return err(AssetError::SIZE_LIMIT, "active-vertex list declares " + std::to_string(n) + " ids, more than its chunk holds");
        out.active.resize(n);
        for (uint32_t k = 0; k < n; ++k) out.active[k] = rd32(p + 4 + 4 * (size_t)k);
        break;
      }
      case kChunkDeform:
      case kChunkCondition:
      case kChunkHashGrid:
      case kChunkTexture: {
        const int slot = x.type == kChunkDeform ? 0 : x.type == kChunkCondition ? 1 : x.type == kChunkHashGrid ? 2 : 3;
        Tensor* t = slot == 0 ? &out.deform : slot == 1 ? &out.condition : slot == 2 ? &out.hash_grid : &out.texture;
        if (!(s = once(seen[slot])).ok() || !(s = read_tensor(p, end, &pos, *t, what)).ok()) return s;
        break;
      }
      case kChunkClip: {
        Clip c;
        if (!(s = read_name(p, end, &pos, c.name, "clip")).ok()) return s;
        if (end - pos < 4) return err(AssetError::TRUNCATED, "clip " + c.name + ": chunk ends before its frame rate");
        c.fps = rdf(p + pos);
        pos += 4;
        if (!std::isfinite(c.fps) || !(c.fps > 0) || c.fps > 1000) return err(AssetError::NON_FINITE, "clip " + c.name + ": frame rate is not a finite positive number");
        if (!(s = read_tensor(p, end, &pos, c.coefficients, "clip " + c.name)).ok()) return s;
        if (c.coefficients.shape.size() != 2 || c.coefficients.shape[1] != (uint32_t)kNumCoefficients)
          return err(AssetError::BAD_TENSOR, "clip " + c.name + ": coefficients must be [frames, 68]");
        out.clips.push_back(std::move(c));
        break;
      }
      case kChunkBaked: {
        BakedClip b;
        if (!(s = read_name(p, end, &pos, b.clip, "baked clip")).ok()) return s;
        if (end - pos < 16) return err(AssetError::TRUNCATED, "baked clip " + b.clip + ": chunk ends inside its header");
        b.frames = rd32(p + pos);
        b.active = rd32(p + pos + 4);
        const uint32_t K = rd32(p + pos + 8);
        pos += 16;
        const std::string bw = "baked clip " + b.clip;
        if (K == 0) {
          if (!(s = read_tensor(p, end, &pos, b.deltas, bw)).ok()) return s;
          if (!(s = expect(b.deltas, {b.frames, b.active, 4}, bw + " deltas")).ok()) return s;
        } else {
          if (!(s = read_tensor(p, end, &pos, b.mean, bw + " mean")).ok() || !(s = read_tensor(p, end, &pos, b.basis, bw + " basis")).ok() ||
              !(s = read_tensor(p, end, &pos, b.weights, bw + " weights")).ok())
            return s;
          if (!(s = expect(b.mean, {b.active, 4}, bw + " mean")).ok() || !(s = expect(b.basis, {K, b.active, 4}, bw + " basis")).ok() ||
              !(s = expect(b.weights, {b.frames, K}, bw + " weights")).ok())
            return s;
          if (b.basis.shape.size() != 2 || b.basis.shape[0] != K) return err(AssetError::BAD_TENSOR, bw + ": basis must be [K, active*4]");
        }
        out.baked.push_back(std::move(b));
        break;
      }
      case kChunkPlate: {
        bool dummy = out.has_plate;
        if (!(s = once(dummy)).ok()) return s;
        out.has_plate = true;
        if (end < 16) return err(AssetError::TRUNCATED, "plate chunk ends inside its header");
        Plate& pl = out.plate;
        const uint32_t enc = rd32(p);
        pl.width = rd32(p + 4);
        pl.height = rd32(p + 8);
        const uint32_t n = rd32(p + 12);
        if (enc > 2) return err(AssetError::BAD_TENSOR, "plate encoding " + std::to_string(enc) + " is unknown (0 RGBA8, 1 PNG, 2 JPEG)");
        pl.encoding = (PlateEncoding)enc;
        if (pl.width > 16384 || pl.height > 16384) return err(AssetError::SIZE_LIMIT, "plate is larger than 16384 pixels on a side");
        if (n > end - 16) return err(AssetError::SIZE_LIMIT, "plate declares " + std::to_string(n) + " bytes, more than its chunk holds");
        if (pl.encoding == PlateEncoding::RGBA8 && n != (uint64_t)pl.width * pl.height * 4)
          return err(AssetError::BAD_TENSOR, "RGBA8 plate of " + std::to_string(pl.width) + "x" + std::to_string(pl.height) + " needs width*height*4 bytes");
        pl.bytes.assign(p + 16, p + 16 + n);
        break;
      }
      default:
        break;  // unknown chunk: written by a newer exporter, skipped by design
    }
  }
  if (!seen_meta) return err(AssetError::MISSING_CHUNK, "the file has no metadata chunk (META); it is not a complete avatar");
  if (!seen_geom) return err(AssetError::MISSING_CHUNK, "the file has no geometry chunk (GEOM); it is not a complete avatar");
  if (!seen_active) return err(AssetError::MISSING_CHUNK, "the file has no active-vertex chunk (ACTV); it is not a complete avatar");
  const char* names[4] = {"deformation weights (DEFM)", "condition encoder weights (COND)", "hash-grid tables (HASH)", "texture MLP weights (TEXM)"};
  for (int k = 0; k < 4; ++k)
    if (!seen[k]) return err(AssetError::MISSING_CHUNK, std::string("the file has no ") + names[k] + "; it is not a complete avatar");

  AssetStatus s = parse_metadata(out.metadata_json, out.metadata);
  if (!s.ok()) return s;
  const AssetMetadata& m = out.metadata;
  const uint32_t nv = (uint32_t)grid_num_vertices(m.grid_res);
  if (!(s = expect(out.sdf, {nv}, "canonical sdf")).ok() || !(s = expect(out.elastic, {nv}, "elastic scale")).ok()) return s;
  for (size_t k = 0; k < out.active.size(); ++k)
    if (out.active[k] >= nv || (k && out.active[k] <= out.active[k - 1]))
      return err(AssetError::BAD_TENSOR, "active-vertex ids must be strictly increasing grid vertex ids below " + std::to_string(nv));
  if (!(s = expect(out.deform, {(uint32_t)mlp_param_count(m.deform.mlp)}, "deformation weights")).ok() ||
      !(s = expect(out.condition, {(uint32_t)condition_param_count(m.condition)}, "condition encoder weights")).ok() ||
      !(s = expect(out.hash_grid, {(uint32_t)hashgrid_param_count(m.texture.grid)}, "hash-grid tables")).ok() ||
      !(s = expect(out.texture, {(uint32_t)mlp_param_count(m.texture.mlp)}, "texture MLP weights")).ok())
    return s;
  for (const BakedClip& b : out.baked) {
    const Clip* c = nullptr;
    for (const Clip& x : out.clips)
      if (x.name == b.clip) c = &x;
    if (!c) return err(AssetError::BAD_TENSOR, "baked clip " + b.clip + " has no coefficient track of that name");
    if (b.frames != c->coefficients.shape[0] || b.active != out.active.size())
      return err(AssetError::BAD_TENSOR, "baked clip " + b.clip + ": frame or active-vertex count disagrees with its clip and the active list");
  }
  return kOk;
}

}  // namespace dyntet
