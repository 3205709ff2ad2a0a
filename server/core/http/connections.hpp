// The server's client connections across its I/O threads: the count held
// against max_connections, and the idle ones (waiting for the first byte of
// a request) in the order they became idle, so the acceptor can close the
// one idle longest to admit a new client, as nginx does with its reusable
// connections. The acceptor waits here, without polling, when none is idle.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>

namespace recgate::http {

class ConnectionTable;

// One open connection. Created by the acceptor, owned by its session.
struct ConnectionSlot : std::enable_shared_from_this<ConnectionSlot> {
  explicit ConnectionSlot(boost::asio::any_io_executor ex) : executor(std::move(ex)) {}
  boost::asio::any_io_executor executor;  // the session's I/O thread
  // Touched only on `executor`: the session's socket while it runs, and
  // whether the session is suspended in its idle read (an eviction that
  // arrives after the read completed leaves the connection alone).
  boost::asio::ip::tcp::socket* socket = nullptr;
  bool in_idle_read = false;

 private:
  friend class ConnectionTable;
  // The idle list's links, guarded by the table's mutex: intrusive, so
  // turning idle or busy (twice per request) allocates nothing.
  bool idle_ = false;
  ConnectionSlot* idle_prev_ = nullptr;
  ConnectionSlot* idle_next_ = nullptr;
};

// Held by shared_ptr: sessions and pending evictions may outlive the server.
class ConnectionTable : public std::enable_shared_from_this<ConnectionTable> {
 public:
  // max 0: no limit.
  explicit ConnectionTable(std::size_t max) : max_(max) {}

  // Counts a new connection; the session calls release() when it ends.
  std::shared_ptr<ConnectionSlot> admit(boost::asio::any_io_executor ex);
  void release(ConnectionSlot& slot);
  // Idle: to the back of the idle list; busy: out of it.
  void set_idle(ConnectionSlot& slot, bool idle);

  bool full() const { return max_ != 0 && open_->load() >= static_cast<std::int64_t>(max_); }
  std::size_t max() const { return max_; }
  // Closes the connection idle longest, on its own thread; false when none is idle.
  bool evict_oldest_idle();

  // The acceptor's wait for a free slot: wait_begin() returns false when a
  // slot is already free; otherwise `wake` is called (from any thread) once
  // a connection closes. set_wake(nullptr) before the waker goes away.
  void set_wake(std::function<void()> wake);
  bool wait_begin();
  // Wakes the acceptor if it waits (an eviction that found its connection busy).
  void notify();

  // Connections open now (a gauge that may outlive the table).
  std::shared_ptr<const std::atomic<std::int64_t>> open() const { return open_; }

 private:
  const std::size_t max_;
  std::shared_ptr<std::atomic<std::int64_t>> open_ = std::make_shared<std::atomic<std::int64_t>>(0);
  std::mutex mu_;
  void unlink(ConnectionSlot& slot);
  void link_back(ConnectionSlot& slot);
  ConnectionSlot* idle_front_ = nullptr;  // the idle list, oldest first
  ConnectionSlot* idle_back_ = nullptr;
  std::function<void()> wake_;
  bool waiting_ = false;
};

}  // namespace recgate::http
