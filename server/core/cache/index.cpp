// In-memory cache index (see index.hpp).
#include "core/cache/index.hpp"

#include <algorithm>
#include <mutex>

namespace recgate::cache {

std::uint64_t fnv1a64(std::string_view s, std::uint64_t h) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

bool LoadBudget::take(std::size_t body_bytes) {
  const std::size_t b = body_bytes + 128;  // as Entry::bytes()
  if (entries_ + 1 > max_entries_ || b > max_bytes_ || bytes_ > max_bytes_ - b) return false;
  ++entries_;
  bytes_ += b;
  return true;
}

EntryPtr Index::find(const std::string& key) const {
  std::shared_lock lk(mu_);
  auto it = map_.find(key);
  if (it == map_.end()) return nullptr;
  it->second->last_access.store(tick_.fetch_add(1, std::memory_order_relaxed), std::memory_order_relaxed);
  return it->second;
}

void Index::put(const std::string& key, EntryPtr e) {
  if (max_entries_ == 0) return;
  e->last_access.store(tick_.fetch_add(1, std::memory_order_relaxed), std::memory_order_relaxed);
  std::unique_lock lk(mu_);
  auto [it, inserted] = map_.try_emplace(key, e);
  if (!inserted) {
    bytes_ -= it->second->bytes();
    it->second = e;
  }
  bytes_ += e->bytes();
  if (map_.size() > max_entries_ || bytes_ > max_bytes_) evict_locked();
}

EntryPtr Index::put_if_absent(const std::string& key, EntryPtr e) {
  if (max_entries_ == 0) return e;
  e->last_access.store(tick_.fetch_add(1, std::memory_order_relaxed), std::memory_order_relaxed);
  std::unique_lock lk(mu_);
  auto [it, inserted] = map_.try_emplace(key, e);
  if (!inserted) return it->second;
  bytes_ += e->bytes();
  if (map_.size() > max_entries_ || bytes_ > max_bytes_) evict_locked();
  return e;
}

bool Index::erase(const std::string& key) {
  std::unique_lock lk(mu_);
  auto it = map_.find(key);
  if (it == map_.end()) return false;
  bytes_ -= it->second->bytes();
  map_.erase(it);
  return true;
}

std::size_t Index::erase_prefix(const std::string& prefix) {
  return erase_if([&](const std::string& k) { return k.compare(0, prefix.size(), prefix) == 0; });
}

std::size_t Index::size() const {
  std::shared_lock lk(mu_);
  return map_.size();
}

std::size_t Index::bytes() const {
  std::shared_lock lk(mu_);
  return bytes_;
}

// Evicts the least recently used ~1/64 of the entries in one pass, so the
// O(n) scan is paid once per n/64 insertions.
void Index::evict_locked() {
  std::vector<std::pair<std::uint64_t, const std::string*>> order;
  order.reserve(map_.size());
  for (const auto& [k, v] : map_) order.emplace_back(v->last_access.load(std::memory_order_relaxed), &k);
  std::size_t target = std::max<std::size_t>(1, map_.size() / 64);
  if (map_.size() > max_entries_) target = std::max(target, map_.size() - max_entries_);
  target = std::min(target, order.size());
  std::nth_element(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(target - 1), order.end());
  std::vector<std::string> victims;
  for (std::size_t i = 0; i < target; ++i) victims.push_back(*order[i].second);
  for (const auto& k : victims) {
    auto it = map_.find(k);
    bytes_ -= it->second->bytes();
    map_.erase(it);
  }
  evictions_.fetch_add(victims.size());
  while (bytes_ > max_bytes_ && !map_.empty()) {
    auto it = map_.begin();
    bytes_ -= it->second->bytes();
    map_.erase(it);
    evictions_.fetch_add(1);
  }
}

}  // namespace recgate::cache
