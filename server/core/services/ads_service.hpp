// The Ads product recommendations service (docs/design.md §2.2, §3, §4): validates
// POST /v1/ads/{account}/product-recommendations, answers from the TTL cache
// (memory index over SQLite ads_answers), and otherwise makes the one upstream
// call (throttle -> LWA access token -> HTTP client), coalesced, with stale
// fallback. Holds the LWA tokens (refreshed once per account for all callers,
// persisted in lwa_tokens). Called by the router; calls cache, throttle,
// upstream client and store.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/config.hpp"
#include "core/http/server.hpp"

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

class AdsService {
 public:
  // Loads stored tokens and the most recent answers into memory (blocking, at
  // start-up only).
  AdsService(const Config& cfg, Store& store, upstream::Upstream& client, Throttler& throttler,
             boost::asio::any_io_executor ex);
  ~AdsService();
  AdsService(const AdsService&) = delete;
  AdsService& operator=(const AdsService&) = delete;

  // POST /v1/ads/{account}/product-recommendations: upstream's JSON body
  // unchanged, with Cache-Status, Age and ETag; RFC 9457 problems otherwise.
  // [scale] Redis as the shared cache tier and cross-replica lease (both
  // outlive the service). Before the first request; never called: single process.
  void share_through(redis::SharedCache& cache, redis::Lease& lease);

  boost::asio::awaitable<http::Response> product_recommendations(http::Context& ctx);

  // DELETE /v1/cache: removes the stored answers of `account` (all accounts
  // when nullopt); returns how many.
  boost::asio::awaitable<std::size_t> purge(std::optional<std::string> account);

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
