#define BOOST_TEST_MODULE mailslot_contract
// Every row and bullet of DESIGN.md's mailslot contract, against a real slotbusd.
#include "host_fixture.hpp"

#include <slotbus/slotbus.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <future>
#include <memory>
#include <set>
#include <thread>

using namespace slotbus;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace {

struct bus_fixture {
    test::host host;
    connection reader_bus{{"reader", 256}};
    connection writer_bus{{"writer", 256}};
    bus_fixture()
    {
        reader_bus.connect(host.socket());
        writer_bus.connect(host.socket());
    }
};

template <class F> std::error_code error_of(F&& f)
{
    std::error_code ec;
    f(ec);
    return ec;
}

// Through a writer's handle (another connection), the reader's report of a
// read may still be on its way: the count must become exact, never overshoot.
bool writer_sees(const client_slot& writer, std::uint32_t count, std::uint32_t next)
{
    const auto until = clock_type::now() + 2s;
    while (clock_type::now() < until) {
        const auto i = writer.info();
        if (i.message_count < count)
            return false; // fewer than are unread: never right
        if (i.message_count == count && i.next_size == next)
            return true;
        std::this_thread::sleep_for(1ms);
    }
    return false;
}

// A connection run by an executor on a thread of its own, as in a plugin with an event loop.
struct executor_connection {
    boost::asio::io_context io;
    boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work =
        boost::asio::make_work_guard(io);
    connection bus{io.get_executor()};
    std::thread runner{[this] { io.run(); }};
    ~executor_connection()
    {
        bus.close();
        work.reset();
        runner.join();
    }
};

long ms_since(clock_type::time_point start)
{
    return static_cast<long>(
        std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - start).count());
}

} // namespace

BOOST_FIXTURE_TEST_SUITE(contract, bus_fixture)

BOOST_AUTO_TEST_CASE(names_and_their_errors)
{
    auto create = [&](std::string_view name) {
        return error_of(
            [&](std::error_code& ec) { (void)server_slot::create(reader_bus, name, 0, 0, ec); });
    };
    auto open = [&](std::string_view name) {
        return error_of(
            [&](std::error_code& ec) { (void)client_slot::open(writer_bus, name, ec); });
    };
    BOOST_TEST(create(R"(\\.\pipe\x)") == error::invalid_name);
    BOOST_TEST(create(R"(\\.\mailslot\a\\b)") == error::invalid_name);
    BOOST_TEST(create(R"(\\SOMEHOST\mailslot\x)") == error::invalid_name);
    BOOST_TEST(create(R"(\\WORKGROUP\mailslot\x)") == error::invalid_name);
    BOOST_TEST(create(R"(\\*\mailslot\x)") == error::invalid_name);
    BOOST_TEST(create(std::string(max_path_length + 1, 'n')) == error::filename_exced_range);
    BOOST_TEST(open("a*b") == error::invalid_name);
    BOOST_TEST(open(std::string(max_path_length + 1, 'n')) == error::filename_exced_range);

    auto slot = server_slot::create(reader_bus, R"(\\.\mailslot\Taxes\Sue)");
    BOOST_TEST(slot.name().path() == R"(Taxes\Sue)");
    BOOST_TEST(create(R"(\\.\MAILSLOT\TAXES\SUE)") == error::already_exists);
    BOOST_TEST(create("taxes/sue") == error::already_exists);
    BOOST_TEST(open("taxes/nobody") == error::file_not_found);
    BOOST_TEST(!open("TAXES/SUE"));
    BOOST_TEST(!open(R"(\\.\mailslot\taxes\sue)"));
    BOOST_TEST(
        !open("\\\\" + writer_bus.host_name() + R"(\mailslot\taxes\sue)")); // this host by name
    BOOST_TEST(open(R"(\\no-such-host\mailslot\taxes\sue)") == error::bad_netpath);
}

BOOST_AUTO_TEST_CASE(direction_rules)
{
    auto slot = server_slot::create(reader_bus, "dir/test");
    // The creator writing to its own slot.
    auto own = client_slot::open(reader_bus, "dir/test");
    BOOST_TEST(error_of([&](std::error_code& ec) { own.write("x", ec); }) == error::access_denied);
    // A writer reading, and changing the timeout.
    auto writer = client_slot::open(writer_bus, "dir/test");
    char buffer[16];
    BOOST_TEST(error_of([&](std::error_code& ec) {
                   writer.read(boost::asio::buffer(buffer), ec);
               }) == error::invalid_parameter);
    BOOST_TEST(error_of([&](std::error_code& ec) { writer.set_read_timeout(5, ec); }) ==
               error::access_denied);
    BOOST_TEST(slot.info().message_count == 0u);
    BOOST_TEST(slot.info().read_timeout == mailslot_wait_forever); // unchanged
}

BOOST_AUTO_TEST_CASE(create_stores_what_it_was_given)
{
    auto slot = server_slot::create(reader_bus, "settings", 424, 1234);
    auto i = slot.info();
    BOOST_TEST(i.max_message_size == 424u);
    BOOST_TEST(i.read_timeout == 1234u);
    BOOST_TEST(i.next_size == mailslot_no_message);
    BOOST_TEST(i.message_count == 0u);
    slot.set_read_timeout(0);
    BOOST_TEST(slot.info().read_timeout == 0u);
    auto writer = client_slot::open(writer_bus, "settings");
    BOOST_TEST(writer.info().read_timeout == 0u);
    BOOST_TEST(writer.info().max_message_size == 424u);
}

BOOST_AUTO_TEST_CASE(timeout_zero_fails_at_once)
{
    auto slot = server_slot::create(reader_bus, "t0", 0, 0);
    const auto start = clock_type::now();
    BOOST_TEST(error_of([&](std::error_code& ec) { (void)slot.read(ec); }) == error::sem_timeout);
    BOOST_TEST(ms_since(start) < 100, "took " << ms_since(start) << " ms");
    // And finds a record written a moment ago, even one still on its way.
    auto writer = client_slot::open(writer_bus, "t0");
    writer.write("here");
    BOOST_TEST(slot.read() == "here");
}

BOOST_AUTO_TEST_CASE(timeout_n_fails_after_n_ms)
{
    auto slot = server_slot::create(reader_bus, "tn", 0, 300);
    const auto start = clock_type::now();
    BOOST_TEST(error_of([&](std::error_code& ec) { (void)slot.read(ec); }) == error::sem_timeout);
    const auto took = ms_since(start);
    BOOST_TEST(took >= 300, "took " << took << " ms");
    BOOST_TEST(took < 300 + 200, "took " << took << " ms");
}

BOOST_AUTO_TEST_CASE(wait_forever_wakes_on_the_first_write)
{
    auto slot = server_slot::create(reader_bus, "forever");
    std::thread writer([&] {
        std::this_thread::sleep_for(400ms); // the reader must be waiting by then
        auto w = client_slot::open(writer_bus, "forever");
        w.write("wake up");
    });
    const auto start = clock_type::now();
    const auto record = slot.read();
    writer.join();
    BOOST_TEST(record == "wake up");
    BOOST_TEST(ms_since(start) >= 350);
}

BOOST_AUTO_TEST_CASE(async_read_completes_when_a_record_arrives)
{
    auto slot = server_slot::create(reader_bus, "async");
    auto pending = slot.async_read(boost::asio::use_future);
    auto writer = client_slot::open(writer_bus, "async");
    writer.write("late");
    // The reader's connection owns its context: a blocking call runs it.
    BOOST_TEST(slot.info().message_count <= 1u);
    BOOST_TEST((pending.wait_for(0s) == std::future_status::ready));
    BOOST_TEST(pending.get() == "late");
}

BOOST_AUTO_TEST_CASE(one_async_read_can_be_cancelled_alone)
{
    auto slot = server_slot::create(reader_bus, "cancel");
    boost::asio::cancellation_signal signal;
    std::optional<boost::system::error_code> first, second;
    std::string second_record;
    slot.async_read(boost::asio::bind_cancellation_slot(
        signal.slot(), [&](boost::system::error_code ec, std::string) { first = ec; }));
    slot.async_read([&](boost::system::error_code ec, std::string r) {
        second = ec;
        second_record = std::move(r);
    });
    signal.emit(boost::asio::cancellation_type::terminal);
    auto writer = client_slot::open(writer_bus, "cancel");
    writer.write("for the second");
    (void)slot.info(); // runs the reader's context until the answer
    BOOST_TEST_REQUIRE(first.has_value());
    BOOST_TEST((*first == boost::asio::error::operation_aborted));
    // The other read goes on, and gets the record the cancelled one did not take.
    for (int i = 0; i < 100 && !second; ++i)
        (void)slot.info();
    BOOST_TEST_REQUIRE(second.has_value());
    BOOST_TEST(!*second);
    BOOST_TEST(second_record == "for the second");
}

BOOST_AUTO_TEST_CASE(a_coroutine_plugin_never_blocks)
{
    // One thread, one io_context: any blocking call would hang this test.
    boost::asio::io_context io;
    connection reader(io.get_executor()), writer(io.get_executor());
    std::string got;
    std::uint32_t delivered = 0;
    boost::asio::co_spawn(
        io,
        [&]() -> boost::asio::awaitable<void> {
            using boost::asio::use_awaitable;
            co_await reader.async_connect(host.socket(), use_awaitable);
            co_await writer.async_connect(host.socket(), use_awaitable);
            auto inbox =
                co_await server_slot::async_create(reader, "coro/inbox", {}, use_awaitable);
            auto sub = co_await inbox.async_subscribe("coro/topics/*", use_awaitable);
            auto out = co_await client_slot::async_open(writer, "coro/topics/a", use_awaitable);
            delivered = co_await out.async_write(boost::asio::buffer("via the subscription", 20),
                                                 use_awaitable);
            got = co_await inbox.async_read(use_awaitable);
            reader.close();
            writer.close();
        },
        boost::asio::detached);
    io.run_for(5s);
    BOOST_TEST(delivered == 1u);
    BOOST_TEST(got == "via the subscription");
}

BOOST_AUTO_TEST_CASE(batch_reads_take_what_is_here_in_order)
{
    auto slot = server_slot::create(reader_bus, "batch", 0, 0);
    auto writer = client_slot::open(writer_bus, "batch");
    for (int i = 0; i < 10; ++i)
        writer.write(std::to_string(i));
    std::vector<std::string> got;
    while (got.size() < 10) {
        auto batch = slot.async_read_batch(4, boost::asio::use_future);
        (void)slot.info(); // runs the reader's context until the answer
        BOOST_TEST_REQUIRE((batch.wait_for(0s) == std::future_status::ready));
        auto records = batch.get();
        BOOST_TEST_REQUIRE(!records.empty());
        BOOST_TEST_REQUIRE(records.size() <= 4u);
        for (auto& r : records)
            got.push_back(r.data);
    }
    BOOST_TEST((got == std::vector<std::string>{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}));
    BOOST_TEST(slot.info().message_count == 0u); // all reported read
    // Empty, timeout 0: at once, an error and no records.
    auto none = slot.async_read_batch(4, boost::asio::use_future);
    (void)slot.info();
    (void)slot.info();
    BOOST_TEST_REQUIRE((none.wait_for(0s) == std::future_status::ready));
    BOOST_CHECK_THROW(none.get(), boost::system::system_error);
}

BOOST_AUTO_TEST_CASE(buffer_too_small_keeps_the_record)
{
    auto slot = server_slot::create(reader_bus, "small");
    auto writer = client_slot::open(writer_bus, "small");
    writer.write("twelve bytes");
    char small[4];
    std::error_code ec;
    const auto needed = slot.read(boost::asio::buffer(small), ec);
    BOOST_TEST(ec == error::insufficient_buffer);
    BOOST_TEST(needed == 12u);
    auto i = slot.info();
    BOOST_TEST(i.message_count == 1u);
    BOOST_TEST(i.next_size == 12u);
    char right[12];
    BOOST_TEST(slot.read(boost::asio::buffer(right)) == 12u);
    BOOST_TEST(std::string(right, 12) == "twelve bytes");
    BOOST_TEST(slot.info().message_count == 0u);
}

BOOST_AUTO_TEST_CASE(record_over_the_maximum_is_refused_whole)
{
    auto slot = server_slot::create(reader_bus, "max", 8);
    auto writer = client_slot::open(writer_bus, "max");
    BOOST_TEST(error_of([&](std::error_code& ec) { writer.write("nine byte", ec); }) ==
               error::message_exceeds_max_size);
    BOOST_TEST(writer.write("eight by") == 1u);
    BOOST_TEST(slot.info().message_count == 1u);
    BOOST_TEST(slot.read() == "eight by");
    // Over the host's own limit: refused without costing the connection.
    auto any = server_slot::create(reader_bus, "anysize");
    auto w2 = client_slot::open(writer_bus, "anysize");
    std::string huge(writer_bus.max_record_size() + 1, 'x');
    BOOST_TEST(error_of([&](std::error_code& ec) { w2.write(huge, ec); }) ==
               error::message_exceeds_max_size);
    BOOST_TEST(w2.write("still connected") == 1u);
}

BOOST_AUTO_TEST_CASE(broadcast_records_are_at_most_424_bytes)
{
    auto slot = server_slot::create(reader_bus, "bcast");
    auto everyone = client_slot::open(writer_bus, R"(\\*\mailslot\bcast)");
    BOOST_TEST(error_of([&](std::error_code& ec) { everyone.write(std::string(425, 'x'), ec); }) ==
               error::bad_netpath);
    BOOST_TEST(everyone.write(std::string(424, 'x')) == 1u);
    auto domain = client_slot::open(writer_bus, R"(\\WORKGROUP\mailslot\bcast)");
    BOOST_TEST(error_of([&](std::error_code& ec) { domain.write(std::string(425, 'x'), ec); }) ==
               error::bad_netpath);
    BOOST_TEST(slot.info().message_count == 1u);
}

BOOST_AUTO_TEST_CASE(info_is_exact_through_both_handles_and_zero_length_counts)
{
    auto slot = server_slot::create(reader_bus, "exact");
    auto writer = client_slot::open(writer_bus, "exact");
    writer.write("");
    writer.write("abc");
    writer.write("");
    for (const auto& i : {slot.info(), writer.info()}) {
        BOOST_TEST(i.message_count == 3u);
        BOOST_TEST(i.next_size == 0u);
        BOOST_TEST(i.queued_bytes == 3u);
    }
    // Through the reader's handle: exact at once, whatever was pushed ahead.
    BOOST_TEST(slot.read().empty()); // a zero-length record, read as 0 bytes
    BOOST_TEST(slot.info().message_count == 2u);
    BOOST_TEST(slot.info().next_size == 3u);
    BOOST_TEST(writer_sees(writer, 2, 3));
    BOOST_TEST(slot.read() == "abc");
    BOOST_TEST(slot.info().message_count == 1u);
    BOOST_TEST(writer_sees(writer, 1, 0));
    char none[1];
    BOOST_TEST(slot.read(boost::asio::buffer(none, 0)) == 0u);
    BOOST_TEST(slot.info().next_size == mailslot_no_message);
    BOOST_TEST(writer_sees(writer, 0, mailslot_no_message));
}

// A reader that has read all it holds reports it with the next frame its
// connection sends (one socket write for a reply and its report), when it
// waits again, or — on an executor — after the handlers that run now.
BOOST_AUTO_TEST_CASE(a_read_is_reported_with_the_next_frame_or_wait)
{
    auto slot = server_slot::create(reader_bus, "rides");
    auto writer = client_slot::open(writer_bus, "rides");
    auto reply_slot = server_slot::create(writer_bus, "rides/reply");
    auto replier = client_slot::open(reader_bus, "rides/reply");
    writer.write("question");
    BOOST_TEST(slot.read() == "question");
    // The reader's own connection writes: its report goes along.
    BOOST_TEST(replier.write("answer") == 1u);
    BOOST_TEST(writer_sees(writer, 0, mailslot_no_message));
    BOOST_TEST(reply_slot.read() == "answer");

    // A reader waiting again has reported what it read, or a writer held
    // back by those records would wait on it for ever.
    auto small = server_slot::create(reader_bus, "rides/small", slot_options{0, 2000, 1000});
    std::thread held([&] {
        connection bus;
        bus.connect(host.socket());
        auto w = client_slot::open(bus, "rides/small");
        for (int i = 0; i < 5; ++i)
            w.write(std::string(900, static_cast<char>('a' + i))); // one fits at a time
    });
    for (int i = 0; i < 5; ++i) {
        std::error_code ec;
        const auto r = small.read(ec);
        BOOST_TEST_REQUIRE(!ec, ec.message());
        BOOST_TEST(r == std::string(900, static_cast<char>('a' + i)));
    }
    held.join();
}

BOOST_AUTO_TEST_CASE(a_reader_on_an_executor_reports_after_its_handlers)
{
    executor_connection run;
    run.bus.connect(host.socket());
    auto slot = server_slot::create(run.bus, "executor/reader");
    auto writer = client_slot::open(writer_bus, "executor/reader");
    writer.write("one");
    auto got = slot.async_read(boost::asio::use_future);
    BOOST_TEST(got.get() == "one");
    // Nothing else runs on that connection: the report went by itself.
    BOOST_TEST(writer_sees(writer, 0, mailslot_no_message));
}

BOOST_AUTO_TEST_CASE(one_write_is_one_record_in_order)
{
    auto slot = server_slot::create(reader_bus, "fifo");
    auto writer = client_slot::open(writer_bus, "fifo");
    std::vector<std::future<std::uint32_t>> results;
    for (int i = 0; i < 2000; ++i)
        results.push_back(
            writer.async_write(boost::asio::buffer(std::to_string(i)), boost::asio::use_future));
    writer.write("end"); // waits for its own acknowledgement, which comes after the others'
    for (auto& r : results) {
        BOOST_TEST_REQUIRE((r.wait_for(0s) == std::future_status::ready));
        BOOST_TEST_REQUIRE(r.get() == 1u);
    }
    for (int i = 0; i < 2000; ++i)
        BOOST_TEST_REQUIRE(slot.read() == std::to_string(i));
    BOOST_TEST(slot.read() == "end");
}

// A write nobody waits for (asio::detached) goes as a `post`: its result
// rides with the host's next frame to the writer, in order with the rest.
BOOST_AUTO_TEST_CASE(detached_writes_arrive_in_order_and_keep_results_in_step)
{
    auto slot = server_slot::create(reader_bus, "posted");
    auto gone = server_slot::create(reader_bus, "posted/gone");
    auto writer = client_slot::open(writer_bus, "posted");
    auto to_gone = client_slot::open(writer_bus, "posted/gone");
    gone.close();
    std::vector<std::future<std::uint32_t>> results;
    for (int i = 0; i < 1000; ++i) {
        const auto text = std::to_string(i);
        if (i % 3 == 0)
            results.push_back(
                writer.async_write(boost::asio::buffer(text), boost::asio::use_future));
        else
            writer.async_write(boost::asio::buffer(text), boost::asio::detached);
        if (i % 100 == 0) // fails, unseen: the results after it still match their writes
            to_gone.async_write(boost::asio::buffer(text), boost::asio::detached);
    }
    const std::vector<boost::asio::const_buffer> tail{boost::asio::buffer("a", 1),
                                                      boost::asio::buffer("b", 1)};
    writer.async_write_batch(tail, boost::asio::detached);
    BOOST_TEST(writer.write("end") == 1u);
    for (auto& r : results) {
        BOOST_TEST_REQUIRE((r.wait_for(0s) == std::future_status::ready));
        BOOST_TEST_REQUIRE(r.get() == 1u);
    }
    std::error_code ec;
    BOOST_TEST(to_gone.write("seen", ec) == 0u);
    BOOST_TEST((ec == error::file_not_found));
    for (int i = 0; i < 1000; ++i)
        BOOST_TEST_REQUIRE(slot.read() == std::to_string(i));
    BOOST_TEST(slot.read() == "a");
    BOOST_TEST(slot.read() == "b");
    BOOST_TEST(slot.read() == "end");
}

BOOST_AUTO_TEST_CASE(posted_writes_never_hold_the_write_window_shut)
{
    // Records up to 4 MiB: a posted 0.9 MiB, whose result the host may hold,
    // and a 3.5 MiB one that does not fit the SDK's 4 MiB window beside it.
    test::host big({"--max-record-size", std::to_string(4u << 20)});
    connection reader;
    reader.connect(big.socket());
    auto slot = server_slot::create(reader, "big", slot_options{0, 5000, 16u << 20});
    executor_connection run;
    run.bus.connect(big.socket());
    auto writer = client_slot::open(run.bus, "big");
    const std::string first(900u << 10, 'f'), second((7u << 20) / 2, 's');
    writer.async_write(boost::asio::buffer(first), boost::asio::detached);
    writer.async_write(boost::asio::buffer(second), boost::asio::detached);
    auto last = writer.async_write(boost::asio::buffer("end", 3), boost::asio::use_future);
    for (const auto* expected : {&first, &second}) {
        std::error_code ec;
        const auto r = slot.read(ec);
        BOOST_TEST_REQUIRE(!ec, ec.message());
        BOOST_TEST((r == *expected));
    }
    BOOST_TEST(slot.read() == "end");
    BOOST_TEST_REQUIRE((last.wait_for(10s) == std::future_status::ready));
    BOOST_TEST(last.get() == 1u);
}

BOOST_AUTO_TEST_CASE(a_batch_is_many_writes_with_one_completion)
{
    auto slot = server_slot::create(reader_bus, "batched", 5, 0); // at most 5 bytes a record
    auto writer = client_slot::open(writer_bus, "batched");
    const std::vector<std::string> texts{"one", "two", "", "three"};
    std::vector<boost::asio::const_buffer> records;
    for (const auto& t : texts)
        records.push_back(boost::asio::buffer(t));
    auto delivered = writer.async_write_batch(records, boost::asio::use_future);
    records.clear(); // copied when the write started
    writer.write("end");
    BOOST_TEST_REQUIRE((delivered.wait_for(0s) == std::future_status::ready));
    BOOST_TEST(delivered.get() == 4u); // each record reached the one slot
    for (const auto& t : texts)
        BOOST_TEST(slot.read() == t); // each a record of its own, in order
    BOOST_TEST(slot.read() == "end");

    // One record too long for the slot fails alone; the first error is the batch's.
    const std::string too_long = "six!!!";
    const std::vector<boost::asio::const_buffer> mixed{boost::asio::buffer(texts[0]),
                                                       boost::asio::buffer(too_long),
                                                       boost::asio::buffer(texts[1])};
    std::error_code ec;
    BOOST_TEST(writer.write_batch(mixed, ec) == 2u);
    BOOST_TEST((ec == error::message_exceeds_max_size));
    BOOST_TEST(slot.read() == "one");
    BOOST_TEST(slot.read() == "two");

    // Many batches pipelined, with single writes between them: one order.
    std::vector<std::future<std::uint32_t>> results;
    std::vector<std::string> numbers;
    for (int i = 0; i < 3000; ++i)
        numbers.push_back(std::to_string(i));
    for (int i = 0; i < 3000; i += 100) {
        std::vector<boost::asio::const_buffer> batch;
        for (int j = i; j < i + 99; ++j)
            batch.push_back(boost::asio::buffer(numbers[j]));
        results.push_back(writer.async_write_batch(batch, boost::asio::use_future));
        results.push_back(
            writer.async_write(boost::asio::buffer(numbers[i + 99]), boost::asio::use_future));
    }
    writer.write("end");
    for (std::size_t k = 0; k < results.size(); ++k)
        BOOST_TEST_REQUIRE(results[k].get() == (k % 2 == 0 ? 99u : 1u));
    for (const auto& n : numbers)
        BOOST_TEST_REQUIRE(slot.read() == n);
    BOOST_TEST(slot.read() == "end");

    BOOST_TEST(writer.write_batch({}, ec) == 0u); // nothing to write: done at once
    BOOST_TEST(!ec);
}

BOOST_AUTO_TEST_CASE(closing_the_reader_destroys_the_slot_and_frees_the_name)
{
    auto writer = [&] {
        auto slot = server_slot::create(reader_bus, "Plugin/Inbox");
        auto w = client_slot::open(writer_bus, "plugin/inbox");
        w.write("unread");
        slot.close();
        return w;
    }();
    BOOST_TEST(error_of([&](std::error_code& ec) { writer.write("x", ec); }) ==
               error::file_not_found);
    BOOST_TEST(error_of([&](std::error_code& ec) {
                   (void)client_slot::open(writer_bus, "plugin/inbox", ec);
               }) == error::file_not_found);
    // Re-created at once; the old writer handle reaches it (it binds to the name).
    auto again = server_slot::create(reader_bus, "PLUGIN/INBOX");
    BOOST_TEST(again.info().message_count == 0u); // the unread record went with the old slot
    BOOST_TEST(writer.write("again") == 1u);
    BOOST_TEST(again.read() == "again");
}

BOOST_AUTO_TEST_CASE(dropping_the_connection_destroys_the_slot)
{
    {
        connection short_lived;
        short_lived.connect(host.socket());
        auto slot = server_slot::create(short_lived, "ephemeral");
        short_lived.close();
    }
    auto deadline = clock_type::now() + 5s;
    std::error_code ec;
    while (clock_type::now() < deadline) {
        (void)client_slot::open(writer_bus, "ephemeral", ec);
        if (ec == error::file_not_found)
            break;
        std::this_thread::sleep_for(10ms);
    }
    BOOST_TEST(ec == error::file_not_found);
    auto fresh = server_slot::create(reader_bus, "ephemeral");
    BOOST_TEST(fresh.is_open());
}

BOOST_AUTO_TEST_CASE(a_dead_connection_reports_broken_pipe)
{
    connection doomed;
    doomed.connect(host.socket());
    auto slot = server_slot::create(doomed, "doomed");
    doomed.close();
    BOOST_TEST(error_of([&](std::error_code& ec) { (void)slot.read(ec); }) == error::broken_pipe);
    BOOST_TEST(error_of([&](std::error_code& ec) { (void)slot.info(ec); }) == error::broken_pipe);
}

BOOST_AUTO_TEST_CASE(duplicates_share_one_queue_and_one_timeout)
{
    auto slot = server_slot::create(reader_bus, "shared", 0, 0);
    connection child_bus;
    child_bus.connect(host.socket());
    auto child = server_slot::attach(child_bus, slot.duplicate());
    BOOST_TEST(error_of([&](std::error_code& ec) {
                   (void)server_slot::attach(child_bus, "0000", ec);
               }) == error::invalid_handle);
    auto writer = client_slot::open(writer_bus, "shared");
    for (int i = 0; i < 100; ++i)
        writer.write(std::to_string(i));
    std::set<std::string> seen;
    std::error_code ec;
    for (int round = 0; round < 200 && seen.size() < 100; ++round) {
        for (auto* reader : {&slot, &child}) {
            auto r = reader->read(ec);
            if (!ec)
                BOOST_TEST_REQUIRE(seen.insert(r).second, "read twice: " << r);
        }
    }
    BOOST_TEST(seen.size() == 100u);
    child.set_read_timeout(777);
    BOOST_TEST(slot.info().read_timeout == 777u);
    // The creator closes; the slot lives on in the duplicate.
    slot.close();
    writer.write("still here");
    BOOST_TEST(child.read() == "still here");
}

BOOST_AUTO_TEST_CASE(a_closed_reader_never_hands_back_what_it_read)
{
    // Its reads are reported ahead of its close, whether by close() or by the
    // destructor: the duplicate gets only what was not read.
    for (const bool by_destructor : {false, true}) {
        const std::string name = by_destructor ? "handed/dtor" : "handed/close";
        auto first = std::make_unique<server_slot>(server_slot::create(reader_bus, name, 0, 0));
        connection child_bus;
        child_bus.connect(host.socket());
        auto child = server_slot::attach(child_bus, first->duplicate());
        auto writer = client_slot::open(writer_bus, name);
        for (int i = 0; i < 5; ++i)
            writer.write("h" + std::to_string(i));
        BOOST_TEST(first->read() == "h0");
        if (by_destructor) {
            first.reset(); // its close is sent, not waited for
            BOOST_TEST(test::eventually([&] { return child.info().message_count == 4u; }));
        } else {
            first->close();
        }
        std::vector<std::string> rest;
        std::error_code ec;
        for (std::string r = child.read(ec); !ec; r = child.read(ec))
            rest.push_back(r);
        BOOST_TEST(ec == error::sem_timeout);
        BOOST_TEST(rest == (std::vector<std::string>{"h1", "h2", "h3", "h4"}),
                   boost::test_tools::per_element());
    }
}

BOOST_AUTO_TEST_CASE(a_timeout_set_through_one_handle_governs_every_handles_next_read)
{
    // 0 -> 300 ms through the creator: the duplicate's next read waits ~300 ms,
    // though its connection may not have heard of the change when it starts.
    auto slot = server_slot::create(reader_bus, "timed/shared", 0, 0);
    connection child_bus;
    child_bus.connect(host.socket());
    auto child = server_slot::attach(child_bus, slot.duplicate());
    slot.set_read_timeout(300);
    const auto start = clock_type::now();
    BOOST_TEST(error_of([&](std::error_code& ec) { (void)child.read(ec); }) == error::sem_timeout);
    BOOST_TEST(ms_since(start) >= 280);

    // forever -> 0: a read waiting forever through a duplicate ends at once.
    slot.set_read_timeout(mailslot_wait_forever);
    executor_connection waiter;
    waiter.bus.connect(host.socket());
    auto waiting = server_slot::attach(waiter.bus, slot.duplicate());
    std::promise<boost::system::error_code> ended;
    waiting.async_read([&](boost::system::error_code ec, std::string) { ended.set_value(ec); });
    auto result = ended.get_future();
    // Waiting forever, it does not end by itself (had it not started yet, it
    // would start with 0 below and end the same way).
    BOOST_TEST((result.wait_for(200ms) == std::future_status::timeout));
    const auto changed = clock_type::now();
    slot.set_read_timeout(0);
    BOOST_REQUIRE((result.wait_for(5s) == std::future_status::ready));
    const auto ec = result.get();
    BOOST_TEST((ec == error::sem_timeout), ec.message());
    BOOST_TEST(ms_since(changed) < 2000);
}

BOOST_AUTO_TEST_CASE(a_stop_during_a_blocking_call_in_a_handler_still_ends_run)
{
    // A plugin's SIGTERM handler stops run(); a blocking call the handler
    // makes after it (or one it interrupts) must not swallow that stop.
    auto slot = server_slot::create(reader_bus, "stopper", 0, 0);
    boost::asio::post(reader_bus.get_executor(), [&] {
        reader_bus.stop();
        (void)slot.info();
    });
    const auto start = clock_type::now();
    reader_bus.run_for(5s);
    BOOST_TEST(ms_since(start) < 2000); // it ran on until the 5 s were up
}

BOOST_AUTO_TEST_CASE(two_hosts_are_independent)
{
    test::host other;
    connection other_bus;
    other_bus.connect(other.socket());
    auto here = server_slot::create(reader_bus, "same/name");
    auto there = server_slot::create(other_bus, "same/name"); // no clash
    auto w = client_slot::open(writer_bus, "same/name");
    w.write("for here");
    BOOST_TEST(here.info().message_count == 1u);
    BOOST_TEST(there.info().message_count == 0u);
    BOOST_TEST(error_of([&](std::error_code& ec) {
                   (void)client_slot::open(other_bus, "only/here", ec);
               }) == error::file_not_found);
}

BOOST_AUTO_TEST_SUITE_END()
