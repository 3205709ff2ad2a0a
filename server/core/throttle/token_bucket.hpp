// Token-bucket arithmetic for recgate's upstream quotas (docs/design.md §3), the 429
// decision and the IETF RateLimit header values
// (draft-ietf-httpapi-ratelimit-headers). Pure logic: no Boost, no clock; `now`
// is Unix epoch seconds on the wall clock, passed in by the throttler.
#pragma once

#include <string>
#include <string_view>

namespace recgate {

// How the margin works, and what it costs.
//
// The bucket models Amazon's own bucket (MWS: 8 tokens, 1 per 2 s, per seller
// account and operation) on our clock. Amazon counts arrivals on ITS clock: the
// delay from our grant to Amazon's arrival varies (network, connection set-up,
// clock offset). `margin_s` is the bound on that variation: every arrival lands
// within ±margin_s of (grant time + a constant delay), so two arrivals can come
// up to 2·margin_s closer together than their grants were.
//
// A token bucket starting full accepts a sequence iff every run of n arrivals
// spanning Δ seconds has n ≤ capacity + rate·Δ. Squeezing arrivals together by
// at most 2·margin_s shortens every span by at most 2·margin_s, once, however
// long the run: the loss is a constant, not a per-token amount. So the margin is
// taken from the LEVEL, not from the restore rate: a grant needs
//     level ≥ grant_floor = 1 + reserve_tokens + 2·margin_s·restore_per_s,
// i.e. a token is handed out only once it has existed for 2·margin_s on our
// clock. Then n ≤ (capacity − 2·margin_s·rate) + rate·Δ_ours
//              ≤ capacity + rate·(Δ_ours − 2·margin_s) ≤ capacity + rate·Δ_amazon.
//
// Cost at the default (margin 250 ms, MWS 8 / 0.5 per s): 0.25 of a token, once
// per burst: a full bucket gives 7 tokens at once and the 8th 0.5 s later.
// Sustained throughput is not reduced by the margin. (The alternative of
// stretching the restore period to 2.25 s costs 11% of sustained quota and is
// NOT safe for ±250 ms: the 9th request of a burst arrives 2.25 − 0.5 = 1.75 s
// after the 1st on Amazon's clock; tests/unit/throttle_bucket_test.cpp shows it.)
//
// Clock RATE errors (an undisciplined crystal drifts up to ~100 ppm) would
// accumulate over a long saturated run, which a constant margin cannot absorb;
// `rate_margin` restores 0.1% slower than the nominal rate to cover rate errors
// up to 1000 ppm, at a cost of 0.1% of sustained quota.
//
// `reserve_tokens` (config throttle.reserve_tokens) is never spent: it leaves
// room for another client of the same seller account.
struct BucketSpec {
  double capacity = 8;
  double restore_per_s = 0.5;   // the upstream's nominal restore rate
  double margin_s = 0.25;       // ± bound on grant→arrival variation (throttle.margin_ms)
  double reserve_tokens = 0;    // throttle.reserve_tokens
  double rate_margin = 0.001;   // restore this fraction slower than nominal

  // The rate this bucket restores at.
  double effective_rate() const { return restore_per_s / (1.0 + rate_margin); }
  // The level a grant needs (never above capacity: a bucket must be able to grant).
  double grant_floor() const;
};

// One bucket. The level is an estimate of Amazon's level (0..capacity) at
// updated_at(); time only ever moves forward for the bucket: a `now` earlier
// than the last one seen counts as no elapsed time (a clock stepped back never
// creates tokens), and a jump forward restores at most to capacity.
class TokenBucket {
 public:
  // `tokens` at time `at` (clamped to 0..capacity). `at` may lie in the future
  // (a clock stepped back across a restart, or a persisted hold): nothing
  // restores before it.
  TokenBucket(BucketSpec spec, double tokens, double at);

  // The level at `now`, restored to capacity at most.
  double tokens(double now) const;
  // Whole grants possible at `now` without waiting (0 while held).
  double available(double now) const;
  // Takes one token if a grant is possible at `now`.
  bool try_take(double now);
  // Seconds from `now` until the nth_token-th grant from now is possible,
  // grants happening as early as possible (nth_token = queue position, 1 = next).
  double wait_for(double now, double nth_token) const;
  // Upstream throttled us: its bucket is empty.
  void drain(double now);
  // No grant before `t`, and nothing restores before `t` (backoff).
  void hold_until(double t);
  // Returns a token that was granted but not used (the caller was cancelled
  // before making the upstream call).
  void give_back(double now);
  // A learnt limit (adaptive.hpp): new capacity and restore rate from `now`;
  // the level is kept, capped at the new capacity.
  void set_limit(double capacity, double restore_per_s, double now);

  // For persistence: the level at updated_at().
  double level() const { return level_; }
  double updated_at() const { return at_; }
  double held_until() const { return hold_; }
  const BucketSpec& spec() const { return spec_; }

 private:
  void advance(double now);

  BucketSpec spec_;
  double level_;
  double at_;
  double hold_ = 0;
};

// The 429 decision (docs/design.md §3): can a request at queue `position` be served
// within the client's `max_wait_s` (Prefer: wait=N)? If not, Retry-After is the
// whole seconds (rounded up, at least 1) until it could have been served.
struct WaitDecision {
  bool serve = false;
  double wait_s = 0;
  int retry_after_s = 0;  // meaningful when !serve
};
WaitDecision decide_wait(double wait_s, double max_wait_s);
WaitDecision decide_wait(const TokenBucket& bucket, double now, double position, double max_wait_s);

// IETF RateLimit header fields (draft-ietf-httpapi-ratelimit-headers, Structured
// Field lists). The policy name is the group with '.' → '-':
// "mws.ListRecommendations" → "mws-ListRecommendations".
std::string ratelimit_policy_name(std::string_view group);
// `"mws-ListRecommendations";q=8;w=16`: q = capacity, w = capacity / restore rate
// in whole seconds, rounded up.
std::string ratelimit_policy_value(std::string_view group, const BucketSpec& spec);
// `"mws-ListRecommendations";r=3;t=0`: r = whole grants available now, t = whole
// seconds (rounded up) until the next grant is possible.
std::string ratelimit_value(std::string_view group, const TokenBucket& bucket, double now);

}  // namespace recgate
