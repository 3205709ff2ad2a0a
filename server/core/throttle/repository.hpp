// The throttle tables (bucket_levels, bucket_rates): every SQL statement the
// throttler runs. Functions of a Db, run on the store thread; no policy here
// (which level to trust after a crash is the throttler's).
#pragma once

#include <map>
#include <string>
#include <utility>

#include "core/store.hpp"

namespace recgate::throttle::repo {

using BucketKey = std::pair<std::string, std::string>;  // account, group

// A bucket's level and the time it was measured (Unix epoch seconds).
struct Level {
  double tokens = 0;
  double at = 0;
};
// An adaptive bucket's learnt rate; last_throttle_at is -inf when never throttled.
struct LearntRate {
  double restore_per_s = 0;
  double last_throttle_at = 0;
};

void write_level(Db& db, const std::string& account, const std::string& group, double level, double at);
void write_rate(Db& db, const std::string& account, const std::string& group, double restore_per_s,
                double last_throttle_at);
std::map<BucketKey, Level> read_levels(Db& db);
std::map<BucketKey, LearntRate> read_rates(Db& db);

}  // namespace recgate::throttle::repo
