// Learning an upstream's unpublished, changing rate limit (design §8,
// throttle.adaptive): AIMD per bucket, as TCP does. After a throttle the
// restore rate (and the burst with it) is cut multiplicatively; after a quiet
// period without throttles it grows additively back toward the ceiling.
// Also Retry-After in both forms. Pure logic: `now` is Unix epoch seconds.
#pragma once

#include <optional>
#include <string_view>

namespace recgate {

struct AdaptiveSpec {
  double ceiling_per_s = 2;    // never faster (the configured restore rate)
  double floor_per_s = 0.1;    // never slower
  double step_per_s = 0.1;     // added after each quiet period
  double decrease = 0.5;       // rate multiplied by this after a throttle
  double quiet_s = 120;        // time without throttles before each increase
  double ceiling_capacity = 10;  // burst at the ceiling; scaled with the rate, at least 1
};

class AdaptiveRate {
 public:
  // `rate` (a learnt one restored after a restart) is clamped to floor..ceiling.
  AdaptiveRate(AdaptiveSpec spec, double rate, double last_throttle_at, double now);

  // The upstream throttled at `now`: cut once. Throttles within one restore
  // period of the last cut are answers to calls sent before it, not news.
  // True when the rate changed.
  bool on_throttle(double now);
  // A call succeeded at `now`: after quiet_s without throttle or change, one
  // step up. True when the rate changed.
  bool on_success(double now);

  double rate() const { return rate_; }
  double capacity() const;
  double last_throttle_at() const { return last_throttle_; }  // -inf: never
  const AdaptiveSpec& spec() const { return spec_; }

 private:
  AdaptiveSpec spec_;
  double rate_;
  double last_throttle_;
  double last_change_;
};

// Retry-After (RFC 9110 §10.2.3): delay-seconds, or an HTTP-date (IMF-fixdate)
// turned into seconds from `now` (0 when past). nullopt when neither.
std::optional<double> parse_retry_after_header(std::string_view value, double now);

}  // namespace recgate
