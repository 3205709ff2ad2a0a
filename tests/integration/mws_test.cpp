// [mws] end to end: the real recgate against the real recgate-sandbox on
// port 0: every category with exact JSON types, pages merged, filters as
// CategoryQueryList, validation, upstream errors, faults and timeouts.
#include <doctest/doctest.h>
#include <rapidjson/document.h>
#include <signal.h>

#include <set>

#include "harness.hpp"

using namespace rgtest;

namespace {

constexpr const char* kUS = "ATVPDKIKX0DER";

rapidjson::Document parse(const std::string& body) {
  rapidjson::Document d;
  d.Parse(body.c_str());
  REQUIRE_MESSAGE(!d.HasParseError(), body);
  return d;
}

std::string recs(const std::string& query) { return "/v1/mws/main/recommendations?" + query; }

// Finds the member array of one category in a recgate answer.
const rapidjson::Value& category_members(const rapidjson::Document& d, const std::string& category) {
  for (const auto& c : d["categories"].GetArray())
    if (category == c["category"].GetString()) return c["recommendations"];
  FAIL("category missing: " << category);
  static rapidjson::Value none;
  return none;
}

void check_type(const rapidjson::Value& obj, const char* field, rapidjson::Type t) {
  CAPTURE(field);
  REQUIRE(obj.HasMember(field));
  if (t == rapidjson::kNumberType) CHECK(obj[field].IsNumber());
  else CHECK(obj[field].GetType() == t);
}

int sandbox_count(int sandbox_port, const std::string& action) {
  auto s = http_get(sandbox_port, "/admin/stats");
  auto d = parse(s.body);
  const auto& by = d["requests"]["by_action"];
  return by.HasMember(action.c_str()) ? by[action.c_str()].GetInt() : 0;
}

}  // namespace

TEST_CASE("mws: every category round-trips with its fields typed as the upstream schema says") {
  Sandbox sb;
  TempDir dir;
  Recgate rg(dir, test_config(dir, sb.port));
  auto r = http_get(rg.port, recs(std::string("marketplace=") + kUS));
  REQUIRE_MESSAGE(r.status == 200, r.body);
  CHECK(r.header("content-type") == "application/json");
  auto d = parse(r.body);
  CHECK(std::string(d["account"].GetString()) == "main");
  CHECK(std::string(d["marketplaceId"].GetString()) == kUS);
  REQUIRE(d["categories"].Size() == 7);

  const auto& inv = category_members(d, "Inventory");
  REQUIRE(inv.Size() > 3);  // more than one sandbox page (3 per page), merged
  std::set<std::string> ids;
  for (const auto& m : inv.GetArray()) ids.insert(m["RecommendationId"].GetString());
  CHECK(ids.size() == inv.Size());
  const auto& i0 = inv[0];
  for (const char* f : {"AvailableQuantity", "DaysUntilStockRunsOut", "DaysOutOfStockLast30Days", "SalesForTheLast14Days",
                        "SalesForTheLast30Days", "InboundQuantity", "RecommendedInboundQuantity", "LostSalesInLast30Days"})
  {
    check_type(i0, f, rapidjson::kNumberType);
    CHECK(i0[f].IsInt64());
  }
  for (const char* f : {"FulfillmentChannel", "RecommendationId", "RecommendationReason", "LastUpdated", "ItemName"})
    check_type(i0, f, rapidjson::kStringType);
  check_type(i0, "ItemIdentifier", rapidjson::kObjectType);
  for (const char* f : {"Asin", "Sku", "Upc"}) check_type(i0["ItemIdentifier"], f, rapidjson::kStringType);

  const auto& pr = category_members(d, "Pricing")[0];
  for (const char* f : {"NumberOfOffers", "NumberOfMerchantFulfilledOffers", "NumberOfAmazonFulfilledOffers"})
    check_type(pr, f, rapidjson::kNumberType);
  for (const char* f : {"YourPricePlusShipping", "LowestPricePlusShipping", "PriceDifferenceToLowPrice",
                        "MedianPricePlusShipping", "LowestMerchantFulfilledOfferPrice", "LowestAmazonFulfilledOfferPrice"}) {
    check_type(pr, f, rapidjson::kObjectType);
    check_type(pr[f], "Amount", rapidjson::kNumberType);
    check_type(pr[f], "CurrencyCode", rapidjson::kStringType);
  }
  for (const char* f : {"Condition", "SubCondition", "FulfillmentChannel"}) check_type(pr, f, rapidjson::kStringType);

  for (const char* cat : {"Fulfillment", "GlobalSelling", "Selection", "Advertising"}) {
    CAPTURE(cat);
    const auto& list = category_members(d, cat);
    if (std::string(cat) == "GlobalSelling" && list.Empty()) continue;  // sandbox starts it empty
    REQUIRE(list.Size() > 0);
    const auto& m = list[0];
    check_type(m, "BrandName", rapidjson::kStringType);
    check_type(m, "ProductCategory", rapidjson::kStringType);
    check_type(m, "SalesRank", rapidjson::kNumberType);
    if (std::string(cat) == "Fulfillment" || std::string(cat) == "GlobalSelling") {
      check_type(m, "AverageCustomerReview", rapidjson::kNumberType);
      check_type(m, "NumberOfCustomerReviews", rapidjson::kNumberType);
      check_type(m, "BuyboxPrice", rapidjson::kObjectType);
      check_type(m, "ItemDimensions", rapidjson::kObjectType);
      for (const char* dim : {"Height", "Width", "Length", "Weight"}) {
        check_type(m["ItemDimensions"], dim, rapidjson::kObjectType);
        check_type(m["ItemDimensions"][dim], "Value", rapidjson::kNumberType);
        check_type(m["ItemDimensions"][dim], "Unit", rapidjson::kStringType);
      }
    }
    if (std::string(cat) == "Advertising") {
      check_type(m, "AvailableQuantity", rapidjson::kNumberType);
      check_type(m, "YourPricePlusShipping", rapidjson::kObjectType);
    }
  }
  const auto& lq = category_members(d, "ListingQuality");
  REQUIRE(lq.Size() > 0);
  for (const char* f : {"QualitySet", "DefectGroup", "DefectAttribute"}) check_type(lq[0], f, rapidjson::kStringType);
  CHECK_FALSE(lq[0].HasMember("LastUpdated"));

  // Unicode and XML escapes survive the XML -> JSON trip.
  CHECK(r.body.find("Café ☕ – Größe 日本") != std::string::npos);
  CHECK(r.body.find("Bolts & Nuts <Heavy Duty>") != std::string::npos);

  // lastUpdated: per category from the snapshot, null for ListingQuality.
  for (const auto& c : d["categories"].GetArray()) {
    if (std::string(c["category"].GetString()) == "ListingQuality") CHECK(c["lastUpdated"].IsNull());
    if (std::string(c["category"].GetString()) == "Inventory") CHECK(c["lastUpdated"].IsString());
    CHECK(std::string(c["cache"].GetString()) == "miss");
  }
}

TEST_CASE("mws: pages are followed with ListRecommendationsByNextToken and merged") {
  Sandbox sb;
  TempDir dir;
  Recgate rg(dir, test_config(dir, sb.port));
  int before_pages = sandbox_count(sb.port, "ListRecommendationsByNextToken");
  auto r = http_get(rg.port, recs(std::string("marketplace=") + kUS + "&category=Inventory"));
  REQUIRE(r.status == 200);
  auto d = parse(r.body);
  const auto& inv = category_members(d, "Inventory");
  int next_pages = sandbox_count(sb.port, "ListRecommendationsByNextToken") - before_pages;
  CHECK(next_pages >= 1);
  CHECK(static_cast<int>(inv.Size()) > 3 * next_pages);  // 3 per page, last page may be partial
  CHECK(static_cast<int>(inv.Size()) <= 3 * (next_pages + 1));
}

TEST_CASE("mws: a filter arrives upstream as CategoryQueryList and narrows the answer") {
  Sandbox sb;
  TempDir dir;
  Recgate rg(dir, test_config(dir, sb.port));
  auto all = http_get(rg.port, recs(std::string("marketplace=") + kUS + "&category=ListingQuality"));
  REQUIRE(all.status == 200);
  auto r = http_get(rg.port, recs(std::string("marketplace=") + kUS +
                                  "&category=ListingQuality&filter=QualitySet%3DDefect"));
  REQUIRE_MESSAGE(r.status == 200, r.body);
  auto d = parse(r.body);
  auto da = parse(all.body);
  const auto& lq = category_members(d, "ListingQuality");
  CHECK(lq.Size() > 0);
  CHECK(lq.Size() < category_members(da, "ListingQuality").Size());
  for (const auto& m : lq.GetArray()) {
    std::string qs = m["QualitySet"].GetString();
    for (auto& c : qs) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    CHECK(qs == "defect");
  }
  auto stats = http_get(sb.port, "/admin/stats").body;
  CHECK(stats.find("\"CategoryQueryList.CategoryQuery.1.FilterOptions.FilterOption.1\":\"QualitySet=Defect\"") !=
        std::string::npos);
  CHECK(stats.find("\"CategoryQueryList.CategoryQuery.1.RecommendationCategory\":\"ListingQuality\"") !=
        std::string::npos);
}

TEST_CASE("mws: last-updated answers every category, null where upstream gives none") {
  Sandbox sb;
  TempDir dir;
  Recgate rg(dir, test_config(dir, sb.port));
  auto r = http_get(rg.port, std::string("/v1/mws/main/last-updated?marketplace=") + kUS);
  REQUIRE_MESSAGE(r.status == 200, r.body);
  auto d = parse(r.body);
  const auto& lu = d["lastUpdated"];
  for (const char* c : {"Inventory", "Selection", "Pricing", "Fulfillment", "ListingQuality", "GlobalSelling", "Advertising"})
    CHECK_MESSAGE(lu.HasMember(c), c);
  CHECK(lu["ListingQuality"].IsNull());
  CHECK(lu["GlobalSelling"].IsNull());
  CHECK(lu["Inventory"].IsString());
  // Brazil offers no Fulfillment and no Advertising.
  auto br = parse(http_get(rg.port, "/v1/mws/main/last-updated?marketplace=A2Q3Y263D00KWC").body);
  CHECK_FALSE(br["lastUpdated"].HasMember("Fulfillment"));
  CHECK_FALSE(br["lastUpdated"].HasMember("Advertising"));
}

TEST_CASE("mws: bad input is a 400 problem naming what is allowed - unknown account 404") {
  Sandbox sb;
  TempDir dir;
  Recgate rg(dir, test_config(dir, sb.port));
  struct Case {
    std::string target;
    int status;
    const char* code;
    const char* mentions;
  };
  const Case cases[] = {
      {recs("category=Inventory"), 400, "missing_marketplace", "marketplace"},
      {recs("marketplace=NOPE"), 400, "unknown_marketplace", "ATVPDKIKX0DER"},
      {recs(std::string("marketplace=") + kUS + "&category=Stuff"), 400, "invalid_category", "ListingQuality"},
      {recs(std::string("marketplace=") + kUS + "&filter=QualitySet%3DDefect"), 400, "filter_needs_one_category", ""},
      {recs(std::string("marketplace=") + kUS + "&category=Inventory&filter=BrandName%3DAcme"), 400, "invalid_filter",
       ""},
      {recs(std::string("marketplace=") + kUS + "&category=ListingQuality&filter=QualitySet%3DShiny"), 400,
       "invalid_filter", "Quarantine"},
      {recs("marketplace=A2Q3Y263D00KWC&category=Fulfillment"), 400, "category_not_offered", ""},
      {recs(std::string("marketplace=") + kUS + "&colour=red"), 400, "unknown_parameter", "category"},
      {std::string("/v1/mws/nobody/recommendations?marketplace=") + kUS, 404, "unknown_account", "main"},
      {std::string("/v1/mws/nobody/last-updated?marketplace=") + kUS, 404, "unknown_account", "main"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.target);
    auto r = http_get(rg.port, c.target);
    CHECK(r.status == c.status);
    CHECK(r.header("content-type") == "application/problem+json");
    CHECK(r.body.find(std::string("\"code\":\"") + c.code + "\"") != std::string::npos);
    CHECK(r.body.find(c.mentions) != std::string::npos);
  }
  CHECK(sandbox_count(sb.port, "ListRecommendations") == 0);  // bad input never reaches upstream
}

TEST_CASE("mws: a wrong secret gives 502 with upstreamCode SignatureDoesNotMatch, and no secret in output") {
  Sandbox sb;
  TempDir dir;
  std::string cfg = test_config(dir, sb.port);
  const std::string good = "sandbox-secret-key-not-for-production";
  cfg.replace(cfg.find(good), good.size(), "wrong-secret-value-4711");
  Recgate rg(dir, cfg);
  auto r = http_get(rg.port, recs(std::string("marketplace=") + kUS + "&category=Inventory"));
  CHECK(r.status == 502);
  CHECK(r.body.find("\"upstreamCode\":\"SignatureDoesNotMatch\"") != std::string::npos);
  CHECK(r.body.find("\"code\":\"upstream_error\"") != std::string::npos);
  CHECK(r.body.find("wrong-secret-value-4711") == std::string::npos);
  CHECK(rg.proc.output().find("wrong-secret-value-4711") == std::string::npos);
  CHECK(http_get(rg.port, "/readyz").status == 200);
}

TEST_CASE("mws: upstream 500, malformed XML, dropped connection and latency each give their status - recgate stays ready") {
  Sandbox sb;
  TempDir dir;
  Recgate rg(dir, test_config(dir, sb.port, "\"upstream\":{\"request_timeout_ms\":700}", "\"check_interval_s\":3600"));
  // Warm the snapshot so the faults hit ListRecommendations.
  REQUIRE(http_get(rg.port, std::string("/v1/mws/main/last-updated?marketplace=") + kUS).status == 200);
  struct Case {
    const char* fault;
    int status;
    const char* code;
  };
  const Case cases[] = {
      {R"({"status":500,"count":1,"action":"ListRecommendations"})", 502, "upstream_error"},
      {R"({"malformed":true,"count":1,"action":"ListRecommendations"})", 502, "upstream_malformed"},
      {R"({"drop":true,"count":1,"action":"ListRecommendations"})", 502, "upstream_unavailable"},
      {R"({"latency_ms":3000,"count":1,"action":"ListRecommendations"})", 504, "upstream_timeout"},
  };
  const char* categories[] = {"Inventory", "Pricing", "Selection", "Advertising"};
  for (std::size_t i = 0; i < 4; ++i) {
    CAPTURE(cases[i].fault);
    REQUIRE(http_request(sb.port, "POST", "/admin/faults", cases[i].fault, {{"Content-Type", "application/json"}})
                .status == 200);
    auto r = http_get(rg.port, recs(std::string("marketplace=") + kUS + "&category=" + categories[i]));
    CHECK(r.status == cases[i].status);
    CHECK(r.body.find(std::string("\"code\":\"") + cases[i].code + "\"") != std::string::npos);
    CHECK(http_get(rg.port, "/readyz").status == 200);
  }
  // After the faults are used up the same request succeeds.
  auto ok = http_get(rg.port, recs(std::string("marketplace=") + kUS + "&category=Inventory"));
  CHECK(ok.status == 200);
  rg.proc.signal(SIGTERM);
  CHECK(rg.proc.wait_exit() == 0);
}
