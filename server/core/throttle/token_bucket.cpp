// Token-bucket arithmetic, the 429 decision and the RateLimit header values;
// see token_bucket.hpp for the margin's reasoning. Pure logic, no I/O.
#include "core/throttle/token_bucket.hpp"

#include <algorithm>
#include <cmath>

namespace recgate {

namespace {
// Floating-point slack: a level within this of the floor counts as reaching it,
// so a timer armed for exactly wait_for() finds its token.
constexpr double kEps = 1e-9;

long long ceil_seconds(double s) {
  if (!(s > kEps)) return 0;
  return static_cast<long long>(std::ceil(s - kEps));
}
}  // namespace

double BucketSpec::grant_floor() const {
  double f = 1.0 + std::max(0.0, reserve_tokens) + 2.0 * std::max(0.0, margin_s) * restore_per_s;
  return std::min(f, std::max(1.0, capacity));
}

TokenBucket::TokenBucket(BucketSpec spec, double tokens, double at)
    : spec_(spec), level_(std::clamp(tokens, 0.0, std::max(0.0, spec.capacity))), at_(at) {}

double TokenBucket::tokens(double now) const {
  if (now <= at_) return level_;
  return std::min(spec_.capacity, level_ + spec_.effective_rate() * (now - at_));
}

void TokenBucket::set_limit(double capacity, double restore_per_s, double now) {
  advance(now);
  spec_.capacity = capacity;
  spec_.restore_per_s = restore_per_s;
  level_ = std::min(level_, capacity);
}

void TokenBucket::advance(double now) {
  if (now <= at_) return;  // clock stepped back (or a hold): no elapsed time
  level_ = tokens(now);
  at_ = now;
}

double TokenBucket::available(double now) const {
  if (now < hold_) return 0;
  double extra = tokens(now) - spec_.grant_floor() + 1.0;
  return extra < 1.0 - kEps ? 0.0 : std::floor(extra + kEps);
}

bool TokenBucket::try_take(double now) {
  advance(now);
  if (now < hold_) return false;
  if (level_ + kEps < spec_.grant_floor()) return false;
  level_ = std::max(0.0, level_ - 1.0);
  return true;
}

double TokenBucket::wait_for(double now, double nth_token) const {
  double base = std::max({now, at_, hold_});
  double needed = spec_.grant_floor() + std::max(1.0, nth_token) - 1.0 - tokens(base);
  double wait = base - now;
  if (needed > kEps) {
    double rate = spec_.effective_rate();
    if (!(rate > 0)) return HUGE_VAL;
    wait += needed / rate;
  }
  return wait;
}

void TokenBucket::drain(double now) {
  advance(now);
  level_ = 0;
}

void TokenBucket::hold_until(double t) {
  hold_ = std::max(hold_, t);
  at_ = std::max(at_, t);
}

void TokenBucket::give_back(double now) {
  advance(now);
  level_ = std::min(spec_.capacity, level_ + 1.0);
}

WaitDecision decide_wait(double wait_s, double max_wait_s) {
  WaitDecision d;
  d.wait_s = std::max(0.0, wait_s);
  d.serve = d.wait_s <= std::max(0.0, max_wait_s) + kEps;
  if (!d.serve) {
    long long s = std::isfinite(d.wait_s) ? std::max(1LL, ceil_seconds(d.wait_s)) : 86400LL;
    d.retry_after_s = static_cast<int>(std::min(s, 86400LL));
  }
  return d;
}

WaitDecision decide_wait(const TokenBucket& bucket, double now, double position, double max_wait_s) {
  return decide_wait(bucket.wait_for(now, position), max_wait_s);
}

std::string ratelimit_policy_name(std::string_view group) {
  std::string name(group);
  std::replace(name.begin(), name.end(), '.', '-');
  return name;
}

std::string ratelimit_policy_value(std::string_view group, const BucketSpec& spec) {
  long long q = static_cast<long long>(std::floor(spec.capacity + kEps));
  long long w = spec.restore_per_s > 0 ? ceil_seconds(spec.capacity / spec.restore_per_s) : 0;
  return "\"" + ratelimit_policy_name(group) + "\";q=" + std::to_string(q) + ";w=" + std::to_string(w);
}

std::string ratelimit_value(std::string_view group, const TokenBucket& bucket, double now) {
  long long r = static_cast<long long>(bucket.available(now));
  double wait = bucket.wait_for(now, 1);
  long long t = std::isfinite(wait) ? ceil_seconds(wait) : 86400LL;
  return "\"" + ratelimit_policy_name(group) + "\";r=" + std::to_string(r) + ";t=" + std::to_string(t);
}

}  // namespace recgate
