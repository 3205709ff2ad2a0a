// JSON-lines logger on stdout; see log.hpp.
#include "core/log.hpp"

#include <unistd.h>

#include <cerrno>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <mutex>

namespace recgate {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::info)};
std::atomic<int> g_fd{STDOUT_FILENO};
// Held for a whole line: a write(2) larger than PIPE_BUF to a pipe, or one
// the kernel takes in parts, would otherwise interleave with other threads'.
std::mutex g_write_mu;

const char* level_name(LogLevel l) {
  switch (l) {
    case LogLevel::debug: return "debug";
    case LogLevel::info: return "info";
    case LogLevel::warn: return "warn";
    case LogLevel::error: return "error";
  }
  return "info";
}

// Length of the well-formed UTF-8 sequence (RFC 3629) starting at s[i], or 0
// when the bytes there are not one: a stray continuation byte, an overlong
// form, a surrogate, a code point above U+10FFFF, or a truncated sequence.
std::size_t utf8_sequence(std::string_view s, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = byte(i);
  if (c < 0x80) return 1;
  std::size_t n = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;  // overlong
    if (c == 0xED) hi = 0x9F;  // surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;  // overlong
    if (c == 0xF4) hi = 0x8F;  // above U+10FFFF
  } else {
    return 0;
  }
  if (i + n > s.size() || byte(i + 1) < lo || byte(i + 1) > hi) return 0;
  for (std::size_t k = 2; k < n; ++k)
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
  return n;
}

// A JSON string of `s`: controls and DEL escaped, and each byte that is not
// part of well-formed UTF-8 replaced by U+FFFD, so the line stays valid
// whatever a client sent.
void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  for (std::size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      const std::size_t n = utf8_sequence(s, i);
      if (n == 0) {
        out += "\\ufffd";
        ++i;
      } else {
        out.append(s.substr(i, n));
        i += n;
      }
      continue;
    }
    ++i;
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

std::string now_iso() {
  auto now = std::chrono::system_clock::now();
  auto secs = std::chrono::time_point_cast<std::chrono::seconds>(now);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now - secs).count();
  std::time_t t = std::chrono::system_clock::to_time_t(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buf;
}

}  // namespace

LogField::LogField(std::string k, double v) : key(std::move(k)), number(true) {
  if (!std::isfinite(v)) {
    value = "null";
    return;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  value = buf;
}

void set_log_level(LogLevel level) { g_level.store(static_cast<int>(level)); }

bool parse_log_level(std::string_view s, LogLevel& out) {
  if (s == "debug") out = LogLevel::debug;
  else if (s == "info") out = LogLevel::info;
  else if (s == "warn") out = LogLevel::warn;
  else if (s == "error") out = LogLevel::error;
  else return false;
  return true;
}

bool log_enabled(LogLevel level) { return static_cast<int>(level) >= g_level.load(std::memory_order_relaxed); }

std::string format_log_line(LogLevel level, std::string_view msg, const std::vector<LogField>& fields) {
  std::string line;
  line.reserve(128 + msg.size());
  line += "{\"time\":\"";
  line += now_iso();
  line += "\",\"level\":\"";
  line += level_name(level);
  line += "\",\"msg\":";
  append_json_string(line, msg);
  for (const auto& f : fields) {
    line += ',';
    append_json_string(line, f.key);
    line += ':';
    if (f.number) line += f.value;
    else append_json_string(line, f.value);
  }
  line += "}\n";
  return line;
}

void log(LogLevel level, std::string_view msg, const std::vector<LogField>& fields) {
  if (!log_enabled(level)) return;
  std::string line = format_log_line(level, msg, fields);
  const int fd = g_fd.load(std::memory_order_relaxed);
  const std::lock_guard lock(g_write_mu);
  const char* p = line.data();
  std::size_t left = line.size();
  while (left > 0) {
    const ssize_t n = ::write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // stdout gone: nothing better to do with a log line
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

void set_log_fd(int fd) { g_fd.store(fd); }

std::uint64_t RepeatLimiter::record(Clock::time_point now) {
  ++held_;
  if (last_line_ && now - *last_line_ < interval_) return 0;
  last_line_ = now;
  const std::uint64_t n = held_;
  held_ = 0;
  return n;
}

}  // namespace recgate
