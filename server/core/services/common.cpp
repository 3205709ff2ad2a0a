// Helpers shared by the services (see common.hpp).
#include "core/services/common.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <unordered_map>

#include "core/cache/policy.hpp"
#include "core/log.hpp"
#include "core/metrics.hpp"
#include "core/throttle/throttler.hpp"

namespace recgate::svc {

std::string iso_seconds(std::int64_t ms) {
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string hex64(std::uint64_t v) {  // by hand: snprintf was ~1.5 % of a hit's CPU
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i, v >>= 4) out[static_cast<std::size_t>(i)] = kHex[v & 0xf];
  return out;
}

void json_string(std::string& out, std::string_view s) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
  out.append(sb.GetString(), sb.GetSize());
}

void json_opt_string(std::string& out, const std::optional<std::string>& s) {
  if (s) json_string(out, *s);
  else out += "null";
}

void json_named_times(std::string& out, const NamedTimes& times) {
  out += '{';
  bool first = true;
  for (const auto& [name, v] : times) {
    if (!first) out += ',';
    first = false;
    json_string(out, name);
    out += ':';
    json_opt_string(out, v);
  }
  out += '}';
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

// The 429 of a request whose limit passed while another replica's identical
// upstream call held the lease: that call's answer lands in the shared cache
// when it ends (usually within a second), so the client may come back then.
QueueReject lease_wait_reject() {
  return [](double max_wait_s) {
    char waited[32];
    std::snprintf(waited, sizeof waited, "%.1f", max_wait_s);
    Problem p = make_problem(429, "quota_wait_exceeded",
                             std::string("an identical upstream call by another recgate replica was still running "
                                         "after the ") +
                                 waited + " s this request may wait (Prefer: wait); its answer will be in the "
                                          "shared cache when it ends");
    p.headers.emplace_back("Retry-After", "1");
    return p;
  };
}

Problem lease_wait_cancelled() {
  return to_problem(Error::client_closed, "every request waiting on another replica's upstream call left");
}

Asked resolve(const Throttler& throttler, const RequestOptions& o, int default_wait_s) {
  Asked a;
  a.directives = o.directives;
  a.wait.limit = throttler.limit_for(std::chrono::seconds(o.wait_s.value_or(default_wait_s)));
  a.wait.client = o.client;
  a.request_id = o.request_id;
  return a;
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

void log_not_stored(const char* what, const std::exception& e) {
  log_error("cannot store an answer in the database; it is sent without \"stored\"",
            {{"what", what}, {"error", e.what()}});
}

}  // namespace recgate::svc
