// A client of the routing core for unit tests: encodes frames in, decodes
// what comes out; no sockets.
#pragma once

#include <boost/test/unit_test.hpp>

#include <map>
#include <string>
#include <vector>

#include "core/core.hpp"

namespace slotbus::test {

using namespace slotbus::bus;

struct decoded {
    frame_type type;
    byte_buffer body;
};

// The runs of a write_acks frame.
inline std::vector<ack_run> ack_runs_of(const decoded& frame)
{
    BOOST_REQUIRE(frame.type == frame_type::write_acks);
    write_acks_frame m;
    BOOST_REQUIRE(decode(frame.body, m));
    std::vector<ack_run> runs;
    BOOST_REQUIRE(for_each_ack_run(m.runs.bytes, [&](const ack_run& r) { runs.push_back(r); }));
    return runs;
}

// One client of the core: encodes frames in, decodes what comes out.
struct client {
    core& c;
    session_id id;
    std::uint32_t next_request = 1;
    std::uint32_t next_handle = 1; // clients number their handles

    explicit client(core& host, bool greet = true) : client(host, peer_info{}, greet) {}
    /// A client the kernel says is `peer` (uid 0, root, by default).
    client(core& host, peer_info peer, bool greet = true) : c(host), id(host.connect(peer))
    {
        if (greet)
            hello();
    }

    template <class M> feed_result feed(const M& m)
    {
        byte_buffer bytes;
        encode(bytes, m);
        auto found = decode_frame(bytes, c.limits().max_frame_size());
        BOOST_REQUIRE(found.status == decoded_frame::ok);
        auto r = c.feed(id, found.frame);
        c.end_batch(id);
        return r;
    }

    /// The frames sent to it, but origin frames, which it keeps (as the SDK
    /// does) in `origins`.
    std::vector<decoded> take()
    {
        std::vector<decoded> out;
        byte_buffer box;
        c.take_output(id, box);
        byte_span rest(box);
        while (!rest.empty()) {
            auto found = decode_frame(rest, 1u << 30);
            BOOST_REQUIRE(found.status == decoded_frame::ok);
            rest = rest.subspan(found.size);
            if (found.frame.type == frame_type::origin) {
                origin_frame o;
                BOOST_REQUIRE(decode(found.frame.body, o));
                BOOST_TEST(!origins.count(o.id)); // never reused
                origins[o.id] = {o.uid,
                                 o.pid,
                                 std::string(o.plugin),
                                 std::string(o.name),
                                 std::string(o.host),
                                 std::string(o.domain)};
                continue;
            }
            if (found.frame.type == frame_type::records) {
                records_frame m;
                BOOST_REQUIRE(decode(found.frame.body, m));
                BOOST_TEST(origins.count(m.origin)); // announced before it is used
                last_origin = m.origin;
            }
            out.push_back(
                {found.frame.type, byte_buffer(found.frame.body.begin(), found.frame.body.end())});
        }
        return out;
    }
    struct sender {
        std::uint32_t uid, pid;
        std::string plugin, name, host, domain;
    };
    std::map<std::uint32_t, sender> origins;
    std::uint32_t last_origin = 0; // of the last records frame taken

    // The last frame out, decoded; its string views stay valid until the next call.
    template <class M> M last()
    {
        held = take();
        BOOST_REQUIRE(!held.empty());
        BOOST_REQUIRE(held.back().type == M::type);
        M m;
        BOOST_REQUIRE(decode(held.back().body, m));
        return m;
    }
    std::vector<decoded> held;

    void hello()
    {
        feed(hello_frame{});
        BOOST_REQUIRE(last<welcome_frame>().version == protocol_version);
    }

    result_frame create(std::string_view name, std::uint32_t max = 0, std::uint32_t budget = 0,
                        overflow_policy policy = overflow_policy::block)
    {
        feed(create_frame{next_request++, next_handle++, max, 0, budget,
                          static_cast<std::uint32_t>(policy), name});
        return last<result_frame>();
    }
    result_frame open(std::string_view name)
    {
        feed(open_frame{next_request++, next_handle++, 0, name});
        return last<result_frame>();
    }
    feed_result write(std::uint32_t handle, std::string_view data)
    {
        return write_many(handle, {data});
    }
    /// One write frame with these records.
    feed_result write_many(std::uint32_t handle, std::initializer_list<std::string_view> records)
    {
        byte_buffer list;
        for (auto r : records)
            append_record(list, {reinterpret_cast<const std::uint8_t*>(r.data()), r.size()});
        return feed(write_frame{handle, payload{list}});
    }
    std::vector<ack_run> acks()
    {
        std::vector<ack_run> runs;
        for (auto& f : take())
            if (f.type == frame_type::write_acks)
                for (const auto& r : ack_runs_of(f))
                    runs.push_back(r);
        return runs;
    }
    /// As a reader reads: opens its window, takes what it is pushed, and
    /// reports `n` of those records read.
    void read_pushed(std::uint32_t handle, std::uint32_t n)
    {
        feed(read_report_frame{handle, 0, 16});
        take();
        feed(read_report_frame{handle, n, 16});
    }
    info_result_frame info(std::uint32_t handle)
    {
        feed(info_frame{next_request++, handle});
        return last<info_result_frame>();
    }
};

// The records of a records frame.
inline std::vector<std::string> records_of(const decoded& frame)
{
    BOOST_REQUIRE(frame.type == frame_type::records);
    records_frame m;
    BOOST_REQUIRE(decode(frame.body, m));
    std::vector<std::string> out;
    BOOST_REQUIRE(for_each_record(m.records.bytes,
                                  [&](byte_span r) { out.emplace_back(r.begin(), r.end()); }));
    return out;
}

} // namespace slotbus::test
