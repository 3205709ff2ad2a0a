// Helpers shared by the MWS and Ads services: the injected clock (clock.hpp),
// formatting, cache keys, the metrics both count, what a request asks
// (RequestOptions, plain data), the cache facts of an answer, coalescing and
// commit-before-answer. Transport-free: no HTTP type appears here.
#pragma once

#include <boost/asio/cancellation_state.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/this_coro.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/cache/policy.hpp"
#include "core/coalesce.hpp"
#include "core/errors.hpp"
#include "core/problem.hpp"
#include "core/redis/lease.hpp"
#include "core/services/clock.hpp"
#include "core/store.hpp"
#include "core/throttle/wait_limit.hpp"
#include "core/upstream/call.hpp"
#include "core/upstream/message.hpp"

namespace recgate {
class Throttler;
}

namespace recgate::svc {

std::string iso_seconds(std::int64_t ms);  // "2026-11-22T06:00:01Z"
std::string hex64(std::uint64_t v);
// A JSON string literal (escaped), appended to `out`; `null` for nullopt.
void json_string(std::string& out, std::string_view s);
void json_opt_string(std::string& out, const std::optional<std::string>& s);
// {"name":"value" or null,...}: MWS last-updated times, stored and rendered alike.
using NamedTimes = std::vector<std::pair<std::string, std::optional<std::string>>>;
void json_named_times(std::string& out, const NamedTimes& times);

// Cache keys: each part as "<byte length>:<bytes>", so no byte a part may
// hold can make two different part lists build the same key, and the key of
// the first n parts is a prefix of every longer key that starts with them.
// (Variadic rather than an initializer_list: g++ 12 miscompiles
// initializer_list temporaries inside coroutines.)
void key_append(std::string& key, std::string_view part);
template <class... P>
std::string key_join(const P&... parts) {
  std::string k;
  (key_append(k, std::string_view(parts)), ...);
  return k;
}
// A list as one key part (e.g. MWS filters): the items key_join-encoded.
std::string key_list(const std::vector<std::string>& items);
// The parts of a key_join key; empty when `key` is not one.
std::vector<std::string> key_split(std::string_view key);

void count_lookup(std::string_view api, cache::Outcome o);
void count_coalesced(std::string_view kind);
// recgate_cache_entries / recgate_cache_memory_bytes for one api, computed at scrape time.
void register_cache_gauges(const std::string& api, std::function<std::pair<std::size_t, std::size_t>()> sizes);

// What a quota wait needs (upstream/call.hpp): its limit (a request's own, or
// the coalesced flight's it rides on), the client whose queue share it counts
// against, and the quota mode.
using QuotaWait = upstream::Quota;

// The quota of a coalesced flight: the mode and client of the request that
// started it, the flight's limit (its riders' latest deadline).
// `leader_of` keeps what a flight's work needs of the request that starts it,
// without its limit (the flight holds its own).
inline QuotaWait leader_of(const QuotaWait& w) { return QuotaWait{w.mode, nullptr, w.client}; }
inline QuotaWait flight_quota(const QuotaWait& leader, WaitLimitPtr flight) {
  return QuotaWait{leader.mode, std::move(flight), leader.client};
}

// What a request asks of the cache and the upstream: plain data the route
// adapter reads from the headers (services/routes.hpp).
struct RequestOptions {
  cache::RequestDirectives directives;  // Cache-Control
  std::optional<int> wait_s;            // Prefer: wait=N, at most 3600; nullopt: throttle.max_wait_s
  std::string client;                   // whose queue share a quota wait counts against
  std::string request_id;               // for upstream log lines (a coalesced call logs its leader's)
};

// RequestOptions resolved against the throttler: the quota wait as a deadline.
struct Asked {
  cache::RequestDirectives directives;
  QuotaWait wait;
  std::string request_id;
};
Asked resolve(const Throttler& throttler, const RequestOptions& o, int default_wait_s);

// How an answer was served, for the Cache-Status and Age headers (the route
// adapter renders them; the ETag comes from the answer's validators).
struct CacheFacts {
  std::string status;   // Cache-Status value (RFC 9211)
  std::int64_t age_s = 0;
};

// 404 unknown_account naming the configured accounts of `api` ("MWS", "Ads").
Problem unknown_account_problem(const char* api, const std::string& name, const std::string& known);
template <class Accounts>
Problem unknown_account(const char* api, const std::string& name, const Accounts& accounts) {
  std::string known;
  for (const auto& [n, a] : accounts) known += (known.empty() ? "" : ", ") + n;
  return unknown_account_problem(api, name, known);
}

// The configured endpoint without trailing slashes, or `fallback` when none is configured.
std::string base_url(std::string configured, const std::string& fallback);

// Upstream transport failure (see upstream::transport_problem).
using upstream::transport_problem;

// Leads or joins the flight for `key` and returns its result: the one place
// every service waits on a coalesced upstream fetch (a cross-replica lease
// plugs in here). A join is counted as `kind`; a wait the client abandoned is
// 499 client_closed.
// [scale] item 3: with `lease` (Redis configured and up), the local flight's
// leader also leads across replicas: it takes the lease on (kind, key) and
// releases it when its work is done; a replica that finds it taken waits until
// it is released or expires, then runs the work, which first reads the shared
// cache the leader wrote. Without `lease`, the work is run exactly as before.
// Each request waits on another replica's lease only within its own limit
// (Prefer: wait / throttle.max_wait_s): while the flight waits, it is marked
// queued (WaitLimit::queued) with lease_wait_reject, so a rider whose limit
// passes leaves with that 429 (or its stale answer), as a rider queued for
// quota does; when the last rider has left, the flight is cancelled and
// stops waiting.
QueueReject lease_wait_reject();
Problem lease_wait_cancelled();  // 499: the flight was cancelled while it waited

// Marks a flight as waiting on another replica's lease for as long as it lives.
struct LeaseWaitNotice {
  WaitLimitPtr limit;
  explicit LeaseWaitNotice(WaitLimitPtr l) : limit(std::move(l)) { limit->queued(lease_wait_reject()); }
  ~LeaseWaitNotice() { limit->queued(QueueReject{}); }
  LeaseWaitNotice(const LeaseWaitNotice&) = delete;
  LeaseWaitNotice& operator=(const LeaseWaitNotice&) = delete;
};

template <class T>
struct LeasedWork {
  std::string item;
  typename Coalescer<Expected<T>>::Work inner;
};
template <class T>
boost::asio::awaitable<Expected<T>> leased_work(redis::Lease* lease, std::shared_ptr<LeasedWork<T>> w,
                                                WaitLimitPtr limit) {
  redis::Lease::Attempt a;
  // Bounded: a leader that fails releases, a waiter then tries once more to lead.
  for (int round = 0; round < 3; ++round) {
    a = co_await lease->try_acquire(w->item);
    if (a.status != redis::Lease::Status::taken) break;
    bool released = false;
    {
      LeaseWaitNotice notice(limit);
      released = co_await lease->wait_released(w->item);
    }
    // Every rider left at its own limit: nobody is waiting for this work.
    boost::asio::cancellation_state cs = co_await boost::asio::this_coro::cancellation_state;
    if (cs.cancelled() != boost::asio::cancellation_type::none) co_return lease_wait_cancelled();
    if (!released) break;
  }
  auto res = co_await w->inner(std::move(limit));
  if (a.status == redis::Lease::Status::acquired) co_await lease->release(w->item, a.token);
  co_return res;
}

template <class T>
boost::asio::awaitable<Expected<T>> in_flight(Coalescer<Expected<T>>& flights, const std::string& key,
                                              typename Coalescer<Expected<T>>::Work& work, const WaitLimitPtr& limit,
                                              const char* kind, redis::Lease* lease = nullptr) {
  if (lease && lease->up()) {  // [scale] cross-replica lease
    auto held = std::make_shared<LeasedWork<T>>(LeasedWork<T>{std::string(kind) + ":" + key, std::move(work)});
    work = [lease, held](WaitLimitPtr l) { return leased_work<T>(lease, held, std::move(l)); };
  }
  bool joined = false;
  auto res = co_await flights.run(key, work, limit, &joined);
  if (joined) count_coalesced(kind);
  if (!res) co_return to_problem(Error::client_closed, "cancelled");
  co_return std::move(*res);
}

// Runs `write` on the store thread and commits it before the caller answers:
// an answer that says "stored" must survive kill -9 (docs/design.md §4).
// False, with one error line naming `what`, when the database refused it; the
// answer then goes out without "stored".
// `write` is taken by value like Store::run's work: a lambda whose captures are
// references to the caller's frame, which outlives the await.
void log_not_stored(const char* what, const std::exception& e);
template <class Write>
boost::asio::awaitable<bool> commit_before_answer(Store& store, Write write, const char* what) {
  try {
    co_await store.run(write);
    co_return true;
  } catch (const std::exception& e) {
    log_not_stored(what, e);
  }
  co_return false;
}

}  // namespace recgate::svc
