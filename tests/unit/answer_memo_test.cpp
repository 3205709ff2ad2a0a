// The thread's memo of rendered cache-hit answers (services/answer_memo.hpp):
// found only for exactly the entries it was made of (a replaced entry is a
// miss, so a changed answer is never served from it), and bounded.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "core/services/answer_memo.hpp"

using namespace recgate;
using recgate::svc::AnswerMemo;

namespace {

svc::Representation rep(std::string body) {
  return {std::make_shared<const std::string>(std::move(body)), std::make_shared<const std::string>("ETag: \"x\"\r\n")};
}

cache::EntryPtr entry(std::string key, std::string body) {
  cache::EntryData d;
  d.body = std::move(body);
  return cache::make_entry(d, key);
}

}  // namespace

TEST_CASE("answer memo: found for the same entries only, and a replaced entry is a miss") {
  AnswerMemo memo;
  const auto a = entry("k1", "[1]");
  const auto b = entry("k2", "[2]");
  CHECK(memo.find({a, b}) == nullptr);
  auto& r = memo.remember({a, b}, 42);
  memo.keep(r, false, rep("identity bytes"));
  const svc::Rendered* found = memo.find({a, b});
  REQUIRE(found != nullptr);
  CHECK(found->etag_hash == 42);
  REQUIRE(found->identity.body);
  CHECK(*found->identity.body == "identity bytes");
  CHECK(*found->identity.fields == "ETag: \"x\"\r\n");
  CHECK(found->gzip.body == nullptr);  // made on first demand
  CHECK(memo.find({b, a}) == nullptr);  // another order is another answer
  CHECK(memo.find({a}) == nullptr);
  const auto a2 = entry("k1", "[1]");  // the same key and bytes, stored again: a new entry
  CHECK(memo.find({a2, b}) == nullptr);
}

TEST_CASE("answer memo: rendered bytes stay within the per-thread budget") {
  AnswerMemo memo;
  const std::string quarter(svc::kMemoBytesPerThread / 4 - 16, 'x');  // with its 11 bytes of fields
  std::vector<cache::EntryPtr> kept;
  for (int i = 0; i < 200; ++i) {
    kept.push_back(entry("k" + std::to_string(i), "[]"));
    auto& r = memo.remember({kept.back()}, static_cast<std::uint64_t>(i));
    const auto kept_rep = memo.keep(r, i % 2 == 0, rep(quarter));
    CHECK(kept_rep.body->size() == quarter.size());  // the caller gets it either way
    CHECK(memo.bytes() <= svc::kMemoBytesPerThread);
  }
  // A body over a quarter of the budget is served but not kept.
  const auto big = entry("big", "[]");
  auto& r = memo.remember({big}, 1);
  const auto big_rep = memo.keep(r, false, rep(std::string(svc::kMemoBytesPerThread / 4, 'x')));
  CHECK(big_rep.body->size() == svc::kMemoBytesPerThread / 4);
  CHECK(memo.find({big})->identity.body == nullptr);
}
