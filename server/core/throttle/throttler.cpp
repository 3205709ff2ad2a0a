// The throttle layer: buckets (token_bucket.hpp) behind one mutex, FIFO
// waiters on their own timers, levels written to SQLite (repository.hpp)
// through the store's database thread. The mutex is never held across I/O; waiters are woken by
// posting to their own executor.
#include "core/throttle/throttler.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <limits>
#include <map>
#include <mutex>
#include <utility>

#include "core/log.hpp"
#include "core/metrics.hpp"
#include "core/store.hpp"
#include "core/throttle/repository.hpp"
#include "core/throttle/shared_bucket.hpp"

namespace recgate {

namespace net = boost::asio;

namespace {

constexpr double kMaxTimerWait_s = 3600;     // waiters re-check at least this often
constexpr double kStreakReset_s = 300;       // backoff streak forgotten after this
constexpr double kBackoffCap_s = 60;
constexpr double kFirstBackoff_s = 2;
// A replica back from its local share holds the shared bucket this long: the
// Redis client's longest backoff (redis::ClientOptions::backoff_max, 5 s) and
// a timeout, by which every replica with demand has probed Redis and left its
// share. Holding costs one refill's worth of calls; overlapping shares, a throttle.
constexpr double kRejoinHold_s = 6;

std::string seconds_text(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", s);
  return buf;
}

std::string api_of(std::string_view group) { return std::string(group.substr(0, group.find('.'))); }

net::steady_timer::duration timer_duration(double s) {
  double us = std::ceil(std::clamp(std::isfinite(s) ? s : kMaxTimerWait_s, 0.0, kMaxTimerWait_s) * 1e6);
  return std::chrono::microseconds(static_cast<std::int64_t>(us));
}

}  // namespace

std::string throttle_group(std::string_view operation) {
  if (operation == "mws.ListRecommendationsByNextToken") return "mws.ListRecommendations";
  return std::string(operation);
}

std::optional<AdaptiveSpec> adaptive_spec_for(const ThrottleConfig& cfg, std::string_view group,
                                              const BucketSpec& bucket) {
  AdaptiveConfig ac;
  if (auto it = cfg.adaptive.find(std::string(group)); it != cfg.adaptive.end()) {
    ac = it->second;
  } else {
    ac.enabled = group.rfind("ads.", 0) == 0 || group.rfind("lwa.", 0) == 0;
  }
  if (!ac.enabled) return std::nullopt;
  AdaptiveSpec s;
  s.ceiling_per_s = ac.ceiling_per_s > 0 ? ac.ceiling_per_s : bucket.restore_per_s;
  s.floor_per_s = ac.floor_per_s > 0 ? std::min(ac.floor_per_s, s.ceiling_per_s) : s.ceiling_per_s / 20;
  s.step_per_s = ac.step_per_s > 0 ? ac.step_per_s : s.ceiling_per_s / 20;
  s.decrease = ac.decrease;
  s.quiet_s = ac.quiet_s;
  s.ceiling_capacity = bucket.capacity;
  return s;
}

std::optional<BucketSpec> bucket_spec_for(const ThrottleConfig& cfg, std::string_view operation) {
  std::string group = throttle_group(operation);
  std::optional<BucketSpec> spec;
  if (auto d = default_bucket(group)) {  // the one table of built-in groups (config.cpp)
    spec.emplace();
    spec->capacity = d->capacity;
    spec->restore_per_s = d->restore_per_s;
  }
  if (auto it = cfg.buckets.find(group); it != cfg.buckets.end()) {
    if (!spec) spec.emplace();
    spec->capacity = it->second.capacity;
    spec->restore_per_s = it->second.restore_per_s;
  }
  if (spec) {
    spec->margin_s = std::max(0, cfg.margin_ms) / 1000.0;
    spec->reserve_tokens = std::max(0.0, cfg.reserve_tokens);
  }
  return spec;
}

double wall_clock_seconds() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

namespace {

struct Waiter {
  Waiter(net::any_io_executor ex, std::string c) : timer(std::move(ex)), client(std::move(c)) {}
  net::steady_timer timer;  // touched only on the waiter's own executor
  const std::string client;  // whose share of the queue this place counts against ("": nobody's)
  bool granted = false;     // guarded by Impl::mu
  double granted_at = 0;
};

struct Bucket {
  Bucket(std::string a, std::string g, TokenBucket b)
      : account(std::move(a)), group(std::move(g)), tb(b),
        rejections(&Metrics::instance().counter("recgate_throttle_rejections_total",
                                                "Requests answered 429 because the quota wait exceeded their limit",
                                                {{"operation", group}})),
        upstream_throttles(&Metrics::instance().counter("recgate_upstream_throttles_total",
                                                        "Upstream answers that throttled recgate",
                                                        {{"api", api_of(group)}, {"operation", group}})),
        wait_seconds(&Metrics::instance().histogram("recgate_throttle_wait_seconds",
                                                    "Time a request waited for an upstream quota token",
                                                    {{"operation", group}})) {}
  const std::string account;
  const std::string group;
  TokenBucket tb;
  std::deque<std::shared_ptr<Waiter>> queue;
  std::map<std::string, std::size_t> queued_by_client;  // places held per client (non-zero only)
  bool save_pending = false;
  int throttle_streak = 0;
  double last_throttle_at = -std::numeric_limits<double>::infinity();
  std::optional<AdaptiveRate> adaptive;  // a learnt limit (throttle.adaptive)
  bool fallback = false;  // shared mode, Redis unreachable: tb is this replica's local share
  // [scale] shared mode: the shared bucket as this replica's last reservation
  // saw it (SharedLevel, moved onto this replica's clock) and refilling since;
  // reservations of other replicas after it are not in it. What the RateLimit
  // header and /v1/status show while the bucket is shared.
  std::optional<TokenBucket> shared_view;
  std::size_t sleeping = 0;  // this replica's requests sleeping on a reserved shared slot (guarded by mu)
  Counter* rejections;
  Counter* upstream_throttles;
  Histogram* wait_seconds;
};

using BucketKey = throttle::repo::BucketKey;

}  // namespace

struct Throttler::Impl : std::enable_shared_from_this<Throttler::Impl> {
  ThrottleConfig cfg;
  Store* store = nullptr;
  Clock now;
  mutable std::mutex mu;
  std::map<BucketKey, std::unique_ptr<Bucket>> buckets;
  std::map<BucketKey, throttle::repo::Level> stored;
  // Set when the previous process did not stop cleanly: every bucket starts
  // empty at this time (see the constructor).
  std::optional<double> empty_since;
  std::map<BucketKey, throttle::repo::LearntRate> learnt;
  // [scale] shared mode (share_through); null: single process.
  SharedBuckets* shared = nullptr;
  int replicas = 1;
  net::any_io_executor shared_ex;
  bool redis_down = false;  // the last shared call failed: buckets use their local share

  // --- everything below runs with mu held ---

  Bucket* find_or_create(const std::string& account, const std::string& group, double t) {
    BucketKey key{account, group};
    if (auto it = buckets.find(key); it != buckets.end()) return it->second.get();
    auto spec = bucket_spec_for(cfg, group);
    if (!spec) return nullptr;
    // No stored row: this bucket never granted (every grant is written), so
    // full is what it would be without a restart.
    TokenBucket tb(*spec, spec->capacity, t);
    auto it = stored.find(key);
    if (empty_since) {
      // Empty, and no sooner than a stored hold (an upstream Retry-After) ends.
      tb = TokenBucket(*spec, 0, std::max(*empty_since, it != stored.end() ? it->second.at : 0.0));
    } else if (it != stored.end()) {
      tb = TokenBucket(*spec, it->second.tokens, it->second.at);
    }
    auto& slot = buckets[key];
    slot = std::make_unique<Bucket>(account, group, tb);
    if (auto a = adaptive_spec_for(cfg, group, *spec)) {
      auto it = learnt.find(key);
      const double rate = it != learnt.end() ? it->second.restore_per_s : a->ceiling_per_s;
      const double last = it != learnt.end() ? it->second.last_throttle_at : -std::numeric_limits<double>::infinity();
      slot->adaptive.emplace(*a, rate, last, t);
      slot->last_throttle_at = last;
      slot->tb.set_limit(slot->adaptive->capacity(), slot->adaptive->rate(), t);
    }
    return slot.get();
  }

  // The learnt rate changed: the bucket follows, and the rate is kept.
  void apply_learnt(Bucket& b, double t) {
    const double share = b.fallback ? local_share() : 1.0;
    b.tb.set_limit(b.adaptive->capacity() * share, b.adaptive->rate() * share, t);
    if (!store) return;
    store->post([account = b.account, group = b.group, rate = b.adaptive->rate(),
                 last = b.adaptive->last_throttle_at()](Db& db) {
      throttle::repo::write_rate(db, account, group, rate, last);
    });
  }

  // --- [scale] shared mode; with mu held ---

  double local_share() const { return 1.0 / std::max(1, replicas); }

  // The bucket's limit now (configured, or learnt), scaled by `share`; a burst
  // of at least 1 so the bucket can grant at all.
  BucketSpec limit_of(const Bucket& b, double share) const {
    BucketSpec s = *bucket_spec_for(cfg, b.group);
    if (b.adaptive) {
      s.capacity = b.adaptive->capacity();
      s.restore_per_s = b.adaptive->rate();
    }
    s.capacity = std::max(1.0, s.capacity * share);
    s.restore_per_s *= share;
    return s;
  }

  // Redis did not answer: this bucket continues on its local share, empty and
  // held for throttle.max_wait_s: slots every replica reserved before Redis
  // went away are still being spent up to that far ahead (no reservation goes
  // further: shared_acquire caps a longer Prefer: wait at it).
  void enter_fallback(Bucket& b, double t) {
    if (!redis_down)
      log_warn("redis unreachable: quota buckets fall back to this replica's local share",
               {{"replicas", replicas}, {"held_s", cfg.max_wait_s}});
    redis_down = true;
    if (b.fallback) return;
    b.fallback = true;
    b.tb = TokenBucket(limit_of(b, local_share()), 0, t);
    b.tb.hold_until(t + std::max(0, cfg.max_wait_s));
  }

  // Redis answered again: the bucket is shared at once. Its local waiters
  // (not yet granted) are woken to reserve in Redis instead: waiting for the
  // local queue to empty would keep a replica under steady demand on its
  // share forever, beside replicas already back on the shared bucket.
  void leave_fallback(Bucket& b, double t) {
    if (redis_down) log_info("redis reachable again: quota buckets are shared again");
    redis_down = false;
    if (!b.fallback) return;
    b.fallback = false;
    b.tb = TokenBucket(limit_of(b, 1.0), 0, t);
    wake_all(b);
  }

  // The bucket the figures describe: the shared one as last seen while the
  // bucket is shared (once a reservation has seen it), else the local one.
  const TokenBucket& view(const Bucket& b) const {
    return shared && !b.fallback && b.shared_view ? *b.shared_view : b.tb;
  }

  // A reservation's answer: the shared level on this replica's clock (the
  // offset from Redis TIME includes half a round trip, a few hundred µs).
  void see_shared(Bucket& b, const Reservation& r, double t) {
    if (!r.level) return;
    const double offset = t - r.redis_now;
    b.shared_view.emplace(limit_of(b, 1.0), r.level->level, r.level->at + offset);
    b.shared_view->hold_until(r.level->hold + offset);
  }

  // Fire and forget: a shared-bucket write that must not delay the caller.
  template <class F>
  void spawn_shared(F fn) {
    if (shared) net::co_spawn(shared_ex, std::move(fn), net::detached);
  }

  static void wake(const std::shared_ptr<Waiter>& w) {
    net::post(w->timer.get_executor(), [w] { w->timer.cancel(); });
  }

  void wake_all(const Bucket& b) {
    for (const auto& w : b.queue) wake(w);
  }

  // Grants tokens to the head of the queue while the bucket allows.
  void pump(Bucket& b, double t) {
    bool granted = false;
    while (!b.queue.empty() && b.tb.try_take(t)) {
      auto w = std::move(b.queue.front());
      b.queue.pop_front();
      release_place(b, *w);
      w->granted = true;
      w->granted_at = t;
      wake(w);
      granted = true;
    }
    if (granted) save(b);
  }

  static std::size_t position_of(const Bucket& b, const std::shared_ptr<Waiter>& w) {
    auto it = std::find(b.queue.begin(), b.queue.end(), w);
    return static_cast<std::size_t>(it - b.queue.begin()) + 1;
  }

  static void leave(Bucket& b, const std::shared_ptr<Waiter>& w) {
    auto it = std::find(b.queue.begin(), b.queue.end(), w);
    if (it == b.queue.end()) return;
    b.queue.erase(it);
    release_place(b, *w);
  }

  static void enqueue(Bucket& b, const std::shared_ptr<Waiter>& w) {
    b.queue.push_back(w);
    if (!w->client.empty()) ++b.queued_by_client[w->client];
  }

  static void release_place(Bucket& b, const Waiter& w) {
    if (w.client.empty()) return;
    auto it = b.queued_by_client.find(w.client);
    if (it != b.queued_by_client.end() && --it->second == 0) b.queued_by_client.erase(it);
  }

  std::size_t client_share() const { return static_cast<std::size_t>(cfg.queue_share_per_client()); }

  bool over_client_share(const Bucket& b, const std::string& client) const {
    if (client.empty()) return false;
    auto it = b.queued_by_client.find(client);
    return it != b.queued_by_client.end() && it->second >= client_share();
  }

  Problem reject_client_share(Bucket& b, double t, const std::string& client) {
    Problem p = reject(b, t, b.tb.wait_for(t, static_cast<double>(b.queue.size() + 1)), 0, 0, false);
    p.detail = "account " + b.account + ", operation " + b.group + ": client " + client + " already holds " +
               std::to_string(client_share()) + " places in the quota queue, its share " +
               "(throttle.max_queue_per_client = " + std::to_string(client_share()) + " of throttle.max_queue = " +
               std::to_string(cfg.max_queue) + "); retry when some of its requests have been served";
    p.extensions.emplace_back("limit", "throttle.max_queue_per_client");
    return p;
  }

  // The 429 for a request riding on a queued waiter's flight that reached its
  // own limit: when that waiter's turn comes, as reject() says it for a
  // request queued itself.
  Problem reject_rider(Bucket& b, const std::shared_ptr<Waiter>& w, double max_wait_s) {
    const double t = now();
    auto it = std::find(b.queue.begin(), b.queue.end(), w);
    const std::size_t pos = it == b.queue.end() ? 1 : static_cast<std::size_t>(it - b.queue.begin()) + 1;
    const double wait = b.tb.wait_for(t, static_cast<double>(pos));
    Problem p = reject(b, t, wait, 0, pos, false);
    p.detail = "account " + b.account + ", operation " + b.group +
               ": this request joined an identical call queued for quota (position " + std::to_string(pos) +
               "), which gets quota in " + seconds_text(wait) + " s, after the " + seconds_text(max_wait_s) +
               " s this request may wait (Prefer: wait)";
    return p;
  }

  // Queues a write of the bucket's level on the database thread; writes that
  // pile up behind one another coalesce into the one that runs first.
  void save(Bucket& b) {
    if (!store || b.save_pending) return;
    b.save_pending = true;
    store->post([self = shared_from_this(), bp = &b](Db& db) {
      double level = 0;
      double at = 0;
      {
        std::lock_guard lk(self->mu);
        bp->save_pending = false;
        level = bp->tb.level();
        at = bp->tb.updated_at();
      }
      throttle::repo::write_level(db, bp->account, bp->group, level, at);
    });
  }

  Problem reject(Bucket& b, double t, double wait_s, double max_wait_s, std::size_t position, bool queue_full) {
    auto d = decide_wait(wait_s, max_wait_s);
    int retry_after = std::max(1, d.retry_after_s);
    std::string detail = "account " + b.account + ", operation " + b.group + ": ";
    if (queue_full) {
      detail += "the quota queue is full (" + std::to_string(b.queue.size()) + " requests waiting)";
    } else {
      detail += "quota for this request (position " + std::to_string(position) + " in the queue) is available in " +
                seconds_text(wait_s) + " s, more than the " + seconds_text(max_wait_s) +
                " s it may wait (Prefer: wait)";
    }
    Problem p = make_problem(429, "quota_wait_exceeded", std::move(detail));
    p.headers.emplace_back("Retry-After", std::to_string(retry_after));
    p.headers.emplace_back("RateLimit-Policy", ratelimit_policy_value(b.group, view(b).spec()));
    p.headers.emplace_back("RateLimit", ratelimit_value(b.group, view(b), t));
    b.rejections->inc();
    return p;
  }

  BucketStatus status_of(const Bucket& b, double t) const {
    BucketStatus s;
    s.account = b.account;
    s.operation = b.group;
    const TokenBucket& tb = view(b);
    s.tokens = tb.tokens(t);
    s.available = tb.available(t);
    s.capacity = tb.spec().capacity;
    s.restore_per_s = tb.spec().restore_per_s;
    s.waiters = b.queue.size() + b.sleeping;
    s.next_token_s = tb.wait_for(t, 1);
    if (b.adaptive) s.learnt_restore_per_s = b.adaptive->rate();
    if (std::isfinite(b.last_throttle_at)) s.last_throttle_at = b.last_throttle_at;
    return s;
  }

  // --- the waiter: a named coroutine owning its state ---

  // Tells a wait limit, outside the lock, that its work is queued; tells it
  // the wait is over when the waiter's coroutine ends, however it ends.
  struct QueuedNotice {
    WaitLimitPtr limit;
    ~QueuedNotice() {
      if (limit) limit->queued(QueueReject{});
    }
  };

  // Counts a request sleeping on its shared slot as a waiter of its bucket
  // (/v1/status, recgate_bucket_waiters) for as long as it sleeps.
  struct SleepingCount {
    std::shared_ptr<Impl> self;
    Bucket* b;
    SleepingCount(std::shared_ptr<Impl> s, Bucket* bucket) : self(std::move(s)), b(bucket) {
      std::lock_guard lk(self->mu);
      ++b->sleeping;
    }
    ~SleepingCount() {
      std::lock_guard lk(self->mu);
      --b->sleeping;
    }
    SleepingCount(const SleepingCount&) = delete;
    SleepingCount& operator=(const SleepingCount&) = delete;
  };

  // A slot of the shared bucket, slept for locally. nullopt: Redis did not
  // answer (or the bucket still has local waiters): the caller takes the
  // local path, on this replica's share.
  static net::awaitable<std::optional<Expected<Grant>>> shared_acquire(std::shared_ptr<Impl> self,
                                                                        const std::string& account,
                                                                        const std::string& group, WaitLimitPtr limit) {
    Bucket* b = nullptr;
    BucketSpec spec;
    double start = 0;
    bool was_fallback = false;
    {
      std::lock_guard lk(self->mu);
      start = self->now();
      b = self->find_or_create(account, group, start);
      if (!b) co_return std::nullopt;  // the local path answers the unknown group
      spec = self->limit_of(*b, 1.0);
      was_fallback = b->fallback;
    }
    // No replica reserves further ahead than throttle.max_wait_s, whatever a
    // request's Prefer: wait: a replica that loses Redis holds its local share
    // that long (enter_fallback), and must find every slot reserved before
    // the outage used up by then.
    const double asked_s = std::max(0.0, limit->deadline() - start);
    const double max_wait_s = std::min(asked_s, static_cast<double>(std::max(0, self->cfg.max_wait_s)));
    // Back from the local share: what it spent is not in the shared level, and
    // the other replicas may spend theirs until they too find Redis again
    // (within their client's backoff): the shared bucket is emptied and held.
    bool ok = !was_fallback || (co_await self->shared->drain(account, group, spec, kRejoinHold_s)).has_value();
    std::optional<Reservation> r;
    if (ok) r = co_await self->shared->reserve(account, group, spec, max_wait_s);
    {
      std::lock_guard lk(self->mu);
      const double t = self->now();
      if (!r) {
        self->enter_fallback(*b, t);
        co_return std::nullopt;
      }
      self->leave_fallback(*b, t);
      self->see_shared(*b, *r, t);
      if (!r->granted) {
        Problem p = self->reject(*b, t, r->wait_s, max_wait_s, 1, false);
        if (asked_s > max_wait_s)
          p.detail += " (capped at throttle.max_wait_s while the quota is shared across replicas)";
        co_return Expected<Grant>(std::move(p));
      }
    }
    if (r->wait_s > 0) {
      const double grant_at = start + r->wait_s;
      QueuedNotice notice{limit};
      limit->queued([weak = std::weak_ptr<Impl>(self), b, grant_at](double rider_max_wait_s) {
        auto self = weak.lock();
        if (!self) return make_problem(503, "shutting_down", "recgate is shutting down");
        std::lock_guard lk(self->mu);
        const double t = self->now();
        return self->reject(*b, t, grant_at - t, rider_max_wait_s, 1, false);
      });
      SleepingCount counted(self, b);
      net::steady_timer timer(co_await net::this_coro::executor, timer_duration(r->wait_s));
      co_await timer.async_wait(net::as_tuple(net::use_awaitable));
      net::cancellation_state cs = co_await net::this_coro::cancellation_state;
      // The reserved slot is not given back: a lost slot costs quota, never a throttle.
      if (cs.cancelled() != net::cancellation_type::none)
        co_return Expected<Grant>(
            make_problem(499, "client_closed", "the client closed the request while it waited for quota"));
    }
    b->wait_seconds->observe(r->wait_s);
    co_return Expected<Grant>(Grant{start + r->wait_s, r->wait_s, 0});
  }

  static net::awaitable<Expected<Grant>> acquire(std::shared_ptr<Impl> self, std::string account,
                                                 std::string operation, WaitLimitPtr limit, std::string client) {
    const std::string group = throttle_group(operation);
    // Each turn round the loop follows a change of the bucket's mode (Redis
    // lost, Redis back), so it ends.
    for (;;) {
      if (self->shared) {
        if (auto r = co_await shared_acquire(self, account, group, limit)) co_return std::move(*r);
      }
      if (auto r = co_await local_acquire(self, account, group, limit, client)) co_return std::move(*r);
    }
  }

  // The local bucket's FIFO queue (single process, or this replica's share
  // while Redis is down). nullopt: the bucket went back to the shared one
  // while this request waited, not yet granted: it reserves there instead.
  static net::awaitable<std::optional<Expected<Grant>>> local_acquire(std::shared_ptr<Impl> self,
                                                                       const std::string& account,
                                                                       const std::string& group, WaitLimitPtr limit,
                                                                       const std::string& client) {
    auto ex = co_await net::this_coro::executor;
    std::optional<Expected<Grant>> result;
    std::shared_ptr<Waiter> w;
    Bucket* b = nullptr;
    double start = 0;
    double wait = 0;
    std::size_t position = 0;
    {
      std::lock_guard lk(self->mu);
      start = self->now();
      const double max_wait_s = std::max(0.0, limit->deadline() - start);
      b = self->find_or_create(account, group, start);
      if (!b) {
        result.emplace(make_problem(500, "internal_error", "no throttle bucket for operation " + group));
      } else if (b->queue.empty() && b->tb.try_take(start)) {
        self->save(*b);
        result.emplace(Grant{start, 0, 0});
      } else {
        position = b->queue.size() + 1;
        wait = b->tb.wait_for(start, static_cast<double>(position));
        bool full = b->queue.size() >= static_cast<std::size_t>(std::max(1, self->cfg.max_queue));
        if (full || !decide_wait(wait, max_wait_s).serve) {
          result.emplace(self->reject(*b, start, wait, max_wait_s, position, full));
        } else if (self->over_client_share(*b, client)) {
          result.emplace(self->reject_client_share(*b, start, client));
        } else {
          w = std::make_shared<Waiter>(ex, client);
          enqueue(*b, w);
        }
      }
    }
    if (result) {
      if (b && result->has_value()) b->wait_seconds->observe(0);
      co_return std::move(*result);
    }
    QueuedNotice notice{limit};
    limit->queued([weak = std::weak_ptr<Impl>(self), b, w](double max_wait_s) {
      auto self = weak.lock();
      if (!self) return make_problem(503, "shutting_down", "recgate is shutting down");
      std::lock_guard lk(self->mu);
      return self->reject_rider(*b, w, max_wait_s);
    });

    for (;;) {
      w->timer.expires_after(timer_duration(wait));
      auto [ec] = co_await w->timer.async_wait(net::as_tuple(net::use_awaitable));
      (void)ec;  // expiry and wake-ups (cancel) alike: the bucket decides
      net::cancellation_state cs = co_await net::this_coro::cancellation_state;
      const bool cancelled = cs.cancelled() != net::cancellation_type::none;
      const double deadline = limit->deadline();  // outside mu: a flight's takes its own lock

      std::lock_guard lk(self->mu);
      const double t = self->now();
      if (cancelled) {
        // The client went away: spend nothing, let the others move up.
        if (w->granted) {
          b->tb.give_back(t);
        } else {
          leave(*b, w);
        }
        self->pump(*b, t);
        self->wake_all(*b);
        self->save(*b);
        co_return Expected<Grant>(
            make_problem(499, "client_closed", "the client closed the request while it waited for quota"));
      }
      if (!w->granted && self->shared && !b->fallback) {
        leave(*b, w);
        co_return std::nullopt;
      }
      if (!w->granted) self->pump(*b, t);
      if (w->granted) {
        double waited = std::max(0.0, w->granted_at - start);
        b->wait_seconds->observe(waited);
        co_return Expected<Grant>(Grant{w->granted_at, waited, position});
      }
      std::size_t pos = position_of(*b, w);
      wait = b->tb.wait_for(t, static_cast<double>(pos));
      const double remaining = deadline - t;
      if (!decide_wait(wait, remaining).serve) {
        // A backoff pushed this request's turn beyond its limit, or the
        // riders who could wait longest left.
        leave(*b, w);
        self->wake_all(*b);
        co_return Expected<Grant>(self->reject(*b, t, wait, std::max(0.0, remaining), pos, false));
      }
    }
  }
};

Throttler::Throttler(const ThrottleConfig& cfg, Store* store, Clock now) : impl_(std::make_shared<Impl>()) {
  impl_->cfg = cfg;
  impl_->store = store;
  impl_->now = now ? std::move(now) : Clock(wall_clock_seconds);
  if (store && !store->previous_run_clean()) {
    // The previous process was killed (or the file replaced): a grant is
    // written after it is handed out, so the stored levels may miss tokens
    // it spent just before it died. Amazon's bucket is never below empty,
    // so starting every bucket empty now can never send more than it allows;
    // the cost is one refill period of burst after a crash.
    log_warn("the previous run did not stop cleanly; every quota bucket starts empty", {{"database", store->path()}});
    std::lock_guard lk(impl_->mu);
    impl_->empty_since = impl_->now();
  }
  if (store) {
    std::map<BucketKey, throttle::repo::Level> rows;
    store->run_sync([&rows](Db& db) { rows = throttle::repo::read_levels(db); });
    std::map<BucketKey, throttle::repo::LearntRate> rates;
    store->run_sync([&rates](Db& db) { rates = throttle::repo::read_rates(db); });
    std::lock_guard lk(impl_->mu);
    impl_->stored = std::move(rows);
    impl_->learnt = std::move(rates);
    const double t = impl_->now();
    for (const auto& [key, row] : impl_->stored) impl_->find_or_create(key.first, key.second, t);
  }
  Metrics::instance().add_collector([weak = std::weak_ptr<Impl>(impl_)](Metrics& m) {
    auto self = weak.lock();
    if (!self) return;
    std::vector<BucketStatus> rows;
    {
      std::lock_guard lk(self->mu);
      const double t = self->now();
      for (const auto& [key, b] : self->buckets) rows.push_back(self->status_of(*b, t));
    }
    for (const auto& s : rows) {
      Labels labels{{"account", s.account}, {"operation", s.operation}};
      m.gauge("recgate_bucket_tokens", "Estimated upstream quota tokens in the bucket", labels).set(s.tokens);
      m.gauge("recgate_bucket_waiters", "Requests queued for a quota token", labels)
          .set(static_cast<double>(s.waiters));
      m.gauge("recgate_bucket_restore_per_second",
              "Restore rate the bucket uses now: configured, or learnt (throttle.adaptive)", labels)
          .set(s.learnt_restore_per_s.value_or(s.restore_per_s));
    }
  });
}

Throttler::~Throttler() = default;

net::awaitable<Expected<Grant>> Throttler::acquire(std::string account, std::string operation, WaitLimitPtr limit,
                                                   std::string client) {
  return Impl::acquire(impl_, std::move(account), std::move(operation), std::move(limit), std::move(client));
}

net::awaitable<Expected<Grant>> Throttler::acquire(std::string account, std::string operation,
                                                   std::chrono::milliseconds max_wait) {
  return Impl::acquire(impl_, std::move(account), std::move(operation), limit_for(max_wait), std::string());
}

// [refresh] Local bucket (single process, or this replica's share while
// Redis is unreachable): no local waiter, and one token above what a grant
// needs, so a client arriving next still finds a grant possible at once.
// Shared bucket: the same rule in the Lua script, where every replica's
// reservations (its clients' queue) are seen; Redis unanswered: no spare.
net::awaitable<std::optional<Grant>> Throttler::try_take_spare(std::string account, std::string operation) {
  const std::string group = throttle_group(operation);
  BucketSpec spec;
  double t = 0;
  {
    std::lock_guard lk(impl_->mu);
    t = impl_->now();
    Bucket* b = impl_->find_or_create(account, group, t);
    if (!b || !b->queue.empty()) co_return std::nullopt;
    if (!impl_->shared || b->fallback) {
      if (b->tb.tokens(t) < b->tb.spec().grant_floor() + 1 || !b->tb.try_take(t)) co_return std::nullopt;
      impl_->save(*b);
      co_return Grant{t, 0, 0};
    }
    spec = impl_->limit_of(*b, 1.0);
  }
  auto taken = co_await impl_->shared->take_spare(account, group, spec);
  if (!taken || !*taken) co_return std::nullopt;
  co_return Grant{t, 0, 0};
}

double Throttler::now() const { return impl_->now(); }

WaitLimitPtr Throttler::limit_for(std::chrono::milliseconds max_wait) const {
  return wait_limit_for(impl_->now, static_cast<double>(max_wait.count()) / 1000.0);
}

void Throttler::on_upstream_throttled(const std::string& account, const std::string& operation,
                                      std::optional<double> retry_after_s) {
  const std::string group = throttle_group(operation);
  double hold = 0;
  {
    std::lock_guard lk(impl_->mu);
    const double t = impl_->now();
    Bucket* b = impl_->find_or_create(account, group, t);
    if (!b) return;
    if (t - b->last_throttle_at > kStreakReset_s) b->throttle_streak = 0;
    ++b->throttle_streak;
    b->last_throttle_at = t;
    if (retry_after_s && std::isfinite(*retry_after_s)) {
      hold = std::clamp(*retry_after_s, 0.0, 3600.0);
    } else if (b->adaptive) {
      // The emptied bucket restoring at the cut rate is the backoff: a hold
      // on top would leave quota unused (AIMD, not stop-and-wait).
      hold = 0;
    } else {
      hold = std::min(kBackoffCap_s, kFirstBackoff_s * std::pow(2.0, std::min(b->throttle_streak - 1, 16)));
    }
    b->tb.drain(t);
    b->tb.hold_until(t + hold);
    if (b->shared_view) {  // what the throttled op does to the shared bucket
      b->shared_view->drain(t);
      b->shared_view->hold_until(t + hold);
    }
    if (b->adaptive && b->adaptive->on_throttle(t)) {
      impl_->apply_learnt(*b, t);
      log_warn("upstream limit learnt lower",
               {{"account", account}, {"operation", group}, {"restore_per_s", b->adaptive->rate()},
                {"capacity", b->adaptive->capacity()}});
    }
    impl_->save(*b);
    impl_->wake_all(*b);  // waiters re-check; those now beyond their limit get 429 at once
    b->upstream_throttles->inc();
    // Every replica's next reservation finds the shared bucket empty and held,
    // at the learnt limit when the group is adaptive.
    std::optional<LearntLimit> learnt;
    if (b->adaptive) learnt = LearntLimit{b->adaptive->rate(), b->adaptive->capacity()};
    impl_->spawn_shared([sh = impl_->shared, account, group, spec = impl_->limit_of(*b, 1.0), hold,
                         learnt]() -> net::awaitable<void> { co_await sh->throttled(account, group, spec, hold, learnt); });
  }
  log_warn("upstream throttled recgate; bucket emptied and held",
           {{"account", account}, {"operation", group}, {"hold_s", hold}});
}

void Throttler::on_upstream_success(const std::string& account, const std::string& operation) {
  std::lock_guard lk(impl_->mu);
  auto it = impl_->buckets.find({account, throttle_group(operation)});
  if (it == impl_->buckets.end()) return;
  Bucket& b = *it->second;
  b.throttle_streak = 0;
  const double t = impl_->now();
  if (b.adaptive && b.adaptive->on_success(t)) {
    impl_->apply_learnt(b, t);
    impl_->spawn_shared([sh = impl_->shared, account, group = b.group, spec = impl_->limit_of(b, 1.0),
                         learnt = LearntLimit{b.adaptive->rate(), b.adaptive->capacity()}]() -> net::awaitable<void> {
      co_await sh->set_learnt(account, group, spec, learnt);
    });
    impl_->pump(b, t);
    impl_->wake_all(b);  // a faster rate moves every waiter's turn earlier
  }
}

std::vector<BucketStatus> Throttler::status() const {
  std::lock_guard lk(impl_->mu);
  const double t = impl_->now();
  std::vector<BucketStatus> out;
  for (const auto& [key, b] : impl_->buckets) out.push_back(impl_->status_of(*b, t));
  return out;
}

void Throttler::reevaluate() {
  std::lock_guard lk(impl_->mu);
  const double t = impl_->now();
  for (auto& [key, b] : impl_->buckets) {
    impl_->pump(*b, t);
    impl_->wake_all(*b);
  }
}

void Throttler::share_through(SharedBuckets& shared, int replicas, net::any_io_executor ex) {
  std::lock_guard lk(impl_->mu);
  impl_->shared = &shared;
  impl_->replicas = std::max(1, replicas);
  impl_->shared_ex = std::move(ex);
}

std::string Throttler::mode() const {
  std::lock_guard lk(impl_->mu);
  if (!impl_->shared) return "single";
  return impl_->redis_down ? "fallback" : "shared";
}

void Throttler::save_all() {
  if (!impl_->store) return;
  struct Row {
    std::string account, group;
    double level, at;
  };
  std::vector<Row> rows;
  {
    std::lock_guard lk(impl_->mu);
    for (const auto& [key, b] : impl_->buckets) rows.push_back({b->account, b->group, b->tb.level(), b->tb.updated_at()});
  }
  impl_->store->run_sync([&rows](Db& db) {
    db.exec("BEGIN");
    try {
      for (const auto& r : rows) throttle::repo::write_level(db, r.account, r.group, r.level, r.at);
      db.exec("COMMIT");
    } catch (...) {
      db.exec("ROLLBACK");
      throw;
    }
  });
}

}  // namespace recgate
