// In-memory cache index (see index.hpp).
#include "core/cache/index.hpp"

#include <algorithm>
#include <functional>
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

Index::~Index() {
  for (const Entry* e : slots_)
    if (e) e->release_ref();
}

std::size_t Index::home(std::string_view key) const {
  return std::hash<std::string_view>{}(key) & (slots_.size() - 1);
}

// Linear probing from the key's home slot to the first empty one.
std::size_t Index::slot_of(std::string_view key) const {
  if (slots_.empty()) return npos;
  const std::size_t mask = slots_.size() - 1;
  for (std::size_t i = home(key);; i = (i + 1) & mask) {
    const Entry* e = slots_[i];
    if (!e) return npos;
    if (e->key() == key) return i;
  }
}

EntryPtr Index::keyed(std::string_view key, EntryPtr e) const {
  if (e->key() == key) return e;
  return rekey(*e, key);
}

void Index::grow_locked() {
  std::vector<const Entry*> old(std::max<std::size_t>(16, slots_.size() * 2), nullptr);
  old.swap(slots_);
  const std::size_t mask = slots_.size() - 1;
  for (const Entry* e : old) {
    if (!e) continue;
    std::size_t i = home(e->key());
    while (slots_[i]) i = (i + 1) & mask;
    slots_[i] = e;
  }
}

void Index::insert_locked(EntryPtr e) {
  // At most 4/5 full: linear probing stays short, the table costs ~10-20 B per entry.
  if ((count_ + 1) * 5 > slots_.size() * 4) grow_locked();
  const std::size_t mask = slots_.size() - 1;
  std::size_t i = home(e->key());
  while (slots_[i]) i = (i + 1) & mask;
  bytes_ += e->bytes();
  slots_[i] = e.release();
  ++count_;
}

// Backward-shift deletion: no tombstones, so probes never lengthen.
bool Index::erase_locked(std::string_view key) {
  std::size_t i = slot_of(key);
  if (i == npos) return false;
  const Entry* gone = slots_[i];
  const std::size_t mask = slots_.size() - 1;
  for (std::size_t j = (i + 1) & mask; slots_[j]; j = (j + 1) & mask) {
    const std::size_t k = home(slots_[j]->key());
    // slots_[j] may move to i when its home is not cyclically within (i, j].
    const bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
    if (stays) continue;
    slots_[i] = slots_[j];
    i = j;
  }
  slots_[i] = nullptr;
  --count_;
  bytes_ -= gone->bytes();
  gone->release_ref();
  return true;
}

// Ticks are unique (each touch takes the next), so an entry whose tick is
// the latest is already the most recently used: touching it again writes
// nothing, and a hot entry hit from every thread stays a shared cache line
// instead of bouncing between the cores with the shared counter.
void Index::touch(const Entry& e) const {
  if (e.last_access.load(std::memory_order_relaxed) == tick_.load(std::memory_order_relaxed)) return;
  e.last_access.store(tick_.fetch_add(1, std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

EntryPtr Index::find(std::string_view key) const {
  std::shared_lock lk(mu_);
  const std::size_t i = slot_of(key);
  if (i == npos) return nullptr;
  touch(*slots_[i]);
  return EntryPtr(slots_[i]);
}

void Index::put(std::string_view key, EntryPtr e) {
  if (max_entries_ == 0 || key.size() > kMaxKeyBytes) return;
  e = keyed(key, std::move(e));
  touch(*e);
  std::unique_lock lk(mu_);
  erase_locked(key);
  insert_locked(std::move(e));
  if (count_ > max_entries_ || bytes_ > max_bytes_) evict_locked();
}

EntryPtr Index::put_if_absent(std::string_view key, EntryPtr e) {
  if (max_entries_ == 0 || key.size() > kMaxKeyBytes) return e;
  {
    std::shared_lock lk(mu_);
    if (const std::size_t i = slot_of(key); i != npos) return EntryPtr(slots_[i]);
  }
  e = keyed(key, std::move(e));  // outside the lock: a copy of the body
  touch(*e);
  std::unique_lock lk(mu_);
  if (const std::size_t i = slot_of(key); i != npos) return EntryPtr(slots_[i]);
  insert_locked(e);
  if (count_ > max_entries_ || bytes_ > max_bytes_) evict_locked();
  return e;
}

bool Index::erase(std::string_view key) {
  std::unique_lock lk(mu_);
  return erase_locked(key);
}

std::size_t Index::erase_prefix(std::string_view prefix) {
  return erase_if([&](const std::string& k) { return k.compare(0, prefix.size(), prefix) == 0; });
}

std::size_t Index::size() const {
  std::shared_lock lk(mu_);
  return count_;
}

std::size_t Index::bytes() const {
  std::shared_lock lk(mu_);
  return bytes_;
}

// Evicts the least recently used ~1/64 of the entries in one pass, so the
// O(n) scan is paid once per n/64 insertions.
void Index::evict_locked() {
  // Entries are alive until their own erase_locked (the table holds them), and
  // erase_locked reads the key only before releasing: the views stay valid.
  std::vector<std::pair<std::uint64_t, const Entry*>> order;
  order.reserve(count_);
  for (const Entry* e : slots_)
    if (e) order.emplace_back(e->last_access.load(std::memory_order_relaxed), e);
  std::size_t target = std::max<std::size_t>(1, count_ / 64);
  if (count_ > max_entries_) target = std::max(target, count_ - max_entries_);
  target = std::min(target, order.size());
  std::nth_element(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(target - 1), order.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  for (std::size_t i = 0; i < target; ++i) erase_locked(order[i].second->key());
  evictions_.fetch_add(target);
  for (std::size_t i = target; bytes_ > max_bytes_ && i < order.size(); ++i) {
    if (erase_locked(order[i].second->key())) evictions_.fetch_add(1);
  }
}

}  // namespace recgate::cache
