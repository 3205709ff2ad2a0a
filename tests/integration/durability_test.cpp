// [hardening] the database and crashes, with the real binary: start-up
// errors are one line and exit 1 (never an abort), one process per database,
// a corrupt file moved aside, "stored" answers survive kill -9, quota spent
// before a kill -9 is not spent again, and the file and the start-up load
// stay within their bounds.
#include <doctest/doctest.h>
#include <signal.h>
#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "harness.hpp"

using namespace rgtest;

namespace {

const std::string kInventory = "/v1/mws/main/recommendations?marketplace=ATVPDKIKX0DER&category=Inventory";
const std::string kAds = "/v1/ads/main/product-recommendations";

std::string db_path(const TempDir& dir) { return dir.file("db/recgate.db"); }

// A plain SQLite connection from the test process (another program).
struct Sql {
  sqlite3* db = nullptr;
  explicit Sql(const std::string& path) {
    REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) == SQLITE_OK);
    sqlite3_busy_timeout(db, 10000);
  }
  ~Sql() { sqlite3_close_v2(db); }
  void exec(const std::string& sql) {
    char* err = nullptr;
    const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
    const std::string msg = err ? err : "";
    sqlite3_free(err);
    REQUIRE_MESSAGE(rc == SQLITE_OK, sql, ": ", msg);
  }
  long long value(const std::string& sql) {
    sqlite3_stmt* st = nullptr;
    REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK);
    long long v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_finalize(st);
    return v;
  }
};

// recgate started without waiting for its port (for runs that must fail).
std::unique_ptr<Process> start_raw(const TempDir& dir, const std::string& cfg, const std::string& name = "recgate.json") {
  write_file(dir.file(name), cfg);
  return std::make_unique<Process>(std::vector<std::string>{RECGATE_BIN, "--config", dir.file(name)});
}

int count_lines(const Process& p, const std::vector<std::string>& needles) {
  int n = 0;
  for (const auto& l : p.lines()) {
    bool all = true;
    for (const auto& x : needles) all = all && l.find(x) != std::string::npos;
    n += all;
  }
  return n;
}

// Start-up failed the way it must: exit 1, one error line naming the file, no abort.
void check_clean_failure(Process& p, const std::string& path) {
  const int code = p.wait_exit();
  CHECK_MESSAGE(code == 1, p.output());
  CHECK_MESSAGE(count_lines(p, {"\"level\":\"error\"", path}) == 1, p.output());
  CHECK(p.output().find("terminate called") == std::string::npos);
}

std::string ads_body(int count) {
  return "{\"adAsins\":[\"B09LJWZT6G\"],\"count\":" + std::to_string(count) + "}";
}

HttpResponse ask_ads(int port, const std::string& body, std::vector<std::pair<std::string, std::string>> headers = {}) {
  headers.emplace_back("Content-Type", "application/json");
  return http_request(port, "POST", kAds, body, headers);
}

std::uintmax_t file_size_or_zero(const std::string& p) {
  std::error_code ec;
  auto n = std::filesystem::file_size(p, ec);
  return ec ? 0 : n;
}

long peak_rss_kib(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}

// Rows of `size` bytes in ads_answers, fetched `age_s` seconds ago and
// still fresh, written directly into a database recgate created.
void fill_ads_rows(const std::string& path, int rows, std::size_t size) {
  Sql sql(path);
  sql.exec("BEGIN");
  const std::string body = "\"" + std::string(size, 'x') + "\"";
  const long long now = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
  for (int i = 0; i < rows; ++i) {
    sqlite3_stmt* st = nullptr;
    REQUIRE(sqlite3_prepare_v2(sql.db,
                               "INSERT INTO ads_answers(account, request_key, fetched_at, expires_at, content_type, body) "
                               "VALUES ('main', ?1, ?2, ?3, 'application/json', ?4)",
                               -1, &st, nullptr) == SQLITE_OK);
    const std::string key = "prefill-" + std::to_string(i);
    sqlite3_bind_text(st, 1, key.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, now - (rows - i) * 1000LL);  // prefill-0 oldest
    sqlite3_bind_int64(st, 3, now + 3600 * 1000LL);
    sqlite3_bind_text(st, 4, body.c_str(), static_cast<int>(body.size()), SQLITE_TRANSIENT);
    REQUIRE(sqlite3_step(st) == SQLITE_DONE);
    sqlite3_finalize(st);
  }
  sql.exec("COMMIT");
}

// Creates the database with this recgate (schema, auto_vacuum) and stops it cleanly.
void create_db(const TempDir& dir, const std::string& cfg) {
  Recgate rg(dir, cfg);
  rg.proc.signal(SIGTERM);
  REQUIRE(rg.proc.wait_exit() == 0);
}

}  // namespace

TEST_CASE("durability: a database that says schema version 2 but has no tables: one error line, exit 1, no abort") {
  Sandbox sb;
  TempDir dir;
  std::filesystem::create_directories(dir.file("db"));
  {
    Sql sql(db_path(dir));
    sql.exec(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL "
        "DEFAULT ''); INSERT INTO schema_migrations(version, name) VALUES (1, '0001_initial'), (2, '0002_x');");
  }
  auto p = start_raw(dir, test_config(dir, sb.port));
  check_clean_failure(*p, db_path(dir));
}

TEST_CASE("durability: SIGTERM while another program holds the write lock: levels are best effort, exit 0") {
  Sandbox sb;
  TempDir dir;
  Recgate rg(dir, test_config(dir, sb.port));
  REQUIRE(http_get(rg.port, kInventory).status == 200);  // buckets with levels to save
  Sql other(db_path(dir));
  other.exec("BEGIN IMMEDIATE");  // held until recgate has exited
  rg.proc.signal(SIGTERM);
  const int code = rg.proc.wait_exit(std::chrono::seconds(30));
  CHECK_MESSAGE(code == 0, rg.proc.output());
  CHECK(rg.proc.output().find("cannot save quota bucket levels") != std::string::npos);
  CHECK(rg.proc.output().find("terminate called") == std::string::npos);
  other.exec("ROLLBACK");
}

TEST_CASE("durability: a second recgate on the same database exits 1 naming the file and the first one's pid") {
  Sandbox sb;
  TempDir dir;
  const std::string cfg = test_config(dir, sb.port);
  Recgate first(dir, cfg);
  auto second = start_raw(dir, cfg, "second.json");
  check_clean_failure(*second, db_path(dir));
  CHECK(second->output().find("pid " + std::to_string(first.proc.pid())) != std::string::npos);
  CHECK(http_get(first.port, "/readyz").status == 200);
}

TEST_CASE("durability: a corrupt database is moved aside with its -wal and a fresh one serves") {
  Sandbox sb;
  TempDir dir;
  const std::string cfg = test_config(dir, sb.port);
  const std::string path = db_path(dir);
  auto moved_aside = [&] {
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(dir.file("db")))
      if (e.path().filename().string().find("recgate.db.corrupt-") == 0) names.push_back(e.path().filename().string());
    return names;
  };
  auto check_recovered = [&](const std::string& what) {
    Recgate rg(dir, cfg);
    CHECK(http_get(rg.port, "/readyz").status == 200);
    CHECK(rg.proc.wait_for_line({"\"level\":\"error\"", "corrupt", path, what}, std::chrono::seconds(5)).has_value());
    CHECK(rg.proc.wait_for_line({"did not stop cleanly"}, std::chrono::seconds(5)).has_value());  // levels lost: empty
    CHECK(http_get(rg.port, kInventory).header("cache-status") == "recgate; fwd=miss; stored");
    rg.proc.signal(SIGTERM);
    CHECK(rg.proc.wait_exit() == 0);
  };

  SUBCASE("not a database at all") {
    std::filesystem::create_directories(dir.file("db"));
    write_file(path, std::string(8192, 'G'));
    write_file(path + "-wal", std::string(100, 'W'));
    check_recovered("not a database");
    auto names = moved_aside();  // the file, its -wal and (SQLite made one) its -shm
    REQUIRE(names.size() >= 2);
    const std::string main = *std::min_element(names.begin(), names.end(),
                                               [](const auto& a, const auto& b) { return a.size() < b.size(); });
    CHECK(read_file(dir.file("db/" + main)) == std::string(8192, 'G'));
    CHECK(read_file(dir.file("db/" + main + "-wal")) == std::string(100, 'W'));
  }
  SUBCASE("pages damaged inside (quick_check)") {
    create_db(dir, cfg);
    fill_ads_rows(path, 40, 4000);
    {
      std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
      f.seekp(3 * 4096 + 100);  // inside a table page, past the header page
      const std::string junk(3 * 4096, '\xAB');
      f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
    }
    check_recovered("");
    CHECK_FALSE(moved_aside().empty());
  }
}

TEST_CASE("durability: an answer that said \"stored\" survives kill -9 at once (20 cycles)") {
  Sandbox sb;
  TempDir dir;
  // Fast buckets: after each kill -9 every bucket starts empty (item 11).
  const std::string cfg = test_config(
      dir, sb.port,
      "\"throttle\":{\"margin_ms\":0,\"buckets\":{\"ads.ProductRecommendations\":{\"capacity\":5,\"restore_per_s\":5},"
      "\"lwa.Token\":{\"capacity\":5,\"restore_per_s\":5}}}");
  auto rg = std::make_unique<Recgate>(dir, cfg);
  for (int i = 1; i <= 20; ++i) {
    CAPTURE(i);
    auto cold = ask_ads(rg->port, ads_body(i));
    REQUIRE_MESSAGE(cold.status == 200, cold.body);
    REQUIRE(cold.header("cache-status") == "recgate; fwd=miss; stored");
    rg->proc.signal(SIGKILL);
    REQUIRE(rg->proc.wait_exit() == 128 + SIGKILL);
    rg.reset();
    rg = std::make_unique<Recgate>(dir, cfg);
    auto cached = ask_ads(rg->port, ads_body(i), {{"Cache-Control", "only-if-cached"}});
    REQUIRE_MESSAGE(cached.status == 200, cached.body);
    CHECK(cached.body == cold.body);
  }
}

TEST_CASE("durability: quota spent before a kill -9 and never written is not spent again after the restart") {
  Sandbox sb;
  TempDir dir;
  // 3 tokens that practically never come back.
  const std::string cfg = test_config(
      dir, sb.port,
      "\"throttle\":{\"margin_ms\":0,\"buckets\":{\"ads.ProductRecommendations\":{\"capacity\":3,"
      "\"restore_per_s\":0.001}}}");
  {
    Recgate rg(dir, cfg);
    auto first = ask_ads(rg.port, ads_body(5));  // a fresh database: the bucket is full
    REQUIRE_MESSAGE(first.status == 200, first.body);
    const auto at = first.body.find("\"nextCursor\":\"");
    REQUIRE(at != std::string::npos);
    const std::string cursor = first.body.substr(at + 14, first.body.find('"', at + 14) - at - 14);
    // From here on the level writes cannot commit (another program holds
    // the write lock): the two grants below are spent but never written.
    Sql other(db_path(dir));
    other.exec("BEGIN IMMEDIATE");
    for (int i = 0; i < 2; ++i) {
      auto next = ask_ads(rg.port, "{\"adAsins\":[\"B09LJWZT6G\"],\"count\":5,\"cursor\":\"" + cursor + "\"}");
      REQUIRE_MESSAGE(next.status == 200, next.body);
    }
    rg.proc.signal(SIGKILL);
    REQUIRE(rg.proc.wait_exit() == 128 + SIGKILL);
    other.exec("ROLLBACK");
  }
  Recgate again(dir, cfg);
  auto r = ask_ads(again.port, ads_body(6), {{"Prefer", "wait=0"}});
  CHECK_MESSAGE(r.status == 429, r.body);
  CHECK(again.proc.wait_for_line({"did not stop cleanly"}, std::chrono::seconds(5)).has_value());
}

TEST_CASE("durability: after a clean stop the saved bucket levels are used (not emptied)") {
  Sandbox sb;
  TempDir dir;
  const std::string cfg = test_config(
      dir, sb.port,
      "\"throttle\":{\"margin_ms\":0,\"buckets\":{\"ads.ProductRecommendations\":{\"capacity\":3,"
      "\"restore_per_s\":0.001}}}");
  {
    Recgate rg(dir, cfg);
    REQUIRE(ask_ads(rg.port, ads_body(1)).status == 200);
    rg.proc.signal(SIGTERM);
    REQUIRE(rg.proc.wait_exit() == 0);
  }
  Recgate again(dir, cfg);
  CHECK(ask_ads(again.port, ads_body(2), {{"Prefer", "wait=0"}}).status == 200);
  CHECK(ask_ads(again.port, ads_body(3), {{"Prefer", "wait=0"}}).status == 200);
  CHECK(ask_ads(again.port, ads_body(4), {{"Prefer", "wait=0"}}).status == 429);
}

TEST_CASE("durability: the database file is trimmed to cache.max_db_bytes, oldest answers first") {
  Sandbox sb;
  TempDir dir;
  const std::string path = db_path(dir);
  create_db(dir, test_config(dir, sb.port));
  fill_ads_rows(path, 40, 256 * 1024);  // 10 MiB
  REQUIRE(file_size_or_zero(path) + file_size_or_zero(path + "-wal") > 10u * 1024 * 1024);
  const std::uintmax_t bound = 2u * 1024 * 1024;
  Recgate rg(dir, test_config(dir, sb.port, "\"cache\":{\"max_db_bytes\":2097152}"));
  CHECK_MESSAGE(wait_until([&] { return file_size_or_zero(path) <= bound && file_size_or_zero(path + "-wal") <= bound; },
                           std::chrono::seconds(20)),
                file_size_or_zero(path), " ", file_size_or_zero(path + "-wal"), "\n", rg.proc.output());
  // Still bounded after answers are written while serving.
  for (int i = 1; i <= 3; ++i) REQUIRE(ask_ads(rg.port, ads_body(i)).header("cache-status") == "recgate; fwd=miss; stored");
  CHECK(file_size_or_zero(path) <= bound);
  Sql sql(path);
  CHECK(sql.value("SELECT COUNT(*) FROM ads_answers WHERE request_key = 'prefill-39'") == 1);  // the newest stay
  CHECK(sql.value("SELECT COUNT(*) FROM ads_answers WHERE request_key = 'prefill-0'") == 0);   // the oldest go
}

TEST_CASE("durability: answers that can no longer be served are removed while running (MWS and Ads)") {
  Sandbox sb;
  TempDir dir;
  const std::string path = db_path(dir);
  Recgate rg(dir, test_config(dir, sb.port, "\"cache\":{\"prune_interval_s\":1,\"refresh_ahead\":false}",
                              "\"check_interval_s\":0,\"max_stale_s\":0", "\"cache_ttl_s\":0,\"max_stale_s\":0"));
  REQUIRE(ask_ads(rg.port, ads_body(3)).header("cache-status") == "recgate; fwd=miss; stored");
  REQUIRE(http_get(rg.port, kInventory).header("cache-status") == "recgate; fwd=miss; stored");
  REQUIRE(http_get(rg.port, "/v1/mws/main/recommendations?marketplace=ATVPDKIKX0DER&category=Pricing").status == 200);
  // Inventory moves upstream and the snapshot is re-checked: its stored
  // answer is superseded (and older than max_stale_s 0); Pricing's is not.
  REQUIRE(http_request(sb.port, "POST", "/admin/touch?seller=A1XEXAMPLEDF&marketplace=ATVPDKIKX0DER&category=Inventory")
              .status == 200);
  REQUIRE(http_get(rg.port, "/v1/mws/main/last-updated?marketplace=ATVPDKIKX0DER").status == 200);
  Sql sql(path);
  auto gone = [&] {
    return sql.value("SELECT COUNT(*) FROM ads_answers") == 0 &&
           sql.value("SELECT COUNT(*) FROM mws_recommendations WHERE category = 'Inventory'") == 0;
  };
  CHECK(wait_until(gone, std::chrono::seconds(15)));
  CHECK(sql.value("SELECT COUNT(*) FROM mws_recommendations WHERE category = 'Pricing'") == 1);
}

TEST_CASE("durability: start-up loads no more than cache.memory_bytes into memory, and in the background") {
  Sandbox sb;
  TempDir dir;
  const std::string path = db_path(dir);
  const std::string cfg = test_config(dir, sb.port, "\"cache\":{\"memory_bytes\":4194304}");
  long baseline = 0;
  {
    Recgate rg(dir, cfg);
    REQUIRE(http_get(rg.port, "/readyz").status == 200);
    baseline = peak_rss_kib(rg.proc.pid());
    rg.proc.signal(SIGTERM);
    REQUIRE(rg.proc.wait_exit() == 0);
  }
  fill_ads_rows(path, 100, 1024 * 1024);  // 100 MiB of fresh answers
  Recgate rg(dir, cfg);
  REQUIRE(rg.proc.wait_for_line({"cache loaded"}, std::chrono::seconds(30)).has_value());  // (older versions: before listening)
  const long peak = peak_rss_kib(rg.proc.pid());
  MESSAGE("peak RSS KiB: empty database ", baseline, ", 100 MiB database with memory_bytes 4 MiB ", peak);
  CHECK(peak - baseline < 48 * 1024);
  auto status = http_get(rg.port, "/v1/status");
  REQUIRE(status.status == 200);
  CHECK(status.body.find("\"ads\":{\"memoryEntries\":3,") != std::string::npos);  // 3 × (1 MiB + 2) fit in 4 MiB
}

TEST_CASE("durability: Ads answers are served stale within ads.max_stale_s, not mws.max_stale_s") {
  Sandbox sb;
  TempDir dir;
  Recgate rg(dir, test_config(dir, sb.port, "", "\"max_stale_s\":86400", "\"cache_ttl_s\":0,\"max_stale_s\":0"));
  REQUIRE(ask_ads(rg.port, ads_body(2)).status == 200);
  REQUIRE(http_request(sb.port, "POST", "/admin/ads/faults", R"({"status":500})", {{"Content-Type", "application/json"}})
              .status == 200);
  auto r = ask_ads(rg.port, ads_body(2));
  CHECK_MESSAGE(r.status == 502, r.header("cache-status"));  // expired, and older than ads.max_stale_s 0
}
