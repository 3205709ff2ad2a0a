// [scale] items 2 and 3 end to end: three recgate processes sharing one
// redis-server in front of one sandbox. Identical cold requests spread over
// the replicas make one upstream list call; a moved timestamp is re-checked
// once for the group and refetched once, and every replica then answers it.
#include <doctest/doctest.h>
#include <rapidjson/document.h>

#include <array>
#include <memory>
#include <thread>
#include <vector>

#include "../support/sandbox_admin.hpp"
#include "../support/redis_server.hpp"
#include "harness.hpp"

using namespace rgtest;

namespace {

const std::string kInventory = "/v1/mws/main/recommendations?marketplace=ATVPDKIKX0DER&category=Inventory";

std::string last_updated_of(const HttpResponse& r) {
  rapidjson::Document d;
  d.Parse(r.body.c_str());
  if (d.HasParseError() || !d.IsObject() || !d.HasMember("categories")) return "";
  const auto& c = d["categories"][0];
  return c["lastUpdated"].IsString() ? c["lastUpdated"].GetString() : "";
}

// `n` concurrent GETs of kInventory, the i-th to replica i % 3.
std::vector<HttpResponse> spread(const std::array<int, 3>& ports, int n) {
  std::vector<HttpResponse> out(static_cast<std::size_t>(n));
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i)
    threads.emplace_back([&, i] { out[static_cast<std::size_t>(i)] = http_get(ports[static_cast<std::size_t>(i % 3)], kInventory); });
  for (auto& t : threads) t.join();
  return out;
}

}  // namespace

TEST_CASE("scale: 30 cold requests over three replicas make one ListRecommendations, a moved timestamp one refetch") {
  Sandbox sb;
  recgate::test::RedisServer redis;
  SandboxAdmin admin(sb.port);
  // check_interval_s 3: long enough that the polling below ends within one interval.
  // Refresh ahead off: this is the client path's cross-replica coalescing. A
  // background re-check (refresh ahead) is not coalesced with a client's
  // re-check on the same replica, so with it on this test sees 2 checks.
  const std::string shared = "\"redis\":{\"url\":\"" + redis.url() + "\",\"key_prefix\":\"scale3:\"}";
  std::array<std::unique_ptr<TempDir>, 3> dirs;
  std::array<std::unique_ptr<Recgate>, 3> rg;
  std::array<int, 3> ports{};
  for (std::size_t i = 0; i < 3; ++i) {
    dirs[i] = std::make_unique<TempDir>();
    rg[i] = std::make_unique<Recgate>(*dirs[i], test_config(*dirs[i], sb.port, shared + "," + kNoRefreshAhead, "\"check_interval_s\":3"));
    ports[i] = rg[i]->port;
  }

  const auto cold = spread(ports, 30);
  std::string before;
  for (const auto& r : cold) {
    REQUIRE_MESSAGE(r.status == 200, r.body);
    before = last_updated_of(r);
    CHECK(before == last_updated_of(cold[0]));
  }
  CHECK(admin.mws_requests("ListRecommendations") == 1);
  CHECK(admin.mws_requests("GetLastUpdatedTimeForRecommendations") == 1);

  const int lists = admin.mws_requests("ListRecommendations");
  const int checks = admin.mws_requests("GetLastUpdatedTimeForRecommendations");
  REQUIRE(http_request(sb.port, "POST", "/admin/touch?seller=A1XEXAMPLEDF&marketplace=ATVPDKIKX0DER&category=Inventory")
              .status == 200);
  // Rounds of requests to all three until each answers the new timestamp
  // (bounded: the snapshots come due within check_interval_s).
  std::array<bool, 3> updated{};
  const bool all = wait_until(
      [&] {
        const auto round = spread(ports, 3);
        for (std::size_t i = 0; i < 3; ++i)
          if (round[i].status == 200 && last_updated_of(round[i]) != before) updated[i] = true;
        return updated[0] && updated[1] && updated[2];
      },
      std::chrono::seconds(30));
  CHECK(all);
  CHECK(admin.mws_requests("ListRecommendations") - lists == 1);
  CHECK(admin.mws_requests("GetLastUpdatedTimeForRecommendations") - checks <= 1);
}
