// Pure helpers over the upstream message values (see message.hpp): header
// lookup and error-kind names. No Boost, no I/O.
#include "core/upstream/message.hpp"

namespace recgate::upstream {
namespace {

bool iequals_ascii(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

}  // namespace

std::string_view Response::header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (iequals_ascii(key, name)) return value;
  }
  return {};
}

std::string_view to_string(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::none: return "none";
    case ErrorKind::bad_url: return "bad_url";
    case ErrorKind::resolve_failed: return "resolve_failed";
    case ErrorKind::connect_failed: return "connect_failed";
    case ErrorKind::tls_failed: return "tls_failed";
    case ErrorKind::timeout: return "timeout";
    case ErrorKind::dropped: return "dropped";
    case ErrorKind::too_large: return "too_large";
    case ErrorKind::protocol: return "protocol";
  }
  return "unknown";
}

}  // namespace recgate::upstream
