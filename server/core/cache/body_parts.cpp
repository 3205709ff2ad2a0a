// Identity and gzip rendering of cached bodies (see body_parts.hpp).
#include "core/cache/body_parts.hpp"

#include <zlib.h>

#include <array>
#include <cstdint>
#include <list>
#include <string_view>
#include <unordered_map>

namespace recgate::cache {

namespace {

// The recently inflated bodies of one thread, least recently used last.
// Each holds its entry, so an address is never reused while it is cached.
class HotBodies {
 public:
  const std::string* find(const Entry* e) {
    auto it = by_entry_.find(e);
    if (it == by_entry_.end()) return nullptr;
    lru_.splice(lru_.begin(), lru_, it->second);
    return &it->second->body;
  }
  const std::string& add(EntryPtr e, std::string body) {
    bytes_ += body.size();
    const Entry* key = e.get();
    lru_.push_front(Hot{std::move(e), std::move(body)});
    by_entry_[key] = lru_.begin();
    const std::string& added = lru_.front().body;
    while (bytes_ > kHotBytesPerThread && lru_.size() > 1) {
      bytes_ -= lru_.back().body.size();
      by_entry_.erase(lru_.back().entry.get());
      lru_.pop_back();
    }
    return added;
  }
  std::size_t size() const { return lru_.size(); }
  void clear() {
    by_entry_.clear();
    lru_.clear();
    bytes_ = 0;
  }

 private:
  struct Hot {
    EntryPtr entry;
    std::string body;
  };
  std::list<Hot> lru_;
  std::unordered_map<const Entry*, std::list<Hot>::iterator> by_entry_;
  std::size_t bytes_ = 0;
};

// Admits a body into HotBodies on its second ask within a window (a
// doorkeeper, as in TinyLFU): with random keys over far more entries than
// the set holds, admitting every body would allocate it, evict another and
// never hit. A bit per hashed entry address; all bits clear after kWindow
// asks for bodies not kept (hits on kept ones are not counted), so a body
// asked for twice within that many such asks is admitted.
class Doorkeeper {
 public:
  // True when `e` was asked for within the window; marks it either way.
  bool seen_again(const Entry* e) {
    if (++asks_ == kWindow) {
      bits_.fill(0);
      asks_ = 0;
    }
    const auto h = static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(e)) * 0x9e3779b97f4a7c15ULL;
    const std::size_t bit = h >> (64 - kBitsLog2);
    std::uint64_t& word = bits_[bit / 64];
    const std::uint64_t mask = std::uint64_t{1} << (bit % 64);
    const bool seen = (word & mask) != 0;
    word |= mask;
    return seen;
  }
  void clear() {
    bits_.fill(0);
    asks_ = 0;
  }

 private:
  static constexpr unsigned kBitsLog2 = 16;  // 8 KiB of bits
  static constexpr std::size_t kWindow = std::size_t{1} << 14;
  std::array<std::uint64_t, (std::size_t{1} << kBitsLog2) / 64> bits_{};
  std::size_t asks_ = 0;
};

// RFC 1952 member header: deflate, no flags, no mtime, OS unknown.
constexpr unsigned char kGzipHeader[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff};

// The final (empty) block that ends a stream of sync-flushed pieces, as zlib writes it.
const std::string& final_block() {
  static const std::string block = [] {
    z_stream z{};
    deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -MAX_WBITS, 1, Z_DEFAULT_STRATEGY);
    unsigned char out[16];
    z.next_out = out;
    z.avail_out = sizeof out;
    deflate(&z, Z_FINISH);
    std::string b(reinterpret_cast<const char*>(out), sizeof out - z.avail_out);
    deflateEnd(&z);
    return b;
  }();
  return block;
}

void put_le32(std::string& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out += static_cast<char>((v >> (8 * i)) & 0xff);
}

std::uint32_t crc_of(std::uint32_t crc, std::string_view s) {
  return static_cast<std::uint32_t>(crc32_z(crc, reinterpret_cast<const Bytef*>(s.data()), s.size()));
}

// This thread's inflated bodies, and the asks that admit one.
thread_local HotBodies hot;
thread_local Doorkeeper door;

}  // namespace

std::size_t hot_bodies_here() { return hot.size(); }
void forget_hot_bodies() {
  hot.clear();
  door.clear();
}

void append_identity(const EntryPtr& e, std::string& out) {
  if (!e->compressed()) {
    out += e->stored_body();
    return;
  }
  if (const std::string* b = hot.find(e.get())) {
    out += *b;
    return;
  }
  if (door.seen_again(e.get())) out += hot.add(e, e->body());
  else inflate_piece(e->stored_body(), e->body_size(), out);  // cold: straight into the answer
}

void BodyParts::entry(EntryPtr e) { parts_.push_back(Part{text_.size(), std::move(e)}); }

std::size_t BodyParts::identity_size() const {
  std::size_t n = text_.size();
  for (const auto& p : parts_) n += p.entry->body_size();
  return n;
}

std::string BodyParts::identity() const {
  std::string out;
  out.reserve(identity_size());
  std::size_t at = 0;
  for (const auto& p : parts_) {
    out.append(text_, at, p.text_end - at);
    append_identity(p.entry, out);
    at = p.text_end;
  }
  out.append(text_, at, std::string::npos);
  return out;
}

std::string BodyParts::gzip() const {
  std::string out;
  std::size_t stored = 0;
  for (const auto& p : parts_) stored += p.entry->stored_body().size();
  out.reserve(sizeof kGzipHeader + stored + text_.size() / 2 + 64);
  out.append(reinterpret_cast<const char*>(kGzipHeader), sizeof kGzipHeader);
  std::uint32_t crc = crc_of(0, {});
  std::size_t total = 0;
  auto literal = [&](std::string_view s) {
    if (s.empty()) return;
    out += deflate_piece(s);
    crc = crc_of(crc, s);
    total += s.size();
  };
  std::size_t at = 0;
  for (const auto& p : parts_) {
    literal(std::string_view(text_).substr(at, p.text_end - at));
    at = p.text_end;
    const Entry& e = *p.entry;
    if (e.compressed()) {  // the stored stream as it is; its CRC joined, not recomputed
      out += e.stored_body();
      crc = static_cast<std::uint32_t>(crc32_combine(crc, e.body_crc32(), static_cast<z_off_t>(e.body_size())));
      total += e.body_size();
    } else {
      literal(e.stored_body());
    }
  }
  literal(std::string_view(text_).substr(at));
  out += final_block();
  put_le32(out, crc);
  put_le32(out, static_cast<std::uint32_t>(total));  // ISIZE: the size modulo 2^32
  return out;
}

}  // namespace recgate::cache
