// Accept-Encoding parsing (see accept_encoding.hpp).
#include "core/http/accept_encoding.hpp"

#include <algorithm>
#include <optional>

namespace recgate::http {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

// qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ), in thousandths.
std::optional<int> parse_qvalue(std::string_view v) {
  if (v.empty() || (v[0] != '0' && v[0] != '1')) return std::nullopt;
  int q = (v[0] - '0') * 1000;
  if (v.size() == 1) return q;
  if (v[1] != '.' || v.size() > 5) return std::nullopt;
  int scale = 100;
  for (char c : v.substr(2)) {
    if (c < '0' || c > '9') return std::nullopt;
    q += (c - '0') * scale;
    scale /= 10;
  }
  if (q > 1000) return std::nullopt;
  return q;
}

// One element "coding *( OWS ; OWS param )": its coding and q (1000 when
// absent); nullopt when malformed.
struct Coding {
  std::string_view name;
  int q = 1000;
};
std::optional<Coding> parse_element(std::string_view el) {
  Coding c;
  const std::size_t semi = el.find(';');
  c.name = trim(el.substr(0, semi));
  if (c.name.empty()) return std::nullopt;
  std::string_view params = semi == std::string_view::npos ? std::string_view() : el.substr(semi + 1);
  while (!params.empty()) {
    const std::size_t next = params.find(';');
    const std::string_view p = trim(params.substr(0, next));
    params = next == std::string_view::npos ? std::string_view() : params.substr(next + 1);
    const std::size_t eq = p.find('=');
    if (eq == std::string_view::npos || !iequals(trim(p.substr(0, eq)), "q")) continue;
    auto q = parse_qvalue(trim(p.substr(eq + 1)));
    if (!q) return std::nullopt;
    c.q = *q;
  }
  return c;
}

}  // namespace

bool accepts_gzip(std::string_view field) {
  std::optional<int> gzip, identity, star;
  while (!field.empty()) {
    const std::size_t comma = field.find(',');
    const std::string_view el = trim(field.substr(0, comma));
    field = comma == std::string_view::npos ? std::string_view() : field.substr(comma + 1);
    if (el.empty()) continue;
    auto c = parse_element(el);
    if (!c) continue;
    if (iequals(c->name, "gzip") || iequals(c->name, "x-gzip")) gzip = gzip ? std::max(*gzip, c->q) : c->q;
    else if (iequals(c->name, "identity")) identity = c->q;
    else if (c->name == "*") star = c->q;
  }
  const int q_gzip = gzip.value_or(star.value_or(0));
  // identity unlisted ranks nothing: a client listing gzip at any q > 0 gets it (as nginx does).
  const int q_identity = identity.value_or(star.value_or(0));
  return q_gzip > 0 && q_gzip >= q_identity;
}

}  // namespace recgate::http
