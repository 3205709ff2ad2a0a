// Small helpers shared by the libFuzzer targets: split an input into fields,
// check a string is one JSON document, and fail loudly (abort, so libFuzzer
// saves the input) when a property the code promises does not hold.
#pragma once

#include <rapidjson/document.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace recgate::fuzz {

inline std::string_view as_view(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// The first `n` '\n'-separated fields; the last one keeps the rest (it may hold
// newlines). Missing fields are empty.
inline std::vector<std::string_view> fields(std::string_view in, std::size_t n) {
  std::vector<std::string_view> out;
  while (out.size() + 1 < n) {
    const auto nl = in.find('\n');
    if (nl == std::string_view::npos) break;
    out.push_back(in.substr(0, nl));
    in.remove_prefix(nl + 1);
  }
  out.push_back(in);
  out.resize(n);
  return out;
}

// Used on what recgate produces (never deeply nested), not on fuzz input.
inline bool is_json(std::string_view s) {
  rapidjson::Document d;
  d.Parse(s.data(), s.size());
  return !d.HasParseError();
}

[[noreturn]] inline void fail(const char* what, std::string_view detail) {
  std::fprintf(stderr, "property violated: %s\n  %.*s\n", what, static_cast<int>(std::min<std::size_t>(detail.size(), 2000)),
               detail.data());
  std::abort();
}

}  // namespace recgate::fuzz

#define FUZZ_CHECK(cond, detail) \
  do {                           \
    if (!(cond)) ::recgate::fuzz::fail(#cond, (detail)); \
  } while (0)
