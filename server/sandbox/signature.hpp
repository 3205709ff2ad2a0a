// The sandbox's own Signature Version 2 arithmetic (docs/upstreams.md A.3), kept
// apart from recgate's signer on purpose: the sandbox plays Amazon, so a bug
// shared with the code under test must not cancel out. Pure functions.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace recgate::sandbox {

using Params = std::vector<std::pair<std::string, std::string>>;

// RFC 3986 unreserved kept, everything else %XY with upper-case hex.
std::string amz_encode(std::string_view s);
// application/x-www-form-urlencoded as a servlet container reads it: '+' is
// a space, %XY decoded. false on a malformed escape.
bool form_decode(std::string_view s, std::string& out);
// "a=b&c=d" -> decoded pairs in order; empty segments skipped.
bool parse_form(std::string_view s, Params& out);

// Every parameter but Signature, sorted by name (byte order), name=value
// pairs joined by '&'.
std::string canonical_query(const Params& params);
std::string string_to_sign(std::string_view verb, std::string_view host, std::string_view path,
                           const Params& params);
// method: HmacSHA256 or HmacSHA1. Base64 of the MAC; "" for an unknown method.
std::string sign(std::string_view method, std::string_view secret, std::string_view data);
bool constant_time_equal(std::string_view a, std::string_view b);

// ISO 8601 date-time: YYYY-MM-DDTHH:MM:SS[.fraction][Z|+HH:MM|-HH:MM|+HHMM];
// without a zone designator the time is taken as UTC.
bool parse_timestamp(std::string_view s, std::chrono::system_clock::time_point& out);
// "2013-03-04T18:12:21.687Z"
std::string format_iso_ms(std::chrono::system_clock::time_point t);
// "2013-03-04T18:12:21Z"
std::string format_iso_s(std::chrono::system_clock::time_point t);
// "Mon, 04 Mar 2013 18:12:21 GMT"
std::string format_http_date(std::chrono::system_clock::time_point t);

std::string base64_encode(std::string_view data);
bool base64_decode(std::string_view text, std::string& out);  // strict: standard alphabet, padded

}  // namespace recgate::sandbox
