// Clients over the network: a TCP listener for `tcp:ADDR:PORT` (loopback
// only: a client there is the uid the kernel says owns its socket) and for
// `tls:ADDR:PORT` (TLS 1.3, each client's key pinned in the clients file:
// a client there is that file's name for it). Either way the host's session
// runs over the accepted stream exactly as over the Unix socket.
#pragma once

#include "slotbus/detail/byte_stream.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "core/core.hpp"
#include "service/log.hpp"
#include "transport/tls/clients.hpp"

namespace slotbus::bus {

struct network_listener_options {
    std::string address;           ///< "tcp:IP:PORT" (a loopback IP) or "tls:IP:PORT"; port 0: any
    std::filesystem::path key_dir; ///< tls: this host's key (`slotbus keygen`)
    std::filesystem::path clients_file; ///< tls: the clients and their pinned keys
    /// A TLS client finishes its handshake within this long, or is dropped.
    std::chrono::milliseconds handshake_timeout{3000};
    /// TLS handshakes under way at once, in all and from one address.
    std::size_t max_handshakes = 64, max_handshakes_per_address = 4;
};

/// Single-threaded: lives on the host's io_context thread.
class network_listener {
public:
    /// A connection, ready for a session, who it is, and (TLS) the fingerprint it proved.
    using accept_handler = std::function<void(detail::byte_stream, peer_info, std::string key)>;

    network_listener(boost::asio::io_context& io, network_listener_options options);
    ~network_listener();

    /// Reads the key and clients file (tls:) and binds. False with `why`:
    /// a malformed address, a plain tcp: address off loopback, a bad file,
    /// the port taken.
    bool open(std::string& why);
    /// Accepts until close(); accept errors pause it 100 ms at a time.
    void start(accept_handler on_accept);
    /// Stops accepting; handshakes under way are dropped.
    void close();
    /// Reads the clients file again (SIGHUP): new handshakes follow it. A bad
    /// file keeps the clients in force (false, with `why`).
    bool reload_clients(std::string& why);
    /// Whether this key is still in the clients file, as this client's.
    [[nodiscard]] bool knows_client(const std::string& key, const std::string& name) const;

    /// "tcp:127.0.0.1:7400": the address bound (the port chosen if 0 was asked).
    [[nodiscard]] std::string where() const;
    [[nodiscard]] bool tls() const noexcept { return context_ != nullptr; }

private:
    struct handshake;
    void accept();
    void admit_tcp(boost::asio::ip::tcp::socket socket);
    void start_handshake(boost::asio::ip::tcp::socket socket);
    void end_handshake(const std::shared_ptr<handshake>& h, const boost::system::error_code& ec);

    network_listener_options options_;
    std::string scheme_; // "tcp" or "tls"
    boost::asio::ip::tcp::acceptor acceptor_;
    boost::asio::steady_timer pause_;
    accept_handler on_accept_;
    // Shared with the TLS context's verify callback, which may outlive this.
    std::shared_ptr<client_keys> clients_ = std::make_shared<client_keys>();
    std::shared_ptr<boost::asio::ssl::context> context_;
    std::map<std::uint64_t, std::shared_ptr<handshake>> handshakes_;
    std::map<boost::asio::ip::address, std::size_t> handshakes_of_; // by handshake_source()
    std::uint64_t next_handshake_ = 0;
    rate_limited_log failures_{std::chrono::seconds(5)};
    bool closed_ = false;
};

} // namespace slotbus::bus
