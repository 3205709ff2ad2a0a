// URL pieces of the HTTP layer, shared with its users: percent-decoding
// (RFC 3986), query strings, "host:port" listen addresses, and the scrub of
// secret-looking query values for the access log. Pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace recgate::http {

using QueryParams = std::vector<std::pair<std::string, std::string>>;

// %XY decoded; '+' is NOT a space. Returns false on a bad escape (out untouched).
bool uri_decode(std::string_view s, std::string& out);
// "a=b&c+d=%41" into decoded pairs in order, '+' a space (HTML forms);
// appends to out. Returns false on a bad escape.
bool parse_query(std::string_view q, QueryParams& out);
// Splits "host:port"; "[::1]:80" allowed. Returns false on a bad form.
bool split_host_port(const std::string& s, std::string& host, std::uint16_t& port);
// The request target with the values of query parameters whose names look
// secret (key, token, secret, signature) replaced by REDACTED.
std::string redact_target(std::string_view target);

}  // namespace recgate::http
