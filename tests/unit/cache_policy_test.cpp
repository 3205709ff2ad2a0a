// Cache policy as pure functions of (stored entry, snapshot, now, config),
// header parsing (Cache-Control, Prefer, If-None-Match), Cache-Status, and
// the in-memory index's bounds.
#include <doctest/doctest.h>

#include "core/cache/index.hpp"
#include "core/cache/policy.hpp"

using namespace recgate::cache;

namespace {
const PolicyConfig kCfg{60, 3600, 86400};
constexpr std::int64_t kNow = 1'800'000'000'000;
std::optional<std::string> ts(const char* s) { return std::string(s); }
EntryData body_of(std::string body) {
  EntryData d;
  d.body = std::move(body);
  return d;
}
}  // namespace

TEST_CASE("cache policy: classify by timestamp, TTL for ListingQuality and null timestamps") {
  struct Case {
    const char* name;
    std::string category;
    StoredMeta entry;
    SnapshotView snap;
    Verdict expect;
  };
  const Case cases[] = {
      {"same timestamp: hit", "Inventory", {ts("2026-11-20T08:00:00Z"), kNow - 999'000'000}, {true, false, ts("2026-11-20T08:00:00Z")}, Verdict::fresh},
      {"changed timestamp: refetch", "Inventory", {ts("2026-11-20T08:00:00Z"), kNow - 1000}, {true, false, ts("2026-11-21T08:00:00Z")}, Verdict::refetch},
      {"stored without timestamp, now has one", "Pricing", {std::nullopt, kNow - 1000}, {true, false, ts("2026-11-21T08:00:00Z")}, Verdict::refetch},
      {"timestamp became null: refetch", "Pricing", {ts("2026-11-20T08:00:00Z"), kNow - 1000}, {true, false, std::nullopt}, Verdict::refetch},
      {"null timestamp, young: TTL hit", "GlobalSelling", {std::nullopt, kNow - 3599'000}, {true, false, std::nullopt}, Verdict::fresh},
      {"null timestamp, old: TTL expired", "GlobalSelling", {std::nullopt, kNow - 3600'000}, {true, false, std::nullopt}, Verdict::refetch},
      {"ListingQuality young", "ListingQuality", {std::nullopt, kNow - 10'000}, {true, false, std::nullopt}, Verdict::fresh},
      {"ListingQuality old", "ListingQuality", {std::nullopt, kNow - 4000'000}, {true, false, std::nullopt}, Verdict::refetch},
      {"ListingQuality ignores snapshot timestamps", "ListingQuality", {std::nullopt, kNow - 10'000}, {true, false, ts("x")}, Verdict::fresh},
      {"no snapshot at all: TTL", "Inventory", {ts("t"), kNow - 10'000}, {false, false, std::nullopt}, Verdict::fresh},
      {"entry from the future (clock stepped back): refetch", "GlobalSelling", {std::nullopt, kNow + 5000}, {true, false, std::nullopt}, Verdict::refetch},
  };
  for (const auto& c : cases) {
    CAPTURE(c.name);
    CHECK(classify(c.category, c.entry, c.snap, kNow, kCfg) == c.expect);
  }
}

TEST_CASE("cache policy: stale allowed up to max_stale_s") {
  CHECK(stale_allowed({std::nullopt, kNow - 86400'000}, kNow, kCfg));
  CHECK_FALSE(stale_allowed({std::nullopt, kNow - 86400'001}, kNow, kCfg));
  CHECK_FALSE(stale_allowed({std::nullopt, kNow - 1}, kNow, PolicyConfig{60, 3600, 0}));
}

TEST_CASE("cache policy: snapshot re-check due after check_interval_s, forced by no-cache") {
  CHECK(snapshot_due(std::nullopt, kNow, false, kCfg));
  CHECK_FALSE(snapshot_due(kNow - 59'999, kNow, false, kCfg));
  CHECK(snapshot_due(kNow - 60'000, kNow, false, kCfg));
  CHECK(snapshot_due(kNow - 1, kNow, true, kCfg));
  CHECK(snapshot_due(kNow + 10'000, kNow, false, kCfg));  // checked "in the future": clock went back
  CHECK(snapshot_due(kNow, kNow, false, PolicyConfig{0, 3600, 86400}));
}

TEST_CASE("cache policy: Age and Cache-Status (RFC 9211)") {
  CHECK(age_seconds(kNow - 2500, kNow) == 2);
  CHECK(age_seconds(kNow + 2500, kNow) == 0);
  CHECK(cache_status({Outcome::hit, Outcome::hit}) == "recgate; hit");
  CHECK(cache_status({Outcome::hit, Outcome::miss}) == "recgate; fwd=miss; stored");
  CHECK(cache_status({Outcome::miss, Outcome::stale}) == "recgate; hit; fwd=stale");
  CHECK(cache_status({Outcome::miss}, false) == "recgate; fwd=miss");
}

TEST_CASE("cache policy: request header parsing") {
  struct CC {
    const char* header;
    bool no_cache;
    bool only;
  };
  for (const auto& c : {CC{"", false, false}, CC{"no-cache", true, false}, CC{"No-Cache", true, false},
                        CC{" only-if-cached ", false, true}, CC{"max-age=0", true, false},
                        CC{"max-age=10, only-if-cached", false, true}, CC{"no-cache=\"x\"", true, false},
                        CC{"no-store", false, false}}) {
    CAPTURE(c.header);
    auto d = parse_cache_control(c.header);
    CHECK(d.no_cache == c.no_cache);
    CHECK(d.only_if_cached == c.only);
  }
  CHECK(parse_prefer_wait("wait=10") == 10);
  CHECK(parse_prefer_wait("respond-async, wait=0") == 0);
  CHECK(parse_prefer_wait("wait=\"7\"") == 7);
  CHECK(parse_prefer_wait("handling=lenient; wait=3") == 3);
  CHECK_FALSE(parse_prefer_wait("wait=-1").has_value());
  CHECK_FALSE(parse_prefer_wait("wait=abc").has_value());
  CHECK_FALSE(parse_prefer_wait("waiting=5").has_value());
  CHECK_FALSE(parse_prefer_wait("").has_value());
  CHECK(if_none_match("\"a\", \"b\"", "\"b\""));
  CHECK(if_none_match("W/\"b\"", "\"b\""));
  CHECK(if_none_match("*", "\"b\""));
  CHECK_FALSE(if_none_match("\"a\"", "\"b\""));
  CHECK_FALSE(if_none_match("", "\"b\""));
}

TEST_CASE("cache index: bounded by entries and bytes, least recently used evicted first") {
  Index idx(100, 1 << 30);
  auto make = [](std::string body) { return make_entry(body_of(std::move(body))); };
  for (int i = 0; i < 100; ++i) idx.put("k" + std::to_string(i), make("v"));
  CHECK(idx.size() == 100);
  for (int i = 50; i < 100; ++i) REQUIRE(idx.find("k" + std::to_string(i)));  // touch the newer half
  for (int i = 100; i < 150; ++i) idx.put("k" + std::to_string(i), make("v"));
  CHECK(idx.size() <= 100);
  int survivors_old = 0, survivors_touched = 0;
  for (int i = 0; i < 50; ++i) survivors_old += idx.find("k" + std::to_string(i)) ? 1 : 0;
  for (int i = 50; i < 100; ++i) survivors_touched += idx.find("k" + std::to_string(i)) ? 1 : 0;
  CHECK(survivors_touched > survivors_old);
  CHECK(idx.evictions() >= 50);

  Index small(1000, 4096);
  for (int i = 0; i < 20; ++i) small.put("b" + std::to_string(i), make(std::string(500, 'x')));
  CHECK(small.bytes() <= 4096);
  const auto n = small.size();
  CHECK(small.erase_prefix("b") == n);
  CHECK(small.size() == 0);
}

TEST_CASE("cache index: finding the most recently used entry again writes nothing, and order stays exact") {
  Index idx(2, 1 << 20);
  auto make = [] { return make_entry(body_of("v")); };
  idx.put("a", make());
  idx.put("b", make());
  const auto a = idx.find("a");  // a is now the most recent
  const auto tick = a->last_access.load();
  for (int i = 0; i < 5; ++i) REQUIRE(idx.find("a"));
  CHECK(a->last_access.load() == tick);  // already the latest: not written again
  idx.put("c", make());                   // over the bound: the least recently used goes
  CHECK(idx.find("b") == nullptr);
  CHECK(idx.find("a"));
  CHECK(idx.find("c"));
  REQUIRE(idx.find("a"));                 // a after c: now c is the oldest
  idx.put("d", make());
  CHECK(idx.find("c") == nullptr);
  CHECK(idx.find("a"));
}

TEST_CASE("cache index: replace keeps byte accounting right") {
  Index idx(10, 1 << 20);
  auto e1 = make_entry(body_of(std::string(1000, 'a')));
  auto e2 = make_entry(body_of(std::string(10, 'b')));
  idx.put("k", e1);
  const auto b1 = idx.bytes();
  idx.put("k", e2);
  CHECK(idx.bytes() < b1);
  CHECK(idx.find("k")->body() == e2->body());
  CHECK(idx.erase("k"));
  CHECK(idx.bytes() == 0);
}

TEST_CASE("cache index: put_if_absent never replaces what a fetch stored (a disk read-back loses to it)") {
  Index idx(10, 1 << 20);
  // Built under the key they are held by: the index keeps them as they are (no re-keyed copy).
  auto fetched = make_entry(body_of("new"), "k");
  auto from_disk = make_entry(body_of("old, read back from SQLite"), "k");
  idx.put("k", fetched);
  const auto bytes = idx.bytes();
  CHECK(idx.put_if_absent("k", from_disk) == fetched);
  CHECK(idx.find("k") == fetched);
  CHECK(idx.bytes() == bytes);
  // Absent: inserted and counted.
  auto other = make_entry(body_of("old, read back from SQLite"), "other");
  CHECK(idx.put_if_absent("other", other) == other);
  CHECK(idx.find("other") == other);
  CHECK(idx.bytes() == bytes + other->bytes());
  // A zero-sized index holds nothing and hands the entry back.
  Index none(0, 0);
  CHECK(none.put_if_absent("k", from_disk) == from_disk);
  CHECK_FALSE(none.find("k"));
}
