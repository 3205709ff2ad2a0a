// Static tables of the MWS Recommendations section as the sandbox serves it:
// marketplace ids with their currency and units, categories, filter rules.
#include "sandbox/catalog.hpp"

#include <algorithm>

namespace recgate::sandbox {

const std::vector<MarketplaceInfo>& marketplaces() {
  static const std::vector<MarketplaceInfo> list = {
      {"A2Q3Y263D00KWC", "BR", "BRL", true},  {"A2EUQ1WTGCTBG2", "CA", "CAD", true},
      {"A1AM78C64UM0Y8", "MX", "MXN", true},  {"ATVPDKIKX0DER", "US", "USD", false},
      {"A2VIGQ35RCS4UG", "AE", "AED", true},  {"A1PA6795UKMFR9", "DE", "EUR", true},
      {"ARBP9OOSHTCHU", "EG", "EGP", true},   {"A1RKKUPIHCS9HS", "ES", "EUR", true},
      {"A13V1IB3VIYZZH", "FR", "EUR", true},  {"AMEN7PMS3EDWL", "BE", "EUR", true},
      {"A1F83G8C2ARO7P", "GB", "GBP", true},  {"A21TJRUUN4KGV", "IN", "INR", true},
      {"APJ6JRA9NG5V4", "IT", "EUR", true},   {"A1805IZSGTT6HS", "NL", "EUR", true},
      {"A1C3SOZRARQ6R3", "PL", "PLN", true},  {"A17E79C6D8DWNP", "SA", "SAR", true},
      {"A2NODRKZP88ZB9", "SE", "SEK", true},  {"A33AVAJ2PDY3EV", "TR", "TRY", true},
      {"A19VAU5U5O7RUS", "SG", "SGD", true},  {"A39IBJ37TRP1C6", "AU", "AUD", true},
      {"A1VC38T7YXB528", "JP", "JPY", true},
  };
  return list;
}

const MarketplaceInfo* find_marketplace(std::string_view id) {
  for (const auto& m : marketplaces())
    if (m.id == id) return &m;
  return nullptr;
}

const std::vector<std::string>& all_categories() {
  static const std::vector<std::string> list = {"Inventory",      "Selection",     "Pricing",    "Fulfillment",
                                                "ListingQuality", "GlobalSelling", "Advertising"};
  return list;
}

int category_index(std::string_view c) {
  const auto& all = all_categories();
  auto it = std::find(all.begin(), all.end(), c);
  return it == all.end() ? -1 : static_cast<int>(it - all.begin());
}

bool is_category(std::string_view c) { return category_index(c) >= 0; }

bool category_offered(std::string_view marketplace_id, std::string_view category) {
  if (!is_category(category)) return false;
  if (marketplace_id == kBrazil) return category != "Fulfillment" && category != "Advertising";
  return true;
}

std::vector<std::string> offered_categories(std::string_view marketplace_id) {
  std::vector<std::string> out;
  for (const auto& c : all_categories())
    if (category_offered(marketplace_id, c)) out.push_back(c);
  return out;
}

bool has_last_updated(std::string_view category) { return is_category(category) && category != "ListingQuality"; }

bool category_query_allowed(std::string_view category) {
  return category == "Selection" || category == "Fulfillment" || category == "ListingQuality" ||
         category == "GlobalSelling" || category == "Advertising";
}

std::string check_filter(std::string_view category, std::string_view name, std::string_view value) {
  if (category == "ListingQuality") {
    if (name == "QualitySet") {
      if (value == "Defect" || value == "Quarantine") return {};
      return "QualitySet must be Defect or Quarantine";
    }
    if (name == "ListingStatus") {
      if (value == "Active" || value == "Inactive") return {};
      return "ListingStatus must be Active or Inactive";
    }
    return "ListingQuality accepts the filters QualitySet and ListingStatus";
  }
  if (name == "BrandName" || name == "ProductCategory") {
    if (value.empty()) return std::string(name) + " needs a value";
    return {};
  }
  if (name == "IncludeCommonRecommendations" && category == "Selection") {
    if (value == "true" || value == "false") return {};
    return "IncludeCommonRecommendations must be true or false";
  }
  if (category == "Selection")
    return "Selection accepts the filters BrandName, ProductCategory and IncludeCommonRecommendations";
  return std::string(category) + " accepts the filters BrandName and ProductCategory";
}

}  // namespace recgate::sandbox
