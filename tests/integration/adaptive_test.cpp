// [quota] against the sandbox: its Ads rate limit changed at run time through
// the admin endpoint, as Amazon's changes with load, in the form Amazon uses
// (429 without Retry-After, amazon-advertising-api-throttled: true).
#include <doctest/doctest.h>
#include <rapidjson/document.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "../support/sandbox_admin.hpp"
#include "harness.hpp"
#include "../support/json_body.hpp"

using namespace rgtest;

namespace {

}  // namespace

TEST_CASE("sandbox: PUT /admin/ads/limit changes the Ads limit at run time, recgate sees Amazon's 429 form") {
  Sandbox sb;
  auto before = parse(http_get(sb.port, "/admin/ads/limit").body);
  CHECK(before["burst"].GetInt() >= 1);
  auto put = SandboxAdmin(sb.port).set_ads_limit(R"({"burst":1,"rate_per_s":0.01,"retry_after_s":0,"amazon_throttled":true})");
  REQUIRE(put.status == 200);
  CHECK(parse(put.body)["burst"].GetInt() == 1);
  auto bad = SandboxAdmin(sb.port).set_ads_limit(R"({"rate_per_s":0})");
  CHECK(bad.status == 400);
  CHECK(bad.body.find("rate_per_s must be a number > 0") != std::string::npos);

  TempDir dir;
  Recgate rg(dir, test_config(dir, sb.port));
  const std::string path = "/v1/ads/main/product-recommendations";
  auto first = http_request(rg.port, "POST", path, R"({"adAsins":["B09LJWZT6G"],"count":1})",
                            {{"Content-Type", "application/json"}});
  CHECK(first.status == 200);  // the sandbox's one token
  // recgate's own bucket (10, 2 per s) allows the next call; the sandbox does not.
  auto second = http_request(rg.port, "POST", path, R"({"adAsins":["B09LJWZT6G"],"count":2})",
                             {{"Content-Type", "application/json"}, {"Prefer", "wait=1"}});
  CHECK(second.status == 429);
  CHECK(SandboxAdmin(sb.port).ads_stat("rate_limited") >= 1);
}

namespace {

struct RunCounts {
  int answered = 0;          // 200s the clients got
  int throttled_first = 0;   // upstream 429s in the first half
  int throttled_second = 0;  // ... and in the second
};

// Four clients ask the Ads API without pause (Cache-Control: no-cache: every
// request goes upstream) for `seconds`; the sandbox's 429s are read at the
// half and at the end.
RunCounts four_clients(int rg_port, int sb_port, int seconds) {
  RunCounts c;
  std::atomic<int> answered{0};
  const auto start = std::chrono::steady_clock::now();
  const auto end = start + std::chrono::seconds(seconds);
  std::vector<std::thread> ts;
  for (int i = 0; i < 4; ++i)
    ts.emplace_back([&, i] {
      const std::string body = "{\"adAsins\":[\"B09LJWZT6G\"],\"count\":" + std::to_string(i + 1) + "}";
      while (std::chrono::steady_clock::now() < end) {
        auto r = http_request(rg_port, "POST", "/v1/ads/main/product-recommendations", body,
                              {{"Content-Type", "application/json"}, {"Cache-Control", "no-cache"},
                               {"Prefer", "wait=30"}},
                              std::chrono::seconds(60));
        if (r.status == 200) ++answered;
      }
    });
  std::this_thread::sleep_until(start + std::chrono::seconds(seconds / 2));  // a measurement point, not a sync
  c.throttled_first = SandboxAdmin(sb_port).ads_stat("rate_limited");
  for (auto& t : ts) t.join();
  c.throttled_second = SandboxAdmin(sb_port).ads_stat("rate_limited") - c.throttled_first;
  c.answered = answered.load();
  return c;
}

}  // namespace

TEST_CASE("adaptive: against an Ads limit of 5 burst / 1 per s without Retry-After, recgate learns it: few 429s, >= 90% used") {
  Sandbox sb;
  REQUIRE(SandboxAdmin(sb.port).set_ads_limit(R"({"burst":5,"rate_per_s":1,"retry_after_s":0,"amazon_throttled":true})")
              .status == 200);
  TempDir dir;
  Recgate rg(dir, test_config(dir, sb.port));  // recgate's own guess: 10, 2 per s
  const int seconds = 60;
  RunCounts c = four_clients(rg.port, sb.port, seconds);
  const double allowed = 5 + seconds * 1.0;
  MESSAGE("upstream 429s: " << c.throttled_first << " in the first 30 s, " << c.throttled_second
                            << " after; answers " << c.answered << " of " << allowed << " allowed ("
                            << 100.0 * c.answered / allowed << " %)");
  CHECK(c.throttled_first <= 3);
  CHECK(c.throttled_second == 0);
  CHECK(c.answered >= 0.9 * allowed);
  auto status = http_get(rg.port, "/v1/status");
  CHECK(status.body.find("\"learntRestorePerSecond\":1") != std::string::npos);
  auto m = http_get(rg.port, "/metrics");
  CHECK(m.body.find("recgate_bucket_restore_per_second{account=\"main\",operation=\"ads.ProductRecommendations\"} 1") !=
        std::string::npos);
}

namespace {

// recgate's learnt Ads rate from /v1/status (-1: none yet).
double learnt_rate(int rg_port) {
  auto d = parse(http_get(rg_port, "/v1/status").body);
  for (const auto& b : d["buckets"].GetArray())
    if (std::string(b["operation"].GetString()) == "ads.ProductRecommendations" &&
        b["learntRestorePerSecond"].IsNumber())
      return b["learntRestorePerSecond"].GetDouble();
  return -1;
}

}  // namespace

TEST_CASE("adaptive: the sandbox's Ads limit lowered mid-run and raised again: recgate's learnt rate follows both ways") {
  Sandbox sb;
  REQUIRE(SandboxAdmin(sb.port).set_ads_limit(R"({"burst":10,"rate_per_s":2,"retry_after_s":0,"amazon_throttled":true})").status == 200);
  TempDir dir;
  // Quick probing for the test: a step of 0.5 per s after 3 quiet seconds.
  Recgate rg(dir, test_config(dir, sb.port,
                              "\"throttle\":{\"adaptive\":{\"ads.ProductRecommendations\":{\"quiet_s\":3,"
                              "\"step_per_s\":0.5}}}"));
  std::atomic<bool> stop{false};
  std::vector<std::thread> ts;
  for (int i = 0; i < 4; ++i)
    ts.emplace_back([&, i] {
      const std::string body = "{\"adAsins\":[\"B09LJWZT6G\"],\"count\":" + std::to_string(i + 1) + "}";
      for (int n = 0; n < 100000 && !stop; ++n)
        http_request(rg.port, "POST", "/v1/ads/main/product-recommendations", body,
                     {{"Content-Type", "application/json"}, {"Cache-Control", "no-cache"}, {"Prefer", "wait=30"}},
                     std::chrono::seconds(60));
    });
  // Amazon lowers the limit to a quarter: recgate cuts its rate down to it.
  REQUIRE(wait_until([&] { return learnt_rate(rg.port) == 2.0; }, std::chrono::seconds(10)));
  REQUIRE(SandboxAdmin(sb.port).set_ads_limit(R"({"burst":3,"rate_per_s":0.5})").status == 200);
  const bool down = wait_until([&] { double r = learnt_rate(rg.port); return r > 0 && r <= 0.5; },
                               std::chrono::seconds(30));
  const double low = learnt_rate(rg.port);
  // And raises it again: recgate probes back up to the ceiling.
  REQUIRE(SandboxAdmin(sb.port).set_ads_limit(R"({"burst":10,"rate_per_s":2})").status == 200);
  const bool up = wait_until([&] { return learnt_rate(rg.port) >= 1.5; }, std::chrono::seconds(40));
  const double high = learnt_rate(rg.port);
  stop = true;
  for (auto& t : ts) t.join();
  MESSAGE("learnt rate: 2 -> " << low << " after the limit fell to 0.5/s -> " << high << " after it rose to 2/s");
  CHECK(down);
  CHECK(up);
}
