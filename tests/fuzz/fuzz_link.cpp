// libFuzzer target: two hosts' cores joined by a link (host_link), no
// sockets. The script interleaves a writer's writes to the peer's slots,
// honest traffic, reads at the destination, streams cut and restored, and
// frames a hostile peer makes up, sent either way. Invariants:
// - what a link sends is well-formed frames;
// - every record of a write the origin took gets exactly one result, by the
//   end at the latest (a link given up fails what waited with 64);
// - a link that refuses a frame stays usable after a new stream.
#include "script.hpp"

#include <cstdlib>
#include <memory>

#include "core/core.hpp"
#include "host/link.hpp"

using namespace slotbus;
using namespace slotbus::bus;

namespace {

using fuzz::check;

struct script : fuzz::script_reader {
    std::uint64_t u64(int bytes) { return number(bytes); }
    byte_buffer records()
    {
        byte_buffer list;
        const int n = 1 + byte() % 4;
        for (int i = 0; i < n; ++i) {
            const byte_buffer r(byte() % 64, byte());
            append_record(list, r);
        }
        return list;
    }
};

struct one_peer final : remote_hosts {
    host_link* to = nullptr;
    std::uint64_t acquire(std::string_view host, const slot_name& name,
                          std::error_code& ec) override
    {
        if (host != "beta") {
            ec = error::bad_netpath;
            return 0;
        }
        return to->acquire(name, ec);
    }
    void release(std::uint64_t d) override { to->release(static_cast<std::uint32_t>(d)); }
    bool write(std::uint64_t d, byte_span records, std::uint32_t count, write_ticket t) override
    {
        return to->write(static_cast<std::uint32_t>(d), records, count, t);
    }
};

template <class M> frame_view frame_of(byte_buffer& storage, const M& m)
{
    storage.clear();
    encode(storage, m);
    return decode_frame(storage, 1u << 24).frame;
}

// Counts the results in what a session was sent.
std::uint64_t results_in(core& c, session_id id)
{
    byte_buffer out;
    c.take_output(id, out);
    std::uint64_t n = 0;
    for (byte_span rest(out); !rest.empty();) {
        const auto found = decode_frame(rest, 1u << 30);
        check(found.status == decoded_frame::ok);
        if (found.frame.type == frame_type::write_acks) {
            write_acks_frame m;
            check(decode(found.frame.body, m));
            check(for_each_ack_run(m.runs.bytes, [&](const ack_run& r) { n += r.count; }));
        }
        rest = rest.subspan(found.size);
    }
    return n;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    script in{data, size};
    auto now = host_link::clock::now();
    core_limits la, lb;
    la.host_name = "alpha";
    lb.host_name = "beta";
    lb.min_slot_budget = 1;
    core alpha(la), beta(lb);
    std::string why;
    auto rules = policy::parse(
        R"({"rules": [{"host": "alpha", "allow": ["write"], "names": ["x"]}]})", 0, why);
    check(rules.has_value());
    beta.set_policy(std::make_shared<const policy>(std::move(*rules)));
    host_link::settings sa, sb;
    sa.self = sb.peer = "alpha";
    sa.peer = sb.self = "beta";
    sa.flow_credit = sb.flow_credit = 512;
    sa.window = sb.window = 2048;
    auto to_beta = std::make_unique<host_link>(alpha, sa);
    auto to_alpha = std::make_unique<host_link>(beta, sb);
    one_peer route;
    route.to = to_beta.get();
    alpha.set_remote(&route);

    byte_buffer storage;
    const auto greet = [&](core& c, session_id id) {
        c.feed(id, frame_of(storage, hello_frame{}));
        c.end_batch(id);
        byte_buffer ignored;
        c.take_output(id, ignored);
    };
    const session_id writer = alpha.connect({});
    greet(alpha, writer);
    for (std::uint32_t h : {1u, 2u}) {
        alpha.feed(writer, frame_of(storage, open_frame{h, h, 0,
                                                        h == 1 ? R"(\\beta\mailslot\x)"
                                                               : R"(\\beta\mailslot\y)"}));
        alpha.end_batch(writer);
    }
    (void)results_in(alpha, writer);
    const session_id reader = beta.connect({});
    greet(beta, reader);
    beta.feed(reader, frame_of(storage, create_frame{1, 1, 0, 0, 200, 0, "x"}));
    beta.end_batch(reader);
    std::uint64_t taken = 0, results = 0;
    std::uint32_t pushed_unreported = 0;
    bool held = false; // the writer's last frame waits for credit
    byte_buffer held_frame;

    const auto deliver = [&](host_link& from, host_link& to, bool lose) {
        byte_buffer bytes;
        from.take_output(bytes);
        for (byte_span rest(bytes); !rest.empty();) {
            const auto found = decode_frame(rest, 1u << 24);
            check(found.status == decoded_frame::ok); // a link sends frames, always
            if (!lose && !to.feed(found.frame, now))
                return false;
            rest = rest.subspan(found.size);
        }
        return true;
    };
    const auto reconnect = [&] {
        to_beta->disconnected(now);
        to_alpha->disconnected(now);
        to_beta->connected(now);
        to_alpha->connected(now);
    };
    const auto shuttle = [&] {
        for (int round = 0; round < 8; ++round) {
            for (auto id : beta.take_touched())
                if (to_alpha->owns(id))
                    to_alpha->collect(id);
            const bool ok =
                deliver(*to_beta, *to_alpha, false) && deliver(*to_alpha, *to_beta, false);
            if (!ok)
                reconnect();
        }
        results += results_in(alpha, writer);
        byte_buffer out;
        beta.take_output(reader, out);
        for (byte_span rest(out); !rest.empty();) {
            const auto found = decode_frame(rest, 1u << 30);
            check(found.status == decoded_frame::ok);
            if (found.frame.type == frame_type::records) {
                records_frame m;
                check(decode(found.frame.body, m));
                pushed_unreported += check_record_list(m.records.bytes).count;
            }
            rest = rest.subspan(found.size);
        }
        if (held && alpha.take_resume(writer)) { // fed again, as a session does
            held = false;
            const auto r = alpha.feed(writer, decode_frame(held_frame, 1u << 24).frame);
            alpha.end_batch(writer);
            if (r == feed_result::blocked)
                held = true;
            else
                taken +=
                    check_record_list(byte_span(held_frame).subspan(frame_header_size + 4)).count;
        }
    };
    reconnect();
    shuttle();

    while (!in.done()) {
        switch (in.byte() % 7) {
        case 0: { // the writer writes
            if (held)
                break;
            const auto list = in.records();
            held_frame.clear();
            encode(held_frame, write_frame{1u + in.byte() % 2, payload{list}});
            const auto r = alpha.feed(writer, decode_frame(held_frame, 1u << 24).frame);
            alpha.end_batch(writer);
            if (r == feed_result::blocked)
                held = true;
            else
                taken += check_record_list(list).count;
            break;
        }
        case 1:
            shuttle();
            break;
        case 2: // the reader reads some
            beta.feed(reader, frame_of(storage, read_report_frame{1, pushed_unreported, 64}));
            beta.end_batch(reader);
            pushed_unreported = 0;
            break;
        case 3:
        case 4: { // a hostile peer's frame, to either side
            host_link& target = in.byte() % 2 ? *to_alpha : *to_beta;
            const auto list = in.records();
            frame_view f;
            switch (in.byte() % 6) {
            case 0:
                f = frame_of(storage,
                             link_open_frame{static_cast<std::uint32_t>(in.byte() % 4),
                                             in.byte() % 2 ? "x" : R"(\\gamma\mailslot\x)"});
                break;
            case 1:
                f = frame_of(storage, link_write_frame{static_cast<std::uint32_t>(in.byte() % 4),
                                                       in.u64(1), payload{list}});
                break;
            case 2: {
                byte_buffer runs(link_result_run_size * (1 + in.byte() % 3));
                for (auto& b : runs)
                    b = in.byte() % 4;
                f = frame_of(storage, link_results_frame{in.u64(1), payload{runs}});
                break;
            }
            case 3:
                f = frame_of(storage, link_credit_frame{static_cast<std::uint32_t>(in.byte() % 4),
                                                        in.u64(3)});
                break;
            case 4:
                f = frame_of(storage, link_ack_frame{in.u64(1)});
                break;
            default:
                f = frame_of(storage, link_close_frame{static_cast<std::uint32_t>(in.byte() % 4)});
            }
            if (!target.feed(f, now))
                reconnect();
            break;
        }
        case 5: // the stream is lost, and maybe comes back later
            to_beta->disconnected(now);
            to_alpha->disconnected(now);
            if (in.byte() % 2)
                reconnect();
            break;
        default: // time passes
            now += std::chrono::seconds(in.byte() % 40);
            to_beta->tick(now);
            to_alpha->tick(now);
            break;
        }
    }
    // The end: what still waits is given up, so every record has its result.
    shuttle();
    to_beta->disconnected(now);
    to_alpha->disconnected(now);
    now += std::chrono::minutes(1);
    to_beta->tick(now);
    results += results_in(alpha, writer);
    if (held && alpha.take_resume(writer)) {
        const auto r = alpha.feed(writer, decode_frame(held_frame, 1u << 24).frame);
        alpha.end_batch(writer);
        if (r != feed_result::blocked)
            taken += check_record_list(byte_span(held_frame).subspan(frame_header_size + 4)).count;
        results += results_in(alpha, writer);
    }
    check(results == taken);
    return 0;
}
