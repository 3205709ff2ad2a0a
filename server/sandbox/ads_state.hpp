// The sandbox's Ads and LWA endpoints as functions over their own state:
// issued access tokens, the Ads rate bucket, pending faults and statistics,
// behind one mutex. POST /auth/o2/token and POST
// /sp/targets/products/recommendations check what Amazon checks (reference
// B.1, B.3) and answer like it. Time is a parameter; no sockets.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sandbox/ads_config.hpp"
#include "sandbox/ads_data.hpp"
#include "sandbox/bucket.hpp"
#include "sandbox/json_out.hpp"

namespace recgate::sandbox {

struct AdsInput {
  std::string content_type;
  std::string accept;
  std::string authorization;
  std::string client_id;  // Amazon-Advertising-API-ClientId
  std::string scope;      // Amazon-Advertising-API-Scope
  std::string body;
};

struct TokenInput {
  std::string content_type;
  std::string body;
};

struct AdsOutcome {
  int status = 200;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  std::chrono::milliseconds latency{0};
  std::string code;  // error code for the access log, empty on success
};

// A pending fault for the next `remaining` requests of `target` ("ads" or
// "token"): answer `status` (0: normally, after latency_ms).
struct AdsFault {
  std::string target = "ads";
  int status = 0;
  int remaining = 1;
  int retry_after_s = -1;  // on 429: -1 the configured value, 0 none
  int latency_ms = 0;
};

struct AdsAdminAnswer {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
};

class AdsState {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;

  AdsState(AdsSandboxConfig cfg, TimePoint now);
  AdsState(const AdsState&) = delete;
  AdsState& operator=(const AdsState&) = delete;

  const AdsSandboxConfig& config() const { return cfg_; }

  AdsOutcome token(const TokenInput& in, TimePoint now);
  AdsOutcome recommendations(const AdsInput& in, TimePoint now);

  // POST /admin/ads/faults: {"status":429,"count":2,"retry_after_s":0},
  // {"target":"token","status":500}, {"latency_ms":3000}, {"expire_tokens":true}.
  AdsAdminAnswer add_fault(std::string_view json_body, TimePoint now);
  void clear_faults();
  // GET/PUT /admin/ads/limit: the Ads rate limit, changeable at run time as
  // Amazon's is ({"burst","rate_per_s","retry_after_s","amazon_throttled"},
  // any subset). The bucket keeps the tokens it holds, capped at the new burst.
  AdsAdminAnswer set_limit(std::string_view json_body, TimePoint now);
  std::string limit_json() const;
  // Every issued token expires now (the next Ads call gets 401).
  void expire_tokens(TimePoint now);

  // The "ads" object of GET /admin/stats.
  std::string stats_json() const;
  void reset(TimePoint now);

 private:
  struct IssuedToken {
    std::string client_id;
    TimePoint expires_at;
  };

  AdsOutcome error(int status, std::string code, std::string details);
  // The live Ads API's shapes (reference B, issue 17): a bad or expired bearer
  // token is 401 {"code":"401","details":"Authentication failed","requestId"};
  // a throttle is 429 {"message":"Too Many Requests"} with
  // amazon-advertising-api-throttled: true (the default; see AdsConfig::amazon_throttled),
  // Retry-After only if configured.
  AdsOutcome authentication_failed();
  AdsOutcome throttled(int retry_after_s);
  std::string limit_json_locked() const;
  // The sections of stats_json, called with mu_ held.
  void write_request_counts(json_out::Writer& w) const;
  void write_last_request(json_out::Writer& w) const;
  std::optional<AdsFault> take_fault(std::string_view target);
  AdsOutcome fault_outcome(const AdsFault& f, bool token_endpoint);
  AdsOutcome token_locked(const TokenInput& in, TimePoint now);
  AdsOutcome recommendations_locked(const AdsInput& in, TimePoint now);
  std::string new_access_token();

  const AdsSandboxConfig cfg_;
  // The rate limit now (burst, rate_per_s, retry_after_s, amazon_throttled):
  // starts as cfg_'s, changed by set_limit; guarded by mu_.
  AdsSandboxConfig limit_;
  mutable std::mutex mu_;
  std::mt19937_64 rng_;
  ExactBucket bucket_;
  std::map<std::string, IssuedToken> tokens_;
  std::deque<AdsFault> faults_;
  std::uint64_t token_requests_ = 0;
  std::uint64_t tokens_issued_ = 0;
  std::map<std::string, std::uint64_t> token_errors_;
  std::uint64_t ads_requests_ = 0;
  std::map<int, std::uint64_t> ads_by_status_;
  std::map<std::string, std::uint64_t> ads_by_shape_;
  std::map<std::string, std::uint64_t> ads_errors_;
  std::uint64_t rate_limited_ = 0;
  std::uint64_t faults_applied_ = 0;
  AdsInput last_request_;  // the Authorization value is not kept
  bool has_last_request_ = false;
};

}  // namespace recgate::sandbox
