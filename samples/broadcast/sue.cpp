// The seeds' network article's receiver of Sue's tax records: every
// computer of the domain that wants them creates \\.\mailslot\taxes\sue and
// reads what arrives; one broadcast write reaches all of them.
//
//   broadcast_sue [--count N]   (exit after N records; default: run until stopped)
#include "sample_options.hpp"

#include <slotbus/slotbus.hpp>

#include <cstdio>
#include <string>
#include <string_view>

int main(int argc, char** argv)
{
    long count = -1;
    samples::po::options_description options("Options");
    options.add_options()("count", samples::po::value(&count),
                          "exit after N records (default: run until stopped)");
    samples::parse_options(argc, argv, "broadcast_sue [--count N]", options);
    slotbus::connection bus;
    std::error_code ec;
    bus.connect(slotbus::default_address(), ec);
    if (ec) {
        std::printf("connecting to the bus failed: %s\n", ec.message().c_str());
        return 1;
    }
    // CreateMailslot("\\\\.\\mailslot\\taxes\\sue", 0, MAILSLOT_WAIT_FOREVER, 0)
    auto slot = slotbus::server_slot::create(bus, R"(\\.\mailslot\taxes\sue)", {}, ec);
    if (ec) {
        std::printf("CreateMailslot failed: %d\n", ec.value());
        return 1;
    }
    std::printf("created\n");
    std::fflush(stdout);
    for (long n = 0; count < 0 || n < count; ++n) {
        auto got = slot.read_record(ec);
        if (ec) {
            std::printf("ReadFile failed: %d\n", ec.value());
            return 1;
        }
        // A broadcast is best effort: what never came is counted, and said.
        if (got.missed_before)
            std::printf("(%u records to sue were lost on the way)\n", got.missed_before);
        const auto& from = got.sender();
        std::printf("Sue got %zu bytes: %s (from %s%s%s)\n", got.data.size(), got.data.c_str(),
                    from.host.empty() ? "this computer" : ("host " + from.host).c_str(),
                    from.domain.empty() ? "" : ", a broadcast to ", from.domain.c_str());
        std::fflush(stdout);
    }
    return 0;
}
