// JSON-lines logger on stdout; see log.hpp.
#include "core/log.hpp"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>

namespace recgate {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::info)};

const char* level_name(LogLevel l) {
  switch (l) {
    case LogLevel::debug: return "debug";
    case LogLevel::info: return "info";
    case LogLevel::warn: return "warn";
    case LogLevel::error: return "error";
  }
  return "info";
}

void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
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
  // One write(2) per line keeps lines whole across threads (pipes: atomic up to PIPE_BUF).
  const char* p = line.data();
  std::size_t left = line.size();
  while (left > 0) {
    ssize_t n = ::write(STDOUT_FILENO, p, left);
    if (n <= 0) break;
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

}  // namespace recgate
