// [mws] end to end: the real recgate against the real recgate-sandbox on
// port 0: every category with exact JSON types, pages merged, filters as
// CategoryQueryList, validation, upstream errors, faults and timeouts.
#include <doctest/doctest.h>
#include <rapidjson/document.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <set>

#include "../support/sandbox_admin.hpp"
#include "harness.hpp"
#include "../support/json_body.hpp"

using namespace rgtest;

namespace {

constexpr const char* kUS = "ATVPDKIKX0DER";

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

// A request deadline for tests that need a short one: 10x the wall time of a
// healthy Inventory fetch (several pages) through a throwaway recgate, so a
// slow machine gets a proportionally longer deadline; at least 700 ms.
int calibrated_timeout_ms(int sandbox_port) {
  TempDir dir;
  Recgate probe(dir, test_config(dir, sandbox_port));
  const auto start = std::chrono::steady_clock::now();
  REQUIRE(http_get(probe.port, recs(std::string("marketplace=") + kUS + "&category=Inventory")).status == 200);
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
  return std::max(700, static_cast<int>(10 * took.count()));
}

}  // namespace

TEST_CASE("mws: every category round-trips with its fields typed as the upstream schema says") {
  Sandbox sb;
  TempDir dir;
  // The sandbox starts GlobalSelling empty (config/sandbox.json); a touch fills it, so its checks run.
  REQUIRE(http_request(sb.port, "POST", "/admin/touch?seller=A1XEXAMPLEDF&marketplace=ATVPDKIKX0DER&category=GlobalSelling")
              .status == 200);
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
  int before_pages = SandboxAdmin(sb.port).mws_requests("ListRecommendationsByNextToken");
  auto r = http_get(rg.port, recs(std::string("marketplace=") + kUS + "&category=Inventory"));
  REQUIRE(r.status == 200);
  auto d = parse(r.body);
  const auto& inv = category_members(d, "Inventory");
  int next_pages = SandboxAdmin(sb.port).mws_requests("ListRecommendationsByNextToken") - before_pages;
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
      {recs(std::string("marketplace=") + kUS + "&filter=QualitySet%3DDefect"), 400, "filter_needs_one_category",
       "add one category=..., one of Selection, Fulfillment, ListingQuality, GlobalSelling, Advertising"},
      {recs(std::string("marketplace=") + kUS + "&category=Inventory&filter=BrandName%3DAcme"), 400, "invalid_filter",
       "filters are accepted only by Selection, Fulfillment, ListingQuality, GlobalSelling, Advertising"},
      {recs(std::string("marketplace=") + kUS + "&category=ListingQuality&filter=QualitySet%3DShiny"), 400,
       "invalid_filter", "Quarantine"},
      {recs("marketplace=A2Q3Y263D00KWC&category=Fulfillment"), 400, "category_not_offered",
       "it offers: Inventory, Selection, Pricing, ListingQuality, GlobalSelling"},
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
    REQUIRE(*c.mentions != '\0');  // an empty needle would match any body
    auto d = parse(r.body);
    CHECK(std::string(d["detail"].GetString()).find(c.mentions) != std::string::npos);
  }
  CHECK(SandboxAdmin(sb.port).mws_requests("ListRecommendations") == 0);  // bad input never reaches upstream
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
  // The deadline must be short (the latency case waits for it) yet never hit
  // by a healthy multi-page answer, whose time varies a lot under ASan on a
  // loaded machine. So it is derived from this machine now: 10x the time of a
  // whole healthy multi-page fetch (>= 3 upstream calls, each shorter), at least 700 ms.
  const int timeout_ms = calibrated_timeout_ms(sb.port);
  INFO("request_timeout_ms " << timeout_ms);
  Recgate rg(dir, test_config(dir, sb.port, "\"upstream\":{\"request_timeout_ms\":" + std::to_string(timeout_ms) + "}",
                              "\"check_interval_s\":3600"));
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
      {"", 504, "upstream_timeout"},  // latency_ms: filled in below, 4x the deadline
  };
  const std::string latency_fault =
      R"({"latency_ms":)" + std::to_string(4 * timeout_ms) + R"(,"count":1,"action":"ListRecommendations"})";
  const char* categories[] = {"Inventory", "Pricing", "Selection", "Advertising"};
  for (std::size_t i = 0; i < 4; ++i) {
    const std::string fault = *cases[i].fault ? std::string(cases[i].fault) : latency_fault;
    CAPTURE(fault);
    REQUIRE(http_request(sb.port, "POST", "/admin/faults", fault, {{"Content-Type", "application/json"}}).status ==
            200);
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

TEST_CASE("mws: mws.max_pages stops following NextToken - the answer is truncated and a warning logged") {
  Sandbox sb;
  TempDir dir;
  Recgate rg(dir, test_config(dir, sb.port, "", "\"max_pages\":1"));
  auto r = http_get(rg.port, recs(std::string("marketplace=") + kUS + "&category=Inventory"));
  REQUIRE_MESSAGE(r.status == 200, r.body);
  auto d = parse(r.body);
  CHECK(category_members(d, "Inventory").Size() == 3);  // one sandbox page; the default (20) gives more (see above)
  CHECK(SandboxAdmin(sb.port).mws_requests("ListRecommendations") == 1);
  CHECK(SandboxAdmin(sb.port).mws_requests("ListRecommendationsByNextToken") == 0);
  CHECK(rg.proc.wait_for_line({"mws.max_pages reached; answer truncated"}, std::chrono::seconds(10)).has_value());
}

TEST_CASE("mws: listing_quality_ttl_s bounds a ListingQuality answer's life - other categories stay hits") {
  Sandbox sb;
  TempDir dir;
  constexpr int kTtl = 5;  // long enough that the immediate second request is a hit even under ASan
  Recgate rg(dir, test_config(dir, sb.port, "", "\"check_interval_s\":3600,\"listing_quality_ttl_s\":" + std::to_string(kTtl)));
  const std::string lq = recs(std::string("marketplace=") + kUS + "&category=ListingQuality");
  const std::string inv = recs(std::string("marketplace=") + kUS + "&category=Inventory");
  const auto sent = std::chrono::steady_clock::now();
  REQUIRE(http_get(rg.port, lq).header("cache-status") == "recgate; fwd=miss; stored");
  REQUIRE(http_get(rg.port, inv).header("cache-status") == "recgate; fwd=miss; stored");
  const int lists = SandboxAdmin(sb.port).mws_requests("ListRecommendations");
  CHECK(http_get(rg.port, lq).header("cache-status") == "recgate; hit");
  // Bounded wait for the expiry: every answer until then is a hit.
  std::string status;
  REQUIRE(wait_until([&] { return (status = http_get(rg.port, lq).header("cache-status")) != "recgate; hit"; },
                     std::chrono::seconds(kTtl + 15)));
  const auto refetched = std::chrono::steady_clock::now();
  CHECK(status == "recgate; fwd=miss; stored");
  CHECK(refetched - sent >= std::chrono::seconds(kTtl));  // not before the TTL
  CHECK(SandboxAdmin(sb.port).mws_requests("ListRecommendations") == lists + 1);
  CHECK(http_get(rg.port, inv).header("cache-status") == "recgate; hit");  // its timestamp has not moved
}

TEST_CASE("mws: a stored answer is served stale when the refetch times out") {
  Sandbox sb;
  TempDir dir;
  const int timeout_ms = calibrated_timeout_ms(sb.port);
  INFO("request_timeout_ms " << timeout_ms);
  Recgate rg(dir, test_config(dir, sb.port, "\"upstream\":{\"request_timeout_ms\":" + std::to_string(timeout_ms) + "}," + kNoRefreshAhead,
                              "\"check_interval_s\":0"));
  const std::string inv = recs(std::string("marketplace=") + kUS + "&category=Inventory");
  auto first = http_get(rg.port, inv);
  REQUIRE(first.status == 200);
  // The category moves upstream, so a refetch is due; the refetch hangs past the deadline.
  REQUIRE(http_request(sb.port, "POST", "/admin/touch?seller=A1XEXAMPLEDF&marketplace=ATVPDKIKX0DER&category=Inventory")
              .status == 200);
  const std::string fault =
      R"({"latency_ms":)" + std::to_string(4 * timeout_ms) + R"(,"count":1,"action":"ListRecommendations"})";
  REQUIRE(http_request(sb.port, "POST", "/admin/faults", fault, {{"Content-Type", "application/json"}}).status == 200);
  auto stale = http_get(rg.port, inv);
  REQUIRE_MESSAGE(stale.status == 200, stale.body);
  CHECK(stale.header("cache-status") == "recgate; hit; fwd=stale");
  CHECK(parse(stale.body)["categories"][0]["cache"].GetString() == std::string("stale"));
  CHECK(category_members(parse(stale.body), "Inventory").Size() == category_members(parse(first.body), "Inventory").Size());
  // Once upstream answers again, the new data replaces it.
  CHECK(http_get(rg.port, inv).header("cache-status") == "recgate; fwd=miss; stored");
}

TEST_CASE("mws: a stored answer is served stale instead of a 429 - without one the 429 stands") {
  Sandbox sb;
  TempDir dir;
  // One token, the next in 100 s: any wait for it exceeds Prefer: wait=1.
  // max_pages 1: a fetch needs exactly one token.
  Recgate rg(dir, test_config(dir, sb.port,
                              "\"throttle\":{\"buckets\":{\"mws.ListRecommendations\":{\"capacity\":1,"
                              "\"restore_per_s\":0.01}}}," + std::string(kNoRefreshAhead),
                              "\"check_interval_s\":0,\"max_pages\":1"));
  const std::string sel = recs(std::string("marketplace=") + kUS + "&category=Selection");
  REQUIRE(http_get(rg.port, sel).header("cache-status") == "recgate; fwd=miss; stored");  // spends the token
  REQUIRE(http_request(sb.port, "POST", "/admin/touch?seller=A1XEXAMPLEDF&marketplace=ATVPDKIKX0DER&category=Selection")
              .status == 200);
  auto stale = http_get(rg.port, sel, {{"Prefer", "wait=1"}});
  REQUIRE_MESSAGE(stale.status == 200, stale.body);
  CHECK(stale.header("cache-status") == "recgate; hit; fwd=stale");
  auto none = http_get(rg.port, recs(std::string("marketplace=") + kUS + "&category=Pricing"), {{"Prefer", "wait=1"}});
  CHECK(none.status == 429);
  CHECK(parse(none.body)["code"].GetString() == std::string("quota_wait_exceeded"));
  CHECK(SandboxAdmin(sb.port).mws_requests("ListRecommendations") == 1);
}

TEST_CASE("mws: Prefer: wait is capped at 3600 s - a longer quota wait is a 429 at once") {
  Sandbox sb;
  TempDir dir;
  // One token, the next in 5000 s: beyond the cap, within what the client asks for.
  // max_pages 1: a fetch needs exactly one token.
  Recgate rg(dir, test_config(dir, sb.port,
                              "\"throttle\":{\"buckets\":{\"mws.ListRecommendations\":{\"capacity\":1,"
                              "\"restore_per_s\":0.0002}}}",
                              "\"max_pages\":1"));
  REQUIRE(http_get(rg.port, recs(std::string("marketplace=") + kUS + "&category=Inventory")).status == 200);
  const auto start = std::chrono::steady_clock::now();
  // Uncapped, this request would wait ~5000 s; the client gives up after 30 s (status 0).
  auto r = http_request(rg.port, "GET", recs(std::string("marketplace=") + kUS + "&category=Pricing"), "",
                        {{"Prefer", "wait=100000"}}, std::chrono::seconds(30));
  CHECK(r.status == 429);
  CHECK(r.body.find("\"code\":\"quota_wait_exceeded\"") != std::string::npos);
  CHECK(std::stoi(r.header("retry-after").empty() ? "0" : r.header("retry-after")) > 3600);
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(10));
  CHECK(SandboxAdmin(sb.port).mws_requests("ListRecommendations") == 1);
}
