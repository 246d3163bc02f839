// libFuzzer target: the host's routing core fed several interleaved sessions,
// no sockets. The input is a script: each step picks a session and either a
// frame built from the next bytes (well-formed enough to reach deep paths) or
// raw bytes. Invariants checked on every step and at the end:
// - everything the host sends is well-formed frames of host-to-client types;
// - every admin answer is valid JSON;
// - each record of a write frame the host took gets exactly one result;
// - once every session has left, nothing is left: no slot, no subscription.
#include "script.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <array>
#include <cstdlib>
#include <deque>
#include <set>
#include <string>

#include "core/core.hpp"

using namespace slotbus;
using namespace slotbus::bus;

namespace {

using fuzz::check;

struct script : fuzz::script_reader {
    std::uint32_t small() { return byte() % 8; }
    std::uint32_t u32() { return static_cast<std::uint32_t>(number(4)); }
    /// A slot name, mostly from a few that collide, sometimes anything.
    std::string name()
    {
        static const std::array<const char*, 6> names{
            "a", "a/b", R"(\\.\mailslot\A\B)", "events/x", R"(\\*\mailslot\a)", "b"};
        const auto pick = byte();
        return pick < 200 ? names[pick % names.size()] : text(12);
    }
    std::string pattern()
    {
        static const std::array<const char*, 5> patterns{"a", "events/*", "**", "a/**", "b"};
        const auto pick = byte();
        return pick < 200 ? patterns[pick % patterns.size()] : text(12);
    }
};

struct fuzz_session {
    session_id id = 0;
    bool open = false;
    bool closing = false;              // a fatal frame was queued: it only flushes now
    std::deque<byte_buffer> held;      // frames held back by a full slot, in order
    std::uint64_t records_written = 0; // in write/post frames the core took
    std::uint64_t results = 0;         // in write_acks runs
    std::string token;                 // the last duplicate token it was given
    std::set<std::uint32_t> origins;   // announced to it: each once, before its records
};

void take_output(core& c, fuzz_session& s)
{
    byte_buffer out;
    c.take_output(s.id, out);
    byte_span rest(out);
    while (!rest.empty()) {
        const auto found = decode_frame(rest, 1u << 30);
        check(found.status == decoded_frame::ok);
        check(static_cast<std::uint8_t>(found.frame.type) >= 0x81); // host-to-client only
        const auto body = found.frame.body;
        switch (found.frame.type) {
        case frame_type::write_acks: {
            write_acks_frame m;
            check(decode(body, m));
            check(for_each_ack_run(m.runs.bytes, [&](const ack_run& r) { s.results += r.count; }));
            break;
        }
        case frame_type::admin_result: {
            admin_result_frame m;
            check(decode(body, m));
            boost::system::error_code ec;
            (void)boost::json::parse(
                std::string_view(reinterpret_cast<const char*>(m.json.bytes.data()),
                                 m.json.bytes.size()),
                ec);
            check(!ec);
            break;
        }
        case frame_type::result: {
            result_frame m;
            check(decode(body, m));
            if (m.text.size() == 32)
                s.token = std::string(m.text);
            break;
        }
        case frame_type::records: {
            records_frame m;
            check(decode(body, m));
            check(for_each_record(m.records.bytes, [](byte_span) {}));
            check(m.origin == 0 || s.origins.count(m.origin) == 1);
            break;
        }
        case frame_type::origin: {
            origin_frame m;
            check(decode(body, m));
            check(m.id != 0 && s.origins.insert(m.id).second); // never reused
            break;
        }
        default:
            break;
        }
        rest = rest.subspan(found.size);
    }
}

/// Feeds one frame as the session's I/O layer would: behind held frames it waits.
void feed(core& c, fuzz_session& s, byte_buffer frame)
{
    const auto found = decode_frame(frame, c.limits().max_frame_size());
    if (found.status != decoded_frame::ok) {
        c.reject(s.id, "fuzz: not a frame");
        s.closing = true;
        return;
    }
    const bool commutes =
        found.frame.type == frame_type::read_report || found.frame.type == frame_type::ping;
    if (!s.held.empty() && !commutes) {
        s.held.push_back(std::move(frame));
        return;
    }
    const auto result = c.feed(s.id, found.frame);
    if (result == feed_result::blocked) {
        s.held.push_back(std::move(frame));
        return;
    }
    if (result == feed_result::close) {
        s.closing = true;
        return;
    }
    if (found.frame.type == frame_type::write || found.frame.type == frame_type::post) {
        write_frame m;
        if (decode(found.frame.body, m))
            s.records_written += check_record_list(m.records.bytes).count;
    }
}

void resume_held(core& c, fuzz_session& s)
{
    while (!s.held.empty() && !s.closing) {
        const auto found = decode_frame(s.held.front(), c.limits().max_frame_size());
        const auto result = c.feed(s.id, found.frame);
        if (result == feed_result::blocked)
            return;
        if (found.frame.type == frame_type::write || found.frame.type == frame_type::post) {
            write_frame m;
            if (result != feed_result::close && decode(found.frame.body, m))
                s.records_written += check_record_list(m.records.bytes).count;
        }
        s.closing = result == feed_result::close;
        s.held.pop_front();
    }
}

byte_buffer make_frame(script& in, fuzz_session& s)
{
    byte_buffer f;
    const auto handle = 1 + in.small();
    switch (in.byte() % 18) {
    case 0:
        encode(
            f,
            hello_frame{
                protocol_magic, protocol_version, protocol_version, in.u32(), 0, in.text(8), {}});
        break;
    case 1:
        encode(f, create_frame{in.u32(), handle, in.byte() % 2 ? 0u : in.u32() % 64, in.small() % 3,
                               in.byte() % 2 ? 0u : in.u32() % 4096, in.small() % 4, in.name()});
        break;
    case 2:
        encode(f, open_frame{in.u32(), handle, in.small() % 2, in.name()});
        break;
    case 3:
        encode(f, close_frame{in.u32(), handle});
        break;
    case 4:
    case 5: {
        byte_buffer list;
        const auto n = 1 + in.small();
        for (std::uint32_t i = 0; i < n; ++i) {
            const auto r = in.text(40);
            append_record(list, {reinterpret_cast<const std::uint8_t*>(r.data()), r.size()});
        }
        if (in.byte() % 2)
            encode(f, write_frame{handle, payload{list}});
        else
            encode(f, post_frame{handle, payload{list}});
        break;
    }
    case 6:
        encode(f, info_frame{in.u32(), handle});
        break;
    case 7:
        encode(f, set_timeout_frame{in.u32(), handle, in.byte() % 2 ? 0u : 0xffffffffu});
        break;
    case 8:
        encode(f, read_report_frame{handle, in.small(), in.small() * 4});
        break;
    case 9:
        encode(f, poll_frame{in.u32(), handle});
        break;
    case 10:
        encode(f, duplicate_frame{in.u32(), handle});
        break;
    case 11:
        encode(f, attach_frame{in.u32(), handle, in.byte() % 4 ? s.token : in.text(32)});
        break;
    case 12:
        encode(f, subscribe_frame{in.u32(), handle, in.pattern()});
        break;
    case 13:
        encode(f, unsubscribe_frame{in.u32(), handle, in.pattern()});
        break;
    case 14:
        encode(f, ping_frame{in.u32()});
        break;
    case 15: {
        static const std::array<const char*, 4> commands{"slots", "stats", "nope", "plugins"};
        const auto arg = in.text(10);
        encode(f, admin_frame{in.u32(),
                              commands[in.byte() % commands.size()],
                              {{reinterpret_cast<const std::uint8_t*>(arg.data()), arg.size()}}});
        break;
    }
    case 16: // a loss told, with any count (a reader's handle, one never opened, ...)
        encode(f, lost_frame{handle, in.byte() % 2 ? in.small() : in.u32()});
        break;
    default: { // raw bytes: a frame header and whatever follows
        const auto bytes = in.text(24);
        f.assign(bytes.begin(), bytes.end());
        break;
    }
    }
    return f;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    core_limits limits;
    limits.max_record_size = 64;
    limits.min_slot_budget = 1;
    limits.default_slot_budget = 256;
    limits.max_handles = 8;
    limits.max_subscriptions = 4;
    limits.max_window = 8;
    limits.push_bytes = 128;
    limits.max_outbox = 4096;
    limits.max_tokens = 2;
    limits.host_name = "here";
    core c(limits);
    auto now = core::clock::time_point{};
    c.set_clock([&] { return now; });
    c.set_admin_handler([&](session_id, std::string_view command, std::string_view argument,
                            std::error_code& ec) -> std::string {
        if (command == "slots") {
            auto answer = c.slots(argument, ec);
            return ec ? std::string() : boost::json::serialize(answer);
        }
        if (command == "stats")
            return boost::json::serialize(c.stats());
        ec = error::invalid_function;
        return {};
    });

    std::array<fuzz_session, 4> sessions;
    script in{data, size};
    while (!in.done()) {
        auto& s = sessions[in.byte() % sessions.size()];
        const auto op = in.byte() % 16;
        if (!s.open) {
            s = {};
            s.id =
                c.connect({in.u32(), in.byte(), 0, 0, {}, {}}); // uid 0 may do all; others little
            s.open = true;
            if (op < 12) // mostly greeted
                feed(c, s, [] {
                    byte_buffer f;
                    encode(f, hello_frame{});
                    return f;
                }());
        } else if (op == 0 || s.closing) {
            take_output(c, s); // what it was told before it goes
            check(s.results <= s.records_written);
            c.disconnect(s.id);
            s.open = false;
        } else if (op == 1) {
            now += std::chrono::milliseconds(400); // tokens age, slow slots are marked
            c.tick();
        } else {
            feed(c, s, make_frame(in, s));
        }
        // The I/O layer's turn: output out, held frames on where the core says so.
        if (s.open)
            c.end_batch(s.id);
        for (auto id : c.take_touched())
            for (auto& t : sessions)
                if (t.open && t.id == id) {
                    take_output(c, t);
                    if (c.take_resume(id))
                        resume_held(c, t);
                }
    }
    for (auto& s : sessions)
        if (s.open) {
            c.end_batch(s.id);
            take_output(c, s);
            // Every record of every write the core took has its result, unless
            // the write still waits behind a full slot (held, not yet taken).
            if (!s.closing)
                check(s.results == s.records_written);
            c.disconnect(s.id);
        }
    check(c.names().size() == 0);
    check(c.stats().at("connections").to_number<std::uint64_t>() == 0);
    return 0;
}
