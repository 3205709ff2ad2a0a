// Unit tests for core/http/url: percent-decoding, query parsing ('+' a
// space, bad escapes refused), host:port splitting and the access log's
// scrub of secret-looking query values.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "core/http/url.hpp"

using namespace recgate::http;

TEST_CASE("http url: uri_decode") {
  struct DecodeRow {
    std::string in;
    bool ok;
    std::string out;
  };
  const std::vector<DecodeRow> decodes = {
      {"a+b", true, "a+b"},        {"%7e%7E", true, "~~"}, {"%c3%a9", true, "é"}, {"%", false, ""},
      {"%4", false, ""},           {"%G1", false, ""},     {"%1G", false, ""},    {"abc%", false, ""},
      {"abc%2", false, ""},        {"%%41", false, ""},    {"%2541", true, "%41"}, {"plain", true, "plain"},
  };
  for (const auto& d : decodes) {
    CAPTURE(d.in);
    std::string out = "untouched";
    CHECK(uri_decode(d.in, out) == d.ok);
    CHECK(out == (d.ok ? d.out : std::string("untouched")));
  }
}

TEST_CASE("http url: parse_query decodes pairs in order, '+' as a space, and refuses bad escapes") {
  struct Row {
    const char* in;
    bool ok;
    QueryParams out;
  };
  const std::vector<Row> rows{
      {"", true, {}},
      {"a=1&b=2", true, {{"a", "1"}, {"b", "2"}}},
      {"a+b=c+d&e=%41%2B", true, {{"a b", "c d"}, {"e", "A+"}}},
      {"flag&&x=", true, {{"flag", ""}, {"x", ""}}},
      {"a=1&b=%G0", false, {}},
      {"%=1", false, {}},
  };
  for (const auto& r : rows) {
    CAPTURE(r.in);
    QueryParams got;
    CHECK(parse_query(r.in, got) == r.ok);
    if (r.ok) CHECK(got == r.out);
  }
}

TEST_CASE("http url: split_host_port") {
  std::string h;
  std::uint16_t p = 0;
  CHECK(split_host_port("127.0.0.1:0", h, p));
  CHECK(h == "127.0.0.1");
  CHECK(p == 0);
  CHECK(split_host_port("[::1]:8080", h, p));
  CHECK(h == "::1");
  CHECK(p == 8080);
  CHECK_FALSE(split_host_port("::1:80", h, p));
  CHECK_FALSE(split_host_port(":80", h, p));
  CHECK_FALSE(split_host_port("host:", h, p));
  CHECK_FALSE(split_host_port("host:65536", h, p));
  CHECK_FALSE(split_host_port("host:8o", h, p));
}

TEST_CASE("http url: redact_target hides the values of secret-looking query parameters only") {
  CHECK(redact_target("/v1/status") == "/v1/status");
  CHECK(redact_target("/x?a=1&api_key=s3cret&Token=t&b") == "/x?a=1&api_key=REDACTED&Token=REDACTED&b");
  CHECK(redact_target("/x?Signature=abc&secretive") == "/x?Signature=REDACTED&secretive");
}
