// Baking a trained model into a .dyntet asset. See export.h.
#include "export.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "../core/grid.h"

namespace dyntet {

// The model configuration the trainer runs (defined in trainer.cpp, next to the Trainer's own
// construction of it, so the asset's metadata and the trained math cannot drift apart).
AssetMetadata trainer_metadata(const Trainer& t);

namespace {

// Precision tiers, most precise first; export takes the first whose file fits the budget.
struct Tier {
  Encoding sdf, elastic, hash, mlp, basis, weights;
  int basis_cap;  // at most this many PCA components (also capped by ExportOptions::max_basis)
  const char* description;
};
constexpr Encoding F32{DType::F32, QuantMode::None};
constexpr Encoding F16{DType::F16, QuantMode::None};
constexpr Encoding Q16T{DType::Q16, QuantMode::PerTensor};
constexpr Encoding Q16R{DType::Q16, QuantMode::PerRow};
constexpr Encoding Q8T{DType::Q8, QuantMode::PerTensor};
constexpr Encoding Q8R{DType::Q8, QuantMode::PerRow};
const Tier kExportTiers[] = {
    {Q16T, Q16T, F16, F32, Q16R, F32, 32, "sdf q16, elastic q16, hash f16, MLPs f32, basis <=32 x q16"},
    {Q16T, Q8T, F16, F16, Q8R, F16, 24, "sdf q16, elastic q8, hash f16, MLPs f16, basis <=24 x q8"},
    {Q16T, Q8T, Q8R, F16, Q8R, F16, 16, "sdf q16, elastic q8, hash q8/level, MLPs f16, basis <=16 x q8"},
    {Q16T, Q8T, Q8R, F16, Q8R, F16, 8, "sdf q16, elastic q8, hash q8/level, MLPs f16, basis <=8 x q8"},
    {Q8T, Q8T, Q8R, F16, Q8R, F16, 4, "sdf q8 (clamped), elastic q8, hash q8/level, MLPs f16, basis <=4 x q8"},
    {Q8T, Q8T, Q8R, F16, Q8R, F16, 0, "sdf q8 (clamped), elastic q8, hash q8/level, MLPs f16, no baked deltas"},
};

Tensor make_tensor(std::vector<float> data, std::vector<uint32_t> shape, Encoding e) {
  Tensor t;
  t.shape = std::move(shape);
  t.data = std::move(data);
  t.encoding = e;
  return t;
}

std::vector<float> slice(const std::vector<float>& p, const std::vector<ParamBlock>& layout, const char* name) {
  for (const ParamBlock& b : layout)
    if (b.name == name) return std::vector<float>(p.begin() + (ptrdiff_t)b.offset, p.begin() + (ptrdiff_t)(b.offset + b.count));
  throw TrainerError(std::string("internal: the trainer has no parameter block ") + name);
}

// Symmetric eigen-decomposition of a small n x n matrix (cyclic Jacobi): eigenvalues descending,
// eigenvectors as rows of `vecs`.
void eigen_symmetric(int n, std::vector<double> a, std::vector<double>& vals, std::vector<double>& vecs) {
  vecs.assign((size_t)n * n, 0.0);
  for (int i = 0; i < n; ++i) vecs[(size_t)i * n + i] = 1.0;
  for (int sweep = 0; sweep < 60; ++sweep) {
    double off = 0, diag = 0;
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < n; ++j) (i == j ? diag : off) += a[(size_t)i * n + j] * a[(size_t)i * n + j];
    if (off <= 1e-22 * std::max(diag, 1e-300)) break;
    for (int p = 0; p < n; ++p)
      for (int q = p + 1; q < n; ++q) {
        const double apq = a[(size_t)p * n + q];
        if (std::fabs(apq) < 1e-300) continue;
        const double theta = (a[(size_t)q * n + q] - a[(size_t)p * n + p]) / (2 * apq);
        const double t = (theta >= 0 ? 1.0 : -1.0) / (std::fabs(theta) + std::sqrt(theta * theta + 1));
        const double c = 1 / std::sqrt(t * t + 1), s = t * c;
        for (int k = 0; k < n; ++k) {  // columns p, q
          const double akp = a[(size_t)k * n + p], akq = a[(size_t)k * n + q];
          a[(size_t)k * n + p] = c * akp - s * akq;
          a[(size_t)k * n + q] = s * akp + c * akq;
        }
        for (int k = 0; k < n; ++k) {  // rows p, q
          const double apk = a[(size_t)p * n + k], aqk = a[(size_t)q * n + k];
          a[(size_t)p * n + k] = c * apk - s * aqk;
          a[(size_t)q * n + k] = s * apk + c * aqk;
        }
        for (int k = 0; k < n; ++k) {  // eigenvector rows
          const double vp = vecs[(size_t)p * n + k], vq = vecs[(size_t)q * n + k];
          vecs[(size_t)p * n + k] = c * vp - s * vq;
          vecs[(size_t)q * n + k] = s * vp + c * vq;
        }
      }
  }
  std::vector<int> order(n);
  for (int i = 0; i < n; ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](int x, int y) { return a[(size_t)x * n + x] > a[(size_t)y * n + y]; });
  std::vector<double> sv((size_t)n * n);
  vals.resize(n);
  for (int i = 0; i < n; ++i) {
    vals[i] = a[(size_t)order[i] * n + order[i]];
    std::copy_n(&vecs[(size_t)order[i] * n], n, &sv[(size_t)i * n]);
  }
  vecs.swap(sv);
}

// Per-frame deltas of one clip, as a PCA basis of up to `k_max` components.
struct BakedBasis {
  int frames = 0, dim = 0, k = 0;
  std::vector<float> mean;     // dim
  std::vector<float> basis;    // k_max x dim, unit rows
  std::vector<float> weights;  // frames x k_max
  std::vector<float> deltas;   // frames x dim, the exact deltas (to measure the error)
};

BakedBasis bake_clip(Trainer& t, const ExportClip& clip, const std::vector<uint32_t>& active,
                     const std::vector<float>& canonical_sdf, const AssetMetadata& m, int k_max) {
  const int W = m.condition.window;
  const int F = (int)(clip.coefficients.size() / kNumCoefficients);
  const int D = (int)active.size() * 4;
  BakedBasis b;
  b.frames = F, b.dim = D;
  b.deltas.resize((size_t)F * D);
  GridSpec g;
  g.res = m.grid_res;
  for (int a = 0; a < 3; ++a) g.box_min[a] = m.box_min[a], g.box_max[a] = m.box_max[a];
  std::vector<float> window((size_t)W * kNumBlendshapes), pos, sdf;
  for (int f = 0; f < F; ++f) {
    for (int j = 0; j < W; ++j) {  // model.h's window: frames clamp(f + j - (W-1)/2)
      const int src = std::min(std::max(f + j - (W - 1) / 2, 0), F - 1);
      std::copy_n(&clip.coefficients[(size_t)src * kNumCoefficients], kNumBlendshapes, &window[(size_t)j * kNumBlendshapes]);
    }
    t.deformed_grid(window.data(), pos, sdf);
    float* d = &b.deltas[(size_t)f * D];
    for (size_t a = 0; a < active.size(); ++a) {
      const uint32_t v = active[a];
      float p[3];
      grid_vertex_position(g, (int32_t)v, p);
      for (int c = 0; c < 3; ++c) d[a * 4 + c] = pos[(size_t)v * 3 + c] - p[c];
      d[a * 4 + 3] = sdf[v] - canonical_sdf[v];
    }
  }
  // PCA through the F x F Gram matrix of the centred deltas (F is a few hundred, D up to ~10^6).
  b.mean.assign(D, 0.f);
  for (int f = 0; f < F; ++f)
    for (int i = 0; i < D; ++i) b.mean[i] += b.deltas[(size_t)f * D + i] / (float)F;
  std::vector<float> x(b.deltas);
  for (int f = 0; f < F; ++f)
    for (int i = 0; i < D; ++i) x[(size_t)f * D + i] -= b.mean[i];
  std::vector<double> gram((size_t)F * F);
  for (int f = 0; f < F; ++f)
    for (int h = f; h < F; ++h) {
      double s = 0;
      const float* xf = &x[(size_t)f * D];
      const float* xh = &x[(size_t)h * D];
      for (int i = 0; i < D; ++i) s += (double)xf[i] * xh[i];
      gram[(size_t)f * F + h] = gram[(size_t)h * F + f] = s;
    }
  std::vector<double> vals, vecs;
  eigen_symmetric(F, gram, vals, vecs);
  b.k = std::min(k_max, F);
  while (b.k > 0 && vals[b.k - 1] <= 1e-12 * std::max(vals[0], 1e-30)) --b.k;  // drop null directions
  b.basis.assign((size_t)b.k * D, 0.f);
  b.weights.assign((size_t)F * b.k, 0.f);
  for (int k = 0; k < b.k; ++k) {
    const double sigma = std::sqrt(vals[k]);
    // basis_k = X^T e_k / sigma_k (unit length); weight[f][k] = sigma_k e_k[f].
    for (int f = 0; f < F; ++f) {
      const double e = vecs[(size_t)k * F + f] / sigma;
      const float* xf = &x[(size_t)f * D];
      float* bk = &b.basis[(size_t)k * D];
      for (int i = 0; i < D; ++i) bk[i] += (float)(e * xf[i]);
      b.weights[(size_t)f * b.k + k] = (float)(sigma * vecs[(size_t)k * F + f]);
    }
  }
  return b;
}

// The first `k` components of a basis, in the asset's BakedClip form.
BakedClip baked_clip(const std::string& name, const BakedBasis& b, int k, const Tier& tier) {
  BakedClip c;
  c.clip = name;
  c.frames = (uint32_t)b.frames;
  c.active = (uint32_t)(b.dim / 4);
  c.mean = make_tensor(b.mean, {(uint32_t)b.dim}, tier.basis.quant == QuantMode::PerRow ? Encoding{tier.basis.dtype, QuantMode::PerTensor} : tier.basis);
  c.basis = make_tensor(std::vector<float>(b.basis.begin(), b.basis.begin() + (ptrdiff_t)k * b.dim), {(uint32_t)k, (uint32_t)b.dim}, tier.basis);
  std::vector<float> w((size_t)b.frames * k);
  for (int f = 0; f < b.frames; ++f)
    for (int j = 0; j < k; ++j) w[(size_t)f * k + j] = b.weights[(size_t)f * b.k + j];
  c.weights = make_tensor(std::move(w), {(uint32_t)b.frames, (uint32_t)k}, tier.weights);
  return c;
}

uint64_t rd64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

}  // namespace

std::vector<ExportChunk> asset_chunk_sizes(const std::vector<uint8_t>& bytes) {
  std::vector<ExportChunk> out;
  if (bytes.size() < kAssetHeaderSize) return out;
  const uint32_t n = (uint32_t)rd64(&bytes[16]) & 0xffffffffu;
  const uint64_t table = rd64(&bytes[24]);
  for (uint32_t i = 0; i < n && table + (uint64_t)(i + 1) * kAssetChunkEntrySize <= bytes.size(); ++i) {
    const uint8_t* e = &bytes[table + (size_t)i * kAssetChunkEntrySize];
    ExportChunk c;
    c.type.assign((const char*)e, 4);
    c.bytes = (size_t)rd64(e + 16);
    const uint64_t off = rd64(e + 8);
    // CLIP and BAKE payloads start with their clip's name (u32 length, bytes).
    if ((c.type == "CLIP" || c.type == "BAKE") && off + 4 <= bytes.size()) {
      const uint32_t len = (uint32_t)(rd64(&bytes[off]) & 0xffffffffu);
      if (len <= 256 && off + 4 + len <= bytes.size()) c.label.assign((const char*)&bytes[off + 4], len);
    }
    out.push_back(c);
  }
  return out;
}

std::vector<uint8_t> export_asset(Trainer& t, const ExportOptions& o, ExportReport* report) {
  AssetMetadata meta = trainer_metadata(t);
  const std::vector<float> params = t.parameters();
  const std::vector<ParamBlock>& layout = t.layout();
  const std::vector<float> sdf = slice(params, layout, "sdf");
  std::vector<float> elastic = slice(params, layout, "elastic");
  // A run stopped during its rigid start deforms by a fraction of the full bounds: fold that
  // factor into the elastic scales and the SDF delta's scale, so the asset renders what it did.
  const float ramp = t.deform_ramp();
  if (ramp < 1.f) {
    for (float& e : elastic) e *= ramp;
    meta.deform.sdf_delta_scale *= ramp;
  }
  const std::vector<float> deform = slice(params, layout, "deform"), condition = slice(params, layout, "condition");
  const std::vector<float> hash = slice(params, layout, "hashgrid"), texture = slice(params, layout, "texture");
  const uint32_t nv = (uint32_t)sdf.size();

  // Active vertices: exactly the trainer's test (|canonical sdf| < band).
  std::vector<uint32_t> active;
  for (uint32_t v = 0; v < nv; ++v)
    if (std::fabs(sdf[v]) < meta.active_band) active.push_back(v);
  for (const ExportClip& c : o.clips) {
    if (c.coefficients.empty() || c.coefficients.size() % kNumCoefficients)
      throw TrainerError("export: clip \"" + c.name + "\" must hold frames x 68 coefficients (52 blendshapes + 16 pose), got " +
                         std::to_string(c.coefficients.size()) + " values");
    for (float x : c.coefficients)
      if (!std::isfinite(x)) throw TrainerError("export: clip \"" + c.name + "\" holds NaN or Inf coefficients");
  }
  const int k_max = std::max(0, std::min(o.max_basis, kExportTiers[0].basis_cap));
  std::vector<BakedBasis> bases;
  for (const ExportClip& c : o.clips)
    if (c.bake && k_max > 0 && !active.empty()) bases.push_back(bake_clip(t, c, active, sdf, meta, k_max));

  // Vertices far outside the active band never move; only their sign and nearby values matter to
  // marching tets, so the SDF is clamped to a few cells beyond the band before quantisation.
  const float cell = std::min({(meta.box_max[0] - meta.box_min[0]), (meta.box_max[1] - meta.box_min[1]),
                               (meta.box_max[2] - meta.box_min[2])}) / (float)meta.grid_res;
  const float clamp = meta.active_band + 3.f * cell;
  std::vector<float> sdf_clamped(sdf);
  for (float& s : sdf_clamped) s = std::max(-clamp, std::min(clamp, s));

  const HashGridConfig& hg = meta.texture.grid;
  const uint32_t hash_row = (uint32_t)((1u << hg.log2_table) * hg.features);
  std::string last_error;
  for (size_t ti = 0; ti < sizeof(kExportTiers) / sizeof(kExportTiers[0]); ++ti) {
    const Tier& tier = kExportTiers[ti];
    Asset a;
    a.metadata = meta;
    a.metadata.name = o.name;
    a.metadata_json = metadata_to_json(a.metadata, o.extra_json);
    a.sdf = make_tensor(sdf_clamped, {nv}, tier.sdf);
    a.elastic = make_tensor(elastic, {nv}, tier.elastic);
    a.active = active;
    a.deform = make_tensor(deform, {(uint32_t)deform.size()}, tier.mlp);
    a.condition = make_tensor(condition, {(uint32_t)condition.size()}, tier.mlp);
    a.hash_grid = tier.hash.quant == QuantMode::PerRow ? make_tensor(hash, {(uint32_t)hg.levels, hash_row}, tier.hash)
                                                       : make_tensor(hash, {(uint32_t)hash.size()}, tier.hash);
    a.texture = make_tensor(texture, {(uint32_t)texture.size()}, tier.mlp);
    for (const ExportClip& c : o.clips) {
      Clip clip;
      clip.name = c.name;
      clip.fps = c.fps;
      clip.coefficients = make_tensor(c.coefficients, {(uint32_t)(c.coefficients.size() / kNumCoefficients), (uint32_t)kNumCoefficients}, F32);
      a.clips.push_back(std::move(clip));
    }
    int kept = 0;
    size_t bi = 0;
    for (const ExportClip& c : o.clips) {
      if (!(c.bake && k_max > 0 && !active.empty())) continue;
      const BakedBasis& b = bases[bi++];
      const int k = std::min({b.k, tier.basis_cap, k_max});
      if (k > 0) a.baked.push_back(baked_clip(c.name, b, k, tier));
      kept = std::max(kept, k);
    }
    a.has_plate = o.has_plate;
    a.plate = o.plate;
    std::vector<uint8_t> bytes;
    const AssetStatus s = write_asset(a, bytes);
    if (!s.ok()) throw TrainerError("export: the asset writer refused the model: " + s.message);
    const bool last = ti + 1 == sizeof(kExportTiers) / sizeof(kExportTiers[0]);
    if (o.budget_bytes && bytes.size() > o.budget_bytes) {
      last_error = std::to_string(bytes.size()) + " bytes at the least precise tier (" + tier.description + ")";
      if (!last) continue;
      throw TrainerError("export: the asset does not fit " + std::to_string(o.budget_bytes) + " bytes: " + last_error +
                         ". Raise --budget, or train with a smaller grid_res or hash_log2_table");
    }
    if (report) {
      report->tier = (int)ti;
      report->tier_description = tier.description;
      report->chunks = asset_chunk_sizes(bytes);
      report->total_bytes = bytes.size();
      report->active_vertices = active.size();
      report->basis = kept;
      // Error of what a player reconstructs (decoded, so quantisation included) vs the trainer.
      Asset back;
      double se = 0, mx = 0;
      size_t n = 0;
      if (!a.baked.empty() && read_asset(bytes.data(), bytes.size(), back).ok()) {
        bi = 0;
        for (const BakedClip& bc : back.baked) {
          const std::vector<float> got = bc.expand();
          const BakedBasis& b = bases[bi++];
          for (size_t i = 0; i < got.size() && i < b.deltas.size(); ++i) {
            const double e = (double)got[i] - b.deltas[i];
            se += e * e;
            mx = std::max(mx, std::fabs(e));
            ++n;
          }
        }
      }
      report->bake_rms = n ? std::sqrt(se / (double)n) : 0.0;
      report->bake_max = mx;
    }
    return bytes;
  }
  throw TrainerError("export: internal: no tier");
}

}  // namespace dyntet
