// libFuzzer target: the wire codec on untrusted bytes. Every decoder must
// return a result, never crash or read out of bounds; what decodes must
// encode back to a frame that decodes the same.
#include "slotbus/protocol.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

using namespace slotbus;

namespace {

template <class Message> void round_trip(byte_span body)
{
    Message m;
    if (!decode(body, m))
        return;
    byte_buffer again;
    encode(again, m);
    const auto found = decode_frame(again, again.size());
    if (found.status != decoded_frame::ok || found.frame.type != Message::type)
        std::abort(); // what we encode, we must decode
    Message back;
    if (!decode(found.frame.body, back))
        std::abort();
}

void body_of(frame_type type, byte_span body)
{
    switch (type) {
    case frame_type::hello:
        return round_trip<hello_frame>(body);
    case frame_type::create:
        return round_trip<create_frame>(body);
    case frame_type::open:
        return round_trip<open_frame>(body);
    case frame_type::close:
        return round_trip<close_frame>(body);
    case frame_type::write:
    case frame_type::post: {
        write_frame m;
        if (decode(body, m)) {
            const auto list = check_record_list(m.records.bytes);
            std::uint32_t seen = 0;
            const bool valid = scan_record_list(m.records.bytes, [&](byte_span) { ++seen; });
            if (valid != list.valid || (valid && seen != list.count))
                std::abort(); // the two walks must agree
        }
        return;
    }
    case frame_type::info:
        return round_trip<info_frame>(body);
    case frame_type::set_timeout:
        return round_trip<set_timeout_frame>(body);
    case frame_type::read_report:
        return round_trip<read_report_frame>(body);
    case frame_type::poll:
        return round_trip<poll_frame>(body);
    case frame_type::duplicate:
        return round_trip<duplicate_frame>(body);
    case frame_type::attach:
        return round_trip<attach_frame>(body);
    case frame_type::subscribe:
        return round_trip<subscribe_frame>(body);
    case frame_type::unsubscribe:
        return round_trip<unsubscribe_frame>(body);
    case frame_type::ping:
        return round_trip<ping_frame>(body);
    case frame_type::admin:
        return round_trip<admin_frame>(body);
    case frame_type::welcome:
        return round_trip<welcome_frame>(body);
    case frame_type::result:
        return round_trip<result_frame>(body);
    case frame_type::records: {
        records_frame m;
        if (decode(body, m))
            (void)for_each_record(m.records.bytes, [](byte_span) {});
        return;
    }
    case frame_type::write_acks: {
        write_acks_frame m;
        if (decode(body, m))
            (void)for_each_ack_run(m.runs.bytes, [](const ack_run&) {});
        return;
    }
    case frame_type::info_result:
        return round_trip<info_result_frame>(body);
    case frame_type::timeout_changed:
        return round_trip<timeout_changed_frame>(body);
    case frame_type::gap:
        return round_trip<gap_frame>(body);
    case frame_type::pong:
        return round_trip<pong_frame>(body);
    case frame_type::admin_result:
        return round_trip<admin_result_frame>(body);
    case frame_type::revoked:
        return round_trip<revoked_frame>(body);
    case frame_type::origin:
        return round_trip<origin_frame>(body);
    case frame_type::origins_forgotten:
        return round_trip<origins_forgotten_frame>(body);
    case frame_type::fatal:
        return round_trip<fatal_frame>(body);
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    constexpr std::size_t max_frame = 64 * 1024 + 64;
    // The stream as the host's reads would see it: frames back to back, fed
    // through a frame_buffer in pieces whose sizes the first byte picks.
    const std::size_t piece = size ? 1 + data[0] % 97 : 1;
    frame_buffer in;
    for (std::size_t at = size ? 1 : 0; at < size;) {
        auto room = in.prepare(max_frame);
        if (room.empty() || in.capacity() > max_frame + 4)
            std::abort(); // never past one frame's worth
        const auto n = std::min({room.size(), piece, size - at});
        std::memcpy(room.data(), data + at, n);
        in.commit(n);
        at += n;
        for (auto found = in.next(max_frame);; found = in.next(max_frame)) {
            if (found.status == decoded_frame::need_more)
                break;
            if (found.status == decoded_frame::invalid)
                return 0; // the connection would be closed here
            body_of(found.frame.type, found.frame.body);
            in.consume(found.size);
        }
    }
    return 0;
}
