// [scale] items 2 and 3 on a real redis-server: the shared cache tier (values
// round-trip, TTL set, Redis down is a miss), the lease (NX, expiry,
// compare-and-delete), and svc::in_flight leading across two "replicas".
#include <doctest/doctest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "core/redis/client.hpp"
#include "core/redis/lease.hpp"
#include "core/redis/shared_cache.hpp"
#include "core/services/common.hpp"
#include "redis_run.hpp"
#include "../support/redis_server.hpp"

using namespace recgate;
using recgate::test::run_coro;
namespace net = boost::asio;

namespace {

cache::EntryData sample_data() {
  cache::EntryData d;
  d.validator = "2026-11-22T06:00:01Z";
  d.fetched_at_ms = 1764000000123;
  d.expires_at_ms = 1764003600123;
  d.body = std::string("[{\"a\":\"12:34\"}]\0x", 18);
  return d;
}
cache::EntryPtr sample_entry() { return cache::make_entry(sample_data()); }

}  // namespace

TEST_CASE("redis shared cache: an entry round-trips (validator absent or set, binary body), garbage decodes to nothing") {
  auto d = sample_data();
  auto e = cache::make_entry(d);
  auto back = redis::decode_entry(redis::encode_entry(*e));
  REQUIRE(back);
  CHECK(back->validator() == d.validator);
  CHECK(back->fetched_at_ms == e->fetched_at_ms);
  CHECK(back->expires_at_ms == e->expires_at_ms);
  CHECK(back->body() == d.body);
  CHECK(back->hash == cache::fnv1a64(d.body));
  d.validator.reset();
  e = cache::make_entry(d);
  back = redis::decode_entry(redis::encode_entry(*e));
  REQUIRE(back);
  CHECK_FALSE(back->validator().has_value());
  CHECK_FALSE(redis::decode_entry("not ours"));
  CHECK_FALSE(redis::decode_entry(redis::encode_entry(*e).substr(0, 20)));
}

TEST_CASE("redis shared cache: put stores under key_prefix with a TTL, get reads it back, Redis down is a miss") {
  test::RedisServer server;
  redis::Client client(test::loopback_client(server.port()));
  redis::SharedCache shared(client, "rgtest:");
  const std::string kind = "mws.list";
  const std::string key = "3:acc2:mp";
  CHECK_FALSE(run_coro(shared.get(kind, key)));
  CHECK(run_coro(shared.put(kind, key, sample_entry(), std::chrono::seconds(60))));
  auto got = run_coro(shared.get(kind, key));
  REQUIRE(got);
  CHECK(got->body() == sample_entry()->body());
  CHECK(shared.redis_key(kind, key).rfind("rgtest:", 0) == 0);
  auto ttl = run_coro(client.command({"PTTL", shared.redis_key(kind, key)}));
  REQUIRE(ttl);
  CHECK(ttl->integer > 50000);
  CHECK(ttl->integer <= 60000);
  server.kill();
  CHECK_FALSE(run_coro(shared.get(kind, key)));
  CHECK_FALSE(run_coro(shared.put(kind, key, sample_entry(), std::chrono::seconds(60))));
}

TEST_CASE("redis lease: NX gives one holder, only the holder's token releases it (compare-and-delete)") {
  test::RedisServer server;
  redis::Client client(test::loopback_client(server.port()));
  redis::Lease lease(client, "rgtest:");
  auto a = run_coro(lease.try_acquire("mws.list:k"));
  CHECK(a.status == redis::Lease::Status::acquired);
  CHECK_FALSE(a.token.empty());
  auto b = run_coro(lease.try_acquire("mws.list:k"));
  CHECK(b.status == redis::Lease::Status::taken);
  CHECK(run_coro(lease.try_acquire("mws.list:other")).status == redis::Lease::Status::acquired);
  CHECK_FALSE(run_coro(lease.release("mws.list:k", "not-the-token")));
  CHECK(run_coro(client.command({"EXISTS", lease.redis_key("mws.list:k")}))->integer == 1);
  CHECK(run_coro(lease.release("mws.list:k", a.token)));
  CHECK(run_coro(client.command({"EXISTS", lease.redis_key("mws.list:k")}))->integer == 0);
  CHECK(run_coro(lease.wait_released("mws.list:k")));  // absent: at once
  server.kill();
  CHECK(run_coro(lease.try_acquire("mws.list:k")).status == redis::Lease::Status::unavailable);
}

TEST_CASE("redis lease: an expired lease can be taken again, and its old holder cannot delete the new one") {
  test::RedisServer server;
  redis::Client client(test::loopback_client(server.port()));
  redis::Lease lease(client, "rgtest:", redis::LeaseOptions{std::chrono::milliseconds(150), std::chrono::milliseconds(10)});
  auto a = run_coro(lease.try_acquire("x"));
  REQUIRE(a.status == redis::Lease::Status::acquired);
  const auto t0 = std::chrono::steady_clock::now();
  CHECK(run_coro(lease.wait_released("x")));  // polls until Redis expires it
  CHECK(std::chrono::steady_clock::now() - t0 >= std::chrono::milliseconds(100));
  auto b = run_coro(lease.try_acquire("x"));
  REQUIRE(b.status == redis::Lease::Status::acquired);
  CHECK_FALSE(run_coro(lease.release("x", a.token)));
  CHECK(run_coro(client.command({"GET", lease.redis_key("x")}))->str == b.token);
}

namespace {

using Result = Expected<int>;

// Two "replicas": separate Coalescers (separate processes' flights) sharing one
// Redis. Their work reads the shared tier first, like the services' fetches.
struct Replicas {
  redis::Client& client;
  redis::SharedCache shared;
  int upstream_calls = 0;
  net::steady_timer gate;  // holds the first upstream call open until the test opens it

  Replicas(redis::Client& c, net::any_io_executor ex) : client(c), shared(c, "rgtest:"), gate(ex) {
    gate.expires_at(net::steady_timer::time_point::max());
  }
};

net::awaitable<Result> replica_work(Replicas* r) {
  const std::string kind = "t";
  const std::string key = "item";
  if (auto e = co_await r->shared.get(kind, key)) co_return std::stoi(e->body());
  const int call = ++r->upstream_calls;
  if (call == 1) {
    boost::system::error_code ec;
    co_await r->gate.async_wait(net::redirect_error(net::use_awaitable, ec));
  }
  cache::EntryData d;
  d.body = std::to_string(40 + call);
  const cache::EntryPtr e = cache::make_entry(d);
  co_await r->shared.put(kind, key, e, std::chrono::seconds(60));
  co_return 40 + call;
}

net::awaitable<void> replica_request(Replicas* r, Coalescer<Result>* flights, redis::Lease* lease,
                                     std::optional<Result>* out) {
  const std::string key = "item";
  Coalescer<Result>::Work work = [r](WaitLimitPtr) { return replica_work(r); };
  // Long enough for the leader's answer: a request waits on another
  // replica's lease only within its own limit (scale_service_test.cpp).
  const WaitLimitPtr limit = wait_limit_for([] { return 0.0; }, 30);
  *out = co_await svc::in_flight(*flights, key, work, limit, "test", lease);
}

// The first replica leads; the second starts while the first's upstream call
// is open. Returns the number of upstream calls made.
net::awaitable<int> two_replicas(Replicas* r, redis::Lease* lease, std::optional<Result>* a, std::optional<Result>* b) {
  auto ex = co_await net::this_coro::executor;
  Coalescer<Result> one(ex), two(ex);
  net::co_spawn(ex, replica_request(r, &one, lease, a), net::detached);
  net::steady_timer t(ex);
  for (int i = 0; i < 400 && r->upstream_calls == 0; ++i) {  // bounded: the first reaches upstream
    t.expires_after(std::chrono::milliseconds(5));
    co_await t.async_wait(net::use_awaitable);
  }
  net::co_spawn(ex, replica_request(r, &two, lease, b), net::detached);
  // Without a lease the second calls upstream at once; give it that chance
  // (bounded), then let the leader answer.
  for (int i = 0; i < 60 && r->upstream_calls < 2; ++i) {
    t.expires_after(std::chrono::milliseconds(5));
    co_await t.async_wait(net::use_awaitable);
  }
  r->gate.cancel();
  for (int i = 0; i < 400 && !(a->has_value() && b->has_value()); ++i) {
    t.expires_after(std::chrono::milliseconds(5));
    co_await t.async_wait(net::use_awaitable);
  }
  co_return r->upstream_calls;
}

}  // namespace

TEST_CASE("svc::in_flight with a lease: a second replica waits for the leader's shared result (one upstream call)") {
  test::RedisServer server;
  redis::Client client(test::loopback_client(server.port()));
  redis::Lease lease(client, "rgtest:", redis::LeaseOptions{std::chrono::milliseconds(5000), std::chrono::milliseconds(10)});
  Replicas r(client, test::test_io_context().get_executor());
  std::optional<Result> a, b;
  CHECK(run_coro(two_replicas(&r, &lease, &a, &b)) == 1);
  REQUIRE(a.has_value());
  REQUIRE(b.has_value());
  REQUIRE(a->has_value());
  REQUIRE(b->has_value());
  CHECK(**a == 41);
  CHECK(**b == 41);
  CHECK(run_coro(client.command({"EXISTS", lease.redis_key("test:item")}))->integer == 0);  // released
}

TEST_CASE("svc::in_flight without a lease (Redis unconfigured): each replica calls upstream, as before") {
  test::RedisServer server;
  redis::Client client(test::loopback_client(server.port()));
  Replicas r(client, test::test_io_context().get_executor());
  std::optional<Result> a, b;
  CHECK(run_coro(two_replicas(&r, nullptr, &a, &b)) == 2);
}
