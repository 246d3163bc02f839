#define BOOST_TEST_MODULE reconnect
// A plugin's connection kept up by async_run: the host restarts or stalls,
// the plugin's slots, writers and subscriptions come back by themselves.
#include "host_fixture.hpp"

#include <slotbus/slotbus.hpp>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <csignal>
#include <functional>
#include <future>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

using namespace slotbus;
using namespace std::chrono_literals;
namespace asio = boost::asio;

namespace {

const run_timing quick{std::chrono::milliseconds(100), std::chrono::milliseconds(20),
                       std::chrono::milliseconds(200)};

// A host on a socket of the test's choosing, so it can be restarted there.
std::unique_ptr<test::child> start_host(const std::string& socket)
{
    auto host =
        std::make_unique<test::child>(SLOTBUSD_PATH, std::vector<std::string>{"--socket", socket});
    BOOST_REQUIRE(host->wait_for_line("ready on", 10s));
    return host;
}

// Polls under a deadline until `name` has a receiver on the host at `socket`.
bool receiver_appears(const std::string& socket, std::string_view name,
                      std::chrono::milliseconds deadline = 10s)
{
    const auto until = std::chrono::steady_clock::now() + deadline;
    while (std::chrono::steady_clock::now() < until) {
        connection probe;
        std::error_code ec;
        probe.connect(socket, ec);
        if (!ec) {
            (void)client_slot::open(probe, name, ec);
            if (!ec)
                return true;
        }
        std::this_thread::sleep_for(10ms);
    }
    return false;
}

// The plugin: a connection on an io thread, kept up by async_run.
struct plugin {
    asio::io_context io;
    asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
    std::thread thread{[this] { io.run(); }};
    connection bus{io.get_executor(), {"plugin", 256}};
    std::promise<boost::system::error_code> ran;

    void run(const std::string& socket)
    {
        bus.connect(socket);
        bus.async_run(socket, quick, [this](boost::system::error_code ec) { ran.set_value(ec); });
    }
    ~plugin()
    {
        work.reset();
        thread.join();
    }
};

} // namespace

BOOST_AUTO_TEST_CASE(slots_writers_and_subscriptions_come_back_after_a_host_restart)
{
    test::temp_dir dir;
    const auto socket = (dir.path / "bus.sock").string();
    auto host = start_host(socket);
    auto peer_inbox = std::make_unique<test::child>(
        SLOTBUS_PEER_PATH, std::vector<std::string>{"create", "peer/inbox"},
        std::vector<std::string>{"SLOTBUS_ADDRESS=" + socket});
    BOOST_REQUIRE(peer_inbox->wait_for_line("created"));

    plugin p;
    p.run(socket);
    auto inbox = server_slot::create(p.bus, "plugin/inbox", 0, 30); // 30 ms reads
    auto events = inbox.subscribe("events/*");
    auto to_peer = client_slot::open(p.bus, "peer/inbox");
    BOOST_TEST(to_peer.write("before") == 1u);
    // Reads that time out and go again all through the restart, as a
    // plugin's receive loop does: no read may upset the reconnect.
    std::promise<std::string> late;
    std::function<void()> read_again = [&] {
        inbox.async_read([&](boost::system::error_code ec, std::string r) {
            if (ec == error::sem_timeout || ec == error::broken_pipe)
                return read_again();
            late.set_value(ec ? "error: " + ec.message() : r);
        });
    };
    asio::post(p.io, read_again);

    host->signal(SIGKILL);
    BOOST_REQUIRE(host->wait_exit(5s).has_value());
    peer_inbox.reset();
    host = start_host(socket); // replaces the dead host's socket

    // The plugin's slot and its subscription are back, under the same handles.
    BOOST_REQUIRE(receiver_appears(socket, "plugin/inbox"));
    connection other;
    other.connect(socket);
    auto publisher = client_slot::open(other, "events/news");
    BOOST_TEST(publisher.write("after the restart") == 1u);
    auto got = late.get_future();
    BOOST_REQUIRE((got.wait_for(5s) == std::future_status::ready));
    BOOST_TEST(got.get() == "after the restart");

    // The writer handle reaches the peer's slot once the peer is back too.
    peer_inbox = std::make_unique<test::child>(
        SLOTBUS_PEER_PATH, std::vector<std::string>{"create", "peer/inbox"},
        std::vector<std::string>{"SLOTBUS_ADDRESS=" + socket});
    BOOST_REQUIRE(peer_inbox->wait_for_line("created"));
    BOOST_TEST(to_peer.write("after") == 1u);
    BOOST_TEST(peer_inbox->wait_for_line("record 5 after"));

    p.bus.close();
    auto ran = p.ran.get_future();
    BOOST_REQUIRE((ran.wait_for(5s) == std::future_status::ready));
    BOOST_TEST((ran.get() == asio::error::operation_aborted));
}

BOOST_AUTO_TEST_CASE(a_host_that_stops_answering_is_left_and_rejoined)
{
    test::temp_dir dir;
    const auto socket = (dir.path / "bus.sock").string();
    auto host = start_host(socket);
    plugin p;
    p.run(socket);
    auto inbox = server_slot::create(p.bus, "plugin/inbox");

    host->signal(SIGSTOP); // alive, silent: only heartbeats notice
    std::this_thread::sleep_for(600ms);
    std::error_code ec;
    (void)inbox.info(ec);
    BOOST_TEST(ec == error::broken_pipe); // the plugin gave up on it
    host->signal(SIGCONT);

    BOOST_REQUIRE(receiver_appears(socket, "plugin/inbox"));
    connection other;
    other.connect(socket);
    BOOST_TEST(client_slot::open(other, "plugin/inbox").write("hello again") == 1u);
    const auto until = std::chrono::steady_clock::now() + 5s;
    std::string record;
    while (std::chrono::steady_clock::now() < until) {
        inbox.set_read_timeout(200, ec);
        if (!ec)
            record = inbox.read(ec);
        if (!ec)
            break;
        std::this_thread::sleep_for(20ms);
    }
    BOOST_TEST(record == "hello again");
    p.bus.close();
}

BOOST_AUTO_TEST_CASE(a_connection_closed_from_its_own_handler_returns_from_run)
{
    test::host h;
    slotbus::connection reader_bus, writer_bus;
    reader_bus.connect(h.socket());
    writer_bus.connect(h.socket());
    auto inbox = slotbus::server_slot::create(reader_bus, "close/inbox");
    auto slot = slotbus::client_slot::open(writer_bus, "close/inbox");
    bool closed = false;
    boost::system::error_code write_ec;
    slot.async_write(boost::asio::buffer(std::string("last")),
                     [&](boost::system::error_code ec, std::uint32_t) {
                         write_ec = ec;      // checked on the test's thread, after the join
                         writer_bus.close(); // inside run(): must not run the context itself
                         closed = true;
                     });
    auto done = std::async(std::launch::async, [&] { writer_bus.run(); });
    BOOST_REQUIRE(done.wait_for(std::chrono::seconds(5)) == std::future_status::ready);
    BOOST_TEST(!write_ec);
    BOOST_TEST(closed);
    BOOST_TEST(inbox.read() == "last");
}

BOOST_AUTO_TEST_CASE(a_restart_fails_calls_only_with_documented_codes_and_says_what_may_be_lost)
{
    test::temp_dir dir;
    const auto socket = (dir.path / "bus.sock").string();
    auto host = start_host(socket);
    plugin p;
    p.run(socket);
    auto inbox = server_slot::create(p.bus, "plugin/held", 0, 30);
    connection outside;
    outside.connect(socket);
    auto writer = client_slot::open(outside, "plugin/held");
    for (int i = 0; i < 5; ++i)
        BOOST_TEST(writer.write("r" + std::to_string(i)) == 1u);
    // Pushed to the plugin, not read yet, when the host dies.
    BOOST_REQUIRE(test::eventually([&] { return inbox.info().message_count == 5u; }));
    std::promise<std::string> first;
    inbox.async_read([&](boost::system::error_code ec, std::string r) {
        first.set_value(ec ? "error " + ec.message() : r);
    });
    BOOST_REQUIRE(first.get_future().get() == "r0"); // the rest are held in the SDK
    // Calls all through the restart: each one succeeds or fails with a
    // documented code, never the socket's errno or a stray invalid_handle.
    std::atomic<bool> stop{false};
    std::mutex seen_lock;
    std::set<std::string> seen;
    auto note = [&](const std::error_code& ec) {
        if (!ec)
            return;
        std::lock_guard lock(seen_lock);
        seen.insert(std::string(ec.category().name()) + ":" + std::to_string(ec.value()));
    };
    std::thread caller([&] {
        while (!stop) {
            std::error_code ec;
            (void)inbox.info(ec);
            note(ec);
            auto w = client_slot::open(p.bus, "nobody/there", ec); // 2, or written: both fine
            note(ec);
            if (!ec) {
                (void)w.write("during", ec);
                note(ec);
            }
        }
    });
    host->signal(SIGKILL);
    BOOST_REQUIRE(host->wait_exit(5s).has_value());
    std::this_thread::sleep_for(300ms); // calls go on while no host is there
    host = start_host(socket);
    BOOST_REQUIRE(receiver_appears(socket, "plugin/held"));
    stop = true;
    caller.join();
    for (const auto& code : seen)
        BOOST_TEST((code == "slotbus:109" || code == "slotbus:64" || code == "slotbus:2"), code);
    // The held records come first, then a record of the new slot, told that
    // records may have been lost between them.
    connection again;
    again.connect(socket);
    auto w = client_slot::open(again, "plugin/held");
    BOOST_TEST(w.write("after") == 1u);
    std::vector<std::string> got;
    std::optional<std::uint32_t> first_new_gap; // of the first record after the held ones
    while (true) {
        std::promise<received_record> next;
        inbox.async_read_record([&](boost::system::error_code ec, received_record r) {
            if (ec)
                r.data = "error " + ec.message();
            next.set_value(std::move(r));
        });
        auto r = next.get_future().get();
        if (r.data.rfind("error", 0) == 0)
            continue; // a timeout between the held ones and the new
        if (got.size() == 4 && !first_new_gap)
            first_new_gap = r.missed_before;
        if (r.data == "during")
            continue; // the caller thread's, to the old slot or the new
        got.push_back(r.data);
        if (r.data == "after")
            break;
    }
    BOOST_TEST(got == (std::vector<std::string>{"r1", "r2", "r3", "r4", "after"}),
               boost::test_tools::per_element());
    BOOST_TEST(first_new_gap.value_or(0) == gap_unknown);
    p.bus.close();
}

BOOST_AUTO_TEST_CASE(records_held_when_the_host_dies_are_still_read)
{
    // A connection without async_run: the host goes, what it had pushed to
    // this end is still read, in order, then reads fail with broken_pipe.
    test::temp_dir dir;
    const auto socket = (dir.path / "bus.sock").string();
    auto host = start_host(socket);
    connection reader_bus, writer_bus;
    reader_bus.connect(socket);
    writer_bus.connect(socket);
    auto inbox = server_slot::create(reader_bus, "held/inbox", 0, 1000);
    auto writer = client_slot::open(writer_bus, "held/inbox");
    for (int i = 0; i < 4; ++i)
        BOOST_TEST(writer.write("h" + std::to_string(i)) == 1u);
    BOOST_TEST(inbox.read() == "h0"); // the others are pushed along with it
    host->signal(SIGKILL);
    BOOST_REQUIRE(host->wait_exit(5s).has_value());
    std::vector<std::string> rest;
    std::error_code ec;
    for (auto r = inbox.read(ec); !ec; r = inbox.read(ec))
        rest.push_back(r);
    BOOST_TEST(ec == error::broken_pipe, ec.message());
    BOOST_TEST(rest == (std::vector<std::string>{"h1", "h2", "h3"}),
               boost::test_tools::per_element());
}
