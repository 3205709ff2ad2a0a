// One quota across replicas ([scale] item 1): the bucket of an (account, bucket
// group) lives in Redis as a hash kept by one Lua script (EVALSHA) whose only
// clock is Redis TIME. A caller reserves the next slot GCRA-style (the bucket's
// time advances past each reservation, so reservations form one global FIFO)
// and sleeps locally; the arithmetic is TokenBucket's (token_bucket.hpp).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <optional>
#include <string>

#include "core/redis/client.hpp"
#include "core/throttle/token_bucket.hpp"

namespace recgate {

// The shared bucket's hash after a call, on Redis's clock: `level` tokens at
// `at` (which lies ahead of now while reservations are pending), no grant
// before `hold`. TokenBucket(spec, level, at) + hold_until(hold) is the same bucket.
struct SharedLevel {
  double level = 0;
  double at = 0;
  double hold = 0;
};

// The answer to a reservation, on Redis's clock.
struct Reservation {
  bool granted = false;  // false: the slot would come after max_wait_s; nothing reserved
  double wait_s = 0;     // sleep this long, then call upstream (granted), or the wait that was refused
  double redis_now = 0;  // Redis TIME when the script ran (Unix epoch seconds)
  std::optional<SharedLevel> level;  // the bucket after this reservation (or refusal)
};

// The shared state of one bucket (for /v1/status and the AIMD step).
struct SharedBucketState {
  double tokens = 0;        // level at redis_now (reservations already taken)
  double hold_until = 0;    // no grant before (an upstream throttle's hold)
  double redis_now = 0;
  std::optional<double> learnt_restore_per_s;  // set by an adaptive bucket
  std::optional<double> learnt_capacity;
  std::optional<double> last_throttle_at;
};

// A learnt limit to store with a throttle (adaptive buckets).
struct LearntLimit {
  double restore_per_s = 0;
  double capacity = 0;
};

class SharedBuckets {
 public:
  // `key_prefix` is redis.key_prefix; buckets are <prefix>bucket:{account}:group.
  SharedBuckets(redis::Client& client, std::string key_prefix);

  // Reserves the next slot of the bucket. nullopt: Redis unavailable (the
  // caller falls back to its local share).
  boost::asio::awaitable<std::optional<Reservation>> reserve(const std::string& account, const std::string& group,
                                                             const BucketSpec& spec, double max_wait_s);
  // The upstream throttled: empties the bucket and holds it hold_s for every
  // replica; `learnt` (adaptive) becomes the bucket's rate and burst. Returns
  // Redis TIME of the change; nullopt: Redis unavailable.
  boost::asio::awaitable<std::optional<double>> throttled(const std::string& account, const std::string& group, const BucketSpec& spec,
                                         double hold_s, std::optional<LearntLimit> learnt = std::nullopt);
  // Empties the bucket and holds it hold_s (not counted as a throttle): a
  // replica back from its local share does this first, as its share and the
  // others' may have spent what the shared level shows.
  boost::asio::awaitable<std::optional<double>> drain(const std::string& account, const std::string& group,
                                                      const BucketSpec& spec, double hold_s = 0);
  // A learnt limit raised after a quiet period (adaptive); as throttled().
  boost::asio::awaitable<std::optional<double>> set_learnt(const std::string& account, const std::string& group, const BucketSpec& spec,
                                          LearntLimit learnt);
  // [refresh] One token from spare quota: only when no reservation of any
  // replica is pending (the bucket's time is not ahead of now), no hold, and
  // the level is at least one token above a grant's floor. false: none spare;
  // nullopt: Redis unavailable.
  boost::asio::awaitable<std::optional<bool>> take_spare(const std::string& account, const std::string& group,
                                                         const BucketSpec& spec);
  boost::asio::awaitable<std::optional<SharedBucketState>> state(const std::string& account, const std::string& group,
                                                                 const BucketSpec& spec);

  std::string key(const std::string& account, const std::string& group) const;
  // The script's text and SHA-1 (the bench and tests load it themselves).
  static const std::string& script();
  static const std::string& script_sha();

 private:
  boost::asio::awaitable<std::optional<redis::Reply>> run(const std::string& account, const std::string& group,
                                                          const BucketSpec& spec, const char* op, double arg,
                                                          std::optional<LearntLimit> learnt);
  redis::Client& client_;
  std::string prefix_;
};

}  // namespace recgate
