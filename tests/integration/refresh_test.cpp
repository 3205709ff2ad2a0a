// [refresh] end to end with the real binaries: a category whose timestamp
// moves is refetched in the background (spare quota, no client request in
// between) and the next client gets a hit with the new data; an Ads answer
// asked for recently is refetched before its TTL ends and the next client
// gets a hit, not a miss; refreshes never go ahead of clients queued on the
// bucket; no run throttles the sandbox.
#include <doctest/doctest.h>
#include <rapidjson/document.h>

#include <chrono>
#include <regex>
#include <thread>

#include "../support/redis_server.hpp"
#include "../support/sandbox_admin.hpp"
#include "harness.hpp"

using namespace rgtest;

namespace {

const std::string kInventory = "/v1/mws/main/recommendations?marketplace=ATVPDKIKX0DER&category=Inventory";
const std::string kTouchInventory = "/admin/touch?seller=A1XEXAMPLEDF&marketplace=ATVPDKIKX0DER&category=Inventory";

// recgate_refresh_total{api=...,result=...} as scraped now (0: not yet counted).
double refreshes(int port, const std::string& result, const std::string& api = "mws") {
  const std::string metrics = http_get(port, "/metrics").body;
  const std::regex re("recgate_refresh_total\\{api=\"" + api + "\",result=\"" + result + "\"\\} ([0-9.e+]+)");
  std::smatch m;
  return std::regex_search(metrics, m, re) ? std::stod(m[1].str()) : 0;
}

std::string last_updated_of(const std::string& body) {
  rapidjson::Document d;
  d.Parse(body.c_str());
  REQUIRE(!d.HasParseError());
  const auto& v = d["categories"][0]["lastUpdated"];
  return v.IsString() ? v.GetString() : "null";
}

// A short check interval: one tick of the refresh scheduler per second.
std::string refresh_config(const TempDir& dir, int sandbox_port, const std::string& extra = "") {
  return test_config(dir, sandbox_port, "\"cache\":{\"refresh_ahead\":true,\"refresh_hot_s\":3600}" + extra,
                     "\"check_interval_s\":1");
}

}  // namespace

TEST_CASE("refresh: a moved timestamp is refetched in the background - the next request is a hit with the new data") {
  Sandbox sb;
  TempDir dir;
  Recgate rg(dir, refresh_config(dir, sb.port));
  SandboxAdmin admin(sb.port);
  auto first = http_get(rg.port, kInventory);
  REQUIRE(first.status == 200);
  CHECK(first.header("cache-status") == "recgate; fwd=miss; stored");
  const int lists = admin.mws_requests("ListRecommendations");
  REQUIRE(http_request(sb.port, "POST", kTouchInventory).status == 200);

  // No client request in between: the background check sees the move and refetches.
  REQUIRE(wait_until([&] { return refreshes(rg.port, "refreshed") >= 1; }, std::chrono::seconds(30)));
  CHECK(admin.mws_requests("ListRecommendations") == lists + 1);

  const int lists_before_hit = admin.mws_requests("ListRecommendations");
  const auto t0 = std::chrono::steady_clock::now();
  auto after = http_get(rg.port, kInventory);
  const auto took = std::chrono::steady_clock::now() - t0;
  REQUIRE(after.status == 200);
  CHECK(after.header("cache-status") == "recgate; hit; detail=refreshed");
  CHECK(last_updated_of(after.body) != last_updated_of(first.body));
  CHECK(after.body != first.body);
  CHECK(admin.mws_requests("ListRecommendations") == lists_before_hit);  // served from the cache
  CHECK(took < std::chrono::milliseconds(500));                           // a hit, not a paged fetch
  CHECK(admin.mws_throttled() == 0);
}

TEST_CASE("refresh: with clients queued on the bucket, no refresh is sent before them, and none throttles") {
  Sandbox sb;
  TempDir dir;
  Recgate rg(dir, refresh_config(dir, sb.port, ",\"log\":{\"level\":\"debug\"}"));
  SandboxAdmin admin(sb.port);
  REQUIRE(http_get(rg.port, kInventory).status == 200);  // Inventory is hot
  REQUIRE(http_request(sb.port, "POST", kTouchInventory).status == 200);
  // Clients that need more ListRecommendations tokens than the bucket holds
  // (8): they queue, and the refresh of Inventory becomes due meanwhile.
  const std::vector<std::string> categories{"Selection", "Pricing", "Fulfillment", "GlobalSelling", "Advertising",
                                            "ListingQuality"};
  std::vector<std::thread> clients;
  std::atomic<int> ok{0};
  for (const auto& c : categories)
    clients.emplace_back([&, c] {
      auto r = http_get(rg.port, "/v1/mws/main/recommendations?marketplace=ATVPDKIKX0DER&category=" + c,
                        {{"Prefer", "wait=120"}});
      if (r.status == 200) ++ok;
    });
  for (auto& t : clients) t.join();
  CHECK(ok.load() == static_cast<int>(categories.size()));
  REQUIRE(wait_until([&] { return refreshes(rg.port, "refreshed") >= 1; }, std::chrono::seconds(60)));
  CHECK(refreshes(rg.port, "no_spare") >= 1);  // it was due while the clients held the bucket

  // Every client list call was sent before the first refresh list call
  // (log lines of upstream calls, in the order recgate wrote them).
  std::size_t last_client = 0, first_refresh = 0, n = 0;
  for (const auto& line : rg.proc.lines()) {
    if (line.find("\"msg\":\"upstream call\"") == std::string::npos) continue;
    if (line.find("\"operation\":\"ListRecommendations") == std::string::npos) continue;
    ++n;
    if (line.find("\"request_id\":\"refresh\"") != std::string::npos) {
      if (!first_refresh) first_refresh = n;
    } else {
      last_client = n;
    }
  }
  REQUIRE(first_refresh > 0);
  CHECK(last_client < first_refresh);
  CHECK(admin.mws_throttled() == 0);
}

namespace {

const std::string kAdsPath = "/v1/ads/main/product-recommendations";
const std::string kAdsBody = R"({"adAsins":["B09LJWZT6G"],"count":3})";

HttpResponse ads_post(int port) {
  return http_request(port, "POST", kAdsPath, kAdsBody, {{"Content-Type", "application/json"}});
}

// Ads answers the sandbox served (its /admin/stats ads.requests.total).
int ads_requests(const SandboxAdmin& admin) { return admin.stats()["ads"]["requests"]["total"].GetInt(); }

// `extra`: more top-level config (the Redis tier).
void check_ads_refresh(const std::string& extra) {
  Sandbox sb;
  TempDir dir;
  constexpr int kTtlS = 4;  // due 2 s after it is fetched (two 1-second ticks, at most half the TTL)
  Recgate rg(dir, test_config(dir, sb.port, "\"cache\":{\"refresh_ahead\":true,\"refresh_hot_s\":3600}" + extra,
                              "\"check_interval_s\":1", "\"cache_ttl_s\":" + std::to_string(kTtlS)));
  SandboxAdmin admin(sb.port);
  const auto fetched = std::chrono::steady_clock::now();
  auto first = ads_post(rg.port);
  REQUIRE(first.status == 200);
  CHECK(first.header("cache-status") == "recgate; fwd=miss; stored");
  const int answers = ads_requests(admin);

  // No client request in between: the scheduler refetches it ahead of its TTL.
  REQUIRE(wait_until([&] { return ads_requests(admin) > answers; }, std::chrono::seconds(30)));
  REQUIRE(wait_until([&] { return refreshes(rg.port, "refreshed", "ads") >= 1; }, std::chrono::seconds(10)));
  // Refetched at the first try: not skipped by adopting a copy of the old
  // answer (the Redis tier), which would leave the refetch until it expired.
  CHECK(refreshes(rg.port, "skipped", "ads") == 0);

  // Past the first answer's TTL (without the refresh this request would be a
  // miss): the time passing is what is tested, nothing is waited for.
  std::this_thread::sleep_until(fetched + std::chrono::seconds(kTtlS) + std::chrono::milliseconds(200));
  auto after = ads_post(rg.port);
  REQUIRE(after.status == 200);
  CHECK(after.header("cache-status") == "recgate; hit; detail=refreshed");
  CHECK(after.body == first.body);  // the sandbox answers the same request alike
  CHECK(refreshes(rg.port, "failed", "ads") == 0);
  CHECK(admin.ads_stat("rate_limited") == 0);
}

}  // namespace

TEST_CASE("refresh: a hot Ads answer is refetched before its TTL ends - the next request is a hit, not a miss") {
  check_ads_refresh("");
}

TEST_CASE("refresh: with the Redis tier, an Ads refresh does not adopt the shared copy of the answer it renews") {
  recgate::test::RedisServer redis;
  check_ads_refresh(",\"redis\":{\"url\":\"" + redis.url() + "\",\"key_prefix\":\"refresh:\"}");
}
