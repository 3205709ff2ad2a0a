// The sandbox's Ads product recommendations as pure functions: the request
// body as Amazon's schema checks it (docs/upstreams.md B.1), deterministic answers by
// ASIN and by theme with locale-translated theme names, and opaque cursors
// paging by `count`. No clock, no I/O, no state.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "sandbox/ads_config.hpp"

namespace recgate::sandbox {

// An Ads error answer: {"code": code, "details": details} with HTTP status
// (and "requestId" when one is given, as the live API adds to a 401).
struct AdsError {
  int status = 400;
  std::string code;
  std::string details;
};
std::string ads_error_body(const AdsError& e, std::string_view request_id = {});

struct AdsQuery {
  std::vector<std::string> ad_asins;
  std::optional<std::int64_t> count;  // absent: 100 (asins) / 5 (themes)
  std::string locale = "en_US";
  std::optional<std::string> cursor;
};

// Schema checks of GetProductRecommendationsRequest: 400 for malformed JSON,
// unknown members or wrong types (count "5" as a string), 422 for values out
// of range (ASIN length, count < 1, a locale outside the documented list).
std::variant<AdsQuery, AdsError> parse_ads_query(std::string_view body);

bool is_documented_locale(std::string_view locale);

struct ThemeText {
  std::string name;
  std::string description;
};
inline constexpr int kThemeCount = 5;
// The spec's themes (0..4: top converting targets, similar items,
// complements, similar items with low ratings, other books read by your
// readers) in `locale`; en_US for anything else.
ThemeText theme_text(int theme, std::string_view locale);

// Cursors: base64 of "c1.<fingerprint hex>.<offset>", bound to the request's
// ASINs, locale and shape, so a cursor from another request is rejected.
std::uint64_t query_fingerprint(const AdsQuery& q, bool themes);
std::string encode_cursor(std::uint64_t fingerprint, std::size_t offset);
std::optional<std::size_t> decode_cursor(std::string_view cursor, std::uint64_t fingerprint);

// One page of ProductRecommendationsByASIN (themes=false) or ByTheme:
// {"nextCursor":..,"previousCursor":..,"recommendations":[...]}.
std::variant<std::string, AdsError> render_recommendations(const AdsQuery& q, bool themes,
                                                           const AdsSandboxConfig& cfg);

}  // namespace recgate::sandbox
