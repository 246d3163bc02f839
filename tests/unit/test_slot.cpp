#define BOOST_TEST_MODULE slot
#include "slot.hpp"

#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

using namespace slotbus::bus;

namespace {

std::span<const std::uint8_t> bytes(std::string_view s)
{
    return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

std::string text(std::span<const std::uint8_t> b)
{
    return {reinterpret_cast<const char*>(b.data()), b.size()};
}

struct fixture {
    slot_config config{0, 0, 100, 1000};
    slot s{slotbus::slot_name::parse("a/b"), config};
    reader r1{.target = &s, .owner = 1, .handle = 1, .window = 2, .in_flight = {}};
    reader r2{.target = &s, .owner = 2, .handle = 1, .window = 2, .in_flight = {}};
    std::vector<std::pair<std::uint64_t, std::string>> pushed;
    std::size_t runs = 0; // emitted as one span of several records

    // What the core would send: one record, or a run of them in wire form.
    struct emitter {
        fixture& f;
        void operator()(reader& r, const queued_record& q) const
        {
            f.pushed.emplace_back(r.owner, text(q.bytes()));
        }
        void operator()(reader& r, std::span<const std::uint8_t> list) const
        {
            ++f.runs;
            BOOST_TEST_REQUIRE(slotbus::for_each_record(list, [&](std::span<const std::uint8_t> b) {
                f.pushed.emplace_back(r.owner, text(b));
            }));
        }
    };
    // Queues a record; pushed at once when nothing waits and a reader has room.
    void put(std::string_view t) { s.enqueue(bytes(t), nullptr, emitter{*this}); }
    void pump() { s.pump(emitter{*this}); }
};

} // namespace

BOOST_FIXTURE_TEST_CASE(counts_are_exact_and_fifo, fixture)
{
    s.add_reader(&r1);
    BOOST_TEST(s.counts().messages == 0u);
    BOOST_TEST(s.counts().next_size == 0xffffffffu);
    r1.window = 0; // nothing pushed until it reads
    put("zero");
    BOOST_TEST(pushed.empty());
    r1.window = 2;
    pump();
    BOOST_TEST(pushed.size() == 1u); // once it may
    BOOST_TEST(s.consume(r1, 1));
    pushed.clear();
    put("one");
    put("");
    put("three");
    BOOST_TEST(s.counts().messages == 3u);
    BOOST_TEST(s.counts().next_size == 3u);
    BOOST_TEST(s.counts().bytes == 8u);
    BOOST_TEST(pushed.size() == 2u); // window 2: two pushed as they came, still counted
    pump();
    BOOST_TEST(pushed.size() == 2u);
    BOOST_TEST(s.counts().messages == 3u);
    BOOST_TEST(s.consume(r1, 1));
    BOOST_TEST(s.counts().messages == 2u);
    BOOST_TEST(s.counts().next_size == 0u); // a zero-length record is next
    BOOST_TEST(s.consume(r1, 1));
    pump();
    BOOST_TEST(pushed.size() == 3u);
    BOOST_TEST(pushed[2].second == "three");
    BOOST_TEST(!s.consume(r1, 2)); // more than it was sent
}

BOOST_FIXTURE_TEST_CASE(budget_holds_back_but_never_starves, fixture)
{
    s.add_reader(&r1);
    BOOST_TEST(s.has_room_for(1000)); // empty: anything moves
    put(std::string(90, 'x'));
    BOOST_TEST(s.has_room_for(10));
    BOOST_TEST(!s.has_room_for(11));
}

BOOST_FIXTURE_TEST_CASE(readers_take_turns_and_returned_records_keep_order, fixture)
{
    s.add_reader(&r1);
    s.add_reader(&r2);
    for (auto t : {"a", "b", "c", "d", "e"})
        put(t);
    pump();
    BOOST_TEST(pushed.size() == 4u); // two each
    BOOST_TEST(r1.in_flight.size() == 2u);
    BOOST_TEST(r2.in_flight.size() == 2u);
    // r1 goes away unread: its records return ahead of "e", in order.
    s.remove_reader(&r1);
    BOOST_TEST(s.counts().messages == 5u);
    BOOST_TEST(s.consume(r2, 2));
    pushed.clear();
    pump();
    BOOST_TEST_REQUIRE(pushed.size() == 2u);
    BOOST_TEST(pushed[0].second == "a");
    BOOST_TEST(pushed[1].second == "c");
    BOOST_TEST(s.consume(r2, 2));
    pushed.clear();
    pump();
    BOOST_TEST(pushed[0].second == "e");
}

BOOST_FIXTURE_TEST_CASE(push_bytes_bound_a_reader, fixture)
{
    r1.window = 100;
    s.add_reader(&r1);
    for (int i = 0; i < 5; ++i)
        put(std::string(400, 'x'));
    pump();
    BOOST_TEST(pushed.size() == 2u); // 1000 bytes ahead at most, but always one
}

BOOST_AUTO_TEST_CASE(a_queue_keeps_order_across_chunks_and_sizes)
{
    // Sizes from 0 to inline_limit and past it, so records straddle many
    // chunks and a few are held shared.
    record_queue q;
    std::vector<std::string> sent;
    for (std::uint32_t i = 0; i < 3000; ++i) {
        std::string t(i * 7 % 700, static_cast<char>('a' + i % 26));
        const auto shared =
            t.size() > record_queue::inline_limit ? record::make(bytes(t)) : nullptr;
        q.push(i, i % 3, bytes(t), shared.get());
        BOOST_TEST(text(q.back().bytes()) == t);
        sent.push_back(std::move(t));
    }
    BOOST_TEST(q.size() == 3000u);
    std::size_t walked = 0;
    q.for_each([&](const queued_record& r) { BOOST_TEST(r.seq == walked++); });
    BOOST_TEST(walked == 3000u);
    for (std::uint32_t i = 0; i < 3000; ++i) {
        BOOST_TEST_REQUIRE(!q.empty());
        BOOST_TEST(q.front().seq == i);
        BOOST_TEST(q.front().missed_before == i % 3);
        BOOST_TEST(text(q.front().bytes()) == sent[i]);
        // Refilled as it drains: chunks are reused, order holds.
        if (i % 2 == 0)
            q.push(3000 + i, 0, bytes(sent[i]), nullptr);
        q.pop_front();
    }
    BOOST_TEST(q.size() == 1500u);
    for (std::uint32_t i = 0; i < 3000; i += 2, q.pop_front())
        BOOST_TEST(text(q.front().bytes()) == sent[i]);
    BOOST_TEST(q.empty());
}

BOOST_AUTO_TEST_CASE(a_shared_record_outlives_every_queue_but_the_last)
{
    // A fanned-out record is stored once; each queue holds a reference.
    // (Under ASan a release too many or too few shows.)
    const std::string t(record_queue::inline_limit + 1, 'x');
    record_queue a, b;
    {
        const auto shared = record::make(bytes(t));
        a.push(1, 0, bytes(t), shared.get());
        b.push(a.front());
        BOOST_TEST(a.front().bytes().data() == b.front().bytes().data()); // not copied
    }
    a.pop_front();
    BOOST_TEST(text(b.front().bytes()) == t);
    record_queue moved = std::move(b);
    BOOST_TEST(b.empty());
    BOOST_TEST(text(moved.front().bytes()) == t);
}
