// One JSON object per line on stdout (time, level, msg, request id, fields).
// Every line is valid UTF-8 JSON whatever bytes it is given, and lines never
// interleave between threads. Callers must never pass secrets: the logger
// does not know which strings are secret.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
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

// Where lines go (default stdout); exposed for tests.
void set_log_fd(int fd);

void log(LogLevel level, std::string_view msg, const std::vector<LogField>& fields = {});
inline void log_debug(std::string_view m, const std::vector<LogField>& f = {}) { log(LogLevel::debug, m, f); }
inline void log_info(std::string_view m, const std::vector<LogField>& f = {}) { log(LogLevel::info, m, f); }
inline void log_warn(std::string_view m, const std::vector<LogField>& f = {}) { log(LogLevel::warn, m, f); }
inline void log_error(std::string_view m, const std::vector<LogField>& f = {}) { log(LogLevel::error, m, f); }

// Keeps an event that may repeat thousands of times a second (accept
// failures, a full connection table) to one log line per interval that says
// how many times it happened. Used from one thread.
class RepeatLimiter {
 public:
  using Clock = std::chrono::steady_clock;
  explicit RepeatLimiter(Clock::duration interval = std::chrono::seconds(1)) : interval_(interval) {}
  // Records one occurrence at `now`. Returns how many occurrences a line
  // written now stands for (this one and those held back since the last
  // line), or 0 when this one is held back.
  std::uint64_t record(Clock::time_point now);

 private:
  Clock::duration interval_;
  std::optional<Clock::time_point> last_line_;
  std::uint64_t held_ = 0;
};

}  // namespace recgate
