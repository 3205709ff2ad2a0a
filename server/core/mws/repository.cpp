// MWS SQL (see repository.hpp).
#include "core/mws/repository.hpp"

#include "core/cache/index.hpp"

namespace recgate::mws::repo {

void save_snapshot(Db& db, const std::string& account, const std::string& marketplace, std::int64_t checked_at,
                   const std::string& body) {
  db.prepare(
        "INSERT INTO mws_snapshot(account, marketplace, checked_at, body) VALUES (?,?,?,?) "
        "ON CONFLICT(account, marketplace) DO UPDATE SET checked_at=excluded.checked_at, body=excluded.body")
      .bind(1, account)
      .bind(2, marketplace)
      .bind(3, checked_at)
      .bind(4, body)
      .step();
}

std::vector<SnapshotRow> all_snapshots(Db& db) {
  std::vector<SnapshotRow> rows;
  auto st = db.prepare("SELECT account, marketplace, checked_at, body FROM mws_snapshot");
  while (st.step()) rows.push_back(SnapshotRow{st.text(0), st.text(1), st.int64(2), st.text(3)});
  return rows;
}

cache::EntryPtr find_list(Db& db, const ListKey& k) {
  auto st = db.prepare(
      "SELECT last_updated, fetched_at, body FROM mws_recommendations "
      "WHERE account=? AND marketplace=? AND category=? AND filters=?");
  st.bind(1, k.account).bind(2, k.marketplace).bind(3, k.category).bind(4, k.filters);
  if (!st.step()) return nullptr;
  cache::EntryData d;
  d.validator = st.opt_text(0);
  d.fetched_at_ms = st.int64(1);
  d.body = st.text(2);
  return cache::make_entry(d);
}

void save_list(Db& db, const ListKey& k, const cache::Entry& e) {
  db.prepare(
        "INSERT INTO mws_recommendations(account, marketplace, category, filters, last_updated, fetched_at, body) "
        "VALUES (?,?,?,?,?,?,?) ON CONFLICT(account, marketplace, category, filters) DO UPDATE SET "
        "last_updated=excluded.last_updated, fetched_at=excluded.fetched_at, body=excluded.body")
      .bind(1, k.account)
      .bind(2, k.marketplace)
      .bind(3, k.category)
      .bind(4, k.filters)
      .bind(5, e.validator())
      .bind(6, e.fetched_at_ms)
      .bind(7, e.body())
      .step();
}

std::size_t purge(Db& db, const std::optional<std::string>& account, const std::optional<std::string>& marketplace,
                  const std::optional<std::string>& category) {
  auto st = db.prepare(
      "DELETE FROM mws_recommendations WHERE (?1 IS NULL OR account=?1) AND (?2 IS NULL OR marketplace=?2) "
      "AND (?3 IS NULL OR category=?3)");
  st.bind(1, account).bind(2, marketplace).bind(3, category);
  st.step();
  const auto n = static_cast<std::size_t>(db.changes());
  if (!category) {
    auto sn = db.prepare("DELETE FROM mws_snapshot WHERE (?1 IS NULL OR account=?1) AND (?2 IS NULL OR marketplace=?2)");
    sn.bind(1, account).bind(2, marketplace);
    sn.step();
  }
  return n;
}

const char* const kWarmSql =
    "SELECT length(body), fetched_at, rowid, account, marketplace, category, filters, last_updated, "
    "body FROM mws_recommendations WHERE (fetched_at, rowid) < (?1, ?2) "
    "ORDER BY fetched_at DESC, rowid DESC LIMIT ?3";

WarmRow warm_row(Stmt& r) {
  cache::EntryView d;
  d.validator = r.opt_text_view(7);
  d.fetched_at_ms = r.int64(1);
  d.body = r.text_view(8);
  return WarmRow{ListKey{r.text(3), r.text(4), r.text(5), r.text(6)}, std::move(d)};
}

}  // namespace recgate::mws::repo
