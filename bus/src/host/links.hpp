// The host's links to its peers (`--peers`): one long-lived TLS 1.3 stream
// per pair of hosts, each end proving its pinned Ed25519 key. It is where the
// core's writes to `\\PEER\mailslot\...` go (remote_hosts), and it runs each
// link's protocol (host_link) over its stream: heartbeats, reconnects with
// jittered back-off, the resume window.
//
// Single-threaded: the host's io_context thread.
#pragma once

#include "link.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json/array.hpp>

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/core.hpp"
#include "service/log.hpp"
#include "transport/tls/peers.hpp"

namespace slotbus::bus {

struct link_options {
    std::filesystem::path key_dir; ///< host.pem and host.key (`slotbus keygen`)
    std::string listen;            ///< "ADDR:PORT" to accept links on; empty: none
    std::vector<peer_config> peers;
    std::chrono::milliseconds heartbeat{5000}; ///< a ping this often; 3 missed: the stream is dead
    std::chrono::milliseconds resume_window{30'000};
    std::chrono::milliseconds min_backoff{1000}; ///< reconnects wait between these, jittered
    std::chrono::milliseconds max_backoff{30'000};
    std::uint32_t flow_credit = 256 * 1024;
    std::uint64_t window = 8u << 20;
};

class links final : public remote_hosts {
public:
    /// `flush` hands the core's new output to its sessions (the server's).
    links(boost::asio::io_context& io, core& routing, link_options options,
          std::function<void()> flush);
    ~links();

    /// Loads the key, listens, dials. Throws std::runtime_error saying what is wrong.
    void start();
    void stop();
    /// The port it listens on (for `--link-listen ADDR:0`), 0 if none.
    [[nodiscard]] std::uint16_t port() const noexcept { return port_; }
    [[nodiscard]] const std::string& fingerprint() const noexcept { return fingerprint_; }

    // remote_hosts
    std::uint64_t acquire(std::string_view host, const slot_name& name,
                          std::error_code& ec) override;
    void release(std::uint64_t destination) override;
    bool write(std::uint64_t destination, byte_span records, std::uint32_t count,
               write_ticket ticket) override;

    /// A session the core touched is one of a link's flows: pass its results on.
    bool collect(session_id id);
    /// Sends what the links have to say (after the core took frames).
    void flush();
    /// A beacon says `host` accepts links at `address` (IP:PORT): a peer the
    /// peers file gives no address is dialled there, if this side dials.
    /// Only a hint: the key the stream proves decides who it is.
    void hint(const std::string& host, const std::string& address);
    /// `slotbus hosts`: each peer and its link.
    [[nodiscard]] boost::json::array status() const;

private:
    struct stream;
    struct peer;

    void accept();
    void dial(peer& p);
    void schedule_dial(peer& p);
    void attach(peer& p, std::shared_ptr<stream> s);
    void read(peer& p, std::shared_ptr<stream> s);
    void write(peer& p);
    void drop(peer& p, const std::string& why);
    void tick();
    peer* peer_by_fingerprint(const std::string& fingerprint);

    boost::asio::io_context& io_;
    core& core_;
    link_options options_;
    std::function<void()> flush_core_;
    std::unique_ptr<boost::asio::ssl::context> tls_;
    std::string fingerprint_;
    boost::asio::ip::tcp::acceptor acceptor_;
    std::uint16_t port_ = 0;
    boost::asio::steady_timer timer_;
    boost::asio::steady_timer timer_for_accept_;
    /// Output queued for one peer past which it is no longer read.
    static constexpr std::size_t max_output = 16u << 20;
    std::vector<std::unique_ptr<peer>> peers_;
    std::minstd_rand jitter_;
    int unauthenticated_ = 0;                          // handshakes under way
    std::unordered_map<std::string, int> handshaking_; // of them, by address
    rate_limited_log refusals_{std::chrono::seconds(5)};
    bool stopped_ = false;
};

} // namespace slotbus::bus
