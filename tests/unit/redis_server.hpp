// A real Debian redis-server for tests ([scale]): started on a free loopback
// port without persistence (--save '' --appendonly no), ready once it logs
// "Ready to accept connections", stopped (SIGKILL or SIGTERM) by the test or the
// destructor. Header-only so the unit and integration tests can share it.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

namespace recgate::test {

class RedisServer {
 public:
  // Starts on a free port (a few tries: another process may take the probed
  // port before redis-server binds it).
  explicit RedisServer(std::vector<std::string> extra_args = {}) : extra_(std::move(extra_args)) {
    for (int attempt = 0; attempt < 5 && pid_ <= 0; ++attempt) {
      port_ = free_port();
      if (!start()) stop(SIGKILL);
    }
    if (pid_ <= 0) throw std::runtime_error("redis-server did not start (is Debian's redis-server installed?)");
  }
  ~RedisServer() { stop(SIGKILL); }
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  int port() const { return port_; }
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_) + "/0"; }

  // Kills the server (data lost, as in a crash) and waits for its exit.
  void kill() { stop(SIGKILL); }
  // Starts it again on the same port, empty.
  bool restart() {
    stop(SIGKILL);
    return start();
  }

 private:
  static int free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0)
      throw std::runtime_error("cannot probe a free port");
    ::close(fd);
    return ntohs(a.sin_port);
  }

  bool start() {
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) return false;
    const std::string port = std::to_string(port_);
    std::vector<std::string> args{"redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "",
                                  "--appendonly", "no", "--protected-mode", "yes", "--loglevel", "notice"};
    args.insert(args.end(), extra_.begin(), extra_.end());
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(out[1], 1);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execvp("redis-server", argv.data());
      ::_exit(127);
    }
    ::close(out[1]);
    bool ready = pid_ > 0 && wait_ready(out[0]);
    ::close(out[0]);
    return ready;
  }

  // Reads the server's log until it says it is ready, or 10 s pass.
  static bool wait_ready(int fd) {
    std::string log;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (log.find("Ready to accept connections") == std::string::npos) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
      char buf[4096];
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n <= 0) return false;  // exited (port taken)
      log.append(buf, static_cast<std::size_t>(n));
    }
    return true;
  }

  void stop(int sig) {
    if (pid_ <= 0) return;
    ::kill(pid_, sig);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

  std::vector<std::string> extra_;
  int port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace recgate::test
