// The SQLite store. One dedicated database thread owns the connection: request
// coroutines hand it work with `co_await store.run(f)` (and resume on their
// own executor), writes that nobody waits for go through `store.post(f)`.
// SQLite therefore never runs on the threads that serve HTTP.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>

struct sqlite3;
struct sqlite3_stmt;

namespace recgate {

class StoreError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A prepared statement; reset and cleared when re-fetched from Db::prepare.
class Stmt {
 public:
  explicit Stmt(sqlite3_stmt* s) : s_(s) {}
  Stmt& bind(int i, std::string_view v);
  Stmt& bind(int i, const std::string& v) { return bind(i, std::string_view(v)); }
  Stmt& bind(int i, const char* v) { return bind(i, std::string_view(v)); }
  Stmt& bind(int i, std::int64_t v);
  Stmt& bind(int i, int v) { return bind(i, static_cast<std::int64_t>(v)); }
  Stmt& bind(int i, double v);
  Stmt& bind_null(int i);
  Stmt& bind(int i, const std::optional<std::string>& v) { return v ? bind(i, std::string_view(*v)) : bind_null(i); }
  bool step();  // true: a row is ready; false: done. Throws StoreError.
  std::string text(int col) const;
  std::optional<std::string> opt_text(int col) const;
  std::int64_t int64(int col) const;
  double real(int col) const;
  bool is_null(int col) const;

 private:
  sqlite3_stmt* s_;
};

// The connection, used only on the database thread.
class Db {
 public:
  explicit Db(sqlite3* db) : db_(db) {}
  ~Db();
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;
  void exec(const char* sql);
  Stmt prepare(const char* sql);  // cached per SQL text
  int changes() const;
  sqlite3* raw() { return db_; }

 private:
  sqlite3* db_;
  std::unordered_map<std::string, sqlite3_stmt*> cache_;
};

class Store {
 public:
  // Opens (creating the parent directory), sets WAL, busy timeout and foreign
  // keys, applies migrations. Throws StoreError with a clear message.
  static std::unique_ptr<Store> open(const std::string& path);
  ~Store();

  // Runs f(Db&) on the database thread; returns its result to the caller's
  // executor. Exceptions thrown by f are rethrown in the caller.
  template <class F>
  auto run(F f) -> boost::asio::awaitable<std::invoke_result_t<F, Db&>> {
    using R = std::invoke_result_t<F, Db&>;
    using Slot = std::conditional_t<std::is_void_v<R>, int, std::optional<R>>;
    Slot slot{};
    // use_awaitable rethrows a non-null exception_ptr in the caller.
    co_await boost::asio::async_initiate<decltype(boost::asio::use_awaitable),
                                                   void(std::exception_ptr)>(
        [this, &f, &slot](auto handler) {
          boost::asio::post(pool_, [this, &f, &slot, h = std::move(handler)]() mutable {
            std::exception_ptr e;
            try {
              if constexpr (std::is_void_v<R>) {
                f(*db_);
              } else {
                slot.emplace(f(*db_));
              }
            } catch (...) {
              e = std::current_exception();
            }
            auto ex = boost::asio::get_associated_executor(h);
            boost::asio::post(ex, [h = std::move(h), e]() mutable { h(e); });
          });
        },
        boost::asio::use_awaitable);
    if constexpr (!std::is_void_v<R>) co_return std::move(*slot);
  }

  // Queues f(Db&) on the database thread; errors are logged, never thrown.
  void post(std::function<void(Db&)> f);
  // Runs f on the database thread and blocks until done (start-up, shutdown, tests;
  // never from an I/O thread while serving).
  void run_sync(const std::function<void(Db&)>& f);
  // Waits until every posted job has run.
  void flush();

  int schema_version() const { return schema_version_; }
  const std::string& path() const { return path_; }

 private:
  Store() = default;
  std::string path_;
  std::unique_ptr<Db> db_;
  boost::asio::thread_pool pool_{1};
  int schema_version_ = 0;
};

}  // namespace recgate
