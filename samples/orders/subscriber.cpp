// Receives order_created events by type: a handler per event type and topic
// pattern, malformed records counted instead of thrown.
//
//   orders_subscriber [--count N]     (default: run until stopped)
#include "order.hpp"

#include <slotbus/slotbus.hpp>

#include <cstdio>
#include <string>

int main(int argc, char** argv)
{
    long limit = -1;
    if (argc == 3 && std::string_view(argv[1]) == "--count")
        limit = std::stol(argv[2]);

    slotbus::connection bus({"orders-subscriber", 256});
    bus.connect();
    slotbus::subscriber billing(bus, "billing/inbox");
    long seen = 0;
    auto orders = billing.on<shop::order_created>(
        "events/orders/**", [&](const shop::order_created& order, const slotbus::envelope& e) {
            std::printf("order %s: %.2f %s, %d item(s)%s (from %s)\n", order.order_id.c_str(),
                        order.amount, order.currency.c_str(), order.items,
                        order.express ? ", express" : "", e.source.c_str());
            std::fflush(stdout);
            ++seen;
        });
    billing.on_error([](std::error_code ec, const std::string& why) {
        std::printf("skipped a record (%d): %s\n", ec.value(), why.c_str());
    });
    std::printf("subscribed to events/orders/**\n");
    std::fflush(stdout);
    try {
        while (limit < 0 || seen < limit)
            billing.process_for(std::chrono::milliseconds(1000));
    } catch (const slotbus::system_error& e) {
        std::printf("stopping: %s\n", e.code().message().c_str()); // the bus went away
        return 1;
    }
    const auto& s = billing.stats();
    std::printf("received %llu, handled %llu, malformed %llu, duplicates %llu\n",
                static_cast<unsigned long long>(s.received),
                static_cast<unsigned long long>(s.dispatched),
                static_cast<unsigned long long>(s.malformed),
                static_cast<unsigned long long>(s.duplicates));
}
