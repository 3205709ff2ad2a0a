// The shared cache tier in Redis (see shared_cache.hpp): one GET per lookup,
// one SET ... PX per store.
#include "core/redis/shared_cache.hpp"

#include <charconv>
#include <optional>
#include <string_view>
#include <vector>

#include "core/redis/client.hpp"

namespace recgate::redis {

namespace {

constexpr std::string_view kVersion = "rg1";

void append_field(std::string& out, std::string_view v) {
  out += std::to_string(v.size());
  out += ':';
  out += v;
}

// The fields of an encoded value, or nullopt when it is malformed.
std::optional<std::vector<std::string_view>> split_fields(std::string_view v) {
  std::vector<std::string_view> out;
  while (!v.empty()) {
    const auto colon = v.find(':');
    if (colon == std::string_view::npos || colon == 0 || colon > 12) return std::nullopt;
    std::size_t n = 0;
    if (std::from_chars(v.data(), v.data() + colon, n).ptr != v.data() + colon) return std::nullopt;
    v.remove_prefix(colon + 1);
    if (n > v.size()) return std::nullopt;
    out.push_back(v.substr(0, n));
    v.remove_prefix(n);
  }
  return out;
}

std::optional<std::int64_t> to_int(std::string_view s) {
  std::int64_t v = 0;
  if (s.empty() || std::from_chars(s.data(), s.data() + s.size(), v).ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

}  // namespace

std::string encode_entry(const cache::Entry& e) {
  std::string out;
  const std::string body = e.body();
  out.reserve(body.size() + 96);
  append_field(out, kVersion);
  append_field(out, e.has_validator() ? "1" : "0");
  append_field(out, e.validator_view());
  append_field(out, std::to_string(e.fetched_at_ms));
  append_field(out, std::to_string(e.expires_at_ms));
  append_field(out, body);
  return out;
}

cache::MutableEntryPtr decode_entry(const std::string& value) {
  auto f = split_fields(value);
  if (!f || f->size() != 6 || (*f)[0] != kVersion) return nullptr;
  auto fetched = to_int((*f)[3]);
  auto expires = to_int((*f)[4]);
  if (!fetched || !expires) return nullptr;
  cache::EntryData d;
  if ((*f)[1] == "1") d.validator = std::string((*f)[2]);
  d.fetched_at_ms = *fetched;
  d.expires_at_ms = *expires;
  d.body = std::string((*f)[5]);
  return cache::make_entry(d);
}

std::string SharedCache::redis_key(const std::string& kind, const std::string& key) const {
  return prefix_ + "cache:" + kind + ":" + key;
}

boost::asio::awaitable<cache::MutableEntryPtr> SharedCache::get(const std::string& kind, const std::string& key) {
  Command cmd{"GET", redis_key(kind, key)};
  auto r = co_await client_.command(std::move(cmd));
  if (!r || r->type != Reply::Type::string) co_return nullptr;
  co_return decode_entry(r->str);
}

boost::asio::awaitable<bool> SharedCache::put(const std::string& kind, const std::string& key, cache::EntryPtr e,
                                              std::chrono::seconds ttl) {
  const long long ms = std::max<long long>(1000, std::chrono::milliseconds(ttl).count());
  Command cmd{"SET", redis_key(kind, key), encode_entry(*e), "PX", std::to_string(ms)};
  auto r = co_await client_.command(std::move(cmd));
  co_return r && !r->is_error();
}

}  // namespace recgate::redis
