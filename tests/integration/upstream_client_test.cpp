// The upstream HttpClient against an in-process HTTP(S) server on
// 127.0.0.1 port 0, with a test CA and server certificates generated here with
// the OpenSSL API: verification, keep-alive reuse, deadlines, drops, limits.
#include <doctest/doctest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "core/log.hpp"
#include "core/upstream/http_client.hpp"

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;
using namespace recgate::upstream;

namespace {

constexpr auto nothrow = net::as_tuple(net::use_awaitable);

struct LogFailure {
  const char* what;
  void operator()(std::exception_ptr e) const {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      recgate::log_error(what, {{"error", ex.what()}});
    }
  }
};

// --- test PKI ----------------------------------------------------------------

using KeyPtr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
using CertPtr = std::unique_ptr<X509, decltype(&X509_free)>;

KeyPtr make_key() {
  KeyPtr key(EVP_EC_gen("P-256"), EVP_PKEY_free);
  if (!key) throw std::runtime_error("EC key generation failed");
  return key;
}

void add_extension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext == nullptr) throw std::runtime_error("bad extension " + value);
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

// A CA when issuer is null (self-signed), else a server certificate for san.
CertPtr make_cert(EVP_PKEY* key, const std::string& common_name, X509* issuer, EVP_PKEY* issuer_key,
                  const std::string& san) {
  static long serial = 1;
  CertPtr cert(X509_new(), X509_free);
  X509* x = cert.get();
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
  X509_gmtime_adj(X509_getm_notBefore(x), -3600);
  X509_gmtime_adj(X509_getm_notAfter(x), 24 * 3600);
  X509_set_pubkey(x, key);
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(common_name.c_str()),
                             -1, -1, 0);
  const bool ca = issuer == nullptr;
  X509_set_issuer_name(x, ca ? name : X509_get_subject_name(issuer));
  X509* signer = ca ? x : issuer;
  add_extension(x, signer, NID_basic_constraints, ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
  add_extension(x, signer, NID_subject_key_identifier, "hash");
  if (ca) {
    add_extension(x, signer, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    add_extension(x, signer, NID_authority_key_identifier, "keyid:always");
    add_extension(x, signer, NID_key_usage, "critical,digitalSignature");
    add_extension(x, signer, NID_ext_key_usage, "serverAuth");
    add_extension(x, signer, NID_subject_alt_name, san);
  }
  if (X509_sign(x, ca ? key : issuer_key, EVP_sha256()) == 0) throw std::runtime_error("X509_sign failed");
  return cert;
}

template <class Write>
std::string pem(Write write) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
  if (write(bio.get()) != 1) throw std::runtime_error("PEM write failed");
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(size));
}

std::string cert_pem(X509* cert) {
  return pem([cert](BIO* bio) { return PEM_write_bio_X509(bio, cert); });
}
std::string key_pem(EVP_PKEY* key) {
  return pem([key](BIO* bio) { return PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr); });
}

struct ServerIdentity {
  std::string cert;
  std::string key;
};

struct Pki {
  std::string ca;        // trusted by the client through ca_file
  std::string other_ca;  // a CA that signed nothing the servers use
  ServerIdentity good;   // DNS:localhost, IP:127.0.0.1, signed by ca
  ServerIdentity wrong;  // DNS:wrong.example, signed by ca
};

const Pki& pki() {
  static const Pki instance = [] {
    Pki p;
    const auto ca_key = make_key();
    const auto ca = make_cert(ca_key.get(), "recgate test CA", nullptr, nullptr, "");
    const auto other_key = make_key();
    const auto other = make_cert(other_key.get(), "recgate other CA", nullptr, nullptr, "");
    const auto good_key = make_key();
    const auto good = make_cert(good_key.get(), "localhost", ca.get(), ca_key.get(), "DNS:localhost,IP:127.0.0.1");
    const auto wrong_key = make_key();
    const auto wrong = make_cert(wrong_key.get(), "wrong.example", ca.get(), ca_key.get(), "DNS:wrong.example");
    p.ca = cert_pem(ca.get());
    p.other_ca = cert_pem(other.get());
    p.good = {cert_pem(good.get()), key_pem(good_key.get())};
    p.wrong = {cert_pem(wrong.get()), key_pem(wrong_key.get())};
    return p;
  }();
  return instance;
}

class TempFile {
 public:
  explicit TempFile(const std::string& content) {
    std::string pattern = (std::filesystem::temp_directory_path() / "recgate-upstream-XXXXXX").string();
    const int fd = mkstemp(pattern.data());
    if (fd < 0) throw std::runtime_error("mkstemp failed");
    close(fd);
    path_ = pattern;
    std::ofstream(path_, std::ios::binary) << content;
  }
  ~TempFile() { std::remove(path_.c_str()); }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// --- the in-process server -----------------------------------------------------

enum class Behaviour {
  echo,               // 200 "ok <target>", keep-alive as the client asks
  silent,             // reads the request, never answers
  drop_mid_body,      // headers promise 100 bytes, 10 are sent, then the socket closes
  large_body,         // body_size bytes with Content-Length
  large_chunked,      // body_size bytes, chunked
  close_after,        // answers with keep-alive, then closes the idle connection
  connection_close,   // answers with Connection: close
  hold_until_second,  // answers nothing until a second request has arrived
  interim_first,      // "100 Continue" and a "103 Early Hints" before each answer
};

struct Recorded {
  std::string method, target, host, user_agent, content_type, content_length, body;
};

struct ServerState {
  ServerState(const net::any_io_executor& ex, Behaviour b, std::size_t size)
      : behaviour(b), body_size(size), gate(ex, Clock::now() + 10s) {}

  const Behaviour behaviour;
  const std::size_t body_size;
  std::atomic<int> accepted{0};
  std::atomic<int> max_open{0};
  int received = 0;        // server thread only
  net::steady_timer gate;  // server thread only

  std::mutex mutex;
  std::condition_variable changed;
  int open = 0;
  std::vector<Recorded> requests;

  void session_started() {
    ++accepted;
    std::lock_guard lock(mutex);
    ++open;
    if (open > max_open) max_open = open;
  }
  void session_ended() {
    std::lock_guard lock(mutex);
    --open;
    changed.notify_all();
  }
  bool wait_all_closed(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex);
    return changed.wait_for(lock, timeout, [this] { return open == 0; });
  }
  std::vector<Recorded> recorded() {
    std::lock_guard lock(mutex);
    return requests;
  }
};
using StatePtr = std::shared_ptr<ServerState>;

template <class Stream>
net::awaitable<void> serve(Stream& stream, StatePtr st) {
  beast::flat_buffer buffer;
  for (;;) {
    http::request<http::string_body> req;
    auto [read_ec, read] = co_await http::async_read(stream, buffer, req, nothrow);
    if (read_ec) co_return;
    {
      std::lock_guard lock(st->mutex);
      st->requests.push_back({std::string(req.method_string()), std::string(req.target()),
                              std::string(req[http::field::host]), std::string(req[http::field::user_agent]),
                              std::string(req[http::field::content_type]),
                              std::string(req[http::field::content_length]), req.body()});
    }
    ++st->received;

    switch (st->behaviour) {
      case Behaviour::silent: {
        http::request<http::string_body> next;
        co_await http::async_read(stream, buffer, next, nothrow);
        co_return;
      }
      case Behaviour::drop_mid_body: {
        const std::string partial = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789";
        co_await net::async_write(stream, net::buffer(partial), nothrow);
        co_return;
      }
      case Behaviour::interim_first: {
        const std::string interim =
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n";
        co_await net::async_write(stream, net::buffer(interim), nothrow);
        break;
      }
      case Behaviour::hold_until_second:
        if (st->received < 2) {
          co_await st->gate.async_wait(nothrow);
        } else {
          st->gate.cancel();
        }
        break;
      default:
        break;
    }

    http::response<http::string_body> res{http::status::ok, 11};
    res.set(http::field::content_type, "text/plain");
    res.keep_alive(req.keep_alive() && st->behaviour != Behaviour::connection_close);
    if (st->behaviour == Behaviour::large_body || st->behaviour == Behaviour::large_chunked) {
      res.body() = std::string(st->body_size, 'x');
    } else {
      res.body() = "ok " + std::string(req.target());
    }
    if (st->behaviour == Behaviour::large_chunked) {
      res.chunked(true);
    } else {
      res.prepare_payload();
    }
    auto [write_ec, written] = co_await http::async_write(stream, res, nothrow);
    if (write_ec || !res.keep_alive() || st->behaviour == Behaviour::close_after) co_return;
  }
}

net::awaitable<void> session(tcp::socket socket, StatePtr st, ssl::context* tls) {
  st->session_started();
  if (tls != nullptr) {
    beast::ssl_stream<beast::tcp_stream> stream(std::move(socket), *tls);
    auto [ec] = co_await stream.async_handshake(ssl::stream_base::server, nothrow);
    if (!ec) co_await serve(stream, st);
  } else {
    beast::tcp_stream stream(std::move(socket));
    co_await serve(stream, st);
  }
  st->session_ended();
}

net::awaitable<void> accept_loop(tcp::acceptor* acceptor, StatePtr st, ssl::context* tls) {
  for (;;) {
    auto [ec, socket] = co_await acceptor->async_accept(nothrow);
    if (ec) co_return;
    net::co_spawn(acceptor->get_executor(), session(std::move(socket), st, tls), LogFailure{"test session failed"});
  }
}

class TestServer {
 public:
  explicit TestServer(Behaviour behaviour, const ServerIdentity* identity = nullptr, std::size_t body_size = 0)
      : state_(std::make_shared<ServerState>(ioc_.get_executor(), behaviour, body_size)),
        acceptor_(ioc_, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0)) {
    if (identity != nullptr) {
      tls_.emplace(ssl::context::tls_server);
      tls_->use_certificate_chain(net::buffer(identity->cert));
      tls_->use_private_key(net::buffer(identity->key), ssl::context::pem);
    }
    net::co_spawn(ioc_, accept_loop(&acceptor_, state_, tls_ ? &*tls_ : nullptr), LogFailure{"test accept failed"});
    thread_ = std::thread([this] { ioc_.run(); });
  }
  ~TestServer() {
    ioc_.stop();
    thread_.join();
  }
  TestServer(const TestServer&) = delete;
  TestServer& operator=(const TestServer&) = delete;

  std::string url(const std::string& host, const std::string& path = "/") const {
    return std::string(tls_ ? "https" : "http") + "://" + host + ":" + std::to_string(port()) + path;
  }
  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
  ServerState& state() { return *state_; }

 private:
  net::io_context ioc_;
  std::optional<ssl::context> tls_;
  StatePtr state_;
  tcp::acceptor acceptor_;
  std::thread thread_;
};

// --- client-side helpers ---------------------------------------------------------

// Runs task to completion on ioc, then shuts the client down so run() returns.
template <class T>
T run(net::io_context& ioc, HttpClient& client, net::awaitable<T> task) {
  std::optional<T> result;
  std::exception_ptr failure;
  net::co_spawn(ioc, std::move(task), [&](std::exception_ptr e, T value) {
    failure = e;
    result = std::move(value);
    client.shutdown();
  });
  ioc.run();
  if (failure) std::rethrow_exception(failure);
  return std::move(*result);
}

Result fetch(ClientOptions opts, Request req) {
  net::io_context ioc;
  HttpClient client(ioc.get_executor(), std::move(opts));
  return run(ioc, client, client.request(std::move(req)));
}

Request get(std::string url) { return Request{"GET", std::move(url), {}, {}}; }

net::awaitable<std::vector<Result>> in_sequence(HttpClient& client, std::vector<Request> requests) {
  std::vector<Result> out;
  for (auto& req : requests) out.push_back(co_await client.request(std::move(req)));
  co_return out;
}

std::vector<Result> fetch_in_sequence(ClientOptions opts, std::vector<Request> requests) {
  net::io_context ioc;
  HttpClient client(ioc.get_executor(), std::move(opts));
  return run(ioc, client, in_sequence(client, std::move(requests)));
}

struct Tally {
  std::mutex mutex;
  std::vector<Result> results;
  int remaining = 0;
  int exceptions = 0;
};

net::awaitable<Result> one_request(HttpClient& client, Request req) { co_return co_await client.request(std::move(req)); }

// Starts every request at once, each on its own strand, with the client's
// io_context run by three threads.
std::vector<Result> fetch_concurrently(ClientOptions opts, const std::vector<Request>& requests, int& exceptions) {
  net::io_context ioc;
  HttpClient client(ioc.get_executor(), std::move(opts));
  auto tally = std::make_shared<Tally>();
  tally->remaining = static_cast<int>(requests.size());
  for (const auto& req : requests) {
    net::co_spawn(net::make_strand(ioc), one_request(client, req), [tally, &client](std::exception_ptr e, Result r) {
      std::lock_guard lock(tally->mutex);
      if (e) ++tally->exceptions;
      tally->results.push_back(std::move(r));
      if (--tally->remaining == 0) client.shutdown();
    });
  }
  std::thread a([&ioc] { ioc.run(); });
  std::thread b([&ioc] { ioc.run(); });
  ioc.run();
  a.join();
  b.join();
  exceptions = tally->exceptions;
  return tally->results;
}

ClientOptions quick_options() {
  ClientOptions opts;
  opts.connect_timeout = 5s;
  opts.request_timeout = 10s;
  return opts;
}

}  // namespace

TEST_CASE("upstream TLS: a server signed by the ca_file CA is accepted, by name and by IP, and reused") {
  TestServer server(Behaviour::echo, &pki().good);
  TempFile ca(pki().ca);
  auto opts = quick_options();
  opts.ca_file = ca.path();

  const auto results = fetch_in_sequence(opts, {get(server.url("localhost", "/a")), get(server.url("localhost", "/b"))});
  REQUIRE(results.size() == 2);
  for (const auto& r : results) {
    CAPTURE(r.detail);
    REQUIRE(r.ok());
    CHECK(r.response.status == 200);
  }
  CHECK(results[0].response.body == "ok /a");
  CHECK(results[1].response.body == "ok /b");
  CHECK(server.state().accepted == 1);

  const auto by_ip = fetch(opts, get(server.url("127.0.0.1", "/ip")));
  CAPTURE(by_ip.detail);
  REQUIRE(by_ip.ok());
  CHECK(by_ip.response.body == "ok /ip");
  CHECK(server.state().wait_all_closed(5s));
}

TEST_CASE("upstream TLS: a certificate from an unknown CA is refused") {
  TestServer server(Behaviour::echo, &pki().good);
  TempFile other(pki().other_ca);
  auto opts = quick_options();
  opts.ca_file = other.path();
  const auto r = fetch(opts, get(server.url("localhost")));
  CAPTURE(r.detail);
  CHECK(r.error == ErrorKind::tls_failed);

  const auto system_only = fetch(quick_options(), get(server.url("localhost")));
  CAPTURE(system_only.detail);
  CHECK(system_only.error == ErrorKind::tls_failed);
  CHECK(server.state().recorded().empty());
}

TEST_CASE("upstream TLS: a certificate for another host name is refused") {
  TestServer server(Behaviour::echo, &pki().wrong);
  TempFile ca(pki().ca);
  auto opts = quick_options();
  opts.ca_file = ca.path();
  for (const char* host : {"localhost", "127.0.0.1"}) {
    CAPTURE(host);
    const auto r = fetch(opts, get(server.url(host)));
    CAPTURE(r.detail);
    CHECK(r.error == ErrorKind::tls_failed);
    CHECK(r.detail.find("mismatch") != std::string::npos);
  }
  CHECK(server.state().recorded().empty());
}

TEST_CASE("upstream: an unreadable ca_file is a construction error") {
  net::io_context ioc;
  ClientOptions opts;
  opts.ca_file = "/nonexistent/recgate/ca.pem";
  CHECK_THROWS_AS(HttpClient(ioc.get_executor(), opts), std::runtime_error);
}

TEST_CASE("upstream HTTP: five sequential requests share one keep-alive connection") {
  TestServer server(Behaviour::echo);
  std::vector<Request> requests;
  for (int i = 0; i < 5; ++i) requests.push_back(get(server.url("127.0.0.1", "/n" + std::to_string(i))));
  const auto results = fetch_in_sequence(quick_options(), requests);
  REQUIRE(results.size() == 5);
  for (int i = 0; i < 5; ++i) {
    CAPTURE(results[i].detail);
    REQUIRE(results[i].ok());
    CHECK(results[i].response.body == "ok /n" + std::to_string(i));
    CHECK(results[i].response.header("content-type") == "text/plain");
  }
  CHECK(server.state().accepted == 1);
}

TEST_CASE("upstream HTTP: an idle pooled connection is closed after idle_timeout") {
  TestServer server(Behaviour::echo);
  auto opts = quick_options();
  opts.idle_timeout = 100ms;
  net::io_context ioc;
  auto work = net::make_work_guard(ioc);
  HttpClient client(ioc.get_executor(), opts);
  std::thread runner([&ioc] { ioc.run(); });

  const auto first = net::co_spawn(ioc, client.request(get(server.url("127.0.0.1"))), net::use_future).get();
  CAPTURE(first.detail);
  CHECK(first.ok());
  CHECK(server.state().wait_all_closed(5s));
  const auto second = net::co_spawn(ioc, client.request(get(server.url("127.0.0.1"))), net::use_future).get();
  CAPTURE(second.detail);
  CHECK(second.ok());
  CHECK(server.state().accepted == 2);

  client.shutdown();
  work.reset();
  runner.join();
}

TEST_CASE("upstream HTTP: Connection: close from the server is honoured") {
  TestServer server(Behaviour::connection_close);
  const auto results = fetch_in_sequence(quick_options(), {get(server.url("127.0.0.1")), get(server.url("127.0.0.1"))});
  for (const auto& r : results) {
    CAPTURE(r.detail);
    CHECK(r.ok());
  }
  CHECK(server.state().accepted == 2);
}

TEST_CASE("upstream HTTP: a pooled connection the server closed is retried once on a new one") {
  TestServer server(Behaviour::close_after);
  const auto results =
      fetch_in_sequence(quick_options(), {get(server.url("127.0.0.1", "/1")), get(server.url("127.0.0.1", "/2"))});
  REQUIRE(results.size() == 2);
  for (const auto& r : results) {
    CAPTURE(r.detail);
    REQUIRE(r.ok());
  }
  CHECK(results[1].response.body == "ok /2");
  CHECK(server.state().accepted == 2);
}

TEST_CASE("upstream HTTP: concurrent requests never exceed max_connections_per_origin") {
  TestServer server(Behaviour::hold_until_second);
  auto opts = quick_options();
  opts.max_connections_per_origin = 2;
  std::vector<Request> requests;
  for (int i = 0; i < 6; ++i) requests.push_back(get(server.url("127.0.0.1", "/c" + std::to_string(i))));
  int exceptions = 0;
  const auto results = fetch_concurrently(opts, requests, exceptions);
  CHECK(exceptions == 0);
  REQUIRE(results.size() == 6);
  for (const auto& r : results) {
    CAPTURE(r.detail);
    CHECK(r.ok());
  }
  CHECK(server.state().accepted == 2);
  CHECK(server.state().max_open == 2);
}

TEST_CASE("upstream HTTP: a request that gets no answer times out at its deadline") {
  TestServer server(Behaviour::silent);
  auto opts = quick_options();
  opts.request_timeout = 300ms;
  const auto start = Clock::now();
  const auto r = fetch(opts, get(server.url("127.0.0.1")));
  const auto elapsed = Clock::now() - start;
  CAPTURE(r.detail);
  CHECK(r.error == ErrorKind::timeout);
  CHECK(elapsed >= 300ms);
  CHECK(elapsed < 5s);
  CHECK(server.state().wait_all_closed(5s));
}

TEST_CASE("upstream HTTP: a request waiting for a connection slot gives up at its deadline") {
  TestServer server(Behaviour::silent);
  auto opts = quick_options();
  opts.request_timeout = 300ms;
  opts.max_connections_per_origin = 1;
  int exceptions = 0;
  const auto start = Clock::now();
  const auto results = fetch_concurrently(opts, {get(server.url("127.0.0.1")), get(server.url("127.0.0.1"))}, exceptions);
  CHECK(Clock::now() - start < 5s);
  CHECK(exceptions == 0);
  REQUIRE(results.size() == 2);
  for (const auto& r : results) {
    CAPTURE(r.detail);
    CHECK(r.error == ErrorKind::timeout);
  }
}

namespace {
net::awaitable<bool> cancelled_by_timer(HttpClient& client, Request req, std::chrono::milliseconds after) {
  using namespace net::experimental::awaitable_operators;
  net::steady_timer timer(co_await net::this_coro::executor, after);
  auto winner = co_await (client.request(std::move(req)) || timer.async_wait(net::use_awaitable));
  co_return winner.index() == 1;
}
}  // namespace

TEST_CASE("upstream HTTP: cancelling the awaiting coroutine aborts the request and drops its connection") {
  TestServer server(Behaviour::silent);
  auto opts = quick_options();
  opts.request_timeout = 60s;
  net::io_context ioc;
  HttpClient client(ioc.get_executor(), opts);
  const auto start = Clock::now();
  const bool timer_won = run(ioc, client, cancelled_by_timer(client, get(server.url("127.0.0.1")), 200ms));
  CHECK(timer_won);
  CHECK(Clock::now() - start < 10s);
  CHECK(server.state().wait_all_closed(5s));
}

TEST_CASE("upstream HTTP: a connection dropped mid-response is reported as dropped") {
  TestServer server(Behaviour::drop_mid_body);
  const auto r = fetch(quick_options(), get(server.url("127.0.0.1")));
  CAPTURE(r.detail);
  CHECK(r.error == ErrorKind::dropped);
  CHECK(server.state().accepted == 1);
}

TEST_CASE("upstream HTTP: a body over max_response_bytes is too_large") {
  auto opts = quick_options();
  opts.max_response_bytes = 1024;
  {
    TestServer server(Behaviour::large_body, nullptr, 1024);
    const auto r = fetch(opts, get(server.url("127.0.0.1")));
    CAPTURE(r.detail);
    REQUIRE(r.ok());
    CHECK(r.response.body.size() == 1024);
  }
  for (const auto behaviour : {Behaviour::large_body, Behaviour::large_chunked}) {
    TestServer server(behaviour, nullptr, 4096);
    const auto r = fetch(opts, get(server.url("127.0.0.1")));
    CAPTURE(r.detail);
    CHECK(r.error == ErrorKind::too_large);
  }
}

TEST_CASE("upstream HTTP: interim 1xx answers are skipped, each request gets its own final answer") {
  TestServer server(Behaviour::interim_first);
  const auto results =
      fetch_in_sequence(quick_options(), {get(server.url("127.0.0.1", "/a")), get(server.url("127.0.0.1", "/b"))});
  REQUIRE(results.size() == 2);
  for (std::size_t i = 0; i < 2; ++i) {
    CAPTURE(results[i].detail);
    REQUIRE(results[i].ok());
    CHECK(results[i].response.status == 200);
  }
  CHECK(results[0].response.body == "ok /a");
  CHECK(results[1].response.body == "ok /b");
}

TEST_CASE("upstream HTTP: a form POST arrives with its body, Content-Type, Host and User-Agent intact") {
  TestServer server(Behaviour::echo);
  auto opts = quick_options();
  opts.user_agent = mws_user_agent("recgate", "0.1.0");
  const std::string body =
      "AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Action=ListRecommendations&MarketplaceId=ATVPDKIKX0DER"
      "&Signature=wsegu%2BMzBR%2F4%3D&Timestamp=2013-03-04T18%3A12%3A21.687Z";
  Request req;
  req.method = "POST";
  req.url = server.url("127.0.0.1", "/Recommendations/2013-04-01");
  req.headers = {{"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"}};
  req.body = body;
  const auto r = fetch(opts, req);
  CAPTURE(r.detail);
  REQUIRE(r.ok());
  const auto seen = server.state().recorded();
  REQUIRE(seen.size() == 1);
  CHECK(seen[0].method == "POST");
  CHECK(seen[0].target == "/Recommendations/2013-04-01");
  CHECK(seen[0].content_type == "application/x-www-form-urlencoded; charset=utf-8");
  CHECK(seen[0].content_length == std::to_string(body.size()));
  CHECK(seen[0].body == body);
  CHECK(seen[0].host == "127.0.0.1:" + std::to_string(server.port()));
  CHECK(seen[0].user_agent == "recgate/0.1.0 (Language=C++; Platform=Linux)");
}

TEST_CASE("upstream: connection refused, bad URLs and unsendable headers are values, not exceptions") {
  std::uint16_t closed_port = 0;
  {
    net::io_context ioc;
    tcp::acceptor probe(ioc, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
    closed_port = probe.local_endpoint().port();
  }
  const auto refused = fetch(quick_options(), get("http://127.0.0.1:" + std::to_string(closed_port) + "/"));
  CAPTURE(refused.detail);
  CHECK(refused.error == ErrorKind::connect_failed);

  CHECK(fetch(quick_options(), get("ftp://example.com/")).error == ErrorKind::bad_url);
  Request injected = get("http://127.0.0.1:1/");
  injected.headers = {{"X-Evil", "a\r\nHost: other"}};
  CHECK(fetch(quick_options(), injected).error == ErrorKind::bad_url);
  Request bad_method = get("http://127.0.0.1:1/");
  bad_method.method = "GE T";
  CHECK(fetch(quick_options(), bad_method).error == ErrorKind::bad_url);
}
