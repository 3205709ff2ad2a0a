// [refresh] The hot set (see hot_set.hpp).
#include "core/refresh/hot_set.hpp"

#include <algorithm>
#include <functional>
#include <mutex>

namespace recgate::refresh {

HotSet::HotSet(std::size_t max_keys, std::int64_t hot_ms) : max_keys_(max_keys), hot_ms_(hot_ms) {}

HotSet::Shard& HotSet::shard_of(const std::string& key) { return shards_[std::hash<std::string>{}(key) % kShards]; }

void HotSet::record(const std::string& key, std::int64_t now_ms) {
  Shard& sh = shard_of(key);
  {
    std::shared_lock lk(sh.mu);
    if (auto it = sh.map.find(key); it != sh.map.end()) {
      it->second->last_ms.store(now_ms, std::memory_order_relaxed);
      it->second->asks.fetch_add(1, std::memory_order_relaxed);
      return;
    }
  }
  if (size_.load(std::memory_order_relaxed) >= max_keys_) return;  // bounded: untracked until a prune
  std::unique_lock lk(sh.mu);
  auto [it, inserted] = sh.map.try_emplace(key, nullptr);
  if (inserted) {
    it->second = std::make_unique<Slot>();
    size_.fetch_add(1, std::memory_order_relaxed);
  }
  it->second->last_ms.store(now_ms, std::memory_order_relaxed);
  it->second->asks.fetch_add(1, std::memory_order_relaxed);
}

std::vector<HotSet::Hot> HotSet::take_hot(std::int64_t now_ms) {
  std::vector<Hot> out;
  for (auto& sh : shards_) {
    std::unique_lock lk(sh.mu);
    for (auto it = sh.map.begin(); it != sh.map.end();) {
      const std::int64_t last = it->second->last_ms.load(std::memory_order_relaxed);
      if (now_ms - last > hot_ms_) {
        it = sh.map.erase(it);
        size_.fetch_sub(1, std::memory_order_relaxed);
        continue;
      }
      out.push_back(Hot{it->first, it->second->asks.load(std::memory_order_relaxed), last});
      ++it;
    }
  }
  std::sort(out.begin(), out.end(), [](const Hot& a, const Hot& b) { return a.asks > b.asks; });
  return out;
}

std::size_t HotSet::size() const { return size_.load(std::memory_order_relaxed); }

}  // namespace recgate::refresh
