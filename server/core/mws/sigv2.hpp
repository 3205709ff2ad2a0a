// MWS request signing: AWS Signature Version 2 with HmacSHA256 over
// "POST\nhost\n/Recommendations/2013-04-01\ncanonical query" (docs/upstreams.md A.3).
// Pure functions; used by recgate to sign (the sandbox verifies with its own
// code, sandbox/signature.cpp, so a shared bug cannot hide on both sides).
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace recgate::mws {

using Params = std::vector<std::pair<std::string, std::string>>;

inline constexpr std::string_view kVersion = "2013-04-01";
inline constexpr std::string_view kPath = "/Recommendations/2013-04-01";

// RFC 3986: A-Z a-z 0-9 - _ . ~ kept, everything else %XY with upper-case hex.
std::string uri_encode(std::string_view s);
// Parses "a=b&c=d" (form body or query string) into decoded pairs
// (http::uri_decode: '+' is not a space).
bool parse_form(std::string_view body, Params& out);

// Every parameter except Signature, sorted by name in byte order (stable for
// equal names), "name=value" joined by '&', both encoded with uri_encode.
std::string canonical_query(const Params& params);
std::string string_to_sign(std::string_view verb, std::string_view host, std::string_view path,
                           const Params& params);
// Base64(HMAC-SHA256(secret, data)).
std::string hmac_sha256_base64(std::string_view secret, std::string_view data);

// "2013-03-04T18:12:21.687Z"
std::string iso8601_utc_ms(std::chrono::system_clock::time_point t);
// Parses ISO 8601 UTC with optional fraction and Z / +00:00 offsets. false if
// malformed or the year is outside 1900-2200 (what the clock holds, with room).
bool parse_iso8601(std::string_view s, std::chrono::system_clock::time_point& out);

struct Credentials {
  std::string seller_id;
  std::string access_key_id;
  std::string secret_key;
  std::string auth_token;  // MWSAuthToken, may be empty
};

// Adds AWSAccessKeyId, Action, SellerId, MWSAuthToken (when set),
// SignatureMethod, SignatureVersion, Timestamp, Version to op_params, signs,
// and returns the form-encoded body (canonical order, Signature last).
// `host` is exactly what goes in the Host header (":port" only when non-standard).
std::string signed_form_body(const Credentials& creds, std::string_view action, Params op_params,
                             std::string_view host, std::string_view path,
                             std::chrono::system_clock::time_point now);

}  // namespace recgate::mws
