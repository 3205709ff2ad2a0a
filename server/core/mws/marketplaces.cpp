// The MWS marketplace table (docs/upstreams.md A.5): MarketplaceId -> country code,
// region and endpoint host, and which Recommendations categories each offers.
// Pure core data; used by query validation and the MWS service.
#include "core/mws/model.hpp"

namespace recgate::mws {

const std::vector<Marketplace>& all_marketplaces() {
  static const std::vector<Marketplace> table = {
      {"A2Q3Y263D00KWC", "BR", "NA", "mws.amazonservices.com"},
      {"A2EUQ1WTGCTBG2", "CA", "NA", "mws.amazonservices.ca"},
      {"A1AM78C64UM0Y8", "MX", "NA", "mws.amazonservices.com.mx"},
      {"ATVPDKIKX0DER", "US", "NA", "mws.amazonservices.com"},
      {"A2VIGQ35RCS4UG", "AE", "EU", "mws.amazonservices.ae"},
      {"A1PA6795UKMFR9", "DE", "EU", "mws-eu.amazonservices.com"},
      {"ARBP9OOSHTCHU", "EG", "EU", "mws-eu.amazonservices.com"},
      {"A1RKKUPIHCS9HS", "ES", "EU", "mws-eu.amazonservices.com"},
      {"A13V1IB3VIYZZH", "FR", "EU", "mws-eu.amazonservices.com"},
      {"AMEN7PMS3EDWL", "BE", "EU", "mws-eu.amazonservices.com"},
      {"A1F83G8C2ARO7P", "GB", "EU", "mws-eu.amazonservices.com"},
      {"A21TJRUUN4KGV", "IN", "EU", "mws.amazonservices.in"},
      {"APJ6JRA9NG5V4", "IT", "EU", "mws-eu.amazonservices.com"},
      {"A1805IZSGTT6HS", "NL", "EU", "mws-eu.amazonservices.com"},
      {"A1C3SOZRARQ6R3", "PL", "EU", "mws-eu.amazonservices.com"},
      {"A17E79C6D8DWNP", "SA", "EU", "mws-eu.amazonservices.com"},
      {"A2NODRKZP88ZB9", "SE", "EU", "mws-eu.amazonservices.com"},
      {"A33AVAJ2PDY3EV", "TR", "EU", "mws-eu.amazonservices.com"},
      {"A19VAU5U5O7RUS", "SG", "FE", "mws-fe.amazonservices.com"},
      {"A39IBJ37TRP1C6", "AU", "FE", "mws.amazonservices.com.au"},
      {"A1VC38T7YXB528", "JP", "FE", "mws.amazonservices.jp"},
  };
  return table;
}

const Marketplace* find_marketplace(std::string_view id) {
  for (const auto& m : all_marketplaces()) {
    if (m.id == id) return &m;
  }
  return nullptr;
}

bool is_category(std::string_view name) {
  for (const char* c : kCategories) {
    if (name == c) return true;
  }
  return false;
}

// docs/upstreams.md A.0: Fulfillment and Advertising exist "in all marketplaces except Brazil".
namespace {

std::vector<std::string> offered_categories(bool brazil) {
  std::vector<std::string> out;
  for (const char* c : kCategories) {
    const std::string_view name = c;
    if (brazil && (name == "Fulfillment" || name == "Advertising")) continue;
    out.emplace_back(name);
  }
  return out;
}

}  // namespace

// Built once: the hit path asks on every request.
const std::vector<std::string>& categories_for(const Marketplace& m) {
  static const std::vector<std::string> brazil = offered_categories(true);
  static const std::vector<std::string> others = offered_categories(false);
  return m.code == "BR" ? brazil : others;
}

}  // namespace recgate::mws
