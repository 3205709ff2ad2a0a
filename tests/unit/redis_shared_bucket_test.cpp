// The shared bucket's Lua script ([scale] item 1, [quota] item 3) run on a real
// redis-server, against the single-process TokenBucket: for the same arrivals
// (the Redis TIME the script saw) both grant at the same times, refuse the
// same requests, drain and hold alike, and follow a learnt limit alike.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "core/redis/client.hpp"
#include "core/throttle/shared_bucket.hpp"
#include "core/throttle/token_bucket.hpp"
#include "redis_run.hpp"
#include "../support/redis_server.hpp"

using namespace recgate;
using recgate::test::run_coro;

namespace {

// Absolute, in seconds: an epoch time in a double resolves ~0.24 µs, and the
// comparison adds a few of those.
constexpr double kTol = 1e-5;

BucketSpec fast_spec() {
  BucketSpec s;
  s.capacity = 3;
  s.restore_per_s = 20;  // fast, so a saturated run takes tens of milliseconds
  s.margin_s = 0.01;
  s.reserve_tokens = 0.5;
  return s;
}

// Reserves through `buckets` and checks the answer against `local`, the
// single-process bucket fed the same arrival time; returns the reservation.
Reservation reserve_and_compare(SharedBuckets& buckets, TokenBucket& local, double max_wait_s) {
  auto r = run_coro(buckets.reserve("acct", "mws.ListRecommendations", fast_spec(), max_wait_s));
  REQUIRE(r.has_value());
  const double expected_wait = local.wait_for(r->redis_now, 1);
  CHECK(std::abs(r->wait_s - expected_wait) < kTol);
  const auto decision = decide_wait(local, r->redis_now, 1, max_wait_s);
  CHECK(r->granted == decision.serve);
  // A microsecond late: at the exact grant time the level misses the floor by
  // the rounding of an epoch time.
  if (r->granted) CHECK(local.try_take(r->redis_now + expected_wait + 1e-6));
  return *r;
}

}  // namespace

TEST_CASE("shared bucket: Lua reservations = single-process token bucket for the same arrivals (two replicas, one FIFO)") {
  test::RedisServer server;
  redis::Client a(test::loopback_client(server.port())), b(test::loopback_client(server.port()));
  SharedBuckets replica_a(a, "t:"), replica_b(b, "t:");
  // Redis's data began long ago: an absent bucket is full, as a fresh local one.
  REQUIRE(run_coro(a.command({"SET", "t:alive", "1"})).has_value());

  auto first = run_coro(replica_a.state("acct", "mws.ListRecommendations", fast_spec()));
  REQUIRE(first);
  CHECK(first->tokens == doctest::Approx(3));
  TokenBucket local(fast_spec(), 3, first->redis_now);

  std::vector<double> waits;
  for (int i = 0; i < 10; ++i) {
    auto r = reserve_and_compare(i % 2 ? replica_b : replica_a, local, 10);
    CHECK(r.granted);
    waits.push_back(r.wait_s);
  }
  // The burst at once, then one slot per 1/rate: a saturated run waits ever longer.
  CHECK(waits[0] == doctest::Approx(0));
  CHECK(waits.back() > 0.2);

  // A caller whose slot lies past its deadline reserves nothing...
  auto refused = reserve_and_compare(replica_b, local, 0.001);
  CHECK_FALSE(refused.granted);
  // ...so the next caller gets the slot the refused one would have had.
  reserve_and_compare(replica_a, local, 10);
}

TEST_CASE("shared bucket: an upstream throttle empties and holds the bucket for every replica") {
  test::RedisServer server;
  redis::Client a(test::loopback_client(server.port())), b(test::loopback_client(server.port()));
  SharedBuckets replica_a(a, "t:"), replica_b(b, "t:");
  REQUIRE(run_coro(a.command({"SET", "t:alive", "1"})).has_value());
  auto first = run_coro(replica_a.state("acct", "mws.ListRecommendations", fast_spec()));
  REQUIRE(first);
  TokenBucket local(fast_spec(), 3, first->redis_now);

  auto at = run_coro(replica_a.throttled("acct", "mws.ListRecommendations", fast_spec(), 0.3));
  REQUIRE(at);
  local.drain(*at);
  local.hold_until(*at + 0.3);
  auto r = reserve_and_compare(replica_b, local, 10);  // the other replica sees the hold
  CHECK(r.wait_s > 0.3 - (r.redis_now - *at));
}

TEST_CASE("shared bucket: the learnt (adaptive) rate lives in the shared bucket") {
  test::RedisServer server;
  redis::Client a(test::loopback_client(server.port())), b(test::loopback_client(server.port()));
  SharedBuckets replica_a(a, "t:"), replica_b(b, "t:");
  REQUIRE(run_coro(a.command({"SET", "t:alive", "1"})).has_value());
  auto first = run_coro(replica_a.state("acct", "mws.ListRecommendations", fast_spec()));
  REQUIRE(first);
  TokenBucket local(fast_spec(), 3, first->redis_now);

  auto at = run_coro(replica_a.throttled("acct", "mws.ListRecommendations", fast_spec(), 0, LearntLimit{5, 2}));
  REQUIRE(at);
  local.drain(*at);
  local.hold_until(*at);
  local.set_limit(2, 5, *at);
  auto seen = run_coro(replica_b.state("acct", "mws.ListRecommendations", fast_spec()));
  REQUIRE(seen);
  CHECK(seen->learnt_restore_per_s == doctest::Approx(5));
  CHECK(seen->learnt_capacity == doctest::Approx(2));
  CHECK(seen->last_throttle_at == doctest::Approx(*at));
  for (int i = 0; i < 3; ++i) reserve_and_compare(replica_b, local, 10);

  auto raised = run_coro(replica_b.set_learnt("acct", "mws.ListRecommendations", fast_spec(), LearntLimit{8, 3}));
  REQUIRE(raised);
  local.set_limit(3, 8, *raised);
  reserve_and_compare(replica_a, local, 10);
}

TEST_CASE("shared bucket: after Redis lost its data the buckets start empty, NOSCRIPT reloads the script") {
  test::RedisServer server;
  redis::Client a(test::loopback_client(server.port()));
  SharedBuckets replica(a, "t:");
  // No t:alive marker: this Redis's data begins now, so the bucket is empty.
  auto r = run_coro(replica.reserve("acct", "mws.ListRecommendations", fast_spec(), 10));
  REQUIRE(r);
  CHECK(r->granted);
  CHECK(r->wait_s == doctest::Approx(fast_spec().grant_floor() / fast_spec().effective_rate()).epsilon(0.01));

  REQUIRE(run_coro(a.command({"SCRIPT", "FLUSH"})).has_value());
  auto again = run_coro(replica.reserve("other", "mws.ListRecommendations", fast_spec(), 10));
  REQUIRE(again);
  CHECK(again->granted);
}
