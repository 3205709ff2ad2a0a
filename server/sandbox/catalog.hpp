// What the sandbox, playing Amazon, knows about the MWS Recommendations
// section: marketplaces (docs/upstreams.md A.5), categories and the filters each
// CategoryQuery accepts (docs/upstreams.md A.1). Independent of recgate's own model.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace recgate::sandbox {

inline constexpr std::string_view kMwsNamespace = "https://mws.amazonservices.com/Recommendations/2013-04-01";
inline constexpr std::string_view kErrorNamespace = "http://mws.amazonservices.com/doc/2009-01-01/";
inline constexpr std::string_view kMwsVersion = "2013-04-01";
inline constexpr std::string_view kBrazil = "A2Q3Y263D00KWC";

struct MarketplaceInfo {
  std::string_view id;
  std::string_view code;
  std::string_view currency;
  bool metric;  // centimeters/kilograms rather than inches/pounds
};

const MarketplaceInfo* find_marketplace(std::string_view id);
const std::vector<MarketplaceInfo>& marketplaces();

// The seven categories in the order of ListRecommendationsResult.
const std::vector<std::string>& all_categories();
bool is_category(std::string_view c);
int category_index(std::string_view c);  // -1 if unknown
// Brazil offers no Fulfillment and no Advertising.
bool category_offered(std::string_view marketplace_id, std::string_view category);
std::vector<std::string> offered_categories(std::string_view marketplace_id);
// Categories that have a GetLastUpdatedTime element (all but ListingQuality).
bool has_last_updated(std::string_view category);

// CategoryQuery: which categories may carry one, and which FilterOption names
// and values each accepts. Empty string when valid, else the reason.
bool category_query_allowed(std::string_view category);
std::string check_filter(std::string_view category, std::string_view name, std::string_view value);

}  // namespace recgate::sandbox
