// [refresh] The shared bucket's spare op (the Lua script's `spare`, reached
// through Throttler::try_take_spare) on a real redis-server: a refresh ahead
// takes a token only when no client of any replica waits and the level holds
// at least reserve_tokens + 2 (one above a grant's floor); otherwise, and when
// Redis does not answer, it is refused and nothing is taken.
#include <doctest/doctest.h>

#include <chrono>
#include <optional>

#include "core/redis/client.hpp"
#include "core/throttle/shared_bucket.hpp"
#include "core/throttle/throttler.hpp"
#include "redis_run.hpp"
#include "../support/redis_server.hpp"

using namespace recgate;
using recgate::test::run_coro;

namespace {

constexpr const char* kOp = "mws.ListRecommendations";

// Slow restore (one token per 1000 s): the level does not move while a test runs.
ThrottleConfig spare_config() {
  ThrottleConfig cfg;
  cfg.margin_ms = 0;
  cfg.reserve_tokens = 1;  // a grant's floor: 2 tokens
  cfg.buckets[kOp] = BucketConfig{4, 0.001};
  return cfg;
}

BucketSpec spec_of(const ThrottleConfig& cfg) {
  BucketSpec s;
  s.capacity = cfg.buckets.at(kOp).capacity;
  s.restore_per_s = cfg.buckets.at(kOp).restore_per_s;
  s.reserve_tokens = cfg.reserve_tokens;
  s.margin_s = 0;
  return s;
}

// A client's acquire with no wait allowed; true when it is served at once.
boost::asio::awaitable<bool> served_at_once(Throttler* th) {
  auto r = co_await th->acquire("main", kOp, std::chrono::milliseconds(0));
  co_return r.has_value();
}

struct Replica {
  redis::Client client;
  SharedBuckets buckets;
  Throttler throttler;
  explicit Replica(int port, const ThrottleConfig& cfg)
      : client(test::loopback_client(port)), buckets(client, "t:"), throttler(cfg, nullptr) {
    throttler.share_through(buckets, 2, test::test_io_context().get_executor());
  }
  bool spare() { return run_coro(throttler.try_take_spare("main", kOp)).has_value(); }
  double level() {
    auto st = run_coro(buckets.state("main", "mws.ListRecommendations", spec_of(spare_config())));
    REQUIRE(st.has_value());
    return st->tokens;
  }
};

}  // namespace

TEST_CASE("shared spare: a token only while the level is at least reserve_tokens + 2, a client is then served at once") {
  test::RedisServer server;
  Replica a(server.port(), spare_config());
  REQUIRE(run_coro(a.client.command({"SET", "t:alive", "1"})).has_value());  // data began long ago: full
  CHECK(a.level() == doctest::Approx(4).epsilon(0.001));
  CHECK(a.spare());  // 4 -> 3
  CHECK(a.spare());  // 3 -> 2
  CHECK(a.level() == doctest::Approx(2).epsilon(0.001));
  CHECK_FALSE(a.spare());  // 2 = reserve + 1: kept for the next client
  CHECK(a.level() == doctest::Approx(2).epsilon(0.001));  // a refusal takes nothing
  // The next client (no wait allowed) is served at once.
  CHECK(run_coro(served_at_once(&a.throttler)));
}

TEST_CASE("shared spare: refused while a client of any replica waits for a slot, and when Redis does not answer") {
  test::RedisServer server;
  Replica a(server.port(), spare_config()), b(server.port(), spare_config());
  REQUIRE(run_coro(a.client.command({"SET", "t:alive", "1"})).has_value());
  // Replica b's clients take the burst down to the floor, then one reserves a
  // slot ~1000 s ahead (it sleeps until then): a client waits.
  for (int i = 0; i < 3; ++i) {
    auto r = run_coro(b.buckets.reserve("main", kOp, spec_of(spare_config()), 0));
    REQUIRE(r.has_value());
    REQUIRE(r->granted);
  }
  auto waiting = run_coro(b.buckets.reserve("main", kOp, spec_of(spare_config()), 1e6));
  REQUIRE(waiting.has_value());
  REQUIRE(waiting->granted);
  CHECK(waiting->wait_s > 100);
  CHECK_FALSE(a.spare());
  CHECK_FALSE(b.spare());
  // Another account's full bucket is spare on both: the refusal was the waiting client's bucket.
  CHECK(run_coro(a.throttler.try_take_spare("other", kOp)).has_value());

  server.kill();
  CHECK_FALSE(a.spare());  // never the local share: no spare without Redis's word
  CHECK_FALSE(run_coro(a.throttler.try_take_spare("third", kOp)).has_value());
}
