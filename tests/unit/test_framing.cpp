#define BOOST_TEST_MODULE framing
#include "slotbus/protocol.hpp"

#include <boost/endian/conversion.hpp>
#include <boost/test/unit_test.hpp>

#include <random>

using namespace slotbus;

namespace {
constexpr std::size_t max_frame = 1024;

byte_buffer frame_of(const auto& message)
{
    byte_buffer out;
    encode(out, message);
    return out;
}
} // namespace

BOOST_AUTO_TEST_CASE(round_trip_every_field_type)
{
    auto bytes = frame_of(
        create_frame{7, 3, 424, mailslot_wait_forever, 4096, 2, R"(\\.\mailslot\taxes\sue)"});
    auto found = decode_frame(bytes, max_frame);
    BOOST_TEST(found.status == decoded_frame::ok);
    BOOST_TEST(found.size == bytes.size());
    BOOST_TEST((found.frame.type == frame_type::create));
    create_frame m;
    BOOST_TEST(decode(found.frame.body, m));
    BOOST_TEST(m.request_id == 7u);
    BOOST_TEST(m.max_message_size == 424u);
    BOOST_TEST(m.read_timeout == mailslot_wait_forever);
    BOOST_TEST(m.byte_budget == 4096u);
    BOOST_TEST(m.name == R"(\\.\mailslot\taxes\sue)");

    welcome_frame w{1,         1u << 20,  (1u << 20) + 64, 0x1122334455667788ull,
                    16u << 10, 16u << 20, "host",          "journal"};
    auto wb = frame_of(w);
    welcome_frame w2;
    BOOST_TEST(decode(decode_frame(wb, max_frame).frame.body, w2));
    BOOST_TEST(w2.connection_id == 0x1122334455667788ull);
    BOOST_TEST(w2.plugin == "journal");
    BOOST_TEST(w2.lane_threshold == 16u << 10);
    BOOST_TEST(w2.max_lane_record == 16u << 20);
}

BOOST_AUTO_TEST_CASE(payload_takes_the_rest_including_nothing)
{
    const std::uint8_t data[] = {0, 1, 2, 0xff};
    auto bytes = frame_of(admin_result_frame{3, 0, payload{data}});
    admin_result_frame m;
    BOOST_TEST(decode(decode_frame(bytes, max_frame).frame.body, m));
    BOOST_TEST(m.request_id == 3u);
    BOOST_TEST(m.json.bytes.size() == 4u);
    BOOST_TEST(m.json.bytes[3] == 0xff);

    auto empty = frame_of(admin_result_frame{3, 0, payload{}});
    BOOST_TEST(decode(decode_frame(empty, max_frame).frame.body, m));
    BOOST_TEST(m.json.bytes.empty());
}

namespace {
byte_span bytes_of(std::string_view s)
{
    return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}
std::vector<std::string> records_in(byte_span list, bool& ok)
{
    std::vector<std::string> out;
    ok = for_each_record(list, [&](byte_span r) { out.emplace_back(r.begin(), r.end()); });
    return out;
}
} // namespace

BOOST_AUTO_TEST_CASE(record_lists_carry_empty_records_and_refuse_lying_lengths)
{
    byte_buffer list;
    append_record(list, bytes_of("one"));
    append_record(list, bytes_of("")); // zero-length records are real
    append_record(list, bytes_of("three"));
    bool ok = false;
    BOOST_TEST((records_in(list, ok) == std::vector<std::string>{"one", "", "three"}));
    BOOST_TEST(ok);
    const auto summary = check_record_list(list);
    BOOST_TEST(summary.valid);
    BOOST_TEST(summary.count == 3u);
    BOOST_TEST(summary.bytes == 8u);

    // A length past the end, a cut length and an empty list are refused
    // before any record is handed out.
    for (std::size_t cut : {list.size() - 1, std::size_t{9}, std::size_t{2}, std::size_t{0}}) {
        BOOST_TEST(records_in(byte_span(list).first(cut), ok).empty());
        BOOST_TEST(!ok);
        BOOST_TEST(!check_record_list(byte_span(list).first(cut)).valid);
    }
    byte_buffer lying = list;
    lying[7 + 4] = 0xff; // the second record's length now claims far too much
    BOOST_TEST(records_in(lying, ok).empty());
    BOOST_TEST(!ok);
}

BOOST_AUTO_TEST_CASE(consecutive_records_for_one_handle_share_a_frame)
{
    byte_buffer out;
    record_list_builder writes(frame_type::write);
    writes.append(out, 1, bytes_of("a"));
    writes.append(out, 1, bytes_of("bb"));
    writes.append(out, 2, bytes_of("c")); // another handle: a new frame
    encode(out, ping_frame{7});
    writes.append(out, 2, bytes_of("d")); // something came between: a new frame
    const std::string big(record_list_builder::batch_bytes, 'x');
    writes.append(out, 2, bytes_of(big)); // past the batch size: a new frame

    std::vector<std::pair<std::uint32_t, std::vector<std::string>>> frames;
    for (byte_span rest(out); !rest.empty();) {
        const auto found = decode_frame(rest, 2 * record_list_builder::batch_bytes);
        BOOST_REQUIRE(found.status == decoded_frame::ok);
        rest = rest.subspan(found.size);
        if (found.frame.type == frame_type::ping)
            continue;
        write_frame m;
        BOOST_REQUIRE(decode(found.frame.body, m));
        bool ok = false;
        frames.emplace_back(m.handle, records_in(m.records.bytes, ok));
        BOOST_TEST(ok);
    }
    BOOST_REQUIRE(frames.size() == 4u);
    BOOST_TEST((frames[0].second == std::vector<std::string>{"a", "bb"}));
    BOOST_TEST(frames[1].first == 2u);
    BOOST_TEST((frames[2].second == std::vector<std::string>{"d"}));
    BOOST_TEST(frames[3].second.front().size() == big.size());

    writes.reset(); // out was handed on: nothing in it is extended
    byte_buffer other;
    encode(other, ping_frame{1});
    other.resize(out.size());
    writes.append(other, 2, bytes_of("e"));
    BOOST_TEST(decode_frame(byte_span(other).subspan(out.size()), max_frame).status ==
               decoded_frame::ok);
}

BOOST_AUTO_TEST_CASE(truncated_frames_need_more)
{
    auto bytes = frame_of(open_frame{1, 1, 0, "a/b"});
    for (std::size_t cut = 0; cut < bytes.size(); ++cut)
        BOOST_TEST(decode_frame({bytes.data(), cut}, max_frame).status == decoded_frame::need_more);
}

BOOST_AUTO_TEST_CASE(two_frames_in_one_read)
{
    auto bytes = frame_of(open_frame{1, 1, 0, "a"});
    auto second = frame_of(close_frame{2, 9});
    bytes.insert(bytes.end(), second.begin(), second.end());
    auto first = decode_frame(bytes, max_frame);
    BOOST_TEST(first.status == decoded_frame::ok);
    auto next = decode_frame(byte_span(bytes).subspan(first.size), max_frame);
    BOOST_TEST(next.status == decoded_frame::ok);
    BOOST_TEST((next.frame.type == frame_type::close));
}

BOOST_AUTO_TEST_CASE(oversized_and_zero_lengths_are_invalid_at_once)
{
    std::uint8_t huge[5] = {0xff, 0xff, 0xff, 0x7f, 0x05};
    BOOST_TEST(decode_frame(huge, max_frame).status == decoded_frame::invalid);
    // Only the length is here: still refused without waiting for 2 GiB.
    BOOST_TEST(decode_frame({huge, 4}, max_frame).status == decoded_frame::invalid);
    std::uint8_t zero[5] = {0, 0, 0, 0, 0x05};
    BOOST_TEST(decode_frame(zero, max_frame).status == decoded_frame::invalid);
    std::uint8_t just_over[5] = {};
    boost::endian::store_little_u32(just_over, max_frame + 1);
    just_over[4] = 0x05;
    BOOST_TEST(decode_frame(just_over, max_frame).status == decoded_frame::invalid);
}

BOOST_AUTO_TEST_CASE(unknown_types_are_invalid)
{
    std::uint8_t unknown[5] = {1, 0, 0, 0, 0x42};
    auto found = decode_frame(unknown, max_frame);
    BOOST_TEST(found.status == decoded_frame::invalid);
    BOOST_TEST(std::string(found.why).find("type") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(lying_lengths_inside_a_body_fail_to_decode)
{
    // A string whose length says more than the body holds.
    auto bytes = frame_of(open_frame{1, 1, 0, "abc"});
    auto body = decode_frame(bytes, max_frame).frame.body;
    byte_buffer lying(body.begin(), body.end());
    boost::endian::store_little_u16(lying.data() + 12, 200); // the name's length
    open_frame m;
    BOOST_TEST(!decode(lying, m));
    // Short bodies and trailing bytes are malformed too.
    BOOST_TEST(!decode(byte_span(body).first(3), m));
    byte_buffer trailing(body.begin(), body.end());
    trailing.push_back(0);
    BOOST_TEST(!decode(trailing, m));
    close_frame c;
    BOOST_TEST(!decode(byte_span{}, c));
}

BOOST_AUTO_TEST_CASE(garbage_never_reads_past_the_buffer)
{
    std::mt19937 random(12345);
    for (int round = 0; round < 20000; ++round) {
        byte_buffer junk(random() % 64);
        for (auto& b : junk)
            b = static_cast<std::uint8_t>(random());
        auto found = decode_frame(junk, max_frame);
        if (found.status != decoded_frame::ok)
            continue;
        BOOST_TEST_REQUIRE(found.size <= junk.size());
        create_frame m;
        (void)decode(found.frame.body, m); // must not crash, whatever it says
        if (decode(found.frame.body, m))
            BOOST_TEST_REQUIRE(m.name.data() + m.name.size() <=
                               reinterpret_cast<const char*>(junk.data() + junk.size()));
    }
}

BOOST_AUTO_TEST_CASE(acks_merge_into_runs)
{
    ack_batch batch;
    for (int i = 0; i < 1000; ++i)
        batch.add(0, 1);
    batch.add(2, 0);
    batch.add(0, 1);
    byte_buffer out;
    batch.flush_to(out);
    BOOST_TEST(batch.empty());
    auto found = decode_frame(out, max_frame);
    BOOST_TEST((found.frame.type == frame_type::write_acks));
    write_acks_frame m;
    BOOST_TEST(decode(found.frame.body, m));
    std::vector<ack_run> runs;
    BOOST_TEST(for_each_ack_run(m.runs.bytes, [&](const ack_run& r) { runs.push_back(r); }));
    BOOST_TEST_REQUIRE(runs.size() == 3u);
    BOOST_TEST(runs[0].count == 1000u);
    BOOST_TEST(runs[1].error == 2u);
    BOOST_TEST(runs[2].delivered == 1u);
    BOOST_TEST(!for_each_ack_run(byte_span(m.runs.bytes).first(5), [](const ack_run&) {}));
}

BOOST_AUTO_TEST_CASE(frame_buffer_reassembles_partial_and_large_frames)
{
    frame_buffer in(64);
    byte_buffer stream;
    const std::string big(500, 'x'); // larger than the buffer starts
    encode(stream, open_frame{1, 1, 0, "a"});
    record_list_builder(frame_type::write)
        .append(stream, 1, {reinterpret_cast<const std::uint8_t*>(big.data()), big.size()});
    encode(stream, close_frame{2, 1});
    // Feed the stream in awkward pieces, as reads deliver it.
    std::vector<frame_type> seen;
    std::size_t at = 0;
    while (at < stream.size()) {
        auto room = in.prepare(max_frame);
        const auto n = std::min<std::size_t>({room.size(), 7, stream.size() - at});
        std::memcpy(room.data(), stream.data() + at, n);
        in.commit(n);
        at += n;
        for (auto found = in.next(max_frame); found.status == decoded_frame::ok;
             found = in.next(max_frame)) {
            seen.push_back(found.frame.type);
            if (found.frame.type == frame_type::write)
                BOOST_TEST(found.frame.body.size() == 8u + big.size());
            in.consume(found.size);
        }
    }
    BOOST_TEST(
        (seen == std::vector<frame_type>{frame_type::open, frame_type::write, frame_type::close}));
    BOOST_TEST(in.unread().empty());

    // A length past the limit never makes the buffer grow; next() refuses it.
    frame_buffer small(64);
    auto room = small.prepare(max_frame);
    const std::uint8_t huge[5] = {0xff, 0xff, 0xff, 0x7f, 0x05};
    std::memcpy(room.data(), huge, 5);
    small.commit(5);
    BOOST_TEST(small.prepare(max_frame).size() <= 64u);
    BOOST_TEST(small.next(max_frame).status == decoded_frame::invalid);
}

BOOST_AUTO_TEST_CASE(frame_buffer_grows_with_bytes_received_never_to_a_claimed_length)
{
    constexpr std::size_t limit = (1u << 20) + 64;
    frame_buffer in;
    const std::size_t start = in.capacity();
    // A header that claims a 1 MiB frame, and nothing more: no growth.
    byte_buffer header(9, 0);
    boost::endian::store_little_u32(header.data(), 1u << 20);
    auto room = in.prepare(limit);
    std::memcpy(room.data(), header.data(), header.size());
    in.commit(header.size());
    for (int i = 0; i < 3; ++i)
        BOOST_TEST(in.prepare(limit).size() == start - header.size());
    BOOST_TEST(in.capacity() == start);
    // As its bytes come, the buffer grows to hold them: never past twice what
    // came (and the start), never past the frame.
    std::size_t received = header.size();
    while (received < (1u << 20) + 4) {
        room = in.prepare(limit);
        const auto n = std::min<std::size_t>(room.size(), (1u << 20) + 4 - received);
        std::memset(room.data(), 0, n);
        in.commit(n);
        received += n;
        BOOST_TEST_REQUIRE(in.capacity() <= std::max(start, 2 * received));
    }
    BOOST_TEST(in.capacity() == (1u << 20) + 4u);
    // Reads that fill the buffer whole double it, up to read_size.
    frame_buffer busy;
    byte_buffer pings;
    while (pings.size() < 4 * frame_buffer::read_size)
        encode(pings, ping_frame{1});
    for (std::size_t at = 0; at < pings.size();) {
        room = busy.prepare(limit);
        const auto n = std::min(room.size(), pings.size() - at);
        std::memcpy(room.data(), pings.data() + at, n);
        busy.commit(n);
        at += n;
        for (auto f = busy.next(limit); f.status == decoded_frame::ok; f = busy.next(limit))
            busy.consume(f.size);
    }
    BOOST_TEST(busy.capacity() == frame_buffer::read_size);
}
