// Where the core sends writes to names of other hosts: `\\HOST\mailslot\x`
// to the host's links, `\\DOMAIN\mailslot\x` and `\\*\mailslot\x` to the
// domain's broadcasts. The core only asks and is answered; it knows nothing
// of links, datagrams, keys or sockets.
#pragma once

#include "slot.hpp"

#include "slotbus/protocol.hpp"
#include "slotbus/slot_name.hpp"

#include <cstdint>
#include <string_view>
#include <system_error>

namespace slotbus::bus {

/// A write frame's place among its connection's results, for results that
/// come later (core::remote_results).
struct write_ticket {
    session_id session = 0;
    std::uint64_t entry = 0;
};

class remote_hosts {
public:
    /// A writer handle for `name` on peer `host` (case-folded): a destination
    /// id, held until release(); 0 with ec set — bad_netpath when `host` is no
    /// configured peer, too_many_open_files past the destinations of a link.
    virtual std::uint64_t acquire(std::string_view host, const slot_name& name,
                                  std::error_code& ec) = 0;
    virtual void release(std::uint64_t destination) = 0;
    /// A write frame of `count` records (a checked record list) to a
    /// destination. True: taken — every record's result comes later, once,
    /// through core::remote_results, in any order. False: the destination has
    /// no credit now: the session is held back and woken (core::wake) when it has.
    virtual bool write(std::uint64_t destination, byte_span records, std::uint32_t count,
                       write_ticket ticket) = 0;

protected:
    ~remote_hosts() = default;
};

class broadcaster {
public:
    /// A domain (case-folded) writes can be broadcast to: this host's own,
    /// or one a live host announced. Another name is no domain (53).
    [[nodiscard]] virtual bool knows_domain(std::string_view domain) const = 0;
    /// How many of `count` records may go now under the sending rate. Fewer
    /// than asked: session `id` is held back, and woken (core::wake) when
    /// more may go.
    virtual std::uint32_t reserve(session_id id, std::uint32_t count) = 0;
    /// One record (at most 424 bytes) as one datagram to the other hosts of
    /// `domain`, for their slots of `path` (a slot name's path; `key`, its
    /// key): best effort, no result comes back.
    virtual void send(std::string_view domain, std::string_view path, const std::string& key,
                      byte_span record) = 0;

protected:
    ~broadcaster() = default;
};

} // namespace slotbus::bus
