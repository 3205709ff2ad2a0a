// [refresh] The hot set: cached answers asked for recently, with how often,
// so a background refresh knows what is worth spare quota and in which order.
// Bounded (max_keys); recording an ask on the hit path takes one shard's
// shared lock and two relaxed atomics, allocating only on a key's first ask.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace recgate::refresh {

class HotSet {
 public:
  // Keys asked for within hot_ms are hot; at most max_keys are tracked (a
  // new key past the bound is not, until prune() makes room).
  HotSet(std::size_t max_keys, std::int64_t hot_ms);

  // One ask for `key` at now_ms.
  void record(const std::string& key, std::int64_t now_ms);

  struct Hot {
    std::string key;
    std::uint64_t asks = 0;
    std::int64_t last_ms = 0;
  };
  // The hot keys at now_ms, most asked first; drops the cold ones.
  std::vector<Hot> take_hot(std::int64_t now_ms);

  std::size_t size() const;

 private:
  struct Slot {
    std::atomic<std::int64_t> last_ms{0};
    std::atomic<std::uint64_t> asks{0};
  };
  struct Shard {
    mutable std::shared_mutex mu;
    std::unordered_map<std::string, std::unique_ptr<Slot>> map;
  };
  static constexpr std::size_t kShards = 16;
  Shard& shard_of(const std::string& key);

  std::array<Shard, kShards> shards_;
  std::atomic<std::size_t> size_{0};
  const std::size_t max_keys_;
  const std::int64_t hot_ms_;
};

}  // namespace recgate::refresh
