// RLIMIT_NOFILE at start-up and the connection budget derived from it; see fd_limit.hpp.
#include "core/http/fd_limit.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>

namespace recgate::http {
namespace {

// The kernel's ceiling on any RLIMIT_NOFILE (a soft limit of "unlimited" is refused).
std::uint64_t kernel_nr_open() {
  std::ifstream f("/proc/sys/fs/nr_open");
  std::uint64_t n = 0;
  if (f >> n && n > 0) return n;
  return 1024 * 1024;  // Linux's default
}

}  // namespace

FdLimit raise_fd_limit() {
  FdLimit out;
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) {
    out.error = std::strerror(errno);
    return out;
  }
  out.soft_before = out.soft = rl.rlim_cur;
  out.hard = rl.rlim_max;
  const std::uint64_t target = rl.rlim_max == RLIM_INFINITY ? kernel_nr_open() : rl.rlim_max;
  if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= target) return out;
  rlimit raised{static_cast<rlim_t>(target), rl.rlim_max};
  if (::setrlimit(RLIMIT_NOFILE, &raised) != 0) {
    out.error = std::strerror(errno);
    return out;
  }
  out.soft = target;
  return out;
}

std::size_t fd_reserve(int max_connections_per_origin) {
  return 64 + 16 * static_cast<std::size_t>(std::max(1, max_connections_per_origin));
}

std::size_t derive_max_connections(std::uint64_t nofile, std::size_t reserve) {
  if (nofile > 2 * static_cast<std::uint64_t>(reserve)) return static_cast<std::size_t>(nofile - reserve);
  return static_cast<std::size_t>(std::max<std::uint64_t>(1, nofile / 2));
}

}  // namespace recgate::http
