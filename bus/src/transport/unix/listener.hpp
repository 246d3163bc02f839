// The Unix-socket transport: the host's socket file, made safely, and the
// connections accepted on it, each with what the kernel says of its peer.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>

#include <functional>
#include <optional>
#include <string>
#include <system_error>

#include "core/core.hpp"
#include "service/log.hpp"

namespace slotbus::bus {

using unix_socket = boost::asio::local::stream_protocol::socket;

struct unix_listener_options {
    std::string path;
    unsigned mode = 0600;          ///< 0600, or shared on purpose: 0660, 0606, 0666
    std::optional<unsigned> group; ///< the group the socket is shared with
};

/// Single-threaded: lives on the host's io_context thread.
class unix_listener {
public:
    /// A connection and what the kernel said of its peer when it connected.
    using accept_handler = std::function<void(unix_socket, peer_info)>;

    unix_listener(boost::asio::io_context& io, unix_listener_options options);

    /// Makes the socket: its directory the host's own (shared for search as
    /// far as `mode` shares the socket), a dead host's socket replaced, the
    /// socket created 0600 and only then given its group and mode. Fails
    /// with error::already_exists when a live host answers there.
    void open(std::error_code& ec);
    /// Accepts until close(); out of descriptors it pauses 100 ms at a time
    /// (the connections wait in the backlog) rather than spin.
    void start(accept_handler on_accept);
    /// Stops accepting and removes the socket file.
    void close();

private:
    void accept();

    boost::asio::io_context& io_;
    unix_listener_options options_;
    boost::asio::local::stream_protocol::acceptor acceptor_;
    boost::asio::steady_timer pause_;
    accept_handler on_accept_;
    rate_limited_log failures_{std::chrono::seconds(5)};
    bool closed_ = false;
};

} // namespace slotbus::bus
