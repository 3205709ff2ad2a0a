// The Redis client ([scale] item 5) against a real redis-server: pipelines,
// error replies, binary-safe values, AUTH/SELECT from the URL, the timeout, the
// backoff while Redis is down and the recovery; redis.url parsing and masking.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>

#include "core/config.hpp"
#include "core/metrics.hpp"
#include "core/redis/client.hpp"
#include "redis_run.hpp"
#include "../support/redis_server.hpp"

using namespace recgate;
using recgate::redis::Reply;
using recgate::test::run_coro;
using Steady = std::chrono::steady_clock;

namespace {

ConfigEnv env_with(std::string name, std::string value) {
  ConfigEnv e;
  e.getenv = [name, value](const std::string& n) -> std::optional<std::string> {
    if (n == name) return value;
    return std::nullopt;
  };
  e.read_file = [](const std::string&) -> std::optional<std::string> { return std::nullopt; };
  return e;
}

}  // namespace

TEST_CASE("redis client: a pipeline answers every command in order, error replies and binary values included") {
  test::RedisServer server;
  redis::Client client(test::loopback_client(server.port(), std::chrono::milliseconds(500)));
  const std::string binary("a\0b\r\nc", 6);
  auto replies = run_coro(client.pipeline(
      {{"SET", "k", binary}, {"GET", "k"}, {"INCR", "k"}, {"GET", "absent"}, {"RPUSH", "l", "x", "y"}, {"LRANGE", "l", "0", "-1"}}));
  REQUIRE(replies.has_value());
  REQUIRE(replies->size() == 6);
  CHECK((*replies)[0].type == Reply::Type::status);
  CHECK((*replies)[1].str == binary);
  CHECK((*replies)[2].is_error());  // not an integer: a Redis error, not a failure
  CHECK((*replies)[3].type == Reply::Type::nil);
  CHECK((*replies)[4].integer == 2);
  REQUIRE((*replies)[5].elements.size() == 2);
  CHECK((*replies)[5].elements[1].str == "y");
  CHECK(client.up());
}

TEST_CASE("redis client: AUTH and SELECT come from the URL, a wrong password fails without leaking it") {
  test::RedisServer server({"--requirepass", "s3cret-pw"});
  auto parsed = redis::parse_url("redis://:s3cret-pw@127.0.0.1:" + std::to_string(server.port()) + "/3");
  REQUIRE(parsed);
  redis::ClientOptions o = test::loopback_client(server.port(), std::chrono::milliseconds(500));
  o.url = *parsed;
  redis::Client good(o);
  auto r = run_coro(good.pipeline({{"SET", "in3", "v"}, {"CLIENT", "INFO"}}));
  REQUIRE(r.has_value());
  CHECK((*r)[1].str.find("db=3") != std::string::npos);

  o.url.password = "wrong-pw";
  redis::Client bad(o);
  CHECK_FALSE(run_coro(bad.command({"PING"})).has_value());
  CHECK_FALSE(bad.up());
  CHECK(bad.last_error().find("wrong-pw") == std::string::npos);
}

TEST_CASE("redis client: a server that never answers costs redis.timeout_ms, then the backoff answers at once") {
  // A listening socket that accepts (the kernel's backlog) but never replies.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  REQUIRE(::listen(fd, 8) == 0);
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
  redis::ClientOptions o = test::loopback_client(ntohs(a.sin_port), std::chrono::milliseconds(150));
  o.backoff_min = std::chrono::seconds(30);  // far longer than this test: the second call is inside it
  redis::Client client(o);

  auto t0 = Steady::now();
  CHECK_FALSE(run_coro(client.command({"PING"})).has_value());
  auto first = Steady::now() - t0;
  CHECK(first >= std::chrono::milliseconds(140));
  CHECK(first < std::chrono::seconds(2));
  CHECK_FALSE(client.up());
  CHECK(client.last_error().find("redis.timeout_ms") != std::string::npos);

  t0 = Steady::now();
  CHECK_FALSE(run_coro(client.command({"PING"})).has_value());  // inside the backoff: no network
  CHECK(Steady::now() - t0 < std::chrono::milliseconds(50));
  ::close(fd);
}

TEST_CASE("redis client: Redis killed -> calls fail and recgate_redis_up is 0, restarted -> the next call after the backoff succeeds") {
  test::RedisServer server;
  redis::ClientOptions o = test::loopback_client(server.port(), std::chrono::milliseconds(500));
  o.backoff_min = std::chrono::milliseconds(50);
  o.backoff_max = std::chrono::milliseconds(50);
  redis::Client client(o);
  REQUIRE(run_coro(client.command({"PING"})).has_value());
  auto& up = Metrics::instance().gauge("recgate_redis_up", "");
  CHECK(up.value() == 1);

  server.kill();
  CHECK_FALSE(run_coro(client.command({"PING"})).has_value());  // the pooled connection is dead
  CHECK_FALSE(client.up());
  CHECK(up.value() == 0);

  REQUIRE(server.restart());
  // Bounded: the backoff is 50 ms; each failed probe re-arms it.
  bool back = false;
  for (auto deadline = Steady::now() + std::chrono::seconds(5); !back && Steady::now() < deadline;) {
    back = run_coro(client.command({"PING"})).has_value();
    if (!back) ::usleep(20 * 1000);  // waiting out the client's own backoff, not synchronising with a thread
  }
  CHECK(back);
  CHECK(client.up());
  CHECK(up.value() == 1);
  CHECK(Metrics::instance().render().find("recgate_redis_command_duration_seconds_bucket{command=\"PING\"") !=
        std::string::npos);
}

TEST_CASE("redis.url: the forms allowed, and the password masked in errors and in the config dump") {
  auto u = redis::parse_url("redis://:pw@redis:6380/2");
  REQUIRE(u);
  CHECK(u->host == "redis");
  CHECK(u->port == 6380);
  CHECK(u->password == "pw");
  CHECK(u->db == 2);
  auto plain = redis::parse_url("redis://[::1]:6379");
  REQUIRE(plain);
  CHECK(plain->host == "::1");
  CHECK(plain->password.empty());
  std::string fault;
  CHECK_FALSE(redis::parse_url("http://redis:6379", &fault));
  CHECK(fault.find("redis://") != std::string::npos);
  CHECK_FALSE(redis::parse_url("redis://user:topsecret@redis:6379", &fault));
  CHECK(fault.find("topsecret") == std::string::npos);
  CHECK_FALSE(redis::parse_url("redis://redis", &fault));
  CHECK_FALSE(redis::parse_url("redis://redis:6379/99", &fault));
  CHECK(redis::mask_url("redis://:pw@redis:6379/0") == "redis://:********@redis:6379/0");
  CHECK(redis::mask_url("redis://redis:6379/0") == "redis://redis:6379/0");

  const std::string base = R"({"database": "x.db", "redis": {"url": "${REDIS_URL}", "replicas": 3}})";
  auto ok = parse_config(base, env_with("REDIS_URL", "redis://:hunter22@redis:6379/0"));
  REQUIRE(ok.config);
  CHECK(ok.config->redis.url == "redis://:hunter22@redis:6379/0");
  CHECK(ok.config->redis.replicas == 3);
  CHECK(ok.config->redis.key_prefix == "recgate:");
  CHECK(ok.config->redis.timeout_ms == 200);
  const std::string dump = config_to_masked_json(*ok.config);
  CHECK(dump.find("hunter22") == std::string::npos);
  CHECK(dump.find("redis://:********@redis:6379/0") != std::string::npos);

  auto bad = parse_config(base, env_with("REDIS_URL", "redis://admin:hunter22@redis"));
  REQUIRE_FALSE(bad.config);
  REQUIRE(bad.errors.size() == 1);
  CHECK(bad.errors[0].rfind("redis.url: ", 0) == 0);
  CHECK(bad.errors[0].find("hunter22") == std::string::npos);

  auto unknown = parse_config(R"({"database": "x.db", "redis": {"timeout_ms": 0, "db": 1}})", env_with("", ""));
  REQUIRE(unknown.errors.size() == 2);

  auto absent = parse_config(R"({"database": "x.db"})", env_with("", ""));
  REQUIRE(absent.config);
  CHECK(absent.config->redis.url.empty());  // single-process mode
}
