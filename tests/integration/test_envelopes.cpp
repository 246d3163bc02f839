#define BOOST_TEST_MODULE envelopes
// Typed events through a real host: publish a struct, receive it converted;
// malformed records and duplicates cost nothing but a counter.
#include "host_fixture.hpp"
#include "order.hpp" // the orders sample's event: shop::order_created

#include <slotbus/slotbus.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/describe/class.hpp>
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <fstream>
#include <future>
#include <thread>
#include <unistd.h>

using namespace slotbus;
using namespace std::chrono_literals;
namespace asio = boost::asio;

namespace shop {

struct basket_updated {
    static constexpr std::string_view event_type = "baskets.updated";
    std::string basket;
    int lines = 0;
};
BOOST_DESCRIBE_STRUCT(basket_updated, (), (basket, lines))
} // namespace shop

namespace {
shop::order_created order(std::string id)
{
    return {std::move(id), 1.0, "EUR", 1, false};
}
} // namespace

namespace {
struct buses {
    test::host host;
    connection pub_bus{{"shop", 256}}, sub_bus{{"billing", 256}};
    buses()
    {
        pub_bus.connect(host.socket());
        sub_bus.connect(host.socket());
    }
};
} // namespace

BOOST_FIXTURE_TEST_CASE(typed_events_by_type_and_pattern, buses)
{
    subscriber billing(sub_bus, "billing/inbox");
    std::vector<shop::order_created> orders;
    std::vector<std::string> sources;
    std::vector<shop::basket_updated> baskets;
    auto s1 = billing.on<shop::order_created>("events/orders/**",
                                              [&](const shop::order_created& o, const envelope& e) {
                                                  orders.push_back(o);
                                                  sources.push_back(e.source);
                                              });
    auto s2 = billing.on<shop::basket_updated>(
        "events/baskets/*", [&](const shop::basket_updated& b) { baskets.push_back(b); });

    publisher shop(pub_bus, "shop");
    for (int i = 0; i < 3; ++i)
        BOOST_TEST(
            shop.publish("events/orders/eu", shop::order_created{"A-" + std::to_string(i), 10.0 * i,
                                                                 "EUR", i, i % 2 == 0}) == 1u);
    BOOST_TEST(shop.publish(R"(\\.\mailslot\events\baskets\b1)", shop::basket_updated{"b1", 2}) ==
               1u);
    std::error_code ec;
    BOOST_TEST(shop.publish("events/elsewhere", order("x"), ec) == 0u); // nobody subscribes there
    BOOST_TEST(!ec);

    BOOST_TEST(billing.process_for(200ms) == 4u);
    BOOST_TEST_REQUIRE(orders.size() == 3u);
    BOOST_TEST(orders[2].order_id == "A-2");
    BOOST_TEST(orders[2].amount == 20.0);
    BOOST_TEST(orders[2].express);
    BOOST_TEST(sources[0] == "/clients/shop"); // a client, not a plugin of the host
    BOOST_TEST_REQUIRE(baskets.size() == 1u);
    BOOST_TEST(baskets[0].lines == 2);
    BOOST_TEST(billing.stats().dispatched == 4u);
    BOOST_TEST(billing.stats().malformed == 0u);
}

BOOST_FIXTURE_TEST_CASE(a_publisher_keeps_its_recent_topics_open_and_reopens_older_ones, buses)
{
    subscriber billing(sub_bus, "billing/inbox");
    std::vector<std::string> ids;
    auto s = billing.on<shop::order_created>(
        "events/orders/*", [&](const shop::order_created& o) { ids.push_back(o.order_id); });
    publisher shop(pub_bus, "shop");
    // One topic more than it keeps open, then the first again (closed by now).
    const auto topics = publisher::max_open_topics + 1;
    std::vector<std::string> sent;
    for (std::size_t i = 0; i <= topics; ++i) {
        const auto n = std::to_string(i % topics);
        sent.push_back("A-" + std::to_string(i));
        BOOST_TEST_REQUIRE(shop.publish("events/orders/t" + n, order(sent.back())) == 1u);
    }
    while (ids.size() < sent.size() && billing.process_for(200ms) != 0) {
    }
    BOOST_TEST(ids == sent);
}

// A topic nobody listens to is not an error for a publisher (as in NATS and
// MQTT): 0 delivered, counted by the host; a mailslot write keeps its 2.
BOOST_FIXTURE_TEST_CASE(publishing_to_a_topic_nobody_listens_to_delivers_to_none, buses)
{
    auto unrouted = [&] { return admin(pub_bus, "stats").at("unrouted").to_number<int>(); };
    publisher shop(pub_bus, "shop");
    std::error_code ec;
    BOOST_TEST(shop.publish("events/nobody", order("A-1"), ec) == 0u);
    BOOST_TEST(!ec, ec.message());
    BOOST_TEST(shop.publish("events/nobody", order("A-2")) == 0u); // the open handle, no throw
    std::optional<std::pair<boost::system::error_code, std::uint32_t>> async_result;
    shop.async_publish(
        "events/nobody/deeper", order("A-3"),
        [&](boost::system::error_code e, std::uint32_t n) { async_result.emplace(e, n); });
    for (int i = 0; i < 500 && !async_result; ++i)
        pub_bus.run_for(10ms);
    BOOST_TEST_REQUIRE(async_result.has_value());
    BOOST_TEST(!async_result->first, async_result->first.message());
    BOOST_TEST(async_result->second == 0u);
    BOOST_TEST(unrouted() == 3);
    (void)client_slot::open(pub_bus, "events/nobody", ec);
    BOOST_TEST((ec == error::file_not_found), ec.message());
    // Once someone listens, the same handle delivers.
    subscriber billing(sub_bus, "billing/inbox");
    std::vector<std::string> ids;
    auto s = billing.on<shop::order_created>(
        "events/**", [&](const shop::order_created& o) { ids.push_back(o.order_id); });
    BOOST_TEST(shop.publish("events/nobody", order("A-4")) == 1u);
    billing.process_for(200ms);
    BOOST_TEST(ids == std::vector<std::string>{"A-4"});
    // A request to nobody fails at once rather than wait out its timeout.
    requester asker(pub_bus);
    const auto started = std::chrono::steady_clock::now();
    (void)asker.request("rpc/nobody", "rpc.ask", nullptr, 5s, ec);
    BOOST_TEST((ec == error::file_not_found), ec.message());
    BOOST_TEST((std::chrono::steady_clock::now() - started < 4s));
}

BOOST_FIXTURE_TEST_CASE(malformed_records_are_counted_and_later_ones_flow, buses)
{
    subscriber billing(sub_bus, "billing/inbox");
    int received = 0;
    std::vector<std::string> errors;
    billing.on_error([&](std::error_code ec, const std::string& why) {
        BOOST_TEST(ec == error::invalid_data);
        errors.push_back(why);
    });
    auto s = billing.on<shop::order_created>("events/orders",
                                             [&](const shop::order_created&) { ++received; });

    publisher shop(pub_bus, "shop");
    auto raw = client_slot::open(pub_bus, "events/orders");
    shop.publish("events/orders", order("before"));
    raw.write("this is not JSON");
    raw.write(R"({"specversion":"1.0","source":"/x","type":"orders.created"})"); // no id
    auto wrong = make_envelope("/clients/x", "orders.created", "events\\orders",
                               boost::json::value{{"order_id", 17}}); // data that does not convert
    shop.publish("events/orders", wrong, *std::make_unique<std::error_code>());
    shop.publish("events/orders", order("after"));

    billing.process_for(200ms);
    BOOST_TEST(received == 2);
    BOOST_TEST(billing.stats().malformed == 3u);
    BOOST_TEST(errors.size() == 3u);
    BOOST_TEST(billing.stats().received == 5u);
}

BOOST_FIXTURE_TEST_CASE(a_plugins_source_from_another_sender_is_dropped_as_forged, buses)
{
    subscriber billing(sub_bus, "billing/inbox");
    std::vector<std::string> ids, errors;
    billing.on_error([&](std::error_code ec, const std::string& why) {
        BOOST_TEST(ec == error::access_denied);
        errors.push_back(why);
    });
    auto s = billing.on<shop::order_created>(
        "events/orders", [&](const shop::order_created& o) { ids.push_back(o.order_id); });
    publisher shop(pub_bus, "shop");
    // A client claims to be the metrics plugin, with the id its next event
    // will have: the forgery is dropped, and the genuine event is not taken
    // for a duplicate of it.
    auto genuine = make_envelope(shop.source(), "events\\orders", order("genuine"));
    auto forged = make_envelope("/plugins/metrics", "events\\orders", order("forged"));
    forged.id = genuine.id;
    std::error_code ec;
    shop.publish("events/orders", forged, ec);
    shop.publish("events/orders", genuine, ec);
    BOOST_TEST(!ec);
    billing.process_for(200ms);
    BOOST_TEST(ids == std::vector<std::string>{"genuine"});
    BOOST_TEST(billing.stats().forged == 1u);
    BOOST_TEST(billing.stats().duplicates == 0u);
    BOOST_REQUIRE(errors.size() == 1u);
    BOOST_TEST(errors[0].find("forged source /plugins/metrics") == 0u, errors[0]);
    BOOST_TEST(errors[0].find("uid " + std::to_string(::geteuid())) != std::string::npos);
}

BOOST_FIXTURE_TEST_CASE(a_record_says_who_wrote_it_and_to_which_name, buses)
{
    auto inbox = server_slot::create(sub_bus, "watch");
    auto sub = inbox.subscribe("events/**");
    auto writer = client_slot::open(pub_bus, "events/Orders/EU");
    writer.write("x");
    const auto r = inbox.read_record();
    BOOST_TEST(r.sender().name == "events\\Orders\\EU");
    BOOST_TEST(r.sender().uid == ::geteuid());
    BOOST_TEST(r.sender().pid == static_cast<std::uint32_t>(::getpid()));
    BOOST_TEST(r.sender().plugin.empty());
    auto [data, missed] = r; // still a pair for structured bindings
    BOOST_TEST(data == "x");
    BOOST_TEST(missed == 0u);
}

BOOST_FIXTURE_TEST_CASE(duplicates_are_dropped_by_source_and_id, buses)
{
    subscriber billing(sub_bus, "billing/inbox");
    int received = 0;
    auto s = billing.on<shop::order_created>("events/orders",
                                             [&](const shop::order_created&) { ++received; });
    publisher shop(pub_bus, "shop");
    const auto once = make_envelope(shop.source(), "events\\orders", order("dup"));
    std::error_code ec;
    shop.publish("events/orders", once, ec);
    shop.publish("events/orders", once, ec); // the same event again
    auto other_source = once;
    other_source.source = "/clients/other"; // same id, other source: a different event
    shop.publish("events/orders", other_source, ec);
    billing.process_for(200ms);
    BOOST_TEST(received == 2);
    BOOST_TEST(billing.stats().duplicates == 1u);
}

BOOST_AUTO_TEST_CASE(coroutines_publish_and_subscribe)
{
    test::host host;
    asio::io_context io;
    auto work = asio::make_work_guard(io);
    std::thread io_thread([&] { io.run(); });
    // Both connections live on the io thread; setup calls block from here.
    connection pub_bus(io.get_executor()), sub_bus(io.get_executor());
    pub_bus.connect(host.socket());
    sub_bus.connect(host.socket());
    subscriber billing(sub_bus, "billing/inbox");
    std::vector<std::string> ids;
    auto s = billing.on<shop::order_created>("events/orders", [&](const shop::order_created& o) {
        ids.push_back(o.order_id);
        if (ids.size() == 100)
            billing.stop();
    });
    publisher shop(pub_bus, "shop");
    BOOST_TEST(shop.publish("events/orders", order("0")) == 1u); // opens the topic

    std::promise<boost::system::error_code> run_result;
    std::atomic<int> undelivered{
        0}; // counted on the io thread, checked here (Boost.Test is not thread-safe)
    asio::post(io, [&] {
        billing.async_run([&](boost::system::error_code ec) { run_result.set_value(ec); });
        asio::co_spawn(
            io,
            [&]() -> asio::awaitable<void> {
                for (int i = 1; i < 100; ++i) {
                    auto delivered = co_await shop.async_publish(
                        "events/orders", order(std::to_string(i)), asio::use_awaitable);
                    undelivered += delivered == 1u ? 0 : 1;
                }
            },
            asio::detached);
    });
    auto done = run_result.get_future();
    BOOST_TEST_REQUIRE((done.wait_for(10s) == std::future_status::ready));
    BOOST_TEST((done.get() == asio::error::operation_aborted)); // ended by stop()
    work.reset();
    asio::post(io, [&] {
        pub_bus.close();
        sub_bus.close();
    });
    io_thread.join();
    BOOST_TEST(undelivered == 0);
    BOOST_TEST_REQUIRE(ids.size() == 100u);
    BOOST_TEST(ids.front() == "0");
    BOOST_TEST(ids.back() == "99");
}

BOOST_AUTO_TEST_CASE(declared_topic_types_are_enforced_by_the_host)
{
    test::temp_dir dir;
    const auto rules = dir.path / "topic-types.json";
    std::ofstream(rules) << R"({"events/orders/**": ["orders.created"]})";
    test::host host({"--topic-types", rules.string()});
    connection pub_bus, sub_bus;
    pub_bus.connect(host.socket());
    sub_bus.connect(host.socket());
    subscriber billing(sub_bus, "billing/inbox");
    int received = 0;
    auto s = billing.on<shop::order_created>("events/orders/*",
                                             [&](const shop::order_created&) { ++received; });
    publisher shop(pub_bus, "shop");
    BOOST_TEST(shop.publish("events/orders/eu", order("ok")) == 1u);
    std::error_code ec;
    shop.publish("events/orders/eu", shop::basket_updated{"b", 1}, ec);
    BOOST_TEST(ec == error::invalid_data); // refused: that record only
    auto raw = client_slot::open(pub_bus, "events/orders/eu");
    raw.write("garbage", ec);
    BOOST_TEST(ec == error::invalid_data);
    BOOST_TEST(shop.publish("events/orders/eu", order("still connected")) == 1u);
    billing.process_for(200ms);
    BOOST_TEST(received == 2);
    BOOST_TEST(billing.stats().malformed == 0u); // nothing refused reached it
}

BOOST_FIXTURE_TEST_CASE(stopping_mid_batch_loses_nothing, buses)
{
    subscriber billing(sub_bus, "billing/inbox");
    std::vector<std::string> ids;
    auto s = billing.on<shop::order_created>("events/orders", [&](const shop::order_created& o) {
        ids.push_back(o.order_id);
        if (ids.size() == 2)
            billing.stop(); // in the middle of what was read at once
    });
    publisher shop(pub_bus, "shop");
    for (int i = 0; i < 5; ++i)
        shop.publish("events/orders", order(std::to_string(i)));
    boost::system::error_code ended;
    billing.async_run([&](boost::system::error_code ec) {
        ended = ec;
        sub_bus.stop();
    });
    sub_bus.run_for(5s);
    BOOST_TEST((ended == asio::error::operation_aborted));
    BOOST_TEST(ids.size() == 2u);
    billing.process_for(100ms); // the rest, in order
    BOOST_TEST((ids == std::vector<std::string>{"0", "1", "2", "3", "4"}));
}
