#define BOOST_TEST_MODULE request_reply
// Request/reply through a real host: the reply, its absence, its lateness.
#include "host_fixture.hpp"

#include <slotbus/slotbus.hpp>

#include <boost/describe/class.hpp>
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <csignal>
#include <thread>

using namespace slotbus;
using namespace std::chrono_literals;

namespace calc {
struct add {
    static constexpr std::string_view event_type = "calc.add";
    int a = 0;
    int b = 0;
};
BOOST_DESCRIBE_STRUCT(add, (), (a, b))
struct sum {
    static constexpr std::string_view event_type = "calc.sum";
    int value = 0;
};
BOOST_DESCRIBE_STRUCT(sum, (), (value))
} // namespace calc

namespace {

using clock_type = std::chrono::steady_clock;
long ms_since(clock_type::time_point t)
{
    return static_cast<long>(
        std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - t).count());
}

// A responder on its own connection and thread, until destroyed.
struct calculator {
    connection bus;
    std::optional<responder> service;
    std::atomic<bool> done{false};
    std::atomic<int> slow_first{0}; // ms the first request waits before its answer
    std::atomic<int> answered{0};
    std::thread loop;
    subscription handler;

    explicit calculator(const test::host& h)
    {
        bus.connect(h.socket());
        service.emplace(bus, "services/calc", "calc");
        handler = service->on<calc::add>([this](const calc::add& r) {
            if (int wait = slow_first.exchange(0))
                std::this_thread::sleep_for(std::chrono::milliseconds(wait));
            ++answered;
            return calc::sum{r.a + r.b};
        });
        loop = std::thread([this] {
            while (!done)
                service->process_for(20ms);
        });
    }
    /// Ends its loop: its counters may be read from here on.
    void stop()
    {
        done = true;
        if (loop.joinable())
            loop.join();
    }
    ~calculator() { stop(); }
};

} // namespace

BOOST_AUTO_TEST_CASE(typed_round_trips)
{
    test::host host;
    calculator calc(host);
    connection bus;
    bus.connect(host.socket());
    requester ask(bus, "tester");
    for (int i = 0; i < 50; ++i)
        BOOST_TEST_REQUIRE(ask.request<calc::sum>("services/calc", calc::add{i, 1000}, 2s).value ==
                           i + 1000);
    BOOST_TEST(calc.answered == 50);
}

BOOST_AUTO_TEST_CASE(no_responder_fails_at_once)
{
    test::host host;
    connection bus;
    bus.connect(host.socket());
    requester ask(bus, "tester");
    std::error_code ec;
    const auto start = clock_type::now();
    (void)ask.request<calc::sum>("services/calc", calc::add{1, 2}, 5s, ec);
    BOOST_TEST(ec == error::file_not_found);
    BOOST_TEST(ms_since(start) < 1000);
}

BOOST_AUTO_TEST_CASE(no_reply_in_time_is_a_timeout)
{
    test::host host;
    auto silent = test::peer(host, {"create", "services/calc"}); // reads, never answers
    BOOST_REQUIRE(silent->wait_for_line("created"));
    connection bus;
    bus.connect(host.socket());
    requester ask(bus, "tester");
    std::error_code ec;
    const auto start = clock_type::now();
    (void)ask.request<calc::sum>("services/calc", calc::add{1, 2}, 300ms, ec);
    BOOST_TEST(ec == error::sem_timeout);
    BOOST_TEST(ms_since(start) >= 300);
    BOOST_TEST(ms_since(start) < 300 + 500);
}

BOOST_AUTO_TEST_CASE(a_responder_that_dies_mid_request)
{
    test::host host;
    auto dying = test::peer(host, {"create", "services/calc"});
    BOOST_REQUIRE(dying->wait_for_line("created"));
    connection bus;
    bus.connect(host.socket());
    requester ask(bus, "tester");
    std::error_code ec;
    std::thread killer([&] {
        if (dying->wait_for_line("record ", 5s)) // it has the request: now it dies
            dying->signal(SIGKILL);
    });
    (void)ask.request<calc::sum>("services/calc", calc::add{1, 2}, 700ms, ec);
    killer.join();
    BOOST_TEST(ec == error::sem_timeout);
    BOOST_TEST(dying->wait_exit(5s).has_value());
    // Its slot died with it: the next request fails at once.
    const auto start = clock_type::now();
    std::error_code next;
    while (ms_since(start) < 5000) {
        (void)ask.request<calc::sum>("services/calc", calc::add{1, 2}, 100ms, next);
        if (next == error::file_not_found)
            break;
    }
    BOOST_TEST(next == error::file_not_found);
}

BOOST_AUTO_TEST_CASE(a_late_reply_is_not_taken_for_the_next_one)
{
    test::host host;
    calculator calc(host);
    calc.slow_first = 400;
    connection bus;
    bus.connect(host.socket());
    requester ask(bus, "tester");
    std::error_code ec;
    (void)ask.request<calc::sum>("services/calc", calc::add{1, 1}, 100ms, ec);
    BOOST_TEST(ec == error::sem_timeout);
    // The answer to 1+1 arrives during this request: it must be skipped.
    auto second = ask.request<calc::sum>("services/calc", calc::add{20, 22}, 3s, ec);
    BOOST_TEST(!ec);
    BOOST_TEST_REQUIRE(second.has_value());
    BOOST_TEST(second->value == 42);
}

BOOST_AUTO_TEST_CASE(a_responder_answers_more_requesters_than_it_may_hold_handles)
{
    // Every requester has a reply slot of its own; the responder must not
    // keep a handle open to each one it ever answered (it keeps
    // publisher::max_open_topics, 64, under the host's limit here).
    test::host host({"--max-handles", "80"});
    calculator calc(host);
    for (int i = 0; i < 120; ++i) {
        connection bus;
        bus.connect(host.socket());
        requester ask(bus, "tester");
        std::error_code ec;
        const auto reply = ask.request<calc::sum>("services/calc", calc::add{i, 1}, 2s, ec);
        BOOST_TEST_REQUIRE(!ec, "request " << i << ": " << ec.message());
        BOOST_TEST(reply->value == i + 1);
    }
    calc.stop(); // the responder is single-threaded: read it once it is idle
    BOOST_TEST(calc.service->undeliverable() == 0u);
}
