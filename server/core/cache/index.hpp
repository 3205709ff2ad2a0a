// The in-memory index in front of SQLite: immutable cached bodies by key,
// read under a shared lock (the hit path touches no disk and no exclusive
// lock), bounded by entry count and bytes with approximate-LRU eviction.
// Used by the MWS and Ads caches; persistence is theirs.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace recgate::cache {

struct Entry {
  std::optional<std::string> validator;  // MWS: the category lastUpdated it was fetched under
  std::int64_t fetched_at_ms = 0;
  std::int64_t expires_at_ms = 0;  // Ads: TTL; 0: none
  std::string body;  // a JSON document (every cached answer is one)
  std::uint64_t hash = 0;  // of body (strong validator material)
  // False when committing it to SQLite failed: the answer then does not say
  // "stored" (Cache-Status), since a restart would lose it.
  bool stored = true;
  // [refresh] Fetched by a background refresh ahead, not for a client: hits
  // on it say so (Cache-Status detail=refreshed).
  bool refreshed = false;
  mutable std::atomic<std::uint64_t> last_access{0};

  Entry() = default;
  Entry(const Entry& o)
      : validator(o.validator), fetched_at_ms(o.fetched_at_ms), expires_at_ms(o.expires_at_ms),
        body(o.body), hash(o.hash), stored(o.stored), refreshed(o.refreshed), last_access(o.last_access.load()) {}
  std::size_t bytes() const { return body.size() + 128; }
};

using EntryPtr = std::shared_ptr<const Entry>;

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

  EntryPtr find(const std::string& key) const;
  void put(const std::string& key, EntryPtr e);
  // Inserts e unless key is already present; returns the entry now held for
  // key (e, or the one already there). For copies read back from disk: a
  // disk read can finish after a fetch stored a newer entry, and must not
  // replace it. With a zero-sized index nothing is held and e is returned.
  EntryPtr put_if_absent(const std::string& key, EntryPtr e);
  bool erase(const std::string& key);
  // Erases every key starting with prefix; returns how many.
  std::size_t erase_prefix(const std::string& prefix);
  // Erases keys for which pred(key) is true.
  template <class P>
  std::size_t erase_if(P pred) {
    std::unique_lock lk(mu_);
    std::size_t n = 0;
    for (auto it = map_.begin(); it != map_.end();) {
      if (pred(it->first)) {
        bytes_ -= it->second->bytes();
        it = map_.erase(it);
        ++n;
      } else {
        ++it;
      }
    }
    return n;
  }
  std::size_t size() const;
  std::size_t bytes() const;
  std::uint64_t evictions() const { return evictions_.load(); }

 private:
  void evict_locked();
  mutable std::shared_mutex mu_;
  std::unordered_map<std::string, EntryPtr> map_;
  std::size_t bytes_ = 0;
  std::size_t max_entries_;
  std::size_t max_bytes_;
  mutable std::atomic<std::uint64_t> tick_{0};
  std::atomic<std::uint64_t> evictions_{0};
};

}  // namespace recgate::cache
