// [refresh] What every service's refresh source (MWS, Ads) shares, so neither
// copies the other: the record of client asks (a HotSet, kept only with
// cache.refresh_ahead on), the spare-quota wait a refetch uses, how its result
// maps to an Outcome, and when an answer with a TTL is due (pure, on `now`).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/problem.hpp"
#include "core/refresh/hot_set.hpp"
#include "core/refresh/scheduler.hpp"
#include "core/upstream/call.hpp"

namespace recgate::refresh {

// Client asks of one service's answers; a no-op with refresh ahead off, so
// the hit path pays nothing then.
class Asks {
 public:
  Asks(bool on, std::size_t max_keys, std::int64_t hot_ms);
  // One client ask for the answer under `key` (hit path included).
  void record(const std::string& key, std::int64_t now_ms) const;
  // The answers asked for within hot_ms, most asked first (see HotSet::take_hot).
  std::vector<HotSet::Hot> take_hot(std::int64_t now_ms);

 private:
  bool on_;
  mutable HotSet hot_;  // internally synchronised: the const hit path records
};

// The quota of a refetch ahead: spare tokens only, never a queue place.
upstream::Quota spare_quota();
// A refetch that failed with `p`: no_spare (stays pending) for no_spare_quota,
// else failed (dropped: the next client fetches as before).
Outcome outcome_of(const Problem& p);
// The lead before expires_at at which a hot answer with a TTL is due: two
// ticks (the first may find no spare quota), at most half the TTL (an answer
// is never refetched right after it was fetched).
std::int64_t ttl_lead_ms(std::int64_t ttl_ms, std::int64_t tick_ms);
// True once an answer fetched at fetched_ms and expiring at expires_ms is
// within its lead of expiring (or has expired); never for one without a
// lifetime (expires_ms <= fetched_ms).
bool ttl_due(std::int64_t fetched_ms, std::int64_t expires_ms, std::int64_t now_ms, std::int64_t tick_ms);

}  // namespace recgate::refresh
