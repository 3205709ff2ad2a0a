// Ads SQL (see repository.hpp).
#include "core/ads/repository.hpp"

namespace recgate::ads::repo {

cache::EntryPtr find_answer(Db& db, const std::string& account, const std::string& request_key) {
  auto st = db.prepare("SELECT fetched_at, expires_at, body FROM ads_answers WHERE account=? AND request_key=?");
  st.bind(1, account).bind(2, request_key);
  if (!st.step()) return nullptr;
  cache::EntryData d;
  d.fetched_at_ms = st.int64(0);
  d.expires_at_ms = st.int64(1);
  d.body = st.text(2);
  return cache::make_entry(d);
}

void save_answer(Db& db, const std::string& account, const std::string& request_key, const cache::Entry& e) {
  db.prepare(
        "INSERT INTO ads_answers(account, request_key, fetched_at, expires_at, content_type, body) "
        "VALUES (?,?,?,?,?,?) ON CONFLICT(account, request_key) DO UPDATE SET fetched_at=excluded.fetched_at, "
        "expires_at=excluded.expires_at, content_type=excluded.content_type, body=excluded.body")
      .bind(1, account)
      .bind(2, request_key)
      .bind(3, e.fetched_at_ms)
      .bind(4, e.expires_at_ms)
      .bind(5, "application/json")  // answers are JSON documents (checked before they are kept)
      .bind(6, e.body())
      .step();
}

std::size_t purge(Db& db, const std::optional<std::string>& account) {
  auto st = db.prepare("DELETE FROM ads_answers WHERE (?1 IS NULL OR account=?1)");
  st.bind(1, account);
  st.step();
  return static_cast<std::size_t>(db.changes());
}

void save_token(Db& db, const TokenRow& t) {
  db.prepare(
        "INSERT INTO lwa_tokens(account, access_token, expires_at, obtained_at) VALUES (?,?,?,?) "
        "ON CONFLICT(account) DO UPDATE SET access_token=excluded.access_token, "
        "expires_at=excluded.expires_at, obtained_at=excluded.obtained_at")
      .bind(1, t.account)
      .bind(2, t.access_token)
      .bind(3, t.expires_at_ms)
      .bind(4, t.obtained_at_ms)
      .step();
}

std::vector<TokenRow> all_tokens(Db& db) {
  std::vector<TokenRow> rows;
  auto t = db.prepare("SELECT account, access_token, expires_at, obtained_at FROM lwa_tokens");
  while (t.step()) rows.push_back(TokenRow{t.text(0), t.text(1), t.int64(2), t.int64(3)});
  return rows;
}

const char* const kWarmSql =
    "SELECT length(body), fetched_at, rowid, account, request_key, expires_at, body FROM ads_answers "
    "WHERE (fetched_at, rowid) < (?1, ?2) ORDER BY fetched_at DESC, rowid DESC LIMIT ?3";

WarmRow warm_row(Stmt& r) {
  cache::EntryView d;
  d.fetched_at_ms = r.int64(1);
  d.expires_at_ms = r.int64(5);
  d.body = r.text_view(6);
  return WarmRow{r.text(3), r.text(4), std::move(d)};
}

}  // namespace recgate::ads::repo
