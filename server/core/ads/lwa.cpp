// Login with Amazon helpers and token lifetime policy (see lwa.hpp).
#include "core/ads/lwa.hpp"

#include <rapidjson/document.h>

#include <algorithm>
#include <cctype>

#include "core/json.hpp"

namespace recgate::ads {

namespace {

std::string form_encode(std::string_view s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size() * 3);
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

}  // namespace

std::string lwa_token_url(std::string_view region) {
  if (region == "NA") return "https://api.amazon.com/auth/o2/token";
  if (region == "EU") return "https://api.amazon.co.uk/auth/o2/token";
  if (region == "FE") return "https://api.amazon.co.jp/auth/o2/token";
  return "";
}

std::string refresh_form_body(std::string_view client_id, std::string_view client_secret,
                              std::string_view refresh_token) {
  return "grant_type=refresh_token&refresh_token=" + form_encode(refresh_token) +
         "&client_id=" + form_encode(client_id) + "&client_secret=" + form_encode(client_secret);
}

TokenParse parse_token_response(int status, std::string_view body) {
  TokenParse out;
  out.error.status = status;
  rapidjson::Document d;
  const bool object = !json::parse(d, body) && d.IsObject();
  auto str = [&](const char* name) -> std::optional<std::string> {
    if (!object) return std::nullopt;
    auto it = d.FindMember(name);
    if (it == d.MemberEnd() || !it->value.IsString()) return std::nullopt;
    return std::string(it->value.GetString(), it->value.GetStringLength());
  };
  if (status != 200) {
    auto err = str("error");
    out.error.error = err && !err->empty() ? *err : "HTTP" + std::to_string(status);
    out.error.description = str("error_description").value_or("");
    return out;
  }
  auto token = str("access_token");
  auto type = str("token_type");
  std::int64_t expires_in = 0;
  if (object) {
    auto it = d.FindMember("expires_in");
    if (it != d.MemberEnd() && it->value.IsInt64()) expires_in = it->value.GetInt64();
  }
  if (!token || token->empty() || !type || !iequals(*type, "bearer") || expires_in <= 0) {
    out.error.error = "invalid_response";
    out.error.description = "the token endpoint answered 200 without access_token, token_type bearer and expires_in";
    return out;
  }
  out.token = TokenAnswer{std::move(*token), std::move(*type), expires_in};
  return out;
}

std::int64_t effective_margin_ms(const TokenTimes& t, std::int64_t margin_s) {
  std::int64_t margin = std::max<std::int64_t>(0, margin_s) * 1000;
  if (t.obtained_at_ms > 0 && t.expires_at_ms > t.obtained_at_ms)
    margin = std::min(margin, (t.expires_at_ms - t.obtained_at_ms) / 10);
  return margin;
}

std::int64_t refresh_due_ms(const TokenTimes& t, std::int64_t margin_s) {
  return t.expires_at_ms - effective_margin_ms(t, margin_s);
}

bool token_usable(const TokenTimes& t, std::int64_t now_ms, std::int64_t margin_s) {
  return now_ms < refresh_due_ms(t, margin_s);
}

TokenTimes token_times(std::int64_t now_ms, std::int64_t expires_in_s) {
  return TokenTimes{now_ms, now_ms + std::max<std::int64_t>(0, expires_in_s) * 1000};
}

}  // namespace recgate::ads
