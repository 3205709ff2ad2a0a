// Small rapidjson writing helpers shared by the sandbox's statistics and
// admin answers (state.cpp, ads_state.cpp), so each stats section is a few
// calls instead of hand-written loops.
#pragma once

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace recgate::sandbox::json_out {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

inline void key(Writer& w, std::string_view k) { w.Key(k.data(), static_cast<rapidjson::SizeType>(k.size())); }
inline void str(Writer& w, std::string_view s) { w.String(s.data(), static_cast<rapidjson::SizeType>(s.size())); }

inline std::string name_of(const std::string& s) { return s; }
inline std::string name_of(int n) { return std::to_string(n); }

// A counter map as one JSON object {"name": count, ...} (int keys as strings).
template <class K>
void counts(Writer& w, std::string_view k, const std::map<K, std::uint64_t>& m) {
  key(w, k);
  w.StartObject();
  for (const auto& [name, n] : m) {
    key(w, name_of(name));
    w.Uint64(n);
  }
  w.EndObject();
}

inline void uint_field(Writer& w, std::string_view k, std::uint64_t v) {
  key(w, k);
  w.Uint64(v);
}

inline void str_field(Writer& w, std::string_view k, std::string_view v) {
  key(w, k);
  str(w, v);
}

}  // namespace recgate::sandbox::json_out
