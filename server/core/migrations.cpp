// Applies the embedded migrations in order, each in one transaction, and
// records them in schema_migrations; refuses databases from a newer recgate.
#include "core/migrations.hpp"

#include <sqlite3.h>

#include <algorithm>

namespace recgate {
namespace {

bool exec(sqlite3* db, const char* sql, std::string& err) {
  char* msg = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &msg) != SQLITE_OK) {
    err = msg ? msg : "unknown error";
    sqlite3_free(msg);
    return false;
  }
  return true;
}

int current_version(sqlite3* db) {
  sqlite3_stmt* st = nullptr;
  int v = 0;
  if (sqlite3_prepare_v2(db, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations", -1, &st, nullptr) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW)
    v = sqlite3_column_int(st, 0);
  sqlite3_finalize(st);
  return v;
}

}  // namespace

MigrateResult migrate(sqlite3* db, const std::vector<Migration>& migrations) {
  MigrateResult r;
  std::string err;
  if (!exec(db,
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
            "applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now')))",
            err)) {
    r.error = "cannot create schema_migrations: " + err;
    return r;
  }
  int version = current_version(db);
  int newest = 0;
  for (const auto& m : migrations) newest = std::max(newest, m.version);
  if (version > newest) {
    r.error = "database schema version " + std::to_string(version) + " is newer than this recgate knows (" +
              std::to_string(newest) + "): it was migrated by a newer version; refusing to use it";
    r.schema_version = version;
    return r;
  }
  std::vector<Migration> todo;
  for (const auto& m : migrations)
    if (m.version > version) todo.push_back(m);
  std::sort(todo.begin(), todo.end(), [](const Migration& a, const Migration& b) { return a.version < b.version; });
  for (const auto& m : todo) {
    if (!exec(db, "BEGIN IMMEDIATE", err)) {
      r.error = "cannot begin migration " + std::string(m.name) + ": " + err;
      return r;
    }
    if (!exec(db, m.sql, err)) {
      std::string ignored;
      exec(db, "ROLLBACK", ignored);
      r.error = "migration " + std::string(m.name) + " failed: " + err;
      r.schema_version = version;
      return r;
    }
    sqlite3_stmt* st = nullptr;
    sqlite3_prepare_v2(db, "INSERT INTO schema_migrations(version, name) VALUES (?, ?)", -1, &st, nullptr);
    sqlite3_bind_int(st, 1, m.version);
    sqlite3_bind_text(st, 2, m.name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE || !exec(db, "COMMIT", err)) {
      std::string ignored;
      exec(db, "ROLLBACK", ignored);
      r.error = "cannot record migration " + std::string(m.name) + ": " + (err.empty() ? sqlite3_errmsg(db) : err);
      return r;
    }
    version = m.version;
    ++r.applied;
  }
  r.ok = true;
  r.schema_version = version;
  return r;
}

}  // namespace recgate
