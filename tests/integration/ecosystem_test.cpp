// [ecosystem]: the contract recgate serves about itself. GET /openapi.yaml is
// docs/openapi.yaml byte for byte and needs no client key; /v1/status says
// what each upstream is (amazon or a stand-in) and whether Amazon still
// serves it (MWS retired, Ads live). And the live Ads error contract: a
// revoked refresh token costs one LWA call, not one per request; the Ads
// API's 429 and 401 shapes map to recgate's problems and metrics.
#include <doctest/doctest.h>
#include <rapidjson/document.h>

#include "../support/sandbox_admin.hpp"
#include "harness.hpp"
#include "../support/json_body.hpp"

using namespace rgtest;

namespace {

std::string member(const rapidjson::Value& upstream, const char* name) {
  REQUIRE_MESSAGE(upstream.HasMember(name), name);
  REQUIRE(upstream[name].IsString());
  return upstream[name].GetString();
}

// A config whose MWS and Ads endpoints are empty: Amazon's own hosts. Nothing
// here calls upstream; only /v1/status is asked.
std::string amazon_config(const TempDir& dir) {
  return "{\"listen\":\"127.0.0.1:0\",\"database\":\"" + dir.file("db/recgate.db") +
         "\",\"threads\":1,"
         "\"mws\":{\"accounts\":{\"main\":{\"seller_id\":\"A1XEXAMPLEDF\",\"access_key_id\":\"AKIAEXAMPLE\","
         "\"secret_key\":\"not-a-real-secret\"}}},"
         "\"ads\":{\"accounts\":{\"main\":{\"region\":\"NA\",\"client_id\":\"amzn1.application-oa2-client.x\","
         "\"client_secret\":\"not-a-real-secret\",\"refresh_token\":\"Atzr|not-a-real-token\","
         "\"profile_id\":\"904444984714944\"}}}}";
}

HttpResponse ads_post(int port, const std::string& body, std::vector<std::pair<std::string, std::string>> headers = {}) {
  headers.emplace_back("Content-Type", "application/json");
  return http_request(port, "POST", "/v1/ads/main/product-recommendations", body, headers);
}

std::string metric_line(const std::string& metrics, const std::string& series) {
  const auto at = metrics.find(series + " ");
  return at == std::string::npos ? std::string() : metrics.substr(at, metrics.find('\n', at) - at);
}

}  // namespace

TEST_CASE("ecosystem: GET /openapi.yaml serves docs/openapi.yaml, without a client key") {
  Sandbox sb;
  TempDir dir;
  Recgate rg(dir, test_config(dir, sb.port, "\"clients\":[{\"name\":\"pricing\",\"key\":\"k-0123456789abcdef\"}]"));
  const std::string doc = read_file(std::string(RECGATE_SOURCE_DIR) + "/docs/openapi.yaml");
  REQUIRE(doc.rfind("openapi: 3.1", 0) == 0);

  auto r = http_get(rg.port, "/openapi.yaml");
  REQUIRE(r.status == 200);
  CHECK(r.header("content-type") == "application/yaml");
  CHECK(r.body == doc);
  CHECK(!r.header("x-request-id").empty());

  auto head = http_request(rg.port, "HEAD", "/openapi.yaml");
  CHECK(head.status == 200);
  CHECK(head.header("content-length") == std::to_string(doc.size()));
  // The /v1 routes still need the key: the document is the only new open door.
  CHECK(http_get(rg.port, "/v1/status").status == 401);
}

TEST_CASE("ecosystem: /v1/status names each upstream's kind and Amazon's state of it") {
  SUBCASE("endpoints set: stand-ins (here recgate-sandbox)") {
    Sandbox sb;
    TempDir dir;
    Recgate rg(dir, test_config(dir, sb.port));
    auto r = http_get(rg.port, "/v1/status");
    REQUIRE(r.status == 200);
    auto d = parse(r.body);
    REQUIRE(d.HasMember("upstreams"));
    const auto& mws = d["upstreams"]["mws"];
    const auto& ads = d["upstreams"]["ads"];
    const std::string base = "http://127.0.0.1:" + std::to_string(sb.port);
    CHECK(member(mws, "kind") == "custom");
    CHECK(member(mws, "endpoint") == base);
    CHECK(member(mws, "state") == "retired");
    CHECK(member(mws, "detail").find("2024-04-01") != std::string::npos);
    CHECK(member(ads, "kind") == "custom");
    CHECK(member(ads, "endpoint") == base);
    CHECK(member(ads, "state") == "live");
  }
  SUBCASE("endpoints empty: Amazon") {
    TempDir dir;
    Recgate rg(dir, amazon_config(dir));
    auto r = http_get(rg.port, "/v1/status");
    REQUIRE(r.status == 200);
    auto d = parse(r.body);
    const auto& mws = d["upstreams"]["mws"];
    const auto& ads = d["upstreams"]["ads"];
    CHECK(member(mws, "kind") == "amazon");
    CHECK(member(mws, "state") == "retired");
    CHECK(member(mws, "detail").find("cannot succeed") != std::string::npos);
    CHECK(member(ads, "kind") == "amazon");
    CHECK(member(ads, "state") == "live");
    // Secrets never reach the status page.
    CHECK(r.body.find("not-a-real") == std::string::npos);
  }
}

TEST_CASE("ecosystem: a revoked refresh token costs one LWA call, not one per request") {
  Sandbox sb;
  TempDir dir;
  std::string cfg = test_config(dir, sb.port);
  const std::string good = "Atzr|sandbox-refresh-token";
  cfg.replace(cfg.find(good), good.size(), "Atzr|revoked-0001");
  Recgate rg(dir, cfg);
  for (int i = 0; i < 10; ++i) {
    auto r = ads_post(rg.port, R"({"adAsins":["B09LJWZT6G"],"count":)" + std::to_string(i + 1) + "}");
    CHECK(r.status == 502);
    auto d = parse(r.body);
    CHECK(std::string(d["code"].GetString()) == "lwa_error");
    CHECK(std::string(d["upstreamCode"].GetString()) == "invalid_grant");
  }
  CHECK(SandboxAdmin(sb.port).ads_stat("token_requests") == 1);
  // Counted once, in the series RecgateLwaRefreshFailing watches.
  CHECK(metric_line(http_get(rg.port, "/metrics").body,
                    "recgate_token_refreshes_total{account=\"main\",result=\"rejected\"}") ==
        "recgate_token_refreshes_total{account=\"main\",result=\"rejected\"} 1");
}

TEST_CASE("ecosystem: the Ads API's live 429 and 401 shapes map to recgate's problems and metrics") {
  Sandbox sb;
  TempDir dir;
  Recgate rg(dir, test_config(dir, sb.port));
  auto fault = [&](const std::string& json) {
    REQUIRE(http_request(sb.port, "POST", "/admin/ads/faults", json, {{"Content-Type", "application/json"}}).status ==
            200);
  };
  // 429 {"message":"Too Many Requests"}, amazon-advertising-api-throttled, no Retry-After:
  // a throttle (counted), retried within the client's wait.
  fault(R"({"status":429,"count":1,"retry_after_s":0})");
  auto retried = ads_post(rg.port, R"({"adAsins":["B09LJWZT6G"],"count":2})");
  CHECK(retried.status == 200);
  CHECK(metric_line(http_get(rg.port, "/metrics").body,
                    "recgate_upstream_throttles_total{api=\"ads\",operation=\"ads.ProductRecommendations\"}") ==
        "recgate_upstream_throttles_total{api=\"ads\",operation=\"ads.ProductRecommendations\"} 1");
  // 401 {"code":"401","details":"Authentication failed","requestId"} twice: a new token is
  // fetched once, then the 401 is reported with the Ads code and status.
  fault(R"({"status":401,"count":2})");
  auto failed = ads_post(rg.port, R"({"adAsins":["B09LJWZT6G"],"count":3})");
  CHECK(failed.status == 502);
  auto d = parse(failed.body);
  CHECK(std::string(d["code"].GetString()) == "upstream_error");
  CHECK(std::string(d["upstreamCode"].GetString()) == "401");
  CHECK(std::string(d["upstreamStatus"].GetString()) == "401");
  CHECK(std::string(d["detail"].GetString()).find("Authentication failed") != std::string::npos);
  CHECK(metric_line(http_get(rg.port, "/metrics").body,
                    "recgate_upstream_requests_total{api=\"ads\",operation=\"ProductRecommendations\",status=\"401\"}") ==
        "recgate_upstream_requests_total{api=\"ads\",operation=\"ProductRecommendations\",status=\"401\"} 2");
}
