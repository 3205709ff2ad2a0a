// [throttle] end to end against the sandbox, which enforces Amazon's exact
// quota (8, one more every 2 s) and counts what it throttles: concurrent
// demand above quota never trips it, 429 at once with Retry-After, restarts
// grant no fresh burst, accounts do not delay each other.
#include <doctest/doctest.h>
#include <rapidjson/document.h>
#include <signal.h>

#include <atomic>
#include <thread>

#include "harness.hpp"

using namespace rgtest;

namespace {

int sandbox_throttled(int sandbox_port) {
  rapidjson::Document d;
  d.Parse(http_get(sandbox_port, "/admin/stats").body.c_str());
  REQUIRE(!d.HasParseError());
  return d["throttled"]["total"].GetInt();
}

std::string brand_query(int i) {
  return "/v1/mws/main/recommendations?marketplace=ATVPDKIKX0DER&category=Selection&filter=BrandName%3DBrand" +
         std::to_string(i);
}

// Fires n distinct requests at once; returns how many got 200.
int burst(int port, int first, int n, const std::string& account = "main") {
  std::vector<std::thread> ts;
  std::atomic<int> ok{0};
  for (int i = first; i < first + n; ++i)
    ts.emplace_back([&, i] {
      std::string target = brand_query(i);
      if (account != "main") target.replace(target.find("/main/"), 6, "/" + account + "/");
      auto r = http_request(port, "GET", target, "", {{"Prefer", "wait=120"}}, std::chrono::seconds(180));
      if (r.status == 200) ++ok;
      else MESSAGE("status " << r.status << " " << r.body);
    });
  for (auto& t : ts) t.join();
  return ok.load();
}

}  // namespace

TEST_CASE("throttle: 40 concurrent requests above quota all succeed and the sandbox throttles none") {
  Sandbox sb;
  TempDir dir;
  Recgate rg(dir, test_config(dir, sb.port, "\"throttle\":{\"max_wait_s\":5}"));
  CHECK(burst(rg.port, 0, 40) == 40);
  CHECK(sandbox_throttled(sb.port) == 0);
  auto status = http_get(rg.port, "/v1/status");
  REQUIRE(status.status == 200);
  CHECK(status.body.find("\"operation\":\"mws.ListRecommendations\"") != std::string::npos);
  CHECK(status.body.find("\"capacity\":8") != std::string::npos);
}

TEST_CASE("throttle: Prefer: wait=0 on an empty bucket gets 429 at once with Retry-After and RateLimit headers") {
  Sandbox sb;
  TempDir dir;
  Recgate rg(dir, test_config(dir, sb.port,
                              "\"throttle\":{\"buckets\":{\"mws.ListRecommendations\":{\"capacity\":1,"
                              "\"restore_per_s\":0.05}}}"));
  REQUIRE(http_get(rg.port, brand_query(1)).status == 200);  // spends the only token
  auto t0 = std::chrono::steady_clock::now();
  auto r = http_get(rg.port, brand_query(2), {{"Prefer", "wait=0"}});
  auto elapsed = std::chrono::steady_clock::now() - t0;
  CHECK(r.status == 429);
  CHECK(r.body.find("\"code\":\"quota_wait_exceeded\"") != std::string::npos);
  const int retry_after = std::stoi(r.header("retry-after"));
  // One token per 20 s (plus recgate's safety margin): the next one is ~20 s away.
  CHECK(retry_after >= 15);
  CHECK(retry_after <= 25);
  CHECK(r.header("ratelimit-policy").find("q=1") != std::string::npos);
  CHECK(r.header("ratelimit").find("r=0") != std::string::npos);
  // Decided from the queue position, not after waiting: far below the Retry-After.
  CHECK(elapsed < std::chrono::seconds(5));
  auto m = http_get(rg.port, "/metrics");
  CHECK_MESSAGE(m.status == 200, m.error);
  CHECK(m.body.find("recgate_throttle_rejections_total{operation=\"mws.ListRecommendations\"} 1") != std::string::npos);
}

TEST_CASE("throttle: drain the bucket, restart recgate, burst again: still no throttle upstream") {
  Sandbox sb;
  TempDir dir;
  const std::string cfg = test_config(dir, sb.port);
  {
    Recgate rg(dir, cfg);
    CHECK(burst(rg.port, 100, 8) == 8);
    rg.proc.signal(SIGTERM);
    CHECK(rg.proc.wait_exit() == 0);
  }
  Recgate again(dir, cfg);
  CHECK(burst(again.port, 200, 8) == 8);
  CHECK(sandbox_throttled(sb.port) == 0);
}

TEST_CASE("throttle: an exhausted bucket of one account does not delay another") {
  Sandbox sb;
  TempDir dir;
  std::string cfg = test_config(dir, sb.port,
                                "\"throttle\":{\"buckets\":{\"mws.ListRecommendations\":{\"capacity\":1,"
                                "\"restore_per_s\":0.01}}}");
  // A second account name with the same sandbox seller.
  const std::string main_acc = "\"main\":{";
  auto pos = cfg.find(main_acc);
  auto end = cfg.find('}', pos);
  std::string second = "\"other\":" + cfg.substr(pos + main_acc.size() - 1, end - (pos + main_acc.size() - 1) + 1) + ",";
  cfg.insert(pos, second);
  Recgate rg(dir, cfg);
  REQUIRE(http_get(rg.port, brand_query(1)).status == 200);
  CHECK(http_get(rg.port, brand_query(2), {{"Prefer", "wait=0"}}).status == 429);
  std::string other = brand_query(3);
  other.replace(other.find("/main/"), 6, "/other/");
  auto r = http_get(rg.port, other, {{"Prefer", "wait=0"}});
  CHECK(r.status == 200);
}
