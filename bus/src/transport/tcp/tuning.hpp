// How every TCP stream of the host is set up, links and clients alike, and
// whom an unauthenticated one is counted against.
#pragma once

#include <boost/asio/ip/tcp.hpp>

#include <algorithm>
#include <netinet/tcp.h>

namespace slotbus::bus {

/// Frames are small and pipelined: no Nagle. A peer gone without a word is
/// found by keepalive, and one that stopped taking bytes by 15 s of
/// unacknowledged data (heartbeats notice a silent one).
inline void tune_for_frames(boost::asio::ip::tcp::socket& socket)
{
    boost::system::error_code ignored;
    socket.set_option(boost::asio::ip::tcp::no_delay(true), ignored);
    socket.set_option(boost::asio::socket_base::keep_alive(true), ignored);
    const unsigned timeout_ms = 15'000;
    ::setsockopt(socket.native_handle(), IPPROTO_TCP, TCP_USER_TIMEOUT, &timeout_ms,
                 sizeof timeout_ms);
}

/// Whom a handshake under way is counted against: its IPv4 address, or its
/// IPv6 /64 (one machine may hold a whole /64, so counting single IPv6
/// addresses would bound nothing).
inline boost::asio::ip::address handshake_source(const boost::asio::ip::address& from)
{
    if (!from.is_v6() || from.to_v6().is_v4_mapped())
        return from;
    auto bytes = from.to_v6().to_bytes();
    std::fill(bytes.begin() + 8, bytes.end(), 0);
    return boost::asio::ip::address_v6(bytes);
}

} // namespace slotbus::bus
