// Login with Amazon as pure functions: the refresh form body (URL-encoded,
// '|' in refresh tokens), parsing token answers and LWA errors, regional
// token endpoints, and the token lifetime policy with `now` as a parameter.
#include <doctest/doctest.h>

#include "core/ads/lwa.hpp"

using namespace recgate::ads;

namespace {
constexpr std::int64_t kNow = 1'800'000'000'000;
}  // namespace

TEST_CASE("ads lwa: token lifetime policy table") {
  struct Case {
    const char* name;
    TokenTimes times;
    std::int64_t now;
    std::int64_t margin_s;
    bool usable;
  };
  const TokenTimes hour = token_times(kNow, 3600);
  const TokenTimes two_s = token_times(kNow, 2);
  const Case cases[] = {
      {"fresh hour token", hour, kNow, 300, true},
      {"just before the margin", hour, kNow + 3299'999, 300, true},
      {"at the margin: refresh", hour, kNow + 3300'000, 300, false},
      {"expired", hour, kNow + 3600'000, 300, false},
      {"margin 0: usable to the last ms", hour, kNow + 3599'999, 0, true},
      {"margin 0: not at expiry", hour, kNow + 3600'000, 0, false},
      {"2 s token, 300 s margin: capped at a tenth (200 ms)", two_s, kNow + 1799, 300, true},
      {"2 s token at 1.8 s: refresh", two_s, kNow + 1800, 300, false},
      {"unknown obtained_at: full margin", TokenTimes{0, kNow + 3600'000}, kNow + 3299'999, 300, true},
      {"unknown obtained_at at the margin", TokenTimes{0, kNow + 3600'000}, kNow + 3300'000, 300, false},
      {"negative margin acts as 0", hour, kNow + 3599'999, -5, true},
      {"clock behind obtained_at", hour, kNow - 60'000, 300, true},
      {"zero lifetime", token_times(kNow, 0), kNow, 300, false},
  };
  for (const auto& c : cases) {
    CAPTURE(c.name);
    CHECK(token_usable(c.times, c.now, c.margin_s) == c.usable);
  }
  CHECK(effective_margin_ms(hour, 300) == 300'000);
  CHECK(effective_margin_ms(hour, 600) == 360'000);
  CHECK(effective_margin_ms(two_s, 300) == 200);
  CHECK(refresh_due_ms(hour, 300) == kNow + 3300'000);
  CHECK(hour.obtained_at_ms == kNow);
  CHECK(hour.expires_at_ms == kNow + 3600'000);
}

TEST_CASE("ads lwa: refresh form body is URL-encoded in the documented order") {
  CHECK(refresh_form_body("amzn1.application-oa2-client.x", "s3cr/t+=&", "Atzr|IwEB a") ==
        "grant_type=refresh_token&refresh_token=Atzr%7CIwEB%20a&client_id=amzn1.application-oa2-client.x"
        "&client_secret=s3cr%2Ft%2B%3D%26");
  CHECK(kFormMediaType == "application/x-www-form-urlencoded;charset=UTF-8");
}

TEST_CASE("ads lwa: regional token endpoints") {
  CHECK(lwa_token_url("NA") == "https://api.amazon.com/auth/o2/token");
  CHECK(lwa_token_url("EU") == "https://api.amazon.co.uk/auth/o2/token");
  CHECK(lwa_token_url("FE") == "https://api.amazon.co.jp/auth/o2/token");
  CHECK(lwa_token_url("SA").empty());
}

TEST_CASE("ads lwa: token answers and errors") {
  struct Case {
    const char* name;
    int status;
    const char* body;
    const char* error;  // nullptr: a token
  };
  const Case cases[] = {
      {"ok", 200, R"({"access_token":"Atza|abc","refresh_token":"Atzr|x","token_type":"bearer","expires_in":3600})",
       nullptr},
      {"ok, Bearer capitalised", 200, R"({"access_token":"Atza|abc","token_type":"Bearer","expires_in":60})", nullptr},
      {"invalid_grant", 400,
       R"({"error":"invalid_grant","error_description":"The request has an invalid grant parameter : refresh_token"})",
       "invalid_grant"},
      {"invalid_client", 401, R"({"error":"invalid_client","error_description":"Client authentication failed"})",
       "invalid_client"},
      {"invalid_request", 400, R"({"error":"invalid_request"})", "invalid_request"},
      {"HTML error page", 503, "<html>busy</html>", "HTTP503"},
      {"empty error", 400, R"({"error":""})", "HTTP400"},
      {"200 without token", 200, R"({"token_type":"bearer","expires_in":3600})", "invalid_response"},
      {"200 with empty token", 200, R"({"access_token":"","token_type":"bearer","expires_in":3600})",
       "invalid_response"},
      {"200 with expires_in string", 200, R"({"access_token":"Atza|a","token_type":"bearer","expires_in":"3600"})",
       "invalid_response"},
      {"200 with zero lifetime", 200, R"({"access_token":"Atza|a","token_type":"bearer","expires_in":0})",
       "invalid_response"},
      {"200 mac token", 200, R"({"access_token":"Atza|a","token_type":"mac","expires_in":10})", "invalid_response"},
      {"200 not JSON", 200, "Atza|a", "invalid_response"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.name);
    auto r = parse_token_response(c.status, c.body);
    if (!c.error) {
      REQUIRE(r.token);
      CHECK(r.token->access_token.rfind("Atza|", 0) == 0);
      CHECK(r.token->expires_in_s > 0);
      continue;
    }
    CHECK_FALSE(r.token);
    CHECK(r.error.error == c.error);
    CHECK(r.error.status == c.status);
  }
  auto g = parse_token_response(400, R"({"error":"invalid_grant","error_description":"revoked"})");
  CHECK(g.error.description == "revoked");
}
