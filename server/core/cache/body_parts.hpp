// A cached answer's body as the route adapters assemble it: literal JSON text
// and cached entries' bodies, in order. Rendered either as identity (stored
// bodies inflated, recently used ones kept inflated per thread) or as one gzip
// member (RFC 1952) in which each compressed entry's stored deflate stream is
// copied as it is and only the literal text is deflated per request.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "core/cache/entry.hpp"

namespace recgate::cache {

class BodyParts {
 public:
  // The literal text written so far: append to it.
  std::string& text() { return text_; }
  // e's identity body goes here, after the text written so far.
  void entry(EntryPtr e);
  std::size_t identity_size() const;
  std::string identity() const;
  std::string gzip() const;

 private:
  struct Part {
    std::size_t text_end;  // text_[previous text_end, text_end) precedes the entry
    EntryPtr entry;
  };
  std::string text_;
  std::vector<Part> parts_;
};

// Appends e's identity body to out. A compressed body asked for again soon
// is kept inflated in this thread's bounded set of recently served bodies
// (kHotBytesPerThread), so repeated hits on the same entries copy instead of
// inflating; one asked for once is inflated straight into `out`.
void append_identity(const EntryPtr& e, std::string& out);
inline constexpr std::size_t kHotBytesPerThread = std::size_t{4} << 20;
// The bodies this thread keeps inflated, and forgetting them with the asks
// that admit a body (for tests and diagnostics).
std::size_t hot_bodies_here();
void forget_hot_bodies();

}  // namespace recgate::cache
