// MWS request verification and operation parsing (docs/upstreams.md A.1, A.3, A.4).
// Error codes, statuses and wording follow Amazon's; the sandbox is stricter
// than documented where the documentation is silent (unknown parameters,
// duplicates), so that what passes here passes upstream.
#include "sandbox/request.hpp"

#include <algorithm>
#include <optional>
#include <set>

#include "sandbox/catalog.hpp"

namespace recgate::sandbox {

namespace {

MwsError error(int status, std::string code, std::string message) {
  return MwsError{status, "Sender", std::move(code), std::move(message)};
}

MwsError missing(std::string_view name) {
  return error(400, "MissingParameter", "The request must contain the parameter " + std::string(name) + ".");
}

MwsError invalid(std::string_view name, std::string_view value, std::string_view why = {}) {
  std::string msg = "Value " + std::string(value) + " for parameter " + std::string(name) + " is invalid.";
  if (!why.empty()) msg += " " + std::string(why);
  return error(400, "InvalidParameterValue", msg);
}

const std::string* find(const Params& params, std::string_view name) {
  for (const auto& [k, v] : params)
    if (k == name) return &v;
  return nullptr;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

bool is_form(std::string_view content_type) {
  auto semi = content_type.find(';');
  std::string media = lower(content_type.substr(0, semi));
  media.erase(std::remove(media.begin(), media.end(), ' '), media.end());
  return media == "application/x-www-form-urlencoded";
}

// Positive decimal without leading zeros; 0 when not one.
unsigned parse_index(std::string_view s) {
  if (s.empty() || s.size() > 6 || s[0] == '0') return 0;
  unsigned v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return 0;
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  return v;
}

bool consume(std::string_view& s, std::string_view prefix) {
  if (s.substr(0, prefix.size()) != prefix) return false;
  s.remove_prefix(prefix.size());
  return true;
}

const std::set<std::string_view>& common_params() {
  static const std::set<std::string_view> names = {"AWSAccessKeyId", "Action",           "SellerId",
                                                   "Merchant",       "MWSAuthToken",     "Signature",
                                                   "SignatureMethod", "SignatureVersion", "Timestamp",
                                                   "Version"};
  return names;
}

struct CategoryQuery {
  std::string category;
  std::map<unsigned, std::string> options;  // FilterOption.M -> "Name=Value"
};

}  // namespace

MwsResult<Params> collect_params(const HttpInput& in) {
  Params params;
  auto q = in.target.find('?');
  if (q != std::string::npos && !parse_form(std::string_view(in.target).substr(q + 1), params))
    return error(400, "InvalidParameterValue", "The query string contains a malformed percent-encoding.");
  if (!in.body.empty() && is_form(in.content_type) && !parse_form(in.body, params))
    return error(400, "InvalidParameterValue", "The request body contains a malformed percent-encoding.");
  std::set<std::string_view> seen;
  for (const auto& [k, v] : params) {
    if (k.empty()) return error(400, "InvalidParameterValue", "A parameter has an empty name.");
    if (!seen.insert(k).second)
      return error(400, "InvalidParameterValue", "The parameter " + k + " is specified more than once.");
  }
  return params;
}

MwsResult<Authenticated> authenticate(const SandboxConfig& cfg, const HttpInput& in, const Params& params,
                                      std::chrono::system_clock::time_point now,
                                      std::string* expected_string_to_sign) {
  for (std::string_view name : {"AWSAccessKeyId", "Action"})
    if (!find(params, name)) return missing(name);
  if (!find(params, "SellerId") && !find(params, "Merchant")) return missing("SellerId");
  const std::string* method = find(params, "SignatureMethod");
  if (!method) return missing("SignatureMethod");
  if (*method != "HmacSHA256" && *method != "HmacSHA1")
    return invalid("SignatureMethod", *method, "Use HmacSHA256 or HmacSHA1.");
  const std::string* sigver = find(params, "SignatureVersion");
  if (!sigver) return missing("SignatureVersion");
  if (*sigver != "2") return invalid("SignatureVersion", *sigver, "The only supported version is 2.");
  const std::string* timestamp = find(params, "Timestamp");
  if (!timestamp) return missing("Timestamp");
  const std::string* version = find(params, "Version");
  if (!version) return missing("Version");
  if (*version != kMwsVersion) return invalid("Version", *version, "This section's version is 2013-04-01.");
  const std::string* signature = find(params, "Signature");
  if (!signature) return missing("Signature");

  const SellerCredentials* seller = find_seller_by_key(cfg, *find(params, "AWSAccessKeyId"));
  if (!seller)
    return error(403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.");

  const std::string_view target(in.target);
  const std::string_view path = target.substr(0, target.find('?'));
  const std::string sts = string_to_sign(in.method, in.host, path, params);
  if (!constant_time_equal(sign(*method, seller->secret_key, sts), *signature)) {
    if (expected_string_to_sign) *expected_string_to_sign = sts;
    return error(403, "SignatureDoesNotMatch",
                 "The request signature we calculated does not match the signature you provided. Check your AWS "
                 "Secret Access Key and signing method. Consult the service documentation for details.");
  }

  std::chrono::system_clock::time_point ts;
  if (!parse_timestamp(*timestamp, ts))
    return invalid("Timestamp", *timestamp, "Timestamp must be in ISO8601 format.");
  if (ts > now + cfg.timestamp_tolerance || ts < now - cfg.timestamp_tolerance)
    return error(400, "InvalidParameterValue",
                 "Timestamp " + *timestamp + " must be within " +
                     std::to_string(cfg.timestamp_tolerance.count() / 60) + " minutes of the server time (" +
                     format_iso_ms(now) + ").");

  const std::string* seller_id = find(params, "SellerId");
  if (!seller_id) seller_id = find(params, "Merchant");
  if (*seller_id != seller->seller_id)
    return error(401, "AccessDenied",
                 "Access denied: the SellerId " + *seller_id + " is not the seller of this AWSAccessKeyId.");
  const std::string* token = find(params, "MWSAuthToken");
  if (seller->auth_token.empty() ? token != nullptr : !token || !constant_time_equal(*token, seller->auth_token))
    return error(401, "AccessDenied", "Access denied: the MWSAuthToken is missing or not valid for this seller.");

  const std::string& action = *find(params, "Action");
  if (!is_known_action(action))
    return error(400, "InvalidAction", "The action " + action + " is not valid for the Recommendations section.");
  return Authenticated{seller, action, params};
}

bool is_known_action(std::string_view action) {
  return action == "GetLastUpdatedTimeForRecommendations" || action == "ListRecommendations" ||
         action == "ListRecommendationsByNextToken" || action == "GetServiceStatus";
}

std::string_view throttle_group(std::string_view action) {
  if (action == "ListRecommendationsByNextToken") return "ListRecommendations";
  return action;
}

MwsResult<Operation> parse_operation(const Authenticated& req) {
  Operation op;
  op.action = req.action;
  const Params& params = req.params;
  std::map<unsigned, CategoryQuery> queries;

  for (const auto& [name, value] : params) {
    if (common_params().count(name)) continue;
    const bool list = op.action == "ListRecommendations";
    if ((name == "MarketplaceId" && op.action != "ListRecommendationsByNextToken" && op.action != "GetServiceStatus") ||
        (name == "RecommendationCategory" && list) ||
        (name == "NextToken" && op.action == "ListRecommendationsByNextToken"))
      continue;
    std::string_view rest(name);
    if (list && consume(rest, "CategoryQueryList.CategoryQuery.")) {
      auto dot = rest.find('.');
      const unsigned n = parse_index(rest.substr(0, dot));
      if (n != 0 && dot != std::string_view::npos) {
        rest.remove_prefix(dot + 1);
        if (rest == "RecommendationCategory") {
          queries[n].category = value;
          continue;
        }
        if (consume(rest, "FilterOptions.FilterOption.")) {
          if (const unsigned m = parse_index(rest); m != 0) {
            queries[n].options[m] = value;
            continue;
          }
        }
      }
    }
    return error(400, "InvalidParameterValue",
                 "The parameter " + name + " is not valid for the operation " + op.action + ".");
  }

  if (op.action == "GetServiceStatus") return op;
  if (op.action == "ListRecommendationsByNextToken") {
    const std::string* token = find(params, "NextToken");
    if (!token) return missing("NextToken");
    op.next_token = *token;
    return op;
  }

  const std::string* marketplace = find(params, "MarketplaceId");
  if (!marketplace) return missing("MarketplaceId");
  if (!find_marketplace(*marketplace)) return invalid("MarketplaceId", *marketplace, "Unknown marketplace.");
  op.marketplace_id = *marketplace;
  if (op.action == "GetLastUpdatedTimeForRecommendations") return op;

  if (const std::string* category = find(params, "RecommendationCategory")) {
    if (!is_category(*category))
      return invalid("RecommendationCategory", *category,
                     "Valid values: Inventory, Selection, Pricing, Fulfillment, ListingQuality, GlobalSelling, "
                     "Advertising.");
    if (!category_offered(op.marketplace_id, *category))
      return invalid("RecommendationCategory", *category,
                     "The category is not available in marketplace " + op.marketplace_id + ".");
    op.categories.push_back(*category);
  } else {
    op.categories = offered_categories(op.marketplace_id);
  }

  for (const auto& [n, q] : queries) {
    const std::string prefix = "CategoryQueryList.CategoryQuery." + std::to_string(n) + ".";
    if (q.category.empty()) return missing(prefix + "RecommendationCategory");
    if (!category_query_allowed(q.category))
      return invalid(prefix + "RecommendationCategory", q.category,
                     "A CategoryQuery accepts Selection, Fulfillment, ListingQuality, GlobalSelling or Advertising.");
    if (q.options.empty()) return missing(prefix + "FilterOptions.FilterOption.1");
    Filters filters;
    for (const auto& [m, option] : q.options) {
      const std::string pname = prefix + "FilterOptions.FilterOption." + std::to_string(m);
      auto eq = option.find('=');
      if (eq == std::string::npos) return invalid(pname, option, "A FilterOption is FilterName=FilterValue.");
      std::string fname = option.substr(0, eq), fvalue = option.substr(eq + 1);
      if (auto why = check_filter(q.category, fname, fvalue); !why.empty()) return invalid(pname, option, why);
      filters.emplace_back(std::move(fname), std::move(fvalue));
    }
    if (std::find(op.categories.begin(), op.categories.end(), q.category) == op.categories.end()) continue;
    auto& dest = op.filters[q.category];
    dest.insert(dest.end(), filters.begin(), filters.end());
  }
  return op;
}

}  // namespace recgate::sandbox
