// Parsing and masking of redis.url; see url.hpp.
#include "core/redis/url.hpp"

#include <charconv>

namespace recgate::redis {
namespace {

constexpr std::string_view kScheme = "redis://";
constexpr const char* kForm = "must be redis://[:password@]host:port/db, e.g. redis://redis:6379/0";

bool fail(std::string* fault, const std::string& why) {
  if (fault) *fault = why;
  return false;
}

template <class T>
bool parse_number(std::string_view s, T& out, T max) {
  if (s.empty() || s.size() > 5) return false;
  unsigned long v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v > static_cast<unsigned long>(max)) return false;
  out = static_cast<T>(v);
  return true;
}

// Splits "host:port" (an IPv6 host in brackets).
bool parse_host_port(std::string_view hp, Url& u, std::string* fault) {
  std::string_view port;
  if (!hp.empty() && hp.front() == '[') {
    auto close = hp.find(']');
    if (close == std::string_view::npos || close + 1 >= hp.size() || hp[close + 1] != ':')
      return fail(fault, std::string("the IPv6 host needs [addr]:port; ") + kForm);
    u.host = std::string(hp.substr(1, close - 1));
    port = hp.substr(close + 2);
  } else {
    auto colon = hp.rfind(':');
    if (colon == std::string_view::npos) return fail(fault, std::string("the port is missing; ") + kForm);
    u.host = std::string(hp.substr(0, colon));
    port = hp.substr(colon + 1);
  }
  if (u.host.empty()) return fail(fault, std::string("the host is missing; ") + kForm);
  std::uint16_t p = 0;
  if (!parse_number<std::uint16_t>(port, p, 65535) || p == 0)
    return fail(fault, std::string("the port must be 1 to 65535; ") + kForm);
  u.port = p;
  return true;
}

}  // namespace

std::optional<Url> parse_url(const std::string& text, std::string* fault) {
  std::string_view s(text);
  if (s.substr(0, kScheme.size()) != kScheme) {
    fail(fault, std::string("the scheme must be redis:// (TLS rediss:// is not supported); ") + kForm);
    return std::nullopt;
  }
  s.remove_prefix(kScheme.size());
  Url u;
  if (auto at = s.rfind('@'); at != std::string_view::npos) {
    std::string_view userinfo = s.substr(0, at);
    if (userinfo.empty() || userinfo.front() != ':') {
      fail(fault, std::string("the credentials must be :password@ (no user name); ") + kForm);
      return std::nullopt;
    }
    u.password = std::string(userinfo.substr(1));
    s.remove_prefix(at + 1);
  }
  auto slash = s.find('/');
  if (!parse_host_port(s.substr(0, slash), u, fault)) return std::nullopt;
  if (slash != std::string_view::npos && slash + 1 < s.size() &&
      !parse_number<int>(s.substr(slash + 1), u.db, 15)) {
    fail(fault, std::string("the database must be a number from 0 to 15; ") + kForm);
    return std::nullopt;
  }
  return u;
}

std::string mask_url(const std::string& text) {
  if (text.compare(0, kScheme.size(), kScheme) != 0) return text.empty() ? text : "********";
  auto at = text.rfind('@');
  if (at == std::string::npos || at < kScheme.size()) return text;
  return std::string(kScheme) + ":********" + text.substr(at);
}

}  // namespace recgate::redis
