// Ads request side as pure functions: body validation tables (what is
// rejected, with which code and field, and what the message says), defaults,
// the ja_JP alias, the cache key, the upstream body, media types, hosts,
// upstream error bodies and Retry-After.
#include <doctest/doctest.h>

#include "core/ads/request.hpp"

using namespace recgate;
using namespace recgate::ads;

namespace {
constexpr std::size_t kMaxAsins = 100;  // the ads.max_asins default
}  // namespace

TEST_CASE("ads request: validation table") {
  struct Case {
    const char* name;
    const char* body;
    const char* code;   // nullptr: valid
    const char* field;  // for invalid_field
    const char* says;   // a substring of the detail
  };
  const Case cases[] = {
      {"minimal", R"({"adAsins":["B09LJWZT6G"]})", nullptr, nullptr, nullptr},
      {"full", R"({"adAsins":["B09LJWZT6G","0316769487"],"count":5,"locale":"de_DE","cursor":null,"groupBy":"theme"})",
       nullptr, nullptr, nullptr},
      {"cursor string", R"({"adAsins":["B09LJWZT6G"],"cursor":"abc"})", nullptr, nullptr, nullptr},
      {"ja_JP alias", R"({"adAsins":["B09LJWZT6G"],"locale":"ja_JP"})", nullptr, nullptr, nullptr},
      {"not JSON", R"({"adAsins":)", "invalid_body", nullptr, "not valid JSON"},
      {"empty body", "", "invalid_body", nullptr, "not valid JSON"},
      {"array body", R"(["B09LJWZT6G"])", "invalid_body", nullptr, "must be a JSON object"},
      {"unknown member", R"({"adAsins":["B09LJWZT6G"],"Count":5})", "invalid_body", nullptr,
       "unknown member \"Count\"; allowed: adAsins, count, locale, cursor, groupBy"},
      {"duplicate member", R"({"adAsins":["B09LJWZT6G"],"count":5,"count":6})", "invalid_body", nullptr, "twice"},
      {"missing adAsins", R"({"count":5})", "invalid_field", "adAsins", "adAsins is required"},
      {"adAsins empty", R"({"adAsins":[]})", "invalid_field", "adAsins", "got an empty array"},
      {"adAsins a string", R"({"adAsins":"B09LJWZT6G"})", "invalid_field", "adAsins", "non-empty array"},
      {"ASIN too short", R"({"adAsins":["B09LJWZT6"]})", "invalid_field", "adAsins", "adAsins[0] must be an ASIN"},
      {"ASIN too long", R"({"adAsins":["B09LJWZT6GX"]})", "invalid_field", "adAsins", "10 characters"},
      {"ASIN lower case", R"({"adAsins":["b09ljwzt6g"]})", "invalid_field", "adAsins", "A-Z and 0-9"},
      {"ASIN second bad", R"({"adAsins":["B09LJWZT6G",7]})", "invalid_field", "adAsins", "adAsins[1]"},
      {"ASIN unicode", R"({"adAsins":["B09LJWZT6\u00c9"]})", "invalid_field", "adAsins", "ASIN"},
      {"count as a string (the guide's mistake)", R"({"adAsins":["B09LJWZT6G"],"count":"5"})", "invalid_field",
       "count", "count must be a JSON integer (e.g. 5), not a string"},
      {"count zero", R"({"adAsins":["B09LJWZT6G"],"count":0})", "invalid_field", "count", "from 1 to"},
      {"count negative", R"({"adAsins":["B09LJWZT6G"],"count":-3})", "invalid_field", "count", "got -3"},
      {"count fractional", R"({"adAsins":["B09LJWZT6G"],"count":2.5})", "invalid_field", "count", "integer"},
      {"count too large", R"({"adAsins":["B09LJWZT6G"],"count":4294967296})", "invalid_field", "count", "2147483647"},
      {"count null", R"({"adAsins":["B09LJWZT6G"],"count":null})", "invalid_field", "count", "got null"},
      {"locale unknown", R"({"adAsins":["B09LJWZT6G"],"locale":"pt_BR"})", "invalid_field", "locale",
       "en_US, en_GB, zh_CN, es_ES, jp_JP, de_DE, fr_FR, it_IT"},
      {"locale wrong case", R"({"adAsins":["B09LJWZT6G"],"locale":"EN_US"})", "invalid_field", "locale", "one of"},
      {"locale number", R"({"adAsins":["B09LJWZT6G"],"locale":1})", "invalid_field", "locale", "an integer"},
      {"cursor empty", R"({"adAsins":["B09LJWZT6G"],"cursor":""})", "invalid_field", "cursor", "non-empty string"},
      {"cursor number", R"({"adAsins":["B09LJWZT6G"],"cursor":3})", "invalid_field", "cursor", "null or"},
      {"groupBy unknown", R"({"adAsins":["B09LJWZT6G"],"groupBy":"themes"})", "invalid_field", "groupBy",
       "\"asin\" (the default) or \"theme\""},
      {"groupBy null", R"({"adAsins":["B09LJWZT6G"],"groupBy":null})", "invalid_field", "groupBy", "got null"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.name);
    auto r = validate_request(c.body, kMaxAsins);
    if (!c.code) {
      CHECK(r.has_value());
      continue;
    }
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().status == 400);
    CHECK(r.error().code == c.code);
    CHECK(r.error().detail.find(c.says) != std::string::npos);
    std::string field;
    for (const auto& [k, v] : r.error().extensions)
      if (k == "field") field = v;
    CHECK(field == (c.field ? c.field : ""));
  }
}

TEST_CASE("ads request: defaults by groupBy, jp_JP normalization, order and duplicates kept") {
  auto a = validate_request(R"({"adAsins":["B09LJWZT6G","0316769487","B09LJWZT6G"]})", kMaxAsins);
  REQUIRE(a.has_value());
  CHECK(a->count == 100);
  CHECK(a->locale == "en_US");
  CHECK(a->group_by == GroupBy::asin);
  CHECK_FALSE(a->cursor);
  CHECK(a->ad_asins == std::vector<std::string>{"B09LJWZT6G", "0316769487", "B09LJWZT6G"});
  auto t = validate_request(R"({"adAsins":["B09LJWZT6G"],"groupBy":"theme","locale":"ja_JP"})", kMaxAsins);
  REQUIRE(t.has_value());
  CHECK(t->count == 5);
  CHECK(t->locale == "jp_JP");
  CHECK(accept_for(t->group_by) == kThemesMediaType);
  CHECK(accept_for(a->group_by) == kAsinsMediaType);
}

TEST_CASE("ads request: canonical cache key applies defaults and ignores member order, keeps ASIN order") {
  auto key = [](const char* body) {
    auto r = validate_request(body, kMaxAsins);
    REQUIRE(r.has_value());
    return canonical_key(*r);
  };
  CHECK(key(R"({"adAsins":["B09LJWZT6G"]})") ==
        R"({"adAsins":["B09LJWZT6G"],"count":100,"locale":"en_US","groupBy":"asin"})");
  CHECK(key(R"({"groupBy":"asin","locale":"en_US","count":100,"adAsins":["B09LJWZT6G"],"cursor":null})") ==
        key(R"({"adAsins":["B09LJWZT6G"]})"));
  CHECK(key(R"({"adAsins":["B09LJWZT6G"],"locale":"ja_JP"})") == key(R"({"adAsins":["B09LJWZT6G"],"locale":"jp_JP"})"));
  CHECK(key(R"({"adAsins":["B09LJWZT6G"],"groupBy":"theme"})") ==
        R"({"adAsins":["B09LJWZT6G"],"count":5,"locale":"en_US","groupBy":"theme"})");
  CHECK(key(R"({"adAsins":["B09LJWZT6G","0316769487"]})") != key(R"({"adAsins":["0316769487","B09LJWZT6G"]})"));
  CHECK(key(R"({"adAsins":["B09LJWZT6G"],"count":5})") != key(R"({"adAsins":["B09LJWZT6G"],"count":6})"));
}

TEST_CASE("ads request: the upstream body has an integer count, no groupBy, and a cursor only when paging") {
  auto r = validate_request(R"({"adAsins":["B09LJWZT6G"],"count":5,"groupBy":"theme","locale":"ja_JP"})", kMaxAsins);
  REQUIRE(r.has_value());
  CHECK(upstream_body(*r) == R"({"adAsins":["B09LJWZT6G"],"count":5,"locale":"jp_JP"})");
  auto p = validate_request(R"({"adAsins":["B09LJWZT6G"],"cursor":"YzEu\"x"})", kMaxAsins);
  REQUIRE(p.has_value());
  CHECK(upstream_body(*p) == R"({"adAsins":["B09LJWZT6G"],"count":100,"locale":"en_US","cursor":"YzEu\"x"})");
}

TEST_CASE("ads request: JSON media type check") {
  CHECK(is_json_media_type("application/json"));
  CHECK(is_json_media_type("application/json; charset=utf-8"));
  CHECK(is_json_media_type("Application/JSON;charset=UTF-8"));
  CHECK(is_json_media_type("  application/json  "));
  CHECK_FALSE(is_json_media_type(""));
  CHECK_FALSE(is_json_media_type("text/plain"));
  CHECK_FALSE(is_json_media_type("application/jsonx"));
  CHECK_FALSE(is_json_media_type("application/vnd.spproductrecommendation.v3+json"));
  CHECK_FALSE(is_json_media_type("application/x-www-form-urlencoded"));
}

TEST_CASE("ads request: regional hosts, upstream error bodies, Retry-After") {
  CHECK(regional_host("NA") == "https://advertising-api.amazon.com");
  CHECK(regional_host("EU") == "https://advertising-api-eu.amazon.com");
  CHECK(regional_host("FE") == "https://advertising-api-fe.amazon.com");
  CHECK(regional_host("XX").empty());

  auto e = parse_upstream_error(R"({"code":"UNAUTHORIZED","details":"Not authorized to access scope"})");
  REQUIRE(e);
  CHECK(e->code == "UNAUTHORIZED");
  CHECK(e->details == "Not authorized to access scope");
  auto n = parse_upstream_error(R"({"code":422,"details":"bad"})");
  REQUIRE(n);
  CHECK(n->code == "422");
  CHECK_FALSE(parse_upstream_error("<html>"));
  CHECK_FALSE(parse_upstream_error(R"({"message":"x"})"));

  CHECK(parse_retry_after("3") == 3.0);
  CHECK(parse_retry_after(" 0 ") == 0.0);
  CHECK_FALSE(parse_retry_after(""));
  CHECK_FALSE(parse_retry_after("-1"));
  CHECK_FALSE(parse_retry_after("1.5"));
  CHECK_FALSE(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"));
  CHECK_FALSE(parse_retry_after("99999999999"));

  CHECK(is_json_document(R"({"recommendations":[]})"));
  CHECK_FALSE(is_json_document("{"));
  CHECK_FALSE(is_json_document(""));
}

TEST_CASE("ads request: hostile bodies (depth, control characters, invalid UTF-8, too many ASINs)") {
  struct Case {
    const char* name;
    std::string body;
    const char* code;
    const char* field;  // "" for invalid_body
    const char* says;
  };
  std::string many = R"({"adAsins":[)";
  for (int i = 0; i < 101; ++i) many += std::string(i ? "," : "") + "\"B09LJWZT6G\"";
  many += "]}";
  const Case cases[] = {
      {"a million [", std::string(1000000, '['), "invalid_body", "", "deeper than 64"},
      {"65 levels inside adAsins", R"({"adAsins":)" + std::string(65, '[') + std::string(65, ']') + "}",
       "invalid_body", "", "the limit is 64"},
      {"cursor with LF", R"({"adAsins":["B09LJWZT6G"],"cursor":"a\nb"})", "invalid_field", "cursor", "U+000A"},
      {"cursor with DEL", "{\"adAsins\":[\"B09LJWZT6G\"],\"cursor\":\"a\x7F\"}", "invalid_field", "cursor",
       "U+007F"},
      {"cursor with invalid UTF-8", "{\"adAsins\":[\"B09LJWZT6G\"],\"cursor\":\"a\xC3\"}", "invalid_field", "cursor",
       "not valid UTF-8"},
      {"member name with a control", R"({"adAsins":["B09LJWZT6G"],"x\u0001":1})", "invalid_body", "",
       "a member name"},
      {"101 ASINs", many, "invalid_field", "adAsins", "at most 100 are allowed (ads.max_asins)"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.name);
    auto r = validate_request(c.body, kMaxAsins);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().status == 400);
    CHECK(r.error().code == c.code);
    CHECK(r.error().detail.find(c.says) != std::string::npos);
    std::string field;
    for (const auto& [k, v] : r.error().extensions)
      if (k == "field") field = v;
    CHECK(field == c.field);
  }
  std::string hundred = R"({"adAsins":[)";
  for (int i = 0; i < 100; ++i) hundred += std::string(i ? "," : "") + "\"B09LJWZT6G\"";
  hundred += "]}";
  CHECK(validate_request(hundred, kMaxAsins).has_value());
  CHECK_FALSE(validate_request(hundred, 99).has_value());
}

TEST_CASE("ads request: upstream answers nested beyond the limit are not JSON documents") {
  const std::string deep = std::string(1000000, '[') + std::string(1000000, ']');
  CHECK_FALSE(is_json_document(deep));
  CHECK_FALSE(parse_upstream_error("{\"code\":\"X\",\"details\":" + deep + "}"));
  CHECK(is_json_document(std::string(64, '[') + std::string(64, ']')));
}
