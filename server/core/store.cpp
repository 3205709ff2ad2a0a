// SQLite connection on its own thread; see store.hpp. The migration runner
// lives in migrations.cpp.
#include "core/store.hpp"

#include <sqlite3.h>

#include <filesystem>
#include <future>

#include "core/log.hpp"
#include "core/migrations.hpp"

namespace recgate {

namespace {
[[noreturn]] void fail(sqlite3* db, const std::string& what) {
  throw StoreError(what + ": " + (db ? sqlite3_errmsg(db) : "out of memory"));
}
}  // namespace

Stmt& Stmt::bind(int i, std::string_view v) {
  sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  return *this;
}
Stmt& Stmt::bind(int i, std::int64_t v) {
  sqlite3_bind_int64(s_, i, v);
  return *this;
}
Stmt& Stmt::bind(int i, double v) {
  sqlite3_bind_double(s_, i, v);
  return *this;
}
Stmt& Stmt::bind_null(int i) {
  sqlite3_bind_null(s_, i);
  return *this;
}
bool Stmt::step() {
  int rc = sqlite3_step(s_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  fail(sqlite3_db_handle(s_), "sqlite step");
}
std::string Stmt::text(int col) const {
  auto* p = sqlite3_column_text(s_, col);
  int n = sqlite3_column_bytes(s_, col);
  return p ? std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(n)) : std::string();
}
std::optional<std::string> Stmt::opt_text(int col) const {
  if (is_null(col)) return std::nullopt;
  return text(col);
}
std::int64_t Stmt::int64(int col) const { return sqlite3_column_int64(s_, col); }
double Stmt::real(int col) const { return sqlite3_column_double(s_, col); }
bool Stmt::is_null(int col) const { return sqlite3_column_type(s_, col) == SQLITE_NULL; }

Db::~Db() {
  for (auto& [sql, st] : cache_) sqlite3_finalize(st);
  sqlite3_close_v2(db_);
}

void Db::exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    throw StoreError(std::string("sqlite exec: ") + msg);
  }
}

Stmt Db::prepare(const char* sql) {
  auto it = cache_.find(sql);
  if (it != cache_.end()) {
    sqlite3_reset(it->second);
    sqlite3_clear_bindings(it->second);
    return Stmt(it->second);
  }
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, nullptr) != SQLITE_OK) fail(db_, "sqlite prepare");
  cache_.emplace(sql, st);
  return Stmt(st);
}

int Db::changes() const { return sqlite3_changes(db_); }

std::unique_ptr<Store> Store::open(const std::string& path) {
  std::unique_ptr<Store> s(new Store());
  s->path_ = path;
  std::filesystem::path p(path);
  if (p.has_parent_path()) {
    std::error_code ec;
    std::filesystem::create_directories(p.parent_path(), ec);
    if (ec) throw StoreError("cannot create directory " + p.parent_path().string() + ": " + ec.message());
  }
  std::exception_ptr err;
  boost::asio::post(s->pool_, [&] {
    try {
      sqlite3* raw = nullptr;
      int rc = sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                               nullptr);
      if (rc != SQLITE_OK) {
        std::string msg = raw ? sqlite3_errmsg(raw) : "out of memory";
        sqlite3_close_v2(raw);
        throw StoreError("cannot open database " + path + ": " + msg);
      }
      s->db_ = std::make_unique<Db>(raw);
      sqlite3_busy_timeout(raw, 5000);
      s->db_->exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;");
      auto r = migrate(raw, embedded_migrations());
      if (!r.ok) throw StoreError(r.error);
      s->schema_version_ = r.schema_version;
      if (r.applied > 0)
        log_info("database migrated", {{"path", path}, {"applied", r.applied}, {"schema_version", r.schema_version}});
    } catch (...) {
      err = std::current_exception();
    }
  });
  s->flush();
  if (err) std::rethrow_exception(err);
  return s;
}

Store::~Store() {
  flush();
  pool_.join();
  // db_ is closed here, after the thread is gone.
}

void Store::post(std::function<void(Db&)> f) {
  boost::asio::post(pool_, [this, f = std::move(f)] {
    if (!db_) return;
    try {
      f(*db_);
    } catch (const std::exception& e) {
      log_error("database write failed", {{"error", e.what()}});
    }
  });
}

void Store::run_sync(const std::function<void(Db&)>& f) {
  std::promise<void> done;
  auto fut = done.get_future();
  boost::asio::post(pool_, [&] {
    try {
      if (db_) f(*db_);
      done.set_value();
    } catch (...) {
      done.set_exception(std::current_exception());
    }
  });
  fut.get();
}

void Store::flush() {
  std::promise<void> done;
  auto fut = done.get_future();
  boost::asio::post(pool_, [&] { done.set_value(); });
  fut.wait();
}

}  // namespace recgate
