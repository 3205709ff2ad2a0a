// Amazon's MWS throttle as the sandbox enforces it: a token bucket of
// `capacity` requests, one restored every `restore_every` (docs/upstreams.md A.1),
// computed exactly in integer time (GCRA form). Pure: `now` is a parameter.
#pragma once

#include <chrono>
#include <cstdint>

namespace recgate::sandbox {

class ExactBucket {
 public:
  using clock = std::chrono::steady_clock;
  using duration = std::chrono::nanoseconds;

  ExactBucket(std::int64_t capacity, duration restore_every, clock::time_point now);

  // Takes one token if one is available at `now`.
  bool try_take(clock::time_point now);
  // Whole tokens available at `now` (0..capacity).
  std::int64_t tokens(clock::time_point now) const;
  // Time until the next token is available (zero when one is).
  duration wait_time(clock::time_point now) const;

  std::int64_t capacity() const { return capacity_; }
  duration restore_every() const { return restore_every_; }

 private:
  std::int64_t capacity_;
  duration restore_every_;
  // When the bucket will be full again; <= now means full.
  clock::time_point full_at_;
};

}  // namespace recgate::sandbox
