// Helpers shared by the services (see common.hpp).
#include "core/services/common.hpp"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <unordered_map>

#include "core/cache/policy.hpp"
#include "core/log.hpp"
#include "core/metrics.hpp"
#include "core/throttle/throttler.hpp"

namespace recgate::svc {

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string iso_seconds(std::int64_t ms) {
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string hex64(std::uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

void key_append(std::string& key, std::string_view part) {
  key += std::to_string(part.size());
  key += ':';
  key += part;
}

std::string key_list(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) key_append(out, item);
  return out;
}

std::vector<std::string> key_split(std::string_view key) {
  std::vector<std::string> parts;
  while (!key.empty()) {
    const std::size_t colon = key.find(':');
    if (colon == std::string_view::npos || colon == 0 || colon > 10) return {};
    std::size_t n = 0;
    for (char c : key.substr(0, colon)) {
      if (c < '0' || c > '9') return {};
      n = n * 10 + static_cast<std::size_t>(c - '0');
    }
    key.remove_prefix(colon + 1);
    if (n > key.size()) return {};
    parts.emplace_back(key.substr(0, n));
    key.remove_prefix(n);
  }
  return parts;
}

void count_lookup(std::string_view api, cache::Outcome o) {
  // Memoized per thread: this runs on every cache hit.
  thread_local std::unordered_map<std::string, Counter*> memo;
  std::string key(api);
  key += cache::outcome_name(o);
  auto it = memo.find(key);
  if (it == memo.end())
    it = memo.emplace(std::move(key),
                      &Metrics::instance().counter("recgate_cache_lookups_total",
                                                   "Cache lookups, by api and result (hit, miss, stale).",
                                                   {{"api", std::string(api)}, {"result", cache::outcome_name(o)}}))
             .first;
  it->second->inc();
}

void count_coalesced(std::string_view kind) {
  Metrics::instance()
      .counter("recgate_coalesced_requests_total", "Requests that joined an identical upstream call in flight.",
               {{"kind", std::string(kind)}})
      .inc();
}

void register_cache_gauges(const std::string& api, std::function<std::pair<std::size_t, std::size_t>()> sizes) {
  Metrics::instance().add_collector([api, sizes = std::move(sizes)](Metrics& m) {
    auto [entries, bytes] = sizes();
    m.gauge("recgate_cache_entries", "Cache entries held in memory, by api.", {{"api", api}})
        .set(static_cast<double>(entries));
    m.gauge("recgate_cache_memory_bytes", "Approximate bytes of cached bodies held in memory, by api.", {{"api", api}})
        .set(static_cast<double>(bytes));
  });
}

QuotaWait request_quota_wait(const Throttler& throttler, const http::Context& ctx, int default_wait_s) {
  int wait = default_wait_s;
  if (auto w = cache::parse_prefer_wait(std::string(ctx.header("Prefer")))) wait = std::min(*w, 3600);
  QuotaWait q;
  q.limit = throttler.limit_for(std::chrono::seconds(wait));
  q.client = ctx.client;
  return q;
}

RequestOptions request_options(const Throttler& throttler, const http::Context& ctx, int default_wait_s) {
  RequestOptions o;
  o.directives = cache::parse_cache_control(std::string(ctx.header("Cache-Control")));
  o.wait = request_quota_wait(throttler, ctx, default_wait_s);
  o.request_id = ctx.request_id;
  return o;
}

Problem unknown_account_problem(const char* api, const std::string& name, const std::string& known) {
  return to_problem(Error::unknown_account, std::string("no ") + api + " account named \"" + name +
                                                "\" is configured" +
                                                (known.empty() ? std::string(" (none are)") : "; configured: " + known));
}

std::string base_url(std::string configured, const std::string& fallback) {
  if (configured.empty()) return fallback;
  while (!configured.empty() && configured.back() == '/') configured.pop_back();
  return configured;
}

http::Response cached_response(http::Context& ctx, std::string body, const std::string& cache_status,
                               std::int64_t age, const std::string& etag) {
  const bool not_modified = !etag.empty() && cache::if_none_match(std::string(ctx.header("If-None-Match")), etag);
  http::Response res = not_modified ? http::text_response(304, "", "application/json")
                                    : http::json_response(200, std::move(body));
  if (not_modified) res.erase(boost::beast::http::field::content_type);
  res.set("Cache-Status", cache_status);
  res.set("Age", std::to_string(age));
  if (!etag.empty()) res.set(boost::beast::http::field::etag, etag);
  res.set(boost::beast::http::field::cache_control, "private, no-cache");
  ctx.log_fields.emplace_back("cache", cache_status);
  return res;
}

void log_not_stored(const char* what, const std::exception& e) {
  log_error("cannot store an answer in the database; it is sent without \"stored\"",
            {{"what", what}, {"error", e.what()}});
}

}  // namespace recgate::svc
