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
#include <mutex>
#include <thread>
#include <unordered_map>

struct sqlite3;
struct sqlite3_stmt;

namespace recgate {

class StoreError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A prepared statement; reset and cleared when re-fetched from Db::prepare,
// and reset when this handle goes out of scope: a statement left on a row
// would keep its read snapshot open, which blocks WAL checkpoints (the WAL
// then grows) and writes to the same table on this connection.
class Stmt {
 public:
  explicit Stmt(sqlite3_stmt* s) : s_(s) {}
  ~Stmt() { reset(); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  Stmt(Stmt&& o) noexcept : s_(o.s_) { o.s_ = nullptr; }
  Stmt& operator=(Stmt&&) = delete;
  Stmt& bind(int i, std::string_view v);
  Stmt& bind(int i, const std::string& v) { return bind(i, std::string_view(v)); }
  Stmt& bind(int i, const char* v) { return bind(i, std::string_view(v)); }
  Stmt& bind(int i, std::int64_t v);
  Stmt& bind(int i, int v) { return bind(i, static_cast<std::int64_t>(v)); }
  Stmt& bind(int i, double v);
  Stmt& bind_null(int i);
  Stmt& bind(int i, const std::optional<std::string>& v) { return v ? bind(i, std::string_view(*v)) : bind_null(i); }
  bool step();  // true: a row is ready; false: done. Throws StoreError.
  void reset();  // ends an iteration early (releases its read snapshot)
  std::string text(int col) const;
  std::optional<std::string> opt_text(int col) const;
  // The same without a copy: valid until the next step() or reset().
  std::string_view text_view(int col) const;
  std::optional<std::string_view> opt_text_view(int col) const;
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
  // keys, applies migrations and checks the tables are there. Throws
  // StoreError with a message naming the file.
  //
  // One database, one process: an exclusive flock on PATH.lock (holding the
  // pid) is taken first and kept until the Store is destroyed; a second
  // process gets a StoreError naming the other pid.
  //
  // A corrupt file ("file is not a database", PRAGMA quick_check not ok) is
  // moved aside as PATH.corrupt-YYYYMMDDTHHMMSSZ (with its -wal and -shm),
  // logged as an error, and a fresh database created: everything in it is a
  // cache or can start over (previous_run_clean() is then false). Files
  // larger than kSyncCheckBytes are checked only when check_in_background()
  // is called (run_app calls it once the port is open: start-up must not
  // read a whole large file); a corrupt one is then replaced the same way
  // while serving.
  static constexpr std::int64_t kSyncCheckBytes = 16 * 1024 * 1024;
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

  // False when the previous process did not reach mark_clean_shutdown() (it
  // was killed or crashed, or the file was corrupt and replaced): state it
  // wrote late, such as quota bucket levels, may be missing. Open records
  // this run as unclean until mark_clean_shutdown().
  bool previous_run_clean() const { return previous_run_clean_; }
  // Records a clean stop; call after the bucket levels are saved. Throws.
  void mark_clean_shutdown();
  // Starts the integrity check that open() left for later (a file larger than
  // kSyncCheckBytes), on a thread of its own at the lowest CPU priority.
  // Does nothing when open() checked the file already or on a second call.
  void check_in_background();

 private:
  Store() = default;
  void open_on_thread();
  std::unique_ptr<Db> fresh_after_corrupt(const std::string& corrupt);
  void install(std::unique_ptr<Db> db);
  void start_deferred_check();
  void replace_corrupt(const std::string& why);
  std::string path_;
  std::unique_ptr<Db> db_;
  boost::asio::thread_pool pool_{1};
  int schema_version_ = 0;
  bool previous_run_clean_ = false;
  int lock_fd_ = -1;
  bool check_pending_ = false;  // open() left the integrity check for check_in_background()
  std::thread checker_;
  std::mutex check_mu_;
  sqlite3* check_db_ = nullptr;  // the deferred check's connection while it runs
  bool stopping_ = false;
};

}  // namespace recgate
