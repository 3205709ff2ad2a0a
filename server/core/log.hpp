// One JSON object per line on stdout (time, level, msg, request id, fields).
// Thread-safe; each line is written with a single write(2). Callers must
// never pass secrets: the logger does not know which strings are secret.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace recgate {

enum class LogLevel { debug = 0, info = 1, warn = 2, error = 3 };

struct LogField {
  LogField(std::string k, std::string v) : key(std::move(k)), value(std::move(v)) {}
  LogField(std::string k, const char* v) : key(std::move(k)), value(v) {}
  LogField(std::string k, std::string_view v) : key(std::move(k)), value(v) {}
  LogField(std::string k, std::int64_t v) : key(std::move(k)), value(std::to_string(v)), number(true) {}
  LogField(std::string k, int v) : key(std::move(k)), value(std::to_string(v)), number(true) {}
  LogField(std::string k, unsigned v) : key(std::move(k)), value(std::to_string(v)), number(true) {}
  LogField(std::string k, std::size_t v) : key(std::move(k)), value(std::to_string(v)), number(true) {}
  LogField(std::string k, double v);
  std::string key;
  std::string value;
  bool number = false;
};

void set_log_level(LogLevel level);
bool parse_log_level(std::string_view s, LogLevel& out);
bool log_enabled(LogLevel level);

// Formats the line (exposed for tests).
std::string format_log_line(LogLevel level, std::string_view msg, const std::vector<LogField>& fields);

void log(LogLevel level, std::string_view msg, const std::vector<LogField>& fields = {});
inline void log_debug(std::string_view m, const std::vector<LogField>& f = {}) { log(LogLevel::debug, m, f); }
inline void log_info(std::string_view m, const std::vector<LogField>& f = {}) { log(LogLevel::info, m, f); }
inline void log_warn(std::string_view m, const std::vector<LogField>& f = {}) { log(LogLevel::warn, m, f); }
inline void log_error(std::string_view m, const std::vector<LogField>& f = {}) { log(LogLevel::error, m, f); }

}  // namespace recgate
