// Upstream URL handling for the HTTP client: parsing http(s) URLs, the Host
// header value that MWS signs (SigV2: no standard port), and the MWS
// User-Agent (docs/upstreams.md A.3). Pure functions, unit-tested without sockets.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace recgate::upstream {

struct ParsedUrl {
  std::string scheme;  // "http" or "https", lower case
  std::string host;    // lower case; an IPv6 literal without its brackets
  std::uint16_t port = 0;
  std::string target;  // path and query, "/" when empty; the fragment is dropped
};

// Accepts http://host[:port][/path][?query][#fragment] and the same for https.
// Rejects other schemes, user info, empty or malformed hosts, bad ports, and
// whitespace, control or non-ASCII bytes anywhere.
std::optional<ParsedUrl> parse_url(std::string_view url);

// "host", "host:8443", "[::1]:8080": the port only when it is not the
// scheme's default.
std::string host_header_value(const ParsedUrl& url);

bool is_default_port(const ParsedUrl& url);

// "app/version (Language=C++; Platform=Linux)" with the MWS escaping rules:
// a backslash before '\' and '/' in the name and before '\' and '(' in the version.
std::string mws_user_agent(std::string_view app, std::string_view version);

}  // namespace recgate::upstream
