// Exact token-bucket arithmetic: the bucket is full at `full_at_`; each
// request pushes it one period later; a request is refused when that would
// put it more than `capacity` periods ahead of now.
#include "sandbox/bucket.hpp"

#include <algorithm>

namespace recgate::sandbox {

ExactBucket::ExactBucket(std::int64_t capacity, duration restore_every, clock::time_point now)
    : capacity_(std::max<std::int64_t>(capacity, 1)),
      restore_every_(std::max(restore_every, duration(1))),
      full_at_(now) {}

bool ExactBucket::try_take(clock::time_point now) {
  const auto base = std::max(full_at_, now);
  const auto next = base + restore_every_;
  if (next - now > restore_every_ * capacity_) return false;
  full_at_ = next;
  return true;
}

std::int64_t ExactBucket::tokens(clock::time_point now) const {
  if (full_at_ <= now) return capacity_;
  const auto missing_time = full_at_ - now;
  const std::int64_t missing = (missing_time + restore_every_ - duration(1)) / restore_every_;
  return std::max<std::int64_t>(0, capacity_ - missing);
}

ExactBucket::duration ExactBucket::wait_time(clock::time_point now) const {
  const auto excess = (std::max(full_at_, now) + restore_every_ - now) - restore_every_ * capacity_;
  return std::max(excess, duration(0));
}

}  // namespace recgate::sandbox
