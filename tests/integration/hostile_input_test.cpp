// [hardening] hostile input against the real binaries: a body nested a
// million levels (the process must answer 400 and live), control bytes and
// invalid UTF-8 in query parameters (400 naming the parameter, nothing sent
// upstream), too many adAsins, and --check-config on configs that used to
// pass and fail later (user info, bad ports, host names in listen, reserves
// no bucket can grant, plain http) without printing a password.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "harness.hpp"

using namespace rgtest;

namespace {

const std::string kAdsPath = "/v1/ads/main/product-recommendations";
const std::string kValidAds = R"({"adAsins":["B09LJWZT6G"],"count":3})";
const std::string kSelection = "/v1/mws/main/recommendations?marketplace=ATVPDKIKX0DER&category=Selection";

HttpResponse ads_post(int port, const std::string& body) {
  return http_request(port, "POST", kAdsPath, body, {{"Content-Type", "application/json"}});
}

bool has(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

// Runs `recgate --check-config` on `json`; returns {exit code, output}.
std::pair<int, std::string> check_config(const std::string& json) {
  TempDir dir;
  write_file(dir.file("c.json"), json);
  Process p({RECGATE_BIN, "--check-config", "--config", dir.file("c.json")});
  const int code = p.wait_exit();
  return {code, p.output()};
}

}  // namespace

TEST_CASE("hostile input: a million nested brackets is a 400 naming the limit, the process lives and serves the next") {
  Sandbox sb;
  TempDir dir;
  Recgate rg(dir, test_config(dir, sb.port));
  const auto deep = ads_post(rg.port, std::string(1000000, '['));
  REQUIRE_MESSAGE(deep.status == 400, deep.error);
  CHECK(deep.header("content-type") == "application/problem+json");
  CHECK(has(deep.body, "\"code\":\"invalid_body\""));
  CHECK(has(deep.body, "the limit is 64"));
  CHECK(rg.proc.running());
  const auto next = ads_post(rg.port, kValidAds);
  CHECK_MESSAGE(next.status == 200, next.body);

  std::string many = R"({"adAsins":[)";
  for (int i = 0; i < 101; ++i) many += std::string(i ? "," : "") + "\"B09LJWZT6G\"";
  const auto too_many = ads_post(rg.port, many + "]}");
  CHECK(too_many.status == 400);
  CHECK(has(too_many.body, "at most 100 are allowed (ads.max_asins)"));
  const auto control = ads_post(rg.port, R"({"adAsins":["B09LJWZT6G"],"cursor":"a\u000ab"})");
  CHECK(control.status == 400);
  CHECK(has(control.body, "\"field\":\"cursor\""));
}

TEST_CASE("hostile input: control bytes and invalid UTF-8 in a parameter are a 400 naming it, never sent upstream") {
  Sandbox sb;
  TempDir dir;
  Recgate rg(dir, test_config(dir, sb.port));
  for (const char* filter : {"BrandName%3DA%1EBrandName%3DB", "BrandName%3DA%0AB", "BrandName%3DA%7F",
                             "BrandName%3D%FF", "BrandName%3DA%00"}) {
    CAPTURE(filter);
    const auto r = http_get(rg.port, kSelection + "&filter=" + filter);
    CHECK(r.status == 400);
    CHECK(has(r.body, "\"code\":\"invalid_parameter\""));
    CHECK(has(r.body, "\"parameter\":\"filter\""));
  }
  const auto lu = http_get(rg.port, "/v1/mws/main/last-updated?marketplace=ATVPDKIKX0DER%0D");
  CHECK(lu.status == 400);
  CHECK(has(lu.body, "\"parameter\":\"marketplace\""));
  const auto purge = http_request(rg.port, "DELETE", "/v1/cache?account=main%1F");
  CHECK(purge.status == 400);
  CHECK(has(purge.body, "\"parameter\":\"account\""));
  // Nothing of the above reached the sandbox.
  const std::string stats = http_get(sb.port, "/admin/stats").body;
  CHECK_FALSE(has(stats, "BrandName=A"));
  // The two-filter request is its own question, answered normally.
  const auto two = http_get(rg.port, kSelection + "&filter=BrandName%3DA&filter=BrandName%3DB");
  CHECK_MESSAGE(two.status == 200, two.body);
}

TEST_CASE("hostile input: --check-config names each unusable setting and never prints the password") {
  struct Case {
    const char* name;
    std::string json;
    int exit_code;
    const char* says;
  };
  const std::vector<Case> cases = {
      {"user info", R"({"ads":{"endpoint":"https://bob:hunter2@ads.example.com"}})", 1, "ads.endpoint:"},
      {"port 99999", R"({"mws":{"endpoint":"https://mws.example.com:99999"}})", 1, "mws.endpoint:"},
      {"host name in listen", R"({"listen":"localhost:0"})", 1, "listen: the host must be an IP address"},
      {"reserve_tokens >= capacity", R"({"throttle":{"reserve_tokens":10}})", 1, "throttle.reserve_tokens"},
      {"plain http token endpoint", R"({"ads":{"token_endpoint":"http://lwa.example.com/auth/o2/token"}})", 1,
       "ads.token_endpoint: plain http"},
      {"plain http to loopback: a warning", R"({"ads":{"token_endpoint":"http://127.0.0.1:9/auth/o2/token"}})", 0,
       "config warning: ads.token_endpoint: plain http"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.name);
    const auto [code, out] = check_config(c.json);
    CHECK(code == c.exit_code);
    CHECK_MESSAGE(has(out, c.says), out);
    CHECK_FALSE(has(out, "hunter2"));
  }
  const auto [code, out] = check_config(R"({"ads":{"max_asins":20}})");
  CHECK(code == 0);
  CHECK(has(out, "\"max_asins\": 20"));
}
