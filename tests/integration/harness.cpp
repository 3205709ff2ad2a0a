// Integration-test harness implementation (see harness.hpp).
#include "harness.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <poll.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <cstdlib>
#include <regex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string_view>

#include <zlib.h>

extern char** environ;

namespace rgtest {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

TempDir::TempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "recgate-test-XXXXXX").string();
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (!mkdtemp(buf.data())) throw std::runtime_error("mkdtemp failed");
  path_ = buf.data();
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

void write_file(const std::string& path, const std::string& content) {
  std::ofstream f(path, std::ios::binary);
  f << content;
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

Process::Process(std::vector<std::string> argv, std::vector<std::pair<std::string, std::string>> env) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  std::vector<std::string> envs;
  // `env` replaces inherited variables of the same name (getenv returns the first match).
  auto overridden = [&env](std::string_view entry) {
    for (const auto& [k, v] : env)
      if (entry.size() > k.size() && entry.substr(0, k.size()) == k && entry[k.size()] == '=') return true;
    return false;
  };
  for (char** e = environ; *e; ++e)
    if (!overridden(*e)) envs.emplace_back(*e);
  for (auto& [k, v] : env) envs.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& e : envs) envp.push_back(e.data());
  envp.push_back(nullptr);
  int rc = posix_spawn(&pid_, args[0], &fa, nullptr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  close(fds[1]);
  if (rc != 0) {
    close(fds[0]);
    throw std::runtime_error("cannot start " + argv[0] + ": " + std::strerror(rc));
  }
  thread_ = std::thread([this, fd = fds[0]] { reader(fd); });
}

Process::~Process() {
  if (running()) {
    ::kill(pid_, SIGKILL);
    wait_exit(std::chrono::seconds(10));
  }
  if (thread_.joinable()) thread_.join();
}

void Process::reader(int fd) {
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    std::lock_guard lk(mu_);
    partial_.append(buf, static_cast<std::size_t>(n));
    std::size_t pos;
    while ((pos = partial_.find('\n')) != std::string::npos) {
      lines_.push_back(partial_.substr(0, pos));
      partial_.erase(0, pos + 1);
    }
    cv_.notify_all();
  }
  close(fd);
  std::lock_guard lk(mu_);
  if (!partial_.empty()) lines_.push_back(partial_);
  eof_ = true;
  cv_.notify_all();
}

std::optional<std::string> Process::wait_for_line(const std::vector<std::string>& needles,
                                                  std::chrono::milliseconds timeout) {
  std::unique_lock lk(mu_);
  std::size_t checked = 0;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    for (; checked < lines_.size(); ++checked) {
      bool all = true;
      for (const auto& n : needles) all = all && lines_[checked].find(n) != std::string::npos;
      if (all) return lines_[checked];
    }
    if (eof_) return std::nullopt;
    if (cv_.wait_until(lk, deadline) == std::cv_status::timeout && checked == lines_.size()) return std::nullopt;
  }
}

int Process::wait_for_port(std::chrono::milliseconds timeout) {
  auto line = wait_for_line({"\"msg\":\"listening\""}, timeout);
  if (!line) throw std::runtime_error("server did not report its port; output:\n" + output());
  std::smatch m;
  static const std::regex re("\"port\":([0-9]+)");
  if (!std::regex_search(*line, m, re)) throw std::runtime_error("no port in " + *line);
  return std::stoi(m[1].str());
}

void Process::signal(int sig) {
  if (pid_ > 0) ::kill(pid_, sig);
}

bool Process::running() {
  std::lock_guard lk(mu_);
  if (exit_code_) return false;
  int status = 0;
  pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return false;
  }
  return r == 0;
}

int Process::wait_exit(std::chrono::milliseconds timeout) {
  {
    std::lock_guard lk(mu_);
    if (exit_code_) return *exit_code_;
  }
  // pidfd becomes readable when the child exits: a blocking wait with a timeout.
  int pfd = static_cast<int>(syscall(SYS_pidfd_open, pid_, 0));
  if (pfd >= 0) {
    pollfd p{pfd, POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(timeout.count()));
    close(pfd);
    if (r <= 0) return -1;
  }
  int status = 0;
  pid_t r = waitpid(pid_, &status, pfd >= 0 ? WNOHANG : 0);
  std::unique_lock lk(mu_);
  if (r == pid_) exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  // The child is gone: wait until its last output has been read.
  cv_.wait_for(lk, std::chrono::seconds(5), [this] { return eof_; });
  return exit_code_ ? *exit_code_ : -1;
}

std::string Process::output() const {
  std::lock_guard lk(mu_);
  std::string out;
  for (const auto& l : lines_) out += l + "\n";
  return out + partial_;
}

std::vector<std::string> Process::lines() const {
  std::lock_guard lk(mu_);
  return lines_;
}

namespace {

std::mutex recgate_ports_mu;
std::set<int> recgate_ports;  // ports of the Recgate processes alive in this test process

void append_json_string(std::string& out, const std::string& s) {
  out += '"';
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  out += '"';
}

}  // namespace

namespace {

// [perf] A gzip answer is recorded decoded (the OpenAPI check validates the
// JSON it carries); a body that does not gunzip is recorded as a marker the
// check rejects.
std::string recorded_body(const HttpResponse& res) {
  if (res.header("content-encoding") != "gzip") return res.body;
  z_stream z{};
  if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) return "<gzip: cannot init zlib>";
  std::string out;
  char buf[16384];
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(res.body.data()));
  z.avail_in = static_cast<uInt>(res.body.size());
  int rc = Z_OK;
  while (rc == Z_OK) {
    z.next_out = reinterpret_cast<Bytef*>(buf);
    z.avail_out = sizeof buf;
    rc = inflate(&z, Z_NO_FLUSH);
    out.append(buf, sizeof buf - z.avail_out);
  }
  inflateEnd(&z);
  return rc == Z_STREAM_END ? out : "<gzip: not a complete gzip member>";
}

}  // namespace

void record_answer(int port, const std::string& method, const std::string& target, const HttpResponse& res) {
  const char* log = std::getenv("RECGATE_ANSWER_LOG");
  if (!log || !*log || res.status == 0) return;
  {
    std::lock_guard lk(recgate_ports_mu);
    if (!recgate_ports.count(port)) return;
  }
  std::string line = "{\"method\":";
  append_json_string(line, method);
  line += ",\"path\":";
  append_json_string(line, target.substr(0, target.find('?')));
  line += ",\"status\":" + std::to_string(res.status) + ",\"headers\":{";
  bool first = true;
  for (const auto& [k, v] : res.headers) {
    if (!first) line += ',';
    first = false;
    append_json_string(line, k);
    line += ':';
    append_json_string(line, v);
  }
  line += "},\"body\":";
  append_json_string(line, recorded_body(res));
  line += "}\n";
  // One write(2) with O_APPEND: lines from test processes running in parallel do not interleave.
  const int fd = ::open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error(std::string("cannot open RECGATE_ANSWER_LOG ") + log);
  const ssize_t n = ::write(fd, line.data(), line.size());
  ::close(fd);
  if (n != static_cast<ssize_t>(line.size())) throw std::runtime_error("short write to RECGATE_ANSWER_LOG");
}

HttpResponse http_request(int port, const std::string& method, const std::string& target, const std::string& body,
                          const std::vector<std::pair<std::string, std::string>>& headers,
                          std::chrono::milliseconds timeout) {
  HttpResponse out;
  try {
    net::io_context ioc;
    beast::tcp_stream stream(ioc);
    stream.expires_after(timeout);
    beast::error_code ec;
    stream.socket().connect({net::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)}, ec);
    if (ec) {
      out.error = ec.message();
      return out;
    }
    http::request<http::string_body> req{http::string_to_verb(method), target, 11};
    req.set(http::field::host, "127.0.0.1:" + std::to_string(port));
    for (const auto& [k, v] : headers) req.set(k, v);
    req.body() = body;
    if (!body.empty() || method == "POST" || method == "PUT") req.prepare_payload();
    // Reads and writes below use async ops with the stream's deadline, run to completion.
    http::async_write(stream, req, [&](beast::error_code e, std::size_t) { ec = e; });
    ioc.run();
    ioc.restart();
    if (ec) {
      out.error = ec.message();
      return out;
    }
    beast::flat_buffer buf;
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 * 1024 * 1024);
    if (method == "HEAD") parser.skip(true);
    http::async_read(stream, buf, parser, [&](beast::error_code e, std::size_t) { ec = e; });
    ioc.run();
    if (ec) {
      out.error = ec.message();
      return out;
    }
    auto res = parser.release();
    out.status = static_cast<int>(res.result_int());
    for (const auto& f : res) {
      std::string name(f.name_string());
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      out.headers[name] = std::string(f.value());
    }
    out.body = res.body();
  } catch (const std::exception& e) {
    out.error = e.what();
  }
  record_answer(port, method, target, out);
  return out;
}

struct KeepAlive::Impl {
  net::io_context ioc;
  beast::tcp_stream stream{ioc};
  beast::flat_buffer buf;
  int port;
};

KeepAlive::KeepAlive(int port) : impl_(std::make_unique<Impl>()) {
  impl_->port = port;
  impl_->stream.socket().connect({net::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)});
}

KeepAlive::~KeepAlive() = default;

HttpResponse KeepAlive::request(const std::string& method, const std::string& target, std::chrono::milliseconds timeout) {
  HttpResponse out;
  http::request<http::string_body> req{http::string_to_verb(method), target, 11};
  req.set(http::field::host, "127.0.0.1:" + std::to_string(impl_->port));
  req.keep_alive(true);
  beast::error_code ec;
  impl_->stream.expires_after(timeout);
  http::async_write(impl_->stream, req, [&](beast::error_code e, std::size_t) { ec = e; });
  impl_->ioc.restart();
  impl_->ioc.run();
  if (ec) {
    out.error = ec.message();
    return out;
  }
  http::response<http::string_body> res;
  http::async_read(impl_->stream, impl_->buf, res, [&](beast::error_code e, std::size_t) { ec = e; });
  impl_->ioc.restart();
  impl_->ioc.run();
  if (ec) {
    out.error = ec.message();
    return out;
  }
  out.status = static_cast<int>(res.result_int());
  for (const auto& f : res) {
    std::string name(f.name_string());
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    out.headers[name] = std::string(f.value());
  }
  out.body = res.body();
  record_answer(impl_->port, method, target, out);
  return out;
}

bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return pred();
}

std::string raw_exchange(int port, const std::string& bytes, std::chrono::milliseconds timeout) {
  RawConnection c(port);
  std::string out;
  if (c.send(bytes)) c.read_to_close(out, timeout);
  return out;
}

RawConnection::RawConnection(int port, int rcvbuf) {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ >= 0 && rcvbuf > 0) ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd_ >= 0 && ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

RawConnection::~RawConnection() {
  if (fd_ >= 0) ::close(fd_);
}

bool RawConnection::send(const std::string& bytes) {
  std::size_t off = 0;
  while (fd_ >= 0 && off < bytes.size()) {
    const ssize_t n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<std::size_t>(n);
  }
  return fd_ >= 0;
}

bool RawConnection::shutdown_send() { return fd_ >= 0 && ::shutdown(fd_, SHUT_WR) == 0; }

int RawConnection::local_port() const {
  sockaddr_in addr{};
  socklen_t len = sizeof addr;
  if (fd_ < 0 || ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return -1;
  return ntohs(addr.sin_port);
}

RawConnection::Outcome RawConnection::read_until(const std::string& until, std::string& out,
                                                 std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  out.clear();
  char buf[65536];
  std::size_t searched = 0;  // `until` does not start before this offset
  for (;;) {
    if (!until.empty() && out.find(until, searched) != std::string::npos) return Outcome::found;
    if (out.size() >= until.size()) searched = out.size() - until.size() + 1;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (fd_ < 0) return Outcome::closed;
    if (left.count() <= 0) return Outcome::timeout;
    pollfd p{fd_, POLLIN, 0};
    const int r = ::poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return Outcome::timeout;
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Outcome::closed;  // orderly close or reset
    out.append(buf, static_cast<std::size_t>(n));
  }
}

RawConnection::Outcome RawConnection::read_to_close(std::string& out, std::chrono::milliseconds timeout) {
  return read_until("", out, timeout);
}

Sandbox::Sandbox(const std::vector<std::string>& extra_args)
    : proc([&] {
        std::vector<std::string> argv{RECGATE_SANDBOX_BIN, "--config", std::string(RECGATE_SOURCE_DIR) + "/config/sandbox.json",
                                      "--listen", "127.0.0.1:0"};
        argv.insert(argv.end(), extra_args.begin(), extra_args.end());
        return argv;
      }()),
      port(proc.wait_for_port()) {}

Recgate::Recgate(const TempDir& dir, const std::string& config_json,
                 std::vector<std::pair<std::string, std::string>> env, const std::string& name)
    : proc(
          [&] {
            write_file(dir.file(name), config_json);
            return std::vector<std::string>{RECGATE_BIN, "--config", dir.file(name)};
          }(),
          std::move(env)),
      port(proc.wait_for_port()) {
  std::lock_guard lk(recgate_ports_mu);
  recgate_ports.insert(port);
}

Recgate::~Recgate() {
  std::lock_guard lk(recgate_ports_mu);
  recgate_ports.erase(port);
}

namespace {

// `text` with every `@NAME@` replaced by its value.
std::string fill_template(std::string text, const std::vector<std::pair<std::string, std::string>>& values) {
  for (const auto& [name, value] : values) {
    const std::string mark = "@" + name + "@";
    for (auto at = text.find(mark); at != std::string::npos; at = text.find(mark, at + value.size()))
      text.replace(at, mark.size(), value);
  }
  return text;
}

// A member list spliced into a template object: "" or "<members>," before
// the next member, "" or ",<members>" after the last.
std::string members(const std::string& m) { return m.empty() ? m : m + ","; }
std::string more_members(const std::string& m) { return m.empty() ? m : "," + m; }

}  // namespace

std::string test_config(const TempDir& dir, int sandbox_port, const std::string& extra, const std::string& mws_extra,
                        const std::string& ads_extra) {
  const std::string path = std::string(RECGATE_SOURCE_DIR) + "/tests/support/recgate.template.json";
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read the config template " + path);
  std::stringstream tmpl;
  tmpl << in.rdbuf();
  return fill_template(tmpl.str(), {{"LISTEN", "127.0.0.1:0"},
                                    {"DATABASE", dir.file("db/recgate.db")},
                                    {"THREADS", "2"},
                                    {"EXTRA", members("\"drain_timeout_ms\":5000") + members(extra)},
                                    {"MWS_EXTRA", more_members(mws_extra)},
                                    {"ADS_EXTRA", more_members(ads_extra)},
                                    {"UPSTREAM", "http://127.0.0.1:" + std::to_string(sandbox_port)}});
}

}  // namespace rgtest
