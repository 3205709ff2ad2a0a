// Login with Amazon (docs/upstreams.md B.3): the refresh-token grant's form body, its
// JSON answer and errors, the regional token endpoints, and the token
// lifetime policy (when a stored access token must be refreshed). Pure: no
// Boost, no I/O, `now` is a parameter; used by the Ads service.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace recgate::ads {

// https://api.amazon.com/auth/o2/token (NA), api.amazon.co.uk (EU),
// api.amazon.co.jp (FE); "" for an unknown region.
std::string lwa_token_url(std::string_view region);

inline constexpr std::string_view kFormMediaType = "application/x-www-form-urlencoded;charset=UTF-8";

// grant_type=refresh_token&refresh_token=..&client_id=..&client_secret=..,
// every value percent-encoded (RFC 3986 unreserved kept: '|' becomes %7C).
std::string refresh_form_body(std::string_view client_id, std::string_view client_secret,
                              std::string_view refresh_token);

struct TokenAnswer {
  std::string access_token;
  std::string token_type;
  std::int64_t expires_in_s = 0;
};

// An LWA failure: `error` is LWA's code (invalid_grant, invalid_client, ...)
// or, when the body is not an LWA error object, "HTTP<status>".
struct LwaError {
  int status = 0;
  std::string error;
  std::string description;
};

struct TokenParse {
  std::optional<TokenAnswer> token;  // set on success
  LwaError error;                    // meaningful when !token
};

// Parses the token endpoint's answer: 200 with access_token (non-empty),
// token_type "bearer" (any case) and expires_in > 0; anything else is an
// LwaError (a 200 without those members gives error "invalid_response").
TokenParse parse_token_response(int status, std::string_view body);

// ---- token lifetime policy -------------------------------------------------

struct TokenTimes {
  std::int64_t obtained_at_ms = 0;  // 0: unknown (a token stored by an older recgate)
  std::int64_t expires_at_ms = 0;
};

// The margin actually used: the configured refresh margin, but never more
// than a tenth of the token's lifetime when that is known, so a short-lived
// token (a 2 s sandbox token, say) is still used for 90% of its life instead
// of being refreshed on every call. Amazon's 3600 s tokens with the default
// 300 s margin are refreshed after 3300 s.
std::int64_t effective_margin_ms(const TokenTimes& t, std::int64_t margin_s);

// The instant from which the token is no longer handed out.
std::int64_t refresh_due_ms(const TokenTimes& t, std::int64_t margin_s);

// True while the token may be used at `now_ms`.
bool token_usable(const TokenTimes& t, std::int64_t now_ms, std::int64_t margin_s);

// Times for a token received at now_ms with expires_in seconds of life.
TokenTimes token_times(std::int64_t now_ms, std::int64_t expires_in_s);

}  // namespace recgate::ads
