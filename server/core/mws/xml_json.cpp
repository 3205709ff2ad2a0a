// Upstream MWS Recommendations XML (docs/upstreams.md A.2, A.4) -> recgate values:
// <member>s converted to JSON (docs/design.md §2.1 typing rules), last-updated
// timestamps, NextToken and ErrorResponse. Pure: pugixml in, RapidJSON out.
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstdint>
#include <pugixml.hpp>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/mws/model.hpp"

namespace recgate::mws {
namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

// Deepest element nesting converted. Real answers nest about 6 levels
// (Response/Result/...Recommendations/member/ItemDimensions/Height/Value);
// each level may add an array level in JSON, so 32 keeps the JSON we build
// within json::kMaxDepth.
constexpr std::size_t kMaxXmlDepth = 32;

enum class FieldType { string, integer, decimal };

// docs/upstreams.md A.2 "Datatype fields": leaf paths below a recommendation <member>
// that the upstream schema types as xs:int or xs:decimal/xs:float. Everything
// else (dateTime, ids, Asin, Upc, Sku, CurrencyCode, Unit...) stays a string.
constexpr std::string_view kIntegerFields[] = {
    "AvailableQuantity",       "DaysUntilStockRunsOut",        "DaysOutOfStockLast30Days",
    "SalesForTheLast14Days",   "SalesForTheLast30Days",        "InboundQuantity",
    "RecommendedInboundQuantity", "LostSalesInLast30Days",     "NumberOfOffers",
    "NumberOfMerchantFulfilledOffers", "NumberOfAmazonFulfilledOffers", "NumberOfOffersFulfilledByAmazon",
    "NumberOfCustomerReviews", "SalesRank",
};
constexpr std::string_view kDecimalFields[] = {
    "AverageCustomerReview",
    "YourPricePlusShipping/Amount",
    "LowestPricePlusShipping/Amount",
    "PriceDifferenceToLowPrice/Amount",
    "MedianPricePlusShipping/Amount",
    "LowestMerchantFulfilledOfferPrice/Amount",
    "LowestAmazonFulfilledOfferPrice/Amount",
    "BuyboxPrice/Amount",
    "ItemDimensions/Height/Value",
    "ItemDimensions/Width/Value",
    "ItemDimensions/Length/Value",
    "ItemDimensions/Weight/Value",
};

FieldType field_type(std::string_view path) {
  if (std::find(std::begin(kIntegerFields), std::end(kIntegerFields), path) != std::end(kIntegerFields)) {
    return FieldType::integer;
  }
  if (std::find(std::begin(kDecimalFields), std::end(kDecimalFields), path) != std::end(kDecimalFields)) {
    return FieldType::decimal;
  }
  return FieldType::string;
}

std::string_view local_name(const pugi::xml_node& n) {
  std::string_view name = n.name();
  const std::size_t colon = name.find(':');
  return colon == std::string_view::npos ? name : name.substr(colon + 1);
}

pugi::xml_node child_named(const pugi::xml_node& parent, std::string_view name) {
  for (pugi::xml_node c = parent.first_child(); c; c = c.next_sibling()) {
    if (c.type() == pugi::node_element && local_name(c) == name) return c;
  }
  return {};
}

bool has_element_children(const pugi::xml_node& n) {
  for (pugi::xml_node c = n.first_child(); c; c = c.next_sibling()) {
    if (c.type() == pugi::node_element) return true;
  }
  return false;
}

std::string text_of(const pugi::xml_node& n) {
  std::string out;
  for (pugi::xml_node c = n.first_child(); c; c = c.next_sibling()) {
    if (c.type() == pugi::node_pcdata || c.type() == pugi::node_cdata) out += c.value();
  }
  return out;
}

std::string_view trim(std::string_view s) {
  constexpr std::string_view ws = " \t\r\n";
  const std::size_t first = s.find_first_not_of(ws);
  if (first == std::string_view::npos) return {};
  return s.substr(first, s.find_last_not_of(ws) - first + 1);
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// xs:int (whitespace collapsed, optional sign) -> int64; false if not one.
bool parse_integer(std::string_view text, std::int64_t& out) {
  std::string_view s = trim(text);
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  if (s.empty() || s.front() == '+') return false;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc{} && ptr == s.data() + s.size();
}

// xs:decimal / xs:float lexical form -> the same number as a JSON number text,
// so no digit is lost; false for anything else (INF, NaN, "", "1,5", 1e999).
bool decimal_to_json(std::string_view text, std::string& out) {
  std::string_view s = trim(text);
  std::string result;
  std::size_t i = 0;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    if (s[i] == '-') result += '-';
    ++i;
  }
  std::size_t int_start = i;
  while (i < s.size() && is_digit(s[i])) ++i;
  std::string_view int_part = s.substr(int_start, i - int_start);
  std::string_view frac_part;
  if (i < s.size() && s[i] == '.') {
    const std::size_t frac_start = ++i;
    while (i < s.size() && is_digit(s[i])) ++i;
    frac_part = s.substr(frac_start, i - frac_start);
  }
  if (int_part.empty() && frac_part.empty()) return false;
  while (int_part.size() > 1 && int_part.front() == '0') int_part.remove_prefix(1);
  result += int_part.empty() ? "0" : std::string(int_part);
  if (!frac_part.empty()) {
    result += '.';
    result += frac_part;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    result += 'e';
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) result += s[i++];
    const std::size_t exp_start = i;
    while (i < s.size() && is_digit(s[i])) ++i;
    if (i == exp_start) return false;
    result += s.substr(exp_start, i - exp_start);
  }
  if (i != s.size()) return false;
  if (!std::isfinite(std::strtod(result.c_str(), nullptr))) return false;
  out = std::move(result);
  return true;
}

void write_string(Writer& w, const std::string& s) { w.String(s.data(), static_cast<rapidjson::SizeType>(s.size())); }

void write_leaf(Writer& w, const pugi::xml_node& n, const std::string& path) {
  const std::string text = text_of(n);
  switch (field_type(path)) {
    case FieldType::integer: {
      std::int64_t v = 0;
      if (parse_integer(text, v)) {
        w.Int64(v);
        return;
      }
      break;
    }
    case FieldType::decimal: {
      std::string number;
      if (decimal_to_json(text, number)) {
        w.RawValue(number.data(), number.size(), rapidjson::kNumberType);
        return;
      }
      break;
    }
    case FieldType::string:
      break;
  }
  write_string(w, text);
}

void write_node(Writer& w, const pugi::xml_node& n, const std::string& path);

// Element children grouped by local name, groups in order of first
// appearance, each group's nodes in document order: one pass, so a member
// with thousands of siblings costs linear time, not quadratic.
std::vector<std::pair<std::string_view, std::vector<pugi::xml_node>>> group_children(const pugi::xml_node& n) {
  std::vector<std::pair<std::string_view, std::vector<pugi::xml_node>>> groups;
  std::unordered_map<std::string_view, std::size_t> index;
  for (pugi::xml_node c = n.first_child(); c; c = c.next_sibling()) {
    if (c.type() != pugi::node_element) continue;
    const std::string_view name = local_name(c);
    auto [it, fresh] = index.try_emplace(name, groups.size());
    if (fresh) groups.emplace_back(name, std::vector<pugi::xml_node>{});
    groups[it->second].second.push_back(c);
  }
  return groups;
}

// Children in document order; a name that repeats becomes one array key.
void write_object(Writer& w, const pugi::xml_node& n, const std::string& path) {
  w.StartObject();
  for (const auto& [name, nodes] : group_children(n)) {
    const std::string child_path = path.empty() ? std::string(name) : path + "/" + std::string(name);
    w.Key(name.data(), static_cast<rapidjson::SizeType>(name.size()));
    if (nodes.size() == 1) {
      write_node(w, nodes.front(), child_path);
      continue;
    }
    w.StartArray();
    for (const pugi::xml_node& d : nodes) write_node(w, d, child_path);
    w.EndArray();
  }
  w.EndObject();
}

// Element nesting of the whole document, walked without recursion (pugixml
// parses and frees without recursion too). The conversion below recurses
// once per level, so a document deeper than kMaxXmlDepth is refused first.
std::size_t element_depth(const pugi::xml_node& root) {
  std::size_t depth = 0;
  std::size_t deepest = 0;
  pugi::xml_node n = root.first_child();
  while (n) {
    if (n.type() == pugi::node_element) deepest = std::max(deepest, depth + 1);
    if (n.type() == pugi::node_element && n.first_child()) {
      n = n.first_child();
      ++depth;
      continue;
    }
    while (n && !n.next_sibling() && n != root) {
      n = n.parent();
      --depth;
    }
    if (!n || n == root) break;
    n = n.next_sibling();
  }
  return deepest;
}

bool is_member_list(const pugi::xml_node& n) {
  bool any = false;
  for (pugi::xml_node c = n.first_child(); c; c = c.next_sibling()) {
    if (c.type() != pugi::node_element) continue;
    if (local_name(c) != "member") return false;
    any = true;
  }
  return any;
}

void write_node(Writer& w, const pugi::xml_node& n, const std::string& path) {
  if (!has_element_children(n)) {
    write_leaf(w, n, path);
  } else if (is_member_list(n)) {
    w.StartArray();
    for (pugi::xml_node c = n.first_child(); c; c = c.next_sibling()) {
      if (c.type() == pugi::node_element) write_node(w, c, path + "/member");
    }
    w.EndArray();
  } else {
    write_object(w, n, path);
  }
}

std::string member_json(const pugi::xml_node& member) {
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  if (has_element_children(member)) {
    write_object(w, member, "");
  } else {
    w.StartObject();
    w.EndObject();
  }
  return std::string(buffer.GetString(), buffer.GetSize());
}

Problem malformed(std::string detail) {
  Problem p;
  p.status = 502;
  p.code = "upstream_malformed";
  p.title = "Bad Gateway";
  p.detail = std::move(detail);
  return p;
}

// Loads the document and checks the root's local name is one of `roots`.
Expected<pugi::xml_node> load_root(pugi::xml_document& doc, std::string_view xml,
                                   std::initializer_list<std::string_view> roots) {
  const pugi::xml_parse_result r = doc.load_buffer(xml.data(), xml.size(), pugi::parse_default, pugi::encoding_utf8);
  if (!r) {
    return malformed(std::string("upstream sent malformed XML: ") + r.description() + " at offset " +
                     std::to_string(r.offset));
  }
  if (const std::size_t depth = element_depth(doc); depth > kMaxXmlDepth) {
    return malformed("upstream XML nests elements " + std::to_string(depth) + " levels deep; the limit is " +
                     std::to_string(kMaxXmlDepth));
  }
  const pugi::xml_node root = doc.document_element();
  const std::string_view name = local_name(root);
  if (std::find(roots.begin(), roots.end(), name) == roots.end()) {
    std::string expected;
    for (const auto r2 : roots) {
      if (!expected.empty()) expected += " or ";
      expected += r2;
    }
    return malformed("upstream XML has root element <" + std::string(root.name()) + ">, expected " + expected);
  }
  return root;
}

}  // namespace

std::optional<UpstreamError> parse_error_response(std::string_view xml) {
  pugi::xml_document doc;
  if (!doc.load_buffer(xml.data(), xml.size(), pugi::parse_default, pugi::encoding_utf8)) return std::nullopt;
  const pugi::xml_node root = doc.document_element();
  if (local_name(root) != "ErrorResponse") return std::nullopt;
  UpstreamError e;
  const pugi::xml_node error = child_named(root, "Error");
  e.type = std::string(trim(text_of(child_named(error, "Type"))));
  e.code = std::string(trim(text_of(child_named(error, "Code"))));
  e.message = std::string(trim(text_of(child_named(error, "Message"))));
  for (const pugi::xml_node scope : {root, error}) {
    for (const std::string_view name : {"RequestId", "RequestID"}) {
      if (e.request_id.empty()) e.request_id = std::string(trim(text_of(child_named(scope, name))));
    }
  }
  if (e.request_id.empty()) {
    e.request_id = std::string(trim(text_of(child_named(child_named(root, "ResponseMetadata"), "RequestId"))));
  }
  return e;
}

Expected<LastUpdated> parse_last_updated(std::string_view xml) {
  pugi::xml_document doc;
  auto root = load_root(doc, xml, {"GetLastUpdatedTimeForRecommendationsResponse"});
  if (!root) return std::move(root.error());
  const pugi::xml_node result = child_named(*root, "GetLastUpdatedTimeForRecommendationsResult");
  if (!result) return malformed("upstream XML has no <GetLastUpdatedTimeForRecommendationsResult>");
  LastUpdated out;
  for (const char* category : kCategories) {
    std::optional<std::string> value;
    if (std::string_view(category) != "ListingQuality") {
      const std::string text(trim(text_of(child_named(result, std::string(category) + "RecommendationsLastUpdated"))));
      if (!text.empty()) value = text;
    }
    out.per_category.emplace_back(category, std::move(value));
  }
  return out;
}

Expected<ListPage> parse_list_page(std::string_view xml, const std::string& category) {
  pugi::xml_document doc;
  auto root = load_root(doc, xml, {"ListRecommendationsResponse", "ListRecommendationsByNextTokenResponse"});
  if (!root) return std::move(root.error());
  constexpr std::string_view suffix = "Response";
  std::string result_name(local_name(*root));
  result_name.replace(result_name.size() - suffix.size(), suffix.size(), "Result");
  const pugi::xml_node result = child_named(*root, result_name);
  if (!result) return malformed("upstream XML has no <" + result_name + ">");
  ListPage page;
  for (pugi::xml_node c = child_named(result, category + "Recommendations").first_child(); c; c = c.next_sibling()) {
    if (c.type() == pugi::node_element && local_name(c) == "member") page.members_json.push_back(member_json(c));
  }
  const std::string token(trim(text_of(child_named(result, "NextToken"))));
  if (!token.empty()) page.next_token = token;
  return page;
}

}  // namespace recgate::mws
