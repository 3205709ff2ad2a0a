// The throttle tables' SQL (see repository.hpp). Times are stored as integer
// milliseconds.
#include "core/throttle/repository.hpp"

#include <cmath>
#include <cstdint>
#include <limits>
#include <string_view>

namespace recgate::throttle::repo {

void write_level(Db& db, const std::string& account, const std::string& group, double level, double at) {
  // Rounded up to the next millisecond: a later time for the same level is the
  // conservative direction.
  auto at_ms = static_cast<std::int64_t>(std::ceil(at * 1000.0));
  db.prepare(
        "INSERT INTO bucket_levels (account, operation, tokens, updated_at) VALUES (?1, ?2, ?3, ?4) "
        "ON CONFLICT (account, operation) DO UPDATE SET tokens = excluded.tokens, updated_at = excluded.updated_at")
      .bind(1, std::string_view(account))
      .bind(2, std::string_view(group))
      .bind(3, level)
      .bind(4, at_ms)
      .step();
}

void write_rate(Db& db, const std::string& account, const std::string& group, double restore_per_s,
                double last_throttle_at) {
  auto st = db.prepare(
      "INSERT INTO bucket_rates (account, operation, restore_per_s, last_throttle_at) VALUES (?1, ?2, ?3, ?4) "
      "ON CONFLICT (account, operation) DO UPDATE SET restore_per_s = excluded.restore_per_s, "
      "last_throttle_at = excluded.last_throttle_at");
  st.bind(1, std::string_view(account)).bind(2, std::string_view(group)).bind(3, restore_per_s);
  if (std::isfinite(last_throttle_at)) st.bind(4, static_cast<std::int64_t>(std::llround(last_throttle_at * 1000.0)));
  st.step();
}

std::map<BucketKey, Level> read_levels(Db& db) {
  std::map<BucketKey, Level> rows;
  auto st = db.prepare("SELECT account, operation, tokens, updated_at FROM bucket_levels");
  while (st.step()) rows[{st.text(0), st.text(1)}] = {st.real(2), static_cast<double>(st.int64(3)) / 1000.0};
  return rows;
}

std::map<BucketKey, LearntRate> read_rates(Db& db) {
  std::map<BucketKey, LearntRate> rows;
  auto st = db.prepare("SELECT account, operation, restore_per_s, last_throttle_at FROM bucket_rates");
  while (st.step()) {
    const double last =
        st.is_null(3) ? -std::numeric_limits<double>::infinity() : static_cast<double>(st.int64(3)) / 1000.0;
    rows[{st.text(0), st.text(1)}] = {st.real(2), last};
  }
  return rows;
}

}  // namespace recgate::throttle::repo
