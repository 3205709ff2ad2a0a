// MWS Recommendations domain model: categories, marketplaces, validated
// queries, and the XML -> JSON conversion of upstream answers (docs/design.md §2.1,
// docs/upstreams.md A.2, A.5). Pure: pugixml and RapidJSON only, no I/O.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/problem.hpp"

namespace recgate::mws {

// In upstream's result order.
inline constexpr const char* kCategories[] = {"Inventory",      "Selection",     "Pricing",    "Fulfillment",
                                              "ListingQuality", "GlobalSelling", "Advertising"};

struct Marketplace {
  std::string id;      // ATVPDKIKX0DER
  std::string code;    // US
  std::string region;  // NA, EU, FE
  std::string host;    // mws.amazonservices.com
};
const Marketplace* find_marketplace(std::string_view id);
const std::vector<Marketplace>& all_marketplaces();
// True for the 7 names of kCategories (case-sensitive).
bool is_category(std::string_view name);
// Categories the marketplace offers (Brazil: no Fulfillment, no Advertising).
const std::vector<std::string>& categories_for(const Marketplace& m);

// A validated request: categories in upstream order, filters normalized
// (sorted, deduplicated) and only present with exactly one category.
struct Query {
  std::string marketplace_id;
  std::vector<std::string> categories;
  std::vector<std::string> filters;  // "Name=Value"
};
// raw: decoded query-string pairs in order. All problems are 400 with codes:
// invalid_parameter (a name or value holding C0 controls, DEL or invalid
// UTF-8; "parameter" extension names it), missing_marketplace, unknown_marketplace, duplicate_marketplace (two
// different values), invalid_category, category_not_offered, invalid_filter,
// filter_needs_one_category, unknown_parameter.
// Every query parameter of every route goes through this first: 400
// invalid_parameter when a name or value holds C0 controls, DEL or invalid
// UTF-8 (the "parameter" extension names it). nullopt when all are clean.
std::optional<Problem> validate_query_text(const std::vector<std::pair<std::string, std::string>>& raw);

Expected<Query> validate_recommendations_query(
    const std::vector<std::pair<std::string, std::string>>& raw);
Expected<std::string> validate_last_updated_query(
    const std::vector<std::pair<std::string, std::string>>& raw);  // -> marketplace id

// ListRecommendations parameters for one category (RecommendationCategory and,
// when filters are given, CategoryQueryList.CategoryQuery.1.*).
std::vector<std::pair<std::string, std::string>> list_params(const std::string& marketplace_id,
                                                             const std::string& category,
                                                             const std::vector<std::string>& filters);

// ---- upstream answers --------------------------------------------------
struct UpstreamError {
  int http_status = 0;
  std::string type;  // Sender / Receiver
  std::string code;  // SignatureDoesNotMatch, RequestThrottled...
  std::string message;
  std::string request_id;
};

// Parses an ErrorResponse (any namespace, RequestId or RequestID under the root,
// in Error or in ResponseMetadata). nullopt if not one. http_status is left 0:
// the caller fills it from the HTTP response.
std::optional<UpstreamError> parse_error_response(std::string_view xml);

struct LastUpdated {
  // category -> ISO timestamp; absent/empty = null. ListingQuality always null.
  std::vector<std::pair<std::string, std::optional<std::string>>> per_category;
};
// Parses GetLastUpdatedTimeForRecommendationsResponse; all 7 categories in
// kCategories order. Problem (502, upstream_malformed) on malformed XML, a
// wrong root or a missing ...Result element.
Expected<LastUpdated> parse_last_updated(std::string_view xml);

struct ListPage {
  // JSON array text of the category's recommendations (converted <member>s).
  std::vector<std::string> members_json;  // one JSON object text per member
  std::optional<std::string> next_token;
};
// Parses ListRecommendations[ByNextToken]Response and extracts the members of
// `category` (element <{category}Recommendations>; absent = no members).
// Problem (502, upstream_malformed) on malformed XML, a wrong root or a
// missing ...Result element. Empty NextToken = none.
Expected<ListPage> parse_list_page(std::string_view xml, const std::string& category);

}  // namespace recgate::mws
