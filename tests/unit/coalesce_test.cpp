// The coalescer: identical concurrent work runs once and everyone gets the
// result; a cancelled caller leaves; when the last one leaves the work is
// cancelled too. Single-threaded io_context driven with poll(): no sleeps.
#include <doctest/doctest.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>

#include "core/coalesce.hpp"

namespace net = boost::asio;
using recgate::Coalescer;
using recgate::Expected;
using recgate::WaitLimitPtr;
using Value = Expected<int>;

namespace {

struct Shared {
  int started = 0;
  bool aborted = false;
  net::steady_timer* gate = nullptr;
};

net::awaitable<Value> slow_work(Shared* s, int value) {
  ++s->started;
  net::steady_timer t(co_await net::this_coro::executor, std::chrono::hours(1));
  s->gate = &t;
  auto [ec] = co_await t.async_wait(net::as_tuple(net::use_awaitable));
  s->gate = nullptr;
  if (ec && ec != net::error::operation_aborted) co_return -1;
  // Cancelled by the gate (released) or by the coalescer (everyone left).
  auto cs = co_await net::this_coro::cancellation_state;
  if (cs.cancelled() != net::cancellation_type::none) {
    s->aborted = true;
    co_return -2;
  }
  co_return value;
}

// No quota wait in this work: the callers' limits never apply.
net::awaitable<void> caller(Coalescer<Value>* c, Shared* s, std::optional<int>* out, bool* joined) {
  Coalescer<Value>::Work work = [s](WaitLimitPtr) { return slow_work(s, 42); };
  std::string key = "k";
  const WaitLimitPtr limit = recgate::wait_limit_for([] { return 0.0; }, 0);
  auto r = co_await c->run(key, work, limit, joined);
  if (r && r->has_value()) *out = r->value();
  else if (r) *out = -3;
  else out->reset();
}

// Runs what is ready; restart() because an io_context that ran out of work stops.
void drain(net::io_context& io) {
  io.restart();
  io.poll();
}

}  // namespace

TEST_CASE("coalesce: ten identical concurrent calls run the work once and share its result") {
  net::io_context io;
  Coalescer<Value> c(io.get_executor());
  Shared s;
  std::vector<std::optional<int>> results(10);
  bool joined[10] = {};
  for (int i = 0; i < 10; ++i) net::co_spawn(io, caller(&c, &s, &results[i], &joined[i]), net::detached);
  drain(io);
  CHECK(s.started == 1);
  CHECK(c.in_flight() == 1);
  REQUIRE(s.gate);
  s.gate->cancel();  // the upstream answers
  drain(io);
  CHECK(c.in_flight() == 0);
  int joiners = 0;
  for (int i = 0; i < 10; ++i) {
    CHECK(results[i] == 42);
    joiners += joined[i] ? 1 : 0;
  }
  CHECK(joiners == 9);
  // A later call starts new work.
  std::optional<int> later;
  bool later_joined = true;
  net::co_spawn(io, caller(&c, &s, &later, &later_joined), net::detached);
  drain(io);
  CHECK(s.started == 2);
  CHECK_FALSE(later_joined);
  REQUIRE(s.gate);
  s.gate->cancel();
  drain(io);
  CHECK(later == 42);
}

TEST_CASE("coalesce: a cancelled caller leaves - the last one leaving cancels the work") {
  net::io_context io;
  Coalescer<Value> c(io.get_executor());
  Shared s;
  std::optional<int> r1 = 7, r2 = 7;
  bool j1 = false, j2 = false;
  net::cancellation_signal sig1, sig2;
  net::co_spawn(io, caller(&c, &s, &r1, &j1), net::bind_cancellation_slot(sig1.slot(), net::detached));
  net::co_spawn(io, caller(&c, &s, &r2, &j2), net::bind_cancellation_slot(sig2.slot(), net::detached));
  drain(io);
  REQUIRE(s.started == 1);
  sig1.emit(net::cancellation_type::terminal);
  drain(io);
  CHECK_FALSE(r1.has_value());  // left
  CHECK_FALSE(s.aborted);       // the other caller still waits
  sig2.emit(net::cancellation_type::terminal);
  drain(io);
  CHECK_FALSE(r2.has_value());
  CHECK(s.aborted);  // nobody left: the work itself was cancelled
  CHECK(c.in_flight() == 0);
}

// ---- riders keep their own quota wait limits (issue 11 item 7) -------------
// The work waits for a token of a real Throttler on a fake clock; the tests
// move that clock by hand (Throttler::reevaluate) and poll. Limits are made on
// the same clock, so a limit of 0 has passed at once and a long one never does.

#include <chrono>

#include "core/throttle/throttler.hpp"

namespace {

using recgate::Problem;
using recgate::Throttler;

struct QuotaFixture {
  net::io_context io;
  double now = 1.8e9;
  std::unique_ptr<Throttler> th;
  Coalescer<Value> c{io.get_executor()};
  int works = 0;

  QuotaFixture() {
    recgate::ThrottleConfig cfg;
    cfg.margin_ms = 0;
    cfg.buckets["mws.ListRecommendations"] = recgate::BucketConfig{1, 0.1};  // one token, then one per 10 s
    th = std::make_unique<Throttler>(cfg, nullptr, [this] { return now; });
  }

  std::size_t waiters() const {
    for (const auto& b : th->status())
      if (b.operation == "mws.ListRecommendations") return b.waiters;
    return 0;
  }

  void advance(double seconds) {
    now += seconds;
    th->reevaluate();
    drain(io);
  }
};

struct RiderResult {
  bool done = false;
  std::optional<int> value;
  std::optional<Problem> problem;
  bool joined = false;
};

net::awaitable<Value> quota_work(QuotaFixture* fx, WaitLimitPtr limit) {
  ++fx->works;
  auto g = co_await fx->th->acquire("main", "mws.ListRecommendations", limit, "someone");
  if (!g) co_return g.error();
  co_return 42;
}

net::awaitable<void> rider(QuotaFixture* fx, double limit_s, RiderResult* out) {
  Coalescer<Value>::Work work = [fx](WaitLimitPtr limit) { return quota_work(fx, std::move(limit)); };
  std::string key = "k";
  const WaitLimitPtr limit = fx->th->limit_for(std::chrono::milliseconds(static_cast<long>(limit_s * 1000)));
  auto r = co_await fx->c.run(key, work, limit, &out->joined);
  if (r && r->has_value()) out->value = r->value();
  if (r && !r->has_value()) out->problem = r->error();
  out->done = true;
}

std::string header_of(const Problem& p, const std::string& name) {
  for (const auto& [k, v] : p.headers)
    if (k == name) return v;
  return "<absent>";
}

// Spends the bucket's only token so that the next call queues.
void spend_token(QuotaFixture& fx) {
  RiderResult first;
  net::co_spawn(fx.io, rider(&fx, 60, &first), net::detached);
  drain(fx.io);
  REQUIRE(first.value == 42);
}

}  // namespace

TEST_CASE("coalesce: a rider whose limit passes while the flight is queued gets its own 429, the leader is served later") {
  QuotaFixture fx;
  spend_token(fx);
  RiderResult leader, joiner;
  net::co_spawn(fx.io, rider(&fx, 60, &leader), net::detached);
  drain(fx.io);
  REQUIRE(fx.waiters() == 1);  // the leader's flight is queued for quota
  net::co_spawn(fx.io, rider(&fx, 0, &joiner), net::detached);
  drain(fx.io);
  CHECK(joiner.joined);
  REQUIRE(joiner.done);  // left at its own limit (0 s), not the leader's 60
  REQUIRE(joiner.problem);
  CHECK(joiner.problem->status == 429);
  CHECK(joiner.problem->code == "quota_wait_exceeded");
  // The flight's turn: one token per 10 s (restored a hair slower than nominal).
  const int retry_after = std::stoi(header_of(*joiner.problem, "Retry-After"));
  CHECK(retry_after >= 10);
  CHECK(retry_after <= 11);
  CHECK(header_of(*joiner.problem, "RateLimit-Policy") != "<absent>");
  CHECK(joiner.problem->detail.find("joined an identical call") != std::string::npos);
  CHECK_FALSE(leader.done);
  CHECK(fx.waiters() == 1);  // the flight still waits for the leader
  fx.advance(10.5);
  CHECK(leader.value == 42);
  CHECK(fx.works == 2);  // one upstream call for leader and joiner together
}

TEST_CASE("coalesce: a leader that reaches its limit does not fail a joiner that may wait longer") {
  QuotaFixture fx;
  spend_token(fx);
  RiderResult leader, joiner;
  // Both board before the work's first quota wait: the flight may wait 60 s.
  net::co_spawn(fx.io, rider(&fx, 0, &leader), net::detached);
  net::co_spawn(fx.io, rider(&fx, 60, &joiner), net::detached);
  drain(fx.io);
  REQUIRE(leader.done);
  REQUIRE(leader.problem);
  CHECK(leader.problem->status == 429);
  CHECK_FALSE(joiner.done);
  CHECK(fx.waiters() == 1);
  fx.advance(10.5);
  CHECK(joiner.value == 42);
  CHECK(fx.works == 2);
}

TEST_CASE("coalesce: a joiner with a longer limit lets a queued flight wait beyond its leader's limit") {
  QuotaFixture fx;
  spend_token(fx);
  RiderResult leader, joiner;
  net::co_spawn(fx.io, rider(&fx, 15, &leader), net::detached);
  drain(fx.io);
  net::co_spawn(fx.io, rider(&fx, 60, &joiner), net::detached);
  drain(fx.io);
  REQUIRE(fx.waiters() == 1);
  // The upstream throttles: the bucket is held 30 s and then needs 10 s for a
  // token, past the leader's 15 s but within the joiner's 60. The flight keeps
  // its place for the joiner.
  fx.th->on_upstream_throttled("main", "mws.ListRecommendations", 30.0);
  fx.advance(1);
  CHECK(fx.waiters() == 1);
  CHECK_FALSE(joiner.done);
  fx.advance(40);
  CHECK(joiner.value == 42);
}

TEST_CASE("coalesce: when every rider reached its limit the queued work is cancelled and spends no token") {
  QuotaFixture fx;
  spend_token(fx);
  RiderResult leader;
  net::co_spawn(fx.io, rider(&fx, 15, &leader), net::detached);
  drain(fx.io);
  REQUIRE(fx.waiters() == 1);
  fx.th->on_upstream_throttled("main", "mws.ListRecommendations", 30.0);
  fx.advance(0.1);
  // The flight's only rider may wait 15 s; its turn now comes after 40: it gives up at once.
  REQUIRE(leader.done);
  REQUIRE(leader.problem);
  CHECK(leader.problem->status == 429);
  CHECK(fx.waiters() == 0);
  CHECK(fx.c.in_flight() == 0);
  // A later identical call starts a new flight.
  RiderResult later;
  net::co_spawn(fx.io, rider(&fx, 60, &later), net::detached);
  drain(fx.io);
  CHECK_FALSE(later.joined);
  fx.advance(41);
  CHECK(later.value == 42);
}
