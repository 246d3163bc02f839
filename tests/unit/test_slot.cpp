#define BOOST_TEST_MODULE slot
#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

#include "core/slot.hpp"

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
    reader r1{.target = &s, .owner = 1, .handle = 1, .window = 2, .in_flight_ = {}};
    reader r2{.target = &s, .owner = 2, .handle = 1, .window = 2, .in_flight_ = {}};
    std::vector<std::pair<std::uint64_t, std::string>> pushed;
    std::size_t runs = 0; // emitted as one span of several records

    // What the core would send: one record, or a run of them in wire form.
    struct emitter {
        fixture& f;
        void operator()(reader& r, const queued_record& q) const
        {
            f.pushed.emplace_back(r.owner, text(q.bytes()));
        }
        void operator()(reader& r, std::span<const std::uint8_t> list, origin*) const
        {
            ++f.runs;
            BOOST_TEST_REQUIRE(slotbus::for_each_record(list, [&](std::span<const std::uint8_t> b) {
                f.pushed.emplace_back(r.owner, text(b));
            }));
        }
    };
    // Queues a record; pushed at once when nothing waits and a reader has room.
    void put(std::string_view t) { s.enqueue(bytes(t), nullptr, nullptr, emitter{*this}); }
    void pump() { s.pump(emitter{*this}); }
    /// The reader read n of its records; what is pushed next starts afresh.
    bool read_then_pump(reader& r, std::uint32_t n)
    {
        const bool ok = s.consume(r, n);
        pushed.clear();
        pump();
        return ok;
    }
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
    static_assert(slot::record_cost == 36); // a record's length and its 32-byte entry
    BOOST_TEST(s.has_room_for(1000));       // empty: anything moves
    put(std::string(40, 'x'));              // costs 76 of the budget of 100
    BOOST_TEST(s.has_room_for(24));
    BOOST_TEST(!s.has_room_for(25));
    BOOST_TEST(s.consume(r1, 1));
    // Even empty records fill a slot: 36 each.
    for (int i = 0; i < 2; ++i)
        put("");
    BOOST_TEST(s.has_room_for(28));
    BOOST_TEST(!s.has_room_for(29));
    BOOST_TEST(s.counts().messages == 2u);
}

BOOST_FIXTURE_TEST_CASE(readers_take_turns_and_returned_records_keep_order, fixture)
{
    s.add_reader(&r1);
    s.add_reader(&r2);
    for (auto t : {"a", "b", "c", "d", "e"})
        put(t);
    pump();
    BOOST_TEST(pushed.size() == 4u); // two each
    BOOST_TEST(r1.in_flight().size() == 2u);
    BOOST_TEST(r2.in_flight().size() == 2u);
    // r1 goes away unread: its records return ahead of "e", in order.
    s.remove_reader(&r1);
    BOOST_TEST(s.counts().messages == 5u);
    BOOST_TEST(read_then_pump(r2, 2));
    BOOST_TEST_REQUIRE(pushed.size() == 2u);
    BOOST_TEST(pushed[0].second == "a");
    BOOST_TEST(pushed[1].second == "c");
    BOOST_TEST(read_then_pump(r2, 2));
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

namespace {
// A record list in wire form, as a write frame brings it.
slotbus::byte_buffer list_of(std::initializer_list<std::string_view> records)
{
    slotbus::byte_buffer list;
    for (auto r : records)
        slotbus::append_record(list, bytes(r));
    return list;
}
} // namespace

BOOST_FIXTURE_TEST_CASE(a_lone_reader_is_pushed_runs_that_stop_at_gaps_and_its_window, fixture)
{
    r1.window = 5;
    s.add_reader(&r1);
    const auto list = list_of({"a", "bb", "ccc"});
    BOOST_TEST(s.enqueue_list(list, record_queue::inline_limit, nullptr, emitter{*this}) == 3u);
    BOOST_TEST(runs == 1u); // one span, as it came
    s.drop_newest();
    put("d"); // carries the gap: goes alone, so its gap goes first
    put("e");
    BOOST_TEST(runs == 1u);
    BOOST_TEST(r1.pushed == 5u);
    put("f");
    put("g");
    BOOST_TEST(pushed.size() == 5u); // the window is full: f and g wait
    BOOST_TEST(s.counts().messages == 7u);
    BOOST_TEST(s.counts().next_size == 1u);
    BOOST_TEST(s.consume(r1, 5));
    BOOST_TEST(s.counts().messages == 2u);
    pump();
    BOOST_TEST(runs == 2u);
    std::vector<std::string> order;
    for (auto& [owner, t] : pushed)
        order.push_back(t);
    BOOST_TEST((order == std::vector<std::string>{"a", "bb", "ccc", "d", "e", "f", "g"}));
    BOOST_TEST(!s.consume(r1, 3)); // two were pushed since
}

BOOST_FIXTURE_TEST_CASE(a_second_reader_takes_over_and_the_first_ones_records_stay_in_order,
                        fixture)
{
    r1.window = 3;
    s.add_reader(&r1);
    const auto list = list_of({"a", "b", "c", "d", "e"});
    BOOST_TEST(s.enqueue_list(list, record_queue::inline_limit, nullptr, emitter{*this}) == 5u);
    BOOST_TEST(pushed.size() == 3u); // a, b, c to r1; d, e wait
    s.add_reader(&r2);               // r1's pushed records move to its own queue
    BOOST_TEST(r1.in_flight().size() == 3u);
    pump();
    BOOST_TEST_REQUIRE(pushed.size() == 5u);
    BOOST_TEST(pushed[3].first == 2u); // d, e to r2
    BOOST_TEST(pushed[4].second == "e");
    // r1 closes unread: a, b, c wait again, ahead of anything newer.
    s.remove_reader(&r1);
    BOOST_TEST(s.counts().messages == 5u);
    BOOST_TEST(s.counts().next_size == 1u);
    // r2 is alone now: a, b at the front of the queue, as one run.
    BOOST_TEST(read_then_pump(r2, 2));
    BOOST_TEST_REQUIRE(pushed.size() == 2u);
    BOOST_TEST(pushed[0].second == "a");
    BOOST_TEST(pushed[1].second == "b");
    BOOST_TEST(read_then_pump(r2, 2));
    BOOST_TEST_REQUIRE(pushed.size() == 1u);
    BOOST_TEST(pushed[0].second == "c");
    BOOST_TEST(s.consume(r2, 1));
    BOOST_TEST(s.counts().messages == 0u);
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
        q.push(i, i % 3, bytes(t), shared.get(), nullptr);
        BOOST_TEST(text(q.back().bytes()) == t);
        sent.push_back(std::move(t));
    }
    BOOST_TEST(q.size() == 3000u);
    for (std::size_t i = 0; i < q.size(); ++i)
        BOOST_TEST(q[i].seq == i);
    for (std::uint32_t i = 0; i < 3000; ++i) {
        BOOST_TEST_REQUIRE(!q.empty());
        BOOST_TEST(q.front().seq == i);
        BOOST_TEST(std::uint32_t{q.front().missed_before} == i % 3);
        BOOST_TEST(text(q.front().bytes()) == sent[i]);
        // Refilled as it drains: chunks are reused, order holds.
        if (i % 2 == 0)
            q.push(3000 + i, 0, bytes(sent[i]), nullptr, nullptr);
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
        a.push(1, 0, bytes(t), shared.get(), nullptr);
        b.push(a.front());
        BOOST_TEST(a.front().bytes().data() == b.front().bytes().data()); // not copied
    }
    a.pop_front();
    BOOST_TEST(text(b.front().bytes()) == t);
    record_queue moved = std::move(b);
    BOOST_TEST(b.empty());
    BOOST_TEST(text(moved.front().bytes()) == t);
}

BOOST_AUTO_TEST_CASE(a_list_is_queued_in_runs_that_keep_its_wire_form)
{
    // Sizes 0..512 so runs break at many chunk ends; each record adjacent
    // to the next in the log reads back as the list's own bytes.
    std::vector<std::string> sent;
    slotbus::byte_buffer list;
    for (std::uint32_t i = 0; i < 2000; ++i) {
        sent.emplace_back(i * 7 % (record_queue::inline_limit + 1),
                          static_cast<char>('a' + i % 26));
        slotbus::append_record(list, bytes(sent.back()));
    }
    record_queue q;
    q.push(99, 0, bytes("before"), nullptr, nullptr);
    const auto pushed = q.push_list(100, 4, list, record_queue::inline_limit, nullptr);
    BOOST_TEST(pushed.count == 2000u);
    BOOST_TEST_REQUIRE(q.size() == 2001u);
    BOOST_TEST(std::uint32_t{q[1].missed_before} == 4u);
    BOOST_TEST(std::uint32_t{q[2].missed_before} == 0u);
    std::size_t at = 0, breaks = 0;
    for (std::size_t i = 1; i < q.size(); ++i) {
        BOOST_TEST(q[i].seq == 99 + i);
        BOOST_TEST(text(q[i].bytes()) == sent[i - 1]);
        std::size_t end = i;
        while (end + 1 < q.size() && record_queue::adjacent(q[end], q[end + 1]))
            ++end;
        const auto wire = record_queue::wire(q[i], q[end]);
        BOOST_TEST(std::equal(wire.begin(), wire.end(), list.begin() + at));
        at += wire.size();
        breaks += end + 1 < q.size();
        i = end;
    }
    BOOST_TEST(at == list.size());
    BOOST_TEST(breaks > 0u); // it did cross chunks
    std::uint64_t total = 0;
    for (const auto& r : sent)
        total += r.size();
    BOOST_TEST(pushed.bytes == total);
    BOOST_TEST(q.pop_front(1) == 6u); // "before"
    BOOST_TEST(q.pop_front(1000) + q.pop_front(1000) == total);
    BOOST_TEST(q.empty());
}

BOOST_AUTO_TEST_CASE(a_refused_list_leaves_the_queue_as_it_was)
{
    // Lists long enough to cross several chunks, refused at their end: by a
    // lying length, by a record over the limit, or by holding no record.
    slotbus::byte_buffer good;
    for (int i = 0; i < 2000; ++i)
        slotbus::append_record(good, bytes(std::string(100, static_cast<char>('a' + i % 26))));
    auto lying = good;
    lying.resize(lying.size() - 1); // the last record one byte short
    auto too_large = good;
    slotbus::append_record(too_large, bytes(std::string(101, 'z')));

    record_queue q;
    const auto shared = record::make(bytes(std::string(600, 's')));
    q.push(1, 0, bytes("before"), nullptr, nullptr);
    q.push(2, 0, shared->bytes(), shared.get(), nullptr);
    for (const auto* refused : {&lying, &too_large, &good}) {
        const std::uint32_t limit = refused == &good ? 99 : 100;
        BOOST_TEST(q.push_list(3, 0, *refused, limit, nullptr).count == 0u);
        BOOST_TEST(q.push_list(3, 0, {}, limit, nullptr).count == 0u);
        BOOST_TEST_REQUIRE(q.size() == 2u);
        BOOST_TEST(text(q[0].bytes()) == "before");
        BOOST_TEST(q[1].shared() == shared.get());
    }
    // What comes next goes where the refused lists started: right after "before".
    BOOST_TEST(q.push_list(3, 0, good, 100, nullptr).count == 2000u);
    BOOST_TEST(static_cast<const void*>(q[2].data) == static_cast<const void*>(q[0].data + 6 + 4));
    BOOST_TEST(q.pop_front(2002) == 6u + 600u + 2000u * 100u);
    BOOST_TEST(q.empty());
}
