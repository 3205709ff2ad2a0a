// The in-memory index in front of SQLite: immutable cached bodies by key,
// read under a shared lock (the hit path touches no disk and no exclusive
// lock), bounded by entry count and bytes with approximate-LRU eviction.
// An open-addressing table of entry pointers: an entry's key lives in the
// entry itself (entry.hpp), so holding one costs a single allocation plus
// about 10 bytes of table. Used by the MWS and Ads caches; persistence is theirs.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "core/cache/entry.hpp"

namespace recgate::cache {

std::uint64_t fnv1a64(std::string_view s, std::uint64_t seed = 1469598103934665603ull);

// What a start-up load may put into an index: rows are taken newest first
// until the next would pass either bound (cache.memory_entries,
// cache.memory_bytes), so the load never holds more than the index may.
class LoadBudget {
 public:
  LoadBudget(std::size_t max_entries, std::size_t max_bytes) : max_entries_(max_entries), max_bytes_(max_bytes) {}
  // Accounts for one entry with a body of body_bytes; false (and nothing
  // accounted) when it does not fit.
  bool take(std::size_t body_bytes);
  std::size_t entries() const { return entries_; }
  std::size_t bytes() const { return bytes_; }

 private:
  std::size_t max_entries_, max_bytes_;
  std::size_t entries_ = 0, bytes_ = 0;
};

class Index {
 public:
  Index(std::size_t max_entries, std::size_t max_bytes) : max_entries_(max_entries), max_bytes_(max_bytes) {}
  ~Index();
  Index(const Index&) = delete;
  Index& operator=(const Index&) = delete;

  EntryPtr find(std::string_view key) const;
  // Holds e under key (an entry built under another key is re-keyed: a copy).
  void put(std::string_view key, EntryPtr e);
  // Inserts e unless key is already present; returns the entry now held for
  // key (e, or the one already there). For copies read back from disk: a
  // disk read can finish after a fetch stored a newer entry, and must not
  // replace it. With a zero-sized index nothing is held and e is returned.
  EntryPtr put_if_absent(std::string_view key, EntryPtr e);
  bool erase(std::string_view key);
  // Erases every key starting with prefix; returns how many.
  std::size_t erase_prefix(std::string_view prefix);
  // Erases keys for which pred(key) is true (key as a std::string).
  template <class P>
  std::size_t erase_if(P pred) {
    std::unique_lock lk(mu_);
    std::vector<std::string> victims;
    for (const Entry* e : slots_)
      if (e && pred(std::string(e->key()))) victims.emplace_back(e->key());
    for (const auto& k : victims) erase_locked(k);
    return victims.size();
  }
  std::size_t size() const;
  std::size_t bytes() const;
  std::uint64_t evictions() const { return evictions_.load(); }

 private:
  static constexpr std::size_t npos = static_cast<std::size_t>(-1);
  std::size_t home(std::string_view key) const;
  std::size_t slot_of(std::string_view key) const;  // npos: absent
  void touch(const Entry& e) const;                  // marks e most recently used
  EntryPtr keyed(std::string_view key, EntryPtr e) const;
  void insert_locked(EntryPtr e);  // key absent
  bool erase_locked(std::string_view key);
  void grow_locked();
  void evict_locked();
  mutable std::shared_mutex mu_;
  std::vector<const Entry*> slots_;  // each non-null slot holds one reference
  std::size_t count_ = 0;
  std::size_t bytes_ = 0;
  std::size_t max_entries_;
  std::size_t max_bytes_;
  mutable std::atomic<std::uint64_t> tick_{1};  // above a new entry's 0: it is always touched once
  std::atomic<std::uint64_t> evictions_{0};
};

}  // namespace recgate::cache
