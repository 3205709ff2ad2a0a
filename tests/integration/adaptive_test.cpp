// [quota] against the sandbox: its Ads rate limit changed at run time through
// the admin endpoint, as Amazon's changes with load, in the form Amazon uses
// (429 without Retry-After, amazon-advertising-api-throttled: true).
#include <doctest/doctest.h>
#include <rapidjson/document.h>

#include <string>

#include "harness.hpp"

using namespace rgtest;

namespace {

rapidjson::Document parse(const std::string& body) {
  rapidjson::Document d;
  d.Parse(body.c_str());
  REQUIRE_MESSAGE(!d.HasParseError(), body);
  return d;
}

int sandbox_rate_limited(int sandbox_port) {
  return parse(http_get(sandbox_port, "/admin/stats").body)["ads"]["rate_limited"].GetInt();
}

}  // namespace

TEST_CASE("sandbox: PUT /admin/ads/limit changes the Ads limit at run time; recgate sees Amazon's 429 form") {
  Sandbox sb;
  auto before = parse(http_get(sb.port, "/admin/ads/limit").body);
  CHECK(before["burst"].GetInt() >= 1);
  auto put = http_request(sb.port, "PUT", "/admin/ads/limit",
                          R"({"burst":1,"rate_per_s":0.01,"retry_after_s":0,"amazon_throttled":true})",
                          {{"Content-Type", "application/json"}});
  REQUIRE(put.status == 200);
  CHECK(parse(put.body)["burst"].GetInt() == 1);
  auto bad = http_request(sb.port, "PUT", "/admin/ads/limit", R"({"rate_per_s":0})",
                          {{"Content-Type", "application/json"}});
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
  CHECK(sandbox_rate_limited(sb.port) >= 1);
}
