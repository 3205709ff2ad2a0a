// The one way recgate parses JSON (client bodies, Ads and LWA answers, the
// config file, its own stored snapshots): RapidJSON's iterative parser (no
// recursion, whatever the input) with a nesting limit, and optionally a check
// that every string is valid UTF-8 without control characters. Pure.
#pragma once

#include <rapidjson/document.h>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace recgate::json {

// Deepest nesting of arrays/objects accepted. recgate's own documents nest
// at most 4 levels (config; Ads answers grouped by theme); 64 leaves room
// for upstream growth and keeps every later walk of the DOM shallow.
inline constexpr std::size_t kMaxDepth = 64;

struct ParseOptions {
  bool comments = false;          // /* */ and // (the config file only)
  bool reject_controls = false;   // client input: see ParseError::Kind::bad_string
  std::size_t max_depth = kMaxDepth;
};

struct ParseError {
  enum class Kind {
    syntax,      // not JSON (RapidJSON's message and offset)
    too_deep,    // nested deeper than max_depth
    bad_string,  // a key or string holding C0 controls, DEL or invalid UTF-8
  };
  Kind kind = Kind::syntax;
  std::size_t offset = 0;  // byte offset where parsing stopped
  std::string field;       // bad_string: the member name it belongs to (or is)
  std::string message;     // one sentence naming what is wrong and the limit
};

// Parses `text` into `doc`; nullopt on success. On failure `doc` is left
// null. Never recurses on the input's nesting, and the default allocator
// (MemoryPoolAllocator, kNeedFree false) frees a Document without walking it.
std::optional<ParseError> parse(rapidjson::Document& doc, std::string_view text, const ParseOptions& opts = {});

// True when `s` is valid UTF-8 (no overlongs, surrogates or values above
// U+10FFFF) holding no C0 control (U+0000-U+001F) and no DEL (U+007F).
bool is_clean_text(std::string_view s);

// Why is_clean_text failed, for a problem's detail: "contains the control
// character U+000A" or "is not valid UTF-8 (byte 0xFF at offset 3)". Empty when clean.
std::string text_fault(std::string_view s);

}  // namespace recgate::json
