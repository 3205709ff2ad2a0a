// The Ads tables (ads_answers, lwa_tokens): every SQL statement the Ads
// service runs. Functions of a Db, run on the store thread; the policy (TTL,
// which tokens are usable) is the service's.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/cache/index.hpp"
#include "core/store.hpp"

namespace recgate::ads::repo {

// The stored answer (fetched_at, expires_at, body, hash), nullptr if none.
cache::EntryPtr find_answer(Db& db, const std::string& account, const std::string& request_key);
void save_answer(Db& db, const std::string& account, const std::string& request_key, const cache::Entry& e);
// Deletes the answers of `account` (nullopt: all); returns how many.
std::size_t purge(Db& db, const std::optional<std::string>& account);

struct TokenRow {
  std::string account;
  std::string access_token;
  std::int64_t expires_at_ms = 0;
  std::int64_t obtained_at_ms = 0;
};
void save_token(Db& db, const TokenRow& t);
std::vector<TokenRow> all_tokens(Db& db);

// Warming the memory index (cache::warm_index): the query and one row.
extern const char* const kWarmSql;
// What the entry is made of, as views into the statement's current row
// (valid until its next step): the caller builds the entry under its index
// key (cache::make_entry(data, key)), in one allocation, not re-keyed, with
// no copy of the body in between.
struct WarmRow {
  std::string account;
  std::string request_key;
  cache::EntryView data;
};
WarmRow warm_row(Stmt& r);

}  // namespace recgate::ads::repo
