// Validation of the internal recommendations / last-updated query strings
// (docs/design.md §2.1) and the ListRecommendations parameters built from them
// (docs/upstreams.md A.1 "CategoryQuery and FilterOptions"). Pure core logic.
#include <algorithm>

#include "core/errors.hpp"
#include "core/json.hpp"
#include "core/mws/model.hpp"

namespace recgate::mws {
namespace {

using Raw = std::vector<std::pair<std::string, std::string>>;

// docs/upstreams.md A.1: which FilterOptions each CategoryQuery category accepts.
// An empty values list means "any non-empty value".
struct FilterRule {
  std::string_view category;
  std::string_view name;
  std::vector<std::string_view> values;
};

const std::vector<FilterRule>& filter_rules() {
  static const std::vector<FilterRule> rules = {
      {"ListingQuality", "QualitySet", {"Defect", "Quarantine"}},
      {"ListingQuality", "ListingStatus", {"Active", "Inactive"}},
      {"Selection", "BrandName", {}},
      {"Selection", "ProductCategory", {}},
      {"Selection", "IncludeCommonRecommendations", {"true", "false"}},
      {"Fulfillment", "BrandName", {}},
      {"Fulfillment", "ProductCategory", {}},
      {"GlobalSelling", "BrandName", {}},
      {"GlobalSelling", "ProductCategory", {}},
      {"Advertising", "BrandName", {}},
      {"Advertising", "ProductCategory", {}},
  };
  return rules;
}

std::string join(const std::vector<std::string>& items, std::string_view sep = ", ") {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) out += sep;
    out += item;
  }
  return out;
}

std::string all_categories_text() {
  std::vector<std::string> names(std::begin(kCategories), std::end(kCategories));
  return join(names);
}

std::string allowed_filters_text(std::string_view category) {
  std::vector<std::string> parts;
  for (const auto& rule : filter_rules()) {
    if (rule.category != category) continue;
    std::string part(rule.name);
    part += '=';
    if (rule.values.empty()) {
      part += "<any non-empty value>";
    } else {
      std::vector<std::string> values(rule.values.begin(), rule.values.end());
      part += join(values, "|");
    }
    parts.push_back(std::move(part));
  }
  return join(parts);
}

std::string filter_categories_text() {
  std::vector<std::string> out;
  for (const char* c : kCategories) {
    if (!allowed_filters_text(c).empty()) out.emplace_back(c);
  }
  return join(out);
}

std::optional<Problem> check_parameters(const Raw& raw, const std::vector<std::string_view>& allowed) {
  for (const auto& [name, value] : raw) {
    if (std::find(allowed.begin(), allowed.end(), name) != allowed.end()) continue;
    std::vector<std::string> names(allowed.begin(), allowed.end());
    return to_problem(Error::unknown_parameter,
                       "unknown query parameter '" + name + "'; allowed parameters: " + join(names));
  }
  return std::nullopt;
}

Expected<const Marketplace*> check_marketplace(const Raw& raw) {
  std::optional<std::string> id;
  for (const auto& [name, value] : raw) {
    if (name != "marketplace") continue;
    if (id && *id != value) {
      return to_problem(Error::duplicate_marketplace, "marketplace is given twice ('" + *id + "' and '" + value +
                                                      "'); give exactly one MarketplaceId, e.g. marketplace=ATVPDKIKX0DER");
    }
    id = value;
  }
  if (!id || id->empty()) {
    return to_problem(Error::missing_marketplace,
                       "the query parameter 'marketplace' is required: a MarketplaceId such as ATVPDKIKX0DER");
  }
  const Marketplace* m = find_marketplace(*id);
  if (m == nullptr) {
    std::vector<std::string> known;
    for (const auto& entry : all_marketplaces()) known.push_back(entry.id + " (" + entry.code + ")");
    return to_problem(Error::unknown_marketplace,
                       "unknown marketplace '" + *id + "'; known MarketplaceIds: " + join(known));
  }
  return m;
}

// The rule accepting a filter named `name` in `category`, if any.
const FilterRule* filter_rule(std::string_view category, std::string_view name) {
  for (const auto& rule : filter_rules())
    if (rule.category == category && rule.name == name) return &rule;
  return nullptr;
}

// A valid filter costs no string building: the texts naming what is allowed
// are made only for the problem.
std::optional<Problem> check_filter(std::string_view category, const std::string& filter) {
  const std::size_t eq = filter.find('=');
  const bool well_formed = eq != std::string::npos && eq != 0 && eq + 1 != filter.size();
  const FilterRule* rule = well_formed ? filter_rule(category, std::string_view(filter).substr(0, eq)) : nullptr;
  const std::string_view value = well_formed ? std::string_view(filter).substr(eq + 1) : std::string_view();
  if (rule && (rule->values.empty() || std::find(rule->values.begin(), rule->values.end(), value) != rule->values.end()))
    return std::nullopt;
  const std::string allowed = allowed_filters_text(category);
  if (allowed.empty()) {
    return to_problem(Error::invalid_filter, "category " + std::string(category) +
                                             " accepts no filters; filters are accepted only by " +
                                             filter_categories_text());
  }
  const std::string expected = "; " + std::string(category) + " accepts: " + allowed;
  if (!well_formed)
    return to_problem(Error::invalid_filter, "filter '" + filter + "' is not of the form Name=Value" + expected);
  if (rule)
    return to_problem(Error::invalid_filter,
                       "filter '" + filter + "' has a value " + std::string(category) + " does not accept" + expected);
  return to_problem(Error::invalid_filter, "filter name '" + filter.substr(0, eq) + "' is not accepted by " +
                                               std::string(category) + expected);
}

}  // namespace

// Before anything else looks at them: a control byte would reach upstream
// (and the logs) as it is, and invalid UTF-8 cannot be signed or compared
// reliably. Names are checked too, so no later message echoes such bytes.
std::optional<Problem> validate_query_text(const Raw& raw) {
  for (const auto& [name, value] : raw) {
    if (auto fault = json::text_fault(name); !fault.empty())
      return to_problem(Error::invalid_parameter, "a query parameter name " + fault +
                                                  "; control characters (U+0000-U+001F, U+007F) and invalid UTF-8 "
                                                  "are not allowed");
    if (auto fault = json::text_fault(value); !fault.empty()) {
      Problem p = to_problem(Error::invalid_parameter, "the value of query parameter '" + name + "' " + fault +
                                                       "; control characters (U+0000-U+001F, U+007F) and invalid "
                                                       "UTF-8 are not allowed");
      p.extensions.emplace_back("parameter", name);
      return p;
    }
  }
  return std::nullopt;
}

Expected<Query> validate_recommendations_query(const Raw& raw) {
  if (auto p = validate_query_text(raw)) return std::move(*p);
  if (auto p = check_parameters(raw, {"marketplace", "category", "filter"})) return std::move(*p);
  auto marketplace = check_marketplace(raw);
  if (!marketplace) return std::move(marketplace.error());
  const Marketplace& m = **marketplace;
  const std::vector<std::string>& offered = categories_for(m);

  std::vector<std::string> requested;
  std::vector<std::string> filters;
  for (const auto& [name, value] : raw) {
    if (name == "filter") {
      filters.push_back(value);
      continue;
    }
    if (name != "category") continue;
    if (!is_category(value)) {
      return to_problem(Error::invalid_category, "unknown category '" + value +
                                                 "'; allowed values (case-sensitive): " + all_categories_text());
    }
    if (std::find(offered.begin(), offered.end(), value) == offered.end()) {
      return to_problem(Error::category_not_offered, "marketplace " + m.id + " (" + m.code + ") does not offer " +
                                                     value + "; it offers: " + join(offered));
    }
    requested.push_back(value);
  }

  Query q;
  q.marketplace_id = m.id;
  if (requested.empty()) {
    q.categories = offered;
  } else {
    for (const char* c : kCategories) {
      if (std::find(requested.begin(), requested.end(), c) != requested.end()) q.categories.emplace_back(c);
    }
  }

  if (!filters.empty()) {
    if (q.categories.size() != 1) {
      return to_problem(Error::filter_needs_one_category,
                         "filter is allowed only with exactly one category, but the request covers " +
                             std::to_string(q.categories.size()) + " (" + join(q.categories) +
                             "); add one category=..., one of " + filter_categories_text());
    }
    for (const auto& f : filters) {
      if (auto p = check_filter(q.categories.front(), f)) return std::move(*p);
    }
    std::sort(filters.begin(), filters.end());
    filters.erase(std::unique(filters.begin(), filters.end()), filters.end());
    q.filters = std::move(filters);
  }
  return q;
}

Expected<std::string> validate_last_updated_query(const Raw& raw) {
  if (auto p = validate_query_text(raw)) return std::move(*p);
  if (auto p = check_parameters(raw, {"marketplace"})) return std::move(*p);
  auto marketplace = check_marketplace(raw);
  if (!marketplace) return std::move(marketplace.error());
  return (*marketplace)->id;
}

std::vector<std::pair<std::string, std::string>> list_params(const std::string& marketplace_id,
                                                             const std::string& category,
                                                             const std::vector<std::string>& filters) {
  std::vector<std::pair<std::string, std::string>> out = {{"MarketplaceId", marketplace_id},
                                                          {"RecommendationCategory", category}};
  if (filters.empty()) return out;
  out.emplace_back("CategoryQueryList.CategoryQuery.1.RecommendationCategory", category);
  for (std::size_t i = 0; i < filters.size(); ++i) {
    out.emplace_back("CategoryQueryList.CategoryQuery.1.FilterOptions.FilterOption." + std::to_string(i + 1),
                     filters[i]);
  }
  return out;
}

}  // namespace recgate::mws
