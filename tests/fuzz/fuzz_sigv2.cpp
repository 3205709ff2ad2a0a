// libFuzzer target: SigV2 canonicalisation and signing, and the upstream URL
// and Host header it signs. Input lines: URL, secret key, form parameters,
// ISO 8601 timestamp. Checks the round trips the sandbox's verification
// relies on: decode(encode(x)) == x, the canonical query parses back to the
// sorted parameters, the signed body verifies with the same secret, an
// accepted timestamp prints and parses back to the same millisecond.
#include <algorithm>
#include <chrono>

#include "core/http/url.hpp"
#include "core/mws/sigv2.hpp"
#include "core/upstream/url.hpp"
#include "fuzz_util.hpp"

namespace {

namespace mws = recgate::mws;
namespace up = recgate::upstream;
using std::chrono::system_clock;

void check_encoding(std::string_view s) {
  std::string back;
  FUZZ_CHECK(recgate::http::uri_decode(mws::uri_encode(s), back) && back == s, s);
}

void check_canonical(const mws::Params& params, std::string_view in) {
  mws::Params sorted;
  for (const auto& p : params)
    if (p.first != "Signature") sorted.push_back(p);
  std::stable_sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  mws::Params parsed;
  FUZZ_CHECK(mws::parse_form(mws::canonical_query(params), parsed), in);
  FUZZ_CHECK(parsed == sorted, in);
}

// The sandbox's check: recompute the signature over the received parameters.
void check_signature(std::string_view secret, const mws::Params& op, std::string_view host, std::string_view path,
                     system_clock::time_point now, std::string_view in) {
  mws::Credentials creds{"A1SELLER", "AKIAFUZZ", std::string(secret), host.size() % 2 ? "amzn.mws.token" : ""};
  const std::string body = mws::signed_form_body(creds, "ListRecommendations", op, host, path, now);
  mws::Params received;
  FUZZ_CHECK(mws::parse_form(body, received), body);
  FUZZ_CHECK(!received.empty() && received.back().first == "Signature", body);
  const std::string expected = mws::hmac_sha256_base64(secret, mws::string_to_sign("POST", host, path, received));
  FUZZ_CHECK(received.back().second == expected, in);
}

void check_timestamp(std::string_view s) {
  system_clock::time_point t;
  if (!mws::parse_iso8601(s, t)) return;
  const auto ms = std::chrono::floor<std::chrono::milliseconds>(t);
  system_clock::time_point back;
  const std::string printed = mws::iso8601_utc_ms(t);
  FUZZ_CHECK(mws::parse_iso8601(printed, back), printed);
  FUZZ_CHECK(back == ms, printed);
}

void check_url(std::string_view s) {
  auto u = up::parse_url(s);
  if (!u) return;
  FUZZ_CHECK(u->scheme == "http" || u->scheme == "https", s);
  FUZZ_CHECK(!u->host.empty() && u->port != 0, s);
  FUZZ_CHECK(!u->target.empty() && u->target.front() == '/', s);
  // What we put in the Host header names the same origin again.
  const std::string again = u->scheme + "://" + up::host_header_value(*u) + u->target;
  auto v = up::parse_url(again);
  FUZZ_CHECK(v && v->host == u->host && v->port == u->port && v->target == u->target, again);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in = recgate::fuzz::as_view(data, size);
  const auto f = recgate::fuzz::fields(in, 4);
  const std::string_view url = f[0], secret = f[1], form = f[2], stamp = f[3];

  for (auto s : f) check_encoding(s);
  check_url(url);
  check_timestamp(stamp);
  (void)up::mws_user_agent(secret, stamp);

  mws::Params params;
  if (!mws::parse_form(form, params)) return 0;
  check_canonical(params, in);

  auto u = up::parse_url(url);
  const std::string host = u ? up::host_header_value(*u) : "mws.amazonservices.com";
  const std::string path = u ? u->target.substr(0, u->target.find('?')) : std::string(mws::kPath);
  system_clock::time_point now{};
  if (!mws::parse_iso8601(stamp, now)) now = system_clock::time_point{std::chrono::milliseconds(1362420741687)};
  check_signature(secret, params, host, path, now, in);
  return 0;
}
