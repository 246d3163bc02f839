#define BOOST_TEST_MODULE topics
// Topics with real processes: fan-out to subscriber processes, and flow
// control that never loses silently.
#include "host_fixture.hpp"

#include <slotbus/slotbus.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <future>
#include <map>
#include <thread>

using namespace slotbus;
using namespace std::chrono_literals;

namespace {

// Checks each writer's records arrive in its order; returns counts per writer.
std::map<char, long> per_writer_in_order(const std::vector<std::string>& records)
{
    std::map<char, long> next;
    for (const auto& r : records) {
        const long n = std::stol(r.substr(2));
        BOOST_TEST_REQUIRE(n == next[r[0]], "out of order: " << r);
        ++next[r[0]];
    }
    return next;
}

// Reads what is queued; checks every record's index is the last one's + 1 +
// the gap told with it. Returns the index after the last record read.
long read_checking_gaps(server_slot& slot, long expected_next)
{
    std::error_code ec;
    slot.set_read_timeout(0);
    while (true) {
        auto [data, missed] = slot.read_record(ec);
        if (ec == error::sem_timeout)
            return expected_next;
        BOOST_REQUIRE(!ec);
        const long index = std::stol(data.substr(2));
        BOOST_TEST_REQUIRE(index == expected_next + static_cast<long>(missed),
                           "record " << index << " after " << expected_next << " told a gap of "
                                     << missed);
        expected_next = index + 1;
    }
}

} // namespace

BOOST_AUTO_TEST_CASE(fan_out_to_four_subscriber_processes)
{
    test::host host;
    auto all =
        test::peer(host, {"create", "sub/all", "--subscribe", "events/**", "--count", "2000"});
    auto orders = test::peer(
        host, {"create", "sub/orders", "--subscribe", "events/orders/*", "--count", "2000"});
    auto eu = test::peer(
        host, {"create", "sub/eu", "--subscribe", "events/orders/eu", "--count", "1000"});
    auto us = test::peer(
        host, {"create", "sub/us", "--subscribe", "*/orders/us,nothing/*", "--count", "1000"});
    for (auto* p : {&all, &orders, &eu, &us})
        BOOST_REQUIRE((*p)->wait_for_line("created"));

    auto a = test::peer(host, {"write", "events/orders/eu", "--count", "1000", "--prefix", "A"});
    auto b = test::peer(host, {"write", "events/orders/us", "--count", "1000", "--prefix", "B"});
    // Each write reached exactly three slots: one stored record, three queues.
    BOOST_TEST(a->wait_for_line("acked 1000 failed 0 delivered 3000", 30s), a->stdout_text());
    BOOST_TEST(b->wait_for_line("acked 1000 failed 0 delivered 3000", 30s), b->stdout_text());
    for (auto* p : {&all, &orders, &eu, &us})
        BOOST_TEST((*p)->wait_exit(30s).value_or(-999) == 0);

    BOOST_TEST((per_writer_in_order(test::records_of(*all)) ==
                std::map<char, long>{{'A', 1000}, {'B', 1000}}));
    BOOST_TEST((per_writer_in_order(test::records_of(*orders)) ==
                std::map<char, long>{{'A', 1000}, {'B', 1000}}));
    BOOST_TEST((per_writer_in_order(test::records_of(*eu)) == std::map<char, long>{{'A', 1000}}));
    BOOST_TEST((per_writer_in_order(test::records_of(*us)) == std::map<char, long>{{'B', 1000}}));
}

BOOST_AUTO_TEST_CASE(no_receiver_is_file_not_found_and_subscriptions_die_with_their_slot)
{
    test::host host;
    connection bus;
    bus.connect(host.socket());
    std::error_code ec;
    (void)client_slot::open(bus, "events/nobody", ec);
    BOOST_TEST(ec == error::file_not_found);
    auto listener = test::peer(host, {"create", "sub/listener", "--subscribe", "events/*"});
    BOOST_REQUIRE(listener->wait_for_line("created"));
    auto writer = client_slot::open(bus, "events/nobody"); // a subscriber receives it now
    BOOST_TEST(writer.write("heard") == 1u);
    BOOST_TEST(listener->wait_for_line("record 5 heard"));
    listener->signal(SIGKILL);
    BOOST_TEST(listener->wait_exit(5s).has_value());
    const auto until = std::chrono::steady_clock::now() + 5s;
    while (std::chrono::steady_clock::now() < until) {
        writer.write("anyone?", ec);
        if (ec)
            break;
        std::this_thread::sleep_for(5ms);
    }
    BOOST_TEST(ec == error::file_not_found);
}

BOOST_AUTO_TEST_CASE(unsubscribing_by_dropping_the_subscription)
{
    test::host host;
    connection bus, writer_bus;
    bus.connect(host.socket());
    writer_bus.connect(host.socket());
    auto inbox = server_slot::create(bus, "inbox", 0, 0);
    auto writer = [&] {
        auto sub = inbox.subscribe("news/*");
        auto w = client_slot::open(writer_bus, "news/today");
        BOOST_TEST(w.write("one") == 1u);
        BOOST_TEST(inbox.subscribe("NEWS/*", *std::make_unique<std::error_code>()).active() ==
                   false);
        return w;
    }(); // the subscription is dropped here
    std::error_code ec;
    writer.write("two", ec);
    BOOST_TEST(ec == error::file_not_found);
    BOOST_TEST(inbox.read() == "one");
    BOOST_TEST(inbox.info().message_count == 0u);
}

BOOST_AUTO_TEST_CASE(assigning_over_a_subscription_on_the_connections_thread_does_not_wait)
{
    // Found by `slotbus bench`: move-assigning over a live subscription used
    // to unsubscribe and wait for the answer, which on the connection's own
    // thread never comes. It lets the old one go as the destructor does.
    test::host host;
    boost::asio::io_context io;
    auto work = boost::asio::make_work_guard(io);
    std::thread runner([&] { io.run(); });
    connection bus(io.get_executor());
    bus.connect(host.socket());
    auto inbox = server_slot::create(bus, "inbox", 0, 0);
    auto sub = inbox.subscribe("news/*");
    std::promise<void> assigned;
    boost::asio::post(io, [&] {
        sub = subscription{};
        assigned.set_value();
    });
    const bool done = assigned.get_future().wait_for(5s) == std::future_status::ready;
    BOOST_TEST(done);
    connection writer_bus;
    writer_bus.connect(host.socket());
    std::error_code ec;
    BOOST_TEST(test::eventually([&] {
        const auto probe = client_slot::open(writer_bus, "news/today", ec);
        return ec == error::file_not_found; // unsubscribed all the same
    }));
    boost::asio::post(io, [&] { bus.close(); });
    work.reset();
    if (done)
        runner.join();
    else
        runner.detach(); // stuck for good: the test has failed, do not hang too
}

BOOST_AUTO_TEST_CASE(slow_drop_subscribers_never_slow_a_fast_one)
{
    test::host host({"--max-record-size", "1024"}); // so budgets may be this small
    connection bus;
    bus.connect(host.socket());
    // Two slow subscribers that read nothing until the end, 4 KiB each.
    auto newest = server_slot::create(bus, "slow/newest",
                                      slot_options{0, 0, 4096, overflow_policy::drop_newest});
    auto oldest = server_slot::create(bus, "slow/oldest",
                                      slot_options{0, 0, 4096, overflow_policy::drop_oldest});
    auto s1 = newest.subscribe("ticks/*");
    auto s2 = oldest.subscribe("ticks/*");
    auto fast = test::peer(host, {"create", "fast", "--subscribe", "ticks/*", "--count", "5000"});
    BOOST_REQUIRE(fast->wait_for_line("created"));

    auto writer = test::peer(host, {"write", "ticks/a", "--count", "5000", "--size", "64"});
    BOOST_TEST(writer->wait_for_line("acked 5000 failed 0", 30s), writer->stdout_text());
    BOOST_TEST(fast->wait_exit(30s).value_or(-999) == 0);
    BOOST_TEST(per_writer_in_order(test::records_of(*fast))['w'] == 5000);

    for (auto* slow : {&newest, &oldest}) {
        const auto info = slow->info();
        BOOST_TEST(info.queued_bytes <= 4096u);
        BOOST_TEST(info.message_count + info.dropped == 5000u); // every record: kept or counted
        BOOST_TEST(info.dropped > 0u);
    }
    // Read what was kept: each gap told where it happened.
    const long after_newest = read_checking_gaps(newest, 0);
    const long after_oldest = read_checking_gaps(oldest, 0);
    BOOST_TEST(after_oldest == 5000); // drop-oldest kept the newest
    BOOST_TEST(after_newest < 5000);  // drop-newest kept the first
    // The drops after drop-newest's last kept record are told with the next one.
    connection writer_bus;
    writer_bus.connect(host.socket());
    auto w = client_slot::open(writer_bus, "ticks/a");
    w.write("w-5000");
    newest.set_read_timeout(1000);
    auto [data, missed] = newest.read_record();
    BOOST_TEST(data == "w-5000");
    BOOST_TEST(missed == static_cast<std::uint32_t>(5000 - after_newest));
}

BOOST_AUTO_TEST_CASE(a_stalled_subscriber_holds_writers_back_and_loses_nothing)
{
    // Budgets this small; and it reads within --slow-after, so it is not marked slow.
    test::host host({"--max-record-size", "1024", "--slow-after", "10000"});
    connection bus;
    bus.connect(host.socket());
    auto stalled =
        server_slot::create(bus, "jobs/worker", slot_options{0, mailslot_wait_forever, 2048});
    auto sub = stalled.subscribe("jobs/*");
    auto other = server_slot::create(bus, "mail/inbox", 0, 1000);
    auto writer = test::peer(host, {"write", "jobs/new", "--count", "100", "--size", "100"});
    BOOST_TEST(!writer->wait_for_line("acked", 500ms)); // held back
    BOOST_TEST(stalled.info().queued_bytes <= 2048u + 100u);
    connection writer_bus;
    writer_bus.connect(host.socket());
    BOOST_TEST(client_slot::open(writer_bus, "mail/inbox").write("still flowing") == 1u);
    BOOST_TEST(other.read() == "still flowing");
    for (int i = 0; i < 100; ++i)
        BOOST_TEST_REQUIRE(stalled.read().rfind("w-" + std::to_string(i), 0) == 0u);
    BOOST_TEST(writer->wait_for_line("acked 100 failed 0", 10s));
    BOOST_TEST(stalled.info().dropped == 0u);
}

BOOST_AUTO_TEST_CASE(two_connections_filling_each_others_slots_both_finish)
{
    // Each side writes to the other's small slot and reads its own, through
    // one connection. When a write is held back, the host still applies that
    // connection's read reports; otherwise each side would wait on the other.
    test::host host;
    constexpr int records = 2000;
    std::atomic<int> finished{0};
    auto side = [&](const char* mine, const char* theirs, int& received, int& acked) {
        connection bus;
        bus.connect(host.socket());
        auto in = server_slot::create(bus, mine, slot_options{0, 20, 4096});
        client_slot out;
        const auto until = std::chrono::steady_clock::now() + 30s;
        std::error_code ec;
        while (!out.is_open() && std::chrono::steady_clock::now() < until) {
            out = client_slot::open(bus, theirs, ec); // the other side may not be there yet
            if (!in.read_record(ec).data.empty())     // it may be writing already
                ++received;
        }
        const std::string record(100, 'x');
        for (int i = 0; i < records; ++i) {
            out.async_write(
                boost::asio::buffer(record),
                [&](boost::system::error_code e, std::uint32_t) { acked += e ? 0 : 1; });
            if (i % 50 == 0)
                while (!in.read_record(ec).data.empty())
                    ++received;
        }
        while ((received < records || acked < records) && std::chrono::steady_clock::now() < until)
            if (!in.read_record(ec).data.empty())
                ++received;
        ++finished;
        // Keep reading until the other side is done too.
        while (finished < 2 && std::chrono::steady_clock::now() < until)
            (void)in.read_record(ec);
    };
    int received_a = 0, acked_a = 0, received_b = 0, acked_b = 0;
    std::thread a([&] { side("cycle/a", "cycle/b", received_a, acked_a); });
    std::thread b([&] { side("cycle/b", "cycle/a", received_b, acked_b); });
    a.join();
    b.join();
    BOOST_TEST(received_a == records);
    BOOST_TEST(received_b == records);
    BOOST_TEST(acked_a == records);
    BOOST_TEST(acked_b == records);
}

BOOST_AUTO_TEST_CASE(read_records_hands_back_every_record_and_gap_in_one_buffer)
{
    test::host h({"--max-record-size", "256"}); // so budgets may be this small
    connection bus;
    bus.connect(h.socket());
    slot_options options;
    // Each record costs its bytes and 28 (its length, the host's entry): 400
    // holds the first three (28 + 128 + 178), not the fourth (+ 128).
    options.byte_budget = 400;
    options.overflow = overflow_policy::drop_newest;
    auto inbox = server_slot::create(bus, "views/inbox", options);
    connection writer_bus;
    writer_bus.connect(h.socket());
    auto writer = client_slot::open(writer_bus, "views/inbox");
    writer.write(std::string_view{}); // a zero-length record is a record
    writer.write(std::string(100, 'a'));
    writer.write(std::string(150, 'b'));
    writer.write(std::string(100, 'c')); // does not fit: dropped, counted
    std::vector<std::string> seen;
    std::vector<std::uint32_t> missed;
    while (seen.size() < 3) {
        auto batch = inbox.async_read_records(16, boost::asio::use_future);
        bus.run_for(std::chrono::milliseconds(200));
        BOOST_REQUIRE(batch.wait_for(std::chrono::seconds(0)) == std::future_status::ready);
        const auto b = batch.get();
        for (std::size_t i = 0; i < b.size(); ++i) {
            seen.emplace_back(b[i]);
            missed.push_back(b.missed_before(i));
        }
    }
    BOOST_TEST(seen[0].empty());
    BOOST_TEST(seen[1] == std::string(100, 'a'));
    BOOST_TEST(seen[2] == std::string(150, 'b'));
    writer.write(std::string(10, 'd'));
    auto after = inbox.async_read_records(16, boost::asio::use_future);
    bus.run_for(std::chrono::milliseconds(200));
    const auto b = after.get();
    BOOST_REQUIRE_EQUAL(b.size(), 1u);
    BOOST_TEST(b[0] == std::string(10, 'd'));
    BOOST_TEST(b.missed_before(0) == 1u); // told of the drop, in order
}

// One slow consumer cannot stall the bus: a subscriber that never reads holds
// the topic's writer back for --slow-after at most, then is marked slow and
// drops (counted, told in order) while the live subscriber gets everything.
BOOST_AUTO_TEST_CASE(a_lurker_on_a_topic_cannot_stall_its_live_subscribers)
{
    constexpr int records = 100'000;
    auto run = [&](test::host& host, bool with_lurker) {
        connection bus;
        bus.connect(host.socket());
        server_slot lurker;
        subscription lurking;
        if (with_lurker) { // the smallest budget a slot may have, never read
            lurker = server_slot::create(bus, "lurker", slot_options{0, 0, 1});
            lurking = lurker.subscribe("events/**");
        }
        const auto start = std::chrono::steady_clock::now();
        auto live = test::peer(host, {"create", "live", "--subscribe", "events/*", "--count",
                                      std::to_string(records)});
        BOOST_REQUIRE(live->wait_for_line("created"));
        auto writer = test::peer(
            host, {"write", "events/x", "--count", std::to_string(records), "--size", "64"});
        BOOST_TEST(live->wait_exit(60s).value_or(-999) == 0);
        const auto took = std::chrono::steady_clock::now() - start;
        BOOST_TEST(writer->wait_for_line("acked " + std::to_string(records) + " failed 0", 10s),
                   writer->stdout_text());
        BOOST_TEST(per_writer_in_order(test::records_of(*live))['w'] == records);
        if (with_lurker) {
            const auto info = lurker.info();
            BOOST_TEST(info.dropped > 0u);
            BOOST_TEST(info.message_count + info.dropped == static_cast<std::uint64_t>(records));
            const auto listed = test::cli(host, {"ls", "lurker", "--json"}).json();
            BOOST_TEST(listed.at("slots").at(0).at("slow").as_bool());
            BOOST_TEST(admin(bus, "stats").at("slow_slots").to_number<int>() == 1);
            BOOST_TEST(host.log().find("lurker is slow") != std::string::npos, host.log());
            // What it kept, then the count of what it missed, in order.
            const long kept = read_checking_gaps(lurker, 0);
            BOOST_TEST(kept == static_cast<long>(info.message_count));
        }
        return std::chrono::duration_cast<std::chrono::milliseconds>(took);
    };
    test::host plain;
    const auto alone = run(plain, false);
    test::host host({"--slow-after", "300"});
    const auto beside_lurker = run(host, true);
    BOOST_TEST_MESSAGE("live subscriber, " << records << " records: " << alone.count()
                                           << " ms alone, " << beside_lurker.count()
                                           << " ms beside a lurker");
    // Held back for --slow-after once, then at full rate (generous for noise).
    BOOST_TEST(beside_lurker.count() < 300 + 3 * alone.count() + 2000);
}
