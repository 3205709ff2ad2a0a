// The sandbox's Ads/LWA settings: the "ads" object of config/sandbox.json
// (kept raw in SandboxConfig::ads_json) parsed with its own rules, plus the
// --ads-json command-line overlay. Unknown keys are rejected with their path
// (keys starting with '_' are comments). Pure.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace recgate::sandbox {

// One LWA application with the refresh token it was granted.
struct AdsClient {
  std::string client_id = "amzn1.application-oa2-client.sandbox";
  std::string client_secret = "sandbox-client-secret";
  std::string refresh_token = "Atzr|sandbox-refresh-token";
};

struct AdsSandboxConfig {
  std::vector<AdsClient> clients{AdsClient{}};
  std::vector<std::string> profile_ids{"904444984714944"};  // accepted Amazon-Advertising-API-Scope values
  int token_lifetime_s = 3600;                              // expires_in of issued access tokens
  double rate_per_s = 5;                                    // Ads requests restored per second
  int burst = 10;                                           // Ads bucket capacity
  int retry_after_s = 1;                                    // on 429; 0: no Retry-After header
  // On 429, Amazon's dynamic-limit form: body {"message":"Too Many Requests"}
  // and header amazon-advertising-api-throttled: true (with retry_after_s 0,
  // what Amazon mostly sends; the live API's shape, hence the default);
  // false: the error object the API reference documents.
  bool amazon_throttled = true;
  int pool_size = 30;                                       // candidate ASINs per request
  int asins_per_theme = 8;
};

// `json` is the "ads" object (or "{}"). Empty `error` on success.
std::optional<AdsSandboxConfig> parse_ads_config(std::string_view json, std::string& error);

// `base` with every member of `overlay` set over it (both JSON objects); the
// result as compact JSON. nullopt with `error` when either is not an object.
std::optional<std::string> merge_json_objects(std::string_view base, std::string_view overlay, std::string& error);

}  // namespace recgate::sandbox
