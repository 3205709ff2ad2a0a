// Integration-test harness: starts the real recgate / recgate-sandbox
// binaries on port 0 with temporary files, captures their output, and talks
// HTTP to them with a small synchronous Beast client.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace rgtest {

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

void write_file(const std::string& path, const std::string& content);
std::string read_file(const std::string& path);

// A child process whose stdout+stderr are captured line by line; `env` adds
// to the inherited environment, replacing variables of the same name.
class Process {
 public:
  Process(std::vector<std::string> argv, std::vector<std::pair<std::string, std::string>> env = {});
  ~Process();  // SIGKILL if still running
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  // Waits until a captured line contains every needle; returns it (nullopt on timeout or exit).
  std::optional<std::string> wait_for_line(const std::vector<std::string>& needles,
                                           std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // The port from the server's {"msg":"listening",...,"port":N} line.
  int wait_for_port(std::chrono::milliseconds timeout = std::chrono::seconds(30));
  void signal(int sig);
  // Waits for exit; returns the exit code, or -1 on timeout, 128+sig if killed.
  int wait_exit(std::chrono::milliseconds timeout = std::chrono::seconds(30));
  std::string output() const;  // everything captured so far
  std::vector<std::string> lines() const;
  bool running();
  pid_t pid() const { return pid_; }

 private:
  void reader(int fd);
  pid_t pid_ = -1;
  std::thread thread_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> lines_;
  std::string partial_;
  bool eof_ = false;
  std::optional<int> exit_code_;
};

struct HttpResponse {
  int status = 0;  // 0: connection failed
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  std::string error;
  std::string header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? std::string() : it->second;
  }
};

HttpResponse http_request(int port, const std::string& method, const std::string& target, const std::string& body = "",
                          const std::vector<std::pair<std::string, std::string>>& headers = {},
                          std::chrono::milliseconds timeout = std::chrono::seconds(60));
inline HttpResponse http_get(int port, const std::string& target,
                             const std::vector<std::pair<std::string, std::string>>& headers = {}) {
  return http_request(port, "GET", target, "", headers);
}
// One persistent (keep-alive) connection, for requests that must reuse it.
class KeepAlive {
 public:
  explicit KeepAlive(int port);
  ~KeepAlive();
  HttpResponse request(const std::string& method, const std::string& target,
                       std::chrono::milliseconds timeout = std::chrono::seconds(30));

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Polls pred until it holds or the timeout passes (a bounded wait on a condition).
bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout);

// Sends raw bytes and returns whatever comes back until close or timeout.
std::string raw_exchange(int port, const std::string& bytes, std::chrono::milliseconds timeout = std::chrono::seconds(10));

// A plain blocking TCP client for byte-level tests (slow or partial requests).
class RawConnection {
 public:
  // rcvbuf > 0 sets SO_RCVBUF before connecting (a small window makes a
  // client that does not read stall the server's writes).
  explicit RawConnection(int port, int rcvbuf = 0);
  ~RawConnection();
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;
  bool send(const std::string& bytes);
  // Half-closes: the peer reads end of stream after what was sent (shutdown SHUT_WR).
  bool shutdown_send();
  // This end's port on loopback (to find the connection in /proc/net/tcp).
  int local_port() const;
  // Reads until `until` appears in what was read since the last call, the
  // peer closes, or `timeout` passes; the outcome says which.
  enum class Outcome { found, closed, timeout };
  Outcome read_until(const std::string& until, std::string& out,
                     std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // Reads until the peer closes (closed) or `timeout` passes.
  Outcome read_to_close(std::string& out, std::chrono::milliseconds timeout = std::chrono::seconds(10));

 private:
  int fd_ = -1;
};

// The sandbox with the repository's config/sandbox.json on port 0.
struct Sandbox {
  explicit Sandbox(const std::vector<std::string>& extra_args = {});
  Process proc;
  int port;
};

// recgate with `config_json` (a full JSON object) written to a temp dir.
// While it lives, every answer from its port is recorded (see record_answer).
struct Recgate {
  Recgate(const TempDir& dir, const std::string& config_json,
          std::vector<std::pair<std::string, std::string>> env = {}, const std::string& name = "recgate.json");
  ~Recgate();
  Recgate(const Recgate&) = delete;
  Recgate& operator=(const Recgate&) = delete;
  Process proc;
  int port;
};

// When RECGATE_ANSWER_LOG names a file and `port` is a live Recgate's, appends
// one JSON line {method, path, status, headers, body} for an answer recgate
// gave: tests/openapi/check_answers.py validates each against docs/openapi.yaml.
// http_request and KeepAlive call it; tests that read raw bytes do not.
void record_answer(int port, const std::string& method, const std::string& target, const HttpResponse& res);

// A recgate config for tests: tests/support/recgate.template.json (the one
// tests/bench/lib.sh fills too) with port 0, the database in `dir`, MWS and
// Ads pointed at the sandbox on `sandbox_port` with the sandbox's credentials.
// `extra` is spliced into the top-level object (e.g. "\"throttle\":{...}").
// For tests of what a client's own request does after a change upstream
// (touch, faults) with check_interval_s 0: refresh ahead, on by default,
// re-checks hot pairs every second in the background and would race the
// test's request to the change (or to a one-shot fault).
inline constexpr const char* kNoRefreshAhead = "\"cache\":{\"refresh_ahead\":false}";

std::string test_config(const TempDir& dir, int sandbox_port, const std::string& extra = "",
                        const std::string& mws_extra = "", const std::string& ads_extra = "");

}  // namespace rgtest
