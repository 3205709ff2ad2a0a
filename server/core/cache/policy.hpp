// Cache freshness policy for MWS recommendations (docs/design.md §4; RFC 9111 §4.2
// ideas, RFC 9211 Cache-Status). Pure functions of (stored entry, snapshot,
// now, config): no clock, no I/O, unit-tested with tables.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace recgate::cache {

struct PolicyConfig {
  std::int64_t check_interval_s = 60;
  std::int64_t listing_quality_ttl_s = 3600;
  std::int64_t max_stale_s = 86400;
};

// What is stored for one (account, marketplace, category, filters).
struct StoredMeta {
  std::optional<std::string> last_updated;  // the category timestamp it was fetched under
  std::int64_t fetched_at_ms = 0;
};

// The snapshot as known now for this category.
struct SnapshotView {
  bool known = false;                       // a snapshot exists at all
  bool stale = false;                       // the last re-check failed: the snapshot may be outdated
  std::optional<std::string> last_updated;  // the category's current timestamp (null: none)
};

enum class Verdict {
  fresh,    // serve as a hit
  refetch,  // fetch upstream (a miss), may fall back to stale
};

// ListingQuality never has a timestamp; a null timestamp means "none yet":
// both live for listing_quality_ttl_s from fetched_at. Otherwise an entry is
// fresh while its stored timestamp equals the snapshot's.
Verdict classify(const std::string& category, const StoredMeta& e, const SnapshotView& s, std::int64_t now_ms,
                 const PolicyConfig& cfg);

// True when a stored answer may be served stale (upstream failed or quota
// could not be had in time): no older than max_stale_s.
bool stale_allowed(const StoredMeta& e, std::int64_t now_ms, const PolicyConfig& cfg);

// True when the snapshot must be re-checked upstream now.
bool snapshot_due(std::optional<std::int64_t> checked_at_ms, std::int64_t now_ms, bool force, const PolicyConfig& cfg);

// Whole seconds since fetched_at (never negative), for the Age header.
std::int64_t age_seconds(std::int64_t fetched_at_ms, std::int64_t now_ms);

enum class Outcome { hit, miss, stale };
const char* outcome_name(Outcome o);
// RFC 9211 Cache-Status for a response assembled from several outcomes:
// any stale -> "recgate; hit; fwd=stale"; else any miss -> "recgate; fwd=miss; stored";
// else "recgate; hit". `stored` is left out when nothing could be stored.
// [refresh] A hit whose answers include one refreshed ahead in the background
// (refresh/scheduler.hpp): "recgate; hit; detail=refreshed".
std::string cache_status(const std::vector<Outcome>& outcomes, bool stored = true, bool refreshed = false);

// Request directives that matter to us (RFC 9111 §5.2.1).
struct RequestDirectives {
  bool no_cache = false;
  bool only_if_cached = false;
};
RequestDirectives parse_cache_control(const std::string& header);
// Prefer: wait=N (RFC 7240); nullopt when absent or malformed.
std::optional<int> parse_prefer_wait(const std::string& header);
// True when If-None-Match lists etag (or is "*").
bool if_none_match(const std::string& header, const std::string& etag);

}  // namespace recgate::cache
