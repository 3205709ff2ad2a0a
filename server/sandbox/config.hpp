// The sandbox's own configuration (config/sandbox.json): listen address,
// seller credentials, Amazon's throttle figures, paging and data knobs.
// Parsed and validated once; unknown keys are rejected with their path
// (keys starting with '_' are comments).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace recgate::sandbox {

struct SellerCredentials {
  std::string seller_id = "A1XEXAMPLEDF";
  std::string access_key_id = "AKIASANDBOXEXAMPLE";
  std::string secret_key = "sandbox-secret-key-not-for-production";
  std::string auth_token = "amzn.mws.sandbox-token";  // empty: MWSAuthToken must not be sent
};

struct ThrottleRule {
  std::int64_t capacity = 8;
  std::chrono::milliseconds restore_every{2000};
};

// Operation groups: ListRecommendations (shared with ...ByNextToken),
// GetLastUpdatedTimeForRecommendations, GetServiceStatus.
struct ThrottleConfig {
  ThrottleRule list_recommendations{};
  ThrottleRule get_last_updated{};
  ThrottleRule get_service_status{2, std::chrono::milliseconds(300000)};
};

struct SandboxConfig {
  std::string listen = "127.0.0.1:8081";
  int threads = 2;
  std::string log_level = "info";
  std::string admin_token;  // empty: admin endpoints open (keep listen on loopback)
  std::vector<SellerCredentials> sellers{SellerCredentials{}};
  ThrottleConfig throttle{};
  int page_size = 3;
  int items_per_category = 8;
  std::chrono::seconds timestamp_tolerance{900};
  // Categories whose last-updated time starts null (no active
  // recommendations) until touched.
  std::vector<std::string> initially_empty_categories{"GlobalSelling"};
  int recent_requests = 50;  // parameter sets kept for GET /admin/stats
  // The "ads" object verbatim (JSON text, "{}" when absent), for the Ads/LWA
  // part of the sandbox to parse with its own rules.
  std::string ads_json = "{}";
};

// Empty `error` on success.
std::optional<SandboxConfig> parse_sandbox_config(std::string_view json, std::string& error);
std::optional<SandboxConfig> load_sandbox_config(const std::string& path, std::string& error);

const SellerCredentials* find_seller_by_key(const SandboxConfig& cfg, std::string_view access_key_id);
const SellerCredentials* find_seller(const SandboxConfig& cfg, std::string_view seller_id);

}  // namespace recgate::sandbox
