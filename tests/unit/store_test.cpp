// Migrations (fresh, re-run no-op, failed migration rolled back, newer
// database refused) and the store's thread hand-off.
#include <doctest/doctest.h>
#include <sqlite3.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <filesystem>
#include <thread>

#include "core/migrations.hpp"
#include "core/store.hpp"

using namespace recgate;

namespace {

struct MemDb {
  sqlite3* db = nullptr;
  MemDb() { sqlite3_open(":memory:", &db); }
  ~MemDb() { sqlite3_close(db); }
  int count(const char* sql) {
    sqlite3_stmt* st = nullptr;
    sqlite3_prepare_v2(db, sql, -1, &st, nullptr);
    int n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
    sqlite3_finalize(st);
    return n;
  }
};

std::string temp_db_path() {
  auto dir = std::filesystem::temp_directory_path() /
             ("recgate-unit-" + std::to_string(::getpid()) + "-" +
              std::to_string(std::hash<std::thread::id>{}(std::this_thread::get_id())));
  std::filesystem::remove_all(dir);
  return (dir / "nested" / "test.db").string();
}

boost::asio::awaitable<int> thread_hop(Store* store, std::thread::id* db_thread) {
  co_return co_await store->run([db_thread](Db& db) {
    *db_thread = std::this_thread::get_id();
    auto s = db.prepare("SELECT 40 + 2");
    s.step();
    return static_cast<int>(s.int64(0));
  });
}

}  // namespace

TEST_CASE("migrations: fresh database gets every embedded migration, re-run is a no-op") {
  MemDb m;
  const auto& list = embedded_migrations();
  REQUIRE_FALSE(list.empty());
  auto r1 = migrate(m.db, list);
  REQUIRE(r1.ok);
  CHECK(r1.applied == static_cast<int>(list.size()));
  CHECK(r1.schema_version == list.back().version);
  for (const char* table : {"mws_snapshot", "mws_recommendations", "ads_answers", "lwa_tokens", "bucket_levels"}) {
    CAPTURE(table);
    CHECK(m.count((std::string("SELECT COUNT(*) FROM sqlite_master WHERE type='table' AND name='") + table + "'")
                      .c_str()) == 1);
  }
  auto r2 = migrate(m.db, list);
  CHECK(r2.ok);
  CHECK(r2.applied == 0);
  CHECK(r2.schema_version == r1.schema_version);
  CHECK(m.count("SELECT COUNT(*) FROM schema_migrations") == static_cast<int>(list.size()));
}

TEST_CASE("migrations: applied in version order, a failing one is rolled back and reported") {
  MemDb m;
  std::vector<Migration> list = {{2, "0002_b", "CREATE TABLE b(x); INSERT INTO a VALUES (1);"},
                                 {1, "0001_a", "CREATE TABLE a(x);"},
                                 {3, "0003_bad", "CREATE TABLE c(x); THIS IS NOT SQL;"}};
  auto r = migrate(m.db, list);
  CHECK_FALSE(r.ok);
  CHECK(r.error.find("0003_bad") != std::string::npos);
  CHECK(r.schema_version == 2);
  CHECK(m.count("SELECT COUNT(*) FROM a") == 1);
  CHECK(m.count("SELECT COUNT(*) FROM sqlite_master WHERE name='c'") == 0);
  CHECK(m.count("SELECT MAX(version) FROM schema_migrations") == 2);
}

TEST_CASE("migrations: a database from a newer version is refused") {
  MemDb m;
  std::vector<Migration> newer = {{1, "0001_a", "CREATE TABLE a(x);"}, {7, "0007_z", "CREATE TABLE z(x);"}};
  REQUIRE(migrate(m.db, newer).ok);
  std::vector<Migration> older = {{1, "0001_a", "CREATE TABLE a(x);"}};
  auto r = migrate(m.db, older);
  CHECK_FALSE(r.ok);
  CHECK(r.error.find("newer") != std::string::npos);
  CHECK(r.error.find("7") != std::string::npos);
}

TEST_CASE("store: opens a file in a new directory, runs work on its own thread, survives reopen") {
  std::string path = temp_db_path();
  {
    auto store = Store::open(path);
    CHECK(store->schema_version() == embedded_migrations().back().version);
    boost::asio::io_context ioc;
    std::thread::id db_thread;
    auto fut = boost::asio::co_spawn(ioc, thread_hop(store.get(), &db_thread), boost::asio::use_future);
    ioc.run();
    CHECK(fut.get() == 42);
    CHECK(db_thread != std::this_thread::get_id());
    store->post([](Db& db) {
      db.prepare("INSERT INTO lwa_tokens(account, access_token, expires_at) VALUES ('a', 't', 1)").step();
    });
  }
  auto again = Store::open(path);
  int rows = -1;
  again->run_sync([&](Db& db) {
    auto s = db.prepare("SELECT COUNT(*) FROM lwa_tokens");
    s.step();
    rows = static_cast<int>(s.int64(0));
  });
  CHECK(rows == 1);
  std::filesystem::remove_all(std::filesystem::path(path).parent_path().parent_path());
}

TEST_CASE("store: errors inside run() reach the caller") {
  std::string path = temp_db_path();
  auto store = Store::open(path);
  CHECK_THROWS_AS(store->run_sync([](Db& db) { db.exec("SELECT * FROM no_such_table"); }), StoreError);
  std::filesystem::remove_all(std::filesystem::path(path).parent_path().parent_path());
}
