// The MWS tables (mws_snapshot, mws_recommendations): every SQL statement
// the MWS service runs. Functions of a Db, run on the store thread; no
// policy here (what is fresh, what to keep is the service's and cache's).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/cache/index.hpp"
#include "core/store.hpp"

namespace recgate::mws::repo {

// One list's row key.
struct ListKey {
  std::string account;
  std::string marketplace;
  std::string category;
  std::string filters;  // svc::key_list of the filters
};

void save_snapshot(Db& db, const std::string& account, const std::string& marketplace, std::int64_t checked_at,
                   const std::string& body);

struct SnapshotRow {
  std::string account;
  std::string marketplace;
  std::int64_t checked_at = 0;
  std::string body;
};
std::vector<SnapshotRow> all_snapshots(Db& db);

// The list's stored answer (validator, fetched_at, body, hash), nullptr if none.
cache::EntryPtr find_list(Db& db, const ListKey& k);
void save_list(Db& db, const ListKey& k, const cache::Entry& e);

// Deletes lists (nullopt: any value) and, unless a category is given, the
// matching snapshots; returns the lists deleted.
std::size_t purge(Db& db, const std::optional<std::string>& account, const std::optional<std::string>& marketplace,
                  const std::optional<std::string>& category);

// Warming the memory index (cache::warm_index): the query and one row.
extern const char* const kWarmSql;
// What the entry is made of, as views into the statement's current row
// (valid until its next step): the caller builds the entry under its index
// key (cache::make_entry(data, key)), in one allocation, not re-keyed, with
// no copy of the body in between.
struct WarmRow {
  ListKey key;
  cache::EntryView data;
};
WarmRow warm_row(Stmt& r);

}  // namespace recgate::mws::repo
