// The throttle layer (docs/design.md §3): one token bucket per (account, operation
// group), a FIFO queue of asynchronous waiters per bucket, the 429 decision,
// upstream-throttle backoff, metrics and bucket levels persisted in SQLite.
// Called by the MWS and Ads services before every upstream call; calls store.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/config.hpp"
#include "core/problem.hpp"
#include "core/throttle/adaptive.hpp"
#include "core/throttle/token_bucket.hpp"
#include "core/throttle/wait_limit.hpp"

namespace recgate {

class Store;
class SharedBuckets;

// A token, consumed at grant time: make the upstream call right away.
struct Grant {
  double granted_at = 0;      // Unix epoch seconds on the throttler's clock
  double waited_s = 0;        // time spent queued
  std::size_t position = 0;   // queue position on arrival; 0: served at once
};

// One bucket, for GET /v1/status and tests.
struct BucketStatus {
  std::string account;
  std::string operation;  // the group, e.g. "mws.ListRecommendations"
  double tokens = 0;      // estimated upstream level now
  double available = 0;   // whole grants possible now
  double capacity = 0;
  double restore_per_s = 0;
  std::size_t waiters = 0;
  double next_token_s = 0;  // seconds until the next grant is possible (0: now)
  std::optional<double> learnt_restore_per_s;  // adaptive buckets: the rate learnt (nullopt: fixed)
  std::optional<double> last_throttle_at;      // Unix epoch seconds of the last upstream throttle
};

// The bucket group of an operation: "mws.ListRecommendationsByNextToken" shares
// "mws.ListRecommendations"; every other name is its own group.
std::string throttle_group(std::string_view operation);

// The spec of a group: built-in defaults (MWS from Amazon's documentation,
// GetServiceStatus 2 / one per 300 s, ads.ProductRecommendations 10 / 2 per s,
// lwa.Token 5 / 1 per s), overridden by throttle.buckets; margin and reserve
// from throttle.margin_ms / throttle.reserve_tokens. nullopt: unknown group.
std::optional<BucketSpec> bucket_spec_for(const ThrottleConfig& cfg, std::string_view group);

// The AIMD spec of a group (throttle.adaptive, built on the group's bucket
// spec), nullopt when the group's rate is fixed: groups not configured are
// adaptive for ads.* and lwa.* (unpublished limits), fixed for mws.*.
std::optional<AdaptiveSpec> adaptive_spec_for(const ThrottleConfig& cfg, std::string_view group,
                                              const BucketSpec& bucket);

// Unix epoch seconds from the system (wall) clock, so levels survive a restart.
double wall_clock_seconds();

class Throttler {
 public:
  using Clock = std::function<double()>;

  // Loads persisted levels with store->run_sync (store may be null: no
  // persistence). A bucket without a stored row starts full: it never granted
  // a token, since every grant is written. When the previous process did not
  // stop cleanly (store->previous_run_clean() false), no level is trusted and
  // every bucket starts empty.
  Throttler(const ThrottleConfig& cfg, Store* store, Clock now = wall_clock_seconds);
  ~Throttler();
  Throttler(const Throttler&) = delete;
  Throttler& operator=(const Throttler&) = delete;

  // Waits in FIFO order for a token of (account, throttle_group(operation)).
  // Rejects at once (429 quota_wait_exceeded, with Retry-After, RateLimit-Policy
  // and RateLimit) when this request's turn would come after limit->deadline(),
  // or later on if a backoff pushes it beyond (a flight's deadline is re-read
  // on every wake-up: it moves as riders join and leave). While queued, the
  // limit is told so (WaitLimit::queued). A non-empty `client` may hold at most
  // throttle.max_queue_per_client places of one bucket's queue; beyond, 429 at
  // once. Cancelling the awaiting coroutine (its cancellation slot) leaves the
  // queue and spends no token.
  //
  // Must be awaited from a coroutine whose executor serialises its handlers
  // (a strand, or an io_context run by one thread): waiters are woken by
  // posting to that executor.
  boost::asio::awaitable<Expected<Grant>> acquire(std::string account, std::string operation, WaitLimitPtr limit,
                                                  std::string client = {});
  // The same with a limit of max_wait from now and no client.
  boost::asio::awaitable<Expected<Grant>> acquire(std::string account, std::string operation,
                                                  std::chrono::milliseconds max_wait);

  // [refresh] A token from spare quota, or nullopt at once: granted only when
  // no request waits on the bucket and its level stays at or above a grant's
  // floor (1 + reserve_tokens + margin) after the take, so the next client is
  // still served at once. Never queues: background refreshes must not take a
  // place ahead of a client (the caller retries on a later tick).
  // Shared buckets ([scale]): decided in Redis across replicas.
  boost::asio::awaitable<std::optional<Grant>> try_take_spare(std::string account, std::string operation);

  // The throttler's clock (seconds) and a request's wait limit on it.
  double now() const;
  WaitLimitPtr limit_for(std::chrono::milliseconds max_wait) const;

  // The upstream throttled us anyway (MWS 503 RequestThrottled/QuotaExceeded,
  // Ads 429): the bucket is emptied and held for retry_after_s, else for an
  // exponential backoff of 2, 4, 8 ... s capped at 60 (the streak resets after
  // a success or 5 minutes without a throttle). Counted in metrics. An
  // adaptive bucket instead cuts its learnt rate and burst (AIMD; held only
  // for a Retry-After), and a success
  // after a quiet period raises them a step.
  void on_upstream_throttled(const std::string& account, const std::string& operation,
                             std::optional<double> retry_after_s);
  // The upstream served a request: resets the backoff streak.
  void on_upstream_success(const std::string& account, const std::string& operation);

  std::vector<BucketStatus> status() const;

  // Wakes every waiter to re-check its bucket now (after the wall clock was
  // stepped; tests that drive a fake clock).
  void reevaluate();

  // Writes every bucket's level and waits for the write (shutdown).
  void save_all();

  // [scale] Every bucket becomes one shared bucket in Redis (shared_bucket.hpp):
  // acquire() reserves a slot there and sleeps locally. While Redis is
  // unreachable a bucket falls back to a local one of 1/`replicas` of its
  // capacity and rate, starting empty, and returns to the shared one (emptied)
  // when Redis answers again. Throttles and learnt rates are written to the
  // shared bucket from coroutines on `ex`. Call before the first acquire().
  void share_through(SharedBuckets& shared, int replicas, boost::asio::any_io_executor ex);
  // "single" (no Redis configured), "shared" or "fallback" (Redis unreachable).
  std::string mode() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace recgate
