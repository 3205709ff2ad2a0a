// The packed cache entry (one allocation: header, key, validator, body held
// deflated where that saves), its identity and gzip rendering (BodyParts,
// and which inflated bodies a thread keeps),
// the open-addressing index under collisions and erasure, and Accept-Encoding
// negotiation.
#include <doctest/doctest.h>
#include <zlib.h>

#include <random>
#include <string>

#include "core/cache/body_parts.hpp"
#include "core/cache/entry.hpp"
#include "core/cache/index.hpp"
#include "core/http/accept_encoding.hpp"

using namespace recgate;
using namespace recgate::cache;

namespace {

EntryData body_of(std::string body) {
  EntryData d;
  d.body = std::move(body);
  return d;
}
EntryData data(std::optional<std::string> validator, std::int64_t fetched, std::int64_t expires, std::string body) {
  EntryData d = body_of(std::move(body));
  d.validator = std::move(validator);
  d.fetched_at_ms = fetched;
  d.expires_at_ms = expires;
  return d;
}

// A recommendation-like JSON list: repetitive, so it compresses several-fold.
std::string list_body(int members) {
  std::string b = "[";
  for (int i = 0; i < members; ++i) {
    if (i) b += ',';
    b += R"({"RecommendationId":"SEL-)" + std::to_string(1000 + i) +
         R"(","RecommendationReason":"Customers are searching for this product","SalesRank":)" +
         std::to_string(17 * i) + "}";
  }
  return b + "]";
}

// Decodes one gzip member with zlib (header and trailer checked by zlib:
// a wrong CRC-32 or ISIZE fails with Z_DATA_ERROR).
std::string gunzip(const std::string& in) {
  z_stream z{};
  REQUIRE(inflateInit2(&z, 16 + MAX_WBITS) == Z_OK);
  std::string out(1 << 20, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  const int rc = inflate(&z, Z_FINISH);
  CHECK(rc == Z_STREAM_END);
  CHECK(z.avail_in == 0);  // nothing after the trailer
  out.resize(out.size() - z.avail_out);
  inflateEnd(&z);
  return out;
}

}  // namespace

TEST_CASE("cache entry: key, validator and body round-trip, a body that compresses is held deflated") {
  const std::string body = list_body(40);
  auto e = make_entry(data("2026-11-22T06:00:01Z", 7, 9, body),
                      "4:main9:Inventory");
  CHECK(e->key() == "4:main9:Inventory");
  CHECK(e->validator() == std::optional<std::string>("2026-11-22T06:00:01Z"));
  CHECK(e->fetched_at_ms == 7);
  CHECK(e->expires_at_ms == 9);
  CHECK(e->body() == body);
  CHECK(e->body_size() == body.size());
  CHECK(e->hash == fnv1a64(body));
  CHECK(e->body_crc32() == crc32_z(0, reinterpret_cast<const Bytef*>(body.data()), body.size()));
  CHECK(e->compressed());
  CHECK(e->stored_body().size() * 3 < body.size());
  // One allocation: the header, then key, validator and stored body.
  CHECK(e->bytes() == sizeof(Entry) + e->key().size() + 20 + e->stored_body().size());
}

TEST_CASE("cache entry: a body deflate would grow is held as it is, no validator is not an empty one") {
  auto tiny = make_entry(body_of("[]"));
  CHECK_FALSE(tiny->compressed());
  CHECK(tiny->stored_body() == "[]");
  CHECK(tiny->body() == "[]");
  CHECK_FALSE(tiny->validator().has_value());
  auto empty_validator = make_entry(data("", 0, 0, "[]"));
  CHECK(empty_validator->validator() == std::optional<std::string>(""));
  // Random bytes do not compress either.
  std::mt19937 rng(7);
  std::string noise(3000, '\0');
  for (auto& c : noise) c = static_cast<char>(rng());
  auto raw = make_entry(body_of(noise));
  CHECK_FALSE(raw->compressed());
  CHECK(raw->body() == noise);
}

TEST_CASE("cache entry: rekey copies the stored body and every field under the new key") {
  EntryData d = data("v1", 5, 0, list_body(10));
  d.refreshed = true;
  auto e = make_entry(d);
  e->stored = false;
  auto k = rekey(*e, "other");
  CHECK(k->key() == "other");
  CHECK(k->validator() == e->validator());
  CHECK(k->stored_body() == e->stored_body());
  CHECK(k->body() == e->body());
  CHECK(k->hash == e->hash);
  CHECK_FALSE(k->stored);
  CHECK(k->refreshed);
  CHECK(k->fetched_at_ms == 5);
}

TEST_CASE("body parts: identity joins text and bodies, gzip gunzips to exactly the identity bytes") {
  auto compressed = make_entry(body_of(list_body(30)));
  auto raw = make_entry(body_of("[]"));
  REQUIRE(compressed->compressed());
  REQUIRE_FALSE(raw->compressed());
  BodyParts parts;
  parts.text() = "{\"a\":";
  parts.entry(compressed);
  parts.text() += ",\"b\":";
  parts.entry(raw);
  parts.text() += ",\"c\":";
  parts.entry(compressed);  // the same entry twice: the hot set's second hit
  parts.text() += "}";
  const std::string want = "{\"a\":" + list_body(30) + ",\"b\":[],\"c\":" + list_body(30) + "}";
  CHECK(parts.identity() == want);
  CHECK(parts.identity_size() == want.size());
  const std::string gz = parts.gzip();
  CHECK(gz.size() < want.size());
  CHECK(gunzip(gz) == want);
  // The stored deflate stream is in the member as it is.
  CHECK(gz.find(std::string(compressed->stored_body())) != std::string::npos);

  BodyParts only_entry;  // the Ads shape: the answer is the entry's body
  only_entry.entry(compressed);
  CHECK(gunzip(only_entry.gzip()) == list_body(30));
  BodyParts only_text;  // the last-updated shape: text only
  only_text.text() = "{\"x\":1}";
  CHECK(gunzip(only_text.gzip()) == "{\"x\":1}");
}

TEST_CASE("cache index: open addressing keeps every key findable through inserts, erasures and growth") {
  Index idx(100000, std::size_t{1} << 40);
  const int n = 5000;
  for (int i = 0; i < n; ++i) idx.put("key" + std::to_string(i), make_entry(body_of(std::to_string(i))));
  CHECK(idx.size() == static_cast<std::size_t>(n));
  // Erase every third: backward-shift deletion must not strand a later key of the same probe run.
  for (int i = 0; i < n; i += 3) CHECK(idx.erase("key" + std::to_string(i)));
  for (int i = 0; i < n; ++i) {
    auto e = idx.find("key" + std::to_string(i));
    if (i % 3 == 0) {
      CHECK_FALSE(e);
    } else {
      REQUIRE(e);
      CHECK(e->body() == std::to_string(i));
      CHECK(e->key() == "key" + std::to_string(i));
    }
  }
  std::size_t bytes = 0;
  for (int i = 0; i < n; ++i)
    if (auto e = idx.find("key" + std::to_string(i))) bytes += e->bytes();
  CHECK(idx.bytes() == bytes);
  CHECK_FALSE(idx.erase("key0"));
  CHECK(idx.erase_prefix("key1") > 0);
  CHECK_FALSE(idx.find("key1"));
  CHECK_FALSE(idx.find("key1234"));
  CHECK(idx.find("key2"));
}

TEST_CASE("accept-encoding: gzip when listed with q > 0 and not ranked below identity") {
  using http::accepts_gzip;
  CHECK(accepts_gzip("gzip"));
  CHECK(accepts_gzip("gzip, deflate, br"));
  CHECK(accepts_gzip("GZIP"));
  CHECK(accepts_gzip("x-gzip"));
  CHECK(accepts_gzip("br;q=1.0, gzip;q=0.8, *;q=0.1"));
  CHECK(accepts_gzip("gzip;q=0.5"));
  CHECK(accepts_gzip("gzip ; q=0.001"));
  CHECK(accepts_gzip("*"));
  CHECK(accepts_gzip("identity;q=0.5, gzip"));
  CHECK_FALSE(accepts_gzip(""));
  CHECK_FALSE(accepts_gzip("identity"));
  CHECK_FALSE(accepts_gzip("deflate, br"));
  CHECK_FALSE(accepts_gzip("gzip;q=0"));
  CHECK_FALSE(accepts_gzip("gzip;q=0.000"));
  CHECK_FALSE(accepts_gzip("gzip;Q=0"));
  CHECK_FALSE(accepts_gzip("*;q=0"));
  CHECK_FALSE(accepts_gzip("gzip;q=0, *"));      // explicit gzip wins over *
  CHECK_FALSE(accepts_gzip("gzip;q=0.5, identity"));  // identity ranked higher
  CHECK_FALSE(accepts_gzip("gzip;q=0.5, *;q=0.9"));   // * stands for identity here
  CHECK_FALSE(accepts_gzip("gzip;q=2"));        // malformed q: element ignored
  CHECK_FALSE(accepts_gzip("gzip;q=0.1234"));
  CHECK_FALSE(accepts_gzip("gzip;q=abc"));
  CHECK_FALSE(accepts_gzip("gzipx"));
  CHECK(accepts_gzip("gzip;q=abc, x-gzip"));  // the well-formed alias still counts
}

TEST_CASE("body parts: a compressed body is kept inflated from its second ask within the window, not its first") {
  forget_hot_bodies();
  const std::string body = list_body(40);
  const EntryPtr e = make_entry(body_of(body), "k-hot");
  REQUIRE(e->compressed());
  REQUIRE(hot_bodies_here() == 0);
  std::string out;
  append_identity(e, out);
  CHECK(out == body);
  CHECK(hot_bodies_here() == 0);  // asked once: inflated straight into the answer
  out.clear();
  append_identity(e, out);
  CHECK(out == body);
  CHECK(hot_bodies_here() == 1);  // asked again: kept
  out = "x";
  append_identity(e, out);
  CHECK(out == "x" + body);
  CHECK(hot_bodies_here() == 1);
  forget_hot_bodies();
  CHECK(hot_bodies_here() == 0);
}
