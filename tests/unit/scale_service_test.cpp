// [scale] Service-level tests with a real Redis (tests/support/redis_server.hpp):
// MwsService on the service rig sharing through Redis, where "another
// replica" is Redis state the test sets up (a lease it holds), and the
// throttler's shared-bucket figures (RateLimit header, /v1/status rows).
#include <doctest/doctest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/detached.hpp>

#include <chrono>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "../support/mws_fixture.hpp"
#include "../support/redis_server.hpp"
#include "../support/service_rig.hpp"
#include "core/mws/model.hpp"
#include "core/redis/client.hpp"
#include "core/redis/lease.hpp"
#include "core/redis/shared_cache.hpp"
#include "core/services/mws_service.hpp"
#include "core/throttle/shared_bucket.hpp"
#include "core/throttle/throttler.hpp"
#include "core/upstream/call.hpp"
#include "redis_run.hpp"

using namespace recgate;
using recgate::test::run_coro;
namespace net = boost::asio;

namespace {

// Answers each MWS Action with its fixture; records the Actions asked.
class FixtureUpstream final : public upstream::Upstream {
 public:
  std::map<std::string, std::string> fixtures{{"GetLastUpdatedTimeForRecommendations", "last_updated.xml"},
                                              {"ListRecommendations", "list_recommendations.xml"},
                                              {"ListRecommendationsByNextToken",
                                               "list_recommendations_by_next_token.xml"}};
  std::vector<std::string> actions;

  net::awaitable<upstream::Result> request(upstream::Request req) override {
    const auto at = req.body.find("Action=");
    const std::string action = req.body.substr(at + 7, req.body.find('&', at) - at - 7);
    actions.push_back(action);
    upstream::Result r;
    r.response.status = 200;
    r.response.body = rgtest::mws_fixture(fixtures.at(action));
    co_return r;
  }
};

struct Rig : rgtest::ServiceRig<MwsService, FixtureUpstream> {
  Rig() : ServiceRig("rg-scale-svc") {
    cfg.mws.endpoint = "http://mws.test/";
    cfg.mws.accounts["main"] = MwsAccount{"A1XEXAMPLEDF", "AKIAEXAMPLE", "secret", ""};
    start();
  }
};

using Result = std::optional<Expected<MwsAnswer>>;

net::awaitable<void> ask(MwsService* svc, mws::Query q, int wait_s, Result* out) {
  svc::RequestOptions o;
  o.client = "test-client";
  o.request_id = "test";
  o.wait_s = wait_s;
  out->emplace(co_await svc->recommendations("main", q, o));
}

net::awaitable<void> redis_do(redis::Client* c, redis::Command cmd, std::optional<redis::Reply>* out) {
  *out = co_await c->command(std::move(cmd));
}

}  // namespace

TEST_CASE("scale: a request waits on another replica's lease only within its own Prefer: wait, then gets 429") {
  test::RedisServer server;
  Rig rig;
  // The client's sockets live on the rig's io_context; it is destroyed
  // first (before the rig), once no flight uses it.
  auto client = std::make_unique<redis::Client>(test::loopback_client(server.port()));
  redis::SharedCache cache(*client, "rgtest:");
  redis::Lease lease(*client, "rgtest:");  // 10 s TTL: three rounds would be 30 s
  rig.svc->share_through(cache, lease);

  // Another replica leads the upstream call for this list and holds its lease for a minute.
  const std::string item = "mws.list:" + svc::key_join(std::string("main"), std::string("ATVPDKIKX0DER"),
                                                       std::string("Inventory"), svc::key_list({}));
  std::optional<redis::Reply> set;
  rig.spawn(redis_do(client.get(), {"SET", lease.redis_key(item), "other-replica", "PX", "60000"}, &set));
  rig.run_until([&] { return set.has_value(); });
  REQUIRE_FALSE(set->is_error());

  auto q = mws::validate_recommendations_query({{"marketplace", "ATVPDKIKX0DER"}, {"category", "Inventory"}});
  REQUIRE(q);
  Result r;
  const auto t0 = std::chrono::steady_clock::now();
  rig.spawn(ask(rig.svc.get(), *q, 1, &r));
  // Bounded by the wall clock: without the bound on its own limit, the
  // request would wait for the lease (up to 3 x 10 s).
  // The rider's own limit is timed on the rig's fake clock (svc::Clock),
  // the lease polling on real timers: the fake clock follows real time.
  const std::int64_t clock0 = rig.clock.now;
  while (!r && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(6)) {
    rig.io.restart();
    rig.io.run_one_for(std::chrono::milliseconds(5));
    const std::int64_t real_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
    if (clock0 + real_ms > rig.clock.now) rig.advance(std::chrono::milliseconds(clock0 + real_ms - rig.clock.now));
  }
  const auto waited = std::chrono::steady_clock::now() - t0;
  REQUIRE(r.has_value());
  REQUIRE_FALSE(r->has_value());
  const Problem& p = r->error();
  CHECK(p.status == 429);
  CHECK(p.code == "quota_wait_exceeded");
  CHECK(p.detail.find("another recgate replica") != std::string::npos);
  bool retry_after = false;
  for (const auto& [k, v] : p.headers) retry_after = retry_after || (k == "Retry-After" && v == "1");
  CHECK(retry_after);
  CHECK(waited >= std::chrono::milliseconds(900));
  CHECK(waited < std::chrono::seconds(4));
  // Nothing went upstream for the list: the other replica's call is the one.
  CHECK(rig.up.actions == std::vector<std::string>{"GetLastUpdatedTimeForRecommendations"});

  // The abandoned flight stops polling the lease (cancelled with its last rider).
  rig.run_until([&] { return rig.svc->stats().in_flight == 0; });
  client.reset();
}

namespace {

net::awaitable<void> acquire_into(Throttler* t, std::chrono::seconds wait, std::optional<int>* status) {
  auto g = co_await t->acquire("main", "mws.ListRecommendations", wait);
  *status = g ? 200 : g.error().status;
}

// run_coro needs a default-constructible result.
net::awaitable<std::optional<Expected<Grant>>> acquire_now(Throttler* t, std::chrono::milliseconds wait) {
  co_return co_await t->acquire("main", "mws.ListRecommendations", wait);
}

std::string header(const Problem& p, const std::string& name) {
  for (const auto& [k, v] : p.headers)
    if (k == name) return v;
  return {};
}

}  // namespace

TEST_CASE("scale: RateLimit and status figures of a shared bucket come from Redis, not the unused local bucket") {
  test::RedisServer server;
  redis::Client client(test::loopback_client(server.port()));
  SharedBuckets mine(client, "rgtest:");
  SharedBuckets others(client, "rgtest:");  // the other replicas' throttlers
  ThrottleConfig cfg;                        // mws.ListRecommendations: 8, 0.5/s, margin 250 ms
  Throttler throttler(cfg, nullptr);
  throttler.share_through(mine, 3, test::test_io_context().get_executor());
  const BucketSpec spec = *bucket_spec_for(cfg, "mws.ListRecommendations");

  // A new Redis's buckets start empty; the other replicas reserve the next
  // three slots (at ~2.5, 4.5 and 6.5 s: 1.25 tokens for the first grant,
  // then one every 2 s), leaving 0.25 token at 6.5 s.
  for (int i = 0; i < 3; ++i) {
    auto r = run_coro(others.reserve("main", "mws.ListRecommendations", spec, 30));
    REQUIRE(r.has_value());
    REQUIRE(r->granted);
  }
  // This replica never used its local bucket (full: 8 tokens, r=7;t=0); the
  // shared one grants next in ~8.5 s.
  auto res = *run_coro(acquire_now(&throttler, std::chrono::milliseconds(0)));
  REQUIRE_FALSE(res.has_value());
  CHECK(res.error().status == 429);
  CHECK(header(res.error(), "RateLimit") == "\"mws-ListRecommendations\";r=0;t=9");
  CHECK(header(res.error(), "RateLimit-Policy") == "\"mws-ListRecommendations\";q=8;w=16");
  CHECK(header(res.error(), "Retry-After") == "9");

  auto rows = throttler.status();
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].tokens == doctest::Approx(0.25).epsilon(0.02));
  CHECK(rows[0].available == 0);
  CHECK(rows[0].capacity == 8);
  CHECK(rows[0].next_token_s > 8.0);
  CHECK(rows[0].next_token_s < 8.6);
  CHECK(throttler.mode() == "shared");
  CHECK(rows[0].waiters == 0);

  // A request that reserved a slot and sleeps on it counts as a waiter
  // until it leaves (cancelled here: its client went away).
  auto& ioc = test::test_io_context();
  ioc.restart();
  net::cancellation_signal cancel;
  std::optional<int> status;
  net::co_spawn(ioc, acquire_into(&throttler, std::chrono::seconds(30), &status),
                net::bind_cancellation_slot(cancel.slot(), [](std::exception_ptr) {}));
  for (int i = 0; i < 2000 && throttler.status()[0].waiters == 0; ++i) ioc.run_one_for(std::chrono::milliseconds(5));
  CHECK(throttler.status()[0].waiters == 1);
  cancel.emit(net::cancellation_type::terminal);
  for (int i = 0; i < 2000 && !status; ++i) ioc.run_one_for(std::chrono::milliseconds(5));
  CHECK(status == 499);
  CHECK(throttler.status()[0].waiters == 0);

  // An upstream throttle empties and holds the figures at once, as the
  // shared bucket itself (the write to Redis goes out in the background).
  throttler.on_upstream_throttled("main", "mws.ListRecommendations", 10.0);
  rows = throttler.status();
  CHECK(rows[0].tokens == 0);
  CHECK(rows[0].next_token_s > 10.0);
  // Runs the background write (test_io_context runs until no work is left).
  auto shared = run_coro(others.state("main", "mws.ListRecommendations", spec));
  REQUIRE(shared.has_value());
  CHECK(shared->hold_until > shared->redis_now + 9);
}

TEST_CASE("scale: while shared, a Prefer: wait above throttle.max_wait_s reserves no further ahead than it") {
  test::RedisServer server;
  redis::Client client(test::loopback_client(server.port()));
  SharedBuckets mine(client, "rgtest:");
  ThrottleConfig cfg;
  cfg.max_wait_s = 2;  // what a replica that loses Redis holds its local share for
  Throttler throttler(cfg, nullptr);
  throttler.share_through(mine, 3, test::test_io_context().get_executor());
  // A new Redis's bucket starts empty: the first slot is ~2.5 s away, within
  // the request's 10 s but beyond the 2 s any replica may reserve ahead.
  const auto t0 = std::chrono::steady_clock::now();
  auto res = *run_coro(acquire_now(&throttler, std::chrono::seconds(10)));
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(2));  // refused, not slept on
  REQUIRE_FALSE(res.has_value());
  CHECK(res.error().status == 429);
  CHECK(header(res.error(), "Retry-After") == "3");
  CHECK(res.error().detail.find("capped at throttle.max_wait_s") != std::string::npos);
}
