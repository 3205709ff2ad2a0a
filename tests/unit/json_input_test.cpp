// Hostile input at the unit level: the JSON helper's depth limit and string
// check (tables of odd UTF-8 and control bytes, a million nested brackets),
// and cache keys that no part's bytes can make ambiguous.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "core/ads/lwa.hpp"
#include "core/json.hpp"
#include "core/services/common.hpp"

using namespace recgate;

namespace {

std::string nested(std::size_t depth, bool closed) {
  std::string s(depth, '[');
  if (closed) s.append(depth, ']');
  return s;
}

}  // namespace

TEST_CASE("json: nesting up to the limit parses, one more is too_deep naming the limit") {
  struct Case {
    const char* name;
    std::string text;
    bool ok;
  };
  const std::string objects64 = [] {
    std::string s;
    for (std::size_t i = 0; i < json::kMaxDepth; ++i) s += "{\"a\":";
    s += "1";
    s.append(json::kMaxDepth, '}');
    return s;
  }();
  const Case cases[] = {
      {"flat", "[1,2,3]", true},
      {"64 arrays", nested(json::kMaxDepth, true), true},
      {"64 objects", objects64, true},
      {"65 arrays", nested(json::kMaxDepth + 1, true), false},
      {"65 arrays, unclosed", nested(json::kMaxDepth + 1, false), false},
      {"a million open brackets", nested(1000000, false), false},
      {"a million balanced brackets", nested(1000000, true), false},
  };
  for (const auto& c : cases) {
    CAPTURE(c.name);
    rapidjson::Document d;
    auto e = json::parse(d, c.text);
    if (c.ok) {
      CHECK_FALSE(e);
      continue;
    }
    REQUIRE(e);
    CHECK(e->kind == json::ParseError::Kind::too_deep);
    CHECK(e->message.find("the limit is 64") != std::string::npos);
    CHECK(d.IsNull());
  }
}

TEST_CASE("json: syntax errors keep RapidJSON's reason and offset, comments only when asked") {
  rapidjson::Document d;
  auto e = json::parse(d, "{\"a\":1,}");
  REQUIRE(e);
  CHECK(e->kind == json::ParseError::Kind::syntax);
  CHECK(e->message.find("at offset 7") != std::string::npos);
  CHECK(json::parse(d, "[1] [2]"));  // two values
  CHECK(json::parse(d, "/* c */ {}"));
  json::ParseOptions o;
  o.comments = true;
  CHECK_FALSE(json::parse(d, "/* c */ {} // end", o));
  CHECK(d.IsObject());
}

TEST_CASE("json: clean text table (C0 controls, DEL, invalid UTF-8)") {
  struct Case {
    const char* name;
    std::string s;
    const char* fault;  // nullptr: clean
  };
  const Case cases[] = {
      {"empty", "", nullptr},
      {"ascii", "BrandName=Acme Inc.", nullptr},
      {"2-byte", "Caf\xC3\xA9", nullptr},
      {"3-byte", "\xE2\x82\xAC", nullptr},
      {"4-byte", "\xF0\x9F\x98\x80", nullptr},
      {"U+0080 (C1, allowed)", "\xC2\x80", nullptr},
      {"NUL", std::string("a\0b", 3), "U+0000"},
      {"LF", "a\nb", "U+000A"},
      {"record separator", "A\x1E" "B", "U+001E"},
      {"unit separator", "A\x1F" "B", "U+001F"},
      {"DEL", "a\x7F", "U+007F"},
      {"lone continuation", "\x80", "byte 0x80 at offset 0"},
      {"truncated 2-byte", "ab\xC3", "byte 0xC3 at offset 2"},
      {"overlong /", "\xC0\xAF", "0xC0"},
      {"overlong 3-byte", "\xE0\x80\xAF", "0xE0"},
      {"surrogate", "\xED\xA0\x80", "0xED"},
      {"above U+10FFFF", "\xF4\x90\x80\x80", "0xF4"},
      {"0xFF", "x\xFF", "0xFF at offset 1"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.name);
    CHECK(json::is_clean_text(c.s) == (c.fault == nullptr));
    if (c.fault) CHECK(json::text_fault(c.s).find(c.fault) != std::string::npos);
  }
}

TEST_CASE("json: reject_controls names the member whose string is bad") {
  json::ParseOptions o;
  o.reject_controls = true;
  struct Case {
    const char* name;
    std::string text;
    const char* field;  // nullptr: clean
    const char* says;
  };
  const Case cases[] = {
      {"clean", R"({"cursor":"abc","adAsins":["B09LJWZT6G"]})", nullptr, nullptr},
      {"escaped LF", R"({"cursor":"a\nb"})", "cursor", "U+000A"},
      {"escaped NUL", R"({"cursor":"a\u0000b"})", "cursor", "U+0000"},
      {"raw DEL", "{\"locale\":\"en\x7F\"}", "locale", "U+007F"},
      {"invalid UTF-8", "{\"cursor\":\"\xFF\"}", "cursor", "not valid UTF-8"},
      {"in an array", "{\"adAsins\":[\"B09LJWZT6G\",\"\\u001e\"]}", "adAsins", "U+001E"},
      {"in a member name", R"({"a\tb":1})", "", "a member name"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.name);
    rapidjson::Document d;
    auto e = json::parse(d, c.text, o);
    if (!c.field) {
      CHECK_FALSE(e);
      continue;
    }
    REQUIRE(e);
    CHECK(e->kind == json::ParseError::Kind::bad_string);
    CHECK(e->field == c.field);
    CHECK(e->message.find(c.says) != std::string::npos);
  }
  rapidjson::Document d;
  CHECK_FALSE(json::parse(d, R"({"details":"line\nbreak"})"));  // upstream text: not checked
}

TEST_CASE("cache keys: no part's bytes can make two part lists build the same key") {
  // The issue's example: one filter holding \x1e vs two filters.
  CHECK(svc::key_list({"BrandName=A\x1e" "BrandName=B"}) != svc::key_list({"BrandName=A", "BrandName=B"}));
  CHECK(svc::key_join("a\x1f" "b", "c") != svc::key_join("a", "b\x1f" "c"));
  CHECK(svc::key_join("ab", "") != svc::key_join("a", "b"));
  CHECK(svc::key_join(std::string("1:a")) != svc::key_join("a"));
  CHECK(svc::key_list({}) != svc::key_list({""}));
  const std::string k = svc::key_join("main", "ATVPDKIKX0DER", "Selection", svc::key_list({"BrandName=A:1"}));
  CHECK(svc::key_split(k) ==
        std::vector<std::string>{"main", "ATVPDKIKX0DER", "Selection", svc::key_list({"BrandName=A:1"})});
  // The key of the first parts is a prefix of the longer key (purge by account).
  CHECK(k.rfind(svc::key_join("main"), 0) == 0);
  CHECK(svc::key_join("mainx", "y").rfind(svc::key_join("main"), 0) != 0);
  CHECK(svc::key_split("3:ab").empty());
  CHECK(svc::key_split("x:ab").empty());
  CHECK(svc::key_split("").empty());
}

TEST_CASE("lwa: a token answer nested a million levels is invalid_response, not a crash") {
  const std::string deep = "{\"access_token\":" + std::string(1000000, '[');
  auto r = ads::parse_token_response(200, deep);
  CHECK_FALSE(r.token);
  CHECK(r.error.error == "invalid_response");
  auto rejected = ads::parse_token_response(400, deep);
  CHECK(rejected.error.error == "HTTP400");
}
