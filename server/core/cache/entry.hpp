// One cached answer as the in-memory tier holds it: a single allocation with
// a fixed header followed by its key, validator and body (the body held as a
// raw deflate stream when that is smaller, so gzip clients get it as it is),
// reference-counted in place. Built with make_entry; read through EntryPtr.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace recgate::cache {

// An owning pointer to an Entry (intrusive count: no separate control block).
template <class T>
class Ref {
 public:
  Ref() = default;
  Ref(std::nullptr_t) {}  // NOLINT: as shared_ptr, so `co_return nullptr` reads alike
  // Takes a new reference to p (the count lives in *p).
  explicit Ref(T* p) : p_(p) { acquire(); }
  Ref(const Ref& o) : p_(o.p_) { acquire(); }
  Ref(Ref&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
  template <class U>
    requires std::is_convertible_v<U*, T*>
  Ref(const Ref<U>& o) : p_(o.get()) {  // NOLINT: Ref<Entry> -> Ref<const Entry>, as shared_ptr
    acquire();
  }
  template <class U>
    requires std::is_convertible_v<U*, T*>
  Ref(Ref<U>&& o) noexcept : p_(o.release()) {}  // NOLINT
  ~Ref() { reset(); }
  Ref& operator=(Ref o) noexcept {
    std::swap(p_, o.p_);
    return *this;
  }
  void reset() {
    if (p_) p_->release_ref();
    p_ = nullptr;
  }
  // Gives up ownership without dropping the count (for the converting move).
  T* release() { return std::exchange(p_, nullptr); }
  T* get() const { return p_; }
  T* operator->() const { return p_; }
  T& operator*() const { return *p_; }
  explicit operator bool() const { return p_ != nullptr; }
  template <class U>
  bool operator==(const Ref<U>& o) const {
    return p_ == o.get();
  }
  bool operator==(std::nullptr_t) const { return p_ == nullptr; }

 private:
  void acquire() {
    if (p_) p_->add_ref();
  }
  T* p_ = nullptr;
};

class Entry;
using EntryPtr = Ref<const Entry>;
using MutableEntryPtr = Ref<Entry>;

// What an entry is built from (the loose form the repositories, the shared
// tier and the services fill in).
struct EntryData {
  std::optional<std::string> validator;  // MWS: the category lastUpdated it was fetched under
  std::int64_t fetched_at_ms = 0;
  std::int64_t expires_at_ms = 0;  // Ads: TTL; 0: none
  std::string body;                // a JSON document (every cached answer is one)
  bool refreshed = false;          // see Entry::refreshed
};

// The same as views (e.g. into a database row): building from it copies
// nothing but into the entry's own allocation.
struct EntryView {
  std::optional<std::string_view> validator;
  std::int64_t fetched_at_ms = 0;
  std::int64_t expires_at_ms = 0;
  std::string_view body;
  bool refreshed = false;
};

class Entry {
  // The header's own fields first, so it packs into 56 bytes.
  mutable std::atomic<std::uint32_t> refs_{0};
  std::uint16_t key_len_ = 0;
  std::uint16_t validator_len_ = 0;
  std::uint32_t body_size_ = 0;
  std::uint32_t stored_len_ = 0;
  std::uint32_t crc32_ = 0;
  std::uint8_t flags_ = 0;

 public:
  // False when committing it to SQLite failed: the answer then does not say
  // "stored" (Cache-Status), since a restart would lose it.
  bool stored = true;
  // [refresh] Fetched by a background refresh ahead, not for a client: hits
  // on it say so (Cache-Status detail=refreshed).
  bool refreshed = false;
  std::int64_t fetched_at_ms = 0;
  std::int64_t expires_at_ms = 0;
  std::uint64_t hash = 0;  // of the identity body (strong validator material)
  mutable std::atomic<std::uint64_t> last_access{0};

  Entry(const Entry&) = delete;
  Entry& operator=(const Entry&) = delete;

  std::string_view key() const { return {tail(), key_len_}; }
  bool has_validator() const { return (flags_ & kHasValidator) != 0; }
  std::string_view validator_view() const { return {tail() + key_len_, validator_len_}; }
  std::optional<std::string> validator() const {
    if (!has_validator()) return std::nullopt;
    return std::string(validator_view());
  }
  // The identity body: inflated when held compressed (see stored_body).
  std::string body() const;
  std::size_t body_size() const { return body_size_; }
  std::uint32_t body_crc32() const { return crc32_; }
  // True: stored_body() is a raw deflate stream (RFC 1951) of the body that
  // ends byte-aligned after a sync flush, ready to splice into a gzip member.
  bool compressed() const { return (flags_ & kCompressed) != 0; }
  std::string_view stored_body() const { return {tail() + key_len_ + validator_len_, stored_len_}; }
  // The whole allocation (header, key, validator, stored body): what the
  // index counts against cache.memory_bytes.
  std::size_t bytes() const { return sizeof(Entry) + key_len_ + validator_len_ + stored_len_; }

  void add_ref() const { refs_.fetch_add(1, std::memory_order_relaxed); }
  void release_ref() const;

 private:
  friend MutableEntryPtr make_entry(const EntryView& d, std::string_view key);
  friend MutableEntryPtr rekey(const Entry& e, std::string_view key);
  static constexpr std::uint8_t kHasValidator = 1, kCompressed = 2;
  Entry() = default;
  static MutableEntryPtr allocate(std::size_t key_len, std::size_t validator_len, std::size_t stored_len);
  char* tail() { return reinterpret_cast<char*>(this + 1); }
  const char* tail() const { return reinterpret_cast<const char*>(this + 1); }
};

// The longest key and validator an entry holds (the header's widths).
inline constexpr std::size_t kMaxKeyBytes = 0xFFFF;
inline constexpr std::size_t kMaxValidatorBytes = 0xFFFF;

// Builds an entry from d: the body compressed when that is smaller, its hash
// and CRC-32 computed. `key` is the index key it will be held under (the
// index re-keys an entry built without one). Throws std::length_error past
// kMaxKeyBytes / kMaxValidatorBytes or a 4 GiB body.
MutableEntryPtr make_entry(const EntryData& d, std::string_view key = {});
// The same from views. Its only heap allocation is the entry (the deflate
// output goes to a per-thread scratch buffer), so a start-up fill of many
// entries leaves no freed temporaries between them.
MutableEntryPtr make_entry(const EntryView& d, std::string_view key = {});
// A copy of e under `key` (the stored body copied as it is, not recompressed).
MutableEntryPtr rekey(const Entry& e, std::string_view key);

// Raw deflate (RFC 1951) of `in` at the library's default level, ending with
// a sync flush (byte-aligned, not final): a piece of a larger stream.
std::string deflate_piece(std::string_view in);
// The inverse: appends to `out` the size bytes a piece inflates to; throws
// std::runtime_error when the data is not such a piece.
void inflate_piece(std::string_view piece, std::size_t size, std::string& out);

}  // namespace recgate::cache
