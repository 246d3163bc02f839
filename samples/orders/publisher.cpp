// Publishes order_created events from a coroutine: connect, then publish
// without blocking, each publish telling how many subscribers got it.
//
//   orders_publisher [--count N] [--topic events/orders/eu]
#include "order.hpp"
#include "sample_options.hpp"

#include <slotbus/slotbus.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cstdio>
#include <string>

namespace asio = boost::asio;

asio::awaitable<void> publish_orders(slotbus::connection& bus, std::string topic, int count)
{
    co_await bus.async_connect(slotbus::default_address(), asio::use_awaitable);
    slotbus::publisher shop(bus, "shop");
    for (int i = 1; i <= count; ++i) {
        shop::order_created order{"A-" + std::to_string(i), 9.5 * i, "EUR", i, i % 2 == 0};
        auto delivered = co_await shop.async_publish(topic, order, asio::use_awaitable);
        std::printf("published %s to %u subscriber%s\n", order.order_id.c_str(), delivered,
                    delivered == 1 ? "" : "s");
    }
}

int main(int argc, char** argv)
{
    int count = 5;
    std::string topic = "events/orders/eu";
    samples::po::options_description options("Options");
    options.add_options()("count", samples::po::value(&count)->default_value(count),
                          "how many orders")(
        "topic", samples::po::value(&topic)->default_value(topic), "where to publish them");
    samples::parse_options(argc, argv, "orders_publisher [--count N] [--topic NAME]", options);
    asio::io_context io;
    slotbus::connection bus(io.get_executor(), {"orders-publisher"});
    int status = 0;
    asio::co_spawn(io, publish_orders(bus, topic, count), [&](std::exception_ptr failure) {
        if (failure) {
            try {
                std::rethrow_exception(failure);
            } catch (const std::exception& e) {
                // The bus says what it was about (its address, the slot);
                // the exception has the code.
                const auto why = bus.last_failure();
                std::printf("publishing failed: %s\n", why.empty() ? e.what() : why.c_str());
                status = 1;
            }
        }
        bus.close();
    });
    io.run();
    return status;
}
