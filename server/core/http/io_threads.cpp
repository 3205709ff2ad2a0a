// The I/O threads (io_threads.hpp): one io_context each, kept alive by a
// work guard until stop().
#include "core/http/io_threads.hpp"

#include <algorithm>
#include <thread>

namespace recgate::http {

namespace net = boost::asio;

IoThreads::IoThreads(int threads) {
  for (int i = 1; i < std::max(1, threads); ++i) {
    workers_.push_back(std::make_unique<net::io_context>(1));
    guards_.push_back(net::make_work_guard(*workers_.back()));
  }
}

net::io_context& IoThreads::next() {
  const std::size_t i = next_.fetch_add(1, std::memory_order_relaxed) % size();
  return i == 0 ? main_ : *workers_[i - 1];
}

void IoThreads::run() {
  std::vector<std::thread> extra;
  for (auto& w : workers_) extra.emplace_back([ioc = w.get()] { ioc->run(); });
  main_.run();
  for (auto& t : extra) t.join();
}

void IoThreads::stop() {
  for (auto& g : guards_) g.reset();
  main_.stop();
  for (auto& w : workers_) w->stop();
}

}  // namespace recgate::http
