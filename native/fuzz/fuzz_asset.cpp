// libFuzzer target of the .dyntet reader: every input must be read or refused with a code, with
// no memory error (built with ASan/UBSan by `node native/build.mjs --fuzz`).
//   native/build-fuzz/fuzz_asset native/fuzz/corpus -max_total_time=60
#include <cstddef>
#include <cstdint>
#include "core/asset.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  dyntet::Asset asset;
  const dyntet::AssetStatus s = dyntet::read_asset(data, size, asset);
  if (!s.ok() && s.message.empty()) __builtin_trap();  // every refusal explains itself
  if (s.ok()) {
    // What was read must write back and read again.
    std::vector<uint8_t> again;
    if (!dyntet::write_asset(asset, again).ok()) __builtin_trap();
    dyntet::Asset twice;
    if (!dyntet::read_asset(again.data(), again.size(), twice).ok()) __builtin_trap();
  }
  return 0;
}
