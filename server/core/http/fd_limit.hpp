// The process's file descriptor budget: raise the soft RLIMIT_NOFILE to the
// hard limit at start-up (nginx's worker_rlimit_nofile), and derive how many
// client connections fit once upstream sockets and SQLite have their share.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace recgate::http {

struct FdLimit {
  std::uint64_t soft_before = 0;  // the soft limit recgate was started with
  std::uint64_t soft = 0;         // the soft limit now
  std::uint64_t hard = 0;
  std::string error;              // why raising failed, empty when it did not
};

// Raises the soft limit to the hard one (to the kernel's nr_open when the
// hard limit is unlimited) and reports both.
FdLimit raise_fd_limit();

// Descriptors kept out of the client connection budget: standard streams,
// the listener, epoll and wake-up fds of each I/O thread, SQLite's database,
// journal and WAL files (a fixed 64), and the upstream pools (16 origins ×
// the per-origin pool size).
std::size_t fd_reserve(int max_connections_per_origin);

// Client connections that fit in `nofile` descriptors with `reserve` kept
// back; when the limit is so low that the reserve would take most of it,
// half of it, so clients still get served.
std::size_t derive_max_connections(std::uint64_t nofile, std::size_t reserve);

}  // namespace recgate::http
