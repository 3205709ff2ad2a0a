// AWS Signature Version 2 (HmacSHA256) for MWS, as in docs/upstreams.md A.3: RFC 3986
// encoding, canonical query sorted by parameter name, Base64 HMAC, ISO 8601
// timestamps. Pure core logic over strings; OpenSSL for the HMAC only.
#include "core/mws/sigv2.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cstdio>

#include "core/http/url.hpp"

namespace recgate::mws {
namespace {

bool is_unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_' || c == '.' || c == '~';
}

// Each "/"-separated segment encoded on its own; empty means "/".
std::string encode_path(std::string_view path) {
  if (path.empty()) return "/";
  std::string out;
  std::size_t start = 0;
  while (true) {
    const std::size_t slash = path.find('/', start);
    out += uri_encode(path.substr(start, slash - start));
    if (slash == std::string_view::npos) break;
    out += '/';
    start = slash + 1;
  }
  return out;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

bool read_digits(std::string_view s, std::size_t& pos, std::size_t n, int& out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const char c = s[pos + i];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  pos += n;
  out = v;
  return true;
}

constexpr int kMinYear = 1900;
constexpr int kMaxYear = 2200;

bool expect(std::string_view s, std::size_t& pos, char c) {
  if (pos >= s.size() || s[pos] != c) return false;
  ++pos;
  return true;
}

}  // namespace

std::string uri_encode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size() * 3);
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (is_unreserved(c)) {
      out += ch;
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0x0F];
    }
  }
  return out;
}

bool parse_form(std::string_view body, Params& out) {
  Params result;
  std::size_t start = 0;
  while (start <= body.size()) {
    std::size_t amp = body.find('&', start);
    if (amp == std::string_view::npos) amp = body.size();
    const std::string_view piece = body.substr(start, amp - start);
    if (!piece.empty()) {
      const std::size_t eq = piece.find('=');
      std::string name;
      std::string value;
      if (!http::uri_decode(piece.substr(0, eq), name)) return false;
      if (eq != std::string_view::npos && !http::uri_decode(piece.substr(eq + 1), value)) return false;
      result.emplace_back(std::move(name), std::move(value));
    }
    start = amp + 1;
  }
  out = std::move(result);
  return true;
}

std::string canonical_query(const Params& params) {
  std::vector<const std::pair<std::string, std::string>*> sorted;
  sorted.reserve(params.size());
  for (const auto& p : params) {
    if (p.first != "Signature") sorted.push_back(&p);
  }
  std::stable_sort(sorted.begin(), sorted.end(), [](const auto* a, const auto* b) { return a->first < b->first; });
  std::string out;
  for (const auto* p : sorted) {
    if (!out.empty()) out += '&';
    out += uri_encode(p->first);
    out += '=';
    out += uri_encode(p->second);
  }
  return out;
}

std::string string_to_sign(std::string_view verb, std::string_view host, std::string_view path,
                           const Params& params) {
  std::string out(verb);
  out += '\n';
  out += lower(host);
  out += '\n';
  out += encode_path(path);
  out += '\n';
  out += canonical_query(params);
  return out;
}

std::string hmac_sha256_base64(std::string_view secret, std::string_view data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &mac_len);
  std::string out(4 * ((mac_len + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), mac, static_cast<int>(mac_len));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::string iso8601_utc_ms(std::chrono::system_clock::time_point t) {
  using namespace std::chrono;
  const auto ms = floor<milliseconds>(t);
  const auto day = floor<days>(ms);
  const year_month_day ymd{day};
  const hh_mm_ss hms{ms - day};
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                static_cast<int>(hms.seconds().count()), static_cast<int>(hms.subseconds().count()));
  return buf;
}

bool parse_iso8601(std::string_view s, std::chrono::system_clock::time_point& out) {
  using namespace std::chrono;
  std::size_t pos = 0;
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
  if (!read_digits(s, pos, 4, y) || !expect(s, pos, '-') || !read_digits(s, pos, 2, mo) || !expect(s, pos, '-') ||
      !read_digits(s, pos, 2, d) || !expect(s, pos, 'T') || !read_digits(s, pos, 2, h) || !expect(s, pos, ':') ||
      !read_digits(s, pos, 2, mi) || !expect(s, pos, ':') || !read_digits(s, pos, 2, sec)) {
    return false;
  }
  if (h > 23 || mi > 59 || sec > 59) return false;
  // system_clock counts nanoseconds in 64 bits (years 1678-2262): a year
  // outside this range would overflow, and before 1900 could print as a
  // negative year that does not parse back.
  if (y < kMinYear || y > kMaxYear) return false;
  const year_month_day ymd{year{y}, month{static_cast<unsigned>(mo)}, day{static_cast<unsigned>(d)}};
  if (!ymd.ok()) return false;

  nanoseconds fraction{0};
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    const std::size_t first = pos;
    std::int64_t ns = 0;
    int scale = 0;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      if (scale < 9) {
        ns = ns * 10 + (s[pos] - '0');
        ++scale;
      }
      ++pos;
    }
    if (pos == first) return false;
    for (; scale < 9; ++scale) ns *= 10;
    fraction = nanoseconds{ns};
  }

  minutes offset{0};
  if (pos < s.size() && s[pos] == 'Z') {
    ++pos;
  } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
    const bool negative = s[pos] == '-';
    ++pos;
    int oh = 0, om = 0;
    if (!read_digits(s, pos, 2, oh) || !expect(s, pos, ':') || !read_digits(s, pos, 2, om)) return false;
    if (oh > 23 || om > 59) return false;
    offset = hours{oh} + minutes{om};
    if (negative) offset = -offset;
  } else {
    return false;
  }
  if (pos != s.size()) return false;

  const auto local = sys_days{ymd} + hours{h} + minutes{mi} + seconds{sec} + fraction;
  out = time_point_cast<system_clock::duration>(local - offset);
  return true;
}

std::string signed_form_body(const Credentials& creds, std::string_view action, Params op_params,
                             std::string_view host, std::string_view path,
                             std::chrono::system_clock::time_point now) {
  Params params = std::move(op_params);
  params.emplace_back("AWSAccessKeyId", creds.access_key_id);
  params.emplace_back("Action", std::string(action));
  params.emplace_back("SellerId", creds.seller_id);
  if (!creds.auth_token.empty()) params.emplace_back("MWSAuthToken", creds.auth_token);
  params.emplace_back("SignatureMethod", "HmacSHA256");
  params.emplace_back("SignatureVersion", "2");
  params.emplace_back("Timestamp", iso8601_utc_ms(now));
  params.emplace_back("Version", std::string(kVersion));
  const std::string signature = hmac_sha256_base64(creds.secret_key, string_to_sign("POST", host, path, params));
  std::string body = canonical_query(params);
  body += "&Signature=";
  body += uri_encode(signature);
  return body;
}

}  // namespace recgate::mws
