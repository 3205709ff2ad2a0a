// A thread's memo of rendered cache-hit answers (see answer_memo.hpp).
#include "core/services/answer_memo.hpp"

namespace recgate::svc {

AnswerMemo::Slot& AnswerMemo::slot_of(const std::vector<cache::EntryPtr>& entries) {
  std::uint64_t h = 0x9e3779b97f4a7c15ULL;
  for (const auto& e : entries) h = (h ^ reinterpret_cast<std::uintptr_t>(e.get())) * 0xff51afd7ed558ccdULL;
  return slots_[(h >> 32) % kMemoSlots];
}

Rendered* AnswerMemo::find(const std::vector<cache::EntryPtr>& entries) {
  Slot& s = slot_of(entries);
  if (s.entries.empty() || s.entries != entries) return nullptr;
  return &s.answer;
}

void AnswerMemo::forget(Slot& s) {
  bytes_ -= s.answer.bytes;
  s = Slot{};
}

Rendered& AnswerMemo::remember(std::vector<cache::EntryPtr> entries, std::uint64_t etag_hash) {
  Slot& s = slot_of(entries);
  forget(s);
  s.entries = std::move(entries);
  s.answer.etag_hash = etag_hash;
  return s.answer;
}

Representation AnswerMemo::keep(Rendered& r, bool gzip, Representation rep) {
  const std::size_t n = rep.body->size() + (rep.fields ? rep.fields->size() : 0);
  if (n > kMemoBytesPerThread / 4) return rep;
  if (bytes_ + n > kMemoBytesPerThread)
    for (Slot& other : slots_)
      if (&other.answer != &r) forget(other);
  (gzip ? r.gzip : r.identity) = rep;
  r.bytes += n;
  bytes_ += n;
  return rep;
}

}  // namespace recgate::svc
