// The frames two hosts exchange over a link (docs/protocol.md, "Host links"),
// in the codec and framing of the client protocol. A link carries writes both
// ways: each host is the origin of its own writers' records and the
// destination of the peer's.
#pragma once

#include "slotbus/protocol.hpp"

#include <cstdint>
#include <string_view>

namespace slotbus::bus {

inline constexpr std::uint32_t link_magic = 0x4b4c4253; // "SBLK" little-endian
inline constexpr std::uint16_t link_version = 1;

/// Both hosts send it first, at once. `session` names the sender's stream of
/// writes (new at every start, and whenever it gave its unfinished writes
/// up); `resume_session` is the peer's session whose writes the sender still
/// holds, 0 if none: when it equals the peer's `session`, the link resumes.
struct link_hello_frame {
    static constexpr frame_type type = frame_type::link_hello;
    std::uint32_t magic = link_magic;
    std::uint16_t version = link_version;
    std::string_view host; ///< the sender's name (its key decides who it is)
    std::uint64_t session = 0;
    std::uint64_t resume_session = 0;
    std::uint64_t received_through = 0; ///< the last sequence number it took of that session
    std::uint64_t results_through = 0;  ///< the peer's results it has, by number, in that session
    std::uint32_t max_record_size = 0;
    std::uint32_t flow_credit = 0; ///< what each new destination may have in flight, in cost
    std::uint64_t window = 0;      ///< what all may have in flight, in cost
};
BOOST_DESCRIBE_STRUCT(link_hello_frame, (),
                      (magic, version, host, session, resume_session, received_through,
                       results_through, max_record_size, flow_credit, window))

/// A destination: writes to `path` on the receiver, numbered `flow`.
struct link_open_frame {
    static constexpr frame_type type = frame_type::link_open;
    std::uint32_t flow = 0;
    std::string_view path;
};
BOOST_DESCRIBE_STRUCT(link_open_frame, (), (flow, path))

/// Records for one flow, numbered first_seq, first_seq + 1, ... (a record list).
struct link_write_frame {
    static constexpr frame_type type = frame_type::link_write;
    std::uint32_t flow = 0;
    std::uint64_t first_seq = 0;
    payload records;
};
BOOST_DESCRIBE_STRUCT(link_write_frame, (), (flow, first_seq, records))

/// Results: runs of {u32 flow, u64 first_seq, u32 count, u32 error, u32
/// delivered}, numbered first_result, first_result + 1, ... (one number a
/// run, counted in the origin's session), so the origin can say which it has.
struct link_results_frame {
    static constexpr frame_type type = frame_type::link_results;
    std::uint64_t first_result = 0;
    payload runs;
};
BOOST_DESCRIBE_STRUCT(link_results_frame, (), (first_result, runs))

struct link_result_run {
    std::uint32_t flow = 0;
    std::uint64_t first_seq = 0;
    std::uint32_t count = 0;
    std::uint32_t error = 0;
    std::uint32_t delivered = 0;
};
inline constexpr std::size_t link_result_run_size = 24;

/// The flow may have had `granted` cost in all since it opened: a total, so
/// a lost grant is made good by the next.
struct link_credit_frame {
    static constexpr frame_type type = frame_type::link_credit;
    std::uint32_t flow = 0;
    std::uint64_t granted = 0;
};
BOOST_DESCRIBE_STRUCT(link_credit_frame, (), (flow, granted))

/// The origin is done with a flow (no writer, nothing pending).
struct link_close_frame {
    static constexpr frame_type type = frame_type::link_close;
    std::uint32_t flow = 0;
};
BOOST_DESCRIBE_STRUCT(link_close_frame, (), (flow))

/// The origin has every result run up to number `results_through`: the
/// destination may forget them.
struct link_ack_frame {
    static constexpr frame_type type = frame_type::link_ack;
    std::uint64_t results_through = 0;
};
BOOST_DESCRIBE_STRUCT(link_ack_frame, (), (results_through))

/// What a frame of `count` records, `bytes` long as a list, costs in credit
/// and window: its bytes and a little for each record's bookkeeping.
constexpr std::uint64_t link_cost(std::size_t list_bytes, std::uint32_t count) noexcept
{
    return list_bytes + 16ull * count;
}

} // namespace slotbus::bus
