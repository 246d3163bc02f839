// The seeds' network article's serverslot.c, on slotbus: create "blort",
// then for each record ask its size (GetMailslotInfo), read it into a buffer
// of that size (ReadFile) and print it. Records may come from writers on
// this host or, over a link, from any peer the policy lets write "blort".
//
//   network_server [--name NAME] [--count N]     (defaults: \\.\mailslot\blort; forever)
#include "sample_options.hpp"

#include <slotbus/slotbus.hpp>

#include <cstdio>
#include <string>
#include <string_view>

int main(int argc, char** argv)
{
    std::string name = R"(\\.\mailslot\blort)";
    long limit = -1;
    samples::po::options_description options("Options");
    options.add_options()("name", samples::po::value(&name)->default_value(name), "the mailslot")(
        "count", samples::po::value(&limit), "exit after N records (default: run until stopped)");
    samples::parse_options(argc, argv, "network_server [--name NAME] [--count N]", options);
    slotbus::connection bus;
    std::error_code ec;
    bus.connect(slotbus::default_address(), ec);
    if (ec) {
        std::printf("connecting to the bus failed: %s\n", ec.message().c_str());
        return 1;
    }
    // Any size of record (0), and reads wait forever, as the article's does.
    auto slot = slotbus::server_slot::create(bus, name, 0, slotbus::mailslot_wait_forever, ec);
    if (ec) {
        std::printf("CreateMailslot failed: %d\n", ec.value());
        return 1;
    }
    std::printf("Mailslot %s created.\n", name.c_str());
    std::fflush(stdout);
    for (long n = 0; limit < 0 || n < limit; ++n) {
        // Waits for the next record (the slot's timeout is forever).
        const auto got = slot.read_record(ec);
        if (ec) {
            std::printf("ReadFile error: %d\n", ec.value());
            return 1;
        }
        if (got.missed_before)
            std::printf("(%u records were dropped before this one)\n", got.missed_before);
        std::printf("Next record is %zu bytes: %s\n", got.data.size(), got.data.c_str());
        // Who sent it is the host's word: a peer host's name when it came over a link.
        if (const auto& from = got.sender(); !from.host.empty())
            std::printf("(from host %s)\n", from.host.c_str());
        std::fflush(stdout);
    }
    return 0;
}
