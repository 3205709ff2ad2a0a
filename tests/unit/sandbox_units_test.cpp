// Unit tests of the sandbox's pure parts: SigV2 arithmetic against the
// reference vectors, timestamps, the exact token bucket, NextToken sealing,
// the data generator and config parsing.
#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <set>

#include "sandbox/bucket.hpp"
#include "sandbox/config.hpp"
#include "sandbox/data.hpp"
#include "sandbox/next_token.hpp"
#include "sandbox/signature.hpp"

using namespace recgate::sandbox;
using namespace std::chrono_literals;

namespace {

Params split_canonical(std::string_view q) {
  Params p;
  REQUIRE(parse_form(q, p));
  return p;
}

const Item* find_field_owner(const std::vector<Item>& items, std::string_view field) {
  for (const auto& i : items)
    for (const auto& c : i.member.children)
      if (c.name == field) return &i;
  return nullptr;
}

std::string field(const Item& item, std::string_view name) {
  for (const auto& c : item.member.children)
    if (c.name == name) return c.text;
  return {};
}

}  // namespace

TEST_CASE("sandbox sigv2: reference vectors (docs/upstreams.md A.3)") {
  struct Vector {
    const char* verb;
    const char* host;
    const char* path;
    const char* query;
    const char* secret;
    const char* expected;
  };
  const Vector vectors[] = {
      {"GET", "elasticmapreduce.amazonaws.com", "/",
       "AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Action=DescribeJobFlows&SignatureMethod=HmacSHA256&SignatureVersion=2&"
       "Timestamp=2011-10-03T15%3A19%3A30&Version=2009-03-31",
       "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "i91nKc4PWAt0JJIdXwz9HxZCJDdiy6cf/Mj6vPxyYIs="},
      {"POST", "elasticmapreduce.amazonaws.com", "/",
       "AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Action=DescribeJobFlows&SignatureMethod=HmacSHA256&SignatureVersion=2&"
       "Timestamp=2011-10-03T15%3A19%3A30&Version=2009-03-31",
       "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wseguMzBRgA/4/fan8ZwEa0PIF+ws4WFbTJcG1ts5RY="},
      {"GET", "webservices.amazon.com", "/onca/xml",
       "AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&AssociateTag=mytag-20&ItemId=0679722769&Operation=ItemLookup&"
       "ResponseGroup=Images%2CItemAttributes%2COffers%2CReviews&Service=AWSECommerceService&Timestamp=2014-08-18T12%"
       "3A00%3A00Z&Version=2013-08-01",
       "1234567890", "j7bZM0LXZ9eXeZruTqWm2DIvDYVUU3wxPPpp+iXxzQc="},
      {"POST", "mws.amazonservices.com", "/Recommendations/2013-04-01",
       "AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Action=ListRecommendations&CategoryQueryList.CategoryQuery.1."
       "FilterOptions.FilterOption.1=QualitySet%3DDefect&CategoryQueryList.CategoryQuery.1.FilterOptions."
       "FilterOption.2=ListingStatus%3DActive&CategoryQueryList.CategoryQuery.1.RecommendationCategory="
       "ListingQuality&MWSAuthToken=amzn.mws.4ea38b7b-f563-7709-4bae-87aeaEXAMPLE&MarketplaceId=ATVPDKIKX0DER&"
       "RecommendationCategory=ListingQuality&SellerId=A1XEXAMPLEDF&SignatureMethod=HmacSHA256&SignatureVersion=2&"
       "Timestamp=2013-03-04T18%3A12%3A21.687Z&Version=2013-04-01",
       "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "MXVFMYyDoGDPvxiWkrK9NosYk/yqRP0NfYqzP0+wBuM="},
      {"POST", "mws.amazonservices.com", "/Recommendations/2013-04-01",
       "AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Action=GetLastUpdatedTimeForRecommendations&MarketplaceId=ATVPDKIKX0DER&"
       "SellerId=A1XEXAMPLEDF&SignatureMethod=HmacSHA256&SignatureVersion=2&Timestamp=2013-03-04T18%3A12%3A21.687Z&"
       "Version=2013-04-01",
       "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "Ccs5bFVgqvi60DXPdgXxEOjzFTMtJsyvll1cTRJtxbI="},
  };
  for (const auto& v : vectors) {
    const std::string expected = v.expected;
    CAPTURE(expected);
    Params p = split_canonical(v.query);
    // Shuffle the order: canonicalisation must sort.
    std::reverse(p.begin(), p.end());
    CHECK(canonical_query(p) == v.query);
    const std::string sts = string_to_sign(v.verb, v.host, v.path, p);
    CHECK(sign("HmacSHA256", v.secret, sts) == v.expected);
  }
}

TEST_CASE("sandbox sigv2: encoding, form decoding and sort order") {
  CHECK(amz_encode("a b") == "a%20b");
  CHECK(amz_encode("-_.~") == "-_.~");
  CHECK(amz_encode("*+/=:") == "%2A%2B%2F%3D%3A");
  CHECK(amz_encode("é") == "%C3%A9");
  CHECK(amz_encode("☕") == "%E2%98%95");

  std::string out;
  CHECK(form_decode("a+b%2B%3d", out));
  CHECK(out == "a b+=");
  CHECK_FALSE(form_decode("%4", out));
  CHECK_FALSE(form_decode("%zz", out));
  CHECK_FALSE(form_decode("abc%", out));

  // Sorted by name in byte order: "X.1" < "X.10" < "X.2"; "MWSAuthToken" < "MarketplaceId".
  Params p = {{"X.2", "b"}, {"X.10", "c"}, {"X.1", "a"}, {"MarketplaceId", "m"}, {"MWSAuthToken", "t"}};
  CHECK(canonical_query(p) == "MWSAuthToken=t&MarketplaceId=m&X.1=a&X.10=c&X.2=b");
  CHECK(string_to_sign("POST", "LocalHost:9090", "/Recommendations/2013-04-01", {{"A", ""}}) ==
        "POST\nlocalhost:9090\n/Recommendations/2013-04-01\nA=");
  CHECK(sign("HmacMD5", "k", "d").empty());
  CHECK(constant_time_equal("abc", "abc"));
  CHECK_FALSE(constant_time_equal("abc", "abd"));
  CHECK_FALSE(constant_time_equal("abc", "abcd"));
}

TEST_CASE("sandbox timestamps: the ISO 8601 forms MWS clients send") {
  using std::chrono::system_clock;
  system_clock::time_point base;
  REQUIRE(parse_timestamp("2013-03-04T18:12:21Z", base));
  CHECK(format_iso_s(base) == "2013-03-04T18:12:21Z");
  struct Row {
    const char* text;
    bool ok;
    std::chrono::milliseconds delta;
  };
  const Row rows[] = {
      {"2013-03-04T18:12:21.687Z", true, 687ms},       {"2013-03-04T18:12:21.000Z", true, 0ms},
      {"2013-03-04T18:12:21", true, 0ms},              {"2013-03-04T20:12:21+02:00", true, 0ms},
      {"2013-03-04T17:12:21-0100", true, 0ms},         {"2013-03-04T18:12:21.5+00:00", true, 500ms},
      {"2013-03-04 18:12:21Z", false, 0ms},            {"2013-03-04T18:12Z", false, 0ms},
      {"2013-13-04T18:12:21Z", false, 0ms},            {"2013-03-04T18:12:21.Z", false, 0ms},
      {"2013-03-04T18:12:21ZZ", false, 0ms},           {"", false, 0ms},
      {"2013-03-04T18:12:21 00:00", false, 0ms},
  };
  for (const auto& r : rows) {
    const std::string text = r.text;
    CAPTURE(text);
    system_clock::time_point t;
    REQUIRE(parse_timestamp(r.text, t) == r.ok);
    if (r.ok) CHECK(t - base == r.delta);
  }
  system_clock::time_point t;
  REQUIRE(parse_timestamp("2026-11-22T06:00:01.123Z", t));
  CHECK(format_iso_ms(t) == "2026-11-22T06:00:01.123Z");
  CHECK(format_http_date(t) == "Sun, 22 Nov 2026 06:00:01 GMT");
}

TEST_CASE("sandbox bucket: 8 at once, then one every 2 s, exactly") {
  const auto t0 = std::chrono::steady_clock::time_point{} + 1h;
  ExactBucket b(8, 2s, t0);
  CHECK(b.tokens(t0) == 8);
  for (int i = 0; i < 8; ++i) CHECK(b.try_take(t0));
  CHECK(b.tokens(t0) == 0);
  CHECK_FALSE(b.try_take(t0));
  CHECK(b.wait_time(t0) == 2s);
  CHECK_FALSE(b.try_take(t0 + 2s - 1ns));
  CHECK(b.try_take(t0 + 2s));
  CHECK_FALSE(b.try_take(t0 + 2s));
  CHECK(b.try_take(t0 + 4s));
  // A long pause refills to capacity, never beyond.
  const auto later = t0 + 1h;
  CHECK(b.tokens(later) == 8);
  for (int i = 0; i < 8; ++i) CHECK(b.try_take(later));
  CHECK_FALSE(b.try_take(later));
  // In any window of length W at most 8 + W/2s requests pass.
  ExactBucket c(8, 2s, t0);
  int passed = 0;
  for (auto t = t0; t < t0 + 60s; t += 100ms) passed += c.try_take(t) ? 1 : 0;
  CHECK(passed == 8 + 29);
}

TEST_CASE("sandbox bucket: GetServiceStatus 2 per 300 s") {
  const auto t0 = std::chrono::steady_clock::time_point{} + 1h;
  ExactBucket b(2, 300s, t0);
  CHECK(b.try_take(t0));
  CHECK(b.try_take(t0 + 1s));
  CHECK_FALSE(b.try_take(t0 + 299s));
  CHECK(b.try_take(t0 + 300s));
  CHECK_FALSE(b.try_take(t0 + 301s));
}

TEST_CASE("sandbox next token: round trip") {
  ListCursor c;
  c.seller_id = "A1XEXAMPLEDF";
  c.marketplace_id = "ATVPDKIKX0DER";
  c.offset = 6;
  c.categories.push_back(CategoryRequest{"Inventory", 3, 1700000000123, {}});
  c.categories.push_back(CategoryRequest{"Selection", 1, std::nullopt, {{"BrandName", "Acme & Co"}, {"BrandName", "日本ブランド"}}});
  const std::string token = encode_next_token(c);
  std::string raw;
  CHECK(base64_decode(token, raw));
  CHECK(token.find("A1XEXAMPLEDF") == std::string::npos);
  auto d = decode_next_token(token);
  REQUIRE(d);
  CHECK(d->seller_id == c.seller_id);
  CHECK(d->marketplace_id == c.marketplace_id);
  CHECK(d->offset == 6);
  REQUIRE(d->categories.size() == 2);
  CHECK(d->categories[0].generation == 3);
  CHECK(d->categories[0].last_updated_ms == 1700000000123);
  CHECK_FALSE(d->categories[1].last_updated_ms);
  CHECK(d->categories[1].filters == c.categories[1].filters);
  CHECK(encode_next_token(*d) == token);
}

TEST_CASE("sandbox next token: tampered, truncated or foreign tokens are rejected") {
  ListCursor c;
  c.seller_id = "A1XEXAMPLEDF";
  c.marketplace_id = "ATVPDKIKX0DER";
  c.offset = 3;
  c.categories.push_back(CategoryRequest{"Pricing", 1, 1700000000000, {}});
  const std::string token = encode_next_token(c);
  CHECK_FALSE(decode_next_token(""));
  CHECK_FALSE(decode_next_token("not a token"));
  CHECK_FALSE(decode_next_token(token.substr(0, token.size() - 4)));
  CHECK_FALSE(decode_next_token(token + "AAAA"));
  CHECK_FALSE(decode_next_token(base64_encode("{\"v\":1}")));
  int rejected = 0, total = 0;
  for (std::size_t i = 0; i < token.size(); ++i) {
    if (token[i] == '=') continue;
    std::string t = token;
    t[i] = t[i] == 'A' ? 'B' : 'A';
    ++total;
    rejected += decode_next_token(t) ? 0 : 1;
  }
  CHECK(rejected == total);
  // Space instead of '+' (a client that forgot to encode the token) is corrupt too.
  std::string spaced = token;
  for (auto& ch : spaced)
    if (ch == '+') ch = ' ';
  if (spaced != token) CHECK_FALSE(decode_next_token(spaced));
}

TEST_CASE("sandbox data: deterministic, complete, with unicode and markup characters") {
  const MarketplaceInfo* us = find_marketplace("ATVPDKIKX0DER");
  REQUIRE(us);
  const auto t = std::chrono::system_clock::time_point(std::chrono::hours(24 * 365 * 56));
  const std::map<std::string, std::vector<std::string>> fields = {
      {"Inventory",
       {"LastUpdated", "ItemIdentifier", "ItemName", "FulfillmentChannel", "SalesForTheLast14Days",
        "SalesForTheLast30Days", "AvailableQuantity", "DaysUntilStockRunsOut", "InboundQuantity",
        "RecommendedInboundQuantity", "DaysOutOfStockLast30Days", "LostSalesInLast30Days", "RecommendationId",
        "RecommendationReason"}},
      {"Selection",
       {"LastUpdated", "ItemIdentifier", "ItemName", "BrandName", "ProductCategory", "SalesRank", "BuyboxPrice",
        "NumberOfOffers", "AverageCustomerReview", "NumberOfCustomerReviews", "RecommendationId",
        "RecommendationReason"}},
      {"Pricing",
       {"LastUpdated", "ItemIdentifier", "ItemName", "Condition", "SubCondition", "FulfillmentChannel",
        "YourPricePlusShipping", "LowestPricePlusShipping", "PriceDifferenceToLowPrice", "MedianPricePlusShipping",
        "LowestMerchantFulfilledOfferPrice", "LowestAmazonFulfilledOfferPrice", "NumberOfOffers",
        "NumberOfMerchantFulfilledOffers", "NumberOfAmazonFulfilledOffers", "RecommendationId",
        "RecommendationReason"}},
      {"Fulfillment",
       {"LastUpdated", "ItemIdentifier", "ItemName", "BrandName", "ProductCategory", "SalesRank", "BuyboxPrice",
        "NumberOfOffers", "NumberOfOffersFulfilledByAmazon", "AverageCustomerReview", "NumberOfCustomerReviews",
        "ItemDimensions", "RecommendationId", "RecommendationReason"}},
      {"ListingQuality",
       {"QualitySet", "DefectGroup", "DefectAttribute", "ItemIdentifier", "ItemName", "RecommendationId",
        "RecommendationReason"}},
      {"GlobalSelling",
       {"LastUpdated", "ItemIdentifier", "ItemName", "BrandName", "ProductCategory", "SalesRank", "BuyboxPrice",
        "NumberOfOffers", "NumberOfOffersFulfilledByAmazon", "AverageCustomerReview", "NumberOfCustomerReviews",
        "ItemDimensions", "RecommendationId", "RecommendationReason"}},
      {"Advertising",
       {"LastUpdated", "ItemIdentifier", "ItemName", "BrandName", "ProductCategory", "SalesRank",
        "YourPricePlusShipping", "LowestPricePlusShipping", "AvailableQuantity", "SalesForTheLast30Days",
        "RecommendationId", "RecommendationReason"}},
  };
  bool saw_cafe = false, saw_markup = false, saw_no_upc = false;
  for (const auto& [category, expected] : fields) {
    CAPTURE(category);
    const CategorySnapshot snap{category, 1, t};
    const auto a = generate_items("A1XEXAMPLEDF", *us, snap, 8);
    const auto b = generate_items("A1XEXAMPLEDF", *us, snap, 8);
    REQUIRE(a.size() == 8);
    for (std::size_t i = 0; i < a.size(); ++i) {
      std::vector<std::string> names;
      for (const auto& c : a[i].member.children) names.push_back(c.name);
      CHECK(names == expected);
      CHECK(field(a[i], "RecommendationId") == field(b[i], "RecommendationId"));
      CHECK(field(a[i], "RecommendationId").rfind(category + "-" + field(a[i], "RecommendationReason") + "-", 0) == 0);
      const std::string name = field(a[i], "ItemName");
      saw_cafe = saw_cafe || name.find("Café ☕ – Größe 日本") != std::string::npos;
      saw_markup = saw_markup || name.find("& Nuts <Heavy") != std::string::npos;
      for (const auto& c : a[i].member.children)
        if (c.name == "ItemIdentifier") saw_no_upc = saw_no_upc || c.children.size() == 2;
    }
  }
  CHECK(saw_cafe);
  CHECK(saw_markup);
  CHECK(saw_no_upc);

  const auto ful = generate_items("A1XEXAMPLEDF", *us, CategorySnapshot{"Fulfillment", 1, t}, 8);
  const Item* dims = find_field_owner(ful, "ItemDimensions");
  REQUIRE(dims);
  for (const auto& c : dims->member.children) {
    if (c.name != "ItemDimensions") continue;
    REQUIRE(c.children.size() == 4);
    CHECK(c.children[0].name == "Height");
    CHECK(c.children[0].children[0].name == "Value");
    CHECK(c.children[0].children[1].text == "inches");
    CHECK(c.children[3].children[1].text == "pounds");
  }
  const auto de = generate_items("A1XEXAMPLEDF", *find_marketplace("A1PA6795UKMFR9"),
                                 CategorySnapshot{"Selection", 1, t}, 8);
  for (const auto& c : de[0].member.children)
    if (c.name == "BuyboxPrice") CHECK(c.children[0].text == "EUR");

  CHECK(generate_items("A1XEXAMPLEDF", *find_marketplace("A2Q3Y263D00KWC"), CategorySnapshot{"Fulfillment", 1, t}, 8)
            .empty());
  CHECK(generate_items("A1XEXAMPLEDF", *us, CategorySnapshot{"Inventory", 0, std::nullopt}, 8).empty());
}

TEST_CASE("sandbox data: a new generation changes the data") {
  const MarketplaceInfo* us = find_marketplace("ATVPDKIKX0DER");
  const auto t = std::chrono::system_clock::time_point(std::chrono::hours(24 * 365 * 56));
  const auto g1 = generate_items("A1XEXAMPLEDF", *us, CategorySnapshot{"Inventory", 1, t}, 8);
  const auto g2 = generate_items("A1XEXAMPLEDF", *us, CategorySnapshot{"Inventory", 2, t + 1h}, 8);
  CHECK(g1.size() != g2.size());
  std::set<std::string> ids1, ids2;
  for (const auto& i : g1) ids1.insert(field(i, "RecommendationId"));
  for (const auto& i : g2) ids2.insert(field(i, "RecommendationId"));
  CHECK(ids1 != ids2);
  const auto other_seller = generate_items("A2OTHERSELLER", *us, CategorySnapshot{"Inventory", 1, t}, 8);
  CHECK(field(other_seller[0], "RecommendationId") != field(g1[0], "RecommendationId"));
}

TEST_CASE("sandbox data: filters select on brand, product category, quality set, status, commonness") {
  const MarketplaceInfo* us = find_marketplace("ATVPDKIKX0DER");
  const auto t = std::chrono::system_clock::time_point(std::chrono::hours(24 * 365 * 56));
  auto count = [&](const std::string& cat, const Filters& f) {
    int n = 0;
    for (const auto& i : generate_items("A1XEXAMPLEDF", *us, CategorySnapshot{cat, 1, t}, 8))
      n += item_matches(i, f) ? 1 : 0;
    return n;
  };
  CHECK(count("Selection", {}) == 8);
  const int acme = count("Selection", {{"BrandName", "Acme & Co"}});
  const int contoso = count("Selection", {{"BrandName", "Contoso"}});
  CHECK(acme > 0);
  CHECK(acme < 8);
  CHECK(count("Selection", {{"BrandName", "Acme & Co"}, {"BrandName", "Contoso"}}) == acme + contoso);
  CHECK(count("Selection", {{"BrandName", "No Such Brand"}}) == 0);
  const int kitchen = count("Fulfillment", {{"ProductCategory", "Kitchen & Dining"}});
  CHECK(kitchen > 0);
  CHECK(kitchen < 8);
  CHECK(count("Fulfillment", {{"ProductCategory", "Kitchen & Dining"}, {"BrandName", "Acme & Co"}}) <= kitchen);
  const int defect = count("ListingQuality", {{"QualitySet", "Defect"}});
  const int quarantine = count("ListingQuality", {{"QualitySet", "Quarantine"}});
  CHECK(defect > 0);
  CHECK(quarantine > 0);
  CHECK(defect + quarantine == 8);
  const int active = count("ListingQuality", {{"ListingStatus", "Active"}});
  CHECK(active > 0);
  CHECK(active < 8);
  CHECK(count("ListingQuality", {{"QualitySet", "Defect"}, {"ListingStatus", "Active"}}) <= std::min(defect, active));
  const int seller_only = count("Selection", {{"IncludeCommonRecommendations", "false"}});
  CHECK(seller_only > 0);
  CHECK(seller_only < 8);
  CHECK(count("Selection", {{"IncludeCommonRecommendations", "true"}}) == 8);
}

TEST_CASE("sandbox config: defaults, overrides and rejected keys") {
  std::string error;
  auto d = parse_sandbox_config("{}", error);
  REQUIRE(d);
  CHECK(d->sellers.size() == 1);
  CHECK(d->sellers[0].seller_id == "A1XEXAMPLEDF");
  CHECK(d->sellers[0].access_key_id == "AKIASANDBOXEXAMPLE");
  CHECK(d->sellers[0].secret_key == "sandbox-secret-key-not-for-production");
  CHECK(d->sellers[0].auth_token == "amzn.mws.sandbox-token");
  CHECK(d->throttle.list_recommendations.capacity == 8);
  CHECK(d->throttle.list_recommendations.restore_every == 2s);
  CHECK(d->throttle.get_service_status.capacity == 2);
  CHECK(d->throttle.get_service_status.restore_every == 300s);
  CHECK(d->timestamp_tolerance == 900s);

  auto c = parse_sandbox_config(R"({"listen":"127.0.0.1:0","page_size":5,
      "sellers":[{"seller_id":"S1","access_key_id":"K1","secret_key":"x"}],
      "throttle":{"ListRecommendations":{"capacity":3,"restore_every_ms":500}},
      "initially_empty_categories":[]})",
                                error);
  REQUIRE(c);
  CHECK(c->page_size == 5);
  CHECK(c->sellers[0].auth_token.empty());
  CHECK(c->throttle.list_recommendations.capacity == 3);
  CHECK(c->throttle.get_last_updated.capacity == 8);
  CHECK(c->initially_empty_categories.empty());
  CHECK(c->ads_json == "{}");

  auto with_ads = parse_sandbox_config(R"({"_comment":"x","ads":{"clients":[{"id":"a"}]}})", error);
  REQUIRE(with_ads);
  CHECK(with_ads->ads_json == R"({"clients":[{"id":"a"}]})");

  struct Bad {
    const char* json;
    const char* path;
  };
  const Bad bad[] = {
      {R"({"lissten":"x"})", "$.lissten"},
      {R"({"page_size":0})", "$.page_size"},
      {R"({"sellers":[{"seller_id":"S"}]})", "$.sellers[0].access_key_id"},
      {R"({"sellers":[{"seller_id":"S","access_key_id":"K","secret_key":"x","extra":1}]})", "$.sellers[0].extra"},
      {R"({"throttle":{"ListRecommendationsByNextToken":{}}})", "$.throttle.ListRecommendationsByNextToken"},
      {R"({"initially_empty_categories":["ListingQuality"]})", "$.initially_empty_categories"},
      {R"({"page_size":)", "invalid JSON"},
      {R"({"ads":[]})", "$.ads"},
  };
  for (const auto& b : bad) {
    const std::string json = b.json;
    CAPTURE(json);
    CHECK_FALSE(parse_sandbox_config(b.json, error));
    CHECK(error.find(b.path) != std::string::npos);
  }
  auto file = load_sandbox_config(std::string(RECGATE_SOURCE_DIR) + "/config/sandbox.json", error);
  CHECK_MESSAGE(file, error);
}
