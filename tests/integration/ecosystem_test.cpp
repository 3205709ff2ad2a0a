// [ecosystem]: the contract recgate serves about itself. GET /openapi.yaml is
// docs/openapi.yaml byte for byte and needs no client key; /v1/status says
// what each upstream is (amazon or a stand-in) and whether Amazon still
// serves it (MWS retired, Ads live).
#include <doctest/doctest.h>
#include <rapidjson/document.h>

#include "harness.hpp"

using namespace rgtest;

namespace {

rapidjson::Document parse(const std::string& body) {
  rapidjson::Document d;
  d.Parse(body.c_str());
  REQUIRE_MESSAGE(!d.HasParseError(), body);
  return d;
}

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
