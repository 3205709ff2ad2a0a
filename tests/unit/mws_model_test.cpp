// Unit tests for core/mws/model: marketplace table, query validation tables,
// ListRecommendations parameters, and XML -> JSON over tests/fixtures/mws.
#include <doctest/doctest.h>
#include <rapidjson/document.h>

#include <ctime>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "../support/mws_fixture.hpp"
#include "core/mws/model.hpp"
#include "core/mws/sigv2.hpp"

using namespace recgate::mws;
using recgate::Expected;
using recgate::Problem;

namespace {

using Raw = std::vector<std::pair<std::string, std::string>>;
using Strings = std::vector<std::string>;

rapidjson::Document parse_json(const std::string& text) {
  rapidjson::Document d;
  d.Parse(text.c_str(), text.size());
  REQUIRE_MESSAGE(!d.HasParseError(), "invalid JSON: " << text);
  return d;
}

const rapidjson::Value& at_path(const rapidjson::Value& root, const std::string& path) {
  const rapidjson::Value* v = &root;
  std::size_t start = 0;
  while (start <= path.size()) {
    std::size_t slash = path.find('/', start);
    if (slash == std::string::npos) slash = path.size();
    const std::string key = path.substr(start, slash - start);
    REQUIRE_MESSAGE(v->IsObject(), "not an object before " << key);
    const auto it = v->FindMember(key.c_str());
    REQUIRE_MESSAGE(it != v->MemberEnd(), "missing key " << path);
    v = &it->value;
    start = slash + 1;
  }
  return *v;
}

enum class J { str, integer, number };

// One expected field: a path inside a member, the JSON type, and its text
// (the string value, or the number exactly as serialized).
struct Field {
  const char* path;
  J type;
  const char* value;
};

void check_fields(const std::string& member_json, const std::vector<Field>& fields) {
  const rapidjson::Document d = parse_json(member_json);
  for (const auto& f : fields) {
    CAPTURE(f.path);
    const rapidjson::Value& v = at_path(d, f.path);
    switch (f.type) {
      case J::str:
        REQUIRE(v.IsString());
        CHECK(std::string(v.GetString(), v.GetStringLength()) == f.value);
        break;
      case J::integer:
        REQUIRE(v.IsInt64());
        CHECK(std::to_string(v.GetInt64()) == f.value);
        break;
      case J::number:
        REQUIRE(v.IsNumber());
        break;
    }
  }
  // Numbers (integer and decimal) appear in the text exactly as expected.
  for (const auto& f : fields) {
    if (f.type == J::str) continue;
    const std::string key = std::string(f.path).substr(std::string(f.path).rfind('/') + 1);
    CAPTURE(f.path);
    CHECK(member_json.find("\"" + key + "\":" + f.value) != std::string::npos);
  }
}

Problem expect_problem(const Expected<Query>& r) {
  REQUIRE_FALSE(r.has_value());
  return r.error();
}

}  // namespace

TEST_CASE("mws model: marketplace table (docs/upstreams.md A.5)") {
  struct Row {
    const char* id;
    const char* code;
    const char* region;
    const char* host;
  };
  const std::vector<Row> rows = {
      {"A2Q3Y263D00KWC", "BR", "NA", "mws.amazonservices.com"},  {"A2EUQ1WTGCTBG2", "CA", "NA", "mws.amazonservices.ca"},
      {"A1AM78C64UM0Y8", "MX", "NA", "mws.amazonservices.com.mx"}, {"ATVPDKIKX0DER", "US", "NA", "mws.amazonservices.com"},
      {"A2VIGQ35RCS4UG", "AE", "EU", "mws.amazonservices.ae"},   {"A1PA6795UKMFR9", "DE", "EU", "mws-eu.amazonservices.com"},
      {"ARBP9OOSHTCHU", "EG", "EU", "mws-eu.amazonservices.com"}, {"A1RKKUPIHCS9HS", "ES", "EU", "mws-eu.amazonservices.com"},
      {"A13V1IB3VIYZZH", "FR", "EU", "mws-eu.amazonservices.com"}, {"AMEN7PMS3EDWL", "BE", "EU", "mws-eu.amazonservices.com"},
      {"A1F83G8C2ARO7P", "GB", "EU", "mws-eu.amazonservices.com"}, {"A21TJRUUN4KGV", "IN", "EU", "mws.amazonservices.in"},
      {"APJ6JRA9NG5V4", "IT", "EU", "mws-eu.amazonservices.com"}, {"A1805IZSGTT6HS", "NL", "EU", "mws-eu.amazonservices.com"},
      {"A1C3SOZRARQ6R3", "PL", "EU", "mws-eu.amazonservices.com"}, {"A17E79C6D8DWNP", "SA", "EU", "mws-eu.amazonservices.com"},
      {"A2NODRKZP88ZB9", "SE", "EU", "mws-eu.amazonservices.com"}, {"A33AVAJ2PDY3EV", "TR", "EU", "mws-eu.amazonservices.com"},
      {"A19VAU5U5O7RUS", "SG", "FE", "mws-fe.amazonservices.com"}, {"A39IBJ37TRP1C6", "AU", "FE", "mws.amazonservices.com.au"},
      {"A1VC38T7YXB528", "JP", "FE", "mws.amazonservices.jp"},
  };
  CHECK(all_marketplaces().size() == rows.size());
  for (const auto& r : rows) {
    CAPTURE(r.id);
    const Marketplace* m = find_marketplace(r.id);
    REQUIRE(m != nullptr);
    CHECK(m->id == r.id);
    CHECK(m->code == r.code);
    CHECK(m->region == r.region);
    CHECK(m->host == r.host);
  }
  CHECK(find_marketplace("atvpdkikx0der") == nullptr);
  CHECK(find_marketplace("AAHKV2X7AFYLW") == nullptr);
  CHECK(find_marketplace("") == nullptr);

  const Strings all = {"Inventory", "Selection", "Pricing", "Fulfillment", "ListingQuality", "GlobalSelling", "Advertising"};
  CHECK(categories_for(*find_marketplace("ATVPDKIKX0DER")) == all);
  CHECK(categories_for(*find_marketplace("A1VC38T7YXB528")) == all);
  CHECK(categories_for(*find_marketplace("A2Q3Y263D00KWC")) ==
        Strings{"Inventory", "Selection", "Pricing", "ListingQuality", "GlobalSelling"});
  CHECK(is_category("GlobalSelling"));
  CHECK_FALSE(is_category("globalselling"));
  CHECK_FALSE(is_category(""));
}

TEST_CASE("mws model: valid recommendations queries") {
  const Strings all = {"Inventory", "Selection", "Pricing", "Fulfillment", "ListingQuality", "GlobalSelling", "Advertising"};
  struct Row {
    const char* name;
    Raw raw;
    const char* marketplace;
    Strings categories;
    Strings filters;
  };
  const std::vector<Row> rows = {
      {"marketplace only: every category", {{"marketplace", "ATVPDKIKX0DER"}}, "ATVPDKIKX0DER", all, {}},
      {"Brazil without category: no Fulfillment or Advertising",
       {{"marketplace", "A2Q3Y263D00KWC"}},
       "A2Q3Y263D00KWC",
       {"Inventory", "Selection", "Pricing", "ListingQuality", "GlobalSelling"},
       {}},
      {"categories put in upstream order, duplicates removed",
       {{"category", "Advertising"}, {"marketplace", "A1PA6795UKMFR9"}, {"category", "Inventory"}, {"category", "Advertising"}},
       "A1PA6795UKMFR9",
       {"Inventory", "Advertising"},
       {}},
      {"same marketplace twice is fine",
       {{"marketplace", "ATVPDKIKX0DER"}, {"marketplace", "ATVPDKIKX0DER"}, {"category", "Pricing"}},
       "ATVPDKIKX0DER",
       {"Pricing"},
       {}},
      {"ListingQuality filters sorted and deduplicated",
       {{"marketplace", "ATVPDKIKX0DER"},
        {"category", "ListingQuality"},
        {"filter", "QualitySet=Defect"},
        {"filter", "ListingStatus=Active"},
        {"filter", "QualitySet=Defect"},
        {"filter", "QualitySet=Quarantine"}},
       "ATVPDKIKX0DER",
       {"ListingQuality"},
       {"ListingStatus=Active", "QualitySet=Defect", "QualitySet=Quarantine"}},
      {"Selection filters incl. IncludeCommonRecommendations and unicode brand",
       {{"marketplace", "A1VC38T7YXB528"},
        {"category", "Selection"},
        {"filter", "IncludeCommonRecommendations=false"},
        {"filter", "BrandName=日本 Café"},
        {"filter", "ProductCategory=Home Improvement"}},
       "A1VC38T7YXB528",
       {"Selection"},
       {"BrandName=日本 Café", "IncludeCommonRecommendations=false", "ProductCategory=Home Improvement"}},
      {"a filter value may contain '='",
       {{"marketplace", "ATVPDKIKX0DER"}, {"category", "Advertising"}, {"filter", "BrandName=A=B"}},
       "ATVPDKIKX0DER",
       {"Advertising"},
       {"BrandName=A=B"}},
      {"Fulfillment filter", {{"marketplace", "ATVPDKIKX0DER"}, {"category", "Fulfillment"}, {"filter", "ProductCategory=Toys"}}, "ATVPDKIKX0DER", {"Fulfillment"}, {"ProductCategory=Toys"}},
      {"GlobalSelling filter in Brazil",
       {{"marketplace", "A2Q3Y263D00KWC"}, {"category", "GlobalSelling"}, {"filter", "BrandName=X"}},
       "A2Q3Y263D00KWC",
       {"GlobalSelling"},
       {"BrandName=X"}},
      {"same category twice still counts as one for filters",
       {{"marketplace", "ATVPDKIKX0DER"}, {"category", "Selection"}, {"category", "Selection"}, {"filter", "IncludeCommonRecommendations=true"}},
       "ATVPDKIKX0DER",
       {"Selection"},
       {"IncludeCommonRecommendations=true"}},
  };
  for (const auto& r : rows) {
    CAPTURE(r.name);
    const auto q = validate_recommendations_query(r.raw);
    REQUIRE_MESSAGE(q.has_value(), (q.has_value() ? "" : q.error().detail));
    CHECK(q->marketplace_id == r.marketplace);
    CHECK(q->categories == r.categories);
    CHECK(q->filters == r.filters);
  }
}

TEST_CASE("mws model: invalid recommendations queries") {
  struct Row {
    const char* name;
    Raw raw;
    const char* code;
    Strings detail_mentions;  // what is wrong and what is allowed
  };
  const std::vector<Row> rows = {
      {"no parameters", {}, "missing_marketplace", {"marketplace", "required"}},
      {"empty marketplace", {{"marketplace", ""}}, "missing_marketplace", {"marketplace"}},
      {"unknown marketplace", {{"marketplace", "XX"}}, "unknown_marketplace", {"'XX'", "ATVPDKIKX0DER (US)", "A2Q3Y263D00KWC (BR)"}},
      {"marketplace is case-sensitive", {{"marketplace", "atvpdkikx0der"}}, "unknown_marketplace", {"atvpdkikx0der"}},
      {"two different marketplaces",
       {{"marketplace", "ATVPDKIKX0DER"}, {"marketplace", "A2EUQ1WTGCTBG2"}},
       "duplicate_marketplace",
       {"ATVPDKIKX0DER", "A2EUQ1WTGCTBG2"}},
      {"unknown parameter", {{"marketplace", "ATVPDKIKX0DER"}, {"Category", "Pricing"}}, "unknown_parameter", {"'Category'", "marketplace, category, filter"}},
      {"unknown parameter checked before marketplace", {{"limit", "3"}}, "unknown_parameter", {"'limit'"}},
      {"category wrong case", {{"marketplace", "ATVPDKIKX0DER"}, {"category", "inventory"}}, "invalid_category",
       {"'inventory'", "Inventory, Selection, Pricing, Fulfillment, ListingQuality, GlobalSelling, Advertising"}},
      {"category with space", {{"marketplace", "ATVPDKIKX0DER"}, {"category", "Global Selling"}}, "invalid_category", {"'Global Selling'"}},
      {"empty category", {{"marketplace", "ATVPDKIKX0DER"}, {"category", ""}}, "invalid_category", {"''"}},
      {"Fulfillment in Brazil", {{"marketplace", "A2Q3Y263D00KWC"}, {"category", "Fulfillment"}}, "category_not_offered",
       {"Fulfillment", "BR", "Inventory, Selection, Pricing, ListingQuality, GlobalSelling"}},
      {"Advertising in Brazil", {{"marketplace", "A2Q3Y263D00KWC"}, {"category", "Inventory"}, {"category", "Advertising"}},
       "category_not_offered", {"Advertising"}},
      {"filter without category", {{"marketplace", "ATVPDKIKX0DER"}, {"filter", "BrandName=X"}}, "filter_needs_one_category",
       {"exactly one category", "7"}},
      {"filter with two categories",
       {{"marketplace", "ATVPDKIKX0DER"}, {"category", "Selection"}, {"category", "Advertising"}, {"filter", "BrandName=X"}},
       "filter_needs_one_category",
       {"2", "Selection, Advertising"}},
      {"filter on Inventory", {{"marketplace", "ATVPDKIKX0DER"}, {"category", "Inventory"}, {"filter", "BrandName=X"}}, "invalid_filter",
       {"Inventory accepts no filters", "Selection, Fulfillment, ListingQuality, GlobalSelling, Advertising"}},
      {"filter on Pricing", {{"marketplace", "ATVPDKIKX0DER"}, {"category", "Pricing"}, {"filter", "QualitySet=Defect"}}, "invalid_filter",
       {"Pricing accepts no filters"}},
      {"filter without '='", {{"marketplace", "ATVPDKIKX0DER"}, {"category", "Selection"}, {"filter", "BrandName"}}, "invalid_filter",
       {"Name=Value", "BrandName=<any non-empty value>", "IncludeCommonRecommendations=true|false"}},
      {"filter with empty value", {{"marketplace", "ATVPDKIKX0DER"}, {"category", "Selection"}, {"filter", "BrandName="}}, "invalid_filter",
       {"Name=Value"}},
      {"filter with empty name", {{"marketplace", "ATVPDKIKX0DER"}, {"category", "Selection"}, {"filter", "=X"}}, "invalid_filter", {"Name=Value"}},
      {"empty filter", {{"marketplace", "ATVPDKIKX0DER"}, {"category", "Selection"}, {"filter", ""}}, "invalid_filter", {"Name=Value"}},
      {"filter name of another category",
       {{"marketplace", "ATVPDKIKX0DER"}, {"category", "Selection"}, {"filter", "QualitySet=Defect"}},
       "invalid_filter",
       {"'QualitySet'", "Selection accepts"}},
      {"IncludeCommonRecommendations only for Selection",
       {{"marketplace", "ATVPDKIKX0DER"}, {"category", "Fulfillment"}, {"filter", "IncludeCommonRecommendations=true"}},
       "invalid_filter",
       {"Fulfillment accepts: BrandName=<any non-empty value>, ProductCategory=<any non-empty value>"}},
      {"QualitySet value is case-sensitive",
       {{"marketplace", "ATVPDKIKX0DER"}, {"category", "ListingQuality"}, {"filter", "QualitySet=DEFECT"}},
       "invalid_filter",
       {"QualitySet=DEFECT", "QualitySet=Defect|Quarantine", "ListingStatus=Active|Inactive"}},
      {"ListingStatus bad value",
       {{"marketplace", "ATVPDKIKX0DER"}, {"category", "ListingQuality"}, {"filter", "ListingStatus=Deleted"}},
       "invalid_filter",
       {"ListingStatus=Active|Inactive"}},
      {"IncludeCommonRecommendations bad value",
       {{"marketplace", "ATVPDKIKX0DER"}, {"category", "Selection"}, {"filter", "IncludeCommonRecommendations=yes"}},
       "invalid_filter",
       {"true|false"}},
      {"filter name is case-sensitive",
       {{"marketplace", "ATVPDKIKX0DER"}, {"category", "Advertising"}, {"filter", "brandname=X"}},
       "invalid_filter",
       {"'brandname'"}},
  };
  for (const auto& r : rows) {
    CAPTURE(r.name);
    const Problem p = expect_problem(validate_recommendations_query(r.raw));
    CHECK(p.status == 400);
    CHECK(p.code == r.code);
    for (const auto& m : r.detail_mentions) {
      CAPTURE(m);
      CAPTURE(p.detail);
      CHECK(p.detail.find(m) != std::string::npos);
    }
  }
}

TEST_CASE("mws model: last-updated query") {
  const auto ok = validate_last_updated_query({{"marketplace", "A1F83G8C2ARO7P"}});
  REQUIRE(ok.has_value());
  CHECK(*ok == "A1F83G8C2ARO7P");

  struct Row {
    Raw raw;
    const char* code;
  };
  const std::vector<Row> rows = {
      {{}, "missing_marketplace"},
      {{{"marketplace", "nope"}}, "unknown_marketplace"},
      {{{"marketplace", "ATVPDKIKX0DER"}, {"category", "Inventory"}}, "unknown_parameter"},
  };
  for (const auto& r : rows) {
    CAPTURE(r.code);
    const auto res = validate_last_updated_query(r.raw);
    REQUIRE_FALSE(res.has_value());
    CHECK(res.error().status == 400);
    CHECK(res.error().code == r.code);
  }
}

TEST_CASE("mws model: ListRecommendations parameters") {
  using P = std::vector<std::pair<std::string, std::string>>;
  CHECK(list_params("ATVPDKIKX0DER", "Inventory", {}) ==
        P{{"MarketplaceId", "ATVPDKIKX0DER"}, {"RecommendationCategory", "Inventory"}});

  Strings filters;
  for (int i = 1; i <= 10; ++i) filters.push_back("BrandName=B" + std::to_string(i));
  const P p = list_params("ATVPDKIKX0DER", "Selection", filters);
  REQUIRE(p.size() == 13);
  CHECK(p[2] == std::pair<std::string, std::string>{"CategoryQueryList.CategoryQuery.1.RecommendationCategory", "Selection"});
  CHECK(p[3] == std::pair<std::string, std::string>{"CategoryQueryList.CategoryQuery.1.FilterOptions.FilterOption.1", "BrandName=B1"});
  CHECK(p[12] == std::pair<std::string, std::string>{"CategoryQueryList.CategoryQuery.1.FilterOptions.FilterOption.10", "BrandName=B10"});

  const std::string fo = "CategoryQueryList.CategoryQuery.1.FilterOptions.FilterOption.";
  const auto q = validate_recommendations_query({{"marketplace", "ATVPDKIKX0DER"},
                                                 {"category", "ListingQuality"},
                                                 {"filter", "QualitySet=Defect"},
                                                 {"filter", "ListingStatus=Active"}});
  REQUIRE(q.has_value());
  const std::string canonical = canonical_query(list_params(q->marketplace_id, q->categories.front(), q->filters));
  CHECK(canonical == fo + "1=ListingStatus%3DActive&" + fo +
                         "2=QualitySet%3DDefect&CategoryQueryList.CategoryQuery.1.RecommendationCategory=ListingQuality&"
                         "MarketplaceId=ATVPDKIKX0DER&RecommendationCategory=ListingQuality");
  CHECK(canonical_query(list_params("ATVPDKIKX0DER", "Selection", filters)).find(fo + "1=BrandName%3DB1&" + fo + "10=BrandName%3DB10&" + fo + "2=") !=
        std::string::npos);
}

TEST_CASE("mws model: ListRecommendations XML to JSON, every category") {
  const std::string xml = rgtest::mws_fixture("list_recommendations.xml");
  struct Row {
    const char* category;
    std::size_t count;
    std::size_t index;
    std::vector<Field> fields;
  };
  const std::vector<Row> rows = {
      {"Inventory", 2, 0,
       {{"LastUpdated", J::str, "2026-11-20T08:00:00Z"},
        {"ItemIdentifier/Asin", J::str, "B00EXAMPLE1"},
        {"ItemIdentifier/Sku", J::str, "0012345"},
        {"ItemIdentifier/Upc", J::str, "012345678905"},
        {"ItemName", J::str, "Caf\xc3\xa9 mug & <saucer> \xe6\x97\xa5\xe6\x9c\xac \"edition\""},
        {"FulfillmentChannel", J::str, "AFN"},
        {"SalesForTheLast14Days", J::integer, "12"},
        {"SalesForTheLast30Days", J::integer, "27"},
        {"AvailableQuantity", J::integer, "3"},
        {"DaysUntilStockRunsOut", J::integer, "10"},
        {"InboundQuantity", J::integer, "0"},
        {"RecommendedInboundQuantity", J::integer, "40"},
        {"DaysOutOfStockLast30Days", J::integer, "2"},
        {"LostSalesInLast30Days", J::integer, "5"},
        {"RecommendationId", J::str, "Inventory-OutOfStock-B00EXAMPLE1-0012345-012345678905-Caf\xc3\xa9 mug"},
        {"RecommendationReason", J::str, "OutOfStock"}}},
      {"Inventory", 2, 1,
       {{"LastUpdated", J::str, "2026-11-20T08:00:00.123Z"},
        {"ItemIdentifier/Upc", J::str, ""},
        {"AvailableQuantity", J::integer, "7"},
        {"DaysUntilStockRunsOut", J::str, "unknown"},
        {"DaysOutOfStockLast30Days", J::integer, "-1"}}},
      {"Selection", 1, 0,
       {{"LastUpdated", J::str, "2026-11-19T22:10:05.500Z"},
        {"ItemIdentifier/Asin", J::str, "B00SELECT01"},
        {"ItemIdentifier/Sku", J::str, ""},
        {"ItemIdentifier/Upc", J::str, "885909950805"},
        {"ItemName", J::str, "Garden hose, 50 ft"},
        {"BrandName", J::str, "Hoseco"},
        {"ProductCategory", J::str, "Home Improvement"},
        {"SalesRank", J::integer, "1520"},
        {"BuyboxPrice/CurrencyCode", J::str, "USD"},
        {"BuyboxPrice/Amount", J::number, "19.99"},
        {"NumberOfOffers", J::integer, "4"},
        {"AverageCustomerReview", J::number, "4.5"},
        {"NumberOfCustomerReviews", J::integer, "211"},
        {"RecommendationReason", J::str, "PopularOutOfStock"}}},
      {"Pricing", 1, 0,
       {{"ItemIdentifier/Sku", J::str, "1234567890"},
        {"ItemIdentifier/Upc", J::str, "036000291452"},
        {"Condition", J::str, "New"},
        {"SubCondition", J::str, "New"},
        {"FulfillmentChannel", J::str, "MFN"},
        {"YourPricePlusShipping/CurrencyCode", J::str, "USD"},
        {"YourPricePlusShipping/Amount", J::number, "25.50"},
        {"LowestPricePlusShipping/Amount", J::number, "24.00"},
        {"PriceDifferenceToLowPrice/Amount", J::number, "-1.50"},
        {"MedianPricePlusShipping/Amount", J::number, "26"},
        {"LowestMerchantFulfilledOfferPrice/Amount", J::number, "24.00"},
        {"LowestAmazonFulfilledOfferPrice/Amount", J::number, "27.35"},
        {"NumberOfOffers", J::integer, "9"},
        {"NumberOfMerchantFulfilledOffers", J::integer, "6"},
        {"NumberOfAmazonFulfilledOffers", J::integer, "3"},
        {"RecommendationReason", J::str, "TooExpensive"}}},
      {"Fulfillment", 1, 0,
       {{"BrandName", J::str, "Stretchy"},
        {"ProductCategory", J::str, "Sports"},
        {"SalesRank", J::integer, "88"},
        {"BuyboxPrice/Amount", J::number, "31.00"},
        {"NumberOfOffers", J::integer, "12"},
        {"NumberOfOffersFulfilledByAmazon", J::integer, "5"},
        {"AverageCustomerReview", J::number, "3.9"},
        {"NumberOfCustomerReviews", J::integer, "1043"},
        {"ItemDimensions/Height/Value", J::number, "2.5"},
        {"ItemDimensions/Height/Unit", J::str, "inches"},
        {"ItemDimensions/Width/Value", J::number, "24"},
        {"ItemDimensions/Length/Value", J::number, "68.0"},
        {"ItemDimensions/Weight/Value", J::number, "1.25"},
        {"ItemDimensions/Weight/Unit", J::str, "pounds"},
        {"ItemIdentifier/Upc", J::str, "000000000017"}}},
      {"ListingQuality", 1, 0,
       {{"QualitySet", J::str, "Defect"},
        {"DefectGroup", J::str, "Missing description"},
        {"DefectAttribute", J::str, "product_description"},
        {"ItemIdentifier/Upc", J::str, "123"},
        {"ItemName", J::str, "Lamp"},
        {"RecommendationId", J::str, "ListingQuality-MissingDescription-B00QUALITY1-LQ-1-123-Lamp"},
        {"RecommendationReason", J::str, "MissingDescription"}}},
      {"GlobalSelling", 1, 0,
       {{"BrandName", J::str, "Inky"},
        {"ProductCategory", J::str, "Office Products"},
        {"SalesRank", J::integer, "3402"},
        {"BuyboxPrice/CurrencyCode", J::str, "EUR"},
        {"BuyboxPrice/Amount", J::number, "9.90"},
        {"NumberOfOffers", J::integer, "2"},
        {"NumberOfOffersFulfilledByAmazon", J::integer, "1"},
        {"AverageCustomerReview", J::number, "4"},
        {"NumberOfCustomerReviews", J::integer, "17"},
        {"ItemDimensions/Height/Value", J::number, "0.75"},
        {"ItemDimensions/Width/Value", J::number, "6"},
        {"ItemDimensions/Length/Value", J::number, "8.5"},
        {"ItemDimensions/Weight/Value", J::number, "0.3"},
        {"ItemIdentifier/Upc", J::str, "4006381333931"}}},
      {"Advertising", 1, 0,
       {{"LastUpdated", J::str, "2026-11-16T10:20:30.000Z"},
        {"BrandName", J::str, "Loud"},
        {"ProductCategory", J::str, "Electronics"},
        {"SalesRank", J::integer, "57"},
        {"YourPricePlusShipping/Amount", J::number, "59.99"},
        {"LowestPricePlusShipping/Amount", J::number, "54.95"},
        {"LowestPricePlusShipping/CurrencyCode", J::str, "USD"},
        {"AvailableQuantity", J::integer, "140"},
        {"SalesForTheLast30Days", J::integer, "66"},
        {"ItemIdentifier/Upc", J::str, "9780306406157"}}},
  };
  for (const auto& r : rows) {
    CAPTURE(r.category);
    CAPTURE(r.index);
    const auto page = parse_list_page(xml, r.category);
    REQUIRE(page.has_value());
    REQUIRE(page->members_json.size() == r.count);
    REQUIRE(page->next_token.has_value());
    CHECK(*page->next_token == "LXBhZ2UtMi0rLz0=");
    CAPTURE(page->members_json[r.index]);
    check_fields(page->members_json[r.index], r.fields);
  }

  // The whole first Pricing member, to pin key order and number spelling.
  const auto pricing = parse_list_page(xml, "Pricing");
  REQUIRE(pricing.has_value());
  CHECK(pricing->members_json.front().rfind(
            R"({"LastUpdated":"2026-11-20T07:59:59Z","ItemIdentifier":{"Asin":"B00PRICE001","Sku":"1234567890","Upc":"036000291452"},)"
            R"("ItemName":"Stainless kettle","Condition":"New","SubCondition":"New","FulfillmentChannel":"MFN",)"
            R"("YourPricePlusShipping":{"CurrencyCode":"USD","Amount":25.50},)",
            0) == 0);
  const auto lq = parse_list_page(xml, "ListingQuality");
  REQUIRE(lq.has_value());
  CHECK(parse_json(lq->members_json.front()).HasMember("LastUpdated") == false);
}

TEST_CASE("mws model: ListRecommendationsByNextToken, namespaces and odd shapes") {
  SUBCASE("prefixed namespace, CDATA, last page") {
    const auto page = parse_list_page(rgtest::mws_fixture("list_recommendations_by_next_token.xml"), "Inventory");
    REQUIRE(page.has_value());
    CHECK_FALSE(page->next_token.has_value());
    REQUIRE(page->members_json.size() == 1);
    check_fields(page->members_json[0], {{"ItemIdentifier/Sku", J::str, "42"},
                                         {"ItemIdentifier/Upc", J::str, "4"},
                                         {"ItemName", J::str, "Bolt <M6> & nut"},
                                         {"AvailableQuantity", J::integer, "0"},
                                         {"DaysOutOfStockLast30Days", J::integer, "30"}});
    const auto selection = parse_list_page(rgtest::mws_fixture("list_recommendations_by_next_token.xml"), "Selection");
    REQUIRE(selection.has_value());
    CHECK(selection->members_json.empty());
    const auto absent = parse_list_page(rgtest::mws_fixture("list_recommendations_by_next_token.xml"), "Pricing");
    REQUIRE(absent.has_value());
    CHECK(absent->members_json.empty());
  }
  SUBCASE("no namespace at all, escapes and odd numbers") {
    const std::string xml =
        "<ListRecommendationsResponse><ListRecommendationsResult><PricingRecommendations><member>"
        "<ItemName>&#x65E5;&#26412; &apos;q&apos; \\ tab\t</ItemName>"
        "<NumberOfOffers>+5</NumberOfOffers><NumberOfAmazonFulfilledOffers>1.0</NumberOfAmazonFulfilledOffers>"
        "<NumberOfMerchantFulfilledOffers>99999999999999999999</NumberOfMerchantFulfilledOffers>"
        "<YourPricePlusShipping><CurrencyCode>JPY</CurrencyCode><Amount>+0012.50</Amount></YourPricePlusShipping>"
        "<LowestPricePlusShipping><Amount>.5</Amount></LowestPricePlusShipping>"
        "<MedianPricePlusShipping><Amount>1,5</Amount></MedianPricePlusShipping>"
        "<LowestAmazonFulfilledOfferPrice><Amount>NaN</Amount></LowestAmazonFulfilledOfferPrice>"
        "<LowestMerchantFulfilledOfferPrice><Amount>1e3</Amount></LowestMerchantFulfilledOfferPrice>"
        "<BuyboxPrice><Amount>1e999</Amount></BuyboxPrice>"
        "<PriceDifferenceToLowPrice><Amount></Amount></PriceDifferenceToLowPrice>"
        "<Condition>7</Condition>"
        "</member></PricingRecommendations><NextToken>  tok  </NextToken></ListRecommendationsResult></ListRecommendationsResponse>";
    const auto page = parse_list_page(xml, "Pricing");
    REQUIRE(page.has_value());
    CHECK(page->next_token == std::optional<std::string>("tok"));
    REQUIRE(page->members_json.size() == 1);
    check_fields(page->members_json[0], {{"ItemName", J::str, "\xe6\x97\xa5\xe6\x9c\xac 'q' \\ tab\t"},
                                         {"NumberOfOffers", J::integer, "5"},
                                         {"NumberOfAmazonFulfilledOffers", J::str, "1.0"},
                                         {"NumberOfMerchantFulfilledOffers", J::str, "99999999999999999999"},
                                         {"YourPricePlusShipping/Amount", J::number, "12.50"},
                                         {"LowestPricePlusShipping/Amount", J::number, "0.5"},
                                         {"MedianPricePlusShipping/Amount", J::str, "1,5"},
                                         {"LowestAmazonFulfilledOfferPrice/Amount", J::str, "NaN"},
                                         {"LowestMerchantFulfilledOfferPrice/Amount", J::number, "1e3"},
                                         {"PriceDifferenceToLowPrice/Amount", J::str, ""},
                                         {"BuyboxPrice/Amount", J::str, "1e999"},
                                         {"Condition", J::str, "7"}});
  }
  SUBCASE("Amount and Value are typed only where the schema types them") {
    const std::string xml =
        "<ListRecommendationsResponse><ListRecommendationsResult><FulfillmentRecommendations><member>"
        "<Amount>3</Amount><Value>4</Value><Other><Amount>5</Amount></Other>"
        "<ItemDimensions><Height><Value>1</Value><Unit>cm</Unit></Height><Depth><Value>2</Value></Depth></ItemDimensions>"
        "</member></FulfillmentRecommendations></ListRecommendationsResult></ListRecommendationsResponse>";
    const auto page = parse_list_page(xml, "Fulfillment");
    REQUIRE(page.has_value());
    CHECK(page->members_json[0] ==
          R"({"Amount":"3","Value":"4","Other":{"Amount":"5"},"ItemDimensions":{"Height":{"Value":1,"Unit":"cm"},"Depth":{"Value":"2"}}})");
  }
  SUBCASE("nested member lists become arrays; repeated names are kept") {
    const std::string xml =
        "<ListRecommendationsResponse xmlns='urn:other'><ListRecommendationsResult><SelectionRecommendations>"
        "<member><Tags><member>a</member><member>b</member></Tags><Note>x</Note><Note>y</Note><Empty/></member>"
        "<member/>"
        "</SelectionRecommendations></ListRecommendationsResult></ListRecommendationsResponse>";
    const auto page = parse_list_page(xml, "Selection");
    REQUIRE(page.has_value());
    REQUIRE(page->members_json.size() == 2);
    CHECK(page->members_json[0] == R"({"Tags":["a","b"],"Note":["x","y"],"Empty":""})");
    CHECK(page->members_json[1] == "{}");
  }
}

TEST_CASE("mws model: list page problems") {
  struct Row {
    const char* name;
    std::string xml;
    const char* detail_mentions;
  };
  const std::vector<Row> rows = {
      {"truncated fixture", rgtest::mws_fixture("malformed.xml"), "malformed XML"},
      {"empty body", "", "malformed XML"},
      {"not XML", "Service Unavailable", "malformed XML"},
      {"HTML error page", "<html><body>502</body></html>", "<html>"},
      {"wrong operation", rgtest::mws_fixture("last_updated.xml"), "GetLastUpdatedTimeForRecommendationsResponse"},
      {"error response", rgtest::mws_fixture("error_request_id.xml"), "ErrorResponse"},
      {"missing Result", "<ListRecommendationsResponse><ResponseMetadata/></ListRecommendationsResponse>",
       "ListRecommendationsResult"},
      {"Result of the other operation",
       "<ListRecommendationsByNextTokenResponse><ListRecommendationsResult/></ListRecommendationsByNextTokenResponse>",
       "ListRecommendationsByNextTokenResult"},
  };
  for (const auto& r : rows) {
    CAPTURE(r.name);
    const auto page = parse_list_page(r.xml, "Inventory");
    REQUIRE_FALSE(page.has_value());
    CHECK(page.error().status == 502);
    CHECK(page.error().code == "upstream_malformed");
    CAPTURE(page.error().detail);
    CHECK(page.error().detail.find(r.detail_mentions) != std::string::npos);
  }
}

TEST_CASE("mws model: last-updated timestamps") {
  using Entry = std::pair<std::string, std::optional<std::string>>;
  using Entries = std::vector<Entry>;
  const std::optional<std::string> null;
  struct Row {
    const char* name;
    std::string xml;
    Entries expected;
  };
  const std::vector<Row> rows = {
      {"populated (Advertising empty)",
       rgtest::mws_fixture("last_updated.xml"),
       {{"Inventory", "2026-11-20T08:00:00Z"},
        {"Selection", "2026-11-19T22:10:05.500Z"},
        {"Pricing", "2026-11-20T07:59:59Z"},
        {"Fulfillment", "2026-11-18T12:00:00Z"},
        {"ListingQuality", null},
        {"GlobalSelling", "2026-11-17T03:04:05Z"},
        {"Advertising", null}}},
      {"real empty result",
       rgtest::mws_fixture("last_updated_empty.xml"),
       {{"Inventory", null},
        {"Selection", null},
        {"Pricing", null},
        {"Fulfillment", null},
        {"ListingQuality", null},
        {"GlobalSelling", null},
        {"Advertising", null}}},
      {"prefixed, a stray ListingQuality timestamp is ignored",
       "<a:GetLastUpdatedTimeForRecommendationsResponse xmlns:a='https://mws.amazonservices.com/Recommendations/2013-04-01/'>"
       "<a:GetLastUpdatedTimeForRecommendationsResult>"
       "<a:PricingRecommendationsLastUpdated> 2020-07-08T06:14:39.723Z </a:PricingRecommendationsLastUpdated>"
       "<a:ListingQualityRecommendationsLastUpdated>2020-01-01T00:00:00Z</a:ListingQualityRecommendationsLastUpdated>"
       "</a:GetLastUpdatedTimeForRecommendationsResult></a:GetLastUpdatedTimeForRecommendationsResponse>",
       {{"Inventory", null},
        {"Selection", null},
        {"Pricing", "2020-07-08T06:14:39.723Z"},
        {"Fulfillment", null},
        {"ListingQuality", null},
        {"GlobalSelling", null},
        {"Advertising", null}}},
  };
  for (const auto& r : rows) {
    CAPTURE(r.name);
    const auto lu = parse_last_updated(r.xml);
    REQUIRE(lu.has_value());
    CHECK(lu->per_category == r.expected);
  }

  for (const std::string& bad : {rgtest::mws_fixture("malformed.xml"), std::string("<GetLastUpdatedTimeForRecommendationsResponse>"),
                                rgtest::mws_fixture("list_recommendations.xml"),
                                std::string("<GetLastUpdatedTimeForRecommendationsResponse/>")}) {
    const auto lu = parse_last_updated(bad);
    REQUIRE_FALSE(lu.has_value());
    CHECK(lu.error().status == 502);
    CHECK(lu.error().code == "upstream_malformed");
  }
}

TEST_CASE("mws model: ErrorResponse") {
  struct Row {
    const char* name;
    std::string xml;
    const char* type;
    const char* code;
    const char* message_prefix;
    const char* request_id;
  };
  const std::vector<Row> rows = {
      {"RequestId, 2009-01-01 namespace", rgtest::mws_fixture("error_request_id.xml"), "Sender", "SignatureDoesNotMatch",
       "The request signature we calculated", "6b1f2a3c-9d8e-4f70-a1b2-c3d4e5f60718"},
      {"RequestID, section namespace", rgtest::mws_fixture("error_request_id_caps.xml"), "Sender", "RequestThrottled",
       "Request is throttled", "a7c3e2f1-5b4d-4c6e-8f9a-0b1c2d3e4f50"},
      {"doc example: prefixed namespace, RequestID",
       "<?xml version=\"1.0\"?><m:ErrorResponse xmlns:m=\"http://mws.amazonservices.com/doc/2009-01-01/\"><m:Error>"
       "<m:Type>Sender</m:Type><m:Code>InvalidClientTokenId</m:Code><m:Message>The AWS Access Key Id you provided "
       "does not exist in our records.</m:Message><m:Detail>com.amazonservices.mws.model.Error$Detail@17b6643</m:Detail>"
       "</m:Error><m:RequestID>b7afc6c3-6f75-4707-bcf4-0475ad23162c</m:RequestID></m:ErrorResponse>",
       "Sender", "InvalidClientTokenId", "The AWS Access Key Id", "b7afc6c3-6f75-4707-bcf4-0475ad23162c"},
      {"no namespace, RequestId inside Error", "<ErrorResponse><Error><Type>Receiver</Type><Code>InternalError</Code>"
       "<Message>We encountered an internal error &amp; will retry</Message><RequestId>in-error</RequestId></Error></ErrorResponse>",
       "Receiver", "InternalError", "We encountered an internal error & will retry", "in-error"},
      {"no request id", "<ErrorResponse><Error><Code>QuotaExceeded</Code></Error></ErrorResponse>", "", "QuotaExceeded", "", ""},
  };
  for (const auto& r : rows) {
    CAPTURE(r.name);
    const auto e = parse_error_response(r.xml);
    REQUIRE(e.has_value());
    CHECK(e->type == r.type);
    CHECK(e->code == r.code);
    CHECK(e->message.rfind(r.message_prefix, 0) == 0);
    CHECK(e->request_id == r.request_id);
  }
  for (const std::string& not_error : {rgtest::mws_fixture("list_recommendations.xml"), rgtest::mws_fixture("malformed.xml"), std::string(""),
                                      std::string("<html>503 Service Unavailable</html>")}) {
    CHECK_FALSE(parse_error_response(not_error).has_value());
  }
}

TEST_CASE("mws model: control characters and invalid UTF-8 in any parameter are a 400 naming it") {
  struct Row {
    const char* name;
    Raw raw;
    const char* parameter;  // "" when the name itself is bad
    const char* mentions;
  };
  const std::vector<Row> rows = {
      {"record separator in a filter (the cache-key collision)",
       {{"marketplace", "ATVPDKIKX0DER"}, {"category", "Selection"}, {"filter", "BrandName=A\x1e" "BrandName=B"}},
       "filter", "U+001E"},
      {"LF in a filter", {{"marketplace", "ATVPDKIKX0DER"}, {"category", "Selection"}, {"filter", "BrandName=A\nB"}},
       "filter", "U+000A"},
      {"DEL in a filter", {{"marketplace", "ATVPDKIKX0DER"}, {"category", "Selection"}, {"filter", "BrandName=A\x7f"}},
       "filter", "U+007F"},
      {"invalid UTF-8 in a filter",
       {{"marketplace", "ATVPDKIKX0DER"}, {"category", "Selection"}, {"filter", "BrandName=\xff"}}, "filter",
       "not valid UTF-8"},
      {"NUL in the marketplace", {{"marketplace", std::string("ATVPDKIKX0DER\0", 14)}}, "marketplace", "U+0000"},
      {"control in a category", {{"marketplace", "ATVPDKIKX0DER"}, {"category", "Pricing\r"}}, "category", "U+000D"},
      {"control in a name", {{"marketplace", "ATVPDKIKX0DER"}, {"fil\x01ter", "x"}}, "", "a query parameter name"},
  };
  for (const auto& r : rows) {
    CAPTURE(r.name);
    const auto q = validate_recommendations_query(r.raw);
    REQUIRE_FALSE(q.has_value());
    CHECK(q.error().status == 400);
    CHECK(q.error().code == "invalid_parameter");
    CHECK(q.error().detail.find(r.mentions) != std::string::npos);
    std::string parameter;
    for (const auto& [k, v] : q.error().extensions)
      if (k == "parameter") parameter = v;
    CHECK(parameter == r.parameter);
  }
  const auto lu = validate_last_updated_query({{"marketplace", "ATVPDKIKX0DER\x1f"}});
  REQUIRE_FALSE(lu.has_value());
  CHECK(lu.error().code == "invalid_parameter");
  // Non-ASCII UTF-8 in a brand name is fine.
  CHECK(validate_recommendations_query(
            {{"marketplace", "ATVPDKIKX0DER"}, {"category", "Selection"}, {"filter", "BrandName=Caf\xc3\xa9"}})
            .has_value());
}

namespace {

std::string list_page_with_member(const std::string& member_inner) {
  return "<ListRecommendationsResponse><ListRecommendationsResult><InventoryRecommendations><member>" + member_inner +
         "</member></InventoryRecommendations></ListRecommendationsResult></ListRecommendationsResponse>";
}

}  // namespace

TEST_CASE("mws model: XML nested beyond the limit is upstream_malformed naming it, even 200,000 levels") {
  auto deep = [](std::size_t levels) {
    std::string s;
    for (std::size_t i = 0; i < levels; ++i) s += "<a>";
    s += "1";
    for (std::size_t i = 0; i < levels; ++i) s += "</a>";
    return s;
  };
  // Response/Result/InventoryRecommendations/member = 4 levels around the member's content.
  CHECK(parse_list_page(list_page_with_member(deep(28)), "Inventory").has_value());
  for (std::size_t levels : {29u, 1000u, 200000u}) {
    CAPTURE(levels);
    const auto page = parse_list_page(list_page_with_member(deep(levels)), "Inventory");
    REQUIRE_FALSE(page.has_value());
    CHECK(page.error().code == "upstream_malformed");
    CHECK(page.error().detail.find("the limit is 32") != std::string::npos);
  }
}

TEST_CASE("mws model: repeated and interleaved siblings group by name in one pass") {
  const auto page = parse_list_page(list_page_with_member("<B>1</B><A>x</A><B>2</B><C/><A>y</A>"), "Inventory");
  REQUIRE(page.has_value());
  REQUIRE(page->members_json.size() == 1);
  CHECK(page->members_json[0] == R"({"B":["1","2"],"A":["x","y"],"C":""})");
  // 60,000 distinct sibling names: the old scan compared every pair (about
  // 1.8e9 comparisons, tens of seconds under ASan); grouping is linear.
  std::string wide;
  for (int i = 0; i < 60000; ++i) wide += "<F" + std::to_string(i) + ">1</F" + std::to_string(i) + ">";
  // CPU time, not wall time: other processes on the machine do not count.
  const std::clock_t t0 = std::clock();
  const auto big = parse_list_page(list_page_with_member(wide), "Inventory");
  const double secs = static_cast<double>(std::clock() - t0) / CLOCKS_PER_SEC;
  REQUIRE(big.has_value());
  CHECK(big->members_json[0].find("\"F59999\":\"1\"") != std::string::npos);
  CHECK(secs < 5.0);
}
