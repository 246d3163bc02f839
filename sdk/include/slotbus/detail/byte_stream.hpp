// Not API: the byte stream a connection runs over, whichever transport it
// came by — a Unix socket, TCP, or TLS 1.3 over TCP. The SDK's driver and the
// host's sessions read, write and close through it and know the concrete
// stream only to connect or accept it; neither protocol state machine sees
// it. Included by .cpp files only: a plugin's own code needs no OpenSSL
// headers.
#pragma once

#include "slotbus/export.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/write.hpp>
#include <boost/system/error_code.hpp>

#include <memory>
#include <type_traits>
#include <utility>
#include <variant>

namespace slotbus::detail {

/// One thread: the one its owner runs on.
class SLOTBUS_API byte_stream {
public:
    using unix_socket = boost::asio::local::stream_protocol::socket;
    using tcp_socket = boost::asio::ip::tcp::socket;
    using tls_stream = boost::asio::ssl::stream<tcp_socket>;

private:
    /// The socket under a stream (itself, but for TLS).
    template <class S> static auto& lowest(S& s) noexcept
    {
        if constexpr (std::is_same_v<std::remove_const_t<S>, tls_stream>)
            return s.next_layer();
        else
            return s;
    }

public:
    explicit byte_stream(const boost::asio::any_io_executor& executor)
        : stream_(std::in_place_type<unix_socket>, executor)
    {
    }
    /// Takes over an accepted (for TLS: handshaken) stream; a TLS stream's
    /// context comes with it, since the stream uses it until it is gone.
    explicit byte_stream(unix_socket s) : stream_(std::move(s)) {}
    explicit byte_stream(tcp_socket s) : stream_(std::move(s)) {}
    byte_stream(tls_stream s, std::shared_ptr<boost::asio::ssl::context> context)
        : context_(std::move(context)), stream_(std::move(s))
    {
    }

    /// A fresh, closed socket of this kind (the old one is closed and gone).
    template <class Socket> Socket& reset(const boost::asio::any_io_executor& executor)
    {
        return stream_.template emplace<Socket>(executor);
    }
    /// A fresh TLS stream over a closed TCP socket, on `context`.
    tls_stream& reset_tls(const boost::asio::any_io_executor& executor,
                          std::shared_ptr<boost::asio::ssl::context> context)
    {
        auto& s = stream_.template emplace<tls_stream>(executor, *context);
        context_ = std::move(context);
        return s;
    }
    /// The stream, if it is of this kind.
    template <class Stream> [[nodiscard]] Stream* get() noexcept
    {
        return std::get_if<Stream>(&stream_);
    }

    [[nodiscard]] bool is_open() const noexcept
    {
        return std::visit([](const auto& s) { return lowest(s).is_open(); }, stream_);
    }
    /// Closes the socket under the stream (a TLS stream sends no close_notify:
    /// the protocol's own frames say why a connection ends).
    void close() noexcept
    {
        boost::system::error_code ignored;
        std::visit([&](auto& s) { lowest(s).close(ignored); }, stream_);
    }
    [[nodiscard]] boost::asio::any_io_executor get_executor() noexcept
    {
        return std::visit([](auto& s) -> boost::asio::any_io_executor { return s.get_executor(); },
                          stream_);
    }
    /// The socket's descriptor, for options and peer credentials.
    [[nodiscard]] int native_handle() noexcept
    {
        return std::visit([](auto& s) { return static_cast<int>(lowest(s).native_handle()); },
                          stream_);
    }

    /// Writes what goes at once, never waiting: a last word before close().
    template <class ConstBuffer> void write_now(const ConstBuffer& buffer) noexcept
    {
        boost::system::error_code ignored;
        std::visit(
            [&](auto& s) {
                lowest(s).non_blocking(true, ignored);
                (void)s.write_some(buffer, ignored);
            },
            stream_);
    }

    template <class MutableBuffer, class Handler>
    void async_read_some(const MutableBuffer& buffer, Handler&& handler)
    {
        std::visit([&](auto& s) { s.async_read_some(buffer, std::forward<Handler>(handler)); },
                   stream_);
    }
    /// One write at a time, of some or all of `buffer`.
    template <class ConstBuffer, class Handler>
    void async_write_some(const ConstBuffer& buffer, Handler&& handler)
    {
        std::visit([&](auto& s) { s.async_write_some(buffer, std::forward<Handler>(handler)); },
                   stream_);
    }
    /// Waits until the socket under the stream can be written, or read (for
    /// sendmsg and recvmsg, which carry fds: Asio 1.81 has no ancillary data).
    template <class Handler> void async_wait_writable(Handler&& handler)
    {
        std::visit(
            [&](auto& s) {
                lowest(s).async_wait(boost::asio::socket_base::wait_write,
                                     std::forward<Handler>(handler));
            },
            stream_);
    }
    template <class Handler> void async_wait_readable(Handler&& handler)
    {
        std::visit(
            [&](auto& s) {
                lowest(s).async_wait(boost::asio::socket_base::wait_read,
                                     std::forward<Handler>(handler));
            },
            stream_);
    }
    /// Writes all of `buffer`; one such write at a time.
    template <class ConstBuffer, class Handler>
    void async_write(const ConstBuffer& buffer, Handler&& handler)
    {
        std::visit(
            [&](auto& s) { boost::asio::async_write(s, buffer, std::forward<Handler>(handler)); },
            stream_);
    }

private:
    std::shared_ptr<boost::asio::ssl::context> context_; // outlives the stream below
    std::variant<unix_socket, tcp_socket, tls_stream> stream_;
};

} // namespace slotbus::detail
