// Tests of the sandbox's MWS endpoint through handle_mws (no sockets):
// verification in Amazon's order, throttling, paging, filters, timestamps,
// faults, and well-formed XML for every action; plus the admin functions.
#include <doctest/doctest.h>

#include <pugixml.hpp>
#include <rapidjson/document.h>

#include <set>
#include <string>

#include "core/mws/sigv2.hpp"
#include "sandbox/admin.hpp"
#include "sandbox/catalog.hpp"
#include "sandbox/mws_service.hpp"

using namespace recgate::sandbox;
using namespace std::chrono_literals;

namespace {

constexpr const char* kUs = "ATVPDKIKX0DER";
constexpr const char* kPath = "/Recommendations/2013-04-01";

Now fixed_now() {
  std::chrono::system_clock::time_point wall;
  REQUIRE(parse_timestamp("2026-11-22T06:00:00Z", wall));
  return Now{wall, std::chrono::steady_clock::time_point{} + 10h};
}

SandboxConfig test_config() {
  SandboxConfig cfg;
  SellerCredentials other;
  other.seller_id = "A2OTHERSELLER";
  other.access_key_id = "AKIAOTHER";
  other.secret_key = "other-secret";
  other.auth_token.clear();
  cfg.sellers.push_back(other);
  return cfg;
}

struct Req {
  std::string action;
  Params op;
  std::string host = "127.0.0.1:9090";
  const SellerCredentials* creds = nullptr;
  std::string timestamp = "2026-11-22T06:00:00.000Z";
  std::string method = "HmacSHA256";
  bool in_query = false;
};

// Signs like a correct client, with the sandbox's own arithmetic (checked
// against the reference vectors in sandbox_units_test.cpp).
HttpInput build(const SandboxConfig& cfg, const Req& r, const std::vector<std::string>& drop = {},
                const Params& override_after_signing = {}) {
  const SellerCredentials& c = r.creds ? *r.creds : cfg.sellers.front();
  Params p = {{"AWSAccessKeyId", c.access_key_id},
              {"Action", r.action},
              {"SellerId", c.seller_id},
              {"SignatureMethod", r.method},
              {"SignatureVersion", "2"},
              {"Timestamp", r.timestamp},
              {"Version", "2013-04-01"}};
  if (!c.auth_token.empty()) p.emplace_back("MWSAuthToken", c.auth_token);
  p.insert(p.end(), r.op.begin(), r.op.end());
  for (const auto& d : drop) std::erase_if(p, [&](const auto& kv) { return kv.first == d; });
  p.emplace_back("Signature", sign(r.method, c.secret_key, string_to_sign("POST", r.host, kPath, p)));
  for (const auto& d : drop) std::erase_if(p, [&](const auto& kv) { return kv.first == d; });
  for (const auto& [k, v] : override_after_signing) {
    bool replaced = false;
    for (auto& kv : p)
      if (kv.first == k) {
        kv.second = v;
        replaced = true;
      }
    if (!replaced) p.emplace_back(k, v);
  }
  std::string form;
  for (const auto& [k, v] : p) {
    if (!form.empty()) form += '&';
    form += amz_encode(k) + "=" + amz_encode(v);
  }
  HttpInput in;
  in.host = r.host;
  if (r.in_query) {
    in.target = std::string(kPath) + "?" + form;
  } else {
    in.target = kPath;
    in.content_type = "application/x-www-form-urlencoded; charset=utf-8";
    in.body = form;
  }
  return in;
}

struct Parsed {
  pugi::xml_document doc;
  pugi::xml_node root;
};

void parse_xml(const std::string& body, Parsed& out) {
  auto res = out.doc.load_buffer(body.data(), body.size());
  REQUIRE_MESSAGE(res, body);
  out.root = out.doc.document_element();
}

void check_error(const MwsOutcome& o, int status, const std::string& code) {
  CHECK(o.status == status);
  CHECK(o.error_code == code);
  Parsed p;
  parse_xml(o.body, p);
  CHECK(std::string(p.root.name()) == "ErrorResponse");
  CHECK(std::string(p.root.attribute("xmlns").value()) == "http://mws.amazonservices.com/doc/2009-01-01/");
  CHECK(std::string(p.root.child("Error").child_value("Code")) == code);
  CHECK(!std::string(p.root.child("Error").child_value("Type")).empty());
  CHECK(!std::string(p.root.child("Error").child_value("Message")).empty());
  CHECK(std::string(p.root.child_value("RequestID")) == o.request_id);
}

std::string header(const MwsOutcome& o, std::string_view name) {
  for (const auto& [k, v] : o.headers)
    if (k == name) return v;
  return {};
}

struct Page {
  std::map<std::string, std::vector<std::string>> ids;  // category -> RecommendationIds on the page
  std::vector<std::string> present;                     // list elements present
  std::string next_token;
};

Page read_page(const MwsOutcome& o, const std::string& action) {
  REQUIRE_MESSAGE(o.status == 200, o.body);
  Parsed p;
  parse_xml(o.body, p);
  CHECK(std::string(p.root.name()) == action + "Response");
  CHECK(std::string(p.root.attribute("xmlns").value()) == kMwsNamespace);
  CHECK(std::string(p.root.child("ResponseMetadata").child_value("RequestId")) == o.request_id);
  Page page;
  pugi::xml_node result = p.root.child((action + "Result").c_str());
  REQUIRE(result);
  for (pugi::xml_node list : result.children()) {
    std::string name = list.name();
    if (name == "NextToken") {
      page.next_token = list.child_value();
      continue;
    }
    REQUIRE(name.size() > 15);
    const std::string cat = name.substr(0, name.size() - std::string("Recommendations").size());
    page.present.push_back(cat);
    page.ids[cat];
    for (pugi::xml_node m : list.children()) {
      CHECK(std::string(m.name()) == "member");
      page.ids[cat].push_back(m.child_value("RecommendationId"));
    }
  }
  return page;
}

// Follows NextToken to the end; returns all RecommendationIds per category.
std::map<std::string, std::vector<std::string>> list_all(SandboxState& st, Params op, Now& now, int* pages = nullptr) {
  std::map<std::string, std::vector<std::string>> all;
  Page page = read_page(handle_mws(st, build(st.config(), Req{"ListRecommendations", op}), now), "ListRecommendations");
  int n = 1;
  for (;;) {
    for (auto& [c, ids] : page.ids) all[c].insert(all[c].end(), ids.begin(), ids.end());
    if (page.next_token.empty()) break;
    now.mono += 2s;
    page = read_page(handle_mws(st, build(st.config(), Req{"ListRecommendationsByNextToken", {{"NextToken", page.next_token}}}), now),
                     "ListRecommendationsByNextToken");
    ++n;
    REQUIRE(n < 100);
  }
  if (pages) *pages = n;
  return all;
}

rapidjson::Document stats(const SandboxState& st, Now now) {
  rapidjson::Document d;
  d.Parse(admin_stats(st, now.mono).body.c_str());
  REQUIRE(d.IsObject());
  return d;
}

}  // namespace

TEST_CASE("sandbox verify: correctly signed requests are accepted, in the body or the query") {
  SandboxState st(test_config(), fixed_now());
  Now now = fixed_now();
  const auto& cfg = st.config();
  for (bool in_query : {false, true}) {
    for (std::string method : {"HmacSHA256", "HmacSHA1"}) {
      CAPTURE(in_query);
      CAPTURE(method);
      Req r{"GetLastUpdatedTimeForRecommendations", {{"MarketplaceId", kUs}}};
      r.in_query = in_query;
      r.method = method;
      const MwsOutcome o = handle_mws(st, build(cfg, r), now);
      CHECK_MESSAGE(o.status == 200, o.body);
      CHECK(header(o, "Content-Type") == "text/xml");
      CHECK(header(o, "x-mws-request-id") == o.request_id);
      CHECK(header(o, "x-mws-timestamp") == "2026-11-22T06:00:00.000Z");
      CHECK(o.request_id.size() == 36);
      now.mono += 2s;
    }
  }
  // Timestamps in the other forms clients send, within the window.
  for (std::string ts : {"2026-11-22T05:46:00Z", "2026-11-22T06:14:00.123456Z", "2026-11-22T07:10:00+01:00",
                         "2026-11-22T05:58:00"}) {
    CAPTURE(ts);
    Req r{"GetLastUpdatedTimeForRecommendations", {{"MarketplaceId", kUs}}};
    r.timestamp = ts;
    CHECK(handle_mws(st, build(cfg, r), now).status == 200);
    now.mono += 2s;
  }
  // A seller configured without MWSAuthToken.
  Req r{"GetLastUpdatedTimeForRecommendations", {{"MarketplaceId", kUs}}};
  r.creds = &cfg.sellers[1];
  CHECK(handle_mws(st, build(cfg, r), now).status == 200);
}

TEST_CASE("sandbox verify: recgate's own signer is accepted") {
  SandboxState st(test_config(), fixed_now());
  const Now now = fixed_now();
  const auto& s = st.config().sellers.front();
  recgate::mws::Credentials creds{s.seller_id, s.access_key_id, s.secret_key, s.auth_token};
  HttpInput in;
  in.host = "127.0.0.1:43117";
  in.target = kPath;
  in.content_type = "application/x-www-form-urlencoded; charset=utf-8";
  in.body = recgate::mws::signed_form_body(
      creds, "ListRecommendations",
      {{"MarketplaceId", kUs},
       {"RecommendationCategory", "Selection"},
       {"CategoryQueryList.CategoryQuery.1.RecommendationCategory", "Selection"},
       {"CategoryQueryList.CategoryQuery.1.FilterOptions.FilterOption.1", "BrandName=Acme & Co"},
       {"CategoryQueryList.CategoryQuery.1.FilterOptions.FilterOption.2", "ProductCategory=Kitchen & Dining"}},
      in.host, kPath, now.wall);
  const MwsOutcome o = handle_mws(st, in, now);
  CHECK_MESSAGE(o.status == 200, o.body);
}

TEST_CASE("sandbox verify: each failure gives Amazon's code and status, in Amazon's order") {
  SandboxState st(test_config(), fixed_now());
  Now now = fixed_now();
  const auto& cfg = st.config();
  const Params list = {{"MarketplaceId", kUs}};
  struct Case {
    const char* name;
    HttpInput in;
    int status;
    const char* code;
  };
  Req base{"ListRecommendations", list};
  auto with = [&](auto f) {
    Req r = base;
    f(r);
    return r;
  };
  SellerCredentials wrong_secret = cfg.sellers.front();
  wrong_secret.secret_key = "not-the-secret";
  SellerCredentials wrong_key = cfg.sellers.front();
  wrong_key.access_key_id = "AKIAUNKNOWN";
  SellerCredentials wrong_seller = cfg.sellers.front();
  wrong_seller.seller_id = "A2OTHERSELLER";
  SellerCredentials no_token = cfg.sellers.front();
  no_token.auth_token.clear();
  SellerCredentials bad_token = cfg.sellers.front();
  bad_token.auth_token = "amzn.mws.other";
  SellerCredentials unwanted_token = cfg.sellers[1];
  unwanted_token.auth_token = "amzn.mws.sandbox-token";

  std::vector<Case> cases = {
      {"no AWSAccessKeyId", build(cfg, base, {"AWSAccessKeyId"}), 400, "MissingParameter"},
      {"no Action", build(cfg, base, {"Action"}), 400, "MissingParameter"},
      {"no SellerId", build(cfg, base, {"SellerId"}), 400, "MissingParameter"},
      {"no SignatureMethod", build(cfg, base, {"SignatureMethod"}), 400, "MissingParameter"},
      {"no SignatureVersion", build(cfg, base, {"SignatureVersion"}), 400, "MissingParameter"},
      {"no Timestamp", build(cfg, base, {"Timestamp"}), 400, "MissingParameter"},
      {"no Version", build(cfg, base, {"Version"}), 400, "MissingParameter"},
      {"no Signature", build(cfg, base, {"Signature"}), 400, "MissingParameter"},
      {"HmacMD5", build(cfg, with([](Req& r) { r.method = "HmacMD5"; })), 400, "InvalidParameterValue"},
      {"SignatureVersion 1", build(cfg, base, {}, {{"SignatureVersion", "1"}}), 400, "InvalidParameterValue"},
      {"Version 2011", build(cfg, base, {}, {{"Version", "2011-01-01"}}), 400, "InvalidParameterValue"},
      {"unknown key, also bad signature", build(cfg, with([&](Req& r) { r.creds = &wrong_key; }), {}, {{"Signature", "x"}}),
       403, "InvalidAccessKeyId"},
      {"wrong secret", build(cfg, with([&](Req& r) { r.creds = &wrong_secret; })), 403, "SignatureDoesNotMatch"},
      {"parameter changed after signing", build(cfg, base, {}, {{"MarketplaceId", "A1PA6795UKMFR9"}}), 403,
       "SignatureDoesNotMatch"},
      {"signed without the port, sent with it", [&] {
         HttpInput in = build(cfg, with([](Req& r) { r.host = "127.0.0.1"; }));
         in.host = "127.0.0.1:9090";
         return in;
       }(), 403, "SignatureDoesNotMatch"},
      {"expired and bad signature", build(cfg, with([](Req& r) { r.timestamp = "2026-11-22T05:00:00Z"; }), {}, {{"Signature", "x"}}),
       403, "SignatureDoesNotMatch"},
      {"16 minutes old", build(cfg, with([](Req& r) { r.timestamp = "2026-11-22T05:44:00Z"; })), 400,
       "InvalidParameterValue"},
      {"16 minutes ahead", build(cfg, with([](Req& r) { r.timestamp = "2026-11-22T06:16:00Z"; })), 400,
       "InvalidParameterValue"},
      {"malformed timestamp", build(cfg, with([](Req& r) { r.timestamp = "22/11/2026 06:00"; })), 400,
       "InvalidParameterValue"},
      {"another seller's id", build(cfg, with([&](Req& r) { r.creds = &wrong_seller; })), 401, "AccessDenied"},
      {"MWSAuthToken missing", build(cfg, with([&](Req& r) { r.creds = &no_token; })), 401, "AccessDenied"},
      {"MWSAuthToken wrong", build(cfg, with([&](Req& r) { r.creds = &bad_token; })), 401, "AccessDenied"},
      {"MWSAuthToken not expected", build(cfg, with([&](Req& r) { r.creds = &unwanted_token; })), 401,
       "AccessDenied"},
      {"unknown action", build(cfg, with([](Req& r) { r.action = "ListOrders"; })), 400, "InvalidAction"},
      {"no MarketplaceId", build(cfg, with([](Req& r) { r.op.clear(); })), 400, "MissingParameter"},
      {"unknown MarketplaceId", build(cfg, with([](Req& r) { r.op = {{"MarketplaceId", "AAHKV2X7AFYLW"}}; })), 400,
       "InvalidParameterValue"},
      {"unknown category",
       build(cfg, with([](Req& r) { r.op.push_back({"RecommendationCategory", "Listing Quality"}); })), 400,
       "InvalidParameterValue"},
      {"Fulfillment in Brazil",
       build(cfg, with([](Req& r) {
               r.op = {{"MarketplaceId", std::string(kBrazil)}, {"RecommendationCategory", "Fulfillment"}};
             })),
       400, "InvalidParameterValue"},
      {"CategoryQuery for Inventory",
       build(cfg, with([](Req& r) {
               r.op.push_back({"CategoryQueryList.CategoryQuery.1.RecommendationCategory", "Inventory"});
               r.op.push_back({"CategoryQueryList.CategoryQuery.1.FilterOptions.FilterOption.1", "BrandName=X"});
             })),
       400, "InvalidParameterValue"},
      {"QualitySet on Selection",
       build(cfg, with([](Req& r) {
               r.op.push_back({"CategoryQueryList.CategoryQuery.1.RecommendationCategory", "Selection"});
               r.op.push_back({"CategoryQueryList.CategoryQuery.1.FilterOptions.FilterOption.1", "QualitySet=Defect"});
             })),
       400, "InvalidParameterValue"},
      {"QualitySet lower case",
       build(cfg, with([](Req& r) {
               r.op.push_back({"CategoryQueryList.CategoryQuery.1.RecommendationCategory", "ListingQuality"});
               r.op.push_back({"CategoryQueryList.CategoryQuery.1.FilterOptions.FilterOption.1", "QualitySet=defect"});
             })),
       400, "InvalidParameterValue"},
      {"IncludeCommonRecommendations on Advertising",
       build(cfg, with([](Req& r) {
               r.op.push_back({"CategoryQueryList.CategoryQuery.1.RecommendationCategory", "Advertising"});
               r.op.push_back({"CategoryQueryList.CategoryQuery.1.FilterOptions.FilterOption.1",
                               "IncludeCommonRecommendations=true"});
             })),
       400, "InvalidParameterValue"},
      {"FilterOption without '='",
       build(cfg, with([](Req& r) {
               r.op.push_back({"CategoryQueryList.CategoryQuery.1.RecommendationCategory", "Selection"});
               r.op.push_back({"CategoryQueryList.CategoryQuery.1.FilterOptions.FilterOption.1", "BrandName"});
             })),
       400, "InvalidParameterValue"},
      {"CategoryQuery without filters",
       build(cfg, with([](Req& r) {
               r.op.push_back({"CategoryQueryList.CategoryQuery.1.RecommendationCategory", "Selection"});
             })),
       400, "MissingParameter"},
      {"FilterOption.0",
       build(cfg, with([](Req& r) {
               r.op.push_back({"CategoryQueryList.CategoryQuery.1.RecommendationCategory", "Selection"});
               r.op.push_back({"CategoryQueryList.CategoryQuery.1.FilterOptions.FilterOption.0", "BrandName=X"});
             })),
       400, "InvalidParameterValue"},
      {"wrong list member name (FilterOptions.member.1)",
       build(cfg, with([](Req& r) {
               r.op.push_back({"CategoryQueryList.CategoryQuery.1.RecommendationCategory", "Selection"});
               r.op.push_back({"CategoryQueryList.CategoryQuery.1.FilterOptions.member.1", "BrandName=X"});
             })),
       400, "InvalidParameterValue"},
      {"unknown parameter", build(cfg, with([](Req& r) { r.op.push_back({"MaxResults", "10"}); })), 400,
       "InvalidParameterValue"},
      {"MarketplaceId on ByNextToken",
       build(cfg, with([](Req& r) {
               r.action = "ListRecommendationsByNextToken";
               r.op.push_back({"NextToken", "abc"});
             })),
       400, "InvalidParameterValue"},
      {"no NextToken", build(cfg, with([](Req& r) {
                               r.action = "ListRecommendationsByNextToken";
                               r.op.clear();
                             })),
       400, "MissingParameter"},
      {"garbage NextToken", build(cfg, with([](Req& r) {
                                    r.action = "ListRecommendationsByNextToken";
                                    r.op = {{"NextToken", "bm90IGEgdG9rZW4="}};
                                  })),
       400, "NextTokenCorrupted"},
  };
  {
    HttpInput dup = build(cfg, base);
    dup.body += "&MarketplaceId=" + std::string(kUs);
    cases.push_back({"duplicate parameter", dup, 400, "InvalidParameterValue"});
    HttpInput bad_escape = build(cfg, base);
    bad_escape.body += "&X=%G1";
    cases.push_back({"malformed escape", bad_escape, 400, "InvalidParameterValue"});
    HttpInput plain = build(cfg, base);
    plain.content_type = "text/plain";
    cases.push_back({"body not form-encoded", plain, 400, "MissingParameter"});
    HttpInput raw_plus = build(cfg, base);
    // A client that does not encode the signature: '+' is read as a space.
    Params p;
    REQUIRE(parse_form(raw_plus.body, p));
    std::string sig;
    for (const auto& [k, v] : p)
      if (k == "Signature") sig = v;
    if (sig.find('+') != std::string::npos) {
      raw_plus.body = raw_plus.body.substr(0, raw_plus.body.find("&Signature=")) + "&Signature=" + sig;
      cases.push_back({"unencoded '+' in Signature", raw_plus, 403, "SignatureDoesNotMatch"});
    }
  }
  for (const auto& c : cases) {
    const std::string name = c.name;
    CAPTURE(name);
    now.mono += 2s;
    const MwsOutcome o = handle_mws(st, c.in, now);
    check_error(o, c.status, c.code);
  }
  const auto s = stats(st, now);
  CHECK(s["signature_failures"].GetUint64() >= 4);
  CHECK(s["last_signature_failure"]["expected_string_to_sign"].IsString());
}

TEST_CASE("sandbox verify: the Host is signed exactly as sent, port included, case-insensitively") {
  SandboxState st(test_config(), fixed_now());
  Now now = fixed_now();
  for (std::string host : {"127.0.0.1:43117", "LocalHost:8443", "mws.amazonservices.com", "[::1]:9090"}) {
    CAPTURE(host);
    Req r{"GetServiceStatus", {}};
    r.host = host;
    HttpInput in = build(st.config(), r);
    CHECK(handle_mws(st, in, now).status == 200);
    now.mono += 300s;
    in.host = host + "0";
    check_error(handle_mws(st, in, now), 403, "SignatureDoesNotMatch");
  }
  // Path other than the one signed.
  HttpInput in = build(st.config(), Req{"GetServiceStatus", {}});
  in.target = "/Recommendations/2013-04-01/";
  check_error(handle_mws(st, in, now), 403, "SignatureDoesNotMatch");
}

TEST_CASE("sandbox throttle: 8 per seller and group, one back every 2 s, throttles counted") {
  SandboxState st(test_config(), fixed_now());
  Now now = fixed_now();
  const auto& cfg = st.config();
  const Req list{"ListRecommendations", {{"MarketplaceId", kUs}, {"RecommendationCategory", "Inventory"}}};
  std::string token;
  for (int i = 0; i < 8; ++i) {
    const MwsOutcome o = handle_mws(st, build(cfg, list), now);
    REQUIRE(o.status == 200);
    token = read_page(o, "ListRecommendations").next_token;
  }
  REQUIRE_FALSE(token.empty());
  // ByNextToken shares the bucket.
  MwsOutcome t = handle_mws(st, build(cfg, Req{"ListRecommendationsByNextToken", {{"NextToken", token}}}), now);
  check_error(t, 503, "RequestThrottled");
  Parsed p;
  parse_xml(t.body, p);
  CHECK(std::string(p.root.child("Error").child_value("Type")) == "Sender");
  CHECK(std::string(p.root.child("Error").child_value("Message")) == "Request is throttled");
  check_error(handle_mws(st, build(cfg, list), now), 503, "RequestThrottled");
  // Another group and another seller have their own buckets.
  CHECK(handle_mws(st, build(cfg, Req{"GetLastUpdatedTimeForRecommendations", {{"MarketplaceId", kUs}}}), now).status ==
        200);
  Req other = list;
  other.creds = &cfg.sellers[1];
  CHECK(handle_mws(st, build(cfg, other), now).status == 200);
  // Requests that fail authentication take no token and are not counted as throttled.
  check_error(handle_mws(st, build(cfg, list, {}, {{"Signature", "bad"}}), now), 403, "SignatureDoesNotMatch");

  now.mono += 2s - 1ms;
  check_error(handle_mws(st, build(cfg, list), now), 503, "RequestThrottled");
  now.mono += 1ms;
  CHECK(handle_mws(st, build(cfg, Req{"ListRecommendationsByNextToken", {{"NextToken", token}}}), now).status == 200);
  check_error(handle_mws(st, build(cfg, list), now), 503, "RequestThrottled");

  const auto s = stats(st, now);
  CHECK(s["throttled"]["total"].GetUint64() == 4);
  CHECK(s["throttled"]["by_seller"]["A1XEXAMPLEDF"]["ListRecommendations"].GetUint64() == 4);
  CHECK(s["requests"]["by_action"]["ListRecommendations"].GetUint64() == 13);
  CHECK(s["errors"]["RequestThrottled"].GetUint64() == 4);
  bool found = false;
  for (const auto& b : s["buckets"].GetArray()) {
    if (std::string(b["seller"].GetString()) == "A1XEXAMPLEDF" &&
        std::string(b["operation"].GetString()) == "ListRecommendations") {
      found = true;
      CHECK(b["min_tokens"].GetInt64() == 0);
      CHECK(b["accepted"].GetUint64() == 9);
      CHECK(b["throttled"].GetUint64() == 4);
    }
  }
  CHECK(found);

  // GetServiceStatus: 2, then one per 5 minutes.
  const Req status{"GetServiceStatus", {}};
  CHECK(handle_mws(st, build(cfg, status), now).status == 200);
  CHECK(handle_mws(st, build(cfg, status), now).status == 200);
  check_error(handle_mws(st, build(cfg, status), now), 503, "RequestThrottled");
  now.mono += 300s;
  CHECK(handle_mws(st, build(cfg, status), now).status == 200);
}

TEST_CASE("sandbox list: pages of page_size with opaque tokens cover every member once") {
  SandboxState st(test_config(), fixed_now());
  Now now = fixed_now();
  int pages = 0;
  auto inv = list_all(st, {{"MarketplaceId", kUs}, {"RecommendationCategory", "Inventory"}}, now, &pages);
  REQUIRE(inv.size() == 1);
  CHECK(inv["Inventory"].size() == 8);
  CHECK(pages == 3);
  CHECK(std::set<std::string>(inv["Inventory"].begin(), inv["Inventory"].end()).size() == 8);
  // Same request, same data.
  now.mono += 60s;
  CHECK(list_all(st, {{"MarketplaceId", kUs}, {"RecommendationCategory", "Inventory"}}, now) == inv);

  // No category: every category the marketplace offers, in result order.
  now.mono += 60s;
  auto all = list_all(st, {{"MarketplaceId", kUs}}, now, &pages);
  std::vector<std::string> cats;
  for (const auto& [c, ids] : all) cats.push_back(c);
  CHECK(all.size() == 7);
  CHECK(all["GlobalSelling"].empty());
  CHECK(all["Inventory"] == inv["Inventory"]);
  CHECK(pages == (6 * 8 + 2) / 3);

  now.mono += 60s;
  auto br = list_all(st, {{"MarketplaceId", std::string(kBrazil)}}, now);
  CHECK(br.count("Fulfillment") == 0);
  CHECK(br.count("Advertising") == 0);
  CHECK(br["Inventory"].size() == 8);
}

TEST_CASE("sandbox list: first page lists empty categories, later pages only what they hold") {
  SandboxState st(test_config(), fixed_now());
  const Now now = fixed_now();
  const Page first = read_page(handle_mws(st, build(st.config(), Req{"ListRecommendations", {{"MarketplaceId", kUs}}}), now),
                               "ListRecommendations");
  CHECK(first.present == std::vector<std::string>{"Inventory", "GlobalSelling"});
  CHECK(first.ids.at("Inventory").size() == 3);
  CHECK(first.ids.at("GlobalSelling").empty());
}

TEST_CASE("sandbox list: NextToken tampering, reuse by another seller") {
  SandboxState st(test_config(), fixed_now());
  Now now = fixed_now();
  const auto& cfg = st.config();
  const Page first = read_page(
      handle_mws(st, build(cfg, Req{"ListRecommendations", {{"MarketplaceId", kUs}, {"RecommendationCategory", "Pricing"}}}), now),
      "ListRecommendations");
  REQUIRE_FALSE(first.next_token.empty());
  std::string tampered = first.next_token;
  tampered[tampered.size() / 2] = tampered[tampered.size() / 2] == 'Q' ? 'R' : 'Q';
  check_error(handle_mws(st, build(cfg, Req{"ListRecommendationsByNextToken", {{"NextToken", tampered}}}), now), 400,
              "NextTokenCorrupted");
  Req foreign{"ListRecommendationsByNextToken", {{"NextToken", first.next_token}}};
  foreign.creds = &cfg.sellers[1];
  check_error(handle_mws(st, build(cfg, foreign), now), 400, "NextTokenCorrupted");
  // The token keeps its snapshot even when the category changes meanwhile.
  const Page second = read_page(
      handle_mws(st, build(cfg, Req{"ListRecommendationsByNextToken", {{"NextToken", first.next_token}}}), now),
      "ListRecommendationsByNextToken");
  st.touch("A1XEXAMPLEDF", kUs, "Pricing", now.wall);
  const Page again = read_page(
      handle_mws(st, build(cfg, Req{"ListRecommendationsByNextToken", {{"NextToken", first.next_token}}}), now),
      "ListRecommendationsByNextToken");
  CHECK(again.ids == second.ids);
}

TEST_CASE("sandbox list: CategoryQueryList filters reduce the results") {
  SandboxState st(test_config(), fixed_now());
  Now now = fixed_now();
  auto cq = [](std::string cat, std::vector<std::string> options, bool top = true) {
    Params p = {{"MarketplaceId", kUs}};
    if (top) p.emplace_back("RecommendationCategory", cat);
    p.emplace_back("CategoryQueryList.CategoryQuery.1.RecommendationCategory", cat);
    for (std::size_t i = 0; i < options.size(); ++i)
      p.emplace_back("CategoryQueryList.CategoryQuery.1.FilterOptions.FilterOption." + std::to_string(i + 1),
                     options[i]);
    return p;
  };
  const auto unfiltered = list_all(st, {{"MarketplaceId", kUs}, {"RecommendationCategory", "Selection"}}, now);
  now.mono += 60s;
  const auto acme = list_all(st, cq("Selection", {"BrandName=Acme & Co"}), now);
  now.mono += 60s;
  CHECK(acme.at("Selection").size() > 0);
  CHECK(acme.at("Selection").size() < unfiltered.at("Selection").size());
  for (const auto& id : acme.at("Selection")) CHECK(id.find("-B0") != std::string::npos);

  const auto defects = list_all(st, cq("ListingQuality", {"QualitySet=Defect", "ListingStatus=Active"}), now);
  now.mono += 60s;
  const auto lq = list_all(st, {{"MarketplaceId", kUs}, {"RecommendationCategory", "ListingQuality"}}, now);
  now.mono += 60s;
  CHECK(defects.at("ListingQuality").size() < lq.at("ListingQuality").size());

  const auto seller_only = list_all(st, cq("Selection", {"IncludeCommonRecommendations=false"}), now);
  now.mono += 60s;
  CHECK(seller_only.at("Selection").size() < unfiltered.at("Selection").size());

  const auto none = list_all(st, cq("Fulfillment", {"BrandName=No Such Brand"}), now);
  now.mono += 60s;
  CHECK(none.at("Fulfillment").empty());

  // A CategoryQuery for a category not requested at top level is ignored.
  Params ignored = cq("Selection", {"BrandName=No Such Brand"}, false);
  ignored.emplace_back("RecommendationCategory", "Pricing");
  CHECK(list_all(st, ignored, now).at("Pricing").size() == 8);
  now.mono += 60s;
  // Without a top-level category it applies to its category among all.
  const auto all = list_all(st, cq("Selection", {"BrandName=Acme & Co"}, false), now);
  CHECK(all.at("Selection") == acme.at("Selection"));
  CHECK(all.at("Inventory").size() == 8);

  // The recent request log shows what arrived.
  const auto s = stats(st, now);
  bool saw = false;
  for (const auto& r : s["recent"].GetArray()) {
    if (r["params"].HasMember("CategoryQueryList.CategoryQuery.1.FilterOptions.FilterOption.1")) saw = true;
    if (r["params"].HasMember("MWSAuthToken")) CHECK(std::string(r["params"]["MWSAuthToken"].GetString()) == "***");
  }
  CHECK(saw);
}

TEST_CASE("sandbox last updated: per category, none for ListingQuality, touch moves it and changes data") {
  SandboxState st(test_config(), fixed_now());
  Now now = fixed_now();
  const auto& cfg = st.config();
  auto times = [&](const char* marketplace) {
    now.mono += 2s;
    const MwsOutcome o =
        handle_mws(st, build(cfg, Req{"GetLastUpdatedTimeForRecommendations", {{"MarketplaceId", marketplace}}}), now);
    REQUIRE(o.status == 200);
    Parsed p;
    parse_xml(o.body, p);
    CHECK(std::string(p.root.name()) == "GetLastUpdatedTimeForRecommendationsResponse");
    std::map<std::string, std::string> out;
    for (auto c : p.root.child("GetLastUpdatedTimeForRecommendationsResult").children()) out[c.name()] = c.child_value();
    return out;
  };
  auto t = times(kUs);
  CHECK(t.size() == 5);
  CHECK(t.at("InventoryRecommendationsLastUpdated") == "2026-11-22T05:00:00.000Z");
  CHECK(t.count("GlobalSellingRecommendationsLastUpdated") == 0);
  CHECK(t.count("ListingQualityRecommendationsLastUpdated") == 0);
  auto br = times(std::string(kBrazil).c_str());
  CHECK(br.count("FulfillmentRecommendationsLastUpdated") == 0);
  CHECK(br.count("AdvertisingRecommendationsLastUpdated") == 0);
  CHECK(br.size() == 3);

  const auto before = list_all(st, {{"MarketplaceId", kUs}, {"RecommendationCategory", "Inventory"}}, now);
  const AdminAnswer a =
      admin_touch(st, {{"marketplace", kUs}, {"category", "Inventory"}}, now.wall + 90s);
  CHECK(a.status == 200);
  rapidjson::Document d;
  d.Parse(a.body.c_str());
  CHECK(std::string(d["lastUpdated"].GetString()) == "2026-11-22T06:01:30.000Z");
  CHECK(d["generation"].GetUint64() == 2);
  t = times(kUs);
  CHECK(t.at("InventoryRecommendationsLastUpdated") == "2026-11-22T06:01:30.000Z");
  now.mono += 60s;
  const auto after = list_all(st, {{"MarketplaceId", kUs}, {"RecommendationCategory", "Inventory"}}, now);
  CHECK(after != before);
  // Touching twice in the same millisecond still moves the time.
  admin_touch(st, {{"marketplace", kUs}, {"category", "Inventory"}}, now.wall + 90s);
  t = times(kUs);
  CHECK(t.at("InventoryRecommendationsLastUpdated") == "2026-11-22T06:01:30.001Z");

  CHECK(admin_touch(st, {{"marketplace", kUs}, {"category", "GlobalSelling"}}, now.wall).status == 200);
  t = times(kUs);
  CHECK(t.count("GlobalSellingRecommendationsLastUpdated") == 1);
  now.mono += 60s;
  CHECK(list_all(st, {{"MarketplaceId", kUs}, {"RecommendationCategory", "GlobalSelling"}}, now)
            .at("GlobalSelling")
            .size() == 8);

  CHECK(admin_touch(st, {{"marketplace", kUs}, {"category", "ListingQuality"}}, now.wall).status == 200);
  CHECK(admin_touch(st, {{"marketplace", std::string(kBrazil)}, {"category", "Advertising"}}, now.wall).status == 400);
  CHECK(admin_touch(st, {{"marketplace", "XX"}, {"category", "Inventory"}}, now.wall).status == 400);
  CHECK(admin_touch(st, {{"seller", "NOPE"}, {"marketplace", kUs}, {"category", "Inventory"}}, now.wall).status == 400);
}

TEST_CASE("sandbox xml: every action answers well-formed, namespaced XML that keeps unicode and markup") {
  SandboxState st(test_config(), fixed_now());
  Now now = fixed_now();
  const auto& cfg = st.config();
  const MwsOutcome status = handle_mws(st, build(cfg, Req{"GetServiceStatus", {}}), now);
  Parsed p;
  parse_xml(status.body, p);
  CHECK(std::string(p.root.name()) == "GetServiceStatusResponse");
  CHECK(std::string(p.root.attribute("xmlns").value()) == kMwsNamespace);
  CHECK(std::string(p.root.child("GetServiceStatusResult").child_value("Status")) == "GREEN");
  CHECK(std::string(p.root.child("GetServiceStatusResult").child_value("Timestamp")) == "2026-11-22T06:00:00.000Z");
  CHECK(status.body.rfind("<?xml version=\"1.0\"?>", 0) == 0);

  bool cafe = false, markup = false, amp_escaped = false;
  for (const auto& cat : all_categories()) {
    now.mono += 2s;
    const MwsOutcome o =
        handle_mws(st, build(cfg, Req{"ListRecommendations", {{"MarketplaceId", kUs}, {"RecommendationCategory", cat}}}), now);
    Parsed lp;
    parse_xml(o.body, lp);
    amp_escaped = amp_escaped || o.body.find("Bolts &amp; Nuts &lt;Heavy Duty&gt;") != std::string::npos;
    for (auto m : lp.root.child("ListRecommendationsResult").child((cat + "Recommendations").c_str()).children("member")) {
      const std::string name = m.child_value("ItemName");
      cafe = cafe || name.find("Café ☕ – Größe 日本") != std::string::npos;
      markup = markup || name.find("Bolts & Nuts <Heavy Duty>") != std::string::npos;
      if (cat == "Pricing") {
        CHECK(std::string(m.child("YourPricePlusShipping").child_value("CurrencyCode")) == "USD");
        CHECK(!std::string(m.child("YourPricePlusShipping").child_value("Amount")).empty());
      }
    }
  }
  CHECK(cafe);
  CHECK(markup);
  CHECK(amp_escaped);
}

TEST_CASE("sandbox faults: status, malformed, drop, latency, count and action matching") {
  SandboxState st(test_config(), fixed_now());
  Now now = fixed_now();
  const auto& cfg = st.config();
  const Req list{"ListRecommendations", {{"MarketplaceId", kUs}, {"RecommendationCategory", "Inventory"}}};
  const Req last{"GetLastUpdatedTimeForRecommendations", {{"MarketplaceId", kUs}}};

  CHECK(admin_add_fault(st, R"({"status":500,"count":2,"action":"ListRecommendations"})").status == 200);
  CHECK(handle_mws(st, build(cfg, last), now).status == 200);
  for (int i = 0; i < 2; ++i) {
    const MwsOutcome o = handle_mws(st, build(cfg, list), now);
    check_error(o, 500, "InternalError");
    Parsed p;
    parse_xml(o.body, p);
    CHECK(std::string(p.root.child("Error").child_value("Type")) == "Receiver");
  }
  CHECK(handle_mws(st, build(cfg, list), now).status == 200);

  CHECK(admin_add_fault(st, R"({"malformed":true})").status == 200);
  const MwsOutcome bad = handle_mws(st, build(cfg, last), now);
  CHECK(bad.status == 200);
  pugi::xml_document doc;
  CHECK_FALSE(doc.load_buffer(bad.body.data(), bad.body.size()));

  CHECK(admin_add_fault(st, R"({"drop":true,"latency_ms":250})").status == 200);
  const MwsOutcome dropped = handle_mws(st, build(cfg, last), now);
  CHECK(dropped.drop);
  CHECK(dropped.latency == 250ms);
  CHECK(dropped.body.size() > 4096);

  CHECK(admin_add_fault(st, R"({"status":503,"code":"RequestThrottled"})").status == 200);
  const MwsOutcome throttled = handle_mws(st, build(cfg, last), now);
  check_error(throttled, 503, "RequestThrottled");

  CHECK(admin_add_fault(st, R"({"latency_ms":10,"count":5})").status == 200);
  CHECK(admin_clear_faults(st).status == 200);
  const MwsOutcome plain = handle_mws(st, build(cfg, last), now);
  CHECK(plain.latency == 0ms);
  CHECK(plain.status == 200);

  // Faults hit authentic requests only.
  CHECK(admin_add_fault(st, R"({"status":500})").status == 200);
  check_error(handle_mws(st, build(cfg, last, {}, {{"Signature", "x"}}), now), 403, "SignatureDoesNotMatch");
  now.mono += 60s;
  check_error(handle_mws(st, build(cfg, last), now), 500, "InternalError");

  CHECK(admin_add_fault(st, R"({"status":200})").status == 400);
  CHECK(admin_add_fault(st, R"({"bogus":1})").status == 400);
  CHECK(admin_add_fault(st, R"({"action":"ListOrders","status":500})").status == 400);
  CHECK(admin_add_fault(st, R"({})").status == 400);
  CHECK(admin_add_fault(st, "not json").status == 400);
}

TEST_CASE("sandbox faults: invalid_xml, a replaced body, Content-Type, Retry-After and wire modes") {
  SandboxState st(test_config(), fixed_now());
  const Now now = fixed_now();
  const auto& cfg = st.config();
  const Req last{"GetLastUpdatedTimeForRecommendations", {{"MarketplaceId", kUs}}};
  // The last value of a header wins, as in make_response (res.set in order).
  auto header = [](const MwsOutcome& o, const std::string& name) {
    std::string v;
    for (const auto& [k, x] : o.headers)
      if (k == name) v = x;
    return v;
  };

  CHECK(admin_add_fault(st, R"({"invalid_xml":true})").status == 200);
  const MwsOutcome broken = handle_mws(st, build(cfg, last), now);
  CHECK(broken.status == 200);
  CHECK(broken.body.find("</GetLastUpdatedTimeForRecommendationsResponse>") != std::string::npos);
  pugi::xml_document doc;
  CHECK(doc.load_buffer(broken.body.data(), broken.body.size()).status == pugi::status_end_element_mismatch);

  CHECK(admin_add_fault(st, R"({"body":"<html><body>down</body></html>","content_type":"text/html"})").status == 200);
  const MwsOutcome page = handle_mws(st, build(cfg, last), now);
  CHECK(page.status == 200);
  CHECK(page.body == "<html><body>down</body></html>");
  CHECK(header(page, "Content-Type") == "text/html");

  CHECK(admin_add_fault(st, R"({"status":503,"retry_after":"7"})").status == 200);
  const MwsOutcome unavailable = handle_mws(st, build(cfg, last), now);
  check_error(unavailable, 503, "ServiceUnavailable");
  CHECK(header(unavailable, "Retry-After") == "7");

  CHECK(admin_add_fault(st, R"({"status":503,"body":"<html>busy</html>"})").status == 200);
  const MwsOutcome busy = handle_mws(st, build(cfg, last), now);
  CHECK(busy.status == 503);
  CHECK(busy.body == "<html>busy</html>");
  CHECK(header(busy, "Retry-After").empty());

  CHECK(admin_add_fault(st, R"({"wire":"huge","wire_bytes":4096})").status == 200);
  const MwsOutcome huge = handle_mws(st, build(cfg, last), now);
  CHECK(huge.status == 200);
  CHECK(huge.wire == WireMode::huge);
  CHECK(huge.wire_bytes == 4096);
  CHECK(handle_mws(st, build(cfg, last), now).wire == WireMode::none);

  const auto unknown = admin_add_fault(st, R"({"wire":"sideways"})");
  CHECK(unknown.status == 400);
  CHECK(unknown.body.find("reset short stall bad_chunk endless_chunk_ext huge huge_chunked") != std::string::npos);
  CHECK(admin_add_fault(st, R"({"wire":"huge","wire_bytes":0})").status == 400);
  CHECK(admin_add_fault(st, R"({"status":503,"retry_after":5})").status == 400);
  CHECK(admin_add_fault(st, R"({"invalid_xml":"yes"})").status == 400);
  CHECK(admin_add_fault(st, R"({"content_type":"text/html"})").status == 400);  // nothing to act out
}

TEST_CASE("sandbox admin: token, stats and reset") {
  SandboxConfig cfg = test_config();
  CHECK(admin_authorized(cfg, "", ""));
  cfg.admin_token = "let-me-in";
  CHECK_FALSE(admin_authorized(cfg, "", ""));
  CHECK_FALSE(admin_authorized(cfg, "Bearer nope", ""));
  CHECK(admin_authorized(cfg, "Bearer let-me-in", ""));
  CHECK(admin_authorized(cfg, "", "let-me-in"));
  CHECK(admin_unauthorized().status == 401);

  SandboxState st(test_config(), fixed_now());
  Now now = fixed_now();
  handle_mws(st, build(st.config(), Req{"GetServiceStatus", {}}), now);
  admin_touch(st, {{"marketplace", kUs}, {"category", "Inventory"}}, now.wall + 1h);
  auto s = stats(st, now);
  CHECK(s["requests"]["total"].GetUint64() == 1);
  CHECK(s["requests"]["by_action"]["GetServiceStatus"].GetUint64() == 1);
  CHECK(s["requests"]["by_status"]["200"].GetUint64() == 1);
  CHECK(s["recent"].Size() == 1);
  CHECK(admin_reset(st, now).status == 200);
  s = stats(st, now);
  CHECK(s["requests"]["total"].GetUint64() == 0);
  CHECK(s["buckets"].Size() == 0);
  CHECK(st.snapshot("A1XEXAMPLEDF", kUs, "Inventory").generation == 1);
}
