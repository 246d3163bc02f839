// Receives order_created events by type: a handler per event type and topic
// pattern, malformed records counted instead of thrown.
//
//   orders_subscriber [--count N] [--callbacks]     (default: run until stopped)
//
// Two ways to drive it: process_for() in a loop (blocking, the default), or
// async_run() with a completion callback while the connection runs.
#include "order.hpp"
#include "sample_options.hpp"

#include <slotbus/slotbus.hpp>

#include <cstdio>
#include <string>

int main(int argc, char** argv)
{
    long limit = -1;
    bool callbacks = false;
    samples::po::options_description options("Options");
    options.add_options()("count", samples::po::value(&limit),
                          "exit after N orders (default: run until stopped)")(
        "callbacks", samples::po::bool_switch(&callbacks),
        "async_run with a completion callback instead of process_for");
    samples::parse_options(argc, argv, "orders_subscriber [--count N] [--callbacks]", options);

    slotbus::connection bus({"orders-subscriber"});
    bus.connect();
    slotbus::subscriber billing(bus, "billing/inbox");
    long seen = 0;
    auto orders = billing.on<shop::order_created>(
        "events/orders/**", [&](const shop::order_created& order, const slotbus::envelope& e) {
            std::printf("order %s: %.2f %s, %d item%s%s (from %s)\n", order.order_id.c_str(),
                        order.amount, order.currency.c_str(), order.items,
                        order.items == 1 ? "" : "s", order.express ? ", express" : "",
                        e.source.c_str());
            std::fflush(stdout);
            if (++seen == limit)
                billing.stop(); // ends async_run; process_for's loop checks `seen`
        });
    billing.on_error([](std::error_code ec, const std::string& why) {
        std::printf("skipped a record (%d): %s\n", ec.value(), why.c_str());
    });
    std::printf("subscribed to events/orders/**\n");
    std::fflush(stdout);
    if (callbacks) {
        billing.async_run([&](boost::system::error_code ec) {
            if (ec != boost::asio::error::operation_aborted)
                std::printf("stopping: %s\n", ec.message().c_str()); // the bus went away
            bus.stop();
        });
        bus.run(); // runs the handlers until the callback above stops it
    } else {
        try {
            while (limit < 0 || seen < limit)
                billing.process_for(std::chrono::milliseconds(1000));
        } catch (const slotbus::system_error& e) {
            std::printf("stopping: %s\n", e.code().message().c_str()); // the bus went away
            return 1;
        }
    }
    const auto& s = billing.stats();
    std::printf("received %llu, handled %llu, malformed %llu, duplicates %llu\n",
                static_cast<unsigned long long>(s.received),
                static_cast<unsigned long long>(s.dispatched),
                static_cast<unsigned long long>(s.malformed),
                static_cast<unsigned long long>(s.duplicates));
}
