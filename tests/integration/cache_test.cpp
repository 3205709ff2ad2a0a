// [cache] end to end: miss then hit without upstream list calls, timestamp
// changes, coalescing of concurrent cold requests, stale serving, kill -9
// survival, ETag/304, only-if-cached, no-cache, purge.
#include <doctest/doctest.h>
#include <rapidjson/document.h>
#include <signal.h>
#include <sqlite3.h>

#include <atomic>
#include <thread>

#include "../support/sandbox_admin.hpp"
#include "harness.hpp"

using namespace rgtest;

namespace {

const std::string kInventory = "/v1/mws/main/recommendations?marketplace=ATVPDKIKX0DER&category=Inventory";

std::string cache_field(const std::string& body) {
  rapidjson::Document d;
  d.Parse(body.c_str());
  REQUIRE(!d.HasParseError());
  return d["categories"][0]["cache"].GetString();
}

// Waits (bounded) until the cache row is committed to SQLite, so that a
// kill -9 afterwards tests durability, not a race with the writer thread.
bool wait_for_row(const std::string& db_path, std::chrono::seconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    sqlite3* db = nullptr;
    int n = 0;
    if (sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
      sqlite3_busy_timeout(db, 1000);
      sqlite3_stmt* st = nullptr;
      if (sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM mws_recommendations WHERE category='Inventory'", -1, &st,
                             nullptr) == SQLITE_OK &&
          sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int(st, 0);
      sqlite3_finalize(st);
    }
    sqlite3_close(db);
    if (n > 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // polling a condition, bounded by timeout
  }
  return false;
}

}  // namespace

TEST_CASE("cache: first request is a stored miss, the second a hit with no upstream list call") {
  Sandbox sb;
  TempDir dir;
  Recgate rg(dir, test_config(dir, sb.port));
  auto first = http_get(rg.port, kInventory);
  REQUIRE(first.status == 200);
  CHECK(first.header("cache-status") == "recgate; fwd=miss; stored");
  CHECK(cache_field(first.body) == "miss");
  const int lists = SandboxAdmin(sb.port).mws_requests("ListRecommendations");
  const int pages = SandboxAdmin(sb.port).mws_requests("ListRecommendationsByNextToken");
  const int snaps = SandboxAdmin(sb.port).mws_requests("GetLastUpdatedTimeForRecommendations");
  auto second = http_get(rg.port, kInventory);
  REQUIRE(second.status == 200);
  CHECK(second.header("cache-status") == "recgate; hit");
  CHECK(cache_field(second.body) == "hit");
  CHECK(second.header("etag") == first.header("etag"));
  CHECK_FALSE(second.header("age").empty());
  CHECK(SandboxAdmin(sb.port).mws_requests("ListRecommendations") == lists);
  CHECK(SandboxAdmin(sb.port).mws_requests("ListRecommendationsByNextToken") == pages);
  CHECK(SandboxAdmin(sb.port).mws_requests("GetLastUpdatedTimeForRecommendations") == snaps);  // within check_interval_s
}

TEST_CASE("cache: a moved timestamp makes the next request a miss with the new data (check_interval_s 0)") {
  Sandbox sb;
  TempDir dir;
  Recgate rg(dir, test_config(dir, sb.port, "", "\"check_interval_s\":0"));
  auto first = http_get(rg.port, kInventory);
  REQUIRE(first.status == 200);
  auto hit = http_get(rg.port, kInventory);
  CHECK(hit.header("cache-status") == "recgate; hit");  // re-checked, unchanged: still a hit
  auto touched = http_request(sb.port, "POST",
                              "/admin/touch?seller=A1XEXAMPLEDF&marketplace=ATVPDKIKX0DER&category=Inventory");
  REQUIRE(touched.status == 200);
  auto after = http_get(rg.port, kInventory);
  REQUIRE(after.status == 200);
  CHECK(after.header("cache-status") == "recgate; fwd=miss; stored");
  CHECK(after.body != first.body);
  CHECK(after.header("etag") != first.header("etag"));
  auto again = http_get(rg.port, kInventory);
  CHECK(again.header("cache-status") == "recgate; hit");
}

TEST_CASE("cache: within check_interval_s a moved timestamp is not seen - Cache-Control: no-cache re-checks now") {
  Sandbox sb;
  TempDir dir;
  Recgate rg(dir, test_config(dir, sb.port, "", "\"check_interval_s\":3600"));
  REQUIRE(http_get(rg.port, kInventory).status == 200);
  REQUIRE(http_request(sb.port, "POST", "/admin/touch?seller=A1XEXAMPLEDF&marketplace=ATVPDKIKX0DER&category=Inventory")
              .status == 200);
  CHECK(http_get(rg.port, kInventory).header("cache-status") == "recgate; hit");
  auto forced = http_get(rg.port, kInventory, {{"Cache-Control", "no-cache"}});
  CHECK(forced.header("cache-status") == "recgate; fwd=miss; stored");
}

TEST_CASE("cache: 50 concurrent identical cold requests make exactly one upstream ListRecommendations") {
  Sandbox sb;
  TempDir dir;
  Recgate rg(dir, test_config(dir, sb.port));
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  std::atomic<int> same_body{0};
  std::vector<std::string> bodies(50);
  std::atomic<int> hits{0};
  for (int i = 0; i < 50; ++i)
    threads.emplace_back([&, i] {
      auto r = http_get(rg.port, kInventory);
      if (r.status == 200) ++ok;
      if (r.header("cache-status") == "recgate; hit") ++hits;
      bodies[static_cast<std::size_t>(i)] = r.body;
    });
  for (auto& t : threads) t.join();
  CHECK(ok.load() == 50);
  CHECK(SandboxAdmin(sb.port).mws_requests("ListRecommendations") == 1);
  CHECK(SandboxAdmin(sb.port).mws_requests("GetLastUpdatedTimeForRecommendations") == 1);
  // The pages of that one list call, once.
  const int pages = SandboxAdmin(sb.port).mws_requests("ListRecommendationsByNextToken");
  CHECK(pages >= 1);
  CHECK(pages <= 3);
  // One request led the fetch; each other one either joined it (counted as
  // coalesced) or came after it and was a hit.
  const std::string metrics = http_get(rg.port, "/metrics").body;
  const std::string series = "recgate_coalesced_requests_total{kind=\"mws.list\"} ";
  const auto at = metrics.find(series);
  const int coalesced = at == std::string::npos ? 0 : std::stoi(metrics.substr(at + series.size()));
  INFO("coalesced " << coalesced << ", hits " << hits.load());
  CHECK(coalesced == 50 - 1 - hits.load());
}

TEST_CASE("cache: when upstream fails, the stored answer is served stale") {
  Sandbox sb;
  TempDir dir;
  // Refresh ahead off: the client path is under test, and a background
  // refresh (a tick a second) could refetch the touched category before the
  // last request, which then is a refreshed hit instead of the miss.
  Recgate rg(dir, test_config(dir, sb.port, "\"cache\":{\"refresh_ahead\":false}", "\"check_interval_s\":0"));
  auto first = http_get(rg.port, kInventory);
  REQUIRE(first.status == 200);
  // The snapshot check fails: answers built on the last known snapshot are stale.
  REQUIRE(http_request(sb.port, "POST", "/admin/faults",
                       R"({"status":500,"count":1,"action":"GetLastUpdatedTimeForRecommendations"})")
              .status == 200);
  auto stale = http_get(rg.port, kInventory);
  REQUIRE(stale.status == 200);
  CHECK(stale.header("cache-status") == "recgate; hit; fwd=stale");
  CHECK(cache_field(stale.body) == "stale");
  // The category changed upstream but the list call fails: stale again.
  REQUIRE(http_request(sb.port, "POST", "/admin/touch?seller=A1XEXAMPLEDF&marketplace=ATVPDKIKX0DER&category=Inventory")
              .status == 200);
  REQUIRE(http_request(sb.port, "POST", "/admin/faults", R"({"status":500,"count":1,"action":"ListRecommendations"})")
              .status == 200);
  auto stale2 = http_get(rg.port, kInventory);
  REQUIRE(stale2.status == 200);
  CHECK(stale2.header("cache-status") == "recgate; hit; fwd=stale");
  // Upstream healthy again: a miss with the new data.
  auto fresh = http_get(rg.port, kInventory);
  CHECK(fresh.header("cache-status") == "recgate; fwd=miss; stored");
}

TEST_CASE("cache: stale is not served beyond max_stale_s") {
  Sandbox sb;
  TempDir dir;
  Recgate rg(dir, test_config(dir, sb.port, "", "\"check_interval_s\":0,\"max_stale_s\":0"));
  REQUIRE(http_get(rg.port, kInventory).status == 200);
  // Snapshot check and list call both fail; the stored answer is older than 0 s.
  REQUIRE(http_request(sb.port, "POST", "/admin/faults", R"({"status":500,"count":2})").status == 200);
  auto r = http_get(rg.port, kInventory);
  CHECK(r.status == 502);
  CHECK(r.body.find("\"code\":\"upstream_error\"") != std::string::npos);
}

TEST_CASE("cache: survives kill -9 - after restart the answer is a hit with no upstream list call") {
  Sandbox sb;
  TempDir dir;
  const std::string cfg = test_config(dir, sb.port);
  {
    Recgate rg(dir, cfg);
    REQUIRE(http_get(rg.port, kInventory).status == 200);
    REQUIRE(wait_for_row(dir.file("db/recgate.db"), std::chrono::seconds(10)));
    rg.proc.signal(SIGKILL);
    CHECK(rg.proc.wait_exit() == 128 + SIGKILL);
  }
  const int lists = SandboxAdmin(sb.port).mws_requests("ListRecommendations");
  Recgate again(dir, cfg);
  auto r = http_get(again.port, kInventory);
  REQUIRE(r.status == 200);
  CHECK(r.header("cache-status") == "recgate; hit");
  CHECK(SandboxAdmin(sb.port).mws_requests("ListRecommendations") == lists);
}

TEST_CASE("cache: ETag and If-None-Match give 304 - only-if-cached answers from cache or 504") {
  Sandbox sb;
  TempDir dir;
  Recgate rg(dir, test_config(dir, sb.port));
  auto cold = http_get(rg.port, kInventory, {{"Cache-Control", "only-if-cached"}});
  CHECK(cold.status == 504);
  CHECK(cold.body.find("\"code\":\"not_cached\"") != std::string::npos);
  CHECK(SandboxAdmin(sb.port).mws_requests("ListRecommendations") == 0);

  auto first = http_get(rg.port, kInventory);
  REQUIRE(first.status == 200);
  const std::string etag = first.header("etag");
  REQUIRE(etag.size() > 2);
  CHECK(etag.front() == '"');
  CHECK(first.header("cache-control") == "private, no-cache");
  auto nm = http_get(rg.port, kInventory, {{"If-None-Match", etag}});
  CHECK(nm.status == 304);
  CHECK(nm.body.empty());
  // A 304 carries what a cache needs to refresh its copy, and no body headers.
  CHECK(nm.header("etag") == etag);
  CHECK(nm.header("cache-status") == "recgate; hit");
  CHECK_FALSE(nm.header("age").empty());
  CHECK(nm.header("cache-control") == "private, no-cache");
  CHECK(nm.header("content-type").empty());
  CHECK_FALSE(nm.header("x-request-id").empty());
  // A weak comparison and a list both match (RFC 9110 If-None-Match).
  CHECK(http_get(rg.port, kInventory, {{"If-None-Match", "\"x\", W/" + etag}}).status == 304);
  auto other = http_get(rg.port, kInventory, {{"If-None-Match", "\"something-else\""}});
  CHECK(other.status == 200);

  auto warm = http_get(rg.port, kInventory, {{"Cache-Control", "only-if-cached"}});
  CHECK(warm.status == 200);
  CHECK(warm.header("cache-status") == "recgate; hit");
}

TEST_CASE("cache: DELETE /v1/cache purges matching entries and answers the count") {
  Sandbox sb;
  TempDir dir;
  Recgate rg(dir, test_config(dir, sb.port));
  REQUIRE(http_get(rg.port, kInventory).status == 200);
  REQUIRE(http_get(rg.port, "/v1/mws/main/recommendations?marketplace=ATVPDKIKX0DER&category=Pricing").status == 200);
  auto bad = http_request(rg.port, "DELETE", "/v1/cache?category=Nope");
  CHECK(bad.status == 400);
  auto unknown = http_request(rg.port, "DELETE", "/v1/cache?account=main&colour=red");
  CHECK(unknown.status == 400);
  CHECK(unknown.header("content-type") == "application/problem+json");
  CHECK(unknown.body.find("\"code\":\"unknown_parameter\"") != std::string::npos);
  CHECK(unknown.body.find("unknown parameter \\\"colour\\\"; allowed: account, marketplace, category") !=
        std::string::npos);
  auto none = http_request(rg.port, "DELETE", "/v1/cache?account=nobody");
  CHECK(none.status == 200);
  CHECK(none.body == "{\"purged\":0}");
  auto one = http_request(rg.port, "DELETE", "/v1/cache?account=main&category=Pricing");
  CHECK(one.status == 200);
  CHECK(one.body == "{\"purged\":1}");
  CHECK(unknown.body.find("purged") == std::string::npos);
  CHECK(http_get(rg.port, kInventory).header("cache-status") == "recgate; hit");
  auto p = http_get(rg.port, "/v1/mws/main/recommendations?marketplace=ATVPDKIKX0DER&category=Pricing");
  CHECK(p.header("cache-status") == "recgate; fwd=miss; stored");
}
