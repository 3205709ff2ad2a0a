// The MWS Recommendations service (docs/design.md §2.1, §3, §4): validates the two
// endpoints, answers from the last-updated-keyed cache, and otherwise makes
// the upstream calls through one call site (throttle -> sign -> HTTP client),
// coalesced, with stale fallback. Called by the router; calls cache, throttle,
// upstream client and store.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <memory>
#include <optional>
#include <cstdint>
#include <string>

#include "core/config.hpp"
#include "core/http/server.hpp"

namespace recgate {

class Store;
class Throttler;
namespace upstream {
class Upstream;
}
namespace refresh {
class Source;
}

class MwsService {
 public:
  // Loads stored snapshots (blocking, small), then warms the memory index
  // with the most recent answers in the background, within cache.memory_*.
  MwsService(const Config& cfg, Store& store, upstream::Upstream& client, Throttler& throttler,
             boost::asio::any_io_executor ex);
  ~MwsService();
  MwsService(const MwsService&) = delete;
  MwsService& operator=(const MwsService&) = delete;

  boost::asio::awaitable<http::Response> recommendations(http::Context& ctx);
  // The cache-hit fast path: answers from memory alone, or nullopt (then
  // call recommendations()). Never blocks, never touches the disk.
  std::optional<http::Response> try_hit(http::Context& ctx);
  boost::asio::awaitable<http::Response> last_updated(http::Context& ctx);

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
