// What bounds a quota wait (Prefer: wait=N, design §3). A single request's
// limit is its own deadline; a coalesced flight's (core/coalesce.hpp) is the
// latest deadline among the requests still riding on it, and it is told while
// its work is queued for quota, so that each rider can leave at its own limit.
#pragma once

#include <functional>
#include <memory>
#include <optional>

#include "core/problem.hpp"

namespace recgate {

// Builds the 429 (Retry-After, RateLimit-Policy, RateLimit) for a request that
// leaves a queued quota wait after `max_wait_s`, its own limit.
using QueueReject = std::function<Problem(double max_wait_s)>;

class WaitLimit {
 public:
  virtual ~WaitLimit() = default;
  // The latest time the wait may end, in seconds on the throttler's clock.
  virtual double deadline() const = 0;
  // A request's own limit: seconds left now and the whole limit. nullopt for a
  // flight's, whose riders each have their own.
  virtual std::optional<double> remaining_s() const { return std::nullopt; }
  virtual double limit_s() const { return 0; }
  // The throttler queues the work this limit bounds for a token (reject set),
  // or no longer (reject empty). Called outside the throttler's lock.
  virtual void queued(const QueueReject& reject) { (void)reject; }
};
using WaitLimitPtr = std::shared_ptr<WaitLimit>;

// One request's limit: `limit_s` from `clock()` now.
WaitLimitPtr wait_limit_for(std::function<double()> clock, double limit_s);

}  // namespace recgate
