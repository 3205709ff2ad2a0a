// The Ads product recommendations service (docs/design.md §2.2, §3, §4): validates
// POST /v1/ads/{account}/product-recommendations, answers from the TTL cache
// (memory index over SQLite ads_answers), and otherwise makes the one upstream
// call (throttle -> LWA access token -> HTTP client), coalesced, with stale
// fallback. Holds the LWA tokens (refreshed once per account for all callers,
// persisted in lwa_tokens). Plain data in, plain data out: the route adapter
// (ads_routes.hpp) validates the request and renders the answer.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/config.hpp"
#include "core/ads/request.hpp"
#include "core/cache/index.hpp"
#include "core/problem.hpp"
#include "core/services/common.hpp"

namespace recgate {

class Store;
class Throttler;
namespace upstream {
class Upstream;
}
namespace redis {
class SharedCache;
class Lease;
}
namespace refresh {
class Source;
}

// The answer: upstream's JSON body in the cached entry (rendered straight
// from it, never copied) and how it was served.
struct AdsAnswer {
  cache::EntryPtr entry;
  svc::CacheFacts cache;
};

class AdsService {
 public:
  // Loads stored tokens and the most recent answers into memory (blocking, at
  // start-up only).
  AdsService(const Config& cfg, Store& store, upstream::Upstream& client, Throttler& throttler,
             boost::asio::any_io_executor ex, const svc::Clock& clock = svc::system_clock());
  ~AdsService();
  AdsService(const AdsService&) = delete;
  AdsService& operator=(const AdsService&) = delete;

  // [scale] Redis as the shared cache tier and cross-replica lease (both
  // outlive the service). Before the first request; never called: single process.
  void share_through(redis::SharedCache& cache, redis::Lease& lease);

  // 404 unknown_account when no Ads account `account` is configured.
  std::optional<Problem> check_account(const std::string& account) const;
  // ads.max_asins: the adAsins bound request validation applies.
  std::size_t max_asins() const;

  // The answer for a validated request: from the TTL cache, or fetched
  // (coalesced; a cursor request directly, never stored), or stale within
  // max_stale_s; else a problem.
  boost::asio::awaitable<Expected<AdsAnswer>> product_recommendations(
      const std::string& account, std::shared_ptr<const ads::ProductRequest> request,
      const svc::RequestOptions& options);

  // DELETE /v1/cache: removes the stored answers of `account` (all accounts
  // when nullopt); returns how many.
  boost::asio::awaitable<std::size_t> purge(std::optional<std::string> account);

  // [refresh] What the refresh-ahead scheduler asks of this service (hot
  // answers near the end of their TTL, and their refetch with spare quota);
  // lives as long as it.
  refresh::Source& refresh_source();

  struct TokenInfo {
    std::string account;
    std::int64_t expires_at_ms = 0;
    std::int64_t refresh_due_ms = 0;
  };
  struct Stats {
    std::size_t memory_entries = 0;
    std::size_t memory_bytes = 0;
    std::size_t in_flight = 0;
    std::vector<TokenInfo> tokens;  // never the token itself
  };
  Stats stats() const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace recgate
