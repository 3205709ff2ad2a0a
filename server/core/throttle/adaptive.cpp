// AIMD rate learning and Retry-After parsing (see adaptive.hpp).
#include "core/throttle/adaptive.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <limits>
#include <string>

namespace recgate {

AdaptiveRate::AdaptiveRate(AdaptiveSpec spec, double rate, double last_throttle_at, double now)
    : spec_(spec),
      rate_(std::clamp(rate, std::min(spec.floor_per_s, spec.ceiling_per_s), spec.ceiling_per_s)),
      last_throttle_(last_throttle_at),
      last_change_(now) {}

double AdaptiveRate::capacity() const {
  if (spec_.ceiling_per_s <= 0) return spec_.ceiling_capacity;
  return std::max(1.0, std::floor(spec_.ceiling_capacity * rate_ / spec_.ceiling_per_s));
}

bool AdaptiveRate::on_throttle(double now) {
  const bool news = now - last_throttle_ >= 1.0 / std::max(rate_, 1e-9);  // -inf: never throttled
  last_throttle_ = now;
  if (!news) return false;
  const double cut = std::max(std::min(spec_.floor_per_s, spec_.ceiling_per_s), rate_ * spec_.decrease);
  last_change_ = now;
  if (cut == rate_) return false;
  rate_ = cut;
  return true;
}

bool AdaptiveRate::on_success(double now) {
  if (rate_ >= spec_.ceiling_per_s) return false;
  if (now - last_change_ < spec_.quiet_s || now - last_throttle_ < spec_.quiet_s) return false;
  rate_ = std::min(spec_.ceiling_per_s, rate_ + spec_.step_per_s);
  last_change_ = now;
  return true;
}

std::optional<double> parse_retry_after_header(std::string_view v, double now) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  if (v.empty()) return std::nullopt;
  if (v.find_first_not_of("0123456789") == std::string_view::npos) {
    if (v.size() > 9) return std::nullopt;
    return std::stod(std::string(v));
  }
  // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT".
  if (v.size() != 29 || v.substr(25) != " GMT") return std::nullopt;
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const std::string s(v);
  char wday[4] = {}, mon[4] = {};
  int day = 0, year = 0, hh = 0, mm = 0, ss = 0;
  if (std::sscanf(s.c_str(), "%3s, %2d %3s %4d %2d:%2d:%2d GMT", wday, &day, mon, &year, &hh, &mm, &ss) != 7)
    return std::nullopt;
  int month = -1;
  for (int i = 0; i < 12; ++i)
    if (std::strcmp(mon, kMonths[i]) == 0) month = i;
  if (month < 0 || day < 1 || day > 31 || hh > 23 || mm > 59 || ss > 60 || year < 1970) return std::nullopt;
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = month;
  tm.tm_mday = day;
  tm.tm_hour = hh;
  tm.tm_min = mm;
  tm.tm_sec = ss;
  const double at = static_cast<double>(timegm(&tm));
  return std::max(0.0, at - now);
}

}  // namespace recgate
