// The MWS Recommendations service (docs/design.md §2.1, §3, §4): validates the two
// endpoints, answers from the last-updated-keyed cache, and otherwise makes
// the upstream calls through one call site (throttle -> sign -> HTTP client),
// coalesced, with stale fallback. Plain data in, plain data out: the route
// adapter (mws_routes.hpp) parses the request and renders the answer.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <memory>
#include <optional>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/config.hpp"
#include "core/cache/index.hpp"
#include "core/cache/policy.hpp"
#include "core/mws/model.hpp"
#include "core/problem.hpp"
#include "core/services/common.hpp"

namespace recgate {

class Store;
class Throttler;
namespace upstream {
class Upstream;
}
namespace refresh {
class Source;
}
namespace redis {
class SharedCache;
class Lease;
}

// One category of a recommendations answer: the cached list (rendered
// straight from the entry, never copied) and how it was served.
struct MwsCategoryAnswer {
  std::string category;
  cache::EntryPtr entry;
  cache::Outcome outcome;
};
struct MwsAnswer {
  std::string account;
  std::string marketplace_id;
  std::vector<MwsCategoryAnswer> categories;  // in the query's order
  svc::CacheFacts cache;
};
// GET last-updated: the snapshot's time per category the marketplace offers.
struct MwsLastUpdatedAnswer {
  std::string account;
  std::string marketplace_id;
  std::int64_t checked_at_ms = 0;
  cache::Outcome outcome = cache::Outcome::hit;
  svc::NamedTimes last_updated;
  svc::CacheFacts cache;
};

class MwsService {
 public:
  // Loads stored snapshots (blocking, small), then warms the memory index
  // with the most recent answers in the background, within cache.memory_*.
  MwsService(const Config& cfg, Store& store, upstream::Upstream& client, Throttler& throttler,
             boost::asio::any_io_executor ex, const svc::Clock& clock = svc::system_clock());
  ~MwsService();
  MwsService(const MwsService&) = delete;
  MwsService& operator=(const MwsService&) = delete;

  // [scale] Redis as the shared cache tier and cross-replica lease (both
  // outlive the service). Before the first request; never called: single process.
  void share_through(redis::SharedCache& cache, redis::Lease& lease);

  // 404 unknown_account when no MWS account `account` is configured.
  std::optional<Problem> check_account(const std::string& account) const;

  // The answer for a validated query: every category from the cache, or
  // fetched (coalesced), or stale within max_stale_s; else a problem.
  boost::asio::awaitable<Expected<MwsAnswer>> recommendations(const std::string& account, const mws::Query& query,
                                                               const svc::RequestOptions& options);
  // The cache-hit fast path: answers from memory alone, or nullopt (then
  // call recommendations()). Never blocks, never touches the disk.
  std::optional<MwsAnswer> try_hit(std::string account, const mws::Query& query,
                                   const cache::RequestDirectives& directives);
  boost::asio::awaitable<Expected<MwsLastUpdatedAnswer>> last_updated(const std::string& account,
                                                                       const std::string& marketplace_id,
                                                                       const svc::RequestOptions& options);

  // DELETE /v1/cache: removes matching recommendations (and, without a
  // category, the matching last-updated snapshots); returns the number of
  // recommendation entries purged.
  boost::asio::awaitable<std::size_t> purge(std::optional<std::string> account, std::optional<std::string> marketplace,
                                            std::optional<std::string> category);

  // [refresh] What the refresh-ahead scheduler asks of this service (hot
  // answers due, and their refetch with spare quota); lives as long as it.
  refresh::Source& refresh_source();

  struct Stats {
    std::size_t memory_entries = 0;
    std::size_t memory_bytes = 0;
    std::size_t snapshots = 0;
    std::size_t in_flight = 0;
    // Upstream health as last seen (0: never).
    std::int64_t last_success_ms = 0;
    std::int64_t last_failure_ms = 0;
    std::string last_failure;  // problem code and upstream code, no secrets
  };
  Stats stats() const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace recgate
