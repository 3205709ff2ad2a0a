// Connection accounting and idle eviction across I/O threads; see connections.hpp.
#include "core/http/connections.hpp"

#include <boost/asio/post.hpp>

namespace recgate::http {

std::shared_ptr<ConnectionSlot> ConnectionTable::admit(boost::asio::any_io_executor ex) {
  open_->fetch_add(1);
  return std::make_shared<ConnectionSlot>(std::move(ex));
}

void ConnectionTable::unlink(ConnectionSlot& slot) {
  (slot.idle_prev_ ? slot.idle_prev_->idle_next_ : idle_front_) = slot.idle_next_;
  (slot.idle_next_ ? slot.idle_next_->idle_prev_ : idle_back_) = slot.idle_prev_;
  slot.idle_prev_ = slot.idle_next_ = nullptr;
  slot.idle_ = false;
}

void ConnectionTable::link_back(ConnectionSlot& slot) {
  slot.idle_prev_ = idle_back_;
  slot.idle_next_ = nullptr;
  (idle_back_ ? idle_back_->idle_next_ : idle_front_) = &slot;
  idle_back_ = &slot;
  slot.idle_ = true;
}

void ConnectionTable::release(ConnectionSlot& slot) {
  std::function<void()> wake;
  {
    const std::lock_guard lock(mu_);
    if (slot.idle_) unlink(slot);
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
  if (idle) link_back(slot);
  else unlink(slot);
}

bool ConnectionTable::evict_oldest_idle() {
  std::shared_ptr<ConnectionSlot> victim;
  {
    const std::lock_guard lock(mu_);
    if (!idle_front_) return false;
    ConnectionSlot* oldest = idle_front_;
    unlink(*oldest);
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
