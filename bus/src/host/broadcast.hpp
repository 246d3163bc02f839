// Domain broadcasts without I/O: what this host sends (numbered records, its
// beacons) and what it makes of what it receives — duplicates and late
// datagrams dropped per sending host, losses counted and told per name,
// hosts known from their datagrams for a lease. Bytes and times in, verdicts
// out; the driver (broadcasts) owns the sockets and hands records to the core.
//
// Single-threaded: the host's io_context thread.
#pragma once

#include "slotbus/protocol.hpp"

#include <boost/asio/ip/udp.hpp>
#include <boost/json/object.hpp>

#include <bitset>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "transport/udp/datagram.hpp"

namespace slotbus::bus {

struct broadcast_settings {
    std::string host;            ///< this host's name, as it spells it
    std::string domain;          ///< its domain (`\\*\`), case-folded
    std::uint64_t epoch = 0;     ///< this boot: its start time in ns (a restart is later)
    std::uint16_t link_port = 0; ///< announced in beacons: where its links are accepted
    std::string fingerprint;     ///< announced: its link key's (a hint; a link checks it)
    std::chrono::milliseconds interval{5000}; ///< between beacons; a host's lease is three
    double rate = 1000;                       ///< records sent per second, on average
    double burst = 100;                       ///< sent at once after a quiet spell
    std::shared_ptr<const domain_key> key;    ///< sign and require signatures; null: neither
    std::size_t max_hosts = 256; ///< senders remembered at once; more are dropped, counted
    /// Names a sender's counters are kept for (on either side); past it they start again.
    std::size_t max_names = 4096;
    /// Names kept for all senders together (receivers' side): past it, the
    /// sender with the most starts again.
    std::size_t max_names_in_all = 65536;
    std::size_t max_unicast_members = 64; ///< hosts sent records by unicast, at most
};

/// What reached this host and what it did with it, since it started.
struct broadcast_counters {
    std::uint64_t sent = 0;           ///< records sent
    std::uint64_t received = 0;       ///< records of this host's domain taken, once each
    std::uint64_t duplicates = 0;     ///< copies of a record already taken
    std::uint64_t late = 0;           ///< records older than one already taken: dropped
    std::uint64_t lost = 0;           ///< records a sender numbered that never came
    std::uint64_t stale = 0;          ///< datagrams of a sender's earlier boot
    std::uint64_t other_domain = 0;   ///< records for another domain: not this host's
    std::uint64_t malformed = 0;      ///< not a datagram, or lengths or names that lie
    std::uint64_t unsigned_ = 0;      ///< with a domain key: carried no signature
    std::uint64_t bad_signature = 0;  ///< with a domain key: signed with another
    std::uint64_t own_name = 0;       ///< another host sending as this host's name
    std::uint64_t too_many_hosts = 0; ///< from a sender past max_hosts
    std::uint64_t replayed = 0;       ///< beacons, queries and byes not newer than the last
};

class domain_broadcast {
public:
    using clock = std::chrono::steady_clock;
    using endpoint = boost::asio::ip::udp::endpoint;

    /// A host that sent datagrams (a beacon names it; its word is a hint only).
    struct known_host {
        std::string name;   ///< as it spells it
        std::string domain; ///< from its beacon; empty until one came
        std::uint64_t epoch = 0;
        std::uint64_t highest = 0;   ///< the highest record number taken (0: none yet)
        std::uint32_t control = 0;   ///< the number of its last beacon, query or bye
        std::bitset<1024> seen;      ///< bit i: record highest - i was taken
        endpoint address;            ///< where its last datagram came from
        std::uint16_t link_port = 0; ///< from its beacon
        std::string fingerprint;     ///< claimed in its beacon
        std::chrono::milliseconds lease{0};
        clock::time_point expires, multicast_until{};
        /// Its beacons came by unicast and none by multicast lately: it is
        /// sent records by unicast too (a seed, a network without multicast).
        bool by_unicast = false;
        std::uint64_t records = 0, duplicates = 0, late = 0, lost = 0, stale = 0;
        std::unordered_map<std::string, std::uint32_t> names; // last name_seq per name key
    };

    /// What a datagram was.
    struct taken {
        enum class what {
            nothing, ///< dropped (counted) or nothing for the driver to do
            record,  ///< a record for this host's domain: deliver it
            hello,   ///< a beacon (its host's entry is up to date)
            query,   ///< a host asks for beacons: send one soon
            gone,    ///< the host said bye: forget what is kept for it
        } kind = what::nothing;
        const known_host* from = nullptr;
        std::string host_key; ///< gone: the host's name, case-folded
        std::string_view path;
        byte_span payload;
        std::uint32_t missed = 0; ///< records to this name from this sender that never came
        bool restarted = false;   ///< a new boot of a known sender: forget what is kept for it
    };

    explicit domain_broadcast(broadcast_settings settings);

    [[nodiscard]] const broadcast_settings& settings() const noexcept { return settings_; }
    [[nodiscard]] const broadcast_counters& counters() const noexcept { return counters_; }

    // ---- sending

    /// How many of `count` records may go now, under the rate: at most the
    /// burst, so one large frame cannot flood the LAN. 0: wait for ready_at().
    std::uint32_t reserve(std::uint32_t count, clock::time_point now);
    [[nodiscard]] clock::time_point ready_at() const noexcept;
    /// A record datagram to `domain` (folded) for the slots of `path` (the
    /// slot name's path; `key` its case-folded form), numbered.
    byte_buffer record(std::string_view domain, std::string_view path, const std::string& key,
                       byte_span payload);
    /// Beacons, queries and byes are numbered apart from records (in
    /// name_seq), so a copy replayed later is told from a new one.
    [[nodiscard]] byte_buffer hello();
    [[nodiscard]] byte_buffer query();
    [[nodiscard]] byte_buffer bye();

    // ---- receiving

    /// A seed's address (--broadcast-seed). Records go by unicast only to a
    /// seed or, with a domain key, to a host whose signed beacon came by
    /// unicast: never to an address a datagram merely comes from, which
    /// would make this host a reflector.
    void add_seed(const boost::asio::ip::address& address) { seeds_.push_back(address); }
    /// Decodes and judges one datagram from `from` (`by_unicast`: it came to
    /// this host's own address, not to the group).
    taken take(byte_span bytes, const endpoint& from, bool by_unicast, clock::time_point now);
    /// Forgets the hosts whose lease ran out: their names, case-folded.
    std::vector<std::string> expire(clock::time_point now);

    [[nodiscard]] const known_host* find(std::string_view host_key) const;
    /// A domain this host may broadcast to: its own, or one a live host announced.
    [[nodiscard]] bool knows_domain(std::string_view folded) const;
    /// Where records go by unicast besides the group.
    [[nodiscard]] std::vector<endpoint> unicast_members(clock::time_point now) const;
    /// The known hosts, for `slotbus hosts`.
    [[nodiscard]] boost::json::array hosts(clock::time_point now) const;

private:
    /// The sender's entry, made if it is new (`made`).
    known_host* host_for(const datagram& d, const std::string& key, bool& made);
    /// What an accepted datagram tells: where the sender is, that it lives.
    void heard(known_host& h, const endpoint& from, bool by_unicast, clock::time_point now);
    /// Forgets a host, keeping where its numbers were (see forgotten_).
    void forget(std::map<std::string, known_host, std::less<>>::iterator it, clock::time_point now);
    /// The numbering of a record or beacon: false for a record to drop (a
    /// duplicate or late).
    bool number(known_host& h, const datagram& d);

    broadcast_settings settings_;
    std::string self_key_; // this host's name, folded
    broadcast_counters counters_;
    std::map<std::string, known_host, std::less<>> hosts_; // by folded name
    // Where a forgotten host's numbers were (its boot, its highest record),
    // for a while: replayed datagrams of a host that said bye or went quiet
    // stay refused, and records lost while it was away are counted when it
    // comes back. Bounded: past 4 * max_hosts, the oldest goes.
    struct forgotten {
        std::uint64_t epoch = 0, highest = 0;
        std::uint32_t control = 0;
        clock::time_point until;
    };
    std::map<std::string, forgotten, std::less<>> forgotten_;
    static constexpr std::chrono::minutes remembered_for{10};
    std::uint64_t seq_ = 0;     // the last record sent
    std::uint32_t control_ = 0; // the last beacon, query or bye
    std::vector<boost::asio::ip::address> seeds_;
    std::size_t names_in_all_ = 0;                            // in hosts_' names
    std::unordered_map<std::string, std::uint32_t> name_seq_; // by domain '\n' name key
    double tokens_;
    clock::time_point refilled_{};
};

} // namespace slotbus::bus
