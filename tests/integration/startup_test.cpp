// [perf] ready at once: with a database too large to check or load before
// serving, recgate listens, answers /healthz and serves stored answers while
// the integrity check and the in-memory fill still run in the background;
// a large file found corrupt by that check is replaced while serving.
// Ordering is asserted on recgate's own log lines, never on durations.
#include <doctest/doctest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "harness.hpp"

using namespace rgtest;

namespace {

// 160k rows of ~160 B: ~36 MB, above Store::kSyncCheckBytes (16 MiB), and
// enough rows that the background fill (64 rows per database step) is still
// running when the first requests arrive.
constexpr int kRows = 160000;
constexpr const char* kLastUpdated = "2026-01-15T08:00:00Z";

std::string db_path(const TempDir& dir) { return dir.file("db/recgate.db"); }

void exec(sqlite3* db, const std::string& sql) {
  char* err = nullptr;
  const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  const std::string msg = err ? err : "";
  sqlite3_free(err);
  REQUIRE_MESSAGE(rc == SQLITE_OK, sql, ": ", msg);
}

// A snapshot checked now and kRows fresh Selection lists stored under it,
// filters BrandName=B<i> (in recgate's length-prefixed key form), written
// by SQL into a database recgate created.
void fill_large(const std::string& path) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK);
  const long long now =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  const std::string lu = std::string("\"") + kLastUpdated + "\"";
  exec(db, "BEGIN");
  exec(db, "INSERT INTO mws_snapshot(account, marketplace, checked_at, body) VALUES ('main', 'ATVPDKIKX0DER', " +
               std::to_string(now) + ", '{\"Inventory\":" + lu + ",\"Selection\":" + lu + ",\"Pricing\":" + lu +
               ",\"Fulfillment\":" + lu + ",\"GlobalSelling\":" + lu + ",\"Advertising\":" + lu + "}')");
  exec(db,
       "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < " + std::to_string(kRows) +
           ") INSERT INTO mws_recommendations(account, marketplace, category, filters, last_updated, fetched_at, "
           "body) SELECT 'main', 'ATVPDKIKX0DER', 'Selection', length('BrandName=B' || i) || ':BrandName=B' || i, '" +
           kLastUpdated + "', " + std::to_string(now) +
           " - i, '[{\"RecommendationId\":\"SEL-' || i || '\",\"ItemName\":\"' || hex(randomblob(48)) || '\"}]' FROM n");
  exec(db, "COMMIT");
  sqlite3_close_v2(db);
}

void create_db(const TempDir& dir, const std::string& cfg) {
  Recgate rg(dir, cfg);
  rg.proc.signal(SIGTERM);
  REQUIRE(rg.proc.wait_exit() == 0);
}

// Index of the first log line containing every needle; -1 when none does.
long line_of(const Process& p, const std::vector<std::string>& needles) {
  const auto lines = p.lines();
  for (std::size_t i = 0; i < lines.size(); ++i) {
    bool all = true;
    for (const auto& x : needles) all = all && lines[i].find(x) != std::string::npos;
    if (all) return static_cast<long>(i);
  }
  return -1;
}

const std::string kOldest = "/v1/mws/main/recommendations?marketplace=ATVPDKIKX0DER&category=Selection&filter=BrandName%3DB" +
                            std::to_string(kRows - 1);

// The snapshot fill_large writes stays fresh for a day: under ASan on a
// loaded machine the test's last request can come more than the default
// check_interval_s (60 s) after the fill, and would then re-check upstream.
std::string large_config(const TempDir& dir, int sandbox_port) {
  return test_config(dir, sandbox_port, "\"cache\":{\"memory_entries\":1000000,\"memory_bytes\":1073741824}",
                     "\"check_interval_s\":86400");
}

}  // namespace

TEST_CASE("startup: with a large database, /healthz and a stored answer come before the check and the fill end") {
  Sandbox sb;
  TempDir dir;
  const std::string cfg = large_config(dir, sb.port);
  create_db(dir, cfg);
  fill_large(db_path(dir));
  REQUIRE(std::filesystem::file_size(db_path(dir)) > 16u * 1024 * 1024);

  Recgate rg(dir, cfg);
  REQUIRE(http_get(rg.port, "/healthz").status == 200);
  // The oldest row is the last the fill (newest first) would reach: served
  // from SQLite, as a hit, while the fill is still going.
  auto r = http_get(rg.port, kOldest);
  CHECK(r.status == 200);
  CHECK(r.header("cache-status") == "recgate; hit");
  CHECK(r.body.find("\"RecommendationId\":\"SEL-" + std::to_string(kRows - 1) + "\"") != std::string::npos);
  CHECK_MESSAGE(line_of(rg.proc, {"cache loaded"}) < 0, "the fill ended before the first answer: ", rg.proc.output());

  REQUIRE(rg.proc.wait_for_line({"cache loaded", "\"entries\":" + std::to_string(kRows)}, std::chrono::seconds(120))
              .has_value());
  REQUIRE(rg.proc.wait_for_line({"database checked"}, std::chrono::seconds(120)).has_value());
  const long listening = line_of(rg.proc, {"\"msg\":\"listening\""});
  const long answered = line_of(rg.proc, {"\"msg\":\"request\"", "BrandName%3DB" + std::to_string(kRows - 1)});
  REQUIRE(listening >= 0);
  REQUIRE(answered >= 0);
  // The integrity check of this file ran after the port was open, and the
  // answer was logged before the fill ended.
  CHECK(line_of(rg.proc, {"database checked"}) > listening);
  CHECK(answered < line_of(rg.proc, {"cache loaded"}));
  CHECK(http_get(rg.port, kOldest).header("cache-status") == "recgate; hit");
}

TEST_CASE("startup: a large database found corrupt by the background check is moved aside and replaced while serving") {
  Sandbox sb;
  TempDir dir;
  const std::string cfg = large_config(dir, sb.port);
  const std::string path = db_path(dir);
  create_db(dir, cfg);
  fill_large(path);
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(std::filesystem::file_size(path) / 2));  // inside the table's pages
    const std::string junk(8 * 4096, '\xAB');
    f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
  }
  Recgate rg(dir, cfg);
  REQUIRE(http_get(rg.port, "/healthz").status == 200);
  REQUIRE(rg.proc.wait_for_line({"\"level\":\"error\"", "corrupt", path, "quick_check"}, std::chrono::seconds(120))
              .has_value());
  CHECK(line_of(rg.proc, {"\"level\":\"error\"", "corrupt"}) > line_of(rg.proc, {"\"msg\":\"listening\""}));
  bool moved = false;
  for (const auto& e : std::filesystem::directory_iterator(dir.file("db")))
    moved = moved || e.path().filename().string().rfind("recgate.db.corrupt-", 0) == 0;
  CHECK(moved);
  // The fresh file serves: a question is fetched and stored again.
  auto r = http_get(rg.port, "/v1/mws/main/recommendations?marketplace=ATVPDKIKX0DER&category=Inventory");
  CHECK(r.status == 200);
  CHECK(r.header("cache-status") == "recgate; fwd=miss; stored");
  CHECK(http_get(rg.port, "/readyz").status == 200);
  rg.proc.signal(SIGTERM);
  CHECK(rg.proc.wait_exit() == 0);
}

// The system CA bundle is read on the first TLS connection, not at start
// (~140 certificates, 50-150 ms of start-up). SSL_CERT_FILE naming a FIFO
// with no writer makes any read of it block for ever: recgate must still
// come up, and serve a plain-http upstream, without touching it.
TEST_CASE("startup: the system CA bundle is not read before listening, nor for a plain-http upstream") {
  Sandbox sb;
  TempDir dir;
  const std::string fifo = dir.file("ca-bundle.fifo");
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  std::unique_ptr<Recgate> rg;
  REQUIRE_NOTHROW(rg = std::make_unique<Recgate>(dir, test_config(dir, sb.port),
                                                 std::vector<std::pair<std::string, std::string>>{
                                                     {"SSL_CERT_FILE", fifo}, {"SSL_CERT_DIR", dir.file("none")}}));
  CHECK(http_get(rg->port, "/healthz").status == 200);
  auto r = http_get(rg->port, "/v1/mws/main/recommendations?marketplace=ATVPDKIKX0DER&category=Inventory");
  CHECK(r.status == 200);
  CHECK(r.header("cache-status") == "recgate; fwd=miss; stored");
}
