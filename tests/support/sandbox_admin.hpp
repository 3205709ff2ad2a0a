// Integration tests: the one client of recgate-sandbox's /admin API (stats
// counters, fault injection, Ads limits) and the sandbox's fixed identities,
// so each test file does not re-implement them.
#pragma once

#include <doctest/doctest.h>
#include <rapidjson/document.h>

#include <string>

#include "../integration/harness.hpp"
#include "json_body.hpp"

namespace rgtest {

// The seller and marketplace of the sandbox's fixtures (config/sandbox.json).
inline constexpr const char* kSandboxSeller = "A1XEXAMPLEDF";
inline constexpr const char* kSandboxMarketplace = "ATVPDKIKX0DER";

class SandboxAdmin {
 public:
  explicit SandboxAdmin(int port) : port_(port) {}

  // GET /admin/stats, parsed (fails the test when it is not JSON).
  rapidjson::Document stats() const { return parse(http_get(port_, "/admin/stats").body); }

  // MWS requests the sandbox served for `action` (requests.by_action).
  int mws_requests(const std::string& action) const {
    auto d = stats();
    const auto& by = d["requests"]["by_action"];
    return by.HasMember(action.c_str()) ? by[action.c_str()].GetInt() : 0;
  }
  // MWS requests the sandbox throttled (throttled.total).
  int mws_throttled() const { return stats()["throttled"]["total"].GetInt(); }
  // An integer member of the "ads" object, e.g. "rate_limited", "token_requests".
  int ads_stat(const char* name) const {
    auto d = stats();
    REQUIRE(d.HasMember("ads"));
    return d["ads"][name].GetInt();
  }

  // POST /admin/ads/faults: the next Ads answers fail as `json` says.
  void add_ads_fault(const std::string& json) const {
    auto r = http_request(port_, "POST", "/admin/ads/faults", json, {{"Content-Type", "application/json"}});
    REQUIRE_MESSAGE(r.status == 200, r.body);
  }
  // PUT /admin/ads/limit: the sandbox's Ads rate limit; the response as sent.
  HttpResponse set_ads_limit(const std::string& json) const {
    return http_request(port_, "PUT", "/admin/ads/limit", json, {{"Content-Type", "application/json"}});
  }

 private:
  int port_;
};

}  // namespace rgtest
