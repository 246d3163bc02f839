// Sends health.ping requests to services/health and prints each reply and
// its round trip.
//
//   health_requester [--count N]
#include "health.hpp"
#include "sample_options.hpp"

#include <slotbus/slotbus.hpp>

#include <chrono>
#include <cstdio>
#include <string>

int main(int argc, char** argv)
{
    int count = 3;
    samples::po::options_description options("Options");
    options.add_options()("count", samples::po::value(&count)->default_value(count),
                          "how many requests");
    samples::parse_options(argc, argv, "health_requester [--count N]", options);

    slotbus::connection bus({"health-requester"});
    bus.connect();
    slotbus::requester ask(bus, "dashboard");
    for (int i = 1; i <= count; ++i) {
        const auto start = std::chrono::steady_clock::now();
        std::error_code ec;
        auto reply = ask.request<health::pong>("services/health", health::ping{"dashboard", i},
                                               std::chrono::seconds(2), ec);
        if (ec) {
            std::printf("request failed with %d: %s\n", ec.value(), ec.message().c_str());
            return 1;
        }
        const auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                            std::chrono::steady_clock::now() - start)
                            .count();
        std::printf("pong %lld: %s (%lld us)\n", static_cast<long long>(reply->sequence),
                    reply->status.c_str(), static_cast<long long>(us));
    }
}
