// Who a loopback TCP client is: the kernel keeps, for every socket, the uid
// that created it, and sock_diag (the netlink interface `ss -e` reads) gives
// it for the client's end of a connection this host accepted. So a client
// over loopback TCP is known by its uid, as one on the Unix socket is.
#pragma once

#include <boost/asio/ip/tcp.hpp>

#include <cstdint>
#include <optional>

namespace slotbus::bus {

/// The uid that owns the socket at `client` connected to `local` on this
/// machine (in this network namespace); nullopt when the kernel has none
/// such (gone already, or not local).
std::optional<std::uint32_t> socket_owner_uid(const boost::asio::ip::tcp::endpoint& client,
                                              const boost::asio::ip::tcp::endpoint& local);

} // namespace slotbus::bus
