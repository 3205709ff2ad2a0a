// The sandbox's Ads/LWA logic without sockets: its config and overlay, the
// schema checks of the request body (400 vs 422), cursors and deterministic
// pages, translated themes, and AdsState's token endpoint, header and media
// type checks, rate bucket, faults and statistics with an injected clock.
#include <doctest/doctest.h>
#include <rapidjson/document.h>

#include <set>

#include "sandbox/ads_config.hpp"
#include "sandbox/ads_data.hpp"
#include "sandbox/ads_state.hpp"

using namespace recgate::sandbox;

namespace {

using Clock = std::chrono::steady_clock;
const Clock::time_point kT0{std::chrono::hours(1000)};

constexpr const char* kForm = "application/x-www-form-urlencoded;charset=UTF-8";
constexpr const char* kGoodForm =
    "grant_type=refresh_token&refresh_token=Atzr%7Csandbox-refresh-token&client_id=amzn1.application-oa2-client.sandbox"
    "&client_secret=sandbox-client-secret";
constexpr const char* kReqType = "application/vnd.spproductrecommendation.v3+json";
constexpr const char* kAsins = "application/vnd.spproductrecommendationresponse.asins.v3+json";
constexpr const char* kThemes = "application/vnd.spproductrecommendationresponse.themes.v3+json";

rapidjson::Document json(const std::string& s) {
  rapidjson::Document d;
  d.Parse(s.c_str());
  REQUIRE_FALSE(d.HasParseError());
  return d;
}

AdsSandboxConfig config(const char* json_text = "{}") {
  std::string error;
  auto c = parse_ads_config(json_text, error);
  REQUIRE_MESSAGE(c, error);
  return *c;
}

std::string get_token(AdsState& st, Clock::time_point now) {
  auto o = st.token(TokenInput{kForm, kGoodForm}, now);
  REQUIRE(o.status == 200);
  return json(o.body)["access_token"].GetString();
}

AdsInput good_input(const std::string& token, const char* accept = kAsins,
                    const char* body = R"({"adAsins":["B09LJWZT6G"],"count":5,"locale":"en_US"})") {
  AdsInput in;
  in.content_type = kReqType;
  in.accept = accept;
  in.authorization = "Bearer " + token;
  in.client_id = "amzn1.application-oa2-client.sandbox";
  in.scope = "904444984714944";
  in.body = body;
  return in;
}

std::string error_code(const AdsOutcome& o) { return json(o.body)["code"].GetString(); }

}  // namespace

TEST_CASE("ads sandbox: config defaults, validation and the --ads-json overlay") {
  auto d = config();
  CHECK(d.token_lifetime_s == 3600);
  CHECK(d.clients.size() == 1);
  CHECK(d.clients[0].refresh_token == "Atzr|sandbox-refresh-token");
  CHECK(d.profile_ids == std::vector<std::string>{"904444984714944"});
  std::string error;
  CHECK_FALSE(parse_ads_config(R"({"token_lifetime":2})", error));
  CHECK(error.find("$.ads.token_lifetime: unknown key") != std::string::npos);
  CHECK_FALSE(parse_ads_config(R"({"rate_per_s":0})", error));
  CHECK_FALSE(parse_ads_config(R"({"profile_ids":["12a"]})", error));
  CHECK_FALSE(parse_ads_config(R"({"clients":[{"client_id":"x","client_secret":"y"}]})", error));
  CHECK(error.find("refresh_token: required") != std::string::npos);
  CHECK(parse_ads_config(R"({"_comment":"x","retry_after_s":0})", error));

  auto merged = merge_json_objects(R"({"token_lifetime_s":3600,"burst":10})", R"({"token_lifetime_s":2,"rate_per_s":100})",
                                   error);
  REQUIRE(merged);
  auto m = config(merged->c_str());
  CHECK(m.token_lifetime_s == 2);
  CHECK(m.burst == 10);
  CHECK(m.rate_per_s == 100);
  CHECK_FALSE(merge_json_objects("{}", "[1]", error));
}

TEST_CASE("ads sandbox: request body schema checks (400 malformed or wrong type, 422 out of range)") {
  struct Case {
    const char* body;
    int status;  // 0: accepted
  };
  const Case cases[] = {
      {R"({"adAsins":["B09LJWZT6G"]})", 0},
      {R"({"adAsins":["B09LJWZT6G"],"count":5,"locale":"jp_JP","cursor":null})", 0},
      {R"({"adAsins":["B09LJWZT6G"],"count":"5"})", 400},
      {R"({"adAsins":["B09LJWZT6G"],"count":0})", 422},
      {R"({"adAsins":["B09LJWZT6G"],"locale":"ja_JP"})", 422},
      {R"({"adAsins":["B09LJWZT6"]})", 422},
      {R"({"adAsins":[]})", 422},
      {R"({"adAsins":"B09LJWZT6G"})", 400},
      {R"({"count":5})", 400},
      {R"({"adAsins":["B09LJWZT6G"],"groupBy":"asin"})", 400},
      {R"({"adAsins":["B09LJWZT6G"],"cursor":5})", 400},
      {"not json", 400},
  };
  for (const auto& c : cases) {
    CAPTURE(c.body);
    auto r = parse_ads_query(c.body);
    if (c.status == 0) {
      CHECK(std::holds_alternative<AdsQuery>(r));
    } else {
      REQUIRE(std::holds_alternative<AdsError>(r));
      CHECK(std::get<AdsError>(r).status == c.status);
      CHECK(std::get<AdsError>(r).code == std::to_string(c.status));
    }
  }
  auto e = std::get<AdsError>(parse_ads_query(R"({"adAsins":["B09LJWZT6G"],"count":"5"})"));
  CHECK(e.details == "Field 'count' must be an integer; got string");
}

TEST_CASE("ads sandbox: cursors are bound to the request") {
  AdsQuery q{{"B09LJWZT6G"}, 5, "en_US", std::nullopt};
  const auto fp = query_fingerprint(q, false);
  CHECK(decode_cursor(encode_cursor(fp, 15), fp) == std::size_t{15});
  CHECK_FALSE(decode_cursor(encode_cursor(fp, 15), query_fingerprint(q, true)));
  AdsQuery other = q;
  other.locale = "de_DE";
  CHECK_FALSE(decode_cursor(encode_cursor(fp, 15), query_fingerprint(other, false)));
  CHECK_FALSE(decode_cursor("not base64!", fp));
  CHECK_FALSE(decode_cursor("", fp));
}

TEST_CASE("ads sandbox: pages by count cover every recommendation once, deterministically") {
  const auto cfg = config();
  AdsQuery q{{"B09LJWZT6G", "0316769487"}, 7, "en_US", std::nullopt};
  const std::string first = std::get<std::string>(render_recommendations(q, false, cfg));
  CHECK(std::get<std::string>(render_recommendations(q, false, cfg)) == first);  // same request, same answer
  std::set<std::string> seen;
  std::optional<std::string> cursor;
  int pages = 0;
  for (;;) {
    q.cursor = cursor;
    auto d = json(std::get<std::string>(render_recommendations(q, false, cfg)));
    CHECK(d["previousCursor"].IsNull() == (pages == 0));
    for (const auto& r : d["recommendations"].GetArray()) {
      const std::string asin = r["recommendedAsin"].GetString();
      CHECK(asin.size() == 10);
      CHECK(r["themes"].Size() >= 1);
      CHECK(seen.insert(asin).second);
    }
    ++pages;
    if (d["nextCursor"].IsNull()) break;
    CHECK(d["recommendations"].Size() == 7);
    cursor = d["nextCursor"].GetString();
    REQUIRE(pages < 50);
  }
  CHECK(pages >= 2);
  CHECK(seen.size() <= static_cast<std::size_t>(cfg.pool_size));
  CHECK(seen.count("B09LJWZT6G") == 0);

  AdsQuery bad = q;
  bad.cursor = "YWJj";
  auto e = render_recommendations(bad, false, cfg);
  REQUIRE(std::holds_alternative<AdsError>(e));
  CHECK(std::get<AdsError>(e).status == 400);
}

TEST_CASE("ads sandbox: themes are at most 10, translated by locale, books get the readers theme") {
  const auto cfg = config();
  AdsQuery book{{"0316769487"}, 10, "en_US", std::nullopt};
  auto d = json(std::get<std::string>(render_recommendations(book, true, cfg)));
  REQUIRE(d["recommendations"].Size() <= 10);
  std::set<std::string> names;
  for (const auto& r : d["recommendations"].GetArray()) {
    names.insert(r["theme"].GetString());
    CHECK(std::string(r["description"].GetString()).size() > 0);
    CHECK(r["recommendedAsins"].Size() == static_cast<rapidjson::SizeType>(cfg.asins_per_theme));
  }
  CHECK(names.count("Other books read by your readers") == 1);
  CHECK(names.count("Top converting targets") == 1);
  AdsQuery product{{"B09LJWZT6G"}, 10, "en_US", std::nullopt};
  auto p = json(std::get<std::string>(render_recommendations(product, true, cfg)));
  for (const auto& r : p["recommendations"].GetArray())
    CHECK(std::string(r["theme"].GetString()) != "Other books read by your readers");

  CHECK(theme_text(1, "de_DE").name == "Ähnliche Artikel");
  CHECK(theme_text(1, "jp_JP").name == "類似商品");
  CHECK(theme_text(1, "en_GB").name == "Similar items");
  CHECK(theme_text(1, "xx_XX").name == "Similar items");
  AdsQuery de = book;
  de.locale = "de_DE";
  auto g = json(std::get<std::string>(render_recommendations(de, true, cfg)));
  CHECK(std::string(g["recommendations"][0]["theme"].GetString()) == theme_text(0, "de_DE").name);
  // Paging themes by count.
  AdsQuery two = book;
  two.count = 2;
  auto t = json(std::get<std::string>(render_recommendations(two, true, cfg)));
  CHECK(t["recommendations"].Size() == 2);
  CHECK(t["nextCursor"].IsString());
}

TEST_CASE("ads sandbox: LWA token endpoint checks grant, client and refresh token") {
  AdsState st(config(R"({"token_lifetime_s":2})"), kT0);
  auto ok = st.token(TokenInput{kForm, kGoodForm}, kT0);
  REQUIRE(ok.status == 200);
  auto d = json(ok.body);
  CHECK(std::string(d["access_token"].GetString()).rfind("Atza|", 0) == 0);
  CHECK(std::string(d["refresh_token"].GetString()) == "Atzr|sandbox-refresh-token");
  CHECK(std::string(d["token_type"].GetString()) == "bearer");
  CHECK(d["expires_in"].GetInt() == 2);

  struct Case {
    const char* content_type;
    const char* body;
    int status;
    const char* error;
  };
  const Case cases[] = {
      {kForm,
       "grant_type=refresh_token&refresh_token=Atzr%7Csandbox-refresh-token&client_id=amzn1.application-oa2-client."
       "sandbox&client_secret=wrong",
       401, "invalid_client"},
      {kForm,
       "grant_type=refresh_token&refresh_token=Atzr%7Csandbox-refresh-token&client_id=other&client_secret="
       "sandbox-client-secret",
       401, "invalid_client"},
      {kForm,
       "grant_type=refresh_token&refresh_token=Atzr%7Cwrong&client_id=amzn1.application-oa2-client.sandbox&client_"
       "secret=sandbox-client-secret",
       400, "invalid_grant"},
      {kForm, "grant_type=refresh_token&client_id=amzn1.application-oa2-client.sandbox&client_secret=x", 400,
       "invalid_request"},
      {kForm,
       "grant_type=authorization_code&refresh_token=a&client_id=amzn1.application-oa2-client.sandbox&client_secret=x",
       400, "unsupported_grant_type"},
      {"application/json", kGoodForm, 400, "invalid_request"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.body);
    auto o = st.token(TokenInput{c.content_type, c.body}, kT0);
    CHECK(o.status == c.status);
    CHECK(std::string(json(o.body)["error"].GetString()) == c.error);
  }
  auto missing = st.token(TokenInput{kForm, "grant_type=refresh_token"}, kT0);
  CHECK(std::string(json(missing.body)["error_description"].GetString()) ==
        "The request is missing a required parameter : client_id");
  auto stats = json(st.stats_json());
  CHECK(stats["token_requests"].GetInt() == 8);
  CHECK(stats["tokens_issued"].GetInt() == 1);
  CHECK(stats["token_errors"]["invalid_client"].GetInt() == 2);
}

TEST_CASE("ads sandbox: recommendations check token, client id, scope, media types, in that order") {
  AdsState st(config(R"({"token_lifetime_s":2})"), kT0);
  const std::string token = get_token(st, kT0);
  auto ok = st.recommendations(good_input(token), kT0);
  REQUIRE(ok.status == 200);
  CHECK(ok.headers[0].second == kAsins);
  auto themes = st.recommendations(good_input(token, kThemes), kT0);
  REQUIRE(themes.status == 200);
  CHECK(json(themes.body)["recommendations"][0].HasMember("theme"));

  struct Case {
    const char* name;
    void (*mutate)(AdsInput&);
    int status;
    const char* code;
    const char* says;
  };
  const Case cases[] = {
      // A missing or unknown bearer token: the live API's {"code":"401","details":"Authentication failed"}.
      {"no bearer", [](AdsInput& in) { in.authorization.clear(); }, 401, "401", "Authentication failed"},
      {"unknown token", [](AdsInput& in) { in.authorization = "Bearer Atza|nope"; }, 401, "401", "Authentication failed"},
      {"no client id", [](AdsInput& in) { in.client_id.clear(); }, 401, "UNAUTHORIZED", "ClientId"},
      {"other client id", [](AdsInput& in) { in.client_id = "amzn1.other"; }, 401, "UNAUTHORIZED", "ClientId"},
      {"no scope", [](AdsInput& in) { in.scope.clear(); }, 401, "UNAUTHORIZED", "Scope header is missing"},
      {"unknown scope", [](AdsInput& in) { in.scope = "1"; }, 401, "UNAUTHORIZED", "No matching advertiser"},
      {"guide's response type as Content-Type", [](AdsInput& in) { in.content_type = kAsins; }, 415, "415",
       "response media type"},
      {"JSON Content-Type", [](AdsInput& in) { in.content_type = "application/json"; }, 415, "415", "Unsupported"},
      {"no Accept", [](AdsInput& in) { in.accept.clear(); }, 406, "406", "Accept"},
      {"JSON Accept", [](AdsInput& in) { in.accept = "application/json"; }, 406, "406", "Accept"},
      {"count as string", [](AdsInput& in) { in.body = R"({"adAsins":["B09LJWZT6G"],"count":"5"})"; }, 400, "400",
       "integer"},
      {"ja_JP", [](AdsInput& in) { in.body = R"({"adAsins":["B09LJWZT6G"],"locale":"ja_JP"})"; }, 422, "422",
       "jp_JP"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.name);
    AdsInput in = good_input(token);
    c.mutate(in);
    auto o = st.recommendations(in, kT0);
    CHECK(o.status == c.status);
    CHECK(error_code(o) == c.code);
    CHECK(json(o.body)["details"].GetString() == doctest::Contains(c.says));
  }
  // An Accept list picks the first Ads type in it.
  auto listed = st.recommendations(good_input(token, "application/json, application/vnd.spproductrecommendationresponse.themes.v3+json; q=0.9"), kT0);
  CHECK(listed.status == 200);
  CHECK(listed.headers[0].second == kThemes);

  // The token expires after its lifetime.
  auto expired = st.recommendations(good_input(token), kT0 + std::chrono::seconds(2));
  CHECK(expired.status == 401);
  CHECK(error_code(expired) == "401");
  CHECK(json(expired.body)["details"].GetString() == std::string("Authentication failed"));
  CHECK(json(expired.body)["requestId"].GetStringLength() == 20);
  auto stats = json(st.stats_json());
  CHECK(stats["requests"]["by_status"]["401"].GetInt() == 7);
  CHECK(std::string(stats["last_request"]["content_type"].GetString()) == kReqType);
  CHECK_FALSE(stats["last_request"].HasMember("authorization"));
}

TEST_CASE("ads sandbox: rate bucket answers 429 with Retry-After, restores at rate_per_s") {
  AdsState st(config(R"({"rate_per_s":2,"burst":3,"retry_after_s":4})"), kT0);
  const std::string token = get_token(st, kT0);
  for (int i = 0; i < 3; ++i) CHECK(st.recommendations(good_input(token), kT0).status == 200);
  auto limited = st.recommendations(good_input(token), kT0);
  CHECK(limited.status == 429);
  // The live API's throttle: {"message":"Too Many Requests"} and amazon-advertising-api-throttled: true.
  CHECK(limited.body == R"({"message":"Too Many Requests"})");
  bool has_retry_after = false, has_throttled = false;
  for (const auto& [k, v] : limited.headers) {
    has_retry_after = has_retry_after || (k == "Retry-After" && v == "4");
    has_throttled = has_throttled || (k == "amazon-advertising-api-throttled" && v == "true");
  }
  CHECK(has_retry_after);
  CHECK(has_throttled);
  CHECK(st.recommendations(good_input(token), kT0 + std::chrono::milliseconds(499)).status == 429);
  CHECK(st.recommendations(good_input(token), kT0 + std::chrono::milliseconds(500)).status == 200);
  CHECK(json(st.stats_json())["rate_limited"].GetInt() == 2);

  AdsState quiet(config(R"({"rate_per_s":1,"burst":1,"retry_after_s":0})"), kT0);
  const std::string t2 = get_token(quiet, kT0);
  CHECK(quiet.recommendations(good_input(t2), kT0).status == 200);
  auto q = quiet.recommendations(good_input(t2), kT0);
  CHECK(q.status == 429);
  for (const auto& [k, v] : q.headers) CHECK(k != "Retry-After");
}

TEST_CASE("ads sandbox: faults (429 with and without Retry-After, 401, token 500, expire_tokens), reset") {
  AdsState st(config(), kT0);
  const std::string token = get_token(st, kT0);
  CHECK(st.add_fault(R"({"status":429,"count":2,"retry_after_s":0})", kT0).status == 200);
  for (int i = 0; i < 2; ++i) {
    auto o = st.recommendations(good_input(token), kT0);
    CHECK(o.status == 429);
    for (const auto& [k, v] : o.headers) CHECK(k != "Retry-After");
  }
  CHECK(st.recommendations(good_input(token), kT0).status == 200);
  CHECK(st.add_fault(R"({"status":429})", kT0).status == 200);
  auto with_ra = st.recommendations(good_input(token), kT0);
  CHECK(with_ra.status == 429);
  CHECK(with_ra.headers.back() == std::make_pair(std::string("Retry-After"), std::string("1")));

  CHECK(st.add_fault(R"({"status":401})", kT0).status == 200);
  auto unauthorized = st.recommendations(good_input(token), kT0);
  CHECK(error_code(unauthorized) == "401");
  CHECK(json(unauthorized.body)["details"].GetString() == std::string("Authentication failed"));
  CHECK(json(unauthorized.body).HasMember("requestId"));
  CHECK(st.recommendations(good_input(token), kT0).status == 200);

  CHECK(st.add_fault(R"({"target":"token","status":500})", kT0).status == 200);
  auto t500 = st.token(TokenInput{kForm, kGoodForm}, kT0);
  CHECK(t500.status == 500);
  CHECK(std::string(json(t500.body)["error"].GetString()) == "server_error");

  CHECK(st.add_fault(R"({"expire_tokens":true})", kT0).status == 200);
  CHECK(st.recommendations(good_input(token), kT0).status == 401);
  const std::string fresh = get_token(st, kT0);
  CHECK(st.recommendations(good_input(fresh), kT0).status == 200);

  CHECK(st.add_fault(R"({"status":42})", kT0).status == 400);
  CHECK(st.add_fault(R"({"bogus":1})", kT0).status == 400);
  CHECK(st.add_fault(R"({})", kT0).status == 400);
  CHECK(st.add_fault(R"({"status":500,"count":5})", kT0).status == 200);
  st.clear_faults();
  CHECK(st.recommendations(good_input(fresh), kT0).status == 200);

  st.reset(kT0);
  auto s = json(st.stats_json());
  CHECK(s["token_requests"].GetInt() == 0);
  CHECK(s["requests"]["total"].GetInt() == 0);
  CHECK(s["last_request"].IsNull());
  CHECK(st.recommendations(good_input(fresh), kT0).status == 401);  // tokens forgotten
}

namespace {

std::string header_value(const AdsOutcome& o, const std::string& name) {
  for (const auto& [k, v] : o.headers)
    if (k == name) return v;
  return "<absent>";
}

}  // namespace

TEST_CASE("ads sandbox: the rate limit changes at run time (PUT /admin/ads/limit) and keeps the tokens held") {
  AdsState st(config(R"({"rate_per_s":10,"burst":10,"retry_after_s":1})"), kT0);
  const std::string token = get_token(st, kT0);
  for (int i = 0; i < 8; ++i) REQUIRE(st.recommendations(good_input(token), kT0).status == 200);
  // Amazon lowers the limit: 5 burst, 1 per s, Amazon's 429 form without Retry-After.
  auto a = st.set_limit(R"({"burst":5,"rate_per_s":1,"retry_after_s":0,"amazon_throttled":true})", kT0);
  REQUIRE(a.status == 200);
  CHECK(json(a.body)["burst"].GetInt() == 5);
  CHECK(json(st.limit_json())["rate_per_s"].GetDouble() == 1.0);
  // 2 tokens were held (10 - 8): still 2, not a fresh burst of 5.
  CHECK(st.recommendations(good_input(token), kT0).status == 200);
  CHECK(st.recommendations(good_input(token), kT0).status == 200);
  auto limited = st.recommendations(good_input(token), kT0);
  CHECK(limited.status == 429);
  CHECK(json(limited.body)["message"].GetString() == std::string("Too Many Requests"));
  CHECK(header_value(limited, "amazon-advertising-api-throttled") == "true");
  CHECK(header_value(limited, "Retry-After") == "<absent>");
  CHECK(st.recommendations(good_input(token), kT0 + std::chrono::milliseconds(999)).status == 429);
  CHECK(st.recommendations(good_input(token), kT0 + std::chrono::milliseconds(1000)).status == 200);
  // Raised again: at most the new burst, restored at the new rate.
  REQUIRE(st.set_limit(R"({"burst":20,"rate_per_s":20})", kT0 + std::chrono::seconds(2)).status == 200);
  int ok = 0;
  for (int i = 0; i < 30; ++i) ok += st.recommendations(good_input(token), kT0 + std::chrono::seconds(2)).status == 200;
  CHECK(ok == 1);  // the one token restored at 1 per s since the last call, not a fresh burst of 20
  CHECK(st.recommendations(good_input(token), kT0 + std::chrono::milliseconds(2050)).status == 200);
  // Bad values are named; reset restores the configured limit.
  auto bad = st.set_limit(R"({"burst":0})", kT0);
  CHECK(bad.status == 400);
  CHECK(bad.body.find("burst must be an integer 1..1000000") != std::string::npos);
  CHECK(st.set_limit(R"({"speed":1})", kT0).body.find("allowed: burst rate_per_s") != std::string::npos);
  // The documented error-object form is the non-default one: switch to it,
  // then reset must bring back the configured (live, Amazon) form.
  REQUIRE(st.set_limit(R"({"amazon_throttled":false})", kT0).status == 200);
  CHECK_FALSE(json(st.limit_json())["amazon_throttled"].GetBool());
  st.reset(kT0);
  CHECK(json(st.limit_json())["burst"].GetInt() == 10);
  CHECK(json(st.limit_json())["amazon_throttled"].GetBool());
}
