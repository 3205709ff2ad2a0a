// Retention of the SQLite cache (see retention.hpp): what can no longer be
// served goes, and past the byte bound the oldest answers go first.
#include "core/cache/retention.hpp"

#include <malloc.h>
#include <sqlite3.h>

#include <algorithm>
#include <limits>

#include "core/config.hpp"
#include "core/log.hpp"
#include "core/store.hpp"

namespace recgate::cache {

RetentionConfig retention_config(const Config& cfg) {
  return RetentionConfig{cfg.mws.max_stale_s, cfg.mws.listing_quality_ttl_s, cfg.ads.max_stale_s,
                         static_cast<std::uint64_t>(cfg.cache.max_db_bytes)};
}

std::size_t prune_unusable(Db& db, const RetentionConfig& cfg, std::int64_t now_ms) {
  // The snapshot's timestamp for the row's category, as stored by the MWS
  // service (a JSON object category -> ISO time or null); NULL when there is
  // none, and then the row lives by listing_quality_ttl_s like ListingQuality
  // (cache/policy.cpp classify()).
  db.prepare(
        "DELETE FROM mws_recommendations AS r WHERE r.fetched_at < ?1 AND NOT ("
        " CASE WHEN r.category = 'ListingQuality' OR (SELECT json_extract(s.body, '$.' || r.category) FROM"
        "  mws_snapshot AS s WHERE s.account = r.account AND s.marketplace = r.marketplace) IS NULL"
        " THEN r.fetched_at > ?2"
        " ELSE r.last_updated IS (SELECT json_extract(s.body, '$.' || r.category) FROM mws_snapshot AS s"
        "  WHERE s.account = r.account AND s.marketplace = r.marketplace) END)")
      .bind(1, now_ms - cfg.mws_max_stale_s * 1000)
      .bind(2, now_ms - cfg.listing_quality_ttl_s * 1000)
      .step();
  std::size_t n = static_cast<std::size_t>(db.changes());
  db.prepare("DELETE FROM ads_answers WHERE expires_at < ?1 AND fetched_at < ?2")
      .bind(1, now_ms)
      .bind(2, now_ms - cfg.ads_max_stale_s * 1000)
      .step();
  n += static_cast<std::size_t>(db.changes());
  return n;
}

namespace {
std::int64_t pragma_int(Db& db, const char* sql) {
  auto st = db.prepare(sql);
  return st.step() ? st.int64(0) : 0;
}

// One round: the 64 oldest answers over both tables (all rows at or before
// the 64th oldest fetched_at), never those at the newest fetched_at.
std::size_t delete_oldest_batch(Db& db) {
  constexpr const char* kAll =
      "(SELECT fetched_at AS f FROM mws_recommendations UNION ALL SELECT fetched_at FROM ads_answers)";
  auto c = db.prepare((std::string("SELECT (SELECT f FROM ") + kAll + " ORDER BY f LIMIT 1 OFFSET 63), (SELECT MAX(f) FROM " +
                       kAll + ")")
                          .c_str());
  if (!c.step() || c.is_null(1)) return 0;
  const std::int64_t newest = c.int64(1);
  const std::int64_t cutoff = c.is_null(0) ? newest : c.int64(0);
  std::size_t n = 0;
  db.prepare("DELETE FROM mws_recommendations WHERE fetched_at <= ?1 AND fetched_at < ?2").bind(1, cutoff).bind(2, newest).step();
  n += static_cast<std::size_t>(db.changes());
  db.prepare("DELETE FROM ads_answers WHERE fetched_at <= ?1 AND fetched_at < ?2").bind(1, cutoff).bind(2, newest).step();
  n += static_cast<std::size_t>(db.changes());
  return n;
}
}  // namespace

std::uint64_t used_bytes(Db& db) {
  const std::int64_t pages = pragma_int(db, "PRAGMA page_count") - pragma_int(db, "PRAGMA freelist_count");
  return static_cast<std::uint64_t>(std::max<std::int64_t>(0, pages) * pragma_int(db, "PRAGMA page_size"));
}

std::size_t enforce_db_bound(Db& db, std::uint64_t max_bytes) {
  if (max_bytes == 0 || used_bytes(db) <= max_bytes) return 0;
  // Down to 90%, so that the next writes do not each trim again.
  const std::uint64_t target = max_bytes / 10 * 9;
  std::size_t deleted = 0;
  db.exec("BEGIN IMMEDIATE");
  try {
    // Bounded: every round deletes at least one row or stops.
    for (std::size_t n = 1; n > 0 && used_bytes(db) > target;) {
      n = delete_oldest_batch(db);
      deleted += n;
    }
    db.exec("COMMIT");
  } catch (...) {
    db.exec("ROLLBACK");
    throw;
  }
  // Freed pages go back to the file system (databases created with
  // auto_vacuum=INCREMENTAL; older ones reuse them), and the WAL is folded in.
  db.exec("PRAGMA incremental_vacuum");
  auto ck = db.prepare("PRAGMA wal_checkpoint(TRUNCATE)");
  while (ck.step()) {
  }
  if (deleted > 0) log_info("database trimmed to cache.max_db_bytes", {{"deleted", deleted}, {"max_db_bytes", max_bytes}});
  return deleted;
}

void bound_after_write(Db& db, std::uint64_t max_bytes) noexcept {
  try {
    enforce_db_bound(db, max_bytes);
  } catch (const std::exception& e) {
    log_error("cannot trim the database to cache.max_db_bytes", {{"error", e.what()}});
  }
}

namespace {

constexpr std::int64_t kWarmStepRows = 64;

struct WarmState {
  Store* store;
  std::weak_ptr<void> owner;
  Index* index;
  LoadBudget budget;
  WarmSpec spec;
  std::int64_t cursor_at = std::numeric_limits<std::int64_t>::max();
  std::int64_t cursor_rowid = std::numeric_limits<std::int64_t>::max();
};

// The fill read the whole table once: its pages in this connection's cache
// and the heap its rows passed through are not a working set. Given back, so
// what stays resident is the entries themselves.
void release_fill_memory(Db& db) {
  sqlite3_db_release_memory(db.raw());
  malloc_trim(0);
}

void warm_step(const std::shared_ptr<WarmState>& w, Db& db) {
  auto owner = w->owner.lock();
  if (!owner) return;
  auto st = db.prepare(w->spec.sql);
  st.bind(1, w->cursor_at).bind(2, w->cursor_rowid).bind(3, kWarmStepRows);
  std::int64_t rows = 0;
  bool full = false;
  while (st.step()) {
    ++rows;
    if (!w->budget.take(static_cast<std::size_t>(st.int64(0)))) {
      full = true;
      break;
    }
    w->cursor_at = st.int64(1);
    w->cursor_rowid = st.int64(2);
    auto [key, entry] = w->spec.row(st);
    w->index->put_if_absent(key, std::move(entry));
  }
  st.reset();
  if (!full && rows == kWarmStepRows) {
    w->store->post([w](Db& d) { warm_step(w, d); });
    return;
  }
  release_fill_memory(db);
  if (w->budget.entries() > 0)
    log_info("cache loaded", {{"api", w->spec.what}, {"entries", w->budget.entries()}, {"bytes", w->budget.bytes()},
                              {"stopped_at", full ? "cache.memory_entries or cache.memory_bytes" : "last row"}});
}

}  // namespace

void warm_index(Store& store, std::weak_ptr<void> owner, Index& index, LoadBudget budget, WarmSpec spec) {
  auto w = std::make_shared<WarmState>(WarmState{&store, std::move(owner), &index, budget, std::move(spec)});
  store.post([w](Db& db) { warm_step(w, db); });
}

RetentionTimer::RetentionTimer(boost::asio::io_context& ioc, Store& store, RetentionConfig cfg,
                               std::chrono::seconds every)
    : timer_(ioc), store_(store), cfg_(cfg), every_(std::max(every, std::chrono::seconds(1))) {
  run_once();
  arm();
}

RetentionTimer::~RetentionTimer() { timer_.cancel(); }

void RetentionTimer::run_once() {
  store_.post([cfg = cfg_](Db& db) {
    const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    const std::size_t pruned = prune_unusable(db, cfg, now);
    if (pruned > 0) log_info("database pruned: answers that can no longer be served", {{"deleted", pruned}});
    enforce_db_bound(db, cfg.max_db_bytes);
  });
}

void RetentionTimer::arm() {
  timer_.expires_after(every_);
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    run_once();
    arm();
  });
}

}  // namespace recgate::cache
