// A small JSON parser (RFC 8259, UTF-8 input) for the asset metadata: a DOM of values, nesting
// limited to 64 levels, input validated as UTF-8 first. Not a general-purpose library: it is
// only as fast and as complete as reading one small metadata object needs.
#pragma once
#include <string>
#include <utility>
#include <vector>

namespace dyntet {

struct JsonValue {
  enum Type { Null, Bool, Number, String, Array, Object } type = Null;
  bool boolean = false;
  double number = 0;
  std::string string;
  std::vector<JsonValue> items;                            // Array
  std::vector<std::pair<std::string, JsonValue>> members;  // Object, in file order
  const JsonValue* get(const char* key) const;             // member or nullptr
};

bool utf8_valid(const char* s, size_t n);
// On failure returns false and sets err to "<what> at byte <offset>".
bool json_parse(const std::string& text, JsonValue& out, std::string& err);

}  // namespace dyntet
