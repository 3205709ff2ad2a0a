// Upstream faults against the real binaries: the sandbox acts out each fault
// (a hang, a stall or a reset mid-body, a body short of its Content-Length,
// broken chunking, a 1 GiB body, bad XML, HTML pages, 5xx with and without
// Retry-After, being killed) and recgate must stay ready, keep serving its
// cache and other accounts, store nothing wrong, and give back the sockets
// and memory the fault took.
#include <doctest/doctest.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <signal.h>
#include <sqlite3.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "harness.hpp"

using namespace rgtest;
using namespace std::chrono_literals;

namespace {

constexpr const char* kUS = "ATVPDKIKX0DER";
constexpr auto kRequestTimeout = 2000ms;           // upstream.request_timeout_ms
constexpr std::uint64_t kMaxResponseBytes = 1 << 20;  // upstream.max_response_bytes
// What the sandbox may have pushed into the two sockets' buffers before
// recgate stopped reading (loopback buffers reach a few MiB): far below 1 GiB.
constexpr std::uint64_t kMaxBytesSent = 32ull << 20;
// Pooled upstream connections may legitimately differ by this many.
constexpr int kSocketSlack = 2;
constexpr long kRssSlackKib = 32 * 1024;

int open_sockets(pid_t pid) {
  int n = 0;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec)) {
    std::error_code link_ec;
    const auto target = std::filesystem::read_symlink(e.path(), link_ec).string();
    if (!link_ec && target.rfind("socket:", 0) == 0) ++n;
  }
  return n;
}

// A "VmRSS"-style field of /proc/PID/status in KiB (-1 if absent).
long status_kib(pid_t pid, const std::string& field) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind(field + ":", 0) == 0) return std::strtol(line.c_str() + field.size() + 1, nullptr, 10);
  return -1;
}

std::string to_json(const rapidjson::Value& v) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  v.Accept(w);
  return sb.GetString();
}

// config/sandbox.json with throttles no test here can reach and single-page
// answers, so that every upstream call the faults cause is one call.
std::string sandbox_config(const TempDir& dir) {
  rapidjson::Document d;
  d.Parse(read_file(std::string(RECGATE_SOURCE_DIR) + "/config/sandbox.json").c_str());
  for (auto& rule : d["throttle"].GetObject()) {
    rule.value["capacity"].SetInt(100000);
    rule.value["restore_every_ms"].SetInt(1);
  }
  d["page_size"].SetInt(100);
  const std::string path = dir.file("sandbox.json");
  write_file(path, to_json(d));
  return path;
}

// Two MWS accounts on the sandbox's seller ("main" takes the faults, "other"
// must not notice), buckets as roomy as the sandbox's, the snapshot never
// re-checked on its own.
std::string recgate_config(const TempDir& dir, int sandbox_port) {
  const std::string extra =
      R"("upstream":{"request_timeout_ms":)" + std::to_string(kRequestTimeout.count()) +
      R"(,"max_response_bytes":)" + std::to_string(kMaxResponseBytes) +
      R"(},"throttle":{"buckets":{"mws.ListRecommendations":{"capacity":1000,"restore_per_s":1000},)"
      R"("mws.GetLastUpdatedTimeForRecommendations":{"capacity":1000,"restore_per_s":1000}}})";
  std::string c = test_config(dir, sandbox_port, extra, R"("check_interval_s":3600)");
  const std::string main_end = R"("auth_token":"amzn.mws.sandbox-token"})";
  c.insert(c.find(main_end) + main_end.size(),
           R"(,"other":{"seller_id":"A1XEXAMPLEDF","access_key_id":"AKIASANDBOXEXAMPLE",)"
           R"("secret_key":"sandbox-secret-key-not-for-production","auth_token":"amzn.mws.sandbox-token"})");
  return c;
}

// ASan keeps freed memory in a 256 MiB quarantine, which would hide whether
// RSS comes back; a small one keeps the figure meaningful.
std::vector<std::pair<std::string, std::string>> recgate_env() {
  const char* inherited = std::getenv("ASAN_OPTIONS");
  std::string opts = inherited ? std::string(inherited) + ":" : std::string();
  return {{"ASAN_OPTIONS", opts + "quarantine_size_mb=4"}};
}

struct Figures {
  int sockets = 0;
  long rss_kib = 0;
};

class Rig {
 public:
  Rig() : sandbox_cfg_(sandbox_config(dir_)) {
    start_sandbox("127.0.0.1:0");
    recgate_ = std::make_unique<Recgate>(dir_, recgate_config(dir_, sandbox_port_), recgate_env());
  }

  void start_sandbox(const std::string& listen) {
    sandbox_.reset();
    sandbox_ = std::make_unique<Sandbox>(std::vector<std::string>{"--config", sandbox_cfg_, "--listen", listen});
    sandbox_port_ = sandbox_->port;
  }
  void kill_sandbox() {
    sandbox_->proc.signal(SIGKILL);
    REQUIRE(sandbox_->proc.wait_exit() == 128 + SIGKILL);
  }
  // The sandbox again on the port recgate is configured with.
  void restart_sandbox() { start_sandbox("127.0.0.1:" + std::to_string(sandbox_port_)); }

  pid_t pid() const { return recgate_->proc.pid(); }
  pid_t sandbox_pid() const { return sandbox_->proc.pid(); }
  Figures figures() const { return {open_sockets(pid()), status_kib(pid(), "VmRSS")}; }

  HttpResponse recs(const std::string& account, const std::string& category,
                    const std::vector<std::pair<std::string, std::string>>& headers = {}) const {
    return http_get(recgate_->port,
                    "/v1/mws/" + account + "/recommendations?marketplace=" + kUS + "&category=" + category, headers);
  }
  int readyz() const { return http_get(recgate_->port, "/readyz").status; }

  void add_fault(const std::string& json) const {
    const auto r = http_request(sandbox_port_, "POST", "/admin/faults", json, {{"Content-Type", "application/json"}});
    REQUIRE_MESSAGE(r.status == 200, r.body);
  }
  void touch(const std::string& category) const {
    const auto r = http_request(sandbox_port_, "POST",
                                std::string("/admin/touch?marketplace=") + kUS + "&category=" + category);
    REQUIRE(r.status == 200);
  }
  rapidjson::Document stats() const {
    rapidjson::Document d;
    d.Parse(http_get(sandbox_port_, "/admin/stats").body.c_str());
    REQUIRE(d.IsObject());
    return d;
  }
  std::uint64_t faults_applied() const { return stats()["faults"]["applied"].GetUint64(); }

  // Rows stored for (account, category), read from the database file.
  int rows(const std::string& account, const std::string& category) const {
    sqlite3* db = nullptr;
    int n = -1;
    if (sqlite3_open_v2(dir_.file("db/recgate.db").c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
      sqlite3_busy_timeout(db, 5000);
      sqlite3_stmt* st = nullptr;
      if (sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM mws_recommendations WHERE account=? AND category=?", -1, &st,
                             nullptr) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, account.c_str(), -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 2, category.c_str(), -1, SQLITE_TRANSIENT);
        if (sqlite3_step(st) == SQLITE_ROW) n = sqlite3_column_int(st, 0);
      }
      sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return n;
  }
  void purge(const std::string& account, const std::string& category) const {
    const auto r = http_request(recgate_->port, "DELETE",
                                "/v1/cache?account=" + account + "&marketplace=" + kUS + "&category=" + category);
    REQUIRE(r.status == 200);
    REQUIRE(wait_until([&] { return rows(account, category) == 0; }, 10s));
  }

  // A miss for `account`/`category` whose row must land in the database: a
  // marker written after everything recgate had posted to the store before.
  void stored_miss(const std::string& account, const std::string& category) const {
    const auto r = recs(account, category);
    REQUIRE_MESSAGE(r.status == 200, r.body);
    CHECK(r.header("cache-status").find("fwd=miss") != std::string::npos);
    CHECK(wait_until([&] { return rows(account, category) == 1; }, 10s));
  }

  // Warm-up: a cached answer for main/Inventory (then a hit), a pooled
  // upstream connection; returns the figures every fault must come back to.
  Figures warm_up() const {
    stored_miss("main", "Inventory");
    const auto hit = recs("main", "Inventory");
    REQUIRE(hit.header("cache-status") == "recgate; hit");
    stored_miss("other", "Selection");
    purge("other", "Selection");
    return figures();
  }

  // Polls (bounded) until sockets and RSS are back within their slack of `base`.
  bool resources_back(const Figures& base, Figures& now) const {
    return wait_until(
        [&] {
          now = figures();
          return now.sockets <= base.sockets + kSocketSlack && now.rss_kib <= base.rss_kib + kRssSlackKib;
        },
        20s);
  }

 private:
  TempDir dir_;
  std::string sandbox_cfg_;
  std::unique_ptr<Sandbox> sandbox_;
  int sandbox_port_ = 0;
  std::unique_ptr<Recgate> recgate_;
};

struct FaultCase {
  const char* name;
  std::string fault;  // POST /admin/faults body (always count 1, ListRecommendations)
  int status;         // what the client gets for the faulted fetch
  const char* code;   // its problem code ("" for 200)
};

std::string list_fault(const std::string& members) {
  return R"({"action":"ListRecommendations","count":1,)" + members + "}";
}

// One fault, with every promise checked around it. The faulted fetch is
// main/Pricing; while it runs, main/Inventory must stay a hit and the other
// account must be served from upstream.
HttpResponse check_fault(const Rig& rig, const FaultCase& fc, const Figures& base) {
  CAPTURE(fc.name);
  const std::uint64_t applied = rig.faults_applied();
  rig.add_fault(fc.fault);
  const auto started = std::chrono::steady_clock::now();
  auto faulted = std::async(std::launch::async, [&rig] { return rig.recs("main", "Pricing"); });
  CHECK(wait_until([&] { return rig.faults_applied() > applied; }, 10s));

  // While the sandbox acts the fault out.
  const auto hit = rig.recs("main", "Inventory");
  CHECK(hit.status == 200);
  CHECK(hit.header("cache-status") == "recgate; hit");
  const auto other = rig.recs("other", "Selection");
  CHECK(other.status == 200);
  CHECK(rig.readyz() == 200);

  const HttpResponse r = faulted.get();
  const auto took = std::chrono::steady_clock::now() - started;
  CAPTURE(r.body);
  CHECK(r.status == fc.status);
  if (fc.status != 200) CHECK(r.body.find(std::string("\"code\":\"") + fc.code + "\"") != std::string::npos);
  // Each fault is one upstream call: its answer comes within one request
  // deadline (plus scheduling under ASan), never after the client's wait.
  CHECK(took < kRequestTimeout + 3s);
  CHECK(rig.readyz() == 200);

  // Stores nothing wrong: the store applies writes in order, so once a row
  // posted after the faulted fetch has landed, a row of that fetch would have too.
  rig.stored_miss("other", "Fulfillment");
  CHECK(rig.rows("main", "Pricing") == (fc.status == 200 ? 1 : 0));
  // The next successful fetch is stored.
  if (fc.status != 200) rig.stored_miss("main", "Pricing");
  CHECK(rig.recs("main", "Inventory").header("cache-status") == "recgate; hit");

  Figures after;
  CHECK(rig.resources_back(base, after));
  std::printf("upstream fault %-22s sockets %d -> %d   VmRSS %ld -> %ld KiB\n", fc.name, base.sockets, after.sockets,
              base.rss_kib, after.rss_kib);
  rig.purge("main", "Pricing");
  rig.purge("other", "Selection");
  rig.purge("other", "Fulfillment");
  return r;
}

const char* kHtmlPage =
    "<!DOCTYPE html><html><head><title>Service Unavailable</title></head>"
    "<body><h1>Service Unavailable</h1><p>The server is temporarily unable to service your request.<br></p></body></html>";
// Well-formed (XHTML): an XML parser alone accepts it.
const char* kXhtmlPage = "<html><body><h1>We are down for maintenance</h1></body></html>";

}  // namespace

TEST_CASE("upstream faults: transport faults - recgate stays ready, serves its cache and other accounts, stores "
          "nothing wrong, gives back sockets and memory") {
  Rig rig;
  const Figures base = rig.warm_up();
  const FaultCase cases[] = {
      {"hang", list_fault(R"("latency_ms":30000)"), 504, "upstream_timeout"},
      {"stall mid-body", list_fault(R"("wire":"stall")"), 504, "upstream_timeout"},
      {"reset mid-body", list_fault(R"("wire":"reset")"), 502, "upstream_unavailable"},
      {"short of Content-Length", list_fault(R"("wire":"short")"), 502, "upstream_unavailable"},
      {"broken chunked", list_fault(R"("wire":"bad_chunk")"), 502, "upstream_unavailable"},
  };
  for (const auto& fc : cases) check_fault(rig, fc, base);
  CHECK(rig.stats()["throttled"]["total"].GetUint64() == 0);
}

TEST_CASE("upstream faults: a 1 GiB body is refused at max_response_bytes without being buffered, streamed or "
          "chunked, and the connection closed") {
  Rig rig;
  const Figures base = rig.warm_up();
  const long sandbox_peak_before = status_kib(rig.sandbox_pid(), "VmHWM");
  struct Huge {
    FaultCase fc;
    const char* mode;  // the sandbox's name for it in faults.last_wire
  };
  const Huge cases[] = {
      {{"1 GiB Content-Length", list_fault(R"("wire":"huge")"), 502, "upstream_unavailable"}, "huge"},
      {{"1 GiB chunked", list_fault(R"("wire":"huge_chunked")"), 502, "upstream_unavailable"}, "huge_chunked"},
      // A chunk header whose extension never ends: no body byte ever counts
      // against max_response_bytes, so only a bound on the read buffer stops it.
      {{"endless chunk header", list_fault(R"("wire":"endless_chunk_ext","wire_bytes":268435456)"), 502,
        "upstream_unavailable"},
       "endless_chunk_ext"},
  };
  for (const auto& huge : cases) {
    const auto r = check_fault(rig, huge.fc, base);
    CHECK(r.body.find("\"upstreamCode\":\"too_large\"") != std::string::npos);
    // recgate stopped reading at the limit and closed: the sandbox's writes
    // failed long before the end (it reports when its peer went away).
    auto wire_done = [&] {
      const auto stats = rig.stats();
      const auto& wire = stats["faults"]["last_wire"];
      return wire.IsObject() && std::string(wire["mode"].GetString()) == huge.mode;
    };
    REQUIRE(wait_until(wire_done, 30s));
    const auto stats = rig.stats();
    const auto& wire = stats["faults"]["last_wire"];
    CAPTURE(to_json(wire));
    CHECK(wire["peer_closed"].GetBool());
    CHECK(wire["bytes_sent"].GetUint64() < kMaxBytesSent);
    std::printf("upstream fault %-22s sandbox sent %llu bytes before recgate closed\n", huge.fc.name,
                static_cast<unsigned long long>(wire["bytes_sent"].GetUint64()));
  }
  // The sandbox streamed lazily: its peak RSS never approached 1 GiB.
  const long sandbox_peak_after = status_kib(rig.sandbox_pid(), "VmHWM");
  std::printf("sandbox streaming 3 huge bodies: VmHWM %ld -> %ld KiB\n", sandbox_peak_before, sandbox_peak_after);
  CHECK(sandbox_peak_after - sandbox_peak_before < 64 * 1024);
}

TEST_CASE("upstream faults: bad XML, HTML pages and 5xx with and without Retry-After are errors, never stored") {
  Rig rig;
  const Figures base = rig.warm_up();
  const std::string html = std::string(R"("body":")") + kHtmlPage + R"(","content_type":"text/html")";
  const std::string xhtml = std::string(R"("body":")") + kXhtmlPage + R"(","content_type":"text/html")";
  const FaultCase cases[] = {
      {"truncated XML", list_fault(R"("malformed":true)"), 502, "upstream_malformed"},
      {"malformed XML", list_fault(R"("invalid_xml":true)"), 502, "upstream_malformed"},
      {"HTML page, 200", list_fault(html), 502, "upstream_malformed"},
      {"XHTML page, 200", list_fault(xhtml), 502, "upstream_malformed"},
      {"500", list_fault(R"("status":500)"), 502, "upstream_error"},
      {"500 + Retry-After", list_fault(R"("status":500,"retry_after":"1")"), 502, "upstream_error"},
      {"503", list_fault(R"("status":503)"), 502, "upstream_error"},
      {"503 + Retry-After", list_fault(R"("status":503,"retry_after":"1")"), 502, "upstream_error"},
      {"503 HTML page", list_fault(R"("status":503,)" + html), 502, "upstream_error"},
      // Amazon's throttle answer: recgate waits Retry-After and calls again.
      {"503 throttled + Retry-After", list_fault(R"("status":503,"code":"RequestThrottled","retry_after":"1")"), 200,
       ""},
  };
  for (const auto& fc : cases) check_fault(rig, fc, base);
}

TEST_CASE("upstream faults: a hang on an answer that may be served stale gives it stale within the deadline") {
  Rig rig;
  const Figures base = rig.warm_up();
  rig.touch("Inventory");  // the cached Inventory answer is now out of date
  rig.add_fault(list_fault(R"("latency_ms":30000)"));
  const auto started = std::chrono::steady_clock::now();
  const auto r = rig.recs("main", "Inventory", {{"Cache-Control", "no-cache"}});
  const auto took = std::chrono::steady_clock::now() - started;
  CHECK(r.status == 200);
  CHECK(r.header("cache-status") == "recgate; hit; fwd=stale");
  CHECK(took < kRequestTimeout + 3s);
  CHECK(rig.readyz() == 200);
  Figures after;
  CHECK(rig.resources_back(base, after));
}

TEST_CASE("upstream faults: the sandbox killed and restarted - errors while it is gone, answers once it is back") {
  Rig rig;
  const Figures base = rig.warm_up();
  rig.kill_sandbox();
  const auto r = rig.recs("main", "Pricing");
  CHECK(r.status == 502);
  CHECK(r.body.find("\"code\":\"upstream_unavailable\"") != std::string::npos);
  CHECK(rig.recs("main", "Inventory").header("cache-status") == "recgate; hit");
  CHECK(rig.readyz() == 200);
  rig.restart_sandbox();
  rig.stored_miss("other", "Selection");
  CHECK(rig.rows("main", "Pricing") == 0);
  rig.stored_miss("main", "Pricing");
  Figures after;
  CHECK(rig.resources_back(base, after));
  std::printf("upstream fault %-22s sockets %d -> %d   VmRSS %ld -> %ld KiB\n", "sandbox killed+restarted",
              base.sockets, after.sockets, base.rss_kib, after.rss_kib);
}
