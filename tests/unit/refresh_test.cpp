// [refresh] Unit tests of refresh ahead's parts: the hot set (order, expiry,
// bound) on explicit times, when an answer with a TTL is due, the scheduler
// (per-tick bound, most asked first, a bucket without spare quota yields for
// the tick) with fake sources on a real io_context, and the single-process
// spare take (Throttler::try_take_spare) on a fake clock.
#include <doctest/doctest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <algorithm>
#include <chrono>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/errors.hpp"
#include "core/refresh/hot_set.hpp"
#include "core/refresh/scheduler.hpp"
#include "core/refresh/source_kit.hpp"
#include "core/throttle/throttler.hpp"

using namespace recgate;
using namespace recgate::refresh;
namespace net = boost::asio;

namespace {

std::vector<std::string> keys_of(const std::vector<HotSet::Hot>& hot) {
  std::vector<std::string> out;
  for (const auto& h : hot) out.push_back(h.key);
  return out;
}

// Keys asked equally often come in no set order: compared sorted.
std::vector<std::string> sorted_keys(const std::vector<HotSet::Hot>& hot) {
  auto out = keys_of(hot);
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

TEST_CASE("refresh hot set: the most asked first, with their counts and last ask") {
  HotSet hot(100, 1000);
  for (int i = 0; i < 3; ++i) hot.record("a", 10 + i);
  hot.record("b", 20);
  hot.record("c", 30);
  hot.record("c", 40);
  const auto taken = hot.take_hot(50);
  CHECK(keys_of(taken) == std::vector<std::string>{"a", "c", "b"});
  CHECK(taken[0].asks == 3);
  CHECK(taken[0].last_ms == 12);
  CHECK(taken[1].asks == 2);
  CHECK(taken[1].last_ms == 40);
  CHECK(taken[2].asks == 1);
  CHECK(hot.size() == 3);  // taking does not forget hot keys
  CHECK(keys_of(hot.take_hot(50)) == std::vector<std::string>{"a", "c", "b"});
}

TEST_CASE("refresh hot set: a key is cold (dropped) once refresh_hot_s passed since its last ask") {
  HotSet hot(100, 1000);
  hot.record("early", 0);
  hot.record("late", 500);
  CHECK(sorted_keys(hot.take_hot(1000)) == std::vector<std::string>{"early", "late"});  // exactly hot_ms: still hot
  CHECK(keys_of(hot.take_hot(1001)) == std::vector<std::string>{"late"});
  CHECK(hot.size() == 1);
  hot.record("late", 1400);  // asked again: hot for another hot_ms
  CHECK(keys_of(hot.take_hot(2400)) == std::vector<std::string>{"late"});
  CHECK(hot.take_hot(2401).empty());
  CHECK(hot.size() == 0);
  hot.record("early", 3000);  // a dropped key counts from scratch
  const auto again = hot.take_hot(3000);
  REQUIRE(again.size() == 1);
  CHECK(again[0].asks == 1);
}

TEST_CASE("refresh hot set: at most max_keys are tracked, pruning the cold makes room") {
  HotSet hot(2, 1000);
  hot.record("a", 0);
  hot.record("b", 0);
  hot.record("c", 0);  // past the bound: not tracked
  CHECK(hot.size() == 2);
  hot.record("a", 100);  // a tracked key still counts
  const auto taken = hot.take_hot(100);
  CHECK(keys_of(taken) == std::vector<std::string>{"a", "b"});
  CHECK(taken[0].asks == 2);
  hot.record("b", 900);
  CHECK(keys_of(hot.take_hot(1101)) == std::vector<std::string>{"b"});  // "a" pruned (last ask 100)
  hot.record("c", 1101);  // room again
  CHECK(hot.size() == 2);
  CHECK(keys_of(hot.take_hot(1101)) == std::vector<std::string>{"b", "c"});  // b asked twice, c once
}

TEST_CASE("refresh asks: nothing is recorded with refresh ahead off") {
  Asks off(false, 100, 1000);
  off.record("a", 0);
  CHECK(off.take_hot(0).empty());
  Asks on(true, 100, 1000);
  on.record("a", 0);
  CHECK(keys_of(on.take_hot(0)) == std::vector<std::string>{"a"});
}

TEST_CASE("refresh ttl: an answer is due two ticks before it expires, at most half its TTL before") {
  struct Row {
    std::int64_t fetched, expires, now, tick;
    bool due;
  };
  const Row rows[] = {
      {0, 3'600'000, 3'479'999, 60'000, false},  // an hour's TTL, minute ticks: due 2 min before
      {0, 3'600'000, 3'480'000, 60'000, true},
      {0, 3'600'000, 3'700'000, 60'000, true},   // expired and still hot: due
      {0, 4'000, 1'999, 1'000, false},           // 4 s TTL, 1 s ticks: due after 2 s
      {0, 4'000, 2'000, 1'000, true},
      {0, 4'000, 1'999, 60'000, false},          // a tick longer than the TTL: at most half the TTL early
      {0, 4'000, 2'000, 60'000, true},
      {5'000, 5'000, 9'000, 1'000, false},       // no lifetime (ads.cache_ttl_s 0): never due
  };
  for (const auto& r : rows) {
    CAPTURE(r.now);
    CAPTURE(r.tick);
    CHECK(ttl_due(r.fetched, r.expires, r.now, r.tick) == r.due);
  }
  CHECK(ttl_lead_ms(3'600'000, 60'000) == 120'000);
  CHECK(ttl_lead_ms(4'000, 60'000) == 2'000);
}

TEST_CASE("refresh outcome: no_spare_quota (from the error registry) stays pending, anything else failed") {
  CHECK(outcome_of(to_problem(Error::no_spare_quota, "none spare")) == Outcome::no_spare);
  CHECK(error_info(Error::no_spare_quota).status == 503);
  CHECK(outcome_of(to_problem(Error::upstream_error, "boom")) == Outcome::failed);
  CHECK(outcome_of(to_problem(Error::upstream_timeout, "slow")) == Outcome::failed);
  CHECK(spare_quota().mode == upstream::QuotaMode::spare);
  CHECK(spare_quota().limit == nullptr);  // never a queue wait
}

// ---- the scheduler, with a fake source ----------------------------------------

namespace {

// Hands the scheduler its `pending` answers (those not yet refreshed) every
// tick and records what it is asked; buckets in `no_spare` refuse.
class FakeSource final : public Source {
 public:
  std::vector<Pending> pending;
  std::set<std::string> no_spare;
  std::vector<std::string> calls;         // refresh() calls, in order
  std::vector<std::size_t> calls_at_tick;  // calls.size() when each due() began
  std::vector<Tick> ticks;
  std::set<std::string> done;

  const char* api() const override { return "fake"; }

  net::awaitable<std::vector<Pending>> due(Tick t) override {
    ticks.push_back(t);
    calls_at_tick.push_back(calls.size());
    std::vector<Pending> out;
    for (const auto& p : pending)
      if (!done.count(p.key)) out.push_back(p);
    co_return out;
  }

  net::awaitable<Outcome> refresh(Pending p) override {
    calls.push_back(p.key);
    if (no_spare.count(p.bucket)) co_return Outcome::no_spare;
    done.insert(p.key);
    co_return Outcome::refreshed;
  }
};

// Runs `io` until `pred` holds (bounded: the scheduler ticks every 100 ms).
template <class Pred>
bool run_until(net::io_context& io, Pred pred) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    io.run_one_for(std::chrono::milliseconds(50));
  }
  return true;
}

std::size_t backlog_of(const Scheduler& s, const std::string& bucket) {
  std::size_t n = 0;
  for (const auto& r : s.backlog())
    if (r.bucket == bucket) n += r.pending;
  return n;
}

}  // namespace

TEST_CASE("refresh scheduler: at most max_per_tick refreshes a tick, the most asked first, the rest stay pending") {
  net::io_context io;
  FakeSource src;
  for (int i = 1; i <= 10; ++i) src.pending.push_back(Pending{"main", "b", "k" + std::to_string(i), std::uint64_t(i)});
  Scheduler sched(io.get_executor(), std::chrono::milliseconds(100), 3, [] { return false; });
  sched.add(src);
  sched.start();
  REQUIRE(run_until(io, [&] { return src.ticks.size() >= 2; }));
  CHECK(src.calls_at_tick[1] == 3);  // the first tick did three, no more
  CHECK(std::vector<std::string>(src.calls.begin(), src.calls.begin() + 3) ==
        std::vector<std::string>{"k10", "k9", "k8"});
  CHECK(src.ticks[0].max_checks == 3);
  CHECK(src.ticks[0].every_ms == 100);
  REQUIRE(run_until(io, [&] { return src.ticks.size() >= 5; }));  // 4 ticks done: all 10 refreshed
  CHECK(src.calls.size() == 10);
  CHECK(src.calls_at_tick[2] == 6);
  CHECK(src.calls_at_tick[3] == 9);
  CHECK(backlog_of(sched, "b") == 0);
  sched.stop();
  io.run_for(std::chrono::seconds(1));
}

TEST_CASE("refresh scheduler: a bucket without spare quota yields for the tick, its answers stay pending") {
  net::io_context io;
  FakeSource src;
  src.pending = {Pending{"main", "busy", "a1", 9}, Pending{"main", "busy", "a2", 8}, Pending{"main", "busy", "a3", 7},
                 Pending{"main", "idle", "b1", 5}, Pending{"main", "idle", "b2", 4}};
  src.no_spare = {"busy"};  // e.g. clients wait on it
  Scheduler sched(io.get_executor(), std::chrono::milliseconds(100), 10, [] { return false; });
  sched.add(src);
  sched.start();
  REQUIRE(run_until(io, [&] { return src.ticks.size() >= 2; }));
  // One try on the busy bucket, then only the other bucket's answers.
  CHECK(std::vector<std::string>(src.calls.begin(), src.calls.begin() + src.calls_at_tick[1]) ==
        std::vector<std::string>{"a1", "b1", "b2"});
  CHECK(backlog_of(sched, "busy") == 3);
  CHECK(backlog_of(sched, "idle") == 0);
  src.no_spare.clear();  // the clients were served: spare quota again
  const std::size_t before = src.calls.size();
  REQUIRE(run_until(io, [&] { return backlog_of(sched, "busy") == 0; }));
  CHECK(std::vector<std::string>(src.calls.begin() + before, src.calls.end()) ==
        std::vector<std::string>{"a1", "a2", "a3"});
  sched.stop();
  io.run_for(std::chrono::seconds(1));
}

TEST_CASE("refresh scheduler: nothing is refreshed once the server drains") {
  net::io_context io;
  FakeSource src;
  src.pending = {Pending{"main", "b", "k", 1}};
  bool draining = true;
  Scheduler sched(io.get_executor(), std::chrono::milliseconds(100), 10, [&] { return draining; });
  sched.add(src);
  sched.start();
  io.run_for(std::chrono::milliseconds(400));  // the loop ends at its first wake-up: nothing left to run
  CHECK(src.ticks.empty());
  CHECK(src.calls.empty());
}

// ---- the single-process spare take ---------------------------------------------

namespace {

net::awaitable<void> acquire_into(Throttler* th, double max_wait_s, std::optional<bool>* out) {
  auto g = co_await th->acquire("main", "mws.ListRecommendations",
                                std::chrono::milliseconds(static_cast<int>(max_wait_s * 1000)));
  *out = g.has_value();
}

net::awaitable<void> spare_into(Throttler* th, std::optional<bool>* out) {
  auto g = co_await th->try_take_spare("main", "mws.ListRecommendations");
  *out = g.has_value();
}

struct SpareRig {
  net::io_context io;
  double now = 1.8e9;
  std::unique_ptr<Throttler> th;

  explicit SpareRig(const ThrottleConfig& cfg) : th(std::make_unique<Throttler>(cfg, nullptr, [this] { return now; })) {}

  void poll() {
    io.restart();
    io.poll();
  }

  bool spare() {
    std::optional<bool> got;
    net::co_spawn(io, spare_into(th.get(), &got), net::detached);
    poll();
    REQUIRE(got.has_value());
    return *got;
  }

  // A client's acquire, left running; `out` says when it is granted.
  void client(double max_wait_s, std::optional<bool>& out) {
    net::co_spawn(io, acquire_into(th.get(), max_wait_s, &out), net::detached);
    poll();
  }
};

ThrottleConfig spare_config() {
  ThrottleConfig cfg;
  cfg.margin_ms = 0;
  cfg.reserve_tokens = 1;  // a grant's floor: 2 tokens
  cfg.buckets["mws.ListRecommendations"] = BucketConfig{4, 1};
  return cfg;
}

}  // namespace

TEST_CASE("throttler spare: a token only while the level is at least reserve_tokens + 2, so the next client is served at once") {
  SpareRig rig(spare_config());
  CHECK(rig.spare());        // 4 -> 3
  CHECK(rig.spare());        // 3 -> 2
  CHECK_FALSE(rig.spare());  // 2 = reserve + 1: what a client needs now
  std::optional<bool> first;
  rig.client(0, first);  // no wait allowed, and none needed
  REQUIRE(first.has_value());
  CHECK(*first);
}

TEST_CASE("throttler spare: refused while a client waits on the bucket, however full it has become") {
  SpareRig rig(spare_config());
  std::optional<bool> a, b, c;
  rig.client(0, a);
  rig.client(0, b);
  rig.client(0, c);  // 4 -> 3 -> 2 -> 1: below the floor now
  CHECK((*a && *b && *c));
  std::optional<bool> waiting;
  rig.client(30, waiting);  // queued: its turn is a second or two away
  CHECK_FALSE(waiting.has_value());
  rig.now += 10;  // the bucket refills to 4 on the clock, the client not yet woken
  CHECK_FALSE(rig.spare());
  rig.th->reevaluate();
  rig.poll();
  REQUIRE(waiting.has_value());
  CHECK(*waiting);  // the client first...
  CHECK(rig.spare());  // ...then spare quota (4 - 1 = 3 left)
}
