// The wire protocol shared by the SDK and the host: frame layout, the message
// set, and a sans-I/O codec (bytes in, frames out). docs/protocol.md is the
// prose version of this file.
#pragma once

#include "slotbus/error.hpp"
#include "slotbus/export.hpp"

#include <boost/describe/class.hpp>
#include <boost/describe/members.hpp>
#include <boost/endian/conversion.hpp>
#include <boost/mp11/algorithm.hpp>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>
#include <type_traits>
#include <vector>

namespace slotbus {

inline constexpr std::uint32_t protocol_magic = 0x53424c53; // "SLBS" little-endian
inline constexpr std::uint16_t protocol_version = 7;

/// `read_timeout` value: a read waits until a record arrives.
inline constexpr std::uint32_t mailslot_wait_forever = 0xffffffff;
/// `slot_info::next_size` when the slot is empty.
inline constexpr std::uint32_t mailslot_no_message = 0xffffffff;
/// Records written through a broadcast name (`\\*\`, `\\DOMAIN\`) are at most this long.
inline constexpr std::size_t max_broadcast_size = 424;

/// Every frame: u32 length (little-endian; counts the type byte and the body),
/// u8 type, body.
inline constexpr std::size_t frame_header_size = 5;

enum class frame_type : std::uint8_t {
    // client -> host
    hello = 0x01,
    create = 0x02,
    open = 0x03,
    close = 0x04,
    write = 0x05,
    info = 0x06,
    set_timeout = 0x07,
    read_report = 0x08,
    poll = 0x09,
    duplicate = 0x0a,
    attach = 0x0b,
    subscribe = 0x0c,
    unsubscribe = 0x0d,
    ping = 0x0e,
    admin = 0x0f,
    post = 0x10, // a write whose results may wait for the host's next frame
    lost = 0x11, // records a writer knows were lost before its next (a bridge's upstream gaps)
    // the shared-memory lane (docs/lanes.md): local Unix-socket connections only
    lane_request = 0x12, // a writer handle asks for a lane
    lane_mapped = 0x13,  // the writer mapped its lane: the host seals it
    write_lane = 0x14,   // records in the writer's lane, by descriptor: writes, as `write`
    post_lane = 0x15,    // ... as `post`
    lane_closed = 0x16,  // the writer names a closed lane no more
    // host <-> host, over a link (bus/src/host/link_frames.hpp; never on a client's connection)
    link_hello = 0x20,
    link_open = 0x21,
    link_write = 0x22,
    link_results = 0x23,
    link_credit = 0x24,
    link_close = 0x25,
    link_ack = 0x26,
    // host -> client
    welcome = 0x81,
    result = 0x82,
    records = 0x83,
    write_acks = 0x84,
    info_result = 0x85,
    timeout_changed = 0x86,
    gap = 0x87,
    pong = 0x88,
    admin_result = 0x89,
    revoked = 0x8a,
    origin = 0x8b,
    origins_forgotten = 0x8c,
    lane_open = 0x8d,    // a lane's memory (one fd by SCM_RIGHTS on the frame's first byte)
    records_lane = 0x8e, // records pushed to a reader, by descriptor into lanes it holds
    fatal = 0x8f,
    lane_release = 0x90, // the writer may reuse its lane up to a position
    lane_close = 0x91,   // a lane is gone: unmap it
};

SLOTBUS_API bool known_frame_type(std::uint8_t value) noexcept;

using byte_buffer = std::vector<std::uint8_t>;
using byte_span = std::span<const std::uint8_t>;

/// The rest of a frame's body, as opaque bytes (always the last field).
struct SLOTBUS_API payload {
    byte_span bytes;
};

// ---- messages ---------------------------------------------------------------------------
// Field types: u16, u32, u64, std::string_view (u16 length + bytes) and payload.
// Decoded string_views and payloads point into the frame they came from.

struct SLOTBUS_API hello_frame {
    static constexpr frame_type type = frame_type::hello;
    std::uint32_t magic = protocol_magic;
    std::uint16_t min_version = protocol_version;
    std::uint16_t max_version = protocol_version;
    std::uint32_t pid = 0;
    std::uint32_t features = 0; ///< hello_lanes, or 0
    std::string_view client_name;
    /// A plugin's token from the host that launched it ($SLOTBUS_TOKEN); empty
    /// for everyone else. An unknown token is refused with a fatal frame.
    std::string_view token;
};
BOOST_DESCRIBE_STRUCT(hello_frame, (),
                      (magic, min_version, max_version, pid, features, client_name, token))

/// hello_frame::features: the client reads with recvmsg, so it may be sent
/// lane fds, and may ask for lanes (a Unix-socket connection only).
inline constexpr std::uint32_t hello_lanes = 1;

struct SLOTBUS_API welcome_frame {
    static constexpr frame_type type = frame_type::welcome;
    std::uint16_t version = protocol_version;
    std::uint32_t max_record_size = 0;
    std::uint32_t max_frame_size = 0;
    std::uint64_t connection_id = 0;
    /// Lanes: 0 when this connection gets none; else records of at least
    /// lane_threshold bytes may go through one, up to max_lane_record bytes.
    std::uint32_t lane_threshold = 0;
    std::uint32_t max_lane_record = 0;
    std::string_view host_name;
    std::string_view plugin; ///< the plugin the hello's token named; empty without one
};
BOOST_DESCRIBE_STRUCT(welcome_frame, (),
                      (version, max_record_size, max_frame_size, connection_id, lane_threshold,
                       max_lane_record, host_name, plugin))

/// What a slot does with a record when its byte budget is used up.
enum class overflow_policy : std::uint32_t {
    block = 0,       ///< hold the writers back until it drains (nothing is lost)
    drop_oldest = 1, ///< drop the oldest records not yet pushed to a reader
    drop_newest = 2, ///< drop the record that does not fit
};

struct SLOTBUS_API create_frame {
    static constexpr frame_type type = frame_type::create;
    std::uint32_t request_id = 0;
    std::uint32_t handle = 0; ///< chosen by the client: unused, not 0
    std::uint32_t max_message_size = 0;
    std::uint32_t read_timeout = 0;
    std::uint32_t byte_budget = 0; ///< 0: the host's default
    std::uint32_t overflow = 0;    ///< an overflow_policy
    std::string_view name;
};
BOOST_DESCRIBE_STRUCT(create_frame, (),
                      (request_id, handle, max_message_size, read_timeout, byte_budget, overflow,
                       name))

/// open_frame::flags: bind the handle to the name even with no receiver now
/// (a reconnecting client restoring its writers).
inline constexpr std::uint32_t open_rebind = 1;
/// open_frame::flags: a publisher's handle, with a topic's semantics rather
/// than a mailslot's: it opens with no receiver, and a record that reaches
/// no slot succeeds with 0 delivered (the host counts it as unrouted)
/// instead of failing with file_not_found.
inline constexpr std::uint32_t open_publish = 2;

struct SLOTBUS_API open_frame {
    static constexpr frame_type type = frame_type::open;
    std::uint32_t request_id = 0;
    std::uint32_t handle = 0; ///< chosen by the client: unused, not 0
    std::uint32_t flags = 0;
    std::string_view name;
};
BOOST_DESCRIBE_STRUCT(open_frame, (), (request_id, handle, flags, name))

struct SLOTBUS_API close_frame {
    static constexpr frame_type type = frame_type::close;
    std::uint32_t request_id = 0;
    std::uint32_t handle = 0;
};
BOOST_DESCRIBE_STRUCT(close_frame, (), (request_id, handle))

/// Pipelined: no request id. One or more records for one writer handle
/// (a record list, see for_each_record); each record is one write, and
/// writes on a connection are acknowledged in the order they were sent, in
/// write_acks frames.
struct SLOTBUS_API write_frame {
    static constexpr frame_type type = frame_type::write;
    std::uint32_t handle = 0;
    payload records;
};
BOOST_DESCRIBE_STRUCT(write_frame, (), (handle, records))

/// Tells the readers of a writer handle's slots that `count` records meant
/// for them were lost before the handle's next record (a bridge passing on
/// another bus's losses): told as a gap, as a drop is. No answer.
struct SLOTBUS_API lost_frame {
    static constexpr frame_type type = frame_type::lost;
    std::uint32_t handle = 0;
    std::uint32_t count = 0;
};
BOOST_DESCRIBE_STRUCT(lost_frame, (), (handle, count))

/// A write whose sender does not wait for its results: the host may hold
/// them until it sends the connection anything else (see docs/protocol.md).
struct SLOTBUS_API post_frame {
    static constexpr frame_type type = frame_type::post;
    std::uint32_t handle = 0;
    payload records;
};
BOOST_DESCRIBE_STRUCT(post_frame, (), (handle, records))

struct SLOTBUS_API info_frame {
    static constexpr frame_type type = frame_type::info;
    std::uint32_t request_id = 0;
    std::uint32_t handle = 0;
};
BOOST_DESCRIBE_STRUCT(info_frame, (), (request_id, handle))

struct SLOTBUS_API set_timeout_frame {
    static constexpr frame_type type = frame_type::set_timeout;
    std::uint32_t request_id = 0;
    std::uint32_t handle = 0;
    std::uint32_t read_timeout = 0;
};
BOOST_DESCRIBE_STRUCT(set_timeout_frame, (), (request_id, handle, read_timeout))

/// A reader tells the host how many pushed records it has read since its last
/// report, and how many it lets the host push ahead (the credit window).
struct SLOTBUS_API read_report_frame {
    static constexpr frame_type type = frame_type::read_report;
    std::uint32_t handle = 0;
    std::uint32_t consumed = 0;
    std::uint32_t window = 0;
};
BOOST_DESCRIBE_STRUCT(read_report_frame, (), (handle, consumed, window))

/// Answered with a result after every record the host can push has been pushed.
struct SLOTBUS_API poll_frame {
    static constexpr frame_type type = frame_type::poll;
    std::uint32_t request_id = 0;
    std::uint32_t handle = 0;
};
BOOST_DESCRIBE_STRUCT(poll_frame, (), (request_id, handle))

struct SLOTBUS_API duplicate_frame {
    static constexpr frame_type type = frame_type::duplicate;
    std::uint32_t request_id = 0;
    std::uint32_t handle = 0;
};
BOOST_DESCRIBE_STRUCT(duplicate_frame, (), (request_id, handle))

struct SLOTBUS_API attach_frame {
    static constexpr frame_type type = frame_type::attach;
    std::uint32_t request_id = 0;
    std::uint32_t handle = 0; ///< chosen by the client: unused, not 0
    std::string_view token;
};
BOOST_DESCRIBE_STRUCT(attach_frame, (), (request_id, handle, token))

/// Binds the reader handle's slot to a topic pattern (topic_pattern syntax).
struct SLOTBUS_API subscribe_frame {
    static constexpr frame_type type = frame_type::subscribe;
    std::uint32_t request_id = 0;
    std::uint32_t handle = 0;
    std::string_view pattern;
};
BOOST_DESCRIBE_STRUCT(subscribe_frame, (), (request_id, handle, pattern))

struct SLOTBUS_API unsubscribe_frame {
    static constexpr frame_type type = frame_type::unsubscribe;
    std::uint32_t request_id = 0;
    std::uint32_t handle = 0;
    std::string_view pattern;
};
BOOST_DESCRIBE_STRUCT(unsubscribe_frame, (), (request_id, handle, pattern))

/// The answer to every request that carries a request id, but info.
/// create/attach: value_a = read timeout, value_b = max message size;
/// poll: value_a = records queued at the host; duplicate: text = the token;
/// errors: text may say more.
struct SLOTBUS_API result_frame {
    static constexpr frame_type type = frame_type::result;
    std::uint32_t request_id = 0;
    std::uint32_t error = 0;
    std::uint32_t handle = 0;
    std::uint32_t value_a = 0;
    std::uint32_t value_b = 0;
    std::string_view text;
};
BOOST_DESCRIBE_STRUCT(result_frame, (), (request_id, error, handle, value_a, value_b, text))

/// Records pushed to one reader handle, in slot order (a record list), all
/// written by one sender to one name: the origin an origin frame announced.
struct SLOTBUS_API records_frame {
    static constexpr frame_type type = frame_type::records;
    std::uint32_t handle = 0;
    std::uint32_t origin = 0;
    payload records;
};
BOOST_DESCRIBE_STRUCT(records_frame, (), (handle, origin, records))

/// Who wrote the records of later records frames that carry `id`, as the
/// host decided it (never what a record says), and the name written to.
/// Sent once per connection before the first records frame with that id;
/// ids grow and are not reused within a connection.
struct SLOTBUS_API origin_frame {
    static constexpr frame_type type = frame_type::origin;
    std::uint32_t id = 0;
    std::uint32_t uid = 0;
    std::uint32_t pid = 0;
    std::string_view plugin; ///< the writer's plugin name, empty for a client that is none
    std::string_view name;   ///< the slot name written to, as the writer spelled its path
    /// The peer host the records came from over a link (then uid and pid are
    /// nobody's and 0: the writer's own do not cross); empty: this host.
    std::string_view host;
    /// The TLS client that wrote them, by its key's name in the host's
    /// clients file (then uid is nobody's and pid 0); empty for any other writer.
    std::string_view client;
    /// The domain whose broadcast brought them (then `host` is the sending
    /// host as its datagram names itself: a claim; uid nobody's, pid 0).
    std::string_view domain;
};
BOOST_DESCRIBE_STRUCT(origin_frame, (), (id, uid, pid, plugin, name, host, client, domain))

/// No later records frame carries an origin id below `below`: the client may
/// forget those once it holds no record of theirs (the host's table is bounded).
struct SLOTBUS_API origins_forgotten_frame {
    static constexpr frame_type type = frame_type::origins_forgotten;
    std::uint32_t below = 0;
};
BOOST_DESCRIBE_STRUCT(origins_forgotten_frame, (), (below))

/// Results of the connection's next writes, in order: runs of
/// {u32 count, u32 error, u32 delivered}.
struct SLOTBUS_API write_acks_frame {
    static constexpr frame_type type = frame_type::write_acks;
    payload runs;
};
BOOST_DESCRIBE_STRUCT(write_acks_frame, (), (runs))

struct SLOTBUS_API ack_run {
    std::uint32_t count = 0;
    std::uint32_t error = 0;
    std::uint32_t delivered = 0;
};
inline constexpr std::size_t ack_run_size = 12;

struct SLOTBUS_API info_result_frame {
    static constexpr frame_type type = frame_type::info_result;
    std::uint32_t request_id = 0;
    std::uint32_t error = 0;
    std::uint32_t max_message_size = 0;
    std::uint32_t next_size = mailslot_no_message;
    std::uint32_t message_count = 0;
    std::uint32_t read_timeout = 0;
    std::uint64_t queued_bytes = 0;
    std::uint64_t dropped = 0; ///< records the slot's overflow policy dropped, ever
};
BOOST_DESCRIBE_STRUCT(info_result_frame, (),
                      (request_id, error, max_message_size, next_size, message_count, read_timeout,
                       queued_bytes, dropped))

/// Sent to every reader handle of a slot when its read timeout changes.
struct SLOTBUS_API timeout_changed_frame {
    static constexpr frame_type type = frame_type::timeout_changed;
    std::uint32_t handle = 0;
    std::uint32_t read_timeout = 0;
};
BOOST_DESCRIBE_STRUCT(timeout_changed_frame, (), (handle, read_timeout))

/// Sent ahead of the next record pushed to a reader: that many records were
/// dropped (by the slot's overflow policy) just before it.
struct SLOTBUS_API gap_frame {
    static constexpr frame_type type = frame_type::gap;
    std::uint32_t handle = 0;
    std::uint32_t missed = 0;
};
BOOST_DESCRIBE_STRUCT(gap_frame, (), (handle, missed))

/// A policy reload took a right away: the handle is closed (its number stays
/// taken until the client closes it; its operations fail with `error`), or,
/// with a pattern, only that subscription of the reader handle is removed.
struct SLOTBUS_API revoked_frame {
    static constexpr frame_type type = frame_type::revoked;
    std::uint32_t handle = 0;
    std::uint32_t error = 0;
    std::string_view pattern;
};
BOOST_DESCRIBE_STRUCT(revoked_frame, (), (handle, error, pattern))

/// A heartbeat: the host answers each ping with a pong carrying its nonce.
struct SLOTBUS_API ping_frame {
    static constexpr frame_type type = frame_type::ping;
    std::uint32_t nonce = 0;
};
BOOST_DESCRIBE_STRUCT(ping_frame, (), (nonce))

struct SLOTBUS_API pong_frame {
    static constexpr frame_type type = frame_type::pong;
    std::uint32_t nonce = 0;
};
BOOST_DESCRIBE_STRUCT(pong_frame, (), (nonce))

/// A question for the host itself (the admin plane the `slotbus` CLI uses):
/// `command` is one of "slots", "stats", "plugins", "stop"; `argument` is
/// the command's (a path prefix for "slots"). Answered by admin_result.
struct SLOTBUS_API admin_frame {
    static constexpr frame_type type = frame_type::admin;
    std::uint32_t request_id = 0;
    std::string_view command;
    payload argument;
};
BOOST_DESCRIBE_STRUCT(admin_frame, (), (request_id, command, argument))

/// The answer to an admin frame: a JSON document (see docs/protocol.md), or
/// an error (error::invalid_function for an unknown command) with JSON
/// {"error": "why"}.
struct SLOTBUS_API admin_result_frame {
    static constexpr frame_type type = frame_type::admin_result;
    std::uint32_t request_id = 0;
    std::uint32_t error = 0;
    payload json;
};
BOOST_DESCRIBE_STRUCT(admin_result_frame, (), (request_id, error, json))

/// The last frame on a connection the host is closing for a protocol error.
struct SLOTBUS_API fatal_frame {
    static constexpr frame_type type = frame_type::fatal;
    std::uint32_t error = 0;
    std::string_view message;
};
BOOST_DESCRIBE_STRUCT(fatal_frame, (), (error, message))

// ---- the shared-memory lane (docs/lanes.md) --------------------------------------------

/// A writer handle asks for a lane big enough for records of `record_size`
/// bytes. Answered by a lane_open: with an fd, or with lane 0 (refused: the
/// handle keeps the socket path; `size` then holds the error).
struct SLOTBUS_API lane_request_frame {
    static constexpr frame_type type = frame_type::lane_request;
    std::uint32_t handle = 0;
    std::uint32_t record_size = 0;
};
BOOST_DESCRIBE_STRUCT(lane_request_frame, (), (handle, record_size))

/// The writer has mapped lane `lane` (and closed its fd): the host seals it
/// against new writable mappings; descriptors into it may follow.
struct SLOTBUS_API lane_mapped_frame {
    static constexpr frame_type type = frame_type::lane_mapped;
    std::uint32_t lane = 0;
};
BOOST_DESCRIBE_STRUCT(lane_mapped_frame, (), (lane))

/// lane_open_frame::role
enum class lane_role : std::uint32_t { writer = 1, reader = 2 };

/// A lane's memory: a sealed memfd of `size` bytes (a power of two) on the
/// frame's first byte. A writer's names the handle it serves; a reader's is
/// for records_lane frames that name `lane`.
struct SLOTBUS_API lane_open_frame {
    static constexpr frame_type type = frame_type::lane_open;
    std::uint32_t lane = 0;
    std::uint32_t handle = 0; ///< the writer handle (a writer's), 0 (a reader's)
    std::uint32_t role = 0;   ///< a lane_role
    std::uint64_t size = 0;   ///< bytes; a refusal's error when lane is 0
};
BOOST_DESCRIBE_STRUCT(lane_open_frame, (), (lane, handle, role, size))

/// A record in a lane: it starts at byte position % size of the lane and
/// never wraps (a record that would is placed at the lane's start).
struct SLOTBUS_API lane_descriptor {
    std::uint64_t position = 0;
    std::uint32_t length = 0;
};
inline constexpr std::size_t lane_descriptor_size = 12;
/// Where records go in a lane: each at a multiple of this many bytes.
inline constexpr std::size_t lane_alignment = 64;

/// Records written into the handle's lane `lane`: runs of {u64 position,
/// u32 length}, each one write with its result in write_acks (as `write`).
struct SLOTBUS_API write_lane_frame {
    static constexpr frame_type type = frame_type::write_lane;
    std::uint32_t handle = 0;
    std::uint32_t lane = 0;
    payload descriptors;
};
BOOST_DESCRIBE_STRUCT(write_lane_frame, (), (handle, lane, descriptors))

struct SLOTBUS_API post_lane_frame {
    static constexpr frame_type type = frame_type::post_lane;
    std::uint32_t handle = 0;
    std::uint32_t lane = 0;
    payload descriptors;
};
BOOST_DESCRIBE_STRUCT(post_lane_frame, (), (handle, lane, descriptors))

/// After a lane_close of its writer lane: no later frame names it.
struct SLOTBUS_API lane_closed_frame {
    static constexpr frame_type type = frame_type::lane_closed;
    std::uint32_t lane = 0;
};
BOOST_DESCRIBE_STRUCT(lane_closed_frame, (), (lane))

/// Records pushed to a reader handle, all of one origin and one lane (held
/// by a reader lane_open before): runs of {u64 position, u32 length}.
struct SLOTBUS_API records_lane_frame {
    static constexpr frame_type type = frame_type::records_lane;
    std::uint32_t handle = 0;
    std::uint32_t origin = 0;
    std::uint32_t lane = 0;
    payload descriptors;
};
BOOST_DESCRIBE_STRUCT(records_lane_frame, (), (handle, origin, lane, descriptors))

/// Every record of the writer's lane before `position` is read by all its
/// readers: that space may be written again.
struct SLOTBUS_API lane_release_frame {
    static constexpr frame_type type = frame_type::lane_release;
    std::uint32_t lane = 0;
    std::uint64_t position = 0;
};
BOOST_DESCRIBE_STRUCT(lane_release_frame, (), (lane, position))

/// The lane is gone for this connection: no frame names it again (a
/// writer's: its handle is back on the socket path and may ask again).
struct SLOTBUS_API lane_close_frame {
    static constexpr frame_type type = frame_type::lane_close;
    std::uint32_t lane = 0;
};
BOOST_DESCRIBE_STRUCT(lane_close_frame, (), (lane))

/// Calls f(lane_descriptor) for each descriptor of a run list; false (and
/// calls nothing) when its size is no multiple of a descriptor's.
template <class F> bool for_each_lane_descriptor(byte_span runs, F&& f)
{
    if (runs.size() % lane_descriptor_size != 0)
        return false;
    for (std::size_t at = 0; at < runs.size(); at += lane_descriptor_size)
        f(lane_descriptor{boost::endian::load_little_u64(runs.data() + at),
                          boost::endian::load_little_u32(runs.data() + at + 8)});
    return true;
}
/// Appends one descriptor to a run list.
inline void append_lane_descriptor(std::vector<std::uint8_t>& out, lane_descriptor d)
{
    const auto at = out.size();
    out.resize(at + lane_descriptor_size);
    boost::endian::store_little_u64(out.data() + at, d.position);
    boost::endian::store_little_u32(out.data() + at + 8, d.length);
}
/// Where a record of `length` bytes goes in a lane of `size` bytes when the
/// last one ended at `end`: the next aligned position, or the lane's next
/// start when it would not fit before the lane's end.
[[nodiscard]] constexpr std::uint64_t lane_place(std::uint64_t end, std::uint64_t length,
                                                 std::uint64_t size) noexcept
{
    const std::uint64_t at = (end + lane_alignment - 1) & ~std::uint64_t{lane_alignment - 1};
    if (at % size + length <= size)
        return at;
    return (at / size + 1) * size;
}

// ---- codec ------------------------------------------------------------------------------

namespace detail {

inline void put(byte_buffer& out, std::uint16_t v)
{
    std::uint8_t b[2];
    boost::endian::store_little_u16(b, v);
    out.insert(out.end(), b, b + 2);
}
inline void put(byte_buffer& out, std::uint32_t v)
{
    std::uint8_t b[4];
    boost::endian::store_little_u32(b, v);
    out.insert(out.end(), b, b + 4);
}
inline void put(byte_buffer& out, std::uint64_t v)
{
    std::uint8_t b[8];
    boost::endian::store_little_u64(b, v);
    out.insert(out.end(), b, b + 8);
}
inline void put(byte_buffer& out, std::string_view s)
{
    put(out, static_cast<std::uint16_t>(s.size()));
    out.insert(out.end(), s.begin(), s.end());
}
inline void put(byte_buffer& out, const payload& p)
{
    out.insert(out.end(), p.bytes.begin(), p.bytes.end());
}

// Bounds-checked reading of untrusted bytes: a short read sets failed and
// yields zeros, so decoding never reads past the frame.
class SLOTBUS_API body_reader {
public:
    explicit body_reader(byte_span body) : rest_(body) {}

    bool get(std::uint16_t& v) { return fixed(v, 2, boost::endian::load_little_u16); }
    bool get(std::uint32_t& v) { return fixed(v, 4, boost::endian::load_little_u32); }
    bool get(std::uint64_t& v) { return fixed(v, 8, boost::endian::load_little_u64); }
    bool get(std::string_view& s)
    {
        std::uint16_t n = 0;
        if (!get(n) || rest_.size() < n)
            return failed_ = true, false;
        s = {reinterpret_cast<const char*>(rest_.data()), n};
        rest_ = rest_.subspan(n);
        return true;
    }
    bool get(payload& p)
    {
        p.bytes = rest_;
        rest_ = {};
        return true;
    }
    /// True when every field decoded and no byte is left over.
    [[nodiscard]] bool complete() const noexcept { return !failed_ && rest_.empty(); }

private:
    template <class T, class Load> bool fixed(T& v, std::size_t n, Load load)
    {
        if (failed_ || rest_.size() < n)
            return failed_ = true, false;
        v = static_cast<T>(load(rest_.data()));
        rest_ = rest_.subspan(n);
        return true;
    }

    byte_span rest_;
    bool failed_ = false;
};

} // namespace detail

/// Appends one whole frame for message `m` to `out`.
template <class Message> void encode(byte_buffer& out, const Message& m)
{
    const std::size_t start = out.size();
    out.resize(start + 4);
    out.push_back(static_cast<std::uint8_t>(Message::type));
    using members = boost::describe::describe_members<Message, boost::describe::mod_public>;
    boost::mp11::mp_for_each<members>([&](auto d) { detail::put(out, m.*d.pointer); });
    boost::endian::store_little_u32(out.data() + start,
                                    static_cast<std::uint32_t>(out.size() - start - 4));
}

/// Decodes a frame body into `m`. False when the body is short, long, or a
/// length inside it lies; `m`'s views then mean nothing.
template <class Message> [[nodiscard]] bool decode(byte_span body, Message& m)
{
    detail::body_reader reader(body);
    using members = boost::describe::describe_members<Message, boost::describe::mod_public>;
    boost::mp11::mp_for_each<members>([&](auto d) { reader.get(m.*d.pointer); });
    return reader.complete();
}

/// One frame found in a byte stream; body points into the caller's bytes.
struct SLOTBUS_API frame_view {
    frame_type type{};
    byte_span body;
};

/// What decode_frame found at the front of a byte stream.
struct SLOTBUS_API decoded_frame {
    enum status_t { ok, need_more, invalid } status = need_more;
    frame_view frame;
    std::size_t size = 0; ///< bytes the frame takes (header included), when ok
    const char* why = ""; ///< what is wrong, when invalid
};

/// Finds the frame at the front of `bytes`. Lengths are checked before any
/// byte is trusted: 0, over `max_frame_size`, or an unknown type is invalid.
SLOTBUS_API decoded_frame decode_frame(byte_span bytes, std::size_t max_frame_size) noexcept;

/// The receiving end of a frame stream: bytes read in, whole frames out. It
/// keeps a partial frame at the front and grows for one large frame (never
/// past the frame limit), so every read goes into one contiguous buffer.
class SLOTBUS_API frame_buffer {
public:
    /// Grows only with bytes that arrived: a frame's claimed length costs
    /// nothing until its bytes come (then the buffer doubles as they fill
    /// it), and reads that fill it whole double it up to read_size.
    static constexpr std::size_t initial_size = 4 * 1024;
    static constexpr std::size_t read_size = 64 * 1024;

    explicit frame_buffer(std::size_t initial = initial_size) : bytes_(initial) {}

    /// Where the next read goes (never empty).
    [[nodiscard]] std::span<std::uint8_t> prepare(std::size_t max_frame_size);
    /// `n` bytes were read into what prepare() gave.
    void commit(std::size_t n) noexcept
    {
        filled_ = n == offered_;
        end_ += n;
    }
    /// The bytes it holds room for now.
    [[nodiscard]] std::size_t capacity() const noexcept { return bytes_.size(); }
    /// The frame at the front; its views are valid until the next prepare().
    [[nodiscard]] decoded_frame next(std::size_t max_frame_size) const noexcept
    {
        return decode_frame(unread(), max_frame_size);
    }
    void consume(std::size_t n) noexcept { begin_ += n; }
    [[nodiscard]] byte_span unread() const noexcept
    {
        return {bytes_.data() + begin_, end_ - begin_};
    }
    void clear() noexcept { begin_ = end_ = 0; }

private:
    byte_buffer bytes_;
    std::size_t begin_ = 0;   // first byte not consumed
    std::size_t end_ = 0;     // one past the last byte read
    std::size_t offered_ = 0; // the room prepare() gave last
    bool filled_ = false;     // the last read took all of it
};

/// A record list — the body of write and records frames after the handle —
/// is one or more records, each a u32 length and its bytes.
/// Writes one record in list form at `to` (room for 4 + its size); returns its end.
inline std::uint8_t* put_record(std::uint8_t* to, byte_span record) noexcept
{
    boost::endian::store_little_u32(to, static_cast<std::uint32_t>(record.size()));
    if (!record.empty())
        std::memcpy(to + 4, record.data(), record.size());
    return to + 4 + record.size();
}

inline void append_record(byte_buffer& list, byte_span record)
{
    // One resize, then two plain copies: cheaper per record than two inserts
    // (the zero-filling costs less than the second insert's bookkeeping).
    const std::size_t at = list.size();
    list.resize(at + 4 + record.size());
    put_record(list.data() + at, record);
}

/// What check_record_list found: how many records, how many bytes in them.
struct SLOTBUS_API record_list_summary {
    bool valid = false; ///< false when the list is empty or a length lies
    std::uint32_t count = 0;
    std::uint64_t bytes = 0;
    std::uint32_t largest = 0; ///< the size of the largest record
};

/// Calls f(byte_span) for each record of a list as soon as its length is
/// checked, trusting none: false when the list is empty or a length lies
/// (f has then seen the records before that length).
template <class F> bool scan_record_list(byte_span list, F&& f)
{
    if (list.empty())
        return false;
    for (std::size_t at = 0; at < list.size();) {
        if (list.size() - at < 4)
            return false;
        const std::size_t n = boost::endian::load_little_u32(list.data() + at);
        if (list.size() - at - 4 < n)
            return false;
        f(list.subspan(at + 4, n));
        at += 4 + n;
    }
    return true;
}

/// Walks a record list's lengths once, trusting none of them.
[[nodiscard]] inline record_list_summary check_record_list(byte_span list) noexcept
{
    record_list_summary summary;
    summary.valid = scan_record_list(list, [&](byte_span record) {
        ++summary.count;
        summary.bytes += record.size();
        summary.largest = std::max(summary.largest, static_cast<std::uint32_t>(record.size()));
    });
    return summary;
}

/// Calls f(byte_span) for each record of a list check_record_list found valid.
template <class F> void for_each_checked_record(byte_span list, F&& f)
{
    for (std::size_t at = 0; at < list.size();) {
        const std::size_t n = boost::endian::load_little_u32(list.data() + at);
        f(list.subspan(at + 4, n));
        at += 4 + n;
    }
}

/// Calls f(byte_span) for each record of a list, after checking all of it:
/// false, and no call at all, when it is empty or a length lies.
template <class F> bool for_each_record(byte_span list, F&& f)
{
    if (!check_record_list(list).valid)
        return false;
    for_each_checked_record(list, f);
    return true;
}

/// Builds write and records frames a record at a time. A record for the
/// handle of the frame last started, with nothing appended after that frame
/// and room left under `batch_bytes`, joins it: the reader of the frame then
/// finds the handle once for all of them. Otherwise a new frame starts.
class SLOTBUS_API record_list_builder {
public:
    static constexpr std::size_t batch_bytes = 64 * 1024;

    /// Write and post frames have a handle before their list; records
    /// frames a handle and an origin (which must match too to join);
    /// write_lane and post_lane frames a handle and a lane before their
    /// descriptors, records_lane frames a handle, an origin and a lane.
    explicit record_list_builder(frame_type type) noexcept : type_(type) {}
    void append(byte_buffer& out, std::uint32_t handle, byte_span record, std::uint32_t origin = 0);
    /// Appends a whole record list (lengths included, checked already) at once.
    void append_list(byte_buffer& out, std::uint32_t handle, byte_span list,
                     std::uint32_t origin = 0);
    /// Appends a lane descriptor (to a write_lane, post_lane or records_lane frame).
    void append_descriptor(byte_buffer& out, std::uint32_t handle, lane_descriptor d,
                           std::uint32_t origin = 0, std::uint32_t lane = 0);
    /// Appends every record of `records` (`bytes(r)` gives one's byte_span)
    /// as append() would, growing `out` once when they fit one frame.
    template <class Records, class Bytes>
    void append_all(byte_buffer& out, std::uint32_t handle, const Records& records, Bytes&& bytes)
    {
        std::size_t list_bytes = 0;
        for (const auto& r : records)
            list_bytes += 4 + bytes(r).size();
        if (list_bytes > batch_bytes) {
            for (const auto& r : records)
                append(out, handle, bytes(r));
            return;
        }
        open(out, handle, list_bytes);
        const std::size_t at = out.size();
        out.resize(at + list_bytes);
        std::uint8_t* to = out.data() + at;
        for (const auto& r : records)
            to = put_record(to, bytes(r));
        close(out);
    }
    /// `out` was cleared or handed on: what it held is no frame to extend.
    void reset() noexcept { open_ = closed; }

private:
    static constexpr std::size_t closed = ~std::size_t{0};
    /// Joins the open frame or starts one, for `list_bytes` more of the list.
    void open(byte_buffer& out, std::uint32_t handle, std::size_t list_bytes,
              std::uint32_t origin = 0, std::uint32_t lane = 0);
    /// Sets the open frame's length to end where out ends now.
    void close(byte_buffer& out);
    frame_type type_;
    std::size_t open_ = closed; // where the open frame starts in out
    std::size_t end_ = 0;       // where it ended
    std::uint32_t handle_ = 0;
    std::uint32_t origin_ = 0;
    std::uint32_t lane_ = 0;
};

/// Iterates the runs of a write_acks frame; false on a malformed list.
template <class F> bool for_each_ack_run(byte_span runs, F&& f)
{
    if (runs.size() % ack_run_size != 0)
        return false;
    for (std::size_t at = 0; at < runs.size(); at += ack_run_size) {
        const auto* p = runs.data() + at;
        f(ack_run{boost::endian::load_little_u32(p), boost::endian::load_little_u32(p + 4),
                  boost::endian::load_little_u32(p + 8)});
    }
    return true;
}

/// Builds a write_acks frame, merging consecutive equal results into runs.
class SLOTBUS_API ack_batch {
public:
    /// `writes` writes in a row with this result.
    void add(std::uint32_t error, std::uint32_t delivered, std::uint32_t writes = 1);
    [[nodiscard]] bool empty() const noexcept { return runs_.empty(); }
    [[nodiscard]] std::size_t runs() const noexcept { return runs_.size(); }
    /// Appends the frame to out and starts a new batch.
    void flush_to(byte_buffer& out);

private:
    std::vector<ack_run> runs_;
};

} // namespace slotbus
