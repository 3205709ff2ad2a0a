// Table tests for the upstream client's pure helpers: parse_url,
// host_header_value (the Host that MWS signs), mws_user_agent escaping, and
// Response::header lookup.
#include <doctest/doctest.h>

#include <optional>
#include <string>
#include <vector>

#include "core/upstream/message.hpp"
#include "core/upstream/url.hpp"

using namespace recgate::upstream;

TEST_CASE("parse_url and host_header_value: accepted URLs") {
  struct Row {
    const char* url;
    const char* scheme;
    const char* host;
    std::uint16_t port;
    const char* target;
    const char* host_header;
  };
  const std::vector<Row> rows{
      {"https://mws.amazonservices.com/Recommendations/2013-04-01", "https", "mws.amazonservices.com", 443,
       "/Recommendations/2013-04-01", "mws.amazonservices.com"},
      {"http://example.com", "http", "example.com", 80, "/", "example.com"},
      {"http://example.com/", "http", "example.com", 80, "/", "example.com"},
      {"https://example.com:443/x", "https", "example.com", 443, "/x", "example.com"},
      {"http://example.com:80/x", "http", "example.com", 80, "/x", "example.com"},
      {"https://example.com:80/x", "https", "example.com", 80, "/x", "example.com:80"},
      {"http://example.com:443/x", "http", "example.com", 443, "/x", "example.com:443"},
      {"http://127.0.0.1:8080/a/b?c=d&e=%20f", "http", "127.0.0.1", 8080, "/a/b?c=d&e=%20f", "127.0.0.1:8080"},
      {"HTTPS://MWS.AmazonServices.COM/Path", "https", "mws.amazonservices.com", 443, "/Path",
       "mws.amazonservices.com"},
      {"https://localhost:65535?x=1", "https", "localhost", 65535, "/?x=1", "localhost:65535"},
      {"https://host/p#frag", "https", "host", 443, "/p", "host"},
      {"https://host#frag", "https", "host", 443, "/", "host"},
      {"http://host:/p", "http", "host", 80, "/p", "host"},
      {"http://[::1]:8080/p", "http", "::1", 8080, "/p", "[::1]:8080"},
      {"https://[2001:DB8::1]/", "https", "2001:db8::1", 443, "/", "[2001:db8::1]"},
      {"https://advertising-api.amazon.com/sp/targets/products/recommendations", "https",
       "advertising-api.amazon.com", 443, "/sp/targets/products/recommendations", "advertising-api.amazon.com"},
      {"https://api.amazon.com/auth/o2/token", "https", "api.amazon.com", 443, "/auth/o2/token", "api.amazon.com"},
      {"http://under_score.internal:1/", "http", "under_score.internal", 1, "/", "under_score.internal:1"},
  };
  for (const auto& row : rows) {
    CAPTURE(row.url);
    const auto parsed = parse_url(row.url);
    REQUIRE(parsed.has_value());
    CHECK(parsed->scheme == row.scheme);
    CHECK(parsed->host == row.host);
    CHECK(parsed->port == row.port);
    CHECK(parsed->target == row.target);
    CHECK(host_header_value(*parsed) == row.host_header);
  }
}

TEST_CASE("parse_url: rejected URLs") {
  const std::vector<const char*> rows{
      "",
      "example.com/path",
      "ftp://example.com/",
      "https:/example.com/",
      "https://",
      "https:///path",
      "https://:443/",
      "https://user:pass@example.com/",
      "https://example.com:0/",
      "https://example.com:65536/",
      "https://example.com:123456/",
      "https://example.com:-1/",
      "https://example.com:8a/",
      "https://exa mple.com/",
      "https://example.com/a b",
      "https://example.com/a\r\nHost: evil",
      "https://example.com/\x7f",
      "https://ex\xc3\xa4mple.com/",
      "https://example.com/caf\xc3\xa9",
      "http://[::1/",
      "http://[]/",
      "http://[zz::1]/",
      "http://[::1]x/",
      "http://exa%41mple.com/",
  };
  for (const char* url : rows) {
    CAPTURE(url);
    CHECK_FALSE(parse_url(url).has_value());
  }
}

TEST_CASE("mws_user_agent: format and MWS escaping") {
  struct Row {
    const char* app;
    const char* version;
    const char* expected;
  };
  const std::vector<Row> rows{
      {"recgate", "0.1.0", "recgate/0.1.0 (Language=C++; Platform=Linux)"},
      {"my/app", "1.0", "my\\/app/1.0 (Language=C++; Platform=Linux)"},
      {"back\\slash", "1.0", "back\\\\slash/1.0 (Language=C++; Platform=Linux)"},
      {"app", "1.0 (beta)", "app/1.0 \\(beta) (Language=C++; Platform=Linux)"},
      {"app", "2\\0", "app/2\\\\0 (Language=C++; Platform=Linux)"},
      {"a(b)", "v/1", "a(b)/v/1 (Language=C++; Platform=Linux)"},
  };
  for (const auto& row : rows) {
    CAPTURE(row.app);
    CHECK(mws_user_agent(row.app, row.version) == row.expected);
  }
}

TEST_CASE("Response::header is case-insensitive and returns the first match") {
  Response r;
  r.headers = {{"Content-Type", "text/xml"}, {"x-amzn-RequestId", "abc"}, {"Set-Cookie", "a"}, {"set-cookie", "b"}};
  CHECK(r.header("content-type") == "text/xml");
  CHECK(r.header("CONTENT-TYPE") == "text/xml");
  CHECK(r.header("X-Amzn-RequestId") == "abc");
  CHECK(r.header("set-cookie") == "a");
  CHECK(r.header("Retry-After").empty());
  CHECK(r.header("Content-Typ").empty());
}

TEST_CASE("ErrorKind names are stable") {
  CHECK(to_string(ErrorKind::none) == "none");
  CHECK(to_string(ErrorKind::tls_failed) == "tls_failed");
  CHECK(to_string(ErrorKind::too_large) == "too_large");
  CHECK(Result{}.ok());
  CHECK_FALSE(Result{ErrorKind::dropped, "x", {}}.ok());
}
