// Acts out a wire-level fault (wire.hpp) on the sandbox's raw connection: the
// prefix, then the lazy part block by block (never more than one block in
// memory), a reset, or a wait for the peer to close. Asio I/O only.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include "sandbox/wire.hpp"

namespace recgate::sandbox {

// Never throws for I/O: a write the peer refuses ends the act (peer_closed).
boost::asio::awaitable<WireReport> send_wire_fault(boost::beast::tcp_stream& stream, WirePlan plan);

}  // namespace recgate::sandbox
