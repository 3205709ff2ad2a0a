// Percent-decoding, query parsing, host:port splitting and the access log's
// target scrub (url.hpp).
#include "core/http/url.hpp"

#include <cctype>

namespace recgate::http {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

bool secret_name(std::string_view key) {
  std::string lower;
  for (char c : key) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return lower.find("key") != std::string::npos || lower.find("token") != std::string::npos ||
         lower.find("secret") != std::string::npos || lower.find("signature") != std::string::npos;
}

}  // namespace

bool uri_decode(std::string_view s, std::string& out) {
  std::string result;
  result.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      result += s[i];
      continue;
    }
    if (i + 2 >= s.size()) return false;
    const int hi = hex_value(s[i + 1]);
    const int lo = hex_value(s[i + 2]);
    if (hi < 0 || lo < 0) return false;
    result += static_cast<char>((hi << 4) | lo);
    i += 2;
  }
  out = std::move(result);
  return true;
}

bool parse_query(std::string_view q, QueryParams& out) {
  std::size_t i = 0;
  while (i <= q.size() && !q.empty()) {
    auto amp = q.find('&', i);
    if (amp == std::string_view::npos) amp = q.size();
    auto part = q.substr(i, amp - i);
    if (!part.empty()) {
      auto eq = part.find('=');
      std::string k(part.substr(0, eq)), v(eq == std::string_view::npos ? "" : part.substr(eq + 1));
      for (auto& c : k)
        if (c == '+') c = ' ';
      for (auto& c : v)
        if (c == '+') c = ' ';
      std::string dk, dv;
      if (!uri_decode(k, dk) || !uri_decode(v, dv)) return false;
      out.emplace_back(std::move(dk), std::move(dv));
    }
    if (amp == q.size()) break;
    i = amp + 1;
  }
  return true;
}

bool split_host_port(const std::string& s, std::string& host, std::uint16_t& port) {
  std::string p;
  if (!s.empty() && s[0] == '[') {
    auto close = s.find(']');
    if (close == std::string::npos || close + 1 >= s.size() || s[close + 1] != ':') return false;
    host = s.substr(1, close - 1);
    p = s.substr(close + 2);
  } else {
    auto colon = s.rfind(':');
    if (colon == std::string::npos || colon == 0) return false;
    host = s.substr(0, colon);
    p = s.substr(colon + 1);
    if (host.find(':') != std::string::npos) return false;
  }
  if (p.empty() || p.size() > 5 || p.find_first_not_of("0123456789") != std::string::npos) return false;
  unsigned long v = std::stoul(p);
  if (v > 65535 || host.empty()) return false;
  port = static_cast<std::uint16_t>(v);
  return true;
}

std::string redact_target(std::string_view target) {
  // Our API never carries secrets in the target, but scrub anything that looks like one.
  auto q = target.find('?');
  if (q == std::string_view::npos) return std::string(target);
  std::string out(target.substr(0, q + 1));
  std::string_view query = target.substr(q + 1);
  std::size_t i = 0;
  bool first = true;
  while (i <= query.size()) {
    auto amp = query.find('&', i);
    if (amp == std::string_view::npos) amp = query.size();
    auto part = query.substr(i, amp - i);
    auto eq = part.find('=');
    std::string key(part.substr(0, eq));
    if (!first) out += '&';
    first = false;
    out += secret_name(key) && eq != std::string_view::npos ? key + "=REDACTED" : std::string(part);
    if (amp == query.size()) break;
    i = amp + 1;
  }
  return out;
}

}  // namespace recgate::http
