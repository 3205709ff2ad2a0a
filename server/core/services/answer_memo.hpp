// A thread's memo of the cache-hit answers it rendered last.
//
// A hit's bytes are a function of the entries it is made of: an entry is
// immutable, its key names the account, marketplace and category, and on the
// hit path every category's outcome is "hit". So a hit on the same entries
// again reuses the rendered body (identity or gzip, each made on first
// demand) and its ETag instead of building the JSON, inflating the entries
// and deflating the wrapper once more, and the session sends those bytes by
// reference (http::Context::body_ref) without copying them.
//
// Direct-mapped on the entries' addresses, per thread (no lock). Each slot
// holds its entries, so an address is never reused while it is remembered;
// a replaced entry is a different address, so a changed answer is never
// served from here. Bounded by kMemoBytesPerThread of rendered bodies.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/cache/entry.hpp"

namespace recgate::svc {

using SharedBody = std::shared_ptr<const std::string>;

// One representation as sent: its body and its fixed header lines.
struct Representation {
  SharedBody body;
  SharedBody fields;
};

// One remembered answer: its ETag hash, and each representation once made.
struct Rendered {
  std::uint64_t etag_hash = 0;
  Representation identity;
  Representation gzip;
  std::size_t bytes = 0;  // of the representations kept
};

inline constexpr std::size_t kMemoBytesPerThread = std::size_t{2} << 20;
inline constexpr std::size_t kMemoSlots = 64;

class AnswerMemo {
 public:
  // The answer remembered for exactly these entries, or nullptr.
  Rendered* find(const std::vector<cache::EntryPtr>& entries);
  // Remembers an answer for these entries (replacing what shared its slot).
  Rendered& remember(std::vector<cache::EntryPtr> entries, std::uint64_t etag_hash);
  // Keeps `rep` as r's identity or gzip representation if the budget allows
  // (a body over a quarter of it is never kept; when the total would exceed
  // it the other slots are forgotten). Returns it either way.
  Representation keep(Rendered& r, bool gzip, Representation rep);

  std::size_t bytes() const { return bytes_; }

 private:
  struct Slot {
    std::vector<cache::EntryPtr> entries;
    Rendered answer;
  };
  Slot& slot_of(const std::vector<cache::EntryPtr>& entries);
  void forget(Slot& s);

  std::array<Slot, kMemoSlots> slots_;
  std::size_t bytes_ = 0;
};

}  // namespace recgate::svc
