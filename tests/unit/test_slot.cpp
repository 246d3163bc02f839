#define BOOST_TEST_MODULE slot
#include "slot.hpp"

#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

using namespace slotbus::bus;

namespace {

record_ptr rec(std::string_view s)
{
    return record::make({reinterpret_cast<const std::uint8_t*>(s.data()), s.size()});
}

std::string text(const record& r)
{
    return {reinterpret_cast<const char*>(r.data()), r.size()};
}

struct fixture {
    slot_config config{0, 0, 100, 1000};
    slot s{slotbus::slot_name::parse("a/b"), config};
    reader r1{&s, 1, 1, 2, {}, 0};
    reader r2{&s, 2, 1, 2, {}, 0};
    std::vector<std::pair<std::uint64_t, std::string>> pushed;

    void emit(reader& r, const queued_record& q) { pushed.emplace_back(r.owner, text(*q.rec)); }
    // Queues a record; pushed at once when nothing waits and a reader has room.
    void put(std::string_view t)
    {
        s.enqueue(rec(t), [&](reader& r, const queued_record& q) { emit(r, q); });
    }
    void pump()
    {
        s.pump([&](reader& r, const queued_record& q) { emit(r, q); });
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

BOOST_AUTO_TEST_CASE(records_are_shared_not_copied)
{
    auto r = rec("shared");
    std::vector<record_ptr> queues{r, r, r};
    BOOST_TEST(queues[0].get() == queues[2].get());
    BOOST_TEST(text(*queues[1]) == "shared");
}
