// [refresh] What the refresh sources share (see source_kit.hpp).
#include "core/refresh/source_kit.hpp"

#include <algorithm>

#include "core/errors.hpp"

namespace recgate::refresh {

Asks::Asks(bool on, std::size_t max_keys, std::int64_t hot_ms) : on_(on), hot_(max_keys, hot_ms) {}

void Asks::record(const std::string& key, std::int64_t now_ms) const {
  if (on_) hot_.record(key, now_ms);
}

std::vector<HotSet::Hot> Asks::take_hot(std::int64_t now_ms) { return hot_.take_hot(now_ms); }

upstream::Quota spare_quota() { return upstream::Quota{upstream::QuotaMode::spare, nullptr, ""}; }

Outcome outcome_of(const Problem& p) {
  return p.code == error_info(Error::no_spare_quota).code ? Outcome::no_spare : Outcome::failed;
}

std::int64_t ttl_lead_ms(std::int64_t ttl_ms, std::int64_t tick_ms) {
  return std::max<std::int64_t>(0, std::min(2 * tick_ms, ttl_ms / 2));
}

bool ttl_due(std::int64_t fetched_ms, std::int64_t expires_ms, std::int64_t now_ms, std::int64_t tick_ms) {
  if (expires_ms <= fetched_ms) return false;  // no lifetime (ads.cache_ttl_s 0): never a hit, nothing to refresh
  return now_ms >= expires_ms - ttl_lead_ms(expires_ms - fetched_ms, tick_ms);
}

}  // namespace recgate::refresh
