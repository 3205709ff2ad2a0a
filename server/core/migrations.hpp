// Schema migrations: numbered SQL compiled into the binary
// (cmake/embed_migrations.cmake) and applied in order by the store.
#pragma once

#include <string>
#include <vector>

struct sqlite3;

namespace recgate {

struct Migration {
  int version;
  const char* name;
  const char* sql;
};

const std::vector<Migration>& embedded_migrations();

struct MigrateResult {
  bool ok = false;
  std::string error;
  int applied = 0;         // migrations applied by this call
  int schema_version = 0;  // after the call
};

// Applies every migration newer than the database's version, each in its own
// transaction, recorded in schema_migrations. Refuses a database whose
// version is newer than the newest migration known.
MigrateResult migrate(sqlite3* db, const std::vector<Migration>& migrations);

}  // namespace recgate
