// Not API: the byte stream a client connection runs over, whichever
// transport the address named. The driver reads, writes and closes through
// it and knows the concrete socket only to connect it; the protocol state
// machine never sees it. A TLS stream (asio::ssl::stream over a TCP socket)
// is one more alternative here.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/write.hpp>
#include <boost/system/error_code.hpp>

#include <utility>
#include <variant>

namespace slotbus::detail {

/// One thread: the connection's, like the driver that holds it.
class client_stream {
public:
    using unix_socket = boost::asio::local::stream_protocol::socket;
    using tcp_socket = boost::asio::ip::tcp::socket;

    explicit client_stream(const boost::asio::any_io_executor& executor)
        : socket_(std::in_place_type<unix_socket>, executor)
    {
    }

    /// A fresh, closed socket of this kind (the old one is closed and gone).
    template <class Socket> Socket& reset(const boost::asio::any_io_executor& executor)
    {
        return socket_.template emplace<Socket>(executor);
    }
    /// The socket, if it is of this kind.
    template <class Socket> [[nodiscard]] Socket* get() noexcept
    {
        return std::get_if<Socket>(&socket_);
    }

    [[nodiscard]] bool is_open() const noexcept
    {
        return std::visit([](const auto& s) { return s.is_open(); }, socket_);
    }
    void close() noexcept
    {
        boost::system::error_code ignored;
        std::visit([&](auto& s) { s.close(ignored); }, socket_);
    }

    template <class MutableBuffer, class Handler>
    void async_read_some(const MutableBuffer& buffer, Handler&& handler)
    {
        std::visit([&](auto& s) { s.async_read_some(buffer, std::forward<Handler>(handler)); },
                   socket_);
    }
    /// Writes all of `buffer`; one such write at a time.
    template <class ConstBuffer, class Handler>
    void async_write(const ConstBuffer& buffer, Handler&& handler)
    {
        std::visit(
            [&](auto& s) { boost::asio::async_write(s, buffer, std::forward<Handler>(handler)); },
            socket_);
    }

private:
    std::variant<unix_socket, tcp_socket> socket_;
};

} // namespace slotbus::detail
