#include "encoding.h"

namespace dyntet {
namespace train {

HashGrid make_hashgrid(const HashGridConfig& cfg) {
  const char* op = "hashgrid";
  op_require(cfg.levels >= 1 && cfg.levels <= kMaxHashLevels, op, "levels must be 1.." + std::to_string(kMaxHashLevels) + ", got " + std::to_string(cfg.levels));
  op_require(cfg.features >= 1 && cfg.levels * cfg.features <= kMaxWidth, op, "levels * features must be 1.." + std::to_string(kMaxWidth) + " (model.h's kMaxWidth)");
  op_require(cfg.log2_table >= 4 && cfg.log2_table <= 24, op, "log2_table must be 4..24, got " + std::to_string(cfg.log2_table));
  op_require(cfg.base_res >= 1 && cfg.finest_res >= cfg.base_res, op, "need 1 <= base_res <= finest_res");
  HashGrid g{};
  g.cfg = cfg;
  hashgrid_levels(cfg, g.levels);
  return g;
}

void hashgrid_forward(Backend b, const HashGridParams& p) {
  op_require(p.n >= 0 && (p.n == 0 || (p.u && p.table && p.out)), "hashgrid_forward", "u, table and out must be non-null for n > 0");
  const HashGrid g = p.grid;
  const float* u = p.u;
  const float* table = p.table;
  float* out = p.out;
  const int D = g.out_dim();
  launch_1d(b, p.n, [=] DT_LAMBDA(int64_t i) { hashgrid_encode(g.cfg, g.levels, table, u + 3 * i, out + D * i); });
}

void hashgrid_backward(Backend b, const HashGridParams& p) {
  op_require(p.n >= 0 && (p.n == 0 || (p.u && p.table && p.g_out)), "hashgrid_backward", "u, table and g_out must be non-null for n > 0");
  const HashGrid g = p.grid;
  const float* u = p.u;
  const float* table = p.table;
  const float* g_out = p.g_out;
  float* g_table = p.g_table;
  float* g_u = p.g_u;
  const int D = g.out_dim();
  launch_1d(b, p.n, [=] DT_LAMBDA(int64_t i) {
    hashgrid_backward_point(g, table, u + 3 * i, g_out + D * i, g_table, g_u ? g_u + 3 * i : nullptr);
  });
}

void freq_forward(Backend b, const FreqParams& p) {
  op_require(p.n_freq >= 0 && freq_encoding_size(p.n_freq) <= kMaxWidth && p.n_freq <= 20, "freq_forward", "n_freq must be 0..20");
  op_require(p.n == 0 || (p.u && p.out), "freq_forward", "u and out must be non-null for n > 0");
  const int nf = p.n_freq, D = freq_encoding_size(nf);
  const float* u = p.u;
  float* out = p.out;
  launch_1d(b, p.n, [=] DT_LAMBDA(int64_t i) { freq_encode(nf, u + 3 * i, out + D * i); });
}

void freq_backward(Backend b, const FreqParams& p) {
  op_require(p.n_freq >= 0 && p.n_freq <= 20, "freq_backward", "n_freq must be 0..20");
  op_require(p.n == 0 || (p.u && p.g_out && p.g_u), "freq_backward", "u, g_out and g_u must be non-null for n > 0");
  const int nf = p.n_freq, D = freq_encoding_size(nf);
  const float* u = p.u;
  const float* g_out = p.g_out;
  float* g_u = p.g_u;
  launch_1d(b, p.n, [=] DT_LAMBDA(int64_t i) { freq_backward_point(nf, u + 3 * i, g_out + D * i, g_u + 3 * i); });
}

}  // namespace train
}  // namespace dyntet
