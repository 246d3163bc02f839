// The host's domain broadcasts (`--broadcast`): one UDP socket on the
// multicast group, where the core's writes to `\\DOMAIN\mailslot\x` and
// `\\*\mailslot\x` go out as datagrams (broadcaster) and where the domain's
// datagrams come in, judged by domain_broadcast and handed to the core as
// records of the domain's session. It also sends this host's beacons, to the
// group and to the static seeds.
//
// Single-threaded: the host's io_context thread.
#pragma once

#include "broadcast.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json/object.hpp>

#include <chrono>
#include <filesystem>
#include <functional>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/core.hpp"
#include "service/log.hpp"

namespace slotbus::bus {

struct broadcast_options {
    /// The multicast group and port: 239.255.0.0/16 (RFC 2365's local
    /// scope) or an IPv6 group such as [ff12::5342]:47077 (link scope).
    std::string group = "239.255.83.66:47077";
    /// Interfaces (by name) to join the group on and send from, each in
    /// turn; none: the one the kernel routes the group to.
    std::vector<std::string> interfaces;
    int ttl = 1;                    ///< hops: 1 keeps broadcasts on the link, as a mailslot's were
    std::filesystem::path key_file; ///< the domain key; empty: datagrams are not signed
    double rate = 1000;             ///< records per second this host sends, on average
    double burst = 100;
    /// Hosts to send beacons to by unicast (IP:PORT): networks without multicast.
    std::vector<std::string> seeds;
    std::chrono::milliseconds interval{5000}; ///< between beacons (jittered by 20 %)
};

class broadcasts final : public broadcaster {
public:
    /// `flush` hands the core's new output to its sessions (the server's).
    broadcasts(boost::asio::io_context& io, core& routing, broadcast_options options,
               broadcast_settings settings, std::function<void()> flush);
    ~broadcasts();

    /// Opens the socket, joins the group, sends a query and a first beacon.
    /// Throws std::runtime_error saying what is wrong.
    void start();
    /// Says bye to the group.
    void stop();
    /// Where the socket is bound and what it joined, for the ready line.
    [[nodiscard]] std::string where() const;

    // broadcaster
    bool knows_domain(std::string_view domain) const override;
    std::uint32_t reserve(session_id id, std::uint32_t count) override;
    void send(std::string_view domain, std::string_view path, const std::string& key,
              byte_span record) override;

    /// A session the core touched is the domain's: its output (revoked
    /// notices) has no one to go to.
    bool collect(session_id id);
    /// `slotbus hosts`: the hosts heard from, this host's counters.
    [[nodiscard]] boost::json::object status() const;
    /// Called for each beacon that names a link port: a peers-file entry
    /// with no address may be dialled there (its key still decides).
    std::function<void(const std::string& host, const std::string& address)> on_beacon;

private:
    using udp = boost::asio::ip::udp;
    /// Joins the group on each interface (`again`: leaves it first, so the
    /// join is reported anew). Throws std::runtime_error.
    void join(bool again);
    void receive();
    void take(byte_span bytes, const udp::endpoint& from, bool by_unicast);
    void forget(const std::string& host_key);
    void transmit(const byte_buffer& datagram, bool to_members);
    void beacon_later(std::chrono::milliseconds after);
    void tick();

    core& core_;
    broadcast_options options_;
    domain_broadcast state_;
    std::function<void()> flush_core_;
    udp::socket socket_;
    udp::endpoint group_;
    std::vector<unsigned> interfaces_; // by index; empty: the kernel's choice
    std::vector<udp::endpoint> seeds_;
    boost::asio::steady_timer beacon_timer_, tick_timer_, rate_timer_;
    std::chrono::steady_clock::time_point joined_{};
    bool beacon_soon_ = false; // a query asked for one: it is due within 500 ms
    std::minstd_rand jitter_;
    session_id session_ = 0; // the domain's, in the core
    // The core's writer handles for (sending host, name): bounded.
    std::unordered_map<std::string, std::uint32_t> handles_;
    std::uint32_t next_handle_ = 1;
    std::vector<session_id> held_; // writers waiting for the rate
    std::uint64_t denied_ = 0, refused_ = 0, send_failures_ = 0;
    rate_limited_log notices_{std::chrono::seconds(5)}, strangers_{std::chrono::seconds(5)},
        unsigned_log_{std::chrono::seconds(5)}, wrong_key_log_{std::chrono::seconds(5)},
        impostors_{std::chrono::seconds(5)};
    bool stopped_ = false;
};

} // namespace slotbus::bus
