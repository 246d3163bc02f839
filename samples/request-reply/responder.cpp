// Answers health.ping requests on services/health with a health.pong.
//
//   health_responder [--count N]     (default: run until stopped)
#include "health.hpp"
#include "sample_options.hpp"

#include <slotbus/slotbus.hpp>

#include <cstdio>
#include <string>

int main(int argc, char** argv)
{
    long limit = -1;
    samples::po::options_description options("Options");
    options.add_options()("count", samples::po::value(&limit),
                          "exit after N requests (default: run until stopped)");
    samples::parse_options(argc, argv, "health_responder [--count N]", options);

    slotbus::connection bus({"health-responder"});
    bus.connect();
    slotbus::responder service(bus, "services/health", "health");
    long answered = 0;
    auto pings = service.on<health::ping>([&](const health::ping& p) {
        std::printf("ping %lld from %s\n", static_cast<long long>(p.sequence), p.from.c_str());
        std::fflush(stdout);
        ++answered;
        return health::pong{"ok", p.sequence};
    });
    std::printf("answering on services/health\n");
    std::fflush(stdout);
    try {
        while (limit < 0 || answered < limit)
            service.process_for(std::chrono::milliseconds(1000));
    } catch (const slotbus::system_error& e) {
        std::printf("stopping: %s\n", e.code().message().c_str()); // the bus went away
        return 1;
    }
}
