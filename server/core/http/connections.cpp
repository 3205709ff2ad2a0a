// Connection accounting and idle eviction across I/O threads; see connections.hpp.
#include "core/http/connections.hpp"

#include <boost/asio/post.hpp>

namespace recgate::http {

std::shared_ptr<ConnectionSlot> ConnectionTable::admit(boost::asio::any_io_executor ex) {
  open_->fetch_add(1);
  return std::make_shared<ConnectionSlot>(std::move(ex));
}

void ConnectionTable::release(ConnectionSlot& slot) {
  std::function<void()> wake;
  {
    const std::lock_guard lock(mu_);
    if (slot.idle_) idle_.erase(slot.idle_pos_);
    slot.idle_ = false;
    open_->fetch_sub(1);
    if (waiting_ && wake_) {
      waiting_ = false;
      wake = wake_;
    }
  }
  if (wake) wake();
}

void ConnectionTable::set_idle(ConnectionSlot& slot, bool idle) {
  const std::lock_guard lock(mu_);
  if (slot.idle_ == idle) return;
  if (idle) slot.idle_pos_ = idle_.insert(idle_.end(), &slot);
  else idle_.erase(slot.idle_pos_);
  slot.idle_ = idle;
}

bool ConnectionTable::evict_oldest_idle() {
  std::shared_ptr<ConnectionSlot> victim;
  {
    const std::lock_guard lock(mu_);
    if (idle_.empty()) return false;
    ConnectionSlot* oldest = idle_.front();
    idle_.pop_front();
    oldest->idle_ = false;
    victim = oldest->shared_from_this();  // alive: release() takes it out of the list first
  }
  boost::asio::post(victim->executor, [self = shared_from_this(), victim] {
    if (victim->socket && victim->in_idle_read) {
      boost::system::error_code ignored;
      victim->socket->close(ignored);  // the session's read ends, and with it the session
    } else {
      self->notify();  // it turned busy meanwhile: let the acceptor look again
    }
  });
  return true;
}

void ConnectionTable::set_wake(std::function<void()> wake) {
  const std::lock_guard lock(mu_);
  wake_ = std::move(wake);
}

bool ConnectionTable::wait_begin() {
  const std::lock_guard lock(mu_);
  waiting_ = full();
  return waiting_;
}

void ConnectionTable::notify() {
  std::function<void()> wake;
  {
    const std::lock_guard lock(mu_);
    if (!waiting_ || !wake_) return;
    waiting_ = false;
    wake = wake_;
  }
  wake();
}

}  // namespace recgate::http
