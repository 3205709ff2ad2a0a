// [throttle] end to end against the sandbox, which enforces Amazon's exact
// quota (8, one more every 2 s) and counts what it throttles: concurrent
// demand above quota never trips it, 429 at once with Retry-After, restarts
// grant no fresh burst, accounts do not delay each other.
#include <doctest/doctest.h>
#include <rapidjson/document.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <vector>
#include <thread>

#include "../support/sandbox_admin.hpp"
#include "harness.hpp"

using namespace rgtest;

namespace {

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
  CHECK(SandboxAdmin(sb.port).mws_throttled() == 0);
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
  CHECK(SandboxAdmin(sb.port).mws_throttled() == 0);
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

// ---- quota fairness (issue 11 items 7 and 8) --------------------------------

namespace {

using Headers = std::vector<std::pair<std::string, std::string>>;

// Requests queued now for `operation`'s bucket, from /v1/status.
int queued_for(int port, const std::string& operation, const Headers& auth = {}) {
  auto r = http_get(port, "/v1/status", auth);
  rapidjson::Document d;
  d.Parse(r.body.c_str());
  if (d.HasParseError() || !d.IsObject() || !d.HasMember("buckets")) return -1;
  for (const auto& b : d["buckets"].GetArray())
    if (operation == b["operation"].GetString()) return b["waiters"].GetInt();
  return 0;
}

// One API's distinct request number i, with extra headers.
struct Api {
  std::string operation;  // its bucket
  std::function<HttpResponse(int port, int i, const Headers& h)> call;
};

Api mws_api() {
  return {"mws.ListRecommendations",
          [](int port, int i, const Headers& h) { return http_request(port, "GET", brand_query(i), "", h); }};
}

Api ads_api() {
  return {"ads.ProductRecommendations", [](int port, int i, const Headers& h) {
            Headers all{{"Content-Type", "application/json"}};
            all.insert(all.end(), h.begin(), h.end());
            return http_request(port, "POST", "/v1/ads/main/product-recommendations",
                                "{\"adAsins\":[\"B09LJWZT6G\"],\"count\":" + std::to_string(i) + "}", all);
          }};
}

// A Prefer: wait=1 request that joins an identical call queued for quota gets
// its 429 after its own second, while the first caller (wait=30) gets 200.
void joiner_keeps_its_own_limit(const Api& api) {
  Sandbox sb;
  TempDir dir;
  Recgate rg(dir, test_config(dir, sb.port,
                              "\"throttle\":{\"buckets\":{\"" + api.operation +
                                  "\":{\"capacity\":1,\"restore_per_s\":0.2}}}"));
  REQUIRE(api.call(rg.port, 1, {}).status == 200);  // spends the only token: the next one is ~5 s away
  HttpResponse leader;
  std::thread first([&] { leader = api.call(rg.port, 2, {{"Prefer", "wait=30"}}); });
  REQUIRE(wait_until([&] { return queued_for(rg.port, api.operation) == 1; }, std::chrono::seconds(10)));
  const auto t0 = std::chrono::steady_clock::now();
  auto joiner = api.call(rg.port, 2, {{"Prefer", "wait=1"}});
  const auto joiner_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  first.join();
  MESSAGE(api.operation << ": joiner answered " << joiner.status << " after " << joiner_s << " s");
  CHECK(joiner.status == 429);
  CHECK(joiner.body.find("\"code\":\"quota_wait_exceeded\"") != std::string::npos);
  CHECK(joiner.body.find("joined an identical call") != std::string::npos);
  CHECK(std::stoi("0" + joiner.header("retry-after")) >= 1);
  CHECK(joiner.header("ratelimit-policy").find("q=1") != std::string::npos);
  CHECK(joiner_s < 2.5);  // its own second plus margin, not the leader's ~5 s
  CHECK(leader.status == 200);
  auto m = http_get(rg.port, "/metrics");
  CHECK(m.body.find("recgate_upstream_requests_total{api=\"" + api.operation.substr(0, 3)) != std::string::npos);
}

}  // namespace

TEST_CASE("throttle: a Prefer: wait=1 joiner of a queued MWS call gets its own 429 while the leader gets 200") {
  joiner_keeps_its_own_limit(mws_api());
}

TEST_CASE("throttle: a Prefer: wait=1 joiner of a queued Ads call gets its own 429 while the leader gets 200") {
  joiner_keeps_its_own_limit(ads_api());
}

TEST_CASE("throttle: one client cannot fill a quota queue: past its share it gets 429, another client still queues") {
  Sandbox sb;
  TempDir dir;
  Recgate rg(dir, test_config(dir, sb.port,
                              "\"clients\":[{\"name\":\"greedy\",\"key\":\"greedy-key-0123456789abcdef\"},"
                              "{\"name\":\"polite\",\"key\":\"polite-key-0123456789abcdef\"}],"
                              "\"throttle\":{\"max_queue_per_client\":2,\"buckets\":{\"mws.ListRecommendations\":"
                              "{\"capacity\":1,\"restore_per_s\":0.5}}}"));
  const Headers greedy{{"Authorization", "Bearer greedy-key-0123456789abcdef"}, {"Prefer", "wait=60"}};
  const Headers polite{{"Authorization", "Bearer polite-key-0123456789abcdef"}, {"Prefer", "wait=60"}};
  const Api api = mws_api();
  REQUIRE(api.call(rg.port, 1, greedy).status == 200);  // spends the only token
  std::vector<HttpResponse> answers(3);
  std::vector<std::thread> ts;
  for (int i = 0; i < 2; ++i) ts.emplace_back([&, i] { answers[i] = api.call(rg.port, 10 + i, greedy); });
  REQUIRE(wait_until([&] { return queued_for(rg.port, api.operation, greedy) == 2; }, std::chrono::seconds(10)));
  // The greedy client's third distinct request is over its share: 429 at once.
  const auto t0 = std::chrono::steady_clock::now();
  auto over = api.call(rg.port, 12, greedy);
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(2));
  CHECK(over.status == 429);
  CHECK(over.body.find("throttle.max_queue_per_client") != std::string::npos);
  CHECK(over.body.find("client greedy") != std::string::npos);
  CHECK_FALSE(over.header("retry-after").empty());
  // Another client still gets a place in the same queue, and is served.
  ts.emplace_back([&] { answers[2] = api.call(rg.port, 20, polite); });
  CHECK(wait_until([&] { return queued_for(rg.port, api.operation, greedy) == 3; }, std::chrono::seconds(10)));
  for (auto& t : ts) t.join();
  for (const auto& a : answers) CHECK_MESSAGE(a.status == 200, a.body);
}
