// Cache freshness policy (see policy.hpp).
#include "core/cache/policy.hpp"

#include <algorithm>
#include <cctype>

namespace recgate::cache {

namespace {
std::string lower_trim(std::string s) {
  std::size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  s = s.substr(b, e - b);
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::size_t i = 0;
  for (;;) {
    auto j = s.find(sep, i);
    out.push_back(s.substr(i, j == std::string::npos ? std::string::npos : j - i));
    if (j == std::string::npos) break;
    i = j + 1;
  }
  return out;
}
}  // namespace

Verdict classify(const std::string& category, const StoredMeta& e, const SnapshotView& s, std::int64_t now_ms,
                 const PolicyConfig& cfg) {
  const bool ttl_based = category == "ListingQuality" || !s.known || !s.last_updated;
  if (ttl_based) {
    if (category != "ListingQuality" && s.known && e.last_updated) return Verdict::refetch;  // had data, now none
    const std::int64_t age_ms = now_ms - e.fetched_at_ms;
    return age_ms >= 0 && age_ms < cfg.listing_quality_ttl_s * 1000 ? Verdict::fresh : Verdict::refetch;
  }
  return e.last_updated && *e.last_updated == *s.last_updated ? Verdict::fresh : Verdict::refetch;
}

bool stale_allowed(const StoredMeta& e, std::int64_t now_ms, const PolicyConfig& cfg) {
  return now_ms - e.fetched_at_ms <= cfg.max_stale_s * 1000;
}

bool snapshot_due(std::optional<std::int64_t> checked_at_ms, std::int64_t now_ms, bool force, const PolicyConfig& cfg) {
  if (force || !checked_at_ms) return true;
  const std::int64_t age = now_ms - *checked_at_ms;
  return age < 0 || age >= cfg.check_interval_s * 1000;
}

std::int64_t age_seconds(std::int64_t fetched_at_ms, std::int64_t now_ms) {
  return std::max<std::int64_t>(0, (now_ms - fetched_at_ms) / 1000);
}

const char* outcome_name(Outcome o) {
  switch (o) {
    case Outcome::hit: return "hit";
    case Outcome::miss: return "miss";
    case Outcome::stale: return "stale";
  }
  return "miss";
}

std::string cache_status(const std::vector<Outcome>& outcomes, bool stored, bool refreshed) {
  bool any_stale = false, any_miss = false;
  for (auto o : outcomes) {
    any_stale = any_stale || o == Outcome::stale;
    any_miss = any_miss || o == Outcome::miss;
  }
  if (any_stale) return "recgate; hit; fwd=stale";
  if (any_miss) return stored ? "recgate; fwd=miss; stored" : "recgate; fwd=miss";
  return refreshed ? "recgate; hit; detail=refreshed" : "recgate; hit";  // [refresh]
}

RequestDirectives parse_cache_control(const std::string& header) {
  RequestDirectives d;
  for (auto& part : split(header, ',')) {
    std::string p = lower_trim(part);
    auto eq = p.find('=');
    std::string name = eq == std::string::npos ? p : lower_trim(p.substr(0, eq));
    if (name == "no-cache") d.no_cache = true;
    else if (name == "only-if-cached") d.only_if_cached = true;
    else if (name == "max-age" && eq != std::string::npos && lower_trim(p.substr(eq + 1)) == "0") d.no_cache = true;
  }
  return d;
}

std::optional<int> parse_prefer_wait(const std::string& header) {
  for (auto& part : split(header, ',')) {
    for (auto& item : split(part, ';')) {
      std::string p = lower_trim(item);
      if (p.rfind("wait", 0) != 0) continue;
      auto eq = p.find('=');
      if (eq == std::string::npos || lower_trim(p.substr(0, eq)) != "wait") continue;
      std::string v = lower_trim(p.substr(eq + 1));
      if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
      if (v.empty() || v.size() > 6 || v.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
      return std::stoi(v);
    }
  }
  return std::nullopt;
}

bool if_none_match(const std::string& header, const std::string& etag) {
  for (auto& part : split(header, ',')) {
    std::string p = part;
    std::size_t b = 0, e = p.size();
    while (b < e && std::isspace(static_cast<unsigned char>(p[b]))) ++b;
    while (e > b && std::isspace(static_cast<unsigned char>(p[e - 1]))) --e;
    p = p.substr(b, e - b);
    if (p == "*") return true;
    if (p.rfind("W/", 0) == 0) p = p.substr(2);  // weak comparison (RFC 9110 §13.1.2)
    if (p == etag) return true;
  }
  return false;
}

}  // namespace recgate::cache
