// The real recgate binary against more connections than it has room for:
// under a low descriptor limit, or a small max_connections, it neither spins
// nor floods its log, it closes the connection idle longest to admit a new
// client (only when one arrives; else it waits for one to close), and
// connections that send nothing are closed after header_timeout_ms.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "harness.hpp"

using namespace rgtest;
using namespace std::chrono_literals;

namespace {

// CPU seconds (user + system) the process has used, from /proc/PID/stat.
double cpu_seconds(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  const auto close_paren = stat.rfind(')');
  if (close_paren == std::string::npos) return -1;
  std::istringstream rest(stat.substr(close_paren + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {  // fields 3.. after "pid (comm)"
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

std::size_t output_bytes(const Process& p) { return p.output().size(); }

// One IPv4 TCP socket as /proc/PID/net/tcp lists it (the network namespace's
// sockets, of every process): each loopback connection appears twice, once
// per end, so an entry is found by its local AND remote port. For a
// listening socket (remote port 0) rx_queue is the accept backlog.
struct TcpEntry {
  unsigned state = 0;  // 0x01 ESTABLISHED, 0x0A LISTEN
  unsigned long tx_queue = 0;
  unsigned long rx_queue = 0;
};

std::optional<TcpEntry> tcp_entry(pid_t pid, int local_port, int remote_port) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/net/tcp");
  std::string line;
  std::getline(f, line);  // column titles
  while (std::getline(f, line)) {
    unsigned local = 0, remote = 0;
    TcpEntry e;
    // "  sl  local_address rem_address   st tx_queue rx_queue ...", ports in hex
    if (std::sscanf(line.c_str(), " %*u: %*x:%x %*x:%x %x %lx:%lx", &local, &remote, &e.state, &e.tx_queue,
                    &e.rx_queue) != 5)
      continue;
    if (static_cast<int>(local) == local_port && static_cast<int>(remote) == remote_port) return e;
  }
  return std::nullopt;
}

// True once recgate (`pid`, listening on `port`) has read every byte `c` sent: the client's end has
// nothing unacknowledged (the bytes reached recgate's socket) and recgate's
// end of that very connection has nothing unread. recgate then sees the
// connection as busy: the read and the session's step that marks it busy
// run on its I/O thread without yielding in between.
bool read_by_recgate(pid_t pid, int port, const RawConnection& c) {
  const int client_port = c.local_port();
  const auto client_end = tcp_entry(pid, client_port, port);
  const auto server_end = tcp_entry(pid, port, client_port);
  return client_end && server_end && client_end->tx_queue == 0 && server_end->rx_queue == 0;
}

// recgate on a config with `extra` keys, started under `prlimit --nofile=SOFT:HARD`.
struct LimitedRecgate {
  LimitedRecgate(const TempDir& dir, const std::string& nofile, const std::string& extra)
      : proc([&] {
          write_file(dir.file("recgate.json"), test_config(dir, 9, extra));
          return std::vector<std::string>{"/usr/bin/prlimit", "--nofile=" + nofile, RECGATE_BIN, "--config",
                                          dir.file("recgate.json")};
        }()),
        port(proc.wait_for_port()) {}
  Process proc;
  int port;
};

// Opens n connections that send nothing (the kernel completes them whether
// or not recgate accepts them).
std::vector<std::unique_ptr<RawConnection>> hold(int port, int n) {
  std::vector<std::unique_ptr<RawConnection>> held;
  for (int i = 0; i < n; ++i) held.push_back(std::make_unique<RawConnection>(port));
  return held;
}

// Waits until recgate has closed every held connection; how many it closed.
int wait_all_closed(std::vector<std::unique_ptr<RawConnection>>& held, std::chrono::milliseconds bound) {
  const auto until = std::chrono::steady_clock::now() + bound;
  int closed = 0;
  for (auto& c : held) {
    std::string ignored;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
    if (c->read_to_close(ignored, std::max(left, 1ms)) == RawConnection::Outcome::closed) ++closed;
  }
  return closed;
}

// More idle connections than fit are held until header_timeout_ms closes
// them; a fresh client must be served meanwhile. Checks the CPU recgate used
// and the log it wrote over that whole period.
void check_overload(LimitedRecgate& rg, int held_count, const std::string& expect_line) {
  REQUIRE(http_get(rg.port, "/healthz").status == 200);
  const double cpu_before = cpu_seconds(rg.proc.pid());
  const std::size_t log_before = output_bytes(rg.proc);
  const auto t0 = std::chrono::steady_clock::now();
  auto held = hold(rg.port, held_count);
  // A fresh client is served although every slot was taken: the connection
  // idle longest is closed to let it in.
  const HttpResponse fresh = http_request(rg.port, "GET", "/healthz", "", {}, 10s);
  CHECK_MESSAGE(fresh.status == 200, fresh.error);
  // The held period ends when header_timeout_ms (2 s) has closed every held
  // connection that was not closed to make room.
  CHECK(wait_all_closed(held, 20s) == held_count);
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double cpu = cpu_seconds(rg.proc.pid()) - cpu_before;
  const std::size_t log_bytes = output_bytes(rg.proc) - log_before;
  MESSAGE("held ", held_count, " connections for ", wall, " s: recgate used ", cpu, " s CPU and wrote ", log_bytes,
          " log bytes");
  CHECK(wall >= 2.0);          // the period really covered header_timeout_ms
  CHECK(cpu < 0.25 * wall);    // a spinning accept loop burns the whole period
  CHECK(log_bytes < 64 * 1024);  // rate-limited: a few lines a second, not one per failure
  CHECK(rg.proc.running());
  CHECK(rg.proc.output().find(expect_line) != std::string::npos);
}

}  // namespace

TEST_CASE("connections: under a low descriptor limit the default max_connections holds and the oldest idle makes room") {
  TempDir dir;
  // Soft 64, hard 128: recgate raises the soft limit to 128 and derives
  // max_connections (half of it, as the reserve would take most of it).
  LimitedRecgate rg(dir, "64:128", "\"header_timeout_ms\":2000");
  check_overload(rg, 200, "\"msg\":\"connection limit reached\"");
  const auto limits = rg.proc.wait_for_line({"\"msg\":\"file descriptor limit\""}, 1s).value_or("");
  CHECK(limits.find("\"soft_before\":64") != std::string::npos);
  CHECK(limits.find("\"soft\":128") != std::string::npos);
  CHECK(limits.find("\"max_connections\":64") != std::string::npos);
}

TEST_CASE("connections: out of descriptors, accept backs off on a timer and logs at most once a second") {
  TempDir dir;
  // max_connections far above what 64 descriptors allow: accept(2) fails with EMFILE.
  LimitedRecgate rg(dir, "64:64", "\"header_timeout_ms\":2000,\"max_connections\":1000");
  check_overload(rg, 100, "\"msg\":\"accept failed; retrying after a pause\"");
  CHECK(rg.proc.output().find("max_connections exceeds") != std::string::npos);
  std::size_t accept_lines = 0, without_count = 0;
  for (const auto& l : rg.proc.lines())
    if (l.find("accept failed") != std::string::npos) {
      ++accept_lines;
      if (l.find("\"count\":") == std::string::npos) ++without_count;
    }
  CHECK(accept_lines >= 1);
  CHECK(accept_lines <= 10);  // the held period lasts a few seconds: one line a second
  CHECK(without_count == 0);
}

TEST_CASE("connections: at the limit with no idle connection, accepting waits until one closes") {
  TempDir dir;
  LimitedRecgate rg(dir, "1024:1024", "\"header_timeout_ms\":60000,\"max_connections\":4");
  // Four connections in the middle of a request header: busy, not idle.
  // recgate counts a connection idle until it has read its bytes, so the
  // fresh client comes only once it has read all four (else it would close
  // one still idle to admit the fresh client, as it should).
  auto busy = hold(rg.port, 4);
  for (auto& c : busy) REQUIRE(c->send("GET /healthz HTTP/1.1\r\n"));
  for (auto& c : busy) REQUIRE(wait_until([&] { return read_by_recgate(rg.proc.pid(), rg.port, *c); }, 10s));
  RawConnection fresh(rg.port);
  REQUIRE(fresh.send("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  CHECK(rg.proc.wait_for_line({"\"msg\":\"connection limit reached\"", "accepting paused"}, 10s).has_value());
  const double cpu_before = cpu_seconds(rg.proc.pid());
  std::string got;
  // Not served while all four are taken (a bounded look: nothing may come).
  CHECK(fresh.read_until("HTTP/1.1", got, 1500ms) == RawConnection::Outcome::timeout);
  CHECK(cpu_seconds(rg.proc.pid()) - cpu_before < 0.3);  // paused, not polling
  busy[0].reset();  // one closes: its slot goes to the waiting client
  CHECK(fresh.read_to_close(got, 10s) == RawConnection::Outcome::closed);
  CHECK(got.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  // The others finish their requests and are served too.
  for (std::size_t i = 1; i < busy.size(); ++i) {
    REQUIRE(busy[i]->send("Host: x\r\nConnection: close\r\n\r\n"));
    std::string answer;
    CHECK(busy[i]->read_to_close(answer, 10s) == RawConnection::Outcome::closed);
    CHECK(answer.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  }
}

TEST_CASE("connections: at the limit an idle connection is closed only when a new client arrives") {
  TempDir dir;
  LimitedRecgate rg(dir, "1024:1024", "\"header_timeout_ms\":60000,\"max_connections\":4");
  // Four idle connections fill the table; recgate has accepted them all once
  // its listening socket's backlog is empty.
  auto idle = hold(rg.port, 4);
  REQUIRE(wait_until([&] {
    const auto listener = tcp_entry(rg.proc.pid(), rg.port, 0);
    return listener && listener->state == 0x0A && listener->rx_queue == 0;
  }, 10s));
  // Nobody waits to get in: none of them may be closed (a bounded look, as
  // the closing would follow the fourth accept at once).
  for (auto& c : idle) {
    std::string got;
    CHECK(c->read_to_close(got, 300ms) == RawConnection::Outcome::timeout);
  }
  CHECK(rg.proc.output().find("\"msg\":\"connection limit reached\"") == std::string::npos);
  // A fifth client: the connection idle longest makes room for it, the
  // others stay open.
  const HttpResponse fresh = http_request(rg.port, "GET", "/healthz", "", {}, 10s);
  CHECK_MESSAGE(fresh.status == 200, fresh.error);
  std::string got;
  CHECK(idle[0]->read_to_close(got, 10s) == RawConnection::Outcome::closed);
  for (std::size_t i = 1; i < idle.size(); ++i) {
    REQUIRE(idle[i]->send("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
    std::string answer;
    CHECK(idle[i]->read_to_close(answer, 10s) == RawConnection::Outcome::closed);
    CHECK(answer.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  }
}

TEST_CASE("connections: a connection that sends no request within header_timeout_ms is closed") {
  TempDir dir;
  LimitedRecgate rg(dir, "1024:1024", "\"header_timeout_ms\":500,\"idle_timeout_ms\":60000");
  RawConnection silent(rg.port);
  RawConnection partial(rg.port);
  REQUIRE(partial.send("GET /healthz HTTP/1.1\r\nHost"));  // a header that never ends
  const auto t0 = std::chrono::steady_clock::now();
  std::string got;
  CHECK(silent.read_to_close(got, 10s) == RawConnection::Outcome::closed);
  CHECK(partial.read_to_close(got, 10s) == RawConnection::Outcome::closed);
  const auto waited = std::chrono::steady_clock::now() - t0;
  CHECK(waited >= 400ms);
  CHECK(waited < 5s);  // header_timeout_ms, not idle_timeout_ms or read_timeout_ms
}
