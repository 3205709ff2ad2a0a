// Pure URL, Host header and User-Agent helpers for the upstream client
// (see url.hpp). No Boost, no I/O.
#include "core/upstream/url.hpp"

#include <array>
#include <utility>

namespace recgate::upstream {
namespace {

char to_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = to_lower(c);
  return out;
}

bool is_alnum(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

bool is_visible_ascii(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u > 0x20 && u < 0x7f;
}

bool valid_reg_name(std::string_view host) {
  if (host.empty() || host.size() > 253) return false;
  for (char c : host) {
    if (!is_alnum(c) && c != '-' && c != '.' && c != '_') return false;
  }
  return true;
}

bool valid_ipv6_literal(std::string_view host) {
  if (host.size() < 2 || host.find(':') == std::string_view::npos) return false;
  for (char c : host) {
    const bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    if (!hex && c != ':' && c != '.') return false;
  }
  return true;
}

std::optional<std::uint16_t> parse_port(std::string_view s) {
  if (s.empty() || s.size() > 5) return std::nullopt;
  unsigned value = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  if (value == 0 || value > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(value);
}

std::uint16_t default_port(std::string_view scheme) { return scheme == "https" ? 443 : 80; }

void append_escaped(std::string& out, std::string_view s, std::string_view specials) {
  for (char c : s) {
    if (specials.find(c) != std::string_view::npos) out += '\\';
    out += c;
  }
}

}  // namespace

std::optional<ParsedUrl> parse_url(std::string_view url) {
  for (char c : url) {
    if (!is_visible_ascii(c)) return std::nullopt;
  }
  const auto sep = url.find("://");
  if (sep == std::string_view::npos) return std::nullopt;
  ParsedUrl out;
  out.scheme = lower(url.substr(0, sep));
  if (out.scheme != "http" && out.scheme != "https") return std::nullopt;

  std::string_view rest = url.substr(sep + 3);
  const auto authority_end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, authority_end);
  std::string_view target = authority_end == std::string_view::npos ? std::string_view{} : rest.substr(authority_end);
  if (authority.find('@') != std::string_view::npos) return std::nullopt;

  std::string_view host;
  std::string_view port;
  bool has_port = false;
  if (!authority.empty() && authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    host = authority.substr(1, close - 1);
    if (!valid_ipv6_literal(host)) return std::nullopt;
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return std::nullopt;
      port = after.substr(1);
      has_port = true;
    }
  } else {
    const auto colon = authority.find(':');
    host = authority.substr(0, colon);
    if (colon != std::string_view::npos) {
      port = authority.substr(colon + 1);
      has_port = true;
    }
    if (!valid_reg_name(host)) return std::nullopt;
  }
  out.host = lower(host);

  out.port = default_port(out.scheme);
  if (has_port && !port.empty()) {
    const auto parsed = parse_port(port);
    if (!parsed) return std::nullopt;
    out.port = *parsed;
  }

  target = target.substr(0, target.find('#'));
  if (target.empty()) {
    out.target = "/";
  } else if (target.front() == '?') {
    out.target = "/" + std::string(target);
  } else {
    out.target = std::string(target);
  }
  return out;
}

bool is_default_port(const ParsedUrl& url) { return url.port == default_port(url.scheme); }

std::string host_header_value(const ParsedUrl& url) {
  const bool ipv6 = url.host.find(':') != std::string::npos;
  std::string out = ipv6 ? "[" + url.host + "]" : url.host;
  if (!is_default_port(url)) out += ":" + std::to_string(url.port);
  return out;
}

std::string mws_user_agent(std::string_view app, std::string_view version) {
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 2> attributes{{
      {"Language", "C++"},
      {"Platform", "Linux"},
  }};
  std::string out;
  append_escaped(out, app, "\\/");
  out += '/';
  append_escaped(out, version, "\\(");
  out += " (";
  bool first = true;
  for (const auto& [name, value] : attributes) {
    if (!first) out += "; ";
    first = false;
    append_escaped(out, name, "\\=");
    out += '=';
    append_escaped(out, value, "\\);");
  }
  out += ')';
  return out;
}

}  // namespace recgate::upstream
