// The real recgate binary on port 0 with a temporary database: health,
// readiness, problem responses, limits, request ids, config checking,
// refusal of a newer database, and clean exit on SIGTERM.
#include <doctest/doctest.h>
#include <signal.h>
#include <sqlite3.h>

#include <regex>

#include "harness.hpp"

using namespace rgtest;

namespace {
std::string minimal_config(const TempDir& dir, const std::string& extra = "") {
  return "{\"listen\":\"127.0.0.1:0\",\"database\":\"" + dir.file("data/db.sqlite") + "\"" +
         (extra.empty() ? "" : "," + extra) + "}";
}
}  // namespace

TEST_CASE("recgate serves health, readiness and problem responses, then exits 0 on SIGTERM") {
  TempDir dir;
  Recgate rg(dir, minimal_config(dir, "\"max_body_bytes\":4096"));

  auto h = http_get(rg.port, "/healthz");
  CHECK(h.status == 200);
  CHECK(h.body.find("\"ok\"") != std::string::npos);

  auto r = http_get(rg.port, "/readyz");
  CHECK(r.status == 200);
  CHECK(r.body.find("\"ready\"") != std::string::npos);

  auto nf = http_get(rg.port, "/no/such/route", {{"X-Request-Id", "test-id-123"}});
  CHECK(nf.status == 404);
  CHECK(nf.header("content-type") == "application/problem+json");
  CHECK(nf.header("x-request-id") == "test-id-123");
  CHECK(nf.body.find("\"code\":\"not_found\"") != std::string::npos);
  CHECK(nf.body.find("\"status\":404") != std::string::npos);
  CHECK(nf.body.find("/no/such/route") != std::string::npos);

  auto generated = http_get(rg.port, "/healthz");
  CHECK(generated.header("x-request-id").size() >= 8);
  CHECK(generated.header("x-request-id") != h.header("x-request-id"));

  auto na = http_request(rg.port, "DELETE", "/healthz");
  CHECK(na.status == 405);
  CHECK(na.header("allow") == "GET, HEAD");
  CHECK(na.body.find("method_not_allowed") != std::string::npos);

  auto big_header = http_get(rg.port, "/healthz", {{"X-Filler", std::string(20000, 'a')}});
  CHECK(big_header.status == 431);
  CHECK(big_header.body.find("header_too_large") != std::string::npos);

  auto big_body = http_request(rg.port, "POST", "/healthz", std::string(5000, 'b'));
  CHECK(big_body.status == 413);
  CHECK(big_body.body.find("body_too_large") != std::string::npos);

  // Garbage on one connection gets a 400 and does not disturb the server.
  std::string garbage = raw_exchange(rg.port, "THIS IS NOT HTTP\r\n\r\n");
  CHECK(garbage.find("400") != std::string::npos);
  CHECK(http_get(rg.port, "/healthz").status == 200);

  rg.proc.signal(SIGTERM);
  CHECK(rg.proc.wait_exit() == 0);
  CHECK(rg.proc.wait_for_line({"recgate stopped"}, std::chrono::seconds(5)).has_value());
}

TEST_CASE("a client that never finishes its request is closed after read_timeout_ms and holds up no one") {
  TempDir dir;
  // idle_timeout is long: only the read timeout can close these connections.
  Recgate rg(dir, minimal_config(dir, "\"read_timeout_ms\":300,\"idle_timeout_ms\":60000"));

  RawConnection slow_header(rg.port);
  REQUIRE(slow_header.send("GET /healthz HTTP/1.1\r\nHost: x\r\n"));
  RawConnection slow_body(rg.port);
  REQUIRE(slow_body.send("POST /v1/cache HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc"));

  // Others are served while both hang.
  CHECK(http_get(rg.port, "/healthz").status == 200);

  std::string got;
  CHECK(slow_header.read_to_close(got) == RawConnection::Outcome::closed);
  CHECK(got.empty());
  CHECK(slow_body.read_to_close(got) == RawConnection::Outcome::closed);
  CHECK(got.empty());
  CHECK(http_get(rg.port, "/healthz").status == 200);
}

TEST_CASE("an idle keep-alive connection is closed after idle_timeout_ms - a request in pieces is still read") {
  TempDir dir;
  Recgate rg(dir, minimal_config(dir, "\"read_timeout_ms\":60000,\"idle_timeout_ms\":300"));

  RawConnection c(rg.port);
  // The header arrives in two pieces: the second read completes it.
  REQUIRE(c.send("GET /healthz HTTP/1.1\r\nHo"));
  std::string got;
  CHECK(c.read_until("\r\n\r\n", got, std::chrono::milliseconds(200)) == RawConnection::Outcome::timeout);
  REQUIRE(c.send("st: x\r\n\r\n"));
  REQUIRE(c.read_until("\"ok\"", got) == RawConnection::Outcome::found);
  CHECK(got.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  // Then the connection stays open, idle, until the server closes it.
  CHECK(c.read_to_close(got) == RawConnection::Outcome::closed);
  CHECK(got.empty());
}

TEST_CASE("pipelined requests are answered in order - HEAD gets the headers without the body") {
  TempDir dir;
  Recgate rg(dir, minimal_config(dir));
  const std::string answer = raw_exchange(rg.port,
                                          "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Request-Id: first\r\n\r\n"
                                          "HEAD /healthz HTTP/1.1\r\nHost: x\r\nX-Request-Id: second\r\n\r\n"
                                          "GET /no/such HTTP/1.1\r\nHost: x\r\nX-Request-Id: third\r\n"
                                          "Connection: close\r\n\r\n");
  const auto first = answer.find("X-Request-Id: first");
  const auto second = answer.find("X-Request-Id: second");
  const auto third = answer.find("X-Request-Id: third");
  REQUIRE(first != std::string::npos);
  REQUIRE(second != std::string::npos);
  REQUIRE(third != std::string::npos);
  CHECK(first < second);
  CHECK(second < third);
  // One body for GET, none for HEAD (same Content-Length advertised).
  const auto body_pos = answer.find("\"ok\"");
  CHECK(body_pos > first);
  CHECK(body_pos < second);
  CHECK(answer.find("\"ok\"", body_pos + 1) == std::string::npos);
  // HEAD is answered like GET (200, not 405).
  const auto ok1 = answer.find("HTTP/1.1 200 OK\r\n");
  REQUIRE(ok1 != std::string::npos);
  CHECK(answer.find("HTTP/1.1 200 OK\r\n", ok1 + 1) != std::string::npos);
  CHECK(answer.find("HTTP/1.1 404 Not Found\r\n") != std::string::npos);
  CHECK(answer.find("Connection: close\r\n", third) != std::string::npos);
}

TEST_CASE("an unknown method is a 405 and is counted as method other - a client cannot mint metric series") {
  TempDir dir;
  Recgate rg(dir, minimal_config(dir));
  const std::string answer =
      raw_exchange(rg.port, "BREW-X1 /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  CHECK(answer.rfind("HTTP/1.1 405 Method Not Allowed\r\n", 0) == 0);
  CHECK(answer.find("Allow: GET, HEAD\r\n") != std::string::npos);
  auto m = http_get(rg.port, "/metrics");
  REQUIRE(m.status == 200);
  CHECK(m.body.find("BREW-X1") == std::string::npos);
  CHECK(m.body.find("recgate_http_requests_total{route=\"method_not_allowed\",method=\"other\",status=\"405\"} 1") !=
        std::string::npos);
}

TEST_CASE("access log lines are JSON with request id, method, target, status and duration") {
  TempDir dir;
  Recgate rg(dir, minimal_config(dir));
  CHECK(http_get(rg.port, "/healthz", {{"X-Request-Id", "log-me-42"}}).status == 200);
  auto line = rg.proc.wait_for_line({"\"request_id\":\"log-me-42\""}, std::chrono::seconds(10));
  REQUIRE(line.has_value());
  CHECK(line->find("\"method\":\"GET\"") != std::string::npos);
  CHECK(line->find("\"target\":\"/healthz\"") != std::string::npos);
  CHECK(line->find("\"status\":200") != std::string::npos);
  CHECK(line->find("\"duration_ms\":") != std::string::npos);
  CHECK(line->find("\"level\":\"info\"") != std::string::npos);
}

TEST_CASE("--check-config prints the effective config with secrets masked") {
  TempDir dir;
  Process p({RECGATE_BIN, "--check-config", "--config", std::string(RECGATE_SOURCE_DIR) + "/config/recgate.example.json"},
            {{"RECGATE_KEY_PRICING", "pricing-key-very-secret-123"},
             {"MWS_ACCESS_KEY_ID", "AKIAEXAMPLESECRETID"},
             {"MWS_SECRET_KEY", "mws-secret-key-value-xyz"},
             {"MWS_AUTH_TOKEN", "amzn.mws.secret-token"},
             {"ADS_CLIENT_SECRET", "ads-client-secret-value"},
             {"ADS_REFRESH_TOKEN", "Atzr|refresh-secret-value"}});
  CHECK(p.wait_exit() == 0);
  std::string out = p.output();
  CHECK(out.find("\"listen\"") != std::string::npos);
  CHECK(out.find("********") != std::string::npos);
  for (const char* secret : {"pricing-key-very-secret-123", "AKIAEXAMPLESECRETID", "mws-secret-key-value-xyz",
                             "amzn.mws.secret-token", "ads-client-secret-value", "Atzr|refresh-secret-value"})
    CHECK_MESSAGE(out.find(secret) == std::string::npos, "secret leaked: ", secret);
}

TEST_CASE("--check-config rejects a bad config naming the key path, exit 1") {
  TempDir dir;
  write_file(dir.file("bad.json"), "{\"listen\":\"nowhere\",\"mws\":{\"max_pages\":0,\"colour\":\"red\"}}");
  Process p({RECGATE_BIN, "--check-config", "--config", dir.file("bad.json")});
  CHECK(p.wait_exit() == 1);
  std::string out = p.output();
  CHECK(out.find("listen") != std::string::npos);
  CHECK(out.find("mws.max_pages") != std::string::npos);
  CHECK(out.find("unknown key mws.colour") != std::string::npos);
}

TEST_CASE("--version prints the version") {
  Process p({RECGATE_BIN, "--version"});
  CHECK(p.wait_exit() == 0);
  CHECK(p.output().find("recgate ") == 0);
}

TEST_CASE("a database migrated by a newer recgate is refused with a clear message") {
  TempDir dir;
  std::string db_path = dir.file("newer.db");
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(db_path.c_str(), &db) == SQLITE_OK);
  REQUIRE(sqlite3_exec(db,
                       "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at "
                       "TEXT); INSERT INTO schema_migrations VALUES (9999, '9999_future', 'x');",
                       nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(db);
  write_file(dir.file("c.json"), "{\"listen\":\"127.0.0.1:0\",\"database\":\"" + db_path + "\"}");
  Process p({RECGATE_BIN, "--config", dir.file("c.json")});
  CHECK(p.wait_exit() == 1);
  CHECK(p.output().find("newer") != std::string::npos);
}

TEST_CASE("--healthcheck exits 0 against a ready recgate and non-zero otherwise") {
  TempDir dir;
  Recgate rg(dir, minimal_config(dir));
  Process ok({RECGATE_BIN, "--healthcheck", "http://127.0.0.1:" + std::to_string(rg.port) + "/readyz"});
  CHECK(ok.wait_exit() == 0);
  Process missing({RECGATE_BIN, "--healthcheck", "http://127.0.0.1:" + std::to_string(rg.port) + "/nope"});
  CHECK(missing.wait_exit() != 0);
  rg.proc.signal(SIGTERM);
  CHECK(rg.proc.wait_exit() == 0);
  Process down({RECGATE_BIN, "--healthcheck", "http://127.0.0.1:" + std::to_string(rg.port) + "/readyz"});
  CHECK(down.wait_exit() != 0);
}

TEST_CASE("X-Request-Id is kept only when 1-128 printable ASCII without quote or backslash, else replaced") {
  TempDir dir;
  Recgate rg(dir, minimal_config(dir));
  const std::regex generated("^[0-9a-f]{16}$");
  const std::string longest(128, 'a');
  auto kept = http_get(rg.port, "/healthz", {{"X-Request-Id", longest}});
  CHECK(kept.header("x-request-id") == longest);
  CHECK(http_get(rg.port, "/healthz", {{"X-Request-Id", "!~{}[]<>'"}}).header("x-request-id") == "!~{}[]<>'");
  for (const std::string& bad : {std::string(129, 'a'), std::string("quo\"te"), std::string("back\\slash"),
                                std::string("has space"), std::string("caf\xc3\xa9")}) {
    CAPTURE(bad);
    auto r = http_get(rg.port, "/healthz", {{"X-Request-Id", bad}});
    REQUIRE(r.status == 200);
    const std::string id = r.header("x-request-id");
    CHECK(std::regex_match(id, generated));
    // The access log names the replacement, never the rejected value.
    CHECK(rg.proc.wait_for_line({"\"request_id\":\"" + id + "\""}, std::chrono::seconds(10)).has_value());
  }
  CHECK(rg.proc.output().find("quo") == std::string::npos);
  CHECK(rg.proc.output().find("back") == std::string::npos);
}
