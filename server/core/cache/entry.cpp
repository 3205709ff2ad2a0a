// The packed cache entry and its deflate/inflate (see entry.hpp).
#include "core/cache/entry.hpp"

#include <zlib.h>

#include <cstring>
#include <limits>
#include <new>
#include <stdexcept>

#include "core/cache/index.hpp"

namespace recgate::cache {

static_assert(sizeof(Entry) == 56, "the entry header is part of the per-entry memory budget");

namespace {

// One z_stream per thread and direction, reset per use: deflateInit2 allocates
// and clears ~270 KB, which would cost more than compressing a body.
struct Deflater {
  z_stream z{};
  explicit Deflater(int mem_level) {
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -MAX_WBITS, mem_level, Z_DEFAULT_STRATEGY) != Z_OK)
      throw std::bad_alloc();
  }
  ~Deflater() { deflateEnd(&z); }
  Deflater(const Deflater&) = delete;
  Deflater& operator=(const Deflater&) = delete;
};

struct Inflater {
  z_stream z{};
  Inflater() {
    if (inflateInit2(&z, -MAX_WBITS) != Z_OK) throw std::bad_alloc();
  }
  ~Inflater() { inflateEnd(&z); }
  Inflater(const Inflater&) = delete;
  Inflater& operator=(const Inflater&) = delete;
};

// memcpy of a view that may be empty (and then null: UB for memcpy); returns the end.
char* put(char* at, std::string_view s) {
  if (!s.empty()) std::memcpy(at, s.data(), s.size());
  return at + s.size();
}

}  // namespace

namespace {

constexpr std::size_t kMaxScratchBytes = std::size_t{1} << 20;

// deflate_piece into `out` (resized to fit; its capacity is kept).
void deflate_piece_to(std::string_view in, std::string& out) {
  // deflateReset clears the match hash table: 64 KB at memLevel 8, 512 B at
  // memLevel 1. The small table is as good for the short literal text of a
  // response and keeps a reset per piece cheap.
  thread_local Deflater large(8), small(1);
  z_stream& z = (in.size() < 1024 ? small : large).z;
  deflateReset(&z);
  // deflateBound covers a finished stream; the sync flush adds at most 5 bytes per call.
  out.resize(deflateBound(&z, static_cast<uLong>(in.size())) + 16);
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&z, Z_SYNC_FLUSH);
  if (rc != Z_OK || z.avail_in != 0 || z.avail_out == 0) throw std::runtime_error("deflate failed");
  out.resize(out.size() - z.avail_out);
}

}  // namespace

std::string deflate_piece(std::string_view in) {
  std::string out;
  deflate_piece_to(in, out);
  return out;
}

void inflate_piece(std::string_view piece, std::size_t size, std::string& out) {
  thread_local Inflater i;
  z_stream& z = i.z;
  inflateReset(&z);
  const std::size_t at = out.size();
  out.resize(at + size);
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(piece.data()));
  z.avail_in = static_cast<uInt>(piece.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data() + at);
  z.avail_out = static_cast<uInt>(size);
  const int rc = inflate(&z, Z_SYNC_FLUSH);
  // Z_BUF_ERROR: all input consumed and the output exactly full (no progress left to make).
  if ((rc != Z_OK && rc != Z_BUF_ERROR) || z.avail_out != 0 || z.avail_in != 0) {
    out.resize(at);
    throw std::runtime_error("cached body does not inflate to its recorded size");
  }
}

void Entry::release_ref() const {
  if (refs_.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  const Entry* e = this;
  e->~Entry();
  ::operator delete(const_cast<Entry*>(e));
}

std::string Entry::body() const {
  if (!compressed()) return std::string(stored_body());
  std::string out;
  inflate_piece(stored_body(), body_size_, out);
  return out;
}

MutableEntryPtr Entry::allocate(std::size_t key_len, std::size_t validator_len, std::size_t stored_len) {
  if (key_len > kMaxKeyBytes) throw std::length_error("cache key too long");
  if (validator_len > kMaxValidatorBytes) throw std::length_error("cache validator too long");
  if (stored_len > std::numeric_limits<std::uint32_t>::max()) throw std::length_error("cached body too large");
  void* mem = ::operator new(sizeof(Entry) + key_len + validator_len + stored_len);
  auto* e = new (mem) Entry();
  e->key_len_ = static_cast<std::uint16_t>(key_len);
  e->validator_len_ = static_cast<std::uint16_t>(validator_len);
  e->stored_len_ = static_cast<std::uint32_t>(stored_len);
  return MutableEntryPtr(e);
}

MutableEntryPtr make_entry(const EntryData& d, std::string_view key) {
  return make_entry(EntryView{d.validator ? std::optional<std::string_view>(*d.validator) : std::nullopt,
                              d.fetched_at_ms, d.expires_at_ms, d.body, d.refreshed},
                    key);
}

MutableEntryPtr make_entry(const EntryView& d, std::string_view key) {
  if (d.body.size() > std::numeric_limits<std::uint32_t>::max()) throw std::length_error("cached body too large");
  // Held compressed only where that saves: a tiny body ("[]") deflates larger.
  thread_local std::string packed;
  deflate_piece_to(d.body, packed);
  const bool compress = packed.size() < d.body.size();
  const std::string_view stored = compress ? std::string_view(packed) : d.body;
  const std::string_view validator = d.validator ? *d.validator : std::string_view();
  MutableEntryPtr e = Entry::allocate(key.size(), validator.size(), stored.size());
  put(put(put(e->tail(), key), validator), stored);
  if (packed.capacity() > kMaxScratchBytes) std::string().swap(packed);  // a rare huge body: not kept
  e->flags_ = static_cast<std::uint8_t>((d.validator ? Entry::kHasValidator : 0) | (compress ? Entry::kCompressed : 0));
  e->body_size_ = static_cast<std::uint32_t>(d.body.size());
  e->crc32_ = static_cast<std::uint32_t>(
      crc32_z(crc32_z(0, nullptr, 0), reinterpret_cast<const Bytef*>(d.body.data()), d.body.size()));
  e->fetched_at_ms = d.fetched_at_ms;
  e->expires_at_ms = d.expires_at_ms;
  e->hash = fnv1a64(d.body);
  e->refreshed = d.refreshed;
  return e;
}

MutableEntryPtr rekey(const Entry& from, std::string_view key) {
  MutableEntryPtr e = Entry::allocate(key.size(), from.validator_len_, from.stored_len_);
  put(put(e->tail(), key), std::string_view(from.tail() + from.key_len_,
                                            std::size_t{from.validator_len_} + from.stored_len_));
  e->flags_ = from.flags_;
  e->body_size_ = from.body_size_;
  e->crc32_ = from.crc32_;
  e->fetched_at_ms = from.fetched_at_ms;
  e->expires_at_ms = from.expires_at_ms;
  e->hash = from.hash;
  e->stored = from.stored;
  e->refreshed = from.refreshed;
  e->last_access.store(from.last_access.load(std::memory_order_relaxed), std::memory_order_relaxed);
  return e;
}

}  // namespace recgate::cache
