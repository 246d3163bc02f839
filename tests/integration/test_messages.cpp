// What the SDK says when a call fails — the error names what it is about,
// with no place in Boost's source in it — and stop_signals, which ends a
// plugin's run() on SIGTERM or ^C.
#define BOOST_TEST_MODULE messages
#include "host_fixture.hpp"

#include "slotbus/slotbus.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/test/unit_test.hpp>

#include <csignal>
#include <thread>

using namespace slotbus;
using namespace std::chrono_literals;

BOOST_AUTO_TEST_CASE(a_failed_connect_names_the_socket_and_nothing_of_boost)
{
    test::temp_dir nowhere;
    const auto socket = (nowhere.path / "bus.sock").string();
    connection bus;
    try {
        bus.connect(socket);
        BOOST_FAIL("connected to nothing");
    } catch (const system_error& e) {
        BOOST_TEST((e.code() == std::errc::no_such_file_or_directory));
        BOOST_TEST(std::string(e.what()) ==
                   "cannot connect to unix:" + socket + ": No such file or directory");
    }

    // Asynchronously: the code alone, without Boost.Asio's source location
    // (which a use_awaitable caller would print in what()).
    boost::asio::io_context io;
    connection async_bus(io.get_executor());
    boost::system::error_code got;
    async_bus.async_connect(socket, [&](boost::system::error_code ec) { got = ec; });
    io.run();
    BOOST_TEST((got == boost::system::errc::no_such_file_or_directory));
    BOOST_TEST(!got.has_location());
    const std::string what = boost::system::system_error(got).what();
    BOOST_TEST(what.find("/usr/include") == std::string::npos, what);
    BOOST_TEST(async_bus.last_failure() ==
               "cannot connect to unix:" + socket + ": No such file or directory");
}

BOOST_AUTO_TEST_CASE(open_and_create_errors_name_the_slot)
{
    test::host h;
    connection bus;
    bus.connect(h.socket());
    try {
        auto writer = client_slot::open(bus, "billing/inbox");
        BOOST_FAIL("opened a slot nobody receives");
    } catch (const system_error& e) {
        BOOST_TEST((e.code() == error::file_not_found));
        BOOST_TEST(std::string(e.what()) ==
                   "slotbus::client_slot::open billing/inbox: no mailslot of that name has a "
                   "receiver");
    }
    auto inbox = server_slot::create(bus, "taxes/sue");
    try {
        auto again = server_slot::create(bus, "Taxes/Sue");
        BOOST_FAIL("created a second slot of one name");
    } catch (const system_error& e) {
        BOOST_TEST((e.code() == error::already_exists));
        BOOST_TEST(std::string(e.what()) == "slotbus::server_slot::create Taxes/Sue: a mailslot "
                                            "of that name already exists");
    }
}

BOOST_AUTO_TEST_CASE(stop_signals_ends_run_on_sigterm_and_says_which_came)
{
    test::host h;
    connection bus;
    bus.connect(h.socket());
    stop_signals stop(bus);
    BOOST_TEST(stop.received() == 0);
    std::thread later([] {
        std::this_thread::sleep_for(100ms);
        ::kill(::getpid(), SIGTERM); // as the host stops a plugin
    });
    const auto start = std::chrono::steady_clock::now();
    bus.run(); // returns once the signal came: bus.stop() by default
    later.join();
    BOOST_TEST(stop.received() == SIGTERM);
    BOOST_TEST((std::chrono::steady_clock::now() - start < 10s));

    // A function of one's own, given the signal: ^C here.
    connection other;
    other.connect(h.socket());
    int told = 0;
    stop_signals own(other, [&](int signo) {
        told = signo;
        other.stop();
    });
    std::thread interrupt([] {
        std::this_thread::sleep_for(100ms);
        ::kill(::getpid(), SIGINT);
    });
    other.run();
    interrupt.join();
    BOOST_TEST(told == SIGINT);
    BOOST_TEST(own.received() == SIGINT);
}
