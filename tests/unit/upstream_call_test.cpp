// Table tests of the one upstream call loop (server/core/upstream/call) that
// MWS, Ads and LWA share: a scripted fake upstream, a real Throttler on a
// fake clock, one io_context polled by hand. No sockets, no sleeps.
#include <doctest/doctest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/throttle/throttler.hpp"
#include "core/upstream/call.hpp"

using namespace recgate;
namespace net = boost::asio;

namespace {

// Answers each request with the next scripted result and records what was sent.
class ScriptedUpstream final : public upstream::Upstream {
 public:
  std::deque<upstream::Result> script;
  std::vector<upstream::Request> sent;

  net::awaitable<upstream::Result> request(upstream::Request req) override {
    sent.push_back(std::move(req));
    REQUIRE_FALSE(script.empty());
    upstream::Result r = std::move(script.front());
    script.pop_front();
    co_return r;
  }
};

upstream::Result answer(int status, std::string body = {}, std::vector<std::pair<std::string, std::string>> h = {}) {
  upstream::Result r;
  r.response.status = status;
  r.response.body = std::move(body);
  r.response.headers = std::move(h);
  return r;
}

upstream::Result transport(upstream::ErrorKind kind) {
  upstream::Result r;
  r.error = kind;
  r.detail = "scripted";
  return r;
}

// 200 success; 429 throttled; 401 retried once; anything else a failure.
class TableExchange final : public upstream::Exchange {
 public:
  std::vector<int> built;  // attempt numbers
  std::optional<bool> refused_after_throttle;
  bool retried_401 = false;

  net::awaitable<Expected<upstream::Request>> build(int attempt) override {
    built.push_back(attempt);
    upstream::Request req;
    req.url = "http://127.0.0.1:1/x";
    req.body = "attempt " + std::to_string(attempt);
    co_return req;
  }
  upstream::Verdict classify(const upstream::Response& res) override {
    if (res.status == 200) return upstream::Verdict::success;
    if (res.status == 429) return upstream::Verdict::throttled;
    if (res.status == 401 && !retried_401) {
      retried_401 = true;
      return upstream::Verdict::retry;
    }
    return upstream::Verdict::failure;
  }
  Problem failure(const upstream::Response& res) override {
    return to_problem_for_test(res.status);
  }
  Problem quota_refused(Problem p, bool was_throttled) override {
    refused_after_throttle = was_throttled;
    return p;
  }
  std::string what() const override { return "the test API"; }

  static Problem to_problem_for_test(int status) {
    return make_problem(502, "upstream_error", "answered HTTP " + std::to_string(status));
  }
};

struct Rig {
  net::io_context io;
  double now = 1.8e9;
  Throttler throttler;
  ScriptedUpstream up;
  TableExchange ex;
  std::optional<Expected<upstream::Response>> result;

  static ThrottleConfig config() {
    ThrottleConfig cfg;
    cfg.margin_ms = 0;
    cfg.buckets["ads.ProductRecommendations"] = BucketConfig{10, 10};
    return cfg;
  }
  Rig() : throttler(config(), nullptr, [this] { return now; }) {}

  void start(std::chrono::milliseconds max_wait = std::chrono::milliseconds(30000)) {
    upstream::Quota quota;
    quota.limit = throttler.limit_for(max_wait);
    quota.client = "test-client";
    net::co_spawn(io, run(quota), net::detached);
    poll();
  }
  net::awaitable<void> run(upstream::Quota quota) {
    const upstream::CallSite site{"ads", "ProductRecommendations", "acct", "ads.ProductRecommendations", "rid-1"};
    result.emplace(co_await upstream::upstream_call(throttler, up, site, quota, ex));
  }
  void poll() {
    io.restart();
    io.poll();
  }
  void advance(double seconds) {
    now += seconds;
    throttler.reevaluate();
    poll();
  }
};

}  // namespace

TEST_CASE("upstream_call: success is returned and the request is sent once") {
  Rig rig;
  rig.up.script.push_back(answer(200, "{\"ok\":true}"));
  rig.start();
  REQUIRE(rig.result);
  REQUIRE(rig.result->has_value());
  CHECK((*rig.result)->body == "{\"ok\":true}");
  CHECK(rig.up.sent.size() == 1);
  CHECK(rig.ex.built == std::vector<int>{1});
}

TEST_CASE("upstream_call: a throttled answer holds the bucket for Retry-After, then retries") {
  Rig rig;
  rig.up.script.push_back(answer(429, "", {{"Retry-After", "5"}}));
  rig.up.script.push_back(answer(200, "{}"));
  rig.start();
  // The retry waits for the bucket: nothing more is sent before Retry-After.
  CHECK_FALSE(rig.result);
  CHECK(rig.up.sent.size() == 1);
  rig.advance(4.0);
  CHECK_FALSE(rig.result);
  CHECK(rig.up.sent.size() == 1);
  rig.advance(1.5);
  REQUIRE(rig.result);
  REQUIRE(rig.result->has_value());
  CHECK(rig.up.sent.size() == 2);
  CHECK(rig.ex.built == std::vector<int>{1, 2});
}

TEST_CASE("upstream_call: Retry-After beyond the client's wait ends in the quota refusal, marked as throttled") {
  Rig rig;
  rig.up.script.push_back(answer(429, "", {{"Retry-After", "60"}}));
  rig.start(std::chrono::milliseconds(2000));
  rig.advance(2.5);
  REQUIRE(rig.result);
  REQUIRE_FALSE(rig.result->has_value());
  CHECK(rig.result->error().status == 429);
  CHECK(rig.ex.refused_after_throttle == true);
  CHECK(rig.up.sent.size() == 1);
}

TEST_CASE("upstream_call: verdicts, as a table") {
  struct Row {
    const char* name;
    std::vector<upstream::Result> script;
    int sent;
    int status;  // of the result: 200, or the problem's
    const char* code;
  };
  const std::vector<Row> rows = {
      {"401 then 200: one retry at once (token refresh)", {answer(401), answer(200)}, 2, 200, ""},
      {"401 twice: the second is a failure", {answer(401), answer(401)}, 2, 502, "upstream_error"},
      {"500: a failure, not retried", {answer(500)}, 1, 502, "upstream_error"},
      {"timeout: 504 upstream_timeout", {transport(upstream::ErrorKind::timeout)}, 1, 504, "upstream_timeout"},
      {"reset: 502 upstream_unavailable", {transport(upstream::ErrorKind::dropped)}, 1, 502, "upstream_unavailable"},
  };
  for (const auto& row : rows) {
    CAPTURE(row.name);
    Rig rig;
    for (const auto& r : row.script) rig.up.script.push_back(r);
    rig.start();
    REQUIRE(rig.result);
    CHECK(static_cast<int>(rig.up.sent.size()) == row.sent);
    if (row.status == 200) {
      CHECK(rig.result->has_value());
    } else {
      REQUIRE_FALSE(rig.result->has_value());
      CHECK(rig.result->error().status == row.status);
      CHECK(rig.result->error().code == row.code);
    }
  }
}
