// JSON parsing with a nesting limit and a string check (see json.hpp): a SAX
// handler in front of the Document counts depth and inspects every key and
// string, and the iterative reader keeps the C++ stack flat.
#include "core/json.hpp"

#include <rapidjson/error/en.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>

#include <cstdio>
#include <vector>

namespace recgate::json {
namespace {

// A Document built through Populate() is destroyed without recursion only
// because this allocator never frees per value.
static_assert(!rapidjson::Document::AllocatorType::kNeedFree,
              "a Document's destructor would walk the (possibly deep) tree");

// Length of the UTF-8 sequence starting at s[i] when it is valid, else 0.
std::size_t utf8_sequence(std::string_view s, std::size_t i) {
  const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const auto cont = [&](std::size_t k) { return i + k < s.size() && (b(k) & 0xC0) == 0x80; };
  const unsigned char c = b(0);
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (!cont(1) || !cont(2)) return 0;
    if (c == 0xE0 && b(1) < 0xA0) return 0;  // overlong
    if (c == 0xED && b(1) > 0x9F) return 0;  // UTF-16 surrogate
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    if (c == 0xF0 && b(1) < 0x90) return 0;  // overlong
    if (c == 0xF4 && b(1) > 0x8F) return 0;  // above U+10FFFF
    return 4;
  }
  return 0;
}

std::string hex_byte(unsigned v, const char* fmt) {
  char buf[16];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

// Forwards SAX events to the Document, refusing what ParseOptions forbids.
class Guard {
 public:
  Guard(rapidjson::Document& d, const ParseOptions& o) : d_(d), o_(o) {}

  bool Null() { return d_.Null(); }
  bool Bool(bool b) { return d_.Bool(b); }
  bool Int(int i) { return d_.Int(i); }
  bool Uint(unsigned u) { return d_.Uint(u); }
  bool Int64(std::int64_t i) { return d_.Int64(i); }
  bool Uint64(std::uint64_t u) { return d_.Uint64(u); }
  bool Double(double v) { return d_.Double(v); }
  bool RawNumber(const char* s, rapidjson::SizeType n, bool copy) { return d_.RawNumber(s, n, copy); }
  bool String(const char* s, rapidjson::SizeType n, bool copy) {
    return check(std::string_view(s, n), false) && d_.String(s, n, copy);
  }
  bool Key(const char* s, rapidjson::SizeType n, bool copy) {
    if (!check(std::string_view(s, n), true)) return false;
    keys_.back().assign(s, n);
    return d_.Key(s, n, copy);
  }
  bool StartObject() {
    if (!enter()) return false;
    keys_.emplace_back();
    return d_.StartObject();
  }
  bool EndObject(rapidjson::SizeType n) {
    keys_.pop_back();
    --depth_;
    return d_.EndObject(n);
  }
  bool StartArray() { return enter() && d_.StartArray(); }
  bool EndArray(rapidjson::SizeType n) {
    --depth_;
    return d_.EndArray(n);
  }

  std::optional<ParseError> fault;

 private:
  bool enter() {
    if (++depth_ <= o_.max_depth) return true;
    ParseError e;
    e.kind = ParseError::Kind::too_deep;
    e.message = "nested deeper than " + std::to_string(o_.max_depth) + " levels of arrays/objects (the limit is " +
                std::to_string(o_.max_depth) + ")";
    fault = std::move(e);
    return false;
  }

  bool check(std::string_view s, bool is_key) {
    if (!o_.reject_controls || is_clean_text(s)) return true;
    ParseError e;
    e.kind = ParseError::Kind::bad_string;
    const std::string owner = keys_.empty() ? std::string() : keys_.back();
    if (is_key) {
      e.message = "a member name " + text_fault(s);
    } else {
      e.field = owner;
      e.message = (owner.empty() ? std::string("a string") : "the value of " + owner) + " " + text_fault(s);
    }
    e.message += "; control characters (U+0000-U+001F, U+007F) and invalid UTF-8 are not allowed";
    fault = std::move(e);
    return false;
  }

  rapidjson::Document& d_;
  const ParseOptions& o_;
  std::size_t depth_ = 0;
  std::vector<std::string> keys_;  // the current member name per open object
};

template <unsigned Flags>
std::optional<ParseError> run(rapidjson::Document& doc, std::string_view text, const ParseOptions& opts) {
  Guard guard(doc, opts);
  rapidjson::Reader reader;
  auto generate = [&](rapidjson::Document&) {
    rapidjson::MemoryStream in(text.data(), text.size());
    return !reader.Parse<Flags | rapidjson::kParseIterativeFlag>(in, guard).IsError();
  };
  doc.Populate(generate);
  if (!reader.HasParseError()) return std::nullopt;
  doc.SetNull();
  if (guard.fault) {
    guard.fault->offset = reader.GetErrorOffset();
    return guard.fault;
  }
  ParseError e;
  e.offset = reader.GetErrorOffset();
  e.message = std::string(rapidjson::GetParseError_En(reader.GetParseErrorCode())) + " at offset " +
              std::to_string(e.offset);
  return e;
}

}  // namespace

std::optional<ParseError> parse(rapidjson::Document& doc, std::string_view text, const ParseOptions& opts) {
  if (opts.comments) return run<rapidjson::kParseCommentsFlag>(doc, text, opts);
  return run<rapidjson::kParseNoFlags>(doc, text, opts);
}

bool is_clean_text(std::string_view s) { return text_fault(s).empty(); }

std::string text_fault(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7F) return "contains the control character " + hex_byte(c, "U+%04X");
    const std::size_t n = utf8_sequence(s, i);
    if (n == 0)
      return "is not valid UTF-8 (byte " + hex_byte(c, "0x%02X") + " at offset " + std::to_string(i) + ")";
    i += n;
  }
  return "";
}

}  // namespace recgate::json
