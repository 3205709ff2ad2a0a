// The SQLite cache's bounds: removes rows that can no longer be served and,
// past cache.max_db_bytes, the oldest answers; and warms the in-memory index
// from it at start within the index's bounds, in the background. The
// functions run on the store's database thread (they take Db&); the services
// call enforce_db_bound after each answer they write and warm_index at
// start; RetentionTimer prunes at start and then periodically.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "core/cache/index.hpp"

namespace recgate {

class Db;
class Stmt;
class Store;
struct Config;

namespace cache {

struct RetentionConfig {
  std::int64_t mws_max_stale_s = 86400;
  std::int64_t listing_quality_ttl_s = 3600;
  std::int64_t ads_max_stale_s = 86400;
  std::uint64_t max_db_bytes = 0;  // 0: unbounded
};
RetentionConfig retention_config(const Config& cfg);

// Deletes rows no request can be answered from any more: MWS answers neither
// fresh under the stored snapshot (same lastUpdated; ListingQuality and
// categories without a timestamp: younger than listing_quality_ttl_s) nor
// within mws.max_stale_s; Ads answers past their TTL and ads.max_stale_s.
// Returns the number of rows deleted.
std::size_t prune_unusable(Db& db, const RetentionConfig& cfg, std::int64_t now_ms);

// Bytes in use by the database: (page_count - freelist_count) * page_size.
std::uint64_t used_bytes(Db& db);

// When used_bytes exceeds max_bytes, deletes the oldest answers (MWS and Ads
// together, by fetched_at) until it is at 90% of max_bytes, never the newest
// one, then returns the freed pages to the file system (incremental vacuum,
// WAL checkpoint). Returns the number of rows deleted. max_bytes 0: no bound.
std::size_t enforce_db_bound(Db& db, std::uint64_t max_bytes);

// enforce_db_bound after a write, never throwing: the answer is already
// committed, a failed trim is logged and retried after the next write.
void bound_after_write(Db& db, std::uint64_t max_bytes) noexcept;

// Loads the newest rows into `index` within `budget`, in steps of a few rows
// posted one after another to the store, so other database work (requests,
// /readyz) runs in between and start-up does not wait for it. `sql` selects
// rows older than the cursor (?1 fetched_at, ?2 rowid), newest first, LIMIT
// ?3, with length(body), fetched_at and rowid as its first three columns;
// `row` makes the key and entry from the rest. Stops early once `owner` is
// gone (the service was destroyed).
struct WarmSpec {
  const char* what;  // "mws" or "ads", for the log line
  const char* sql;
  std::function<std::pair<std::string, EntryPtr>(Stmt&)> row;
};
void warm_index(Store& store, std::weak_ptr<void> owner, Index& index, LoadBudget budget, WarmSpec spec);

// Posts prune_unusable + enforce_db_bound to the store now and every
// `every` on `ioc`; stops when destroyed or when ioc stops.
class RetentionTimer {
 public:
  RetentionTimer(boost::asio::io_context& ioc, Store& store, RetentionConfig cfg, std::chrono::seconds every);
  ~RetentionTimer();
  RetentionTimer(const RetentionTimer&) = delete;
  RetentionTimer& operator=(const RetentionTimer&) = delete;

 private:
  void run_once();
  void arm();
  boost::asio::steady_timer timer_;
  Store& store_;
  RetentionConfig cfg_;
  std::chrono::seconds every_;
};

}  // namespace cache
}  // namespace recgate
