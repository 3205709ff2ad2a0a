// SQLite connection on its own thread; see store.hpp: the process lock,
// the corruption check and move-aside, the clean-shutdown marker. The
// migration runner lives in migrations.cpp.
#include "core/store.hpp"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <cstdlib>
#include <future>
#include <utility>

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
void Stmt::reset() {
  if (s_) sqlite3_reset(s_);
}
std::string_view Stmt::text_view(int col) const {
  auto* p = sqlite3_column_text(s_, col);
  int n = sqlite3_column_bytes(s_, col);
  return p ? std::string_view(reinterpret_cast<const char*>(p), static_cast<std::size_t>(n)) : std::string_view();
}
std::optional<std::string_view> Stmt::opt_text_view(int col) const {
  if (is_null(col)) return std::nullopt;
  return text_view(col);
}
std::string Stmt::text(int col) const { return std::string(text_view(col)); }
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

namespace {

// The WAL file is truncated back to this after a checkpoint (it would
// otherwise keep its largest size for good).
constexpr std::int64_t kJournalSizeLimit = 8 * 1024 * 1024;
constexpr const char* kTables[] = {"mws_snapshot", "mws_recommendations", "ads_answers",
                                   "lwa_tokens",   "bucket_levels",       "run_state"};

bool is_corruption(int rc) {
  rc &= 0xff;
  return rc == SQLITE_NOTADB || rc == SQLITE_CORRUPT;
}

std::string read_holder_pid(int fd) {
  char buf[32] = {};
  ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
  std::string pid;
  for (ssize_t i = 0; i < n && buf[i] >= '0' && buf[i] <= '9'; ++i) pid += buf[i];
  return pid;
}

// flock, not SQLite's own locks: those are per transaction; this one says
// "a recgate runs on this file" for the whole life of the process, and the
// kernel drops it when the process dies, however it dies.
int take_lock(const std::string& db_path) {
  const std::string lock = db_path + ".lock";
  int fd = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) throw StoreError("cannot open lock file " + lock + ": " + std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int e = errno;
    const std::string holder = read_holder_pid(fd);
    ::close(fd);
    if (e == EWOULDBLOCK)
      throw StoreError("database " + db_path + " is in use by another recgate" +
                       (holder.empty() ? std::string() : " (pid " + holder + ")") + " holding " + lock +
                       "; one database serves one process");
    throw StoreError("cannot lock " + lock + ": " + std::strerror(e));
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size()))
    log_warn("cannot write the pid into the lock file", {{"path", lock}, {"error", std::strerror(errno)}});
  return fd;
}

int exec_rc(sqlite3* db, const char* sql, std::string& err) {
  char* msg = nullptr;
  int rc = sqlite3_exec(db, sql, nullptr, nullptr, &msg);
  if (rc != SQLITE_OK) err = msg ? msg : sqlite3_errstr(rc);
  sqlite3_free(msg);
  return rc;
}

// Opens and checks the file. nullptr with `corrupt` set: the file is not a
// usable database. Any other failure (permissions, locked by another
// program, a full disk) throws: moving the file aside would not cure it.
// PRAGMA quick_check(1) on db: (SQLite result code, verdict). "ok" with
// SQLITE_ROW means the file is sound; SQLITE_INTERRUPT means it was stopped.
std::pair<int, std::string> quick_check(sqlite3* db) {
  sqlite3_stmt* st = nullptr;
  int rc = sqlite3_prepare_v2(db, "PRAGMA quick_check(1)", -1, &st, nullptr);
  if (rc == SQLITE_OK) rc = sqlite3_step(st);
  std::string verdict;
  if (rc == SQLITE_ROW) {
    auto* t = sqlite3_column_text(st, 0);
    verdict = t ? reinterpret_cast<const char*>(t) : "";
  } else {
    verdict = sqlite3_errmsg(db);
  }
  sqlite3_finalize(st);
  return {rc, verdict};
}

// page_count * page_size: the bytes quick_check would read.
std::int64_t file_bytes(sqlite3* db) {
  std::int64_t v[2] = {0, 0};
  const char* sql[2] = {"PRAGMA page_count", "PRAGMA page_size"};
  for (int i = 0; i < 2; ++i) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, sql[i], -1, &st, nullptr) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
      v[i] = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
  }
  return v[0] * v[1];
}

// Opens and checks the file. nullptr with `corrupt` set: the file is not a
// usable database. Any other failure (permissions, locked by another
// program, a full disk) throws: moving the file aside would not cure it.
// quick_check reads every page (2.5 s for a 780 MB file): it runs here only
// for files up to Store::kSyncCheckBytes; for larger ones `deferred` is set
// and the owner checks later (Store::check_in_background).
std::unique_ptr<Db> open_checked(const std::string& path, std::string& corrupt, bool& deferred) {
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = raw ? sqlite3_errmsg(raw) : "out of memory";
    sqlite3_close_v2(raw);
    throw StoreError("cannot open database " + path + ": " + msg);
  }
  auto db = std::make_unique<Db>(raw);
  sqlite3_busy_timeout(raw, 5000);
  // Until the file is known to be good, closing must not delete its -wal
  // (SQLite removes it on the last close): a corrupt one is moved aside whole.
  int persist = 1;
  sqlite3_file_control(raw, "main", SQLITE_FCNTL_PERSIST_WAL, &persist);
  std::string err;
  // auto_vacuum takes effect only before the first table exists: a new file
  // gives pages freed by retention back to the file system.
  const std::string pragmas = "PRAGMA auto_vacuum=INCREMENTAL; PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
                              "PRAGMA foreign_keys=ON; PRAGMA journal_size_limit=" +
                              std::to_string(kJournalSizeLimit) + ";";
  rc = exec_rc(raw, pragmas.c_str(), err);
  if (rc != SQLITE_OK) {
    if (is_corruption(rc)) {
      corrupt = err;
      return nullptr;
    }
    throw StoreError("database " + path + ": " + err);
  }
  deferred = file_bytes(raw) > Store::kSyncCheckBytes;
  auto [qrc, verdict] = deferred ? std::pair<int, std::string>{SQLITE_ROW, "ok"} : quick_check(raw);
  if (qrc == SQLITE_ROW && verdict == "ok") {
    persist = 0;
    sqlite3_file_control(raw, "main", SQLITE_FCNTL_PERSIST_WAL, &persist);
    return db;
  }
  if (qrc == SQLITE_ROW || is_corruption(qrc)) {
    corrupt = "quick_check: " + verdict;
    return nullptr;
  }
  throw StoreError("database " + path + ": quick_check failed: " + verdict);
}

std::string utc_stamp() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

// Renames PATH (and PATH-wal, PATH-shm when present) to PATH.corrupt-STAMP*;
// returns the new name of PATH.
std::string move_aside(const std::string& path) {
  const std::string to = path + ".corrupt-" + utc_stamp();
  for (const char* suffix : {"", "-wal", "-shm"}) {
    const std::string from = path + suffix;
    std::error_code ec;
    if (!std::filesystem::exists(from, ec)) continue;
    std::filesystem::rename(from, to + suffix, ec);
    if (ec) throw StoreError("database " + path + " is corrupt and cannot be moved aside to " + to + suffix + ": " +
                             ec.message());
  }
  return to;
}

void require_tables(Db& db, const std::string& path, int version) {
  for (const char* table : kTables) {
    auto st = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?");
    st.bind(1, table);
    if (!st.step())
      throw StoreError("database " + path + " says schema version " + std::to_string(version) + " but has no table " +
                       table + "; move the file aside (the cache is disposable) and start again");
  }
}

}  // namespace

void Store::open_on_thread() {
  std::string corrupt;
  bool deferred = false;
  auto db = open_checked(path_, corrupt, deferred);
  const bool replaced = db == nullptr;
  if (replaced) db = fresh_after_corrupt(corrupt);
  install(std::move(db));
  auto st = db_->prepare("SELECT clean_shutdown FROM run_state WHERE id = 1");
  previous_run_clean_ = !replaced && st.step() && st.int64(0) == 1;
  db_->exec(
      "INSERT INTO run_state (id, clean_shutdown) VALUES (1, 0) "
      "ON CONFLICT (id) DO UPDATE SET clean_shutdown = 0");
  check_pending_ = deferred;
}

void Store::check_in_background() {
  if (std::exchange(check_pending_, false)) start_deferred_check();
}

std::unique_ptr<Db> Store::fresh_after_corrupt(const std::string& corrupt) {
  const std::string moved = move_aside(path_);
  log_error("database is corrupt; moved aside and started empty (cached answers are fetched again, quota buckets "
            "start empty)",
            {{"path", path_}, {"moved_to", moved}, {"error", corrupt}});
  std::string again;
  bool deferred = false;
  auto db = open_checked(path_, again, deferred);
  if (!db) throw StoreError("database " + path_ + ": a newly created file is corrupt too: " + again);
  return db;
}

void Store::install(std::unique_ptr<Db> db) {
  db_ = std::move(db);
  auto r = migrate(db_->raw(), embedded_migrations());
  if (!r.ok) throw StoreError("database " + path_ + ": " + r.error);
  schema_version_ = r.schema_version;
  require_tables(*db_, path_, schema_version_);
  if (r.applied > 0)
    log_info("database migrated", {{"path", path_}, {"applied", r.applied}, {"schema_version", r.schema_version}});
}

// The check of a large file, on a read-only connection of its own (WAL lets
// it read while the database thread writes), so start-up does not wait for
// it. Stopped by ~Store (sqlite3_interrupt). A corrupt verdict replaces the
// file on the database thread as a corrupt file at start would be.
void Store::start_deferred_check() {
  checker_ = std::thread([this] {
    // The lowest CPU priority (Linux nice is per thread): the check must not
    // slow the requests served meanwhile. If refused it runs at normal priority.
    static_cast<void>(::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), 19));
    sqlite3* raw = nullptr;
    if (sqlite3_open_v2(path_.c_str(), &raw, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nullptr) != SQLITE_OK) {
      log_warn("cannot open the database to check it", {{"path", path_}, {"error", raw ? sqlite3_errmsg(raw) : "?"}});
      sqlite3_close_v2(raw);
      return;
    }
    {
      std::lock_guard lk(check_mu_);
      if (stopping_) {
        sqlite3_close_v2(raw);
        return;
      }
      check_db_ = raw;
    }
    auto [rc, verdict] = quick_check(raw);
    {
      std::lock_guard lk(check_mu_);
      check_db_ = nullptr;
    }
    sqlite3_close_v2(raw);
    if (rc == SQLITE_ROW && verdict == "ok") {
      log_info("database checked (quick_check ok)", {{"path", path_}});
    } else if (rc == SQLITE_ROW || is_corruption(rc)) {
      boost::asio::post(pool_, [this, why = "quick_check: " + verdict] { replace_corrupt(why); });
    } else if ((rc & 0xff) != SQLITE_INTERRUPT) {
      log_warn("cannot check the database", {{"path", path_}, {"error", verdict}});
    }
  });
}

// On the database thread. Nothing to return to: a failure to create the
// fresh file is logged and ends the process (exit 1), as it would at start.
void Store::replace_corrupt(const std::string& why) {
  try {
    db_.reset();
    install(fresh_after_corrupt(why));
    db_->exec(
        "INSERT INTO run_state (id, clean_shutdown) VALUES (1, 0) "
        "ON CONFLICT (id) DO UPDATE SET clean_shutdown = 0");
  } catch (const std::exception& e) {
    log_error("cannot replace the corrupt database", {{"path", path_}, {"error", e.what()}});
    std::_Exit(1);
  }
}

std::unique_ptr<Store> Store::open(const std::string& path) {
  std::unique_ptr<Store> s(new Store());
  s->path_ = path;
  std::filesystem::path p(path);
  if (p.has_parent_path()) {
    std::error_code ec;
    std::filesystem::create_directories(p.parent_path(), ec);
    if (ec) throw StoreError("cannot create directory " + p.parent_path().string() + ": " + ec.message());
  }
  s->lock_fd_ = take_lock(path);
  std::exception_ptr err;
  boost::asio::post(s->pool_, [&] {
    try {
      s->open_on_thread();
    } catch (...) {
      err = std::current_exception();
    }
  });
  s->flush();
  if (err) std::rethrow_exception(err);
  return s;
}

void Store::mark_clean_shutdown() {
  run_sync([](Db& db) { db.exec("UPDATE run_state SET clean_shutdown = 1 WHERE id = 1"); });
}

Store::~Store() {
  {
    std::lock_guard lk(check_mu_);
    stopping_ = true;
    if (check_db_) sqlite3_interrupt(check_db_);
  }
  if (checker_.joinable()) checker_.join();
  flush();
  pool_.join();
  db_.reset();  // closed after the thread is gone, before the lock is released
  if (lock_fd_ >= 0) ::close(lock_fd_);
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
