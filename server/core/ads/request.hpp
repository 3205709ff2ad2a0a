// Ads product recommendations, request side (docs/design.md §2.2; docs/upstreams.md B.1):
// validation of the client's JSON body, the cache key, the upstream body,
// media types, regional hosts and the upstream error body. Pure: no Boost,
// no I/O; called by the Ads service and unit-tested with tables.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/problem.hpp"

namespace recgate::ads {

enum class GroupBy { asin, theme };

inline constexpr std::string_view kPath = "/sp/targets/products/recommendations";
inline constexpr std::string_view kRequestMediaType = "application/vnd.spproductrecommendation.v3+json";
inline constexpr std::string_view kAsinsMediaType = "application/vnd.spproductrecommendationresponse.asins.v3+json";
inline constexpr std::string_view kThemesMediaType = "application/vnd.spproductrecommendationresponse.themes.v3+json";

// The documented locales, spelled as the spec spells them (jp_JP, not ja_JP).
inline constexpr const char* kLocales[] = {"en_US", "en_GB", "zh_CN", "es_ES", "jp_JP", "de_DE", "fr_FR", "it_IT"};

struct ProductRequest {
  std::vector<std::string> ad_asins;  // in the client's order, duplicates kept
  std::int64_t count = 0;             // defaulted by group_by when absent
  std::string locale = "en_US";       // always one of kLocales
  std::optional<std::string> cursor;  // present: a page request, never cached
  GroupBy group_by = GroupBy::asin;
};

// Defaults from the spec: asins 100, themes 5.
std::int64_t default_count(GroupBy g);
const char* group_by_name(GroupBy g);

// Validates {"adAsins":[...], "count":N, "locale":"..", "cursor":".."|null,
// "groupBy":"asin"|"theme"}. Problems are 400 with code invalid_body (not a
// JSON object, nested deeper than json::kMaxDepth, unknown member) or
// invalid_field (with a "field" extension: more than max_asins ASINs, a
// string with control characters or invalid UTF-8, a bad value), each naming
// what is wrong and what is allowed. "ja_JP" is accepted as an alias of the
// spec's "jp_JP" and normalized to it.
Expected<ProductRequest> validate_request(std::string_view body, std::size_t max_asins);

// True for an ASIN as the spec types it: 10 characters, here A-Z and 0-9.
bool is_asin(std::string_view s);

// Canonical JSON of the fields that select an answer, defaults applied:
// {"adAsins":[...],"count":N,"locale":"..","groupBy":".."} (order kept:
// upstream may weigh the input ASINs by position).
std::string canonical_key(const ProductRequest& r);

// The body upstream expects: {"adAsins":[...],"count":N,"locale":"..."}
// plus "cursor" when paging (count always an integer).
std::string upstream_body(const ProductRequest& r);

// The Accept value selecting the response shape.
std::string_view accept_for(GroupBy g);

// https://advertising-api[-eu|-fe].amazon.com for NA / EU / FE; "" if unknown.
std::string regional_host(std::string_view region);

// True when a Content-Type value's media type is application/json
// (parameters such as charset allowed, case-insensitive).
bool is_json_media_type(std::string_view content_type);

// The Ads error object {"code": "...", "details": "..."}; nullopt when the
// body is not one.
struct UpstreamError {
  std::string code;
  std::string details;
};
std::optional<UpstreamError> parse_upstream_error(std::string_view body);

// True when `body` is one well-formed JSON value nested no deeper than
// json::kMaxDepth (an upstream 200 we pass on).
bool is_json_document(std::string_view body);

// Retry-After as delta-seconds (RFC 9110 §10.2.3); nullopt when absent or
// not a non-negative number (HTTP dates are not used by the Ads API).
std::optional<double> parse_retry_after(std::string_view value);

}  // namespace recgate::ads
