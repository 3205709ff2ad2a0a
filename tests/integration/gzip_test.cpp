// [perf] gzip end to end with the real binaries: a client accepting gzip gets
// the cached answer as one gzip member that gunzips to exactly the identity
// body, for MWS (assembled from per-category entries) and Ads (one entry);
// each representation has its own strong ETag and a 304 on it; Vary on both;
// gzip;q=0 and no Accept-Encoding get identity.
#include <doctest/doctest.h>
#include <zlib.h>

#include <string>

#include "harness.hpp"

using namespace rgtest;

namespace {

const std::string kTwoCategories =
    "/v1/mws/main/recommendations?marketplace=ATVPDKIKX0DER&category=Inventory&category=Selection";
const std::string kAdsPath = "/v1/ads/main/product-recommendations";
const std::string kAdsBody = R"({"adAsins":["B09LJWZT6G","0316769487"],"count":5,"locale":"de_DE"})";

using Headers = std::vector<std::pair<std::string, std::string>>;

// zlib's own gzip decoder: the header, CRC-32 and ISIZE are checked.
std::string gunzip(const std::string& in) {
  z_stream z{};
  REQUIRE(inflateInit2(&z, 16 + MAX_WBITS) == Z_OK);
  std::string out(8 << 20, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  const int rc = inflate(&z, Z_FINISH);
  inflateEnd(&z);
  REQUIRE_MESSAGE(rc == Z_STREAM_END, "not one complete gzip member: zlib says " << rc);
  REQUIRE(z.avail_in == 0);
  out.resize(out.size() - z.avail_out);
  return out;
}

// The checks both APIs share, given a way to make the request with extra headers.
template <class Get>
void check_both_representations(Get get) {
  auto identity = get(Headers{});
  REQUIRE_MESSAGE(identity.status == 200, identity.body);
  auto gz = get(Headers{{"Accept-Encoding", "gzip, deflate, br"}});
  REQUIRE_MESSAGE(gz.status == 200, gz.body);
  CHECK(gz.header("cache-status") == "recgate; hit");

  CHECK(identity.header("content-encoding").empty());
  CHECK(gz.header("content-encoding") == "gzip");
  CHECK(identity.header("vary") == "Accept-Encoding");
  CHECK(gz.header("vary") == "Accept-Encoding");
  CHECK(gz.header("content-type") == identity.header("content-type"));
  CHECK(gz.body.size() < identity.body.size());
  CHECK(gunzip(gz.body) == identity.body);

  const std::string etag = identity.header("etag"), gz_etag = gz.header("etag");
  REQUIRE(etag.size() > 2);
  REQUIRE(gz_etag.size() > 2);
  CHECK(etag != gz_etag);
  CHECK(gz_etag.front() == '"');
  CHECK(gz_etag.rfind("W/", 0) == std::string::npos);  // strong

  // 304 on each representation's own ETag; the other's does not match.
  auto nm = get(Headers{{"If-None-Match", etag}});
  CHECK(nm.status == 304);
  CHECK(nm.header("vary") == "Accept-Encoding");
  auto nm_gz = get(Headers{{"Accept-Encoding", "gzip"}, {"If-None-Match", gz_etag}});
  CHECK(nm_gz.status == 304);
  CHECK(nm_gz.body.empty());
  CHECK(nm_gz.header("etag") == gz_etag);
  CHECK(nm_gz.header("vary") == "Accept-Encoding");
  CHECK(get(Headers{{"Accept-Encoding", "gzip"}, {"If-None-Match", etag}}).status == 200);
  CHECK(get(Headers{{"If-None-Match", gz_etag}}).status == 200);

  // gzip;q=0 means "not gzip": identity, with the identity ETag.
  auto refused = get(Headers{{"Accept-Encoding", "gzip;q=0, identity"}});
  REQUIRE(refused.status == 200);
  CHECK(refused.header("content-encoding").empty());
  CHECK(refused.header("etag") == etag);
  CHECK(refused.body == identity.body);
  // Identity ranked above gzip: identity.
  CHECK(get(Headers{{"Accept-Encoding", "gzip;q=0.4, identity;q=0.9"}}).header("content-encoding").empty());
  // A q below 1 is still a yes.
  auto low = get(Headers{{"Accept-Encoding", "gzip;q=0.3"}});
  CHECK(low.header("content-encoding") == "gzip");
  CHECK(low.body == gz.body);  // the same bytes each time: a strong ETag names one byte sequence
}

}  // namespace

TEST_CASE("gzip: an MWS answer of two categories, gzip and identity from the same cache entries") {
  Sandbox sb;
  TempDir dir;
  Recgate rg(dir, test_config(dir, sb.port));
  REQUIRE(http_get(rg.port, kTwoCategories).status == 200);  // the miss that fills the cache
  check_both_representations([&](const Headers& h) { return http_get(rg.port, kTwoCategories, h); });
}

TEST_CASE("gzip: an Ads answer, gzip and identity from the same cache entry") {
  Sandbox sb;
  TempDir dir;
  Recgate rg(dir, test_config(dir, sb.port));
  auto post = [&](const Headers& extra) {
    Headers h{{"Content-Type", "application/json"}};
    h.insert(h.end(), extra.begin(), extra.end());
    return http_request(rg.port, "POST", kAdsPath, kAdsBody, h);
  };
  REQUIRE(post(Headers{}).status == 200);  // the miss that fills the cache
  check_both_representations(post);
}

TEST_CASE("gzip: a miss answered to a gzip client is gzip too, and gunzips to what an identity hit shows") {
  Sandbox sb;
  TempDir dir;
  Recgate rg(dir, test_config(dir, sb.port));
  auto miss = http_get(rg.port, kTwoCategories, {{"Accept-Encoding", "gzip"}});
  REQUIRE(miss.status == 200);
  CHECK(miss.header("content-encoding") == "gzip");
  const std::string unzipped = gunzip(miss.body);
  auto hit = http_get(rg.port, kTwoCategories);
  REQUIRE(hit.status == 200);
  CHECK(hit.header("cache-status") == "recgate; hit");
  // Same entries; only the per-category "cache" outcome differs (miss, then hit).
  CHECK(unzipped.size() == hit.body.size() + 2 * (std::string("miss").size() - std::string("hit").size()));
  CHECK(unzipped.find("\"cache\":\"miss\"") != std::string::npos);
}
