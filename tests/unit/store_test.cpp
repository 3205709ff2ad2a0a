// Migrations (fresh, re-run no-op, failed migration rolled back, newer
// database refused) and the store's thread hand-off.
#include <doctest/doctest.h>
#include <sqlite3.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <filesystem>
#include <thread>

#include "core/cache/retention.hpp"
#include "core/migrations.hpp"
#include "core/store.hpp"
#include "core/throttle/throttler.hpp"

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

TEST_CASE("store: a second open of the same file is refused while the first holds it, naming our pid") {
  std::string path = temp_db_path();
  {
    auto first = Store::open(path);
    try {
      Store::open(path);
      FAIL("the second open succeeded");
    } catch (const StoreError& e) {
      const std::string msg = e.what();
      CHECK(msg.find(path) != std::string::npos);
      CHECK(msg.find("pid " + std::to_string(::getpid())) != std::string::npos);
    }
  }
  CHECK_NOTHROW(Store::open(path));  // released with the first Store
  std::filesystem::remove_all(std::filesystem::path(path).parent_path().parent_path());
}

TEST_CASE("store: the clean-shutdown marker - fresh is clean, a run without mark_clean_shutdown is not") {
  std::string path = temp_db_path();
  CHECK(Store::open(path)->previous_run_clean());  // fresh; this run is not marked clean
  {
    auto s = Store::open(path);
    CHECK_FALSE(s->previous_run_clean());
    s->mark_clean_shutdown();
  }
  CHECK(Store::open(path)->previous_run_clean());
  std::filesystem::remove_all(std::filesystem::path(path).parent_path().parent_path());
}

namespace {
void put_mws(Db& db, const char* category, const char* filters, const char* last_updated, std::int64_t fetched_at) {
  auto st = db.prepare(
      "INSERT INTO mws_recommendations(account, marketplace, category, filters, last_updated, fetched_at, body) "
      "VALUES ('a', 'M', ?, ?, ?, ?, '[]')");
  st.bind(1, category).bind(2, filters).bind(4, fetched_at);
  if (last_updated) st.bind(3, last_updated);
  else st.bind_null(3);
  st.step();
}
std::int64_t count(Db& db, const char* sql) {
  auto st = db.prepare(sql);
  return st.step() ? st.int64(0) : -1;
}
}  // namespace

TEST_CASE("retention: prune_unusable keeps what can still be served, fresh or stale, and nothing else") {
  std::string path = temp_db_path();
  auto store = Store::open(path);
  const std::int64_t now = 1'000'000'000;
  cache::RetentionConfig cfg{/*mws_max_stale_s=*/100, /*listing_quality_ttl_s=*/50, /*ads_max_stale_s=*/10, 0};
  store->run_sync([&](Db& db) {
    db.exec(
        "INSERT INTO mws_snapshot VALUES ('a', 'M', 0, "
        "'{\"Inventory\":\"2026-01-02T00:00:00Z\",\"Pricing\":null,\"Selection\":\"2026-01-01T00:00:00Z\"}')");
    put_mws(db, "Inventory", "old-current", "2026-01-02T00:00:00Z", now - 1'000'000);   // fresh: kept
    put_mws(db, "Inventory", "old-superseded", "2026-01-01T00:00:00Z", now - 1'000'000);  // gone
    put_mws(db, "Inventory", "new-superseded", "2026-01-01T00:00:00Z", now - 50'000);  // stale-servable: kept
    put_mws(db, "Pricing", "ttl-young", nullptr, now - 40'000);                         // TTL fresh: kept
    put_mws(db, "Pricing", "ttl-old", nullptr, now - 200'000);                          // gone
    put_mws(db, "ListingQuality", "lq-old", nullptr, now - 200'000);                    // gone
    put_mws(db, "Fulfillment", "no-snapshot-entry", "2026-01-01T00:00:00Z", now - 200'000);  // gone (TTL)
    db.prepare("INSERT INTO ads_answers VALUES ('a', 'expired-old', ?1, ?2, 'application/json', '{}')")
        .bind(1, now - 20'000).bind(2, now - 15'000).step();  // gone
    db.prepare("INSERT INTO ads_answers VALUES ('a', 'expired-recent', ?1, ?2, 'application/json', '{}')")
        .bind(1, now - 5'000).bind(2, now - 1'000).step();  // stale-servable: kept
    db.prepare("INSERT INTO ads_answers VALUES ('a', 'live', ?1, ?2, 'application/json', '{}')")
        .bind(1, now - 50'000).bind(2, now + 1'000).step();  // kept
    CHECK(cache::prune_unusable(db, cfg, now) == 5);
    CHECK(count(db, "SELECT COUNT(*) FROM mws_recommendations WHERE filters IN ('old-current', 'new-superseded', "
                    "'ttl-young')") == 3);
    CHECK(count(db, "SELECT COUNT(*) FROM mws_recommendations") == 3);
    CHECK(count(db, "SELECT COUNT(*) FROM ads_answers WHERE request_key IN ('expired-recent', 'live')") == 2);
    CHECK(count(db, "SELECT COUNT(*) FROM ads_answers") == 2);
  });
  store.reset();
  std::filesystem::remove_all(std::filesystem::path(path).parent_path().parent_path());
}

TEST_CASE("retention: LoadBudget stops at the first entry that passes either bound") {
  cache::LoadBudget by_bytes(100, 1000);
  CHECK(by_bytes.take(500));           // 628
  CHECK_FALSE(by_bytes.take(300));     // 628 + 428 > 1000
  CHECK(by_bytes.take(200));           // 956
  CHECK(by_bytes.entries() == 2);
  CHECK(by_bytes.bytes() == 956);
  cache::LoadBudget by_count(1, 1 << 20);
  CHECK(by_count.take(1));
  CHECK_FALSE(by_count.take(1));
  cache::LoadBudget none(0, 0);
  CHECK_FALSE(none.take(0));
}

namespace {
// 200 when a token is granted at once, else the problem's status.
boost::asio::awaitable<int> grant_status(Throttler* th, std::string operation) {
  auto r = co_await th->acquire("main", std::move(operation), std::chrono::milliseconds(0));
  co_return r ? 200 : r.error().status;
}
}  // namespace

TEST_CASE("throttler persistence: after an unclean stop every bucket starts empty, and a stored hold still holds") {
  std::string path = temp_db_path();
  double now = 1'700'000'000.0;
  auto clock = [&now] { return now; };
  ThrottleConfig cfg;
  {
    auto store = Store::open(path);
    Throttler th(cfg, store.get(), clock);
    th.on_upstream_throttled("main", "ads.ProductRecommendations", 30.0);  // held for 30 s, written
    store->flush();
  }  // no mark_clean_shutdown: as after kill -9
  now += 1;
  auto store = Store::open(path);
  CHECK_FALSE(store->previous_run_clean());
  Throttler th(cfg, store.get(), clock);
  auto find = [&](const std::string& op) -> std::optional<BucketStatus> {
    for (const auto& b : th.status())
      if (b.operation == op) return b;
    return std::nullopt;
  };
  auto ads = find("ads.ProductRecommendations");
  REQUIRE(ads);
  CHECK(ads->tokens == 0);
  CHECK(ads->next_token_s > 28);  // not before the hold ends
  // A bucket without a row also starts empty (its grants may never have been written): no grant now.
  boost::asio::io_context ioc;
  auto fut = boost::asio::co_spawn(ioc, grant_status(&th, "mws.ListRecommendations"), boost::asio::use_future);
  ioc.run();
  CHECK(fut.get() == 429);
}
